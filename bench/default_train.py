"""The Train tab's default, measured: quality reached, wall time, and the app path's overhead.

    python bench/default_train.py                    # the default, through the app's own code path
    python bench/default_train.py --alternatives     # also the candidates it was chosen from

1. The default settings (train_settings.TrainSettings(): the `quick` preset) trained through the code
   path the Train button uses (training_jobs.PairJob: the shared-run machinery, live progress and the
   before/now strip), on OpenMoji's fixed split: wall time, steps, validation PSNR of both models.
2. The same two models, batches and epochs in a bare loop (each model in its own thread with one
   torch thread, as the app does; nothing else): images per second, and the app path's images
   per second as a ratio of it (target >= 0.9). Same data, same process, one after the other.
3. --alternatives: other image sizes, latents, batches and learning rates, each trained the same
   way; PSNR after the given epochs and the wall time, to show why the default won.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch
from common import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aevae import datasets  # noqa: E402
from aevae.models import build_model, loss_terms  # noqa: E402
from aevae.session_state import Session  # noqa: E402
from aevae.train import MEMORY_FORMAT, as_uint8_nchw, to_float  # noqa: E402
from aevae.train_settings import TrainSettings  # noqa: E402
from aevae.training_jobs import PairJob  # noqa: E402

ALTERNATIVES = [  # (image size, latent, epochs, batch, lr)
    (64, "16x8x8", 3, 32, 4e-3),
    (64, "16x8x8", 8, 32, 3e-3),
    (64, "32x8x8", 8, 32, 3e-3),
    (64, "16x8x8", 8, 16, 2e-3),
    (64, "4x16x16", 4, 32, 3e-3),
    (64, "8x16x16", 3, 32, 3e-3),
    (64, "8x16x16", 4, 32, 5e-3),
    (48, "16x6x6", 8, 64, 3e-3),
    (32, "16x4x4", 12, 64, 3e-3),
]


def app_path(settings: TrainSettings, split) -> tuple[float, dict]:
    s = Session(None)
    t0 = time.perf_counter()
    job = PairJob(s, settings, split)
    while not job.done:
        time.sleep(0.05)
    run = job.result()
    return time.perf_counter() - t0, run.record.row(run.number)


def bare_loop(settings: TrainSettings, split) -> float:
    """Images per second of a plain loop over the same batches (each model in its own thread)."""
    tcfg = settings.train_config()
    data = as_uint8_nchw(split.train)
    n, bs = len(data), tcfg.batch_size
    torch.manual_seed(tcfg.seed)
    models = [build_model(settings.model_config(k)).to(memory_format=MEMORY_FORMAT).train() for k in ("ae", "vae")]
    gen = torch.Generator().manual_seed(tcfg.seed)
    batches = [torch.randperm(n, generator=gen) for _ in range(tcfg.epochs)]

    def loop(m):
        torch.set_num_threads(1)
        opt = torch.optim.Adam(m.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        for perm in batches:
            for i in range(0, n - 1, bs):
                x = to_float(data[perm[i:i + bs]])
                loss = loss_terms(m(x), x, tcfg.beta).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tcfg.epochs * n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alternatives", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, {torch.get_num_threads()} torch threads by default, torch {torch.__version__}")
    d = TrainSettings()
    split = datasets.openmoji_split(d.image_size)
    print(f"default (`{d.preset}`): {d.image_size} px, latent {d.latent}, {d.epochs} epochs, batch {d.batch_size}, "
          f"lr {d.lr}, beta {d.beta}; {len(split.train)} train / {len(split.val)} validation images")
    bare_loop(d.__class__(**{**d.__dict__, "epochs": 1}), split)  # warm-up: neither side pays first-use costs
    ratios = []
    for _i in range(args.repeats):  # alternating, so drifts in machine load hit both sides alike
        secs, row = app_path(d, split)
        app_ips = d.epochs * len(split.train) / secs
        print(f"app path: {secs:.1f} s wall (training {row['seconds']:.1f} s), {row['steps']} steps per model, "
              f"AE val PSNR {row['AE val PSNR']:.2f} dB, VAE val PSNR {row['VAE val PSNR']:.2f} dB", flush=True)
        train_ips = d.epochs * len(split.train) / row["seconds"]
        bare = bare_loop(d, split)
        ratios.append((train_ips / bare, app_ips / bare))
        print(f"  images/s per model: bare loop {bare:.0f}; app path {train_ips:.0f} in training (validation each "
              f"epoch and the before/now strip included): ratio {ratios[-1][0]:.2f}; {app_ips:.0f} over the whole "
              f"call (metrics of the run's row too): ratio {ratios[-1][1]:.2f}", flush=True)
    mid = len(ratios) // 2
    print(f"ratio to the bare loop, median of {len(ratios)}: training {sorted(r[0] for r in ratios)[mid]:.2f}, "
          f"whole call {sorted(r[1] for r in ratios)[mid]:.2f}")
    if args.alternatives:
        print("\nalternatives (same path; size, latent, epochs, batch, lr -> wall s, AE dB, VAE dB):")
        for size, latent, epochs, batch, lr in ALTERNATIVES:
            st = TrainSettings(d.preset, size, latent, epochs, None, batch, lr, d.weight_decay, d.beta, 0)
            secs, row = app_path(st, datasets.openmoji_split(size))
            print(f"  {size} px, {latent:>8}, {epochs:>2} ep, batch {batch:>2}, lr {lr:g}: {secs:6.1f} s, "
                  f"AE {row['AE val PSNR']:.2f}, VAE {row['VAE val PSNR']:.2f}", flush=True)


if __name__ == "__main__":
    main()
