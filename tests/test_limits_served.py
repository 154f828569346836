"""Issue 17 through a served app's API (its own process, loopback, every wait bounded): each
input the UI allows, and each hostile one, is refused with a message or runs; the app's resident
memory (from /proc) stays under its documented budget; it answers a normal request afterwards;
its log holds one line per refusal and no traceback."""

from __future__ import annotations

import io
import re
import time
import zipfile

import numpy as np
import pytest
from conftest import CLIENT_HTTPX, served_budget
from gradio_client import Client, handle_file
from PIL import Image
from served import Bare

QUICK = ("quick", 64, "8x16x16", 1, 60, 32, 3e-3, 1e-5, 0.1, 0, "openmoji", None, False)  # the Train inputs


@pytest.fixture(scope="module")
def client(served_app):
    c = Client(served_app.url, verbose=False, httpx_kwargs=CLIENT_HTTPX)
    yield c
    c.close()


def refused(client, *args, api_name, match):
    """The call's error message (it must be refused, saying `match`: why)."""
    with pytest.raises(Exception) as e:  # noqa: PT011 - gradio_client raises AppError with the app's message
        client.predict(*args, api_name=api_name)
    assert match in str(e.value), str(e.value)
    return str(e.value)


def healthy(app, client):
    """Under the documented budget, answering a normal request, no traceback in the log."""
    print(f"peak RSS {app.peak_rss() / 1e9:.2f} GB of {served_budget() / 1e9:.2f}")
    assert app.peak_rss() < served_budget(), f"peak RSS {app.peak_rss() / 1e9:.2f} GB"
    _, summary, table, _ = client.predict("", 3, 1, False, api_name="/reconstruct")
    assert len(table["data"]) == 3 and "shipped" in summary
    log = app.log()
    assert "Traceback" not in log and "Exception in" not in log, log[-3000:]


def test_out_of_range_numbers_seeds_nan_and_latents_are_refused_in_one_log_line(served_app, client):
    msgs = [
        refused(client, "", 500, 0, False, api_name="/reconstruct", match="maximum value 64"),
        refused(client, "1", "(none)", 4, 99, 1.0, 0, api_name="/variants", match="maximum value 10"),
        refused(client, "in use", 0, 0, api_name="/prior_samples", match="minimum value 1"),
    ]
    seed = 2**70  # answered "Overflow when unpacking long long" before
    for args, api in [(("", 5, seed, False), "/reconstruct"), (("1", "(none)", 4, 2, 1.0, seed), "/variants"),
                      (("in use", 4, seed), "/prior_samples"), (("", 3, seed, False), "/latent_sizes"),
                      ((*QUICK[:9], seed, *QUICK[10:]), "/train"), (("5", 32, "8", seed, 60), "/sweep"),
                      ((*QUICK[:9], -1, *QUICK[10:]), "/train")]:
        msgs.append(refused(client, *args, api_name=api, match="seed must be"))
    for latent in ("64x0x0", "0", "20000", "64x8"):  # 64x0x0 trained as "latent 64" before; 20000 took 4.5 GB
        msgs.append(refused(client, *QUICK[:2], latent, *QUICK[3:], api_name="/train", match="latent"))
        msgs.append(refused(client, latent, 1, api_name="/train_rung", match="latent"))
    bare = Bare(served_app.url, served_app.fns).heartbeat()
    assert bare.call("code_map", ["in use", "VAE"])[0]
    for bad in ("NaN", "Infinity", "-Infinity"):  # what JSON from a script can hold; sliders do not catch NaN
        ok, msg = bare.call("decode_point", [], json_text=f"[{bad}, 0]")
        assert not ok and ("finite" in msg or "value" in msg), msg
    bare.close()
    lines = [line for line in served_app.log().splitlines() if "refused " in line]
    assert any("refused reconstruct" in line and "maximum value 64" in line for line in lines)  # Gradio's own check
    assert len(lines) >= len(msgs) + 3
    healthy(served_app, client)


def test_the_issues_hostile_inputs_are_refused_before_they_cost(served_app, client, tmp_path):
    # report B at 128 px and batch 512 (both slider maxima): 5.8 GB for one run before
    msg = refused(client, "report-b", 128, "256x8x8", 1, 60, 512, 1e-3, 0.0, 1.0, 0, "openmoji", None, False,
                  api_name="/train", match="this server allows 1.5 GB per training")
    assert "this server allows 1.5 GB per training" in msg and ("try batch ≤" in msg or "even at batch 1" in msg)
    # 60,000 blank 64x64 images in a small .npz: refused after 3.8 GB and 20 s before
    buf = io.BytesIO()
    np.savez_compressed(buf, data=np.zeros((60000, 64, 64, 3), np.uint8))
    (tmp_path / "blank.npz").write_bytes(buf.getvalue())
    t0, rss0 = time.monotonic(), served_app.rss()
    refused(client, *QUICK[:10], "upload", [handle_file(str(tmp_path / "blank.npz"))], False, api_name="/train",
            match="60000 images; the limit is 10000")
    assert time.monotonic() - t0 < 15 and served_app.rss() - rss0 < 200e6
    # a zip bomb of one entry: stopped at its declared size, not decompressed
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", b"\0" * 60_000_000)
    refused(client, *QUICK[:10], "upload", [handle_file(str(tmp_path / "bomb.zip"))], False, api_name="/train",
            match="bomb.zip")
    healthy(served_app, client)


STEPPED = re.compile(r"step [1-9]")  # the progress line after a first batch ("epoch 1/500, step 1/...")


def run_then_stop(client, *args, api_name, timeout=240):
    """Start a call that trains, wait until it has trained a batch, press Stop (same session):
    the last status it answers."""
    job = client.submit(*args, api_name=api_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not job.done():
        outs = job.outputs()
        if outs and STEPPED.search(str(outs[-1])):
            break
        time.sleep(0.5)
    client.predict(api_name="/stop")
    try:
        out = job.result(timeout=timeout)
    except Exception as e:  # noqa: BLE001 - a refusal is an answer too
        return str(e)
    return str(out)


def test_every_slider_at_its_maximum_is_refused_or_runs(served_app, client):
    # Train: batch 512, epochs 500, time cap 600 at 128 px: refused with the batch that fits, which runs
    msg = refused(client, "quick", 128, "8x16x16", 500, 600, 512, 3e-3, 1e-5, 0.1, 0, "openmoji", None, False,
                  api_name="/train", match="try batch ≤")
    fits = int(msg.split("try batch ≤ ")[1].split()[0].rstrip(".,"))
    status = run_then_stop(client, "quick", 128, "8x16x16", 500, 600, fits, 3e-3, 1e-5, 0.1, 0, "openmoji", None,
                           False, api_name="/train")
    assert "Stopped by you" in status, status
    # the other tabs' sliders at their maxima
    _, _, table, _ = client.predict("", 64, 0, True, api_name="/reconstruct")
    assert len(table["data"]) == 64
    gallery, _, files, _ = client.predict("", "smileys & emotion", 40, 10, 5.0, 0, api_name="/variants")
    assert len(gallery) == 40 and any(f.endswith("gen_data.npy") for f in files)
    _, table, _, _ = client.predict("", 16, 0, True, api_name="/latent_sizes")
    assert len(table["data"]) >= 1
    img, note = client.predict("in use", 32, 0, api_name="/prior_samples")
    h, w, _ = np.asarray(Image.open(img)).shape
    assert "32 draws" in note and w >= 32 * (h // 2), (w, h)  # two rows (VAE, AE) of 32 square cells
    img, note, _scrub = client.predict("in use", 3, 841, 16, api_name="/interpolate")
    h, w, _ = np.asarray(Image.open(img)).shape
    assert "16 steps" in note and w >= 16 * (h // 3), (w, h)  # three rows (AE, VAE linear, VAE spherical)
    points, _, note, px, py, _live = client.predict("in use", "VAE", api_name="/code_map")
    n_val = len(points["value"]["data"])
    assert n_val >= 100 and f"codes of {n_val} validation images" in note and px["maximum"] > 0 < py["maximum"]
    corner = np.asarray(Image.open(client.predict(px["maximum"], py["maximum"], api_name="/decode_point")))
    assert corner.ndim == 3 and corner.shape[0] == corner.shape[1] >= 32 and corner.std() > 0  # a picture, not blank
    for args, api in [(("128", 50), "/train_rung"), (("0, 0.1, 0.5, 1, 2, 4", 30), "/beta_sweep"),
                      (("5, 10, 15", 4096, "8x16x16", 0, 600), "/sweep")]:
        status = run_then_stop(client, *args, api_name=api)
        assert "stopped" in status.lower(), (api, status[:300])
    healthy(served_app, client)
