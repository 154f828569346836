"""torchrun + DistributedDataParallel: 2 gloo processes on the CPU match one process."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import make_images

from aevae import checkpoints


def run(argv, **kw):
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "shapes.npz"
    np.savez(path, data=make_images(200, 32, seed=3), label=np.arange(200) % 4)
    return path


def train_args(dataset, out):
    # No BatchNorm, so one process and two see exactly the same global batches and gradients.
    return ["-m", "aevae", "train", "--model", "vae", "--preset", "report-a", "--dataset", str(dataset),
            "--image-size", "32", "--widths", "8,16", "--latent", "32", "--epochs", "3", "--batch-size", "32",
            "--lr", "2e-3", "--seed", "5", "--threads", "1", "--no-lpips", "--out", str(out)]


@pytest.mark.slow
def test_two_processes_match_one(dataset, tmp_path):
    one = run(train_args(dataset, tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *train_args(dataset, tmp_path / "two")])
    assert two.returncode == 0, two.stderr
    assert "2 processes" in two.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["vae.json", "vae.safetensors"]
    a = checkpoints.load(tmp_path / "one" / "vae.json")
    b = checkpoints.load(tmp_path / "two" / "vae.json")  # loads like any other checkpoint
    ha, hb = a.meta["history"], b.meta["history"]
    assert [e["images"] for e in hb["epochs"]] == [e["images"] for e in ha["epochs"]]
    # Same global batches; the VAE noise differs per process, so losses agree only within tolerance.
    for ea, eb in zip(ha["epochs"], hb["epochs"]):
        assert eb["mse"] == pytest.approx(ea["mse"], rel=0.1)
        assert eb["val_psnr"] == pytest.approx(ea["val_psnr"], abs=1.0)
    assert len(hb["iter_loss"]) == len(ha["iter_loss"])
