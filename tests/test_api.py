"""Each main action through the HTTP API with gradio_client, against a served app."""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CLIENT_HTTPX
from gradio_client import Client
from PIL import Image
from safetensors.torch import load_file

from aevae import checkpoints, data


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False, httpx_kwargs=CLIENT_HTTPX)


def test_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/train", "/reconstruct", "/variants", "/latent_sizes", "/sweep", "/models", "/stop",
            "/prior_samples", "/interpolate", "/code_map", "/beta_shipped", "/beta_sweep"} <= names


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_prior_samples_and_beta(client):
    img, note = client.predict("in use", 4, 0, api_name="/prior_samples")
    assert "4 draws" in note and "same draws" in note
    four = pixels(img)
    cell = four.shape[0] // 2  # two rows, VAE and AE, of square cells (the gap included)
    eight = pixels(client.predict("in use", 8, 0, api_name="/prior_samples")[0])
    assert eight.shape[0] == four.shape[0] and eight.shape[1] - four.shape[1] == 4 * cell  # 4 more draws
    assert np.array_equal(pixels(client.predict("in use", 4, 0, api_name="/prior_samples")[0]), four)  # seeded
    assert not np.array_equal(pixels(client.predict("in use", 4, 1, api_name="/prior_samples")[0]), four)
    table, chart, grid, note = client.predict(api_name="/beta_shipped")
    betas = [row[0] for row in table["data"]]
    assert len(betas) == 2 and len(set(betas)) == 2
    points = chart["value"]["data"]  # KL, MSE, beta: one point per shipped VAE, the table's numbers
    assert [float(p[2]) for p in points] == betas
    assert [round(p[0], 1) for p in points] == [row[1] for row in table["data"]]
    assert pixels(grid).shape[0] == 2 * len(betas) * cell  # reconstructions and prior samples per beta


def test_reconstruct(client):
    img, summary, table, csv = client.predict("", 10, 0, True, api_name="/reconstruct")
    arr = np.asarray(Image.open(img))
    assert arr.ndim == 3 and arr.shape[0] > 96
    assert len(table["data"]) == 10
    psnr = [row[table["headers"].index("AE PSNR")] for row in table["data"]]
    assert all(0 < v <= 100 for v in psnr)
    assert open(csv).read().startswith("id,name,label")


def test_variants(client):
    gallery, msg, files, _payload = client.predict("1-5, 226-230, 841-845, 1471-1475", "(none)", 4, 5, 1.0, 0,
                                                   api_name="/variants")
    assert len(gallery) == 20
    paths = {p.rsplit("/", 1)[-1]: p for p in files}
    back = data.load_arrays(paths["gen_data.npy"], labels_path=paths["gen_label.npy"])
    assert len(back) == 100 and back.image_size == 32


def test_latent_sizes(client):
    img, table, chart, note = client.predict("", 3, 0, False, api_name="/latent_sizes")
    assert len(table["data"]) == 6 and "values" in note


def test_train_then_models(client, tmp_path):
    status, mse, kl, val, files, strip, picker = client.predict(
        "default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, 0, "openmoji", None, True, api_name="/train")
    assert "Done" in status
    assert sorted(Path(f).name for f in files) == ["run-1-ae.json", "run-1-ae.safetensors",
                                                   "run-1-vae.json", "run-1-vae.safetensors"]
    for f in files:  # the client downloads each file to its own folder
        shutil.copy(f, tmp_path)
    assert checkpoints.load(tmp_path / "run-1-vae.json").model.config.image_size == 32
    head, ae, vae, info, _, _ = client.predict(api_name="/models")
    assert "run 1" in head


def test_out_of_range_values_are_refused(client):
    with pytest.raises(Exception, match="maximum value 64|between 1 and 64"):
        client.predict("", 500, 0, False, api_name="/reconstruct")
    with pytest.raises(Exception, match="maximum value 10|variants per image"):
        client.predict("1", "(none)", 4, 99, 1.0, 0, api_name="/variants")


def train_checkpoints(url: str, seed: int, folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """A new client session presses Train (small settings, this seed); its checkpoints' tensors."""
    c = Client(url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    try:
        status, *_, files, _, _ = c.predict("default", 32, "16x4x4", 1, 120, 32, 2e-3, 1e-5, 0.1, seed, "openmoji",
                                            None, False, api_name="/train")
    finally:
        c.close()
    assert "Done" in status, status
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder)
    return {p.stem: load_file(str(p)) for p in folder.glob("*.safetensors")}


@pytest.mark.slow
def test_same_settings_and_seed_give_identical_checkpoints_in_two_separate_apps(quick_zoo, tmp_path):
    """The README's proof that a run is reproducible: two app processes, each with its own run
    cache and training workers (nothing of one can be handed to the other), train the same
    settings and seed through the API at the same time; the checkpoints are equal tensor by
    tensor. Another seed gives other weights, so the comparison can fail."""
    from served import Served

    env = {"AEVAE_CHECKPOINTS": str(quick_zoo)}
    with Served(env) as one, Served(env) as two, ThreadPoolExecutor(2) as pool:
        a, b = pool.map(train_checkpoints, (one.url, two.url), (11, 11), (tmp_path / "a", tmp_path / "b"))
        other = train_checkpoints(two.url, 12, tmp_path / "c")
        assert one.pid != two.pid
    assert sorted(a) == sorted(b) == sorted(other) == ["run-1-ae", "run-1-vae"]
    for name in a:
        assert a[name].keys() == b[name].keys()
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
        assert not all(torch.equal(a[name][k], other[name][k]) for k in a[name]), name
