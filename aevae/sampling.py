"""Drawing from the models: noisy variants, prior samples, interpolation, exports.

Noisy variants follow report A's Problems 2 and 4: k variants per source image by Gaussian
noise in latent space. "posterior" noise samples the VAE around its mean with its own sigma
(z = mu + scale * sigma * eps); "fixed" noise adds scale * eps to the code, which works for
the AE too, so the same eps draws can go through both models.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoints import atomic_write
from .data import cell
from .models import AutoEncoder
from .train import as_uint8_nchw, to_float

MODES = ("posterior", "fixed")
MAX_VARIANTS = 50
MAX_SCALE = 10.0
LEADING = 8  # principal directions a code map keeps for the page's sliders


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N,3,H,W) float in [0,1] -> (N,H,W,3) uint8, rounded."""
    return x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def noise_draws(n: int, k: int, latent_shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """eps ~ N(0, I) of shape (n, k, *latent): one draw per variant, shared between models."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n, k, *latent_shape), generator=gen)


@torch.no_grad()
def variants(model: AutoEncoder, images, k: int = 5, scale: float = 1.0, mode: str = "posterior",
             eps: torch.Tensor | None = None, seed: int = 0) -> np.ndarray:
    """(N,H,W,3) uint8 sources -> (N, k, H, W, 3) uint8 variants."""
    if mode not in MODES:
        raise ValueError(f"noise mode must be one of {MODES}, got {mode!r}")
    if mode == "posterior" and model.kind != "vae":
        raise ValueError("posterior noise needs a VAE (the AE has no sigma); use mode 'fixed'")
    if not 1 <= k <= MAX_VARIANTS:
        raise ValueError(f"variants per image must be 1..{MAX_VARIANTS}, got {k}")
    if not 0 <= scale <= MAX_SCALE:
        raise ValueError(f"noise scale must be 0..{MAX_SCALE}, got {scale}")
    model.eval()
    x = to_float(as_uint8_nchw(images))
    n = len(x)
    if eps is None:
        eps = noise_draws(n, k, model.latent_shape, seed)
    if tuple(eps.shape[2:]) != model.latent_shape or eps.shape[0] != n:
        raise ValueError(f"noise of shape {tuple(eps.shape)} does not fit {n} images with latent "
                         f"{model.latent_shape}")
    k = eps.shape[1]
    e = model.encode(x)
    mu = e.mu.unsqueeze(1)
    if mode == "posterior":
        sigma = torch.exp(0.5 * e.logvar.clamp(-30, 20)).unsqueeze(1)
        z = mu + scale * sigma * eps
    else:
        z = mu + scale * eps
    out = model.decode(z.flatten(0, 1).contiguous())
    return to_uint8(out).reshape(n, k, *out.shape[2:], 3)


@dataclass
class VariantSet:
    sources: np.ndarray  # (N,H,W,3) uint8
    ids: list[int]
    labels: np.ndarray  # (N,) labels of the sources
    vae: np.ndarray  # (N,k,H,W,3)
    ae: np.ndarray | None  # same noise draws through the AE, or None

    def export_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Report A's gen_data / gen_label: every variant, labels following their source."""
        n, k = self.vae.shape[:2]
        return self.vae.reshape(n * k, *self.vae.shape[2:]), np.repeat(self.labels, k)


def variant_set(vae: AutoEncoder, ae: AutoEncoder | None, images, ids, labels, k: int = 5,
                scale: float = 1.0, seed: int = 0) -> VariantSet:
    """VAE variants with its own sigma, and (if given) the AE with the same eps draws.

    The AE has no sigma, so its draws are applied as fixed noise of the same scale.
    """
    images = np.asarray(getattr(images, "images", images))
    eps = noise_draws(len(images), k, vae.latent_shape, seed)
    v = variants(vae, images, scale=scale, mode="posterior", eps=eps)
    a = None
    if ae is not None:
        if ae.latent_shape != vae.latent_shape:
            raise ValueError(f"the AE's latent {ae.latent_shape} differs from the VAE's "
                             f"{vae.latent_shape}; the same noise cannot go through both")
        a = variants(ae, images, scale=scale, mode="fixed", eps=eps)
    return VariantSet(images, [int(i) for i in ids], np.asarray(labels, dtype=np.int64), v, a)


def save_arrays(folder: str | Path, data: np.ndarray, labels: np.ndarray,
                names: tuple[str, str] = ("gen_data.npy", "gen_label.npy")) -> list[Path]:
    """Write data and labels as two .npy files (report A's names by default), atomically."""
    out = []
    for name, arr in zip(names, (data, labels), strict=True):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        path = Path(folder) / name
        atomic_write(path, buf.getvalue())
        out.append(path)
    return out


def save_label_names(folder: str | Path, names: list[str], name: str = "gen_label_names.txt") -> Path:
    """The label names beside gen_label.npy: line k names label k (UTF-8 text). A name is one line,
    and one that starts like a spreadsheet formula is written as text (data.cell)."""
    path = Path(folder) / name
    lines = (cell(" ".join(n.splitlines())) for n in names)
    atomic_write(path, "".join(f"{n}\n" for n in lines).encode())
    return path


def save_npz(path: str | Path, data: np.ndarray, labels: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, data=data, label=labels)
    atomic_write(Path(path), buf.getvalue())
    return Path(path)


@torch.no_grad()
def prior_samples(model: AutoEncoder, n: int = 16, seed: int = 0,
                  z: torch.Tensor | None = None) -> np.ndarray:
    """Decode z ~ N(0, I). Pass the same z to an AE to see that its decoder is no generator."""
    model.eval()
    if z is None:
        z = torch.randn((n, *model.latent_shape), generator=torch.Generator().manual_seed(seed))
    return to_uint8(model.decode(z))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation per row; falls back to linear when a and b are parallel."""
    af, bf = a.flatten(), b.flatten()
    cos = torch.dot(af, bf) / (af.norm() * bf.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4:
        return torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t.view(-1, *[1] * a.dim()))
    so = torch.sin(omega)
    w1 = (torch.sin((1 - t) * omega) / so).view(-1, *[1] * a.dim())
    w2 = (torch.sin(t * omega) / so).view(-1, *[1] * a.dim())
    return w1 * a.unsqueeze(0) + w2 * b.unsqueeze(0)


@torch.no_grad()
def interpolate(model: AutoEncoder, a, b, steps: int = 8, spherical: bool = False) -> np.ndarray:
    """Decode codes between two images' means: (steps, H, W, 3) uint8, ends included."""
    if steps < 2:
        raise ValueError("interpolation needs at least 2 steps")
    model.eval()
    x = to_float(as_uint8_nchw(np.stack([np.asarray(a), np.asarray(b)])))
    mu = model.encode(x).mu
    t = torch.linspace(0, 1, steps)
    if spherical:
        z = slerp(mu[0], mu[1], t)
    else:
        z = torch.lerp(mu[0].unsqueeze(0), mu[1].unsqueeze(0), t.view(-1, *[1] * (mu.dim() - 1)))
    return to_uint8(model.decode(z.contiguous()))


@dataclass
class CodeMap:
    """A 2-D PCA view of a model's codes (the VAE's means), and the way back to a code."""

    coords: np.ndarray  # (N, 2)
    mean: torch.Tensor  # (D,) mean code
    axes: torch.Tensor  # (2, D) first two principal directions
    explained: tuple[float, float]  # fraction of the codes' variance along each axis
    latent_shape: tuple[int, ...]
    leading: torch.Tensor | None = None  # (k, D): up to LEADING principal directions, axes first
    spread: np.ndarray | None = None  # (k,) standard deviation of the codes along each
    dim_mean: np.ndarray | None = None  # (D,) and (D,): each code value's mean and spread
    dim_std: np.ndarray | None = None

    def code_at(self, x: float, y: float) -> torch.Tensor:
        return (self.mean + x * self.axes[0] + y * self.axes[1]).view(1, *self.latent_shape)


@torch.no_grad()
def code_map(model: AutoEncoder, images, batch_size: int = 256) -> CodeMap:
    """PCA of the codes of `images` (SVD of the centred code matrix)."""
    model.eval()
    data = as_uint8_nchw(images)
    mu = torch.cat([model.encode(to_float(data[i:i + batch_size])).mu.flatten(1)
                    for i in range(0, len(data), batch_size)])
    mean = mu.mean(0)
    _, s, vt = torch.linalg.svd(mu - mean, full_matrices=False)
    # One image (or a one-dimensional code) gives a single direction: the map keeps two axes, the
    # missing one a direction orthogonal to the first with no spread (explained 0), so the plane,
    # the grid and code_at work the same for any number of images.
    axes = torch.zeros(2, mu.shape[1])
    axes[:min(2, len(vt))] = vt[:2]
    if len(vt) < 2 and mu.shape[1] > 1:
        free = int(axes[0].abs().argmin())  # a basis vector made orthogonal to the first axis
        e = torch.zeros(mu.shape[1])
        e[free] = 1.0
        e -= (e @ axes[0]) * axes[0]
        axes[1] = e / e.norm().clamp_min(1e-12)
    var = torch.zeros(max(2, len(s)))
    var[:len(s)] = s.pow(2)
    explained = tuple(float(v) for v in (var[:2] / var.sum().clamp_min(1e-12)))
    leading = vt[:LEADING] if len(vt) >= 2 else axes
    leading = torch.cat([axes, leading[2:]])  # the map's own two first (they may differ above)
    return CodeMap(((mu - mean) @ axes.T).numpy(), mean, axes, explained, model.latent_shape,
                   leading, ((mu - mean) @ leading.T).std(0, correction=0).numpy() if len(mu) > 1
                   else np.zeros(len(leading), np.float32), mean.numpy(),
                   mu.std(0, correction=0).numpy())


@torch.no_grad()
def decode_grid(model: AutoEncoder, cmap: CodeMap, n: int = 7, extent: float = 2.0) -> np.ndarray:
    """Decode an n x n grid over the map's plane, +-extent standard deviations of the codes."""
    sx, sy = cmap.coords.std(0) + 1e-8
    xs = np.linspace(-extent, extent, n) * sx
    ys = np.linspace(extent, -extent, n) * sy
    z = torch.cat([cmap.code_at(float(x), float(y)) for y in ys for x in xs])
    out = to_uint8(model.decode(z))
    return out.reshape(n, n, *out.shape[1:])
