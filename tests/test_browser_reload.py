"""F5 in the middle of a training, in a real browser at 1280x720 (issue 24 item 4): the page comes
back with its upload, the training's live progress, then its run. Screenshots go to test-artifacts/."""

import re
import zipfile

import pytest
from conftest import ARTIFACTS, make_images
from PIL import Image

EPOCHS = 150  # long enough to still run after the reload; 40 images at 32 px keep it under a minute


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("reload")
    z = d / "my_photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i, img in enumerate(make_images(40, 40, seed=2)):
            p = d / f"{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"my_photos/{'cat' if i % 2 else 'rocket'}/{i}.png")
    return z


DATA_NOTE = re.compile(r"^Your data: .*my_photos\.zip.* train / \d+ validation")


def page_with_photos(context, server, photos):
    """A new page of the app with the student's photos uploaded and described."""
    page = context.new_page()
    page.goto(server)
    page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
    page.locator("input[type=file]").first.set_input_files([str(photos)])
    page.get_by_text(DATA_NOTE).wait_for(timeout=60_000)
    return page


def test_a_reload_mid_training_brings_back_the_upload_the_progress_and_the_run(browser, server, photos):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = page_with_photos(context, server, photos)
        data_note = DATA_NOTE
        page.get_by_label("Image size (px, 32-128)").fill("32")
        page.get_by_label("Image size (px, 32-128)").press("Tab")
        page.get_by_label("Latent: vector (256) or spatial (256x8x8)").fill("16x4x4")
        box = page.get_by_label("number input for Epochs", exact=True).first
        box.fill(str(EPOCHS))
        box.press("Tab")
        page.get_by_text(re.compile(rf"^Plan: {EPOCHS} epochs x .* 32 px, latent 16x4x4;")).wait_for(timeout=10_000)
        page.get_by_role("button", name="Train AE + VAE").click()
        progress = re.compile(rf"epoch \d+/{EPOCHS}, step [\d,]+/[\d,]+")
        page.get_by_text(progress).first.wait_for(timeout=60_000)

        page.reload()  # F5 mid-training
        page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
        page.get_by_text(progress).first.wait_for(timeout=30_000)  # the live progress, watched again
        page.get_by_text(data_note).wait_for(timeout=30_000)  # the upload, described again
        # its settings come back too (the progress text above may be the kept view's, drawn before them)
        page.wait_for_function("(v) => [...document.querySelectorAll('input[aria-label=\"number input for Epochs\"]')]"
                               ".some(e => e.value === v)", arg=str(EPOCHS), timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "reload-mid-training.png"))
        page.get_by_text(re.compile(r"run 1 · Train .*AE val PSNR")).wait_for(timeout=180_000)  # its run
        picker = page.get_by_label("Models in use")
        assert "run 1" in picker.input_value()
        page.get_by_role("tab", name="Hyperparameter runs").click()
        page.get_by_role("columnheader", name="AE val PSNR", exact=True).wait_for(timeout=30_000)
        page.locator("a[href*='runs.csv']").first.wait_for(timeout=30_000)  # offered only when there are runs
        page.get_by_label("Loss curves of run").click()
        page.get_by_role("option", name=re.compile(r"^run 1 ")).wait_for(timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "reload-runs.png"), full_page=True)
    finally:
        context.close()


def test_a_reload_brings_back_a_students_beta_sweep_and_what_made_it(browser, server, photos):
    """A beta sweep on the student's photos, then F5: the sweep's table and note come back, with the
    betas and epochs that made it (they went back to the defaults and the built-in sweep showed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = page_with_photos(context, server, photos)
        page.get_by_role("tab", name="Beta trade-off").click()
        page.get_by_label("Betas to train on your data").fill("0.5, 2")
        epochs = page.get_by_role("spinbutton", name="Epochs per beta")
        epochs.fill("4")
        epochs.press("Tab")
        page.get_by_role("button", name="Train the sweep").click()
        trained = re.compile(r"Trained here: 4 epochs per beta on uploaded: my_photos\.zip")
        page.get_by_text(trained).wait_for(timeout=180_000)

        page.reload()
        page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Beta trade-off").click()
        page.get_by_text(trained).wait_for(timeout=30_000)
        assert page.get_by_label("Betas to train on your data").input_value() == "0.5, 2"
        assert page.get_by_role("spinbutton", name="Epochs per beta").input_value() == "4"
        cells = page.get_by_label("Per beta (validation split)").inner_text().split()
        betas = cells[cells.index("PSNR") + 1::4]  # the first column of each row
        assert betas == ["0.5", "2"], cells
        page.screenshot(path=str(ARTIFACTS / "reload-beta-sweep.png"), full_page=True)
    finally:
        context.close()
