"""The models in the page (issue 28): export time per pair, milliseconds per decoded frame in
headless Chromium, pictures a second during a scripted 2 s drag across the code map, bytes on the
wire (first and second visit) and server requests during the drag.

    python bench/live_page.py [--pairs default,generate] [--frames 60] [--train]

Prints figures; asserts nothing. Run on an otherwise idle machine; the app runs in its own
process (tests/served.py) with the shipped checkpoints, Chromium in another.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from common import cpu_name  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]

# One frame as the panel draws it: both decoders on one code each, timed in the page.
FRAME_JS = """async (n) => {
  const L = window.aevaeLive, out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const z = {ae: new Float32Array(L.models.ae.D), vae: new Float32Array(L.models.vae.D)};
    for (const k of ["ae", "vae"]) for (let d = 0; d < z[k].length; d++) z[k][d] = Math.random() * 2 - 1;
    await Promise.all([L.decode("ae", z.ae, 1), L.decode("vae", z.vae, 1)]);
    out.push(performance.now() - t);
  }
  return out;
}"""


def export_times(pairs) -> None:
    import torch

    from aevae import web_models
    from aevae.zoo import DEFAULT_DIR, Zoo

    torch.set_num_threads(2)
    os.environ["AEVAE_CACHE"] = tempfile.mkdtemp()  # a cold cache: every file exported anew
    zoo = Zoo(DEFAULT_DIR)
    print("\nexport + check per pair (decoder and encoder of each model, cold cache):")
    print(f"{'pair':<16}{'seconds':>9}{'AE decoder KB':>15}{'VAE decoder KB':>16}{'all four KB':>13}")
    for name in pairs:
        ae, vae = (c.model for c in zoo.pair(name))
        t = time.perf_counter()
        names = {k: web_models.files_for(m) for k, m in (("ae", ae), ("vae", vae))}
        dt = time.perf_counter() - t
        size = {k: {p: len(web_models.read(n)) for p, n in v.items()} for k, v in names.items()}
        print(f"{name:<16}{dt:>9.2f}{size['ae']['decoder'] / 1e3:>15.0f}{size['vae']['decoder'] / 1e3:>16.0f}"
              f"{sum(sum(v.values()) for v in size.values()) / 1e3:>13.0f}")


def pick(page, pair: str) -> None:
    page.get_by_label("Models (default", exact=False).first.click()
    page.get_by_role("option", name=pair, exact=True).click()
    page.wait_for_function("want => window.aevaeLive && aevaeLive.data && aevaeLive.data.source === want && "
                           "aevaeLive.frames > 0", arg=pair, timeout=120_000)


def drag(page, seconds: float = 2.0) -> tuple[float, int]:
    canvas = page.locator('#aevae-live canvas[data-role="map-vae"]')
    canvas.scroll_into_view_if_needed()
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + 5, b["y"] + 5)
    page.mouse.down()
    frames, start, i = page.evaluate("aevaeLive.frames"), time.monotonic(), 0
    while time.monotonic() - start < seconds:
        f = (i % 100) / 100 if (i // 100) % 2 == 0 else 1 - (i % 100) / 100
        page.mouse.move(b["x"] + 5 + f * (b["width"] - 10), b["y"] + 5 + f * (b["height"] - 10))
        i += 1
    page.wait_for_function("() => !aevaeLive.busy")
    rate = (page.evaluate("aevaeLive.frames") - frames) / (time.monotonic() - start)
    page.mouse.up()
    return rate, i


def wire(page_requests) -> dict[str, int]:
    """Bytes received per kind of /aevae-web/ file (headers and body, as sent)."""
    out: dict[str, int] = {}
    for req in page_requests:
        if "/aevae-web/" not in req.url:
            continue
        kind = req.url.split("/aevae-web/", 1)[1].split("/", 1)[0]
        try:
            sizes = req.sizes()
        except Exception:  # noqa: BLE001 - a request served from the memory cache has no sizes
            continue
        out[kind] = out.get(kind, 0) + sizes["responseBodySize"] + sizes["responseHeadersSize"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="default,generate,ladder-16,ladder-256,ladder-64x16x16")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--train", action="store_true", help="also a pair trained in the page (default settings, 1 epoch)")
    args = ap.parse_args()
    import torch
    from playwright.sync_api import sync_playwright
    from served import Served

    print(f"{os.cpu_count()} CPUs, {cpu_name()}, torch {torch.__version__}")
    pairs = args.pairs.split(",")
    export_times(pairs)
    with Served({"AEVAE_CACHE": tempfile.mkdtemp()}) as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        done = []
        page.on("requestfinished", lambda r: done.append(r))
        page.goto(app.url)
        page.get_by_role("tab", name="Latent space").click()
        page.wait_for_function("() => window.aevaeLive && aevaeLive.frames > 0", timeout=120_000)
        first = wire(done)
        print("\nfirst visit, bytes on the wire under /aevae-web/ (headers + body):",
              ", ".join(f"{k} {v / 1e3:,.0f} KB" for k, v in sorted(first.items())))
        print(f"\n{'pair':<26}{'frame ms median':>16}{'p95':>8}{'drag pictures/s':>17}{'pointer moves/s':>17}"
              f"{'requests in drag':>18}")
        for name in pairs:
            pick(page, f"shipped: {name}")
            ms = page.evaluate(FRAME_JS, args.frames)
            seen = len(done)
            rate, moves = drag(page)
            ms.sort()
            print(f"{'shipped: ' + name:<26}{statistics.median(ms):>16.1f}{ms[int(0.95 * (len(ms) - 1))]:>8.1f}"
                  f"{rate:>17.0f}{moves / 2:>17.0f}{len(done) - seen:>18}")
        if args.train:
            page.get_by_role("tab", name="Train").click()
            box = page.get_by_label("number input for Epochs", exact=True).first
            box.fill("1")
            box.press("Tab")
            page.get_by_role("button", name="Train AE + VAE").click()
            page.get_by_text("run 1 · Train", exact=False).first.wait_for(timeout=1_800_000)
            page.get_by_role("tab", name="Latent space").click()
            page.wait_for_function("() => aevaeLive.data.source.startsWith('run') && aevaeLive.frames > 0",
                                   timeout=120_000)
            ms = sorted(page.evaluate(FRAME_JS, args.frames))
            seen = len(done)
            rate, moves = drag(page)
            print(f"{'trained here (1 epoch)':<26}{statistics.median(ms):>16.1f}{ms[int(0.95 * (len(ms) - 1))]:>8.1f}"
                  f"{rate:>17.0f}{moves / 2:>17.0f}{len(done) - seen:>18}")
        done.clear()
        page.reload()
        page.get_by_role("tab", name="Latent space").click()
        page.wait_for_function("() => window.aevaeLive && aevaeLive.frames > 0", timeout=120_000)
        second = wire(done)
        print("second visit (reload), bytes on the wire under /aevae-web/:",
              ", ".join(f"{k} {v / 1e3:,.1f} KB" for k, v in sorted(second.items())) or "none")
        browser.close()


if __name__ == "__main__":
    main()
