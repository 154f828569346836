import math

import pytest
import torch
from torch import nn

from aevae.config import ModelConfig, parse_latent, preset
from aevae.models import VAE, AutoEncoder, build_model, kl_divergence, loss_terms, plan, summary


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("size", [32, 50, 64, 128])
@pytest.mark.parametrize("latent", ["64", "256", "spatial-8", "spatial-half"])
def test_forward_backward_shapes(kind, size, latent):
    # Spatial latents at sizes the stages can reach: size/8 (3 stages) and size/2 (1 stage).
    lat = {"spatial-8": f"16x{size // 8}x{size // 8}", "spatial-half": f"8x{size // 2}x{size // 2}"}.get(latent, latent)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, image_size=size, latent=lat, widths=(8, 16, 32)))
    x = torch.rand(3, 3, size, size)
    out = model(x)
    assert out.recon.shape == x.shape
    assert 0 <= out.recon.min() and out.recon.max() <= 1
    assert tuple(out.z.shape[1:]) == model.latent_shape
    assert model.latent_numel == parse_latent(lat).numel
    assert (out.logvar is None) == (kind == "ae")
    loss_terms(out, x, 1.0).loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("size", [33, 47, 127])
def test_odd_sizes_round_trip(size):
    model = build_model(ModelConfig(kind="vae", image_size=size, latent="32", widths=(4, 8, 8)))
    assert model(torch.rand(2, 3, size, size)).recon.shape == (2, 3, size, size)


def test_ae_and_vae_share_the_backbone():
    cfg = ModelConfig(latent="128", widths=(8, 16, 32))
    ae, vae = build_model(cfg.with_(kind="ae")), build_model(cfg.with_(kind="vae"))
    assert isinstance(ae, AutoEncoder) and isinstance(vae, VAE)
    assert repr(ae.encoder) == repr(vae.encoder) and repr(ae.decoder) == repr(vae.decoder)
    assert repr(ae.code) == repr(vae.mu) == repr(vae.logvar)


def test_report_b_architecture_layer_for_layer():
    m = build_model(preset("report-b", "ae"))
    enc = [type(layer).__name__ for layer in m.encoder.layers]
    dec = [type(layer).__name__ for layer in m.decoder.layers]
    assert enc == ["Conv2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    assert dec == ["ConvTranspose2d", "BatchNorm2d", "ReLU", "ConvTranspose2d", "BatchNorm2d", "ReLU",
                   "ConvTranspose2d", "Sigmoid"]
    convs = [layer for layer in m.encoder.layers if isinstance(layer, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (3, 64, (4, 4), (2, 2), (1, 1)), (64, 128, (4, 4), (2, 2), (1, 1)), (128, 256, (4, 4), (2, 2), (1, 1))]
    deconvs = [layer for layer in m.decoder.layers if isinstance(layer, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in deconvs] == [(256, 128), (128, 64), (64, 3)]
    assert m.latent_shape == (256, 8, 8)
    assert isinstance(m.code, nn.Identity)


def test_report_a_presets():
    a = build_model(preset("report-a", "ae"))
    assert a.config.image_size == 50 and a.latent_shape == (256,)
    assert any(isinstance(layer, nn.MaxPool2d) for layer in a.encoder.layers)
    assert isinstance(a.code[-1], nn.Linear)
    wide = build_model(preset("report-a-wide", "vae"))
    assert wide.latent_shape == (64, 48, 48) and wide.latent_numel == 147_456 > 3 * 50 * 50
    assert wide(torch.rand(1, 3, 50, 50)).recon.shape == (1, 3, 50, 50)


def test_unreachable_spatial_latent_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be reached from 50px.*possible here"):
        plan(ModelConfig(image_size=50, latent="64x8x8"))


@pytest.mark.parametrize("bad, why", [("", "write a vector size like 256 or a map like 256x8x8"),
                                      ("abc", "write a vector size like 256"),
                                      ("0", "every size must be at least 1"),
                                      ("4x3x5", r"spatial latents must be square \(got 3x5\)"),
                                      ("10000x100x100", "has 100,000,000 values; the limit is 200,000"),
                                      ("-3", "write a vector size like 256")])
def test_bad_latent_text(bad, why):
    with pytest.raises(ValueError, match=f"^latent '{bad}'.*{why}"):
        parse_latent(bad)


@pytest.mark.parametrize("changes, why", [({"kind": "gan"}, r"model kind must be one of \('ae', 'vae'\), got 'gan'"),
                                          ({"image_size": 31}, "image size must be a whole number from 32 to 128, got 31"),
                                          ({"image_size": 129}, "image size must be a whole number from 32 to 128, got 129"),
                                          ({"widths": ()}, r"widths must be 1-5 stage widths of 1..1024 channels, got \(\)"),
                                          ({"latent": "x"}, "latent 'x': write a vector size")])
def test_bad_model_config(changes, why):
    with pytest.raises(ValueError, match=why):
        ModelConfig(**changes)


def test_kl_against_hand_computed_value():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # -1/2 * [(1 + 0 - 1 - 1) + (1 + log 2 - 0 - 2)] = 1 - log(2) / 2
    assert kl_divergence(mu, logvar).item() == pytest.approx(1 - math.log(2) / 2, abs=1e-6)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).tolist() == [0.0, 0.0, 0.0]


def test_loss_is_summed_per_image_and_averaged_over_batch():
    model = build_model(ModelConfig(kind="ae", image_size=32, latent="16", widths=(4, 8, 8)))
    x = torch.rand(4, 3, 32, 32)
    out = model(x)
    t = loss_terms(out, x)
    per_image = ((out.recon - x) ** 2).flatten(1).sum(1)
    assert t.loss.item() == pytest.approx(per_image.mean().item(), rel=1e-5)
    assert t.mse.item() == pytest.approx(((out.recon - x) ** 2).mean().item(), rel=1e-5)
    assert t.kl.item() == 0


def test_vae_reconstruct_is_deterministic_and_forward_samples():
    torch.manual_seed(0)
    m = build_model(ModelConfig(kind="vae", image_size=32, latent="16", widths=(4, 8, 8))).eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(m.reconstruct(x), m.reconstruct(x))
    a = m(x, generator=torch.Generator().manual_seed(1)).z
    b = m(x, generator=torch.Generator().manual_seed(2)).z
    assert not torch.equal(a, b)


def test_summary_names_shapes_and_parameters():
    m = build_model(preset("report-b", "vae"))
    text = summary(m)
    assert f"{m.n_params:,}" in text and "256x8x8" in text and "3x64x64" in text
    assert "ConvTranspose2d" in text


def test_the_loss_at_beta_0_stays_finite_however_large_log_sigma_grows():
    # 0 * inf is NaN: at beta 0 the KL (exp of a log sigma^2 past 88) must not enter the loss.
    from aevae.models import LOGVAR_RANGE, Output, loss_terms
    x = torch.rand(2, 3, 8, 8)
    mu, logvar = torch.zeros(2, 4), torch.full((2, 4), 100.0)
    t = loss_terms(Output(x * 0.5, mu, mu, logvar), x, beta=0.0)
    assert torch.isfinite(t.loss) and torch.isfinite(t.kl)
    assert t.loss.item() == pytest.approx(t.sse.item())
    # the KL shown is the one of the sigma that sampling uses (log sigma^2 clamped)
    hi = LOGVAR_RANGE[1]
    assert t.kl.item() == pytest.approx(-0.5 * 4 * (1 + hi - math.exp(hi)), rel=1e-5)
    assert not torch.isfinite(loss_terms(Output(x * 0.5, mu, mu, logvar), x, beta=0.5).loss)  # beta > 0: said
