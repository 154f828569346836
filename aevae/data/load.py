"""Any image set by name ("openmoji" or a path), the memory its load may hold, and its split."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import limits, openmoji
from .arrays import CHUNK, check_images_shape, load_arrays, read_npy_header
from .decoding import PixelBudget
from .files import load_folder, load_image_file, load_zip
from .imageset import DataError, ImageSet, StopCheck, check_max_images, check_size


def load_dataset(spec: str, image_size: int = 64, labels_path: str | Path | None = None,
                 max_images: int | None = None, should_stop: StopCheck = None,
                 pixels: PixelBudget | None = None) -> ImageSet:
    """ "openmoji" (or empty) or a path: folder, .zip, .npy, .npz or a single image file.

    max_images: at most that many images (the first usable ones; OpenMoji ignores it);
    should_stop: checked between images, True raises Cancelled; pixels: the decoding budget
    (image files only: arrays are bounded by their bytes)."""
    max_images = check_max_images(max_images)
    if str(spec).strip().lower() in ("", "openmoji"):
        if labels_path is not None:
            raise DataError("a labels file only goes with .npy or .npz images")
        return openmoji.load_openmoji(image_size)
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
    return load_image_file(path, image_size, max_images, should_stop, pixels)


def peak_bytes(spec: str | Path, image_size: int) -> int:
    """An upper bound of the memory loading `spec` at `image_size` holds at once, in bytes.

    Read from headers and the zip directory only (nothing is decoded), so a server can make
    room before loading. Files it cannot read are bounded as the largest image set (their
    load then says what is wrong)."""
    size = check_size(image_size)
    row = size * size * 3
    largest = limits.MAX_IMAGES * row + limits.MAX_MEMBER_BYTES + 4 * limits.MAX_IMAGE_PIXELS  # files, one read and one decode at a time
    if str(spec).strip().lower() in ("", "openmoji"):
        return len(openmoji.sequences()) * row
    path = Path(spec)
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                n = min(len(zf.infolist()), limits.MAX_IMAGES)
            return n * row + limits.MAX_MEMBER_BYTES + 4 * limits.MAX_IMAGE_PIXELS
        if suffix in (".npy", ".npz"):
            shapes = []
            if suffix == ".npy":
                with path.open("rb") as f:
                    shapes.append(read_npy_header(f, path.name))
            else:
                with zipfile.ZipFile(path) as zf:
                    for member in zf.namelist():
                        if member.removesuffix(".npy") in ("data", "images"):
                            with zf.open(member) as f:
                                shapes.append(read_npy_header(f, path.name))
            total = 0
            for shape, dtype in shapes:
                n, h, w = check_images_shape(shape, dtype, path.name)
                # the array as stored, as uint8, and resized: at most all three at once, and
                # the float64 temporary of a chunk's conversion (arrays.CHUNK)
                total += n * h * w * 3 * (dtype.itemsize + 1) + n * row + min(n, CHUNK) * h * w * 3 * 8
            return total or largest
        if path.is_file():  # a single image
            return row + limits.MAX_MEMBER_BYTES + 4 * limits.MAX_IMAGE_PIXELS
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
