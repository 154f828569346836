"""Typed configs: a model is built only from its ModelConfig, a run only from its TrainConfig."""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields

MIN_SIZE, MAX_SIZE = 32, 128
MAX_LATENT_VALUES = 200_000  # report A's 64x48x48 (147,456) must fit
# A vector code is made by fully connected layers from the last feature map (up to 65,536
# values at 128 px), so its parameters grow as features x latent: 4,096 is already 16x the
# largest shipped vector (256). Larger codes are refused here; what fits in memory beside
# that is for aevae.budget to say (it counts those layers' parameters).
MAX_VECTOR_LATENT = 4_096
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and many tools take 32-bit seeds
KINDS = ("ae", "vae")


def check_finite(value, name: str) -> float:
    """`value` as a float if it is a real, finite number; else ValueError naming `name`.

    Refuses NaN, +-inf, bools, None and strings: `not (0 < nan <= 1)` happens to refuse NaN
    in a range check, but `x >= 0` lets +inf through, so check this first.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        f = float(value)
    except (OverflowError, ValueError):  # e.g. an int too large for a float
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {f}")
    return f


def check_whole(value, name: str, lo: int, hi: int) -> int:
    """`value` as an int if it is a whole number (3 or 3.0) in lo..hi; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {value!r}")
    if not isinstance(value, numbers.Integral):
        f = check_finite(value, name)
        if f != int(f):
            raise ValueError(f"{name} must be a whole number, got {f}")
        value = int(f)
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {value:,}")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A seed as an int in 0..2**32-1; whole floats (3.0, as number widgets send) are accepted.

    Refuses bools, fractions, NaN/inf, negatives and anything larger, with a message
    (torch's manual_seed would otherwise fail with "Overflow when unpacking long long").
    """
    return check_whole(value, name, 0, MAX_SEED)


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
    """'256' -> vector of 256; '256x8x8' (or '256×8×8', '256,8,8') -> spatial map.

    The one parser for latent shapes typed anywhere. Every dimension must be >= 1 ('0',
    '64x0x0' and '0x8x8' are refused), a vector at most MAX_VECTOR_LATENT values and any
    latent at most MAX_LATENT_VALUES values. Raises ValueError with a message for the user.
    """
    shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:36] + "...'"
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"latent {shown}: write a vector size like 256 or a map like 256x8x8")
    s = str(text).strip().lower().replace("×", "x").replace(",", "x").replace(" ", "")
    # At most 9 digits a number: longer ones are over every limit anyway (and int() of
    # thousands of digits is slow).
    if re.fullmatch(r"\d{1,9}", s):
        dims = [int(s)]
    elif m := re.fullmatch(r"(\d{1,9})x(\d{1,9})x(\d{1,9})", s):
        dims = [int(g) for g in m.groups()]
    else:
        raise ValueError(f"latent {shown}: write a vector size like 256 or a map like 256x8x8")
    if min(dims) < 1:
        raise ValueError(f"latent {shown}: every size must be at least 1 "
                         "(write 256 for a vector, 64x8x8 for a map)")
    if len(dims) == 1:
        if dims[0] > MAX_VECTOR_LATENT:
            raise ValueError(f"latent {shown}: a vector latent is at most {MAX_VECTOR_LATENT:,} values "
                             "(for more, use a map like 64x16x16)")
        return Latent(dims[0])
    c, h, w = dims
    if h != w:
        raise ValueError(f"latent {shown}: spatial latents must be square (got {h}x{w})")
    lat = Latent(c, h, w)
    if lat.numel > MAX_LATENT_VALUES:
        raise ValueError(f"latent {shown} has {lat.numel:,} values; the limit is {MAX_LATENT_VALUES:,}")
    return lat


MAX_STAGES = 5  # down-sampling stages a spatial latent may take


def stage_sizes(image_size: int, n: int = MAX_STAGES) -> list[int]:
    """Spatial size before the first stage and after each of n stages.

    Both Conv2d(k=4, s=2, p=1) and MaxPool2d(2) map n -> floor(n / 2)."""
    sizes = [image_size]
    for _ in range(n):
        sizes.append(sizes[-1] // 2)
    return sizes


def spatial_placement(h: int, image_size: int) -> tuple[int, int] | None:
    """(stages, kernel) that give an h x h latent from image_size px images, or None.

    A 1x1 conv after the stage whose output is h x h, else a valid 3x3 conv after the stage
    whose output is h + 2 (report A's 64x48x48 from 50x50 images); the models are built so."""
    sizes = stage_sizes(image_size)
    for kernel, extra in ((1, 0), (3, 2)):
        for n, s in enumerate(sizes):
            if s == h + extra:
                return n, kernel
    return None


def spatial_sizes(image_size: int) -> list[int]:
    """Every h of an h x h latent that image_size px images can reach."""
    sizes = stage_sizes(image_size)
    return sorted({s for s in sizes if s >= 1} | {s - 2 for s in sizes if s > 2})


def nearest_latents(latent: str, image_size: int, most: int = 3) -> list[str]:
    """Latents that work at this image size, nearest to `latent` first: ready-to-pick choices.

    The same channels at the nearest reachable sizes (one below and one above), and the
    nearest size with about the same number of values. [latent] itself when it works; a
    vector latent always works."""
    lat = parse_latent(latent)
    if not lat.spatial or spatial_placement(lat.h, image_size) is not None:
        return [str(lat)]
    sizes = spatial_sizes(image_size)
    below = [h for h in sizes if h < lat.h][-1:]
    above = [h for h in sizes if h > lat.h][:1]
    near = sorted(below + above, key=lambda h: (abs(h - lat.h), -h))
    out = [Latent(lat.channels, h, h) for h in near]
    same_values = Latent(max(1, round(lat.numel / near[0] ** 2)), near[0], near[0])
    out.insert(1, same_values)
    return list(dict.fromkeys(str(v) for v in out if v.numel <= MAX_LATENT_VALUES))[:most]


def adapt_latent(latent: str, from_size: int, to_size: int) -> str | None:
    """A preset's latent for another image size: the same stages, so the map scales with the image.

    None when it cannot (the adapted map would be empty or over the limit). Vector latents work
    at every size and come back unchanged."""
    lat = parse_latent(latent)
    if not lat.spatial:
        return str(lat)
    placed = spatial_placement(lat.h, from_size)
    if placed is None:
        return None
    n, kernel = placed
    h = stage_sizes(to_size)[n] - (kernel - 1)
    if h < 1 or lat.channels * h * h > MAX_LATENT_VALUES:
        return None
    return str(Latent(lat.channels, h, h))


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
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        try:
            widths = tuple(check_whole(w, "width", 1, 1024) for w in self.widths)
        except (TypeError, ValueError):
            raise ValueError(f"widths must be 1-5 stage widths of 1..1024 channels, "
                             f"got {self.widths!r}") from None
        if not 1 <= len(widths) <= 5:
            raise ValueError(f"widths must be 1-5 stage widths of 1..1024 channels, got {widths}")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "image_size", check_whole(self.image_size, "image size", MIN_SIZE, MAX_SIZE))
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
        # Types first (whole numbers, finite floats; NaN/inf refused with their own message),
        # then ranges. Whole numbers given as floats (3.0) are stored as ints.
        def put(name, value):
            object.__setattr__(self, name, value)

        put("epochs", check_whole(self.epochs, "epochs", 1, 10_000))
        put("batch_size", check_whole(self.batch_size, "batch size", 1, 4096))
        put("eval_every", check_whole(self.eval_every, "eval_every", 1, 10_000))
        put("seed", check_seed(self.seed))
        if self.plateau_patience is not None:
            put("plateau_patience", check_whole(self.plateau_patience, "plateau patience", 0, 10_000))
        if self.threads is not None:
            put("threads", check_whole(self.threads, "threads", 1, 1024))
        if self.seconds is not None:
            put("seconds", check_finite(self.seconds, "seconds"))
        for name, label in (("lr", "learning rate"), ("weight_decay", "weight decay"), ("beta", "beta"),
                            ("kl_warmup_epochs", "KL warm-up"), ("plateau_factor", "plateau factor")):
            put(name, check_finite(getattr(self, name), label))
        checks = [
            (self.seconds is None or 0 < self.seconds <= 86_400, f"seconds must be in (0, 86400], got {self.seconds}"),
            (0 < self.lr <= 1, f"learning rate must be in (0, 1], got {self.lr}"),
            (0 <= self.weight_decay <= 1, f"weight decay must be in [0, 1], got {self.weight_decay}"),
            (0 <= self.beta <= 1000, f"beta must be in [0, 1000], got {self.beta}"),
            (0 <= self.kl_warmup_epochs <= 10_000, f"KL warm-up must be 0..10000 epochs, got {self.kl_warmup_epochs}"),
            (0 < self.plateau_factor < 1, f"plateau factor must be in (0, 1), got {self.plateau_factor}"),
            (isinstance(self.device, str) and (self.device in ("cpu", "mps") or self.device.startswith("cuda")),
             f"device must be cpu, cuda or mps, got {self.device!r}"),
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


def resolve_device(name: str | None = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is present, else Apple's 'mps', else 'cpu'; other names as given."""
    name = (name or "auto").strip().lower()
    if name != "auto":
        return name
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


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
    # The Train tab's default: a good pair in about half a minute on 2 cores (bench/default_train.py).
    # A 16x16 map needs one down-sampling stage fewer than 8x8, so it learns much faster per CPU
    # second; 8x16x16 is 2,048 values, 6x fewer than the 12,288 of a 64x64 image. Small batches and a
    # cosine decay to 0 make the most of 4 epochs.
    "quick": Preset(
        ModelConfig(widths=(16, 32, 64, 128), latent="8x16x16", name="quick"),
        TrainConfig(epochs=4, batch_size=32, lr=3e-3, beta=0.1, cosine=True),
        "quick: the default preset's network with an 8x16x16 latent (2,048 values), 4 epochs, batch 32, "
        "lr 0.003 decaying to 0, beta 0.1; about 35 s on 2 cores",
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
