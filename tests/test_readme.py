"""The README stays true: its commands parse, its test command is what CI runs, its table is the manifest's."""

import re
import shlex
from pathlib import Path

import pytest

from aevae.__main__ import parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def cli_lines():
    return [line.split("#")[0].strip() for line in README.splitlines()
            if line.strip().startswith("python -m aevae ")]


@pytest.mark.parametrize("line", cli_lines())
def test_readme_cli_commands_parse(line):
    argv = shlex.split(line)[3:]
    args = parser().parse_args(argv)
    assert callable(args.func)


def test_ci_runs_the_readme_test_command():
    assert "bash tests/run.sh" in README
    assert "bash tests/run.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_front_matter_for_spaces():
    head = README.split("---")[1]
    assert re.search(r"^sdk: gradio$", head, re.M) and re.search(r"^app_file: app.py$", head, re.M)
    import gradio
    assert f"sdk_version: {gradio.__version__}" in head


def test_readme_lists_every_api_endpoint(server):
    from gradio_client import Client

    names = Client(server, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in names:
        assert f"`{name}`" in README, f"{name} is not in the README's endpoint table"


def test_no_merge_conflict_is_left_in_a_text_file():
    """A merge left `<<<<<<< HEAD` in the README once; nothing else would have caught it."""
    marker = re.compile(r"^(<{7} |={7}$|>{7} )", re.M)
    kinds = {".md", ".py", ".json", ".txt", ".toml", ".sh", ".cfg", ".yml", ".yaml", ".html"}
    skip = {".git", "test-artifacts", "__pycache__", ".venv", "node_modules"}
    found = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
             if p.suffix in kinds and p.is_file() and not skip & set(p.relative_to(ROOT).parts)
             and marker.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert found == []
