"""Seconds from a click on the language switch until every result on the page reads in the new
language: Chinese -> English and back, in Chromium, with results on every tab.

    python bench/switch_language.py [--repeats 3]

Serves the app (shipped checkpoints, AEVAE_CHECKPOINTS as for the app) on a free 127.0.0.1 port,
opens it in Debian's Chromium with a zh-TW locale, presses each tab's main button (training
nothing), then switches the language --repeats times each way and prints the seconds until the
page holds no Chinese (English) or no English phrase of the catalog (Chinese). The page is polled
every 0.1 s, so the figures are at most that late. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


FAST = ("const text = () => { const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); const out = [];"
        " while (w.nextNode()) { const p = w.currentNode.parentElement;"
        " if (p && !p.closest('#aevae-lang, script, style')) out.push(w.currentNode.nodeValue); } return out.join('\\n'); };")
NO_CJK = "() => { " + FAST + " return !/[\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef]/.test(text()); }"
NO_PHRASE = "(phrases) => { " + FAST + " const t = text(); return !phrases.some(p => t.includes(p)); }"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from served import free_port
    from test_browser_i18n import (
        ARGS,
        MAIN_BUTTON,
        SWITCHED_TABS,
        english_phrases,
    )

    import app as app_module
    from aevae.i18n import t

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    port = free_port()
    demo = app_module.serve("127.0.0.1", port, block=False)
    phrases = [p for p in english_phrases() if "OpenMoji" not in p]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_context(locale="zh-TW", viewport={"width": 1280, "height": 720}).new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name=t("train.btn", "zh-TW")).wait_for(timeout=60_000)

            def settle():
                page.wait_for_timeout(1500)
                page.wait_for_function("() => !document.querySelector('.eta-bar, .progress-text')"
                                       " && !/processing \\|/.test(document.body.innerText)", timeout=180_000)

            for key in SWITCHED_TABS:
                page.get_by_role("tab", name=t(f"tab.{key}", "zh-TW"), exact=True).click()
                settle()
                page.get_by_role("button", name=t(MAIN_BUTTON[key], "zh-TW"), exact=True).click()
                settle()
            times = {"zh-TW -> en": [], "en -> zh-TW": []}
            # The page's text read from its text nodes: the tests' check (innerText of a copy of the
            # whole page) takes about 2 s a look on this machine, which would be most of the figure.
            no_cjk, no_phrase = NO_CJK, NO_PHRASE
            for _ in range(args.repeats):
                for name, button, done, arg in (("zh-TW -> en", "English", no_cjk, None),
                                                ("en -> zh-TW", "繁體中文", no_phrase, phrases)):
                    start = time.perf_counter()
                    page.get_by_text(button, exact=True).click()
                    page.wait_for_function(done, arg=arg, timeout=180_000, polling=100)
                    times[name].append(time.perf_counter() - start)
                    page.wait_for_timeout(1000)
            browser.close()
    finally:
        demo.close()
    for name, ts in times.items():
        print(f"{name}: median {statistics.median(ts):.1f} s, max {max(ts):.1f} s over {len(ts)} switches "
              f"({', '.join(f'{x:.1f}' for x in ts)})")


if __name__ == "__main__":
    main()
