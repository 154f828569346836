"""The shipped models: what they are (their recipes) and the manifest the app reads.

The script that trains them, measures them and writes the manifest is aevae/zoo_build.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from . import checkpoints
from .config import PRESETS, ModelConfig, TrainConfig, parse_latent

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SPLIT = {"spec": "openmoji", "val_fraction": 0.1, "seed": 0}
# 16x8x8 is the default pair. The top rung keeps a 16x16 map: a 256x8x8 code drawn by a 1x1 conv
# from 64 channels of 8x8 features holds no more than 64x8x8 does (we measured it a little worse).
LADDER = ["16", "64", "256", "16x8x8", "64x8x8", "64x16x16"]
BETAS = [0.0, 0.1, 0.5, 1.0, 2.0, 4.0]  # the rate-distortion sweep (VAEs with a 64-value vector latent)
BETA_LATENT = "64"
GENERATE, GENERATE_LATENT, GENERATE_GROUPS = "generate", "16", ("smileys & emotion",)
ZOO_THREADS = 1  # leaves the other core free while the zoo trains in the background
HALF_TOLERANCE_DB = 0.01


@dataclass(frozen=True)
class Recipe:
    name: str
    group: str  # "default", "ladder", "report", "beta" or "generate"
    model: ModelConfig
    train: TrainConfig
    rung: str = ""  # the latent, for ladder entries
    groups: tuple[str, ...] = ()  # OpenMoji groups it trains on (all when empty)


def recipes(quick: bool = False) -> list[Recipe]:
    default = PRESETS["default"]
    out: list[Recipe] = []
    # The default pair is also the ladder's 16x8x8 rung; every rung gets the same training.
    common = default.train.with_(threads=ZOO_THREADS)
    for kind in ("ae", "vae"):
        out.append(Recipe(f"default-{kind}", "default", default.model.with_(kind=kind, name=f"default-{kind}"),
                          common, default.model.latent))
    for lat in LADDER:
        if lat == default.model.latent:
            continue
        for kind in ("ae", "vae"):
            name = f"ladder-{lat}-{kind}"
            out.append(Recipe(name, "ladder", default.model.with_(kind=kind, latent=lat, name=name), common, lat))
    for preset, epochs in (("report-b", 25), ("report-a", 10)):
        p = PRESETS[preset]
        for kind in ("ae", "vae"):
            name = f"{preset}-{kind}"
            # Report A's batch of 4 costs too much CPU per epoch; we keep its lr with batch 16.
            tr = p.train.with_(epochs=epochs, threads=ZOO_THREADS)
            if preset == "report-b":  # with plateau cuts it spiked in its last epoch (30.3 -> 27.9 dB)
                tr = tr.with_(cosine=True)
            if preset == "report-a":
                tr = tr.with_(batch_size=16)
            out.append(Recipe(name, "report", p.model.with_(kind=kind, name=name), tr, p.model.latent))
    for b in BETAS:
        name = f"beta-{b:g}-vae"
        out.append(Recipe(name, "beta", default.model.with_(kind="vae", latent=BETA_LATENT, name=name),
                          common.with_(epochs=10, beta=b), BETA_LATENT))
    # The pair whose VAE generates: one vector of 16 values, beta 1 (the ELBO's own weight) and the
    # 167 "smileys & emotion" emoji, so that prior samples are faces a class recognises; on all 4,495
    # emoji (a third of them flags and symbols) no shipped VAE's samples were recognisable.
    gen_train = common.with_(epochs=200, batch_size=32, beta=1.0, cosine=True, kl_warmup_epochs=20)
    for kind in ("ae", "vae"):
        name = f"{GENERATE}-{kind}"
        out.append(Recipe(name, GENERATE, default.model.with_(kind=kind, latent=GENERATE_LATENT, name=name),
                          gen_train, GENERATE_LATENT, GENERATE_GROUPS))
    if quick:  # tiny models at 32 px, one epoch: the same code path in seconds
        small = []
        for r in out:
            if (r.group == "ladder" and r.rung not in ("16", "64x8x8")) or (
                    r.group == "beta" and r.train.beta not in (0.0, 1.0)):
                continue
            lat = r.model.latent.replace("8x8", "4x4")
            small.append(Recipe(r.name, r.group, r.model.with_(image_size=32, widths=(4, 8, 8), latent=lat),
                                r.train.with_(epochs=1, batch_size=32, kl_warmup_epochs=0), lat, r.groups))
        out = small
    return out


@functools.cache
def _recipe_names() -> tuple[str, ...]:
    return tuple(r.name for r in recipes())


def order_of(name: str) -> int:
    # recipes() builds every config (40 ms): once per process, not once per request
    names = _recipe_names()
    return names.index(name) if name in names else len(names)


class Zoo:
    """The shipped models as listed in the manifest; checkpoints load on first use."""

    def __init__(self, folder: str | Path = DEFAULT_DIR):
        self.folder = Path(folder)
        self.entries = checkpoints.read_manifest(self.folder)
        self._loaded: dict[str, checkpoints.Checkpoint] = {}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def entry(self, name: str) -> dict:
        for e in self.entries:
            if e["name"] == name:
                return e
        raise KeyError(f"no shipped model named {name!r}")

    def load(self, name: str) -> checkpoints.Checkpoint:
        if name not in self._loaded:
            self._loaded[name] = checkpoints.load(self.folder / self.entry(name)["file"])
        return self._loaded[name]

    def pair(self, prefix: str = "default") -> tuple[checkpoints.Checkpoint, checkpoints.Checkpoint]:
        return self.load(f"{prefix}-ae"), self.load(f"{prefix}-vae")

    def betas(self) -> list[dict]:
        """Entries of the beta sweep, smallest beta first."""
        return sorted((e for e in self.entries if e["group"] == "beta"), key=lambda e: e["train"]["beta"])

    def pairs(self) -> list[str]:
        """Prefixes that have both an AE and a VAE, e.g. 'default', 'ladder-64', 'report-b'."""
        names = {e["name"] for e in self.entries}
        return [n[:-3] for n in sorted(names, key=order_of) if n.endswith("-ae") and n[:-3] + "-vae" in names]

    def ladder(self) -> list[dict]:
        """Entries of the 64x64 latent ladder (the default pair included), smallest latent first."""
        rungs = [e for e in self.entries if e["group"] in ("default", "ladder")]
        return sorted(rungs, key=lambda e: (parse_latent(e["rung"]).numel, e["rung"], e["kind"]))
