"""What sessions hold and its bounds (aevae/resources.py), and the session store's bounds per
client: real folders, processes, files and data; no server needed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_images

from aevae import data, datasets, resources, session_state, session_store
from aevae.session_state import Session
from aevae.session_store import SessionStore


class Owner:
    busy = False


def test_data_memory_releases_least_recently_used_idle_data_first():
    mem = resources.DataMemory(total=100, per_session=60)
    a, b, c = Owner(), Owner(), Owner()
    released = []
    held = {}
    for owner, name in ((a, "a"), (b, "b")):
        held[name] = mem.claim(owner, 64, 40, name)
        held[name].loaded(40, lambda n=name: released.append(n))
    held["a"].touch()  # a used more recently than b
    b.busy = True  # b trains: its data stays, even if older
    mem.claim(c, 64, 30, "c", wait_s=0).loaded(30, None)  # fits: 110 > 100 would not, so...
    assert released == ["a"] and mem.held() == 70  # ... a went (b is busy), though b is older
    b.busy = False
    mem.claim(Owner(), 32, 60, "d", wait_s=0)  # c's is loading (no release yet): b goes
    assert released == ["a", "b"] and mem.released == 2
    with pytest.raises(data.DataError, match="at most 60 MB|at most 0 MB"):
        mem.claim(a, 64, 61, "too much for one session", wait_s=0)


def test_data_memory_share_per_session_and_loads_in_progress():
    mem = resources.DataMemory(total=100, per_session=50)
    s = Owner()
    first = mem.claim(s, 32, 30, "s at 32")
    first.loaded(30, lambda: None)
    mem.claim(s, 64, 30, "s at 64", wait_s=0)  # over its share: its own older data goes first
    assert mem.held(s) == 30
    loading = mem.claim(Owner(), 64, 45, "loading", wait_s=0)  # in progress: never released
    with pytest.raises(data.DataError, match="held by trainings and loads in progress"):
        mem.claim(Owner(), 64, 40, "late", wait_s=0.3)
    loading.drop()
    mem.claim(Owner(), 64, 40, "late", wait_s=0)
    with pytest.raises(data.Cancelled, match="^stopped: loading was cancelled$"):
        mem.claim(Owner(), 64, 45, "stopped", should_stop=lambda: True, wait_s=5)


def test_a_session_told_when_its_data_was_released_and_decodes_it_again(tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", make_images(40, 32))
    mem = resources.DataMemory(total=2 * 40 * 64 * 64 * 3 + 10, per_session=2 * 40 * 64 * 64 * 3 + 10)
    monkeypatch.setattr(resources, "DATA", mem)
    monkeypatch.setattr(data, "peak_bytes", lambda spec, size: 40 * size * size * 3)  # what the load holds
    one, two, three = (Session(None) for _ in range(3))
    try:
        for s in (one, two, three):
            s.set_upload(str(tmp_path / "a.npy"), 64)
        assert one._upload_splits == {} and "released from the server's memory" in one.pop_notices()[0]
        assert two.split(64) is two._upload_splits[64] and not two.notices
        again = one.split(64)  # decoded again from its kept copy
        assert len(again.all) == 40 and mem.held(one) == 40 * 64 * 64 * 3
    finally:
        for s in (one, two, three):
            s.close()
    assert mem.held() == 0


def test_decoding_allowance_per_session(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(data.limits, "MAX_DECODED_PIXELS", 1000)  # per request
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(make_images(1, 20, seed=i)[0]).save(folder / f"{i}.png")  # 400 pixels each
    allowance = resources.Allowance(pixels=1500, window_s=60)  # per session and minute
    b = allowance.budget()
    assert b.limit == 1000
    data.load_folder(folder, 32, pixels=b)
    allowance.spend(b)
    assert allowance.used() == 800
    with pytest.raises(data.DataError, match="this session decoded 800 pixels in the last 1 minutes"):
        data.load_folder(folder, 32, pixels=allowance.budget())


def test_uploads_are_linked_into_the_session_and_found_again(tmp_path):
    uploads = tmp_path / "uploads"
    sha = "ab" * 32  # the web server keeps each upload in a folder named by its hash
    (uploads / sha).mkdir(parents=True)
    up = uploads / sha / "mine.npy"
    np.save(up, make_images(20, 32))
    root = resources.app_folder(uploads)
    s = Session(None, folder=root, uploads=uploads)
    other = Session(None, folder=root, uploads=uploads)
    try:
        s.set_upload(str(up), 32)
        kept = s.upload.data
        assert kept.parent.parent == s.tmpdir and kept.exists() and kept.name == "mine.npy"
        # Left for the server's sweep: a classmate who uploaded the same bytes at the same moment
        # holds this very path, and moving it away failed their load ("No such file or directory").
        assert up.is_file() and os.path.samefile(up, kept)  # one copy on disk, two names
        assert s.same_upload([str(up)])  # the page's old path: the upload it already has
        other.set_upload(str(up), 32)  # another student with the same bytes: a copy of its own
        assert other.upload.data.exists() and other.upload.data != kept
        up.unlink()  # the sweep removed the upload: a third student's path finds a kept copy
        third = Session(None, folder=root, uploads=uploads)
        third.set_upload(str(up), 32)
        assert third.upload.data.is_file()
        third.close()
        s.close()
        assert not kept.exists() and other.upload.data.exists()
        with pytest.raises(data.DataError, match="no longer on the server"):
            resources.resolve(uploads / "zzz" / "gone.npy")
    finally:
        s.close()
        other.close()


def test_two_sessions_loading_the_same_upload_at_once_both_get_it(tmp_path):
    uploads = tmp_path / "uploads"
    (uploads / ("cd" * 32)).mkdir(parents=True)
    up = uploads / ("cd" * 32) / "class.npy"
    np.save(up, make_images(20, 32))
    root = resources.app_folder(uploads)
    sessions = [Session(None, folder=root, uploads=uploads) for _ in range(4)]
    errors, start = [], threading.Barrier(4)

    def load(s):
        start.wait()
        try:
            s.set_upload(str(up), 32)
        except Exception as e:  # noqa: BLE001 - the finding
            errors.append(repr(e))

    threads = [threading.Thread(target=load, args=(s,)) for s in sessions]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    try:
        assert errors == [] and all(s.upload is not None and s.upload.data.is_file() for s in sessions)
    finally:
        for s in sessions:
            s.close()


def test_stale_folders_are_removed_and_live_ones_kept(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import sys, time; from aevae import resources; "
                             f"print(resources.app_folder({str(tmp_path)!r}), flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        live_root = Path(live.stdout.readline().strip())
        ended = subprocess.run([sys.executable, "-c", "from aevae import resources; import os; "
                                f"r = resources.app_folder({str(tmp_path)!r}); print(r); os._exit(0)"],
                               capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        dead_root = Path(ended.stdout.strip())
        (dead_root / "session-x").mkdir()
        mine = resources.app_folder(tmp_path)  # this process's own
        legacy = tmp_path / "legacy"
        (legacy / "aevae-session-old").mkdir(parents=True)
        (legacy / "aevae-session-new").mkdir()
        old = time.time() - 4 * 3600
        os.utime(legacy / "aevae-session-old", (old, old))
        removed = resources.remove_stale_folders(tmp_path, legacy_base=legacy)
        assert removed == [dead_root, legacy / "aevae-session-old"] and live_root.exists() and mine.exists()
    finally:
        live.kill()
        live.wait()
    assert resources.remove_stale_folders(tmp_path, legacy_base=tmp_path / "legacy") == [live_root]


def test_leftovers_of_the_upload_folder_are_swept(tmp_path):
    (tmp_path / "tmpabc").write_bytes(b"")
    (tmp_path / "tmpfull").write_bytes(b"x")  # an upload being written: kept
    (tmp_path / ("a" * 64)).mkdir()
    (tmp_path / ("b" * 64)).mkdir()
    (tmp_path / ("b" * 64) / "f").write_bytes(b"x")
    (tmp_path / "vibe_edit_history").mkdir()
    old = time.time() - 100
    for p in tmp_path.iterdir():
        os.utime(p, (old, old))
    from ui.file_sweep import sweep_leftovers

    assert sweep_leftovers(tmp_path, 50) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tmpfull", "b" * 64, "vibe_edit_history"])


def test_a_scripts_sessions_go_first_and_nobody_elses(monkeypatch):
    store = SessionStore(None, limit=30, per_client=5, recent_s=0)
    student = store.get("student", page=True, client="10.0.0.1")
    teacher = store.get("teacher", client="10.0.0.2")  # an API user elsewhere
    for i in range(150):
        store.get(f"script-{i}", client="10.0.0.9")
    assert store.get("student") is student and store.get("teacher") is teacher
    assert sum(k.startswith("script-") for k in store._sessions) == 5
    with store.active("script-149"):  # a request in progress keeps its session
        for i in range(150, 160):
            store.get(f"script-{i}", client="10.0.0.9")
        assert "script-149" in store._sessions
    recent = SessionStore(None, per_client=5)  # used in the last RECENT_S: kept for now, whatever the count
    for i in range(20):
        recent.get(f"s{i}", client="x")
    assert len(recent) == 20


def test_a_closed_session_makes_no_folder():
    s = Session(None)
    folder = s.new_folder()
    s.close()
    assert not folder.exists()
    with pytest.raises(session_state.SessionEnded, match="session ended .*Reload the page"):
        s.new_folder()
    with pytest.raises(session_state.SessionEnded, match="session ended .*Reload the page"):
        _ = s.tmpdir


def test_uploads_to_reconstruct_are_decoded_only_as_far_as_shown(tmp_path, monkeypatch):
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(tmp_path / "many.zip", "w") as z:
        for i, img in enumerate(make_images(100, 24)):
            path = tmp_path / f"{i:03}.png"
            Image.fromarray(img).save(path)
            z.write(path, path.name)
    decoded = []
    real = data.decoding.decode
    monkeypatch.setattr(data.decoding, "decode", lambda *a: decoded.append(1) or real(*a))
    images = datasets.load_user_images([tmp_path / "many.zip", tmp_path / "000.png"], 32)
    assert len(images) == datasets.MAX_RECON_IMAGES == len(decoded)
    assert images.skipped == ["000.png: beyond the 64 images reconstructed at once (1 file not read)"]
    with pytest.raises(data.Cancelled, match="loading was cancelled"):
        datasets.load_user_images([tmp_path / "many.zip"], 32, should_stop=lambda: True)


def test_stop_while_an_upload_loads_is_kept_and_changes_nothing(app_module, tmp_path):
    """Stop pressed while Train still loads the upload: the load stops, nothing changes."""
    import types
    import zipfile

    import gradio as gr
    from PIL import Image

    Image.new("RGB", (1024, 1024), (30, 120, 200)).save(tmp_path / "one.png")
    with zipfile.ZipFile(tmp_path / "big.zip", "w") as z:
        for i in range(300):  # about 8 s of decoding
            z.write(tmp_path / "one.png", f"{i:03}.png")
    request = types.SimpleNamespace(session_hash="stop-while-loading")
    s = app_module.session(request)
    steps = app_module.train_models("default", 32, "16x4x4", 1, 60, 64, 2e-3, 1e-5, 0.1, 0, "upload",
                                    [str(tmp_path / "big.zip")], True, request)
    t0 = time.monotonic()
    assert next(steps)[0] == "Loading your data…"
    app_module.stop_training(request)
    with pytest.raises(gr.Error, match="Stopped while loading your data; nothing was changed"):
        next(steps)
    assert time.monotonic() - t0 < 5 and s.upload is None and not s.runs.items and not s.busy


def test_old_served_files_are_deleted_while_requests_add_more(tmp_path):
    """The web server's record of its files grows from other threads during a sweep: every old
    file is still deleted, the kept and the young ones stay, and the sweep never raises."""
    import threading

    names = {str(tmp_path / f"old{i}") for i in range(3000)}
    for n in names:
        Path(n).write_bytes(b"x")
    kept = str(tmp_path / "old0")
    moved = str(tmp_path / "moved")  # named, but already moved into a session's folder
    record = set(names) | {moved}
    stop = threading.Event()

    def requests():
        i = 0
        while not stop.is_set():
            record.add(str(tmp_path / f"new{i}"))  # names whose files do not exist (yet)
            i += 1
            time.sleep(0)  # lets the sweep run between adds, as requests do

    time.sleep(0.05)
    adder = threading.Thread(target=requests)
    adder.start()
    try:
        removed = resources.delete_old_files([record], {kept}, 0.01)
    finally:
        stop.set()
        adder.join()
    assert removed == 2999
    assert [p.name for p in tmp_path.iterdir()] == ["old0"]
    assert kept in record and moved not in record and not (names - {kept}) & record
    young = tmp_path / "young"
    young.write_bytes(b"x")
    assert resources.delete_old_files([{str(young)}], set(), 60) == 0 and young.exists()


# ---------------------------------------------------------------- the README's numbers, as behaviour


def test_uploads_are_decoded_on_half_the_cores():
    """DECODE_SLOTS as servers with these many cores read it at start (resources imported anew in
    a throwaway interpreter each time)."""
    cores = [1, 2, 3, 4, 16, None]
    code = ("import importlib, os\nfrom aevae import resources\n"
            f"for n in {cores!r}:\n"
            "    os.cpu_count = lambda n=n: n\n"
            "    print(importlib.reload(resources).DECODE_SLOTS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert [int(v) for v in out.stdout.split()] == [1, 1, 1, 2, 8, 1]  # half, at least one (a 2-core Space: 1)


def test_decoding_beyond_the_slots_waits_its_turn(monkeypatch):
    import threading

    monkeypatch.setattr(resources, "_decode_slots", threading.BoundedSemaphore(2))  # a 4-core server's
    inside, release = [], threading.Event()

    def decode():
        with resources.decoding():
            inside.append(1)
            release.wait(30)

    threads = [threading.Thread(target=decode) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(inside) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(inside) == 2
    asked = []
    with pytest.raises(data.Cancelled, match="^third: cancelled while waiting to decode$"):
        with resources.decoding(lambda: asked.append(1) or len(asked) > 2, "third"):
            inside.append("third")  # never: both slots are held
    assert "third" not in inside
    release.set()
    for t in threads:
        t.join(30)
    with resources.decoding(lambda: True, "later"):  # a free slot: no wait, should_stop not even asked
        inside.append("later")
    assert inside[-1] == "later"


def test_a_session_keeps_its_newest_32_output_folders_per_kind():
    s = Session(None)
    try:
        assert session_state.KEEP_FOLDERS == 32
        live = s.new_folder("live")
        made = [s.new_folder() for _ in range(40)]
        assert [f.exists() for f in made] == [False] * 8 + [True] * 32  # the oldest 8 removed
        assert live.exists()  # another kind (a training's live picture) is counted apart
        more_live = [s.new_folder("live") for _ in range(32)]
        assert not live.exists() and all(f.exists() for f in more_live + made[8:])
    finally:
        s.close()


def test_api_sessions_are_kept_20_per_client_address_and_100_in_all():
    assert (session_store.MAX_CLIENT_SESSIONS, session_store.MAX_SESSIONS) == (20, 100)
    store = SessionStore(None, recent_s=0)  # the defaults; none counts as used in the last 2 minutes
    one = [store.get(f"one-{i}", client="10.0.0.1") for i in range(30)]
    assert sum(k.startswith("one-") for k in store._sessions) == 20
    assert store._sessions.get("one-29") is one[29] and "one-9" not in store._sessions  # its oldest went
    for c in range(10):  # ten more addresses, 20 sessions each: 220 asked for
        for i in range(20):
            store.get(f"c{c}-{i}", client=f"10.0.1.{c}")
    assert len(store) == 100
    page = store.get("student", page=True, client="10.0.0.1")  # a page is not an API session
    for i in range(20):
        store.get(f"again-{i}", client="10.0.2.1")
    assert store._sessions.get("student") is page and len(store) == 101


@pytest.mark.parametrize("env, got", [(None, (300, 900)), ("2,10", (2, 10)), (" 60 , 120 ", (60, 120))])
def test_the_sweep_intervals(monkeypatch, env, got):
    """README: every 5 minutes, files older than 15 minutes; AEVAE_CACHE_SWEEP="300,900" sets both."""
    from aevae.server_env import cache_sweep

    if env is None:
        monkeypatch.delenv("AEVAE_CACHE_SWEEP", raising=False)
    else:
        monkeypatch.setenv("AEVAE_CACHE_SWEEP", env)
    assert cache_sweep() == got


@pytest.mark.parametrize("bad", ["300", "300,0", "a,b", "-1,5", "1,2,3"])
def test_a_bad_sweep_setting_is_refused_with_why(monkeypatch, bad):
    from aevae.server_env import cache_sweep

    monkeypatch.setenv("AEVAE_CACHE_SWEEP", bad)
    with pytest.raises(ValueError, match=r"AEVAE_CACHE_SWEEP must be two whole numbers of seconds > 0, like 300,900"):
        cache_sweep()

