"""The Reconstructions tab: ground truth | AE | VAE with PSNR, SSIM and LPIPS."""

from __future__ import annotations

import io
import threading

import gradio as gr
import pandas as pd
from PIL import Image

from aevae import data, figures, workbench
from aevae.workbench import NoModels

from .common import (
    background,
    csv_text,
    fail,
    gpu,
    need,
    on_open,
    parse_ids_or_none,
    rounded,
    seed_of,
    session,
    short_note,
)


@gpu
def reconstruct(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """Ground truth | AE | VAE for chosen or random validation images, with a metrics table."""
    s = session(request)
    need(1, workbench.MAX_RECON_IMAGES, n, "number of images")
    seed = seed_of(seed, "draw seed")
    try:
        pair = s.pair()
        images = workbench.choose(s.split(pair.image_size), parse_ids_or_none(ids_text), int(n), int(seed))
        rec = workbench.reconstruct_for(s, pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source, workbench.data_note(s, pair))


def _decode_own(s, files, pair, show):
    """The user's own images at the pair's size, decoded in the background (use as `yield from`):
    only as many as are shown, within the session's decoding budget; a cancelled request stops
    the decoding. Unreadable files are skipped and named; only when none is usable is it an error."""
    stop = threading.Event()  # this request's own: the session's training goes on

    def work():
        try:
            return s.own_images([getattr(f, "name", f) for f in files], pair.image_size, stop.is_set)
        except data.Cancelled:
            raise RuntimeError("Cancelled while decoding your images.") from None

    images = yield from background(s, work, show, stop=stop)
    note = f"{len(images)} image{'s' * (len(images) != 1)} reconstructed by {pair.source} (trained on " \
           f"{workbench.trained_on(pair.dataset)})."
    if images.skipped:
        note += f"  \n**Skipped {len(images.skipped)}:** " + "; ".join(images.skipped[:8]) + \
            (" ..." if len(images.skipped) > 8 else "")
    return images, note


def _pair_for_own(files, request):
    s = session(request)
    if not files:
        raise gr.Error("Upload one or more images first.", print_exception=False)
    try:
        return s, s.pair()
    except (ValueError, NoModels) as e:
        raise fail(e) from None


def load_own(files, request: gr.Request):
    """The user's own images at the pair's size (the page's first step): an upload with no usable
    image is an error shown in this note alone, the results above stay as they are."""
    s, pair = _pair_for_own(files, request)
    images, note = yield from _decode_own(s, files, pair, lambda: (gr.skip(), "Decoding your images…"))
    yield images, note


@gpu
def reconstruct_own(images, use_lpips: bool, request: gr.Request):
    s = session(request)
    try:
        pair = s.pair()
        rec = workbench.reconstruct(pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source)


def reconstruct_uploads(files, use_lpips: bool, request: gr.Request):
    """Both steps at once (the API's endpoint): the reconstruction and the note on skipped files."""
    s, pair = _pair_for_own(files, request)
    images, note = yield from _decode_own(s, files, pair, lambda: (*[gr.skip()] * 4, "Decoding your images…"))
    yield *reconstruct_own(images, use_lpips, request), note


def _reconstruction_view(rec: workbench.Reconstruction, source: str) -> tuple[bytes, str, pd.DataFrame, str]:
    """PNG bytes, summary, table and CSV text of a reconstruction; made once per result, so a shared
    answer (see workbench.SHIPPED_ANSWERS) costs each further student only the writing of two files."""
    view = getattr(rec, "_view", None)
    if view is not None:
        return view
    size = rec.images.image_size
    grid = figures.wrapped_grid([rec.images.images, rec.ae.recon, rec.vae.recon], ["ground truth", "AE", "VAE"],
                                [str(i) for i in rec.images.ids], scale=figures.auto_scale(size, 96), per_block=12)
    rows = rec.rows()
    lines = [f"**Models:** {source}. Mean ± std over {len(rows)} images "
             "(PSNR: higher is better; SSIM: up to 1, higher is better; LPIPS: lower is better).", "",
             "| | PSNR (dB) | SSIM | LPIPS |", "|---|---|---|---|"]
    for name, r in (("AE", rec.ae), ("VAE", rec.vae)):
        sm = r.summary()
        lp = f"{sm['lpips'].mean:.3f} ± {sm['lpips'].std:.3f}" if sm["lpips"] else "not measured"
        lines.append(f"| {name} | {sm['psnr'].mean:.2f} ± {sm['psnr'].std:.2f} | "
                     f"{sm['ssim'].mean:.3f} ± {sm['ssim'].std:.3f} | {lp} |")
    if rec.ae.lpips_note:
        lines.append(f"\n<small>LPIPS not measured: {short_note(rec.ae.lpips_note)}</small>")
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    view = (buf.getvalue(), "\n".join(lines), rounded(rows), csv_text(rows))
    rec._view = view
    return view


def show_reconstruction(rec: workbench.Reconstruction, s: workbench.Session, source: str, note: str = ""):
    s.last["reconstruction"] = rec
    png_bytes, summary, table, csv = _reconstruction_view(rec, source)
    summary += f"\n\n**Note:** {note}" if note else ""
    folder = s.new_folder()
    (folder / "reconstructions.png").write_bytes(png_bytes)
    (folder / "reconstructions.csv").write_text(csv)
    return str(folder / "reconstructions.png"), summary, table.copy(), str(folder / "reconstructions.csv")


def new_draw(seed: int) -> int:
    return int(seed) + 1


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab("Reconstructions") as tab:
        gr.Markdown("Ground truth, then the AE's and the VAE's reconstruction of the same images. "
                    "Look at edges and small details: the VAE trades some sharpness for a smooth "
                    "latent space.", elem_classes="lead")
        with gr.Row():
            ids = gr.Textbox("", label="Ids (blank: random validation images)", placeholder="e.g. 3, 227, 841-845")
            n = gr.Slider(1, workbench.MAX_RECON_IMAGES, 10, step=1, label="Random images")
            rseed = gr.Number(0, label="Draw seed", precision=0)
            use_lpips = gr.Checkbox(True, label="LPIPS")
        with gr.Row():
            rec_btn = gr.Button("Reconstruct", variant="primary")
            draw_btn = gr.Button("New random draw")
        rec_img = gr.Image(label="ground truth | AE | VAE", format="png", elem_classes="pixelated",
                           buttons=["download", "fullscreen"])
        rec_summary = gr.Markdown()
        rec_table = gr.Dataframe(label="Per image", max_height=400)
        rec_csv = gr.File(label="Table as CSV")
        with gr.Accordion("Reconstruct your own images", open=False):
            own = gr.File(label="Images (PNG/JPEG/WebP/BMP, or a .zip of them)", file_count="multiple",
                          type="filepath")
            own_btn = gr.Button("Reconstruct uploads")
            own_note = gr.Markdown()
            own_images = gr.State()
        rec_out = [rec_img, rec_summary, rec_table, rec_csv]
        rec_btn.click(reconstruct, [ids, n, rseed, use_lpips], rec_out, api_name="reconstruct")
        draw_btn.click(new_draw, rseed, rseed, queue=False, api_visibility="private").then(
            reconstruct, [ids, n, rseed, use_lpips], rec_out, api_visibility="private")
        # Two steps, so an upload with no usable image marks only this note as an error.
        own_btn.click(load_own, own, [own_images, own_note], api_visibility="private").success(
            reconstruct_own, [own_images, use_lpips], rec_out, api_visibility="private")
        api_only = gr.Button(visible=False)  # the API's one-call endpoint (reconstruction and note)
        api_only.click(reconstruct_uploads, [own, use_lpips], [*rec_out, own_note], api_name="reconstruct_uploads")
        tab.select(on_open("reconstructions", reconstruct, 4), [ids, n, rseed, use_lpips], rec_out,
                   api_visibility="private")


