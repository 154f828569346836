"""The Beta trade-off tab: rate against distortion over beta."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from aevae import (
    analyses,
    classroom,
    datasets,
    figures,
    session_state,
    timing,
    train_settings,
    training_jobs,
)
from aevae.i18n import t, tm

from .lang import L, drawn, on_switch, plot, rerender, restore, shown, table
from .limits import DEFAULT_SIZE, MAX_EPOCHS, MAX_SECONDS
from .messages import fail, md, need, numbers, refuse, tmd
from .outputs import on_open, png
from .sessions import lang_of, session, stop_training
from .work import background, bar, training_slot

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "beta"
INPUTS = "beta inputs"  # the betas and epochs of the sweep shown


def show_betas(s: session_state.Session, rows: list[dict], source: str, emoji: bool, lang: str, warning: str = ""):
    """The table, the chart, the grid and a note (`warning` after it); `emoji`: the images are OpenMoji's."""
    digits = {"KL (nats/image)": 1, "MSE per pixel": 4, "val PSNR": 2}
    frame = table([{k: (round(v, digits.get(k, 3)) if isinstance(v, float) else v) for k, v in r.items()
                    if k not in ("samples", "recon")} for r in rows], lang)
    chart = pd.DataFrame({"KL (nats/image)": [r["KL (nats/image)"] for r in rows],
                          "MSE per pixel": [r["MSE per pixel"] for r in rows],
                          "beta": [f"{r['beta']:g}" for r in rows]})
    size = rows[0]["samples"].shape[1]
    grid_rows, labels = [], []
    for r in rows:
        grid_rows += [r["recon"], r["samples"]]
        labels += [drawn("pic.beta_recon", lang, beta=f"{r['beta']:g}"), drawn("pic.beta_samples", lang, beta=f"{r['beta']:g}")]
    grid = figures.image_grid(grid_rows, labels, scale=figures.auto_scale(size, 64))
    note = t("beta.note" if emoji else "beta.note_images", lang, source=source) + (f"\n\n{warning}" if warning else "")
    return (frame, plot(chart, lang, "KL (nats/image)", "MSE per pixel", "beta"),
            png(s.new_folder(), grid, "beta-sweep.png"), note)


def shipped_beta_sweep(request: gr.Request):
    s, lang = session(request), lang_of(request)
    rows = analyses.shipped_beta_results(s)
    if not rows:
        raise refuse(t("beta.none_shipped", lang), lang)

    def view(lg):
        source = t("beta.shipped", lg)
        if s.uses_upload:
            source += t("beta.not_on_upload", lg, data=tmd(s.data_source(), lg))
        return show_betas(s, rows, source, True, lg)

    return shown(s, VIEW, view, lang)


def _betas(betas_text: str, epochs: int, lang: str) -> list[float]:
    need(1, MAX_EPOCHS, epochs, "what.epochs_per_beta", lang)  # the Train tab's limit: ~500 steps on small data
    betas = numbers(betas_text, float, 0, 100, 8, "what.betas", "0, 0.1, 1, 4", lang, least=2)  # two to compare
    if len(betas) < 2:
        raise refuse(t("beta.two", lang), lang)
    return betas


def plan_betas(betas_text: str, epochs: int, request: gr.Request):
    """The sweep's plan before it starts, as the Train tab's: steps per beta and the time, and when
    the steps are too few to show the trade-off, the epochs that make enough, to click."""
    s, lang = session(request), lang_of(request)
    hidden = gr.update(visible=False, value=None)
    try:
        betas = _betas(betas_text, epochs, lang)
        split = s.any_split() if s.uses_upload else datasets.openmoji_counts()  # counts only
        if split is None:
            return t("train.plan_after_load", lang), hidden
        steps, seconds, more = train_settings.beta_plan(split, DEFAULT_SIZE, len(betas), int(epochs), MAX_EPOCHS)
    except (gr.Error, ValueError) as e:
        return t("beta.cannot", lang, error=e.message if isinstance(e, gr.Error) else tmd(str(e), lang)), hidden
    plan = t("beta.plan", lang, n=len(betas), epochs=int(epochs), images=f"{len(split.train):,}", steps=f"{steps:,}",
             seconds=f"{seconds:.0f}", cap=MAX_SECONDS)
    if more is None:
        return plan, hidden
    epochs, steps_more, seconds = more
    plan += "\n\n" + t("beta.few_before", lang, steps=f"{steps:,}", good=f"{train_settings.GOOD_STEPS:,}", epochs=epochs,
                        seconds=f"{seconds:.0f}")
    label = t("beta.use_epochs", lang, epochs=epochs, steps=f"{steps_more:,}", seconds=f"{seconds:.0f}")
    return plan, gr.update(choices=[(label, epochs)], value=None, visible=True)


def beta_sweep(betas_text: str, epochs: int, request: gr.Request):
    """A VAE per beta on this session's data (each a run of the session), shown as the trade-off."""
    s, lang = session(request), lang_of(request)
    betas = _betas(betas_text, epochs, lang)
    try:
        split = s.split(DEFAULT_SIZE)
    except ValueError as e:
        raise fail(e, lang) from None
    live = {"text": t("beta.starting", lang), "frac": 0.0, "name": ""}
    try:
        per_beta = train_settings.beta_plan(split, DEFAULT_SIZE, 1, int(epochs), MAX_EPOCHS)[1]
    except ValueError:
        per_beta = None  # the time left is then measured only
    lefts = {}

    def progress(name, p):
        i = [f"{b:g}" for b in betas].index(name)
        left = lefts.setdefault(name, timing.TimeLeft(per_beta))
        live.update(queued="", text=training_jobs.progress_text(p, left), frac=(i + p.fraction) / len(betas), name=name)

    def show():
        if live.get("queued"):
            return gr.update(), gr.update(), gr.update(), t("status.queued", lang, where=live["queued"])
        return (gr.update(), gr.update(), gr.update(),
                t("beta.training", lang, beta=live["name"]) + f" {bar(live['frac'])} — {tmd(live['text'], lang)}")

    def on_wait(place, secs):
        live["queued"] = t("status.waiting", lang, place=place, seconds=f"{secs:.0f}")

    def work():
        try:
            return training_jobs.train_betas(s, split, betas, int(epochs), on_progress=progress, cap=MAX_SECONDS,
                                         on_wait=on_wait)
        except classroom.Cancelled:
            return [], []

    try:
        with training_slot(s, lang):
            models, failed = yield from background(s, work, show, lang)
        if not models:
            raise (refuse(t("beta.stopped_first", lang), lang) if not failed else
                   refuse(t("beta.none_trained", lang, failed=_failed(failed, lang)), lang))
    except gr.Error as e:  # the status says it too: a toast goes, a frozen progress bar would stay
        yield gr.update(), gr.update(), gr.update(), md(getattr(e, "plain", None) or e.message)
        raise
    steps = train_settings.steps_of(train_settings.TrainSettings(epochs=int(epochs)), len(split.train))
    rows = analyses.beta_results(models, split)

    def view(lg):
        done = "" if len(models) + len(failed) == len(betas) else t("beta.stopped_after", lg, n=len(models),
                                                                                of=len(betas))
        if failed:
            done += t("beta.failed", lg, failed=md(_failed(failed, lg)))
        few = t("beta.few_steps", lg, steps=steps, good=train_settings.GOOD_STEPS) if steps < train_settings.FEW_STEPS else ""
        return show_betas(s, rows,  # few steps: grey blurs, whatever beta says
                          t("beta.trained_here", lg, epochs=epochs, source=tmd(split.all.source, lg), done=done),
                          split.spec == datasets.OPENMOJI, lg, few)

    shown(s, INPUTS, lambda lg: (betas_text, int(epochs)), lang)  # a reload shows what made it
    yield shown(s, VIEW, view, lang)


def _failed(failed: list[str], lang: str) -> str:
    return "; ".join(tm(f, lang) for f in failed)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab(L("tab.beta")) as tab:
        gr.Markdown(L("beta.lead"), elem_classes="lead")
        with gr.Row():
            beta_shipped_btn = gr.Button(L("beta.shipped_btn"), variant="primary")
            betas_text = gr.Textbox("0, 0.1, 0.5, 1, 2, 4", label=L("beta.betas"))
            # A number, not a slider: a slider silently clamps a typed value to its maximum; the
            # server refuses one over MAX_EPOCHS with a message.
            beta_epochs = gr.Number(3, precision=0, label=L("beta.epochs"))
            beta_train_btn = gr.Button(L("beta.train_btn"))
            beta_stop = gr.Button(L("common.stop"), variant="stop")
        beta_plan = gr.Markdown()
        beta_epochs_pick = gr.Radio([], label=L("train.epochs_pick"), visible=False)
        beta_note = gr.Markdown()
        with gr.Row():
            beta_table = gr.Dataframe(label=L("beta.table"))
            beta_chart = gr.ScatterPlot(x="KL (nats/image)", y="MSE per pixel", color="beta",
                                        label=L("beta.chart"))
        beta_grid = gr.Image(label=L("beta.grid"), format="png", elem_classes="pixelated")
        beta_out = [beta_table, beta_chart, beta_grid, beta_note]
        beta_shipped_btn.click(shipped_beta_sweep, None, beta_out, api_name="beta_shipped")
        # costly: six VAEs over the validation split, the start-up work's longest first view
        tab.select(on_open("beta", shipped_beta_sweep, 4, costly=True, views=(VIEW,)), None, beta_out, api_visibility="private")
        beta_train_btn.click(beta_sweep, [betas_text, beta_epochs], beta_out, api_name="beta_sweep",
                             concurrency_id="train")
        beta_stop.click(stop_training, None, beta_note, api_visibility="private", queue=False)
        # The plan follows the settings and the data in use (chosen in the Train tab: on opening).
        gr.on([tab.select, betas_text.change, beta_epochs.change], plan_betas, [betas_text, beta_epochs],
              [beta_plan, beta_epochs_pick], api_visibility="private", queue=False, trigger_mode="always_last")
        on_switch(ctx, plan_betas, [betas_text, beta_epochs], [beta_plan, beta_epochs_pick])
        beta_epochs_pick.input(lambda v: v or gr.update(), beta_epochs_pick, beta_epochs, api_visibility="private")
        rerender(ctx, VIEW, beta_out)
        restore(ctx, INPUTS, [betas_text, beta_epochs])
