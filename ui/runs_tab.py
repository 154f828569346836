"""The Hyperparameter runs tab: every run of the session, and the epoch sweep."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from aevae import data, workbench
from aevae.config import PRESETS
from aevae.workbench import TrainSettings

from .common import (
    COLORS,
    DEFAULT_CAP,
    DEFAULT_SIZE,
    MAX_SECONDS,
    bar,
    csv_file,
    curves,
    fail,
    need,
    numbers,
    session,
    stop_training,
    training_slot,
    watch,
)
from .picker import picker_update


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


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[workbench.TRAIN_DEFAULT]
    with gr.Tab("Hyperparameter runs") as tab:
        gr.Markdown("Every training in this session is a row. The sweep repeats one set-up at several "
                    "epoch counts (report A's Problem 3) on a subset of the data so it fits a lesson.",
                    elem_classes="lead")
        with gr.Row():
            sweep_epochs = gr.Textbox("5,10,15", label="Epochs to sweep")
            sweep_subset = gr.Slider(32, 4096, 512, step=32, label="Training images")
            sweep_latent = gr.Textbox(d.model.latent, label="Latent")
            sweep_seed = gr.Number(0, label="Seed", precision=0)
            sweep_cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1, label="Time cap per row (s)")
        with gr.Row():
            sweep_btn = gr.Button("Run sweep", variant="primary")
            sweep_stop = gr.Button("Stop", variant="stop")
            refresh_btn = gr.Button("Refresh table")
        sweep_msg = gr.Markdown()
        runs_df = gr.Dataframe(label="Runs (every training of this session)")
        runs_note = gr.Markdown()
        run_pick = gr.Dropdown([], label="Loss curves of run")
        with gr.Row():
            run_mse = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS, label="MSE per iteration")
            run_kl = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
        runs_csv = gr.File(label="Runs as CSV")
        sweep_btn.click(sweep, [sweep_epochs, sweep_subset, sweep_latent, sweep_seed, sweep_cap],
                        [sweep_msg, runs_df, run_pick, runs_csv, ctx.in_use], api_name="sweep", concurrency_id="train")
        sweep_stop.click(stop_training, None, sweep_msg, api_visibility="private", queue=False)
        refresh_btn.click(show_runs, None, [runs_df, run_pick, runs_csv, runs_note], api_name="runs")
        tab.select(show_runs, None, [runs_df, run_pick, runs_csv, runs_note], api_visibility="private")
        run_pick.change(run_curves, run_pick, [run_mse, run_kl], api_visibility="private")


