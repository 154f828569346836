"""A prankster in the class (issue 25), against a served app (its own process, loopback, by bare
HTTP as any script could): no other session's file usable, refusals as one bounded line."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from served import Bare


def page(app) -> Bare:
    b = Bare(app.url, app.fns).heartbeat()
    assert b.call("load_picker", [])[0]
    return b


def photo(folder: Path, name: str, color) -> Path:
    path = folder / name
    Image.new("RGB", (40, 40), color).save(path)
    return path


def as_input(path: str | Path) -> dict:
    return {"path": str(path), "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def app_files(app, pattern: str) -> list[Path]:
    return sorted(p for p in app.uploads.rglob(pattern) if p.is_file())


def test_one_session_cannot_read_or_delete_anothers_files(served_app, tmp_path):
    a, b = page(served_app), page(served_app)
    try:
        sent = a.upload(photo(tmp_path, "secret.png", (200, 30, 40)))
        ok, out = a.call("reconstruct_uploads", [[sent], False])
        assert ok, out
        kept = [p for p in app_files(served_app, "*secret.png") if "/own/" in str(p)]
        assert len(kept) == 1  # A's photo, kept in A's folder under a name nobody can guess
        session_folder = kept[0].parent.parent
        assert len(session_folder.name) >= len("session-") + 32
        lock = next(served_app.uploads.rglob(".lock"))
        # B names A's kept photo and the app's lock. (A's original upload path is a keyed hash of
        # its bytes: only someone who uploaded the same bytes has it, and may have a copy.)
        assert len(Path(sent["path"]).parent.name) == 64
        for named, why in [(kept[0], "not a file of this session"), (lock, "not a file of this session")]:
            ok, err = b.call("reconstruct_uploads", [[as_input(named)], False])
            assert not ok and why in err, (named, err)
        # A's dataset, kept once A trains on it: B cannot train on it by naming it
        zipped = tmp_path / "mine.zip"
        with zipfile.ZipFile(zipped, "w") as zf:
            for i in range(8):
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), (30 * i, 90, 200)).save(buf, "PNG")
                zf.writestr(f"{i}.png", buf.getvalue())
        train = ["default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, 0, "upload"]
        ok, out = a.call("train", [*train, [a.upload(zipped)], False], timeout=180)
        assert ok, out
        dataset = next(p for p in app_files(served_app, "*mine.zip") if "/upload-" in str(p))
        ok, err = b.call("train", [*train, [as_input(dataset)], False])
        assert not ok and "not a file of this session" in err, err
        # the web server listed those paths as received; its sweep (every 2 s, files over 10 s)
        # still leaves the app's own files alone
        time.sleep(14)
        assert kept[0].is_file() and lock.is_file()
        ok, (_, summary, *_rest) = a.call("reconstruct_uploads", [[as_input(kept[0])], False])
        assert ok and "Mean ± std over 1 images" in summary  # A may name its own kept file
        assert "Traceback" not in served_app.log()
    finally:
        a.close()
        b.close()


def test_odd_requests_get_a_bounded_answer_and_one_log_line(served_app):
    b = page(served_app)
    try:
        before = len(served_app.log())
        # a stream for a session that never joined anything
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{served_app.url}gradio_api/queue/data?session_hash=nobody-{time.time_ns()}",
                                   timeout=30)
        huge = "1" * 5_000_000  # a 5 MB "id list"
        cases = [("reconstruct", [huge, 3, 0, False], "is not an id"),
                 ("reconstruct", ["9" * 5000, 3, 0, False], "is not an id"),
                 ("reconstruct", ["", "three", 0, False], None),  # wrong type for a number
                 ("interpolate", ["in use", None, 2, 5], "image id must be between"),
                 ("interpolate", '["in use", ' + "9" * 5000 + ", 2, 5]", None),  # raw JSON: a 5,000-digit id
                 ("use_models", ["x" * 5_000_000], None)]
        for fn, args, why in cases:
            try:
                ok, err = (b.call(fn, [], json_text=args, timeout=120) if isinstance(args, str)
                           else b.call(fn, args, timeout=120))
            except urllib.error.HTTPError as e:  # refused before any handler: the request itself
                ok, err = False, f"HTTP {e.code}: {e.read()[:3000].decode(errors='replace')}"
                assert e.code in (400, 413, 422), err
            assert not ok and len(err) < 2100, (fn, err[:200])
            assert why is None or why in err, (fn, err[:300])
            assert "int_max_str_digits" not in err and "NoneType" not in err, err[:300]
        log = served_app.log()[before:]
        assert "Traceback" not in log, log[-3000:]
        assert max(map(len, log.splitlines())) < 1000  # nothing echoed whole
        ok, _ = b.call("reconstruct", ["", 3, 0, False])  # and the session still works
        assert ok
    finally:
        b.close()
