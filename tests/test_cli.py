"""The command line end to end on a small generated dataset: train -> evaluate -> sample."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_images

from aevae import checkpoints, data
from aevae.__main__ import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "tiny.npz"
    np.savez(path, data=make_images(60, 32), label=np.arange(60) % 3)
    return path


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--dataset", str(dataset), "--image-size", "32", "--latent", "16",
               "--widths", "8,16,16", "--epochs", "3", "--batch-size", "16", "--no-lpips", "--out", str(out)])
    assert rc == 0
    return out


def test_train_writes_loadable_checkpoints(trained):
    for kind in ("ae", "vae"):
        ck = checkpoints.load(trained / f"{kind}.json")
        assert ck.model.kind == kind and ck.model.latent_shape == (16,)
        assert len(ck.meta["history"]["epochs"]) == 3
        assert ck.meta["dataset"]["n_val"] == 6 and ck.meta["dataset"]["spec"].endswith("tiny.npz")
        assert 0 < ck.meta["metrics"]["psnr"]["mean"] < 100


def test_evaluate_json_matches_the_recorded_metrics(trained, capsys):
    assert main(["evaluate", str(trained / "ae.json"), str(trained / "vae.json"), "--json", "--no-lpips"]) == 0
    report = json.loads(capsys.readouterr().out)
    for kind in ("ae", "vae"):
        entry = report[str(trained / f"{kind}.json")]
        recorded = checkpoints.read_meta(trained / f"{kind}.json")["metrics"]["psnr"]["mean"]
        assert entry["n"] == 6 and entry["kind"] == kind
        assert entry["summary"]["psnr"]["mean"] == pytest.approx(recorded, abs=1e-9)
        assert len(entry["images"]) == 6


def test_evaluate_prints_lpips_with_no_network_and_an_empty_home(trained, tmp_path, monkeypatch, capsys):
    for var in ("HOME", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path))
    monkeypatch.setenv("AEVAE_NO_DOWNLOAD", "1")
    monkeypatch.delenv("AEVAE_ALEXNET_WEIGHTS", raising=False)
    assert main(["evaluate", str(trained / "ae.json")]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"LPIPS 0\.\d{4} ± 0\.\d{4}", out) and "not measured" not in err


def test_sample_exports_arrays_that_load_back(trained, dataset, tmp_path):
    rc = main(["sample", str(trained / "vae.json"), "--ae", str(trained / "ae.json"), "--dataset", str(dataset),
               "--ids", "1-4,7", "--variants", "3", "--out", str(tmp_path)])
    assert rc == 0
    back = data.load_arrays(tmp_path / "gen_data.npy", labels_path=tmp_path / "gen_label.npy")
    assert len(back) == 15 and back.image_size == 32
    labels = np.load(tmp_path / "gen_label.npy")
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0]
    assert np.load(tmp_path / "gen_data_ae.npy").shape == (15, 32, 32, 3)
    assert (tmp_path / "gen_label_names.txt").read_text().splitlines() == ["0", "1", "2"]


@pytest.mark.parametrize("argv, message", [
    (["sample", "{vae}", "--ids", "1,999", "--dataset", "{data}"], "no image with id 999"),
    (["sample", "{ae}", "--ids", "1"], "need a VAE"),
    (["evaluate", "{missing}"], "no such run folder or checkpoint"),
    (["train", "--dataset", "{missing}", "--epochs", "1"], "missing"),
    (["train", "--dataset", "{data}", "--image-size", "32", "--latent", "3x5x5"], "cannot be reached"),
    (["train", "--dataset", "{data}", "--epochs", "0"], "epochs must be"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(trained, dataset, tmp_path, capsys, argv, message):
    fill = {"vae": trained / "vae.json", "ae": trained / "ae.json", "data": dataset,
            "missing": tmp_path / "missing.json"}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_module_help_runs():
    out = subprocess.run([sys.executable, "-m", "aevae", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--seconds" in out.stdout


def test_evaluate_and_sample_take_the_run_folder(trained, tmp_path, capsys):
    assert main(["evaluate", str(trained), "--no-lpips", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(r["kind"] for r in report.values()) == ["ae", "vae"]
    out = tmp_path / "variants"
    assert main(["sample", str(trained), "--ids", "1-3", "--variants", "2", "--out", str(out)]) == 0
    assert np.load(out / "gen_data.npy").shape[0] == 6
    assert (out / "gen_data_ae.npy").exists()  # the run's AE got the same noise
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty)]) == 2
    assert "no checkpoint in it" in capsys.readouterr().err
    for command in ("evaluate", "sample"):  # a mistyped folder: what was looked for, not a metadata error
        assert main([command, str(tmp_path / "runs" / "x")]) == 2
        assert "no such run folder or checkpoint (looked for the folder" in capsys.readouterr().err


@pytest.mark.slow
def test_train_out_dir_then_evaluate_and_sample_it_as_a_subprocess(dataset, tmp_path):
    """Issue 15 as a student types it: train --out DIR, then evaluate DIR and sample DIR."""
    run = tmp_path / "runs" / "x"

    def aevae(*args):
        out = subprocess.run([sys.executable, "-m", "aevae", *map(str, args)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    aevae("train", "--dataset", dataset, "--image-size", 32, "--latent", 8, "--widths", "4,8", "--epochs", 1,
          "--batch-size", 32, "--no-lpips", "--out", run)
    lines = [line for line in aevae("evaluate", run, "--no-lpips").splitlines() if "PSNR" in line]
    assert len(lines) == 2 and {line.split()[1] for line in lines} == {"AE", "VAE"}
    aevae("sample", run, "--ids", "1-2", "--variants", 2, "--out", tmp_path / "v")
    assert np.load(tmp_path / "v" / "gen_data.npy").shape == (4, 32, 32, 3)


ROOT = Path(__file__).resolve().parent.parent


def aevae_cli(*args, timeout=900) -> str:
    """`python -m aevae ARGS` from the repository's root, as a user types it; its stdout."""
    out = subprocess.run([sys.executable, "-m", "aevae", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_every_shipped_checkpoint_evaluates_from_the_command_line():
    """Each entry of checkpoints/manifest.json through `python -m aevae evaluate`, on the data it
    records (the generate pair: OpenMoji's smileys only), gives the metrics the manifest lists."""
    entries = checkpoints.read_manifest(ROOT / "checkpoints")
    files = [f"checkpoints/{e['file']}" for e in entries]
    assert len(files) >= 24 and "checkpoints/generate-vae.json" in files
    report = json.loads(aevae_cli("evaluate", *files, "--json", "--no-lpips"))
    assert sorted(report) == sorted(files)
    for e, f in zip(entries, files):
        got, recorded = report[f]["summary"], e["metrics"]
        assert report[f]["n"] == recorded["psnr"]["n"], f  # its own validation images (generate: 11)
        assert got["psnr"]["mean"] == pytest.approx(recorded["psnr"]["mean"], abs=1e-4), f
        assert got["ssim"]["mean"] == pytest.approx(recorded["ssim"]["mean"], abs=1e-5), f


@pytest.mark.slow
def test_the_generate_pair_evaluates_and_samples_as_the_readme_says(tmp_path):
    """The command that failed ("openmoji (smileys & emotion): no such file or folder"), with LPIPS."""
    recorded = {e["name"]: e["metrics"] for e in checkpoints.read_manifest(ROOT / "checkpoints")}["generate-vae"]
    line = aevae_cli("evaluate", "checkpoints/generate-vae.json").strip()
    m = re.fullmatch(r"generate-vae\s+VAE\s+n=11\s+PSNR\s+([\d.]+) ± +[\d.]+\s+SSIM [\d.]+ ± [\d.]+\s+"
                     r"LPIPS ([\d.]+) ± [\d.]+", line)
    assert m, line
    assert float(m[1]) == pytest.approx(recorded["psnr"]["mean"], abs=0.01)
    assert float(m[2]) == pytest.approx(recorded["lpips"]["mean"], abs=1e-3)
    # sample: ids are those of the whole recorded data (OpenMoji), as for every shipped model
    aevae_cli("sample", "checkpoints/generate-vae.json", "--ids", "1-3", "--variants", 2, "--out", tmp_path)
    assert np.load(tmp_path / "gen_data.npy").shape == (6, 64, 64, 3)
