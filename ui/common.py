"""What every tab's handlers share: the session store, input checks, tables and curves."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from aevae import classroom, data, workbench
from aevae.config import PRESETS, check_seed
from aevae.zoo import DEFAULT_DIR, Zoo

MAX_SECONDS = 600  # time cap of one training (both models), so one user cannot hold the CPU for long
# Students waiting for or watching trainings at once; the real work is limited by the server's
# training slots (aevae/classroom.py), so identical trainings can be joined instead of queued.
TRAIN_WATCHERS = 64
DEFAULT_CAP = 300  # the default cap: a safety stop, far above what the default plan takes
KL_SKIP = 0.05  # share of the first iterations the KL plot leaves out
KL_LABEL = f"KL per iteration (nats/image; first {KL_SKIP:.0%} of iterations left out: the early spike hides the rest)"
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
        raise ValueError(f"AEVAE_CACHE_SWEEP must be two whole numbers of seconds > 0, like 300,900; got {raw!r}")
    return int(parts[0]), int(parts[1])
PLOT_POINTS = 400
DEFAULT_SIZE = PRESETS["default"].model.image_size
COLORS = {"AE": "#3566a8", "VAE": "#e8772e"}
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
.lead { font-size: 0.95em; opacity: 0.85; }
/* Wide gallery items (source + variants, two rows): cells shaped like them, the whole gallery shown */
.wide-items .thumbnail-item { aspect-ratio: 2.4 / 1; }
.wide-items .grid-container { grid-auto-rows: auto; grid-template-rows: none; }
.wide-items .grid-wrap { overflow-y: visible; max-height: none; }
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
def store() -> workbench.SessionStore:
    """All sessions, with the shipped models; made on first use, after AEVAE_CHECKPOINTS is read.

    AEVAE_CHECKPOINTS points the app at another folder of shipped models (the tests use a tiny one).
    The sessions' folders live in the web server's upload folder: their files are served from
    there as they are (no copy in a cache), and go when the session ends.
    """
    return workbench.SessionStore(Zoo(os.environ.get("AEVAE_CHECKPOINTS") or DEFAULT_DIR),
                                  folder=upload_folder(), uploads=upload_folder())


def client_of(request: gr.Request | None) -> str:
    """The address a request came from; behind a proxy (a Space), the one the proxy added last."""
    headers = getattr(request, "headers", None) or {}
    forwarded = [a.strip() for a in (headers.get("x-forwarded-for") or "").split(",") if a.strip()]
    host = getattr(getattr(request, "client", None), "host", "") or ""
    return host + (f" via {forwarded[-1]}" if forwarded else "")


def session(request: gr.Request | None, page: bool = False) -> workbench.Session:
    """This browser tab's session; `page` marks that a page loaded it (see SessionStore).

    What the session has to tell its user (e.g. that its data was released to make room) is
    shown now, as a notice."""
    s = store().get(getattr(request, "session_hash", None) or "anonymous", page, client_of(request))
    for note in s.pop_notices():
        gr.Warning(note)
    return s


def fail(e: Exception) -> gr.Error:
    return gr.Error(str(e), print_exception=False)


def need(lo, hi, value, name):
    """Out-of-range values (e.g. from the API) are refused, never clipped silently."""
    if value is None or not lo <= value <= hi:
        raise gr.Error(f"{name} must be between {lo} and {hi}, got {value}", print_exception=False)
    return value


def seed_of(value, name: str = "seed") -> int:
    """A seed in 0..2**32-1, or a clear refusal (a huge one would fail deep in torch)."""
    try:
        return check_seed(value, name)
    except ValueError as e:
        raise fail(e) from None


class Page(gr.Blocks):
    """The app's Blocks: each request holds its session (never dropped while it runs), and an
    expected refusal (a gr.Error: ours, or Gradio's own range checks) is logged as one line,
    not a traceback, so a traceback in the log means a bug."""

    async def process_api(self, *args, **kwargs):
        key = kwargs.get("session_hash")
        with store().active(key) if key else contextlib.nullcontext():
            try:
                return await super().process_api(*args, **kwargs)
            except workbench.SessionEnded as e:
                refused(kwargs, args, str(e))
                raise fail(e) from None
            except gr.Error as e:
                e.print_exception = False
                refused(kwargs, args, e.message)
                raise


def refused(kwargs, args, why) -> None:
    fn = kwargs.get("block_fn", args[0] if args else None)
    name = getattr(fn, "api_name", None) or getattr(fn, "name", None) or str(fn)
    log.info("refused %s (session %s): %s", name, str(kwargs.get("session_hash"))[:8],
             " ".join(str(why).split()))


@contextmanager
def training_slot(s: workbench.Session):
    """One training at a time per browser tab."""
    if not s.lock.acquire(blocking=False):
        raise gr.Error("A training is already running in this browser tab; stop it first.",
                       print_exception=False)
    try:
        yield
    finally:
        s.lock.release()


OUT_OF_MEMORY = "out of memory: try a smaller batch, latent or image size; nothing was changed"


SESSION_ENDED = ("This page's session ended (closed or expired) before the work finished; nothing was kept. "
                 "Reload the page and start again.")


def background(s: workbench.Session, work, show, every: float = 0.5, stop: threading.Event | None = None):
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
            result["error"] = RuntimeError(OUT_OF_MEMORY)
        except Exception as e:  # shown to the user below; nothing changes
            result["error"] = e

    t = threading.Thread(target=target, daemon=True, name=f"aevae-train-{id(s)}")
    t.start()
    try:
        while t.is_alive():
            t.join(every)
            if t.is_alive():
                yield show()
    finally:
        if t.is_alive():
            stop.set()
            t.join(10)
    if s.closed:
        raise fail(RuntimeError(SESSION_ENDED))
    if "error" in result:
        raise fail(result["error"])
    return result["value"]


def watch(s: workbench.Session, job: workbench.PairJob, show, every: float = 0.5):
    """Yield show() until the (possibly shared) training ends; return the run it gives the session.

    Use as `run = yield from watch(...)`. Stop (s.stop) is passed on to the job; a closed page
    (the generator is closed) leaves it, which stops the training if nobody else waits for it.
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
            job.leave()
    if s.closed:
        job.leave()
        raise fail(RuntimeError(SESSION_ENDED))
    try:
        return job.result()
    except classroom.Cancelled:
        raise fail(RuntimeError("You left the queue before your training started; nothing was trained.")) from None
    except MemoryError:
        raise fail(RuntimeError(OUT_OF_MEMORY)) from None
    except Exception as e:  # shown to the user; nothing changes
        raise fail(e) from None


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


def numbers(text: str, kind, lo, hi, most: int, what: str, example: str) -> list:
    """'5, 10, 15' -> [5, 10, 15] within bounds, or a clear error."""
    try:
        vals = [kind(v) for v in (text or "").replace(" ", "").split(",") if v]
    except ValueError:
        vals = []
    if not vals or len(vals) > most or any(not lo <= v <= hi for v in vals):
        raise gr.Error(f"give 1 to {most} {what} between {lo} and {hi}, like {example}", print_exception=False)
    return vals


def parse_ids_or_none(text: str | None) -> list[int] | None:
    text = (text or "").strip()
    return data.parse_ids(text) if text else None


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
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
    Image.fromarray(image).save(path, format="PNG")
    return str(path)


def short_note(note: str) -> str:
    """The first sentence of a long reason, and how to fix it."""
    first = note.split(". Tried:")[0]
    fix = note.split("Fix: ")[-1] if "Fix: " in note else ""
    return f"{first}. {('Fix: ' + fix) if fix else ''}"


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
    """A closed tab stops its training and frees its models and files."""
    store().drop(request.session_hash)


def stop_training(request: gr.Request):
    session(request).stop.set()
    return "Stopping at the end of the current batch…"


def on_open(tab: str, handler, outputs: int):
    """`handler` as the view a tab shows when it is opened: computed the first time the tab opens
    for the pair and the data in use, then left as the student changed it (no update). Shipped answers are
    cached (workbench.SHIPPED_ANSWERS), so the hundredth visitor gets them at once."""

    @functools.wraps(handler)
    def opened(*args, **kwargs):  # called with the handler's signature, the request included
        request = kwargs.get("request", args[-1] if args else None)
        s = session(request)
        key = (tab, s.in_use, s.data_key())  # new data (an upload, OpenMoji again): a new first view
        if key in s.opened:
            return (gr.update(),) * outputs if outputs > 1 else gr.update()
        try:
            out = handler(*args, **kwargs)
        except gr.Error:  # e.g. no shipped models: the tab stays empty, its button says why
            return (gr.update(),) * outputs if outputs > 1 else gr.update()
        s.opened.add(key)
        return out

    return opened
