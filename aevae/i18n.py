"""Every text a user reads, per language: one file per language in aevae/locales/<tag>.json.

A file holds {"language": its own name, "keys": {key: text}, "messages": {English template: text}}.

- t(key, lang, **fmt): the app's and the report's own texts, by key ("train.tab").
- tm(text, lang): a message the package wrote in English (an error, a plan, a progress line)
  in another language. Its "messages" map the English templates found in the package's source
  (an f-string's holes written as {}) to translations with the same holes ({} or {0}, {1}, ...
  to reorder); the values in the holes are translated too where they are messages themselves.
  English needs no "messages": a message is its own English.
- "names" (optional): the names of what the app ships (presets, shipped pairs: "default",
  "ladder-16") in another language; "ladder-{}" stands for every name that starts so. A message,
  or a value in one of its holes, that is exactly such a name is shown by its translation. A
  value quoted with '' (what the user typed, as Python's repr writes it) gets the language's own
  quotes, key "fmt.quoted".

A new language is a new file: the tests check that it has every key of English and a
translation of every message the package can raise.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

LOCALES = Path(__file__).parent / "locales"
DEFAULT = "en"
HOLE = "{}"
# Package files whose messages never reach the page: the command line, one-off tools, and the
# server's settings (checked before the app starts: the operator reads them, in English).
CLI_ONLY = ("__main__.py", "lpips_convert.py", "distributed.py", "server_env.py", "zoo_build.py")


@functools.cache
def languages() -> tuple[str, ...]:
    """Language tags with a file, English first."""
    tags = sorted(p.stem for p in LOCALES.glob("*.json"))
    return tuple(sorted(tags, key=lambda tag: tag != DEFAULT))


@functools.cache
def catalog(lang: str) -> dict:
    data = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    data.setdefault("messages", {})
    return data


def name(lang: str) -> str:
    """A language's name in itself ("English", "繁體中文")."""
    return catalog(lang)["language"]


def match(tag: str | None) -> str | None:
    """The language with a file that best fits a browser's tag: the same tag, else the same
    primary language ("zh-HK" -> "zh-TW", "en-GB" -> "en"); None when none does."""
    tag = (tag or "").strip().replace("_", "-").lower()
    if not tag:
        return None
    for lang in languages():
        if lang.lower() == tag:
            return lang
    primary = tag.split("-")[0]
    return next((lang for lang in languages() if lang.lower().split("-")[0] == primary), None)


def from_accept_language(header: str | None) -> str:
    """The language an Accept-Language header asks for first, among those with a file."""
    tags = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        tags.append((-weight, i, tag))
    return next((m for _, _, tag in sorted(tags) if (m := match(tag))), DEFAULT)


def t(key: str, lang: str = DEFAULT, **fmt) -> str:
    """The text of `key` in `lang` (English where `lang` has no file), formatted with `fmt`."""
    keys = catalog(lang if lang in languages() else DEFAULT)["keys"]
    text = keys[key]  # a missing key is a bug the tests catch: fail loudly, never show a key
    return text.format(**fmt) if fmt else text


def col(name: str, lang: str = DEFAULT) -> str:
    """A table column's or plot axis's name in `lang`: key "col.<English name>"; the English name
    where there is none (a column someone added without one: a test of the app looks for those)."""
    keys = catalog(lang if lang in languages() else DEFAULT)["keys"]
    return keys.get(f"col.{name}", name)


def tm(text: str, lang: str = DEFAULT) -> str:
    """A package message in `lang`; unchanged in English or when no template fits it.

    Messages carry what users typed or named (a link's parameter, a zip entry's name), so no
    regex ever sees them: templates are matched piece by piece with str.find (linear in the
    text per template, it cannot backtrack), values in holes are translated at most MAX_DEPTH
    deep, and text longer than MAX_MESSAGE is shown as it is (a real message is far shorter)."""
    return _tm(text, lang, 0)


MAX_MESSAGE = 4000  # characters: the longest message tm() translates (the longest real one is ~600)
MAX_DEPTH = 3  # messages nested in a message's holes that are translated too ("run 1: ... 'x'")


def _tm(text: str, lang: str, depth: int) -> str:
    if not text or lang == DEFAULT or lang not in languages() or len(text) > MAX_MESSAGE:
        return text
    messages = catalog(lang)["messages"]
    if text in messages:
        return messages[text]
    if (named := shipped_name(text, lang)) is not None:
        return named
    for pieces, out in _templates(lang):
        values = fill(pieces, text)
        if values is not None:
            if depth >= MAX_DEPTH:
                return out.format(*values)
            return out.format(*(_value(v, lang, depth + 1) for v in values))
    return text


def fill(pieces: tuple[str, ...], text: str) -> list[str] | None:
    """The values in the holes of a template split at its holes (`pieces`), when `text` is the
    template filled in; else None. Each hole takes the shortest value that lets the rest fit
    (as a lazy regex would), found left to right with str.find: the earliest place a piece
    fits never stops a later piece from fitting, so no second try is needed."""
    first, *middle, last = pieces
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return None
    pos, end, values = len(first), len(text) - len(last), []
    for piece in middle:
        at = text.find(piece, pos, end)
        if at < 0:
            return None
        values.append(text[pos:at])
        pos = at + len(piece)
    values.append(text[pos:end])
    return values


def shipped_name(text: str, lang: str) -> str | None:
    """A shipped preset's or pair's name in `lang` ("ladder-16" -> "潛在碼階梯 16"); None when `text`
    is no such name."""
    names = catalog(lang if lang in languages() else DEFAULT).get("names", {})
    if text in names:
        return names[text]
    for src, dst in names.items():
        head = src.removesuffix(HOLE)
        if src.endswith(HOLE) and text.startswith(head) and len(text) > len(head):
            return dst.format(text[len(head):])
    return None


def _value(text: str, lang: str, depth: int) -> str:
    """A value in a message's hole: a message itself, or a list of them ("run 1, run 2"), a quoted
    value in the language's quotes, or as it is."""
    if len(text) >= 2 and text[0] == text[-1] == "'" and "'" not in text[1:-1]:
        return t("fmt.quoted", lang, text=text[1:-1])
    if not any(c.isascii() and c.isalpha() for c in text):
        return text
    parts = text.split(", ")
    if 1 < len(parts) <= 64:  # a longer list is data (names), not messages
        done = [_tm(p, lang, depth) for p in parts]
        if all(d != p or not any(c.isascii() and c.isalpha() for c in p) for d, p in zip(done, parts)):
            return ", ".join(done)
    return _tm(text, lang, depth)


@functools.cache
def _templates(lang: str) -> list[tuple[tuple[str, ...], str]]:
    """A language's templates split at their holes, the most specific (longest text) first."""
    out = []
    for src, dst in catalog(lang)["messages"].items():
        if HOLE in src and len(src.replace(HOLE, "")) >= 4:
            out.append((len(src.replace(HOLE, "")), tuple(src.split(HOLE)), dst))
    return [(pieces, dst) for _, pieces, dst in sorted(out, key=lambda o: -o[0])]


MARKUP = set("\\`*[]<>&#|~$@")  # what starts HTML, a link or image, code, emphasis, a table cell, maths


def md(text: str) -> str:
    """`text` as literal Markdown: the marks that start markup backslash-escaped (CommonMark and
    the page's renderer show an escaped mark as itself), and the ":" of "://" and the "." of
    "www." too (bare addresses become links), so a name someone chose cannot become HTML, a
    link, an image, emphasis or a table cell. For names and messages put into Markdown."""
    text, out = str(text), []
    for i, c in enumerate(text):
        if (c in MARKUP or (c == ":" and text.startswith("//", i + 1))
                or (c == "." and text[max(0, i - 3):i].lower() == "www")):
            out.append("\\")
        out.append(c)
    return "".join(out)


# --- the package's messages, read from its source ---------------------------------------
def template(node: ast.AST) -> str | None:
    """A string expression as a template: literal text, with {} where an f-string has a value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = template(node.left), template(node.right)
        if left is not None or right is not None:
            return (left if left is not None else HOLE) + (right if right is not None else HOLE)
    return None


def _package_files(*folders: Path) -> list[Path]:
    folders = folders or (Path(__file__).parent,)
    return [p for f in folders for p in sorted(f.rglob("*.py")) if p.name not in CLI_ONLY]


def raised_messages() -> set[str]:
    """The messages of every `raise SomeError("...")` in the package that the app can show."""
    out = set()
    for path in _package_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                text = template(node.exc.args[0])
                if text and re.search("[A-Za-z]{2}", text.replace(HOLE, "")):
                    out.add(text)
    return out


def source_templates(*folders: Path) -> set[str]:
    """Every string and f-string template in these folders' source (the package's by default):
    a translation of a message no source writes any more is stale."""
    out = set()
    for path in _package_files(*folders):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = template(node)
            if text:
                out.add(text)
    return out
