"""How long a training will take, estimated before it starts from its work in FLOPs.

Work is counted from the layers (forward multiply-adds x 2, and x 3 for forward + backward);
the rate is this server's, learned from the trainings it finished (a moving average), starting
from a figure measured on a 2-core CPU (bench/default_train.py). The estimate is shown to the
user; it never decides what a run does (runs are planned in epochs, so they are reproducible).
"""

from __future__ import annotations

import functools
import threading

import torch
from torch import nn

from .config import ModelConfig
from .models import build_model

# Training FLOP/s (forward + backward, both models) on the project's 2-core CPU, idle.
DEFAULT_RATE = 40e9
_rate = DEFAULT_RATE
_lock = threading.Lock()


def forward_flops(model: nn.Module, size: int) -> int:
    """Multiply-adds x 2 of every Conv, ConvTranspose and Linear in one forward pass of one image."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += 2 * out[0].numel() * k
        elif isinstance(m, nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            total += 2 * inp[0][0].numel() * k
        elif isinstance(m, nn.Linear):
            total += 2 * m.in_features * m.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


@functools.lru_cache(maxsize=256)
def _config_flops(cfg: ModelConfig) -> int:
    return forward_flops(build_model(cfg), cfg.image_size)


_flops_lock = threading.Lock()  # ten trainings pressed at once build and run the models once, not ten times


def training_flops(cfgs: list[ModelConfig], n_train: int, n_val: int, epochs: int) -> float:
    """FLOPs of training every model for `epochs` epochs, with one validation pass per epoch."""
    with _flops_lock:
        per_image = sum(_config_flops(c) for c in cfgs)
    return epochs * per_image * (3 * n_train + n_val)


def rate() -> float:
    return _rate


def estimate_seconds(cfgs: list[ModelConfig], n_train: int, n_val: int, epochs: int) -> float:
    return training_flops(cfgs, n_train, n_val, epochs) / _rate


def record(flops: float, seconds: float) -> None:
    """Learn this server's rate from a finished training (short ones say little, so they weigh less)."""
    global _rate
    if seconds < 2 or flops <= 0:
        return
    weight = min(0.5, seconds / 60)
    with _lock:
        _rate = (1 - weight) * _rate + weight * flops / seconds


class TimeLeft:
    """Seconds left of a training, from its progress reports (step, steps planned, seconds gone).

    Time per step so far counts the start-up (building the models, the first validation pass) as
    if it were steps: at 2% it said "about 601 s left" of a 30 s training. So the plan's estimate
    is used until WARMUP_STEPS steps are measured, then the rate of the steps since the first report.
    """

    WARMUP_STEPS = 5

    def __init__(self, planned: float | None = None):
        self.planned = planned
        self._base: tuple[int, float] | None = None  # (step, seconds) of the first report

    def __call__(self, step: int, steps_total: int, seconds: float) -> float:
        if self._base is None or step < self._base[0]:
            self._base = (step, seconds)
        steps, spent = step - self._base[0], seconds - self._base[1]
        remaining = max(steps_total - step, 0)
        if steps >= self.WARMUP_STEPS and spent > 0:
            return spent / steps * remaining
        if self.planned is not None:
            if self.planned > seconds:
                return self.planned - seconds
            return self.planned * remaining / max(steps_total, 1)  # behind the plan: its share still to do
        return seconds / step * remaining if step else 0.0
