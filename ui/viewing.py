"""Handlers of the Reconstructions, Noisy VAE variants and Latent sizes tabs."""

from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from aevae import figures, workbench
from aevae.config import parse_latent
from aevae.sampling import save_arrays
from aevae.workbench import NoModels

from .common import (
    DEFAULT_SIZE,
    MAX_SECONDS,
    bar,
    csv_text,
    fail,
    need,
    parse_ids_or_none,
    png,
    rounded,
    session,
    short_note,
    training_slot,
    watch,
)
from .training import picker_update


def reconstruct(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """Ground truth | AE | VAE for chosen or random validation images, with a metrics table."""
    s = session(request)
    need(1, workbench.MAX_RECON_IMAGES, n, "number of images")
    try:
        pair = s.pair()
        images = workbench.choose(s.split(pair.image_size), parse_ids_or_none(ids_text), int(n), int(seed))
        rec = workbench.reconstruct_for(s, pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source)


def reconstruct_uploads(files, use_lpips: bool, request: gr.Request):
    s = session(request)
    if not files:
        raise gr.Error("Upload one or more images first.")
    try:
        pair = s.pair()
        images = workbench.load_user_images([getattr(f, "name", f) for f in files], pair.image_size)
        rec = workbench.reconstruct(pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source)


def _reconstruction_view(rec: workbench.Reconstruction, source: str) -> tuple[bytes, str, pd.DataFrame, str]:
    """PNG bytes, summary, table and CSV text of a reconstruction; made once per result, so a shared
    answer (see workbench.SHIPPED_ANSWERS) costs each further student only the writing of two files."""
    view = getattr(rec, "_view", None)
    if view is not None:
        return view
    size = rec.images.image_size
    grid = figures.image_grid([rec.images.images, rec.ae.recon, rec.vae.recon], ["ground truth", "AE", "VAE"],
                              [str(i) for i in rec.images.ids], scale=figures.auto_scale(size, 96))
    rows = rec.rows()
    lines = [f"**Models:** {source}. Mean ± std over {len(rows)} images "
             "(PSNR: higher is better; SSIM: up to 1, higher is better; LPIPS: lower is better).", "",
             "| | PSNR (dB) | SSIM | LPIPS |", "|---|---|---|---|"]
    for name, r in (("AE", rec.ae), ("VAE", rec.vae)):
        sm = r.summary()
        lp = f"{sm['lpips'].mean:.4f} ± {sm['lpips'].std:.4f}" if sm["lpips"] else "not measured"
        lines.append(f"| {name} | {sm['psnr'].mean:.2f} ± {sm['psnr'].std:.2f} | "
                     f"{sm['ssim'].mean:.4f} ± {sm['ssim'].std:.4f} | {lp} |")
    if rec.ae.lpips_note:
        lines.append(f"\n<small>LPIPS not measured: {short_note(rec.ae.lpips_note)}</small>")
    if rec.images.skipped:
        lines.append(f"\nSkipped {len(rec.images.skipped)} files: " + "; ".join(rec.images.skipped[:5]))
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    view = (buf.getvalue(), "\n".join(lines), rounded(rows), csv_text(rows))
    rec._view = view
    return view


def show_reconstruction(rec: workbench.Reconstruction, s: workbench.Session, source: str):
    s.last["reconstruction"] = rec
    png_bytes, summary, table, csv = _reconstruction_view(rec, source)
    folder = s.new_folder()
    (folder / "reconstructions.png").write_bytes(png_bytes)
    (folder / "reconstructions.csv").write_text(csv)
    return str(folder / "reconstructions.png"), summary, table.copy(), str(folder / "reconstructions.csv")


def new_draw(seed: int) -> int:
    return int(seed) + 1


# --- Noisy variants -------------------------------------------------------------------
def make_variants(ids_text: str, label: str, per_label: int, k: int, scale: float, seed: int,
                  request: gr.Request):
    """Each source with k VAE variants (its own sigma x scale) and the AE with the same noise draws."""
    s = session(request)
    need(1, 10, k, "variants per image")
    need(0, 5, scale, "noise scale")
    need(1, 40, per_label, "images per label")
    notes = []
    try:
        pair = s.pair()
        full = s.split(pair.image_size).all
        ids = parse_ids_or_none(ids_text) or []
        known = [i for i in ids if 1 <= i <= len(full)]
        if len(known) < len(ids):
            notes.append(f"ids beyond this dataset's {len(full)} images were left out: "
                         f"{', '.join(map(str, [i for i in ids if i not in known][:10]))}")
        if label and label != "(none)":
            if label not in full.label_names:
                raise ValueError(f"no label {label!r} in this dataset")
            lab = full.label_names.index(label)
            known += [int(i) for i in full.ids[full.labels == lab][:per_label] if int(i) not in known]
        if not known:
            raise ValueError("choose images by ids and/or a label")
        if len(known) > 40:
            raise ValueError(f"at most 40 source images at once, got {len(known)}")
        images = full.select_ids(known)
        vs = workbench.variants_for(s, pair, images, int(k), float(scale), int(seed))
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    s.last["variants"] = (images, vs, pair.source)
    size = pair.image_size
    sc = figures.auto_scale(size, 72)
    folder = s.new_folder()
    gallery = []
    for i in range(len(images)):
        g = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]),
                                np.concatenate([images.images[i:i + 1], vs.ae[i]])],
                               ["VAE", "AE"], ["source"] + [f"#{j + 1}" for j in range(k)], scale=sc)
        gallery.append((png(folder, g, f"variants-{images.ids[i]}.png"), f"id {images.ids[i]} · {images.label_names[images.labels[i]]} · {images.names[i]}"))
    gen_data, gen_label = vs.export_arrays()
    files = [str(p) for p in save_arrays(folder, gen_data, gen_label)]
    big = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]) for i in range(len(images))],
                             [str(i) for i in images.ids], scale=1)
    from PIL import Image

    Image.fromarray(big).save(folder / "variants.png")
    files.append(str(folder / "variants.png"))
    msg = (f"{len(gen_data)} VAE variants of {len(images)} images ({k} each, noise scale {scale}); "
           f"`gen_data.npy` is {tuple(gen_data.shape)} uint8, `gen_label.npy` follows each source's label.")
    return gallery, "\n\n".join([msg, *notes]), files


# --- Latent sizes ---------------------------------------------------------------------
def compare_latents(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """The same images through models that differ only in latent size."""
    s = session(request)
    need(1, 16, n, "number of images")
    try:
        rungs = workbench.ladder_models(s)
        if not rungs:
            raise NoModels("No latent ladder is shipped: train a rung below.")
        size = rungs[0]["ae"].config.image_size
        images = workbench.choose(workbench.openmoji_split(size) if s.upload is None else s.split(size),
                                  parse_ids_or_none(ids_text), int(n), int(seed))
        res = workbench.latent_sizes(s, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows, grid_rows, labels, chart = [], [images.images], ["ground truth"], []
    for r in res:
        ratio = r["values"] / r["image_values"]
        for kind in ("ae", "vae"):
            sm = r["results"][kind].summary()
            rows.append({"latent": r["latent"], "model": kind.upper(), "latent values": r["values"],
                         "vs image values": f"{ratio:.3g}x" + (" (LARGER than the image)" if ratio > 1 else ""),
                         "PSNR": round(sm["psnr"].mean, 2), "SSIM": round(sm["ssim"].mean, 4),
                         "LPIPS": round(sm["lpips"].mean, 4) if sm["lpips"] else None, "source": r["source"]})
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
