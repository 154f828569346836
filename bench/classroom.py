"""A class on one server: identical trainings pressed at once, and how many students it serves.

    python bench/classroom.py [--trainers 10] [--students 10,20,30,40,60] [--calls 3] [--queue 4]

Starts `python app.py` in a fresh process (tests/served.py: the shipped checkpoints, its own temp
folders) and prints:
  1. --trainers students press Train with the default settings at the same moment while 30
     others ask for a reconstruction (random draws of 10 images, seeds 0-2, LPIPS off): seconds from
     the press to each training's answer, how many trainings actually ran (status "a fresh run"),
     and the reconstructions' median and p95;
  2. for each number in --students, that many students asking for reconstructions at the same
     moment, --calls times each (LPIPS on, 10 random images, seeds spread as a class would:
     one in three on the default draw): p50 / p95 / max of the answer times;
  3. trainings with different seeds pressed at once (a queue): seconds to each answer, and the
     places in the queue their status showed.
Each line also gives the server's CPU seconds (its process and its training workers) per call.

Every student is a page session opened before the clock starts (heartbeat open, one request
made), as in a class whose pages are loaded. The clients speak the queue's HTTP protocol by hand
(tests/served.py's Bare: urllib and JSON): gradio_client costs about 0.12 s of CPU per call, and
on this 2-core machine 30 of them measured mostly themselves; students' browsers run on their own
machines. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench"), str(ROOT)]

from app_latency import p95  # noqa: E402
from common import cpu_name  # noqa: E402
from served import Bare, Served  # noqa: E402

from aevae.workbench import TrainSettings  # noqa: E402

PLACE = re.compile(r"place (\d+) in the queue")


def train_args(seed: int) -> list:
    d = TrainSettings()
    return [d.preset, d.image_size, d.latent, d.epochs, d.seconds, d.batch_size, d.lr, d.weight_decay, d.beta,
            seed, "openmoji", None, True]


def pages(app: Served, n: int) -> list[Bare]:
    """n students whose page is open: a heartbeat, and the first request (which makes the session)."""
    out = [Bare(app.url, app.fns).heartbeat() for _ in range(n)]
    with cf.ThreadPoolExecutor(min(n, 16)) as pool:
        assert all(ok for ok, _ in pool.map(lambda b: b.call("reconstruct", ["", 10, 0, False]), out))
    return out


def reconstruct(b: Bare, seed: int, lpips: bool) -> float:
    t = time.perf_counter()
    ok, out = b.call("reconstruct", ["", 10, seed, lpips], timeout=600)
    if not ok:
        raise RuntimeError(f"reconstruct failed: {out}")
    return time.perf_counter() - t


def close(clients: list[Bare]) -> None:
    for b in clients:
        b.close()


def class_presses_train(app: Served, trainers: int) -> None:
    tr, rc = pages(app, trainers), pages(app, 30)
    cpu, t0 = app.cpu(), time.perf_counter()

    def train(b):
        ok, out = b.call("train", train_args(0), timeout=900)
        return time.perf_counter() - t0, str(out[0] if ok else out)

    with cf.ThreadPoolExecutor(trainers + 30) as pool:
        jobs = [pool.submit(train, b) for b in tr]
        recs = sorted(pool.map(lambda i: reconstruct(rc[i], i % 3, False), range(30)))
        done = sorted(j.result() for j in jobs)
    fresh = sum("a fresh run" in s for _, s in done)
    failed = [s for _, s in done if "Done" not in s]
    print(f"{trainers} identical trainings pressed at once: answered after "
          f"{', '.join(f'{t:.1f}' for t, _ in done)} s; trainings actually run: {fresh}"
          f"{f'; FAILED: {failed[:2]}' if failed else ''}; 30 reconstructions meanwhile: "
          f"median {statistics.median(recs):.2f} s, p95 {p95(recs):.2f} s, max {recs[-1]:.2f} s; "
          f"server CPU {app.cpu() - cpu:.1f} s", flush=True)
    close(tr + rc)


def students(app: Served, n: int, calls: int) -> None:
    clients = pages(app, n)
    cpu = app.cpu()

    def student(k):
        return [reconstruct(clients[k], 0 if k % 3 == 0 else 1000 + k * 10 + j, True) for j in range(calls)]

    with cf.ThreadPoolExecutor(n) as pool:
        times = sorted(t for out in pool.map(student, range(n)) for t in out)
    used = app.cpu() - cpu
    print(f"{n:3d} students x {calls} reconstructions (LPIPS on) at once: p50 {statistics.median(times):.2f} s, "
          f"p95 {p95(times):.2f} s, max {times[-1]:.2f} s; server CPU {used:.1f} s "
          f"({used / len(times) * 1000:.0f} ms per call)", flush=True)
    close(clients)


def queue(app: Served, n: int) -> None:
    clients = pages(app, n)
    t0 = time.perf_counter()

    def train(i):
        seen = set()
        ok, out = clients[i].call("train", train_args(100 + i), timeout=900,
                                  on_message=lambda m: seen.update(PLACE.findall(str(m))))
        return time.perf_counter() - t0, sorted(seen, key=int), ok

    with cf.ThreadPoolExecutor(n) as pool:
        done = sorted(pool.map(train, range(n)))
    print(f"{n} different trainings pressed at once: answered after "
          + ", ".join(f"{t:.1f} s (queue places seen: {','.join(p) or '-'}{'' if ok else ', FAILED'})"
                      for t, p, ok in done), flush=True)
    close(clients)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trainers", type=int, default=10)
    ap.add_argument("--students", default="10,20,30,40,60")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--queue", type=int, default=4)
    args = ap.parse_args()
    print(f"machine: {cpu_name()}; default Train: {train_args(0)[:10]}", flush=True)
    t = time.perf_counter()
    with Served(startup_s=180) as app:
        print(f"app answered after {time.perf_counter() - t:.1f} s", flush=True)
        Bare(app.url, app.fns).call("reconstruct", ["", 10, 0, True])  # warm: models, data and LPIPS loaded
        if args.trainers:
            class_presses_train(app, args.trainers)
        for n in (int(v) for v in args.students.split(",") if v):
            students(app, n, args.calls)
        if args.queue:
            queue(app, args.queue)


if __name__ == "__main__":
    main()
