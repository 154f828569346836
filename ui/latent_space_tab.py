"""The Latent space tab: prior samples, interpolation, the code map."""

from __future__ import annotations

import json
import logging

import gradio as gr
import pandas as pd

from aevae import analyses, data, figures, live, sampling
from aevae.config import check_finite
from aevae.i18n import t
from aevae.session_state import NoModels

from .lang import L, drawn, group, on_switch, plot, rerender, shown
from .messages import fail, md, need, refuse, seed_of, tmd
from .outputs import on_open, png
from .page import gpu
from .picker import choices
from .sessions import lang_of, session

log = logging.getLogger("aevae.app")

LIVE_JS = "(payload) => { if (window.aevaeLive) window.aevaeLive.load(payload); }"
INTERP_KEYS = ("title", "t", "ends", "failed")
INTERP_HTML = """<div id="aevae-live-interp" class="aevae-live">
<p class="live-status" data-role="status"></p>
<div class="live-sliders"><label><span data-role="t-label"></span>
<input type="range" data-role="t" min="0" max="1" step="0.005" value="0.5"><output data-role="t-value"></output></label></div>
<canvas data-role="strip" width="0" height="0"></canvas><p class="live-note" data-role="ends"></p>
</div>"""
INTERP_JS = "(payload) => { if (window.aevaeLive) window.aevaeLive.loadInterpolation(payload); }"
# The name under which the session keeps this tab's last result, to show it again in a new language
PRIOR_VIEW = "prior"
INTERP_VIEW = "interpolation"
MAP_VIEW = "map"
LIVE_KEYS = ("title", "note", "loading", "ready", "failed", "map_ae", "map_vae", "pic_ae", "pic_vae", "pc", "dim",
             "dims", "centre", "prior_btn", "prior_note")
# The panel the page fills (ui/static/js/live.js); every word in it comes with the pair's payload.
LIVE_HTML = """<div id="aevae-live" class="aevae-live">
<h3 data-role="title"></h3><p class="live-note" data-role="note"></p><p class="live-status" data-role="status"></p>
<div class="live-row">
<figure><canvas data-role="map-ae" width="260" height="260"></canvas><figcaption data-role="cap-map-ae"></figcaption></figure>
<figure><canvas data-role="pic-ae" width="192" height="192"></canvas><figcaption data-role="cap-pic-ae"></figcaption></figure>
<figure><canvas data-role="pic-vae" width="192" height="192"></canvas><figcaption data-role="cap-pic-vae"></figcaption></figure>
<figure><canvas data-role="map-vae" width="260" height="260"></canvas><figcaption data-role="cap-map-vae"></figcaption></figure>
</div>
<div class="live-legend" data-role="legend"></div>
<div class="live-sliders" data-role="sliders"></div>
<details data-role="dims-box" hidden><summary data-role="dims-title"></summary><div class="live-sliders" data-role="dims"></div></details>
<p><button type="button" data-role="centre"></button> <button type="button" data-role="prior"></button></p>
<canvas data-role="prior-grid" width="768" height="0"></canvas><p class="live-note" data-role="prior-note"></p>
</div>"""


@gpu
def prior_samples(pair_name: str, n: int, seed: int, request: gr.Request):
    """The same N(0, I) draws through the VAE's and the AE's decoder."""
    s, lang = session(request), lang_of(request)
    need(1, 32, n, "what.samples", lang)
    seed = seed_of(seed, "what.seed", lang)
    try:
        pair = analyses.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    vae, ae = analyses.prior_pair_for(s, pair, int(n), int(seed))
    grid = png(s.new_folder(), figures.image_grid([vae, ae], ["VAE", "AE"], scale=figures.auto_scale(pair.image_size, 80)),
               "prior-samples.png")

    def view(lang):
        note = t("space.prior_note", lang, source=tmd(pair.source, lang), n=n,
                 shape="x".join(map(str, pair.vae.latent_shape)))
        if len(pair.vae.latent_shape) > 1:
            generative = bool(s.zoo) and analyses.GENERATIVE_PAIR in s.zoo.pairs()
            label = {v: lab for lab, v in analyses.pair_choices(s.zoo)}.get(analyses.GENERATIVE, "")
            note += " " + t("space.spatial_note", lang) + (t("space.try_generative", lang, pair=tmd(label, lang))
                                                           if generative else t("space.period", lang))
        return grid, note

    return shown(s, PRIOR_VIEW, view, lang)


@gpu
def interpolate(pair_name: str, id_a: int, id_b: int, steps: int, request: gr.Request):
    s, lang = session(request), lang_of(request)
    need(3, 16, steps, "what.steps", lang)
    need(1, data.limits.MAX_IMAGES, id_a, "what.image_id", lang)  # a cleared number box sends None
    need(1, data.limits.MAX_IMAGES, id_b, "what.image_id", lang)
    try:
        pair = analyses.pair_named(s, pair_name)
        two = s.split(pair.image_size).all.select_ids([int(id_a), int(id_b)])
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    rows = analyses.interpolations_for(s, pair, two, int(steps))
    other = analyses.data_note(s, pair)
    try:
        payload = live.interpolation_payload(pair.ae, pair.vae, two.images[0], two.images[1], two.ids, {})
    except Exception:  # noqa: BLE001 - logged; the server's strip stays
        log.exception("the live interpolation's payload could not be made")
        payload = None

    def view(lang):
        grid = figures.image_grid(list(rows.values()), [drawn(f"pic.{k}", lang) for k in rows],
                                  scale=figures.auto_scale(pair.image_size, 72))
        note = t("space.interp_note", lang, a=id_a, name_a=md(two.names[0]), b=id_b, name_b=md(two.names[1]), steps=steps)
        texts = {k: t(f"live.interp_{k}", lang) for k in INTERP_KEYS}
        return png(s.new_folder(), grid, "interpolation.png"), note + (
            "\n\n" + t("common.data_note", lang, note=tmd(other, lang)) if other else ""), (
            json.dumps({**payload, "texts": texts}) if payload else "")

    return shown(s, INTERP_VIEW, view, lang)


@gpu
def code_map(pair_name: str, kind: str, request: gr.Request):
    """PCA of the validation codes, coloured by label, and decoded thumbnails across the plane."""
    s, lang = session(request), lang_of(request)
    try:
        pair = analyses.pair_named(s, pair_name)
        split = s.split(pair.image_size)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    cmap, thumbs = analyses.code_map_for(s, pair, kind, split)
    s.code_map = analyses.ShownCodeMap(pair_name, kind, cmap)
    grid = png(s.new_folder(), figures.image_grid(list(thumbs), scale=1, gap=1), "code-map.png")
    sx, sy = (float(v) for v in cmap.coords.std(0))  # numbers, not numpy scalars: sent as slider limits
    # One or two validation images, or identical ones, spread along fewer than two axes: a slider
    # from 0 to 0 is refused by the page, so a flat axis (0 below) gets the other's range (or 1).
    flat = max(1e-5, 1e-4 * max(sx, sy))
    sx, sy = (v if v > flat else 0.0 for v in (sx, sy))
    rx, ry = (v or max(sx, sy) or 1 / 3 for v in (sx, sy))
    sliders = (gr.update(minimum=-round(3 * rx, 2), maximum=round(3 * rx, 2), value=0),
               gr.update(minimum=-round(3 * ry, 2), maximum=round(3 * ry, 2), value=0))
    # drawn again in a new language, the sliders are left where the student put them
    out = shown(s, MAP_VIEW, lambda lg: _map_view(s, pair, kind, split, cmap, grid, (sx, sy), lg,
                                               (gr.update(), gr.update())), lang)
    return out[:3] + sliders + out[5:]


def _map_view(s, pair, kind, split, cmap, grid, spread, lang, sliders):
    """The map's points (labels in `lang`), grid, note, the sliders and the legend's labels."""
    sx, sy = spread
    points = pd.DataFrame({"PC 1": cmap.coords[:, 0], "PC 2": cmap.coords[:, 1],
                           "label": [group(split.val.label_names[i], lang) for i in split.val.labels],
                           "id": split.val.ids, "name": split.val.names})
    if min(sx, sy) <= 0:  # fewer than two axes spread (see code_map)
        note = t("space.map_flat", lang, kind=kind, n=len(points), k=int(sx > 0) + int(sy > 0),
                 r=f"{3 * (max(sx, sy) or 1 / 3):.2f}")
    else:
        note = t("space.map_note", lang, kind=kind, n=len(points), a=f"{cmap.explained[0]:.1%}",
                 b=f"{cmap.explained[1]:.1%}", sx=f"{sx:.2f}", sy=f"{sy:.2f}")
    other = analyses.data_note(s, pair, "these validation images")
    note += "\n\n" + t("common.data_note", lang, note=tmd(other, lang)) if other else ""
    labels = list(dict.fromkeys(points["label"]))
    points = plot(points, lang, "PC 1", "PC 2", "label", tooltip=["id", "name", "label"])
    return (points, grid, note, *sliders, labels, _live_payload(s, pair, split, lang))


def _live_payload(s, pair, split, lang) -> str:
    """The pair's models and both code maps for the page to decode itself ('' if they cannot be
    exported: the page then keeps the server's sliders)."""
    try:
        maps = {kind: analyses.code_map_for(s, pair, kind, split)[0] for kind in ("AE", "VAE")}
        texts = {k: t(f"live.{k}", lang) for k in LIVE_KEYS}
        return json.dumps(live.payload(pair.ae, pair.vae, maps, split.val.labels,
                                       [group(n, lang) for n in split.val.label_names], pair.source, texts))
    except Exception:  # noqa: BLE001 - logged; the server path stays
        log.exception("the live panel's payload could not be made")
        return ""


def redraw_map(labels):
    """The map's legend set to these labels, which redraws the whole chart.

    Gradio's plot swaps in new data but keeps the colour scale of its first drawing: labels of
    other data (after switching data) get no colour and their points are invisible. This runs
    after the new data are in place (a separate step: in the same update the redraw can race the
    data and show the old points)."""
    return gr.update(colors_in_legend=labels) if labels else gr.update()


@gpu
def decode_point(x: float, y: float, request: gr.Request):
    s, lang = session(request), lang_of(request)
    shown = s.code_map
    if shown is None:
        raise refuse(t("space.map_first", lang), lang)
    try:
        x, y = check_finite(x, "PC 1"), check_finite(y, "PC 2")
        pair = analyses.pair_named(s, shown.pair)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    model = pair.vae if shown.kind == "VAE" else pair.ae
    img = sampling.to_uint8(model.decode(shown.map.code_at(float(x), float(y))))
    return png(s.new_folder(), figures.upscale(img[0], figures.auto_scale(pair.image_size, 160)), "point.png")


def open_latent_space(pair_name: str, n: int, seed: int, id_a: int, id_b: int, steps: int, kind: str,
                      request: gr.Request):
    """The tab's first view: prior samples, an interpolation and the code map, all at once. A
    student who trains their own pair sees it here first (not a shipped one)."""
    s = session(request)
    # once per pair a student trains: a first view again in another language keeps their choice
    if s.in_use.startswith("run:") and ("latent space follows", s.in_use) not in s.opened:
        s.opened.add(("latent space follows", s.in_use))
        pair_name = analyses.IN_USE
    return gr.update(value=pair_name), *show_pair(pair_name, n, seed, id_a, id_b, steps, kind, request)


def show_pair(pair_name: str, n: int, seed: int, id_a: int, id_b: int, steps: int, kind: str,
              request: gr.Request):
    """All three views for the chosen models. Each part on its own, so one that cannot be made
    leaves the others drawn; ids that the data in use lacks (OpenMoji's defaults in a student's
    upload) become two of its own images, from two labels where it has them."""

    def part(handler, *args, outputs: int):
        try:
            return handler(*args, request)
        except gr.Error:
            return (gr.update(),) * outputs

    ids = [id_a, id_b]
    try:
        s = session(request)
        images = s.split(analyses.pair_named(s, pair_name).image_size).all
        if not set(ids) <= set(int(i) for i in images.ids) and len(images) > 1:
            other = next((i for i in range(len(images)) if images.labels[i] != images.labels[0]), 1)
            ids = [int(images.ids[0]), int(images.ids[other])]
    except (ValueError, NoModels, TypeError):
        pass  # the views below say what is wrong
    return (*ids, *part(prior_samples, pair_name, n, seed, outputs=2),
            *part(interpolate, pair_name, *ids, steps, outputs=3),
            *part(code_map, pair_name, kind, outputs=7))


def load_pairs(pair_name: str, request: gr.Request):
    """The Models dropdown's labels in the page's language (its value kept)."""
    return gr.update(choices=choices(analyses.pair_choices(session(request).zoo), lang_of(request)), value=pair_name)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab(L("tab.space")) as tab:
        gr.Markdown(L("space.lead"), elem_classes="lead")
        generative = bool(ctx.zoo) and analyses.GENERATIVE_PAIR in ctx.zoo.pairs()
        pair_pick = gr.Dropdown(analyses.pair_choices(ctx.zoo), value=analyses.GENERATIVE if generative else analyses.IN_USE,
                                label=L("space.models"))
        with gr.Row():
            pn = gr.Slider(1, 32, 12, step=1, label=L("space.prior_n"))
            pseed = gr.Number(0, label=L("common.seed"), precision=0)
            prior_btn = gr.Button(L("space.prior_btn"), variant="primary")
        prior_img = gr.Image(label=L("space.prior_img"), format="png", elem_classes="pixelated")
        prior_note = gr.Markdown()
        with gr.Row():
            ia = gr.Number(2184, label=L("space.from"), precision=0)  # grinning face
            ib = gr.Number(2229, label=L("space.to"), precision=0)  # loudly crying face
            isteps = gr.Slider(3, 16, 8, step=1, label=L("space.steps"))
            interp_btn = gr.Button(L("space.interp_btn"))
        interp_img = gr.Image(label=L("space.interp_img"), format="png", elem_classes="pixelated")
        interp_note = gr.Markdown()
        gr.HTML(INTERP_HTML, elem_classes="live-panel")  # the scrubber between the two (ui/static/js/live.js)
        interp_live = gr.Textbox(visible="hidden", elem_id="aevae-live-interp-data")
        interp_live.change(None, interp_live, None, js=INTERP_JS, api_visibility="private", queue=False)
        with gr.Row():
            map_kind = gr.Radio(["VAE", "AE"], value="VAE", label=L("space.codes_of"))
            map_btn = gr.Button(L("space.map_btn"))
        map_note = gr.Markdown()
        gr.HTML(LIVE_HTML, elem_classes="live-panel")  # filled by the page's script (ui/static/js/live.js)
        live_data = gr.Textbox(visible="hidden", elem_id="aevae-live-data")
        # The map across the page: beside the grid its legend (OpenMoji's ten groups in one row) was
        # clipped at 1280 px. The grid and the point decoder share the row below.
        map_plot = gr.ScatterPlot(x="PC 1", y="PC 2", color="label", tooltip=["id", "name", "label"],
                                  label=L("space.map_plot"))
        with gr.Row():
            map_grid = gr.Image(label=L("space.map_grid"), format="png", elem_classes="pixelated")
            with gr.Column():
                px = gr.Slider(-1, 1, 0, label=L("col.PC 1"))
                py = gr.Slider(-1, 1, 0, label=L("col.PC 2"))
                point_img = gr.Image(label=L("space.point"), format="png", elem_classes="pixelated", height=200)
        prior_btn.click(prior_samples, [pair_pick, pn, pseed], [prior_img, prior_note], api_name="prior_samples")
        interp_btn.click(interpolate, [pair_pick, ia, ib, isteps], [interp_img, interp_note, interp_live],
                         api_name="interpolate")
        live_data.change(None, live_data, None, js=LIVE_JS, api_visibility="private", queue=False)
        map_labels = gr.State()
        map_out = [map_plot, map_grid, map_note, px, py, map_labels, live_data]
        map_btn.click(code_map, [pair_pick, map_kind], map_out, api_name="code_map").then(
            redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        views = [pair_pick, pn, pseed, ia, ib, isteps, map_kind]
        first = [ia, ib, prior_img, prior_note, interp_img, interp_note, interp_live, *map_out]
        tab.select(on_open("latent space", open_latent_space, 15, views=(PRIOR_VIEW, INTERP_VIEW, MAP_VIEW)), views, [pair_pick, *first],
                   api_visibility="private").then(redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        pair_pick.input(show_pair, views, first, api_visibility="private").then(  # new models: all three views anew
            redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        map_kind.input(code_map, [pair_pick, map_kind], map_out, api_visibility="private").then(
            redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        gr.on([px.release, py.release], decode_point, [px, py], point_img, api_name="decode_point")
        ctx.demo.load(load_pairs, pair_pick, pair_pick, api_visibility="private")
        on_switch(ctx, load_pairs, pair_pick, pair_pick)
        rerender(ctx, PRIOR_VIEW, [prior_img, prior_note])
        rerender(ctx, INTERP_VIEW, [interp_img, interp_note, interp_live])
        rerender(ctx, MAP_VIEW, map_out, then=(redraw_map, map_labels, map_plot))
