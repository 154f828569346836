"""Names someone chose (a file, a zip entry, a folder, a label), as messages and files show them."""

from __future__ import annotations

from . import limits


def shown(name, most: int | None = None) -> str:
    """A name someone chose, as messages, tables and captions show it: one line of printable
    characters, at most `most` of them (limits.MAX_SHOWN_NAME by default; its start and end
    kept, "…" between), so a zip entry named by 64 KB makes a short message. Escaping for a
    page is the page's job."""
    name, most = str(name), most or limits.MAX_SHOWN_NAME
    if len(name) > most:
        half = (most - 1) // 2
        name = name[:most - 1 - half] + "…" + name[len(name) - half:]
    return "".join(c if c.isprintable() else "?" for c in name)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


def cell(text: str) -> str:
    """A name written into a CSV or a text file a spreadsheet may open: one starting like a
    formula gets a leading ' (OWASP's advice), so it is read as text, never run; one starting
    with ' gets another, so uncell() gives back exactly what was written."""
    return "'" + text if text.startswith((*FORMULA_START, "'")) else text


def uncell(text: str) -> str:
    """What cell() wrote, read back."""
    return text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_START, "'")) else text
