"""A Sphinx extension of the course's API reference: ``$...$`` and ``$$...$$`` math in docstrings.

``course_lib``'s docstrings write formulas the way the lectures do, ``$\\sigma(x) = 1/(1+e^{-x})$``
inline and ``$$...$$`` on a line of its own; reStructuredText (what autodoc parses) has no dollar
math. On ``autodoc-process-docstring`` this turns inline ``$...$`` into ``:math:`...``` and a
``$$...$$`` line into a ``.. math::`` block, leaving ``` ``literals`` ``` (``$COURSE_DATA_DIR``)
alone. Listed in ``book/_config.yml`` after ``sphinx.ext.autodoc``.
"""

from __future__ import annotations

import re

LITERAL = re.compile(r"(``.+?``)")
INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
DISPLAY = re.compile(r"^(\s*)\$\$(.+?)\$\$\s*([,.;:]?)\s*$")


def convert_line(line: str) -> str:
    """Inline ``$x$`` -> ``:math:`x``` outside double-backtick literals."""
    parts = LITERAL.split(line)
    return "".join(p if i % 2 else INLINE.sub(lambda m: f":math:`{m.group(1)}`", p) for i, p in enumerate(parts))


def convert(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        display = DISPLAY.match(line)
        if display:
            indent, formula, punct = display.groups()
            out += ["", f"{indent}.. math::", "", f"{indent}   {formula.strip()}{punct}", ""]
        else:
            out.append(convert_line(line))
    return out


def _process(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = convert(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
