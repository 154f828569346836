"""What handlers return: metric tables, loss curves, CSV and PNG files in a call's own folder, and a
tab's first view."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from aevae import data, figures

from . import sessions
from .sessions import lang_of, session

PLOT_POINTS = 400
COLORS = {"AE": "#3566a8", "VAE": "#e8772e"}
KL_SKIP = 0.05  # share of the first iterations the KL plot leaves out (its key "train.kl_plot" says 5%)


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


def on_open(tab: str, handler, outputs: int, costly: bool = False, views: tuple[str, ...] = ()):
    """`handler` as the view a tab shows when it is opened: computed the first time the tab opens
    for the pair and the data in use (and the page's language), then left as the student changed it (no
    update). Shipped answers are cached (analyses.SHIPPED_ANSWERS), so the hundredth visitor gets them at once.
    `views`: the names the tab's results are kept under; a reloaded page shows those again instead."""
    sessions.VIEWS_OF_TAB[tab] = views

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


class PerObject:
    """What the page derives from one of the package's objects (a result's views in each language,
    a strip's PNG), kept while that object lives without adding attributes to it: keyed by the
    object's identity, dropped when it is collected."""

    def __init__(self):
        self._values: dict[int, dict] = {}
        self._lock = threading.Lock()

    def of(self, obj) -> dict:
        """`obj`'s own dict of derived values (the same dict on every call while `obj` lives)."""
        with self._lock:
            key = id(obj)
            if key not in self._values:
                self._values[key] = {}
                weakref.finalize(obj, self._values.pop, key, None)  # before the id can be reused
            return self._values[key]
