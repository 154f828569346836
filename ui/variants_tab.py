"""The Noisy VAE variants tab: noise in latent space, VAE vs AE."""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from aevae import data, figures, workbench
from aevae.sampling import save_arrays, save_label_names
from aevae.workbench import NoModels

from .common import (
    fail,
    gpu,
    need,
    on_open,
    parse_ids_or_none,
    png,
    seed_of,
    session,
)

NO_LABEL = "(none)"


@gpu
def make_variants(ids_text: str, label: str, per_label: int, k: int, scale: float, seed: int,
                  request: gr.Request):
    """Each source with k VAE variants (its own sigma x scale) and the AE with the same noise draws."""
    s = session(request)
    need(1, 10, k, "variants per image")
    need(0, 5, scale, "noise scale")
    need(1, 40, per_label, "images per label")
    seed = seed_of(seed, "noise seed")
    notes = []
    try:
        pair = s.pair()
        full = s.split(pair.image_size).all
        ids = parse_ids_or_none(ids_text) or []
        known = [i for i in ids if 1 <= i <= len(full)]
        if len(known) < len(ids):
            notes.append(f"ids beyond this dataset's {len(full)} images were left out: "
                         f"{', '.join(map(str, [i for i in ids if i not in known][:10]))}")
        if label and label != NO_LABEL:
            if label not in full.label_names:
                raise ValueError(f"no label {label!r} in the data in use ({s.data_source()}); its labels: "
                                 + ", ".join(full.label_names[:20]) + (" ..." if len(full.label_names) > 20 else ""))
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
    files.append(str(save_label_names(folder, images.label_names)))
    big = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]) for i in range(len(images))],
                             [str(i) for i in images.ids], scale=1)

    Image.fromarray(big).save(folder / "variants.png")
    files.append(str(folder / "variants.png"))
    msg = (f"{len(gen_data)} VAE variants of {len(images)} images ({k} each, noise scale {scale}); "
           f"`gen_data.npy` is {tuple(gen_data.shape)} uint8, `gen_label.npy` follows each source's label "
           f"and line k of `gen_label_names.txt` names label k.")
    return gallery, "\n\n".join([msg, *notes, workbench.data_note(s, pair)]), files


def label_choices(label: str, request: gr.Request):
    """The label dropdown lists the labels of the data in use (OpenMoji's groups, folder names,
    numeric labels or the names given with an upload), for the pair in use's image size."""
    s = session(request)
    try:
        names = s.split(s.pair().image_size).all.label_names
    except (ValueError, NoModels):
        names = []
    choices = [NO_LABEL, *names]
    return gr.update(choices=choices, value=label if label in choices else NO_LABEL)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    labels = [NO_LABEL] + data.OPENMOJI_GROUPS
    with gr.Tab("Noisy VAE variants") as tab:
        gr.Markdown("Each source image is encoded, Gaussian noise is added in latent space and the "
                    "result decoded. The VAE samples around its mean with its own sigma; the AE gets "
                    "the very same noise draws. The VAE's variants stay plausible; the AE's drift.",
                    elem_classes="lead")
        with gr.Row():
            vids = gr.Textbox("1-5, 226-230, 841-845, 1471-1475", label="Ids (report A's list by default)")
            vlabel = gr.Dropdown(labels, value=NO_LABEL, label="…and/or images of a label (of the data in use)")
            per_label = gr.Slider(1, 40, 4, step=1, label="Images per label")
        with gr.Row():
            k = gr.Slider(1, 10, 5, step=1, label="Variants per image")
            scale = gr.Slider(0, 5, 1.0, step=0.1, label="Noise scale")
            vseed = gr.Number(0, label="Noise seed", precision=0)
        var_btn = gr.Button("Draw variants", variant="primary")
        var_msg = gr.Markdown()
        var_gallery = gr.Gallery(label="source | variants (VAE row, AE row with the same noise)", columns=3,
                                 format="png", elem_classes=["pixelated", "wide-items"], object_fit="contain",
                                 height="auto")
        var_files = gr.File(label="gen_data.npy, gen_label.npy, gen_label_names.txt, grid PNG",
                            file_count="multiple")
        var_btn.click(make_variants, [vids, vlabel, per_label, k, scale, vseed], [var_gallery, var_msg, var_files],
                      api_name="variants")
        # The data or the pair may have changed in another tab: list the labels afresh (first, so the
        # tab's first view asks for a label of the data in use).
        gr.on([ctx.in_use.change, ctx.demo.load], label_choices, vlabel, vlabel, api_visibility="private",
              queue=False)
        tab.select(label_choices, vlabel, vlabel, api_visibility="private", queue=False).then(
            on_open("variants", make_variants, 3), [vids, vlabel, per_label, k, scale, vseed],
            [var_gallery, var_msg, var_files], api_visibility="private")


