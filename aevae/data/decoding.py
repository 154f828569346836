"""One image file's bytes -> a square RGB array: its cost checked from its header and structure
before Pillow decodes it, and the pixels a load may still decode (`PixelBudget`)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import limits

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")


class Skip(Exception):  # one file in a folder or zip is unusable; the reason goes to skipped
    pass


class PixelBudget:
    """Pixels that loads may still decode; shared by loads that should be capped together.

    `scope` and `why` go into the refusal message: whose budget ran out, and what to do."""

    def __init__(self, pixels: int | None = None, scope: str = "in all", why: str = ""):
        self.limit = self.left = int(limits.MAX_DECODED_PIXELS if pixels is None else pixels)
        self.used = 0
        self.scope, self.why = scope, why or "use fewer or smaller images"

    def take(self, n: int) -> None:
        self.left -= n
        self.used += n


def square(im: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square (nothing is padded in), then resize with LANCZOS."""
    w, h = im.size
    s = min(w, h)
    if w != h:  # crop first: resize(box=...) would blend in pixels from outside the box
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS))


def to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16/32-bit grey: scale, don't clip
        a = np.asarray(im, dtype=np.float64)
        a = a / 257 if a.max() > 255 else a
        im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if "A" in im.getbands() or "transparency" in im.info:
        white = Image.new("RGBA", im.size, "white")
        white.alpha_composite(im.convert("RGBA"))  # transparent parts become white
        im = white
    return im.convert("RGB")


class OverBudget(Exception):  # decoding this image would pass limits.MAX_DECODED_PIXELS for the load
    pass


def check_structure(data: bytes) -> None:
    """Refuse (Skip, with why) a PNG, JPEG or WebP whose structure costs far more to decode (or
    holds far more metadata) than its pixels: one pass over its bytes, no decoding."""
    meta = 0
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        most, pos, chunks = 1000 + len(data) // limits.PNG_CHUNK_BYTES, 8, 0
        while pos + 8 <= len(data):
            length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
            chunks += 1
            if chunks > most:
                raise Skip(f"a PNG of more than {most:,} chunks; save the image again")
            if kind == b"IEND":
                break
            if kind not in (b"IHDR", b"PLTE", b"IDAT", b"tRNS"):
                meta += length
            pos += 12 + length
    elif data[:2] == b"\xff\xd8":
        # In a JPEG's coded data every 0xFF byte is followed by 0x00 or a restart marker, so
        # FF DA (start of scan) occurs only as a marker (or inside an embedded thumbnail).
        scans = data.count(b"\xff\xda")
        if scans > limits.MAX_JPEG_SCANS:
            raise Skip(f"a progressive JPEG of {scans:,} scans (the limit is {limits.MAX_JPEG_SCANS}); "
                        "save it again as an ordinary JPEG or a PNG")
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
            if marker == 0xDA:  # the first scan: the segments before it are the headers
                break
            if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn (EXIF, ICC, ...) and comments
                meta += length
            pos += 2 + length
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        pos = 12  # RIFF chunks: FourCC, little-endian size, data padded to an even length
        while pos + 8 <= len(data):
            kind, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
            if kind in (b"EXIF", b"XMP ", b"ICCP"):
                meta += length
            pos += 8 + length + (length & 1)
    if meta > limits.MAX_METADATA_BYTES:
        raise Skip(f"{meta:,} bytes of metadata (the limit is {limits.MAX_METADATA_BYTES:,}); "
                    "save the image again without it")


def decode(data: bytes, size: int, pixels_left: int | None = None) -> tuple[np.ndarray, int]:
    """(image, pixels decoded). Sizes come from the header, checked before decoding; so is what
    the file's structure would cost (check_structure)."""
    check_structure(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                w, h = im.size  # known from the header, before any pixel is decoded
                if w * h > limits.MAX_IMAGE_PIXELS:
                    raise Skip(f"image too large ({w} x {h} pixels, limit {limits.MAX_IMAGE_PIXELS:,})")
                im.draft("RGB", (size, size))  # JPEG: decode at reduced scale, much faster
                cost = im.size[0] * im.size[1]  # what load() will decode
                if pixels_left is not None and cost > pixels_left:
                    raise OverBudget
                im.load()
                return square(to_rgb(ImageOps.exif_transpose(im)), size), cost
    except UnidentifiedImageError:
        raise Skip("not a PNG, JPEG, WebP or BMP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Skip(f"image too large ({e})") from None
    except (Skip, OverBudget):
        raise
    except Exception as e:  # Pillow raises many types on damaged files; one must not stop the rest
        raise Skip(f"unreadable image ({e or type(e).__name__})") from None
