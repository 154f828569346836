"""The app's Blocks (`Page`): each request holds its session, and a refusal is one log line, never a
traceback; the page's style; the queue's guard against streams of nothing."""

from __future__ import annotations

import contextlib
import logging

import gradio as gr

from aevae import i18n, session_state
from aevae.i18n import t

from .messages import LOG_CHARS, clip, fail, refuse, tagless
from .sessions import asked_lang, store

CSS = """
/* Figures come upscaled by whole factors (nearest); the page mostly shrinks them a little, where
   nearest-neighbour would drop rows of their labels ("AE" read "AΞ"), so smooth scaling there.
   A gallery's enlarged preview blows them up: pixels kept square. */
.pixelated .preview img { image-rendering: pixelated; }
.lead { font-size: 0.95em; opacity: 0.85; }
/* The latent space, live in the page (ui/static/js/live.js) */
.aevae-live .live-row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.aevae-live figure { margin: 0; text-align: center; }
.aevae-live canvas { display: block; image-rendering: pixelated; border: 1px solid rgba(127,127,127,.4); }
.aevae-live canvas[data-role^="map-"] { cursor: crosshair; touch-action: none; }
.aevae-live canvas[data-role="prior-grid"] { max-width: 100%; border: 0; }
.aevae-live .live-sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 2px 16px; }
.aevae-live .live-sliders label { display: flex; align-items: center; gap: 6px; font-size: .9em; }
.aevae-live .live-sliders input { flex: 1; }
.aevae-live .live-sliders output { width: 3.5em; text-align: right; font-variant-numeric: tabular-nums; }
.aevae-live .live-legend span { margin-right: 12px; font-size: .85em; white-space: nowrap; }
.aevae-live .live-legend i { display: inline-block; width: 9px; height: 9px; margin-right: 4px; border-radius: 50%; }
.aevae-live .live-note { font-size: .9em; opacity: .85; margin: 2px 0; }
.aevae-live button { padding: 3px 10px; border: 1px solid rgba(127,127,127,.5); border-radius: 6px; font-size: .9em; font-weight: normal; }
.aevae-live .live-sliders span { white-space: nowrap; min-width: 6.5em; }
.aevae-live.failed .live-row, .aevae-live.failed .live-sliders, .aevae-live.failed .live-legend,
.aevae-live.failed details, .aevae-live.failed button, .aevae-live.failed canvas { display: none; }
.aevae-live.failed .live-status { font-weight: 600; }
/* Wide gallery items (source + variants, two rows): cells shaped like them, the whole gallery shown */
.wide-items .thumbnail-item { aspect-ratio: 2.4 / 1; }
.wide-items .grid-container { grid-auto-rows: auto; grid-template-rows: none; }
.wide-items .grid-wrap { overflow-y: visible; max-height: none; }
/* Chinese labels wrap at their punctuation, never inside a word (「訓／練週期數」); one with no such
   place still wraps rather than spill. */
html[lang="zh-TW"] [data-testid="block-info"] { word-break: keep-all; overflow-wrap: anywhere; }
/* A refused call changes nothing, so its outputs keep what they showed: no "Error" badge over
   them (it stayed until the next success); the message is in the toast and the tab's status. */
[data-testid="status-tracker"]:has(> .error) { display: none !important; }
/* At 1280x720 (issue 24): a figure's label badge floated over its top row (the first image id);
   it sits above the figure instead. A variant's caption floated over the AE row; it goes under
   the pair of rows instead. */
.pixelated > label[data-testid="block-label"].float { position: static; }
.wide-items .thumbnail-item { aspect-ratio: auto; display: flex; flex-direction: column; }
.wide-items .thumbnail-item img { width: 100%; height: auto; aspect-ratio: 2.4 / 1; object-fit: contain; }
.wide-items .thumbnail-item .caption-label { position: static; transform: none; max-width: 100%;
  margin: 2px auto 0; }
"""
log = logging.getLogger("aevae.app")


try:  # Hugging Face Spaces: on a ZeroGPU Space, spaces.GPU attaches a GPU for the call (a no-op elsewhere)
    import spaces

    gpu = spaces.GPU
except ImportError:  # everywhere else the handlers run as they are
    def gpu(fn):
        return fn


class Page(gr.Blocks):
    """The app's Blocks: each request holds its session (never dropped while it runs), and an
    expected refusal (a gr.Error: ours, or Gradio's own range checks) is logged as one line,
    not a traceback, so a traceback in the log means a bug."""

    async def preprocess_data(self, block_fn, *args, **kwargs):
        return await _checked_inputs(super().preprocess_data, block_fn, *args, **kwargs)

    async def process_api(self, *args, **kwargs):
        key = kwargs.get("session_hash")
        with store().active(key) if key else contextlib.nullcontext():
            try:
                return await super().process_api(*args, **kwargs)
            except session_state.SessionEnded as e:
                refused(kwargs, args, str(e))
                raise fail(e, asked_lang(kwargs.get("request"))) from None
            except gr.Error as e:
                e.print_exception = False
                if not hasattr(e, "plain"):  # Gradio's own (a choice not offered): it names the value sent
                    e.plain = clip(e.message)
                    e.message = tagless(e.plain)
                    e.args = (e.message,)
                refused(kwargs, args, e.plain)
                raise


class UnknownStreams:
    """ASGI middleware: a GET of the queue's stream for a session with nothing queued is answered
    404 at once. Gradio starts the stream first and raises its 404 inside it, which writes two
    tracebacks (5.7 KB) to the log per request: anyone could fill the log with them."""

    def __init__(self, app, blocks: gr.Blocks):
        self.app, self.blocks = app, blocks

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("path", "").endswith("/queue/data"):
            from urllib.parse import parse_qs

            from starlette.responses import JSONResponse

            session_hash = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash") or [""])[0]
            queue = getattr(self.blocks, "_queue", None)
            if queue is not None and session_hash not in queue.pending_messages_per_session:
                await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _checked_inputs(super_preprocess, block_fn, *args, **kwargs):
    """Inputs as the components read them; one of the wrong kind (a word where a number goes,
    sent by a script) is refused as the caller's mistake, not logged as the server's bug."""
    try:
        return await super_preprocess(block_fn, *args, **kwargs)
    except gr.Error:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        why = clip(" ".join(str(e).split()) or type(e).__name__, 200)
        raise refuse(t("error.bad_input", i18n.DEFAULT, why=why), i18n.DEFAULT) from None


def refused(kwargs, args, why) -> None:
    fn = kwargs.get("block_fn", args[0] if args else None)
    name = getattr(fn, "api_name", None) or getattr(fn, "name", None) or str(fn)
    log.info("refused %s (session %s): %s", name, str(kwargs.get("session_hash"))[:8],
             clip(" ".join(str(why)[:4 * LOG_CHARS].split()), LOG_CHARS))  # one bounded line
