"""A class on one served app (issues 27 and 25, item 4): cheap answers are not held up by a
training's progress streams, one tab or one flood cannot fill the queue for everyone else, and
what depends only on shipped files is in memory before anyone asks. Loopback only; every wait is
bounded; the checks are about what happens, never how fast."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import gradio as gr
import numpy as np
from conftest import make_images
from served import Bare

from aevae import analyses

# A long enough training (its time cap ends it): the cheap calls below are made while it streams.
LONG_TRAIN = ["default", 32, "16x4x4", 200, 18, 64, 2e-3, 1e-5, 0.1, 0, "openmoji", None, False]


def join(b: Bare, fn: str, data: list, lang: str = "en") -> tuple[int, str]:
    """Join the queue without reading the answer (as a flooding script would): (HTTP status, detail)."""
    body = json.dumps({"data": data, "fn_index": b.fns[fn], "session_hash": b.session_hash,
                       "event_data": None, "trigger_id": None}).encode()
    req = urllib.request.Request(b.url + "gradio_api/queue/join", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept-Language": lang})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, ""
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}").get("detail", "")


def test_one_tab_flooding_the_queue_is_refused_and_says_why_while_others_get_in(served_app, tmp_path):
    flooder = Bare(served_app.url, served_app.fns)
    # 64 images each, never computed before (LPIPS on): slow, so they pile up
    answers = [join(flooder, "reconstruct", [f"{1 + 64 * i}-{64 + 64 * i}", 64, 0, True]) for i in range(40)]
    accepted = [a for a in answers if a[0] == 200]
    refused = [detail for status, detail in answers if status == 429]
    assert len(accepted) >= 8 and refused and len(accepted) + len(refused) == 40, answers
    assert all(d.startswith("You already have 8 requests waiting or running in this tab") for d in refused), refused
    other = Bare(served_app.url, served_app.fns)
    ok, out = other.call("reconstruct", ["", 3, 0, False], timeout=120)
    assert ok and len(out[2]["data"]) == 3, out
    # Fresh sessions each time (one address): heavy uploads fill their share, the rest is refused
    # with why, and another student's cheap question still gets in and is answered.
    many = tmp_path / "many.npy"
    np.save(many, make_images(64, 64, seed=1))  # 64 images each: slow enough to pile up
    floods = [Bare(served_app.url, served_app.fns) for _ in range(80)]
    files = [b.upload(many) for b in floods]
    # the later half asks in Chinese (a page's Accept-Language): refused in Chinese
    heavy = [join(b, "reconstruct_uploads", [[f], True], "en" if i < 40 else "zh-TW")
             for i, (b, f) in enumerate(zip(floods, files, strict=True))]
    assert sum(status == 200 for status, _ in heavy) >= 32, heavy
    refused = [(i, detail) for i, (status, detail) in enumerate(heavy) if status == 429]
    assert refused and all(("uploads and reports waiting" if i < 40 else "伺服器正忙") in d for i, d in refused), heavy
    assert any(i >= 40 for i, _ in refused), heavy
    ok, out = other.call("reconstruct", ["", 3, 1, False], timeout=120)
    assert ok and len(out[2]["data"]) == 3, out
    assert "Traceback" not in served_app.log()


def test_cheap_answers_come_while_a_class_watches_one_training(served_app):
    """42 students press the same Train (one training, 42 progress streams: more than Gradio's
    40 threads by default) and another asks for answers meanwhile: they come before it ends."""
    watchers = [Bare(served_app.url, served_app.fns) for _ in range(42)]
    ended: list[float] = []
    streaming = threading.Event()

    def train(b: Bare):
        ok, out = b.call("train", LONG_TRAIN, timeout=300,
                         on_message=lambda m: m.get("msg") == "process_generating" and streaming.set())
        ended.append(time.monotonic())
        return ok, out

    with cf.ThreadPoolExecutor(len(watchers)) as pool:
        jobs = [pool.submit(train, b) for b in watchers]
        assert streaming.wait(120), "the training never streamed"
        time.sleep(3)  # every watcher has joined by now
        student = Bare(served_app.url, served_app.fns)
        answered = []
        for fn, data in (("reconstruct", ["", 3, 0, False]), ("runs", []), ("models", []),
                         ("reconstruct", ["", 2, 5, False])):
            ok, out = student.call(fn, data, timeout=300)
            assert ok, (fn, out)
            answered.append(time.monotonic())
        results = [j.result(timeout=300) for j in jobs]
    assert all(ok for ok, _ in results), [out for ok, out in results if not ok][:1]
    assert max(answered) < min(ended), "the cheap answers waited for the training to end"


def test_shipped_answers_are_in_memory_right_after_start(app_module, server):
    """No request made: the start-up itself computed every tab's first view and the default
    pair's scores of every validation image; asking for them now computes nothing."""
    assert app_module.module.FIRST_VIEWS.wait(600), "the start-up's background work never ended"
    answers, images = analyses.SHIPPED_ANSWERS.computed, analyses.SHIPPED_IMAGES.computed
    assert answers >= 5 and images > 0
    opens = app_module.module.first_view_handlers(app_module.build_demo())
    assert len(opens) >= 5  # Reconstructions, Variants, Latent sizes, Latent space, Beta trade-off
    # the costliest (the shipped beta sweep) is computed first: a page opened as the app answers asks for it soon
    assert [fn.fn.__name__ for fn in opens][:2] == ["shipped_beta_sweep", "reconstruct"]
    for lang in ("en", "zh-TW"):
        request = gr.Request(session_hash=f"first-{lang}-{uuid.uuid4().hex[:6]}", query_params={"lang": lang},
                             headers={})
        for fn in opens:
            out = fn.fn(*[getattr(c, "value", None) for c in fn.inputs], request=request)
            assert out is not None
    request = gr.Request(session_hash="draw-" + uuid.uuid4().hex[:6], query_params={}, headers={})
    _, _, table, _ = app_module.reconstruct("", 10, 7, True, request)  # a random draw nobody asked for yet
    assert len(table) == 10
    assert (analyses.SHIPPED_ANSWERS.computed, analyses.SHIPPED_IMAGES.computed) == (answers + 1, images)
