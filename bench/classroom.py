"""A class on one server: identical trainings pressed at once, and how many students it serves.

    python bench/classroom.py [--trainers 10] [--students 10,20,30,40,60] [--calls 3]

Starts `python app.py` in a fresh process (the shipped checkpoints, this machine) and prints:
  1. --trainers students press Train with the default settings at the same moment while 30
     others ask for a reconstruction (random draws of 10 images, seeds 0-2, LPIPS off): seconds from
     the press to each training's answer, how many trainings actually ran (the log's "a fresh
     run"), and the reconstructions' median and p95;
  2. for each number in --students, that many students asking for reconstructions at the same
     moment, --calls times each (LPIPS on, 10 random images, seeds spread as a class would:
     one in three on the default draw): p50 / p95 / max of the answer times;
  3. trainings with different seeds pressed at once (a queue): seconds to each answer, and the
     place-in-queue messages seen.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app_latency import AppProcess, call, client, p95
from common import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aevae.workbench import TrainSettings  # noqa: E402


def train_args(seed: int) -> tuple:
    d = TrainSettings()
    return (d.preset, d.image_size, d.latent, d.epochs, d.seconds, d.batch_size, d.lr, d.weight_decay, d.beta,
            seed, "openmoji", None, True)


def class_presses_train(url: str, trainers: int) -> None:
    t0 = time.perf_counter()

    def train(i):
        status = call(client(url, None), *train_args(0), api_name="/train", timeout=900)[0]
        return time.perf_counter() - t0, status

    def reconstruct(i):
        t = time.perf_counter()
        call(client(url, None), "", 10, i % 3, False, api_name="/reconstruct")
        return time.perf_counter() - t

    with cf.ThreadPoolExecutor(trainers + 30) as pool:
        tr = [pool.submit(train, i) for i in range(trainers)]
        rc = [pool.submit(reconstruct, i) for i in range(30)]
        recs = [f.result() for f in rc]
        done = sorted(f.result() for f in tr)
    fresh = sum("a fresh run" in s for _, s in done)
    print(f"{trainers} identical trainings pressed at once: answered after "
          f"{', '.join(f'{t:.1f}' for t, _ in done)} s; trainings actually run: {fresh}; "
          f"30 reconstructions meanwhile: median {statistics.median(recs):.2f} s, p95 {p95(recs):.2f} s", flush=True)


def students(url: str, n: int, calls: int) -> None:
    times = []

    def student(k):
        c = client(url, None)
        out = []
        for j in range(calls):
            seed = 0 if k % 3 == 0 else k * 10 + j
            t = time.perf_counter()
            call(c, "", 10, seed, True, api_name="/reconstruct")
            out.append(time.perf_counter() - t)
        return out

    with cf.ThreadPoolExecutor(n) as pool:
        for out in pool.map(student, range(n)):
            times += out
    times.sort()
    print(f"{n:3d} students x {calls} reconstructions (LPIPS on) at once: p50 {statistics.median(times):.2f} s, "
          f"p95 {p95(times):.2f} s, max {times[-1]:.2f} s", flush=True)


def queue(url: str, n: int) -> None:
    t0 = time.perf_counter()

    def train(i):
        c = client(url, None)
        job = c.submit(*train_args(100 + i), api_name="/train")
        seen = set()
        while not job.done():
            for status in job.outputs()[-1:]:
                text = str(status[0]) if status else ""
                if "place" in text:
                    seen.add(text.split("place ")[1].split(" in")[0])
            time.sleep(0.5)
        job.result(timeout=900)
        return time.perf_counter() - t0, sorted(seen)

    with cf.ThreadPoolExecutor(n) as pool:
        done = sorted(pool.map(train, range(n)))
    print(f"{n} different trainings pressed at once: answered after "
          + ", ".join(f"{t:.1f} s (queue places seen: {','.join(p) or '-'})" for t, p in done), flush=True)


def watchers(url: str, n: int, seed: int) -> None:
    """One new training (a seed nobody used) watched by n clients: its training seconds."""
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(n) as pool:
        out = list(pool.map(lambda i: call(client(url, None), *train_args(seed), api_name="/train", timeout=900)[0],
                            range(n)))
    secs = out[0].split(" steps in ")[1].split(" s")[0] if " steps in " in out[0] else "?"
    print(f"one training watched by {n} clients: {secs} s of training, answered after "
          f"{time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trainers", type=int, default=10)
    ap.add_argument("--students", default="10,20,30,40,60")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--queue", type=int, default=4)
    ap.add_argument("--watchers", type=int, default=0, help="also: one training watched by 1 and by N clients")
    args = ap.parse_args()
    print(f"machine: {cpu_name()}; default Train: {train_args(0)[:10]}", flush=True)
    with tempfile.TemporaryDirectory() as logs, AppProcess(Path(logs)) as app:
        print(f"app answered after {app.wait_page():.1f} s", flush=True)
        call(client(app.url, None), "", 10, 0, True, api_name="/reconstruct")  # warm: models and data loaded
        if args.watchers:
            watchers(app.url, 1, 7)
            watchers(app.url, args.watchers, 8)
        if args.trainers:
            class_presses_train(app.url, args.trainers)
        for n in (int(v) for v in args.students.split(",") if v):
            students(app.url, n, args.calls)
        if args.queue:
            queue(app.url, args.queue)


if __name__ == "__main__":
    main()
