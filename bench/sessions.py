"""Issue 18's cases against a served app: for each, the server's memory, CPU and time.

    python bench/sessions.py [--cpus 0,1] [--data-gb 1.2]

Serves `python app.py` (the shipped checkpoints) in a subprocess with its own temp and upload
folders (tests/served.py), optionally pinned to --cpus (a 2-vCPU Space: 0,1), and talks to it
as scripts and pages would: gradio_client, and bare HTTP (bare sessions have no page). Each
line: wall seconds, the server's CPU seconds (user + system, /proc/PID/stat), its RSS after
the case and its peak RSS so far (VmHWM), then what happened. --data-gb sets
AEVAE_DATA_MEMORY_GB (the memory for decoded data) so that a few uploads reach it.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import os
import re
import struct
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from common import cpu_name  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from served import Bare, Served  # noqa: E402

HTTPX = {"timeout": 120}  # httpx's 5 s default is too short for a busy server's API description
TRAIN = ["default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, 0, "openmoji", None, True]  # a few seconds


class Case:
    """Measures the server over a `with` block and prints one line."""

    def __init__(self, app: Served, label: str):
        self.app, self.label, self.note = app, label, ""

    def __enter__(self):
        self.t, self.cpu = time.monotonic(), self.app.cpu()
        return self

    def __exit__(self, *exc):
        wall, cpu = time.monotonic() - self.t, self.app.cpu() - self.cpu
        if exc[0] is not None:
            self.note = f"FAILED: {exc[1]!r}"[:160]
        print(f"  {self.label:<64} {wall:6.1f} s  CPU {cpu:6.1f} s  RSS {self.app.rss() / 1e9:5.2f} GB "
              f"(peak {self.app.peak_rss() / 1e9:5.2f})  {self.note}", flush=True)
        return True  # one failing case does not stop the others


def zip_listing(path: Path, content: bytes, names: list[str]) -> Path:
    """A zip holding `content` once whose central directory lists it under each name (by hand)."""
    crc, n, first = zlib.crc32(content), len(content), names[0].encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, n, n, len(first), 0) + first + content
    central = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, n, n, len(b), 0, 0, 0, 0,
                                   0, 0) + b for b in (name.encode() for name in names))
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(names), len(names), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def files(tmp: Path) -> dict[str, Path]:
    out = {}
    buf = io.BytesIO()
    Image.new("RGB", (4096, 4096), (90, 20, 200)).save(buf, format="PNG")
    big = buf.getvalue()
    out["same"] = zip_listing(tmp / "same-name.zip", big, ["photo.png"] * 5000)
    out["names"] = zip_listing(tmp / "many-names.zip", big, [f"{i:04}.png" for i in range(5000)])
    with zipfile.ZipFile(tmp / "copies.zip", "w") as z:  # genuine, distinct entries
        for i in range(200):
            z.writestr(f"{i:03}.png", big)
    out["copies"] = tmp / "copies.zip"
    with zipfile.ZipFile(tmp / "tiny.zip", "w") as z:  # 10,000 tiny images (trained at 128 px: 492 MB)
        rng = np.random.default_rng(0)
        for i in range(10_000):
            b = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(b, format="PNG")
            z.writestr(f"{i:05}.png", b.getvalue())
    out["tiny"] = tmp / "tiny.zip"
    return out


def page(app: Served) -> Bare:
    b = Bare(app.url, app.fns).heartbeat()
    b.call("load_picker", [])
    return b


def state(c: Client) -> tuple:
    table, *_ = c.predict(api_name="/runs")
    _, summary, recon, _ = c.predict("", 4, 0, False, api_name="/reconstruct")
    return table["data"], summary.split(".")[0], recon["data"]


def run(app: Served, f: dict[str, Path]) -> None:
    print("Sessions:")
    student = page(app)
    with Case(app, "a student's page session trains a small pair") as c:
        ok, out = student.call("train", TRAIN, timeout=600)
        c.note = "Done" if ok and "Done" in out[0] else str(out)[:100]
    with Case(app, "150 bare-HTTP sessions (/runs, 8 at a time)") as c:
        with cf.ThreadPoolExecutor(8) as pool:
            done = sum(pool.map(lambda _: Bare(app.url, app.fns).call("runs", [])[0], range(150)))
        ok, out = student.call("reconstruct", ["", 3, 0, False])
        c.note = f"{done} answered; the student's pair afterwards: {out[1].split('.')[0] if ok else out}"
    student.close()

    print("Decoding:")
    cl = Client(app.url, verbose=False, httpx_kwargs=HTTPX)
    for key, label in (("same", "zip listing one 4096x4096 PNG 5,000 times (same name), Train"),
                       ("names", "the same under 5,000 names, as images to reconstruct")):
        with Case(app, f"{label} ({f[key].stat().st_size / 1e3:.0f} KB)") as c:
            try:
                if key == "same":
                    cl.predict(*TRAIN[:10], "upload", [handle_file(str(f[key]))], False, api_name="/train")
                else:
                    cl.predict([handle_file(str(f[key]))], False, api_name="/reconstruct_uploads")
                c.note = "answered"
            except Exception as e:  # noqa: BLE001 - the refusal is the figure
                c.note = "refused: " + str(e)[:100]
    copies = handle_file(str(f["copies"]))
    with Case(app, f"200 stored copies of that PNG, to reconstruct ({f['copies'].stat().st_size / 1e6:.1f} MB)") as c:
        try:
            cl.predict([copies], False, api_name="/reconstruct_uploads")
        except Exception as e:  # noqa: BLE001
            c.note = "refused: " + str(e)[:100]
    with Case(app, "the same, cancelled after 2 s; CPU in the 3 s after the cancel") as c:
        job = cl.submit([copies], False, api_name="/reconstruct_uploads")
        time.sleep(2)
        job.cancel()
        time.sleep(0.5)
        cpu = app.cpu()
        time.sleep(3)
        c.note = f"{app.cpu() - cpu:.2f} CPU s after the cancel"
    alone = Client(app.url, verbose=False, httpx_kwargs=HTTPX)
    t = time.monotonic()
    alone.predict(*TRAIN[:9], 1, *TRAIN[10:], api_name="/train")
    solo = time.monotonic() - t
    with Case(app, "a small Train while 4 others reconstruct those 200 copies") as c:
        others = [Client(app.url, verbose=False, httpx_kwargs=HTTPX) for _ in range(4)]
        jobs = [o.submit([copies], False, api_name="/reconstruct_uploads") for o in others]
        t = time.monotonic()
        alone.predict(*TRAIN[:9], 2, *TRAIN[10:], api_name="/train")
        c.note = f"the Train took {time.monotonic() - t:.1f} s (alone: {solo:.1f} s)"
        for j in jobs:
            try:
                j.result(timeout=300)
            except Exception:  # noqa: BLE001, S110 - refused at the pixel cap, as above
                pass
        for o in others:
            o.close()

    print("Files and state:")
    with Case(app, "6 x /variants at once in one session vs alone") as c:
        together = [cl.submit("1-3", "(none)", 4, 2, 1.0, 100 + i, api_name="/variants") for i in range(6)]
        got = [np.load([p for p in j.result(timeout=300)[2] if p.endswith("gen_data.npy")][0]) for j in together]
        solo = [np.load([p for p in Client(app.url, verbose=False, httpx_kwargs=HTTPX).predict("1-3", "(none)", 4, 2, 1.0, 100 + i,
                                                                             api_name="/variants")[2]
                         if p.endswith("gen_data.npy")][0]) for i in range(6)]
        c.note = f"{sum(not np.array_equal(a, b) for a, b in zip(got, solo))} of 6 differ from the call alone"
    with Case(app, "6 x /reconstruct at once in one session: CSV vs table") as c:
        outs = [j.result(timeout=300) for j in [cl.submit("", 5, i, False, api_name="/reconstruct") for i in range(6)]]
        bad = sum([int(r.split(",")[0]) for r in open(o[3]).read().splitlines()[1:]] != [row[0] for row in o[2]["data"]]
                  for o in outs)
        c.note = f"{bad} of 6 CSVs differ from their table"
    np.save(Path(tempfile.gettempdir()) / "aevae-bench-mine.npy", np.zeros((40, 32, 32, 3), np.uint8))
    with Case(app, "Train refused (bad upload; 'already running' with an upload)") as c:
        before = state(alone)
        mine = handle_file(str(Path(tempfile.gettempdir()) / "aevae-bench-mine.npy"))
        try:
            alone.predict(*TRAIN[:10], "upload", [handle_file(str(f["same"]))], True, api_name="/train")
        except Exception:  # noqa: BLE001, S110 - refused: repeated entries
            pass
        refused = False
        job = alone.submit(*TRAIN[:3], 200, 120, 8, *TRAIN[6:9], 5, "openmoji", None, False, api_name="/train")
        while not (job.outputs() and re.search(r"step [1-9]", str(job.outputs()[-1]))) and not job.done():
            time.sleep(0.3)
        try:
            alone.predict(*TRAIN[:10], "upload", [mine], True, api_name="/train")
        except Exception as e:  # noqa: BLE001
            refused = "already running" in str(e)
        alone.predict(api_name="/stop")
        job.result(timeout=300)
        after = state(alone)
        c.note = (f"refused while running: {refused}; pair and data unchanged: {after[1:] == before[1:]}; "
                  f"runs {len(before[0])} -> {len(after[0])} (the stopped one kept)")

    print("Memory held (10,000 8x8 images trained at 128 px, 492 MB decoded, one session each):")
    sessions = []
    for i in range(5):
        s = page(app)
        sessions.append(s)
        with Case(app, f"session {i + 1}: upload, Train at 128 px with a 10 s cap") as c:
            up = s.upload(f["tiny"])
            ok, out = s.call("train", ["quick", 128, "8x32x32", 1, 10, 32, 3e-3, 1e-5, 0.1, i, "upload", [up], False],
                             timeout=900)
            c.note = "trained" if ok else out[:100]
    with Case(app, "session 1 asks again (its data was released?)") as c:
        sessions[0].notices.clear()
        ok, out = sessions[0].call("reconstruct", ["", 3, 0, False])
        c.note = (sessions[0].notices or ["no notice"])[0][:110]

    print("Disk:")
    with Case(app, "all sessions end (pages closed, clients closed)") as c:
        held = sum(p.stat().st_size for p in app.uploads.rglob("*") if p.is_file())
        for s in sessions:
            s.close()
        for x in (cl, alone):
            x.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = [p for p in app.files()["uploads"] if "session-" in p]
            if not left:
                break
            time.sleep(1)
        c.note = f"{held / 1e6:.0f} MB in the upload folder before; session files left after: {len(left)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", default="", help="CPUs the server may use, e.g. 0,1 (default: all)")
    ap.add_argument("--data-gb", default="1.2", help="AEVAE_DATA_MEMORY_GB for the server")
    args = ap.parse_args()
    cpus = {int(c) for c in args.cpus.split(",")} if args.cpus else None
    print(f"machine: {os.cpu_count()} CPUs ({cpu_name()}); server on CPUs {sorted(cpus) if cpus else 'all'}; "
          f"AEVAE_DATA_MEMORY_GB={args.data_gb}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        f = files(Path(tmp))
        print(f"(test files made in {time.monotonic() - t:.0f} s)")
        with Served({"AEVAE_DATA_MEMORY_GB": args.data_gb}, cpus=cpus) as app:
            print(f"server started: RSS {app.rss() / 1e9:.2f} GB")
            run(app, f)
            threading.Event().wait(0.1)
            if "Traceback" in app.log():
                print("the server's log holds a traceback:\n" + app.log()[-3000:])


if __name__ == "__main__":
    main()
