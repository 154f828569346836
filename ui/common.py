"""What every tab's handlers share: the session store, input checks, tables and curves."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from aevae import (
    classroom,
    data,
    figures,
    i18n,
    session_state,
    session_store,
    training_jobs,
)
from aevae.config import PRESETS, check_seed
from aevae.i18n import t, tm
from aevae.zoo import DEFAULT_DIR, Zoo

MAX_SECONDS = 600  # time cap of one training (both models), so one user cannot hold the CPU for long
# Students waiting for or watching trainings at once; the real work is limited by the server's
# training slots (aevae/classroom.py), so identical trainings can be joined instead of queued.
TRAIN_WATCHERS = 64
# Uploads decoded and reports written: CPU-heavy, so they share two slots (one per core) and wait
# there, never in front of the cheap events, which each have their own group (app.py).
HEAVY = "heavy"
HEAVY_SLOTS = 2
DEFAULT_CAP = 300  # the default cap: a safety stop, far above what the default plan takes
KL_SKIP = 0.05  # share of the first iterations the KL plot leaves out (its key "train.kl_plot" says 5%)
MAX_EPOCHS = 500
MAX_FILE_SIZE = "200mb"


def cache_sweep() -> tuple[int, int]:
    """(every, age) in seconds: every 5 minutes, files the web server received or handed out more
    than 15 minutes ago are deleted: uploads nobody loaded, download links of results (the button
    makes them again). AEVAE_CACHE_SWEEP="every,age" sets them. Uploads that were loaded are
    moved into their session's folder at once, and a session's files go when it ends."""
    raw = os.environ.get("AEVAE_CACHE_SWEEP", "").replace(" ", "")
    if not raw:
        return 300, 900
    parts = raw.split(",")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(  # not shown: read once at start
            f"AEVAE_CACHE_SWEEP must be two whole numbers of seconds > 0, like 300,900; got {raw!r}")  # not shown
    return int(parts[0]), int(parts[1])
PLOT_POINTS = 400
DEFAULT_SIZE = PRESETS["default"].model.image_size
COLORS = {"AE": "#3566a8", "VAE": "#e8772e"}
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


def upload_folder() -> Path:
    """Where the web server keeps uploads and the files it serves (GRADIO_TEMP_DIR)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


try:  # Hugging Face Spaces: on a ZeroGPU Space, spaces.GPU attaches a GPU for the call (a no-op elsewhere)
    import spaces

    gpu = spaces.GPU
except ImportError:  # everywhere else the handlers run as they are
    def gpu(fn):
        return fn


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
    """The address a request came from; behind a proxy (a Space), the one the proxy added last."""
    headers = getattr(request, "headers", None) or {}
    forwarded = [a.strip() for a in (headers.get("x-forwarded-for") or "").split(",") if a.strip()]
    host = getattr(getattr(request, "client", None), "host", "") or ""
    return host + (f" via {forwarded[-1]}" if forwarded else "")  # not shown: a key for the session store


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


@contextmanager
def training_slot(s: session_state.Session, lang: str):
    """One training at a time per browser tab."""
    if not s.lock.acquire(blocking=False):
        raise refuse(t("error.training_running", lang), lang)
    try:
        yield
    finally:
        s.lock.release()


def background(s: session_state.Session, work, show, lang: str, every: float = 0.5,
               stop: threading.Event | None = None):
    """Run work() in a thread; while it runs, yield show() every `every` seconds; return its result.

    Use as `result = yield from background(...)`. Closing the generator (the browser went away,
    the event was cancelled) sets `stop` (default: the session's training stop), which stops the
    work within one batch or image: nobody's CPU burns for nobody. A session that ended
    meanwhile gets no result: the work stopped with it, and says so.
    """
    stop = s.stop if stop is None else stop
    result: dict = {}

    def target():
        try:
            result["value"] = work()
        except MemoryError:
            result["error"] = RuntimeError(t("error.out_of_memory", lang))
        except Exception as e:  # shown to the user below; nothing changes
            result["error"] = e

    # not `t`: that is the translation function target() uses
    worker = threading.Thread(target=target, daemon=True, name=f"aevae-train-{id(s)}")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(every)
            if worker.is_alive():
                yield show()
    finally:
        if worker.is_alive():
            stop.set()
            worker.join(10)
    if s.closed:
        raise refuse(t("error.session_ended", lang), lang)
    if "error" in result:
        raise fail(result["error"], lang)
    return result["value"]


def watch(s: session_state.Session, job: training_jobs.PairJob, show, lang: str, every: float = 0.5, keep=None):
    """Yield show() until the (possibly shared) training ends; return the run it gives the session.

    Use as `run = yield from watch(...)`. Stop (s.stop) is passed on to the job; a closed page
    (the generator is closed) leaves it, which stops the training if nobody else waits for it,
    unless `keep` (a Train in a session a reload can reattach to): keep() then takes it over.
    """
    finished = False
    try:
        while not job.done:
            if s.stop.is_set():
                job.stop()
            yield show()
            job.shared.done.wait(every)
        finished = True
    finally:
        if not finished:
            if keep is not None and s.browser is not None and not s.closed:
                keep()
            else:
                job.leave()
    if s.closed:
        job.leave()
        raise refuse(t("error.session_ended", lang), lang)
    try:
        return job.result()
    except classroom.Cancelled:
        raise refuse(t("error.left_queue", lang), lang) from None
    except MemoryError:
        raise refuse(t("error.out_of_memory", lang), lang) from None
    except Exception as e:  # shown to the user; nothing changes
        raise fail(e, lang) from None


def replay(histories: dict, frames: int = 8):
    """Finished histories as `frames` growing prefixes, to replay a reused run's curves quickly."""
    for k in range(1, frames + 1):
        out = {}
        for kind, h in histories.items():
            h = h if isinstance(h, dict) else h.to_dict()
            n, e = len(h["iter_mse"]), len(h["epochs"])
            out[kind] = {**h, "iter_mse": h["iter_mse"][:n * k // frames], "iter_kl": h["iter_kl"][:n * k // frames],
                         "epochs": h["epochs"][:e * k // frames]}
        yield out


def bar(fraction: float, width: int = 30) -> str:
    k = int(max(0.0, min(1.0, fraction)) * width)
    return f"`{'█' * k}{'░' * (width - k)}` {fraction:.0%}"


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


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()  # names and labels someone chose: never a formula in a spreadsheet (data.cell)
        w.writerows({k: data.cell(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows)
    return buf.getvalue()


def csv_file(rows: list[dict], folder: Path, name: str) -> str:
    """`rows` as a CSV in `folder` (a call's own folder: see Session.new_folder)."""
    path = folder / name
    path.write_text(csv_text(rows))
    return str(path)


def png(folder: Path, image: np.ndarray, name: str = "image.png") -> str:
    """An image as a PNG file in a call's own folder.

    Handlers return files, not arrays: Gradio writes arrays into its cache under a name made from
    the content, without an atomic rename, so two users asking for the same picture at once could
    be served a file while it is being rewritten (a truncated response).
    """
    path = folder / name
    path.write_bytes(encoded(image))
    return str(path)


class _Encoded:
    """PNGs by their pixels: a class opening the same tab gets the same pictures (the shipped
    answers drawn the same way), and encoding them was most of the CPU a page cost (measured with
    py-spy: 62% of the server's samples while 10 pages opened). Bounded by bytes, least recently
    used dropped."""

    def __init__(self, max_bytes: int = 64 * 2**20):
        self.max_bytes, self.bytes = max_bytes, 0
        self._done: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> bytes:
        image = np.ascontiguousarray(image)
        h = hashlib.blake2b(repr((image.shape, image.dtype.str)).encode(), digest_size=20)
        h.update(image.data)
        key = h.digest()
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
        out = figures.png_bytes(image)
        with self._lock:
            if key not in self._done:
                self._done[key] = out
                self.bytes += len(out)
            while self.bytes > self.max_bytes:
                self.bytes -= len(self._done.popitem(last=False)[1])
        return out


encoded = _Encoded()


def short_note(note: str, lang: str) -> str:
    """The first sentence of a long reason, and how to fix it (in English; translated, the whole reason)."""
    if tm(note, lang) != note:
        return tm(note, lang)
    first = note.split(". Tried:")[0]
    fix = note[note.index("Fix: "):] if "Fix: " in note else ""
    return f"{first}. {fix}"


def rounded(rows: list[dict]) -> pd.DataFrame:
    """A metric table as shown: dB to 2 decimals, SSIM and LPIPS to 3; long names last, so a
    projector shows the numbers first."""
    df = pd.DataFrame(rows).round({c: 3 for c in ("AE SSIM", "VAE SSIM", "AE LPIPS", "VAE LPIPS")} |
                                  {"AE PSNR": 2, "VAE PSNR": 2})
    return df[[c for c in df.columns if c != "name"] + (["name"] if "name" in df.columns else [])]


# --- Train ----------------------------------------------------------------------------
def curves(histories: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Loss per iteration (MSE), KL per iteration, and validation PSNR per epoch (0: before training).

    Every plot has both models: the AE's KL is 0 (it has no KL term). The KL curve leaves out
    the first KL_SKIP of the iterations: the early spike would flatten everything after it.
    """
    mse, kl, val = [], [], []
    for kind, h in histories.items():
        if not h:
            continue
        h = h if isinstance(h, dict) else h.to_dict()
        n = len(h["iter_mse"])
        step = max(1, n // PLOT_POINTS)
        skip = int(n * KL_SKIP)
        for i in range(0, n, step):
            mse.append({"iteration": i + 1, "MSE per pixel": float(np.mean(h["iter_mse"][i:i + step])),
                        "model": kind.upper()})
            if i >= skip:
                kl.append({"iteration": i + 1, "KL (nats/image)": float(np.mean(h["iter_kl"][i:i + step])),
                           "model": kind.upper()})
        first = h.get("initial") or {}
        if "val_psnr" in first:
            val.append({"epoch": 0, "val PSNR (dB)": first["val_psnr"], "model": kind.upper()})
        for e in h["epochs"]:
            if "val_psnr" in e:
                val.append({"epoch": e["epoch"], "val PSNR (dB)": e["val_psnr"], "model": kind.upper()})
    return (typed(mse, "iteration", "MSE per pixel"), typed(kl, "iteration", "KL (nats/image)"),
            typed(val, "epoch", "val PSNR (dB)"))


def typed(rows: list[dict], x: str, y: str) -> pd.DataFrame | None:
    """Rows as a frame with numeric axes, or None (an empty plot) when there are none yet.

    A plot first drawn from an empty frame keeps an empty colour scale and categorical axes
    (every value labelled, lines invisible), so an empty plot is sent as None instead.
    """
    if not rows:
        return None
    return pd.DataFrame(rows, columns=[x, y, "model"]).astype({x: "int64", y: "float64"})


def end_session(request: gr.Request):
    """A closed tab (or one reloading) leaves its session: one a reload can reattach to waits a
    minute for it (session_store.GRACE_S), its training going on; then it stops its training and
    frees its models and files."""
    store().release(request.session_hash)


def reattach(keys, request: gr.Request):
    """The page loaded with the browser keys its browser keeps (gr.BrowserState): a reload gets
    its session back (upload, runs, settings, a training still running); a first visit, or a key
    whose session ended, gets a new key. Returns the keys to keep, this page's first. The keys
    are bearer secrets: never logged, never shown."""
    keys = keys if isinstance(keys, list) else []
    key, back = store().attach(request.session_hash, keys, client_of(request))
    if back:  # a new page: each tab shows its first view again when opened (on_open)
        store().get(request.session_hash).opened.clear()
    return [key] + [k for k in store().alive(keys) if k != key][:session_store.BROWSER_KEYS - 1]


def stop_training(request: gr.Request):
    session(request).stop.set()
    return t("status.stopping", lang_of(request))


def on_open(tab: str, handler, outputs: int, costly: bool = False):
    """`handler` as the view a tab shows when it is opened: computed the first time the tab opens
    for the pair and the data in use (and the page's language), then left as the student changed it (no
    update). Shipped answers are cached (analyses.SHIPPED_ANSWERS), so the hundredth visitor gets them at once."""

    @functools.wraps(handler)
    def opened(*args, **kwargs):  # called with the handler's signature, the request included
        request = kwargs.get("request", args[-1] if args else None)
        s = session(request)
        key = (tab, s.in_use, s.data_key(), lang_of(request))  # new data, or a new language: a new first view
        if key in s.opened:
            return (gr.update(),) * outputs if outputs > 1 else gr.update()
        try:
            out = handler(*args, **kwargs)
        except gr.Error:  # e.g. no shipped models: the tab stays empty, its button says why
            return (gr.update(),) * outputs if outputs > 1 else gr.update()
        s.opened.add(key)
        return out

    opened.first_view = True  # app.warm_first_views computes these at start,
    opened.costly = costly  # the costly ones first (a page opened as the app answers asks for them soon)
    return opened
