import numpy as np
import pytest
import torch

from aevae import sampling
from aevae.config import ModelConfig, TrainConfig
from aevae.models import build_model
from aevae.train import train

CFG = ModelConfig(image_size=32, latent="16", widths=(8, 16, 16))


@pytest.fixture(scope="module")
def pair():
    from conftest import make_images

    imgs = make_images(48, 32)
    models = {}
    for kind in ("ae", "vae"):
        torch.manual_seed(0)
        models[kind] = build_model(CFG.with_(kind=kind))
        train(models[kind], imgs, None, TrainConfig(epochs=2, batch_size=16))
    return models["ae"], models["vae"], imgs


def test_variants_shape_and_seed(pair):
    _, vae, imgs = pair
    v = sampling.variants(vae, imgs[:4], k=3, seed=1)
    assert v.shape == (4, 3, 32, 32, 3) and v.dtype == np.uint8
    assert np.array_equal(v, sampling.variants(vae, imgs[:4], k=3, seed=1))
    assert not np.array_equal(v, sampling.variants(vae, imgs[:4], k=3, seed=2))
    assert not np.array_equal(v[:, 0], v[:, 1])  # variants of one image differ


def test_zero_noise_gives_the_reconstruction(pair):
    _, vae, imgs = pair
    v = sampling.variants(vae, imgs[:3], k=2, scale=0.0)
    rec = sampling.to_uint8(vae.reconstruct(torch.from_numpy(imgs[:3]).permute(0, 3, 1, 2).float() / 255))
    assert np.array_equal(v[:, 0], rec) and np.array_equal(v[:, 1], rec)


def test_same_noise_through_ae_and_vae(pair):
    ae, vae, imgs = pair
    vs = sampling.variant_set(vae, ae, imgs[:5], ids=[1, 2, 3, 4, 5], labels=[0, 0, 1, 1, 2], k=4, seed=7)
    eps = sampling.noise_draws(5, 4, vae.latent_shape, 7)
    assert np.array_equal(vs.ae, sampling.variants(ae, imgs[:5], mode="fixed", eps=eps))
    assert np.array_equal(vs.vae, sampling.variants(vae, imgs[:5], mode="posterior", eps=eps))
    data, labels = vs.export_arrays()
    assert data.shape == (20, 32, 32, 3)
    assert labels.tolist() == [0] * 8 + [1] * 8 + [2] * 4
    assert np.array_equal(data[4:8], vs.vae[1])


def test_posterior_noise_needs_a_vae(pair):
    ae, _, imgs = pair
    with pytest.raises(ValueError, match="needs a VAE"):
        sampling.variants(ae, imgs[:2])


@pytest.mark.parametrize("kw, why", [({"k": 0}, r"variants per image must be 1\.\.\d+, got 0"),
                                     ({"k": 500}, r"variants per image must be 1\.\.\d+, got 500"),
                                     ({"scale": -1}, r"noise scale must be 0\.\.\S+, got -1"),
                                     ({"scale": 100}, r"noise scale must be 0\.\.\S+, got 100"),
                                     ({"mode": "x"}, r"noise mode must be one of .*, got 'x'")])
def test_bounds(pair, kw, why):
    _, vae, imgs = pair
    with pytest.raises(ValueError, match=why):
        sampling.variants(vae, imgs[:2], **kw)


def test_save_arrays_round_trip(tmp_path, pair):
    _, vae, imgs = pair
    vs = sampling.variant_set(vae, None, imgs[:2], [1, 2], [3, 4], k=2)
    data, labels = vs.export_arrays()
    paths = sampling.save_arrays(tmp_path, data, labels)
    assert [p.name for p in paths] == ["gen_data.npy", "gen_label.npy"]
    assert np.array_equal(np.load(paths[0], allow_pickle=False), data)
    assert np.load(paths[1], allow_pickle=False).tolist() == [3, 3, 4, 4]
    npz = np.load(sampling.save_npz(tmp_path / "v.npz", data, labels), allow_pickle=False)
    assert np.array_equal(npz["data"], data) and npz["label"].tolist() == [3, 3, 4, 4]


def test_prior_samples_same_draws_for_both(pair):
    ae, vae, _ = pair
    z = torch.randn(6, *vae.latent_shape, generator=torch.Generator().manual_seed(0))
    a, v = sampling.prior_samples(ae, z=z), sampling.prior_samples(vae, z=z)
    assert a.shape == v.shape == (6, 32, 32, 3)
    assert np.array_equal(v, sampling.prior_samples(vae, n=6, seed=0))


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_ends_are_the_reconstructions(pair, spherical):
    _, vae, imgs = pair
    path = sampling.interpolate(vae, imgs[0], imgs[1], steps=5, spherical=spherical)
    rec = sampling.to_uint8(vae.reconstruct(torch.from_numpy(imgs[:2]).permute(0, 3, 1, 2).float() / 255))
    assert path.shape == (5, 32, 32, 3)
    assert np.abs(path[0].astype(int) - rec[0]).max() <= 1
    assert np.abs(path[-1].astype(int) - rec[1]).max() <= 1


def test_slerp_keeps_the_norm_between_equal_norm_ends():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    z = sampling.slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(z[0], a) and torch.allclose(z[-1], b, atol=1e-6)


@pytest.mark.parametrize("which", ["one", "two", "identical"])
def test_the_code_map_of_very_few_or_identical_images_has_two_axes(pair, which):
    # issue 24 item 12: one image has no second axis, two have no second direction, identical ones none.
    _, vae, imgs = pair
    images = {"one": imgs[:1], "two": imgs[:2], "identical": np.repeat(imgs[:1], 5, 0)}[which]
    cmap = sampling.code_map(vae, images)
    assert cmap.coords.shape == (len(images), 2) and np.isfinite(cmap.coords).all()
    assert len(cmap.explained) == 2 and cmap.axes.shape[0] == 2
    assert cmap.code_at(0.5, -0.5).shape == (1, *vae.latent_shape)
    grid = sampling.decode_grid(vae, cmap, 3)
    assert grid.shape == (3, 3, 32, 32, 3)
