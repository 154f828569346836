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
