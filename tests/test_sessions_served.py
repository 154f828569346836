"""Issue 18 through a served app (its own process, loopback, every wait bounded), by its API and
by bare HTTP as any script could: nobody can erase, mix up or stall another student's work, and
nothing a session made stays on disk after it ends."""

from __future__ import annotations

import concurrent.futures as cf
import csv
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CLIENT_HTTPX, make_images
from gradio_client import Client, handle_file
from PIL import Image
from served import Bare
from test_data import zip_listing

TRAIN = ["default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, 0, "openmoji", None, True]  # small, a few seconds


def page(app) -> Bare:
    """A session as a browser page makes it: the heartbeat open and the page's load event run."""
    b = Bare(app.url, app.fns).heartbeat()
    assert b.call("load_picker", [])[0]
    return b


def test_a_students_run_survives_150_bare_http_sessions(served_app):
    student = page(served_app)
    try:
        ok, out = student.call("train", TRAIN, timeout=180)
        assert ok and "Done" in out[0], out
        t0 = time.monotonic()

        def script(_):  # a new session each: no page, no heartbeat
            return Bare(served_app.url, served_app.fns).call("runs", [], timeout=60)[0]

        with cf.ThreadPoolExecutor(8) as pool:
            assert all(pool.map(script, range(150)))
        print(f"150 bare sessions in {time.monotonic() - t0:.1f} s")
        ok, (table, *_rest) = student.call("runs", [])
        assert ok and len(table["data"]) == 1
        ok, (_, summary, _, _) = student.call("reconstruct", ["", 3, 0, False])
        assert ok and "run 1" in summary  # its own trained pair, not the shipped one
    finally:
        student.close()


def test_duplicate_entry_zips_are_refused_at_once(served_app, tmp_path):
    huge = Image.new("RGB", (4096, 4096), (90, 20, 200))  # exactly the per-image limit; compresses to little
    huge.save(tmp_path / "huge.png")
    png = (tmp_path / "huge.png").read_bytes()
    zips = [zip_listing(tmp_path / "same.zip", png, ["a.png"] * 2000),  # one name listed 2000 times
            zip_listing(tmp_path / "names.zip", png, [f"{i}.png" for i in range(2000)])]  # 2000 names, one image
    c = Client(served_app.url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    try:
        for z in zips:
            for args, api in [((*TRAIN[:10], "upload", [handle_file(str(z))], False), "/train"),
                              (([handle_file(str(z))], False), "/reconstruct_uploads")]:
                t0 = time.monotonic()
                with pytest.raises(Exception, match=z.name):  # noqa: PT011 - the app's own message
                    c.predict(*args, api_name=api)
                assert time.monotonic() - t0 < 15, (z.name, api)
    finally:
        c.close()


def content(path: str):
    """A file's content to compare: an image's pixels, an array, or the bytes."""
    if path.endswith(".png"):
        return np.asarray(Image.open(path)).tobytes()
    if path.endswith(".npy"):
        return np.load(path).tobytes()
    return Path(path).read_bytes()


def files_of(out) -> list[tuple[str, bytes]]:
    """(name, content) of every file in a call's outputs: the local copies gradio_client
    downloaded, or the server's own paths in a bare client's answer (read at once, before the
    server's sweep)."""
    found = []

    def walk(x):
        if isinstance(x, dict) and isinstance(x.get("path"), str) and x.get("meta", {}).get("_type") == "gradio.FileData":
            found.append(x["path"])
        elif isinstance(x, str) and x.startswith("/") and "\n" not in x and len(x) < 1024 and Path(x).is_file():
            found.append(x)
        elif isinstance(x, list | tuple):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)

    walk(out)
    return [(Path(p).name, content(p)) for p in found]


def test_six_parallel_calls_in_one_session_each_get_their_own_files(served_app, tmp_path):
    """A double click or a script: six calls at once in one session (gradio_client), each
    compared with the same call made alone in a session of its own (a bare client)."""
    own = []
    for i, img in enumerate(make_images(6, 40, seed=3)):
        Image.fromarray(img).save(tmp_path / f"own{i}.png")
        own.append(tmp_path / f"own{i}.png")
    calls = {  # endpoint: the inputs of call i (for the client, and for a bare client)
        "reconstruct": lambda i, up: ("", 5, i, False),
        "variants": lambda i, up: ("1-3", "(none)", 4, 2, 1.0, 100 + i),
        "prior_samples": lambda i, up: ("in use", 4, i),
        "latent_sizes": lambda i, up: ("", 2, i, False),
        "interpolate": lambda i, up: ("in use", 1 + i, 841, 3),
        "reconstruct_uploads": lambda i, up: ([up(own[i])], False),
    }
    together = Client(served_app.url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    try:
        for api, args in calls.items():
            alone = []
            for i in range(6):
                b = Bare(served_app.url, served_app.fns).heartbeat()
                ok, out = b.call(api, list(args(i, b.upload)))
                assert ok, out
                alone.append(files_of(out))
                b.close()
            jobs = [together.submit(*args(i, lambda p: handle_file(str(p))), api_name="/" + api) for i in range(6)]
            for i, job in enumerate(jobs):
                got = job.result(timeout=120)
                assert files_of(got) and files_of(got) == alone[i], (api, i)
                if api.startswith("reconstruct"):  # the CSV is the table shown
                    rows = list(csv.DictReader(open(got[3])))
                    assert [int(r["id"]) for r in rows] == [int(r[0]) for r in got[2]["data"]], (api, i)
        # points of one code map, decoded at six places at once
        *_, px, py, _live = together.predict("in use", "VAE", api_name="/code_map")
        m = min(float(px["maximum"]), float(py["maximum"]))
        points = [(m * i / 6, -m * i / 6) for i in range(6)]
        b = Bare(served_app.url, served_app.fns).heartbeat()
        assert b.call("code_map", ["in use", "VAE"])[0]
        alone = [files_of(b.call("decode_point", list(p))[1]) for p in points]
        b.close()
        jobs = [together.submit(*p, api_name="/decode_point") for p in points]
        assert [files_of(j.result(timeout=60)) for j in jobs] == alone
    finally:
        together.close()


def _state(c: Client) -> tuple:
    """What a session shows: its runs, the pair in use and its data (a reconstruction's table)."""
    table, *_ = c.predict(api_name="/runs")
    _, summary, recon, _ = c.predict("", 4, 0, False, api_name="/reconstruct")
    head, *_ = c.predict(api_name="/models")
    return [row for row in table["data"]], summary.split(".")[0], recon["data"], head


def test_a_refused_train_leaves_the_session_as_it_was(served_app, tmp_path):
    np.save(tmp_path / "mine.npy", make_images(40, 32))
    upload = [handle_file(str(tmp_path / "mine.npy"))]
    c = Client(served_app.url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    try:
        status, *_ = c.predict(*TRAIN, api_name="/train")
        assert "Done" in status
        before = _state(c)
        assert "run 1" in before[1]
        bad = tmp_path / "bad.zip"
        zip_listing(bad, b"x", ["a.png"] * 3)
        for args, why in [([*TRAIN[:10], "upload", [handle_file(str(bad))], True],  # bad data
                            r"bad\.zip.*archives with repeated entries are refused"),
                           # loads the upload, then is over the memory budget
                           (["report-b", 128, "256x8x8", 1, 60, 512, 1e-3, 0.0, 1.0, 0, "upload", upload, True],
                            r"this server allows 1\.5 GB per training: (try batch ≤|.*even at batch 1)")]:
            with pytest.raises(Exception, match=why):  # noqa: PT011,B017 - gradio_client's AppError, the app's message
                c.predict(*args, api_name="/train")
            assert _state(c) == before
        # a second Train while one runs: "already running", and the session's data stays OpenMoji
        long = c.submit(*TRAIN[:3], 200, 120, 8, *TRAIN[6:10], "openmoji", None, False, api_name="/train")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (long.outputs() and re.search(r"step [1-9]", str(long.outputs()[-1]))):
            time.sleep(0.3)
        with pytest.raises(Exception, match="already running"):
            c.predict(*TRAIN[:10], "upload", upload, True, api_name="/train")
        c.predict(api_name="/stop")
        assert "Stopped by you" in long.result(timeout=120)[0]
        runs, summary, recon, head = _state(c)
        assert runs[:-1] == before[0] and len(runs) == len(before[0]) + 1  # the stopped run is kept, as a new row
        assert (summary, recon, head) == before[1:]  # same pair in use, same data (not the upload)
    finally:
        c.close()


def test_a_cancelled_request_stops_decoding(served_app, tmp_path):
    """Reconstructing a zip of 40 images of 4096x4096 (legal, each decoded in a fraction of a
    second) is cancelled: the server's CPU goes quiet at once."""
    one = tmp_path / "one.png"
    Image.new("RGB", (4096, 4096), (30, 120, 200)).save(one)
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as z:
        for i in range(40):
            z.write(one, f"{i:02}.png")
    c = Client(served_app.url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    try:
        cpu0 = served_app.cpu()
        job = c.submit([handle_file(str(tmp_path / "many.zip"))], False, api_name="/reconstruct_uploads")
        time.sleep(2.5)
        busy = served_app.cpu() - cpu0
        job.cancel()
        time.sleep(0.5)
        cpu1 = served_app.cpu()
        time.sleep(2)
        assert busy > 0.3 and served_app.cpu() - cpu1 < 0.5, (busy, served_app.cpu() - cpu1)
    finally:
        c.close()


def test_after_all_sessions_end_their_files_are_gone(served_app, tmp_path):
    """Sessions upload, train, reconstruct their images and download files; once they end (their
    pages close), the server's temp and upload folders hold nothing of theirs."""
    np.save(tmp_path / "mine.npy", make_images(40, 32))
    Image.fromarray(make_images(1, 40)[0]).save(tmp_path / "own.png")
    sessions = [page(served_app) for _ in range(2)]
    try:
        for i, b in enumerate(sessions):
            data = b.upload(tmp_path / "mine.npy")
            ok, out = b.call("train", [*TRAIN[:9], i, "upload", [data], True], timeout=180)
            assert ok and "Done" in out[0], out
            assert b.call("reconstruct_uploads", [[b.upload(tmp_path / "own.png")], False])[0]
            assert b.call("variants", ["1-3", "(none)", 4, 2, 1.0, 0])[0]
            assert b.call("report", [], timeout=120)[0]
        made = served_app.files()
        assert any("session-" in p for p in made["uploads"])
    finally:
        for b in sessions:
            b.close()
    deadline = time.monotonic() + 60  # the sweep: every 2 s, files older than 10 s (SERVED_ENV)
    while time.monotonic() < deadline:
        left = served_app.files()
        ours = [p for p in left["uploads"] if not p.startswith(("aevae-app-", "vibe_edit_history"))]
        ours += [p for p in left["uploads"] if p.startswith("aevae-app-") and "/" in p
                 and not p.endswith("/.lock")]
        tmp = [p for p in left["tmp"] if not p.startswith("pymp-")]  # the app's own: its workers' sockets
        if not ours and not tmp:
            break
        time.sleep(1)
    assert not ours and not tmp, (ours, tmp)
    assert "Traceback" not in served_app.log(), served_app.log()[-3000:]

