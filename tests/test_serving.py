"""The served app under load and against hostile requests (loopback only, bounded)."""

import concurrent.futures as cf
import time
import urllib.error
import urllib.request

import pytest
from conftest import free_port
from gradio_client import Client


def test_paths_outside_the_app_are_refused(server):
    for path in ("gradio_api/file=/etc/passwd", "gradio_api/file=../../etc/passwd",
                 "file=/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server + path, timeout=10)
        assert e.value.code in (403, 404)


def test_oversize_upload_is_refused(app_module):
    port = free_port()
    demo = app_module.serve("127.0.0.1", port, block=False, max_file_size=10_000)
    try:
        body = b"x" * 50_000
        boundary = "aevaeboundary"
        payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.npy\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/gradio_api/upload", data=payload, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 413
    finally:
        demo.close()


def test_a_classroom_at_once(server, capfd):
    """30 clients reconstruct at once while 2 other sessions train; every answer is right."""
    def reconstruct(i):
        c = Client(server, verbose=False)
        t0 = time.monotonic()
        _, summary, table, _ = c.predict("", 10, i, False, api_name="/reconstruct")
        return time.monotonic() - t0, len(table["data"]), summary

    def train(i):
        c = Client(server, verbose=False)
        status, *_ = c.predict("default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, i, "openmoji", None,
                               False, api_name="/train")
        return status

    with cf.ThreadPoolExecutor(32) as pool:
        trainings = [pool.submit(train, i) for i in range(2)]
        recs = [pool.submit(reconstruct, i) for i in range(30)]
        results = [f.result(timeout=240) for f in recs]
        statuses = [f.result(timeout=240) for f in trainings]
    assert all(n == 10 and "shipped" in s for _, n, s in results)
    assert all("Done" in s for s in statuses)
    err = capfd.readouterr().err
    assert "Traceback" not in err
