"""Image sets for the demo: OpenMoji (default), folders, zips and NumPy arrays.

Every loader returns an `ImageSet` of square uint8 RGB images with 1-based ids. Bad input
raises `DataError` (a ValueError) whose message starts with the file name; inside a folder
or zip one unreadable file is only recorded in `ImageSet.skipped`.

Limits (`limits.py`, all in one place) are checked before the work they bound: image counts
and sizes of .npy/.npz arrays from their headers (before any data is read or decompressed),
zip entry counts, declared sizes and overlaps from the central directory (before any entry is
read), each image's size from its header (before it is decoded), and the bytes read and pixels
decoded as loading goes. The file loaders take `max_images` (stop after that many usable
images), `should_stop` (checked between images; a True answer raises `Cancelled`) and `pixels`
(a `PixelBudget` that several loads can share, e.g. the files of one request or a session's
recent loads; by default each load may decode limits.MAX_DECODED_PIXELS). `peak_bytes` bounds
the memory a load holds at once, before it starts, so a server can make room for it first.

The modules, each one idea: `limits` (every bound), `names` (a chosen name as shown, a CSV
cell), `imageset` (`ImageSet`, ids, the checks every loader shares), `openmoji` (the default
set, drawn from its font), `decoding` (one image file's bytes to pixels), `files` (folders,
zips, one image), `arrays` (.npy/.npz) and `load` (any set by name, its peak memory, its split).
"""

from . import limits
from .arrays import load_arrays
from .decoding import IMAGE_FORMATS, PixelBudget
from .files import NAME_CODECS, load_folder, load_zip, zip_names
from .imageset import REPORT_A_IDS, UNLABELLED, Cancelled, DataError, ImageSet, StopCheck, parse_ids
from .load import Split, load_dataset, load_split, peak_bytes, recorded_data
from .names import FORMULA_START, cell, shown, uncell
from .openmoji import OPENMOJI_CREDIT, OPENMOJI_GROUPS, label_shown, load_openmoji

__all__ = ["IMAGE_FORMATS", "NAME_CODECS", "OPENMOJI_CREDIT", "OPENMOJI_GROUPS", "REPORT_A_IDS", "UNLABELLED",
           "FORMULA_START", "Cancelled", "DataError", "ImageSet", "PixelBudget", "Split", "StopCheck", "cell",
           "label_shown", "limits", "load_arrays", "load_dataset", "load_folder", "load_openmoji", "load_split",
           "load_zip", "parse_ids", "peak_bytes", "recorded_data", "shown", "uncell", "zip_names"]
