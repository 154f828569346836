"""aevae's Gradio app: widgets wired to aevae functions; no model, training or metric logic here.

    python app.py [--host 127.0.0.1] [--port 7860]   (or GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from types import SimpleNamespace

import gradio as gr
from starlette.middleware import Middleware

from aevae import analyses, data, i18n, resources, server_env, worker
from aevae.i18n import t
from aevae.training_jobs import warm_default_training
from ui import (
    beta_tab,
    fair_queue,
    lang,
    latent_sizes_tab,
    latent_space_tab,
    models_tab,
    picker,
    reconstructions_tab,
    report_tab,
    runs_tab,
    train_tab,
    variants_tab,
)
from ui.file_sweep import sweep_files
from ui.lang import I18N, L
from ui.limits import MAX_FILE_SIZE, TRAIN_WATCHERS
from ui.page import CSS, Page, UnknownStreams
from ui.sessions import end_session, reattach, store, upload_folder
from ui.web_files import WebFiles

NEVER = 10**9  # seconds
HEAD = ('<script src="aevae-web/js/live.js" defer></script>'  # the models in the page (ui/static/js)
        '<script src="aevae-web/js/live_more.js" defer></script>')
CHEAP_CONCURRENCY = 16
TABS = [train_tab, reconstructions_tab, variants_tab, latent_sizes_tab, latent_space_tab, beta_tab, runs_tab,
        models_tab, report_tab]


def build_demo() -> gr.Blocks:
    """The page: a header with the language switch, the page-wide model picker, then each tab from
    its own module (ui/*_tab.py)."""
    zoo = store().zoo
    # Gradio's own scheduled sweep is never let run (a frequency of ~30 years): it iterates its file
    # sets while requests add to them, dies on "Set changed size during iteration" and then never
    # deletes again. sweep_files below does its work; Gradio's clean-up at shutdown is kept.
    with Page(title=t("app.title"), delete_cache=(NEVER, server_env.cache_sweep()[1])) as demo:
        ctx = SimpleNamespace(demo=demo, zoo=zoo, in_use=None, switch=None, attached=None)
        # The browser keeps its sessions' keys (encrypted in localStorage): a reload reattaches
        # to its session, which outlives its page by a minute (ui/sessions.py reattach).
        keys = gr.BrowserState([], storage_key="aevae-sessions")
        ctx.attached = demo.load(reattach, keys, keys, api_visibility="private", queue=False)
        with gr.Row(equal_height=True):
            gr.Markdown(L("app.header" if zoo else "app.header_no_models"))
            lang.build(ctx)
        ctx.in_use = picker.build(ctx)
        for tab in TABS:
            tab.build(ctx)
        lang.wire_switch(ctx)
        gr.Markdown("<small>" + L("app.emoji") + " " + data.OPENMOJI_CREDIT + "</small>")
        demo.unload(end_session)
    return demo


FIRST_VIEWS = threading.Event()  # set when warm_first_views has ended (the tests wait on it)


def stop_warming(stop: threading.Event, threads: list[threading.Thread], wait_s: float = 60.0) -> None:
    """At exit, let the start-up work's threads end before the interpreter does: a process that
    ended while one was inside torch aborted ("terminate called without an active exception",
    exit code 134) after everything else had finished, e.g. a short test run."""
    stop.set()
    deadline = time.monotonic() + wait_s
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))


def first_view_handlers(demo: gr.Blocks) -> list:
    """The tabs' first-view events, the costly ones first (a page opened as the app answers asks
    for them within a second or two), then in the page's order."""
    def marks(fn) -> dict:  # what ui.outputs.on_open set on the handler (None: a JS-only event)
        return getattr(fn.fn, "__dict__", None) or {}  # not shown

    opens = [fn for fn in demo.fns.values() if marks(fn).get("first_view")]
    return sorted(opens, key=lambda fn: not marks(fn).get("costly"))


def warm_first_views(demo: gr.Blocks, stop: threading.Event | None = None) -> None:
    """What depends only on shipped files, computed at start in the background so the first
    visitor gets it from memory too: every tab's first view (the on_open handlers, with the
    page's default inputs, in each language), then every validation image through the default
    pair (any random draw of Reconstructions). Requests go first: this thread runs at a lower
    priority and its model work takes compute slots like any request's. `stop`: the server closes
    (its files go): stop at the next step."""
    stop = stop or threading.Event()
    log = logging.getLogger("aevae.app")
    with contextlib.suppress(OSError, AttributeError):  # Linux: the priority of this thread only
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    opens = first_view_handlers(demo)
    t0 = time.monotonic()
    try:
        if not store().zoo:
            return
        for lang in i18n.languages():
            key = f"aevae-warm-{lang}"
            request = gr.Request(session_hash=key, query_params={"lang": lang}, headers={})
            try:
                for fn in opens:
                    if stop.is_set():
                        return
                    fn.fn(*[getattr(c, "value", None) for c in fn.inputs], request=request)
            finally:
                store().drop(key)
        try:
            images = analyses.warm_validation(store().get("aevae-warm"), should_stop=stop.is_set)
        finally:
            store().drop("aevae-warm")
        if stop.is_set():
            return
        log.info("shipped answers ready: %d first views, %d validation images, %.0f s",
                 len(opens) * len(i18n.languages()), images, time.monotonic() - t0)
    except Exception:  # noqa: BLE001 - logged; the views are then computed on first use
        if not stop.is_set():  # closing removed the files it was writing: not a failure
            log.exception("computing the shipped first views at start failed")
    finally:
        FIRST_VIEWS.set()


def serve(host: str = "127.0.0.1", port: int = 7860, block: bool = True,
          max_file_size: str | int = MAX_FILE_SIZE) -> gr.Blocks:
    bad = server_env.problems()  # every setting checked before anything starts: each bad one named
    if bad:
        raise SystemExit("aevae cannot start, fix the environment: " + "; ".join(bad))  # not shown: the operator's
    log = logging.getLogger("aevae")
    if not log.handlers:  # one line per refused input or notable event, on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    removed = resources.remove_stale_folders(upload_folder())
    if removed:
        log.info("removed %d session folders left by earlier runs", len(removed))
    demo = build_demo()
    threading.Thread(target=sweep_files, args=(demo, *server_env.cache_sweep()), daemon=True, name="aevae-sweep").start()
    if server_env.train_workers():
        worker.POOL.warm()  # the first training need not wait for torch to load in a new process
    stop = threading.Event()
    warming = [threading.Thread(target=warm_default_training, daemon=True, name="aevae-warm"),
               threading.Thread(target=warm_first_views, args=(demo, stop), daemon=True, name="aevae-first-views")]
    for th in warming:
        th.start()
    atexit.register(stop_warming, stop, warming)
    close = demo.close

    def closing(*args, **kwargs):  # the start-up work stops with the server (its files go with it)
        stop.set()
        return close(*args, **kwargs)

    demo.close = closing
    # Each cheap event (an answer from memory, a shipped view, a small decode) has its own group of
    # CHEAP_CONCURRENCY, so a class's presses run side by side; the CPU-heavy parts inside them take
    # a compute slot (aevae.classroom.computing), uploads and reports their own group (ui/limits.py).
    demo.queue(max_size=fair_queue.QUEUE_SIZE, default_concurrency_limit=CHEAP_CONCURRENCY)
    fair_queue.install(demo)
    # Threads (and the queue's job slots): every training watcher holds one while it streams, so
    # there are enough for all of them and for the cheap events besides.
    demo.launch(server_name=host, server_port=port, max_file_size=max_file_size, css=CSS, head=HEAD, show_error=True,
                prevent_thread_lock=not block, quiet=not block, i18n=I18N,
                max_threads=TRAIN_WATCHERS + 4 * CHEAP_CONCURRENCY,
                app_kwargs={"middleware": [Middleware(UnknownStreams, blocks=demo), Middleware(WebFiles)]})
    return demo


def main() -> None:
    ap = argparse.ArgumentParser(description="aevae web app")
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = ap.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
