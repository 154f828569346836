"""The Train tab's data: OpenMoji or the student's upload, described (files, images, stored size,
labels, the split, what was skipped) with a strip of its first images, before any training."""

from __future__ import annotations

import gradio as gr

from aevae import data, figures, session_state, userdata
from aevae.config import MAX_SIZE, MIN_SIZE, check_whole
from aevae.i18n import t

from .lang import group, shown, skipped_file
from .limits import DEFAULT_SIZE
from .messages import md, tmd
from .outputs import png
from .sessions import lang_of, session

DATA_VIEW = "data"  # the name under which the session keeps the data's description, for a new language
OPENMOJI, UPLOAD = "openmoji", "upload"  # the Data choices' values


def _size(image_size) -> int:
    try:
        return check_whole(image_size, "image size", MIN_SIZE, MAX_SIZE)
    except ValueError:
        return DEFAULT_SIZE


def _code(text: str) -> str:
    return f"`{data.shown(text).replace('`', '')}`"  # a code span shows its text as it is


def _listed(items: list[str], lang: str, most: int = 12) -> str:
    return ", ".join(items[:most]) + (t("data.more", lang, n=f"{len(items) - most:,}") if len(items) > most else "")


def data_view(s: session_state.Session, size: int, lang: str):
    """What the tabs train on, in words, and a strip of its first images per label (again in a
    language chosen later)."""
    return shown(s, DATA_VIEW, lambda lg: _data_view(s, size, lg), lang)


def _data_view(s: session_state.Session, size: int, lang: str):
    split = s.split(size)
    whole = split.all
    labels = [f"{_code(group(name, lang))} ({n:,})" for name, n in userdata.label_counts(whole)]
    if s.uses_upload:
        stored = userdata.stored_size(s.upload.data)
        if stored and stored != (size, size):
            shape = t("data.stored", lang, w=stored[0], h=stored[1], size=size) + (
                t("data.set_size", lang, w=stored[0]) if stored[0] == stored[1] and MIN_SIZE <= stored[0] <= MAX_SIZE
                else "")
        else:
            shape = t("data.size" if stored else "data.resized", lang, size=size)
        head = t("data.yours", lang, files=_listed([_code(f) for f in s.upload.files], lang), n=f"{len(whole):,}",
                 shape=shape)
    else:
        head = t("data.openmoji", lang, n=f"{len(whole):,}", size=size)
    text = t("data.split" if len(labels) != 1 else "data.split_one", lang, head=head, train=f"{len(split.train):,}",
             val=f"{len(split.val):,}", k=len(labels), labels=_listed(labels, lang))
    if whole.names_read_as:
        text += "  \n" + t(f"data.names_{whole.names_read_as}", lang)
    if whole.skipped:
        text += "  \n" + t("data.skipped", lang, n=len(whole.skipped),
                           files="; ".join(md(skipped_file(x, lang)) for x in whole.skipped[:5]))
    rows = userdata.examples(whole)
    strip = figures.image_grid([r for _, r in rows], [n for n, _ in rows] if rows[0][0] else None,
                               scale=figures.auto_scale(size, 48))
    return text, gr.update(value=png(s.new_folder(), strip, "data.png"), visible=True)


def upload_data(files, image_size, request: gr.Request):
    """Files dropped on "Your data": checked, kept and used (Data switches to upload); a bad upload
    changes nothing and says why. Removing the files goes back to OpenMoji."""
    s, lang = session(request), lang_of(request)
    size = _size(image_size)
    if not files:
        s.clear_upload()
        return OPENMOJI, *shown(s, DATA_VIEW, lambda lg: ("", gr.update(value=None, visible=False)), lang)
    try:
        s.set_upload(files, size)
    except ValueError as e:
        why = str(e)
        return (UPLOAD if s.uses_upload else OPENMOJI, *shown(s, DATA_VIEW, lambda lg: (
            t("data.not_used", lg, error=tmd(why, lg), data=tmd(s.data_source(), lg)), gr.update()), lang))
    return UPLOAD, *data_view(s, size, lang)


def show_data(image_size, request: gr.Request):
    """A reattached page: the session's upload, described again (the file box itself starts
    empty: the files are kept by the session, and Train uses them)."""
    s, lang = session(request), lang_of(request)
    if s.upload is None:
        return gr.update(), gr.update(), gr.update()
    size = s.training.settings.image_size if s.training is not None else _size(image_size)
    return UPLOAD if s.uses_upload else OPENMOJI, *data_view(s, size, lang)


def choose_data(dataset, files, image_size, request: gr.Request):
    """Data switched by hand: OpenMoji, or the upload (kept, or in the file box)."""
    s, lang = session(request), lang_of(request)
    if dataset == "upload" and s.upload is None:
        if files:
            return upload_data(files, image_size, request)
        return OPENMOJI, *shown(s, DATA_VIEW, lambda lg: (t("data.upload_first", lg), gr.update(visible=False)), lang)
    s.use_data(dataset)
    return dataset, *data_view(s, _size(image_size), lang)
