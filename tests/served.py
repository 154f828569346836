"""The app served in its own process, and a bare HTTP client: for tests and benchmarks that
measure the server as it runs (its memory and CPU from /proc) and talk to it as a script would.

    with Served({"AEVAE_TRAIN_MEMORY_GB": "1.5"}) as app:
        bare = Bare(app.url)
        ok, out = bare.call("reconstruct", ["", 5, 0, False])
        app.peak_rss()  # bytes, the server process's own (VmHWM)

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def tree(pid: int) -> list[int]:
    """A process and its descendants (the app's training workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Served:
    """`python app.py --port P` in a subprocess, with its own temp and upload folders."""

    def __init__(self, env: dict[str, str] | None = None, startup_s: float = 120, cpus: set[int] | None = None):
        """`cpus`: the CPUs the server may use (e.g. {0, 1}, as a 2-vCPU Space), default all."""
        self.dir = Path(tempfile.mkdtemp(prefix="aevae-served-"))
        self.tmp, self.uploads = self.dir / "tmp", self.dir / "uploads"
        self.tmp.mkdir()
        self.uploads.mkdir()
        self.log_path = self.dir / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "TMPDIR": str(self.tmp), "GRADIO_TEMP_DIR": str(self.uploads),
                    "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.startup_s, self.cpus = startup_s, cpus
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Served:
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        pin = (lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=pin)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited at start:\n{self.log()}")
            try:
                urllib.request.urlopen(self.url + "config", timeout=5).read()
                self.fns = {d["api_name"]: d["id"] for d in self.config()["dependencies"] if d.get("api_name")}
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the app did not answer within {self.startup_s:.0f} s:\n{self.log()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # quicker than Ctrl-C (about 8 s in Gradio's close); the folders go below
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self) -> dict:
        return json.loads(urllib.request.urlopen(self.url + "config", timeout=10).read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _sum(self, read) -> float:
        total = 0
        for pid in tree(self.pid):  # the server and its training workers
            try:
                total += read(pid)
            except OSError:  # a worker that just exited
                continue
        return total

    def rss(self) -> int:
        """Resident memory of the server and its workers now."""
        return self._sum(lambda pid: proc_status(pid)["VmRSS"])

    def peak_rss(self) -> int:
        """The sum of each live process's peak (VmHWM): at least the app's peak."""
        return self._sum(lambda pid: proc_status(pid)["VmHWM"])

    def cpu(self) -> float:
        """CPU seconds of the server and its live workers."""
        return self._sum(cpu_seconds)

    def files(self) -> dict[str, set[str]]:
        """Every file and folder under the server's temp and upload folders (relative paths)."""
        out = {}
        for name, root in (("tmp", self.tmp), ("uploads", self.uploads)):
            out[name] = set()
            for folder, dirs, files in os.walk(root):  # skips what is removed while it walks
                rel = os.path.relpath(folder, root)
                out[name].update(os.path.normpath(os.path.join(rel, f)) for f in dirs + files)
        return out


class Bare:
    """A client that speaks the queue's HTTP protocol by hand, under one session hash.

    A script needs no page and no client library; `heartbeat()` opens what a page keeps open
    (closing it ends the session, as closing a tab does)."""

    def __init__(self, url: str, fns: dict[str, int], session_hash: str | None = None):
        self.url, self.fns = url, fns
        self.session_hash = session_hash or uuid.uuid4().hex[:11]
        self._heartbeat: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self.notices: list[str] = []  # what the app told this session (gr.Warning / gr.Info)

    def _post(self, path: str, body: bytes, content_type: str, timeout: float = 30) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method="POST", headers={"Content-Type": content_type})
        return urllib.request.urlopen(req, timeout=timeout).read()

    def upload(self, path: str | Path) -> dict:
        """A file posted to the upload route, as the FileData an event takes."""
        path, boundary = Path(path), uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
            f"\r\n--{boundary}--\r\n".encode()
        server_path = json.loads(self._post("gradio_api/upload", body, f"multipart/form-data; boundary={boundary}"))[0]
        return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, fn: str | int, data: list, timeout: float = 120, json_text: str | None = None,
             on_message=None):
        """(True, outputs) or (False, the error message); `fn` is an api_name or an event index.

        json_text: the "data" list as raw JSON (e.g. NaN, which a JSON encoder will not write).
        on_message: called with each of this event's messages (e.g. a generator's progress)."""
        index = self.fns[fn.lstrip("/")] if isinstance(fn, str) else fn
        payload = json.dumps({"data": "__DATA__", "fn_index": index, "session_hash": self.session_hash,
                              "event_data": None, "trigger_id": None})
        payload = payload.replace('"__DATA__"', json_text if json_text is not None else json.dumps(data))
        event_id = json.loads(self._post("gradio_api/queue/join", payload.encode(), "application/json"))["event_id"]
        deadline = time.monotonic() + timeout
        with urllib.request.urlopen(f"{self.url}gradio_api/queue/data?session_hash={self.session_hash}",
                                    timeout=timeout) as stream:
            for raw in stream:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer from {fn} within {timeout} s")
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") not in (None, event_id):
                    continue
                if on_message is not None:
                    on_message(msg)
                if msg.get("msg") == "log":
                    self.notices.append(msg.get("log") or "")
                if msg.get("msg") == "process_completed":
                    out = msg.get("output") or {}
                    if msg.get("success"):
                        return True, out.get("data")
                    return False, out.get("error") or out.get("title") or "error"
        raise ConnectionError(f"the stream closed before {fn} answered")

    def heartbeat(self) -> Bare:
        """Open the heartbeat stream a page keeps open, read in a thread, until close()."""
        host, port = self.url.split("//")[1].rstrip("/").split(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self._conn.request("GET", f"/gradio_api/heartbeat/{self.session_hash}")
        response = self._conn.getresponse()

        def beat():
            try:
                while response.readline():
                    pass
            except Exception:  # noqa: BLE001 - the stream ends however close() cut it
                pass

        self._heartbeat = threading.Thread(target=beat, daemon=True)
        self._heartbeat.start()
        return self

    def close(self) -> None:
        """Close the heartbeat: the server ends the session (as when a tab closes)."""
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except (AttributeError, OSError):
                pass
            conn.close()
