"""The page's runtime and models served by the app itself (ui/web_files.py), and the runtime's fetch script."""

import hashlib
import io
import logging
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ui import web_files

ROOT = Path(__file__).resolve().parent.parent
ORT = ROOT / "ui" / "static" / "ort"
WASM = "ort-wasm-simd-threaded.wasm"


def sums(folder=ORT) -> dict[str, str]:
    return {n: h for h, _, n in (line.partition("  ") for line in (folder / "SHA256SUMS").read_text().splitlines())}


def client(static=web_files.STATIC, models=None) -> TestClient:
    inner = Starlette(routes=[Route("/{p:path}", lambda r: PlainTextResponse("the app"))])
    return TestClient(web_files.WebFiles(inner, static=static, models=models or {"ok.onnx": b"\x08" * 4000}.get))


def test_the_committed_runtime_matches_its_sums_and_is_served_as_webassembly_compressed():
    assert web_files.check_runtime()[0], web_files.check_runtime()[1]
    c = client()
    r = c.get(f"/aevae-web/ort/{WASM}", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/wasm"
    assert r.headers["content-encoding"] == "gzip" and int(r.headers["content-length"]) < 4_500_000
    assert hashlib.sha256(r.content).hexdigest() == sums()[WASM]  # the client undid the gzip: the file itself
    assert r.headers["vary"].lower() == "accept-encoding" and "max-age" in r.headers["cache-control"]
    plain = c.get(f"/aevae-web/ort/{WASM}", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and hashlib.sha256(plain.content).hexdigest() == sums()[WASM]
    assert r.headers["etag"] != plain.headers["etag"]  # each encoding its own tag
    assert not (ORT / WASM).exists() and (ORT / (WASM + ".gz")).stat().st_size < 10 * 2**20  # a Space takes it
    again = c.get(f"/aevae-web/ort/{WASM}", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""  # a second visit downloads nothing
    js = c.get("/aevae-web/ort/ort.wasm.min.js")
    assert js.headers["content-type"].startswith("text/javascript") and js.content.startswith(b"/*!")
    assert c.get("/aevae-web/js/live.js").headers["cache-control"] == "no-cache"


def test_models_are_served_by_name_and_long_cached():
    c = client()
    r = c.get("/aevae-web/models/ok.onnx", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.content == b"\x08" * 4000 and r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"]
    assert c.get("/aevae-web/models/other.onnx").status_code == 404


@pytest.mark.parametrize("path", ["/aevae-web/ort/..%2F..%2F..%2Fapp.py", "/aevae-web/js/../../app.py",
                                  "/aevae-web/ort/", "/aevae-web/ort",
                                  "/aevae-web/static/js/live.js", "/aevae-web/js/%2e%2e/web_files.py",
                                  "/aevae-web/ort/ort.wasm.min.js/", "/aevae-web/models/..%2F..%2Fapp.py"])
def test_anything_else_under_the_prefix_is_not_found(path):
    r = client().get(path)
    assert (r.status_code, r.text) == (404, "not found\n") or r.text == "the app"  # a client may fold "../"
    assert b"import" not in r.content


def test_only_get_and_head():
    c = client()
    r = c.post(f"/aevae-web/ort/{WASM}")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    head = c.head(f"/aevae-web/ort/{WASM}")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 3_000_000
    assert c.get("/elsewhere").text == "the app"  # the rest of the app is untouched


def test_a_tampered_runtime_is_not_served_and_the_log_says_which_file(tmp_path, caplog):
    static = tmp_path / "static"
    shutil.copytree(web_files.STATIC, static)
    blob = bytearray((static / "ort" / "ort.wasm.min.js").read_bytes())
    blob[100] ^= 1
    (static / "ort" / "ort.wasm.min.js").write_bytes(bytes(blob))
    with caplog.at_level(logging.INFO, "aevae.app"):
        c = client(static)
    assert "ort.wasm.min.js does not match SHA256SUMS" in caplog.text
    assert c.get(f"/aevae-web/ort/{WASM}").status_code == 404  # the page then uses the server's path
    assert c.get("/aevae-web/js/live.js").status_code == 200
    (static / "ort" / (WASM + ".gz")).unlink()
    ok, why = web_files.check_runtime(static / "ort")
    assert not ok and f"the page's runtime file {WASM} is missing" in why


def fake_tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_the_fetch_script_refuses_a_tarball_of_another_integrity_and_extracts_only_what_the_page_needs(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import fetch_onnxruntime_web as fetch

    files = {m: f"{m} body".encode() for m in fetch.FILES}
    files["package/package.json"] = b'{"license": "MIT", "repository": {"url": "x"}}'
    files["package/dist/ort.wasm.min.js"] = b"/*!\n * ONNX Runtime Web\n */ var ort;"
    files["package/dist/ort.all.min.js"] = b"not needed"
    blob = fake_tarball(files)
    with pytest.raises(SystemExit, match=r"the tarball's integrity is sha512-\S+, expected sha512-AAAA: refused"):
        fetch.check_integrity(blob, "sha512-AAAA")
    fetch.check_integrity(blob, fetch.integrity_of(blob))
    got = fetch.extract(blob, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([n + ".gz" if n.endswith(".wasm") else n
                                                                 for n in fetch.FILES.values()] + ["LICENSE", "SHA256SUMS", "VERSION"])
    assert got[WASM] == hashlib.sha256(files["package/dist/" + WASM]).hexdigest()  # of the file as served
    assert got["ort.wasm.min.js"] == hashlib.sha256(files["package/dist/ort.wasm.min.js"]).hexdigest()
    assert "MIT License" in (tmp_path / "LICENSE").read_text() and web_files.check_runtime(tmp_path)[0]
    with pytest.raises(SystemExit, match="is licensed 'GPL', not MIT"):
        fetch.extract(fake_tarball({**files, "package/package.json": b'{"license": "GPL"}'}), tmp_path / "b")
