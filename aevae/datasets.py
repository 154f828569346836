"""The data sessions use: OpenMoji's fixed split per image size, rendered once and shared
(read-only, within the server's data memory); a session's chosen images; an upload read and
recognised again (upload_key).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from . import (
    data,
    resources,
)

OPENMOJI = "openmoji"


MAX_RECON_IMAGES = 64


_split_lock = threading.Lock()


_splits: dict[int, data.Split] = {}


_split_held: dict[int, resources.Held] = {}


def openmoji_split(size: int) -> data.Split:
    """The default dataset's fixed split, rendered once per size and shared (read-only).

    Kept within the server's data memory (resources.DATA): sizes nobody used lately are
    released when others need room, and rendered again (from the disk cache) when asked."""
    with _split_lock:
        if size in _splits:
            _split_held[size].touch()
            return _splits[size]
        held = resources.DATA.claim(resources.SHARED, size, data.peak_bytes(OPENMOJI, size),
                                    f"OpenMoji at {size} px")
        try:
            split = data.load_split(OPENMOJI, size, 0.1, 0)
        except BaseException:
            held.drop()
            raise
        _splits[size], _split_held[size] = split, held
        held.loaded(split.all.images.nbytes, lambda: (_splits.pop(size, None), _split_held.pop(size, None)))
        return split


def upload_key(paths) -> tuple:
    """What was uploaded, to know the same upload again: each file by its path and size (a file
    taken into a session's folder by its kept copy's size)."""
    out = []
    for p in ([paths] if isinstance(paths, str | Path) else paths):
        try:
            size = resources.resolve(p).stat().st_size
        except (OSError, data.DataError):
            size = -1
        out.append((str(p), size))
    return tuple(sorted(out))


def openmoji_counts() -> data.Split:
    """An OpenMoji split at any size already rendered (for its counts, the same at every size)."""
    with _split_lock:
        ready = next(iter(_splits.values()), None)
    return ready if ready is not None else openmoji_split(64)


def choose(split: data.Split, ids: list[int] | None, n: int = 10, seed: int = 0) -> data.ImageSet:
    """Images by 1-based ids from the whole set, or n random ones from the validation split."""
    if ids:
        if len(ids) > MAX_RECON_IMAGES:
            raise ValueError(f"at most {MAX_RECON_IMAGES} images at once, got {len(ids)} ids")
        return split.all.select_ids(ids)
    if not 1 <= n <= MAX_RECON_IMAGES:
        raise ValueError(f"number of images must be 1..{MAX_RECON_IMAGES}, got {n}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(split.val), min(n, len(split.val)), replace=False))
    return split.val.subset(pick)


def load_user_images(paths: list[str], size: int, should_stop=None,
                     pixels: data.PixelBudget | None = None) -> data.ImageSet:
    """Single image files (or zips) uploaded to be reconstructed, as one ImageSet.

    A file that cannot be read is skipped and named in `skipped`, as are files beyond the
    MAX_RECON_IMAGES images shown, which are not even decoded; only when no image at all is
    usable is it an error. `pixels` caps the decoding of all the files together (default:
    data.limits.MAX_DECODED_PIXELS); `should_stop` cancels it (data.Cancelled)."""
    sets, skipped, left = [], [], MAX_RECON_IMAGES
    pixels = pixels if pixels is not None else data.PixelBudget()
    for i, p in enumerate(paths):
        if not left:
            rest = [Path(q).name for q in paths[i:]]
            skipped.append(f"{', '.join(rest[:3])}{' ...' * (len(rest) > 3)}: beyond the {MAX_RECON_IMAGES} "
                           f"images reconstructed at once ({len(rest)} file{'s' * (len(rest) != 1)} not read)")
            break
        try:
            sets.append(data.load_dataset(str(p), size, max_images=left, should_stop=should_stop, pixels=pixels))
            left -= len(sets[-1])
        except data.DataError as e:  # one image file: its own reason, not "no readable images (1 file ...)"
            why = getattr(e, "skipped", [])
            skipped.append(why[0] if len(why) == 1 else str(e))
    skipped += [k for s in sets for k in s.skipped]
    if not sets or not sum(len(s) for s in sets):
        why = ("; ".join(skipped[:5]) + (f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else "")) or \
            "no images uploaded"
        raise ValueError(f"no usable image in this upload: {why}")
    names = [n for s in sets for n in s.names]
    imgs = np.concatenate([s.images for s in sets])
    return data.ImageSet(imgs, np.zeros(len(imgs), np.int64), [data.UNLABELLED], names,
                         np.arange(1, len(imgs) + 1), "uploaded images", skipped)


def trained_on(dataset: dict) -> str:
    """What a model's recorded dataset was, in words."""
    if not dataset:
        return "data it has no record of"
    spec = dataset.get("spec", OPENMOJI)
    if spec == OPENMOJI:
        return "OpenMoji emoji"
    if spec.startswith(OPENMOJI + " ("):  # a shipped pair trained on some OpenMoji groups
        return f"OpenMoji's {spec.removeprefix(OPENMOJI + ' (').removesuffix(')')} only"
    return dataset.get("source") or spec
