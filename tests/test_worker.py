"""Trainings in a worker process: the same models as in the server's process, stops that reach
it, and a worker that dies fails its training with a message while the server goes on."""

import os
import threading
from pathlib import Path

import pytest
import torch
from test_classroom import small_split

from aevae import training_jobs, worker
from aevae.train_settings import TrainSettings


def settings(epochs=2, seed=0) -> TrainSettings:
    return TrainSettings("default", 32, "8x4x4", epochs, 120.0, 16, 2e-3, 1e-5, 0.1, seed)


def without_times(h):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs]


@pytest.fixture(autouse=True)
def workers_on(monkeypatch):
    """These tests are about workers: on whatever the environment says (AEVAE_TRAIN_WORKERS=0 would
    otherwise train in this process and prove nothing)."""
    monkeypatch.setenv("AEVAE_TRAIN_WORKERS", "1")


def workers() -> set[int]:
    """This process's `python -m aevae.worker` children."""
    return {pid for pid in children()
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"aevae.worker"]}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the worker process")
def test_a_worker_trains_the_very_models_the_server_would(monkeypatch):
    split = small_split()
    seen, snaps, during = [], [], set()

    def progress(name, p):
        seen.append((name, p.step))
        during.update(workers())

    worker.POOL.close()  # no worker before: the one seen below is this training's
    assert not workers()
    m1, h1, _ = training_jobs.train_models(settings(), split, progress, None, lambda snap: snaps.append(snap.step))
    assert len(during) == 1, during  # it trained in a worker process, kept for the next training
    assert {w.proc.pid for w in worker.POOL._idle} == during
    assert os.getpriority(os.PRIO_PROCESS, during.pop()) == worker.NICE == 19  # the README's "nice 19"
    monkeypatch.setenv("AEVAE_TRAIN_WORKERS", "0")
    m2, h2, _ = training_jobs.train_models(settings(), split)
    for kind in ("ae", "vae"):
        a, b = m1[kind].state_dict(), m2[kind].state_dict()
        assert all(torch.equal(a[n], b[n]) for n in a), kind
        assert h1[kind].iter_loss == h2[kind].iter_loss and without_times(h1[kind]) == without_times(h2[kind])
        assert h1[kind].initial == h2[kind].initial and h1[kind].stopped_by == "epochs"
    steps = len(h1["ae"].iter_loss)
    assert ("vae", steps) in seen and ("ae", steps) in seen  # the last step is always reported
    assert snaps[0] == 0 and snaps[-1] == steps


def test_stop_reaches_the_worker_within_a_few_steps():
    steps = []
    stop = threading.Event()

    def progress(name, p):
        steps.append(p.step)
        if p.step >= 3:
            stop.set()

    models, hists, _ = training_jobs.train_models(settings(epochs=200), small_split(), progress, stop.is_set)
    assert hists["ae"].stopped_by == "stop request"
    assert len(hists["ae"].iter_loss) < 60  # 200 epochs would be 1000 steps


def children() -> set[int]:
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids |= {int(p) for p in (task / "children").read_text().split()}
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc to find the worker process")
def test_a_worker_that_dies_fails_its_training_and_the_next_one_works():
    before = children()
    started = threading.Event()

    def progress(name, p):
        started.set()

    def kill_it():
        started.wait(60)
        for pid in children() - before:
            os.kill(pid, 9)

    worker.POOL.close()  # a fresh worker, so the one killed is this training's
    before = children()
    threading.Thread(target=kill_it, daemon=True).start()
    with pytest.raises(worker.WorkerDied, match="ended unexpectedly"):
        training_jobs.train_models(settings(epochs=200), small_split(), progress)
    models, hists, _ = training_jobs.train_models(settings(epochs=1), small_split())
    assert hists["vae"].stopped_by == "epochs"
