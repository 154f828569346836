"""Per-user state and the actions behind the app's tabs. No UI imports: app.py only formats.

Each browser session gets a `Session` (kept in a `SessionStore` keyed by Gradio's session
hash): the models it trained, its uploaded data and its runs. Shipped models and the rendered
OpenMoji set are shared read-only by all sessions. What sessions hold on disk and in memory is
bounded as aevae/resources.py describes.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import (
    budget,
    classroom,
    data,
    metrics,
    pair_training,
    resources,
    sampling,
    timing,
    userdata,
    worker,
)
from .config import PRESETS, ModelConfig, TrainConfig, adapt_latent, parse_latent, resolve_device
from .models import AutoEncoder, build_model, plan
from .pair_training import Snapshot  # noqa: F401 (the Train tab's strip)
from .runs import BETA, FRESH, RUN, SHIPPED, Pair, Run, RunList, RunRecord
from .train import Progress, as_uint8_nchw, train_together
from .zoo import BETA_LATENT, GENERATE, Zoo

OPENMOJI = "openmoji"
# Where the app trains: AEVAE_DEVICE (auto, cpu, cuda, mps); auto takes a GPU when there is one.
DEVICE = resolve_device(os.environ.get("AEVAE_DEVICE", "auto"))
TRAIN_DEFAULT = "quick"  # the Train tab's preset: a good pair in about half a minute on 2 cores
MAX_RECON_IMAGES = 64
MAX_SESSIONS = 100  # sessions of API-only clients (no page) kept at once, in all
MAX_CLIENT_SESSIONS = 20  # ... per client address (a script makes its own sessions go first)
MAX_CLIENT_PAGES = 200  # page sessions per client address (a class behind one address fits)
RECENT_S = 120.0  # a session used this recently is never dropped to make room
IDLE_SESSION_S = 3 * 3600  # a session nobody used for this long is dropped
GRACE_S = 60.0  # a page's session outlives its page this long, for a reload to reattach to it
ATTACH_WAIT_S = 3.0  # a reloaded page may load before its old page's unload arrives: waited for
BROWSER_KEYS = 4  # browser keys a page sends at most (one per tab of that browser that lives)
KEY_CHARS = 43  # secrets.token_urlsafe(32): 256 bits
_KEY_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
KEEP_FOLDERS = 32  # output folders kept per session and group (one per call that makes files)
_split_lock = threading.Lock()
_splits: dict[int, data.Split] = {}
_split_held: dict[int, resources.Held] = {}


class NoModels(RuntimeError):
    """There is no model to use yet: nothing shipped and nothing trained in this session."""


def openmoji_split(size: int) -> data.Split:
    """The default dataset's fixed split, rendered once per size and shared (read-only).

    Kept within the server's data memory (resources.DATA): sizes nobody used lately are
    released when others need room, and rendered again (from the disk cache) when asked."""
    with _split_lock:
        if size in _splits:
            _split_held[size].touch()
            return _splits[size]
        held = resources.DATA.claim(resources.SHARED, size, data.peak_bytes(OPENMOJI, size),
                                    f"OpenMoji at {size} px")
        try:
            split = data.load_split(OPENMOJI, size, 0.1, 0)
        except BaseException:
            held.drop()
            raise
        _splits[size], _split_held[size] = split, held
        held.loaded(split.all.images.nbytes, lambda: (_splits.pop(size, None), _split_held.pop(size, None)))
        return split


def upload_key(paths) -> tuple:
    """What was uploaded, to know the same upload again: each file by its path and size (a file
    taken into a session's folder by its kept copy's size)."""
    out = []
    for p in ([paths] if isinstance(paths, str | Path) else paths):
        try:
            size = resources.resolve(p).stat().st_size
        except (OSError, data.DataError):
            size = -1
        out.append((str(p), size))
    return tuple(sorted(out))


def openmoji_counts() -> data.Split:
    """An OpenMoji split at any size already rendered (for its counts, the same at every size)."""
    with _split_lock:
        ready = next(iter(_splits.values()), None)
    return ready if ready is not None else openmoji_split(64)


class SessionEnded(RuntimeError):
    """The session ended (its page closed or it expired) while a request still used it."""

    def __init__(self):
        super().__init__("This page's session ended (closed or expired); nothing more is kept for it. "
                         "Reload the page to start again.")


@dataclass
class Loaded:
    """An upload loaded and checked for a session but not yet kept or used (Session.load_upload)."""

    paths: list[Path]  # as given (the web server's upload paths)
    sources: list[Path]  # the files read: the paths, or the copies kept when they were taken in
    key: tuple  # what was uploaded (userdata.Upload.key)
    size: int
    split: data.Split
    held: resources.Held  # its memory

    def discard(self) -> None:
        """Not used after all (e.g. the training was refused): its memory is freed."""
        self.held.drop()


@dataclass
class TrainSettings:
    """What the Train tab asks for; validated into a ModelConfig and a TrainConfig."""

    preset: str = TRAIN_DEFAULT
    image_size: int = PRESETS[TRAIN_DEFAULT].model.image_size
    latent: str = PRESETS[TRAIN_DEFAULT].model.latent
    epochs: int = PRESETS[TRAIN_DEFAULT].train.epochs
    seconds: float | None = 300.0  # a safety cap for the pair; runs are planned in epochs
    batch_size: int = PRESETS[TRAIN_DEFAULT].train.batch_size
    lr: float = PRESETS[TRAIN_DEFAULT].train.lr
    weight_decay: float = PRESETS[TRAIN_DEFAULT].train.weight_decay
    beta: float = PRESETS[TRAIN_DEFAULT].train.beta
    seed: int = 0

    def model_config(self, kind: str) -> ModelConfig:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}")
        cfg = PRESETS[self.preset].model.with_(kind=kind, image_size=int(self.image_size),
                                               latent=str(self.latent).strip())
        plan(cfg)  # unreachable spatial latents fail here with the sizes that would work
        return cfg

    def train_config(self) -> TrainConfig:
        secs = float(self.seconds) if self.seconds else None
        return PRESETS[self.preset].train.with_(device=DEVICE,
            epochs=int(self.epochs), seconds=secs, batch_size=int(self.batch_size), lr=float(self.lr),
            weight_decay=float(self.weight_decay), beta=float(self.beta), seed=int(self.seed))


# Query-string keys of the Train tab's settings (shareable links), with their types.
QUERY_KEYS = {"preset": str, "size": int, "latent": str, "epochs": int, "seconds": float, "batch": int,
              "lr": float, "wd": float, "beta": float, "seed": int}
# A link also says which data its settings were made for; it cannot carry an upload's files.
DATA_KEY, DATA_VALUES = "data", (OPENMOJI, "upload")


def settings_from_query(params: dict[str, str]) -> tuple[dict, list[str]]:
    """Train settings from a page's query parameters; problems are returned, never dropped silently."""
    values, problems = {}, []
    for key, raw in params.items():
        kind = QUERY_KEYS.get(key)
        if key == DATA_KEY:
            if raw in DATA_VALUES:
                values[key] = raw
            else:
                problems.append(f"'{key}={data.shown(raw, 40)}' is not openmoji or upload")
            continue
        if kind is None:  # a link's text is anyone's: shown bounded (data.shown)
            problems.append(f"unknown setting '{data.shown(key, 40)}'")
            continue
        try:
            values[key] = kind(raw)
        except ValueError:
            problems.append(f"'{key}={data.shown(raw, 40)}' is not a valid {kind.__name__}")
    if "preset" in values and values["preset"] not in PRESETS:
        problems.append(f"unknown preset '{values.pop('preset')}'")
    full = complete_settings(values)
    try:
        TrainSettings(full["preset"], full["size"], full["latent"]).model_config("ae")
    except ValueError as e:
        problems.append(str(e))
    return values, problems


def complete_settings(values: dict) -> dict:
    """A link's settings with what it leaves out taken from its preset (or the Train tab's default).

    A size without a latent gets the preset's latent for that size (see config.adapt_latent)."""
    name = values.get("preset", TRAIN_DEFAULT)
    p = PRESETS[name]
    full = {"preset": name, "size": p.model.image_size, "latent": p.model.latent, "batch": p.train.batch_size,
            "lr": p.train.lr, "wd": p.train.weight_decay, "beta": p.train.beta}
    if "size" in values and "latent" not in values:
        try:
            full["latent"] = adapt_latent(p.model.latent, p.model.image_size, values["size"]) or p.model.latent
        except ValueError:
            pass  # a size out of range: the check in settings_from_query says so
    return {**full, **values}


class Session:
    def __init__(self, zoo: Zoo | None, shared: classroom.SharedRuns | None = None,
                 folder: Path | None = None, uploads: Path | None = None):
        """`folder`: where the session's folder is made (an app folder, see resources.py; None:
        the temp folder); `uploads`: the web server's upload folder, whose files are moved into
        the session's folder once loaded (files elsewhere, e.g. the CLI's, are only read)."""
        self.zoo = zoo
        self.shared = shared if shared is not None else classroom.SharedRuns()
        self.in_use = SHIPPED + "default"  # which pair the tabs use: "shipped:NAME" or "run:N"
        self.upload: userdata.Upload | None = None  # the user's dataset, kept until replaced or removed
        self.on_upload = False  # the tabs use the upload (else OpenMoji); switching back loses nothing
        self._upload_splits: dict[int, data.Split] = {}
        self.runs = RunList()
        self._series = 0  # presses of a sweep button (RunRecord.series)
        self.code_map = None  # (pair name, kind, sampling.CodeMap) of the last map drawn
        self.last: dict = {}  # the latest results shown per tab, for the report
        self.opened: set = set()  # (tab, pair in use) whose first view was shown on opening the tab
        self.stop = threading.Event()
        self.lock = threading.Lock()  # one training at a time per session
        self.closed = False
        self.page = False  # a browser page loaded this session (API-only clients never do)
        self.lang: str | None = None  # the language chosen on the page (None: the request's)
        self.client = ""  # the address it came from (SessionStore bounds sessions per address)
        self.browser: str | None = None  # digest of the browser key a reload reattaches with (None: none)
        self.pages: set[str] = set()  # the pages (session hashes) attached to it now
        self.released: float | None = None  # when its last page went (a reload may reattach until GRACE_S)
        self.training = None  # the latest Train of this session, for a reattached page to watch (ui)
        self.seen = time.monotonic()
        self.notices: list[str] = []  # things to tell the user at their next request
        self.decoding = resources.Allowance()
        self._root, self._uploads = folder, uploads
        self._held: dict[int, resources.Held] = {}  # memory of _upload_splits, by size
        self._data_lock = threading.Lock()  # one load of this session's data at a time
        self._tmp: Path | None = None
        self._folders: dict[str, list[Path]] = {}
        self._folders_lock = threading.Lock()

    # --- where things come from -------------------------------------------------------
    @property
    def tmpdir(self) -> Path:
        """The session's folder; a session that ended makes none (SessionEnded)."""
        with self._folders_lock:
            if self.closed:
                raise SessionEnded()
            if self._tmp is None:
                prefix = "session-" if self._root is not None else resources.LEGACY_PREFIX
                # download links show it: a name nobody can guess (128 bits), not a counter
                self._tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{secrets.token_hex(16)}-", dir=self._root))
            return self._tmp

    def input_path(self, path) -> Path:
        """A file a request names as its input: a web upload, or this session's own kept file.
        Files of other sessions and the app's own (its lock) live in the app's folder too, and
        the web server accepts any path in its upload folder: they are refused here by name."""
        p = Path(os.path.abspath(path))
        if resources.within(p, self._root) and not resources.within(p, self._tmp):
            raise data.DataError(f"{data.shown(p.name)}: not a file of this session; upload it again")
        return resources.resolve(p)

    def new_folder(self, group: str = "out", keep: int = KEEP_FOLDERS) -> Path:
        """A fresh folder for one call's output files, so parallel calls never share a file.

        The oldest of its `group` beyond `keep` are removed, so a session's files stay bounded:
        a frequent kind of output (a training's live picture) has its own group, so it does not
        push out the files of other calls that the page still offers for download.
        """
        tmp = self.tmpdir
        with self._folders_lock:
            folder = Path(tempfile.mkdtemp(prefix=f"{group}-", dir=tmp))
            kept = self._folders.setdefault(group, [])
            kept.append(folder)
            while len(kept) > keep:
                shutil.rmtree(kept.pop(0), ignore_errors=True)
            return folder

    def tell(self, note: str) -> None:
        if note not in self.notices:
            self.notices.append(note)

    def pop_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    def new_series(self) -> int:
        """A number shared by the runs of one sweep (RunRecord.series)."""
        self._series += 1
        return self._series

    @property
    def busy(self) -> bool:
        """A training (or its queue place) is held by this session."""
        return self.lock.locked()

    def close(self) -> None:
        with self._folders_lock:
            self.closed = True
            tmp, self._tmp = self._tmp, None
        self.stop.set()
        resources.DATA.forget(self)
        self._upload_splits, self._held = {}, {}
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def shipped_pair(self, name: str = "default") -> Pair:
        if not self.zoo:
            raise NoModels("No shipped models were found: train a pair in the Train tab first.")
        if name not in self.zoo.pairs():
            raise ValueError(f"no shipped pair named {name!r}")
        ae, vae = self.zoo.pair(name)
        return Pair.from_checkpoints(ae, vae, f"shipped: {name}")

    def pair(self) -> Pair:
        """The pair the tabs use (see `use`)."""
        return self.pair_of(self.in_use)

    def pair_of(self, value: str) -> Pair:
        if value.startswith(RUN):
            run = self.runs.get(int(value.removeprefix(RUN)))
            if run is None or run.pair is None:
                raise ValueError(f"run {value.removeprefix(RUN)} is not kept in this session any more")
            return run.pair
        return self.shipped_pair(value.removeprefix(SHIPPED))

    def use(self, value: str) -> Pair:
        """Make a shipped pair or one of this session's runs the pair every tab uses."""
        pair = self.pair_of(value)
        self.in_use = value
        return pair

    def choices(self) -> list[tuple[str, str]]:
        """(label, value) of every pair the user can pick: shipped ones, then this session's runs."""
        out = [(f"shipped: {p}", SHIPPED + p) for p in (self.zoo.pairs() if self.zoo else [])]
        out += [(r.title, r.value) for r in reversed(self.runs.items) if r.pair is not None]
        return out

    def add_run(self, record: RunRecord, histories: dict, pair: Pair | None, use: bool = False,
                model: AutoEncoder | None = None) -> Run:
        """Keep a run; it becomes the pair in use only when `use` and it ran its whole plan (a run
        stopped or cut short is kept, to pick by hand: a half-trained pair never replaces the
        pair in use by itself)."""
        run = self.runs.add(record, histories, pair, keep=self.in_use, model=model)
        if use and pair is not None and record.finished:
            self.in_use = run.value
        return run

    @property
    def uses_upload(self) -> bool:
        return self.upload is not None and self.on_upload

    def set_upload(self, paths, image_size: int, should_stop=None) -> data.Split:
        """Load the user's dataset, keep it and use it (load_upload, then use_upload).

        `paths`: one .zip / .npy / .npz, or a .npy of images plus a .npy of labels (the one whose
        name says "label", as in report A's gen_data.npy / gen_label.npy), and optionally a .txt of
        label names. A bad upload raises ValueError and changes nothing.
        """
        loaded = self.load_upload(paths, image_size, should_stop)
        try:
            self.use_upload(loaded)
        except BaseException:
            loaded.discard()
            raise
        return loaded.split

    def load_upload(self, paths, image_size: int, should_stop=None) -> Loaded:
        """Load and check an upload within this session's memory and decoding budgets, without
        changing the session: see use_upload. Paths of uploads already taken in (moved into a
        session's folder) are found again."""
        files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        sources = [self.input_path(f) for f in files]
        images, labels, names_file = userdata.sort_files(sources)
        names = userdata.read_label_names(names_file) if names_file is not None else None
        shown = tuple(f.name for f in (images, labels, names_file) if f is not None)
        up = userdata.Upload(images, labels, names, shown, ())
        split, held = self._load(up, image_size, ("new", image_size), should_stop)
        return Loaded(files, sources, upload_key(files), image_size, split, held)

    def use_upload(self, loaded: Loaded) -> None:
        """Make a loaded upload the session's data: its files are kept in the session's folder
        (moved there from the web server's upload folder), the previous upload's removed."""
        with self._data_lock:
            folder = Path(tempfile.mkdtemp(prefix="upload-", dir=self.tmpdir))
            place = lambda src, dest: resources.adopt(src, dest, self._uploads, self._root)  # noqa: E731
            try:
                upload = userdata.keep(loaded.sources, folder, place)
            except OSError:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            upload.key = loaded.key
            old = self.upload
            for held in self._held.values():
                held.drop()
            self.upload, self.on_upload = upload, True
            self._upload_splits, self._held = {loaded.size: loaded.split}, {loaded.size: loaded.held}
            loaded.held.loaded(loaded.held.nbytes, self._releaser(loaded.size), key=loaded.size)
        if old is not None:
            shutil.rmtree(old.data.parent, ignore_errors=True)

    def same_upload(self, paths) -> bool:
        """These files are the upload already kept (the Train button sends the files again)."""
        return self.upload is not None and bool(paths) and upload_key(paths) == self.upload.key

    def use_data(self, name: str) -> None:
        """Which data the tabs use: "openmoji" or "upload" (the kept upload)."""
        if name == "upload" and self.upload is None:
            raise ValueError("choose 'upload' only after uploading a .zip, .npy or .npz file "
                             "(or a .npy of images with a *label*.npy)")
        self.on_upload = name == "upload"

    def clear_upload(self) -> None:
        with self._data_lock:
            for held in self._held.values():
                held.drop()
            if self.upload is not None:
                shutil.rmtree(self.upload.data.parent, ignore_errors=True)
            self.upload, self.on_upload = None, False
            self._upload_splits, self._held = {}, {}

    def _load(self, up: userdata.Upload, size: int, key, should_stop=None):
        """(split, memory held) of an upload at a size, within this session's memory and decoding
        budgets, decoding in one of the server's decoding slots."""
        what = f"{up.shown} at {size} px"
        held = resources.DATA.claim(self, key, data.peak_bytes(up.data, size), what, should_stop)
        budget_ = self.decoding.budget()
        try:
            with resources.decoding(should_stop, what):
                split = up.load(size, should_stop, budget_)
        except BaseException:
            held.drop()
            raise
        finally:
            self.decoding.spend(budget_)
        held.loaded(split.all.images.nbytes, None)
        return split, held

    def _releaser(self, size: int):
        def release():
            self._upload_splits.pop(size, None)
            self._held.pop(size, None)
            self.tell(f"Your uploaded data at {size} px was released from the server's memory to make room "
                      "for others; it is decoded again from your kept file when needed (a few seconds).")
        return release

    def split(self, size: int, should_stop=None) -> data.Split:
        """The data in use (the upload or OpenMoji) at this image size, split as always."""
        return self.data_split("upload" if self.uses_upload else OPENMOJI, size, should_stop)

    def data_split(self, name: str, size: int, should_stop=None) -> data.Split:
        """OpenMoji or the kept upload at this size, whichever the tabs use now (see use_data)."""
        if name != "upload":
            return openmoji_split(size)
        if self.upload is None:
            raise ValueError("choose 'upload' only after uploading a .zip, .npy or .npz file "
                             "(or a .npy of images with a *label*.npy)")
        with self._data_lock:
            if size in self._upload_splits:
                self._held[size].touch()
                return self._upload_splits[size]
            split, held = self._load(self.upload, size, size, should_stop)
            self._upload_splits[size], self._held[size] = split, held
            held.loaded(held.nbytes, self._releaser(size))
            return split

    def any_split(self) -> data.Split | None:
        """A split of the session's upload at any size it holds now (for counts), else None."""
        return next(iter(self._upload_splits.values()), None)

    def own_images(self, paths, size: int, should_stop=None) -> data.ImageSet:
        """Image files (or zips) uploaded to be reconstructed: decoded up to the images shown,
        within this session's decoding budget, then kept in the session's folder (the latest set)."""
        pairs, missing = [], []
        for p in paths:  # a file no longer here is skipped (and named, never its server path)
            if resources.within(p, self._root) and not resources.within(p, self._tmp):
                self.input_path(p)  # another session's file or the app's: refused, with why
            try:
                pairs.append((self.input_path(p), p))
            except data.DataError as e:
                missing.append(str(e))
        if not pairs:
            raise ValueError(f"no usable image in this upload: {'; '.join(missing[:5]) or 'no images uploaded'}")
        sources = [src for src, _ in pairs]
        budget_ = self.decoding.budget()
        try:
            with resources.decoding(should_stop, "your images"):
                images = load_user_images(sources, size, should_stop, budget_)
        finally:
            self.decoding.spend(budget_)
        images.skipped[:0] = missing
        own = self.tmpdir / "own"
        kept = [resources.adopt(src, own / f"{i}-{Path(p).name}", self._uploads, self._root)
                for i, (src, p) in enumerate(pairs)
                if src.is_file() and resources.within(src, self._uploads)]  # web uploads; other files stay
        for f in own.iterdir() if own.is_dir() else []:  # the previous set, unless it is this one
            if f not in kept:
                f.unlink(missing_ok=True)
        return images

    def data_key(self):
        """Which data the tabs use, to tell a switch of data apart (uploads by their files)."""
        return self.upload.key if self.uses_upload else OPENMOJI

    def data_source(self) -> str:
        return f"uploaded: {self.upload.shown}" if self.uses_upload else "OpenMoji"


ORPHAN_S = 30.0  # a reattached page's unused new session ends this much later


def valid_key(key) -> bool:
    """A browser key as this server makes them (anything else is ignored, never looked up)."""
    return isinstance(key, str) and len(key) == KEY_CHARS and set(key) <= _KEY_ALPHABET


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _later(seconds: float, fn, *args) -> None:
    timer = threading.Timer(seconds, fn, args)
    timer.daemon = True
    timer.start()


class SessionStore:
    """Sessions by key.

    A session with a browser page lives until its page closes (or it has been idle for
    `idle_s`). Sessions of API clients that never load the page are bounded by count: per
    client address (`per_client`), then in all (`limit`, taken first from the address with the
    most). A session is never dropped while it trains (or waits to), while a request of its
    own is in progress (`active`), or within `recent_s` of its last use; so a script that makes
    sessions makes its own sessions go first, and cannot erase a student's work.

    `folder`: where the sessions' folders go (one app folder per store, see resources.py);
    `uploads`: the web server's upload folder (see Session).
    """

    def __init__(self, zoo: Zoo | None, limit: int = MAX_SESSIONS, idle_s: float = IDLE_SESSION_S,
                 per_client: int = MAX_CLIENT_SESSIONS, per_client_pages: int = MAX_CLIENT_PAGES,
                 recent_s: float = RECENT_S, folder: Path | None = None, uploads: Path | None = None,
                 grace_s: float = GRACE_S, attach_wait_s: float = ATTACH_WAIT_S):
        self.zoo = zoo
        self.grace_s, self.attach_wait_s = grace_s, attach_wait_s
        self.shared = classroom.SharedRuns()  # trainings of all sessions: identical ones run once
        self.limit, self.idle_s, self.recent_s = limit, idle_s, recent_s
        self.per_client, self.per_client_pages = per_client, per_client_pages
        self.uploads = uploads
        self._base = folder
        self._root: Path | None = None
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._active: Counter[str] = Counter()  # requests in progress, per session key
        self._links: dict[str, str] = {}  # a reattached page's session hash -> its session's key
        self._keys: dict[str, str] = {}  # digest of a browser key -> its session's key
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path | None:
        """The app folder of this store's sessions (made on first use); None without a base."""
        if self._base is not None and self._root is None:
            self._root = resources.app_folder(self._base)
        return self._root

    def get(self, key: str, page: bool = False, client: str = "") -> Session:
        folder = self.folder
        with self._lock:
            key = self._links.get(key, key)
            s = self._sessions.get(key)
            if s is None:
                s = self._sessions[key] = Session(self.zoo, self.shared, folder, self.uploads)
                s.client = client
            s.page = s.page or page
            s.seen = time.monotonic()
            self._sessions.move_to_end(key)
            dropped = self._trim()
        for old in dropped:
            old.close()
        return s

    def peek(self, key: str) -> Session | None:
        """The session under `key` if there is one; never makes one (e.g. to read its language)."""
        with self._lock:
            return self._sessions.get(self._links.get(key, key))

    def active(self, key: str):
        """A context for a request of this session: it is not dropped while the request runs."""
        store = self

        class _Active:
            def __enter__(self):
                with store._lock:
                    self.key = store._links.get(key, key)  # a reattached page counts for its session
                    store._active[self.key] += 1

            def __exit__(self, *exc):
                with store._lock:
                    store._active[self.key] -= 1
                    if store._active[self.key] <= 0:
                        del store._active[self.key]

        return _Active()

    def _trim(self) -> list[Session]:
        now, out = time.monotonic(), []
        for key, s in list(self._sessions.items()):
            if not s.busy and not self._active[key] and now - s.seen > self.idle_s:
                out.append(self._pop(key))

        def spare(key: str) -> bool:  # may be dropped to make room
            s = self._sessions[key]
            return not s.busy and not self._active[key] and now - s.seen > self.recent_s

        for page, cap in ((False, self.per_client), (True, self.per_client_pages)):
            by_client: dict[str, list[str]] = {}
            for key, s in self._sessions.items():  # least recently used first
                if s.page == page:
                    by_client.setdefault(s.client, []).append(key)
            for keys in by_client.values():
                for key in [k for k in keys if spare(k)][:max(0, len(keys) - cap)]:
                    out.append(self._pop(key))
        api = [k for k, s in self._sessions.items() if not s.page]
        if len(api) > self.limit:
            count = Counter(self._sessions[k].client for k in api)
            order = sorted((k for k in api if spare(k)), key=lambda k: -count[self._sessions[k].client])
            for key in order[:len(api) - self.limit]:  # sorted() is stable: least recently used first
                out.append(self._pop(key))
        return out

    def drop(self, key: str) -> None:
        with self._lock:
            s = self._pop(self._links.get(key, key))
        if s is not None:
            s.close()

    def _pop(self, key: str) -> Session | None:
        """Take a session out with its links and its browser key (the lock held)."""
        s = self._sessions.pop(key, None)
        if s is not None:
            for page in s.pages:
                if self._links.get(page) == key:
                    del self._links[page]
            if s.browser is not None and self._keys.get(s.browser) == key:
                del self._keys[s.browser]
        return s

    # --- reloads: a page that comes back reattaches to its session ---------------------------
    def attach(self, page: str, keys, client: str = "") -> tuple[str, bool]:
        """The page `page` (a session hash) loaded, sending the browser keys its browser keeps.

        It gets the session of the first key whose session lives and has no other page (the
        page before a reload, whose unload may arrive a moment after this load: waited for up
        to `wait_s`); else its own session, with a new key. A key is a bearer secret made here
        (256 bits): only its digest is kept, an unknown or malformed one is ignored, never
        taken as a key. Returns (the key this page's session has now, whether it reattached)."""
        digests = [_digest(k) for k in list(keys or [])[:BROWSER_KEYS] if valid_key(k)]
        deadline = time.monotonic() + self.attach_wait_s
        while True:
            waiting = False
            with self._lock:
                for d in digests:
                    key = self._keys.get(d)
                    s = self._sessions.get(key) if key is not None else None
                    if s is None or s.closed:
                        continue
                    if s.pages - {page}:  # another page holds it: a second tab, or a reload's old page
                        waiting = True
                        continue
                    orphan = self._sessions.pop(page, None) if page != key else None
                    self._links[page] = key
                    s.pages.add(page)
                    s.page, s.released, s.seen = True, None, time.monotonic()
                    self._sessions.move_to_end(key)
                    break
                else:
                    s = None
            if s is not None:
                if orphan is not None:
                    # made by the page's other load events a moment ago: they may still be
                    # running with it, so it ends a little later rather than under them
                    _later(ORPHAN_S, orphan.close)
                return next(k for k in keys if valid_key(k) and _digest(k) == d), True
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        s = self.get(page, page=True, client=client)
        new = secrets.token_urlsafe(32)
        with self._lock:
            if s.browser is not None and self._keys.get(s.browser) == page:
                del self._keys[s.browser]
            s.browser = _digest(new)
            self._keys[s.browser] = page
            s.pages.add(page)
        return new, False

    def alive(self, keys) -> list[str]:
        """The keys, of those given, whose sessions still live (bounded, in order)."""
        with self._lock:
            return [k for k in list(keys or [])[:BROWSER_KEYS] if valid_key(k) and _digest(k) in self._keys]

    def release(self, page: str) -> None:
        """The page `page` closed (or is reloading). A session with a browser key waits
        `grace_s` for a page to reattach (a training goes on meanwhile), then ends; one without
        (an API client's, a page that never attached) ends now."""
        with self._lock:
            key = self._links.pop(page, page)
            s = self._sessions.get(key)
            if s is None:
                return
            s.pages.discard(page)
            if s.browser is not None:
                if not s.pages:
                    s.released = time.monotonic()
                    _later(self.grace_s, self._expire, key, s)
                return
            self._pop(key)
        s.close()

    def _expire(self, key: str, s: Session) -> None:
        with self._lock:
            if self._sessions.get(key) is not s or s.pages or s.released is None:
                return  # reattached, or gone already
            left = s.released + self.grace_s - time.monotonic()
            if left > 0.01 or self._active[key]:  # released again later, or a request still runs
                _later(max(left, 1.0), self._expire, key, s)
                return
            self._pop(key)
        s.close()

    def __len__(self) -> int:
        return len(self._sessions)


# --- actions --------------------------------------------------------------------------
def choose(split: data.Split, ids: list[int] | None, n: int = 10, seed: int = 0) -> data.ImageSet:
    """Images by 1-based ids from the whole set, or n random ones from the validation split."""
    if ids:
        if len(ids) > MAX_RECON_IMAGES:
            raise ValueError(f"at most {MAX_RECON_IMAGES} images at once, got {len(ids)} ids")
        return split.all.select_ids(ids)
    if not 1 <= n <= MAX_RECON_IMAGES:
        raise ValueError(f"number of images must be 1..{MAX_RECON_IMAGES}, got {n}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(split.val), min(n, len(split.val)), replace=False))
    return split.val.subset(pick)


@dataclass
class Reconstruction:
    images: data.ImageSet  # ground truth
    ae: metrics.EvalResult
    vae: metrics.EvalResult
    source: str = ""  # the pair that made them ("shipped: default", "run 3")

    def rows(self) -> list[dict]:
        out = []
        for i, a, v in zip(range(len(self.images)), self.ae.rows(), self.vae.rows()):
            out.append({"id": int(self.images.ids[i]), "name": self.images.names[i],
                        "label": self.images.label_names[self.images.labels[i]],
                        "AE PSNR": a["psnr"], "VAE PSNR": v["psnr"], "AE SSIM": a["ssim"],
                        "VAE SSIM": v["ssim"], "AE LPIPS": a["lpips"], "VAE LPIPS": v["lpips"]})
        return out


# Answers that depend only on shipped files (shipped models on the shipped data), computed once
# for every student of the server: a whole class opening the same tab costs one computation.
SHIPPED_ANSWERS = classroom.Memo(256)


def shipped_key(session: Session, pair: Pair | None, *parts):
    """A key for an answer made from shipped models and data only, else None (not shared)."""
    if session.uses_upload or (pair is not None and not pair.source.startswith("shipped:")):
        return None
    return (pair.source if pair is not None else "", *parts)


class ImageScores:
    """Each image's reconstructions and scores by a shipped pair on the shipped data, kept per
    image: a draw is a set of images, so 30 different draws of the same 450 validation images
    share most of their work, and what one request is computing another waits for instead of
    computing it again. Bounded by bytes (the reconstructions), least recently used dropped."""

    def __init__(self, max_bytes: int = 64 * 2**20):
        self.max_bytes, self.bytes = max_bytes, 0
        self._done: OrderedDict = OrderedDict()
        self._pending: dict = {}
        self._lock = threading.Lock()
        self.computed = 0  # images actually run through the models

    def reconstruct(self, pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
        keys = [(pair.source, images.image_size, lpips, int(i)) for i in images.ids]
        mine, waits = {}, {}
        with self._lock:
            for k in keys:
                if k in self._done:
                    self._done.move_to_end(k)
                elif k in self._pending:
                    waits[k] = self._pending[k]
                elif k not in mine:
                    mine[k] = self._pending[k] = Future()
        got = {}
        if mine:
            where = [keys.index(k) for k in mine]
            try:
                rec = reconstruct(pair, images.subset(where), lpips)
            except BaseException as e:
                with self._lock:
                    for k in mine:
                        self._pending.pop(k, None)
                for f in mine.values():
                    f.set_exception(e)
                raise
            for j, k in enumerate(mine):
                got[k] = tuple((r.recon[j], r.psnr[j], r.ssim[j], None if r.lpips is None else r.lpips[j],
                                r.lpips_note) for r in (rec.ae, rec.vae))
            with self._lock:
                self.computed += len(mine)
                for k, v in got.items():
                    self._pending.pop(k, None)
                    self._done[k] = v
                    self.bytes += v[0][0].nbytes + v[1][0].nbytes
                while self.bytes > self.max_bytes and self._done:
                    _, old = self._done.popitem(last=False)
                    self.bytes -= old[0][0].nbytes + old[1][0].nbytes
            for k, f in mine.items():
                f.set_result(got[k])
        for k, f in waits.items():
            got[k] = f.result()
        with self._lock:
            rows = [got[k] if k in got else self._done.get(k) for k in keys]
        if any(r is None for r in rows):  # dropped meanwhile (a full store): computed as it is
            return reconstruct(pair, images, lpips)
        ids = [int(i) for i in images.ids]

        def result(m: int) -> metrics.EvalResult:
            part = [r[m] for r in rows]
            lp = None if part[0][3] is None else np.array([p[3] for p in part], np.float64)
            return metrics.EvalResult(ids, np.array([p[1] for p in part], np.float64),
                                      np.array([p[2] for p in part], np.float64), lp, part[0][4],
                                      np.stack([p[0] for p in part]))

        return Reconstruction(images, result(0), result(1), pair.source)


SHIPPED_IMAGES = ImageScores()


def warm_validation(session: Session, lpips: bool = True, chunk: int = 30) -> int:
    """Every validation image through the session's pair when it is shipped (server start, in the
    background), kept per image: any random draw of the shipped data is then answered from
    memory. In chunks, each taking a compute slot, so requests are served in between.
    Returns how many images were done."""
    pair = session.pair()
    if shipped_key(session, pair) is None:
        return 0
    val = session.split(pair.image_size).val
    for i in range(0, len(val), chunk):
        SHIPPED_IMAGES.reconstruct(pair, val.subset(np.arange(i, min(i + chunk, len(val)))), lpips)
    return len(val)


def reconstruct_for(session: Session, pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
    key = shipped_key(session, pair, "reconstruct", images.image_size, tuple(int(i) for i in images.ids), lpips)
    if key is None:
        return reconstruct(pair, images, lpips)
    return SHIPPED_ANSWERS.get(key, lambda: SHIPPED_IMAGES.reconstruct(pair, images, lpips))


def reconstruct(pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
    if images.image_size != pair.image_size:
        raise ValueError(f"images are {images.image_size}px but the models take {pair.image_size}px")
    with classroom.computing():
        return Reconstruction(images, *metrics.evaluate_pair(pair.ae, pair.vae, images, lpips=lpips), pair.source)


def load_user_images(paths: list[str], size: int, should_stop=None,
                     pixels: data.PixelBudget | None = None) -> data.ImageSet:
    """Single image files (or zips) uploaded to be reconstructed, as one ImageSet.

    A file that cannot be read is skipped and named in `skipped`, as are files beyond the
    MAX_RECON_IMAGES images shown, which are not even decoded; only when no image at all is
    usable is it an error. `pixels` caps the decoding of all the files together (default:
    data.MAX_DECODED_PIXELS); `should_stop` cancels it (data.Cancelled)."""
    sets, skipped, left = [], [], MAX_RECON_IMAGES
    pixels = pixels if pixels is not None else data.PixelBudget()
    for i, p in enumerate(paths):
        if not left:
            rest = [Path(q).name for q in paths[i:]]
            skipped.append(f"{', '.join(rest[:3])}{' ...' * (len(rest) > 3)}: beyond the {MAX_RECON_IMAGES} "
                           f"images reconstructed at once ({len(rest)} file{'s' * (len(rest) != 1)} not read)")
            break
        try:
            sets.append(data.load_dataset(str(p), size, max_images=left, should_stop=should_stop, pixels=pixels))
            left -= len(sets[-1])
        except data.DataError as e:  # one image file: its own reason, not "no readable images (1 files ...)"
            # no regex on names someone chose: the message's own start and end, compared as text
            msg, head = str(e), f"{data.shown(Path(p).name)}: no readable images (1 files skipped: "
            one = msg.startswith(head) and msg.endswith(")")
            skipped.append(msg[len(head):-1] if one else msg)
    skipped += [k for s in sets for k in s.skipped]
    if not sets or not sum(len(s) for s in sets):
        why = ("; ".join(skipped[:5]) + (f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else "")) or \
            "no images uploaded"
        raise ValueError(f"no usable image in this upload: {why}")
    names = [n for s in sets for n in s.names]
    imgs = np.concatenate([s.images for s in sets])
    return data.ImageSet(imgs, np.zeros(len(imgs), np.int64), [data.UNLABELLED], names,
                         np.arange(1, len(imgs) + 1), "uploaded images", skipped)


def trained_on(dataset: dict) -> str:
    """What a model's recorded dataset was, in words."""
    if not dataset:
        return "data it has no record of"
    spec = dataset.get("spec", OPENMOJI)
    if spec == OPENMOJI:
        return "OpenMoji emoji"
    if spec.startswith(OPENMOJI + " ("):  # a shipped pair trained on some OpenMoji groups
        return f"OpenMoji's {spec.removeprefix(OPENMOJI + ' (').removesuffix(')')} only"
    return dataset.get("source") or spec


def other_data(session: Session, dataset: dict, size: int) -> str | None:
    """What a model was trained on when that is not the data this session uses, else None.

    Compared by content (classroom.fingerprint) where the model recorded it; shipped models
    record only that they were trained on OpenMoji (or some of its groups)."""
    if "fingerprint" in dataset:
        if dataset["fingerprint"] == classroom.fingerprint(session.split(size)):
            return None
    elif dataset and dataset.get("spec", OPENMOJI) == OPENMOJI and not session.uses_upload:
        return None
    return trained_on(dataset)


def data_note(session: Session, pair: Pair, what: str = "these images") -> str:
    """A sentence when the pair was trained on other data than the data in use, else ''."""
    other = other_data(session, pair.dataset, pair.image_size)
    if other is None:
        return ""
    part = str(pair.dataset.get("spec", "")).startswith(OPENMOJI + " (") and not session.uses_upload
    seen = ("it saw only part of this data, so expect it to do worse on the rest" if part else
            f"it never saw {what}, so expect it to do worse on them than on its own data")
    return f"{pair.source} was trained on {other}, not on the data in use ({session.data_source()}): {seen}."


def variants_for(session: Session, pair: Pair, images: data.ImageSet, k: int, scale: float,
                 seed: int) -> sampling.VariantSet:
    key = shipped_key(session, pair, "variants", tuple(int(i) for i in images.ids), k, scale, seed)
    return SHIPPED_ANSWERS.get(key, lambda: variants(pair, images, k, scale, seed))


def variants(pair: Pair, images: data.ImageSet, k: int, scale: float, seed: int) -> sampling.VariantSet:
    with classroom.computing():
        return sampling.variant_set(pair.vae, pair.ae, images.images, images.ids, images.labels, k, scale, seed)


def ladder_models(session: Session) -> list[dict]:
    """Rungs of the latent ladder: shipped entries plus rungs trained in this session."""
    rows = []
    zoo = session.zoo
    if zoo:
        by_rung: dict[str, dict] = {}
        for e in zoo.ladder():
            by_rung.setdefault(e["rung"], {"latent": e["rung"], "source": "shipped"})[e["kind"]] = e["name"]
        for r in by_rung.values():
            if "ae" in r and "vae" in r:
                ae = zoo.load(r["ae"])
                rows.append({**r, "ae": ae.model, "vae": zoo.load(r["vae"]).model,
                             "recorded": {k: zoo.entry(r[k])["metrics"] for k in ("ae", "vae")},
                             "dataset": ae.meta.get("dataset") or {},
                             "epochs": len((ae.meta.get("history") or {}).get("epochs") or [])})
    for run in session.runs:
        if run.kind == "rung" and run.pair is not None:
            rows.append({"latent": run.pair.latent, "source": f"run {run.number} (trained here)",
                         "ae": run.pair.ae, "vae": run.pair.vae, "dataset": run.pair.dataset,
                         "epochs": run.record.epochs_done})
    return sorted(rows, key=lambda r: parse_latent(r["latent"]).numel)


def latent_sizes(session: Session, images: data.ImageSet, lpips: bool = True) -> list[dict]:
    if not any(run.kind == "rung" for run in session.runs):
        key = shipped_key(session, None, "latent sizes", images.image_size,
                          tuple(int(i) for i in images.ids), lpips)
        return SHIPPED_ANSWERS.get(key, lambda: _latent_sizes(session, images, lpips))
    return _latent_sizes(session, images, lpips)


def _latent_sizes(session: Session, images: data.ImageSet, lpips: bool = True) -> list[dict]:
    out = []
    for r in ladder_models(session):
        if r["ae"].config.image_size != images.image_size:
            continue
        with classroom.computing():
            res = dict(zip(("ae", "vae"), metrics.evaluate_pair(r["ae"], r["vae"], images, lpips=lpips), strict=True))
        out.append({"latent": r["latent"], "source": r["source"], "values": r["ae"].latent_numel,
                    "image_values": 3 * images.image_size ** 2, "results": res, "dataset": r["dataset"],
                    "epochs": r.get("epochs")})
    return out


def latent_rows(session: Session, res: list[dict], image_size: int) -> list[dict]:
    """latent_sizes' results as table rows, two per rung (AE, VAE): its size against the image's,
    how long it was trained, its means, where it comes from and what data it was trained on."""
    rows = []
    for r in res:
        other = other_data(session, r["dataset"], image_size)
        for kind in ("ae", "vae"):
            sm = r["results"][kind].summary()
            rows.append({"latent": r["latent"], "model": kind.upper(), "latent values": r["values"],
                         "vs image values": r["values"] / r["image_values"], "epochs": r["epochs"],
                         "PSNR": sm["psnr"].mean, "SSIM": sm["ssim"].mean,
                         "LPIPS": sm["lpips"].mean if sm["lpips"] else None, "source": r["source"],
                         "trained on": "the data in use" if other is None else other})
    return rows


def warm_default_training() -> None:
    """What the default Train needs before it starts, made ahead (server start, in the background):
    OpenMoji at its size, the data's fingerprint, the models' FLOPs and memory profile. A class
    pressing Train at the same moment then waits for none of it."""
    settings = TrainSettings()
    split = openmoji_split(settings.image_size)
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    classroom.fingerprint(split)
    timing.estimate_seconds(cfgs, len(split.train), len(split.val), settings.epochs)
    budget.estimate_training(cfgs, settings.batch_size, n_images=len(split.all), in_worker=worker.enabled())


def plan_text(settings: TrainSettings, split: data.Split) -> str:
    """What a training will do, before it starts: epochs, steps and the estimated time here."""
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    tcfg = settings.train_config()
    n = len(split.train)
    steps = steps_of(settings, n)
    est = timing.estimate_seconds(cfgs, n, len(split.val), tcfg.epochs)
    cap = f"; stopped at the {tcfg.seconds:.0f} s cap if it runs longer" if tcfg.seconds else ""
    e = tcfg.epochs
    return (f"{e} epoch{'s' * (e != 1)} x {n:,} image{'s' * (n != 1)} = {steps:,} step{'s' * (steps != 1)} "
            f"of batch {tcfg.batch_size} per model, "
            f"{settings.image_size} px, latent {cfgs[0].latent}; about {est:.0f} s on this server{cap}.")


# A brief training that teaches something: the default plan makes about 500 optimiser steps on
# OpenMoji (4 epochs x 4,045 images, batch 32). Below FEW_STEPS the models are still grey blurs
# (a 72-image upload at the default 4 epochs makes 12), so the plan says so and offers the epochs
# that make GOOD_STEPS on the data in use.
FEW_STEPS, GOOD_STEPS = 200, 500


def steps_of(settings: TrainSettings, n_train: int, epochs: int | None = None) -> int:
    """Optimiser steps per model: epochs x batches per epoch (the last batch may be short)."""
    tcfg = settings.train_config()
    return (tcfg.epochs if epochs is None else epochs) * -(-n_train // min(tcfg.batch_size, n_train))


def more_epochs(settings: TrainSettings, split: data.Split, most: int) -> tuple[int, int, float] | None:
    """(epochs, steps, estimated seconds) that make about GOOD_STEPS on this data, when the
    settings make fewer than FEW_STEPS; None when they make enough (or `most` epochs add none)."""
    n = len(split.train)
    if steps_of(settings, n) >= FEW_STEPS:
        return None
    per_epoch = steps_of(settings, n, 1)
    epochs = min(most, -(-GOOD_STEPS // per_epoch))
    if epochs <= settings.train_config().epochs:
        return None
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    return epochs, epochs * per_epoch, timing.estimate_seconds(cfgs, n, len(split.val), epochs)


def train_models(settings: TrainSettings, split: data.Split, on_progress=None, should_stop=None,
                 on_snapshot=None, copy_wanted=None, on_copy=None) -> tuple[dict, dict, float]:
    """Train an AE and a VAE side by side on the same batches, seed, architecture and epochs.

    Returns (models, histories, seconds). Runs in a training worker process (worker.py) unless
    AEVAE_TRAIN_WORKERS=0; the models are the same either way. `on_snapshot(Snapshot)` gets the
    live "before / now" strip; `copy_wanted()` asks for the models as they are at the next step,
    handed to `on_copy(models, histories)` (a student who stops a run that others still wait for).
    """
    cfgs = {k: settings.model_config(k) for k in ("ae", "vae")}
    tcfg = settings.train_config()
    if split.all.image_size != cfgs["ae"].image_size:
        raise ValueError("the data and the model have different image sizes")
    if worker.enabled():
        models, hists, seconds = worker.train_pair_in_worker(
            cfgs, tcfg, split.train.images, split.val.images, on_progress=on_progress, should_stop=should_stop,
            on_snapshot=on_snapshot, copy_wanted=copy_wanted, on_copy=on_copy)
    else:
        held = {}

        def progress(name, p):
            if on_progress is not None:
                on_progress(name, p)
            if name == "vae" and copy_wanted is not None and on_copy is not None and copy_wanted():
                on_copy({k: copy.deepcopy(m).eval() for k, m in held.items()},
                        {k: copy.deepcopy(h) for k, h in hists_now.items()})

        hists_now = {}

        def progress_and_hist(name, p):
            hists_now[name] = p.history
            progress(name, p)

        models, hists, seconds = pair_training.train_pair(cfgs, tcfg, split.train.images, split.val.images,
                                                          progress_and_hist, should_stop, on_snapshot, held.update)
    if hists["ae"].stopped_by == "epochs":
        timing.record(timing.training_flops(list(cfgs.values()), len(split.train), len(split.val),
                                            tcfg.epochs), seconds)
    return models, hists, seconds


def add_pair_run(session: Session, settings: TrainSettings, split: data.Split, models: dict, hists: dict,
                 seconds: float, kind: str = "Train", use: bool = False, how: str = FRESH,
                 scores: dict | None = None, data_text: str | None = None, series: int = 0) -> Run:
    """Make trained models a run of the session (the pair in use only when `use`, see add_run).

    `scores`: val_scores of these models when already known (a shared run scores them once);
    `data_text`: what it was trained on, in words (default: the split's source).
    """
    first = hists["ae"] if isinstance(hists["ae"], dict) else hists["ae"].to_dict()
    if not first["iter_loss"]:
        raise InterruptedError("stopped before the first batch; nothing was kept")
    hd = {k: (h if isinstance(h, dict) else h.to_dict()) for k, h in hists.items()}
    dataset = {**split.describe(), "fingerprint": classroom.fingerprint(split)}  # to tell data apart later
    tcfg = settings.train_config().to_dict()
    pair = Pair(models["ae"], models["vae"], "", tcfg, hd, dataset)
    record = RunRecord.of(kind, preset=settings.preset, image_size=settings.image_size, latent=pair.latent,
                          train=tcfg, histories=hd, seconds=seconds,
                          scores=scores or val_scores(pair.ae, pair.vae, split),
                          data=data_text or split.all.source, n_train=len(split.train), trained=how or FRESH,
                          series=series)
    return session.add_run(record, hd, pair, use)


HOW = {"new": FRESH, "running": "joined a run already in progress on this server",
       "finished": "same settings and seed as a run already trained on this server"}


class PairJob:
    """A student's wait for a pair training that the server may share between students.

    See classroom.py: identical trainings run once; this job watches the shared one and, when it
    ends, makes its models a run of the student's session.
    """

    def __init__(self, session: Session, settings: TrainSettings, split: data.Split, kind: str = "Train",
                 use: bool = False, data_text: str | None = None, series: int = 0):
        self.session, self.settings, self.split, self.kind, self.use = session, settings, split, kind, use
        self.data_text, self.series = data_text, series
        cfgs = [settings.model_config(k) for k in ("ae", "vae")]
        tcfg = settings.train_config()
        # Refused before anything starts when it would not fit this server's memory per training.
        budget.check_training(cfgs, tcfg.batch_size, n_images=len(split.all), in_worker=worker.enabled())
        key = classroom.run_key(cfgs, tcfg.to_dict(), split)
        est = timing.estimate_seconds(cfgs, len(split.train), len(split.val), tcfg.epochs)

        def train(shared: classroom.Shared, should_stop):
            live = shared.live

            lefts = {}  # per model: each reports its own steps

            def progress(name, p):
                live.histories[name] = p.history
                left = lefts.setdefault(name, timing.TimeLeft(est))
                live.text, live.fraction = progress_text(p, left), p.fraction

            def snapshot(snap):
                live.snapshot = snap

            return train_models(settings, split, progress, should_stop, snapshot, shared.copies_wanted,
                                shared.give_copies)

        self.shared, self.how, self.waiter = session.shared.get_or_start(key, est, train)

    @property
    def live(self) -> classroom.Live:
        return self.shared.live

    def stop(self) -> None:
        self.waiter.stop.set()

    @property
    def done(self) -> bool:
        return self.shared.done.is_set() or self.waiter.copied.is_set()

    def leave(self) -> None:
        self.stop()
        self.shared.leave(self.waiter)

    def result(self) -> Run:
        """The run this job gives the session (raises the training's error, if any)."""
        try:
            if self.waiter.copy is not None:
                models, hists = self.waiter.copy["models"], self.waiter.copy["histories"]
                for h in hists.values():
                    h.stopped_by = "stop request"
                secs = time.monotonic() - self.shared.started
                how = "your copy, taken when you pressed Stop, of a run others still wait for"
            else:
                if self.shared.error is not None:
                    raise self.shared.error
                models, hists, secs = self.shared.result
                how = HOW[self.how]
            scores = None if self.waiter.copy is not None else self.shared.answers.get(
                "scores", lambda: val_scores(models["ae"], models["vae"], self.split))
            return add_pair_run(self.session, self.settings, self.split, models, hists, secs, self.kind,
                                self.use, how, scores, self.data_text, self.series)
        finally:
            self.shared.leave(self.waiter)


def val_scores(ae: AutoEncoder, vae: AutoEncoder, split: data.Split) -> dict:
    """Mean PSNR/SSIM of both models on the validation split (for a run's row)."""
    with ThreadPoolExecutor(2) as pool:  # both at once: SSIM's filters leave the interpreter free
        return dict(zip(("AE", "VAE"), pool.map(lambda m: metrics.evaluate(m, split.val, lpips=False).summary(),
                                                (ae, vae))))


def progress_text(p: Progress, time_left: timing.TimeLeft | None = None) -> str:
    """`time_left`: the training's own estimator (the plan, then the measured rate); without it
    the elapsed time per step, which counts the start-up as steps."""
    left = (time_left or timing.TimeLeft())(p.step, p.steps_total, p.seconds)
    return (f"epoch {p.epoch}/{p.epochs}, step {p.step:,}/{p.steps_total:,}, {p.seconds:.1f} s"
            f" (about {left:.0f} s left)")


# --- latent space and the beta trade-off ----------------------------------------------
IN_USE = "in use"
# The shipped pair whose VAE generates (zoo.py): the Latent space tab's default.
GENERATIVE_PAIR = GENERATE
GENERATIVE = SHIPPED + GENERATIVE_PAIR


def pair_choices(zoo: Zoo | None) -> list[tuple[str, str]]:
    """Choices of the Latent space tab: the pair in use (see 'Models in use'), or a shipped pair."""
    return [("the pair in use", IN_USE)] + [(f"shipped: {p}", SHIPPED + p) for p in (zoo.pairs() if zoo else [])]


def pair_named(session: Session, name: str) -> Pair:
    if not name or name == IN_USE:
        return session.pair()
    name = name.strip()
    if name.startswith(SHIPPED):
        name = SHIPPED + name.removeprefix(SHIPPED).strip()
    return session.pair_of(name if name.startswith((RUN, SHIPPED)) else SHIPPED + name)


def prior_pair_for(session: Session, pair: Pair, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = None if not pair.source.startswith("shipped:") else (pair.source, "prior", n, seed)
    return SHIPPED_ANSWERS.get(key, lambda: prior_pair(pair, n, seed))


def prior_pair(pair: Pair, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same draws z ~ N(0, I) decoded by the VAE and by the AE."""
    z = torch.randn((n, *pair.vae.latent_shape), generator=torch.Generator().manual_seed(seed))
    with classroom.computing():
        return sampling.prior_samples(pair.vae, z=z), sampling.prior_samples(pair.ae, z=z)


def code_map_for(session: Session, pair: Pair, kind: str, split: data.Split):
    """PCA map of the validation codes and its decoded 7x7 grid (shared when shipped)."""
    def compute():
        model = pair.vae if kind == "VAE" else pair.ae
        with classroom.computing():
            cmap = sampling.code_map(model, split.val)
            return cmap, sampling.decode_grid(model, cmap, 7)

    return SHIPPED_ANSWERS.get(shipped_key(session, pair, "code map", kind, split.all.image_size), compute)


def interpolations_for(session: Session, pair: Pair, two: data.ImageSet, steps: int) -> dict[str, np.ndarray]:
    key = shipped_key(session, pair, "interpolate", tuple(int(i) for i in two.ids), two.image_size, steps)
    return SHIPPED_ANSWERS.get(key, lambda: interpolations(pair, two.images[0], two.images[1], steps))


def interpolations(pair: Pair, a: np.ndarray, b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    with classroom.computing():
        return _interpolations(pair, a, b, steps)


def _interpolations(pair: Pair, a: np.ndarray, b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    return {"AE linear": sampling.interpolate(pair.ae, a, b, steps),
            "VAE linear": sampling.interpolate(pair.vae, a, b, steps),
            "VAE spherical": sampling.interpolate(pair.vae, a, b, steps, spherical=True)}


def beta_results(models: list[tuple[float, AutoEncoder]], split: data.Split, n_samples: int = 8,
                 seed: int = 0) -> list[dict]:
    """Rate (KL, nats/image) and distortion (MSE per pixel value) on the validation split per beta."""
    from .train import validate

    val = as_uint8_nchw(split.val)
    rows = []
    for beta, m in models:
        v = validate(m, val, beta, seed=seed)
        z = torch.randn((n_samples, *m.latent_shape), generator=torch.Generator().manual_seed(seed))
        rows.append({"beta": beta, "KL (nats/image)": v["val_kl"], "MSE per pixel": v["val_mse"],
                     "val PSNR": v["val_psnr"], "samples": sampling.prior_samples(m, z=z),
                     "recon": metrics.evaluate(m, split.val.subset(np.arange(min(n_samples, len(split.val)))), lpips=False).recon})
    return rows


def shipped_beta_results(session: Session) -> list[dict]:
    """beta_results of the shipped sweep on OpenMoji, computed once for the whole server."""
    models = shipped_betas(session)
    if not models:
        return []
    size = models[0][1].config.image_size

    def compute():
        with classroom.computing():
            return beta_results(models, openmoji_split(size))

    return SHIPPED_ANSWERS.get(("shipped: betas", size), compute)


def shipped_betas(session: Session) -> list[tuple[float, AutoEncoder]]:
    if not session.zoo:
        return []
    return [(e["train"]["beta"], session.zoo.load(e["name"]).model) for e in session.zoo.betas()]


def sweep_plan(plans: list[TrainSettings], n_train: int, n_val: int) -> tuple[int, float]:
    """An epochs sweep before it starts: optimiser steps per model in all, and estimated seconds."""
    steps = sum(steps_of(p, n_train) for p in plans)
    seconds = sum(timing.estimate_seconds([p.model_config(k) for k in ("ae", "vae")], n_train, n_val,
                                          p.train_config().epochs) for p in plans)
    return steps, seconds


def beta_plan(split: data.Split, image_size: int, n_betas: int, epochs: int,
              most: int) -> tuple[int, float, tuple[int, int, float] | None]:
    """What a beta sweep will do, before it starts (as plan_text for the Train tab): steps per beta,
    estimated seconds for the whole sweep, and, when the steps are too few to show the trade-off,
    (epochs, steps, seconds) that make about GOOD_STEPS per beta (None when `most` adds none)."""
    settings = TrainSettings(image_size=image_size, latent=BETA_LATENT, epochs=int(epochs))
    cfg, n, n_val = settings.model_config("vae"), len(split.train), len(split.val)
    steps = steps_of(settings, n)
    seconds = n_betas * timing.estimate_seconds([cfg], n, n_val, int(epochs))
    if steps >= FEW_STEPS:
        return steps, seconds, None
    per_epoch = steps_of(settings, n, 1)
    more = min(most, -(-GOOD_STEPS // per_epoch))
    if more <= epochs:
        return steps, seconds, None
    return steps, seconds, (more, more * per_epoch, n_betas * timing.estimate_seconds([cfg], n, n_val, more))


def train_betas(session: Session, split: data.Split, betas: list[float], epochs: int, seed: int = 0,
                on_progress=None, cap: float | None = None, on_wait=None) -> list[tuple[float, AutoEncoder]]:
    """A VAE per beta on this session's data, one after the other, each a run of the session.

    Every model starts from the same initial weights and sees the same batches, so they differ
    only in beta. A stop request ends the sweep after the model in training (which is kept).
    """
    cfg = TrainSettings(image_size=split.all.image_size, latent=BETA_LATENT).model_config("vae")
    base = TrainSettings(epochs=int(epochs), seconds=cap, seed=seed).train_config()
    session.stop.clear()
    budget.check_training([cfg], base.batch_size, n_images=len(split.all))
    est = len(betas) * timing.estimate_seconds([cfg], len(split.train), len(split.val), int(epochs))
    ticket = session.shared.slots.acquire(est, session.stop.is_set, on_wait or (lambda place, secs: None))
    try:
        return _train_betas(session, split, betas, cfg, base, seed, on_progress)
    finally:
        session.shared.slots.release(ticket)


def _train_betas(session, split, betas, cfg, base, seed, on_progress) -> list[tuple[float, AutoEncoder]]:
    out, series = [], session.new_series()
    for b in betas:
        torch.manual_seed(seed)
        m = build_model(cfg)
        t0 = time.perf_counter()
        hist = train_together({f"{b:g}": m}, split.train, split.val, base.with_(beta=float(b)), on_progress,
                              session.stop.is_set)[f"{b:g}"]
        if not hist.iter_loss:
            break
        scores = {"VAE": metrics.evaluate(m, split.val, lpips=False).summary()}
        record = RunRecord.of(BETA, preset=TRAIN_DEFAULT, image_size=split.all.image_size, latent=BETA_LATENT,
                              train=base.with_(beta=float(b)).to_dict(), histories={"vae": hist},
                              seconds=time.perf_counter() - t0, scores=scores, data=split.all.source,
                              n_train=len(split.train), series=series)
        session.add_run(record, {"vae": hist.to_dict()}, None, model=m)
        out.append((float(b), m))
        if hist.stopped_by != "epochs":
            break
    return out
