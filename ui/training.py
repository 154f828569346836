"""Handlers of the Train, Hyperparameter runs and Models tabs."""

from __future__ import annotations

import json
import threading

import gradio as gr
import numpy as np
import pandas as pd

from aevae import checkpoints, data, workbench
from aevae.config import PRESETS
from aevae.models import summary_rows
from aevae.workbench import NoModels, TrainSettings

from .common import (
    DEFAULT_SIZE,
    MAX_EPOCHS,
    MAX_SECONDS,
    csv_file,
    curves,
    fail,
    need,
    numbers,
    session,
    training_slot,
)


def train_models(preset, image_size, latent, epochs, seconds, batch_size, lr, weight_decay, beta, seed,
                 dataset, upload, request: gr.Request):
    """Train an AE and a VAE side by side; yields progress, curves and finally the checkpoints."""
    s = session(request)
    need(1, MAX_EPOCHS, epochs, "epochs")
    need(1, MAX_SECONDS, seconds, "seconds")
    need(1, 512, batch_size, "batch size")
    need(0, 2**31 - 1, seed, "seed")
    try:
        settings = TrainSettings(preset, int(image_size), str(latent), int(epochs), float(seconds),
                                 int(batch_size), float(lr), float(weight_decay), float(beta), int(seed))
        settings.model_config("ae"), settings.train_config()
        if dataset == "upload":
            if not upload:
                raise ValueError("choose 'upload' only after uploading a .zip, .npy or .npz file "
                                 "(or a .npy of images with a *label*.npy)")
            split = s.set_upload(upload, settings.image_size)
        else:
            s.clear_upload()
            split = s.split(settings.image_size)
    except ValueError as e:
        raise fail(e) from None
    if not s.lock.acquire(blocking=False):
        raise gr.Error("A training is already running in this browser tab; stop it first.")
    t = None
    try:
        live: dict = {"ae": None, "vae": None, "text": "starting", "frac": 0.0}
        result: dict = {}

        def progress(kind, p):
            live[kind] = p.history
            live["text"] = workbench.progress_text(p)
            live["frac"] = p.fraction

        def work():
            try:
                result["pair"] = workbench.train_pair(s, settings, split, progress)
            except MemoryError:
                result["error"] = RuntimeError("out of memory: try a smaller batch, latent or image size; "
                                               "your previous models are unchanged")
            except Exception as e:  # reported to the user below; the previous models stay
                result["error"] = e

        skipped = f" ({len(split.skipped)} files skipped)" if split.skipped else ""
        head = f"**Data:** {split.all.source}: {len(split.train)} train / {len(split.val)} validation{skipped}.  "
        t = threading.Thread(target=work, daemon=True, name=f"aevae-train-{id(s)}")
        t.start()
        while t.is_alive():
            t.join(0.5)
            bar = "█" * int(live["frac"] * 30) + "░" * (30 - int(live["frac"] * 30))
            yield (head + f"`{bar}` {live['frac']:.0%} — {live['text']}", *curves(
                {k: live[k] for k in ("ae", "vae")}), None)
        if "error" in result:
            raise fail(result["error"])
        pair = result["pair"]
        files = []
        for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
            p = checkpoints.save(model, s.tmpdir / f"trained-{kind}", train=pair.train,
                                 history=pair.history[kind], dataset=pair.dataset, name=f"{pair.source} {kind}")
            files += [str(p), str(p.with_suffix(".safetensors"))]
        row = s.runs[-1]
        stopped = " (stopped early: models kept as trained so far)" if any(
            h["stopped_by"] == "stop request" for h in pair.history.values()) else ""
        yield (head + f"**Done{stopped}.** {pair.source}: AE val PSNR {row['AE val PSNR']:.2f} dB, "
               f"VAE val PSNR {row['VAE val PSNR']:.2f} dB in {row['seconds']:.0f} s. "
               "The other tabs now use these models.", *curves(pair.history), files)
    finally:
        # Reached also when the browser goes away mid-training (the generator is closed):
        # the worker must not go on burning CPU for nobody.
        if t is not None and t.is_alive():
            s.stop.set()
            t.join(10)
        s.lock.release()


def stop_training(request: gr.Request):
    session(request).stop.set()
    return "Stopping at the end of the current batch…"


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


def choose_models(which: str, request: gr.Request):
    s = session(request)
    s.use_shipped = which == "shipped"
    try:
        p = s.pair()
    except NoModels as e:
        return str(e)
    return f"The other tabs now use **{p.source}** ({p.ae.config.latent} latent, {p.image_size}px)."


def apply_preset(name: str):
    p = PRESETS[name]
    return (p.model.image_size, p.model.latent, p.train.batch_size, p.train.lr, p.train.weight_decay,
            p.train.beta, p.note)


# --- Reconstructions ------------------------------------------------------------------


def show_runs(request: gr.Request):
    s = session(request)
    choices = [str(r["run"]) for r in s.runs]
    rows = s.run_rows()
    return (pd.DataFrame(rows), gr.update(choices=choices, value=choices[-1] if choices else None),
            csv_file(rows, s.tmpdir, "runs.csv") if rows else None)


def run_curves(run: str, request: gr.Request):
    s = session(request)
    for r in s.runs:
        if str(r["run"]) == str(run):
            return curves(r["histories"])[:2]
    return curves({})[:2]


def sweep(epochs_text: str, subset: int, latent: str, seed: int, request: gr.Request):
    """Report A's Problem 3: the same set-up at several epoch counts, on a subset to fit the class."""
    s = session(request)
    need(32, 4096, subset, "training images")
    epochs = numbers(epochs_text, int, 1, 50, 5, "epoch counts", "5, 10, 15")
    try:
        full = s.split(DEFAULT_SIZE)
    except ValueError as e:
        raise fail(e) from None
    with training_slot(s):
        small = data.Split(full.all, full.train.subset(np.arange(min(int(subset), len(full.train)))), full.val,
                           full.spec, full.val_fraction, full.seed)
        for e in epochs:
            settings = TrainSettings(latent=str(latent), epochs=e, seconds=MAX_SECONDS, seed=int(seed))
            try:
                workbench.train_pair(s, settings, small)
            except ValueError as err:
                raise fail(err) from None
            s.runs[-1]["data"] = f"{len(small.train)} of {len(full.train)} training images"
            yield show_runs(request)


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
