"""A queue shared fairly: one browser tab, or a flood of requests, cannot fill it for everyone.

Gradio's queue refuses only when it is full (HTTP 503 "Queue is full"), whoever filled it: 68
own-image reconstructs joined at once by one script locked every other student out. Before an
event joins, this counts what is already waiting or running and refuses, with a message saying
why (HTTP 429, shown by the page as the error):
  - per session (a browser tab): at most PER_SESSION events waiting or running;
  - per address: at most 3/4 of the queue waiting, so a flood from one address (fresh session
    ids each time) leaves room for others, while a class behind one school router (one address,
    40 tabs with a few events each) still fits;
  - heavy events (uploads, reports: concurrency_id "heavy") at most HEAVY_WAITING waiting in all,
    so they never crowd out the cheap ones, which are answered in milliseconds.
The queue's own limit (max_size) stays as the last guard.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException

from aevae.i18n import t

from .sessions import asked_lang, client_of, store

PER_SESSION = 8  # a page's opening asks ~5 things at once; a student pressing fast a few more
HEAVY = "heavy"  # the concurrency group of uploads and reports (see the tabs' events)
HEAVY_WAITING = 32
QUEUE_SIZE = 256  # waiting events in all (Gradio's max_size)
PER_ADDRESS = QUEUE_SIZE * 3 // 4

log = logging.getLogger("aevae.app")


def _events(queue):
    """(event, running) for every event waiting in or taken from the queue."""
    for group in list(queue.event_queue_per_concurrency_id.values()):
        for event in list(group.queue):
            yield event, False
    for job in list(queue.active_jobs):
        for event in job or ():
            yield event, True


def refusal(queue, session_hash: str | None, fn, request) -> str | None:
    """Why this event may not join now (in the session's language), or None."""
    address = client_of(request)
    mine, from_address, heavy = 0, 0, 0
    for event, running in _events(queue):
        if session_hash and event.session_hash == session_hash:
            mine += 1
        if not running:
            from_address += client_of(event.request) == address
            heavy += event.concurrency_id == HEAVY
    known = store().peek(session_hash) if session_hash else None
    lang = getattr(known, "lang", None) or asked_lang(request)
    if mine >= PER_SESSION:
        return t("error.queue_session", lang, n=mine)
    if from_address >= PER_ADDRESS:
        return t("error.queue_address", lang, n=from_address)
    if getattr(fn, "concurrency_id", None) == HEAVY and heavy >= HEAVY_WAITING:
        return t("error.queue_heavy", lang, n=heavy)
    return None


def install(demo) -> None:
    """Check every event before it joins demo's queue (call after demo.queue())."""
    queue = demo._queue
    join = queue.push

    async def push(body, request, username):
        fn = demo.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is not None and fn.queue:
            why = refusal(queue, body.session_hash, fn, request)
            if why is not None:
                log.info("refused joining the queue (session %s): %s", str(body.session_hash)[:8], why)
                raise HTTPException(status_code=429, detail=why)
        return await join(body, request, username)

    queue.push = push
