"""The pair's models as ONNX files for the page (aevae.web_models) and the page's payload (aevae.live)."""

import base64
import os

import numpy as np
import onnxruntime as ort
import pytest
import torch

from aevae import live, sampling, web_models
from aevae.config import ModelConfig
from aevae.models import build_model


@pytest.fixture(autouse=True)
def own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(web_models, "_cache", web_models._Cache())


def model(kind="vae", latent="16", seed=0, size=32, batchnorm=True):
    torch.manual_seed(seed)
    m = build_model(ModelConfig(kind=kind, image_size=size, latent=latent, widths=(8, 16), batchnorm=batchnorm))
    with torch.no_grad():  # running statistics that differ from a batch's: eval and train differ
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
    return m.eval()


def run(blob, x):
    s = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})


@pytest.mark.parametrize("kind,latent", [("vae", "16"), ("ae", "16"), ("vae", "8x4x4"), ("ae", "8x8x8")])
def test_the_files_compute_what_torch_computes_for_any_batch(kind, latent):
    m = model(kind, latent)
    names = web_models.files_for(m)
    assert not m.training  # the exporter must not leave the shared model in training mode
    z = torch.randn(7, *m.latent_shape)
    (x,) = run(web_models.read(names["decoder"]), z.numpy())
    with torch.no_grad():
        assert np.abs(x - m.decode(z).numpy()).max() < 1e-5
        images = torch.rand(3, 3, 32, 32)
        got = run(web_models.read(names["encoder"]), images.numpy())
        e = m.encode(images)
    assert np.abs(got[0] - e.mu.numpy()).max() < 1e-5
    if kind == "vae":  # sigma, not the log-variance
        assert np.abs(got[1] - torch.exp(0.5 * e.logvar).numpy()).max() < 1e-5
    else:
        assert len(got) == 1


def test_a_file_that_computes_something_else_is_refused_with_the_difference():
    a, b = model(seed=1), model(seed=2)
    with pytest.raises(web_models.ExportError, match=r"the vae decoder differs from torch by \d\.\d+e[-+]\d+ \(> 1e-05\)"):
        web_models.check(b, "decoder", web_models.export(a, "decoder"))
    with pytest.raises(web_models.ExportError, match="onnxruntime cannot read the vae decoder"):
        web_models.check(a, "decoder", b"not an onnx file")
    assert web_models.check(a, "decoder", web_models.export(a, "decoder")) < 1e-5


def test_names_follow_the_content_and_each_is_written_once(tmp_path):
    a = model(seed=1)
    names = web_models.files_for(a)
    assert names == web_models.files_for(model(seed=1))  # the same weights elsewhere: the same files
    stamp = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "onnx").iterdir()}
    assert sorted(stamp) == sorted(names.values()) and all(n.endswith(("-vae-decoder.onnx", "-vae-encoder.onnx"))
                                                            for n in names.values())
    with torch.no_grad():
        next(a.decoder.parameters())[0].add_(0.5)  # trained further: new files
    assert set(web_models.files_for(a).values()).isdisjoint(names.values())
    assert len(list((tmp_path / "onnx").iterdir())) == 4


def test_only_names_it_wrote_are_read(tmp_path):
    names = web_models.files_for(model())
    good = names["decoder"]
    (tmp_path / "secret.onnx").write_bytes(b"x")
    for bad in ["../" + good, good.upper(), good.replace("decoder", "weights"), "secret.onnx", good + "x",
                good[:-5], "", "a" * 5000, None, "/" + good, good.replace("-vae-", "-vae/")]:
        assert web_models.read(bad) is None, bad
    web_models._cache = web_models._Cache()  # from disk now
    assert web_models.read(good) == (tmp_path / "onnx" / good).read_bytes()
    (tmp_path / "onnx" / good).unlink()
    assert web_models.read(good) is not None  # still in memory
    web_models._cache = web_models._Cache()
    assert web_models.read(good) is None  # gone


def test_the_folder_keeps_the_most_recently_used_past_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(web_models, "MAX_FILES", 4)  # two pairs of models: a pair's own four files
    first = web_models.files_for(model(seed=1))
    second = web_models.files_for(model(seed=2))
    os.utime(tmp_path / "onnx" / first["decoder"], (1, 1))  # long unused
    third = web_models.files_for(model(seed=3))
    left = {p.name for p in (tmp_path / "onnx").iterdir()}
    assert len(left) == 4 and set(third.values()) <= left and first["decoder"] not in left
    assert set(second.values()) <= left or first["encoder"] in left


def f32(s):
    return np.frombuffer(base64.b64decode(s), "<f4")


def test_the_payload_gives_the_page_the_servers_code_map():
    torch.manual_seed(0)
    ae, vae = model("ae", "16", 1), model("vae", "16", 2)
    images = (torch.rand(40, 32, 32, 3) * 255).to(torch.uint8).numpy()
    maps = {"AE": sampling.code_map(ae, images), "VAE": sampling.code_map(vae, images)}
    labels = np.arange(40) % 3
    p = live.payload(ae, vae, maps, labels, ["a", "b", "<c>"], "run 1", {"title": "T"})
    assert p["labels"] == labels.tolist() and p["label_names"] == ["a", "b", "<c>"] and p["image_size"] == 32
    for kind, m in (("AE", ae), ("VAE", vae)):
        part, cmap = p[kind.lower()], maps[kind]
        assert part["decoder"] == web_models.files_for(m)["decoder"] and part["k"] == 8
        mean, axes = f32(part["mean"]), f32(part["axes"]).reshape(part["k"], -1)
        # the page's point (x, y) on the map is the server's code_at(x, y)
        code = mean + 1.5 * axes[0] - 0.7 * axes[1]
        assert np.allclose(code, cmap.code_at(1.5, -0.7).numpy().ravel(), atol=1e-6)
        assert np.allclose(part["spread"][:2], cmap.coords.std(0), rtol=1e-5)
        assert np.allclose(f32(part["coords"]).reshape(-1, 2), cmap.coords, atol=1e-6)
        # directions are orthonormal; the spread along each is the codes' own
        assert np.allclose(axes @ axes.T, np.eye(8), atol=1e-4)
        assert np.allclose(f32(part["dim_std"]), cmap.dim_std) and len(f32(part["dim_mean"])) == 16


def test_long_or_spatial_codes_get_no_slider_per_value():
    ae, vae = model("ae", "8x4x4", 1), model("vae", "128", 2)
    images = (torch.rand(12, 32, 32, 3) * 255).to(torch.uint8).numpy()
    maps = {"AE": sampling.code_map(ae, images), "VAE": sampling.code_map(vae, images)}
    p = live.payload(ae, vae, maps, np.zeros(12, int), ["x"], "run 1", {})
    assert "dim_mean" not in p["ae"] and "dim_mean" not in p["vae"]
    assert p["ae"]["latent_shape"] == [8, 4, 4] and p["vae"]["latent_shape"] == [128]


def test_the_folder_keeps_to_its_size_too(tmp_path, monkeypatch):
    first = web_models.files_for(model(seed=1))
    size = sum((tmp_path / "onnx" / n).stat().st_size for n in first.values())
    monkeypatch.setattr(web_models, "MAX_BYTES", int(size * 2.5))  # room for two models' files, not three
    os.utime(tmp_path / "onnx" / first["decoder"], (1, 1))
    os.utime(tmp_path / "onnx" / first["encoder"], (1, 1))
    web_models.files_for(model(seed=2))
    web_models.files_for(model(seed=3))
    left = {p.name for p in (tmp_path / "onnx").iterdir()}
    assert len(left) == 4 and not set(first.values()) & left
