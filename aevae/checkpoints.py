"""Checkpoints: safetensors weights + a JSON file holding everything needed to rebuild the model.

`name.safetensors` holds the tensors, `name.json` the model config, train config, dataset
description, history, metrics, package version and the weights' SHA-256. Loading rebuilds the
model from the JSON and never unpickles anything. Both files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from . import __version__
from .config import ModelConfig
from .models import AutoEncoder, build_model

FORMAT = "aevae-checkpoint-1"
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt or does not match its config."""


@dataclass
class Checkpoint:
    model: AutoEncoder
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.meta.get("name") or (self.path.stem if self.path else self.model.config.kind)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save(model: AutoEncoder, path: str | Path, *, train=None, history=None, dataset=None,
         metrics=None, name: str = "", half: bool = False, extra: dict | None = None) -> Path:
    """Save weights and metadata; returns the .json path. `half` stores float tensors as fp16."""
    wpath, jpath = _paths(path)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if half and v.is_floating_point() else v
    blob = save_safetensors_bytes(tensors)
    meta = {
        "format": FORMAT,
        "aevae_version": __version__,
        "name": name or model.config.name or wpath.stem,
        "kind": model.kind,
        "model": model.config.to_dict(),
        "weights": wpath.name,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "dtype": "float16" if half else "float32",
        "params": model.n_params,
        "latent_numel": model.latent_numel,
        "train": train.to_dict() if hasattr(train, "to_dict") else train,
        "history": history.to_dict() if hasattr(history, "to_dict") else history,
        "dataset": dataset.describe() if hasattr(dataset, "describe") else dataset,
        "metrics": metrics,
        **(extra or {}),
    }
    atomic_write(wpath, blob)
    atomic_write(jpath, json.dumps(meta, indent=1).encode())
    return jpath


def read_meta(path: str | Path) -> dict:
    _, jpath = _paths(path)
    if not jpath.is_file():
        raise CheckpointError(f"{jpath}: checkpoint metadata not found")
    try:
        meta = json.loads(jpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{jpath.name}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{jpath.name}: not an aevae checkpoint (format {FORMAT!r} expected)")
    return meta


def load(path: str | Path) -> Checkpoint:
    """Rebuild the model from the JSON, then fill it from the safetensors file (no pickle)."""
    wpath, jpath = _paths(path)
    meta = read_meta(jpath)
    wname = str(meta.get("weights") or wpath.name)
    if Path(wname).name != wname or wname in (".", ".."):
        raise CheckpointError(f"{jpath.name}: weights must be a file name beside it, got {wname!r}")
    wpath = jpath.with_name(wname)
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: checkpoint weights not found")
    blob = wpath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
        raise CheckpointError(f"{wpath.name}: weights do not match {jpath.name} "
                              "(truncated, corrupt or from another save)")
    try:
        cfg = ModelConfig.from_dict(meta["model"])
        model = build_model(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{jpath.name}: bad model config ({e})") from None
    try:
        tensors = load_safetensors_bytes(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"{wpath.name}: not a valid safetensors file ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{wpath.name}: weights do not fit the {cfg.kind.upper()} config "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    model.eval()
    return Checkpoint(model, meta, jpath)


def read_manifest(folder: str | Path) -> list[dict]:
    """The shipped models' list; an absent folder or manifest is an empty list."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CheckpointError(f"{path}: expected an object with a 'models' list")
    return entries


def write_manifest(folder: str | Path, entries: list[dict], **info) -> Path:
    path = Path(folder) / MANIFEST
    atomic_write(path, json.dumps({"format": "aevae-manifest-1", **info, "models": entries}, indent=1).encode())
    return path

