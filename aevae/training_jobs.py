"""Trainings started by a session: a pair (PairJob: shared when the same settings already run or
ran on this server, in process or in a worker), the beta sweep's VAEs, and the default pair
trained at start-up.
"""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from . import (
    budget,
    classroom,
    data,
    metrics,
    pair_training,
    server_env,
    timing,
    worker,
)
from .datasets import OPENMOJI, openmoji_split
from .models import AutoEncoder, build_model
from .runs import BETA, FRESH, Pair, Run, RunRecord
from .session_state import Session
from .train import Progress, TrainingError, train_together
from .train_settings import TRAIN_DEFAULT, TrainSettings
from .zoo import BETA_LATENT


def warm_default_training() -> None:
    """What the default Train needs before it starts, made ahead (server start, in the background):
    OpenMoji at its size, the data's fingerprint, the models' FLOPs and memory profile. A class
    pressing Train at the same moment then waits for none of it."""
    settings = TrainSettings()
    split = openmoji_split(settings.image_size)
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    classroom.fingerprint(split)
    timing.estimate_seconds(cfgs, len(split.train), len(split.val), settings.epochs)
    budget.estimate_training(cfgs, settings.batch_size, n_images=len(split.all), in_worker=server_env.train_workers())


def train_models(settings: TrainSettings, split: data.Split, on_progress=None, should_stop=None,
                 on_snapshot=None, copy_wanted=None, on_copy=None) -> tuple[dict, dict, float]:
    """Train an AE and a VAE side by side on the same batches, seed, architecture and epochs.

    Returns (models, histories, seconds). Runs in a training worker process (worker.py) unless
    AEVAE_TRAIN_WORKERS=0; the models are the same either way. `on_snapshot(Snapshot)` gets the
    live "before / now" strip; `copy_wanted()` asks for the models as they are at the next step,
    handed to `on_copy(models, histories)` (a student who stops a run that others still wait for).
    """
    cfgs = {k: settings.model_config(k) for k in ("ae", "vae")}
    tcfg = settings.train_config()
    if split.all.image_size != cfgs["ae"].image_size:
        raise ValueError("the data and the model have different image sizes")
    if server_env.train_workers():
        models, hists, seconds = worker.train_pair_in_worker(
            cfgs, tcfg, split.train.images, split.val.images, on_progress=on_progress, should_stop=should_stop,
            on_snapshot=on_snapshot, copy_wanted=copy_wanted, on_copy=on_copy)
    else:
        held = {}

        def progress(name, p):
            if on_progress is not None:
                on_progress(name, p)
            if name == "vae" and copy_wanted is not None and on_copy is not None and copy_wanted():
                on_copy({k: copy.deepcopy(m).eval() for k, m in held.items()},
                        {k: copy.deepcopy(h) for k, h in hists_now.items()})

        hists_now = {}

        def progress_and_hist(name, p):
            hists_now[name] = p.history
            progress(name, p)

        models, hists, seconds = pair_training.train_pair(cfgs, tcfg, split.train.images, split.val.images,
                                                          progress_and_hist, should_stop, on_snapshot, held.update)
    if hists["ae"].stopped_by == "epochs":
        timing.record(timing.training_flops(list(cfgs.values()), len(split.train), len(split.val),
                                            tcfg.epochs), seconds)
    return models, hists, seconds


def add_pair_run(session: Session, settings: TrainSettings, split: data.Split, models: dict, hists: dict,
                 seconds: float, kind: str = "Train", use: bool = False, how: str = FRESH,
                 scores: dict | None = None, data_text: str | None = None, series: int = 0) -> Run:
    """Make trained models a run of the session (the pair in use only when `use`, see add_run).

    `scores`: val_scores of these models when already known (a shared run scores them once);
    `data_text`: what it was trained on, in words (default: the split's source).
    """
    first = hists["ae"] if isinstance(hists["ae"], dict) else hists["ae"].to_dict()
    if not first["iter_loss"]:
        raise InterruptedError("stopped before the first batch; nothing was kept")
    hd = {k: (h if isinstance(h, dict) else h.to_dict()) for k, h in hists.items()}
    dataset = {**split.describe(), "fingerprint": classroom.fingerprint(split)}  # to tell data apart later
    if not split.spec.startswith(OPENMOJI):  # an upload: its name, not where the server keeps it (shown, downloaded)
        dataset["spec"] = Path(split.spec).name
    tcfg = settings.train_config().to_dict()
    pair = Pair(models["ae"], models["vae"], "", tcfg, hd, dataset)
    record = RunRecord.of(kind, preset=settings.preset, image_size=settings.image_size, latent=pair.latent,
                          train=tcfg, histories=hd, seconds=seconds,
                          scores=scores or val_scores(pair.ae, pair.vae, split),
                          data=data_text or split.all.source, n_train=len(split.train), trained=how or FRESH,
                          series=series)
    return session.add_run(record, hd, pair, use)


HOW = {"new": FRESH, "running": "joined a run already in progress on this server",
       "finished": "same settings and seed as a run already trained on this server"}


class PairJob:
    """A student's wait for a pair training that the server may share between students.

    See classroom.py: identical trainings run once; this job watches the shared one and, when it
    ends, makes its models a run of the student's session.
    """

    def __init__(self, session: Session, settings: TrainSettings, split: data.Split, kind: str = "Train",
                 use: bool = False, data_text: str | None = None, series: int = 0):
        self.session, self.settings, self.split, self.kind, self.use = session, settings, split, kind, use
        self.data_text, self.series = data_text, series
        cfgs = [settings.model_config(k) for k in ("ae", "vae")]
        tcfg = settings.train_config()
        # Refused before anything starts when it would not fit this server's memory per training.
        budget.check_training(cfgs, tcfg.batch_size, n_images=len(split.all), in_worker=server_env.train_workers())
        key = classroom.run_key(cfgs, tcfg.to_dict(), split)
        est = timing.estimate_seconds(cfgs, len(split.train), len(split.val), tcfg.epochs)

        def train(shared: classroom.Shared, should_stop):
            live = shared.live

            lefts = {}  # per model: each reports its own steps

            def progress(name, p):
                live.histories[name] = p.history
                left = lefts.setdefault(name, timing.TimeLeft(est))
                live.text, live.fraction = progress_text(p, left), p.fraction

            def snapshot(snap):
                live.snapshot = snap

            return train_models(settings, split, progress, should_stop, snapshot, shared.copies_wanted,
                                shared.give_copies)

        self.shared, self.how, self.waiter = session.shared.get_or_start(key, est, train)

    @property
    def live(self) -> classroom.Live:
        return self.shared.live

    def stop(self) -> None:
        self.waiter.stop.set()

    @property
    def done(self) -> bool:
        return self.shared.done.is_set() or self.waiter.copied.is_set()

    def leave(self) -> None:
        self.stop()
        self.shared.leave(self.waiter)

    def result(self) -> Run:
        """The run this job gives the session (raises the training's error, if any)."""
        try:
            if self.waiter.copy is not None:
                models, hists = self.waiter.copy["models"], self.waiter.copy["histories"]
                for h in hists.values():
                    h.stopped_by = "stop request"
                secs = time.monotonic() - self.shared.started
                how = "your copy, taken when you pressed Stop, of a run others still wait for"
            else:
                if self.shared.error is not None:
                    raise self.shared.error
                models, hists, secs = self.shared.result
                how = HOW[self.how]
            scores = None if self.waiter.copy is not None else self.shared.answers.get(
                "scores", lambda: val_scores(models["ae"], models["vae"], self.split))
            return add_pair_run(self.session, self.settings, self.split, models, hists, secs, self.kind,
                                self.use, how, scores, self.data_text, self.series)
        finally:
            self.shared.leave(self.waiter)


def val_scores(ae: AutoEncoder, vae: AutoEncoder, split: data.Split) -> dict:
    """Mean PSNR/SSIM of both models on the validation split (for a run's row)."""
    with ThreadPoolExecutor(2) as pool:  # both at once: SSIM's filters leave the interpreter free
        return dict(zip(("AE", "VAE"), pool.map(lambda m: metrics.evaluate(m, split.val, lpips=False).summary(),
                                                (ae, vae))))


def progress_text(p: Progress, time_left: timing.TimeLeft | None = None) -> str:
    """`time_left`: the training's own estimator (the plan, then the measured rate); without it
    the elapsed time per step, which counts the start-up as steps."""
    left = (time_left or timing.TimeLeft())(p.step, p.steps_total, p.seconds)
    return (f"epoch {p.epoch}/{p.epochs}, step {p.step:,}/{p.steps_total:,}, {p.seconds:.1f} s"
            f" (about {left:.0f} s left)")


def train_betas(session: Session, split: data.Split, betas: list[float], epochs: int, seed: int = 0,
                on_progress=None, cap: float | None = None, on_wait=None
                ) -> tuple[list[tuple[float, AutoEncoder]], list[str]]:
    """A VAE per beta on this session's data, one after the other, each a run of the session:
    (beta, model) for each beta trained, and why each other beta failed (its loss diverged).

    Every model starts from the same initial weights and sees the same batches, so they differ
    only in beta. A stop request ends the sweep after the model in training (which is kept); a
    beta whose training fails is said and the sweep goes on with the next.
    """
    cfg = TrainSettings(image_size=split.all.image_size, latent=BETA_LATENT).model_config("vae")
    base = TrainSettings(epochs=int(epochs), seconds=cap, seed=seed).train_config()
    session.stop.clear()
    budget.check_training([cfg], base.batch_size, n_images=len(split.all))
    est = len(betas) * timing.estimate_seconds([cfg], len(split.train), len(split.val), int(epochs))
    ticket = session.shared.slots.acquire(est, session.stop.is_set, on_wait or (lambda place, secs: None))
    try:
        return _train_betas(session, split, betas, cfg, base, seed, on_progress)
    finally:
        session.shared.slots.release(ticket)


def _train_betas(session, split, betas, cfg, base, seed, on_progress):
    out, failed, series = [], [], session.new_series()
    for b in betas:
        torch.manual_seed(seed)
        m = build_model(cfg)
        t0 = time.perf_counter()
        try:
            hist = train_together({f"{b:g}": m}, split.train, split.val, base.with_(beta=float(b)), on_progress,
                                  session.stop.is_set)[f"{b:g}"]
        except TrainingError as e:
            failed.append(f"beta {b:g}: {e}")
            continue
        if not hist.iter_loss:
            break
        scores = {"VAE": metrics.evaluate(m, split.val, lpips=False).summary()}
        record = RunRecord.of(BETA, preset=TRAIN_DEFAULT, image_size=split.all.image_size, latent=BETA_LATENT,
                              train=base.with_(beta=float(b)).to_dict(), histories={"vae": hist},
                              seconds=time.perf_counter() - t0, scores=scores, data=split.all.source,
                              n_train=len(split.train), series=series)
        session.add_run(record, {"vae": hist.to_dict()}, None, model=m)
        out.append((float(b), m))
        if hist.stopped_by != "epochs":
            break
    return out, failed
