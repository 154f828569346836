"""A prankster in the class (issue 25): text anyone can type or name, and small crafted files.

Every crafted input is made here. A refusal is checked for its reason; "at once" is checked as
behaviour (the work finished within a generous join), never as a timing figure (bench/prank.py
prints those).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from aevae import data, datasets, i18n, train_settings
from aevae.i18n import tm

# Text that made the old lazy-regex matcher of tm() backtrack catastrophically: the literal
# pieces of a many-holed template ("{} epoch{} x {} image{} = {} step{} of batch {} per model,
# ...") repeated, so a regex tries every way to share them out among its holes.
ROOT = Path(__file__).resolve().parent.parent
UNIT = " epoch x  image =  step of batch  per model, "


def finishes(fn, *args, seconds: float = 10.0):
    """fn(*args) in a fresh interpreter: its result, or a failure when it did not finish in
    `seconds` (a generous bound: the answer is due in milliseconds; the old matcher took
    minutes, holding the interpreter so that no thread of it could even notice)."""
    code = ("import importlib, json, sys; a = json.load(sys.stdin); f = importlib.import_module(a[0])\n"
            "try: print(json.dumps({'value': getattr(f, a[1])(*a[2])}))\n"
            "except Exception as e: print(json.dumps({'error': type(e).__name__, 'message': str(e)}))")
    try:
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps([fn.__module__, fn.__name__, args]),
                              capture_output=True, text=True, timeout=seconds, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{fn.__name__} still running after {seconds} s: the matching backtracks")
    out = json.loads(done.stdout)
    if "error" in out:
        raise getattr(data, out["error"], RuntimeError)(out["message"])
    return out["value"]


def png_bytes(color=(200, 30, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 12), color).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- 1: no backtracking on user text
@pytest.mark.parametrize("repeat", [40, 1200])  # a 1.8 KB and a 54 KB parameter name
def test_a_crafted_link_parameter_is_translated_at_once(repeat):
    name = UNIT * repeat
    _, problems = train_settings.settings_from_query({name: "1"})
    assert len(problems) == 1 and len(problems[0]) < 80  # the name is shown bounded
    zh = finishes(tm, problems[0], "zh-TW")
    assert zh.startswith("未知的設定") and "…" in zh
    # the matcher itself is linear too, whatever reaches it unbounded
    raw = finishes(tm, f"unknown setting '{UNIT * 40}'", "zh-TW")
    assert raw.startswith("未知的設定") and raw.count("per model") == 40


def test_a_crafted_zip_entry_name_is_translated_at_once(tmp_path):
    path = tmp_path / "own.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(UNIT * 40 + ".png", b"not an image")
        zf.writestr(UNIT * 1200 + ".png", b"not an image either")
    with pytest.raises(ValueError, match=r"no usable image in this upload: .*not a PNG, JPEG, WebP or BMP") as e:
        datasets.load_user_images([str(path)], 32)
    message = str(e.value)
    assert len(message) < 400  # both names shown bounded
    zh = finishes(tm, message, "zh-TW")
    assert zh.startswith("這次上傳沒有可用的影像"), zh
    assert finishes(tm, f"no usable image in this upload: {UNIT * 80}.png: x", "zh-TW").startswith("這次上傳")


def test_template_matching_gives_what_a_lazy_regex_gave():
    pieces = tuple("a{}b{}c".split("{}"))
    assert i18n.fill(pieces, "a1b2b3c") == ["1", "2b3"]  # each hole the shortest that lets the rest fit
    assert i18n.fill(pieces, "abc") == ["", ""]
    assert i18n.fill(pieces, "a1c") is None
    assert i18n.fill(tuple("{}: x".split("{}")), "y: x: x") == ["y: x"]
    assert i18n.fill(tuple("x{}x".split("{}")), "x") is None  # the two pieces may not overlap


def test_ids_parse_without_quadratic_regex_and_a_huge_number_is_refused_plainly():
    assert finishes(data.parse_ids, " 1 - 3 ,7 \u2013 8") == [1, 2, 3, 7, 8]
    with pytest.raises(data.DataError, match=r"is not an id or a range like 1-5") as e:
        finishes(data.parse_ids, "1" * 5000)
    assert len(str(e.value)) < 120 and "int_max_str_digits" not in str(e.value)
    with pytest.raises(data.DataError, match=r"'-' is not an id"):
        finishes(data.parse_ids, " " * 200_000 + "-")


# ---------------------------------------------------------------- 3: long folder names
def test_a_label_folder_named_by_thousands_of_characters_is_refused(tmp_path):
    path = tmp_path / "labels.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cats/a.png", png_bytes())
        zf.writestr("L" * 30_000 + "/b.png", png_bytes())
    with pytest.raises(data.DataError, match=r"a label folder is named by 30,000 characters .*the limit is 200"):
        data.load_dataset(str(path), 32)


def test_names_in_messages_are_bounded_and_printable():
    assert data.shown("a" * 10) == "a" * 10
    long = data.shown("x" * 60_000 + ".png")
    assert len(long) == data.limits.MAX_SHOWN_NAME and long.endswith(".png") and "…" in long
    assert data.shown("a\nb\x00c") == "a?b?c"


def test_fill_matches_every_template_as_before():
    """The linear matcher reads back the values of every template filled in."""
    for pieces, _ in i18n._templates("zh-TW"):
        values = [f"v{i}" for i in range(len(pieces) - 1)]
        text = "".join(p + v for p, v in zip(pieces, values)) + pieces[-1]
        assert i18n.fill(pieces, text) == values, pieces


# ---------------------------------------------------------------- 6, 7, 9: shown as text
PAYLOADS = ['<img src=x onerror=window.__pwned=1 id=pwn1>', '[sign in](javascript:window.__pwned=2)',
            '![t](x.png) <b id=pwn3>bold']


def crafted_zip(folder: Path) -> Path:
    """A zip whose folder (label), file and own names are markup: 3 labels x 4 images."""
    path = folder / "<img src=y onerror=window.__pwned=5 id=pwn5>.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k, label in enumerate(PAYLOADS):
            for i in range(4):
                name = f"<svg onload=window.__pwned=4 id=pwn4>{i}.png" if k == 0 else f"{i}.png"
                zf.writestr(f"{label}/{name}", png_bytes((60 * k, 40 * i, 90)))
    return path


def crafted_report(app_module, folder: Path) -> Path:
    """report.html of a session whose upload is crafted_zip, through the Report tab's handler."""
    from ui.sessions import session

    req = type("R", (), {"session_hash": f"prank-report-{folder.name}"})()
    s = session(req)
    s.set_upload([str(crafted_zip(folder))], s.pair().image_size)
    app_module.reconstruct("1-12", 12, 0, False, req)  # every image, so every label and name is in the report
    path, msg = app_module.download_report(req)
    assert "Report ready" in msg
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder / "out")
    return folder / "out" / "aevae-report" / "report.html"


def test_markdown_escape_shows_markup_as_text():
    from markdown_it import MarkdownIt

    for text in [*PAYLOADS, "<script>window.__pwned=1</script>", "a|b", "**x** `y` $$z$$ www.x.org a@b.org"]:
        out = MarkdownIt("commonmark").enable("table").enable("linkify").render(i18n.md(text))
        assert "<img" not in out and "<a " not in out and "<script" not in out and "<b " not in out
        assert "<strong>" not in out and "<code>" not in out
        assert out.startswith("<p>") and "&lt;" in out or "<" not in text


def test_the_report_shows_names_and_labels_as_text(app_module, tmp_path):
    html = crafted_report(app_module, tmp_path).read_text()
    body = html.split("</style>", 1)[1]
    for tag in ("<img src=x", "<img src=y", "<svg", "<b id", 'href="javascript', "<a "):
        assert tag not in body, tag
    # The report shows the validation split: the upload's name, and the label of its validation
    # image, shown as written (text, not an image or a link).
    assert "&lt;img src=y onerror=window.__pwned=5 id=pwn5&gt;.zip" in body
    assert "<td>[sign in](javascript:window.__pwned=2)</td>" in body
    md = (tmp_path / "out" / "aevae-report" / "report.md").read_text()
    assert r"\<img src=y onerror=window.__pwned=5 id=pwn5\>" in md


def test_toasts_and_notes_escape_and_bound_what_users_typed():
    from ui.messages import MAX_NOTE, md, plain, refuse

    e = refuse("'<b/id=pwn2>boo</b>' is not an id", "en")
    assert e.message == "'&lt;b/id=pwn2&gt;boo&lt;/b&gt;' is not an id" and e.plain.startswith("'<b/id")
    assert len(refuse("x" * 5_000_000, "en").message) == MAX_NOTE
    assert plain("<i>") == "&lt;i&gt;" and md("<i>") == r"\<i\>"


# ---------------------------------------------------------------- 8: no formulas in spreadsheets
FORMULAS = ['=HYPERLINK("evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]


def test_csv_and_label_names_write_formulas_as_text(app_module, tmp_path):
    import csv

    from aevae import sampling, userdata
    from ui.sessions import session

    path = tmp_path / "formulas.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k, label in enumerate(FORMULAS):
            for i in range(3):
                zf.writestr(f"{label}/=cmd{i}.png", png_bytes((60 * k, 40 * i, 90)))
    req = type("R", (), {"session_hash": "prank-csv"})()
    s = session(req)
    s.set_upload([str(path)], s.pair().image_size)
    out = app_module.reconstruct("1-12", 12, 0, False, req)
    with open(out[-1], newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["label"] for r in rows}) == sorted("'" + label for label in FORMULAS)
    assert all(r["name"].startswith("'") and r["name"][1:].split("/")[0] in FORMULAS for r in rows)
    assert all(float(r["AE PSNR"]) > 0 for r in rows)  # numbers stay numbers
    # gen_label_names.txt: the same, and read back as the names they are
    names = [*FORMULAS, "'=quoted", "plain", "\tTab"]
    written = sampling.save_label_names(tmp_path, names)
    lines = written.read_text().splitlines()
    assert all(line.startswith("'") for line in lines[:5]) and lines[5] == "plain"
    assert userdata.read_label_names(written)[:6] == names[:6]


# ---------------------------------------------------------------- 3: labels drawn bounded
def test_long_labels_are_drawn_short(tmp_path):
    import numpy as np

    from aevae import figures, userdata

    rows = [np.zeros((2, 32, 32, 3), np.uint8)] * 2
    short = figures.image_grid(rows, ["cats", "dogs"])
    long = figures.image_grid(rows, ["L" * 30_000, "x\n" * 5_000])
    assert long.shape[0] == short.shape[0] and long.shape[1] < short.shape[1] + 300  # not 660,000 px wide
    assert figures.drawn_label("a" * 100) == "a" * 23 + "…"
    # through an upload: six folders named by the longest allowed name, a strip of normal width
    path = tmp_path / "long.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(6):
            for i in range(2):
                zf.writestr(f"{chr(65 + k) * data.limits.MAX_LABEL_CHARS}/{i}.png", png_bytes((40 * k, 30 * i, 90)))
    whole = data.load_dataset(str(path), 32)
    strip = figures.image_grid([r for _, r in userdata.examples(whole)], [n for n, _ in userdata.examples(whole)])
    assert strip.shape[1] < 1000


# ---------------------------------------------------------------- 2: decoding charged by its cost
def crafted_images() -> dict[str, bytes]:
    """Small files whose structure, not their pixels, makes decoding slow (made here, in memory)."""
    import struct
    import zlib

    def image(fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (120, 30, 200)).save(buf, fmt, **kw)
        return buf.getvalue()

    jpeg = image("JPEG", quality=90)
    head, rest = jpeg.split(b"\xff\xda", 1)
    scans = head + (b"\xff\xda" + rest[:-2]) * 2000 + b"\xff\xd9"  # 2,000 scans
    comment = b"\xff\xfe" + struct.pack(">H", 65_002) + b"x" * 65_000
    metadata = jpeg[:2] + comment * 50 + jpeg[2:]  # 3.25 MB of comments before the pixels
    png = image("PNG")
    empty = struct.pack(">I", 0) + b"prVt" + struct.pack(">I", zlib.crc32(b"prVt"))
    chunks = png[:33] + empty * 20_000 + png[33:]  # 20,000 empty chunks after IHDR
    webp = image("WEBP", xmp=b"x" * 3_000_000)  # Pillow writes it as an XMP chunk
    return {"scans.jpg": scans, "metadata.jpg": metadata, "chunks.png": chunks, "metadata.webp": webp}


@pytest.mark.parametrize("name, why", [
    ("scans.jpg", r"a progressive JPEG of 2,000 scans \(the limit is 100\)"),
    ("metadata.jpg", r"3,250,1\d\d bytes of metadata \(the limit is 2,000,000\)"),
    ("chunks.png", r"a PNG of more than 1,058 chunks"),
    ("metadata.webp", r"3,000,000 bytes of metadata \(the limit is 2,000,000\)")])
def test_files_that_cost_more_than_their_pixels_are_refused_unread(tmp_path, name, why):
    path = tmp_path / "crafted.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, crafted_images()[name])
        zf.writestr("fine.png", png_bytes())
    images = data.load_dataset(str(path), 32)
    assert len(images) == 1 and len(images.skipped) == 1
    assert images.skipped[0].startswith(f"{name}: ") and re.search(why, images.skipped[0]), images.skipped
    # alone in an upload: refused with the same reason
    with zipfile.ZipFile(tmp_path / "alone.zip", "w") as zf:
        zf.writestr(name, crafted_images()[name])
    with pytest.raises(data.DataError, match=f"no readable images .*{why}"):
        data.load_dataset(str(tmp_path / "alone.zip"), 32)


def test_ordinary_progressive_jpegs_and_pngs_still_load(tmp_path):
    for fmt, kw in [("JPEG", {"progressive": True, "quality": 95}), ("JPEG", {}), ("PNG", {"optimize": True})]:
        buf = io.BytesIO()
        Image.effect_noise((300, 300), 60).convert("RGB").save(buf, fmt, **kw)
        data.decoding.check_structure(buf.getvalue())  # no refusal
