"""What the page says back: refusals in the page's language, text bounded and escaped for where it
goes (a toast, a Markdown note), numbers and ids checked before any work."""

from __future__ import annotations

import gradio as gr

from aevae import data, i18n
from aevae.config import check_seed
from aevae.i18n import t, tm


def refuse(message: str, lang: str) -> gr.Error:
    """The app's refusal: `message` in a toast titled in the page's language, and one log line
    (no traceback: a traceback in the log means a bug). A toast renders HTML: the message (which
    may hold what someone typed or named) is escaped there and bounded; `.plain` keeps it as text."""
    message = clip(message)
    e = gr.Error(tagless(message), title=t("common.error_title", lang), print_exception=False)
    e.plain = message
    return e


# What the page shows of a message or note at most: a real one is far shorter; a longer one
# carries someone's text (a pasted 5 MB id list), which is cut, never echoed whole.
MAX_NOTE = 2000
LOG_CHARS = 300  # a refusal's reason in the log


def clip(text, most: int = MAX_NOTE) -> str:
    text = str(text)
    return text if len(text) <= most else text[:most - 1] + "…"


def md(text, most: int = MAX_NOTE) -> str:
    """Text (a package message, a name) put into a Markdown note: bounded, and shown as written,
    never as HTML, a link or an image (i18n.md)."""
    return i18n.md(clip(text, most))


def tmd(text: str, lang: str) -> str:
    """A package message in `lang`, for a Markdown note (see md)."""
    return md(tm(text, lang))


def plain(text, most: int = MAX_NOTE) -> str:
    """Text for a toast (gr.Warning / gr.Info render HTML): bounded, and no tag in it."""
    return tagless(clip(text, most))


def tagless(text: str) -> str:
    """Text put into HTML: < and > escaped, so no tag can start (an & only makes a character)."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def fail(e: Exception, lang: str) -> gr.Error:
    """A package's error as the user's message, in their language (a gr.Error, which is a
    ValueError too, is the app's own message already)."""
    if isinstance(e, gr.Error):
        return e
    return refuse(tm(str(e), lang), lang)


def need(lo, hi, value, what: str, lang: str):
    """Out-of-range values (e.g. from the API) are refused, never clipped silently; `what` is a key."""
    number = isinstance(value, int | float) and not isinstance(value, bool)  # an API may send anything
    if not number or not lo <= value <= hi:
        raise refuse(t("error.range", lang, what=t(what, lang), lo=lo, hi=hi, value=value_shown(value, lang)), lang)
    return value


def flag(value, what: str, lang: str) -> bool:
    """A checkbox's value: True or False (an API may send a list, a dict, a string)."""
    if not isinstance(value, bool):
        raise refuse(t("error.not_a_flag", lang, what=t(what, lang), value=value_shown(value, lang)), lang)
    return value


def value_shown(value, lang: str = i18n.DEFAULT) -> str:
    """A value someone sent, for a message: short (a 5 MB string, a 5,000-digit number)."""
    if isinstance(value, int) and value.bit_length() > 64:  # str() of one fails past 4,300 digits
        return t("error.huge_number", lang, digits=f"{int(value.bit_length() * 0.30103) + 1:,}")
    return clip(repr(value) if isinstance(value, str) else str(value), 40)


def seed_of(value, what: str, lang: str) -> int:
    """A seed in 0..2**32-1, or a clear refusal (a huge one would fail deep in torch); `what` is a key."""
    try:
        return check_seed(value, t(what, lang))
    except ValueError as e:
        raise fail(e, lang) from None


def numbers(text: str, kind, lo, hi, most: int, what: str, example: str, lang: str, least: int = 1) -> list:
    """'5, 10, 15' -> [5, 10, 15] within bounds (`least` to `most` of them), or a clear error; `what` is a key."""
    try:
        vals = [kind(v) for v in (text or "").replace(" ", "").split(",") if v]
    except ValueError:
        vals = []
    if not least <= len(vals) <= most or any(not lo <= v <= hi for v in vals):
        raise refuse(t("error.numbers", lang, least=least, most=most, what=t(what, lang), lo=lo, hi=hi,
                       example=example), lang)
    return vals


def parse_ids_or_none(text: str | None) -> list[int] | None:
    text = (text or "").strip()
    return data.parse_ids(text) if text else None
