"""Training loop shared by the CLI, the app and the zoo script. No UI imports.

Loss: sum of squared errors per image (+ beta * KL for the VAE), averaged over the batch.
Stops at the epoch count or the seconds cap, whichever comes first, or within one
batch of `should_stop()` returning True; the model keeps what it learned so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .config import TrainConfig
from .models import AutoEncoder, loss_terms

PSNR_CAP = 100.0  # dB, as in metrics.py: identical images would give +inf
# Channels-last convolutions are faster on CPU for these models (bench/train_speed.py).
MEMORY_FORMAT = torch.channels_last


class TrainingError(RuntimeError):
    """Training could not go on (e.g. the loss became NaN); the message says why and what to try."""


@dataclass
class History:
    iter_loss: list[float] = field(default_factory=list)  # objective per iteration
    iter_mse: list[float] = field(default_factory=list)  # reconstruction MSE per pixel value
    iter_kl: list[float] = field(default_factory=list)  # KL per image (nats); 0 for the AE
    epochs: list[dict] = field(default_factory=list)  # one dict per (possibly partial) epoch
    seconds: float = 0.0
    images_seen: int = 0
    stopped_by: str = ""  # "epochs", "time cap" or "stop request"
    initial: dict = field(default_factory=dict)  # validation scores before the first step ("epoch 0")

    @property
    def final(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class Progress:
    epoch: int  # 1-based
    epochs: int
    step: int  # iterations done in total
    steps_total: int  # planned iterations for all epochs
    seconds: float
    budget: float | None
    loss: float
    mse: float
    kl: float
    history: History

    @property
    def fraction(self) -> float:
        by_steps = self.step / max(self.steps_total, 1)
        by_time = self.seconds / self.budget if self.budget else 0.0
        return min(1.0, max(by_steps, by_time))


def as_uint8_nchw(data) -> torch.Tensor:
    """ImageSet / (N,H,W,3) uint8 array -> (N,3,H,W) uint8 tensor (a channels-last view, no copy)."""
    images = getattr(data, "images", data)
    if torch.is_tensor(images):
        return images
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N,H,W,3) uint8 images, got {images.dtype} {images.shape}")
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def to_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div_(255.0).contiguous(memory_format=MEMORY_FORMAT)


@torch.no_grad()
def validate(model: AutoEncoder, data: torch.Tensor, beta: float, batch_size: int = 256,
             seed: int = 0) -> dict:
    """Validation loss (fixed noise seed, so epochs compare) and PSNR of the mean reconstruction.

    Under torch.distributed each process scores its share of `data` and the sums are reduced.
    """
    world = distributed.current()
    data = data[world.rank::world.size]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed + world.rank)
    totals = {"loss": 0.0, "mse": 0.0, "kl": 0.0}
    psnrs = []
    try:
        for i in range(0, len(data), batch_size):
            x = to_float(data[i:i + batch_size].to(device))
            out = model(x, generator=gen)
            t = loss_terms(out, x, beta)
            n = len(x)
            totals["loss"] += t.loss.item() * n
            totals["mse"] += t.mse.item() * n
            totals["kl"] += t.kl.item() * n
            mean = out.recon if model.kind == "ae" else model.decode(out.mu)  # the AE's z is its mean
            mse = (mean - x).pow(2).flatten(1).mean(1).double()
            psnrs.append(torch.clamp(10 * torch.log10(1.0 / mse), max=PSNR_CAP))
    finally:
        model.train(was_training)
    psnr_sum = torch.cat(psnrs).sum().item() if psnrs else 0.0
    *sums, psnr_sum, n = world.sum([*totals.values(), psnr_sum, float(len(data))])
    return {f"val_{k}": v / n for k, v in zip(totals, sums)} | {"val_psnr": psnr_sum / n}


def train(
    model: AutoEncoder,
    train_set,
    val_set=None,
    cfg: TrainConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> History:
    """Train `model` in place and return its History (see module docstring)."""
    cb = (lambda name, p: on_progress(p)) if on_progress else None
    return train_together({"model": model}, train_set, val_set, cfg, cb, should_stop)["model"]


class _Run:
    """One model's optimiser, schedule and running sums inside train_together."""

    def __init__(self, model: AutoEncoder, cfg: TrainConfig, world: distributed.World, total_steps: int):
        self.model = model
        self.is_vae = model.kind == "vae"
        model.to(device=cfg.device, memory_format=MEMORY_FORMAT)
        model.train()
        # Under torchrun, DDP averages gradients over processes after each backward.
        self.net = DistributedDataParallel(model) if world.size > 1 else model
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=cfg.plateau_factor,
                                                                 patience=cfg.plateau_patience)
                      if cfg.plateau_patience is not None and not cfg.cosine else None)
        # A schedule that ends at lr 0 ends training calmly; plateau cuts can leave a late spike.
        self.cosine = (torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(total_steps, 1))
                       if cfg.cosine else None)
        self.hist = History()
        self.sums = {"loss": 0.0, "mse": 0.0, "kl": 0.0}
        # Each model draws its VAE noise from its own stream, apart from the shuffling stream,
        # so a model trained beside another gets exactly what it would get alone.
        self.noise = torch.Generator(device=cfg.device).manual_seed(cfg.seed + 1 + 1000 * world.rank)

    def step(self, x: torch.Tensor, beta: float, where: str) -> tuple[float, float, float]:
        out = self.net(x, generator=self.noise)
        t = loss_terms(out, x, beta if self.is_vae else 0.0)
        loss = t.loss.item()
        if not math.isfinite(loss):
            raise TrainingError(f"the {self.model.kind.upper()}'s loss became {loss} at {where}; "
                                "try a lower learning rate or a smaller beta")
        self.opt.zero_grad(set_to_none=True)
        t.loss.backward()
        self.opt.step()
        if self.cosine is not None:
            self.cosine.step()
        mse, kl = t.mse.item(), t.kl.item()
        h, k = self.hist, len(x)
        h.iter_loss.append(loss)
        h.iter_mse.append(mse)
        h.iter_kl.append(kl)
        h.images_seen += k
        for key, v in (("loss", loss), ("mse", mse), ("kl", kl)):
            self.sums[key] += v * k
        return loss, mse, kl


def train_together(
    models: dict[str, AutoEncoder],
    train_set,
    val_set=None,
    cfg: TrainConfig | None = None,
    on_progress: Callable[[str, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, History]:
    """Train several models in lockstep on the very same batches; one History each.

    Used to train an AE and a VAE side by side: at any moment (a stop, the time cap)
    both have seen the same images. Each model has its own noise stream, so every model gets
    exactly the batches and noise it would get alone.

    In one process the models train at the same time, each in its own thread with
    `cfg.threads or 1` torch threads: on a small CPU that beats sharing every op between cores
    (whose threads wait on each other, badly when other programs load the machine), and a fixed
    thread count keeps results the same whatever the load. `on_progress` is called from the
    calling thread after every step of all models.

    Under torchrun every process shuffles with the same seed and takes its share of each
    global batch (DistributedSampler's interleaving), so the global batch is the one a single
    process would use; stops are agreed between processes and epoch sums are reduced.
    """
    cfg = cfg or TrainConfig()
    data = as_uint8_nchw(train_set)
    val = as_uint8_nchw(val_set) if val_set is not None and len(getattr(val_set, "images", val_set)) else None
    n = len(data)
    if n == 0:
        raise ValueError("the training set is empty")
    world = distributed.current()
    parallel = len(models) > 1 and world.size == 1
    if cfg.threads and not parallel:
        torch.set_num_threads(cfg.threads)
    if cfg.batch_size % world.size:
        raise ValueError(f"batch size {cfg.batch_size} must divide evenly over {world.size} processes")
    gen = torch.Generator().manual_seed(cfg.seed)
    bs = min(cfg.batch_size, n)
    # A last batch of one image would break BatchNorm; it is dropped (it is reshuffled next epoch).
    steps_per_epoch = n // bs + (1 if n % bs > 1 else 0)
    runs = {name: _Run(m, cfg, world, cfg.epochs * steps_per_epoch) for name, m in models.items()}
    pool = (ThreadPoolExecutor(len(runs), thread_name_prefix="aevae-model", initializer=torch.set_num_threads,
                               initargs=(cfg.threads or 1,)) if parallel else None)

    def each(fn) -> dict:
        """fn(run) for every run: at the same time in the pool, else one after the other."""
        if pool is None:
            return {name: fn(r) for name, r in runs.items()}
        futures = {name: pool.submit(fn, r) for name, r in runs.items()}
        wait(futures.values())  # all finish before any error is raised: no thread left mid-step
        return {name: f.result() for name, f in futures.items()}

    stopped_by = ""
    start = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - start

    try:
        if val is not None:  # the "before" point of every validation curve; training is unchanged by it
            for name, v in each(lambda r: validate(r.model, val, cfg.beta, seed=cfg.seed)).items():
                runs[name].hist.initial = v
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=gen)
            for r in runs.values():
                r.sums = dict.fromkeys(r.sums, 0.0)
            seen = 0
            for step in range(steps_per_epoch):
                asked = should_stop is not None and should_stop()
                late = cfg.seconds is not None and elapsed() >= cfg.seconds
                if world.size > 1:
                    asked, late = world.any(asked), world.any(late)
                if asked or late:
                    stopped_by = "stop request" if asked else "time cap"
                    break
                chunk = perm[step * bs:(step + 1) * bs]
                if len(chunk) % world.size:
                    continue  # a short last batch that cannot be split evenly over processes: skipped
                x = to_float(data[chunk[world.rank::world.size]].to(cfg.device))
                beta = cfg.beta
                if cfg.kl_warmup_epochs > 0:
                    beta *= min(1.0, (epoch - 1 + step / steps_per_epoch) / cfg.kl_warmup_epochs)
                seen += len(x)
                where = f"epoch {epoch}, step {step + 1}"
                done = each(lambda r: r.step(x, beta, where))  # noqa: B023 (used at once)
                if on_progress is not None:
                    for name, (loss, mse, kl) in done.items():
                        r = runs[name]
                        on_progress(name, Progress(epoch, cfg.epochs, len(r.hist.iter_loss),
                                                   cfg.epochs * steps_per_epoch, elapsed(), cfg.seconds,
                                                   loss, mse, kl, r.hist))
            total = world.sum([float(seen)])[0]
            if total:
                last = bool(stopped_by) or epoch == cfg.epochs
                scores = (each(lambda r: validate(r.model, val, cfg.beta, seed=cfg.seed))
                          if val is not None and (last or epoch % cfg.eval_every == 0) else {})
                for name, r in runs.items():
                    sums = dict(zip(r.sums, world.sum(list(r.sums.values()))))
                    row = {"epoch": epoch, "images": int(total), "lr": r.opt.param_groups[0]["lr"],
                           **{k: v / total for k, v in sums.items()}, **scores.get(name, {})}
                    if r.sched is not None:
                        r.sched.step(row.get("val_loss", row["loss"]))
                    row["seconds"] = elapsed()
                    r.hist.epochs.append(row)
            if stopped_by:
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    out = {}
    for name, r in runs.items():
        r.hist.stopped_by = stopped_by or "epochs"
        r.hist.seconds = elapsed()
        r.model.eval()
        out[name] = r.hist
    return out
