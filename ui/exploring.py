"""Handlers of the Latent space, Beta trade-off and Report tabs, and session end."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from aevae import classroom, figures, report, sampling, workbench
from aevae.config import check_finite
from aevae.workbench import NoModels

from .common import (
    DEFAULT_SIZE,
    MAX_SECONDS,
    background,
    bar,
    fail,
    need,
    numbers,
    png,
    session,
    store,
    training_slot,
)


def prior_samples(pair_name: str, n: int, seed: int, request: gr.Request):
    """The same N(0, I) draws through the VAE's and the AE's decoder."""
    s = session(request)
    need(1, 32, n, "samples")
    try:
        pair = workbench.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    vae, ae = workbench.prior_pair_for(s, pair, int(n), int(seed))
    grid = figures.image_grid([vae, ae], ["VAE", "AE"], scale=figures.auto_scale(pair.image_size, 80))
    return png(s.new_folder(), grid, "prior-samples.png"), (f"{pair.source}: {n} draws z ~ N(0, I) of shape {'x'.join(map(str, pair.vae.latent_shape))}, "
                  "the same draws through both decoders. The VAE was trained to decode such draws; the AE "
                  "never was, so its codes live elsewhere and its decoder makes little of them.")


def interpolate(pair_name: str, id_a: int, id_b: int, steps: int, request: gr.Request):
    s = session(request)
    need(3, 16, steps, "steps")
    try:
        pair = workbench.pair_named(s, pair_name)
        two = s.split(pair.image_size).all.select_ids([int(id_a), int(id_b)])
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows = workbench.interpolations(pair, two.images[0], two.images[1], int(steps))
    grid = figures.image_grid(list(rows.values()), list(rows), scale=figures.auto_scale(pair.image_size, 72))
    return png(s.new_folder(), grid, "interpolation.png"), f"From id {id_a} ({two.names[0]}) to id {id_b} ({two.names[1]}), {steps} steps, ends included."


def code_map(pair_name: str, kind: str, request: gr.Request):
    """PCA of the validation codes, coloured by label, and decoded thumbnails across the plane."""
    s = session(request)
    try:
        pair = workbench.pair_named(s, pair_name)
        split = s.split(pair.image_size)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    model = pair.vae if kind == "VAE" else pair.ae
    cmap = sampling.code_map(model, split.val)
    s.code_map = (pair_name, kind, cmap)
    points = pd.DataFrame({"PC 1": cmap.coords[:, 0], "PC 2": cmap.coords[:, 1],
                           "label": [split.val.label_names[i] for i in split.val.labels],
                           "id": split.val.ids, "name": split.val.names})
    thumbs = sampling.decode_grid(model, cmap, 7)
    grid = figures.image_grid(list(thumbs), scale=1, gap=1)
    sx, sy = cmap.coords.std(0)
    note = (f"{kind} codes of {len(points)} validation images. The two axes hold "
            f"{cmap.explained[0]:.1%} and {cmap.explained[1]:.1%} of the codes' variance. The grid decodes "
            f"points from -2 to +2 standard deviations ({sx:.2f}, {sy:.2f}) along each axis.")
    return points, png(s.new_folder(), grid, "code-map.png"), note, gr.update(minimum=-3 * sx, maximum=3 * sx, value=0), gr.update(
        minimum=-3 * sy, maximum=3 * sy, value=0)


def decode_point(x: float, y: float, request: gr.Request):
    s = session(request)
    cm = s.code_map
    if cm is None:
        raise gr.Error("Map the validation set first.")
    pair_name, kind, cmap = cm
    try:
        x, y = check_finite(x, "PC 1"), check_finite(y, "PC 2")
        pair = workbench.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    model = pair.vae if kind == "VAE" else pair.ae
    img = sampling.to_uint8(model.decode(cmap.code_at(float(x), float(y))))
    return png(s.new_folder(), figures.upscale(img[0], figures.auto_scale(pair.image_size, 160)), "point.png")


# --- Beta trade-off ---------------------------------------------------------------------
def show_betas(s: workbench.Session, rows: list[dict], source: str):
    table = pd.DataFrame([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                           if k not in ("samples", "recon")} for r in rows])
    chart = pd.DataFrame({"KL (nats/image)": [r["KL (nats/image)"] for r in rows],
                          "MSE per pixel": [r["MSE per pixel"] for r in rows],
                          "beta": [f"{r['beta']:g}" for r in rows]})
    size = rows[0]["samples"].shape[1]
    grid_rows, labels = [], []
    for r in rows:
        grid_rows += [r["recon"], r["samples"]]
        labels += [f"beta {r['beta']:g} recon", f"beta {r['beta']:g} samples"]
    grid = figures.image_grid(grid_rows, labels, scale=figures.auto_scale(size, 64))
    note = (f"{source}. Low beta: sharp reconstructions, a high KL (rate) and prior samples that are not "
            "emoji. High beta: the code carries little (low KL), reconstructions blur, and samples become "
            "smooth average emoji. Report B's VAE sits at the blurry end of this trade-off.")
    return table, chart, png(s.new_folder(), grid, "beta-sweep.png"), note


def shipped_beta_sweep(request: gr.Request):
    s = session(request)
    rows = workbench.shipped_beta_results(s)
    if not rows:
        raise gr.Error("No beta sweep is shipped; train one on your data below.")
    return show_betas(s, rows, "Shipped VAEs (latent 64, 10 epochs each on OpenMoji)")


def beta_sweep(betas_text: str, epochs: int, request: gr.Request):
    """A VAE per beta on this session's data (each a run of the session), shown as the trade-off."""
    s = session(request)
    need(1, 30, epochs, "epochs per beta")
    betas = numbers(betas_text, float, 0, 100, 8, "betas", "0, 0.1, 1, 4")
    if len(betas) < 2:
        raise gr.Error("give at least 2 betas to compare", print_exception=False)
    try:
        split = s.split(DEFAULT_SIZE)
    except ValueError as e:
        raise fail(e) from None
    live = {"text": "starting", "frac": 0.0, "name": ""}

    def progress(name, p):
        i = [f"{b:g}" for b in betas].index(name)
        live.update(queued="", text=workbench.progress_text(p), frac=(i + p.fraction) / len(betas), name=name)

    def show():
        if live.get("queued"):
            return gr.update(), gr.update(), gr.update(), f"**Queued:** {live['queued']}. Stop leaves the queue."
        return (gr.update(), gr.update(), gr.update(),
                f"Training beta {live['name']}: {bar(live['frac'])} — {live['text']}")

    def on_wait(place, secs):
        live["queued"] = f"waiting for a free training slot: place {place} in the queue, about {secs:.0f} s"

    def work():
        try:
            return workbench.train_betas(s, split, betas, int(epochs), on_progress=progress, cap=MAX_SECONDS,
                                         on_wait=on_wait)
        except classroom.Cancelled:
            return []

    with training_slot(s):
        models = yield from background(s, work, show)
    if not models:
        raise gr.Error("Stopped before the first beta had trained a step.", print_exception=False)
    done = "" if len(models) == len(betas) else f" Stopped after {len(models)} of {len(betas)} betas."
    yield show_betas(s, workbench.beta_results(models, split),
                     f"Trained here: {epochs} epochs per beta on {split.all.source}.{done} Each beta is a run "
                     "in the Hyperparameter runs tab")


# --- Hyperparameter runs --------------------------------------------------------------


def end_session(request: gr.Request):
    """A closed tab stops its training and frees its models and files."""
    store().drop(request.session_hash)


def download_report(request: gr.Request):
    """A zip answering the homework questions from what this session did."""
    s = session(request)
    try:
        path = report.build(s, s.new_folder() / "aevae-report.zip")
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return str(path), "Report ready: Markdown and HTML, figures, tables, checkpoints and the .npy exports."


# --- layout ---------------------------------------------------------------------------
