"""The Latent space tab: prior samples, interpolation, the code map."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from aevae import figures, sampling, workbench
from aevae.config import check_finite
from aevae.workbench import NoModels

from .common import (
    fail,
    gpu,
    need,
    on_open,
    png,
    seed_of,
    session,
)


@gpu
def prior_samples(pair_name: str, n: int, seed: int, request: gr.Request):
    """The same N(0, I) draws through the VAE's and the AE's decoder."""
    s = session(request)
    need(1, 32, n, "samples")
    seed = seed_of(seed)
    try:
        pair = workbench.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    vae, ae = workbench.prior_pair_for(s, pair, int(n), int(seed))
    grid = figures.image_grid([vae, ae], ["VAE", "AE"], scale=figures.auto_scale(pair.image_size, 80))
    note = (f"{pair.source}: {n} draws z ~ N(0, I) of shape {'x'.join(map(str, pair.vae.latent_shape))}, "
            "the same draws through both decoders. The VAE was trained to decode such draws; the AE "
            "never was, so its codes live elsewhere and its decoder makes little of them.")
    if len(pair.vae.latent_shape) > 1:
        note += (" This pair's latent is spatial: each code position describes one patch of the image and, "
                 "with a small beta, the VAE keeps its codes far from N(0, I), so random draws decode to "
                 "texture rather than emoji. A vector latent with a stronger KL weight generates"
                 + (f" (try **{workbench.GENERATIVE}**)." if s.zoo and workbench.GENERATIVE_PAIR in s.zoo.pairs()
                    else "."))
    return png(s.new_folder(), grid, "prior-samples.png"), note


@gpu
def interpolate(pair_name: str, id_a: int, id_b: int, steps: int, request: gr.Request):
    s = session(request)
    need(3, 16, steps, "steps")
    try:
        pair = workbench.pair_named(s, pair_name)
        two = s.split(pair.image_size).all.select_ids([int(id_a), int(id_b)])
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows = workbench.interpolations_for(s, pair, two, int(steps))
    grid = figures.image_grid(list(rows.values()), list(rows), scale=figures.auto_scale(pair.image_size, 72))
    note = f"From id {id_a} ({two.names[0]}) to id {id_b} ({two.names[1]}), {steps} steps, ends included."
    other = workbench.data_note(s, pair)
    return png(s.new_folder(), grid, "interpolation.png"), note + (f"\n\n**Note:** {other}" if other else "")


@gpu
def code_map(pair_name: str, kind: str, request: gr.Request):
    """PCA of the validation codes, coloured by label, and decoded thumbnails across the plane."""
    s = session(request)
    try:
        pair = workbench.pair_named(s, pair_name)
        split = s.split(pair.image_size)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    cmap, thumbs = workbench.code_map_for(s, pair, kind, split)
    s.code_map = (pair_name, kind, cmap)
    points = pd.DataFrame({"PC 1": cmap.coords[:, 0], "PC 2": cmap.coords[:, 1],
                           "label": [split.val.label_names[i] for i in split.val.labels],
                           "id": split.val.ids, "name": split.val.names})
    grid = figures.image_grid(list(thumbs), scale=1, gap=1)
    sx, sy = (float(v) for v in cmap.coords.std(0))  # numbers, not numpy scalars: sent as slider limits
    note = (f"{kind} codes of {len(points)} validation images. The two axes hold "
            f"{cmap.explained[0]:.1%} and {cmap.explained[1]:.1%} of the codes' variance. The grid decodes "
            f"points from -2 to +2 standard deviations ({sx:.2f}, {sy:.2f}) along each axis.")
    other = workbench.data_note(s, pair, "these validation images")
    note += f"\n\n**Note:** {other}" if other else ""
    return points, png(s.new_folder(), grid, "code-map.png"), note, gr.update(
        minimum=-round(3 * sx, 2), maximum=round(3 * sx, 2), value=0), gr.update(
        minimum=-round(3 * sy, 2), maximum=round(3 * sy, 2), value=0), list(dict.fromkeys(points["label"]))


def redraw_map(labels):
    """The map's legend set to these labels, which redraws the whole chart.

    Gradio's plot swaps in new data but keeps the colour scale of its first drawing: labels of
    other data (after switching data) get no colour and their points are invisible. This runs
    after the new data are in place (a separate step: in the same update the redraw can race the
    data and show the old points)."""
    return gr.update(colors_in_legend=labels) if labels else gr.update()


@gpu
def decode_point(x: float, y: float, request: gr.Request):
    s = session(request)
    cm = s.code_map
    if cm is None:
        raise gr.Error("Map the validation set first.", print_exception=False)
    pair_name, kind, cmap = cm
    try:
        x, y = check_finite(x, "PC 1"), check_finite(y, "PC 2")
        pair = workbench.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    model = pair.vae if kind == "VAE" else pair.ae
    img = sampling.to_uint8(model.decode(cmap.code_at(float(x), float(y))))
    return png(s.new_folder(), figures.upscale(img[0], figures.auto_scale(pair.image_size, 160)), "point.png")


def open_latent_space(pair_name: str, n: int, seed: int, id_a: int, id_b: int, steps: int, kind: str,
                      request: gr.Request):
    """The tab's first view: prior samples, an interpolation and the code map, all at once.

    Each part on its own: the default ids (OpenMoji's) may not exist in a student's upload, and
    the map must still be drawn."""

    def part(handler, *args, outputs: int):
        try:
            return handler(*args, request)
        except gr.Error:
            return (gr.update(),) * outputs

    return (*part(prior_samples, pair_name, n, seed, outputs=2),
            *part(interpolate, pair_name, id_a, id_b, steps, outputs=2),
            *part(code_map, pair_name, kind, outputs=6))


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab("Latent space") as tab:
        gr.Markdown("What lives in the latent space: random draws decoded, paths between two images, "
                    "and a map of the codes. Look for where the AE fails and the VAE does not.",
                    elem_classes="lead")
        generative = bool(ctx.zoo) and workbench.GENERATIVE_PAIR in ctx.zoo.pairs()
        pair_pick = gr.Dropdown(workbench.pair_choices(ctx.zoo), value=workbench.GENERATIVE if generative else workbench.IN_USE,
                                label="Models (default: a shipped pair that generates; a vector latent with a "
                                      "strong KL weight is what makes a VAE a generator)")
        with gr.Row():
            pn = gr.Slider(1, 32, 12, step=1, label="Prior samples")
            pseed = gr.Number(0, label="Seed", precision=0)
            prior_btn = gr.Button("Decode random draws", variant="primary")
        prior_img = gr.Image(label="VAE row, AE row: the same z", format="png", elem_classes="pixelated")
        prior_note = gr.Markdown()
        with gr.Row():
            ia = gr.Number(2184, label="From id", precision=0)  # grinning face
            ib = gr.Number(2229, label="To id", precision=0)  # loudly crying face
            isteps = gr.Slider(3, 16, 8, step=1, label="Steps")
            interp_btn = gr.Button("Interpolate")
        interp_img = gr.Image(label="interpolation", format="png", elem_classes="pixelated")
        interp_note = gr.Markdown()
        with gr.Row():
            map_kind = gr.Radio(["VAE", "AE"], value="VAE", label="Codes of")
            map_btn = gr.Button("Map the validation set")
        map_note = gr.Markdown()
        with gr.Row():
            map_plot = gr.ScatterPlot(x="PC 1", y="PC 2", color="label", tooltip=["id", "name", "label"],
                                      label="Validation codes (PCA)")
            map_grid = gr.Image(label="decoded across the plane", format="png", elem_classes="pixelated")
        with gr.Row():
            px = gr.Slider(-1, 1, 0, label="PC 1")
            py = gr.Slider(-1, 1, 0, label="PC 2")
            point_img = gr.Image(label="decoded point", format="png", elem_classes="pixelated", height=200)
        prior_btn.click(prior_samples, [pair_pick, pn, pseed], [prior_img, prior_note], api_name="prior_samples")
        interp_btn.click(interpolate, [pair_pick, ia, ib, isteps], [interp_img, interp_note], api_name="interpolate")
        map_labels = gr.State()
        map_out = [map_plot, map_grid, map_note, px, py, map_labels]
        map_btn.click(code_map, [pair_pick, map_kind], map_out, api_name="code_map").then(
            redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        tab.select(on_open("latent space", open_latent_space, 10), [pair_pick, pn, pseed, ia, ib, isteps, map_kind],
                   [prior_img, prior_note, interp_img, interp_note, *map_out], api_visibility="private").then(
            redraw_map, map_labels, map_plot, api_visibility="private", queue=False)
        gr.on([px.release, py.release], decode_point, [px, py], point_img, api_name="decode_point")


