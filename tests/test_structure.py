"""The code's shape: no import cycles between the project's modules, the UI apart from the
package, and the README's module table naming every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = {**{f"aevae.{p.stem}": p for p in (ROOT / "aevae").glob("*.py")},
           **{f"ui.{p.stem}": p for p in (ROOT / "ui").glob("*.py")}, "app": ROOT / "app.py"}


def imports(name: str, path: Path) -> set[str]:
    """The project's modules `name` imports, anywhere in it (an import inside a function counts:
    it is a cycle put off, not gone)."""
    package = name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = package + ("." + base if base else "")
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m in MODULES and m != name and not m.endswith("__init__")}


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
            assert not [d for d in deps if not d.startswith("aevae.")], name
            text = MODULES[name].read_text()
            assert not re.search(r"(?m)^\s*(import|from) gradio", text), name


def test_the_readme_names_every_module_in_one_line():
    readme = (ROOT / "README.md").read_text()
    missing = [f"{p.parent.name}/{p.name}" for p in sorted(MODULES.values())
               if p.name != "__init__.py" and p.parent.name in ("aevae", "ui")
               and not re.search(rf"(?m)^\| `({re.escape(p.parent.name)}/)?{re.escape(p.name)}` \| .+ \|$", readme)]
    assert missing == []
