"""The page-wide "Models in use" dropdown: which pair every tab uses."""

from __future__ import annotations

import gradio as gr

from aevae import workbench
from aevae.workbench import NoModels

from .common import fail, session


def picker_update(s: workbench.Session):
    """The 'Models in use' dropdown with this session's choices and its current value."""
    return gr.update(choices=s.choices(), value=s.in_use)


def use_models(value: str, request: gr.Request):
    """Make the picked pair the one every tab uses."""
    s = session(request)
    try:
        p = s.use(value)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return f"Every tab now uses **{p.source}** (latent {p.latent}, {p.image_size} px)."


def load_picker(request: gr.Request):
    return picker_update(session(request, page=True))


def build(ctx) -> gr.Dropdown:
    with gr.Row(elem_classes="in-use"):
        in_use = gr.Dropdown(workbench.pair_choices(ctx.zoo)[1:], value=workbench.SHIPPED + "default",
                             label="Models in use (every tab): a shipped pair or one of your runs", scale=3)
        in_use_msg = gr.Markdown(scale=2)
    in_use.input(use_models, in_use, in_use_msg, api_name="use_models")
    ctx.demo.load(load_picker, None, in_use, api_visibility="private")
    return in_use
