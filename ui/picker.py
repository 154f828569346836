"""The page-wide "Models in use" dropdown: which pair every tab uses."""

from __future__ import annotations

import gradio as gr

from aevae import analyses, runs, session_state
from aevae.i18n import t, tm
from aevae.session_state import NoModels

from .lang import L, on_switch
from .messages import fail, refuse, tmd, value_shown
from .sessions import lang_of, session


def choices(pairs: list[tuple[str, str]], lang: str) -> list[tuple[str, str]]:
    """(label, value) choices with their labels in `lang`."""
    return [(tm(label, lang), value) for label, value in pairs]


def picker_update(s: session_state.Session, lang: str):
    """The 'Models in use' dropdown with this session's choices and its current value."""
    return gr.update(choices=choices(s.choices(), lang), value=s.in_use)


NOTE_SHOWN = ("picker", "note shown")  # in Session.opened: the note beside the dropdown says something


def use_models(value: str, request: gr.Request):
    """Make the picked pair the one every tab uses."""
    s, lang = session(request), lang_of(request)
    if not isinstance(value, str):  # a script's null or list
        raise refuse(t("error.pick_models", lang, value=value_shown(value, lang)), lang)
    try:
        p = s.use(value)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    s.opened.add(NOTE_SHOWN)
    return t("picker.now_using", lang, source=tmd(p.source, lang), latent=p.latent, size=p.image_size)


def now_using(request: gr.Request):
    """The note beside the dropdown, again: for the pair in use now (a training may have made its
    pair the one in use) and in the page's language; nothing until the student picked once."""
    s, lang = session(request), lang_of(request)
    if NOTE_SHOWN not in s.opened:
        return gr.update()
    try:
        p = s.pair()
    except NoModels:
        return gr.update()
    return t("picker.now_using", lang, source=tmd(p.source, lang), latent=p.latent, size=p.image_size)


def load_picker(request: gr.Request):
    return picker_update(session(request, page=True), lang_of(request))


def build(ctx) -> gr.Dropdown:
    with gr.Row(elem_classes="in-use"):
        in_use = gr.Dropdown(analyses.pair_choices(ctx.zoo)[1:], value=runs.SHIPPED + "default",
                             label=L("picker.label"), scale=3)
        in_use_msg = gr.Markdown(scale=2)
    in_use.input(use_models, in_use, in_use_msg, api_name="use_models")
    ctx.demo.load(load_picker, None, in_use, api_visibility="private")
    ctx.attached.then(load_picker, None, in_use, api_visibility="private")  # a reload: the session's runs
    on_switch(ctx, load_picker, None, in_use)
    in_use.change(now_using, None, in_use_msg, api_visibility="private", queue=False)
    on_switch(ctx, now_using, None, in_use_msg)
    return in_use
