"""What the page needs to run a pair's models itself (ui/static/js/live.js, onnxruntime-web).

The server sends, once per pair: the names of the models' ONNX files (aevae.web_models), and
for each model the PCA of its validation codes (as sampling.code_map makes it, the map the
server decodes from), so that a point on the map, a slider along a principal direction or
along one code value becomes a code in the page, decoded there at display rate.

Arrays travel as base64 of little-endian float32 (a 16x8x8 code's 8 directions: 44 KB, not
a JSON list of 8,192 numbers).
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from . import web_models
from .models import AutoEncoder
from .sampling import CodeMap

MAX_DIMENSIONS = 64  # vector codes up to this length get a slider per value
MAX_POINTS = 2000  # the map's points sent (the validation split is smaller)


def floats(a) -> str:
    """base64 of float32 little-endian: the page reads it as a Float32Array."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def model_part(model: AutoEncoder, cmap: CodeMap) -> dict:
    """One model's files and its code map's numbers."""
    names = web_models.files_for(model)
    spread = np.asarray(cmap.spread, np.float32)
    spread[:2] = cmap.coords.std(0)  # as the server's map and sliders have them
    k = len(spread)
    out = {"kind": model.kind, "decoder": names["decoder"], "encoder": names["encoder"],
           "latent_shape": list(model.latent_shape), "mean": floats(cmap.mean), "axes": floats(cmap.leading),
           "k": k, "spread": [float(v) for v in spread], "coords": floats(cmap.coords[:MAX_POINTS]),
           "explained": [float(v) for v in cmap.explained]}
    if len(model.latent_shape) == 1 and model.latent_shape[0] <= MAX_DIMENSIONS:
        out["dim_mean"], out["dim_std"] = floats(cmap.dim_mean), floats(cmap.dim_std)
    return out


def payload(ae: AutoEncoder, vae: AutoEncoder, maps: dict[str, CodeMap], labels, label_names: list[str],
            source: str, texts: dict[str, str]) -> dict:
    """All the page needs for the live code map of a pair (maps: "AE" and "VAE" code maps of the
    same validation images; labels: their label index each, label_names: shown in the legend)."""
    return {"source": source, "image_size": int(vae.config.image_size),
            "ae": model_part(ae, maps["AE"]), "vae": model_part(vae, maps["VAE"]),
            "labels": [int(v) for v in np.asarray(labels)[:MAX_POINTS]], "label_names": list(label_names),
            "texts": texts}


MAX_VARIANT_ROWS = 10  # source images the page's live variants show (the gallery has them all)


def variants_payload(ae: AutoEncoder, vae: AutoEncoder, images: np.ndarray, ids, k: int, scale: float,
                     seed: int, texts: dict[str, str]) -> dict:
    """What the page needs to redraw the noisy variants at any noise scale: each source's VAE mean
    and sigma and AE code, and the very noise draws the server used (sampling.noise_draws), so
    that at the gallery's scale the page's pictures are the gallery's."""
    from .sampling import noise_draws
    from .train import as_uint8_nchw, to_float

    images = np.asarray(images)[:MAX_VARIANT_ROWS]
    x = to_float(as_uint8_nchw(images))
    with torch.no_grad():
        v, a = vae.encode(x), ae.encode(x)
        sigma = torch.exp(0.5 * v.logvar.clamp(-30, 20))
    eps = noise_draws(len(images), k, vae.latent_shape, seed)
    return {"ae": web_models.files_for(ae)["decoder"], "vae": web_models.files_for(vae)["decoder"],
            "latent_shape": list(vae.latent_shape), "image_size": int(images.shape[1]), "n": len(images), "k": int(k),
            "ids": [int(i) for i in list(ids)[:MAX_VARIANT_ROWS]], "scale": float(scale), "seed": int(seed),
            "sources": base64.b64encode(np.ascontiguousarray(images, np.uint8).tobytes()).decode("ascii"),
            "mu": floats(v.mu), "sigma": floats(sigma), "code": floats(a.mu), "eps": floats(eps), "texts": texts}


def interpolation_payload(ae: AutoEncoder, vae: AutoEncoder, a: np.ndarray, b: np.ndarray, ids,
                          texts: dict[str, str]) -> dict:
    """Two images' codes (the AE's, the VAE's means) for the page's scrubber between them."""
    from .train import as_uint8_nchw, to_float

    two = np.stack([np.asarray(a), np.asarray(b)])
    x = to_float(as_uint8_nchw(two))
    with torch.no_grad():
        ca, cv = ae.encode(x).mu, vae.encode(x).mu
    return {"ae": web_models.files_for(ae)["decoder"], "vae": web_models.files_for(vae)["decoder"],
            "ae_shape": list(ae.latent_shape), "vae_shape": list(vae.latent_shape), "image_size": int(two.shape[1]),
            "ids": [int(i) for i in ids], "ae_codes": floats(ca), "vae_codes": floats(cv),
            "sources": base64.b64encode(np.ascontiguousarray(two, np.uint8).tobytes()).decode("ascii"), "texts": texts}


def pair_payload(ae: AutoEncoder, vae: AutoEncoder, source: str, texts: dict[str, str]) -> dict:
    """The pair's encoders and decoders, for a picture the page reconstructs on its own."""
    names = {"ae": web_models.files_for(ae), "vae": web_models.files_for(vae)}
    return {"source": source, "image_size": int(vae.config.image_size),
            "ae": {**names["ae"], "latent_shape": list(ae.latent_shape)},
            "vae": {**names["vae"], "latent_shape": list(vae.latent_shape)}, "texts": texts}
