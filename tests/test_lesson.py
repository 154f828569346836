"""A lesson in one session, tried the way a student does it (issue 24): several kinds of runs in
any order, a stop, then the runs table and the report. Through the app's handlers, on tiny settings."""

import csv
import json
import numbers
import re
import threading
import time
import zipfile
from types import SimpleNamespace

import pytest
from conftest import make_images
from PIL import Image

from aevae.report import num
from ui.sessions import session


def req(name, lang=None):
    return SimpleNamespace(session_hash=name, headers={"accept-language": lang or "en"})


def train(app, name, **kw):
    args = dict(preset="default", image_size=32, latent="16x4x4", epochs=1, seconds=120, batch_size=64, lr=2e-3,
                weight_decay=1e-5, beta=0.1, seed=0, dataset="openmoji", upload=None, use_when_done=True)
    args.update(kw)
    return list(app.train_models(*args.values(), request=req(name)))


def report_md(app, name, tmp_path, lang=None):
    path, msg = app.download_report(req(name, lang))
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / name)
    return (tmp_path / name / "aevae-report" / "report.md").read_text(), tmp_path / name / "aevae-report"


@pytest.mark.parametrize("order", ["train first", "beta first"])
def test_train_and_a_beta_sweep_in_either_order_then_runs_and_report(app_module, tmp_path, order):
    """Issue 24 items 1 and 2: after Train and a beta sweep (either order) the runs table shows
    every run and the report can be made."""
    name = f"lesson-{order.split()[0]}"
    app_module.upload_data([photo_zip(tmp_path)], 32, req(name))  # small data: the runs take seconds
    steps = [lambda: train(app_module, name, dataset="upload"), lambda: list(app_module.beta_sweep("0, 1", 1, req(name)))]
    for step in steps if order == "train first" else steps[::-1]:
        step()
    runs, pick, path, note = app_module.show_runs(req(name))
    assert len(runs) == 3 and set(runs["made by"]) == {"Train", "beta sweep (VAE only)"}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [r["made by"] for r in rows] == [runs["made by"].iloc[i] for i in range(3)]
    beta = next(r for r in rows if r["made by"] == "beta sweep (VAE only)")
    assert beta["AE val PSNR"] == "" and float(beta["VAE val PSNR"]) > 0  # no AE in a beta run: left empty
    md, _ = report_md(app_module, name, tmp_path)
    assert "## 7. Hyperparameter runs" in md
    assert md.count("| beta sweep (VAE only) |") == 2 and md.count("| Train |") == 1


def test_every_kind_of_run_is_one_typed_record_with_the_same_columns(app_module, tmp_path):
    """Train, an epoch-sweep row, a rung and a beta sweep: each a RunRecord (numbers as numbers,
    None where a run has no such value), shown as rows with the same columns."""
    from aevae.runs import KINDS, RunRecord

    name = "lesson-kinds"
    app_module.upload_data([photo_zip(tmp_path)], 32, req(name))  # small data: the runs take seconds
    train(app_module, name, dataset="upload")
    list(app_module.sweep("1", 32, "16x4x4", 0, 120, req(name)))
    list(app_module.train_missing_rung("8", 1, req(name)))
    list(app_module.beta_sweep("0, 1", 1, req(name)))
    s = session(req(name))
    records = [r.record for r in s.runs]
    assert [r.kind for r in records] == [KINDS[0], KINDS[1], KINDS[2], KINDS[3], KINDS[3]]
    for r in records:
        assert isinstance(r, RunRecord) and r.finished and r.steps == r.steps_planned > 0
        assert isinstance(r.vae.val_psnr, float) and isinstance(r.seconds, float)
    assert records[-1].ae is None and records[0].ae.val_psnr > 0
    n_train = len(session(req(name)).split(32).train)
    assert records[1].data == f"32 of {n_train} training images" and records[1].series != records[3].series
    assert records[3].series == records[4].series and records[0].series == 0
    runs, *_ = app_module.show_runs(req(name))
    assert len(runs) == 5 and runs["AE val PSNR"].isna().tolist() == [False] * 3 + [True] * 2
    assert all(isinstance(v, numbers.Number) for v in runs["VAE val PSNR"])


def test_a_stopped_run_is_kept_but_does_not_replace_the_pair_in_use(app_module):
    """Issue 24 item 10: Stop keeps the half-trained pair as a run to pick, not as the pair in use,
    and its status says where it stopped and that it is not reproducible as such."""
    name = "lesson-stop"
    out, s = {}, session(req(name))
    t = threading.Thread(target=lambda: out.setdefault("steps", train(app_module, name, epochs=200)))
    t.start()
    deadline = time.monotonic() + 30
    while not (s.busy and any(h.iter_loss for h in _live(s))) and time.monotonic() < deadline:
        time.sleep(0.05)
    app_module.stop_training(req(name))
    t.join(60)
    assert not t.is_alive()
    status, *_, picker = out["steps"][-1]
    run = s.runs.last
    assert run.record.stopped_by == "stop request" and not run.record.finished
    assert s.in_use == "shipped:default" and picker["value"] == "shipped:default"
    assert (run.title, run.value) in [(label, v) for label, v in picker["choices"]]  # selectable
    assert "same settings, seed and data give the same models" not in status
    assert f"stopped at epoch {run.record.epochs_done} of 200, step {run.record.steps:,} of " in status
    assert "not reproducible as such" in status and "did not replace the pair in use" in status
    assert "run 1" in app_module.use_models("run:1", req(name)) and s.pair() is run.pair  # chosen by hand


def _live(s):
    """The live histories of the trainings running now (classroom.Live), once they have started."""
    return [h for sh in list(s.shared._runs.values()) if not sh.done.is_set() for h in sh.live.histories.values()]


def photo_zip(tmp_path, n=48, size=32, extra=()):
    """A student's photos: two label folders in a wrapper folder, as a zip."""
    z = tmp_path / "my_photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, img in enumerate(make_images(n, size, seed=3)):
            p = tmp_path / f"p{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"my_photos/{'cat' if i % 2 else 'rocket'}/{i}.png")
        for name, body in extra:
            zf.writestr(name, body)
    return str(z)


def test_the_report_answers_the_homework_in_words_from_the_pair_in_use(app_module, tmp_path):
    """Issue 24 item 13: after a lesson on the student's own photos (Train, an epochs sweep, a beta
    sweep, one own image reconstructed last), the report reconstructs validation images with the
    pair in use, has the beta and latent-space sections and a discussion whose every number is the
    one the session computed, names the labels, and prints numbers without trailing zeros."""
    name = "lesson-report"
    app_module.upload_data([photo_zip(tmp_path)], 32, req(name))
    train(app_module, name, dataset="upload", epochs=2, batch_size=16)
    list(app_module.sweep("1, 2", 32, "16x4x4", 0, 120, req(name)))
    list(app_module.beta_sweep("0, 4", 2, req(name)))
    own = tmp_path / "own.png"
    Image.fromarray(make_images(1, 40, seed=9)[0]).save(own)
    app_module.reconstruct_own(list(app_module.load_own([str(own)], req(name)))[-1][0], False, req(name))
    s = session(req(name))
    assert s.in_use == "run:1"
    md, root = report_md(app_module, name, tmp_path)
    facts = json.loads((root / "report.json").read_text())
    # Section 3: validation images of the data in use, through the pair in use (not the one own image).
    val_ids = set(int(i) for i in s.split(32).val.ids)
    ids = facts["reconstructed_ids"]
    assert len(ids) == min(10, len(val_ids)) and set(ids) <= val_ids
    assert all(row["PSNR std"] > 0 for row in facts["reconstruction"])
    for heading in ("## 8. Beta trade-off", "## 9. Latent space", "## 10. Discussion"):
        assert heading in md
    for f in ("beta_tradeoff.png", "beta_sweep.png", "prior_samples.png", "interpolation.png", "psnr_epochs.png"):
        assert Image.open(root / f).size[0] > 50, f
    assert (root / "gen_label_names.txt").read_text().splitlines() == ["cat", "rocket"]
    # The discussion: which model is better by PSNR and by how much, from the report's own table.
    ae, vae = (next(r for r in facts["reconstruction"] if r["model"] == k) for k in ("AE", "VAE"))
    better, best, other = ("AE", ae, vae) if ae["PSNR mean"] > vae["PSNR mean"] else ("VAE", vae, ae)
    assert (f"**PSNR** (higher is better): the {better} reconstructs better, {num(best['PSNR mean'], 2)} dB against "
            f"{num(other['PSNR mean'], 2)} dB") in md
    d = facts["discussion"]
    assert f"on average {num(d['samples_vae_nearest_psnr'], 2)} dB PSNR from the nearest of the" in md
    # The epochs sweep and the beta sweep, from this session's runs.
    sweep = [r for r in s.runs if r.kind == "sweep"]
    assert [r["run"] for r in facts["epochs_sweep"]] == [r.number for r in sweep]
    a0, a1 = (num(r.record.ae.val_psnr, 2) for r in sweep)
    assert f"from 1 to 2 epochs the validation PSNR went from {a0} to {a1} dB for the AE" in md
    betas = facts["beta"]
    assert [b["beta"] for b in betas] == [0.0, 4.0] and "(this session's sweep): from beta 0 to 4" in md
    # Numbers as a reader wants them: no 5.4000, no 300.0 (the version and date in the head aside).
    body = md.split("\n", 3)[3]
    assert not re.findall(r"\b\d+\.\d*0\b(?![.\d])", body)
    # In the page's language.
    zh, _ = report_md(app_module, name, tmp_path / "zh", lang="zh-TW")
    assert "## 10. 討論" in zh and "**結論**" in zh
