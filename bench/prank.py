"""Issue 25's prankster cases, measured in this process: wall time, CPU time and peak Python
memory of each crafted input's handling (tests/test_prank*.py check the behaviour; this prints
the figures).

    python bench/prank.py
"""

from __future__ import annotations

import io
import struct
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aevae import data, figures, i18n, train_settings  # noqa: E402

UNIT = " epoch x  image =  step of batch  per model, "  # the pieces of a many-holed template


def image(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 30, 200)).save(buf, fmt, **kw)
    return buf.getvalue()


def crafted() -> dict[str, bytes]:
    jpeg, png = image("JPEG", quality=90), image("PNG")
    head, rest = jpeg.split(b"\xff\xda", 1)
    comment = b"\xff\xfe" + struct.pack(">H", 65_002) + b"x" * 65_000
    empty = struct.pack(">I", 0) + b"prVt" + struct.pack(">I", zlib.crc32(b"prVt"))
    return {"jpeg of 10,000 scans": head + (b"\xff\xda" + rest[:-2]) * 10_000 + b"\xff\xd9",
            "jpeg with 39 MB of comments": jpeg[:2] + comment * 600 + jpeg[2:],
            "png of 1,000,000 empty chunks": png[:33] + empty * 1_000_000 + png[33:]}


def measure(name: str, fn) -> None:
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = fn()
    except Exception as e:  # a refusal is an answer too
        out = f"refused: {e}"
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:<48} {wall:7.3f} s wall {cpu:7.3f} s CPU {peak / 2**20:8.1f} MiB peak  {str(out)[:70]!r}")


def main() -> None:
    for n in (40, 1200):
        _, problems = train_settings.settings_from_query({UNIT * n: "1"})
        measure(f"share link parameter of {len(UNIT * n):,} chars (zh-TW)", lambda p=problems: i18n.tm(p[0], "zh-TW"))
    measure("a 1.8 KB message straight into tm()", lambda: i18n.tm(f"unknown setting '{UNIT * 40}'", "zh-TW"))
    measure("ids: 5 MB of digits", lambda: data.parse_ids("1" * 5_000_000))
    measure("ids: 1 MB of spaces and a dash", lambda: data.parse_ids(" " * 1_000_000 + "-"))
    for name, blob in crafted().items():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("x" + name.split()[0], blob)
        print(f"  ({name}: {len(blob):,} bytes, {len(buf.getvalue()):,} zipped)")
        measure(f"decode a {name}", lambda b=blob: data.decoding.decode(b, 32))
    import numpy as np
    rows = [np.zeros((4, 64, 64, 3), np.uint8)] * 6
    measure("label strip, 6 labels of 30,000 chars", lambda: figures.image_grid(rows, ["L" * 30_000] * 6).shape)
    measure("markdown escape of a 1 MB name", lambda: len(i18n.md("<b>" * 300_000)))


if __name__ == "__main__":
    main()
