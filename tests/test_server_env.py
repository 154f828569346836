"""The operator's settings: each bad value refused with its variable named, all of them at once
before the app starts, none ignored."""

import subprocess
import sys
from pathlib import Path

import pytest

from aevae import server_env

ROOT = Path(__file__).resolve().parent.parent
BAD = {"AEVAE_TRAIN_CONCURRENCY": "0", "AEVAE_COMPUTE_SLOTS": "two", "AEVAE_TRAIN_WORKERS": "maybe",
       "AEVAE_DEVICE": "tpu", "AEVAE_CACHE_SWEEP": "1", "AEVAE_TRAIN_MEMORY_GB": "lots",
       "AEVAE_DATA_MEMORY_GB": "-1", "AEVAE_TRUST_PROXY": "sometimes"}


@pytest.fixture
def clean(monkeypatch):
    for name in [*BAD, "SPACE_ID"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_when_nothing_is_set(clean):
    assert server_env.problems() == []
    assert server_env.train_concurrency() == server_env.TRAIN_CONCURRENCY
    assert server_env.compute_slots() >= 1 and server_env.train_workers() is True
    assert server_env.cache_sweep() == server_env.CACHE_SWEEP
    assert server_env.memory_bytes("AEVAE_TRAIN_MEMORY_GB") is None
    assert server_env.device() in ("cpu", "cuda", "mps")


def test_good_values_are_read(clean):
    for name, value in {"AEVAE_TRAIN_CONCURRENCY": "3", "AEVAE_COMPUTE_SLOTS": "1", "AEVAE_TRAIN_WORKERS": "off",
                        "AEVAE_DEVICE": "CPU", "AEVAE_CACHE_SWEEP": "60, 120", "AEVAE_DATA_MEMORY_GB": "0.5"}.items():
        clean.setenv(name, value)
    assert (server_env.train_concurrency(), server_env.compute_slots(), server_env.train_workers()) == (3, 1, False)
    assert server_env.device() == "cpu" and server_env.cache_sweep() == (60, 120)
    assert server_env.memory_bytes("AEVAE_DATA_MEMORY_GB") == 500_000_000


def test_every_bad_value_is_named_none_ignored(clean):
    for name, value in BAD.items():
        clean.setenv(name, value)
    found = server_env.problems()
    assert len(found) == len(BAD)
    for (name, value), message in zip(BAD.items(), sorted(found, key=lambda m: list(BAD).index(m.split()[0]))):
        assert message.startswith(f"{name} must be") and repr(value) in message, message


@pytest.mark.slow  # starts python app.py, which imports everything: a few seconds
def test_the_app_does_not_start_on_a_bad_setting_and_says_which():
    env = {**{k: v for k, v in __import__("os").environ.items() if k not in BAD},
           "AEVAE_COMPUTE_SLOTS": "two", "AEVAE_TRAIN_WORKERS": "maybe"}
    out = subprocess.run([sys.executable, "app.py", "--port", "0"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("aevae cannot start, fix the environment: ") and "Traceback" not in out.stderr
    assert "AEVAE_COMPUTE_SLOTS must be a whole number >= 1, got 'two'" in last
    assert "AEVAE_TRAIN_WORKERS must be 1 or 0" in last and "'maybe'" in last


def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(clean):
    # A client anywhere can write X-Forwarded-For: trusted, each new value was a new "address" and
    # so 200 more sessions for one script. A Space's proxy adds the client's address last.
    from types import SimpleNamespace

    from ui import sessions

    def client(forwarded):
        sessions.TRUST_PROXY.cache_clear()
        return sessions.client_of(SimpleNamespace(client=SimpleNamespace(host="10.0.0.7"),
                                                  headers={"x-forwarded-for": forwarded}))

    try:
        assert server_env.trust_proxy() is False
        assert client("1.2.3.4") == client("5.6.7.8") == "10.0.0.7"  # a class's LAN: the peer counts
        clean.setenv("SPACE_ID", "someone/aevae")
        assert server_env.trust_proxy() is True
        assert client("1.2.3.4, 5.6.7.8") == "10.0.0.7 via 5.6.7.8"  # the proxy's, last
        assert len(client("9" * 10_000)) < 100  # bounded
        clean.setenv("AEVAE_TRUST_PROXY", "0")
        assert client("1.2.3.4") == "10.0.0.7"
    finally:
        sessions.TRUST_PROXY.cache_clear()
