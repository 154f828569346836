"""Per-user state and the actions behind the app's tabs. No UI imports: app.py only formats.

Each browser session gets a `Session` (kept in a `SessionStore` keyed by Gradio's session
hash): the models it trained, its uploaded data and its runs. Shipped models and the rendered
OpenMoji set are shared read-only by all sessions.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data, metrics, sampling
from .checkpoints import Checkpoint
from .config import PRESETS, ModelConfig, TrainConfig, parse_latent
from .models import AutoEncoder, build_model, plan
from .train import History, Progress, train_together
from .zoo import BETA_LATENT, Zoo

OPENMOJI = "openmoji"
MAX_RECON_IMAGES = 64
MAX_SESSIONS = 100
_split_lock = threading.Lock()
_splits: dict[int, data.Split] = {}


class NoModels(RuntimeError):
    """There is no model to use yet: nothing shipped and nothing trained in this session."""


def openmoji_split(size: int) -> data.Split:
    """The default dataset's fixed split, rendered once per size and shared (read-only)."""
    with _split_lock:
        if size not in _splits:
            _splits[size] = data.load_split(OPENMOJI, size, 0.1, 0)
        return _splits[size]


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

    @classmethod
    def from_checkpoints(cls, ae: Checkpoint, vae: Checkpoint, source: str) -> Pair:
        return cls(ae.model, vae.model, source, ae.meta.get("train") or {},
                   {"ae": ae.meta.get("history") or {}, "vae": vae.meta.get("history") or {}},
                   ae.meta.get("dataset") or {})


@dataclass
class TrainSettings:
    """What the Train tab asks for; validated into a ModelConfig and a TrainConfig."""

    preset: str = "default"
    image_size: int = 64
    latent: str = PRESETS["default"].model.latent
    epochs: int = 10
    seconds: float | None = 30.0  # for the pair, trained together
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-5
    beta: float = 1.0
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
        return PRESETS[self.preset].train.with_(
            epochs=int(self.epochs), seconds=secs, batch_size=int(self.batch_size), lr=float(self.lr),
            weight_decay=float(self.weight_decay), beta=float(self.beta), seed=int(self.seed))


# Query-string keys of the Train tab's settings (shareable links), with their types.
QUERY_KEYS = {"preset": str, "size": int, "latent": str, "epochs": int, "seconds": float, "batch": int,
              "lr": float, "wd": float, "beta": float, "seed": int}


def settings_from_query(params: dict[str, str]) -> tuple[dict, list[str]]:
    """Train settings from a page's query parameters; problems are returned, never dropped silently."""
    values, problems = {}, []
    for key, raw in params.items():
        kind = QUERY_KEYS.get(key)
        if kind is None:
            problems.append(f"unknown setting '{key}'")
            continue
        try:
            values[key] = kind(raw)
        except ValueError:
            problems.append(f"'{key}={raw}' is not a valid {kind.__name__}")
    if "preset" in values and values["preset"] not in PRESETS:
        problems.append(f"unknown preset '{values.pop('preset')}'")
    try:
        TrainSettings(values.get("preset", "default"), values.get("size", 64),
                      values.get("latent", PRESETS["default"].model.latent)).model_config("ae")
    except ValueError as e:
        problems.append(str(e))
    return values, problems


class Session:
    def __init__(self, zoo: Zoo | None):
        self.zoo = zoo
        self.trained: Pair | None = None
        self.use_shipped = False
        self.upload: tuple[Path, str, Path | None] | None = None  # (saved file, name, saved labels)
        self._upload_splits: dict[int, data.Split] = {}
        self.runs: list[dict] = []
        self.rungs: dict[str, dict] = {}  # latent -> {"ae": model, "vae": model, ...} trained here
        self.code_map = None  # (pair name, kind, sampling.CodeMap) of the last map drawn
        self.last: dict = {}  # the latest results shown per tab, for the report
        self.stop = threading.Event()
        self.lock = threading.Lock()  # one training at a time per session
        self._tmp: Path | None = None

    # --- where things come from -------------------------------------------------------
    @property
    def tmpdir(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="aevae-session-"))
        return self._tmp

    def run_rows(self) -> list[dict]:
        """The hyperparameter runs as table rows (without their loss histories)."""
        return [{k: v for k, v in r.items() if k != "histories"} for r in self.runs]

    def close(self) -> None:
        self.stop.set()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def shipped_pair(self) -> Pair:
        if not self.zoo:
            raise NoModels("No shipped models were found: train a pair in the Train tab first.")
        ae, vae = self.zoo.pair("default")
        return Pair.from_checkpoints(ae, vae, "shipped: default")

    def pair(self) -> Pair:
        if self.trained is not None and not self.use_shipped:
            return self.trained
        return self.shipped_pair()

    def set_upload(self, paths, image_size: int) -> data.Split:
        """Keep a copy of the user's dataset (loaded once to check it), then use it.

        `paths`: one .zip / .npy / .npz, or a .npy of images plus a .npy of labels (the one whose
        name says "label", as in report A's gen_data.npy / gen_label.npy).
        """
        files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        if not 1 <= len(files) <= 2:
            raise ValueError("upload one dataset file, or a .npy of images and a .npy of labels")
        labels = None
        if len(files) == 2:
            named = [f for f in files if "label" in f.name.lower()]
            if len(named) != 1 or any(f.suffix.lower() != ".npy" for f in files):
                raise ValueError("with two files, both must be .npy and exactly one named like *label*.npy")
            labels = named[0]
            files.remove(labels)
        src = files[0]
        split = data.load_split(str(src), image_size, labels_path=labels)
        keep = self.tmpdir / f"data{src.suffix.lower()}"
        shutil.copyfile(src, keep)
        keep_labels = None
        if labels is not None:
            keep_labels = self.tmpdir / "labels.npy"
            shutil.copyfile(labels, keep_labels)
        name = src.name + (f" + {labels.name}" if labels else "")
        split.all.source = f"uploaded: {name} ({len(split.all)} images, {image_size}x{image_size})"
        self.upload = (keep, name, keep_labels)
        self._upload_splits = {image_size: split}
        return split

    def clear_upload(self) -> None:
        self.upload = None
        self._upload_splits = {}

    def split(self, size: int) -> data.Split:
        if self.upload is None:
            return openmoji_split(size)
        if size not in self._upload_splits:
            path, name, labels = self.upload
            split = data.load_split(str(path), size, labels_path=labels)
            split.all.source = f"uploaded: {name}"
            self._upload_splits[size] = split
        return self._upload_splits[size]


class SessionStore:
    """Sessions by key, oldest dropped past `limit` so memory stays bounded."""

    def __init__(self, zoo: Zoo | None, limit: int = MAX_SESSIONS):
        self.zoo = zoo
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Session:
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                s = self._sessions[key] = Session(self.zoo)
                while len(self._sessions) > self.limit:
                    _, old = self._sessions.popitem(last=False)
                    old.close()
            self._sessions.move_to_end(key)
            return s

    def drop(self, key: str) -> None:
        with self._lock:
            s = self._sessions.pop(key, None)
        if s is not None:
            s.close()

    def __len__(self) -> int:
        return len(self._sessions)


# --- actions --------------------------------------------------------------------------
def choose(split: data.Split, ids: list[int] | None, n: int = 10, seed: int = 0) -> data.ImageSet:
    """Images by 1-based ids from the whole set, or n random ones from the validation split."""
    if ids:
        if len(ids) > MAX_RECON_IMAGES:
            raise ValueError(f"at most {MAX_RECON_IMAGES} images at once, got {len(ids)} ids")
        return split.all.select_ids(ids)
    if not 1 <= n <= MAX_RECON_IMAGES:
        raise ValueError(f"number of images must be 1..{MAX_RECON_IMAGES}, got {n}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(split.val), min(n, len(split.val)), replace=False))
    return split.val.subset(pick)


@dataclass
class Reconstruction:
    images: data.ImageSet  # ground truth
    ae: metrics.EvalResult
    vae: metrics.EvalResult

    def rows(self) -> list[dict]:
        out = []
        for i, a, v in zip(range(len(self.images)), self.ae.rows(), self.vae.rows()):
            out.append({"id": int(self.images.ids[i]), "name": self.images.names[i],
                        "label": self.images.label_names[self.images.labels[i]],
                        "AE PSNR": a["psnr"], "VAE PSNR": v["psnr"], "AE SSIM": a["ssim"],
                        "VAE SSIM": v["ssim"], "AE LPIPS": a["lpips"], "VAE LPIPS": v["lpips"]})
        return out


def reconstruct(pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
    if images.image_size != pair.image_size:
        raise ValueError(f"images are {images.image_size}px but the models take {pair.image_size}px")
    return Reconstruction(images, metrics.evaluate(pair.ae, images, lpips=lpips),
                          metrics.evaluate(pair.vae, images, lpips=lpips))


def load_user_images(paths: list[str], size: int) -> data.ImageSet:
    """Single image files (or a zip) uploaded to be reconstructed, as one ImageSet."""
    sets = []
    for p in paths:
        sets.append(data.load_dataset(str(p), size))
    if not sets:
        raise ValueError("no images uploaded")
    imgs = np.concatenate([s.images for s in sets])[:MAX_RECON_IMAGES]
    names = [n for s in sets for n in s.names][:MAX_RECON_IMAGES]
    skipped = [k for s in sets for k in s.skipped]
    return data.ImageSet(imgs, np.zeros(len(imgs), np.int64), [data.UNLABELLED], names,
                         np.arange(1, len(imgs) + 1), "uploaded images", skipped)


def variants(pair: Pair, images: data.ImageSet, k: int, scale: float, seed: int) -> sampling.VariantSet:
    return sampling.variant_set(pair.vae, pair.ae, images.images, images.ids, images.labels, k, scale, seed)


def ladder_models(session: Session) -> list[dict]:
    """Rungs of the latent ladder: shipped entries plus rungs trained in this session."""
    rows = []
    zoo = session.zoo
    if zoo:
        by_rung: dict[str, dict] = {}
        for e in zoo.ladder():
            by_rung.setdefault(e["rung"], {"latent": e["rung"], "source": "shipped"})[e["kind"]] = e["name"]
        for r in by_rung.values():
            if "ae" in r and "vae" in r:
                rows.append({**r, "ae": zoo.load(r["ae"]).model, "vae": zoo.load(r["vae"]).model,
                             "recorded": {k: zoo.entry(r[k])["metrics"] for k in ("ae", "vae")}})
    rows += list(session.rungs.values())
    return sorted(rows, key=lambda r: parse_latent(r["latent"]).numel)


def latent_sizes(session: Session, images: data.ImageSet, lpips: bool = True) -> list[dict]:
    out = []
    for r in ladder_models(session):
        if r["ae"].config.image_size != images.image_size:
            continue
        res = {k: metrics.evaluate(r[k], images, lpips=lpips) for k in ("ae", "vae")}
        out.append({"latent": r["latent"], "source": r["source"], "values": r["ae"].latent_numel,
                    "image_values": 3 * images.image_size ** 2, "results": res})
    return out


def train_pair(session: Session, settings: TrainSettings, split: data.Split,
               on_progress=None) -> Pair:
    """Train an AE and a VAE side by side on the same batches, seed, architecture and budget.

    On success (a stop request counts: both keep what they learned) the pair becomes this
    session's models; on failure (e.g. NaN) the previous models stay and the error propagates.
    """
    cfgs = {k: settings.model_config(k) for k in ("ae", "vae")}
    tcfg = settings.train_config()
    if split.all.image_size != cfgs["ae"].image_size:
        raise ValueError("the data and the model have different image sizes")
    session.stop.clear()
    torch.manual_seed(tcfg.seed)
    models = {k: build_model(cfgs[k]) for k in ("ae", "vae")}
    t0 = time.perf_counter()
    hists = train_together(models, split.train, split.val, tcfg, on_progress, session.stop.is_set)
    if not hists["ae"].iter_loss:
        raise InterruptedError("stopped before the first batch; your previous models are unchanged")
    pair = Pair(models["ae"], models["vae"], f"run {len(session.runs) + 1}", tcfg.to_dict(),
                {k: h.to_dict() for k, h in hists.items()}, split.describe())
    session.trained, session.use_shipped = pair, False
    session.runs.append(run_row(len(session.runs) + 1, settings, pair, split, time.perf_counter() - t0))
    return pair


def run_row(number: int, settings: TrainSettings, pair: Pair, split: data.Split, seconds: float) -> dict:
    """One row of the hyperparameter table, with validation metrics computed now."""
    row = {"run": number, "preset": settings.preset, "latent": settings.latent, "epochs": settings.epochs,
           "batch": settings.batch_size, "lr": settings.lr, "beta": settings.beta,
           "seconds": round(seconds, 1), "data": split.all.source}
    for kind, model in (("AE", pair.ae), ("VAE", pair.vae)):
        hist = History.from_dict(pair.history[kind.lower()])
        s = metrics.evaluate(model, split.val, lpips=False).summary()
        row[f"{kind} epochs done"] = len(hist.epochs)
        row[f"{kind} final loss (MSE)"] = round(hist.final.get("mse", float("nan")), 5)
        row[f"{kind} val PSNR"] = round(s["psnr"].mean, 2)
        row[f"{kind} val SSIM"] = round(s["ssim"].mean, 4)
    row["histories"] = pair.history
    return row


def train_rung(session: Session, latent: str, seconds: float, split: data.Split, seed: int = 0,
               on_progress=None) -> dict:
    """Train a missing ladder rung briefly (default architecture, given latent)."""
    lat = parse_latent(latent)
    settings = TrainSettings(image_size=split.all.image_size, latent=str(lat), epochs=1000, seconds=seconds, seed=seed)
    cfgs = {k: settings.model_config(k) for k in ("ae", "vae")}
    tcfg = settings.train_config()
    session.stop.clear()
    torch.manual_seed(seed)
    models = {k: build_model(cfgs[k]) for k in ("ae", "vae")}
    train_together(models, split.train, split.val, tcfg, on_progress, session.stop.is_set)
    rung = {"latent": str(lat), "source": f"trained here ({seconds:.0f} s)", **models}
    session.rungs[str(lat)] = rung
    return rung


def progress_text(p: Progress) -> str:
    budget = f" / {p.budget:.0f} s" if p.budget else ""
    return f"epoch {p.epoch}/{p.epochs}, step {p.step}, {p.seconds:.1f} s{budget}"


# --- latent space and the beta trade-off ----------------------------------------------
IN_USE = "in use"


def pair_choices(zoo: Zoo | None) -> list[str]:
    return [IN_USE] + [f"shipped: {p}" for p in (zoo.pairs() if zoo else [])]


def pair_named(session: Session, name: str) -> Pair:
    if not name or name == IN_USE:
        return session.pair()
    prefix = name.removeprefix("shipped: ")
    if not session.zoo or prefix not in session.zoo.pairs():
        raise ValueError(f"no shipped pair named {prefix!r}")
    ae, vae = session.zoo.pair(prefix)
    return Pair.from_checkpoints(ae, vae, f"shipped: {prefix}")


def prior_pair(pair: Pair, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same draws z ~ N(0, I) decoded by the VAE and by the AE."""
    z = torch.randn((n, *pair.vae.latent_shape), generator=torch.Generator().manual_seed(seed))
    return sampling.prior_samples(pair.vae, z=z), sampling.prior_samples(pair.ae, z=z)


def interpolations(pair: Pair, a: np.ndarray, b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    return {"AE linear": sampling.interpolate(pair.ae, a, b, steps),
            "VAE linear": sampling.interpolate(pair.vae, a, b, steps),
            "VAE spherical": sampling.interpolate(pair.vae, a, b, steps, spherical=True)}


def beta_results(models: list[tuple[float, AutoEncoder]], split: data.Split, n_samples: int = 8,
                 seed: int = 0) -> list[dict]:
    """Rate (KL, nats/image) and distortion (MSE per pixel value) on the validation split per beta."""
    from .train import as_uint8_nchw, validate

    val = as_uint8_nchw(split.val)
    rows = []
    for beta, m in models:
        v = validate(m, val, beta, seed=seed)
        z = torch.randn((n_samples, *m.latent_shape), generator=torch.Generator().manual_seed(seed))
        rows.append({"beta": beta, "KL (nats/image)": v["val_kl"], "MSE per pixel": v["val_mse"],
                     "val PSNR": v["val_psnr"], "samples": sampling.prior_samples(m, z=z),
                     "recon": metrics.evaluate(m, split.val.subset(np.arange(n_samples)), lpips=False).recon})
    return rows


def shipped_betas(session: Session) -> list[tuple[float, AutoEncoder]]:
    if not session.zoo:
        return []
    return [(e["train"]["beta"], session.zoo.load(e["name"]).model) for e in session.zoo.betas()]


def train_betas(session: Session, split: data.Split, betas: list[float], seconds: float, seed: int = 0,
                on_progress=None) -> list[tuple[float, AutoEncoder]]:
    """A brief VAE per beta on this session's data, one after the other with equal budgets.

    Every model starts from the same initial weights, so they differ only in beta.
    """
    cfg = TrainSettings(image_size=split.all.image_size, latent=BETA_LATENT).model_config("vae")
    base = TrainSettings(epochs=1000, seconds=seconds, seed=seed).train_config()
    session.stop.clear()
    out = []
    for b in betas:
        torch.manual_seed(seed)
        m = build_model(cfg)
        train_together({f"{b:g}": m}, split.train, split.val, base.with_(beta=float(b)), on_progress,
                       session.stop.is_set)
        out.append((float(b), m))
    return out
