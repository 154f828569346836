"""A session's trained pairs ("runs"), and which pair the tabs use.

Every training (Train, an epoch-sweep row, a latent-size rung, a beta sweep) becomes a numbered
run. The pair in use changes only when the user picks one (or trains with "use it when done").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import AutoEncoder

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


@dataclass
class Run:
    number: int
    kind: str  # "Train", "sweep", "rung" or "beta sweep"
    row: dict  # one row of the runs table (no histories)
    histories: dict  # kind -> History dict, for the curves
    pair: Pair | None = None  # None when the run made no AE+VAE pair (a beta sweep)

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

    def add(self, kind: str, row: dict, histories: dict, pair: Pair | None, keep: str = "") -> Run:
        """Append a run; past the limit the oldest run whose value is not `keep` is dropped."""
        run = Run(self._next, kind, {"run": self._next, "made by": kind, **row}, histories, pair)
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

    def rows(self) -> list[dict]:
        return [r.row for r in self.items]

    def note(self) -> str:
        if not self.dropped:
            return ""
        return (f"Only the latest {self.limit} runs are kept; dropped so far: "
                + ", ".join(f"run {n}" for n in self.dropped[-10:]) + ".")
