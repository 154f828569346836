"""The plan's time estimate (aevae/timing.py): work counted from the layers, divided by a rate this
server learns from the trainings it finishes. Behaviour only: no wall-clock figures are checked."""

import pytest
from torch import nn

from aevae import timing, train_settings
from aevae.config import ModelConfig
from aevae.models import build_model


def test_flops_are_counted_from_the_layers():
    # conv 3->4, 3x3, on 8x8: 4*8*8 outputs x 27 multiply-adds; then a linear 256->10
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(256, 10))
    assert timing.forward_flops(conv, 8) == 2 * (4 * 8 * 8 * 27) + 2 * 256 * 10
    # a transposed conv 3->2, 4x4 stride 2: each of the 3*8*8 inputs feeds 4*4*2 outputs
    up = nn.Sequential(nn.ConvTranspose2d(3, 2, 4, 2, 1))
    assert timing.forward_flops(up, 8) == 2 * (3 * 8 * 8) * (4 * 4 * 2)
    was = up.train()
    timing.forward_flops(up, 8)
    assert was.training and not any(m._forward_hooks for m in up.modules())  # left as it was found


def test_training_flops_scale_with_epochs_images_and_models():
    ae, vae = ModelConfig(kind="ae", image_size=32, latent="16x4x4"), ModelConfig(kind="vae", image_size=32,
                                                                                  latent="16x4x4")
    one = timing.training_flops([ae], 100, 10, 1)
    assert one == timing.forward_flops(build_model(ae), 32) * (3 * 100 + 10)  # fwd+bwd, then validation
    assert timing.training_flops([ae], 100, 10, 4) == 4 * one
    assert timing.training_flops([ae, vae], 100, 10, 1) > one


def test_the_rate_is_learned_from_finished_trainings(monkeypatch):
    monkeypatch.setattr(timing, "_rate", 40e9)
    cfgs = [ModelConfig(kind="ae", image_size=32, latent="16x4x4")]
    work = timing.training_flops(cfgs, 1000, 100, 2)
    assert timing.estimate_seconds(cfgs, 1000, 100, 2) == pytest.approx(work / 40e9)
    timing.record(1e12, 1.0)  # under 2 s: says little, ignored
    assert timing.rate() == 40e9
    timing.record(20e12, 100.0)  # 200 GFLOP/s over 100 s: weighs half
    assert timing.rate() == pytest.approx(0.5 * 40e9 + 0.5 * 200e9)
    timing.record(20e12, 20.0)  # a third of a minute weighs a third
    assert timing.rate() == pytest.approx((2 / 3) * 120e9 + (1 / 3) * 1e12)
    # a faster server: the same work is estimated shorter
    assert timing.estimate_seconds(cfgs, 1000, 100, 2) < work / 40e9


def test_the_plan_shows_the_estimate(monkeypatch):
    from test_classroom import small_split

    settings = train_settings.TrainSettings("default", 32, "8x4x4", 3, 120.0, 16, 2e-3, 1e-5, 0.1, 0)
    split = small_split()
    cfgs = [settings.model_config(k) for k in ("ae", "vae")]
    ests = []
    for rate in (1e8, 4e8):
        monkeypatch.setattr(timing, "_rate", rate)
        est = timing.estimate_seconds(cfgs, len(split.train), len(split.val), 3)
        assert f"about {est:.0f} s on this server" in train_settings.plan_text(settings, split)
        ests.append(est)
    assert ests[0] == pytest.approx(4 * ests[1]) and round(ests[0]) != round(ests[1])  # it follows the rate
