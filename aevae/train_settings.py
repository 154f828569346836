"""The Train tab's settings (TrainSettings: validated into a ModelConfig and a TrainConfig), the
settings a shared link carries, and the plans shown before a training, a sweep or a beta sweep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from . import data, server_env, timing
from .config import PRESETS, ModelConfig, TrainConfig, adapt_latent
from .datasets import OPENMOJI
from .models import plan
from .zoo import BETA_LATENT


@functools.cache
def device() -> str:
    """Where the app trains (server_env.device: AEVAE_DEVICE), read once, on the first training."""
    return server_env.device()


TRAIN_DEFAULT = "quick"  # the Train tab's preset: a good pair in about half a minute on 2 cores


@dataclass
class TrainSettings:
    """What the Train tab asks for; validated into a ModelConfig and a TrainConfig."""

    preset: str = TRAIN_DEFAULT
    image_size: int = PRESETS[TRAIN_DEFAULT].model.image_size
    latent: str = PRESETS[TRAIN_DEFAULT].model.latent
    epochs: int = PRESETS[TRAIN_DEFAULT].train.epochs
    seconds: float | None = 300.0  # a safety cap for the pair; runs are planned in epochs
    batch_size: int = PRESETS[TRAIN_DEFAULT].train.batch_size
    lr: float = PRESETS[TRAIN_DEFAULT].train.lr
    weight_decay: float = PRESETS[TRAIN_DEFAULT].train.weight_decay
    beta: float = PRESETS[TRAIN_DEFAULT].train.beta
    seed: int = 0

    def model_config(self, kind: str) -> ModelConfig:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}")
        cfg = PRESETS[self.preset].model.with_(kind=kind, image_size=int(self.image_size),
                                               latent=str(self.latent).strip())
        plan(cfg)  # unreachable spatial latents fail here with the sizes that would work
        return cfg

    def train_config(self) -> TrainConfig:
        secs = float(self.seconds) if self.seconds else None
        return PRESETS[self.preset].train.with_(device=device(),
            epochs=int(self.epochs), seconds=secs, batch_size=int(self.batch_size), lr=float(self.lr),
            weight_decay=float(self.weight_decay), beta=float(self.beta), seed=int(self.seed))


# Query-string keys of the Train tab's settings (shareable links), with their types.
QUERY_KEYS = {"preset": str, "size": int, "latent": str, "epochs": int, "seconds": float, "batch": int,
              "lr": float, "wd": float, "beta": float, "seed": int}


# A link also says which data its settings were made for; it cannot carry an upload's files.
DATA_KEY, DATA_VALUES = "data", (OPENMOJI, "upload")


# The link's keys checked by TrainConfig, with its field names.
TRAIN_FIELDS = {"epochs": "epochs", "seconds": "seconds", "batch": "batch_size", "lr": "lr", "wd": "weight_decay",
                "beta": "beta", "seed": "seed"}


def settings_from_query(params: dict[str, str]) -> tuple[dict, list[str]]:
    """Train settings from a page's query parameters; problems are returned, never dropped silently.

    A value is applied only if the Train tab could train with it (checked as TrainConfig and the
    model check it); one that could not is left out and said why, so the note never lists a setting
    the tab did not take, and no out-of-range number reaches the page."""
    values, problems = {}, []
    for key, raw in params.items():
        kind = QUERY_KEYS.get(key)
        if key == DATA_KEY:
            if raw in DATA_VALUES:
                values[key] = raw
            else:
                problems.append(f"'{key}={data.shown(raw, 40)}' is not openmoji or upload")
            continue
        if kind is None:  # a link's text is anyone's: shown bounded (data.shown)
            problems.append(f"unknown setting '{data.shown(key, 40)}'")
            continue
        try:
            values[key] = kind(raw)
        except ValueError:
            problems.append(f"'{key}={data.shown(raw, 40)}' is not a valid {kind.__name__}")
    if "preset" in values and values["preset"] not in PRESETS:
        problems.append(f"unknown preset '{data.shown(values.pop('preset'), 40)}'")
    base = PRESETS[values.get("preset", TRAIN_DEFAULT)].train
    for key, field in TRAIN_FIELDS.items():
        if key in values:
            try:
                base.with_(**{field: values[key]})
            except ValueError as e:
                problems.append(_bounded(e))  # names the setting and the value (a wrapper would
                del values[key]                  # be out-matched by the check's own template in i18n.tm)
    for key in ("size", "latent"):  # the size alone first: a bad latent must not cost a good size
        if key in values:
            full = complete_settings({k: v for k, v in values.items() if k != "latent" or key == "latent"})
            try:
                TrainSettings(full["preset"], full["size"], full["latent"]).model_config("ae")
            except ValueError as e:
                problems.append(_bounded(e))
                del values[key]
    return values, problems


def _bounded(error: ValueError) -> str:
    """A check's message about a link's value, which may hold the whole value (a 4,000-digit number)."""
    return data.shown(str(error), 200)


def complete_settings(values: dict) -> dict:
    """A link's settings with what it leaves out taken from its preset (or the Train tab's default).

    A size without a latent gets the preset's latent for that size (see config.adapt_latent)."""
    name = values.get("preset", TRAIN_DEFAULT)
    p = PRESETS[name]
    full = {"preset": name, "size": p.model.image_size, "latent": p.model.latent, "batch": p.train.batch_size,
            "lr": p.train.lr, "wd": p.train.weight_decay, "beta": p.train.beta}
    if "size" in values and "latent" not in values:
        try:
            full["latent"] = adapt_latent(p.model.latent, p.model.image_size, values["size"]) or p.model.latent
        except ValueError:
            pass  # a size out of range: the check in settings_from_query says so
    return {**full, **values}


def plan_text(settings: TrainSettings, split: data.Split) -> str:
    """What a training will do, before it starts: epochs, steps and the estimated time here."""
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    tcfg = settings.train_config()
    n = len(split.train)
    steps = steps_of(settings, n)
    est = timing.estimate_seconds(cfgs, n, len(split.val), tcfg.epochs)
    cap = f"; stopped at the {tcfg.seconds:.0f} s cap if it runs longer" if tcfg.seconds else ""
    e = tcfg.epochs
    return (f"{e} epoch{'s' * (e != 1)} x {n:,} image{'s' * (n != 1)} = {steps:,} step{'s' * (steps != 1)} "
            f"of batch {tcfg.batch_size} per model, "
            f"{settings.image_size} px, latent {cfgs[0].latent}; about {est:.0f} s on this server{cap}.")


# A brief training that teaches something: the default plan makes about 500 optimiser steps on
# OpenMoji (4 epochs x 4,045 images, batch 32). Below FEW_STEPS the models are still grey blurs
# (a 72-image upload at the default 4 epochs makes 12), so the plan says so and offers the epochs
# that make GOOD_STEPS on the data in use.
FEW_STEPS, GOOD_STEPS = 200, 500


def steps_of(settings: TrainSettings, n_train: int, epochs: int | None = None) -> int:
    """Optimiser steps per model: epochs x batches per epoch (the last batch may be short)."""
    tcfg = settings.train_config()
    return (tcfg.epochs if epochs is None else epochs) * -(-n_train // min(tcfg.batch_size, n_train))


def more_epochs(settings: TrainSettings, split: data.Split, most: int) -> tuple[int, int, float] | None:
    """(epochs, steps, estimated seconds) that make about GOOD_STEPS on this data, when the
    settings make fewer than FEW_STEPS; None when they make enough (or `most` epochs add none)."""
    n = len(split.train)
    if steps_of(settings, n) >= FEW_STEPS:
        return None
    per_epoch = steps_of(settings, n, 1)
    epochs = min(most, -(-GOOD_STEPS // per_epoch))
    if epochs <= settings.train_config().epochs:
        return None
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    return epochs, epochs * per_epoch, timing.estimate_seconds(cfgs, n, len(split.val), epochs)


def sweep_plan(plans: list[TrainSettings], n_train: int, n_val: int) -> tuple[int, float]:
    """An epochs sweep before it starts: optimiser steps per model in all, and estimated seconds."""
    steps = sum(steps_of(p, n_train) for p in plans)
    seconds = sum(timing.estimate_seconds([p.model_config(k) for k in ("ae", "vae")], n_train, n_val,
                                          p.train_config().epochs) for p in plans)
    return steps, seconds


def beta_plan(split: data.Split, image_size: int, n_betas: int, epochs: int,
              most: int) -> tuple[int, float, tuple[int, int, float] | None]:
    """What a beta sweep will do, before it starts (as plan_text for the Train tab): steps per beta,
    estimated seconds for the whole sweep, and, when the steps are too few to show the trade-off,
    (epochs, steps, seconds) that make about GOOD_STEPS per beta (None when `most` adds none)."""
    settings = TrainSettings(image_size=image_size, latent=BETA_LATENT, epochs=int(epochs))
    cfg, n, n_val = settings.model_config("vae"), len(split.train), len(split.val)
    steps = steps_of(settings, n)
    seconds = n_betas * timing.estimate_seconds([cfg], n, n_val, int(epochs))
    if steps >= FEW_STEPS:
        return steps, seconds, None
    per_epoch = steps_of(settings, n, 1)
    more = min(most, -(-GOOD_STEPS // per_epoch))
    if more <= epochs:
        return steps, seconds, None
    return steps, seconds, (more, more * per_epoch, n_betas * timing.estimate_seconds([cfg], n, n_val, more))
