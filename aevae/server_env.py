"""The server's settings an operator gives through the environment, read and checked in one place
(paths such as AEVAE_CHECKPOINTS are checked where they are used).

Each function reads its variable when called and refuses a value it cannot use with a message
naming the variable and what it takes: a typo is never ignored (AEVAE_COMPUTE_SLOTS=two used to
mean "one per core", AEVAE_TRAIN_WORKERS=maybe "on"). `problems()` tries every one; the app
checks them before it starts (app.main), so a bad setting stops the start with each bad variable
named, instead of failing mid-lesson.
"""

from __future__ import annotations

import math
import os
import re

GB = 1_000_000_000  # the memory variables count in powers of ten, as the messages do
TRAIN_CONCURRENCY = 2  # trainings that may run at once by default (the app's train queue matches)
CACHE_SWEEP = (300, 900)  # every 5 minutes, files older than 15 minutes
ON, OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DEVICES = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")  # fullmatch; digits bounded, no backtracking


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _whole(name: str, least: int = 1) -> int | None:
    raw = _raw(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or int(raw) < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {raw[:40]!r}")
    return int(raw)


def train_concurrency() -> int:
    """Trainings that may run at once: AEVAE_TRAIN_CONCURRENCY, default TRAIN_CONCURRENCY."""
    n = _whole("AEVAE_TRAIN_CONCURRENCY")
    return TRAIN_CONCURRENCY if n is None else n


def compute_slots() -> int:
    """Model computations for requests at once, one thread each: AEVAE_COMPUTE_SLOTS, default one
    per core this process may use."""
    n = _whole("AEVAE_COMPUTE_SLOTS")
    return max(1, len(os.sched_getaffinity(0))) if n is None else n


def memory_bytes(name: str) -> int | None:
    """Bytes from a variable in GB (AEVAE_TRAIN_MEMORY_GB, AEVAE_DATA_MEMORY_GB); None when unset."""
    raw = _raw(name)
    if not raw:
        return None
    try:
        gb = float(raw)
    except ValueError:
        gb = -1.0
    if not math.isfinite(gb) or gb <= 0 or gb > 1e6:
        raise ValueError(f"{name} must be a number of GB > 0, got {raw[:40]!r}")
    return int(gb * GB)


def train_workers() -> bool:
    """Whether trainings run in worker processes: AEVAE_TRAIN_WORKERS (1/0, on/off, yes/no,
    true/false), on by default; 0 trains in the server's process (e.g. ZeroGPU)."""
    raw = _raw("AEVAE_TRAIN_WORKERS").lower()
    if raw in ("", *ON):
        return True
    if raw in OFF:
        return False
    raise ValueError(f"AEVAE_TRAIN_WORKERS must be 1 or 0 (on/off, yes/no, true/false), got {raw[:40]!r}")


def trust_proxy() -> bool:
    """Whether a request's X-Forwarded-For names its client: AEVAE_TRUST_PROXY (1/0, on/off,
    yes/no, true/false); by default on in a Hugging Face Space (SPACE_ID set: its proxy adds the
    client's address last) and off elsewhere, where any client can write the header and would get
    a new "address", and so new sessions, with each request."""
    raw = _raw("AEVAE_TRUST_PROXY").lower()
    if not raw:
        return bool(_raw("SPACE_ID"))
    if raw in ON:
        return True
    if raw in OFF:
        return False
    raise ValueError(f"AEVAE_TRUST_PROXY must be 1 or 0 (on/off, yes/no, true/false), got {raw[:40]!r}")


def device() -> str:
    """Where the app trains: AEVAE_DEVICE (auto, cpu, cuda, cuda:N, mps); auto takes a GPU when
    there is one."""
    from .config import resolve_device

    raw = _raw("AEVAE_DEVICE").lower() or "auto"
    if not DEVICES.fullmatch(raw):
        raise ValueError(f"AEVAE_DEVICE must be auto, cpu, cuda, cuda:N or mps, got {raw[:40]!r}")
    return resolve_device(raw)


def cache_sweep() -> tuple[int, int]:
    """(every, age) in seconds: every `every` seconds, files the web server received or handed out
    more than `age` seconds ago are deleted: uploads nobody loaded, download links of results (the
    button makes them again). AEVAE_CACHE_SWEEP="every,age", default 300,900. Uploads that were
    loaded are moved into their session's folder at once, and a session's files go when it ends."""
    raw = _raw("AEVAE_CACHE_SWEEP").replace(" ", "")
    if not raw:
        return CACHE_SWEEP
    parts = raw.split(",")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and 0 < len(p) <= 9 and int(p) > 0 for p in parts):
        raise ValueError(f"AEVAE_CACHE_SWEEP must be two whole numbers of seconds > 0, like 300,900; got {raw[:40]!r}")
    return int(parts[0]), int(parts[1])


def problems() -> list[str]:
    """Every variable set to a value the server cannot use, each with what it takes."""
    checks = [train_concurrency, compute_slots, train_workers, trust_proxy, device, cache_sweep,
              lambda: memory_bytes("AEVAE_TRAIN_MEMORY_GB"), lambda: memory_bytes("AEVAE_DATA_MEMORY_GB")]
    out = []
    for check in checks:
        try:
            check()
        except ValueError as e:
            out.append(str(e))
    return out
