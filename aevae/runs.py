"""A session's trained pairs ("runs"), and which pair the tabs use.

Every training (Train, an epoch-sweep row, a latent-size rung, a beta sweep) becomes a numbered
run. The pair in use changes only when the user picks one (or trains with "use it when done").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .models import AutoEncoder
from .train import History

MAX_RUNS = 12  # runs kept per session; the oldest not in use is dropped, with a note
SHIPPED = "shipped:"
RUN = "run:"


@dataclass
class Pair:
    ae: AutoEncoder
    vae: AutoEncoder
    source: str  # "shipped: default" or "run 3"
    train: dict = field(default_factory=dict)  # the TrainConfig both were trained with
    history: dict = field(default_factory=dict)  # kind -> History dict
    dataset: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return self.ae.config.image_size

    @property
    def latent(self) -> str:
        return self.ae.config.latent

    @classmethod
    def from_checkpoints(cls, ae, vae, source: str) -> Pair:
        return cls(ae.model, vae.model, source, ae.meta.get("train") or {},
                   {"ae": ae.meta.get("history") or {}, "vae": vae.meta.get("history") or {}},
                   ae.meta.get("dataset") or {})


# What made a run (RunRecord.kind), as the runs table names it.
TRAIN, SWEEP, RUNG, BETA = "Train", "sweep", "rung", "beta sweep (VAE only)"
KINDS = (TRAIN, SWEEP, RUNG, BETA)
# How a run ended (History.stopped_by), in words.
ENDED = {"epochs": "finished", "time cap": "CUT SHORT by the time cap", "stop request": "stopped by you"}
FRESH = "a fresh run"
# Columns of the runs table whose cells are the package's words, translated where shown (the UI's
# table and the report); the latent-size table's "source" and "trained on" too.
MESSAGE_CELLS = ("ended", "trained", "data", "source", "made by", "trained on", "preset")


@dataclass(frozen=True)
class Scores:
    """One model of a run: its last training MSE and its validation means (numbers, or None)."""

    final_mse: float | None
    val_psnr: float | None
    val_ssim: float | None


@dataclass(frozen=True)
class RunRecord:
    """What a run was and what it gave, as numbers and codes: the same fields for every kind of
    run (Train, an epoch-sweep row, a latent-size rung, a beta in a beta sweep). Rows for display
    are made from it where it is shown (`row`), in the page's words there."""

    kind: str  # one of KINDS
    preset: str | None  # the preset its architecture and training defaults came from
    image_size: int
    latent: str
    epochs: int  # planned
    epochs_done: int  # epochs begun (the last may be partial when it was stopped)
    steps: int  # optimiser steps per model
    steps_planned: int
    batch: int
    lr: float
    beta: float
    seed: int
    seconds: float
    stopped_by: str  # History.stopped_by: "epochs", "time cap" or "stop request"
    trained: str  # fresh, or how it was reused (training_jobs.HOW)
    data: str  # what it was trained on, in words
    ae: Scores | None  # None: the run has no AE (a beta sweep trains VAEs only)
    vae: Scores | None
    series: int = 0  # runs made by one press of a sweep share it (0: a single run)

    @classmethod
    def of(cls, kind: str, *, preset: str | None, image_size: int, latent: str, train: dict,
           histories: dict, seconds: float, scores: dict | None, data: str, n_train: int,
           trained: str = FRESH, series: int = 0) -> RunRecord:
        """The one way a run is recorded. `train`: the TrainConfig dict; `histories`: kind ->
        History (or its dict); `scores`: "AE"/"VAE" -> metrics summary ({"psnr": Summary, ...})
        of the validation split, for the models the run has; `n_train`: its training images."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind of run {kind!r}")  # not shown: a bug
        hist = {k: h if isinstance(h, History) else History.from_dict(h) for k, h in histories.items() if h}
        first = hist.get("ae") or hist.get("vae")
        scores = scores or {}

        def model(k: str) -> Scores | None:
            if k not in hist:
                return None
            s = scores.get(k.upper())
            return Scores(_number(hist[k].final.get("mse")), _number(s["psnr"].mean) if s else None,
                          _number(s["ssim"].mean) if s else None)

        per_epoch = -(-int(n_train) // max(1, min(int(train["batch_size"]), int(n_train))))
        return cls(kind, preset, int(image_size), str(latent), int(train["epochs"]), len(first.epochs),
                   len(first.iter_loss), int(train["epochs"]) * per_epoch,
                   int(train["batch_size"]), float(train["lr"]), float(train["beta"]), int(train["seed"]),
                   float(seconds), first.stopped_by or "epochs", trained, data, model("ae"), model("vae"), series)

    @property
    def finished(self) -> bool:
        """It ran its planned epochs: same settings, seed and data give the same models again."""
        return self.stopped_by == "epochs"

    @property
    def ended(self) -> str:
        return ENDED.get(self.stopped_by, self.stopped_by)

    @property
    def stopped_at_epoch(self) -> int:
        """The epoch it was in when it ended (its last, when it finished)."""
        return self.epochs_done

    def row(self, number: int) -> dict:
        """The run as a table row: the same columns for every kind of run, numbers as numbers,
        None where the run has no such value; words (MESSAGE_CELLS) in English, to translate."""
        out = {"run": number, "made by": self.kind, "preset": self.preset, "size": self.image_size,
               "latent": self.latent, "epochs": self.epochs, "epochs done": self.epochs_done,
               "steps": self.steps, "batch": self.batch, "lr": self.lr, "beta": self.beta, "seed": self.seed,
               "seconds": round(self.seconds, 1), "ended": self.ended, "data": self.data}
        for name, m in (("AE", self.ae), ("VAE", self.vae)):
            out[f"{name} final loss (MSE)"] = m.final_mse if m else None
            out[f"{name} val PSNR"] = m.val_psnr if m else None
            out[f"{name} val SSIM"] = m.val_ssim if m else None
        out["trained"] = self.trained
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _number(v) -> float | None:
    """A float, or None for what was not measured (a missing or NaN value)."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


@dataclass
class Run:
    number: int
    record: RunRecord
    histories: dict  # kind -> History dict, for the curves
    pair: Pair | None = None  # None when the run made no AE+VAE pair (a beta sweep)
    model: AutoEncoder | None = None  # the one model of a run without a pair (a beta's VAE)

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def value(self) -> str:
        return f"{RUN}{self.number}"

    @property
    def title(self) -> str:
        if self.pair is None:
            return f"run {self.number} · {self.kind}"
        return f"run {self.number} · {self.kind} · latent {self.pair.latent}, {self.pair.image_size} px"


class RunList:
    """The runs of one session, newest last, at most `limit` of them."""

    def __init__(self, limit: int = MAX_RUNS):
        self.limit = limit
        self.items: list[Run] = []
        self.dropped: list[int] = []  # numbers of runs dropped to stay within the limit
        self._next = 1

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def last(self) -> Run | None:
        return self.items[-1] if self.items else None

    def next_number(self) -> int:
        return self._next

    def add(self, record: RunRecord, histories: dict, pair: Pair | None, keep: str = "",
            model: AutoEncoder | None = None) -> Run:
        """Append a run; past the limit the oldest run whose value is not `keep` is dropped."""
        run = Run(self._next, record, histories, pair, model)
        if pair is not None:
            pair.source = f"run {self._next}"
        self._next += 1
        self.items.append(run)
        while len(self.items) > self.limit:
            old = next(r for r in self.items if r.value != keep)
            self.items.remove(old)
            self.dropped.append(old.number)
        return run

    def get(self, number: int) -> Run | None:
        return next((r for r in self.items if r.number == number), None)

    def note(self) -> str:
        if not self.dropped:
            return ""
        return (f"Only the latest {self.limit} runs are kept; dropped so far: "
                + ", ".join(f"run {n}" for n in self.dropped[-10:]) + ".")
