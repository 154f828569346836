"""Work that outlives one answer: a training slot per tab, work in a thread with progress shown while
it runs, a (possibly shared) training watched to its end."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from aevae import classroom, session_state, training_jobs
from aevae.i18n import t

from .messages import fail, refuse


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
