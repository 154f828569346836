"""Image grids for the app, the README and reports: numpy/Pillow only, pixels never blurred."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WHITE = 255
# Where a Chinese font may lie when fontconfig cannot say (Debian/Ubuntu, macOS, Windows).
CJK_FONTS = ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/System/Library/Fonts/PingFang.ttc", "C:/Windows/Fonts/msjh.ttc"]


@functools.cache
def cjk_font() -> tuple[str, int] | None:
    """A font file and face index that draws Traditional Chinese, or None where none is installed
    (labels are then drawn in English: see can_draw)."""
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(["fc-match", "-f", "%{file}|%{index}", ":lang=zh-tw"], capture_output=True,
                                 text=True, timeout=10).stdout
            path, _, index = out.partition("|")
            if path and Path(path).exists() and ImageFont.truetype(path, 12, index=int(index or 0)).getbbox("訓練")[2]:
                return path, int(index or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return next(((p, 0) for p in CJK_FONTS if Path(p).exists()), None)


def can_draw(text: str) -> bool:
    """Whether labels with this text can be drawn into a picture here (Latin always can)."""
    return all(ord(c) < 0x250 for c in text) or cjk_font() is not None


def _font(size: int, labels: list[str]):
    if cjk_font() and not all(ord(c) < 0x250 for c in "".join(labels)):
        path, index = cjk_font()
        return ImageFont.truetype(path, size, index=index)
    return ImageFont.load_default(size=size)


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image encoded as PNG, at zlib level 1: a third of the CPU of the default
    level 6 for pictures about 15% larger (measured on a reconstruction grid: 15 vs 50 ms, 248 vs
    212 KB), and the server encodes for a whole class."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so small images stay crisp wherever they are shown."""
    if factor <= 1:
        return img
    return img.repeat(factor, axis=-3).repeat(factor, axis=-2)


MAX_LABEL_DRAWN = 24  # characters of a row label in a picture (a 30,000-character one drew 660,000 px)


def drawn_label(text: str, most: int = MAX_LABEL_DRAWN) -> str:
    """A label as a picture draws it: one line, at most `most` characters, "…" for the rest."""
    text = " ".join(str(text).split())
    return text if len(text) <= most else text[:most - 1] + "…"


def image_grid(rows: list[np.ndarray], row_labels: list[str] | None = None,
               col_labels: list[str] | None = None, scale: int = 2, gap: int = 4) -> np.ndarray:
    """rows: list of (n, H, W, 3) uint8 arrays (same H, W); n may differ per row.

    Returns one uint8 image with optional labels to the left of each row and above each column.
    """
    if not rows:
        raise ValueError("nothing to draw")
    # Labels can be folder names someone chose: drawn at most MAX_LABEL_DRAWN characters, one line.
    row_labels = [drawn_label(t) for t in row_labels] if row_labels else row_labels
    h, w = rows[0].shape[1:3]
    cell_h, cell_w = h * scale, w * scale
    ncols = max(len(r) for r in rows)
    font = _font(max(11, min(16, cell_h // 5)), (row_labels or []) + (col_labels or []))
    left = 0
    if row_labels:
        left = max(int(font.getlength(t)) for t in row_labels) + 10
    # Room for the column labels as this font draws them (a CJK font's digits sit lower than
    # the default font's: a fixed 20 px cut their bottoms off).
    top = max(20, max(font.getbbox(c)[3] for c in col_labels) + 6) if col_labels else 0
    width = left + ncols * (cell_w + gap)
    height = top + len(rows) * (cell_h + gap)
    canvas = Image.new("RGB", (width, height), (WHITE, WHITE, WHITE))
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels or []):
        draw.text((left + j * (cell_w + gap) + 2, 3), label[: max(3, cell_w // 7)], fill=(60, 60, 60), font=font)
    for i, row in enumerate(rows):
        y = top + i * (cell_h + gap)
        if row_labels:
            box = font.getbbox(row_labels[i])  # centred on the row, whatever the font
            draw.text((4, y + (cell_h - box[1] - box[3]) // 2), row_labels[i], fill=(30, 30, 30), font=font)
        for j, img in enumerate(row):
            canvas.paste(Image.fromarray(upscale(img, scale)), (left + j * (cell_w + gap), y))
    return np.asarray(canvas)


def auto_scale(size: int, target: int = 128) -> int:
    """An integer factor that brings a size-px image near `target` px."""
    return max(1, round(target / size))


def wrapped_grid(rows: list[np.ndarray], row_labels: list[str], col_labels: list[str], scale: int = 2,
                 per_block: int = 12, gap: int = 12) -> np.ndarray:
    """image_grid, wrapped: every `per_block` columns start a new block of the same rows below,
    so 64 images stay readable instead of one long strip."""
    n = max(len(r) for r in rows)
    blocks = [image_grid([r[i:i + per_block] for r in rows], row_labels, col_labels[i:i + per_block], scale)
              for i in range(0, n, per_block)]
    width = max(b.shape[1] for b in blocks)
    out = []
    for b in blocks:
        pad = np.full((b.shape[0], width - b.shape[1], 3), 255, np.uint8)
        out += [np.concatenate([b, pad], 1), np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], 0)
