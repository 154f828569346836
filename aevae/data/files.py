"""Images from files: a folder (a sub-folder per label), a zip (read in memory, nothing extracted)
or one image file. Unusable files are skipped and named; the load's bytes, pixels and image
count are bounded as it goes."""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from . import decoding, limits
from .decoding import OverBudget, PixelBudget, Skip
from .imageset import (
    UNLABELLED,
    DataError,
    ImageSet,
    StopCheck,
    check_max_images,
    check_size,
    check_stop,
    source_name,
)
from .names import shown


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


# A reader gets the most bytes it may return (the load's bytes left) and returns the file's
# bytes, raising Skip for an unusable file and ByteBudget past that limit.
Entry = tuple[tuple[str, ...], Callable[[int], bytes]]  # path parts, reader


class ByteBudget(Exception):  # reading this file would pass limits.MAX_ZIP_TOTAL_BYTES for the load
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
    long = next((p[0] for p, _ in entries if len(p) > 1 and len(p[0]) > limits.MAX_LABEL_CHARS), None)
    if long is not None:
        raise DataError(f"{name}: a label folder is named by {len(long):,} characters ({shown(long)}); "
                        f"the limit is {limits.MAX_LABEL_CHARS}, rename the folder")
    # Decoded straight into one array: rows never written are never touched, so they take
    # address space but no memory (no list of images and np.stack copy beside it).
    rows = min(len(entries), limits.MAX_IMAGES, max_images or limits.MAX_IMAGES)
    images = np.empty((rows, size, size, 3), np.uint8)
    labels, names, total, count = [], [], 0, 0
    for parts, read in entries:
        check_stop(should_stop, name)
        rel = "/".join(parts)
        try:
            data = read(limits.MAX_ZIP_TOTAL_BYTES - total)
            total += len(data)
            image, cost = decoding.decode(data, size, budget.left)
            budget.take(cost)
        except Skip as e:
            skipped.append(f"{shown(rel)}: {e}")
            continue
        except ByteBudget:
            raise DataError(f"{name}: more than {limits.MAX_ZIP_TOTAL_BYTES:,} bytes in all, too much") from None
        except OverBudget:
            raise DataError(f"{name}: more than {budget.limit:,} pixels to decode {budget.scope} "
                            f"(stopped at {shown(rel)}, after {count} images); {budget.why} "
                            f"(about {size}x{size} is enough)") from None
        if count == limits.MAX_IMAGES:
            raise DataError(f"{name}: more than {limits.MAX_IMAGES} images ({len(entries)} files); "
                            f"the limit is {limits.MAX_IMAGES}, use a smaller set")
        images[count] = image
        count += 1
        labels.append(parts[0] if len(parts) > 1 else UNLABELLED)
        names.append(shown(rel))
        if max_images is not None and count >= max_images:
            break
    if not count:
        listed = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        e = DataError(f"{name}: no readable images ({len(skipped)} file{'s' * (len(skipped) != 1)} skipped: {listed})")
        e.skipped = list(skipped)  # each "file: why", for a caller that lists them itself (datasets)
        raise e
    label_names = sorted(set(labels))
    index = {v: i for i, v in enumerate(label_names)}
    return ImageSet(images[:count], np.array([index[v] for v in labels]),
                    label_names, names, np.arange(1, count + 1),
                    source_name(f"{kind}{name}", count, size), skipped)


_CHUNK = 1 << 20


def read_capped(f, declared: int, limit: int) -> bytes:
    """Read a stream in chunks, stopping as soon as it passes what it may hold."""
    cap = min(declared, limits.MAX_MEMBER_BYTES, limit)
    chunks, got = [], 0
    while chunk := f.read(min(_CHUNK, cap + 1 - got)):
        chunks.append(chunk)
        got += len(chunk)
        if got > cap:
            if got > limit:
                raise ByteBudget
            if got > limits.MAX_MEMBER_BYTES:
                raise Skip(f"file too large (over {limits.MAX_MEMBER_BYTES:,} bytes)")
            raise Skip(f"holds more than its declared {declared:,} bytes")
    return b"".join(chunks)


def _read_file(path: Path, limit: int) -> bytes:
    try:
        if (n := path.stat().st_size) > limits.MAX_MEMBER_BYTES:
            raise Skip(f"file too large ({n:,} bytes, limit {limits.MAX_MEMBER_BYTES:,})")
        if n > limit:
            raise ByteBudget
        with path.open("rb") as f:  # the size may change between stat() and read: read capped
            return read_capped(f, n, limit)
    except OSError as e:
        raise Skip(f"cannot read ({e.strerror or e})") from None


def load_folder(path: str | Path, image_size: int, max_images: int | None = None,
                should_stop: StopCheck = None, pixels: PixelBudget | None = None) -> ImageSet:
    """Images in a folder; each immediate sub-folder is a label (as torchvision's ImageFolder).

    max_images: stop after that many usable images (in name order); should_stop: checked
    between files, True raises Cancelled."""
    size, root = check_size(image_size), Path(path)
    max_images = check_max_images(max_images)
    if not root.is_dir():
        raise DataError(f"{root.name or root}: not a folder")
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        rel = Path(dirpath).relative_to(root).parts
        entries += [((*rel, f), partial(_read_file, Path(dirpath, f)))
                    for f in filenames if not _hidden(f)]
        if len(entries) > limits.MAX_ZIP_MEMBERS:
            raise DataError(f"{root.name}: more than {limits.MAX_ZIP_MEMBERS} files, the limit")
        check_stop(should_stop, root.name)
    return _build(root.name or str(root), "folder ", entries, [], size, max_images, should_stop, pixels)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise ByteBudget
    try:
        with zf.open(info) as f:  # never trust the declared size alone: read capped
            return read_capped(f, info.file_size, limit)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError,
            EOFError) as e:  # damaged, encrypted or unsupported compression
        raise Skip(f"cannot unpack ({e})") from None


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
    size, path = check_size(image_size), Path(path)
    max_images = check_max_images(max_images)
    name = shown(path.name)
    if not path.is_file():
        raise DataError(f"{name}: no such file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(f"{name} is not a valid zip archive") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.MAX_ZIP_MEMBERS:
            raise DataError(f"{name} has {len(infos)} entries; the limit is {limits.MAX_ZIP_MEMBERS}")
        _check_zip_entries(name, infos)
        entries: list[Entry] = []
        skipped: list[str] = []
        names, read_as = zip_names(infos)
        for info, fn in zip(infos, names):
            parts = tuple(p for p in re.split(r"[/\\]", fn) if p and p != ".")  # "./a.png" is a.png
            if info.is_dir() or not parts:
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append(f"{shown(fn)}: symbolic link, not followed")
            elif fn.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", fn) or ".." in parts:
                skipped.append(f"{shown(fn)}: unsafe path (absolute or containing ..)")
            elif any(_hidden(p) for p in parts):
                continue
            elif info.file_size > limits.MAX_MEMBER_BYTES:
                skipped.append(f"{shown(fn)}: file too large ({info.file_size:,} bytes, "
                               f"limit {limits.MAX_MEMBER_BYTES:,})")
            else:
                entries.append((parts, partial(_read_member, zf, info)))
        if sum(info.file_size for info in infos) > limits.MAX_ZIP_TOTAL_BYTES:
            raise DataError(f"{name} unpacks to more than {limits.MAX_ZIP_TOTAL_BYTES:,} bytes, too much")
        images = _build(name, "zip ", entries, skipped, size, max_images, should_stop, pixels)
        images.names_read_as = read_as
        return images


# ---------------------------------------------------------------- NumPy arrays


def load_image_file(path: Path, image_size: int, max_images: int | None = None,
                    should_stop: StopCheck = None, pixels: PixelBudget | None = None) -> ImageSet:
    """A single image file as a set of one image."""
    return _build(shown(path.name), "image ", [((path.name,), partial(_read_file, path))], [],
                  check_size(image_size), max_images, should_stop, pixels)
