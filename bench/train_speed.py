"""Training throughput of aevae's loop against a bare loop and against the matmul roof.

    python bench/train_speed.py [--repeats 5] [--seconds 4] [--batches 32,64,128]

For each model and batch size, in one run and interleaved (these machines are shared and noisy):
  - images/s of aevae.train.train() with a seconds budget (the app's loop),
  - images/s of a bare loop: same model and batch, one float tensor in memory, nothing else,
  - training FLOPs per image counted from the layers (forward x 3 for forward + backward),
  - achieved GFLOP/s, and torch's dense float32 matmul GFLOP/s on this machine (the roof).
Medians over --repeats; ratios are per repeat, then the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from common import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aevae.config import ModelConfig, TrainConfig, preset  # noqa: E402
from aevae.models import build_model, loss_terms  # noqa: E402
from aevae.timing import forward_flops  # noqa: E402
from aevae.train import MEMORY_FORMAT, train  # noqa: E402


def matmul_gflops(n: int = 2048, seconds: float = 1.5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def bare_loop(cfg: ModelConfig, batch: int, seconds: float) -> float:
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=MEMORY_FORMAT).train()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x = torch.rand(batch, 3, cfg.image_size, cfg.image_size).contiguous(memory_format=MEMORY_FORMAT)
    for _ in range(2):  # warm-up
        loss = loss_terms(model(x), x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        loss = loss_terms(model(x), x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += batch
    return n / (time.perf_counter() - t0)


def app_loop(cfg: ModelConfig, batch: int, seconds: float, images: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = build_model(cfg)
    train(model, images[: batch * 2], None, TrainConfig(epochs=1, batch_size=batch))  # warm-up
    model = build_model(cfg)
    hist = train(model, images, None, TrainConfig(epochs=10_000, seconds=seconds, batch_size=batch),
                 on_progress=lambda p: None)
    return hist.images_seen / hist.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--batches", default="32,64,128")
    ap.add_argument("--models", default="default-ae,default-vae,report-b-ae,report-b-vae")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_name()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    images = (torch.rand(2048, 64, 64, 3) * 255).to(torch.uint8).numpy()  # speed does not depend on content
    roofs = []
    print(f"{'model':<14}{'batch':>6}{'GFLOP/img':>10}{'app img/s':>11}{'bare img/s':>11}{'app/bare':>9}"
          f"{'GFLOP/s':>9}{'roof':>8}{'of roof':>8}")
    for name in args.models.split(","):
        pre, kind = name.rsplit("-", 1)
        cfg = preset(pre, kind)
        flops = 3 * forward_flops(build_model(cfg), cfg.image_size)
        imgs = images[:, : cfg.image_size, : cfg.image_size]
        for batch in (int(b) for b in args.batches.split(",")):
            apps, bares, ratios, fracs = [], [], [], []
            for _ in range(args.repeats):
                roof = matmul_gflops()
                roofs.append(roof)
                a = app_loop(cfg, batch, args.seconds, imgs)
                b = bare_loop(cfg, batch, args.seconds)
                apps.append(a)
                bares.append(b)
                ratios.append(a / b)
                fracs.append(a * flops / 1e9 / roof)
            med = statistics.median
            print(f"{name:<14}{batch:>6}{flops / 1e9:>10.3f}{med(apps):>11.0f}{med(bares):>11.0f}"
                  f"{med(ratios):>9.2f}{med(apps) * flops / 1e9:>9.1f}{med(roofs):>8.1f}{med(fracs):>8.0%}",
                  flush=True)
    print(f"matmul roof (2048x2048 float32): median {statistics.median(roofs):.1f} GFLOP/s")


if __name__ == "__main__":
    main()
