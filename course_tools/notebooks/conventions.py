"""Checks of a lecture's text against the course's conventions (see :mod:`course_lib.notebook`).

- :func:`unclaimed_results`: Markdown paragraphs that state a measured result (a percentage or a
  comparison such as "beats", "better than", "diverges", "lower") with no ``claim(`` in the code
  cells that follow them before the next section heading. A heuristic: a paragraph that only
  narrates carries ``<!-- narrative -->`` (:data:`course_lib.notebook.NARRATIVE_MARK`).
- :func:`skeleton_problems`: the lecture skeleton (title, learning goals, numbered sections,
  Summary, links to the assignment, the library modules and the benchmark, captioned figures).
- :func:`executed_problems`: what an executed notebook shows: figure problems printed by
  ``course_lib.notebook.show``, figures without a caption, failed claims.

``tests/tools/test_notebook_sources.py`` and ``tests/tools/test_executed_notebooks.py`` run them on
every lecture; ``python -m course_tools check-lectures [PATH ...]`` runs the source checks by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from course_lib.notebook import CLAIM_CHECKED_MARK, CLAIM_UNCHECKED_MARK, FIGURE_PROBLEM_MARK, NARRATIVE_MARK

#: words and patterns that make a sentence a stated (measured) result
RESULT_PATTERNS = [
    r"\d+(?:\.\d+)?\s*(?:%|\\%|percent)",
    r"\bbeats?\b", r"\bbeaten\b", r"\boutperform\w*", r"\bbetter than\b", r"\bworse than\b",
    r"\bdiverge[sd]?\b", r"\bdiverging\b", r"\blower\b", r"\bhigher\b", r"\bfaster than\b", r"\bslower than\b",
    r"\bimproves?\b", r"\bhurts?\b", r"\breaches\b", r"\bwins?\b", r"\bthan\b", r"\bshrinks?\b",
    r"\bconverges? faster\b", r"\bfalls?\b", r"\bdrops?\b",
]
RESULT_RE = re.compile("|".join(RESULT_PATTERNS), re.I)
MATH_RE = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$|`[^`]*`", re.S)
HEADING_RE = re.compile(r"^#{1,6}\s", re.M)
SECTION_RE = re.compile(r"^## (\d+)\. \S", re.M)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


@dataclass
class Finding:
    cell: int  # index in the notebook
    text: str  # the paragraph (shortened)
    match: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.match!r} in {self.text!r}"


def _paragraphs(markdown: str) -> list[str]:
    blocks = re.split(r"\n\s*\n", markdown)
    return [b for b in blocks if b.strip()]


def unclaimed_results(nb) -> list[Finding]:
    """Paragraphs stating a result with no ``claim(`` in the code cells after them (before the next ``##``)."""
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    found = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for para in _paragraphs(_source(cell)):
            if NARRATIVE_MARK in para or para.lstrip().startswith(("#", "|")) and "\n" not in para.strip():
                continue
            prose = MATH_RE.sub(" ", para)
            if para.lstrip().startswith("|"):  # a table of formulas or definitions
                continue
            match = RESULT_RE.search(prose)
            if not match:
                continue
            if _claim_follows(cells, index):
                continue
            found.append(Finding(index, re.sub(r"\s+", " ", para.strip())[:160], match.group(0)))
    return found


def _claim_follows(cells, index: int) -> bool:
    """A ``claim(`` in a code cell after ``index`` (or the cell before it), up to the next section heading."""
    if index > 0 and cells[index - 1].get("cell_type") == "code" and "claim(" in _source(cells[index - 1]):
        return True  # a Markdown cell commenting on the output (and the claims) just above it
    for cell in cells[index + 1:]:
        src = _source(cell)
        if cell.get("cell_type") == "markdown" and re.search(r"^#{1,2}\s", src, re.M):
            return False
        if cell.get("cell_type") == "code" and "claim(" in src:
            return True
    return False


def skeleton_problems(nb, *, assignment: str | None = None, modules: list[str] | None = None,
                      benchmarks: list[str] | None = None) -> list[str]:
    """What the lecture lacks of the skeleton described in :mod:`course_lib.notebook`."""
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    markdown = [(_source(c), i) for i, c in enumerate(cells) if c.get("cell_type") == "markdown"]
    problems = []
    if not markdown or not re.match(r"# Lecture \d\d · \S", markdown[0][0].lstrip()):
        problems.append("the first cell must be the title '# Lecture NN · Title'")
    intro = markdown[0][0] if markdown else ""
    if "**Learning goals**" not in intro:
        problems.append("the introduction (first cell) must have a '**Learning goals**' list")
    text = "\n".join(s for s, _ in markdown)
    numbers = [int(n) for n in SECTION_RE.findall(text)]
    if not numbers:
        problems.append("no numbered sections '## 1. …'")
    elif numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"sections must be numbered 1, 2, 3, … in order; found {numbers}")
    if not re.search(r"^## Summary\s*$", text, re.M):
        problems.append("no '## Summary' section")
    nexts = [s for s, _ in markdown if re.search(r"^## Where to go next", s, re.M)]
    if not nexts:
        problems.append("no '## Where to go next' section (links to the assignment, library modules and benchmark)")
    else:
        nxt = nexts[0]
        if assignment and f"assignments/{assignment}" not in nxt:
            problems.append(f"'Where to go next' does not link the assignment assignments/{assignment}/")
        for module in modules or []:
            if f"{module}" not in nxt:
                problems.append(f"'Where to go next' does not link the library module {module}")
        for bench in benchmarks or []:
            if Path(bench).name not in nxt:
                problems.append(f"'Where to go next' does not name the benchmark {bench}")
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and re.search(r"\bplt\.show\(|\bfig\.show\(", _source(cell)):
            problems.append(f"cell {i} shows a figure with plt.show(): use course_lib.notebook.show(fig, caption)")
        for call in re.finditer(r"\bshow\(([^()]*(?:\([^()]*\)[^()]*)*)\)", _source(cell)) if cell.get("cell_type") == "code" else []:
            if "," not in call.group(1):
                problems.append(f"cell {i}: show({call.group(1)}) has no caption")
    return problems


def executed_problems(nb) -> list[str]:
    """Figure problems, uncaptioned figures and errors an executed lecture notebook shows, and
    whether the executor killed it on its timeout (``metadata.course.timed_out_in``)."""
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    problems = []
    timed_out = (nb.get("metadata") or {}).get("course", {}).get("timed_out_in")
    if timed_out:
        problems.append(f"killed on its timeout in {timed_out}: the cells after it never ran")
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs", []) or []
        for j, out in enumerate(outputs):
            text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else \
                "".join((out.get("data") or {}).get("text/plain", ""))
            for line in text.splitlines():
                if line.startswith(FIGURE_PROBLEM_MARK):
                    problems.append(f"cell {i}: {line}")
            if "image/png" in (out.get("data") or {}):
                rest = outputs[j + 1:j + 2]
                caption = rest and "text/markdown" in (rest[0].get("data") or {}) and \
                    "**Figure" in "".join(rest[0]["data"]["text/markdown"])
                if not caption:
                    problems.append(f"cell {i}: a figure without a caption (draw with course_lib.notebook.show(fig, caption))")
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:200]}")
    return problems


def claim_counts(nb) -> dict[str, int]:
    """``{"checked": n, "unchecked": m}``: the claims an executed notebook printed."""
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    counts = {"checked": 0, "unchecked": 0}
    for cell in cells:
        for out in cell.get("outputs", []) or []:
            text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
            counts["checked"] += text.count(CLAIM_CHECKED_MARK)
            counts["unchecked"] += text.count(CLAIM_UNCHECKED_MARK)
    return counts


def main(argv: list[str] | None = None, prog: str = "python -m course_tools check-lectures") -> int:
    from course_tools import syllabus
    from course_tools.layout import LECTURES, REPO_ROOT
    from course_tools.notebooks.convert import find_sources, read_source

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="lecture sources (default: every lecture)")
    args = parser.parse_args(argv)
    by_folder = {lec.folder: lec for lec in syllabus.load(REPO_ROOT)}
    bad = 0
    for path in args.paths or find_sources(LECTURES, REPO_ROOT):
        nb = read_source(path)
        lec = by_folder.get(path.parent.name)
        problems = [str(f) + " — add a claim(...) after it, or mark the paragraph <!-- narrative -->"
                    for f in unclaimed_results(nb)]
        problems += skeleton_problems(nb, **(skeleton_expectations(lec) if lec else {}))
        for problem in problems:
            print(f"{path}: {problem}")
        bad += bool(problems)
    return 1 if bad else 0


def skeleton_expectations(lec) -> dict:
    """What a syllabus entry says the lecture's 'Where to go next' must link."""
    modules = [m.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for m in lec.modules or []]
    return {"assignment": lec.assignment or None, "modules": modules,
            "benchmarks": list(getattr(lec, "benchmarks", []) or [])}


if __name__ == "__main__":
    sys.exit(main())
