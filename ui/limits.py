"""The app's own limits (beyond the package's): trainings, epochs, uploads, the queue's heavy slots."""

from __future__ import annotations

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
