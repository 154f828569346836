"""The code's shape: no import cycles between the project's modules, the UI apart from the
package, and the README's module table naming every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for folder in ("aevae", "ui") for p in (ROOT / folder).rglob("*.py")} | {
    "app": ROOT / "app.py"}


def imports(name: str, path: Path) -> set[str]:
    """The project's modules `name` imports, anywhere in it (an import inside a function counts:
    it is a cycle put off, not gone). `from . import x` of a submodule x depends on x, not on
    the package's __init__ (which Python runs first, but which a package's own modules may not
    need)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[:len(up) - (node.level - 1)]
                base = ".".join(up) + ("." + base if base else "")
            subs = {f"{base}.{a.name}" for a in node.names}
            out |= subs
            if not subs <= set(MODULES):
                out.add(base)
    return {m for m in out if m in MODULES and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def graph() -> dict[str, set[str]]:
    return {name: imports(name, path) for name, path in MODULES.items()}


def test_no_module_imports_itself_through_others():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_imports_no_ui():
    for name, deps in graph().items():
        if name.startswith("aevae."):
            assert not [d for d in deps if d != "aevae" and not d.startswith("aevae.")], name
            text = MODULES[name].read_text()
            assert not re.search(r"(?m)^\s*(import|from) gradio", text), name


def test_the_readme_names_every_module_in_one_line():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for p in sorted(MODULES.values()):
        top, *inner = p.relative_to(ROOT).parts  # aevae/data/files.py is named data/files.py
        if p.name != "__init__.py" and top in ("aevae", "ui") and not re.search(
                rf"(?m)^\| `({top}/)?{re.escape('/'.join(inner))}` \| .+ \|$", readme):
            missing.append(p.relative_to(ROOT).as_posix())
    assert missing == []
