"""The Hyperparameter runs tab: every run of the session, and the epoch sweep."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from aevae import data, datasets, session_state, train_settings, training_jobs
from aevae.config import PRESETS
from aevae.i18n import t, tm
from aevae.runs import MESSAGE_CELLS
from aevae.train_settings import TrainSettings

from .lang import L, on_switch, plot, rerender, shown, table
from .limits import DEFAULT_CAP, DEFAULT_SIZE, MAX_SECONDS
from .messages import fail, need, numbers, tmd
from .outputs import COLORS, csv_file, curves
from .picker import picker_update
from .sessions import lang_of, session, stop_training
from .work import bar, training_slot, watch

# Digits shown per column: dB to 2 decimals, SSIM to 3, MSE to 5 (the CSV keeps every digit).
DIGITS = {"AE val PSNR": 2, "VAE val PSNR": 2, "AE val SSIM": 3, "VAE val SSIM": 3,
          "AE final loss (MSE)": 5, "VAE final loss (MSE)": 5}


def run_rows(s: session_state.Session) -> list[dict]:
    """Every run of the session as a row (RunRecord.row: the same columns for every kind of run)."""
    return [r.record.row(r.number) for r in s.runs]

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "sweep"


def show_runs(request: gr.Request):
    """Every run of this session (Train, sweeps, rungs, beta sweeps) as a table, with its CSV."""
    s, lang = session(request), lang_of(request)
    rows = run_rows(s)
    choices = [(tm(r.title, lang), r.number) for r in reversed(s.runs.items)]
    note = tmd(s.runs.note(), lang) if rows else t("runs.none", lang)
    # an empty frame would show Gradio's placeholder headers "1 2 3": name the first columns instead
    shown = first_columns(pd.DataFrame(rows).round(DIGITS)) if rows else pd.DataFrame(columns=["run", "made by"])
    shown = shown.astype(object).where(shown.notna(), None)  # a value a run does not have: an empty cell, not NaN
    return (table(shown, lang, cells=MESSAGE_CELLS), gr.update(choices=choices, value=choices[0][1] if choices else None),
            csv_file(rows, s.new_folder(), "runs.csv") if rows else None, note)


# What a sweep answers comes first: at 1280 px the validation PSNRs were off screen, after the settings.
FIRST_COLUMNS = ["run", "made by", "epochs", "epochs done", "AE val PSNR", "VAE val PSNR"]


def first_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in FIRST_COLUMNS if c in df.columns] + [c for c in df.columns if c not in FIRST_COLUMNS]]


def sweep_chart(request: gr.Request):
    """Report A's Problem 3 as a chart: each sweep run's validation PSNR against its epochs trained."""
    s, lang = session(request), lang_of(request)
    points = [{"epochs done": int(r["epochs done"]), "val PSNR (dB)": float(r[f"{kind} val PSNR"]), "model": kind}
              for r in run_rows(s) if r.get("made by") == "sweep" for kind in ("AE", "VAE")
              if r.get(f"{kind} val PSNR") is not None]
    if not points:
        return None
    return plot(pd.DataFrame(points), lang, "epochs done", "val PSNR (dB)", "model")


def runs_again(run, request: gr.Request):
    """The table in a newly chosen language, the run picked before still picked."""
    table_, pick, csv, note = show_runs(request)
    if run in [v for _, v in pick["choices"]]:
        pick["value"] = run
    return table_, pick, csv, note


def runs_switched(run, request: gr.Request):
    """The table and the picked run's curves in a newly chosen language (the pick keeps its value,
    so no change event redraws the curves)."""
    return (*runs_again(run, request), *run_curves(run, request))


def run_curves(run, request: gr.Request):
    s, lang = session(request), lang_of(request)
    r = s.runs.get(int(run)) if run not in (None, "") else None
    mse, kl, _ = curves(r.histories if r else {})
    models = list(dict.fromkeys(mse["model"])) if mse is not None else []
    return (plot(mse, lang, "iteration", "MSE per pixel", "model"), plot(kl, lang, "iteration", "KL (nats/image)", "model"),
            models)


def redraw_curves(models):
    """Both plots' legends set to this run's models, which redraws them (see latent_space_tab.redraw_map):
    a plot keeps the colour scale of its first drawing, so after a beta run (VAE only) every later
    run's AE curve had no colour and was not drawn."""
    return (gr.update(colors_in_legend=models),) * 2 if models else (gr.update(), gr.update())


def _sweep_plans(epochs_text, subset, latent, seed, cap, lang) -> tuple[list[int], list[TrainSettings]]:
    need(32, 4096, subset, "what.training_images", lang)
    need(1, MAX_SECONDS, cap, "what.time_cap", lang)
    need(0, 2**31 - 1, seed, "what.seed", lang)
    epochs = numbers(epochs_text, int, 1, 50, 5, "what.epoch_counts", "5, 10, 15", lang)
    try:
        plans = [TrainSettings(latent=str(latent), epochs=e, seconds=float(cap), seed=int(seed)) for e in epochs]
        for p in plans:
            p.model_config("ae"), p.train_config()
    except ValueError as e:
        raise fail(e, lang) from None
    return epochs, plans


def plan_sweep(epochs_text: str, subset: int, latent: str, seed: int, cap: float, request: gr.Request) -> str:
    """The sweep's plan before it starts: its runs, steps and the estimated time (counts only)."""
    s, lang = session(request), lang_of(request)
    try:
        epochs, plans = _sweep_plans(epochs_text, subset, latent, seed, cap, lang)
        split = s.any_split() if s.uses_upload else datasets.openmoji_counts()
        if split is None:
            return t("train.plan_after_load", lang)
    except (gr.Error, ValueError) as e:
        return t("runs.cannot", lang, error=e.message if isinstance(e, gr.Error) else tm(str(e), lang))
    n = min(int(subset), len(split.train))
    steps, seconds = train_settings.sweep_plan(plans, n, len(split.val))
    return t("runs.plan", lang, n=len(plans), epochs=", ".join(map(str, epochs)), images=f"{n:,}",
             steps=f"{steps:,}", seconds=f"{seconds:.0f}")


def sweep(epochs_text: str, subset: int, latent: str, seed: int, cap: float, request: gr.Request):
    """Report A's Problem 3: the same set-up at several epoch counts, on a subset to fit the class.

    Each row is a run of the session; none of them becomes the pair in use unless the user picks it.
    """
    s, lang = session(request), lang_of(request)
    epochs, plans = _sweep_plans(epochs_text, subset, latent, seed, cap, lang)
    try:
        full = s.split(DEFAULT_SIZE)
        small = data.Split(full.all, full.train.subset(np.arange(min(int(subset), len(full.train)))), full.val,
                           full.spec, full.val_fraction, full.seed)
    except ValueError as e:
        raise fail(e, lang) from None
    with training_slot(s, lang):
        s.stop.clear()
        total, state = sum(epochs), {"i": 0, "job": None}
        series, what = s.new_series(), f"{len(small.train)} of {len(full.train)} training images"

        def show():
            i, live = state["i"], state["job"].live
            frac = (sum(epochs[:i]) + live.fraction * epochs[i]) / total
            text = live.queued or live.text
            return (t("runs.row", lang, i=i + 1, n=len(plans), epochs=epochs[i]) + f" {bar(frac)} — {tmd(text, lang)}",
                    gr.update(), gr.update(), gr.update(), gr.update())

        for i, settings in enumerate(plans):
            state.update(i=i, job=training_jobs.PairJob(s, settings, small, "sweep", data_text=what, series=series))
            run = yield from watch(s, state["job"], show, lang)
            stopped = not run.record.finished

            def said(lg, i=i, ended=run.record.ended, stopped=stopped):  # now, and again in a language chosen later
                if stopped:
                    return t("runs.ended", lg, i=i + 1, n=len(plans), ended=tmd(ended, lg))
                return t("runs.rows_done", lg, i=i + 1, n=len(plans))

            msg = shown(s, VIEW, said, lang)
            yield (msg, *show_runs(request)[:3], picker_update(s, lang))
            if stopped:
                return


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[train_settings.TRAIN_DEFAULT]
    with gr.Tab(L("tab.runs")) as tab:
        gr.Markdown(L("runs.lead"), elem_classes="lead")
        with gr.Row():
            sweep_epochs = gr.Textbox("5,10,15", label=L("runs.epochs"))
            sweep_subset = gr.Slider(32, 4096, 512, step=32, label=L("runs.subset"))
            sweep_latent = gr.Textbox(d.model.latent, label=L("runs.latent"))
            sweep_seed = gr.Number(0, label=L("common.seed"), precision=0)
            sweep_cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1, label=L("runs.cap"))
        with gr.Row():
            sweep_btn = gr.Button(L("runs.btn"), variant="primary")
            sweep_stop = gr.Button(L("common.stop"), variant="stop")
            refresh_btn = gr.Button(L("runs.refresh"))
        sweep_plan = gr.Markdown()
        sweep_msg = gr.Markdown()
        runs_df = gr.Dataframe(label=L("runs.table"))
        runs_note = gr.Markdown()
        run_pick = gr.Dropdown([], label=L("runs.pick"))
        with gr.Row():
            run_mse = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS,
                                  label=L("runs.mse"))
            run_kl = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS,
                                 label=L("runs.kl"))
        sweep_plot = gr.LinePlot(x="epochs done", x_axis_format="d", y="val PSNR (dB)", color="model", color_map=COLORS,
                                 label=L("runs.sweep_chart"))
        runs_csv = gr.File(label=L("runs.csv"))
        sweep_btn.click(sweep, [sweep_epochs, sweep_subset, sweep_latent, sweep_seed, sweep_cap],
                        [sweep_msg, runs_df, run_pick, runs_csv, ctx.in_use], api_name="sweep", concurrency_id="train").then(
            sweep_chart, None, sweep_plot, api_visibility="private")
        sweep_stop.click(stop_training, None, sweep_msg, api_visibility="private", queue=False)
        refresh_btn.click(show_runs, None, [runs_df, run_pick, runs_csv, runs_note], api_name="runs")
        tab.select(show_runs, None, [runs_df, run_pick, runs_csv, runs_note], api_visibility="private")
        gr.on([tab.select, refresh_btn.click], sweep_chart, None, sweep_plot, api_visibility="private")
        sweep_in = [sweep_epochs, sweep_subset, sweep_latent, sweep_seed, sweep_cap]
        gr.on([tab.select] + [c.change for c in sweep_in], plan_sweep, sweep_in, sweep_plan, api_visibility="private",
              queue=False, trigger_mode="always_last")
        on_switch(ctx, plan_sweep, sweep_in, sweep_plan)
        run_models = gr.State()
        run_pick.change(run_curves, run_pick, [run_mse, run_kl, run_models], api_visibility="private").then(
            redraw_curves, run_models, [run_mse, run_kl], api_visibility="private", queue=False)
        rerender(ctx, VIEW, [sweep_msg])
        on_switch(ctx, runs_switched, run_pick, [runs_df, run_pick, runs_csv, runs_note, run_mse, run_kl, run_models],
                  after=(redraw_curves, run_models, [run_mse, run_kl]))
        on_switch(ctx, sweep_chart, None, sweep_plot)
