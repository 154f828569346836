"""A prankster in the class (issue 25), against a served app (its own process, loopback, by bare
HTTP as any script could): no other session's file usable, refusals as one bounded line."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

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
