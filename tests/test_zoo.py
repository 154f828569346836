"""The shipped models (checkpoints/) and the script that makes them."""

import json

import pytest

from aevae import checkpoints, metrics, zoo, zoo_build
from aevae.config import ModelConfig, parse_latent

SHIPPED = checkpoints.read_manifest(zoo.DEFAULT_DIR)


def test_the_repo_ships_every_recipe():
    assert sorted(e["name"] for e in SHIPPED) == sorted(r.name for r in zoo.recipes())


@pytest.mark.parametrize("entry", SHIPPED, ids=[e["name"] for e in SHIPPED])
def test_shipped_entry_loads_and_reproduces_its_psnr(entry):
    ck = checkpoints.load(zoo.DEFAULT_DIR / entry["file"])
    assert ck.model.config == ModelConfig.from_dict(entry["model"])
    assert ck.model.kind == entry["kind"] and ck.model.n_params == entry["params"]
    assert ck.model.latent_numel == entry["latent_numel"] == parse_latent(entry["model"]["latent"]).numel
    split = zoo_build._groups(zoo_build._split(ck.model.config.image_size), tuple(entry.get("groups", ())))
    assert entry["metrics"]["psnr"]["n"] == len(split.val)
    with_lpips = entry["group"] == "default"  # LPIPS adds ~3 s a model: redone for the default pair
    got = metrics.evaluate(ck.model, split.val, lpips=with_lpips).summary()
    assert got["psnr"].mean == pytest.approx(entry["metrics"]["psnr"]["mean"], abs=0.05)
    assert got["ssim"].mean == pytest.approx(entry["metrics"]["ssim"]["mean"], abs=0.002)
    if with_lpips:
        assert got["lpips"].mean == pytest.approx(entry["metrics"]["lpips"]["mean"], abs=0.001)


def test_every_shipped_model_has_lpips_in_manifest_and_checkpoint():
    for e in SHIPPED:
        assert e["metrics"]["lpips"]["n"] == e["metrics"]["psnr"]["n"] and e["lpips_note"] == "", e["name"]
        assert 0 < e["metrics"]["lpips"]["mean"] < 1, e["name"]
        assert checkpoints.read_meta(zoo.DEFAULT_DIR / e["file"])["metrics"] == e["metrics"], e["name"]


def test_quality_bars_and_the_ladder():
    by = {e["name"]: e["metrics"] for e in SHIPPED}
    assert by["default-ae"]["psnr"]["mean"] >= 24 and by["default-ae"]["ssim"]["mean"] >= 0.88
    assert by["default-vae"]["psnr"]["mean"] >= 22 and by["default-vae"]["ssim"]["mean"] >= 0.82
    ladder = [e for e in zoo.Zoo().ladder() if e["kind"] == "ae"]
    psnrs = [e["metrics"]["psnr"]["mean"] for e in ladder]
    assert [e["latent_numel"] for e in ladder] == sorted(e["latent_numel"] for e in ladder)
    assert psnrs == sorted(psnrs), "AE quality must rise along the latent ladder"
    lpips = [e["metrics"]["lpips"]["mean"] for e in ladder]
    assert lpips == sorted(lpips, reverse=True), "AE LPIPS must fall along the latent ladder"


def test_checkpoints_stay_small():
    total = sum(p.stat().st_size for p in zoo.DEFAULT_DIR.iterdir())
    assert total < 100_000_000


@pytest.mark.slow
def test_quick_build_end_to_end(tmp_path):
    assert zoo_build.main(["build", "--quick", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    names = [e["name"] for e in manifest["models"]]
    assert names == [r.name for r in zoo.recipes(quick=True)]
    z = zoo.Zoo(tmp_path)
    ae, vae = z.pair()
    assert ae.model.kind == "ae" and vae.model.kind == "vae"
    assert [e["rung"] for e in z.ladder()][::2] == ["16", "16x4x4", "64x4x4"]
    table = zoo_build.results_table(manifest["models"])
    assert table.count("\n") == len(names) + 1


def test_readme_results_table_is_the_manifests():
    readme = (zoo.DEFAULT_DIR.parent / "README.md").read_text()
    block = readme.split(zoo_build.README_START, 1)[1].split(zoo_build.README_END, 1)[0].strip()
    assert block == zoo_build.results_table(SHIPPED)


def test_the_generative_pair_generates_and_its_ae_does_not():
    """Prior samples of the shipped generative VAE look like real emoji of its data (structural
    similarity to the nearest training image); the AE's decoder, fed the very same draws, makes
    images like none of them: the Latent space tab's lesson. (Pixel MSE would not tell them apart:
    the AE's pale noise is close to white backgrounds.)"""
    import numpy as np
    import torch

    from aevae import sampling

    ae, vae = zoo.Zoo().pair(zoo.GENERATE)
    real = zoo_build._groups(zoo_build._split(vae.model.config.image_size), zoo.GENERATE_GROUPS).train.images
    z = torch.randn(8, *vae.model.latent_shape, generator=torch.Generator().manual_seed(0))
    nearest = {}
    for name, m in (("vae", vae.model), ("ae", ae.model)):
        x = sampling.prior_samples(m, z=z)
        s = metrics.ssim(np.repeat(x, len(real), 0), np.tile(real, (len(x), 1, 1, 1)))
        nearest[name] = float(np.median(s.reshape(len(x), len(real)).max(1)))
    assert nearest["vae"] > 1.5 * nearest["ae"], nearest
