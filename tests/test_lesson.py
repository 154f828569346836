"""A lesson in one session, tried the way a student does it (issue 24): several kinds of runs in
any order, a stop, then the runs table and the report. Through the app's handlers, on tiny settings."""

import csv
import numbers
import threading
import time
import zipfile
from types import SimpleNamespace

import pytest

from aevae.runs import KINDS, RunRecord
from ui.common import session


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
    steps = [lambda: train(app_module, name), lambda: list(app_module.beta_sweep("0, 1", 1, req(name)))]
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


def test_every_kind_of_run_is_one_typed_record_with_the_same_columns(app_module):
    """Train, an epoch-sweep row, a rung and a beta sweep: each a RunRecord (numbers as numbers,
    None where a run has no such value), shown as rows with the same columns."""
    name = "lesson-kinds"
    train(app_module, name)
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
    assert records[1].data == "32 of 4045 training images" and records[1].series != records[3].series
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
