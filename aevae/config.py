"""Typed configs: a model is built only from its ModelConfig, a run only from its TrainConfig."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

MIN_SIZE, MAX_SIZE = 32, 128
MAX_LATENT_VALUES = 200_000  # report A's 64x48x48 (147,456) must fit
KINDS = ("ae", "vae")


@dataclass(frozen=True)
class Latent:
    """A latent shape: a vector of `channels` values (h == w == 0) or a C x h x w map."""

    channels: int
    h: int = 0
    w: int = 0

    @property
    def spatial(self) -> bool:
        return self.h > 0

    @property
    def numel(self) -> int:
        return self.channels * self.h * self.w if self.spatial else self.channels

    def __str__(self) -> str:
        return f"{self.channels}x{self.h}x{self.w}" if self.spatial else str(self.channels)


def parse_latent(text: str | int) -> Latent:
    """'256' -> vector of 256; '256x8x8' (or '256×8×8', '256,8,8') -> spatial map."""
    s = str(text).strip().lower().replace("×", "x").replace(",", "x").replace(" ", "")
    if re.fullmatch(r"\d+", s):
        lat = Latent(int(s))
    elif m := re.fullmatch(r"(\d+)x(\d+)x(\d+)", s):
        c, h, w = (int(g) for g in m.groups())
        if h != w:
            raise ValueError(f"latent {text!r}: spatial latents must be square (got {h}x{w})")
        lat = Latent(c, h, w)
    else:
        raise ValueError(f"latent {text!r}: write a vector size like 256 or a map like 256x8x8")
    if lat.channels < 1 or (lat.spatial and lat.h < 1):
        raise ValueError(f"latent {text!r}: sizes must be at least 1")
    if lat.numel > MAX_LATENT_VALUES:
        raise ValueError(f"latent {text!r} has {lat.numel:,} values; the limit is {MAX_LATENT_VALUES:,}")
    return lat


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model.

    The encoder is a stack of down-sampling stages, one per entry of `widths`; the decoder
    mirrors it. A vector latent adds a fully connected bottleneck after all stages; a
    spatial latent C x h x w uses as many stages as it takes to reach h (see models.py).
    """

    kind: str = "vae"
    image_size: int = 64
    latent: str = "256"
    widths: tuple[int, ...] = (32, 64, 128)
    batchnorm: bool = True
    first_batchnorm: bool = True  # report B has no BatchNorm after the first conv
    pool: bool = False  # report A: conv(3x3, stride 1) + MaxPool2d(2) stages instead of stride-2 convs
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if not MIN_SIZE <= self.image_size <= MAX_SIZE:
            raise ValueError(f"image size must be {MIN_SIZE}..{MAX_SIZE}, got {self.image_size}")
        if not 1 <= len(self.widths) <= 5 or any(not 1 <= w <= 1024 for w in self.widths):
            raise ValueError(f"widths must be 1-5 stage widths of 1..1024 channels, got {self.widths}")
        parse_latent(self.latent)

    @property
    def latent_shape(self) -> Latent:
        return parse_latent(self.latent)

    def with_(self, **changes) -> ModelConfig:
        return ModelConfig(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    seconds: float | None = None  # wall-clock budget; training stops at whichever comes first
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-5
    beta: float = 1.0  # KL weight (VAE only)
    kl_warmup_epochs: float = 0.0  # beta ramps linearly from 0 over this many epochs
    plateau_patience: int | None = 2  # ReduceLROnPlateau on validation loss; None turns it off
    cosine: bool = False  # instead: lr decays to 0 along a half cosine over the planned steps
    plateau_factor: float = 0.5
    seed: int = 0
    threads: int | None = None  # None: torch's default (one per physical core)
    eval_every: int = 1  # epochs between validation passes
    device: str = "cpu"  # "cuda" where a GPU exists

    def __post_init__(self):
        checks = [
            (1 <= self.epochs <= 10_000, f"epochs must be 1..10000, got {self.epochs}"),
            (self.seconds is None or 0 < self.seconds <= 86_400, f"seconds must be > 0, got {self.seconds}"),
            (1 <= self.batch_size <= 4096, f"batch size must be 1..4096, got {self.batch_size}"),
            (0 < self.lr <= 1, f"learning rate must be in (0, 1], got {self.lr}"),
            (0 <= self.weight_decay <= 1, f"weight decay must be in [0, 1], got {self.weight_decay}"),
            (0 <= self.beta <= 1000, f"beta must be in [0, 1000], got {self.beta}"),
            (self.kl_warmup_epochs >= 0, "KL warm-up must be >= 0 epochs"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.device == "cpu" or self.device.startswith("cuda"), f"device must be cpu or cuda, got {self.device!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    def with_(self, **changes) -> TrainConfig:
        return TrainConfig(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    train: TrainConfig
    note: str = ""
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    # Chosen for quality per CPU second on 2 cores (see bench/ and the zoo's note): narrow
    # stages (16/32/64, a 4th of 128 for vector latents) and a 16x8x8 spatial code (1,024
    # values, 12x fewer than a 64x64 image). beta 0.1 keeps the VAE's reconstructions usable.
    "default": Preset(
        ModelConfig(widths=(16, 32, 64, 128), latent="16x8x8", name="default"),
        TrainConfig(epochs=30, batch_size=64, lr=2e-3, beta=0.1),
        "aevae's default: conv stages 16/32/64, 16x8x8 latent (1,024 values), beta 0.1",
    ),
    # Report B, layer for layer: Conv(3,64,4,2,1)+ReLU, Conv(64,128)+BN+ReLU, Conv(128,256)+BN+ReLU,
    # latent 256x8x8, mirrored ConvTranspose decoder with a Sigmoid; Adam + weight decay, plateau LR.
    "report-b": Preset(
        ModelConfig(image_size=64, widths=(64, 128, 256), latent="256x8x8", first_batchnorm=False,
                    name="report-b"),
        TrainConfig(epochs=200, batch_size=64, lr=2e-3, weight_decay=1e-5),
        "Report B: 3x64x64, conv 64/128/256 with BatchNorm, 256x8x8 latent, lr 0.002, 200 epochs",
    ),
    # Report A: conv + max-pool encoder, a fully connected layer to a 1x256 code, 3x50x50 images,
    # batch 4, lr 0.005 (AE 20 epochs, VAE 10).
    "report-a": Preset(
        ModelConfig(image_size=50, widths=(16, 32, 64), latent="256", pool=True, name="report-a"),
        TrainConfig(epochs=20, batch_size=4, lr=5e-3, plateau_patience=None),
        "Report A: 3x50x50, conv+maxpool 16/32/64, FC to 256, batch 4, lr 0.005",
    ),
    # Report A's Problem 5-1: a 'latent' of 64x48x48 at 50x50, larger than the image itself.
    "report-a-wide": Preset(
        ModelConfig(image_size=50, widths=(16, 32, 64), latent="64x48x48", pool=True,
                    name="report-a-wide"),
        TrainConfig(epochs=20, batch_size=4, lr=5e-3, plateau_patience=None),
        "Report A 5-1: 64x48x48 latent (147,456 values) for a 7,500-value image",
    ),
}


def preset(name: str, kind: str = "vae", **model_changes) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].model.with_(kind=kind, **model_changes)
