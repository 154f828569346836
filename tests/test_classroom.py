"""Identical trainings run once and are shared; trainings queue for the server's slots."""

import threading
import time

import numpy as np
import pytest
import torch
from conftest import HAS_PROC, child_pids, kill_new_children, make_images

from aevae import classroom, data, server_env, worker
from aevae.session_state import Session
from aevae.train_settings import TrainSettings
from aevae.training_jobs import PairJob


def small_split(seed: int = 0) -> data.Split:
    images = make_images(96, 32, seed)
    full = data.ImageSet(images, np.arange(96) % 2, ["discs", "squares"], [f"{i}.png" for i in range(96)],
                         np.arange(1, 97), "test shapes")
    train, val = full.split(0.25, 0)
    return data.Split(full, train, val, "test", 0.25, 0)


def settings(epochs=2, seed=0) -> TrainSettings:
    return TrainSettings("default", 32, "8x4x4", epochs, 120.0, 16, 2e-3, 1e-5, 0.1, seed)


def finish(job: PairJob, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done
    return job.result()


def test_identical_trainings_run_once_and_give_the_same_models():
    shared = classroom.SharedRuns()
    a, b, c = (Session(None, shared) for _ in range(3))
    split = small_split()
    first = PairJob(a, settings(), split)
    joined = PairJob(b, settings(), split)  # while the first runs
    ra, rb = finish(first), finish(joined)
    later = PairJob(c, settings(), small_split())  # same content, another object: same key
    rc = finish(later)
    assert (first.how, joined.how, later.how) == ("new", "running", "finished")
    assert shared.trainings_started == 1
    assert ra.pair.ae is rb.pair.ae is rc.pair.ae  # the very same models
    assert [r.number for r in (ra, rb, rc)] == [1, 1, 1]  # each is run 1 of its own session
    assert "already trained" in rc.record.trained and rc.record.ae.val_psnr == ra.record.ae.val_psnr


def test_other_settings_or_data_train_again():
    shared = classroom.SharedRuns()
    s = Session(None, shared)
    finish(PairJob(s, settings(seed=0), small_split()))
    finish(PairJob(s, settings(seed=1), small_split()))
    finish(PairJob(s, settings(seed=0), small_split(seed=5)))
    assert shared.trainings_started == 3 and len(s.runs) == 3


def test_stop_with_others_waiting_gives_a_copy_and_the_run_goes_on():
    shared = classroom.SharedRuns()
    a, b = Session(None, shared), Session(None, shared)
    split = small_split()
    ja, jb = PairJob(a, settings(epochs=40), split), PairJob(b, settings(epochs=40), split)
    while not ja.live.histories.get("vae") or len(ja.live.histories["vae"].iter_loss) < 3:
        time.sleep(0.02)
    ja.stop()
    ra = finish(ja, 30)
    assert ra.record.ended == "stopped by you" and "your copy" in ra.record.trained
    assert not jb.done  # the run goes on for the other student
    jb.stop()  # now nobody waits: the training itself stops
    rb = finish(jb, 30)
    assert rb.record.ended == "stopped by you"
    assert ra.pair.ae is not rb.pair.ae
    assert ra.record.steps <= rb.record.steps < 40 * 5
    assert len(shared) == 0  # a stopped run is not kept for reuse


@pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc to find the training's worker process")
@pytest.mark.skipif(not server_env.train_workers(), reason="AEVAE_TRAIN_WORKERS=0: no worker process to fail")
def test_a_failed_training_is_not_kept():
    """A training that fails (here its worker process is killed mid-training, as the out-of-memory
    killer would: a failure that does not depend on the CPU's arithmetic) gives its error to the
    student, and nothing is kept for reuse or in the session."""
    worker.POOL.close()  # the training takes a fresh worker, started after `before`
    before = child_pids()
    shared = classroom.SharedRuns()
    s = Session(None, shared)
    job = PairJob(s, settings(epochs=200), small_split())
    deadline = time.monotonic() + 60
    while not job.live.histories.get("vae") or not job.live.histories["vae"].iter_loss:
        assert time.monotonic() < deadline and not job.done, "the training never reached its first step"
        time.sleep(0.02)
    assert kill_new_children(before) >= 1
    with pytest.raises(worker.WorkerDied, match="training process ended unexpectedly.*nothing was kept"):
        finish(job)
    assert len(shared) == 0 and len(s.runs) == 0
    assert shared.trainings_started == 1


def test_slots_queue_first_come_first_served_and_can_be_left():
    slots = classroom.Slots(1)
    first = slots.acquire(10.0, lambda: False, lambda *a: None)
    order, places, cancel = [], [], threading.Event()

    def wait(name, cancelled=lambda: False):
        try:
            t = slots.acquire(5.0, cancelled, lambda place, secs: places.append((name, place, round(secs))))
        except classroom.Cancelled:
            order.append(f"{name} left")
            return
        order.append(name)
        slots.release(t)

    threads = [threading.Thread(target=wait, args=("b",))]
    threads[0].start()
    time.sleep(0.3)
    threads.append(threading.Thread(target=wait, args=("c", cancel.is_set)))
    threads[1].start()
    time.sleep(0.3)
    threads.append(threading.Thread(target=wait, args=("d",)))
    threads[2].start()
    time.sleep(0.3)
    seen = {}
    for name, place, secs in places:
        seen.setdefault(name, (place, secs))
    # place in the queue, and an estimate from what runs (10 s) and what waits ahead (5 s each)
    assert seen["b"][0] == 1 and 8 <= seen["b"][1] <= 10
    assert seen["c"][0] == 2 and 13 <= seen["c"][1] <= 15
    assert seen["d"][0] == 3 and 18 <= seen["d"][1] <= 20
    cancel.set()
    time.sleep(0.5)
    slots.release(first)
    for t in threads:
        t.join(5)
    assert order == ["c left", "b", "d"]
    assert slots.waiting() == 0


def test_the_key_is_the_content_not_the_file_name(tmp_path):
    images = make_images(40, 32)
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, images)
    ka = classroom.run_key([], {"seed": 0}, data.load_split(str(tmp_path / "a.npy"), 32))
    kb = classroom.run_key([], {"seed": 0}, data.load_split(str(tmp_path / "b.npy"), 32))
    np.save(tmp_path / "c.npy", images[::-1])
    kc = classroom.run_key([], {"seed": 0}, data.load_split(str(tmp_path / "c.npy"), 32))
    assert ka == kb != kc
    assert classroom.run_key([], {"seed": 0, "seconds": 5}, data.load_split(str(tmp_path / "a.npy"), 32)) == ka


def test_models_are_identical_tensor_by_tensor_when_trained_twice_apart():
    split = small_split()
    runs = [finish(PairJob(Session(None, classroom.SharedRuns()), settings(), split)) for _ in range(2)]
    for kind in ("ae", "vae"):
        a, b = (getattr(r.pair, kind).state_dict() for r in runs)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_memo_computes_an_answer_once_for_concurrent_callers():
    memo, calls = classroom.Memo(2), []

    def slow():
        calls.append(1)
        time.sleep(0.3)
        return object()

    with __import__("concurrent.futures").futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: memo.get("k", slow), range(8)))
    assert len(calls) == 1 and all(g is got[0] for g in got)
    memo.get("a", object), memo.get("b", object)  # the least recently used ("k") is dropped past 2
    assert memo.get("k", slow) is not got[0] and len(calls) == 2
    assert memo.get(None, lambda: 5) == 5  # no key: never shared


def test_a_queued_training_waits_its_turn_and_runs():
    shared = classroom.SharedRuns(slots=1)
    jobs = [PairJob(Session(None, shared), settings(seed=i), small_split()) for i in range(3)]
    # one slot: whichever thread takes it first trains, the two others wait with their place in the
    # queue (polled: the threads' order and timing depend on the machine's load)
    deadline, seen = time.monotonic() + 60, []
    while sum("place" in q for q in seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = [j.live.queued for j in jobs]  # one look at all three
    assert sorted(q[:len("waiting for a free training slot: place")] for q in seen) == \
        [""] + ["waiting for a free training slot: place"] * 2, seen
    runs = [finish(j) for j in jobs]
    assert [r.record.ended for r in runs] == ["finished"] * 3 and shared.trainings_started == 3


def test_the_plan_counts_in_words_that_agree():
    from aevae.i18n import tm
    from aevae.train_settings import plan_text

    one = data.ImageSet(make_images(1, 32), np.zeros(1, int), ["discs"], ["0.png"], np.arange(1), "one")
    plan = plan_text(settings(epochs=1), data.Split(one, one, one, "one", 0.0, 0))
    assert plan.startswith("1 epoch x 1 image = 1 step of batch 16 per model"), plan
    plan = plan_text(settings(epochs=3), small_split())
    assert plan.startswith("3 epochs x 72 images = 15 steps of batch 16 per model"), plan
    assert tm(plan, "zh-TW").startswith("3 個訓練週期 × 72 張影像 = 每個模型 15 步（批次大小 16）")


def test_finished_runs_are_kept_for_reuse_least_recently_used_dropped_past_24():
    assert classroom.MAX_FINISHED == 24
    runs = classroom.SharedRuns()  # the defaults
    trained = []

    def train(shared, should_stop):  # what a training returns, at once: no models needed to count
        trained.append(shared.key)
        return {}, {}, 0.0

    def press(key):
        shared, how, _ = runs.get_or_start(key, 1.0, train)
        assert shared.done.wait(30)
        return how

    assert [press(f"k{i}") for i in range(24)] == ["new"] * 24
    assert press("k0") == "finished"  # reused (and now the most recently used)
    assert press("k24") == press("k25") == "new"  # 26 finished: the least recently used go past 24
    assert press("k0") == press("k3") == press("k25") == "finished"
    assert press("k1") == "new"  # dropped: trained again
    assert trained.count("k1") == 2 and trained.count("k0") == 1 and len(set(trained)) == 26
