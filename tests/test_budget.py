"""aevae.budget: the memory estimate, the per-training budget and the check (issue 17)."""

from __future__ import annotations

import pytest
import torch

from aevae import budget, server_env
from aevae.budget import GB, MemoryBudgetError
from aevae.config import ModelConfig, preset
from aevae.models import build_model, loss_terms
from aevae.train import MEMORY_FORMAT

PAIR_B128 = [preset("report-b", k, image_size=128) for k in ("ae", "vae")]
CONFIGS = [preset(name, kind, image_size=size) for name, size in
           (("default", 64), ("default", 128), ("report-b", 64), ("report-b", 128), ("report-a", 50),
            ("report-a-wide", 50)) for kind in ("ae", "vae")] + [
    ModelConfig(kind="vae", image_size=32, latent="16", widths=(4, 8, 8)),
    ModelConfig(kind="ae", image_size=50, latent="64x4x4", widths=(8, 16), batchnorm=False),
]


def autograd_saved_bytes(cfg: ModelConfig, batch: int = 4) -> int:
    """What autograd really keeps for backward, per image: one forward + loss on the meta device."""
    with torch.device("meta"):
        m = build_model(cfg)
    m.to(memory_format=MEMORY_FORMAT)
    params = {p.untyped_storage()._cdata for p in m.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st._cdata not in params and st.nbytes() >= batch * 4:  # leave out BatchNorm's statistics
            saved[st._cdata] = st.nbytes()
        return t
    s = cfg.image_size
    x = torch.empty(batch, 3, s, s, device="meta").contiguous(memory_format=MEMORY_FORMAT)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_terms(m(x), x, 1.0)
    return sum(saved.values()) // batch


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.name or 'small'}-{c.kind}-{c.image_size}-{c.latent}")
def test_profile_matches_what_autograd_saves(cfg):
    walked = budget.profile(budget.meta_model(cfg)).saved
    assert walked == pytest.approx(autograd_saved_bytes(cfg), rel=0.01)


def test_parameter_counts_are_exact_without_memory():
    for cfg in CONFIGS[:4]:
        assert budget.meta_model(cfg).n_params == build_model(cfg).n_params
    est = budget.estimate_training(PAIR_B128, 64)
    assert est.n_params == sum(build_model(c).n_params for c in PAIR_B128)
    assert est.weights == 4 * est.n_params and est.optimizer == 3 * est.weights
    # A 4,096-value vector behind report B's 65,536 features: 1.3 G parameters, never allocated.
    huge = budget.estimate_training([c.with_(latent="4096") for c in PAIR_B128], 1)
    assert huge.n_params > 1.3e9 and huge.total > 20 * GB


def test_estimate_grows_with_batch_data_and_size():
    small = budget.estimate_training(PAIR_B128, 64)
    assert budget.estimate_training(PAIR_B128, 128).total > small.total
    assert budget.estimate_training(PAIR_B128, 64, n_images=10_000).data == 10_000 * 128 * 128 * 3
    assert budget.estimate_training([c.with_(image_size=64) for c in PAIR_B128], 64).total < small.total
    # The batch cannot exceed the data set; a single model is fine too.
    assert budget.estimate_training(PAIR_B128, 512, n_images=100).batch_size == 100
    assert budget.estimate_training(PAIR_B128[0], 64).total < small.total
    assert "GB at batch 64" in small.describe() and "parameters" in small.describe()


def test_validation_counts_a_large_latent():
    # Report A's 64x48x48 VAE: at batch 8 validate()'s 256-image pass outweighs a training step.
    wide = [preset("report-a-wide", k) for k in ("ae", "vae")]
    est = budget.estimate_training(wide, 8)
    vae = budget.profile(budget.meta_model(wide[1]))
    assert est.step >= 256 * 6 * 64 * 48 * 48 * 4 and vae.no_grad_peak > 6 * 64 * 48 * 48 * 4


def test_check_names_the_largest_batch_that_fits():
    budget_bytes = 6 * GB
    with pytest.raises(MemoryBudgetError, match=r"^batch 512 at 128 px with the report-b model \(latent 256x8x8\) "
                                                r"needs about \d+\.\d GB; this server allows 6\.0 GB per training: "
                                                r"try batch ≤ (\d+)$") as e:
        budget.check_training(PAIR_B128, 512, n_images=4495, budget_bytes=budget_bytes)
    fits = int(e.value.args[0].rsplit(" ", 1)[1])
    assert 16 <= fits < 512 and isinstance(e.value, ValueError)
    assert budget.check_training(PAIR_B128, fits, 4495, budget_bytes).total <= budget_bytes
    with pytest.raises(MemoryBudgetError, match=rf"^batch {fits + 1} at 128 px .* try batch ≤ {fits}$"):
        budget.check_training(PAIR_B128, fits + 1, 4495, budget_bytes)
    assert budget.largest_batch(PAIR_B128, 4495, budget_bytes) == fits


def test_check_says_what_else_to_lower():
    with pytest.raises(MemoryBudgetError, match=r"even at batch 1 \(1,?\d+\.\d M parameters\): try a smaller latent"):
        budget.check_training([c.with_(latent="4096") for c in PAIR_B128], 64, budget_bytes=6 * GB)
    with pytest.raises(MemoryBudgetError, match=r"even at batch 1 \(10,000 images\)"):
        budget.check_training(PAIR_B128, 8, n_images=10_000, budget_bytes=400_000_000)
    ok = budget.check_training([preset("default", k) for k in ("ae", "vae")], 64, 4495, 6 * GB)
    assert ok.total < 1 * GB


def test_budget_from_the_machine_and_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AEVAE_TRAIN_MEMORY_GB", raising=False)
    monkeypatch.delenv("AEVAE_TRAIN_CONCURRENCY", raising=False)
    monkeypatch.delenv("AEVAE_DATA_MEMORY_GB", raising=False)
    machine = budget.machine_memory_bytes()
    two = budget.training_budget_bytes()
    after_baseline = machine * budget.USABLE_FRACTION - budget.APP_BASELINE_BYTES
    data = budget.data_budget_bytes()
    assert data == max(int(after_baseline * budget.DATA_FRACTION), budget.SESSION_DATA_BYTES)
    assert two == int((after_baseline - data) / 2)
    # the baseline, the data and two trainings: the whole app within the usable memory
    assert budget.app_budget_bytes() <= machine * budget.USABLE_FRACTION
    monkeypatch.setenv("AEVAE_DATA_MEMORY_GB", "1")
    assert budget.data_budget_bytes() == 1 * GB and budget.training_budget_bytes() > two
    assert budget.session_data_bytes() == budget.SESSION_DATA_BYTES
    monkeypatch.setenv("AEVAE_DATA_MEMORY_GB", "0.2")
    assert budget.session_data_bytes() == 200_000_000
    monkeypatch.delenv("AEVAE_DATA_MEMORY_GB")
    assert budget.training_budget_bytes(1) > two
    monkeypatch.setenv("AEVAE_TRAIN_CONCURRENCY", "4")
    assert server_env.train_concurrency() == 4 and budget.training_budget_bytes() < two
    monkeypatch.setenv("AEVAE_TRAIN_MEMORY_GB", "2.5")
    assert budget.training_budget_bytes() == 2_500_000_000
    for bad in ("nan", "-1", "0", "inf", "lots"):
        monkeypatch.setenv("AEVAE_TRAIN_MEMORY_GB", bad)
        with pytest.raises(ValueError, match="AEVAE_TRAIN_MEMORY_GB must be"):
            budget.training_budget_bytes()
    monkeypatch.delenv("AEVAE_TRAIN_MEMORY_GB")
    for bad in ("0", "two", "-2"):
        monkeypatch.setenv("AEVAE_TRAIN_CONCURRENCY", bad)
        with pytest.raises(ValueError, match="AEVAE_TRAIN_CONCURRENCY must be"):
            server_env.train_concurrency()


def test_machine_memory_is_the_lower_of_memtotal_and_the_cgroup(tmp_path):
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal:       24684096 kB\nMemFree: 1 kB\n")
    (proc / "self" / "cgroup").write_text("0::/space\n")
    assert budget.machine_memory_bytes(proc, cg) == 24684096 * 1024
    (cg / "space").mkdir(parents=True)
    (cg / "space" / "memory.max").write_text("17179869184\n")  # a 16 GiB Space
    assert budget.machine_memory_bytes(proc, cg) == 16 * 2**30
    (cg / "space" / "memory.max").write_text("max\n")
    (cg / "memory").mkdir()
    (cg / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1: no limit
    assert budget.machine_memory_bytes(proc, cg) == 24684096 * 1024
    (proc / "self" / "cgroup").write_text("4:memory:/docker/abc\n0::/\n")
    (cg / "memory" / "docker" / "abc").mkdir(parents=True)
    (cg / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text("8000000000\n")
    assert budget.machine_memory_bytes(proc, cg) == 8_000_000_000
    (cg / "memory.max").write_text("4000000000\n")
    assert budget.machine_memory_bytes(proc, cg) == 4_000_000_000


@pytest.mark.slow
def test_estimate_against_a_real_training():
    # One small real run in a fresh process (a few seconds); bench/limits.py runs larger ones.
    cfgs = [preset("default", k) for k in ("ae", "vae")]
    measured = budget.measure_training(cfgs, 128, steps=2, threads=1)["peak"]
    est = budget.estimate_training(cfgs, 128, n_images=256).total
    assert 0.7 * measured <= est <= 2 * measured, (est, measured)
