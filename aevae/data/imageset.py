"""`ImageSet`, what every loader returns, and what every loader checks the same way."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import limits
from .names import shown

UNLABELLED = "unlabelled"
REPORT_A_IDS = [1, 2, 3, 4, 5, 226, 227, 228, 229, 230, 841, 842, 843, 844, 845,
                1471, 1472, 1473, 1474, 1475]  # Report A's choose_id list


class DataError(ValueError):
    """Input that cannot become an ImageSet; the message is meant for the user."""


class Cancelled(Exception):
    """Loading stopped because `should_stop()` answered True (e.g. the request was cancelled)."""


StopCheck = Callable[[], bool] | None


def check_stop(should_stop: StopCheck, name: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"{name}: loading was cancelled")


def check_max_images(max_images: int | None) -> int | None:
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
        if len(ids) + hi - lo + 1 > limits.MAX_IDS:
            raise DataError(f"too many ids: at most {limits.MAX_IDS} at once")
        ids.extend(range(lo, hi + 1))
    return ids


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not (
            limits.MIN_SIZE <= size <= limits.MAX_SIZE):
        raise DataError(f"image size {size!r} is not supported: "
                        f"use a whole number from {limits.MIN_SIZE} to {limits.MAX_SIZE}")
    return int(size)


def source_name(kind: str, n: int, size: int) -> str:
    return f"{kind} ({n} image{'s' * (n != 1)}, {size}x{size})"


