"""The app under load: API latency, cold start, memory and 30 clients at once, over loopback.

    python bench/app_latency.py [--calls 30] [--cold-repeats 3] [--clients 30] [--quick] [--latency-only]

With gradio_client, against the app on a free 127.0.0.1 port (AEVAE_CHECKPOINTS picks the shipped
models, as for the app; the default AE/VAE pair must be in the manifest):
  - latency of /reconstruct (10 random validation images, a new seed per call) and /variants
    (report A's 20 ids x 5 variants), median and p95 over --calls calls after one warm-up call,
    LPIPS off, and LPIPS on (its weights ship in checkpoints/; if they cannot load: skipped, and why);
    the app is served in this process (app.serve(block=False)), times are as a client sees them
    (request, queue, work, result files downloaded);
  - cold start: `python app.py --port P` in a fresh process, seconds from the process start to
    HTTP 200 on / and to the first /reconstruct answer; medians over --cold-repeats;
  - memory of a fresh `python app.py`: RSS (VmRSS) after start, idle after one /reconstruct
    (the default pair and the data loaded), and the peak RSS (VmHWM, reset first where the
    kernel allows) during one /train of --train-seconds with the default preset;
  - --clients clients (threads, each its own Client) calling /reconstruct at the same moment:
    how many succeed, p50/p95.
Gradio analytics are turned off and LPIPS never downloads (AEVAE_NO_DOWNLOAD=1): all traffic
stays on 127.0.0.1. Every wait is bounded. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported; inherited by app.py runs
os.environ["AEVAE_NO_DOWNLOAD"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradio_client import Client  # noqa: E402

from aevae.config import PRESETS  # noqa: E402
from aevae.lpips_alex import LPIPSUnavailable, load_lpips  # noqa: E402
from aevae.zoo import DEFAULT_DIR, Zoo  # noqa: E402

VARIANT_IDS = "1-5, 226-230, 841-845, 1471-1475"  # report A's choose_id list
CALL_TIMEOUT = 120.0  # seconds for any one API call
START_TIMEOUT = 120.0  # seconds for a fresh app.py to answer on /
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))  # linear interpolation between order statistics


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.0f} ms   p95 {p95(values) * 1000:7.0f} ms"


def client(url: str, downloads: Path | None) -> Client:
    """downloads=None: time the answer only (a browser then fetches the images in parallel);
    a folder: gradio_client also downloads every output file, one after another."""
    return Client(url, verbose=False, analytics_enabled=False,
                  download_files=str(downloads) if downloads else False)


def call(c: Client, *args, api_name: str, timeout: float = CALL_TIMEOUT):
    return c.submit(*args, api_name=api_name).result(timeout=timeout)


def reconstruct_args(seed: int, lpips: bool) -> tuple:
    return ("", 10, seed, lpips)


def variants_args(seed: int) -> tuple:
    return (VARIANT_IDS, "(none)", 4, 5, 1.0, seed)


def timed(fn, n: int) -> list[float]:
    fn(n)  # warm-up (its own seed), not counted
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------- in-process server


def latency(url: str, calls: int, downloads: Path) -> None:
    try:
        load_lpips(allow_download=False)
        lpips_modes, why = (False, True), ""
    except LPIPSUnavailable as e:
        lpips_modes, why = (False,), str(e)
    for label, folder in (("answer only", None), ("answer + downloading every output file", downloads)):
        c = client(url, folder)
        print(f"latency over {calls} calls each (after 1 warm-up call), gradio_client, {label}:")
        for lp in lpips_modes:
            t = timed(lambda i, lp=lp, c=c: call(c, *reconstruct_args(i, lp), api_name="/reconstruct"), calls)
            print(f"  /reconstruct  10 images, LPIPS {'on ' if lp else 'off'}   {ms(t)}", flush=True)
        t = timed(lambda i, c=c: call(c, *variants_args(i), api_name="/variants"), calls)
        print(f"  /variants     20 ids x 5 (no LPIPS)  {ms(t)}", flush=True)
    if why:
        print(f"  /reconstruct  LPIPS on: skipped, LPIPS unavailable here: {why}")


def crowd(url: str, n: int, downloads: Path) -> None:
    """n clients, each its own Client in its own thread, call /reconstruct at the same moment."""
    clients: list[Client | None] = [None] * n
    spans: list[tuple[float, float] | None] = [None] * n
    errors: list[str] = []
    ready = threading.Barrier(n + 1)

    def worker(k: int) -> None:
        try:
            clients[k] = client(url, downloads / f"c{k}")
        except Exception as e:  # counted below
            errors.append(f"client {k}: {type(e).__name__}: {e}")
        try:
            ready.wait(timeout=CALL_TIMEOUT)
        except threading.BrokenBarrierError:
            return
        if clients[k] is None:
            return
        t0 = time.perf_counter()
        try:
            call(clients[k], *reconstruct_args(k, False), api_name="/reconstruct")
            spans[k] = (t0, time.perf_counter())
        except Exception as e:
            errors.append(f"call {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=CALL_TIMEOUT)
    except threading.BrokenBarrierError:
        errors.append("not every client was ready in time")
    deadline = time.perf_counter() + CALL_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    ok = [s for s in spans if s is not None]
    done = [end - start for start, end in ok]
    line = f"{n} clients at once on /reconstruct: {len(done)}/{n} succeeded"
    if done:
        line += f" within {max(e for _, e in ok) - min(s for s, _ in ok):.1f} s"
        line += f"; p50 {statistics.median(done) * 1000:.0f} ms, p95 {p95(done) * 1000:.0f} ms"
    print(line, flush=True)
    for e in errors[:5]:
        print(f"  {e}")


# ---------------------------------------------------------------- fresh app.py processes


class AppProcess:
    """`python app.py --port P` in a fresh process; stopped (by its own pid) on exit."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(log_dir / f"app-{self.port}.log", "w")  # closed in __exit__
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> AppProcess:
        return self

    def wait_page(self) -> float:
        """Seconds from the process start to HTTP 200 on /."""
        while time.perf_counter() - self.t0 < START_TIMEOUT:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with NO_PROXY.open(self.url, timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.t0
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"app.py did not answer on / within {START_TIMEOUT:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-20:])

    def status(self, key: str) -> int:
        """A /proc/PID/status field in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def reset_peak(self) -> bool:
        try:  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def cold_start(repeats: int, logs: Path, downloads: Path) -> None:
    pages, firsts = [], []
    for _ in range(repeats):
        with AppProcess(logs) as app:
            pages.append(app.wait_page())
            c = client(app.url, downloads)
            call(c, *reconstruct_args(0, False), api_name="/reconstruct")
            firsts.append(time.perf_counter() - app.t0)
    print(f"cold start of `python app.py` ({repeats} runs, medians): page answers 200 after "
          f"{statistics.median(pages):.2f} s, first /reconstruct answered after "
          f"{statistics.median(firsts):.2f} s  (runs: {', '.join(f'{p:.2f}/{f:.2f}' for p, f in zip(pages, firsts))})",
          flush=True)


def memory(train_seconds: int, logs: Path, downloads: Path) -> None:
    mb = 1024 * 1024
    latent = PRESETS["default"].model.latent
    with AppProcess(logs) as app:
        app.wait_page()
        started = app.status("VmRSS")
        c = client(app.url, downloads)
        call(c, *reconstruct_args(0, False), api_name="/reconstruct")
        time.sleep(2)  # idle
        idle = app.status("VmRSS")
        reset = app.reset_peak()
        t0 = time.perf_counter()
        status, *_ = call(c, "default", 64, latent, 100, train_seconds, 64, 2e-3, 1e-5, 0.1, 0,
                          "openmoji", None, True, api_name="/train", timeout=train_seconds + CALL_TIMEOUT)
        took = time.perf_counter() - t0
        peak = app.status("VmHWM")
        after = app.status("VmRSS")
    done = "done" if "Done" in str(status) or "CUT SHORT" in str(status) else f"status: {str(status)[:80]!r}"
    print(f"memory of a fresh `python app.py`: RSS {started / mb:.0f} MB after start, "
          f"{idle / mb:.0f} MB idle with the default pair and data loaded; peak RSS (VmHWM"
          f"{', reset before' if reset else ', since start'}) {peak / mb:.0f} MB during one "
          f"{train_seconds} s /train ({latent}, {took:.1f} s, {done}), {after / mb:.0f} MB after", flush=True)


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, help="timed calls per endpoint and LPIPS setting (30)")
    ap.add_argument("--cold-repeats", type=int, help="fresh app.py processes to time (3)")
    ap.add_argument("--clients", type=int, help="clients calling /reconstruct at once (30)")
    ap.add_argument("--train-seconds", type=int, help="budget of the /train call for the peak RSS (10)")
    ap.add_argument("--latency-only", action="store_true", help="only the latency part (no crowd, "
                    "cold start or memory)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 3 calls, 1 cold start, 5 clients, a 3 s /train (unless given)")
    args = ap.parse_args()
    defaults = (3, 1, 5, 3) if args.quick else (30, 3, 30, 10)
    for name, value in zip(("calls", "cold_repeats", "clients", "train_seconds"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)

    folder = os.environ.get("AEVAE_CHECKPOINTS") or str(DEFAULT_DIR)
    names = {e["name"] for e in Zoo(folder).entries}
    if not {"default-ae", "default-vae"} <= names:
        sys.exit(f"{folder}: the manifest lacks the default AE/VAE pair. Build a quick zoo and "
                 "point the app at it:\n  python -m aevae.zoo_build build --quick --out /tmp/benchzoo\n"
                 "  AEVAE_CHECKPOINTS=/tmp/benchzoo python bench/app_latency.py --quick")
    print(f"machine: {nproc()} CPUs ({cpu_name()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; checkpoints: {folder}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="app_latency-"))
    try:
        import app  # after the environment above; loads gradio and reads the manifest

        port = free_port()
        demo = app.serve("127.0.0.1", port, block=False)
        try:
            url = f"http://127.0.0.1:{port}/"
            latency(url, args.calls, tmp / "dl")
            if not args.latency_only:
                crowd(url, args.clients, tmp / "crowd")
        finally:
            demo.close()
        if not args.latency_only:
            cold_start(args.cold_repeats, tmp, tmp / "dl")
            memory(args.train_seconds, tmp, tmp / "dl")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
