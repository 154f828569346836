"""Handlers of the Train, Hyperparameter runs and Models tabs."""

from __future__ import annotations

import json
import threading
import time

import gradio as gr
import numpy as np
import pandas as pd

from aevae import checkpoints, data, figures, workbench
from aevae.config import PRESETS, check_finite, check_seed
from aevae.models import summary_rows
from aevae.workbench import NoModels, TrainSettings

from .common import (
    DEFAULT_SIZE,
    MAX_EPOCHS,
    MAX_SECONDS,
    bar,
    csv_file,
    curves,
    fail,
    need,
    numbers,
    png,
    replay,
    session,
    training_slot,
    watch,
)


def _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed) -> TrainSettings:
    need(1, MAX_EPOCHS, epochs, "epochs")
    need(1, MAX_SECONDS, cap, "time cap (s)")
    need(1, 512, batch_size, "batch size")
    try:
        seed = check_seed(seed)
        for value, name in ((lr, "learning rate"), (weight_decay, "weight decay"), (beta, "beta"),
                            (image_size, "image size")):
            check_finite(value, name)
        settings = TrainSettings(preset, int(image_size), str(latent), int(epochs), float(cap),
                                 int(batch_size), float(lr), float(weight_decay), float(beta), seed)
        settings.model_config("ae"), settings.train_config()
    except (TypeError, ValueError) as e:
        raise fail(e) from None
    return settings


def plan_training(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed, dataset,
                  request: gr.Request):
    """The plan shown under the settings: epochs, steps, estimated time; or what is wrong."""
    s = session(request)
    try:
        settings = _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed)
        split = s.split(settings.image_size) if dataset == "upload" and s.upload else \
            workbench.openmoji_split(settings.image_size)
        return "**Plan:** " + workbench.plan_text(settings, split)
    except gr.Error as e:
        return f"**Cannot train with these settings:** {e.message}"
    except ValueError as e:
        return f"**Cannot train with these settings:** {e}"


def _strip(snap: workbench.Snapshot | None):
    if snap is None:
        return None
    rows = [snap.images, snap.before["ae"], snap.now["ae"], snap.before["vae"], snap.now["vae"]]
    labels = ["ground truth", "AE before", f"AE step {snap.step}", "VAE before", f"VAE step {snap.step}"]
    return figures.image_grid(rows, labels, scale=figures.auto_scale(snap.images.shape[1], 48))


PLOT_EVERY_S = 2.0  # how often a watcher gets new curves and a new before/now strip


def live_curves(live) -> tuple:
    """The curves of a live run, computed at most once per PLOT_EVERY_S for all who watch it."""
    with _curves_lock:
        cached = getattr(live, "_curves", None)
        if cached is None or time.monotonic() - cached[0] >= PLOT_EVERY_S / 2:
            cached = live._curves = (time.monotonic(), curves(dict(live.histories)))
        return cached[1]


_curves_lock = threading.Lock()


def _strip_file(s: workbench.Session, snap) -> str | None:
    return None if snap is None else png(s.new_folder(), _strip(snap), "before-now.png")


def train_models(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed,
                 dataset, upload, use_when_done, request: gr.Request):
    """Train an AE and a VAE side by side; yields progress, curves, the live strip and finally checkpoints."""
    s = session(request)
    settings = _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed)
    if not s.lock.acquire(blocking=False):
        raise gr.Error("A training is already running in this browser tab; stop it first.")
    try:
        try:
            if dataset == "upload":
                if not upload:
                    raise ValueError("choose 'upload' only after uploading a .zip, .npy or .npz file "
                                     "(or a .npy of images with a *label*.npy)")
                split = s.set_upload(upload, settings.image_size)
            else:
                s.clear_upload()
                split = s.split(settings.image_size)
            plan = workbench.plan_text(settings, split)
        except ValueError as e:
            raise fail(e) from None
        skipped = f" ({len(split.skipped)} files skipped)" if split.skipped else ""
        head = (f"**Data:** {split.all.source}: {len(split.train):,} train / {len(split.val):,} validation"
                f"{skipped}. **Run:** {plan}  \n")
        s.stop.clear()
        job = workbench.PairJob(s, settings, split, "Train", bool(use_when_done))
        shown = {"snap": None, "step": -1}

        def strip_update(snap):
            if snap is None or (snap is shown["snap"] and snap.step == shown["step"]):
                return gr.update()
            shown.update(snap=snap, step=snap.step)
            return _strip_file(s, snap)

        sent = {"plots": -1.0}

        def show():
            live = job.live
            if live.queued:
                return (head + f"**Queued:** {live.queued}. Stop leaves the queue.", *[gr.update()] * 6)
            joined = " (joined a run already in progress on this server: same settings, seed and data)" \
                if job.how == "running" else ""
            # The text every half second; the plots and the strip every few seconds, made once per
            # run for all its watchers: ten students watching one training must not slow it down.
            plots, strip = [gr.update()] * 3, gr.update()
            if time.monotonic() - sent["plots"] >= PLOT_EVERY_S:
                sent["plots"] = time.monotonic()
                plots, strip = live_curves(live), strip_update(live.snapshot)
            return (head + f"{bar(live.fraction)} — {live.text}{joined}", *plots, None, strip, gr.update())

        if job.how == "finished":  # replay the curves quickly, so the student still sees them grow
            for frame in replay(job.shared.result[1]):
                yield (head + "Same settings, seed and data as a run already trained on this server: "
                       "handing over its identical result…", *curves(frame), None, strip_update(job.live.snapshot),
                       gr.update())
                time.sleep(0.15)
        run = yield from watch(s, job, show)
        pair, row = run.pair, run.row
        files = []
        folder = s.tmpdir / f"run-{run.number}"
        folder.mkdir(exist_ok=True)
        for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
            p = checkpoints.save(model, folder / f"run-{run.number}-{kind}", train=pair.train, history=pair.history[kind],
                                 dataset=pair.dataset, name=f"{pair.source} {kind}")
            files += [str(p), str(p.with_suffix(".safetensors"))]
        ended = {"finished": "Done", "stopped by you": "Stopped by you (both models kept as trained so far)",
                 "CUT SHORT by the time cap": f"CUT SHORT by the {settings.seconds:.0f} s time cap after "
                 f"{row['epochs done']} of {settings.epochs} epochs: not the planned run, so not reproducible; "
                 "lower the epochs or raise the cap"}[row["ended"]]
        used = ("The other tabs now use it (change this with **Models in use** at the top)." if use_when_done
                else "The pair in use did not change: pick this run in **Models in use** at the top to use it.")
        yield (head + f"**{ended}.** {run.title}: AE val PSNR {row['AE val PSNR']:.2f} dB, VAE val PSNR "
               f"{row['VAE val PSNR']:.2f} dB; {row['steps']:,} steps in {row['seconds']:.1f} s; "
               f"{row['trained']} (same settings, seed and data give the same models). {used}",
               *curves(pair.history), files, _strip_file(s, job.live.snapshot), picker_update(s))
    finally:
        s.lock.release()


def stop_training(request: gr.Request):
    session(request).stop.set()
    return "Stopping at the end of the current batch…"


def picker_update(s: workbench.Session):
    """The 'Models in use' dropdown with this session's choices and its current value."""
    return gr.update(choices=s.choices(), value=s.in_use)


def use_models(value: str, request: gr.Request):
    """Make the picked pair the one every tab uses."""
    s = session(request)
    try:
        p = s.use(value)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return f"Every tab now uses **{p.source}** (latent {p.latent}, {p.image_size} px)."


def load_picker(request: gr.Request):
    return picker_update(session(request, page=True))


SHARE_KEYS = list(workbench.QUERY_KEYS)
# Builds the link in the browser, which knows the page's own address.
SHARE_JS = ("(...v) => { const keys = " + json.dumps(SHARE_KEYS) + "; const q = new URLSearchParams();"
            " keys.forEach((k, i) => q.set(k, v[i]));"
            " return window.location.origin + window.location.pathname + '?' + q.toString(); }")


def settings_from_link(request: gr.Request):
    """Fill the Train tab from the page's query parameters (a teacher's shared link)."""
    params = dict(getattr(request, "query_params", {}) or {})
    values, problems = workbench.settings_from_query(params)
    controls = [gr.update(value=values[k]) if k in values else gr.update() for k in SHARE_KEYS]
    note = ""
    if values:
        note = "Settings from the link: " + ", ".join(f"{k}={v}" for k, v in values.items()) + "."
    if problems:
        note += " Not applied: " + "; ".join(problems) + "."
    return *controls, note


def apply_preset(name: str):
    p = PRESETS[name]
    return (p.model.image_size, p.model.latent, p.train.batch_size, p.train.lr, p.train.weight_decay,
            p.train.beta, p.note)


# --- Reconstructions ------------------------------------------------------------------


def show_runs(request: gr.Request):
    """Every run of this session (Train, sweeps, rungs, beta sweeps) as a table, with its CSV."""
    s = session(request)
    rows = s.run_rows()
    choices = [(r.title, r.number) for r in reversed(s.runs.items)]
    note = s.runs.note()
    return (pd.DataFrame(rows), gr.update(choices=choices, value=choices[0][1] if choices else None),
            csv_file(rows, s.new_folder(), "runs.csv") if rows else None, note)


def run_curves(run, request: gr.Request):
    s = session(request)
    r = s.runs.get(int(run)) if run not in (None, "") else None
    return curves(r.histories if r else {})[:2]


def sweep(epochs_text: str, subset: int, latent: str, seed: int, cap: float, request: gr.Request):
    """Report A's Problem 3: the same set-up at several epoch counts, on a subset to fit the class.

    Each row is a run of the session; none of them becomes the pair in use unless the user picks it.
    """
    s = session(request)
    need(32, 4096, subset, "training images")
    need(1, MAX_SECONDS, cap, "time cap (s)")
    need(0, 2**31 - 1, seed, "seed")
    epochs = numbers(epochs_text, int, 1, 50, 5, "epoch counts", "5, 10, 15")
    try:
        full = s.split(DEFAULT_SIZE)
        small = data.Split(full.all, full.train.subset(np.arange(min(int(subset), len(full.train)))), full.val,
                           full.spec, full.val_fraction, full.seed)
        plans = [TrainSettings(latent=str(latent), epochs=e, seconds=float(cap), seed=int(seed)) for e in epochs]
        for p in plans:
            p.model_config("ae"), p.train_config()
    except ValueError as e:
        raise fail(e) from None
    with training_slot(s):
        s.stop.clear()
        total, state = sum(epochs), {"i": 0, "job": None}

        def show():
            i, live = state["i"], state["job"].live
            frac = (sum(epochs[:i]) + live.fraction * epochs[i]) / total
            text = live.queued or live.text
            return (f"Sweep row {i + 1} of {len(plans)} ({epochs[i]} epochs): {bar(frac)} — {text}",
                    gr.update(), gr.update(), gr.update(), gr.update())

        for i, settings in enumerate(plans):
            state.update(i=i, job=workbench.PairJob(s, settings, small, "sweep"))
            run = yield from watch(s, state["job"], show)
            run.row["data"] = f"{len(small.train)} of {len(full.train)} training images"
            stopped = run.row["ended"] != "finished"
            msg = (f"Sweep: {i + 1} of {len(plans)} rows done. The pair in use did not change "
                   f"(pick a sweep run in **Models in use** to look at it).")
            if stopped:
                msg = f"Sweep ended at row {i + 1} of {len(plans)} ({run.row['ended']}); rows so far are kept."
            yield (msg, *show_runs(request)[:3], picker_update(s))
            if stopped:
                return


# --- Models ---------------------------------------------------------------------------
def describe_models(request: gr.Request):
    s = session(request)
    try:
        pair = s.pair()
    except NoModels as e:
        return str(e), None, None, "{}", *curves({})
    head = (f"**{pair.source}** — AE {pair.ae.n_params:,} parameters, VAE {pair.vae.n_params:,}; latent "
            f"{'x'.join(map(str, pair.ae.latent_shape))} ({pair.ae.latent_numel:,} values) for a "
            f"3x{pair.image_size}x{pair.image_size} image ({3 * pair.image_size ** 2:,} values).")
    info = {"training": pair.train, "data": pair.dataset,
            "stopped by": {k: (h or {}).get("stopped_by") for k, h in pair.history.items()},
            "seconds": {k: round((h or {}).get("seconds", 0), 1) for k, h in pair.history.items()}}
    mse, kl, val = curves(pair.history)
    return (head, pd.DataFrame(summary_rows(pair.ae)), pd.DataFrame(summary_rows(pair.vae)),
            json.dumps(info, indent=1, default=str), mse, kl)
