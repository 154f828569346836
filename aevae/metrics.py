"""Image-quality metrics for reconstructions: PSNR, SSIM (scikit-image) and LPIPS.

``evaluate(model, images)`` reconstructs a set of images and scores each one; ``score`` /
``compare`` score two image arrays directly (e.g. an upload and its reconstruction). Both
return an ``EvalResult``: per-image numbers, their means, and the 8-bit reconstructions.

Metrics are computed on the 8-bit reconstruction (what the user sees and can save), so an
exact model scores PSNR_CAP, SSIM 1 and LPIPS 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aevae.lpips_alex import MIN_SIZE as LPIPS_MIN_SIZE
from aevae.lpips_alex import AlexLPIPS, LPIPSUnavailable, load_lpips
from aevae.sampling import to_uint8
from aevae.train import as_uint8_nchw, to_float

# Identical images have infinite PSNR; capping keeps means, JSON and plots finite. 100 dB is
# far above anything 8-bit images can show (one grey level of error in one pixel of a 128x128
# image is about 95 dB), so the cap only ever stands for "identical".
PSNR_CAP = 100.0
SSIM_MIN_SIZE = 7  # scikit-image's default 7x7 window needs images at least this big

METRIC_HELP: dict[str, str] = {
    "psnr": (
        "PSNR (peak signal-to-noise ratio) measures the average pixel error on a logarithmic "
        f"scale, in decibels: higher is better; above about 30 dB differences are hard to see, "
        f"and identical images are shown as {PSNR_CAP:.0f} dB."
    ),
    "ssim": (
        "SSIM (structural similarity) compares local brightness, contrast and structure in "
        "small windows: 1 means identical, higher is better, and it notices blur that PSNR forgives."
    ),
    "lpips": (
        "LPIPS (learned perceptual image patch similarity) compares the images as a trained "
        "neural network (AlexNet) sees them, calibrated to human judgements: 0 means identical, "
        "lower is better."
    ),
}


# ---------------------------------------------------------------- per-image metrics


def _unit_float(x: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W, 3) array as float64 in [0, 1]; uint8 is divided by 255."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be (N, H, W, 3), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 or float in [0, 1], got {x.dtype}")
    return x.astype(np.float64, copy=False)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _unit_float(a, "a"), _unit_float(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"image arrays differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR in dB per image of two (N, H, W, 3) arrays in [0, 1], capped at PSNR_CAP.

    ``skimage.metrics.peak_signal_noise_ratio(data_range=1.0)`` per image; identical images
    (infinite PSNR) give PSNR_CAP.
    """
    a, b = _pair(a, b)
    with np.errstate(divide="ignore"):  # identical images: 10*log10(1/0) = inf, capped below
        vals = [peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)]
    return np.minimum(np.asarray(vals, dtype=np.float64).reshape(-1), PSNR_CAP)


def nearest_psnr(samples: np.ndarray, images: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Per sample, its PSNR in dB (capped at PSNR_CAP) to the nearest of `images` by MSE: how
    much a generated image looks, pixel for pixel, like some real one. Both (N, H, W, 3)."""
    s = _unit_float(samples, "samples")
    s = s.reshape(len(s), -1)
    ss = (s * s).sum(1)
    best = np.full(len(s), np.inf)
    for i in range(0, len(images), chunk):  # in chunks: a large set never needs all distances at once
        x = _unit_float(images[i:i + chunk], "images")
        x = x.reshape(len(x), -1)
        if x.shape[1] != s.shape[1]:
            raise ValueError(f"samples and images differ in size: {samples.shape[1:]} vs {images.shape[1:]}")
        sq = np.maximum(ss[:, None] + (x * x).sum(1)[None] - 2 * s @ x.T, 0.0)  # |s - x|^2
        best = np.minimum(best, sq.min(1) / s.shape[1])
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(1.0 / best), PSNR_CAP)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per image of two (N, H, W, 3) arrays in [0, 1], at most 1.

    ``skimage.metrics.structural_similarity(data_range=1.0, channel_axis=-1)``: 7x7 uniform
    window, mean over the three channels. Images need to be at least 7x7.
    """
    a, b = _pair(a, b)
    if min(a.shape[1:3]) < SSIM_MIN_SIZE:
        raise ValueError(
            f"SSIM needs images at least {SSIM_MIN_SIZE}x{SSIM_MIN_SIZE}, got {a.shape[1:3]}"
        )
    vals = [
        structural_similarity(x, y, data_range=1.0, channel_axis=-1)
        for x, y in zip(a, b, strict=True)
    ]
    return np.asarray(vals, dtype=np.float64).reshape(-1)


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1], in the layout training uses."""
    return to_float(as_uint8_nchw(np.ascontiguousarray(x)))


# ---------------------------------------------------------------- results


@dataclass
class Summary:
    """Mean and population standard deviation (np.std, ddof=0) over ``n`` images."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Summary:
        return cls(float(np.mean(values)), float(np.std(values, ddof=0)), int(len(values)))


@dataclass
class EvalResult:
    """Per-image scores of reconstructions against their references.

    ``lpips`` is None when LPIPS was not computed, and ``lpips_note`` then says why
    ("" when it was). ``recon`` holds the (N, H, W, 3) uint8 reconstructions.
    """

    ids: list[int]
    psnr: np.ndarray
    ssim: np.ndarray
    lpips: np.ndarray | None
    lpips_note: str
    recon: np.ndarray

    def summary(self) -> dict[str, Summary | None]:
        return {
            "psnr": Summary.of(self.psnr),
            "ssim": Summary.of(self.ssim),
            "lpips": None if self.lpips is None else Summary.of(self.lpips),
        }

    def rows(self) -> list[dict]:
        """One dict per image: id, psnr, ssim, lpips (None when unavailable)."""
        return [
            {
                "id": int(i),
                "psnr": float(self.psnr[k]),
                "ssim": float(self.ssim[k]),
                "lpips": None if self.lpips is None else float(self.lpips[k]),
            }
            for k, i in enumerate(self.ids)
        ]

    def to_dict(self) -> dict:
        """JSON-serialisable summary and per-image rows (no reconstructions)."""
        return {
            "n": len(self.ids),
            "psnr_cap": PSNR_CAP,
            "summary": {
                k: None if s is None else {"mean": s.mean, "std": s.std, "n": s.n}
                for k, s in self.summary().items()
            },
            "lpips_note": self.lpips_note,
            "images": self.rows(),
        }


# ---------------------------------------------------------------- scoring


def _lpips_net(lpips: bool | AlexLPIPS) -> tuple[AlexLPIPS | None, str]:
    """The network to score with (the one given, else the shipped one), or (None, why not)."""
    if isinstance(lpips, AlexLPIPS):
        return lpips, ""
    try:
        return load_lpips(), ""
    except LPIPSUnavailable as e:
        return None, str(e)


def _lpips_scores(
    reference: np.ndarray, recon: np.ndarray, lpips: bool | AlexLPIPS, batch_size: int
) -> tuple[np.ndarray | None, str]:
    """LPIPS per image, or (None, reason). Never raises for missing weights."""
    if lpips is False or lpips is None:
        return None, "not requested"
    if min(reference.shape[1:3]) < LPIPS_MIN_SIZE:
        return None, (
            f"LPIPS (AlexNet) needs images at least {LPIPS_MIN_SIZE}x{LPIPS_MIN_SIZE} px; "
            f"these are {reference.shape[1]}x{reference.shape[2]}"
        )
    net, why = _lpips_net(lpips)
    if net is None:
        return None, why
    out = [
        net(_to_tensor(reference[i : i + batch_size]), _to_tensor(recon[i : i + batch_size]))
        for i in range(0, len(reference), batch_size)
    ]
    return torch.cat(out).double().cpu().numpy(), ""


def _lpips_many(
    reference: np.ndarray, recons: list[np.ndarray], lpips: bool | AlexLPIPS, batch_size: int
) -> tuple[list[np.ndarray | None], str]:
    """_lpips_scores of several reconstructions of the same references, in one network pass per batch."""
    if lpips is False or lpips is None or min(reference.shape[1:3]) < LPIPS_MIN_SIZE:
        lp, note = _lpips_scores(reference, recons[0], lpips, batch_size)  # None and why
        return [lp] * len(recons), note
    net, why = _lpips_net(lpips)
    if net is None:
        return [None] * len(recons), why
    parts = [
        net.distances(_to_tensor(reference[i : i + batch_size]), [_to_tensor(r[i : i + batch_size]) for r in recons])
        for i in range(0, len(reference), batch_size)
    ]
    return [torch.cat([p[k] for p in parts]).double().cpu().numpy() for k in range(len(recons))], ""


def _check_uint8(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be a uint8 (N, H, W, 3) array, got {x.dtype} {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name} holds no images")
    return x


def _check_ids(ids, n: int) -> list[int]:
    ids = list(range(1, n + 1)) if ids is None else [int(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} images")
    return ids


def score(
    reference: np.ndarray,
    recon: np.ndarray,
    ids=None,
    lpips: bool | AlexLPIPS = True,
    batch_size: int = 256,
) -> EvalResult:
    """Score uint8 (N, H, W, 3) reconstructions against uint8 references of the same shape.

    ``ids`` default to 1..N. ``lpips``: True tries ``load_lpips()`` (a missing weights file
    gives lpips None and the reason in lpips_note), False skips it, or pass a loaded AlexLPIPS.
    """
    reference = _check_uint8(reference, "reference")
    recon = _check_uint8(recon, "recon")
    if reference.shape != recon.shape:
        raise ValueError(f"reference and recon differ in shape: {reference.shape} vs {recon.shape}")
    ids = _check_ids(ids, len(reference))
    lp, note = _lpips_scores(reference, recon, lpips, batch_size)
    return EvalResult(
        ids=ids,
        psnr=psnr(reference, recon),
        ssim=ssim(reference, recon),
        lpips=lp,
        lpips_note=note,
        recon=recon,
    )


def compare(a: np.ndarray, b: np.ndarray, lpips: bool | AlexLPIPS = True) -> EvalResult:
    """Score image(s) ``b`` against ``a``: uint8 (H, W, 3) single images or (N, H, W, 3) arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 3:
        a = a[None]
    if b.ndim == 3:
        b = b[None]
    return score(a, b, lpips=lpips)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, images, ids=None, lpips: bool | AlexLPIPS = True, batch_size: int = 256
) -> EvalResult:
    """Reconstruct ``images`` with ``model.reconstruct`` and score every image.

    ``images`` is a uint8 (N, H, W, 3) array or an object with ``.images`` and ``.ids``
    (an ImageSet); explicit ``ids`` win, else 1..N. The model runs in eval mode, in batches
    of ``batch_size``, on the device of its parameters; every module's train/eval flag is
    restored afterwards.
    """
    if hasattr(images, "images"):
        if ids is None:
            ids = getattr(images, "ids", None)
        images = images.images
    images = _check_uint8(images, "images")
    ids = _check_ids(ids, len(images))
    return score(images, _reconstruct(model, images, batch_size), ids=ids, lpips=lpips, batch_size=batch_size)


@torch.no_grad()
def evaluate_pair(
    a: torch.nn.Module, b: torch.nn.Module, images, ids=None, lpips: bool | AlexLPIPS = True, batch_size: int = 256
) -> tuple[EvalResult, EvalResult]:
    """evaluate() of two models (an AE and a VAE) on the same images, the same numbers, with the
    LPIPS network run once for both: the references' features are shared (3 passes, not 4)."""
    if hasattr(images, "images"):
        if ids is None:
            ids = getattr(images, "ids", None)
        images = images.images
    images = _check_uint8(images, "images")
    ids = _check_ids(ids, len(images))
    recons = [_reconstruct(m, images, batch_size) for m in (a, b)]
    lps, note = _lpips_many(images, recons, lpips, batch_size)
    return tuple(  # type: ignore[return-value]
        EvalResult(ids=ids, psnr=psnr(images, r), ssim=ssim(images, r), lpips=lp, lpips_note=note, recon=r)
        for r, lp in zip(recons, lps, strict=True))


def _reconstruct(model: torch.nn.Module, images: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.reconstruct`` of uint8 images, in eval mode and batches, flags restored after."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")

    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        parts = []
        for i in range(0, len(images), batch_size):
            x = _to_tensor(images[i : i + batch_size]).to(device)
            y = model.reconstruct(x)
            if y.shape != x.shape:
                raise ValueError(
                    f"model.reconstruct returned shape {tuple(y.shape)} for input {tuple(x.shape)}"
                )
            parts.append(to_uint8(y))
    finally:
        for m, training in modes.items():
            m.training = training
    return np.concatenate(parts)
