"""The analyses behind the tabs, computed from a pair of models: reconstructions and their scores,
noisy variants, the latent-size ladder, the latent space (prior samples, interpolations, code
maps) and the beta trade-off. Answers about shipped models are memoised for every session
(SHIPPED_ANSWERS).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from . import (
    classroom,
    data,
    metrics,
    sampling,
)
from .config import parse_latent
from .datasets import OPENMOJI, openmoji_split, trained_on
from .models import AutoEncoder
from .runs import RUN, SHIPPED, Pair
from .session_state import Session
from .train import as_uint8_nchw
from .zoo import GENERATE, Zoo


@dataclass
class Reconstruction:
    images: data.ImageSet  # ground truth
    ae: metrics.EvalResult
    vae: metrics.EvalResult
    source: str = ""  # the pair that made them ("shipped: default", "run 3")

    def rows(self) -> list[dict]:
        out = []
        for i, a, v in zip(range(len(self.images)), self.ae.rows(), self.vae.rows()):
            out.append({"id": int(self.images.ids[i]), "name": self.images.names[i],
                        "label": self.images.label_names[self.images.labels[i]],
                        "AE PSNR": a["psnr"], "VAE PSNR": v["psnr"], "AE SSIM": a["ssim"],
                        "VAE SSIM": v["ssim"], "AE LPIPS": a["lpips"], "VAE LPIPS": v["lpips"]})
        return out


@dataclass
class ShownVariants:
    """The variants a session last drew (the Variants tab), kept for its report."""
    images: data.ImageSet  # the sources
    variants: sampling.VariantSet
    source: str  # the pair that made them


@dataclass
class ShownCodeMap:
    """The code map a session last drew (the Latent space tab), for decoding a point of it."""
    pair: str  # the pair's name as chosen ("shipped: generate", "run 2")
    kind: str  # "VAE" or "AE"
    map: sampling.CodeMap


# Answers that depend only on shipped files (shipped models on the shipped data), computed once
# for every student of the server: a whole class opening the same tab costs one computation.
SHIPPED_ANSWERS = classroom.Memo(256)


def shipped_key(session: Session, pair: Pair | None, *parts):
    """A key for an answer made from shipped models and data only, else None (not shared)."""
    if session.uses_upload or (pair is not None and not pair.source.startswith("shipped:")):
        return None
    return (pair.source if pair is not None else "", *parts)


class ImageScores:
    """Each image's reconstructions and scores by a shipped pair on the shipped data, kept per
    image: a draw is a set of images, so 30 different draws of the same 450 validation images
    share most of their work, and what one request is computing another waits for instead of
    computing it again. Bounded by bytes (the reconstructions), least recently used dropped."""

    def __init__(self, max_bytes: int = 64 * 2**20):
        self.max_bytes, self.bytes = max_bytes, 0
        self._done: OrderedDict = OrderedDict()
        self._pending: dict = {}
        self._lock = threading.Lock()
        self.computed = 0  # images actually run through the models

    def reconstruct(self, pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
        keys = [(pair.source, images.image_size, lpips, int(i)) for i in images.ids]
        mine, waits = {}, {}
        with self._lock:
            for k in keys:
                if k in self._done:
                    self._done.move_to_end(k)
                elif k in self._pending:
                    waits[k] = self._pending[k]
                elif k not in mine:
                    mine[k] = self._pending[k] = Future()
        got = {}
        if mine:
            where = [keys.index(k) for k in mine]
            try:
                rec = reconstruct(pair, images.subset(where), lpips)
            except BaseException as e:
                with self._lock:
                    for k in mine:
                        self._pending.pop(k, None)
                for f in mine.values():
                    f.set_exception(e)
                raise
            for j, k in enumerate(mine):
                got[k] = tuple((r.recon[j], r.psnr[j], r.ssim[j], None if r.lpips is None else r.lpips[j],
                                r.lpips_note) for r in (rec.ae, rec.vae))
            with self._lock:
                self.computed += len(mine)
                for k, v in got.items():
                    self._pending.pop(k, None)
                    self._done[k] = v
                    self.bytes += v[0][0].nbytes + v[1][0].nbytes
                while self.bytes > self.max_bytes and self._done:
                    _, old = self._done.popitem(last=False)
                    self.bytes -= old[0][0].nbytes + old[1][0].nbytes
            for k, f in mine.items():
                f.set_result(got[k])
        for k, f in waits.items():
            got[k] = f.result()
        with self._lock:
            rows = [got[k] if k in got else self._done.get(k) for k in keys]
        if any(r is None for r in rows):  # dropped meanwhile (a full store): computed as it is
            return reconstruct(pair, images, lpips)
        ids = [int(i) for i in images.ids]

        def result(m: int) -> metrics.EvalResult:
            part = [r[m] for r in rows]
            lp = None if part[0][3] is None else np.array([p[3] for p in part], np.float64)
            return metrics.EvalResult(ids, np.array([p[1] for p in part], np.float64),
                                      np.array([p[2] for p in part], np.float64), lp, part[0][4],
                                      np.stack([p[0] for p in part]))

        return Reconstruction(images, result(0), result(1), pair.source)


SHIPPED_IMAGES = ImageScores()


def warm_validation(session: Session, lpips: bool = True, chunk: int = 30, should_stop=None) -> int:
    """Every validation image through the session's pair when it is shipped (server start, in the
    background), kept per image: any random draw of the shipped data is then answered from
    memory. In chunks, each taking a compute slot, so requests are served in between; should_stop
    is asked between chunks. Returns how many images were done."""
    pair = session.pair()
    if shipped_key(session, pair) is None:
        return 0
    val = session.split(pair.image_size).val
    for i in range(0, len(val), chunk):
        if should_stop is not None and should_stop():
            return i
        SHIPPED_IMAGES.reconstruct(pair, val.subset(np.arange(i, min(i + chunk, len(val)))), lpips)
    return len(val)


def reconstruct_for(session: Session, pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
    key = shipped_key(session, pair, "reconstruct", images.image_size, tuple(int(i) for i in images.ids), lpips)
    if key is None:
        return reconstruct(pair, images, lpips)
    return SHIPPED_ANSWERS.get(key, lambda: SHIPPED_IMAGES.reconstruct(pair, images, lpips))


def reconstruct(pair: Pair, images: data.ImageSet, lpips: bool = True) -> Reconstruction:
    if images.image_size != pair.image_size:
        raise ValueError(f"images are {images.image_size}px but the models take {pair.image_size}px")
    with classroom.computing():
        return Reconstruction(images, *metrics.evaluate_pair(pair.ae, pair.vae, images, lpips=lpips), pair.source)


def other_data(session: Session, dataset: dict, size: int) -> str | None:
    """What a model was trained on when that is not the data this session uses, else None.

    Compared by content (classroom.fingerprint) where the model recorded it; shipped models
    record only that they were trained on OpenMoji (or some of its groups)."""
    if "fingerprint" in dataset:
        if dataset["fingerprint"] == classroom.fingerprint(session.split(size)):
            return None
    elif dataset and dataset.get("spec", OPENMOJI) == OPENMOJI and not session.uses_upload:
        return None
    return trained_on(dataset)


def data_note(session: Session, pair: Pair, what: str = "these images") -> str:
    """A sentence when the pair was trained on other data than the data in use, else ''."""
    other = other_data(session, pair.dataset, pair.image_size)
    if other is None:
        return ""
    part = str(pair.dataset.get("spec", "")).startswith(OPENMOJI + " (") and not session.uses_upload
    seen = ("it saw only part of this data, so expect it to do worse on the rest" if part else
            f"it never saw {what}, so expect it to do worse on them than on its own data")
    return f"{pair.source} was trained on {other}, not on the data in use ({session.data_source()}): {seen}."


def variants_for(session: Session, pair: Pair, images: data.ImageSet, k: int, scale: float,
                 seed: int) -> sampling.VariantSet:
    key = shipped_key(session, pair, "variants", tuple(int(i) for i in images.ids), k, scale, seed)
    return SHIPPED_ANSWERS.get(key, lambda: variants(pair, images, k, scale, seed))


def variants(pair: Pair, images: data.ImageSet, k: int, scale: float, seed: int) -> sampling.VariantSet:
    with classroom.computing():
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
                ae = zoo.load(r["ae"])
                rows.append({**r, "ae": ae.model, "vae": zoo.load(r["vae"]).model,
                             "recorded": {k: zoo.entry(r[k])["metrics"] for k in ("ae", "vae")},
                             "dataset": ae.meta.get("dataset") or {},
                             "epochs": len((ae.meta.get("history") or {}).get("epochs") or [])})
    for run in session.runs:
        if run.kind == "rung" and run.pair is not None:
            rows.append({"latent": run.pair.latent, "source": f"run {run.number} (trained here)",
                         "ae": run.pair.ae, "vae": run.pair.vae, "dataset": run.pair.dataset,
                         "epochs": run.record.epochs_done})
    return sorted(rows, key=lambda r: parse_latent(r["latent"]).numel)


def latent_sizes(session: Session, images: data.ImageSet, lpips: bool = True) -> list[dict]:
    if not any(run.kind == "rung" for run in session.runs):
        key = shipped_key(session, None, "latent sizes", images.image_size,
                          tuple(int(i) for i in images.ids), lpips)
        return SHIPPED_ANSWERS.get(key, lambda: _latent_sizes(session, images, lpips))
    return _latent_sizes(session, images, lpips)


def _latent_sizes(session: Session, images: data.ImageSet, lpips: bool = True) -> list[dict]:
    out = []
    for r in ladder_models(session):
        if r["ae"].config.image_size != images.image_size:
            continue
        with classroom.computing():
            res = dict(zip(("ae", "vae"), metrics.evaluate_pair(r["ae"], r["vae"], images, lpips=lpips), strict=True))
        out.append({"latent": r["latent"], "source": r["source"], "values": r["ae"].latent_numel,
                    "image_values": 3 * images.image_size ** 2, "results": res, "dataset": r["dataset"],
                    "epochs": r.get("epochs")})
    return out


def latent_rows(session: Session, res: list[dict], image_size: int) -> list[dict]:
    """latent_sizes' results as table rows, two per rung (AE, VAE): its size against the image's,
    how long it was trained, its means, where it comes from and what data it was trained on."""
    rows = []
    for r in res:
        other = other_data(session, r["dataset"], image_size)
        for kind in ("ae", "vae"):
            sm = r["results"][kind].summary()
            rows.append({"latent": r["latent"], "model": kind.upper(), "latent values": r["values"],
                         "vs image values": r["values"] / r["image_values"], "epochs": r["epochs"],
                         "PSNR": sm["psnr"].mean, "SSIM": sm["ssim"].mean,
                         "LPIPS": sm["lpips"].mean if sm["lpips"] else None, "source": r["source"],
                         "trained on": "the data in use" if other is None else other})
    return rows


IN_USE = "in use"


# The shipped pair whose VAE generates (zoo.py): the Latent space tab's default.
GENERATIVE_PAIR = GENERATE


GENERATIVE = SHIPPED + GENERATIVE_PAIR


def pair_choices(zoo: Zoo | None) -> list[tuple[str, str]]:
    """Choices of the Latent space tab: the pair in use (see 'Models in use'), or a shipped pair."""
    return [("the pair in use", IN_USE)] + [(f"shipped: {p}", SHIPPED + p) for p in (zoo.pairs() if zoo else [])]


def pair_named(session: Session, name: str) -> Pair:
    if not name or name == IN_USE:
        return session.pair()
    name = name.strip()
    if name.startswith(SHIPPED):
        name = SHIPPED + name.removeprefix(SHIPPED).strip()
    return session.pair_of(name if name.startswith((RUN, SHIPPED)) else SHIPPED + name)


def prior_pair_for(session: Session, pair: Pair, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    key = None if not pair.source.startswith("shipped:") else (pair.source, "prior", n, seed)
    return SHIPPED_ANSWERS.get(key, lambda: prior_pair(pair, n, seed))


def prior_pair(pair: Pair, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same draws z ~ N(0, I) decoded by the VAE and by the AE."""
    z = torch.randn((n, *pair.vae.latent_shape), generator=torch.Generator().manual_seed(seed))
    with classroom.computing():
        return sampling.prior_samples(pair.vae, z=z), sampling.prior_samples(pair.ae, z=z)


def code_map_for(session: Session, pair: Pair, kind: str, split: data.Split):
    """PCA map of the validation codes and its decoded 7x7 grid (shared when shipped)."""
    def compute():
        model = pair.vae if kind == "VAE" else pair.ae
        with classroom.computing():
            cmap = sampling.code_map(model, split.val)
            return cmap, sampling.decode_grid(model, cmap, 7)

    return SHIPPED_ANSWERS.get(shipped_key(session, pair, "code map", kind, split.all.image_size), compute)


def interpolations_for(session: Session, pair: Pair, two: data.ImageSet, steps: int) -> dict[str, np.ndarray]:
    key = shipped_key(session, pair, "interpolate", tuple(int(i) for i in two.ids), two.image_size, steps)
    return SHIPPED_ANSWERS.get(key, lambda: interpolations(pair, two.images[0], two.images[1], steps))


def interpolations(pair: Pair, a: np.ndarray, b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    with classroom.computing():
        return _interpolations(pair, a, b, steps)


def _interpolations(pair: Pair, a: np.ndarray, b: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    return {"AE linear": sampling.interpolate(pair.ae, a, b, steps),
            "VAE linear": sampling.interpolate(pair.vae, a, b, steps),
            "VAE spherical": sampling.interpolate(pair.vae, a, b, steps, spherical=True)}


def beta_results(models: list[tuple[float, AutoEncoder]], split: data.Split, n_samples: int = 8,
                 seed: int = 0) -> list[dict]:
    """Rate (KL, nats/image) and distortion (MSE per pixel value) on the validation split per beta."""
    from .train import validate

    val = as_uint8_nchw(split.val)
    rows = []
    for beta, m in models:
        v = validate(m, val, beta, seed=seed)
        z = torch.randn((n_samples, *m.latent_shape), generator=torch.Generator().manual_seed(seed))
        rows.append({"beta": beta, "KL (nats/image)": v["val_kl"], "MSE per pixel": v["val_mse"],
                     "val PSNR": v["val_psnr"], "samples": sampling.prior_samples(m, z=z),
                     "recon": metrics.evaluate(m, split.val.subset(np.arange(min(n_samples, len(split.val)))), lpips=False).recon})
    return rows


def shipped_beta_results(session: Session) -> list[dict]:
    """beta_results of the shipped sweep on OpenMoji, computed once for the whole server."""
    models = shipped_betas(session)
    if not models:
        return []
    size = models[0][1].config.image_size

    def compute():
        with classroom.computing():
            return beta_results(models, openmoji_split(size))

    return SHIPPED_ANSWERS.get(("shipped: betas", size), compute)


def shipped_betas(session: Session) -> list[tuple[float, AutoEncoder]]:
    if not session.zoo:
        return []
    return [(e["train"]["beta"], session.zoo.load(e["name"]).model) for e in session.zoo.betas()]
