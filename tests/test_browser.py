"""A real browser (Debian's Chromium driven by Playwright) clicks through every tab.

Screenshots go to test-artifacts/ for people to look at.
"""


import pytest
from conftest import ARTIFACTS


@pytest.fixture(scope="module")
def page(browser, server):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.goto(server)
    pg.get_by_role("button", name="Train AE + VAE").wait_for(timeout=30_000)
    yield pg
    pg.close()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def tab(page, name):
    page.get_by_role("tab", name=name).click()


# Every tab shows results when opened (test_every_tab_shows_results_when_opened), so a click is
# checked by what it must change: a new picture (each answer is a new file), a new number.
SHOWN = ("() => [...document.querySelectorAll('img')].filter(i => i.offsetParent !== null && i.src.includes('file'))"
         ".map(i => [i.src, i.naturalWidth, i.naturalHeight])")


def pictures(page) -> list:
    """The visible pictures the app made: [src, width, height] each."""
    return page.evaluate(SHOWN)


def wait_new_picture(page, before: list, timeout=60_000) -> list:
    """Wait until a visible picture is one that was not shown before; the pictures then."""
    page.wait_for_function(f"before => ({SHOWN})().some(p => !before.some(b => b[0] === p[0]))", arg=before,
                           timeout=timeout)
    page.wait_for_function(f"() => ({SHOWN})().every(p => p[1] > 0)", timeout=timeout)  # loaded
    return pictures(page)


def set_number(page, label, value):
    """The number box of a slider of the tab shown (other tabs have sliders of the same name)."""
    box = page.locator(f"input[aria-label='number input for {label}'] >> visible=true").first
    box.fill(str(value))
    box.press("Enter")


def test_reconstructions_tab(page):
    tab(page, "Reconstructions")
    page.get_by_text("Mean ± std over 10 images").first.wait_for(timeout=60_000)  # shown on opening
    before = pictures(page)
    set_number(page, "Random images", 7)
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    page.get_by_text("Mean ± std over 7 images").wait_for(timeout=30_000)  # the click's answer, not the first one
    after = wait_new_picture(page, before)
    assert len(after) >= 1
    assert page.get_by_role("cell", name="AE", exact=True).count() >= 1
    shot(page, "reconstructions")


def test_variants_tab(page):
    tab(page, "Noisy VAE variants")
    page.get_by_text("100 VAE variants of 20 images").first.wait_for(timeout=60_000)  # 5 per image, on opening
    set_number(page, "Variants per image", 3)
    page.get_by_role("button", name="Draw variants").click()
    page.get_by_text("60 VAE variants of 20 images").wait_for(timeout=30_000)
    shot(page, "variants")


def test_latent_sizes_tab(page):
    tab(page, "Latent sizes")
    page.get_by_text("A 'bottleneck' with more values").first.wait_for(timeout=60_000)
    before = pictures(page)
    set_number(page, "Random images", 3)
    page.get_by_role("button", name="Compare latent sizes").click()
    after = wait_new_picture(page, before)
    grid = lambda shown: max(shown, key=lambda p: p[1] * p[2])[1:]  # noqa: E731 - the largest: the grid
    assert grid(after) != grid(before), (before, after)  # 3 images, not 6
    shot(page, "latent-sizes")


def test_latent_space_and_beta_tabs(page):
    tab(page, "Latent space")
    page.get_by_text("12 draws z ~ N(0, I)").first.wait_for(timeout=60_000)  # the tab's first view
    page.get_by_text("VAE codes of 450 validation images").first.wait_for(timeout=60_000)
    set_number(page, "Prior samples", 5)
    page.get_by_role("button", name="Decode random draws").click()
    page.get_by_text("5 draws z ~ N(0, I)").wait_for(timeout=30_000)
    page.get_by_role("radio", name="AE", exact=True).check()
    page.get_by_role("button", name="Map the validation set").click()
    page.get_by_text("AE codes of 450 validation images").wait_for(timeout=30_000)
    shot(page, "latent-space")
    tab(page, "Beta trade-off")
    page.get_by_text("Low beta: sharp reconstructions").first.wait_for(timeout=60_000)
    before = pictures(page)
    page.get_by_role("button", name="Show the shipped sweep").click()
    wait_new_picture(page, before)  # the same shipped answer, drawn again as a new file
    shot(page, "beta")


def small_training(pg, epochs="1", seed=None):
    """Set the Train tab to a tiny run: 32 px, latent 16x4x4, `epochs` epochs."""
    pg.get_by_label("Image size (px, 32-128)").fill("32")
    pg.get_by_label("Latent: vector (256) or spatial (256x8x8)").fill("16x4x4")
    box = pg.get_by_label("number input for Epochs", exact=True).first
    box.fill(epochs)
    box.press("Enter")
    if seed is not None:
        pg.get_by_label("Seed", exact=True).first.fill(str(seed))


def test_train_tab(page):
    tab(page, "Train")
    small_training(page)
    page.get_by_text("Plan:").first.wait_for(timeout=10_000)
    page.get_by_role("button", name="Train AE + VAE").click()
    page.get_by_text("Done.").wait_for(timeout=120_000)
    # Loss and validation plots and the before/now strip are drawn.
    page.locator("div.vega-embed").first.wait_for(timeout=10_000)
    assert page.locator("div.vega-embed canvas, div.vega-embed svg").count() >= 2
    assert page.get_by_text("The other tabs now use it").count() == 1
    shot(page, "train")


IN_USE = "Models in use (every tab): a shipped pair or one of your runs"


def pick(page, label, option):
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option).first.click()


def new_page(page, server):
    """A new tab: a session of its own."""
    pg = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.goto(server)
    pg.get_by_role("button", name="Train AE + VAE").wait_for(timeout=30_000)
    return pg


def train_a_run(pg):
    """Run 1 of this tab's session: the small training of test_train_tab (reused when it ran)."""
    tab(pg, "Train")
    small_training(pg)
    pg.get_by_role("button", name="Train AE + VAE").click()
    pg.get_by_text("Done.").wait_for(timeout=120_000)


@pytest.fixture
def trained_page(page, server):
    """A tab of its own whose session has trained run 1 (in use), whatever ran before."""
    pg = new_page(page, server)
    try:
        train_a_run(pg)
        yield pg
    finally:
        pg.close()


def test_sweep_keeps_the_pair_in_use_and_the_picker_chooses(trained_page):
    page = trained_page
    tab(page, "Hyperparameter runs")
    page.get_by_label("Epochs to sweep").fill("1")
    box = page.get_by_label("number input for Training images", exact=True).first
    box.fill("64")
    box.press("Enter")
    page.get_by_label("Latent", exact=True).fill("16x4x4")
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text("Sweep: 1 of 1 rows done").wait_for(timeout=120_000)
    picker = page.get_by_label(IN_USE).first
    assert picker.input_value().startswith("run 1 · Train"), picker.input_value()  # not the sweep's run
    pick(page, IN_USE, "run 2 · sweep")
    page.get_by_text("Every tab now uses run 2").wait_for(timeout=10_000)
    pick(page, IN_USE, "shipped: default")
    page.get_by_text("Every tab now uses shipped: default").wait_for(timeout=10_000)
    tab(page, "Report")
    page.get_by_role("button", name="Download report").click()
    page.get_by_text("Report ready").wait_for(timeout=120_000)
    href = page.locator("a[href*='aevae-report']").first.get_attribute("href")
    body = page.request.get(href if href.startswith("http") else page.url.split("?")[0].rstrip("/") + href).body()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(body)) as z:
        md = z.read(next(n for n in z.namelist() if n.endswith("report.md"))).decode()
    assert "this session's models (shipped: default)" in md
    shot(page, "report")


def test_runs_and_models_tabs(trained_page):
    page = trained_page
    tab(page, "Hyperparameter runs")
    page.get_by_role("columnheader", name="epochs done", exact=True).wait_for(timeout=30_000)  # shown on opening
    csv = page.locator("a[href*='runs.csv']").first
    csv.wait_for(timeout=30_000)
    before = csv.get_attribute("href")
    page.get_by_role("button", name="Refresh table").click()
    page.wait_for_function("before => [...document.querySelectorAll(\"a[href*='runs.csv']\")].some(a => a.href"
                           " && !a.href.endsWith(before))", arg=before, timeout=30_000)  # a new CSV was written
    shot(page, "runs")
    tab(page, "Models")
    page.get_by_text("run 1 — AE").first.wait_for(timeout=30_000)  # the pair in use when the tab opened
    pick(page, IN_USE, "shipped: default")
    page.get_by_text("Every tab now uses shipped: default").wait_for(timeout=10_000)
    page.get_by_role("button", name="Show the models in use").click()
    page.get_by_text("shipped: default — AE").wait_for(timeout=30_000)  # what the click shows: the new pair
    shot(page, "models")


def test_closing_the_tab_ends_its_training(page, server, monkeypatch):
    import threading
    import time

    from ui.sessions import store

    # A closed tab's session waits a minute for a reload (session_store.GRACE_S), its training going on;
    # shortened here (the app runs in this process), the training must stop when that wait ends.
    monkeypatch.setattr(store(), "grace_s", 2.0)
    other = page.context.browser.new_page()
    other.goto(server)
    other.get_by_role("button", name="Train AE + VAE").wait_for(timeout=30_000)
    small_training(other, epochs="200", seed=4242)  # a seed no other test trains: a fresh run
    other.get_by_role("button", name="Train AE + VAE").click()
    other.get_by_text("epoch 1/").wait_for(timeout=30_000)

    def training_threads():
        return [t for t in threading.enumerate() if t.name.startswith("aevae-train-")]

    assert training_threads()
    other.close()
    deadline = time.monotonic() + 30
    while training_threads() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not training_threads(), "a closed tab's training kept running"


def test_settings_round_trip_through_the_link(page, server):
    tab(page, "Train")
    page.get_by_label("Latent: vector (256) or spatial (256x8x8)").fill("64x4x4")
    page.get_by_label("Beta (KL weight, VAE)").fill("0.5")
    page.get_by_role("button", name="Link to these settings").click()
    find = "() => [...document.querySelectorAll('textarea, input')].map(e => e.value).find(v => v.includes('latent='))"
    page.wait_for_function(find, timeout=10_000)
    url = page.evaluate(find)
    assert "latent=64x4x4" in url and "beta=0.5" in url
    other = page.context.browser.new_page()
    other.goto(url)
    other.get_by_text("Settings from the link").wait_for(timeout=30_000)
    assert other.get_by_label("Latent: vector (256) or spatial (256x8x8)").input_value() == "64x4x4"
    assert other.get_by_label("Beta (KL weight, VAE)").input_value() == "0.5"
    other.close()


# What each tab must show when it is opened, before anything is pressed (a teacher at a projector).
ON_OPEN = {
    "Reconstructions": ["Mean ± std over 10 images"],
    "Noisy VAE variants": ["VAE variants of 20 images"],
    "Latent sizes": ["A 'bottleneck' with more values"],
    "Latent space": ["the same draws through both decoders", "codes of 450 validation images", "steps, ends included"],
    "Beta trade-off": ["Low beta: sharp reconstructions"],
    "Hyperparameter runs": [],
    "Models": ["parameters"],
}


@pytest.mark.parametrize("width,height", [(1280, 720), (1920, 1080)])
def test_every_tab_shows_results_when_opened(page, server, width, height):
    pg = page.context.browser.new_page(viewport={"width": width, "height": height})  # a new session
    try:
        pg.goto(server)
        pg.get_by_role("button", name="Train AE + VAE").wait_for(timeout=30_000)
        pg.screenshot(path=str(ARTIFACTS / f"open-{width}-Train.png"))
        for name, texts in ON_OPEN.items():
            tab(pg, name)
            for text in texts:
                pg.get_by_text(text).first.wait_for(timeout=60_000)
            panel = pg.get_by_role("tabpanel")
            if name not in ("Hyperparameter runs", "Models"):
                pg.wait_for_function("() => [...document.querySelectorAll('[role=tabpanel] img')]"
                                     ".some(i => i.complete && i.naturalWidth > 0 && i.src.includes('file'))",
                                     timeout=30_000)
            if name in ("Reconstructions", "Latent sizes", "Beta trade-off", "Models"):
                assert panel.get_by_role("columnheader").count() >= 3, name
            assert pg.locator(".toast-body.error, .error").count() == 0, name
            pg.screenshot(path=str(ARTIFACTS / f"open-{width}-{name.replace(' ', '-')}.png"), full_page=True)
    finally:
        pg.close()
