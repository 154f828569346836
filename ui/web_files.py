"""The files the page runs the models with, served by the app itself under /aevae-web/.

    /aevae-web/ort/<name>      onnxruntime-web (ui/static/ort, checked against SHA256SUMS at start)
    /aevae-web/js/<name>       the page's own scripts (ui/static/js)
    /aevae-web/models/<name>   a pair's ONNX files (aevae.web_models, named by their content)

An ASGI middleware, so nothing of Gradio's routing is touched. Names are looked up in a table
made at start (never joined to a path); files are compressed once, when the browser takes gzip;
ETag and If-None-Match spare a second visit the 15 MB WebAssembly file.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from pathlib import Path

from aevae import web_models

PREFIX = "/aevae-web/"
STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".wasm": "application/wasm", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".onnx": "application/octet-stream"}
PLAIN = "text/plain; charset=utf-8"
GZ = ".gz"  # not shown (a file name's end)
COMPRESS = (".wasm", ".js", ".mjs", ".onnx")
CACHE = {"ort": "public, max-age=604800", "js": "no-cache", "models": "public, max-age=31536000, immutable"}
MAX_GZIP_MEMORY = 96 << 20  # compressed files kept (the runtime's wasm is under 4 MB of it)
log = logging.getLogger("aevae.app")


def check_runtime(folder: Path = STATIC / "ort") -> tuple[bool, str]:
    """(True, what) when every file of SHA256SUMS is there with its hash, else (False, why)."""
    try:
        lines = (folder / "SHA256SUMS").read_text().splitlines()
    except OSError:
        return False, f"{folder / 'SHA256SUMS'} is missing: run scripts/fetch_onnxruntime_web.py"  # not shown (the log)
    for line in lines:
        digest, _, name = line.partition("  ")
        try:
            got = hashlib.sha256(read_file(folder / name)).hexdigest()
        except (OSError, EOFError, gzip.BadGzipFile):
            return False, f"the page's runtime file {name} is missing: run scripts/fetch_onnxruntime_web.py"  # not shown (the log)
        if got != digest:
            return False, f"the page's runtime file {name} does not match SHA256SUMS: run scripts/fetch_onnxruntime_web.py"  # not shown (the log)
    version = (folder / "VERSION").read_text().splitlines()[0] if (folder / "VERSION").is_file() else "?"
    return True, f"{version}: {len(lines)} files match SHA256SUMS"  # not shown (the log)


def read_file(path: Path) -> bytes:
    """A file's bytes, from `path` or else from `path`.gz: the runtime's 14.8 MB WebAssembly file
    is committed gzipped (3.8 MB), under the 10 MiB a Hugging Face Space takes without LFS."""
    packed = path.with_name(path.name + GZ)
    if not path.is_file() and packed.is_file():
        return gzip.decompress(packed.read_bytes())
    return path.read_bytes()


def _table(folder: Path, names) -> dict[str, Path]:
    return {n: folder / n for n in names if (folder / n).is_file() or (folder / (n + GZ)).is_file()}


class WebFiles:
    def __init__(self, app, static: Path = STATIC, models=None):
        self.app = app
        self.models = models or web_models.read
        self.runtime_ok, why = check_runtime(static / "ort")
        (log.info if self.runtime_ok else log.warning)("the page's runtime: %s", why)
        ort_names = []
        if self.runtime_ok:
            ort_names = [line.partition("  ")[2] for line in (static / "ort" / "SHA256SUMS").read_text().splitlines()]
            ort_names += ["LICENSE", "VERSION", "SHA256SUMS"]
        js = static / "js"
        self.tables = {"ort": _table(static / "ort", ort_names),
                       "js": _table(js, [p.name for p in js.iterdir()] if js.is_dir() else [])}
        self.lock = threading.Lock()
        self.zipped: dict[tuple[str, str, str], bytes] = {}
        self.kept: dict[tuple[str, str], tuple[bytes, str]] = {}

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _answer(send, 405, b"only GET and HEAD here\n", [(b"allow", b"GET, HEAD")])  # not shown (scripts)
            return
        where, _, name = path[len(PREFIX):].partition("/")
        import anyio

        found = await anyio.to_thread.run_sync(self._read, where, name)
        if found is None:
            await _answer(send, 404, b"not found\n")  # not shown (scripts)
            return
        blob, etag = found
        headers = dict(scope.get("headers") or [])
        suffix = "." + name.rpartition(".")[2] if "." in name else ""
        zipped = suffix in COMPRESS and len(blob) > 1024 and "gzip" in headers.get(b"accept-encoding", b"").decode("latin-1")
        if zipped:  # each encoding its own tag (a cache must not mix them up)
            etag = etag[:-1] + '-gzip"'
        if etag in headers.get(b"if-none-match", b"").decode("latin-1"):
            await _answer(send, 304, b"", [(b"etag", etag.encode()), (b"cache-control", CACHE[where].encode()),
                                           (b"vary", b"accept-encoding")])
            return
        extra = [(b"etag", etag.encode()), (b"cache-control", CACHE[where].encode()), (b"vary", b"accept-encoding")]
        if zipped:
            blob = await anyio.to_thread.run_sync(self._gzip, where, name, blob)
            extra.append((b"content-encoding", b"gzip"))
        await _answer(send, 200, blob, extra, TYPES.get(suffix, PLAIN), head=scope.get("method") == "HEAD")

    def _read(self, where: str, name: str):
        """(bytes, etag) of a served file, or None."""
        if where == "ort" and (where, name) in self.kept:
            return self.kept[(where, name)]
        if where == "models":
            blob = self.models(name)
        else:
            path = self.tables.get(where, {}).get(name)
            if path is None:
                return None
            try:
                blob = read_file(path)
            except (OSError, EOFError, gzip.BadGzipFile):
                return None
            packed = path.with_name(path.name + GZ)
            if where == "ort" and packed.is_file():  # already compressed: sent as it is
                with self.lock:
                    self.zipped[(where, name, hashlib.sha256(blob).hexdigest())] = packed.read_bytes()
        if blob is None:
            return None
        found = blob, '"' + hashlib.sha256(blob).hexdigest()[:32] + '"'
        if where == "ort":  # fixed for the server's life: read and hashed once
            self.kept[(where, name)] = found
        return found

    def _gzip(self, where: str, name: str, blob: bytes) -> bytes:
        key = (where, name, hashlib.sha256(blob).hexdigest())
        with self.lock:  # once per file: 40 students' first visits share one compression
            z = self.zipped.get(key)
            if z is None:
                z = gzip.compress(blob, 6, mtime=0)
                while self.zipped and sum(map(len, self.zipped.values())) + len(z) > MAX_GZIP_MEMORY:
                    self.zipped.pop(next(iter(self.zipped)))
                self.zipped[key] = z
            return z


async def _answer(send, status: int, body: bytes, headers=(), kind: str = PLAIN, head: bool = False) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": b"" if head else body})
