"""The app's own limits (beyond the package's): trainings, epochs, uploads, the queue's heavy slots."""

from __future__ import annotations

import os

from aevae.config import PRESETS

MAX_SECONDS = 600  # time cap of one training (both models), so one user cannot hold the CPU for long
# Students waiting for or watching trainings at once; the real work is limited by the server's
# training slots (aevae/classroom.py), so identical trainings can be joined instead of queued.
TRAIN_WATCHERS = 64
# Uploads decoded and reports written: CPU-heavy, so they share two slots (one per core) and wait
# there, never in front of the cheap events, which each have their own group (app.py).
HEAVY = "heavy"
HEAVY_SLOTS = 2
DEFAULT_CAP = 300  # the default cap: a safety stop, far above what the default plan takes
MAX_EPOCHS = 500
MAX_FILE_SIZE = "200mb"
DEFAULT_SIZE = PRESETS["default"].model.image_size


def cache_sweep() -> tuple[int, int]:
    """(every, age) in seconds: every 5 minutes, files the web server received or handed out more
    than 15 minutes ago are deleted: uploads nobody loaded, download links of results (the button
    makes them again). AEVAE_CACHE_SWEEP="every,age" sets them. Uploads that were loaded are
    moved into their session's folder at once, and a session's files go when it ends."""
    raw = os.environ.get("AEVAE_CACHE_SWEEP", "").replace(" ", "")
    if not raw:
        return 300, 900
    parts = raw.split(",")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(  # not shown: read once at start
            f"AEVAE_CACHE_SWEEP must be two whole numbers of seconds > 0, like 300,900; got {raw!r}")  # not shown
    return int(parts[0]), int(parts[1])
