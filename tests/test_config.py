"""Validation in aevae.config: latents, seeds, whole and finite numbers (issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aevae.config import (
    MAX_LATENT_VALUES,
    MAX_SEED,
    MAX_VECTOR_LATENT,
    PRESETS,
    Latent,
    ModelConfig,
    TrainConfig,
    adapt_latent,
    check_finite,
    check_seed,
    nearest_latents,
    parse_latent,
)
from aevae.models import build_model

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(("text", "latent"), [
    ("256", Latent(256)), (" 256 ", Latent(256)), (16, Latent(16)), ("1", Latent(1)),
    ("256x8x8", Latent(256, 8, 8)), ("256×8×8", Latent(256, 8, 8)), ("256, 8, 8", Latent(256, 8, 8)),
    ("1x1x1", Latent(1, 1, 1)), ("64x48x48", Latent(64, 48, 48)),
    (str(MAX_VECTOR_LATENT), Latent(MAX_VECTOR_LATENT)),
])
def test_parse_latent_good(text, latent):
    assert parse_latent(text) == latent


@pytest.mark.parametrize(("text", "message"), [
    ("64x0x0", "every size must be at least 1"),  # was taken for a vector of 64
    ("0", "every size must be at least 1"),
    ("0x8x8", "every size must be at least 1"),
    ("8x0x8", "every size must be at least 1"),
    ("000", "every size must be at least 1"),
    ("20000", f"a vector latent is at most {MAX_VECTOR_LATENT:,} values"),
    (str(MAX_VECTOR_LATENT + 1), "a vector latent is at most"),
    ("1000x20x20", f"has 400,000 values; the limit is {MAX_LATENT_VALUES:,}"),
    ("4x3x5", "must be square"),
    ("-3", "write a vector size"), ("2.5", "write a vector size"), ("", "write a vector size"),
    ("64x8", "write a vector size"), ("nan", "write a vector size"), ("1e3", "write a vector size"),
    ("9" * 5000, "write a vector size"), ("64x8x8x8", "write a vector size"),
    (True, "write a vector size"), (None, "write a vector size"), (64.0, "write a vector size"),
])
def test_parse_latent_refused(text, message):
    with pytest.raises(ValueError, match=message) as e:
        parse_latent(text)
    assert len(str(e.value)) < 200  # a pasted wall of digits is not echoed back whole


def test_model_config_uses_the_latent_parser():
    with pytest.raises(ValueError, match="every size must be at least 1"):
        ModelConfig(latent="64x0x0")
    with pytest.raises(ValueError, match="a vector latent is at most"):
        ModelConfig(latent="20000")


@pytest.mark.parametrize("value", [0, 1, 12345, MAX_SEED, 7.0, np.int64(3), np.uint32(MAX_SEED), np.float32(2.0)])
def test_check_seed_good(value):
    got = check_seed(value)
    assert type(got) is int and got == int(value)


@pytest.mark.parametrize(("value", "message"), [
    (2**70, "from 0 to 4,294,967,295, got 1,180,591,620,717,411,303,424"),
    (MAX_SEED + 1, "from 0 to"), (-1, "from 0 to"), (3.5, "whole number, got 3.5"),
    (NAN, "finite number, got nan"), (INF, "finite number, got inf"), (-INF, "finite number"),
    (True, "whole number"), (False, "whole number"), (None, "whole number"), ("3", "whole number"),
    (1e300, "from 0 to"),
])
def test_check_seed_refused(value, message):
    with pytest.raises(ValueError, match=f"^seed must be .*{message}"):
        check_seed(value)


def test_check_finite():
    assert check_finite(2, "x") == 2.0 and type(check_finite(np.float32(0.5), "x")) is float
    for bad, message in ((NAN, "finite number, got nan"), (INF, "finite number, got inf"),
                         (-INF, "finite number, got -inf"), (np.float64("nan"), "finite number"),
                         (10**400, "finite number"),
                         (True, "number, got True"), (None, "number, got None"), ("1", "number, got .1.")):
        with pytest.raises(ValueError, match=f"^lr must be a {message}"):
            check_finite(bad, "lr")


# Each number TrainConfig takes, with NaN and inf: some were refused only by luck of a range
# comparison (not 0 < nan <= 1), KL warm-up let +inf through, plateau factor took anything.
@pytest.mark.parametrize("field", ["lr", "weight_decay", "beta", "kl_warmup_epochs", "plateau_factor", "seconds"])
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_train_config_refuses_nan_and_inf(field, value):
    with pytest.raises(ValueError, match="must be a finite number"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(("changes", "message"), [
    ({"seed": 2**70}, "seed must be"), ({"seed": -1}, "seed must be"), ({"seed": 1.5}, "seed must be"),
    ({"seed": NAN}, "seed must be"), ({"epochs": 2.5}, "epochs must be"), ({"epochs": 0}, "epochs must be"),
    ({"batch_size": True}, "batch size must be"), ({"batch_size": 5000}, "batch size must be"),
    ({"batch_size": NAN}, "batch size must be"), ({"plateau_factor": 1.0}, r"plateau factor must be in \(0, 1\)"),
    ({"plateau_factor": 0}, "plateau factor"), ({"lr": 0}, "learning rate must be in"),
    ({"weight_decay": -1e-9}, "weight decay"), ({"beta": 1001}, "beta must be in"),
    ({"kl_warmup_epochs": -1}, "KL warm-up"), ({"seconds": 0}, "seconds must be in"),
    ({"threads": 0}, "threads"), ({"plateau_patience": -1}, "plateau patience"),
    ({"eval_every": 0}, "eval_every"), ({"device": None}, "device must be"),
])
def test_train_config_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_train_config_normalises_whole_floats():
    cfg = TrainConfig(epochs=3.0, batch_size=np.int64(16), seed=np.float64(7), seconds=5, lr=np.float32(0.5))
    assert (cfg.epochs, cfg.batch_size, cfg.seed) == (3, 16, 7)
    assert all(type(v) is int for v in (cfg.epochs, cfg.batch_size, cfg.seed))
    assert type(cfg.seconds) is float and type(cfg.lr) is float
    assert TrainConfig(seed=MAX_SEED).seed == MAX_SEED
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert math.isclose(cfg.with_(lr=0.1).lr, 0.1)


@pytest.mark.parametrize(("changes", "message"), [
    ({"image_size": 64.5}, "image size must be a whole number"), ({"image_size": NAN}, "image size"),
    ({"image_size": True}, "image size"), ({"widths": (16, NAN)}, "widths must be"),
    ({"widths": (16, 2.5)}, "widths must be"), ({"widths": (0,)}, "widths must be"),
    ({"widths": "abc"}, "widths must be"),
])
def test_model_config_numbers(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**changes)


def test_model_config_normalises_whole_floats():
    cfg = ModelConfig(image_size=64.0, widths=(16.0, 32))
    assert cfg.image_size == 64 and type(cfg.image_size) is int and cfg.widths == (16, 32)


@pytest.mark.parametrize(("latent", "size", "first"), [
    ("8x16x16", 50, "8x12x12"),  # issue 15: the Train tab's default latent at report A's 50 px
    ("16x8x8", 50, "16x10x10"), ("64x48x48", 64, "38x62x62"), ("256x8x8", 100, "256x10x10"),
])
def test_nearest_latents_are_latents_that_build(latent, size, first):
    got = nearest_latents(latent, size)
    assert got[0] == first and 2 <= len(got) <= 3 and latent not in got
    for lat in got:  # every suggestion is a model that builds, with an output the image's size
        m = build_model(ModelConfig(image_size=size, latent=lat, widths=(4, 4, 4, 4)))
        assert m.decode(m.encode(torch.zeros(1, 3, size, size)).mu).shape[-1] == size
        assert parse_latent(lat).numel <= MAX_LATENT_VALUES


def test_nearest_latents_of_a_latent_that_works_is_itself():
    assert nearest_latents("8x16x16", 64) == ["8x16x16"] and nearest_latents("256", 50) == ["256"]


def test_the_unreachable_latent_error_names_the_nearest_choices():
    with pytest.raises(ValueError, match="nearest that work: 8x12x12, 14x12x12, 8x23x23"):
        build_model(ModelConfig(image_size=50, latent="8x16x16"))


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("size", [32, 50, 64, 100, 128])
def test_preset_latents_adapt_to_other_image_sizes_where_they_can(name, size):
    p = PRESETS[name].model
    got = adapt_latent(p.latent, p.image_size, size)
    assert adapt_latent(p.latent, p.image_size, p.image_size) == p.latent
    if got is None:  # only report A 5-1's 64x48x48 cannot: 64x62x62 is over the limit
        assert name == "report-a-wide" and size > 50
        return
    model = build_model(p.with_(image_size=size, latent=got))  # the same stages as at the preset's size
    assert len(model.plan.widths) == len(build_model(p).plan.widths)
    assert adapt_latent(got, size, p.image_size) == p.latent or size < p.image_size
