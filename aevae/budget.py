"""How much memory a training needs, and how much one training may have on this machine.

The web app lets students pick a preset, image size, latent and batch; some choices need more
memory than a small server has (report B's model at 128 px and batch 512: about 8 GB).
`check_training` is called before any model is built and refuses, with what to lower, a
training whose estimated peak exceeds this machine's per-training budget:

    estimate = check_training([cfg_ae, cfg_vae], batch_size=512, n_images=len(split.all))

The estimate (`estimate_training`) counts, in float32:

- the weights of every model trained together, their gradients and Adam's two moment
  buffers (4x the weights: train_together keeps all of them for the whole run);
- what autograd keeps for backward in one forward pass of the largest model at this batch
  (train_together steps the models in turn, so one model's activations at a time): the input
  of every convolution, linear and batch-norm layer, the outputs of in-place ReLUs and the
  sigmoid, max-pool indices (int64), and for a VAE its mean, log-variance, noise, sample
  and the KL terms. The layers are read from the model built on PyTorch's `meta` device (no
  memory, no arithmetic), so parameter counts are exact for any latent;
- the temporaries of the backward pass (gradients of the largest activations) and of one
  batch's uint8 gather, times HEAP_GROWTH for the memory the C allocator keeps between
  steps; or, if larger, a no-grad validation pass at batch 256 (where a large latent's
  mean, log-variance and sample can weigh more than the training step);
- the data set held as uint8 (N x S x S x 3), the train/validation split being views of it;
- a fixed allowance for what a first training adds to a process (oneDNN kernels, buffers).

bench/limits.py prints the estimate next to the peak RSS measured for real trainings.

The memory the app may use is machine memory x USABLE_FRACTION, where machine memory is the
lower of MemTotal and the cgroup's memory limit. After the app's baseline (APP_BASELINE_BYTES),
DATA_FRACTION of it is for decoded data that sessions keep (`data_budget_bytes`,
AEVAE_DATA_MEMORY_GB), and the rest is divided among the trainings that may run at once
(AEVAE_TRAIN_CONCURRENCY, default 2); AEVAE_TRAIN_MEMORY_GB sets the per-training budget
directly. `app_budget_bytes` is their sum: what the whole app stays under.
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import server_env
from .config import ModelConfig
from .models import AutoEncoder, build_model

GB = 1_000_000_000  # messages say GB in powers of ten, as the env variable does
APP_BASELINE_BYTES = 1 * GB  # the app with shipped models and OpenMoji loaded (bench: 0.6-0.9 GB)
USABLE_FRACTION = 0.85  # of machine memory; the rest for the OS, page cache and other requests
# Decoded uploads kept by sessions between trainings (resources.DataMemory): this share of the
# usable memory after the baseline, and at most SESSION_DATA_BYTES per session: the largest
# upload, 10,000 images at 128 px (492 MB), while it loads (data.peak_bytes: 609 MB, with one
# file read and one image decoded at their limits). Trainings get what is left.
DATA_FRACTION = 0.15
SESSION_DATA_BYTES = 640_000_000
TRAIN_OVERHEAD_BYTES = 150_000_000  # a first training in a process: oneDNN, allocator, threads
# A training in a worker process (aevae/worker.py) also costs that process (Python, torch:
# 0.23 GB measured) and a second copy of its images while they arrive (sent, then unpickled).
WORKER_PROCESS_BYTES = 250_000_000
VAL_BATCH = 256  # train.validate's batch size
# What the process holds at its peak over what one step holds at once: glibc keeps memory
# freed by one step for reuse, and the AE's and the VAE's steps take turns, so the peak grows
# over the first steps, measured at 1.3-1.5x for mid-sized trainings and ~1.0x for report B
# at 128 px and batch 410 (bench/limits.py; with MALLOC_MMAP_THRESHOLD_=1048576 it stays at
# 1.0-1.1x). The larger factor is used: an estimate too low lets a training take the server
# down, one too high only refuses some batches that would have fitted.
HEAP_GROWTH = 1.5
FLOAT = 4


class MemoryBudgetError(ValueError):
    """A training that would not fit in this server's memory; the message says what to lower."""


@dataclass(frozen=True)
class Profile:
    """Bytes per image of one model's forward pass (float32), read from its layers."""

    saved: int  # kept for backward until the backward pass frees it
    largest: int  # the largest single activation
    no_grad_peak: int  # most alive at once in validate()'s no-grad pass


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one training, in bytes, by part (see the module docstring)."""

    weights: int
    optimizer: int  # gradients + Adam's two moments
    step: int  # activations + temporaries of one training step, or validation if larger
    data: int
    overhead: int
    n_params: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.step + self.data + self.overhead

    def describe(self) -> str:
        return (f"about {self.total / GB:.1f} GB at batch {self.batch_size}: weights {self.weights / GB:.2f}, "
                f"gradients + Adam {self.optimizer / GB:.2f}, activations {self.step / GB:.2f}, "
                f"data {self.data / GB:.2f}, fixed {self.overhead / GB:.2f} GB "
                f"({self.n_params:,} parameters)")


# ---------------------------------------------------------------- reading the layers

class _Walk:
    """Follows tensor shapes through a model's layers and records what autograd saves."""

    def __init__(self):
        self.sizes: dict[int, int] = {}  # tensor id -> numel per image
        self.saved: dict[int, int] = {}  # tensor id -> bytes per image
        self.largest = 0
        self.no_grad_peak = 0
        self._next = 0

    def new(self, numel: int) -> int:
        self._next += 1
        self.sizes[self._next] = numel
        self.largest = max(self.largest, numel * FLOAT)
        return self._next

    def save(self, t: int, nbytes: int | None = None) -> None:
        self.saved[t] = nbytes if nbytes is not None else self.sizes[t] * FLOAT

    def layer(self, m: nn.Module, t: int, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        """One leaf module: returns the output tensor id and its per-image shape."""
        if isinstance(m, nn.Identity):
            return t, shape
        if isinstance(m, nn.Flatten):
            return t, (math.prod(shape),)
        if isinstance(m, nn.Unflatten):
            return t, tuple(m.unflattened_size)
        if isinstance(m, nn.ReLU):
            if m.inplace:  # the output is the input, modified; ReLU keeps it for backward
                self.save(t)
                return t, shape
            out = self.new(self.sizes[t])
            self.save(out)
            return out, shape
        if isinstance(m, nn.Sigmoid):
            out = self.new(self.sizes[t])
            self.save(out)
            self._pair(t, out)
            return out, shape
        if isinstance(m, nn.BatchNorm2d):
            self.save(t)
            out = self.new(self.sizes[t])
            self._pair(t, out)
            return out, shape
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            _, h, w = shape
            k, s, p, d = m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0]
            if isinstance(m, nn.Conv2d):
                h, w = ((n + 2 * p - d * (k - 1) - 1) // s + 1 for n in (h, w))
            else:
                op = m.output_padding[0]
                h, w = ((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n in (h, w))
            self.save(t)
            out_shape = (m.out_channels, h, w)
            out = self.new(math.prod(out_shape))
            self._pair(t, out)
            return out, out_shape
        if isinstance(m, nn.MaxPool2d):
            c, h, w = shape
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            out_shape = (c, (h - k) // s + 1, (w - k) // s + 1)
            numel = math.prod(out_shape)
            self.save(t)
            out = self.new(numel)
            self.saved[-out] = numel * 8  # int64 indices of the maxima
            self._pair(t, out)
            return out, out_shape
        if isinstance(m, nn.Linear):
            self.save(t)
            out = self.new(m.out_features)
            self._pair(t, out)
            return out, (m.out_features,)
        if isinstance(m, nn.Sequential):
            for sub in m:
                t, shape = self.layer(sub, t, shape)
            return t, shape
        raise NotImplementedError(f"aevae.budget does not know the memory of {type(m).__name__} layers")

    def _pair(self, a: int, b: int) -> None:
        self.no_grad_peak = max(self.no_grad_peak, (self.sizes[a] + self.sizes[b]) * FLOAT)


def profile(model: AutoEncoder) -> Profile:
    """Per-image activation bytes of one training forward pass (and of a no-grad one)."""
    s = model.config.image_size
    w = _Walk()
    x = w.new(3 * s * s)
    w.save(x)  # kept by the first layer and by the loss
    h, shape = w.layer(model.encoder.layers, x, (3, s, s))
    if model.kind == "vae":
        mu, lat_shape = w.layer(model.mu, h, shape)
        logvar, _ = w.layer(model.logvar, h, shape)
        n = w.sizes[mu]
        # clamp keeps log-variance, exp keeps sigma, mul keeps the noise; the KL term keeps mu
        # (for mu^2) and exp(log-variance); z is kept by the decoder's first layer.
        w.save(logvar)
        w.save(mu)
        for _ in range(3):  # sigma, noise, exp(log-variance)
            w.save(w.new(n))
        z = w.new(n)
    else:
        z, lat_shape = w.layer(model.code, h, shape)
    recon, _ = w.layer(model.decoder.layers, z, lat_shape)
    w.save(recon)  # the sigmoid's output, also kept by the loss
    image = 3 * s * s * FLOAT
    latent = model.latent_numel * FLOAT
    # No grad (validate): one layer's input and output at a time, beside the batch, the
    # reconstruction kept while the mean is decoded again, and the latent-sized tensors: the
    # VAE's mean, log-variance, sample and the temporaries of sampling and of the KL term
    # (about 6 at once, measured), the AE's code.
    latents = 6 if model.kind == "vae" else 1
    return Profile(sum(w.saved.values()), w.largest, w.no_grad_peak + latents * latent + 2 * image)


def meta_model(config: ModelConfig) -> AutoEncoder:
    """The model with its layers and shapes but no memory behind its parameters."""
    with torch.device("meta"):
        return build_model(config)


# ---------------------------------------------------------------- the estimate

def _configs(configs: ModelConfig | Iterable[ModelConfig]) -> list[ModelConfig]:
    out = [configs] if isinstance(configs, ModelConfig) else list(configs)
    if not out or not all(isinstance(c, ModelConfig) for c in out):
        raise TypeError("give one ModelConfig or a list of them (e.g. the AE's and the VAE's)")
    if len({c.image_size for c in out}) > 1:
        raise ValueError("models trained together must take the same image size")
    return out


@functools.lru_cache(maxsize=256)
def _model_facts(config: ModelConfig) -> tuple[int, Profile]:
    model = meta_model(config)
    return model.n_params, profile(model)


_facts_lock = threading.Lock()  # ten trainings pressed at once read each model once, not ten times


def model_facts(config: ModelConfig) -> tuple[int, Profile]:
    """A model's parameter count and activation profile (built once per config, on the meta device)."""
    with _facts_lock:
        return _model_facts(config)


def _estimator(configs: ModelConfig | Iterable[ModelConfig], n_images: int, in_worker: bool = False):
    """batch -> MemoryEstimate, with the models read once (the bisection asks many batches)."""
    cfgs = _configs(configs)
    facts = [model_facts(c) for c in cfgs]
    n_params = sum(n for n, _ in facts)
    s = cfgs[0].image_size
    image = 3 * s * s
    n_images = max(int(n_images), 0)
    profiles = [p for _, p in facts]
    # The models of a pair train (and validate) at the same time, one thread each (train.py), so
    # their activations are alive together: summed, not the largest of them.
    per_image = sum(p.saved + 2 * p.largest + image * FLOAT for p in profiles) + image * FLOAT + image
    val_batch = min(VAL_BATCH, n_images) if n_images else VAL_BATCH
    validation = (sum(p.no_grad_peak for p in profiles) + image) * val_batch

    def estimate(batch_size: int) -> MemoryEstimate:
        batch = max(min(int(batch_size), n_images) if n_images else int(batch_size), 1)
        # Backward: the gradients flowing back through the largest layers, beside what is
        # saved; the loss's image-sized temporaries; the batch's uint8 gather.
        train_step = int(per_image * batch * HEAP_GROWTH)
        return MemoryEstimate(weights=n_params * FLOAT, optimizer=3 * n_params * FLOAT,
                              step=max(train_step, validation), data=n_images * image * (2 if in_worker else 1),
                              overhead=TRAIN_OVERHEAD_BYTES + (WORKER_PROCESS_BYTES if in_worker else 0),
                              n_params=n_params, batch_size=batch)
    return estimate


def estimate_training(configs: ModelConfig | Iterable[ModelConfig], batch_size: int,
                      n_images: int = 0, in_worker: bool = False) -> MemoryEstimate:
    """Estimated peak memory (bytes) of training these models together, as train_together does.

    configs: the ModelConfig of each model trained together (the app trains [AE, VAE]).
    batch_size: the training batch; n_images: images in the data set held for this training
    (0 for none); in_worker: trained in a worker process of its own (WORKER_PROCESS_BYTES).
    Costs a few milliseconds: models are built on the meta device.
    """
    return _estimator(configs, n_images, in_worker)(batch_size)


# ---------------------------------------------------------------- the budget

def _read_int(path: str | Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2, no limit) -> None


def machine_memory_bytes(proc: str | Path = "/proc", cgroup: str | Path = "/sys/fs/cgroup") -> int:
    """The lower of MemTotal and this process's cgroup memory limit (v2 memory.max or v1).

    proc and cgroup are where those file systems are mounted (other paths are for tests)."""
    proc, cgroup = Path(proc), Path(cgroup)
    limits = []
    try:
        m = re.search(r"^MemTotal:\s+(\d+)\s*kB", (proc / "meminfo").read_text(), re.M)
        if m:
            limits.append(int(m[1]) * 1024)
    except OSError:
        pass
    paths = [cgroup / "memory.max", cgroup / "memory" / "memory.limit_in_bytes"]
    try:  # the process's own cgroup, where a container's limit is usually set
        for line in (proc / "self" / "cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            rel = rel.strip().lstrip("/")
            if controllers == "":
                paths.append(cgroup / rel / "memory.max")
            elif "memory" in controllers.split(","):
                paths.append(cgroup / "memory" / rel / "memory.limit_in_bytes")
    except (OSError, ValueError):
        pass
    for path in paths:
        v = _read_int(path)
        if v and v < 2**60:  # cgroup v1 writes "no limit" as a huge number
            limits.append(v)
    if not limits:
        raise RuntimeError(f"cannot read this machine's memory size ({proc / 'meminfo'})")
    return min(limits)


def _after_baseline(memory: int | None = None) -> float:
    return (machine_memory_bytes() if memory is None else memory) * USABLE_FRACTION - APP_BASELINE_BYTES


def data_budget_bytes(memory: int | None = None) -> int:
    """Decoded image data all sessions may keep in memory at once, in bytes.

    AEVAE_DATA_MEMORY_GB, else DATA_FRACTION of the usable memory after the app's baseline,
    and never less than one session's share (SESSION_DATA_BYTES). `memory`: the machine's
    memory in bytes (default: this machine's)."""
    env = server_env.memory_bytes("AEVAE_DATA_MEMORY_GB")
    if env is not None:
        return env
    return max(int(_after_baseline(memory) * DATA_FRACTION), SESSION_DATA_BYTES)


def session_data_bytes() -> int:
    """Decoded data one session may keep (its upload at the sizes it uses), within the data budget."""
    return min(SESSION_DATA_BYTES, data_budget_bytes())


def training_budget_bytes(concurrency: int | None = None, memory: int | None = None) -> int:
    """Memory one training may use here (or on a machine of `memory` bytes), in bytes (see the
    module docstring)."""
    env = server_env.memory_bytes("AEVAE_TRAIN_MEMORY_GB")
    if env is not None:
        return env
    n = server_env.train_concurrency() if concurrency is None else concurrency
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, got {n!r}")
    return max(int((_after_baseline(memory) - data_budget_bytes(memory)) / n), 0)


def app_budget_bytes(memory: int | None = None) -> int:
    """What the whole app stays under: its baseline, the data budget and every training slot."""
    n = server_env.train_concurrency()
    return APP_BASELINE_BYTES + data_budget_bytes(memory) + n * training_budget_bytes(n, memory)


def largest_batch(configs: ModelConfig | Iterable[ModelConfig], n_images: int = 0,
                  budget_bytes: int | None = None, upto: int = 4096, in_worker: bool = False) -> int:
    """The largest batch (1..upto) whose estimate fits the budget; 0 if not even batch 1 fits."""
    estimate = _estimator(configs, n_images, in_worker)
    budget = training_budget_bytes() if budget_bytes is None else budget_bytes
    lo, hi = 0, upto  # the estimate grows with the batch: bisect
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate(mid).total <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _model_words(cfgs: Sequence[ModelConfig]) -> str:
    c = cfgs[0]
    name = f"the {c.name} model" if c.name else "this model"
    return f"{name} (latent {c.latent_shape})"


def check_training(configs: ModelConfig | Iterable[ModelConfig], batch_size: int, n_images: int = 0,
                   budget_bytes: int | None = None, in_worker: bool = False) -> MemoryEstimate:
    """The estimate if it fits this machine's per-training budget; else MemoryBudgetError.

    Call before building the models. The message names the largest batch that fits, or,
    when not even batch 1 does, what else to lower. budget_bytes defaults to
    training_budget_bytes().
    """
    cfgs = _configs(configs)
    budget = training_budget_bytes() if budget_bytes is None else int(budget_bytes)
    est = estimate_training(cfgs, batch_size, n_images, in_worker)
    if est.total <= budget:
        return est
    s = cfgs[0].image_size
    what = (f"batch {batch_size} at {s} px with {_model_words(cfgs)} needs about {est.total / GB:.1f} GB; "
            f"this server allows {budget / GB:.1f} GB per training")
    fits = largest_batch(cfgs, n_images, budget, upto=max(min(int(batch_size), 4096) - 1, 1), in_worker=in_worker)
    if fits >= 1:
        raise MemoryBudgetError(f"{what}: try batch ≤ {fits}")
    detail = (f"{est.n_params / 1e6:.1f} M parameters" if est.weights + est.optimizer > est.data
              else f"{n_images:,} images")
    raise MemoryBudgetError(f"{what}, even at batch 1 ({detail}): try a smaller latent or image size, "
                            "narrower stages, or fewer images")


# ---------------------------------------------------------------- measuring (bench, tests)

_MEASURE = r"""
import json, re, sys, time
import numpy as np, torch
from aevae.config import ModelConfig, TrainConfig
from aevae.models import build_model
from aevae.train import train_together

def status():
    text = open("/proc/self/status").read()
    return {k: int(v) * 1024 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", text)}

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
cfgs = [ModelConfig.from_dict(d) for d in args["configs"]]
s, n, bs = cfgs[0].image_size, args["n_images"], args["batch_size"]
torch.manual_seed(0)
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
except OSError:
    pass
before = status()
images = np.random.default_rng(0).integers(0, 256, (n, s, s, 3), dtype=np.uint8)
models = {str(i): build_model(c) for i, c in enumerate(cfgs)}
t0 = time.perf_counter()
train_together(models, images, images, TrainConfig(epochs=1, batch_size=bs, plateau_patience=None,
               threads=args["threads"]), should_stop=None)
after = status()
print(json.dumps({"peak": after["VmHWM"] - before["VmRSS"], "seconds": time.perf_counter() - t0,
                  "baseline": before["VmRSS"], "hwm_before": before["VmHWM"]}))
"""


def measure_training(configs: ModelConfig | Iterable[ModelConfig], batch_size: int, steps: int = 2,
                     threads: int = 1, timeout: float = 600) -> dict:
    """Peak RSS increase (bytes) of a real training of `steps` batches, in a fresh process.

    The data set is steps x batch_size random images, so its uint8 copy is counted as
    estimate_training(configs, batch_size, steps * batch_size) counts it; the same images
    are the validation set, so the one validation pass at the end is measured too. Returns
    {"peak": bytes above the RSS before data and models, "seconds": ..., ...}.
    """
    import json

    cfgs = _configs(configs)
    args = {"configs": [c.to_dict() for c in cfgs], "batch_size": int(batch_size),
            "n_images": int(batch_size) * int(steps), "threads": int(threads)}
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(args)], capture_output=True, text=True,
                         env=env, timeout=timeout, check=False)
    if out.returncode:
        raise RuntimeError(f"measuring run failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
