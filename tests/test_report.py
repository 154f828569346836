"""The one-click report: every part present, and its numbers the ones the session computed."""

import json
import zipfile

import numpy as np
from PIL import Image

from aevae import checkpoints
from ui.common import session


def test_report_has_every_part_and_true_numbers(app_module, tmp_path):
    req = type("R", (), {"session_hash": "report1"})()
    app_module.reconstruct("", 10, 3, False, req)
    app_module.make_variants("1-5, 226-230, 841-845, 1471-1475", "(none)", 4, 3, 1.0, 0, req)
    path, msg = app_module.download_report(req)
    assert "Report ready" in msg
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / "aevae-report"
    md = (root / "report.md").read_text()
    for heading in ("## 1. Architectures", "## 2. Training", "## 3. Ground truth vs AE vs VAE",
                    "## 4. What the metrics mean", "## 5. Noisy VAE variants", "## 6. Latent sizes",
                    "## 7. Hyperparameter runs"):
        assert heading in md
    # The reconstruction table is the one the tab showed (same ids, same PSNR means).
    s = session(req)
    rec = s.last["reconstruction"]
    assert f"| AE | {rec.ae.summary()['psnr'].mean:.4f} |" in md
    assert f"| VAE | {rec.vae.summary()['psnr'].mean:.4f} |" in md
    # The tab ran with LPIPS off; the report still measures it (shipped weights), here and in section 6.
    assert "LPIPS not measured" not in md
    table = json.loads((root / "report.json").read_text())["reconstruction"]
    assert all(0 < row["LPIPS mean"] < 1 for row in table)
    latent_part = md.split("## 6. Latent sizes", 1)[1].split("## 7.", 1)[0]
    assert "| LPIPS |" in latent_part and "n/a" not in latent_part
    assert "| epochs |" in latent_part and "| the data in use |" in latent_part  # how and on what each rung trained
    data = np.load(root / "gen_data.npy", allow_pickle=False)
    labels = np.load(root / "gen_label.npy", allow_pickle=False)
    assert data.shape == (60, 32, 32, 3) and labels.shape == (60,)
    for png in ("loss_curves.png", "reconstructions.png", "variants.png", "latent_sizes.png"):
        assert Image.open(root / png).size[0] > 100
    html = (root / "report.html").read_text()
    assert "<table>" in html and '<img src="reconstructions.png"' in html
    ck = checkpoints.load(root / "checkpoints" / "vae.json")
    assert ck.model.kind == "vae" and ck.model.config.image_size == 32
