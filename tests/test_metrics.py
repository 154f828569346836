"""Tests for aevae.metrics and aevae.lpips_alex.

LPIPS runs offline against stand-in weight files made here (random AlexNet-shaped weights, the
shipped file hidden): that checks the plumbing and the arithmetic (against an independent
computation written with torch.nn.functional), not the ImageNet numbers. The shipped weights are
tested in test_lpips_alex.py. Agreement with the real ``lpips`` package is checked only where it
imports and the real AlexNet checkpoint is present.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aevae import lpips_alex, metrics
from aevae.lpips_alex import ALEXNET_FILE, AlexLPIPS, LPIPSUnavailable, load_lpips
from aevae.metrics import PSNR_CAP, compare, evaluate, psnr, score, ssim

# ---------------------------------------------------------------- helpers


def _rng_images(n, h=32, w=None, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w or h, 3), dtype=np.uint8)


def _standin_backbone(seed=0):
    """AlexNet-shaped random weights (He-scaled so activations stay O(1)), plus an extra key."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in lpips_alex.backbone_spec().items():
        if key.endswith("weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.01
    state["classifier.1.weight"] = torch.zeros(3, 3)  # real checkpoints have more keys: ignored
    return state


def _standin_lin(seed=1):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(shape, generator=g) for k, shape in lpips_alex.lin_spec().items()}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No shipped file, an empty torch hub, no backbone env var, no downloads, no remembered
    download failure."""
    monkeypatch.setattr(lpips_alex, "SHIPPED_WEIGHTS", tmp_path / "no-shipped.safetensors")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("AEVAE_ALEXNET_WEIGHTS", raising=False)
    monkeypatch.setenv("AEVAE_NO_DOWNLOAD", "1")
    # Loaded models stay cached: they are keyed by file path, size and mtime, so reusing the
    # stand-in model across tests is safe and keeps the suite fast.
    lpips_alex.clear_cache(models=False)
    yield tmp_path
    lpips_alex.clear_cache(models=False)


@pytest.fixture(scope="module")
def standin_files(tmp_path_factory):
    """Stand-in backbone and lin weight files, written once for the module."""
    folder = tmp_path_factory.mktemp("standin")
    backbone, lin = _standin_backbone(), _standin_lin()
    torch.save(backbone, folder / ALEXNET_FILE)
    torch.save(lin, folder / "alex_lin.pth")
    return folder / ALEXNET_FILE, folder / "alex_lin.pth", backbone, lin


@pytest.fixture
def standin(offline, monkeypatch, standin_files):
    """Stand-in backbone via AEVAE_ALEXNET_WEIGHTS and stand-in lin layers; returns both dicts."""
    bb_path, lin_path, backbone, lin = standin_files
    monkeypatch.setenv("AEVAE_ALEXNET_WEIGHTS", str(bb_path))
    # Don't depend on the lpips wheel being installed for the lin layers.
    monkeypatch.setattr(lpips_alex, "lin_weights_path", lambda: lin_path)
    return backbone, lin


def _reference_lpips(a, b, backbone, lin):
    """LPIPS v0.1 written out from the paper's formula with torch.nn.functional, in float64."""
    w = {k: v.double() for k, v in backbone.items()}

    def taps(x):
        x = (
            2 * x.double()
            - 1
            - torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
        ) / torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
        r1 = F.relu(F.conv2d(x, w["features.0.weight"], w["features.0.bias"], stride=4, padding=2))
        r2 = F.relu(
            F.conv2d(
                F.max_pool2d(r1, 3, 2), w["features.3.weight"], w["features.3.bias"], padding=2
            )
        )
        r3 = F.relu(
            F.conv2d(
                F.max_pool2d(r2, 3, 2), w["features.6.weight"], w["features.6.bias"], padding=1
            )
        )
        r4 = F.relu(F.conv2d(r3, w["features.8.weight"], w["features.8.bias"], padding=1))
        r5 = F.relu(F.conv2d(r4, w["features.10.weight"], w["features.10.bias"], padding=1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(a.shape[0], dtype=torch.float64)
    for i, (fa, fb) in enumerate(zip(taps(a), taps(b), strict=True)):
        fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        weights = lin[f"lin{i}.model.1.weight"].double().view(1, -1, 1, 1)
        total += ((fa - fb) ** 2 * weights).sum(1).mean((1, 2))
    return total


class Perturb(nn.Module):
    """A tiny model: reconstruct adds a fixed offset and clamps; records the mode it ran in."""

    def __init__(self, offset=0.0):
        super().__init__()
        self.offset = offset
        self.inner = nn.Linear(1, 1)  # gives the model a parameter (device lookup) and a submodule
        self.seen_training = []

    def reconstruct(self, x):
        self.seen_training.append(self.training)
        return (x + self.offset).clamp(0, 1)


class NotWeights:
    """A picklable object that is not a tensor."""


# ---------------------------------------------------------------- PSNR / SSIM


def test_identical_images_give_cap_and_ssim_one():
    a = np.random.default_rng(0).random((3, 16, 16, 3))
    assert np.array_equal(psnr(a, a), [PSNR_CAP] * 3)
    np.testing.assert_allclose(ssim(a, a), 1.0)


def test_constant_offset_of_a_tenth_is_20_db():
    a = np.random.default_rng(1).random((2, 16, 16, 3)) * 0.8
    np.testing.assert_allclose(psnr(a, a + 0.1), 20.0, atol=1e-9)
    s = ssim(a, a + 0.1)
    assert np.all(s < 1) and np.all(s > 0.5)


def test_uint8_and_float_inputs_agree():
    a, b = _rng_images(2, 16, seed=1), _rng_images(2, 16, seed=2)
    np.testing.assert_allclose(psnr(a, b), psnr(a / 255.0, b / 255.0))
    np.testing.assert_allclose(ssim(a, b), ssim(a / 255.0, b / 255.0))


def test_shape_mismatch_and_bad_shapes_raise():
    a = np.zeros((2, 16, 16, 3))
    with pytest.raises(ValueError, match="differ"):
        psnr(a, np.zeros((2, 16, 17, 3)))
    with pytest.raises(ValueError, match="differ"):
        ssim(a, np.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match=r"must be \(N, H, W, 3\), got shape \(16, 16, 3\)"):
        psnr(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="at least 7"):
        ssim(np.zeros((1, 6, 6, 3)), np.zeros((1, 6, 6, 3)))
    with pytest.raises(ValueError, match="differ"):
        score(_rng_images(2, 16), _rng_images(2, 20), lpips=False)


# ---------------------------------------------------------------- LPIPS with stand-in weights


def test_lpips_identical_zero_different_positive_symmetric(standin):
    net = load_lpips()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert load_lpips() is net  # cached
    a = torch.from_numpy(_rng_images(3, 32, seed=3)).permute(0, 3, 1, 2) / 255.0
    b = torch.from_numpy(_rng_images(3, 32, seed=4)).permute(0, 3, 1, 2) / 255.0
    d = net(a, b)
    assert d.shape == (3,)
    assert torch.all(net(a, a) == 0)
    assert torch.all(d > 0)
    torch.testing.assert_close(net(b, a), d, rtol=0, atol=1e-7)


@pytest.mark.parametrize("size", [(32, 32), (50, 50), (64, 64), (128, 128), (40, 72)])
def test_lpips_matches_independent_formula_and_batches(standin, size):
    backbone, lin = standin
    net = load_lpips()
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 3, *size, generator=g)
    b = (a + 0.2 * torch.randn(2, 3, *size, generator=g)).clamp(0, 1)
    d = net(a, b)
    torch.testing.assert_close(d.double(), _reference_lpips(a, b, backbone, lin), rtol=0, atol=1e-5)
    singles = torch.cat([net(a[i : i + 1], b[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(singles, d, rtol=0, atol=1e-6)


def test_lpips_rejects_too_small_images(standin):
    x = torch.rand(1, 3, 30, 30)
    with pytest.raises(ValueError, match="at least 31"):
        load_lpips()(x, x)
    # evaluate-level: no crash, a reason instead
    r = score(_rng_images(2, 16), _rng_images(2, 16, seed=1))
    assert r.lpips is None and "31" in r.lpips_note


def test_missing_backbone_is_reported_and_evaluate_still_scores(offline):
    with pytest.raises(LPIPSUnavailable) as err:
        load_lpips()
    msg = str(err.value)
    assert ALEXNET_FILE in msg and "AEVAE_ALEXNET_WEIGHTS" in msg
    assert str(offline / "torch_home" / "hub" / "checkpoints" / ALEXNET_FILE) in msg
    assert "AEVAE_NO_DOWNLOAD" in msg

    images = _rng_images(4, 32, seed=6)
    r = evaluate(Perturb(0.05), images)
    assert r.lpips is None and r.lpips_note == msg
    assert r.psnr.shape == (4,) and r.ssim.shape == (4,)
    assert r.summary()["lpips"] is None
    assert all(row["lpips"] is None for row in r.rows())
    assert json.loads(json.dumps(r.to_dict()))["summary"]["lpips"] is None


def test_env_var_pointing_nowhere_is_named(offline, monkeypatch):
    monkeypatch.setenv("AEVAE_ALEXNET_WEIGHTS", str(offline / "nope.pth"))
    with pytest.raises(LPIPSUnavailable, match="nope.pth"):
        load_lpips()


def test_backbone_found_in_torch_home(offline, monkeypatch):
    hub = offline / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(_standin_backbone(), hub / ALEXNET_FILE)
    lin_path = offline / "lin.pth"
    torch.save(_standin_lin(), lin_path)
    assert isinstance(load_lpips(lin_path=lin_path), AlexLPIPS)


def test_corrupt_or_mismatched_files_raise_lpips_unavailable(offline):
    lin_path = offline / "lin.pth"
    torch.save(_standin_lin(), lin_path)

    garbage = offline / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(LPIPSUnavailable, match="garbage.pth"):
        load_lpips(backbone_path=garbage, lin_path=lin_path)

    truncated = offline / "truncated.pth"
    torch.save(_standin_backbone(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(LPIPSUnavailable, match="truncated.pth"):
        load_lpips(backbone_path=truncated, lin_path=lin_path)

    wrong_shape = _standin_backbone()
    wrong_shape["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    path = offline / "wrong_shape.pth"
    torch.save(wrong_shape, path)
    with pytest.raises(LPIPSUnavailable, match=r"wrong_shape\.pth.*features\.3\.weight"):
        load_lpips(backbone_path=path, lin_path=lin_path)

    missing = _standin_backbone()
    del missing["features.10.bias"]
    path = offline / "missing.pth"
    torch.save(missing, path)
    with pytest.raises(LPIPSUnavailable, match=r"missing\.pth.*features\.10\.bias"):
        load_lpips(backbone_path=path, lin_path=lin_path)

    path = offline / "pickle.pth"  # arbitrary pickled objects are refused by weights_only=True
    torch.save({"x": NotWeights()}, path)
    with pytest.raises(LPIPSUnavailable, match="pickle.pth"):
        load_lpips(backbone_path=path, lin_path=lin_path)

    good = offline / ALEXNET_FILE
    torch.save(_standin_backbone(), good)
    # a backbone file given as the lin file: the lin file is named, with its missing keys
    with pytest.raises(LPIPSUnavailable, match=rf"linear-layer file .*{ALEXNET_FILE}.*lin0"):
        load_lpips(backbone_path=good, lin_path=good)


def test_failed_download_fails_fast_and_is_not_retried(offline, monkeypatch):
    monkeypatch.delenv("AEVAE_NO_DOWNLOAD")
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(lpips_alex.urllib.request, "urlopen", no_network)
    for _ in range(2):
        with pytest.raises(LPIPSUnavailable, match="download from https://download.pytorch.org"):
            load_lpips()
    assert len(calls) == 1  # the second call remembered the failure
    with pytest.raises(LPIPSUnavailable, match="not allowed"):
        load_lpips(allow_download=False)


def test_real_lin_weights_from_the_lpips_wheel_load(offline):
    try:
        path = lpips_alex.lin_weights_path()
    except LPIPSUnavailable as e:
        pytest.skip(str(e))
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == set(lpips_alex.lin_spec())
    assert all(float(v.min()) >= 0 for v in state.values())  # lpips keeps these non-negative


def _torchvision_alexnet_features():
    """torchvision's alexnet().features, written out (ReLUs in place, as torchvision has them)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


def test_matches_lpips_source_with_stand_in_torchvision(standin, monkeypatch):
    """Run the lpips package's own code, with a fake torchvision that only provides
    alexnet().features: checks scaling, slicing, normalisation and lin layers against it."""
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("the lpips package is not installed")
    backbone, _ = standin
    features = _torchvision_alexnet_features()
    features.load_state_dict(
        {k.removeprefix("features."): v for k, v in backbone.items() if k.startswith("features.")}
    )
    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.alexnet = lambda pretrained=False, **_: types.SimpleNamespace(features=features)
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tv.models)
    before = {k: v for k, v in sys.modules.items() if k == "lpips" or k.startswith("lpips.")}
    for k in before:
        del sys.modules[k]
    try:
        lpips = importlib.import_module("lpips")
        theirs = lpips.LPIPS(
            net="alex", version="0.1", model_path=str(lpips_alex.lin_weights_path()), verbose=False
        )
    finally:  # leave no lpips built on the fake torchvision behind
        for k in [k for k in sys.modules if k == "lpips" or k.startswith("lpips.")]:
            del sys.modules[k]
        sys.modules.update(before)
    ours = load_lpips()
    g = torch.Generator().manual_seed(7)
    for size in (32, 64):
        a = torch.rand(3, 3, size, size, generator=g)
        b = (a + 0.1 * torch.randn(3, 3, size, size, generator=g)).clamp(0, 1)
        with torch.no_grad():
            expected = theirs(a, b, normalize=True).flatten()
        torch.testing.assert_close(ours(a, b), expected, rtol=0, atol=1e-6)


def _real_lpips_skip_reason():
    env = os.environ.get("AEVAE_ALEXNET_WEIGHTS", "").strip()
    hub = lpips_alex.hub_backbone_path()
    if not (env and os.path.isfile(env)) and not hub.is_file():
        return f"AlexNet ImageNet weights not found at {hub}" + (
            f" nor at AEVAE_ALEXNET_WEIGHTS={env}"
            if env
            else " and AEVAE_ALEXNET_WEIGHTS is not set"
        )
    # Try the import in a child process: a failed torchvision import can leave half-registered
    # operators behind in this one.
    proc = subprocess.run(
        [sys.executable, "-c", "import lpips"], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"lpips package cannot be imported: {last}"
    return None


def test_matches_real_lpips_package():
    reason = _real_lpips_skip_reason()
    if reason:
        pytest.skip(reason)
    import lpips  # only where it imports

    ours = load_lpips(allow_download=False)
    theirs = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    backbone = torch.load(lpips_alex.find_backbone(False), map_location="cpu", weights_only=True)
    # Their trunk keeps torchvision's layer indices inside slices: "slice2.3.weight" = features.3.
    trunk = {
        name: backbone[f"features.{name.split('.', 1)[1]}"] for name in theirs.net.state_dict()
    }
    theirs.net.load_state_dict(trunk)
    g = torch.Generator().manual_seed(7)
    for size in (32, 64, 128):
        a = torch.rand(4, 3, size, size, generator=g)
        b = (a + 0.1 * torch.randn(4, 3, size, size, generator=g)).clamp(0, 1)
        with torch.no_grad():
            expected = theirs(a, b, normalize=True).flatten()
        torch.testing.assert_close(ours(a, b), expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- evaluate / score


def test_evaluate_identity_is_perfect_and_restores_modes(standin):
    model = Perturb(0.0)
    model.train()
    model.inner.eval()  # mixed modes must come back as they were
    images = _rng_images(5, 32, seed=8)
    r = evaluate(model, images, batch_size=2)
    assert model.seen_training == [False] * 3  # 3 batches, all in eval mode
    assert model.training and not model.inner.training
    assert r.ids == [1, 2, 3, 4, 5]
    assert np.array_equal(r.recon, images)
    assert np.all(r.psnr == PSNR_CAP)
    np.testing.assert_allclose(r.ssim, 1.0)
    assert r.lpips is not None and np.all(r.lpips == 0) and r.lpips_note == ""
    s = r.summary()
    assert s["psnr"].mean == PSNR_CAP and s["psnr"].std == 0 and s["psnr"].n == 5


def test_evaluate_perturbation_matches_score_and_imageset(standin):
    images = _rng_images(6, 32, seed=9)
    expected_recon = np.clip(np.round(images + 25.5), 0, 255)  # float32 rounding may differ by 1

    class FakeImageSet:  # duck-typed aevae.data.ImageSet
        def __init__(self, images, ids):
            self.images, self.ids = images, ids

    r = evaluate(Perturb(0.1), FakeImageSet(images, [10, 11, 12, 13, 14, 15]), batch_size=4)
    ref = score(images, r.recon, ids=range(10, 16))
    assert r.ids == list(range(10, 16))
    assert r.recon.dtype == np.uint8
    assert np.abs(r.recon.astype(int) - expected_recon).max() <= 1
    np.testing.assert_allclose(r.psnr, ref.psnr)
    np.testing.assert_allclose(r.ssim, ref.ssim)
    np.testing.assert_allclose(r.lpips, ref.lpips, atol=1e-6)
    assert np.all(r.psnr < 40) and np.all(r.lpips > 0)

    # population std, JSON round trip
    assert r.summary()["ssim"].std == pytest.approx(float(np.std(r.ssim, ddof=0)))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["n"] == 6 and d["images"][0]["id"] == 10
    assert d["summary"]["lpips"]["n"] == 6 and d["lpips_note"] == ""


def test_evaluate_pair_gives_what_evaluate_gives_for_each_model(standin):
    """The pair's scores come from one LPIPS pass (shared references): the same numbers as two
    evaluate() calls, for each model, with LPIPS on, off, and too small for it."""
    images = _rng_images(5, 32, seed=21)
    ae, vae = Perturb(0.1), Perturb(-0.2)
    for lpips in (True, False):
        pair = metrics.evaluate_pair(ae, vae, images, ids=range(3, 8), lpips=lpips)
        for got, model in zip(pair, (ae, vae), strict=True):
            want = evaluate(model, images, ids=range(3, 8), lpips=lpips)
            assert got.ids == want.ids and np.array_equal(got.recon, want.recon)
            np.testing.assert_allclose(got.psnr, want.psnr)
            np.testing.assert_allclose(got.ssim, want.ssim)
            assert got.lpips_note == want.lpips_note
            if lpips:
                np.testing.assert_allclose(got.lpips, want.lpips, atol=1e-6)
                assert np.all(got.lpips > 0)
            else:
                assert got.lpips is None
    small = metrics.evaluate_pair(ae, vae, _rng_images(2, 16, seed=22))
    assert all(r.lpips is None and "31" in r.lpips_note for r in small)


def test_lpips_false_and_preloaded_instance(standin):
    a, b = _rng_images(2, 32, seed=10), _rng_images(2, 32, seed=11)
    off = score(a, b, lpips=False)
    assert off.lpips is None and off.lpips_note == "not requested"
    net = load_lpips()
    on = score(a, b, lpips=net)
    assert on.lpips.shape == (2,) and np.all(on.lpips > 0)


def test_compare_single_images(standin):
    a, b = _rng_images(1, 32, seed=12)[0], _rng_images(1, 32, seed=13)[0]
    r = compare(a, b)
    assert r.ids == [1] and r.recon.shape == (1, 32, 32, 3)
    assert r.psnr[0] < 20 and r.lpips[0] > 0


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        evaluate(Perturb(), np.zeros((2, 32, 32, 3), dtype=np.float32), lpips=False)
    with pytest.raises(ValueError, match="ids"):
        evaluate(Perturb(), _rng_images(2, 32), ids=[1], lpips=False)
    with pytest.raises(ValueError, match="no images"):
        evaluate(Perturb(), np.zeros((0, 32, 32, 3), dtype=np.uint8), lpips=False)


def test_metric_help_covers_all_metrics():
    assert set(metrics.METRIC_HELP) == {"psnr", "ssim", "lpips"}
    assert all(len(t) > 40 for t in metrics.METRIC_HELP.values())
