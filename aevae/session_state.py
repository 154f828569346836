"""One user's state (Session): its folders and notices, its runs and the pair in use, its upload
from loading to use, and the memory it holds. The store that keeps sessions is session_store.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import (
    classroom,
    data,
    resources,
    userdata,
)
from .datasets import OPENMOJI, load_user_images, openmoji_split, upload_key
from .models import AutoEncoder
from .runs import RUN, SHIPPED, Pair, Run, RunList, RunRecord
from .zoo import Zoo

KEEP_FOLDERS = 32  # output folders kept per session and group (one per call that makes files)


class NoModels(RuntimeError):
    """There is no model to use yet: nothing shipped and nothing trained in this session."""


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
        self.code_map = None  # analyses.ShownCodeMap: the last map drawn
        self.last: dict = {}  # the latest results shown per tab, for the report (e.g. analyses.ShownVariants)
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
