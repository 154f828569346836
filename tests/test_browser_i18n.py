"""The page in 繁體中文 and in English, in a real browser (Debian's Chromium through Playwright).

A browser whose language is zh-TW gets Chinese tab names, a Chinese status while it trains, a
Chinese error for a bad setting and a Chinese report; an English browser sees no Chinese at all
(but the switch's own "繁體中文"). Screenshots of every tab in zh-TW go to test-artifacts/.
"""

from __future__ import annotations

import io
import re
import zipfile

from conftest import ARTIFACTS

from aevae.i18n import t

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
TABS = ["train", "recon", "variants", "latent_sizes", "space", "beta", "runs", "models", "report"]
# A tiny training, set through the link's parameters (a seed no other test trains: a fresh run)
LINK = "?size=32&latent=16x4x4&epochs=1&batch=64&seed=1616"




def open_page(browser, url, locale, lang=None):
    """A new page at `url` for a browser in `locale`, once its Train button shows in `lang`
    (by default the locale's language)."""
    page = browser.new_context(locale=locale, viewport={"width": 1280, "height": 720}).new_page()
    page.goto(url)
    lang = lang or ("en" if locale.startswith("en") else "zh-TW")
    page.get_by_role("button", name=t("train.btn", lang)).wait_for(timeout=30_000)
    return page


def shown_text(page) -> str:
    """The page's text but the language switch (whose "繁體中文" is meant for every reader)."""
    return page.evaluate("() => { const c = document.body.cloneNode(true);"
                         " c.querySelector('#aevae-lang')?.remove(); return c.innerText; }")


def train_error_and_report(page, lang):
    """A bad latent, then a short training, then the report; returns the error, the status and the
    report's Markdown."""
    # the link's settings arrive after the page has loaded: typing before would be overwritten
    page.get_by_text(re.split("[:：]", t("train.from_link", lang, settings=""))[0]).wait_for(timeout=30_000)
    latent = page.get_by_label(t("train.latent", lang))
    latent.fill("abc")
    page.get_by_text(t("train.cannot", lang, error="").replace("*", "").strip()).wait_for(timeout=10_000)
    page.get_by_role("button", name=t("train.btn", lang)).click()
    toast = page.locator(".toast-body").filter(has_text="abc")
    toast.first.wait_for(timeout=10_000)
    error = toast.first.inner_text()
    latent.fill("16x4x4")
    page.get_by_text(t("train.plan", lang, plan="").replace("*", "").strip()).first.wait_for(timeout=10_000)
    page.get_by_role("button", name=t("train.btn", lang)).click()
    page.get_by_text(t("train.used", lang).split("（")[0].split(" (")[0]).wait_for(timeout=90_000)
    status = page.locator(".prose").filter(has_text=t("train.used", lang).split("（")[0].split(" (")[0]).first.inner_text()
    page.get_by_role("tab", name=t("tab.report", lang)).click()
    page.get_by_role("button", name=t("report.btn", lang)).click()
    page.get_by_text(t("report.ready", lang).split("：")[0].split(":")[0]).wait_for(timeout=60_000)
    href = page.locator("a[href*='aevae-report']").first.get_attribute("href")
    body = page.request.get(href if href.startswith("http") else page.url.split("?")[0].rstrip("/") + href).body()
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        report = z.read(next(n for n in z.namelist() if n.endswith("report.md"))).decode()
    return error, status, report


def test_a_chinese_browser_gets_the_page_in_chinese(browser, server):
    page = open_page(browser, server + LINK, "zh-TW")
    for key in TABS:  # every tab's name, and a picture of every tab
        tab = page.get_by_role("tab", name=t(f"tab.{key}", "zh-TW"), exact=True)
        tab.click()
        page.wait_for_timeout(400)
        # the tab's first view has arrived (Gradio shows "processing | 1.2s" over outputs until then)
        page.wait_for_function("() => !/processing \\|/.test(document.body.innerText)", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / f"zh-TW-{key}.png"), full_page=True)
    assert page.evaluate("document.documentElement.lang") == "zh-TW"
    page.get_by_role("tab", name=t("tab.train", "zh-TW"), exact=True).click()
    error, status, report = train_error_and_report(page, "zh-TW")
    page.get_by_role("tab", name=t("tab.train", "zh-TW"), exact=True).click()
    page.screenshot(path=str(ARTIFACTS / "zh-TW-train-done.png"), full_page=True)
    assert "潛在碼 「abc」" in error and "請寫向量大小" in error
    assert "完成" in status and "驗證集 PSNR" in status
    assert "## 1. 架構" in report and "## 7. 超參數實驗" in report and "峰值訊雜比" in report
    # The switch: English at once, in the browser and in the server's answers, and kept in the address.
    page.get_by_text("English", exact=True).click()
    page.get_by_role("tab", name="Train", exact=True).wait_for(timeout=10_000)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_text("Plan:").first.wait_for(timeout=10_000)
    assert "lang=en" in page.url
    page.context.close()


def test_an_english_browser_sees_no_chinese_and_the_link_chooses(browser, server):
    page = open_page(browser, server + LINK, "en-US")
    assert page.get_by_role("tab", name="Reconstructions", exact=True).count() == 1
    assert not CJK.search(shown_text(page))
    error, status, report = train_error_and_report(page, "en")
    assert "latent 'abc': write a vector size" in error and "Done" in status
    assert "## 1. Architectures" in report
    assert not CJK.search(error + status + report) and not CJK.search(shown_text(page))
    page.context.close()
    # ?lang= in a shared link wins over the browser's language
    page = open_page(browser, server + "?lang=zh-TW", "en-US", "zh-TW")
    page.get_by_role("tab", name=t("tab.recon", "zh-TW"), exact=True).wait_for(timeout=10_000)
    page.get_by_text(t("train.plan", "zh-TW", plan="").replace("*", "").strip()).first.wait_for(timeout=10_000)
    page.context.close()


def english_phrases() -> list[str]:
    """What the app and Gradio would say in English: every English text of the catalog cut at its
    fields (pieces of two words or more), and Gradio's own texts the zh-TW page must not show."""
    from aevae import i18n

    en = i18n.catalog("en")
    texts = [*en["keys"].values(), *en.get("gradio", {}).values(), *i18n.catalog("zh-TW").get("gradio_text", {})]
    pieces = {p.strip(" .,:;()*#-_|") for text in texts for p in re.split(r"\{[^}]*\}|\n|\*\*|`", text)}
    return sorted(p for p in pieces if len(p.split()) >= 2 and re.search("[a-z]{3}", p))


def gradio_words() -> re.Pattern:
    """Gradio's one-word texts ("Copy", "Fullscreen", "Error") as whole words."""
    from aevae import i18n

    words = [w for w in i18n.catalog("zh-TW").get("gradio_text", {}) if re.fullmatch("[A-Z][a-z]+", w)]
    return re.compile(r"(?<![\w-])(" + "|".join(words) + r")(?![\w-])")


# Each tab's main button (the cheap ones: a training is read by the tests above)
MAIN_BUTTON = {"recon": "recon.btn", "variants": "var.btn", "latent_sizes": "lat.btn", "space": "space.map_btn",
               "beta": "beta.shipped_btn", "models": "models.btn", "report": "report.btn"}
GRADIO_KEYS = re.compile(r"\b(?:common|upload_text|status|dataframe)\.[a-z_]+\b")


def test_a_chinese_page_shows_no_english_on_any_tab(browser, server):
    """An English browser opening a ?lang=zh-TW link: every tab after its first view and after its
    main button, text and tooltips and screen-reader labels, holds no English phrase of the app's
    or of Gradio's."""
    page = open_page(browser, server + "?lang=zh-TW", "en-US", "zh-TW")
    phrases, words = english_phrases(), gradio_words()
    text_js = ("() => { const c = document.body.cloneNode(true); c.querySelectorAll('#aevae-lang, script, svg')"
               ".forEach(e => e.remove()); const attrs = [...document.querySelectorAll('[title], [aria-label]')]"
               ".filter(e => !e.closest('#aevae-lang, svg')).map(e => (e.getAttribute('title') || '') + ' '"
               " + (e.getAttribute('aria-label') || '')); return c.innerText + '\\n' + attrs.join('\\n'); }")
    found = {}
    for key in TABS:
        page.get_by_role("tab", name=t(f"tab.{key}", "zh-TW"), exact=True).click()
        for step in ("first view", "main button"):
            if step == "main button":
                if key not in MAIN_BUTTON:
                    continue
                page.get_by_role("button", name=t(MAIN_BUTTON[key], "zh-TW"), exact=True).click()
            page.wait_for_timeout(700)  # the events have started (their progress shows at once)
            # every answer has arrived: no status tracker is counting (a bar, "processing | 1.2s")
            page.wait_for_function("() => !document.querySelector('.eta-bar, .progress-text')"
                                   " && !/processing \\|/.test(document.body.innerText)", timeout=120_000)
            text = page.evaluate(text_js).replace(data_credit(), "")
            hits = [p for p in phrases if p in text] + GRADIO_KEYS.findall(text) + words.findall(text)
            if hits:
                found[f"{key} ({step})"] = hits
        page.screenshot(path=str(ARTIFACTS / f"zh-TW-link-{key}.png"), full_page=True)
    page.context.close()
    assert found == {}


def data_credit() -> str:
    from aevae.data import OPENMOJI_CREDIT

    return OPENMOJI_CREDIT  # the emoji's licence, in the words its authors ask for


# A label may wrap after these (or before an opening bracket), never inside a word.
BREAK_AFTER = "，。：；、）」 /-"
BROKEN_JS = """(after) => {
  const out = [];
  for (const span of document.querySelectorAll('[data-testid="block-info"]')) {
    if (!span.offsetParent) continue;  // on a tab not shown
    const text = span.textContent, r = document.createRange(), node = span.firstChild;
    if (!node || node.nodeType !== 3) continue;
    let top = null;
    for (let i = 0; i < node.length; i++) {
      r.setStart(node, i); r.setEnd(node, i + 1);
      const rect = r.getClientRects()[0];
      if (!rect || !rect.width) continue;
      if (top !== null && rect.top > top + 2 && !after.includes(text[i - 1]) && !'（「 '.includes(text[i]))
        out.push(text.slice(0, i) + '／' + text.slice(i));
      top = rect.top;
    }
  }
  return out;
}"""


def test_chinese_layout_at_1280_px(browser, server):
    """Labels wrap at their punctuation, the Models tab shows its 參數數量 column whole, the PCA
    legend shows every label, and the report's tables keep their words on one line."""
    page = open_page(browser, server, "zh-TW")
    broken = []
    for key in TABS:
        page.get_by_role("tab", name=t(f"tab.{key}", "zh-TW"), exact=True).click()
        page.wait_for_timeout(600)
        broken += page.evaluate(BROKEN_JS, BREAK_AFTER)
    assert broken == []
    page.get_by_role("tab", name=t("tab.models", "zh-TW"), exact=True).click()
    page.get_by_role("button", name=t("models.btn", "zh-TW")).click()
    header = page.locator("th").filter(has_text=t("col.params", "zh-TW")).first
    header.wait_for(timeout=30_000)
    cut = page.evaluate("""(th) => { const box = th.getBoundingClientRect();
        let e = th.parentElement; while (e && getComputedStyle(e).overflowX === 'visible') e = e.parentElement;
        const frame = e.getBoundingClientRect(); return box.right > frame.right + 1 || box.left < frame.left - 1; }""",
                        header.element_handle())
    assert not cut, "the 參數數量 column is cut off"
    page.get_by_role("tab", name=t("tab.space", "zh-TW"), exact=True).click()
    page.get_by_role("button", name=t("space.map_btn", "zh-TW")).click()
    legend = page.locator(".vega-embed").filter(has_text=t("col.PC 1", "zh-TW")).first
    page.wait_for_function("() => [...document.querySelectorAll('.vega-embed text')].some(e =>"
                           " e.textContent === 'OpenMoji 額外圖示')", timeout=60_000)
    clipped = legend.evaluate("""(el) => { const svg = el.querySelector('svg').getBoundingClientRect();
        return [...el.querySelectorAll('.role-legend-label text, .role-legend-label')].filter(t => t.textContent)
          .filter(t => { const b = t.getBoundingClientRect(); return b.right > svg.right + 1 || b.width === 0; })
          .map(t => t.textContent); }""")
    assert clipped == []
    page.context.close()


VISIBLE_JS = ("() => { const c = document.body.cloneNode(true); c.querySelectorAll('#aevae-lang, script')"
              ".forEach(e => e.remove()); return c.innerText; }")
NO_CJK_JS = ("() => { const c = document.body.cloneNode(true); c.querySelectorAll('#aevae-lang, script')"
             ".forEach(e => e.remove()); return !/[\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef]/.test(c.innerText); }")
NO_PHRASE_JS = ("(phrases) => { const c = document.body.cloneNode(true); c.querySelectorAll('#aevae-lang, script')"
                ".forEach(e => e.remove()); const text = c.innerText; return !phrases.some(p => text.includes(p)); }")
SWITCHED_TABS = ["recon", "variants", "latent_sizes", "space", "beta", "models", "report"]


def test_switching_the_language_shows_every_result_again_in_it(browser, server):
    """Results computed on a Chinese page (each tab's main button) read in English after the
    switch, without opening their tabs again or computing anything (the page holds every tab's
    text: one look covers them all); and in Chinese again after switching back. The wait is
    generous for a loaded test machine: bench/switch_language.py measures the time."""
    page = open_page(browser, server, "zh-TW")
    phrases = [p for p in english_phrases() if "OpenMoji" not in p]

    def settle():
        page.wait_for_timeout(700)  # the event has started (its progress shows at once)
        page.wait_for_function("() => !document.querySelector('.eta-bar, .progress-text')"
                               " && !/processing \\|/.test(document.body.innerText)", timeout=120_000)

    for key in SWITCHED_TABS:
        page.get_by_role("tab", name=t(f"tab.{key}", "zh-TW"), exact=True).click()
        settle()
        page.get_by_role("button", name=t(MAIN_BUTTON[key], "zh-TW"), exact=True).click()
        settle()
    assert not page.evaluate(NO_CJK_JS)  # the results are there, in Chinese
    stale = {}
    page.get_by_text("English", exact=True).click()
    try:
        page.wait_for_function(NO_CJK_JS, timeout=60_000)
    except Exception:  # noqa: BLE001 - what is still Chinese is the finding
        stale["en"] = [line[:120] for line in page.evaluate(VISIBLE_JS).splitlines() if CJK.search(line)]
    page.get_by_text("繁體中文", exact=True).click()
    try:
        page.wait_for_function(NO_PHRASE_JS, arg=phrases, timeout=60_000)
    except Exception:  # noqa: BLE001
        text = page.evaluate(VISIBLE_JS)
        stale["zh-TW"] = [p for p in phrases if p in text]
    page.context.close()
    assert stale == {}


# The Train tab's three curves as drawn: each plot's SVG text (axis titles, ticks, legend).
CURVES_JS = ("() => [...document.querySelectorAll('.vega-embed svg')].slice(0, 3)"
             ".map(s => [...s.querySelectorAll('text')].map(t => t.textContent).join(' '))")


def test_the_curves_stay_drawn_through_a_switch_while_training_and_after_a_reload(browser, server):
    """A switch while the pair trains, then a reload and a switch back: the Train tab's curves keep
    their lines, ticks and legend in the new language. Gradio's plot drew new column names with
    the old data, so they read "undefined" on a NaN axis, or lost their lines, until a reload."""
    page = open_page(browser, server + "?size=32&latent=16x4x4&epochs=3&batch=32&seed=1717", "en-US")
    page.get_by_text(re.split("[:：]", t("train.from_link", "en", settings=""))[0]).wait_for(timeout=30_000)
    page.get_by_role("button", name=t("train.btn", "en")).click()
    page.get_by_text("epoch 1/3").first.wait_for(timeout=60_000)  # it runs: switch now
    page.get_by_text("繁體中文", exact=True).click()
    page.get_by_text(t("train.used", "zh-TW").split("（")[0]).wait_for(timeout=120_000)
    page.wait_for_timeout(1500)

    def drawn(lang):
        curves = page.evaluate(CURVES_JS)
        assert len(curves) == 3, curves
        for text in curves:
            assert "undefined" not in text and "NaN" not in text, text
            assert "AE" in text and "VAE" in text, text  # the legend
        assert t("col.iteration", lang) in curves[0] and t("col.epoch", lang) in curves[1], curves
        for plot in page.locator(".vega-embed").all()[:3]:  # its lines are drawn in the models' colours
            assert plot.evaluate("(el) => [...el.querySelectorAll('path')].some(p => /#3566a8|#e8772e/i"
                                 ".test(p.getAttribute('stroke') || ''))"), plot.inner_html()[:500]

    drawn("zh-TW")
    page.reload()
    page.get_by_text(t("train.used", "zh-TW").split("（")[0]).wait_for(timeout=60_000)
    page.get_by_text("English", exact=True).click()
    page.get_by_text(t("train.used", "en").split(" (")[0]).wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    drawn("en")
    page.context.close()
