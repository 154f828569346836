"""A class on one server: what students pressing at the same moment get, and what it costs.

    python bench/classroom.py [--students 10,20,40] [--cases train,draws,ids,pages] [--queue 0]

Starts `python app.py` in a fresh process (tests/served.py: the shipped checkpoints, its own temp
folders), waits for its start-up work to end (the log's "shipped answers ready", at most
--settle s; an app without that line is given --settle s), and prints, for each number N of
students in --students:
  - cold page: one page opened the moment the app answers (before the wait above): seconds
    until each tab's first view arrived (printed once, before the rest);
  - train: N/4 students press Train with the default settings at the same moment and, 1 s
    later, the other 3N/4 press Reconstruct with the tab's defaults (the same draw, LPIPS on):
    seconds from the press to each training's answer, how many trainings ran, and the
    reconstructions' p50 / p95 / max (N = 40 is issue 27's 10 Trains + 30 Reconstructs);
  - draws: N different random draws at once (seeds 1..N, 10 images, LPIPS on): p50 / p95 / max
    and the server's CPU seconds per reconstruction;
  - ids: N different typed id lists at once (10 ids each, from the training part, LPIPS on):
    what a reconstruction costs when nothing about it was computed before;
  - pages: N pages opened at once (each: the page's queued load events, then each tab's first
    view, clicked one after another): seconds until every tab's first view has arrived, p50 / max
    over the students, and the server's CPU per page.
--queue K adds K trainings with different seeds pressed at once (the training queue).

Every student is a page session opened before the clock starts (heartbeat open, one request
made), as in a class whose pages are loaded, except in "pages", where opening is what is
measured. The clients speak the queue's HTTP protocol by hand (tests/served.py's Bare: urllib
and JSON): gradio_client costs about 0.12 s of CPU per call, and on this 2-core machine 30 of
them measured mostly themselves; students' browsers run on their own machines.
--root runs another checkout's app.py (e.g. the code before a change) with this bench.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench"), str(ROOT)]

import served  # noqa: E402
from app_latency import p95  # noqa: E402
from common import cpu_name  # noqa: E402
from served import Bare, Served  # noqa: E402

from aevae.datasets import openmoji_split  # noqa: E402
from aevae.train_settings import TrainSettings  # noqa: E402

PLACE = re.compile(r"place (\d+) in the queue")
DEFAULT_DRAW = ["", 10, 0, True]  # the Reconstructions tab as it opens


def train_args(seed: int) -> list:
    d = TrainSettings()
    return [d.preset, d.image_size, d.latent, d.epochs, d.seconds, d.batch_size, d.lr, d.weight_decay, d.beta,
            seed, "openmoji", None, True]


def pages(app: Served, n: int) -> list[Bare]:
    """n students whose page is open: a heartbeat, and the first request (which makes the session)."""
    out = [Bare(app.url, app.fns).heartbeat() for _ in range(n)]
    with cf.ThreadPoolExecutor(min(n, 16)) as pool:
        assert all(ok for ok, _ in pool.map(lambda b: b.call("load_picker", []), out))
    return out


def reconstruct(b: Bare, args: list) -> float:
    t = time.perf_counter()
    ok, out = b.call("reconstruct", args, timeout=600)
    if not ok:
        raise RuntimeError(f"reconstruct failed: {out}")
    return time.perf_counter() - t


def close(clients: list[Bare]) -> None:
    for b in clients:
        b.close()


def spread(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {statistics.median(times):.2f} s, p95 {p95(times):.2f} s, max {times[-1]:.2f} s"


def class_presses_train(app: Served, n: int) -> None:
    trainers = max(1, n // 4)
    tr, rc = pages(app, trainers), pages(app, n - trainers)
    cpu, t0 = app.cpu(), time.perf_counter()

    def train(b):
        ok, out = b.call("train", train_args(0), timeout=900)
        return time.perf_counter() - t0, str(out[0] if ok else out)

    with cf.ThreadPoolExecutor(n) as pool:
        jobs = [pool.submit(train, b) for b in tr]
        time.sleep(1)
        recs = list(pool.map(lambda b: reconstruct(b, DEFAULT_DRAW), rc))
        done = sorted(j.result() for j in jobs)
    fresh = sum("a fresh run" in s for _, s in done)
    failed = [s for _, s in done if "Done" not in s]
    print(f"{n:3d} students: {trainers} default Trains pressed at once, then {len(rc)} default Reconstructs: "
          f"trainings answered after {done[0][0]:.1f}-{done[-1][0]:.1f} s, trainings run: {fresh}"
          f"{f'; FAILED: {failed[:2]}' if failed else ''}; reconstructions {spread(recs)}; "
          f"server CPU {app.cpu() - cpu:.1f} s", flush=True)
    close(tr + rc)


def at_once(app: Served, n: int, args_of, what: str) -> None:
    clients = pages(app, n)
    cpu = app.cpu()
    with cf.ThreadPoolExecutor(n) as pool:
        times = list(pool.map(lambda k: reconstruct(clients[k], args_of(k)), range(n)))
    used = app.cpu() - cpu
    print(f"{n:3d} students, {what} at once: {spread(times)}; server CPU {used:.1f} s "
          f"({used / n * 1000:.0f} ms per reconstruction)", flush=True)
    close(clients)


def page_events(app: Served) -> tuple[list[tuple[int, list]], list[tuple[str, int, list]]]:
    """The page's queued load events, and each tab's first view (tab name, event, default inputs),
    read from the app's config as a browser does."""
    cfg = app.config()
    comps = {c["id"]: c for c in cfg["components"]}
    deps = {d["id"]: d for d in cfg["dependencies"]}

    def inputs(d):
        return [comps[i].get("props", {}).get("value") for i in d["inputs"]]

    loads = [(d["id"], inputs(d)) for d in deps.values()
             if d.get("queue") and d.get("backend_fn") and any(t[1] == "load" for t in d["targets"])]
    selects = {d["id"]: d for d in deps.values() if any(
        comps.get(t[0], {}).get("type") == "tabitem" and t[1] == "select" for t in d["targets"])}
    views = []
    for d in deps.values():  # a tab's select event, or the queued event it triggers (Variants)
        tab = next((comps[t[0]] for t in d["targets"] if comps.get(t[0], {}).get("type") == "tabitem"), None)
        if tab is None and d.get("trigger_after") in selects:
            first = selects[d["trigger_after"]]
            tab = comps[first["targets"][0][0]]
        if tab is not None and d.get("queue") and d.get("backend_fn"):
            name = str(tab.get("props", {}).get("label", tab["id"]))
            if name.startswith("__i18n__"):  # a translated label: its key
                name = json.loads(name.removeprefix("__i18n__")).get("key", name)
            views.append((name, d["id"], inputs(d)))
    return loads, views


def open_page(app: Served, loads, views) -> tuple[float, dict[str, float]]:
    """One page opened: its load events, then each tab clicked in turn; seconds until the
    last first view arrived, and each tab's own seconds."""
    b = Bare(app.url, app.fns).heartbeat()
    t0 = time.perf_counter()
    try:
        for fn, data in loads:  # one after the other: a bare client reads one answer stream at a time
            ok, out = b.call(fn, data, timeout=600)
            if not ok:
                raise RuntimeError(f"page load event {fn}: {out}")
        each = {}
        for name, fn, data in views:
            t = time.perf_counter()
            ok, out = b.call(fn, data, timeout=600)
            if not ok:
                raise RuntimeError(f"{name}: {out}")
            each[name] = time.perf_counter() - t
        return time.perf_counter() - t0, each
    finally:
        b.close()


def pages_at_once(app: Served, n: int) -> None:
    loads, views = page_events(app)
    cpu = app.cpu()
    with cf.ThreadPoolExecutor(n) as pool:
        done = list(pool.map(lambda _: open_page(app, loads, views), range(n)))
    used = app.cpu() - cpu
    totals = [t for t, _ in done]
    print(f"{n:3d} pages opened at once ({len(loads)} load events, {len(views)} first views each): every first "
          f"view there after p50 {statistics.median(totals):.2f} s, max {max(totals):.2f} s; "
          f"server CPU {used:.1f} s ({used / n * 1000:.0f} ms per page)", flush=True)


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


def settle(app: Served, limit: float) -> str:
    """Wait for the app's start-up work (its log line), at most `limit` seconds."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        ready = [line for line in app.log().splitlines() if "shipped answers ready" in line]
        if ready:
            return ready[0].split(": ", 1)[-1]
        time.sleep(1)
    return f"no 'shipped answers ready' line; waited {limit:.0f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", default="10,20,40")
    ap.add_argument("--cases", default="train,draws,ids,pages")
    ap.add_argument("--queue", type=int, default=0)
    ap.add_argument("--settle", type=float, default=300)
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose app.py is served")
    args = ap.parse_args()
    served.ROOT = Path(args.root).resolve()
    cases = set(args.cases.split(","))
    print(f"machine: {cpu_name()}; app: {served.ROOT}; default Train: {train_args(0)[:10]}", flush=True)
    t = time.perf_counter()
    with Served(startup_s=180) as app:
        print(f"app answered after {time.perf_counter() - t:.1f} s", flush=True)
        loads, views = page_events(app)
        total, each = open_page(app, loads, views)
        print(f"cold page (opened as the app answered): every first view after {total:.1f} s; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in each.items()), flush=True)
        print(f"start-up work: {settle(app, args.settle)}", flush=True)
        split = openmoji_split(TrainSettings().image_size)
        unseen = sorted(set(map(int, split.all.ids)) - set(map(int, split.val.ids)))  # never in a random draw
        used_ids = [0]
        for n in (int(v) for v in args.students.split(",") if v):
            if "train" in cases:
                class_presses_train(app, n)
            if "draws" in cases:
                at_once(app, n, lambda k: ["", 10, 1 + k, True], "different random draws (LPIPS on)")
            if "ids" in cases:  # images of the training part, each asked for once in the whole bench
                first = used_ids[0]
                at_once(app, n, lambda k, first=first: [
                    ", ".join(map(str, unseen[(first + k) * 10:(first + k + 1) * 10])), 10, 0, True],
                    "different typed ids (LPIPS on)")
                used_ids[0] += n
            if "pages" in cases:
                pages_at_once(app, n)
        if args.queue:
            queue(app, args.queue)


if __name__ == "__main__":
    main()
