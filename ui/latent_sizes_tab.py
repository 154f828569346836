"""The Latent sizes tab: the shipped ladder, and training a missing rung."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from aevae import figures, workbench
from aevae.config import PRESETS, parse_latent
from aevae.workbench import NoModels

from .common import (
    COLORS,
    DEFAULT_SIZE,
    MAX_SECONDS,
    bar,
    fail,
    gpu,
    need,
    on_open,
    parse_ids_or_none,
    png,
    seed_of,
    session,
    stop_training,
    training_slot,
    watch,
)
from .picker import picker_update


@gpu
def compare_latents(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """The same images through models that differ only in latent size."""
    s = session(request)
    need(1, 16, n, "number of images")
    seed = seed_of(seed, "draw seed")
    try:
        rungs = workbench.ladder_models(s)
        if not rungs:
            raise NoModels("No latent ladder is shipped: train a rung below.")
        size = rungs[0]["ae"].config.image_size
        images = workbench.choose(s.split(size), parse_ids_or_none(ids_text), int(n), int(seed))
        res = workbench.latent_sizes(s, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows, grid_rows, labels, chart = [], [images.images], ["ground truth"], []
    elsewhere: dict[str, list[str]] = {}  # data a rung was trained on, when not the data in use -> rungs
    for r in res:
        other = workbench.other_data(s, r["dataset"], images.image_size)
        if other is not None:
            elsewhere.setdefault(other, []).append(r["latent"])
        ratio = r["values"] / r["image_values"]
        for kind in ("ae", "vae"):
            sm = r["results"][kind].summary()
            rows.append({"latent": r["latent"], "model": kind.upper(), "latent values": r["values"],
                         "vs image values": f"{ratio:.3g}x" + (" (LARGER than the image)" if ratio > 1 else ""),
                         "PSNR": round(sm["psnr"].mean, 2), "SSIM": round(sm["ssim"].mean, 3),
                         "LPIPS": round(sm["lpips"].mean, 3) if sm["lpips"] else None, "source": r["source"],
                         "trained on": "the data in use" if other is None else other})
            chart.append({"log10 latent values": float(np.log10(r["values"])), "PSNR (dB)": sm["psnr"].mean,
                          "model": kind.upper()})
            grid_rows.append(r["results"][kind].recon)
            labels.append(f"{kind.upper()} {r['latent']}")
    s.last["latent_sizes"] = rows
    grid = figures.image_grid(grid_rows, labels, [str(i) for i in images.ids],
                              scale=figures.auto_scale(images.image_size, 64))
    note = (f"Input: 3x{images.image_size}x{images.image_size} = {3 * images.image_size ** 2:,} values. "
            "A 'bottleneck' with more values than the image compresses nothing: it reconstructs well "
            "but has not learned a compact code.")
    for other, latents in elsewhere.items():
        note += (f"\n\n**Note:** latent{'s' * (len(latents) > 1)} {', '.join(latents)} "
                 f"{'were' if len(latents) > 1 else 'was'} trained on {other}, not on the data in use "
                 f"({s.data_source()}): they never saw images like these, so they do worse on them than on "
                 "their own data. Train a rung below to compare on your data.")
    return png(s.new_folder(), grid, "latent-sizes.png"), pd.DataFrame(rows), pd.DataFrame(chart), note


def train_missing_rung(latent: str, epochs: int, request: gr.Request):
    """Train one more rung of the ladder (default architecture, this latent) as a run of the session."""
    s = session(request)
    need(1, 50, epochs, "epochs")
    ladder = workbench.ladder_models(s)
    size = ladder[0]["ae"].config.image_size if ladder else DEFAULT_SIZE
    try:
        split = s.split(size)
        settings = workbench.TrainSettings(image_size=size, latent=str(parse_latent(latent)), epochs=int(epochs),
                                           seconds=float(MAX_SECONDS))
        settings.model_config("ae")
        plan = workbench.plan_text(settings, split)
    except ValueError as e:
        raise fail(e) from None
    with training_slot(s):
        s.stop.clear()
        job = workbench.PairJob(s, settings, split, "rung")
        run = yield from watch(s, job, lambda: (
            f"Training latent {latent}: {plan}  \n{bar(job.live.fraction)} — {job.live.queued or job.live.text}",
            gr.update()))
    yield (f"Trained latent {run.pair.latent} as {run.title} ({run.row['ended']}; AE {run.row['AE val PSNR']:.2f} dB, "
           f"VAE {run.row['VAE val PSNR']:.2f} dB on the validation split). Press Compare to see it in the ladder.",
           picker_update(s))


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[workbench.TRAIN_DEFAULT]
    ladder_default = ", ".join(dict.fromkeys(e["rung"] for e in ctx.zoo.ladder())) if ctx.zoo else ""
    with gr.Tab("Latent sizes") as tab:
        gr.Markdown("Models that differ only in latent size, on the same images. Small codes blur; "
                    "large ones reconstruct well but compress little or nothing. Shipped rungs: "
                    f"{ladder_default or 'none'}.", elem_classes="lead")
        with gr.Row():
            lids = gr.Textbox("", label="Ids (blank: random validation images)")
            ln = gr.Slider(1, 16, 6, step=1, label="Random images")
            lseed = gr.Number(0, label="Draw seed", precision=0)
            llpips = gr.Checkbox(True, label="LPIPS")
        lat_btn = gr.Button("Compare latent sizes", variant="primary")
        lat_note = gr.Markdown()
        lat_img = gr.Image(label="ground truth, then each latent size", format="png", elem_classes="pixelated",
                           buttons=["download", "fullscreen"])
        lat_table = gr.Dataframe(label="Quality per latent size (these images)")
        if True:  # the chart under the table: side by side, a projector cuts the table's columns
            lat_chart = gr.LinePlot(x="log10 latent values", y="PSNR (dB)", color="model", color_map=COLORS, label="PSNR vs latent values")
        with gr.Accordion("Train a missing rung briefly", open=False):
            with gr.Row():
                rung_lat = gr.Textbox("128", label="Latent (e.g. 128 or 32x8x8)")
                rung_epochs = gr.Slider(1, 50, d.train.epochs, step=1, label="Epochs (both models)")
            with gr.Row():
                rung_btn = gr.Button("Train rung")
                rung_stop = gr.Button("Stop", variant="stop")
            rung_msg = gr.Markdown()
        lat_btn.click(compare_latents, [lids, ln, lseed, llpips], [lat_img, lat_table, lat_chart, lat_note],
                      api_name="latent_sizes")
        tab.select(on_open("latent sizes", compare_latents, 4), [lids, ln, lseed, llpips],
                   [lat_img, lat_table, lat_chart, lat_note], api_visibility="private")
        rung_btn.click(train_missing_rung, [rung_lat, rung_epochs], [rung_msg, ctx.in_use], api_name="train_rung",
                       concurrency_id="train")
        rung_stop.click(stop_training, None, rung_msg, api_visibility="private", queue=False)


