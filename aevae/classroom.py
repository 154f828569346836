"""One server, a whole class: identical trainings run once, and trainings queue for a few slots.

Same data + settings + seed give the same models (see train.py), so when ten students press
Train with the same settings, one training runs and all ten get its result: a finished one at
once, one in progress by joining it. A training belongs to the server, not to the student who
started it: it stops only when every student waiting for it has stopped or left. A student who
presses Stop while others still wait gets a copy of the models as they are at that moment.

Trainings that must wait for a slot queue first come, first served, with their place and an
estimate; leaving the queue (Stop, closing the tab) removes them from it.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from . import data, server_env

MAX_FINISHED = 24  # finished runs kept for reuse (least recently used dropped)


class Cancelled(RuntimeError):
    """The student stopped or left before the training started."""


def fingerprint(split: data.Split) -> str:
    """A hash of the data's content (images, labels, the split), never of a file name."""
    cached = getattr(split, "_aevae_fingerprint", None)
    if cached:
        return cached
    with _fingerprint_lock:  # ten trainings pressed at once hash the images once, not ten times
        return _fingerprint(split)


def _fingerprint(split: data.Split) -> str:
    cached = getattr(split, "_aevae_fingerprint", None)
    if cached:
        return cached
    h = hashlib.blake2b(digest_size=16)
    for part in (split.train, split.val):
        h.update(repr(part.images.shape).encode())
        h.update(part.images.tobytes())
        h.update(part.labels.astype("int64").tobytes())
    h.update(json.dumps(list(split.all.label_names)).encode())
    split._aevae_fingerprint = h.hexdigest()
    return split._aevae_fingerprint


_fingerprint_lock = threading.Lock()


def run_key(model_configs: list, train_config: dict, split: data.Split) -> str:
    """What decides a training's result: data, models, training settings (not the time cap)."""
    tc = {k: v for k, v in train_config.items() if k != "seconds"}
    text = json.dumps({"data": fingerprint(split), "models": [c.to_dict() for c in model_configs], "train": tc,
                       "torch": torch.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Slots:
    """At most `n` trainings at once; the others wait first come, first served."""

    def __init__(self, n: int | None = None):
        # Trainings at once on this server (AEVAE_TRAIN_CONCURRENCY, default 2: on a 2-core machine
        # each model of a pair uses one core); the memory budget per training assumes the same number.
        self.n = server_env.train_concurrency() if n is None else n
        self.running: dict[object, float] = {}  # ticket -> expected end (monotonic)
        self.queue: list[tuple[object, float]] = []  # (ticket, expected duration)
        self.cv = threading.Condition()

    def _wait_estimate(self, place: int) -> float:
        now = time.monotonic()
        free = sorted(max(0.0, end - now) for end in self.running.values())
        free += [0.0] * (self.n - len(free))
        heapq.heapify(free)
        for _, duration in self.queue[:place - 1]:
            heapq.heappush(free, heapq.heappop(free) + duration)
        return free[0] if free else 0.0

    def acquire(self, duration: float, cancelled: Callable[[], bool], on_wait: Callable[[int, float], None]):
        """Block until a slot is free (calling on_wait(place, seconds) meanwhile); returns a ticket."""
        ticket = object()
        with self.cv:
            self.queue.append((ticket, duration))
            try:
                while True:
                    place = next(i for i, (t, _) in enumerate(self.queue) if t is ticket) + 1
                    if place == 1 and len(self.running) < self.n:
                        self.queue.pop(0)
                        self.running[ticket] = time.monotonic() + duration
                        self.cv.notify_all()
                        return ticket
                    if cancelled():
                        raise Cancelled("left the queue before the training started")
                    on_wait(place, self._wait_estimate(place))
                    self.cv.wait(0.25)
            except BaseException:
                self.queue = [(t, d) for t, d in self.queue if t is not ticket]
                self.cv.notify_all()
                raise

    def release(self, ticket) -> None:
        with self.cv:
            self.running.pop(ticket, None)
            self.cv.notify_all()

    def waiting(self) -> int:
        with self.cv:
            return len(self.queue)


@dataclass
class Live:
    """What a training shows while it runs; read by every student who waits for it."""

    text: str = "starting"
    fraction: float = 0.0
    histories: dict = field(default_factory=dict)  # kind -> History (live objects)
    snapshot: object = None  # pair_training.Snapshot
    queued: str = ""  # "place 2 in the queue, about 40 s" while waiting for a slot


@dataclass
class Waiter:
    """One student waiting for a shared training."""

    stop: threading.Event = field(default_factory=threading.Event)
    copy: dict | None = None  # filled at a step boundary after stop: {"models", "histories"}
    copied: threading.Event = field(default_factory=threading.Event)


class Shared:
    """One training (running or finished) that any number of students wait for or reuse."""

    def __init__(self, key: str):
        self.key = key
        self.live = Live()
        self.waiters: list[Waiter] = []
        self.done = threading.Event()
        self.result = None  # (models dict, histories dict, seconds) once finished
        self.error: BaseException | None = None
        self.started = 0.0
        self.lock = threading.Lock()
        self.answers = Memo(4)  # what every student of a finished run gets alike (its scores)

    def join(self) -> Waiter:
        w = Waiter()
        with self.lock:
            self.waiters.append(w)
        return w

    def leave(self, w: Waiter) -> None:
        with self.lock:
            if w in self.waiters:
                self.waiters.remove(w)

    def nobody_waits(self) -> bool:
        with self.lock:
            return not any(not w.stop.is_set() for w in self.waiters)

    def copies_wanted(self) -> bool:
        """Students pressed Stop while others still wait: they are owed the models as they are now."""
        with self.lock:
            pending = [w for w in self.waiters if w.stop.is_set() and w.copy is None]
            # when everyone stopped, the training itself stops and all get its models
            return bool(pending) and not all(w.stop.is_set() for w in self.waiters)

    def give_copies(self, models: dict, histories: dict) -> None:
        """Copies of the models (taken at a step boundary) for each student who pressed Stop."""
        snap = {"models": models, "histories": histories}
        with self.lock:
            pending = [w for w in self.waiters if w.stop.is_set() and w.copy is None]
        for w in pending:
            w.copy = snap
            w.copied.set()


class SharedRuns:
    """The server's trainings, keyed by what decides their result."""

    def __init__(self, slots: int | None = None, keep: int = MAX_FINISHED):
        self.slots = Slots(slots)
        self.keep = keep
        self._runs: OrderedDict[str, Shared] = OrderedDict()
        self._lock = threading.Lock()
        self.trainings_started = 0  # trainings actually run (the rest were reused)

    def get_or_start(self, key: str, estimate: float, train: Callable[[Shared, Callable[[], bool]], tuple]
                     ) -> tuple[Shared, str, Waiter]:
        """The shared run for `key`, how it was found ("finished", "running" or "new"), and the
        caller's place among those waiting for it (joined before any training thread starts, so
        a new run never sees nobody waiting).

        `train(shared, should_stop)` runs in a server thread once a slot is free and returns
        (models, histories, seconds).
        """
        with self._lock:
            s = self._runs.get(key)
            if s is not None and (s.error is None):
                self._runs.move_to_end(key)
                return s, "finished" if s.done.is_set() else "running", s.join()
            s = self._runs[key] = Shared(key)
            waiter = s.join()
            self.trainings_started += 1
            self._trim()
        threading.Thread(target=self._run, args=(s, estimate, train), daemon=True,
                         name="aevae-train-shared").start()
        return s, "new", waiter

    def _run(self, s: Shared, estimate: float, train) -> None:
        def on_wait(place, seconds):
            s.live.queued = f"waiting for a free training slot: place {place} in the queue, about {seconds:.0f} s"

        ticket = None
        try:
            ticket = self.slots.acquire(estimate, s.nobody_waits, on_wait)
            s.live.queued = ""
            s.started = time.monotonic()
            s.result = train(s, s.nobody_waits)
            if s.result[1] and any(h.stopped_by != "epochs" for h in s.result[1].values()):
                self._forget(s)  # cut short or stopped: not the planned run, so not reusable
        except BaseException as e:  # handed to every waiter; the run is not kept
            s.error = e
            self._forget(s)
        finally:
            if ticket is not None:
                self.slots.release(ticket)
            s.done.set()

    def _forget(self, s: Shared) -> None:
        with self._lock:
            if self._runs.get(s.key) is s:
                del self._runs[s.key]

    def _trim(self) -> None:
        finished = [k for k, s in self._runs.items() if s.done.is_set()]
        for k in finished[:max(0, len(finished) - self.keep)]:
            del self._runs[k]

    def __len__(self) -> int:
        return len(self._runs)


class Memo:
    """Answers computed once and shared: a bounded, least-recently-used map whose values are
    computed by the first caller while identical concurrent callers wait for that result."""

    def __init__(self, size: int = 256):
        self.size = size
        self._done: OrderedDict = OrderedDict()
        self._pending: dict = {}
        self._lock = threading.Lock()
        self.computed = 0  # how many answers were actually computed

    def get(self, key, compute: Callable[[], object]):
        if key is None:
            return compute()
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            future = self._pending.get(key)
            owner = future is None
            if owner:
                future = self._pending[key] = Future()
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as e:
            with self._lock:
                self._pending.pop(key, None)
            future.set_exception(e)
            raise
        with self._lock:
            self.computed += 1
            self._pending.pop(key, None)
            self._done[key] = value
            while len(self._done) > self.size:
                self._done.popitem(last=False)
        future.set_result(value)
        return value


_compute_slots: list[threading.BoundedSemaphore] = []
_compute_lock = threading.Lock()


def _compute() -> threading.BoundedSemaphore:
    """The server's compute slots (server_env.compute_slots: one per core by default), made on first
    use, once. A request's batch is small (10 to 64 images): torch's threads would spend more CPU
    waiting for each other than they save, the more so beside a training (measured: 0.05 s of CPU
    per reconstruction on one thread, 0.5 s on two on a busy machine)."""
    with _compute_lock:
        if not _compute_slots:
            _compute_slots.append(threading.BoundedSemaphore(server_env.compute_slots()))
        return _compute_slots[0]


_HOLDING = threading.local()


@contextmanager
def computing():
    """Hold a compute slot while models run for a request: requests answered from memory never
    wait here, and concurrent computations take turns instead of crowding the cores. A thread
    that holds one already goes on (nested calls)."""
    if getattr(_HOLDING, "depth", 0):
        _HOLDING.depth += 1
        try:
            yield
        finally:
            _HOLDING.depth -= 1
        return
    with _compute():
        _HOLDING.depth = 1
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # set back below: a training in this process keeps its own
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            _HOLDING.depth = 0
