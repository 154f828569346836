"""A pair's models as ONNX files, for the page to run with onnxruntime-web.

Each model is written once per content (its config and weights), checked against torch with
onnxruntime (the engine the page runs, built for the CPU here) and kept in a folder shared by
all sessions: a shipped pair is exported once per server, a student's trained pair once, and a
student who trains the same settings again gets the same files.

    names = files_for(model)       # {"decoder": "<hash>-vae-decoder.onnx", "encoder": ...}
    read(names["decoder"])         # the file's bytes, or None for any other name

Decoders take z of the latent's shape (any batch) and give images in [0, 1] (N, 3, H, W).
Encoders take images in [0, 1] and give the AE's code, or the VAE's mean and sigma (the
standard deviation, exp(logvar / 2) clamped as in sampling).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import atomic_write
from .models import AutoEncoder

FORMAT = 1  # bump when the export changes: the names change with it
OPSET = 17
TOLERANCE = 1e-5  # torch vs onnxruntime, on images in [0, 1] and codes
MAX_FILES = 400  # the folder keeps the most recently used files past this many (a class's runs)
MAX_BYTES = 512 << 20  # or past this size (a pair's four files: 0.2-13 MB)
MAX_MEMORY = 64 << 20  # bytes of files kept in memory for serving
PARTS = ("decoder", "encoder")
HASH_CHARS = 32
log = logging.getLogger("aevae.web_models")


class ExportError(RuntimeError):
    """A model's ONNX file could not be written or does not compute what torch computes."""


class _Decoder(nn.Module):
    def __init__(self, model: AutoEncoder):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decode(z)


class _Encoder(nn.Module):
    def __init__(self, model: AutoEncoder):
        super().__init__()
        self.model = model

    def forward(self, x):
        e = self.model.encode(x)
        if e.logvar is None:
            return e.mu
        return e.mu, torch.exp(0.5 * e.logvar.clamp(-30.0, 20.0))


def folder() -> Path:
    return Path(os.environ.get("AEVAE_CACHE") or Path.home() / ".cache" / "aevae") / "onnx"


def content_hash(model: AutoEncoder) -> str:
    """Of the model's config and weights (as float32): equal models, equal names."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, "opset": OPSET, "kind": model.kind,
                                   "config": model.config.to_dict()}, sort_keys=True).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:HASH_CHARS]


def name_of(digest: str, kind: str, part: str) -> str:
    return f"{digest}-{kind}-{part}.onnx"


def _is_name(name: str) -> bool:
    """A name this module writes: hex hash, kind, part (no pattern, no path)."""
    if not isinstance(name, str) or len(name) > 64 or not name.endswith(".onnx"):
        return False
    pieces = name[:-len(".onnx")].split("-")
    return (len(pieces) == 3 and len(pieces[0]) == HASH_CHARS and all(c in "0123456789abcdef" for c in pieces[0])
            and pieces[1] in ("ae", "vae") and pieces[2] in PARTS)


def _inputs(model: AutoEncoder, part: str, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if part == "decoder":
        return torch.randn((n, *model.latent_shape), generator=gen)
    size = model.config.image_size
    return torch.rand((n, 3, size, size), generator=gen)


@torch.no_grad()
def export(model: AutoEncoder, part: str) -> bytes:
    """The ONNX file of the model's decoder or encoder, with a batch axis of any size.

    The TorchScript exporter (dynamo=False): it writes these small conv nets in ~0.05 s where
    the dynamo exporter takes 1-4 s on a 2-core server, once per student's training."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    # eval() on the wrapper, not only the model: the exporter puts back the wrapper's mode on
    # every module inside, and a new module is in training mode (the shared model would be too)
    net = (_Decoder(model) if part == "decoder" else _Encoder(model)).eval()
    outs = ["x"] if part == "decoder" else (["code"] if model.kind == "ae" else ["mu", "sigma"])
    first = "z" if part == "decoder" else "x"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice, once per call
        torch.onnx.export(net, (_inputs(model, part, 2, 0),), buf, dynamo=False, opset_version=OPSET,
                          input_names=[first], output_names=outs,
                          dynamic_axes={k: {0: "n"} for k in [first, *outs]})
    return buf.getvalue()


@torch.no_grad()
def check(model: AutoEncoder, part: str, blob: bytes) -> float:
    """The largest difference between onnxruntime's and torch's answers on random inputs of two
    batch sizes; ExportError past TOLERANCE."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise ExportError(f"onnxruntime cannot read the {model.kind} {part}: {e}") from None
    net = (_Decoder(model) if part == "decoder" else _Encoder(model)).eval()
    worst = 0.0
    for n, seed in ((1, 1), (5, 2)):
        x = _inputs(model, part, n, seed)
        want = net(x)
        want = [want] if isinstance(want, torch.Tensor) else list(want)
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        for w, g in zip(want, got, strict=True):
            if tuple(w.shape) != g.shape:
                raise ExportError(f"the {model.kind} {part} gives shape {g.shape}, torch {tuple(w.shape)}")
            worst = max(worst, float(np.abs(w.numpy() - g).max()))
    if not worst <= TOLERANCE:  # also NaN
        raise ExportError(f"the {model.kind} {part} differs from torch by {worst:.2e} (> {TOLERANCE:.0e})")
    return worst


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.memory: OrderedDict[str, bytes] = OrderedDict()
        self.known: dict[int, tuple] = {}  # id(model) -> (the model, its tensors' versions, names)

    def remember(self, name: str, blob: bytes) -> None:
        self.memory[name] = blob
        self.memory.move_to_end(name)
        while sum(map(len, self.memory.values())) > MAX_MEMORY and len(self.memory) > 1:
            self.memory.popitem(last=False)


_cache = _Cache()


def files_for(model: AutoEncoder) -> dict[str, str]:
    """{"decoder": name, "encoder": name}, exported and checked where not yet on disk."""
    # the hash of every weight costs ~10 ms a pair: skipped while no tensor of the model changed
    stamp = tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))
    seen = _cache.known.get(id(model))
    if seen is not None and seen[0]() is model and seen[1] == stamp:  # the same model (ids are reused)
        return dict(seen[2])
    digest = content_hash(model)
    names = {part: name_of(digest, model.kind, part) for part in PARTS}
    with _cache.lock:
        root = folder()
        for part, name in names.items():
            path = root / name
            if path.is_file():
                os.utime(path)  # recently used: kept when the folder is trimmed
                continue
            blob = export(model, part)
            worst = check(model, part, blob)
            root.mkdir(parents=True, exist_ok=True)
            atomic_write(path, blob)
            log.info("exported %s (%d bytes, %.1e from torch)", name, len(blob), worst)
        _trim(root)
        if len(_cache.known) > 256:
            _cache.known.clear()
        _cache.known[id(model)] = (weakref.ref(model), stamp, names)
    return dict(names)


def _trim(root: Path) -> None:
    """The least recently used files go past MAX_FILES or MAX_BYTES (the pair just written stays)."""
    files = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in root.glob("*.onnx")), reverse=True)
    kept = total = 0
    for _, size, p in files:
        kept, total = kept + 1, total + size
        if kept > max(MAX_FILES, len(PARTS) * 2) or (total > MAX_BYTES and kept > len(PARTS) * 2):
            p.unlink(missing_ok=True)


def read(name: str) -> bytes | None:
    """The bytes of a file this module wrote, or None (any other name, or gone)."""
    if not _is_name(name):
        return None
    with _cache.lock:
        blob = _cache.memory.get(name)
        if blob is not None:
            _cache.memory.move_to_end(name)
            return blob
        try:
            blob = (folder() / name).read_bytes()
        except OSError:
            return None
        _cache.remember(name, blob)
        return blob
