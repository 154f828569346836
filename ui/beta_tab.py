"""The Beta trade-off tab: rate against distortion over beta."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from aevae import classroom, figures, workbench

from .common import (
    DEFAULT_SIZE,
    MAX_SECONDS,
    background,
    bar,
    fail,
    need,
    numbers,
    on_open,
    png,
    session,
    stop_training,
    training_slot,
)


def show_betas(s: workbench.Session, rows: list[dict], source: str, emoji: bool):
    """The table, the chart, the grid and a note; `emoji`: the images are OpenMoji's."""
    digits = {"KL (nats/image)": 1, "MSE per pixel": 4, "val PSNR": 2}
    table = pd.DataFrame([{k: (round(v, digits.get(k, 3)) if isinstance(v, float) else v) for k, v in r.items()
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
    kind = "emoji" if emoji else "images like the training data"
    average = "smooth average emoji" if emoji else "smooth averages of the training images"
    note = (f"{source}. Low beta: sharp reconstructions, a high KL (rate) and prior samples that are not "
            f"{kind}. High beta: the code carries little (low KL), reconstructions blur, and samples become "
            f"{average}. Report B's VAE sits at the blurry end of this trade-off.")
    return table, chart, png(s.new_folder(), grid, "beta-sweep.png"), note


def shipped_beta_sweep(request: gr.Request):
    s = session(request)
    rows = workbench.shipped_beta_results(s)
    if not rows:
        raise gr.Error("No beta sweep is shipped; train one on your data below.")
    source = "Shipped VAEs (latent 64, 10 epochs each on OpenMoji), measured on OpenMoji's validation images"
    if s.uses_upload:
        source += (f" (not on the data in use, {s.data_source()}: these VAEs never saw it; train the sweep "
                   "on it with the button beside)")
    return show_betas(s, rows, source, emoji=True)


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
                     "in the Hyperparameter runs tab", emoji=split.spec == workbench.OPENMOJI)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab("Beta trade-off") as tab:
        gr.Markdown("Rate against distortion: VAEs that differ only in beta, the weight of the KL term. "
                    "Each point is one beta; the grid shows its reconstructions and its prior samples.",
                    elem_classes="lead")
        with gr.Row():
            beta_shipped_btn = gr.Button("Show the shipped sweep", variant="primary")
            betas_text = gr.Textbox("0, 0.1, 0.5, 1, 2, 4", label="Betas to train on your data")
            beta_epochs = gr.Slider(1, 30, 3, step=1, label="Epochs per beta")
            beta_train_btn = gr.Button("Train the sweep")
            beta_stop = gr.Button("Stop", variant="stop")
        beta_note = gr.Markdown()
        with gr.Row():
            beta_table = gr.Dataframe(label="Per beta (validation split)")
            beta_chart = gr.ScatterPlot(x="KL (nats/image)", y="MSE per pixel", color="beta",
                                        label="Distortion vs rate")
        beta_grid = gr.Image(label="reconstructions and prior samples per beta", format="png",
                             elem_classes="pixelated")
        beta_out = [beta_table, beta_chart, beta_grid, beta_note]
        beta_shipped_btn.click(shipped_beta_sweep, None, beta_out, api_name="beta_shipped")
        tab.select(on_open("beta", shipped_beta_sweep, 4), None, beta_out, api_visibility="private")
        beta_train_btn.click(beta_sweep, [betas_text, beta_epochs], beta_out, api_name="beta_sweep",
                             concurrency_id="train")
        beta_stop.click(stop_training, None, beta_note, api_visibility="private", queue=False)


