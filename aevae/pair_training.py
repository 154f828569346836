"""An AE and a VAE trained side by side, with the live "before / now" strip. No UI imports.

Runs the same in the web server's process or in a training worker (worker.py): only arrays and
settings come in, so a worker does not need the session, the data loaders or the metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import sampling
from .config import ModelConfig, TrainConfig
from .models import AutoEncoder, build_model
from .train import History, as_uint8_nchw, to_float, train_together

SNAPSHOT_IMAGES = 8  # fixed validation images shown "before / now" while a pair trains
SNAPSHOT_EVERY_S = 2.0


@dataclass
class Snapshot:
    """The live "before / now" strip: fixed validation images and both models' reconstructions."""

    images: np.ndarray  # (n, H, W, 3) uint8
    before: dict  # kind -> reconstructions by the untrained model
    now: dict  # kind -> reconstructions now
    step: int = 0


def _recon(model: AutoEncoder, x: torch.Tensor) -> np.ndarray:
    was_training = model.training
    model.eval()  # BatchNorm's running statistics are read, not updated: training is unchanged
    try:
        return sampling.to_uint8(model.reconstruct(x.to(next(model.parameters()).device)))
    finally:
        model.train(was_training)


def snapshot_images(val_images: np.ndarray, n: int = SNAPSHOT_IMAGES) -> np.ndarray:
    pick = np.linspace(0, len(val_images) - 1, min(n, len(val_images))).astype(int)
    return val_images[pick]


def train_pair(cfgs: dict[str, ModelConfig], tcfg: TrainConfig, train_images: np.ndarray, val_images: np.ndarray,
               on_progress=None, should_stop=None, on_snapshot=None, on_models=None
               ) -> tuple[dict[str, AutoEncoder], dict[str, History], float]:
    """Train the models of `cfgs` (an AE and a VAE) on the same batches, seed and epochs.

    Returns (models, histories, seconds). `on_snapshot(Snapshot)` is called at the start, every
    few seconds and at each epoch's end with the live "before / now" reconstructions.
    """
    torch.manual_seed(tcfg.seed)
    models = {k: build_model(c) for k, c in cfgs.items()}
    if on_models is not None:
        on_models(models)
    snap = None
    last_kind = list(models)[-1]
    if on_snapshot is not None:
        imgs = snapshot_images(val_images)
        x = to_float(as_uint8_nchw(imgs))
        first = {k: _recon(m, x) for k, m in models.items()}
        snap = Snapshot(imgs, first, dict(first))
        on_snapshot(snap)
        last = {"t": time.perf_counter(), "epoch": 1}

    def progress(name, p):
        if on_progress is not None:
            on_progress(name, p)
        if snap is not None and name == last_kind and (
                p.epoch != last["epoch"] or time.perf_counter() - last["t"] >= SNAPSHOT_EVERY_S
                or p.step == p.steps_total):
            snap.now = {k: _recon(m, x) for k, m in models.items()}
            snap.step = p.step
            last.update(t=time.perf_counter(), epoch=p.epoch)
            on_snapshot(snap)

    t0 = time.perf_counter()
    hists = train_together(models, train_images, val_images, tcfg, progress, should_stop)
    seconds = time.perf_counter() - t0
    for m in models.values():
        m.cpu()  # the views and metrics run on the CPU, next to the data
    return models, hists, seconds
