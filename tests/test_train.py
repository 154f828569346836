import pytest
import torch
from conftest import make_images

from aevae.config import ModelConfig, TrainConfig
from aevae.models import build_model
from aevae.train import TrainingError, as_uint8_nchw, train, validate

SMALL = ModelConfig(image_size=32, latent="32", widths=(8, 16, 32))


def model(kind="vae", seed=0):
    torch.manual_seed(seed)
    return build_model(SMALL.with_(kind=kind))


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_one_step_changes_every_weight_tensor(kind, images32):
    m = model(kind)
    before = {k: v.clone() for k, v in m.state_dict().items() if v.is_floating_point()}
    hist = train(m, images32[:8], None, TrainConfig(epochs=1, batch_size=8))
    assert len(hist.iter_loss) == 1
    after = m.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_short_training_lowers_validation_loss(kind):
    imgs = make_images(160, 32, seed=1)
    m = model(kind)
    val = as_uint8_nchw(imgs[128:])
    before = validate(m, val, beta=1.0)
    hist = train(m, imgs[:128], imgs[128:], TrainConfig(epochs=6, batch_size=16, lr=2e-3))
    after = hist.epochs[-1]
    assert after["val_loss"] < 0.7 * before["val_loss"]
    assert after["val_psnr"] > before["val_psnr"] + 3
    assert hist.stopped_by == "epochs" and len(hist.epochs) == 6
    assert len(hist.iter_loss) == 6 * 8 == len(hist.iter_mse) == len(hist.iter_kl)
    assert (max(hist.iter_kl) > 0) == (kind == "vae")
    assert [e["epoch"] for e in hist.epochs] == list(range(1, 7))


def test_deterministic_given_a_seed(images32):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3)
    a, b = model(seed=5), model(seed=5)
    ha, hb = train(a, images32, images32[:8], cfg), train(b, images32, images32[:8], cfg)
    assert ha.iter_loss == hb.iter_loss
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    hc = train(model(seed=5), images32, images32[:8], cfg.with_(seed=4))
    assert hc.iter_loss != ha.iter_loss


def test_stop_request_ends_within_one_batch_and_keeps_the_model(images32):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    m = model()
    before = [p.clone() for p in m.parameters()]
    hist = train(m, images32, images32[:8], TrainConfig(epochs=50, batch_size=8), should_stop=should_stop)
    assert len(hist.iter_loss) == 3
    assert hist.stopped_by == "stop request"
    assert hist.epochs and "val_psnr" in hist.epochs[-1]  # the partial epoch is validated
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_seconds_budget_stops_training(images32):
    hist = train(model(), images32, images32[:8], TrainConfig(epochs=10_000, batch_size=8, seconds=1.0))
    assert hist.stopped_by == "time cap"
    assert 1.0 <= hist.seconds < 5.0
    assert len(hist.epochs) < 10_000


def test_progress_reports_every_step(images32):
    seen = []
    train(model(), images32, None, TrainConfig(epochs=2, batch_size=16), on_progress=seen.append)
    assert [p.step for p in seen] == list(range(1, 9))
    assert seen[-1].fraction == 1.0 and seen[0].epoch == 1 and seen[-1].epoch == 2


def test_kl_warmup_starts_at_zero_beta(images32):
    m = model("vae")
    hist = train(m, images32, None, TrainConfig(epochs=1, batch_size=16, beta=1.0, kl_warmup_epochs=2))
    pixels = 3 * 32 * 32
    # First step: beta = 0, so the objective is the summed squared error alone.
    assert hist.iter_loss[0] == pytest.approx(hist.iter_mse[0] * pixels, rel=1e-4)
    assert hist.iter_loss[-1] > hist.iter_mse[-1] * pixels


def test_nan_loss_is_reported_with_its_cause(images32):
    m = model("ae")
    m.decoder.register_forward_hook(lambda mod, inp, out: out * float("nan"))
    with pytest.raises(TrainingError, match="loss became nan.*lower learning rate"):
        train(m, images32, None, TrainConfig(epochs=1, batch_size=16))


def test_a_last_batch_of_one_is_dropped():
    hist = train(model(), make_images(17, 32), None, TrainConfig(epochs=1, batch_size=8))
    assert len(hist.iter_loss) == 2 and hist.images_seen == 16


@pytest.mark.parametrize("bad, why", [({"epochs": 0}, r"^epochs must be a whole number from 1 to 10,000, got 0$"),
                                      ({"batch_size": 0}, r"^batch size must be a whole number from 1 to 4,096, got 0$"),
                                      ({"lr": 0}, r"^learning rate must be in \(0, 1\], got 0\.0$"),
                                      ({"lr": 5}, r"^learning rate must be in \(0, 1\], got 5\.0$"),
                                      ({"beta": -1}, r"^beta must be in \[0, 1000\], got -1\.0$"),
                                      ({"seconds": 0}, r"^seconds must be in \(0, 86400\], got 0\.0$"),
                                      ({"weight_decay": -0.1}, r"^weight decay must be in \[0, 1\], got -0\.1$")])
def test_bad_train_config(bad, why):
    with pytest.raises(ValueError, match=why):
        TrainConfig(**bad)


def test_together_matches_training_alone_and_stops_both(images32):
    from aevae.train import train_together

    cfg = TrainConfig(epochs=2, batch_size=16, seed=1, threads=1)  # together: 1 torch thread per model
    threads = torch.get_num_threads()
    try:
        alone = {k: train(model(k, seed=2), images32, images32[:8], cfg) for k in ("ae", "vae")}
    finally:
        torch.set_num_threads(threads)
    pair = {k: model(k, seed=2) for k in ("ae", "vae")}
    together = train_together(pair, images32, images32[:8], cfg)
    for k in ("ae", "vae"):
        assert together[k].iter_loss == alone[k].iter_loss  # to the last digit
        assert together[k].epochs[-1]["val_psnr"] == alone[k].epochs[-1]["val_psnr"]
    calls = []
    stopped = train_together({k: model(k) for k in ("ae", "vae")}, images32, None,
                             TrainConfig(epochs=50, batch_size=8),
                             on_progress=lambda name, p: calls.append(name),
                             should_stop=lambda: len(calls) >= 6)
    assert calls == ["ae", "vae"] * 3
    assert [len(h.iter_loss) for h in stopped.values()] == [3, 3]
    assert {h.stopped_by for h in stopped.values()} == {"stop request"}


def test_cosine_schedule_ends_near_zero(images32):
    hist = train(model("ae"), images32, None, TrainConfig(epochs=3, batch_size=16, lr=1e-2, cosine=True))
    lrs = [e["lr"] for e in hist.epochs]
    assert lrs[0] < 1e-2 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-6


def test_time_left_uses_the_plan_until_steps_are_measured_then_their_rate():
    # issue 24 item 5: start-up (building, the first validation pass) took 12 s before step 1 of 50;
    # the elapsed time per step said "about 588 s left" at 2%.
    from aevae import timing

    left = timing.TimeLeft(planned=30.0)
    assert left(1, 50, 12.0) == pytest.approx(18.0)  # the plan, less the time gone
    for step in range(2, 6):
        assert left(step, 50, 12.0 + 0.5 * (step - 1)) == pytest.approx(30.0 - 12.0 - 0.5 * (step - 1))
    assert left(6, 50, 14.5) == pytest.approx(0.5 * 44)  # 5 steps measured at 0.5 s each
    assert left(50, 50, 36.5) == 0
    # No plan: the measured rate since the first report once there is one, never the start-up's.
    bare = timing.TimeLeft()
    bare(1, 100, 10.0)
    assert bare(11, 100, 15.0) == pytest.approx(0.5 * 89)
    # Running behind the plan never says 0 s left while steps remain.
    late = timing.TimeLeft(planned=5.0)
    assert late(1, 50, 12.0) > 0
