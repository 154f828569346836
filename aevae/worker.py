"""Trainings in worker processes, so the web server stays responsive while they run.

A training in the server's own process competes with every request for the interpreter (the
GIL): measured on 2 cores, ten students watching one training while thirty reconstructed waited
13-19 s (p95) for a reconstruction. A worker is a separate `python -m aevae.worker` process: it
receives the settings and the images, trains with pair_training.train_pair (the very code the
server would run, so the models are the same to the last bit), and streams back what students
watch: progress with the new loss values, the before/now strip, and at the end the weights.

The server keeps at most one worker per training slot and reuses it (starting one costs about
two seconds of importing torch); an idle worker exits after IDLE_EXIT_S. If a worker dies (the
operating system killed it for memory, say) the training fails with a message and the server
goes on. AEVAE_TRAIN_WORKERS=0 (server_env.train_workers) trains in the server's process instead
(for platforms that attach a GPU only to the server process, such as Hugging Face ZeroGPU).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .models import build_model
from .pair_training import Snapshot, train_pair
from .train import History, Progress, TrainingError

SEND_EVERY_S = 0.25  # progress messages at most this often (and at every epoch's end)
IDLE_EXIT_S = 900.0  # an idle worker exits; the next training starts a new one
START_TIMEOUT_S = 120.0
NICE = 19  # the workers run at the lowest priority: a request (short) always goes before a training (long)
HISTORY_LISTS = ("iter_loss", "iter_mse", "iter_kl")
# Errors a training may raise on purpose: re-raised in the server as themselves.
KNOWN_ERRORS = {"TrainingError": TrainingError, "ValueError": ValueError, "MemoryError": MemoryError}


# --- the messages between the server and a worker (pickled over the connection) ---------------
@dataclass
class TrainJob:  # server -> worker: train this pair
    cfgs: dict[str, ModelConfig]
    tcfg: TrainConfig
    train_images: np.ndarray
    val_images: np.ndarray
    snapshots: bool  # send the "before / now" strip


@dataclass
class Stop:  # server -> worker, during a training: end it after this batch
    pass


@dataclass
class CopyNow:  # server -> worker, during a training: send the models as they are at the next step
    pass


@dataclass
class ProgressReport:  # worker -> server
    progress: dict[str, dict]  # per model: Progress's fields but its history
    history: dict[str, dict]  # per model: what its History gained since the last report


@dataclass
class SnapshotReport:  # worker -> server: the strip; images and before only in the first
    images: np.ndarray | None
    before: np.ndarray | None
    now: np.ndarray
    step: int


@dataclass
class Weights:  # worker -> server: the models (numpy state dicts) and histories; seconds when done
    states: dict[str, dict[str, np.ndarray]]
    histories: dict[str, dict]
    seconds: float | None = None  # None: a copy asked for mid-training (CopyNow)


@dataclass
class Failed:  # worker -> server: the training raised
    error: str  # the exception's type name: one of KNOWN_ERRORS is raised again as itself
    message: str


PROGRESS_FIELDS = ("epoch", "epochs", "step", "steps_total", "seconds", "budget", "loss", "mse", "kl")


class WorkerDied(RuntimeError):
    pass


def _state(model) -> dict[str, np.ndarray]:
    # numpy, not tensors: multiprocessing would move tensors through shared memory handles
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _models(cfgs: dict[str, ModelConfig], states: dict) -> dict:
    models = {}
    for k, cfg in cfgs.items():
        m = build_model(cfg)
        m.load_state_dict({n: torch.from_numpy(a) for n, a in states[k].items()})
        models[k] = m.eval()
    return models


# ----------------------------------------------------------------------------- the worker's side
def _serve(conn: Connection) -> None:
    torch.set_num_threads(1)  # the models train in their own threads (train_together); this one only reports
    while conn.poll(IDLE_EXIT_S):
        try:
            msg = conn.recv()
        except EOFError:
            return
        if isinstance(msg, TrainJob):
            _job(conn, msg)


def _job(conn: Connection, job: TrainJob) -> None:
    cfgs = job.cfgs
    state = {"stop": False, "copy": False, "sent": 0.0, "epoch": 0, "models": None}
    sent_len = {k: {"lists": 0, "epochs": 0} for k in cfgs}
    last_kind = list(cfgs)[-1]

    def read_commands() -> None:
        while conn.poll(0):
            cmd = conn.recv()
            state["stop"] |= isinstance(cmd, Stop)
            state["copy"] |= isinstance(cmd, CopyNow)

    def should_stop() -> bool:
        read_commands()
        return state["stop"]

    def delta(k: str, h: History) -> dict:
        n, e = sent_len[k]["lists"], sent_len[k]["epochs"]
        out = {name: getattr(h, name)[n:] for name in HISTORY_LISTS}
        out.update(epochs=h.epochs[e:], initial=h.initial, images_seen=h.images_seen)
        sent_len[k].update(lists=len(h.iter_loss), epochs=len(h.epochs))
        return out

    progress: dict[str, Progress] = {}

    def on_progress(name, p: Progress) -> None:
        progress[name] = p
        if name != last_kind:
            return
        now = time.monotonic()
        if p.epoch != state["epoch"] or p.step == p.steps_total or now - state["sent"] >= SEND_EVERY_S:
            state.update(sent=now, epoch=p.epoch)
            conn.send(ProgressReport({k: {f: getattr(q, f) for f in PROGRESS_FIELDS} for k, q in progress.items()},
                                     {k: delta(k, q.history) for k, q in progress.items()}))
        if state["copy"]:  # a student pressed Stop while others wait: the models as they are now
            state["copy"] = False
            conn.send(Weights({k: _state(m) for k, m in state["models"].items()},
                              {k: q.history.to_dict() for k, q in progress.items()}))

    def on_snapshot(snap: Snapshot) -> None:
        first = snap.step == 0
        conn.send(SnapshotReport(snap.images if first else None, snap.before if first else None, snap.now, snap.step))

    try:
        models, hists, seconds = train_pair(cfgs, job.tcfg, job.train_images, job.val_images, on_progress,
                                            should_stop, on_snapshot if job.snapshots else None,
                                            lambda m: state.update(models=m))
        conn.send(Weights({k: _state(m) for k, m in models.items()}, {k: h.to_dict() for k, h in hists.items()},
                          seconds))
    except BaseException as e:  # told to the server, which shows it; the worker goes on
        conn.send(Failed(type(e).__name__, str(e)))
        if not isinstance(e, Exception):
            raise


def main() -> None:
    if hasattr(os, "nice"):  # requests (short) go before trainings (long): the page stays responsive
        os.nice(NICE)
    conn = Client(os.environ["AEVAE_WORKER_ADDRESS"], authkey=bytes.fromhex(os.environ["AEVAE_WORKER_KEY"]))
    try:
        _serve(conn)
    finally:
        conn.close()


# ----------------------------------------------------------------------------- the server's side
class Worker:
    """One worker process and its connection."""

    def __init__(self):
        key = secrets.token_bytes(16)
        listener = Listener(authkey=key)  # a Unix socket (a named pipe on Windows), this user's only
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "AEVAE_WORKER_ADDRESS": str(listener.address), "AEVAE_WORKER_KEY": key.hex(),
               "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.proc = subprocess.Popen([sys.executable, "-m", "aevae.worker"], env=env, cwd=root)
        got: dict = {}

        def accept():
            try:
                got["conn"] = listener.accept()
            except OSError as e:
                got["error"] = e

        t = threading.Thread(target=accept, daemon=True, name="aevae-worker-accept")
        t.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while t.is_alive() and self.proc.poll() is None and time.monotonic() < deadline:
            t.join(0.1)
        if "conn" not in got:
            listener.close()  # unblocks accept()
            self.proc.kill()
            raise WorkerDied(f"the training process did not start (exit code {self.proc.poll()})")
        listener.close()
        self.conn: Connection = got["conn"]

    def alive(self) -> bool:
        return self.proc.poll() is None and not self.conn.closed

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def train(self, cfgs: dict[str, ModelConfig], tcfg: TrainConfig, train_images: np.ndarray,
              val_images: np.ndarray, on_progress=None, should_stop=None, on_snapshot=None,
              copy_wanted=None, on_copy=None):
        """As pair_training.train_pair, run in the worker. `copy_wanted()` asks for the models as
        they are at the next step; they come to `on_copy(models, histories)`."""
        self.conn.send(TrainJob(cfgs, tcfg, np.ascontiguousarray(train_images), np.ascontiguousarray(val_images),
                                on_snapshot is not None))
        hists = {k: History() for k in cfgs}
        snap, stop_sent, copy_sent = None, False, False
        while True:
            if not stop_sent and should_stop is not None and should_stop():
                self.conn.send(Stop())
                stop_sent = True
            if not copy_sent and copy_wanted is not None and copy_wanted():
                self.conn.send(CopyNow())
                copy_sent = True
            try:
                if not self.conn.poll(0.1):
                    if self.proc.poll() is not None:
                        raise EOFError
                    continue
                msg = self.conn.recv()
            except (EOFError, OSError):
                code = self.proc.poll()
                raise WorkerDied(f"the training process ended unexpectedly (exit code {code}; most likely "
                                 "out of memory): nothing was kept; try a smaller batch, latent or image size") from None
            if isinstance(msg, ProgressReport):
                for k, d in msg.history.items():
                    h = hists[k]
                    for name in HISTORY_LISTS:
                        getattr(h, name).extend(d[name])
                    h.epochs.extend(d["epochs"])
                    h.initial, h.images_seen = d["initial"], d["images_seen"]
                if on_progress is not None:
                    for k, f in msg.progress.items():
                        on_progress(k, Progress(**f, history=hists[k]))
            elif isinstance(msg, SnapshotReport):
                if snap is None:
                    snap = Snapshot(msg.images, msg.before, msg.now, msg.step)
                else:
                    snap.now, snap.step = msg.now, msg.step
                if on_snapshot is not None:
                    on_snapshot(snap)
            elif isinstance(msg, Weights):
                models = _models(cfgs, msg.states)
                histories = {k: History.from_dict(h) for k, h in msg.histories.items()}
                if msg.seconds is not None:  # done
                    return models, histories, msg.seconds
                copy_sent = False
                if on_copy is not None:
                    on_copy(models, histories)
            elif isinstance(msg, Failed):
                raise KNOWN_ERRORS.get(msg.error, RuntimeError)(msg.message)


class Pool:
    """Idle workers kept for reuse; one per training running at once."""

    def __init__(self):
        self._idle: list[Worker] = []
        self._lock = threading.Lock()

    def take(self) -> Worker:
        with self._lock:
            while self._idle:
                w = self._idle.pop()
                if w.alive():
                    return w
                w.close()
        return Worker()

    def give_back(self, w: Worker) -> None:
        if w.alive():
            with self._lock:
                self._idle.append(w)
        else:
            w.close()

    def warm(self, n: int = 1) -> None:
        """Start workers ahead of the first training (in the background)."""
        def start():
            with self._lock:
                missing = n - len(self._idle)
            for _ in range(max(0, missing)):
                try:
                    self.give_back(Worker())
                except WorkerDied:
                    return
        threading.Thread(target=start, daemon=True, name="aevae-worker-warm").start()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            w.close()


POOL = Pool()


def train_pair_in_worker(cfgs, tcfg, train_images, val_images, **callbacks):
    """pair_training.train_pair in a worker process; a worker that breaks is not reused."""
    w = POOL.take()
    try:
        out = w.train(cfgs, tcfg, train_images, val_images, **callbacks)
    except BaseException as e:
        if isinstance(e, WorkerDied) or not isinstance(e, tuple(KNOWN_ERRORS.values())):
            w.proc.kill()  # its state is unknown (e.g. the server thread was interrupted mid-message)
            w.close()
        else:
            POOL.give_back(w)
        raise
    POOL.give_back(w)
    return out


if __name__ == "__main__":
    # Run as `python -m aevae.worker` this file is __main__: the messages must be aevae.worker's
    # classes, which the server unpickles, so the worker runs the imported module's main.
    from aevae.worker import main as worker_main

    worker_main()
