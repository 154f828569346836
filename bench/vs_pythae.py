"""Reconstruction quality per CPU second: aevae's "train briefly" defaults against pythae.

    python bench/vs_pythae.py [--budgets 30,60,180] [--repeats 1] [--threads N] [--quick]

Needs pythae (bench/requirements.txt); aevae itself never imports it. On aevae's own OpenMoji
split (load_split("openmoji", 64, 0.1, 0)), for each wall-clock budget and each of AE / VAE:
  - aevae: PRESETS["default"] model and train config (lr 2e-3, batch 64, Adam + weight decay,
    plateau LR, beta 0.1), seconds=budget, epochs large enough that the budget stops it;
  - pythae: pythae's own AE / VAE with its 64x64 CelebA benchmark convnets
    (Encoder_Conv_AE_CELEBA / Encoder_Conv_VAE_CELEBA + Decoder_Conv_AE_CELEBA) and its own
    BaseTrainer (Adam, lr 1e-4 as in pythae's CelebA benchmark config, batch 64);
  - pythae on aevae's net: pythae's BaseTrainer driving aevae's default encoder/decoder with
    aevae's recipe (lr, weight decay, plateau LR, and for the VAE a BetaVAE whose objective is
    aevae's SSE + beta * KL up to a constant factor): only the training loop differs.
Every model has as many latent values as aevae's default (16x8x8 = 1,024). Validation PSNR/SSIM
come from aevae.metrics on 8-bit reconstructions (the VAE decodes its mean). Runs are interleaved
per budget (aevae AE, pythae AE, pythae-on-aevae-net AE, then the VAEs) so machine noise hits all
alike; medians over --repeats. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from common import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aevae.config import PRESETS  # noqa: E402
from aevae.data import ImageSet, load_split  # noqa: E402
from aevae.metrics import evaluate, score  # noqa: E402
from aevae.models import AutoEncoder, build_model  # noqa: E402
from aevae.train import train  # noqa: E402

try:
    from pythae.data.datasets import BaseDataset
    from pythae.models import AE, VAE, AEConfig, BetaVAE, BetaVAEConfig, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.models.nn.benchmarks.celeba import (
        Decoder_Conv_AE_CELEBA,
        Encoder_Conv_AE_CELEBA,
        Encoder_Conv_VAE_CELEBA,
    )
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import ProgressBarCallback, TrainingCallback
except ImportError as e:  # a benchmark-only dependency
    sys.exit(f"bench/vs_pythae.py needs pythae: pip install -r bench/requirements.txt ({e})")

PYTHAE_LR = 1e-4  # pythae's examples/scripts/configs/celeba/base_training_config.json
BATCH = 64
SYSTEMS = ("aevae", "pythae", "pythae on aevae net")
# pythae logs INFO to the console from these modules; its tqdm bars go to stderr (silenced below).
for _name in ("pythae.trainers.base_trainer.base_trainer", "pythae.trainers.training_callbacks",
              "pythae.models.base.base_model"):
    logging.getLogger(_name).setLevel(logging.WARNING)
_SINK = open(os.devnull, "w")  # kept open: a tqdm bar of pythae's may outlive its run


def pythae_version() -> str:
    try:
        return version("pythae")  # pythae has no __version__
    except PackageNotFoundError:
        return "unknown"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Result:
    psnr: float
    ssim: float
    images_per_s: float
    seconds: float  # training wall-clock as each system counts it
    images: int  # training images seen
    params: int  # trainable parameters


# ---------------------------------------------------------------- aevae


def run_aevae(kind: str, budget: float, split_train: ImageSet, split_val: ImageSet) -> Result:
    pre = PRESETS["default"]
    torch.manual_seed(0)
    model = build_model(pre.model.with_(kind=kind))
    cfg = pre.train.with_(seconds=budget, epochs=10_000)
    hist = train(model, split_train, split_val, cfg)
    res = evaluate(model, split_val, lpips=False)
    return Result(float(res.psnr.mean()), float(res.ssim.mean()), hist.images_seen / hist.seconds,
                  hist.seconds, hist.images_seen, model.n_params)


# ---------------------------------------------------------------- pythae


class _BudgetSpent(Exception):
    """Raised from a pythae callback to end BaseTrainer.train() at the wall-clock budget."""


class _Budget(TrainingCallback):
    """Counts training images and stops pythae's trainer once `seconds` have passed.

    pythae's BaseTrainer calls on_train_step_end after every batch (on_train_step_begin, despite
    its name, once per epoch), so the budget is checked per batch, as aevae's loop does. The
    clock starts at on_train_begin, after the trainer's construction (its sanity-check forward
    pass and data loaders), as aevae's starts after building the model.
    """

    def __init__(self, seconds: float, n_train: int, batch: int):
        self.budget, self.n, self.batch = seconds, n_train, batch
        self.t0 = 0.0
        self.elapsed = 0.0
        self.images = 0
        self.steps = 0
        self.step_in_epoch = 0

    def on_train_begin(self, training_config, **kwargs):
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, training_config, **kwargs):
        self.step_in_epoch = 0

    def on_train_step_end(self, training_config, **kwargs):
        # The DataLoader keeps a short last batch (drop_last=False): count what it really held.
        self.images += min(self.batch, self.n - self.step_in_epoch * self.batch)
        self.step_in_epoch += 1
        self.steps += 1
        self.elapsed = time.perf_counter() - self.t0
        if self.elapsed >= self.budget:
            raise _BudgetSpent

    def on_train_end(self, training_config, **kwargs):
        self.elapsed = time.perf_counter() - self.t0


class AevaeEncoder(BaseEncoder):
    """aevae's encoder stages + latent head(s) as a pythae encoder with flat embeddings."""

    def __init__(self, model: AutoEncoder):
        BaseEncoder.__init__(self)
        self.features = model.encoder
        self.is_vae = model.kind == "vae"
        if self.is_vae:
            self.mu, self.logvar = model.mu, model.logvar
        else:
            self.code = model.code

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.features(x)
        if self.is_vae:
            return ModelOutput(embedding=self.mu(h).flatten(1), log_covariance=self.logvar(h).flatten(1))
        return ModelOutput(embedding=self.code(h).flatten(1))


class AevaeDecoder(BaseDecoder):
    """aevae's decoder as a pythae decoder: flat latent -> C x h x w -> images."""

    def __init__(self, model: AutoEncoder):
        BaseDecoder.__init__(self)
        self.layers = model.decoder
        self.shape = model.latent_shape

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=self.layers(z.reshape(len(z), *self.shape)))


def pythae_model(system: str, kind: str, latent_dim: int):
    """(pythae model, aevae model it wraps or None) built with torch.manual_seed(0)."""
    torch.manual_seed(0)
    if system == "pythae":
        if kind == "ae":
            cfg = AEConfig(input_dim=(3, 64, 64), latent_dim=latent_dim)
            return AE(cfg, encoder=Encoder_Conv_AE_CELEBA(cfg), decoder=Decoder_Conv_AE_CELEBA(cfg)), None
        cfg = VAEConfig(input_dim=(3, 64, 64), latent_dim=latent_dim, reconstruction_loss="mse")
        return VAE(cfg, encoder=Encoder_Conv_VAE_CELEBA(cfg), decoder=Decoder_Conv_AE_CELEBA(cfg)), None
    net = build_model(PRESETS["default"].model.with_(kind=kind))
    enc, dec = AevaeEncoder(net), AevaeDecoder(net)
    if kind == "ae":  # pythae's AE loss is aevae's: squared error summed per image, batch mean
        return AE(AEConfig(input_dim=(3, 64, 64), latent_dim=latent_dim), encoder=enc, decoder=dec), net
    # pythae's (Beta)VAE loss is 0.5 * SSE + beta * KL; with beta = aevae's beta / 2 it is exactly
    # half of aevae's SSE + beta * KL (the halved weight decay below keeps Adam's steps identical).
    cfg = BetaVAEConfig(input_dim=(3, 64, 64), latent_dim=latent_dim, reconstruction_loss="mse",
                        beta=PRESETS["default"].train.beta / 2)
    return BetaVAE(cfg, encoder=enc, decoder=dec), net


def trainer_config(system: str, out_dir: str) -> BaseTrainerConfig:
    common = dict(output_dir=out_dir, per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH,
                  num_epochs=10_000, seed=0, no_cuda=True)
    if system == "pythae":  # pythae's own choices: Adam, its CelebA benchmark lr, no schedule
        return BaseTrainerConfig(**common, learning_rate=PYTHAE_LR)
    t = PRESETS["default"].train  # aevae's recipe, through pythae's config
    return BaseTrainerConfig(
        **common, learning_rate=t.lr, optimizer_cls="Adam",
        optimizer_params={"weight_decay": t.weight_decay / 2},
        scheduler_cls="ReduceLROnPlateau",
        scheduler_params={"patience": t.plateau_patience, "factor": t.plateau_factor})


@torch.no_grad()
def pythae_recon(model, images: np.ndarray, batch: int = BATCH) -> np.ndarray:
    """uint8 (N,H,W,3) -> uint8 reconstructions, decoding the embedding (the VAE's mean)."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).permute(0, 3, 1, 2).float() / 255
        y = model.predict(x).recon_x
        out.append((y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def run_pythae(system: str, kind: str, budget: float, split_train: ImageSet, split_val: ImageSet,
               latent_dim: int) -> Result:
    model, net = pythae_model(system, kind, latent_dim)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_x, val_x = split_train.to_tensor(), split_val.to_tensor()  # float [0,1] NCHW
    out_dir = tempfile.mkdtemp(prefix="vs_pythae-")
    budget_cb = _Budget(budget, len(train_x), BATCH)
    try:
        with contextlib.redirect_stderr(_SINK):
            trainer = BaseTrainer(
                model,
                BaseDataset(train_x, torch.zeros(len(train_x))),
                BaseDataset(val_x, torch.zeros(len(val_x))),
                training_config=trainer_config(system, out_dir),
                callbacks=[budget_cb],
            )
            try:
                trainer.train()
            except _BudgetSpent:
                pass  # the model was trained in place and keeps its weights
            except ArithmeticError as e:  # pythae's "NaN detected in train loss"
                print(f"  {system} {kind.upper()} at {budget:g}s failed: {e}", flush=True)
                nan = float("nan")
                return Result(nan, nan, budget_cb.images / max(budget_cb.elapsed, 1e-9),
                              budget_cb.elapsed, budget_cb.images, params)
            finally:
                for cb in trainer.callback_handler.callbacks:  # close tqdm bars left open
                    if isinstance(cb, ProgressBarCallback):
                        for bar in (cb.train_progress_bar, cb.eval_progress_bar):
                            if bar is not None:
                                bar.close()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if net is not None:  # the wrapped aevae model: scored exactly as aevae's own
        res = evaluate(net, split_val, lpips=False)
    else:
        res = score(split_val.images, pythae_recon(model, split_val.images), lpips=False)
    secs = max(budget_cb.elapsed, 1e-9)
    return Result(float(res.psnr.mean()), float(res.ssim.mean()), budget_cb.images / secs, secs,
                  budget_cb.images, params)


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="30,60,180", help="seconds of training per model")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--pythae-latent", type=int, default=64,
                    help="latent_dim of pythae's own CelebA nets (64 in its CelebA benchmark config; "
                         "at aevae's 1,024 its fully connected layers reach 112 M parameters)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--val-images", type=int, default=None,
                    help="score on the first N validation images (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: budgets 2,3, 200 training and 64 validation images")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budgets = [2.0, 3.0] if args.quick else [float(b) for b in args.budgets.split(",")]
    n_val = args.val_images or (64 if args.quick else None)

    print(f"machine: {nproc()} CPUs ({cpu_name()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, pythae {pythae_version()}")
    split = load_split("openmoji", 64, 0.1, 0)
    tr, va = split.train, split.val
    if args.quick:
        tr = tr.subset(np.arange(min(200, len(tr))))
    if n_val:
        va = va.subset(np.arange(min(n_val, len(va))))
    default = PRESETS["default"]
    latent = build_model(default.model).latent_numel
    print(f"data: OpenMoji 64px, {len(tr)} train / {len(va)} validation images (split seed 0)")
    print(f"latent: aevae {default.model.latent} ({latent:,} values); pythae's own nets latent_dim="
          f"{args.pythae_latent}; pythae on aevae's net: the same {latent:,} values, flattened in the wrapper")
    print(f"aevae: preset default, lr {default.train.lr}, batch {default.train.batch_size}, "
          f"beta {default.train.beta}; pythae: CelebA convnets, Adam lr {PYTHAE_LR}, batch {BATCH}, "
          f"VAE loss 0.5*SSE + KL; pythae on aevae net: aevae's recipe via BaseTrainerConfig")
    print(f"budgets {', '.join(f'{b:g}' for b in budgets)} s per model, {args.repeats} repeat(s), "
          "interleaved; medians", flush=True)

    results: dict[tuple, list[Result]] = {}
    for budget in budgets:
        for _ in range(args.repeats):
            for kind in ("ae", "vae"):
                for system in SYSTEMS:
                    if system == "aevae":
                        r = run_aevae(kind, budget, tr, va)
                    else:
                        dim = args.pythae_latent if system == "pythae" else latent
                        r = run_pythae(system, kind, budget, tr, va, dim)
                    results.setdefault((budget, kind, system), []).append(r)
                    print(f"  {budget:g}s {kind.upper():<3} {system:<20} PSNR {r.psnr:6.2f}  "
                          f"SSIM {r.ssim:.4f}  {r.images_per_s:7.1f} img/s  {r.images:>7} images "
                          f"in {r.seconds:.1f} s", flush=True)

    def med(key, attr):
        return statistics.median(getattr(r, attr) for r in results[key])

    print()
    print(f"{'budget':>7} {'model':<6}{'system':<21}{'val PSNR':>9}{'val SSIM':>9}{'img/s':>9}"
          f"{'images':>9}{'train s':>8}{'params':>13}")
    for budget in budgets:
        for kind in ("ae", "vae"):
            for system in SYSTEMS:
                k = (budget, kind, system)
                print(f"{budget:>6g}s {kind.upper():<6}{system:<21}{med(k, 'psnr'):>9.2f}"
                      f"{med(k, 'ssim'):>9.4f}{med(k, 'images_per_s'):>9.1f}{med(k, 'images'):>9.0f}"
                      f"{med(k, 'seconds'):>8.1f}{results[k][0].params:>13,}")
    print()
    print("aevae minus pythae (val PSNR dB, medians); loop: aevae vs pythae's trainer on aevae's net")
    for budget in budgets:
        parts = []
        for kind in ("ae", "vae"):
            a = med((budget, kind, "aevae"), "psnr")
            p = med((budget, kind, "pythae"), "psnr")
            q = med((budget, kind, "pythae on aevae net"), "psnr")
            speed = (med((budget, kind, "aevae"), "images_per_s")
                     / med((budget, kind, "pythae on aevae net"), "images_per_s"))
            parts.append(f"{kind.upper()} {a - p:+.2f} dB vs pythae, {a - q:+.2f} dB / {speed:.2f}x img/s "
                         "vs pythae's loop")
        print(f"{budget:>6g}s  " + ";  ".join(parts))


if __name__ == "__main__":
    main()
