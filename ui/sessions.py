"""A request's session and language: the store of every browser tab's session, reattached after a
reload, ended when the tab closes."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import gradio as gr

from aevae import i18n, server_env, session_state, session_store
from aevae.i18n import t, tm
from aevae.zoo import DEFAULT_DIR, Zoo

from .messages import plain


def upload_folder() -> Path:
    """Where the web server keeps uploads and the files it serves (GRADIO_TEMP_DIR)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


@functools.cache
def store() -> session_store.SessionStore:
    """All sessions, with the shipped models; made on first use, after AEVAE_CHECKPOINTS is read.

    AEVAE_CHECKPOINTS points the app at another folder of shipped models (the tests use a tiny one).
    The sessions' folders live in the web server's upload folder: their files are served from
    there as they are (no copy in a cache), and go when the session ends.
    """
    return session_store.SessionStore(Zoo(os.environ.get("AEVAE_CHECKPOINTS") or DEFAULT_DIR),
                                  folder=upload_folder(), uploads=upload_folder())


def client_of(request: gr.Request | None) -> str:
    """The address a request came from; behind a trusted proxy (a Space: server_env.trust_proxy),
    the one the proxy added last. Not shown: a key for the session store's limits per address."""
    host = getattr(getattr(request, "client", None), "host", "") or ""
    if not TRUST_PROXY():
        return host
    headers = getattr(request, "headers", None) or {}
    forwarded = [a.strip() for a in (headers.get("x-forwarded-for") or "")[:4096].split(",") if a.strip()]
    return host + (f" via {forwarded[-1][:64]}" if forwarded else "")  # not shown


TRUST_PROXY = functools.cache(server_env.trust_proxy)  # read once, at the first request


def session(request: gr.Request | None, page: bool = False) -> session_state.Session:
    """This browser tab's session; `page` marks that a page loaded it (see SessionStore).

    What the session has to tell its user (e.g. that its data was released to make room) is
    shown now, as a notice."""
    s = store().get(getattr(request, "session_hash", None) or "anonymous", page, client_of(request))
    notes = s.pop_notices()
    if notes:
        lang = s.lang or asked_lang(request)
        for note in notes:
            gr.Warning(plain(tm(note, lang)))
    return s


def lang_of(request: gr.Request | None) -> str:
    """The language a handler answers in: the one chosen on the page (ui/lang.py), else the
    link's ?lang=, else the browser's Accept-Language, else English."""
    chosen = getattr(session(request), "lang", None) if request is not None else None
    return chosen or asked_lang(request)


def asked_lang(request: gr.Request | None) -> str:
    """The language the request itself asks for (?lang=, else Accept-Language), without its session."""
    query = dict(getattr(request, "query_params", None) or {})
    if i18n.match(query.get("lang")):
        return i18n.match(query["lang"])
    headers = getattr(request, "headers", None) or {}
    return i18n.from_accept_language(headers.get("accept-language"))


def end_session(request: gr.Request):
    """A closed tab (or one reloading) leaves its session: one a reload can reattach to waits a
    minute for it (session_store.GRACE_S), its training going on; then it stops its training and
    frees its models and files."""
    store().release(request.session_hash)


# A tab's first-view name (ui.outputs.on_open) -> the names its results are kept under (lang.shown)
VIEWS_OF_TAB: dict[str, tuple[str, ...]] = {}


def reattach(keys, request: gr.Request):
    """The page loaded with the browser keys its browser keeps (gr.BrowserState): a reload gets
    its session back (upload, runs, settings, a training still running); a first visit, or a key
    whose session ended, gets a new key. Returns the keys to keep, this page's first. The keys
    are bearer secrets: never logged, never shown."""
    keys = keys if isinstance(keys, list) else []
    key, back = store().attach(request.session_hash, keys, client_of(request))
    if back:  # a new page: each tab shows its first view again when opened (on_open), but a tab
        s = store().get(request.session_hash)  # whose last result the page is shown again (lang.wire_reload)
        kept = vars(s).get("_views", {})
        s.opened = {k for k in s.opened if any(v in kept for v in VIEWS_OF_TAB.get(k[0], ()))}
    return [key] + [k for k in store().alive(keys) if k != key][:session_store.BROWSER_KEYS - 1]


def stop_training(request: gr.Request):
    session(request).stop.set()
    return t("status.stopping", lang_of(request))
