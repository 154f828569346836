import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from aevae import checkpoints
from aevae.checkpoints import CheckpointError
from aevae.config import ModelConfig, TrainConfig
from aevae.models import build_model
from aevae.train import train


def small(kind="vae", latent="32"):
    torch.manual_seed(0)
    return build_model(ModelConfig(kind=kind, image_size=32, latent=latent, widths=(8, 16, 32)))


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("latent", ["32", "16x4x4"])
def test_round_trip_equal_per_tensor(tmp_path, kind, latent, images32):
    m = small(kind, latent)
    hist = train(m, images32[:16], None, TrainConfig(epochs=1, batch_size=8))  # fills BN running stats
    path = checkpoints.save(m, tmp_path / "m", train=TrainConfig(epochs=1), history=hist,
                            dataset={"spec": "test"}, metrics={"psnr": 1.0})
    ck = checkpoints.load(path)
    a, b = m.state_dict(), ck.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert ck.model.config == m.config
    assert ck.meta["history"]["iter_loss"] == hist.iter_loss
    assert ck.meta["kind"] == kind and ck.meta["params"] == m.n_params
    x = torch.rand(2, 3, 32, 32)
    # Weights are equal; outputs may differ in the last bits between memory formats.
    assert torch.allclose(m.eval().reconstruct(x), ck.model.reconstruct(x), atol=1e-5)


def test_load_accepts_either_file_or_the_stem(tmp_path):
    checkpoints.save(small(), tmp_path / "m")
    for p in ["m", "m.json", "m.safetensors"]:
        assert checkpoints.load(tmp_path / p).model.kind == "vae"


def test_half_precision_is_smaller_and_close(tmp_path):
    m = small()
    full = checkpoints.save(m, tmp_path / "full")
    half = checkpoints.save(m, tmp_path / "half", half=True)
    size = lambda p: p.with_suffix(".safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.6 * size(full)
    x = torch.rand(2, 3, 32, 32)
    diff = (checkpoints.load(half).model.reconstruct(x) - m.eval().reconstruct(x)).abs().max()
    assert diff < 5e-3


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        checkpoints.load(tmp_path / "nope.json")


def test_truncated_weights(tmp_path):
    path = checkpoints.save(small(), tmp_path / "m")
    w = path.with_suffix(".safetensors")
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoints.load(path)


def test_weights_from_another_config(tmp_path):
    checkpoints.save(small(latent="32"), tmp_path / "a")
    checkpoints.save(small(latent="64"), tmp_path / "b")
    meta = json.loads((tmp_path / "a.json").read_text())
    other = json.loads((tmp_path / "b.json").read_text())
    meta["weights"], meta["weights_sha256"] = "b.safetensors", other["weights_sha256"]
    (tmp_path / "a.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit"):
        checkpoints.load(tmp_path / "a.json")


@pytest.mark.parametrize("text, why", [("{not json", r"^m\.json: not valid JSON \("),
                                       (json.dumps({"format": "other"}), r"^m\.json: not an aevae checkpoint"),
                                       (json.dumps([1, 2]), r"^m\.json: not an aevae checkpoint")])
def test_bad_metadata(tmp_path, text, why):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(CheckpointError, match=why):
        checkpoints.load(tmp_path / "m.json")


def test_weights_path_cannot_leave_the_folder(tmp_path):
    path = checkpoints.save(small(), tmp_path / "m")
    meta = json.loads(path.read_text())
    meta["weights"] = "../../etc/passwd"
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="file name beside it"):
        checkpoints.load(path)


def test_not_safetensors_is_a_clear_error(tmp_path):
    path = checkpoints.save(small(), tmp_path / "m")
    blob = b"\x80\x04K\x01."  # a pickle, never unpickled
    path.with_suffix(".safetensors").write_bytes(blob)
    meta = json.loads(path.read_text())
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        checkpoints.load(path)


def test_manifest_round_trip(tmp_path):
    assert checkpoints.read_manifest(tmp_path) == []
    checkpoints.write_manifest(tmp_path, [{"name": "a"}], note="x")
    assert checkpoints.read_manifest(tmp_path) == [{"name": "a"}]


# Rewrites a 50 MB file in a loop until killed, so the kill lands mid-write.
WRITER = """
import sys
from pathlib import Path
from aevae.checkpoints import atomic_write
target = Path(sys.argv[1])
data = b"N" * 50_000_000
print("start", flush=True)
while True:
    atomic_write(target, data)
"""


@pytest.mark.slow
def test_killed_writer_never_leaves_a_broken_file(tmp_path):
    target = tmp_path / "w.safetensors"
    good = b"G" * 50_000_000
    checkpoints.atomic_write(target, good)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for delay in (0.05, 0.15, 0.3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, env=env)
        assert p.stdout.readline().strip() == b"start"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        data = target.read_bytes()
        assert data in (good, b"N" * 50_000_000)
    # Temp files may be left by a kill; they are hidden and never taken for the checkpoint.
    assert [f.name for f in tmp_path.iterdir() if not f.name.startswith(".")] == ["w.safetensors"]
