"""A student's own data in a real browser (issue 15): upload, train, labels, bad files, the code map,
and shared links read back field by field. Trainings are tiny (32 px, 1 epoch) to keep this quick.

Screenshots go to test-artifacts/ for people to look at.
"""

import math
import re
import zipfile
from urllib.parse import urlencode

import numpy as np
import pytest
from conftest import ARTIFACTS, make_images
from PIL import Image
from playwright.sync_api import expect

SIZE = "Image size (px, 32-128)"
LATENT = "Latent: vector (256) or spatial (256x8x8)"



def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
    return page


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """What a student brings: homework arrays (50x50 photos, numeric labels), a zip of two folders,
    and images to reconstruct, one of them not an image at all."""
    d = tmp_path_factory.mktemp("student")
    np.save(d / "photos.npy", make_images(60, 50))
    np.save(d / "photo_labels.npy", np.arange(60) % 3 + 1)
    with zipfile.ZipFile(d / "shapes.zip", "w") as zf:
        for i, img in enumerate(make_images(40, 40, seed=1)):
            p = d / f"z{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"{'discs' if i % 2 else 'squares'}/{i}.png")
    for i, img in enumerate(make_images(2, 40, seed=2)):
        Image.fromarray(img).save(d / f"mine{i}.png")
    (d / "broken.png").write_text("not an image")
    return d


def tab(page, name):
    page.get_by_role("tab", name=name).click()


def upload_data(page, paths):
    tab(page, "Train")
    clear = page.get_by_role("button", name="Clear")
    if clear.count():  # files already there: remove them, as a student replaces their data
        clear.first.click()
        data_note(page).wait_for(state="detached", timeout=10_000)
    page.locator("input[type=file]").first.set_input_files([str(p) for p in paths])
    data_note(page).wait_for(timeout=60_000)
    assert page.get_by_role("radio", name="upload").is_checked()  # Data switched by the upload itself
    return data_note(page).inner_text()


def data_note(page):
    return page.get_by_text(re.compile(r"^Your data: .* train / \d+ validation"))


def train(page, run):
    page.get_by_label(SIZE).fill("32")
    page.get_by_label(SIZE).press("Tab")
    # The preset's latent follows the new size (the latent box held it) before we type our own.
    expect(page.get_by_label(LATENT)).not_to_have_value("8x16x16")
    page.get_by_label(LATENT).fill("16x4x4")
    box = page.get_by_label("number input for Epochs", exact=True).first
    box.fill("1")
    box.press("Tab")  # a slider's number takes the value when it loses focus (Enter alone does not)
    page.get_by_text(re.compile(r"^Plan: 1 epoch x .* 32 px, latent 16x4x4;")).wait_for(timeout=10_000)
    page.get_by_role("button", name="Train AE + VAE").click()
    page.get_by_text(re.compile(rf"run {run} · Train .*AE val PSNR")).wait_for(timeout=120_000)


def variants_of_label(page, label):
    tab(page, "Noisy VAE variants")
    page.get_by_label("Ids (report A's list by default)").fill("")
    page.get_by_label("…and/or images of a label (of the data in use)").click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    page.get_by_role("option", name=label, exact=True).click()
    page.get_by_role("button", name="Draw variants").click()
    caption = page.locator(".caption-label, figcaption")
    caption.filter(has_text=f" · {label} · ").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"VAE variants of 4 images")).wait_for(timeout=10_000)
    captions = caption.all_inner_texts()
    return options, captions


def own_images_input(page):
    return page.locator(".block", has_text="Images (PNG/JPEG/WebP/BMP, or a .zip of them)").locator(
        "input[type=file]").last


def visible_points(page):
    """Stroke colours of the code map's points (an invisible point has none)."""
    return page.evaluate("() => [...document.querySelectorAll('g.mark-symbol.plot_marks path')]"
                         ".map(p => p.getAttribute('stroke'))")


def map_codes(page, n):
    tab(page, "Latent space")
    page.get_by_role("button", name="Map the validation set").click()
    page.get_by_text(f"VAE codes of {n} validation images").wait_for(timeout=60_000)
    page.wait_for_function(f"() => document.querySelectorAll('g.mark-symbol.plot_marks path').length === {n}",
                           timeout=10_000)
    page.wait_for_timeout(500)  # the redraw with the new labels' colours follows the data
    return visible_points(page)


def test_own_data_end_to_end(browser, server, files):
    page = open_page(browser, server)
    # A labelled .npy: the upload is described before training, then trained on.
    note = upload_data(page, [files / "photos.npy", files / "photo_labels.npy"])
    assert "photos.npy" in note and "photo_labels.npy" in note and "60 images, stored 50x50 px" in note
    assert "3 labels: 1 (20), 2 (20), 3 (20)" in note
    page.locator("img[src*='data.png']").wait_for(timeout=10_000)  # the strip of examples per label
    train(page, 1)
    options, captions = variants_of_label(page, "2")
    assert options == ["(none)", "1", "2", "3"]  # the numeric labels of the data, not the emoji groups
    assert sum(" · 2 · " in c for c in captions) == 4, captions
    assert all(s for s in map_codes(page, 6))
    page.screenshot(path=str(ARTIFACTS / "own-data-npy-map.png"), full_page=True)

    # A zip of two folders: folder names are the labels; the map after switching data shows every point.
    assert "2 labels: discs (20), squares (20)" in upload_data(page, [files / "shapes.zip"])
    train(page, 2)
    options, captions = variants_of_label(page, "squares")
    assert options == ["(none)", "discs", "squares"], options
    assert sum(" · squares · " in c for c in captions) == 4, captions
    strokes = map_codes(page, 4)
    assert len(strokes) == 4 and all(strokes), strokes  # they were drawn without colour: invisible
    page.screenshot(path=str(ARTIFACTS / "own-data-zip-map.png"), full_page=True)

    # Reconstruct a mix of good and bad uploads: the bad one is named, the good ones are shown.
    tab(page, "Reconstructions")
    page.get_by_text("Reconstruct your own images").click()
    own_images_input(page).set_input_files(
        [str(files / "mine0.png"), str(files / "broken.png"), str(files / "mine1.png")])
    page.get_by_role("button", name="Reconstruct uploads").click()
    page.get_by_text(re.compile(r"2 images reconstructed by run 2 .*Skipped 1: broken\.png")).wait_for(timeout=60_000)
    page.get_by_text("Mean ± std over 2 images").wait_for(timeout=30_000)
    assert page.get_by_role("cell", name="mine0.png").count() == 1
    assert page.get_by_role("cell", name="mine1.png").count() == 1
    assert page.get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=str(ARTIFACTS / "own-data-reconstruct.png"), full_page=True)
    page.close()


def test_nothing_usable_marks_only_the_panel_that_asked(browser, server, files):
    page = open_page(browser, server)
    tab(page, "Reconstructions")
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    page.get_by_text("Mean ± std over 10 images").wait_for(timeout=60_000)
    page.get_by_text("Reconstruct your own images").click()
    own_images_input(page).set_input_files([str(files / "broken.png")])
    page.get_by_role("button", name="Reconstruct uploads").click()
    page.get_by_text("no usable image in this upload: broken.png").first.wait_for(timeout=30_000)
    assert page.get_by_text("Mean ± std over 10 images").count() == 1  # the results above stay
    page.screenshot(path=str(ARTIFACTS / "own-data-nothing-usable.png"), full_page=True)
    # Besides the message that pops up, one panel says Error: this upload's note (every panel did).
    assert page.locator(".block").get_by_text("Error", exact=True).count() == 1
    page.close()


# Every field of the Train tab's shared link, with a value no preset has.
FIELDS = {"preset": ("Preset", "report-a"), "size": (SIZE, 50), "latent": (LATENT, "64x4x4"),
          "epochs": ("number input for Epochs", 7), "seconds": ("number input for Time cap", 45),
          "batch": ("number input for Batch size", 16), "lr": ("Learning rate", 0.001),
          "wd": ("Weight decay", 0.00002), "beta": ("Beta (KL weight, VAE)", 0.5), "seed": ("Seed", 3)}


def read_fields(page) -> dict:
    page.get_by_text("Settings from the link").wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    return {key: page.get_by_label(label).first.input_value() for key, (label, _) in FIELDS.items()}


def same(key, shown, wanted) -> bool:
    return shown == wanted if isinstance(wanted, str) else math.isclose(float(shown), wanted)


def test_shared_links_restore_every_field(browser, server):
    # Issue 15's link: a preset and every other field; the preset's own values must not win.
    link = {k: v for k, (_, v) in FIELDS.items()}
    page = open_page(browser, server + "?" + urlencode({**link, "size": 50, "latent": 256}))
    shown = read_fields(page)
    assert all(same(k, shown[k], v) for k, v in {**link, "size": 50, "latent": "256"}.items()), shown
    # One field at a time, each on top of a preset with other values.
    for key, (_, value) in FIELDS.items():
        query = {"preset": "report-b", key: value} if key != "preset" else {key: value}
        page.goto(server + "?" + urlencode(query))
        page.get_by_role("button", name="Train AE + VAE").wait_for(timeout=60_000)
        shown = read_fields(page)
        assert same(key, shown[key], value), (key, shown)
    page.close()


def test_latents_follow_the_image_size_or_offer_choices(browser, server):
    page = open_page(browser, server)
    page.get_by_label(SIZE).fill("50")
    page.get_by_label(SIZE).press("Tab")
    page.wait_for_function("() => [...document.querySelectorAll('input, textarea')].some(e => e.value === '8x12x12')",
                           timeout=10_000)  # the preset's 8x16x16 brought to 50 px
    page.get_by_label(LATENT).fill("8x16x16")  # typed by the student: not reachable at 50 px
    page.get_by_text("Cannot train with these settings").wait_for(timeout=10_000)
    page.get_by_role("radio", name="14x12x12").click()
    page.get_by_text(re.compile(r"^Plan: .*latent 14x12x12;")).wait_for(timeout=10_000)
    assert page.get_by_label(LATENT).input_value() == "14x12x12"
    page.screenshot(path=str(ARTIFACTS / "latent-choices.png"), full_page=True)
    page.close()
