"""The limits of issues 17 and 18: the largest allowed training and upload, and hostile files.

    python bench/limits.py [--space-gib 16] [--steps 3] [--skip-training]
    python bench/limits.py --calibrate    # the estimate against 5 mid-sized trainings, 6 steps each

Prints, each measured in a fresh process (peak RSS = VmHWM, reset first where the kernel
allows, minus the RSS before the work):
  - the largest training the budget allows: report B's preset at 128 px, the largest batch
    that check_training accepts on a --space-gib machine with two trainings at once
    (AE + VAE, OpenMoji-sized data), next to the budget and the estimate; then --steps real
    steps at that batch and one validation pass, with the peak RSS;
  - the largest allowed upload: 10,000 images (a zip of 128x128 PNGs, and a .npy) loaded at
    128 px through load_split, seconds and peak RSS; and what the train/validation views
    save against ImageSet.split()'s copies;
  - the seconds (and peak RSS) to refuse each hostile file: a 60,000-image .npz of blank 64x64
    images, a zip whose directory lists one 4096x4096 PNG 5,000 times (same name; and under
    5,000 names), 200 stored copies of that PNG, and 200 of a 4096x4096 JPEG photo (which
    draft() decodes at 1/8 scale, so it is accepted: its time is printed), the last two also
    as a reconstruction upload (max_images=64).
Figures only: nothing is asserted. Hostile files are written to a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from common import cpu_name
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aevae import budget, data  # noqa: E402
from aevae.config import preset  # noqa: E402

GIB = 2**30


def status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(v) * 1024 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", text)}


# ---------------------------------------------------------------- one case, in a fresh process

def case(kind: str, path: str, extra: str) -> None:
    """Run one load in this (fresh) process and print {seconds, peak, result} as JSON."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    before = status()
    t = time.perf_counter()
    result: dict = {}
    try:
        if kind == "load":
            s = data.load_dataset(path, 128, max_images=int(extra) if extra else None)
            result = {"ok": f"{len(s)} images", "nbytes": s.images.nbytes}
        elif kind == "split":
            split = data.load_split(path, 128)
            result = {"ok": f"{len(split.train)} train / {len(split.val)} val",
                      "held": split.all.images.nbytes}
        elif kind == "copies":  # what load_split held before: the full set and copies of both parts
            full = data.load_dataset(path, 128)
            train, val = full.split(0.1, 0)
            result = {"ok": f"{len(train)} train / {len(val)} val",
                      "held": full.images.nbytes + train.images.nbytes + val.images.nbytes}
    except (data.DataError, ValueError) as e:
        result = {"refused": str(e)}
    seconds = time.perf_counter() - t
    after = status()
    print(json.dumps({"seconds": seconds, "peak": after["VmHWM"] - before["VmRSS"],
                      "rss_after": after["VmRSS"] - before["VmRSS"], **result}))


def run_case(kind: str, path: Path, extra: str = "") -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", kind, str(path), extra], capture_output=True,
                         text=True, timeout=3600, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- hostile and large files

def zip_listing(path: Path, content: bytes, names: list[str]) -> Path:
    """`content` stored once, listed under each name in the central directory (all at offset 0)."""
    crc, n = zlib.crc32(content), len(content)
    first = names[0].encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, n, n, len(first), 0) + first + content
    central = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, n, n, len(b := name.encode()),
                                   0, 0, 0, 0, 0, 0) + b for name in names)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(names), len(names), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo(side: int) -> Image.Image:
    """A photo-like picture: smooth colour fields with a little grain."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = np.stack([128 + 100 * np.sin(6 * xx + 3 * yy), 128 + 100 * np.cos(5 * yy), 128 + 80 * np.sin(9 * xx * yy)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8))


def small_images(n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.full((n, size, size, 3), 255, np.uint8)
    for i in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7) * size, rng.uniform(0.3, 0.7) * size, rng.uniform(0.15, 0.3) * size
        out[i][(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return out


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def show(label: str, r: dict) -> None:
    what = r.get("ok") or "refused: " + r["refused"][:150]
    print(f"  {label:<58} {r['seconds']:7.2f} s  peak RSS +{mb(r['peak']):>9}  {what}", flush=True)


# ---------------------------------------------------------------- the report

def training(space_gib: float, steps: int) -> None:
    pair = [preset("report-b", k, image_size=128) for k in ("ae", "vae")]
    space = int(space_gib * GIB)
    allowed = budget.training_budget_bytes(budget.TRAIN_CONCURRENCY, space)
    here = budget.training_budget_bytes()
    n_moji = 4495
    t = time.perf_counter()
    batch = budget.largest_batch(pair, n_moji, allowed, in_worker=True)  # as the app trains: in a worker
    t_check = time.perf_counter() - t
    print(f"Budget per training: {allowed / 1e9:.2f} GB on a {space_gib:g} GiB Space "
          f"({budget.TRAIN_CONCURRENCY} trainings at once, after {budget.data_budget_bytes(space) / 1e9:.2f} GB "
          f"for decoded data and the app's {budget.APP_BASELINE_BYTES / 1e9:.0f} GB; the whole app "
          f"{budget.app_budget_bytes(space) / 1e9:.2f} GB); {here / 1e9:.2f} GB on this machine "
          f"({budget.machine_memory_bytes() / 1e9:.1f} GB)")
    print(f"Largest allowed training: report-b, 128 px, OpenMoji ({n_moji} images): batch {batch} "
          f"(largest_batch took {t_check * 1e3:.0f} ms)")
    print(f"  estimate at batch {batch}: {budget.estimate_training(pair, batch, n_moji, in_worker=True).describe()}")
    try:
        budget.check_training(pair, 512, n_moji, allowed, in_worker=True)
    except budget.MemoryBudgetError as e:
        print(f"  batch 512 (the slider's maximum): {e}")
    est = budget.estimate_training(pair, batch, steps * batch)
    m = budget.measure_training(pair, batch, steps=steps, threads=torch.get_num_threads(), timeout=3600)
    print(f"  measured, {steps} steps + 1 validation pass on {steps * batch} random images: peak RSS "
          f"+{mb(m['peak'])} in {m['seconds']:.0f} s; estimate for that data {mb(est.total)} "
          f"(estimate / measured = {est.total / m['peak']:.2f}; budget {mb(allowed)})", flush=True)


CALIBRATION = [("default", 128, 128), ("report-b", 64, 128), ("report-b", 128, 64), ("report-a-wide", 50, 64),
               ("report-a", 50, 16)]


def calibrate(steps: int) -> None:
    """The estimate against real trainings of mid-sized configurations (AE + VAE together)."""
    print(f"Estimate against measured peak RSS ({steps} steps + 1 validation pass, {steps} x batch random images):")
    for name, size, batch in CALIBRATION:
        pair = [preset(name, k, image_size=size) for k in ("ae", "vae")]
        est = budget.estimate_training(pair, batch, steps * batch)
        m = budget.measure_training(pair, batch, steps=steps, threads=torch.get_num_threads(), timeout=3600)
        print(f"  {name:<14} {size:>3} px batch {batch:>4}: estimate {mb(est.total):>9}, measured {mb(m['peak']):>9}, "
              f"estimate / measured {est.total / m['peak']:.2f}  ({m['seconds']:.0f} s)", flush=True)


def uploads(tmp: Path) -> None:
    n = data.limits.MAX_IMAGES
    images = small_images(n, 128)
    zpath = tmp / "upload-10000.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i, im in enumerate(images):
            zf.writestr(f"set/{i:05}.png", encode(Image.fromarray(im), "PNG"))
    np.save(tmp / "upload-10000.npy", images)
    print(f"Largest allowed upload ({n:,} images of 128x128, loaded at 128 px):")
    show(f"zip of {n:,} PNGs ({zpath.stat().st_size / 1e6:.0f} MB), load_split", run_case("split", zpath))
    npy = tmp / "upload-10000.npy"
    split = run_case("split", npy)
    copies = run_case("copies", npy)
    show(f".npy ({npy.stat().st_size / 1e6:.0f} MB), load_split (train/val views)", split)
    show(".npy, load_dataset + ImageSet.split() (copies, as before)", copies)
    print(f"  images held after the split: {mb(split['held'])} with views vs {mb(copies['held'])} "
          f"with copies (RSS after: +{mb(split['rss_after'])} vs +{mb(copies['rss_after'])})", flush=True)


def hostile(tmp: Path) -> None:
    print("Hostile files (seconds to the answer):")
    blank = tmp / "blank-60000.npz"
    np.savez_compressed(blank, data=np.zeros((60_000, 64, 64, 3), np.uint8))
    show(f"60,000 blank 64x64 images, .npz ({blank.stat().st_size / 1e3:.0f} KB)", run_case("load", blank))
    png = encode(Image.new("RGB", (4096, 4096), (90, 20, 200)), "PNG")
    same = zip_listing(tmp / "same-name.zip", png, ["photo.png"] * 5000)
    show(f"one 4096x4096 PNG listed 5,000 times ({same.stat().st_size / 1e3:.0f} KB)", run_case("load", same))
    names = zip_listing(tmp / "many-names.zip", png, [f"{i:04}.png" for i in range(5000)])
    show(f"the same under 5,000 names ({names.stat().st_size / 1e3:.0f} KB)", run_case("load", names))
    for fmt, content in (("PNG", png), ("JPEG", encode(photo(4096), "JPEG", quality=85))):
        path = tmp / f"copies-{fmt.lower()}.zip"
        with zipfile.ZipFile(path, "w") as zf:  # stored: each copy is really in the file
            for i in range(200):
                zf.writestr(f"{i:03}.{fmt.lower()}", content)
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        what = "solid-colour PNG" if fmt == "PNG" else "JPEG photo"
        show(f"200 stored copies of a 4096x4096 {what} ({size})", run_case("load", path))
        show("  the same as a reconstruction upload (max_images=64)", run_case("load", path, "64"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space-gib", type=float, default=16.0, help="memory of the Space the budget is for")
    ap.add_argument("--steps", type=int, default=3, help="training steps to measure (the heap grows over 2-3)")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--calibrate", action="store_true", help="only: the estimate against 5 mid-sized trainings")
    ap.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        return case(*args.case)
    print(f"machine: {os.cpu_count()} CPUs ({cpu_name()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; MAX_DECODED_PIXELS {data.limits.MAX_DECODED_PIXELS:,}")
    if args.calibrate:
        return calibrate(max(args.steps, 6))
    if not args.skip_training:
        training(args.space_gib, args.steps)
    with tempfile.TemporaryDirectory(prefix="aevae-limits-") as d:
        uploads(Path(d))
        hostile(Path(d))


if __name__ == "__main__":
    main()
