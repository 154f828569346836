"""The one-click report: every part present, and its numbers the ones the session computed."""

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from aevae import checkpoints
from aevae.report import num


def test_report_has_every_part_and_true_numbers(app_module, tmp_path):
    req = type("R", (), {"session_hash": "report1"})()
    app_module.reconstruct("", 10, 3, False, req)  # the student's own draw: not what the report shows
    app_module.make_variants("1-5, 226-230, 841-845, 1471-1475", "(none)", 4, 3, 1.0, 0, req)
    path, msg = app_module.download_report(req)
    assert "Report ready" in msg
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path)
    root = tmp_path / "aevae-report"
    md = (root / "report.md").read_text()
    Path("/tmp/lr-report.md").write_text(md) if Path("/tmp/lr").is_dir() else None
    for heading in ("## 1. Architectures", "## 2. Training", "## 3. Ground truth vs AE vs VAE",
                    "## 4. What the metrics mean", "## 5. Noisy VAE variants", "## 6. Latent sizes",
                    "## 7. Hyperparameter runs", "## 8. Beta trade-off", "## 9. Latent space", "## 10. Discussion"):
        assert heading in md
    # The reconstructions are of validation images: the Reconstructions tab's first draw (seed 0),
    # whatever the student drew last; the same numbers as that tab shows, LPIPS measured.
    _, _, shown, _ = app_module.reconstruct("", 10, 0, True, req)
    table = json.loads((root / "report.json").read_text())
    assert table["reconstructed_ids"] == shown["id"].tolist()
    for row in table["reconstruction"]:
        assert abs(row["PSNR mean"] - shown[f"{row['model']} PSNR"].mean()) < 0.01  # the tab rounds to 2 decimals
        assert f"| {row['model']} | {num(row['PSNR mean'])} | {num(row['PSNR std'])} |" in md
    assert "LPIPS not measured" not in md
    assert all(0 < row["LPIPS mean"] < 1 for row in table["reconstruction"])
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
