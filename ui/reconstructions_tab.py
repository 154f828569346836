"""The Reconstructions tab: ground truth | AE | VAE with PSNR, SSIM and LPIPS."""

from __future__ import annotations

import json
import logging
import threading

import gradio as gr
import pandas as pd

from aevae import analyses, data, datasets, figures, live, session_state
from aevae.i18n import t
from aevae.session_state import NoModels

from .lang import L, drawn, on_switch, rerender, shown, skipped_file, table
from .limits import HEAVY, HEAVY_SLOTS
from .messages import fail, flag, md, need, parse_ids_or_none, refuse, seed_of, tmd
from .outputs import PerObject, csv_text, on_open, rounded
from .page import gpu
from .sessions import lang_of, session
from .work import background

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "recon"


@gpu
def reconstruct(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """Ground truth | AE | VAE for chosen or random validation images, with a metrics table."""
    s, lang = session(request), lang_of(request)
    use_lpips = flag(use_lpips, "what.lpips", lang)
    need(1, datasets.MAX_RECON_IMAGES, n, "what.n_images", lang)
    seed = seed_of(seed, "what.draw_seed", lang)
    try:
        pair = s.pair()
        images = datasets.choose(s.split(pair.image_size), parse_ids_or_none(ids_text), int(n), int(seed))
        rec = analyses.reconstruct_for(s, pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    note = analyses.data_note(s, pair)
    return shown(s, VIEW, lambda lg: show_reconstruction(rec, s, pair.source, lg, note), lang)


def _decode_own(s, files, pair, show, lang: str):
    """The user's own images at the pair's size, decoded in the background (use as `yield from`):
    only as many as are shown, within the session's decoding budget; a cancelled request stops
    the decoding. Unreadable files are skipped and named; only when none is usable is it an error."""
    stop = threading.Event()  # this request's own: the session's training goes on

    paths = [getattr(f, "name", f) for f in files]

    def work():
        try:
            return s.own_images(paths, pair.image_size, stop.is_set)
        except data.Cancelled:
            raise RuntimeError(t("recon.decoding_cancelled", lang)) from None

    images = yield from background(s, work, show, lang, stop=stop)
    note = t("recon.own_done" if len(images) != 1 else "recon.own_done_one", lang, n=len(images),
             source=tmd(pair.source, lang), data=tmd(datasets.trained_on(pair.dataset), lang))
    if images.skipped:
        note += "  \n" + t("recon.own_skipped", lang, n=len(images.skipped)) + " " + "; ".join(
            md(skipped_file(x, lang)) for x in images.skipped[:8]) + (" ..." if len(images.skipped) > 8 else "")
    return images, note


def _pair_for_own(files, request):
    s, lang = session(request), lang_of(request)
    if not files:
        raise refuse(t("recon.upload_first", lang), lang)
    try:
        return s, s.pair(), lang
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None


def load_own(files, request: gr.Request):
    """The user's own images at the pair's size (the page's first step): an upload with no usable
    image is an error shown in this note alone, the results above stay as they are."""
    s, pair, lang = _pair_for_own(files, request)
    decoding = t("recon.decoding", lang)
    images, note = yield from _decode_own(s, files, pair, lambda: (gr.skip(), decoding), lang)
    yield images, note


@gpu
def reconstruct_own(images, use_lpips: bool, request: gr.Request):
    s, lang = session(request), lang_of(request)
    use_lpips = flag(use_lpips, "what.lpips", lang)
    if not isinstance(images, data.ImageSet):  # the decoded upload, held by the page (a script sends anything)
        raise refuse(t("recon.upload_first", lang), lang)
    try:
        pair = s.pair()
        rec = analyses.reconstruct(pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    return shown(s, VIEW, lambda lg: show_reconstruction(rec, s, pair.source, lg), lang)


def reconstruct_uploads(files, use_lpips: bool, request: gr.Request):
    """Both steps at once (the API's endpoint): the reconstruction and the note on skipped files."""
    flag(use_lpips, "what.lpips", lang_of(request))  # before the decoding's work
    s, pair, lang = _pair_for_own(files, request)
    decoding = t("recon.decoding", lang)
    images, note = yield from _decode_own(s, files, pair, lambda: (*[gr.skip()] * 4, decoding), lang)
    yield *reconstruct_own(images, use_lpips, request), note


_VIEWS = PerObject()  # a reconstruction's views per language, while it lives


def _reconstruction_view(rec: analyses.Reconstruction, source: str, lang: str) -> tuple[bytes, str, pd.DataFrame, str]:
    """PNG bytes, summary, table and CSV text of a reconstruction in `lang`; made once per result and
    language, so a shared answer (see analyses.SHIPPED_ANSWERS) costs each further student only the
    writing of two files."""
    views = _VIEWS.of(rec)
    if lang in views:
        return views[lang]
    size = rec.images.image_size
    grid = figures.wrapped_grid([rec.images.images, rec.ae.recon, rec.vae.recon],
                                [drawn("pic.ground_truth", lang), "AE", "VAE"],
                                [str(i) for i in rec.images.ids], scale=figures.auto_scale(size, 96), per_block=12)
    rows = rec.rows()
    lines = [t("recon.summary", lang, source=tmd(source, lang), n=len(rows)), "",
             "| | PSNR (dB) | SSIM | LPIPS |", "|---|---|---|---|"]
    for name, r in (("AE", rec.ae), ("VAE", rec.vae)):
        sm = r.summary()
        lp = f"{sm['lpips'].mean:.3f} ± {sm['lpips'].std:.3f}" if sm["lpips"] else t("recon.not_measured", lang)
        lines.append(f"| {name} | {sm['psnr'].mean:.2f} ± {sm['psnr'].std:.2f} | "
                     f"{sm['ssim'].mean:.3f} ± {sm['ssim'].std:.3f} | {lp} |")
    if rec.ae.lpips_note:
        lines.append("\n<small>" + t("recon.lpips_note", lang, why=tmd(rec.ae.lpips_note, lang)) + "</small>")
    view = views[lang] = (figures.png_bytes(grid), "\n".join(lines), table(rounded(rows), lang), csv_text(rows))
    return view


def show_reconstruction(rec: analyses.Reconstruction, s: session_state.Session, source: str, lang: str,
                        note: str = ""):
    s.last["reconstruction"] = rec
    picture, summary, frame, csv = _reconstruction_view(rec, source, lang)
    summary += "\n\n" + t("common.data_note", lang, note=tmd(note, lang)) if note else ""
    folder = s.new_folder()
    (folder / "reconstructions.png").write_bytes(picture)
    (folder / "reconstructions.csv").write_text(csv)
    return str(folder / "reconstructions.png"), summary, frame.copy(), str(folder / "reconstructions.csv")


def new_draw(seed: int) -> int:
    return int(seed) + 1


# Gradio's scroll_to_output left the grid above the screen at 1280x720; the grid's own top is
# brought into view instead.
SCROLL_TO_GRID = "() => document.getElementById('recon-grid')?.scrollIntoView({block: 'start'})"


PICTURE_KEYS = ("title", "note", "file", "camera", "camera_off", "input", "psnr", "loading", "ready", "failed",
                "not_image")
# A student's own picture (a file or the camera) through both models in the page (ui/static/js/live.js)
PICTURE_HTML = """<div id="aevae-live-picture" class="aevae-live">
<p class="live-note" data-role="note"></p><p class="live-status" data-role="status"></p>
<p><label class="live-file"><span data-role="file"></span> <input type="file" accept="image/*" data-role="file-input"></label>
<button type="button" data-role="camera"></button></p>
<div class="live-row" data-role="drop">
<figure><canvas data-role="in" width="160" height="160"></canvas><figcaption data-role="cap-in"></figcaption></figure>
<figure><canvas data-role="ae" width="160" height="160"></canvas><figcaption data-role="cap-ae">AE</figcaption></figure>
<figure><canvas data-role="vae" width="160" height="160"></canvas><figcaption data-role="cap-vae">VAE</figcaption></figure>
</div><video data-role="video" playsinline muted hidden></video></div>"""
PICTURE_JS = "(payload) => { if (window.aevaeLive) window.aevaeLive.loadPicture(payload); }"
log = logging.getLogger("aevae.app")


def picture_payload(request: gr.Request):
    """The pair in use's files for the page's own-picture panel ('' when it cannot run there)."""
    s, lang = session(request), lang_of(request)
    try:
        pair = s.pair()
        texts = {k: t(f"live.pic_{k}", lang) for k in PICTURE_KEYS}
        return json.dumps(live.pair_payload(pair.ae, pair.vae, pair.source, texts))
    except NoModels:
        return ""
    except Exception:  # noqa: BLE001 - logged; the server's upload stays
        log.exception("the live picture's payload could not be made")
        return ""


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab(L("tab.recon")) as tab:
        gr.Markdown(L("recon.lead"), elem_classes="lead")
        with gr.Row():
            ids = gr.Textbox("", label=L("common.ids"), placeholder=L("recon.ids_example"))
            n = gr.Slider(1, datasets.MAX_RECON_IMAGES, 10, step=1, label=L("common.random_images"))
            rseed = gr.Number(0, label=L("common.draw_seed"), precision=0)
            use_lpips = gr.Checkbox(True, label=L("common.lpips"))
        with gr.Row():
            rec_btn = gr.Button(L("recon.btn"), variant="primary")
            draw_btn = gr.Button(L("recon.new_draw"))
        rec_img = gr.Image(label=L("recon.image"), format="png", elem_classes="pixelated", elem_id="recon-grid",
                           buttons=["download", "fullscreen"])
        rec_summary = gr.Markdown()
        rec_table = gr.Dataframe(label=L("recon.table"), max_height=400)
        rec_csv = gr.File(label=L("recon.csv"))
        with gr.Accordion(L("recon.live_picture"), open=False):
            gr.HTML(PICTURE_HTML, elem_classes="live-panel")
            picture = gr.Textbox(visible="hidden", elem_id="aevae-live-picture-data")
            picture.change(None, picture, None, js=PICTURE_JS, api_visibility="private", queue=False)
        with gr.Accordion(L("recon.own"), open=False):
            own = gr.File(label=L("recon.own_files"), file_count="multiple", type="filepath")
            own_btn = gr.Button(L("recon.own_btn"))
            own_note = gr.Markdown()
            own_images = gr.State()
        rec_out = [rec_img, rec_summary, rec_table, rec_csv]
        rec_btn.click(reconstruct, [ids, n, rseed, use_lpips], rec_out, api_name="reconstruct")
        draw_btn.click(new_draw, rseed, rseed, queue=False, api_visibility="private").then(
            reconstruct, [ids, n, rseed, use_lpips], rec_out, api_visibility="private")
        # Two steps, so an upload with no usable image marks only this note as an error.
        own_btn.click(load_own, own, [own_images, own_note], api_visibility="private", concurrency_id=HEAVY,
                      concurrency_limit=HEAVY_SLOTS).success(
            reconstruct_own, [own_images, use_lpips], rec_out, api_visibility="private").success(
            None, js=SCROLL_TO_GRID)  # the grid is at the top of the tab, far above this button
        api_only = gr.Button(visible=False)  # the API's one-call endpoint (reconstruction and note)
        api_only.click(reconstruct_uploads, [own, use_lpips], [*rec_out, own_note], api_name="reconstruct_uploads",
                       concurrency_id=HEAVY, concurrency_limit=HEAVY_SLOTS)
        tab.select(on_open("reconstructions", reconstruct, 4, views=(VIEW,)), [ids, n, rseed, use_lpips], rec_out,
                   api_visibility="private")
        rerender(ctx, VIEW, rec_out)
        gr.on([tab.select, ctx.in_use.change], picture_payload, None, picture, api_visibility="private", queue=False)
        on_switch(ctx, picture_payload, None, picture)


