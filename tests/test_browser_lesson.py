"""A lesson in a real browser at 1280x720 (issue 24): actions in a student's order, where what
matters is what the page draws (plots' colours and legends, what fits on the screen).
Trainings are tiny (a 40-image upload, 1 epoch) to keep this quick.

Screenshots go to test-artifacts/ for people to look at.
"""

import re
import zipfile

import pytest
from conftest import ARTIFACTS, make_images
from PIL import Image

AE_COLOUR = "#3566a8"  # ui.outputs.COLORS




@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """my_photos.zip: two label folders and a README beside them."""
    d = tmp_path_factory.mktemp("lesson")
    z = d / "my_photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("my_photos/README.txt", "my cat and my rockets")
        for i, img in enumerate(make_images(40, 40, seed=1)):
            p = d / f"{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"my_photos/{'cat' if i % 2 else 'rocket'}/{i}.png")
    return z


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url)
    page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
    return page


def tab(page, name):
    page.get_by_role("tab", name=name).click()


def upload(page, path):
    tab(page, "Train")
    page.locator("input[type=file]").first.set_input_files([str(path)])
    page.get_by_text(re.compile(r"^Your data: .* train / \d+ validation")).wait_for(timeout=60_000)


def train_tiny(page, run):
    tab(page, "Train")
    page.get_by_label("Image size (px, 32-128)").fill("32")
    page.get_by_label("Image size (px, 32-128)").press("Tab")
    page.get_by_label("Latent: vector (256) or spatial (256x8x8)").fill("16x4x4")
    box = page.get_by_label("number input for Epochs", exact=True).first
    box.fill("1")
    box.press("Tab")
    page.get_by_text(re.compile(r"^Plan: 1 epoch x .* 32 px, latent 16x4x4;")).wait_for(timeout=10_000)
    page.get_by_role("button", name="Train AE + VAE").click()
    page.get_by_text(re.compile(rf"run {run} · Train .*AE val PSNR")).wait_for(timeout=120_000)


def beta_sweep_tiny(page):
    tab(page, "Beta trade-off")
    page.get_by_label("Betas to train on your data").fill("0, 1")
    page.get_by_role("spinbutton", name="Epochs per beta").fill("1")
    page.get_by_role("spinbutton", name="Epochs per beta").press("Tab")
    page.get_by_role("button", name="Train the sweep").click()
    page.get_by_text("Trained here: 1 epochs per beta").wait_for(timeout=120_000)


def pick_run(page, number):
    tab(page, "Hyperparameter runs")
    page.get_by_label("Loss curves of run").click()
    page.get_by_role("option", name=re.compile(rf"^run {number} ")).click()


def line_colours(page, label):
    """Stroke colours of the lines drawn in the plot labelled `label`."""
    block = page.locator(".block", has=page.get_by_text(label, exact=True)).last
    block.locator("svg").first.wait_for(timeout=20_000)
    page.wait_for_timeout(800)  # the legend's redraw follows the data
    return set(block.evaluate("b => [...b.querySelectorAll('g.mark-line path')].map(p => p.getAttribute('stroke'))"))


def test_the_ae_curve_is_drawn_after_a_beta_run_was_plotted_first(browser, server, photos):
    """Issue 24 item 7: a plot keeps the colour scale of its first drawing; a beta run (VAE only)
    plotted first left every later run's AE curve without a colour."""
    page = open_page(browser, server)
    upload(page, photos)
    train_tiny(page, 1)
    beta_sweep_tiny(page)  # runs 2 and 3: VAE only
    tab(page, "Hyperparameter runs")  # the latest run (a beta run) is plotted first
    assert AE_COLOUR not in line_colours(page, "MSE per iteration")
    pick_run(page, 1)
    page.wait_for_timeout(1500)
    colours = line_colours(page, "MSE per iteration")
    page.screenshot(path=str(ARTIFACTS / "lesson-runs-curves.png"), full_page=True)
    assert AE_COLOUR in colours and len(colours) == 2
    page.close()


def box(locator):
    locator.wait_for(timeout=60_000)
    return locator.bounding_box()


def test_the_tabs_fit_1280x720(browser, server, photos, tmp_path, app_module):
    """Issue 24 item 11: what a student reads is on the screen at 1280x720, nothing covers it."""
    page = open_page(browser, server)
    problems = []

    def check(ok, what):  # every part is checked, then all that failed are named
        if not ok:
            problems.append(what)

    # Reconstructions (drawn on opening): the grid's label sits above the grid, not over its ids.
    tab(page, "Reconstructions")
    page.get_by_text("Mean ± std over 10 images").wait_for(timeout=60_000)
    grid = page.locator(".block", has=page.get_by_text("ground truth | AE | VAE", exact=True)).last
    badge, image = box(grid.get_by_text("ground truth | AE | VAE", exact=True)), box(grid.locator("img").first)
    check(badge["y"] + badge["height"] <= image["y"] + 1, f"the grid's label covers its top row: {badge}, {image}")
    # Reconstructing one's own images shows the result on the screen (the grid is far above the button).
    Image.fromarray(make_images(1, 40, seed=5)[0]).save(tmp_path / "mine.png")
    page.get_by_text("Reconstruct your own images").click()
    page.locator(".block", has_text="Images (PNG/JPEG/WebP/BMP, or a .zip of them)").locator(
        "input[type=file]").last.set_input_files([str(tmp_path / "mine.png")])
    page.get_by_role("button", name="Reconstruct uploads").click()
    page.get_by_text(re.compile(r"1 images? reconstructed by")).first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    image = box(grid.locator("img").first)
    check(image["y"] < 720 and image["y"] + image["height"] > 0, f"own images' result off screen: {image}")
    # Noisy variants: each caption under its pair of rows, not over the AE row.
    tab(page, "Noisy VAE variants")
    page.get_by_text(re.compile("VAE variants of 20 images")).wait_for(timeout=60_000)
    item = page.locator(".thumbnail-item").first
    item.locator("img").evaluate("i => i.complete && i.naturalHeight ? 0 : new Promise(r => i.onload = r)")
    caption, picture = box(item.locator(".caption-label")), box(item.locator("img"))
    check(caption["y"] >= picture["y"] + picture["height"] - 1, f"a variant's caption covers it: {caption}, {picture}")
    # Models: the layer tables show their parameter column.
    tab(page, "Models")
    for name in ("AE layers", "VAE layers"):
        table = page.locator(".block", has=page.get_by_text(name, exact=True)).last
        outer, params = box(table), box(table.locator("th", has_text="params").first)
        check(params["x"] + params["width"] <= outer["x"] + outer["width"] + 1, f"{name}: params cut off")
    # Latent space: the code map's legend shows every group, none clipped.
    tab(page, "Latent space")
    page.get_by_text("codes of 450 validation images").wait_for(timeout=90_000)
    page.wait_for_timeout(1500)
    chart = page.locator(".block", has=page.get_by_text("Validation codes (PCA)", exact=True)).last
    right = box(chart)["x"] + box(chart)["width"]
    legend = chart.locator("g.role-legend-label text")
    shown = [b for b in (legend.nth(i).bounding_box() for i in range(legend.count())) if b["x"] + b["width"] <= right]
    check(len(shown) == 10, f"the map's legend shows {len(shown)} of OpenMoji's 10 groups")
    page.screenshot(path=str(ARTIFACTS / "lesson-latent-space.png"), full_page=True)
    # The report's HTML is no wider than the page, with a trained run in its runs table.
    who = type("R", (), {"session_hash": "layout-report"})()
    for _ in app_module.train_models("default", 32, "16x4x4", 1, 120, 64, 2e-3, 1e-5, 0.1, 0, "openmoji", None,
                                     True, request=who):
        pass
    path, _ = app_module.download_report(who)
    with zipfile.ZipFile(path) as zf:
        (tmp_path / "report.html").write_bytes(zf.read("aevae-report/report.html"))
    page.goto((tmp_path / "report.html").as_uri())
    width = page.evaluate("() => document.documentElement.scrollWidth")
    check(width <= 1280, f"the report's HTML is {width} px wide")
    page.close()
    assert not problems, problems
