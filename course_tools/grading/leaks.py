"""Find solution code or hidden tests of a source assignment in released material.

nbgrader replaces ``### BEGIN SOLUTION``/``### END SOLUTION`` regions with a stub and deletes
``### BEGIN HIDDEN TESTS``/``### END HIDDEN TESTS`` regions. Checking for the markers alone would
miss a region copied without them, so this module collects the *lines between the markers* that
do not also occur outside any region of the source (those are not secret), and reports every
such line found in a released notebook or a built web page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

REGIONS = {
    "solution": ("### BEGIN SOLUTION", "### END SOLUTION"),
    "hidden test": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),
}
# lines too generic to be evidence of a leak on their own
TRIVIAL = re.compile(r"^(pass|return|else:|try:|except.*:|finally:|\)|\]|\}|#.*|\"\"\".*|'''.*|)$")


@dataclass(frozen=True)
class Leak:
    kind: str  # "solution" or "hidden test"
    line: str
    where: str


def _cell_sources(nb) -> list[str]:
    out = []
    for cell in nb["cells"]:
        src = cell.get("source", "")
        out.append("".join(src) if isinstance(src, list) else src)
    return out


def secret_lines(source_nb) -> dict[str, str]:
    """Map each secret (stripped) line of a source notebook to the kind of region it came from."""
    inside: dict[str, str] = {}
    outside: set[str] = set()
    for text in _cell_sources(source_nb):
        kind = None
        for raw in text.splitlines():
            line = raw.strip()
            begins = [k for k, (b, _) in REGIONS.items() if line.startswith(b)]
            ends = [k for k, (_, e) in REGIONS.items() if line.startswith(e)]
            if begins:
                kind = begins[0]
                continue
            if ends:
                kind = None
                continue
            if kind:
                inside.setdefault(line, kind)
            else:
                outside.add(line)
    return {line: kind for line, kind in inside.items() if line not in outside and not TRIVIAL.match(line)}


def find_leaks(source_nb, released_text: str, where: str) -> list[Leak]:
    """Secret lines of ``source_nb`` that occur as a line of ``released_text`` (notebook JSON sources or HTML)."""
    released_lines = {ln.strip() for ln in released_text.splitlines()}
    return [Leak(kind, line, where) for line, kind in secret_lines(source_nb).items() if line in released_lines]


def released_notebook_text(nb) -> str:
    """All cell sources of a released notebook, one after another (what a student can read)."""
    return "\n".join(_cell_sources(nb))


def html_text(path: Path) -> str:
    """The text lines of a built HTML page, tags removed and entities decoded (for the website check)."""
    raw = Path(path).read_text(encoding="utf-8", errors="replace")
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def markers_in(text: str) -> list[str]:
    """The nbgrader markers present in ``text`` (a release must contain none)."""
    return [m for pair in REGIONS.values() for m in pair if m in text]
