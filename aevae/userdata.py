"""A user's own dataset: which uploaded file is what, label names, and what was found in it.

An upload is one .zip / .npy / .npz of images, optionally with a labels .npy (the one named
like *label*, as report A's gen_data.npy / gen_label.npy) and a .txt of label names (line k
names label k, as the Noisy VAE variants tab writes gen_label_names.txt).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data

DATA_SUFFIXES = (".zip", ".npy", ".npz")
MAX_NAMES_BYTES = 1_000_000
EXAMPLES_PER_LABEL = 8
EXAMPLE_LABELS = 6  # labels shown as their own row of examples; more are shown as one strip


@dataclass
class Upload:
    """Kept copies of an upload's files (the originals are Gradio's, removed in time)."""

    data: Path
    labels: Path | None
    names: list[str] | None  # label names from a .txt file, in label order
    files: tuple[str, ...]  # the files' names as the user uploaded them
    key: tuple  # what was uploaded, to know the same upload again

    @property
    def shown(self) -> str:
        return " + ".join(self.files)

    def load(self, size: int, should_stop=None, pixels: data.PixelBudget | None = None) -> data.Split:
        """The images at this size, split; should_stop and pixels as data.load_split takes them."""
        split = data.load_split(str(self.data), size, labels_path=self.labels, should_stop=should_stop,
                                pixels=pixels)
        if self.names is not None:
            name_labels(split, self.names, self.shown)
        split.all.source = f"uploaded: {self.shown}"
        return split


def upload_key(paths) -> tuple:
    files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    return tuple(sorted((str(p), p.stat().st_size if p.is_file() else -1) for p in files))


PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # one image: a dataset needs a .zip of them


def sort_files(paths) -> tuple[Path, Path | None, Path | None]:
    """(images, labels .npy or None, label names .txt or None) of an upload, or a ValueError."""
    files = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    for f in files:
        if f.suffix.lower() in PHOTO_SUFFIXES:
            raise ValueError(f"{f.name} is one photo: to train on your photos, put them in a .zip "
                             "(a folder per label, or all in one) and upload that")
        if f.suffix.lower() not in (*DATA_SUFFIXES, ".txt"):
            raise ValueError(f"{f.name}: not a dataset file; upload a .zip of images, a .npz, or a .npy of "
                             "images (with a *label*.npy of labels and a .txt of label names if you have them)")
    texts = [f for f in files if f.suffix.lower() == ".txt"]
    rest = [f for f in files if f not in texts]
    if len(texts) > 1:
        raise ValueError("upload at most one .txt of label names, got " + ", ".join(f.name for f in texts))
    if not rest:
        raise ValueError("no images in this upload: add the .zip, .npy or .npz that holds them")
    labels = None
    shown = ", ".join(f.name for f in rest)
    if len(rest) == 2:
        named = [f for f in rest if "label" in f.name.lower()]
        if len(named) != 1 or any(f.suffix.lower() != ".npy" for f in rest):
            raise ValueError(f"two data files ({shown}): that works for a .npy of images with a .npy of labels "
                             "named like *label*.npy; otherwise remove one (its x in the file list)")
        labels = named[0]
        rest.remove(labels)
    elif len(rest) > 2:
        raise ValueError(f"{len(rest)} data files ({shown}): upload one dataset (a .zip, .npz or .npy, or a .npy "
                         "of images with a *label*.npy); remove the others (their x in the file list)")
    return rest[0], labels, (texts[0] if texts else None)


def read_label_names(path: Path) -> list[str]:
    """Line k of the file names label k; blank lines at the end are ignored."""
    if path.stat().st_size > MAX_NAMES_BYTES:
        raise ValueError(f"{path.name}: a label names file is at most {MAX_NAMES_BYTES:,} bytes")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: label names must be UTF-8 text, one name a line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = [data.uncell(line.strip()) for line in lines]  # as save_label_names wrote them
    if not names:
        raise ValueError(f"{path.name}: no label names in it (one name a line: line 1 names label 0)")
    if len(names) > data.limits.MAX_IMAGES or max(map(len, names)) > data.limits.MAX_LABEL_CHARS:
        raise ValueError(f"{path.name}: at most {data.limits.MAX_IMAGES:,} names of {data.limits.MAX_LABEL_CHARS} characters")
    return names


def name_labels(split: data.Split, names: list[str], shown: str) -> None:
    """Numeric labels 0, 1, ... named by `names` (line k names label k)."""
    found = split.all.label_names
    if not all(v.lstrip("-").isdigit() for v in found) or found == [data.UNLABELLED]:
        raise ValueError(f"{shown}: a label names file goes with numeric labels (a labels .npy of whole "
                         "numbers); these labels are names already")
    values = [int(v) for v in found]
    if min(values) < 0 or max(values) >= len(names):
        raise ValueError(f"{shown}: the labels go from {min(values)} to {max(values)} but the names file "
                         f"names labels 0 to {len(names) - 1}")
    named = [names[v] for v in values]
    if len(set(named)) < len(named):
        raise ValueError(f"{shown}: two labels in use have the same name in the names file")
    for part in (split.all, split.train, split.val):
        part.label_names = list(named)


def keep(paths, folder: Path, place=shutil.copyfile) -> Upload:
    """Copies of an upload's files in `folder` (checked by loading them before they are kept).

    place(src, dest) puts a file there: a copy by default (the app moves the web server's uploads)."""
    images, labels, names_file = sort_files(paths)
    names = read_label_names(names_file) if names_file is not None else None
    # Under their own names (a folder of their own), so images keep names like photos[3].
    data_copy = folder / images.name
    place(images, data_copy)
    labels_copy = None
    if labels is not None:
        labels_copy = folder / labels.name
        place(labels, labels_copy)
    files = tuple(f.name for f in (images, labels, names_file) if f is not None)
    return Upload(data_copy, labels_copy, names, files, upload_key(paths))


def stored_size(path: Path) -> tuple[int, int] | None:
    """Height and width of the images in a .npy or .npz as stored (from the array's header), else None."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(arr, np.lib.npyio.NpzFile):
            with arr as z:
                key = next((k for k in ("data", "images") if k in z.files), None)
                member = key if key in z.zip.namelist() else f"{key}.npy"
                with z.zip.open(member) as f:
                    fmt = np.lib.format
                    read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                    shape = read(f)[0]
        else:
            shape = arr.shape
    except Exception:  # only a description: the loader itself has checked the file
        return None
    if len(shape) == 3:
        shape = (1, *shape)
    return (shape[1], shape[2]) if shape[-1] == 3 else (shape[2], shape[3])


def label_counts(images: data.ImageSet) -> list[tuple[str, int]]:
    counts = np.bincount(images.labels, minlength=len(images.label_names))
    return [(name, int(c)) for name, c in zip(images.label_names, counts) if c]


def examples(images: data.ImageSet, per: int = EXAMPLES_PER_LABEL,
             most: int = EXAMPLE_LABELS) -> list[tuple[str, np.ndarray]]:
    """The first images of each label (a row each), or of the whole set when labels are many."""
    used = [i for i, _ in enumerate(images.label_names) if (images.labels == i).any()]
    if len(used) > most or len(used) <= 1:
        return [("", images.images[:2 * per])]
    return [(images.label_names[i], images.images[np.flatnonzero(images.labels == i)[:per]]) for i in used]
