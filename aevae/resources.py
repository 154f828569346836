"""What a server's sessions hold, and the bounds on it: folders on disk, decoded data in memory,
the uploads they took in and the pixels they decoded. No UI imports.

- Folders: a process keeps its sessions' files in one folder (`app_folder`) holding a lock for
  the life of the process, so the next start removes folders of processes that ended
  (`remove_stale_folders`) and never one still in use by another process.
- Memory: decoded image data (uploads at each size a session uses, the shared OpenMoji sets)
  is held within a budget per session and one for the server (`DataMemory`, sizes from
  aevae/budget.py). Making room releases the least recently used data of idle owners, who are
  told and decode again from their kept file when they next need it.
- Uploads: a file in the web server's upload folder is moved into the session's folder once
  it is loaded (`adopt`), so it is not kept twice; a later request naming the old path (the
  page still shows the file, or another student uploaded the same bytes) finds the kept copy.
- Decoding: each session may decode SESSION_PIXELS per PIXEL_WINDOW_S (`Allowance`), on top of
  the cap per request (data.limits.MAX_DECODED_PIXELS); and uploads are decoded DECODE_SLOTS at a time
  (`decoding`), so that many large uploads at once take one core, not the trainings' too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import budget, data

try:  # a lock that ends with its process; without fcntl (Windows) stale folders are kept
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

APP_PREFIX = "aevae-app-"
LEGACY_PREFIX = "aevae-session-"  # a session's folder made outside an app folder
LOCK_NAME = ".lock"
LEGACY_AGE_S = 3 * 3600  # such a folder unchanged this long belongs to no live session
LOAD_WAIT_S = 60.0  # how long a load waits for memory that trainings and other loads hold
SESSION_PIXELS = 3 * data.limits.MAX_DECODED_PIXELS  # about 30 s of decoding on one core
PIXEL_WINDOW_S = 600.0
_locks: list = []  # open, locked lock files: closed (unlocked) when the process ends
# Uploads decoded at once: half the cores (one on a 2-core Space), the rest for trainings and
# requests. A load waits its turn (a cancelled one stops waiting).
DECODE_SLOTS = max(1, (os.cpu_count() or 2) // 2)
_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)


# ---------------------------------------------------------------- folders

def app_folder(base: str | Path | None = None) -> Path:
    """A new folder for this process's sessions under `base` (default: the temp folder)."""
    base = Path(base or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=APP_PREFIX, dir=base))
    f = open(root / LOCK_NAME, "w")  # noqa: SIM115 - stays open (and locked) while the process lives
    if fcntl is not None:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _locks.append(f)
    atexit.register(shutil.rmtree, root, True)
    return root


def _unused(root: Path) -> bool:
    """True when no live process holds this app folder's lock (taken here, then removed)."""
    if fcntl is None:
        return False
    try:
        f = open(root / LOCK_NAME, "a")  # noqa: SIM115
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def remove_stale_folders(base: str | Path | None = None, legacy_age_s: float = LEGACY_AGE_S,
                         legacy_base: str | Path | None = None) -> list[Path]:
    """Remove session folders left by processes that ended; returns what was removed.

    App folders under `base` whose lock nobody holds, and lone session folders in the temp
    folder unchanged for legacy_age_s (made by older versions, or by sessions made without an
    app folder; in `legacy_base`, default the temp folder). Folders of processes still
    running are never touched."""
    removed = []
    base = Path(base or tempfile.gettempdir())
    for root in base.glob(APP_PREFIX + "*") if base.is_dir() else []:
        if root.is_dir() and _unused(root):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    now = time.time()
    for folder in Path(legacy_base or tempfile.gettempdir()).glob(LEGACY_PREFIX + "*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > legacy_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:
            continue
    return removed


def app_owned(path: str | Path, root: Path | None) -> bool:
    """A file the app keeps in its folder `root` and removes itself: its lock, a session's kept
    upload or own images. The web server also lists such a file among those it received when a
    request names it as an input (Gradio accepts any path in its upload folder), so the sweep
    must not take that list's word for it."""
    if root is None or not within(path, root):
        return False
    parts = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).parts
    return len(parts) < 3 or parts[1] == "own" or parts[1].startswith("upload-")


def delete_old_files(file_sets: list[set[str]], keep: set[str], age_s: float, root: Path | None = None) -> int:
    """Delete the files named in file_sets (the web server's record of what it received and handed
    out) that are older than age_s by ctime, except those in keep, and drop them from their set.
    Each set is copied before it is read: the server adds to these sets from other threads while
    this runs (Gradio's own delete_cache loop iterates them live, raises "Set changed size during
    iteration" on the first such add, and never sweeps again). Returns how many were removed."""
    removed, now = 0, time.time()
    for names in list(file_sets):
        gone = set()
        for name in list(names):  # a copy made under the GIL: safe while others add
            if name in keep:
                continue
            if app_owned(name, root):  # removed by the app when its session ends
                gone.add(name)
                continue
            try:
                if now - os.lstat(name).st_ctime > age_s:
                    os.remove(name)
                    removed += 1
                    gone.add(name)
            except FileNotFoundError:
                gone.add(name)  # moved into a session's folder, or removed by someone else
            except OSError:
                continue
        names.difference_update(gone)
    return removed


def within(path: str | Path, folder: str | Path | None) -> bool:
    if folder is None:
        return False
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- uploads taken in

_adopted: dict[str, Path] = {}  # an upload's path as the web server gave it -> the kept copy
_adopted_lock = threading.Lock()
MAX_ADOPTED = 4096


def resolve(path: str | Path) -> Path:
    """The file to read for an uploaded path: itself, or the copy kept when it was taken in.

    The web server names an upload's folder by a keyed hash of its bytes (Gradio's hash seed):
    two students uploading the same zip get the same path, and only someone holding the same
    bytes can name it, so the copy kept for one may be read for the other."""
    p = Path(path)
    if p.is_file():
        return p
    with _adopted_lock:
        kept = _adopted.get(os.path.abspath(p))
    if kept is not None and kept.is_file():
        return kept
    raise data.DataError(f"{p.name}: this upload is no longer on the server (uploads are removed when "
                         "unused for a while, and a session's files when it ends): upload it again")


def adopt(src: Path, dest: Path, uploads: Path | None, keep_out: Path | None) -> Path:
    """Keep `src` as `dest`: hard-linked (no second copy on disk), or copied where the file system
    cannot link. An upload as the web server stored it (in a folder of its own, named by a hash,
    in `uploads`) is left where it is for the server's sweep, and remembered for resolve(): two
    students who upload the same file get the same path, and moving it away for the first made
    the second's load fail ("No such file or directory") when both loaded at once. Returns dest."""
    src, dest = Path(src), Path(dest)
    if os.path.abspath(src) == os.path.abspath(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = resolve(src) if not src.is_file() else src
    an_upload = (uploads is not None and os.path.abspath(src.parent.parent) == os.path.abspath(uploads)
                 and len(src.parent.name) == 64 and not within(src, keep_out))
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    if an_upload:
        with _adopted_lock:
            if len(_adopted) >= MAX_ADOPTED:
                for k in [k for k, v in _adopted.items() if not v.exists()]:
                    del _adopted[k]
            _adopted[os.path.abspath(src)] = dest
    return dest


# ---------------------------------------------------------------- decoding

@contextlib.contextmanager
def decoding(should_stop=None, what: str = "loading"):
    """Hold one of the server's DECODE_SLOTS while decoding; should_stop ends the wait (Cancelled)."""
    while not _decode_slots.acquire(timeout=0.2):
        if should_stop is not None and should_stop():
            raise data.Cancelled(f"{what}: cancelled while waiting to decode")
    try:
        yield
    finally:
        _decode_slots.release()


class Allowance:
    """Pixels one session may decode per PIXEL_WINDOW_S, on top of the cap per request."""

    def __init__(self, pixels: int = SESSION_PIXELS, window_s: float = PIXEL_WINDOW_S):
        self.pixels, self.window_s = pixels, window_s
        self._spent: list[tuple[float, int]] = []
        self._lock = threading.Lock()

    def used(self) -> int:
        now = time.monotonic()
        with self._lock:
            self._spent = [(t, n) for t, n in self._spent if now - t < self.window_s]
            return sum(n for _, n in self._spent)

    def budget(self) -> data.PixelBudget:
        """The budget for one load: the cap per request, or what is left of this session's."""
        used = self.used()
        left = max(self.pixels - used, 0)
        if left >= data.limits.MAX_DECODED_PIXELS:
            return data.PixelBudget()
        return data.PixelBudget(left, "with what this session may still decode",
                                f"this session decoded {used:,} pixels in the last {self.window_s / 60:.0f} "
                                f"minutes, and may decode {self.pixels:,}: wait a few minutes, or use fewer "
                                "or smaller images")

    def spend(self, budget: data.PixelBudget) -> None:
        with self._lock:
            self._spent.append((time.monotonic(), budget.used))


# ---------------------------------------------------------------- memory

MB = 1_000_000
SHARED = "shared"  # the owner of data shared by all sessions (the OpenMoji sets)


class Held:
    """Memory claimed in a DataMemory: while loading, then for the data loaded."""

    def __init__(self, memory: DataMemory, owner, key, nbytes: int):
        self.memory, self.owner, self.key, self.nbytes = memory, owner, key, nbytes
        self.release: Callable[[], None] | None = None  # set once loaded: frees the data
        self.used = time.monotonic()

    def loaded(self, nbytes: int, release: Callable[[], None] | None, key=None) -> None:
        """The load is done: count what it holds; `release` lets others' loads free it."""
        self.memory.settle(self, int(nbytes), release, key)

    def touch(self) -> None:
        self.used = time.monotonic()

    def drop(self) -> None:
        self.memory.drop(self)


class DataMemory:
    """Decoded data in memory, within a budget per session and one for the whole server.

    Owners are sessions (anything with `busy`) or SHARED. Room is made by releasing data
    least recently used first: first the claiming owner's other data beyond its share, then
    any owner's that is not busy training. Loads in progress are never released: a load
    that finds no room waits for them (up to LOAD_WAIT_S), then is refused.
    """

    def __init__(self, total: int | None = None, per_session: int | None = None):
        self._total, self._per = total, per_session
        self._lock = threading.Lock()
        self._entries: list[Held] = []
        self.released = 0  # entries released to make room

    @property
    def total(self) -> int:
        return self._total if self._total is not None else budget.data_budget_bytes()

    @property
    def per_session(self) -> int:
        return self._per if self._per is not None else budget.session_data_bytes()

    def held(self, owner=None) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries if owner is None or e.owner is owner)

    def claim(self, owner, key, nbytes: int, what: str, should_stop=None, wait_s: float = LOAD_WAIT_S) -> Held:
        """Room for `nbytes` of `owner`'s data (a bound of a load's peak: data.peak_bytes)."""
        share = self.total if owner is SHARED else self.per_session
        if nbytes > share:
            whose = "in all" if owner is SHARED else "per session"
            raise data.DataError(f"{what} needs about {nbytes / MB:,.0f} MB of memory decoded; this server "
                                 f"keeps at most {share / MB:,.0f} MB of decoded data {whose}: use a smaller "
                                 "image size or fewer images")
        deadline = time.monotonic() + wait_s
        while True:
            with self._lock:
                released = self._make_room(owner, nbytes, share)
                if released is not None:
                    held = Held(self, owner, key, nbytes)
                    self._entries.append(held)
                    break
            if should_stop is not None and should_stop():
                raise data.Cancelled(f"{what}: loading was cancelled")
            if time.monotonic() > deadline:
                raise data.DataError(f"{what}: the server's memory for decoded data ({self.total / MB:,.0f} MB) "
                                     "is held by trainings and loads in progress; try again in a minute, "
                                     "or use a smaller image size")
            time.sleep(0.25)
        for release in released:  # outside the lock: a release only drops references and leaves a note
            release()
        return held

    def _make_room(self, owner, nbytes: int, share: int) -> list | None:
        """Release entries until nbytes fit (their release calls are returned), or None."""
        def free(e: Held) -> bool:
            return e.release is not None and not getattr(e.owner, "busy", False)

        chosen: list[Held] = []
        own = [e for e in self._entries if e.owner is owner]
        own_bytes = sum(e.nbytes for e in own)
        for e in sorted(filter(free, own), key=lambda e: e.used):
            if own_bytes + nbytes <= share:
                break
            chosen.append(e)
            own_bytes -= e.nbytes
        if own_bytes + nbytes > share:
            return None
        total = sum(e.nbytes for e in self._entries) - sum(e.nbytes for e in chosen)
        for e in sorted((e for e in self._entries if free(e) and e not in chosen), key=lambda e: e.used):
            if total + nbytes <= self.total:
                break
            chosen.append(e)
            total -= e.nbytes
        if total + nbytes > self.total:
            return None
        for e in chosen:
            self._entries.remove(e)
        self.released += len(chosen)
        return [e.release for e in chosen]

    def settle(self, held: Held, nbytes: int, release: Callable[[], None] | None, key=None) -> None:
        """A claim's load is done: it holds `nbytes`, freed by `release` (see Held.loaded)."""
        with self._lock:
            held.nbytes, held.release, held.used = nbytes, release, time.monotonic()
            if key is not None:
                held.key = key

    def drop(self, held: Held) -> None:
        """A claim given back (its load failed, or its data went)."""
        with self._lock:
            if held in self._entries:
                self._entries.remove(held)

    def forget(self, owner) -> None:
        """Drop every entry of an owner that ended (its data goes with it)."""
        with self._lock:
            self._entries = [e for e in self._entries if e.owner is not owner]


DATA = DataMemory()  # the server's decoded data: all sessions of this process
