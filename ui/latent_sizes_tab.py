"""The Latent sizes tab: the shipped ladder, and training a missing rung."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from aevae import analyses, datasets, figures, train_settings, training_jobs
from aevae.config import PRESETS, parse_latent
from aevae.i18n import t
from aevae.report import latent_notes
from aevae.session_state import NoModels

from .lang import L, drawn, plot, rerender, shown, table
from .limits import DEFAULT_SIZE, MAX_SECONDS
from .messages import fail, flag, need, parse_ids_or_none, refuse, seed_of, tmd
from .outputs import COLORS, on_open, png
from .page import gpu
from .picker import picker_update
from .sessions import lang_of, session, stop_training
from .work import bar, training_slot, watch

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "latent sizes"


@gpu
def compare_latents(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """The same images through models that differ only in latent size."""
    s, lang = session(request), lang_of(request)
    use_lpips = flag(use_lpips, "what.lpips", lang)
    need(1, 16, n, "what.n_images", lang)
    seed = seed_of(seed, "what.draw_seed", lang)
    try:
        rungs = analyses.ladder_models(s)
        if not rungs:
            raise refuse(t("lat.no_ladder", lang), lang)
        size = rungs[0]["ae"].config.image_size
        images = datasets.choose(s.split(size), parse_ids_or_none(ids_text), int(n), int(seed))
        res = analyses.latent_sizes(s, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    rows = analyses.latent_rows(s, res, images.image_size)
    s.last["latent_sizes"] = rows
    return shown(s, VIEW, lambda lg: _latent_view(s, images, res, rows, lg), lang)


def _latent_view(s, images, res, rows, lang: str):
    """The grid, table, chart and note of a latent-size comparison in `lang`."""
    grid_rows, labels, chart = [images.images], [drawn("pic.ground_truth", lang)], []
    for r in res:
        for kind in ("ae", "vae"):
            chart.append({"latent (values)": f"{r['latent']} ({r['values']:,})",
                          "PSNR (dB)": r["results"][kind].summary()["psnr"].mean, "model": kind.upper()})
            grid_rows.append(r["results"][kind].recon)
            labels.append(f"{kind.upper()} {r['latent']}")
    grid = figures.image_grid(grid_rows, labels, [str(i) for i in images.ids],
                              scale=figures.auto_scale(images.image_size, 64))
    note = t("lat.note", lang, size=images.image_size, values=f"{3 * images.image_size ** 2:,}")
    note += latent_notes(s, rows, lang)
    # The latents by name along x, in order of size (a log10 axis showed numbers, not the rungs).
    order = list(dict.fromkeys(f"{r['latent']} ({r['values']:,})" for r in sorted(res, key=lambda r: r["values"])))
    chart = plot(pd.DataFrame(chart), lang, "latent (values)", "PSNR (dB)", "model")
    chart["sort"] = order
    digits = {"PSNR": 2, "SSIM": 3, "LPIPS": 3}
    cells = [{**r, **{k: round(r[k], d) for k, d in digits.items() if r[k] is not None},
              "vs image values": t("lat.ratio_larger" if r["vs image values"] > 1 else "lat.ratio", lang,
                                   ratio=f"{r['vs image values']:.3g}")} for r in rows]
    return (png(s.new_folder(), grid, "latent-sizes.png"), table(cells, lang, cells=("source", "trained on")),
            chart, note)


def train_missing_rung(latent: str, epochs: int, request: gr.Request):
    """Train one more rung of the ladder (default architecture, this latent) as a run of the session."""
    s, lang = session(request), lang_of(request)
    need(1, 50, epochs, "what.epochs", lang)
    ladder = analyses.ladder_models(s)
    size = ladder[0]["ae"].config.image_size if ladder else DEFAULT_SIZE
    try:
        split = s.split(size)
        settings = train_settings.TrainSettings(image_size=size, latent=str(parse_latent(latent)), epochs=int(epochs),
                                           seconds=float(MAX_SECONDS))
        settings.model_config("ae")
        plan = tmd(train_settings.plan_text(settings, split), lang)
    except ValueError as e:
        raise fail(e, lang) from None
    with training_slot(s, lang):
        s.stop.clear()
        job = training_jobs.PairJob(s, settings, split, "rung")
        run = yield from watch(s, job, lambda: (
            t("lat.training", lang, latent=latent, plan=plan) + "  \n" +
            f"{bar(job.live.fraction)} — {tmd(job.live.queued or job.live.text, lang)}", gr.update()), lang)
    rec = run.record
    yield (t("lat.trained", lang, latent=run.pair.latent, title=tmd(run.title, lang), ended=tmd(rec.ended, lang),
             ae=f"{rec.ae.val_psnr:.2f}", vae=f"{rec.vae.val_psnr:.2f}"),
           picker_update(s, lang))


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[train_settings.TRAIN_DEFAULT]
    ladder = ", ".join(dict.fromkeys(e["rung"] for e in ctx.zoo.ladder())) if ctx.zoo else ""
    with gr.Tab(L("tab.latent_sizes")) as tab:
        gr.Markdown(L("lat.lead") + " " + (ladder or "–") + ".", elem_classes="lead")
        with gr.Row():
            lids = gr.Textbox("", label=L("common.ids"))
            ln = gr.Slider(1, 16, 6, step=1, label=L("common.random_images"))
            lseed = gr.Number(0, label=L("common.draw_seed"), precision=0)
            llpips = gr.Checkbox(True, label=L("common.lpips"))
        lat_btn = gr.Button(L("lat.btn"), variant="primary")
        lat_note = gr.Markdown()
        lat_img = gr.Image(label=L("lat.image"), format="png", elem_classes="pixelated",
                           buttons=["download", "fullscreen"])
        lat_table = gr.Dataframe(label=L("lat.table"))
        if True:  # the chart under the table: side by side, a projector cuts the table's columns
            lat_chart = gr.LinePlot(x="latent (values)", y="PSNR (dB)", color="model", color_map=COLORS,
                                    label=L("lat.chart"))
        with gr.Accordion(L("lat.rung"), open=False):
            with gr.Row():
                rung_lat = gr.Textbox("128", label=L("lat.rung_latent"))
                rung_epochs = gr.Slider(1, 50, d.train.epochs, step=1, label=L("lat.rung_epochs"))
            with gr.Row():
                rung_btn = gr.Button(L("lat.rung_btn"))
                rung_stop = gr.Button(L("common.stop"), variant="stop")
            rung_msg = gr.Markdown()
        lat_btn.click(compare_latents, [lids, ln, lseed, llpips], [lat_img, lat_table, lat_chart, lat_note],
                      api_name="latent_sizes")
        tab.select(on_open("latent sizes", compare_latents, 4, views=(VIEW,)), [lids, ln, lseed, llpips],
                   [lat_img, lat_table, lat_chart, lat_note], api_visibility="private")
        rung_btn.click(train_missing_rung, [rung_lat, rung_epochs], [rung_msg, ctx.in_use], api_name="train_rung",
                       concurrency_id="train")
        rung_stop.click(stop_training, None, rung_msg, api_visibility="private", queue=False)
        rerender(ctx, VIEW, [lat_img, lat_table, lat_chart, lat_note])
