"""A reload reattaches to its session (issue 24 item 4): the browser keeps a key (gr.BrowserState),
the page that comes back sends it, and gets its upload, runs and a training still running."""

import time
import zipfile
from types import SimpleNamespace

import pytest
from conftest import make_images
from PIL import Image

from aevae import session_state, session_store
from aevae.session_store import SessionStore
from ui.sessions import session, store


def req(name):
    return SimpleNamespace(session_hash=name)


def zip_of(tmp_path, n=40):
    z = tmp_path / "shapes.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, img in enumerate(make_images(n, 32)):
            p = tmp_path / f"{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"{'discs' if i % 2 else 'squares'}/{i}.png")
    return str(z)


TRAIN = dict(preset="default", image_size=32, latent="16x4x4", epochs=1, seconds=120, batch_size=64, lr=2e-3,
             weight_decay=1e-5, beta=0.1, seed=0, dataset="openmoji", upload=None, use_when_done=True)


def test_the_store_reattaches_a_released_page_by_its_key_only():
    st = SessionStore(None, grace_s=60, attach_wait_s=0.2)
    key, back = st.attach("h1", [])
    assert not back and session_store.valid_key(key)
    s = st.get("h1")
    s.tell("mine")
    st.release("h1")  # the reload's unload
    assert not s.closed  # kept for the grace period
    for wrong in ["", "x" * 43, key[:-1] + ("A" if key[-1] != "A" else "B"), None, 5, ["nested"], "é" * 43, "a" * 10**5]:
        other, again = st.attach("h-wrong", [wrong])
        assert not again and other != key and st.get("h-wrong") is not s  # a fresh session, no error
    got, again = st.attach("h2", ["garbage", key])
    assert again and got == key and st.get("h2") is s and s.pages == {"h2"}
    # the key is a bearer secret: only its digest is kept by the store
    assert key not in repr(vars(st)) and key not in repr(vars(s))


def test_a_second_live_page_with_the_same_key_gets_its_own_session():
    st = SessionStore(None, attach_wait_s=0.2)
    key, _ = st.attach("tab1", [])
    other, again = st.attach("tab2", [key])  # a second tab: tab1 still holds its session
    assert not again and other != key and st.get("tab2") is not st.get("tab1")
    st.release("tab1")
    got, again = st.attach("tab1-reloaded", [other, key])  # tab2 lives: tab1's own session comes back
    assert again and got == key


def test_a_session_ends_when_no_page_reattaches_within_the_grace():
    st = SessionStore(None, grace_s=0.3)
    key, _ = st.attach("g1", [])
    s = st.get("g1")
    st.release("g1")
    deadline = time.monotonic() + 10
    while not s.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.closed and len(st) == 0
    fresh, again = st.attach("g2", [key])
    assert not again and fresh != key and not st.get("g2").closed


def test_a_reloaded_page_gets_its_upload_and_runs(app_module, tmp_path):
    [key] = app_module.reattach([], req("r-page1"))
    list(app_module.train_models(*{**TRAIN, "dataset": "upload", "upload": zip_of(tmp_path)}.values(),
                                 request=req("r-page1")))
    s = session(req("r-page1"))
    assert len(s.runs) == 1 and s.uses_upload
    app_module.end_session(req("r-page1"))  # F5: the old page unloads...
    keys = app_module.reattach([key], req("r-page2"))  # ...and the new one loads with the key
    assert keys[0] == key and session(req("r-page2")) is s and not s.closed
    assert s.in_use == "run:1" and app_module.load_picker(req("r-page2"))["value"] == "run:1"
    runs, *_ = app_module.show_runs(req("r-page2"))
    assert len(runs) == 1
    dataset, note, strip = app_module.show_data(32, req("r-page2"))
    assert dataset == "upload" and "shapes.zip" in note
    # a wrong key gets a page of its own: nothing of this one
    keys = app_module.reattach(["not-a-key"], req("r-stranger"))
    assert keys[0] != key and len(keys) == 1 and len(session(req("r-stranger")).runs) == 0


@pytest.mark.slow  # a training long enough to outlive the reload: 5 s
def test_a_training_goes_on_through_a_reload_and_the_new_page_watches_it(app_module):
    [key] = app_module.reattach([], req("w-page1"))
    s = session(req("w-page1"))
    steps = app_module.train_models(*{**TRAIN, "epochs": 3}.values(), request=req("w-page1"))
    first = next(steps)  # the training started (it streams its progress)
    assert first is not None and s.training is not None
    steps.close()  # the browser went away mid-training: Gradio closes the stream
    app_module.end_session(req("w-page1"))
    assert s.busy and not s.training.ended.is_set()  # it trains on, nobody watching
    app_module.reattach([key], req("w-page2"))
    out = list(app_module.rewatch(req("w-page2")))
    settings = out[0][7:]
    assert [u["value"] for u in settings[:4]] == ["default", 32, "16x4x4", 3]  # its settings come back
    status, mse, *_ = out[-1][:7]
    assert "Done" in status and "run 1" in status
    assert len(s.runs) == 1 and s.runs.get(1).record.finished and not s.busy


def test_without_a_key_a_closed_page_stops_its_training_as_before(app_module):
    s = session(req("nk-page"))
    steps = app_module.train_models(*{**TRAIN, "epochs": 50}.values(), request=req("nk-page"))
    next(steps)
    steps.close()
    assert not s.busy  # the lock was let go: no keeper carries it on
    app_module.end_session(req("nk-page"))
    assert s.closed


@pytest.mark.parametrize("keys", [None, "a string", [1, 2], ["x" * 10**6], list(range(10**4))])
def test_the_page_may_send_anything_as_its_keys(app_module, keys):
    out = app_module.reattach(keys, req("any-keys"))
    assert len(out) == 1 and session_store.valid_key(out[0])
    store().drop("any-keys")


def test_a_training_stops_when_no_page_came_back_within_the_grace(app_module, monkeypatch):
    monkeypatch.setattr(store(), "grace_s", 0.5)
    [key] = app_module.reattach([], req("gone-page"))
    s = session(req("gone-page"))
    steps = app_module.train_models(*{**TRAIN, "epochs": 400}.values(), request=req("gone-page"))
    next(steps)
    steps.close()
    app_module.end_session(req("gone-page"))
    training = s.training
    assert training.ended.wait(60) and s.closed and not s.busy  # it stopped with its session
    assert training.run is None and isinstance(training.error, session_state.SessionEnded)
    fresh = app_module.reattach([key], req("too-late"))
    assert fresh[0] != key and session(req("too-late")) is not s


def test_a_link_opened_in_the_reloaded_tab_keeps_its_settings(app_module):
    [key] = app_module.reattach([], req("l-page1"))
    list(app_module.train_models(*TRAIN.values(), request=req("l-page1")))
    app_module.end_session(req("l-page1"))
    link = SimpleNamespace(session_hash="l-page2", query_params={"epochs": "7"})
    app_module.reattach([key], link)
    first = next(app_module.rewatch(link))
    assert all(u == {"__type__": "update"} for u in first[7:])  # the link's settings are not overwritten
    assert app_module.settings_from_link(link)[3]["value"] == 7
