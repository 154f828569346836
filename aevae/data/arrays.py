"""Images (and labels) from NumPy arrays: .npy, or .npz with `data`/`images` and `label`/`labels`.
Shapes and dtypes are read from the arrays' headers and checked before any data is read."""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from . import limits
from .decoding import square
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


def check_images_shape(shape: tuple[int, ...], dtype: np.dtype, name: str) -> tuple[int, int, int]:
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
    if n > limits.MAX_IMAGES:
        raise DataError(f"{name}: {n} images; the limit is {limits.MAX_IMAGES}")
    nbytes = n * h * w * 3 * dtype.itemsize
    if h * w > limits.MAX_IMAGE_PIXELS or nbytes > limits.MAX_ZIP_TOTAL_BYTES:
        raise DataError(f"{name}: images too large ({h} x {w} pixels each, {nbytes:,} bytes)")
    return n, h, w


def read_npy_header(f, name: str) -> tuple[tuple[int, ...], np.dtype]:
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
    shape = tuple(int(v) for v in shape)
    if any(v < 0 for v in shape):  # numpy reads the header as written; a -1 failed later in mmap
        raise DataError(f"{name} is not a valid NumPy file (its header gives shape {shape})")
    return shape, dtype


def _check_labels_shape(shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if dtype.hasobject:
        raise DataError(f"{name} contains Python objects (pickle), which is not allowed")
    if dtype.kind not in "uifU" or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise DataError(f"{name}: labels must be a 1-D array of whole numbers or of names, "
                        f"got {dtype} {tuple(shape)}")
    if dtype.kind == "U" and dtype.itemsize // 4 > limits.MAX_LABEL_CHARS:
        raise DataError(f"{name}: label names of up to {dtype.itemsize // 4} characters; "
                        f"the limit is {limits.MAX_LABEL_CHARS}")
    if shape[0] > limits.MAX_IMAGES:
        raise DataError(f"{name}: {shape[0]:,} labels; the limit is {limits.MAX_IMAGES} images")


CHUNK = 16  # images converted at a time: at most 6.3 MB of float64 at 128 px


def _array_images(a: np.ndarray, name: str, size: int | None, max_images: int | None = None,
                  should_stop: StopCheck = None) -> np.ndarray:
    """(N,H,W,3) or (N,3,H,W), uint8 or float in [0,1] or [0,255] -> (N,S,S,3) uint8."""
    check_images_shape(a.shape, a.dtype, name)
    if a.ndim == 3:  # a single (H, W, 3) image
        a = a[None]
    if a.shape[3] != 3:
        a = a.transpose(0, 2, 3, 1)
    h, w = a.shape[1:3]
    if max_images is not None:
        a = a[:max_images]
    a = np.asarray(a)  # read a memory-mapped file now that its size is known
    # In chunks: whole-array temporaries (isfinite's, a * 255's, rint's) tripled a float64 upload's
    # memory past what load.peak_bytes reserves for it (the array as stored, plus its uint8 copy).
    chunks = [slice(i, i + CHUNK) for i in range(0, len(a), CHUNK)]
    if a.dtype.kind == "f" and not all(np.isfinite(a[c]).all() for c in chunks):
        raise DataError(f"{name} contains NaN or infinite values")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi > 255:
        raise DataError(f"{name}: values must lie in 0..255 (or 0..1 for floats), found {lo}..{hi}")
    if a.dtype != np.uint8:  # floats with maximum <= 1 are taken as 0..1, all else as 0..255
        scale = 255.0 if a.dtype.kind == "f" and hi <= 1.0 else 1.0
        out8 = np.empty(a.shape, np.uint8)
        for c in chunks:
            part = a[c] * scale  # the one temporary (float64 at most: load.peak_bytes counts it)
            out8[c] = np.rint(part, out=part)
        a = out8
    # Without a requested size keep the stored one, brought into the supported range.
    size = size or min(max(min(h, w), limits.MIN_SIZE), limits.MAX_SIZE)
    if h == w == size:
        return np.ascontiguousarray(a)
    out = np.empty((len(a), size, size, 3), np.uint8)
    for i, im in enumerate(a):
        check_stop(should_stop, name)
        out[i] = square(Image.fromarray(im), size)
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
    if lab.dtype.kind in "fu" and len(lab) and not (lab.min() >= -2**53 and lab.max() <= 2**53):
        # 1e300 (a float) or 2**64-1 (uint64) became -9223372036854775808 as int64, merging labels
        raise DataError(f"{name}: labels must be whole numbers from {-2**53:,} to {2**53:,}, "
                        f"found {lab.min():g}..{lab.max():g}")
    values, index = np.unique(lab.astype(np.int64), return_inverse=True)
    return index.astype(np.int64), [str(v) for v in values]


def _npz_member(z: np.lib.npyio.NpzFile, key: str, name: str, check) -> np.ndarray:
    """One array of an .npz: its header read and checked before the data is decompressed.

    np.load then reads exactly the bytes the checked header declares."""
    member = key if key in z.zip.namelist() else f"{key}.npy"
    with z.zip.open(member) as f:
        shape, dtype = read_npy_header(f, name)
    check(shape, dtype, name)
    return z[key]


def _peek_npy(path: Path, name: str, check) -> None:
    """Check a .npy file's header (a no-op for files that are not .npy: np.load judges them)."""
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            return
        f.seek(0)
        shape, dtype = read_npy_header(f, name)
    check(shape, dtype, name)


def load_arrays(path: str | Path, image_size: int | None = None,
                labels_path: str | Path | None = None, max_images: int | None = None,
                should_stop: StopCheck = None) -> ImageSet:
    """Images from .npy, or .npz with `data`/`images` (and optionally `label`/`labels`).

    Without image_size the stored size is kept (clamped to 32..128). Shapes and dtypes are
    read from the arrays' headers and checked against the caps before any data is read or
    decompressed. max_images keeps the first that many images (and labels)."""
    path, labels = Path(path), None
    size = None if image_size is None else check_size(image_size)
    max_images = check_max_images(max_images)
    if not path.is_file():
        raise DataError(f"{path.name}: no such file")
    with _numpy_errors(path.name):
        _peek_npy(path, path.name, check_images_shape)
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # mmap: shape before reading
        if isinstance(arr, np.lib.npyio.NpzFile):
            with arr as z:
                ikey = next((k for k in ("data", "images") if k in z.files), None)
                lkey = next((k for k in ("label", "labels") if k in z.files), None)
                if ikey is None:
                    raise DataError(f"{path.name} has no 'data' or 'images' array "
                                    f"(found: {', '.join(z.files) or 'nothing'})")
                arr = _npz_member(z, ikey, path.name, check_images_shape)
                labels = _npz_member(z, lkey, path.name, _check_labels_shape) if lkey else None
    check_stop(should_stop, path.name)
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
                    source_name(path.name, len(images), images.shape[1]))
