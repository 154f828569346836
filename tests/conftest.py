"""Shared fixtures: small, deterministic image sets made with numpy (no downloads)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots, for people to look at
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


def make_images(n: int = 64, size: int = 32, seed: int = 0) -> np.ndarray:
    """Coloured discs and squares on white: structured enough that a model can learn them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.full((n, size, size, 3), 255, np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        r = rng.uniform(0.15, 0.3) * size
        colour = rng.integers(0, 256, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) if i % 2 else (
            (abs(xx - cx) < r) & (abs(yy - cy) < r))
        out[i][mask] = colour
    return out


def child_pids() -> set[int]:
    """This process's child processes (Linux /proc): the training workers among them."""
    import os
    from pathlib import Path

    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids |= {int(p) for p in (task / "children").read_text().split()}
    return pids


def kill_new_children(before: set[int]) -> int:
    """Kill (SIGKILL, as the system's out-of-memory killer would) every child process started since
    `before`: a training's worker. A way to make a training fail that does not depend on any CPU's
    floating-point arithmetic. Returns how many were killed."""
    import os
    import signal

    new = child_pids() - before
    for pid in new:
        os.kill(pid, signal.SIGKILL)
    return len(new)


HAS_PROC = __import__("pathlib").Path("/proc/self/task").exists()


# gradio_client's Client() reads the app's API description with httpx's 5 s default: on a loaded
# 2-core machine, 30 clients made at once wait longer than that for it. Answers are what the tests
# check (bench/ measures the times).
CLIENT_HTTPX = {"timeout": 120}


@pytest.fixture
def images32() -> np.ndarray:
    return make_images(64, 32)


@pytest.fixture(scope="session")
def quick_zoo(tmp_path_factory):
    """A tiny zoo made by the real build script (python -m aevae.zoo_build build --quick)."""
    from aevae import zoo_build

    out = tmp_path_factory.mktemp("zoo")
    zoo_build.build(out, quick=True, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def app_module(quick_zoo):
    """app.py imported with the quick zoo as its shipped models."""
    import importlib
    import os
    import sys
    import types

    os.environ["AEVAE_CHECKPOINTS"] = str(quick_zoo)
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    import app
    import ui.messages
    import ui.outputs
    import ui.sessions
    import ui.work

    ui.sessions.store.cache_clear()  # the shipped models are read on first use, from the quick zoo
    app = importlib.reload(app)
    # The handlers live in their tab's module (ui/*_tab.py); tests reach them all by name.
    handlers = {}
    for tab in [ui.messages, ui.outputs, ui.sessions, ui.work, app.picker, app.lang, *app.TABS]:
        handlers.update({k: v for k, v in vars(tab).items() if callable(v) and not k.startswith("_")})
    return types.SimpleNamespace(**handlers, serve=app.serve, build_demo=app.build_demo, module=app)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(app_module):
    """The app served on a free loopback port for the API and browser tests."""
    port = free_port()
    demo = app_module.serve("127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


# The app in its own process (tests/served.py), for tests that read its memory from /proc and its
# log: small budgets set through the documented variables, and a quick sweep of the upload folder.
SERVED_ENV = {"AEVAE_TRAIN_MEMORY_GB": "1.5", "AEVAE_DATA_MEMORY_GB": "0.6", "AEVAE_CACHE_SWEEP": "2,10"}


@pytest.fixture(scope="session")
def served_app(quick_zoo):
    from served import Served

    with Served({**SERVED_ENV, "AEVAE_CHECKPOINTS": str(quick_zoo)}) as app:
        yield app


def served_budget() -> int:
    """The whole app's documented memory budget under SERVED_ENV (aevae.budget.app_budget_bytes)."""
    import os

    from aevae import budget

    saved = {k: os.environ.get(k) for k in SERVED_ENV}
    os.environ.update(SERVED_ENV)
    try:
        return budget.app_budget_bytes()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def browser(request):
    """Debian's Chromium driven by Playwright, one per test file, with the file's
    CHROMIUM_EXTRA_ARGS if it has them. Where it is missing the tests that use it skip, saying
    why, except under CI (tests/run.sh installs it there: missing is a failure)."""
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is not installed, and CI needs it (tests/run.sh installs it with apt)")
        pytest.skip(f"{CHROMIUM} is not installed (tests/run.sh installs it with apt)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        extra = getattr(request.module, "CHROMIUM_EXTRA_ARGS", [])
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS + extra)
        yield b
        b.close()


# The quick loop (README "Tests"): `python -m pytest -m "not slow and not browser"`. Marked here
# by what a test needs, so a new test in these files is marked too: Chromium (browser), or a
# served app, in this process (the `server` fixture) or its own (served_app, tests/served.py).
SERVED_FIXTURES = {"server", "served_app"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        elif SERVED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
