"""The Noisy VAE variants tab: noise in latent space, VAE vs AE."""

from __future__ import annotations

import json
import logging

import gradio as gr
import numpy as np

from aevae import analyses, data, figures, live
from aevae.i18n import t, tm
from aevae.sampling import save_arrays, save_label_names
from aevae.session_state import NoModels

from .lang import L, drawn, group, on_switch, rerender, shown
from .messages import fail, need, parse_ids_or_none, refuse, seed_of, tmd
from .outputs import on_open, png
from .page import gpu
from .sessions import lang_of, session

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "variants"

NO_LABEL = "(none)"
LIVE_KEYS = ("title", "note", "scale", "loading", "ready", "failed")
# The page redraws the variants at any noise scale itself (ui/static/js/live.js, loadVariants).
LIVE_HTML = """<div id="aevae-live-variants" class="aevae-live">
<h3 data-role="title"></h3><p class="live-note" data-role="note"></p><p class="live-status" data-role="status"></p>
<div class="live-sliders"><label><span data-role="scale-label"></span>
<input type="range" data-role="scale" min="0" max="5" step="0.05" value="1"><output data-role="scale-value"></output></label></div>
<canvas data-role="grid" width="0" height="0"></canvas>
</div>"""
LIVE_JS = "(payload) => { if (window.aevaeLive) window.aevaeLive.loadVariants(payload); }"
log = logging.getLogger("aevae.app")


@gpu
def make_variants(ids_text: str, label: str, per_label: int, k: int, scale: float, seed: int,
                  request: gr.Request):
    """Each source with k VAE variants (its own sigma x scale) and the AE with the same noise draws."""
    s, lang = session(request), lang_of(request)
    need(1, 10, k, "what.variants", lang)
    need(0, 5, scale, "what.noise_scale", lang)
    need(1, 40, per_label, "what.images_per_label", lang)
    seed = seed_of(seed, "what.noise_seed", lang)
    notes = []
    try:
        pair = s.pair()
        full = s.split(pair.image_size).all
        ids = parse_ids_or_none(ids_text) or []
        known = [i for i in ids if 1 <= i <= len(full)]
        if len(known) < len(ids):
            notes.append(("var.left_out", {"n": len(full),
                                           "ids": ", ".join(map(str, [i for i in ids if i not in known][:10]))}))
        if label and label != NO_LABEL:
            if label not in full.label_names:
                more = " ..." if len(full.label_names) > 20 else ""
                raise refuse(t("var.no_label", lang, label=label, data=tm(s.data_source(), lang),
                               labels=", ".join(full.label_names[:20]) + more), lang)
            lab = full.label_names.index(label)
            known += [int(i) for i in full.ids[full.labels == lab][:per_label] if int(i) not in known]
        if not known:  # ids given, none in the data: say which, and what exists
            raise refuse(t("var.none_known", lang, n=len(full), ids=", ".join(map(str, ids[:10])))
                         if ids else t("var.choose", lang), lang)
        if len(known) > 40:
            raise refuse(t("var.too_many", lang, n=len(known)), lang)
        images = full.select_ids(known)
        vs = analyses.variants_for(s, pair, images, int(k), float(scale), int(seed))
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    s.last["variants"] = analyses.ShownVariants(images, vs, pair.source)
    note = analyses.data_note(s, pair)
    try:
        payload = live.variants_payload(pair.ae, pair.vae, images.images, images.ids, int(k), float(scale), int(seed), {})
    except Exception:  # noqa: BLE001 - logged; the gallery stays
        log.exception("the live variants' payload could not be made")
        payload = None

    def view(lg):
        texts = {key: t(f"live.var_{key}", lg) for key in LIVE_KEYS}
        return (*_variants_view(s, pair, images, vs, k, scale, notes, note, lg),
                json.dumps({**payload, "texts": texts}) if payload else "")

    return shown(s, VIEW, view, lang)


def _variants_view(s, pair, images, vs, k: int, scale: float, notes: list, note: str, lang: str):
    """The gallery (captions in `lang`), the message and the files of a set of variants."""
    size = pair.image_size
    sc = figures.auto_scale(size, 72)
    folder = s.new_folder()
    gallery = []
    for i in range(len(images)):
        g = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]),
                                np.concatenate([images.images[i:i + 1], vs.ae[i]])],
                               ["VAE", "AE"], [drawn("pic.source", lang)] + [f"#{j + 1}" for j in range(k)], scale=sc)
        gallery.append((png(folder, g, f"variants-{images.ids[i]}.png"),
                        t("var.caption", lang, id=images.ids[i], label=group(images.label_names[images.labels[i]], lang),
                          name=images.names[i])))
    gen_data, gen_label = vs.export_arrays()
    files = [str(p) for p in save_arrays(folder, gen_data, gen_label)]
    files.append(str(save_label_names(folder, images.label_names)))
    big = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]) for i in range(len(images))],
                             [str(i) for i in images.ids], scale=1)
    files.append(png(folder, big, "variants.png"))
    msg = t("var.done", lang, n=len(gen_data), images=len(images), k=k, scale=scale, shape=tuple(gen_data.shape))
    return gallery, "\n\n".join([msg, *(t(key, lang, **kw) for key, kw in notes), tmd(note, lang)]), files


def label_choices(label: str, request: gr.Request):
    """The label dropdown lists the labels of the data in use (OpenMoji's groups, folder names,
    numeric labels or the names given with an upload), for the pair in use's image size."""
    s, lang = session(request), lang_of(request)
    try:
        names = s.split(s.pair().image_size).all.label_names
    except (ValueError, NoModels):
        names = []
    choices = [(t("var.no_label_choice", lang), NO_LABEL), *[(group(n, lang), n) for n in names]]
    return gr.update(choices=choices, value=label if label in (NO_LABEL, *names) else NO_LABEL)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    labels = [(L("var.no_label_choice"), NO_LABEL)] + data.OPENMOJI_GROUPS
    with gr.Tab(L("tab.variants")) as tab:
        gr.Markdown(L("var.lead"), elem_classes="lead")
        with gr.Row():
            vids = gr.Textbox("1-5, 226-230, 841-845, 1471-1475", label=L("var.ids"))
            vlabel = gr.Dropdown(labels, value=NO_LABEL, label=L("var.label"))
            per_label = gr.Slider(1, 40, 4, step=1, label=L("var.per_label_label"))
        with gr.Row():
            k = gr.Slider(1, 10, 5, step=1, label=L("var.k_label"))
            scale = gr.Slider(0, 5, 1.0, step=0.1, label=L("var.scale_label"))
            vseed = gr.Number(0, label=L("var.seed"), precision=0)
        var_btn = gr.Button(L("var.btn"), variant="primary")
        var_msg = gr.Markdown()
        gr.HTML(LIVE_HTML, elem_classes="live-panel")
        var_live = gr.Textbox(visible="hidden", elem_id="aevae-live-variants-data")
        var_live.change(None, var_live, None, js=LIVE_JS, api_visibility="private", queue=False)
        var_gallery = gr.Gallery(label=L("var.gallery"), columns=3,
                                 format="png", elem_classes=["pixelated", "wide-items"], object_fit="contain",
                                 height="auto")
        var_files = gr.File(label=L("var.files"), file_count="multiple")
        var_btn.click(make_variants, [vids, vlabel, per_label, k, scale, vseed], [var_gallery, var_msg, var_files, var_live],
                      api_name="variants")
        # The data or the pair may have changed in another tab: list the labels afresh (first, so the
        # tab's first view asks for a label of the data in use).
        gr.on([ctx.in_use.change, ctx.demo.load], label_choices, vlabel, vlabel, api_visibility="private",
              queue=False)
        on_switch(ctx, label_choices, vlabel, vlabel)
        rerender(ctx, VIEW, [var_gallery, var_msg, var_files, var_live])
        tab.select(label_choices, vlabel, vlabel, api_visibility="private", queue=False).then(
            on_open("variants", make_variants, 4, views=(VIEW,)), [vids, vlabel, per_label, k, scale, vseed],
            [var_gallery, var_msg, var_files, var_live], api_visibility="private")
