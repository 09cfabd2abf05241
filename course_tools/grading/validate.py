"""``python -m course_tools validate NOTEBOOK...`` (``make validate NB=...``): check a notebook before submitting it.

It runs nbgrader's own validation (the code behind JupyterLab's *Validate* button and
``nbgrader validate``, configured by the course's ``nbgrader_config.py``, so ``gpu`` cells are
skipped the same way the autograder skips them): the notebook is executed from a clean kernel and
every graded test cell is checked. Unlike ``nbgrader validate``, which prints its verdict and
exits 0 whatever it is, this command prints one summary per notebook (which graded cells fail,
with their points and the last line of their error) and exits 1 when any notebook fails, when a
read-only (locked) cell was edited or a cell's type was changed, or when the notebook cannot be
read.

After nbgrader's checks it applies the assignment's rules (``forbidden`` in ``syllabus.toml``)
through :func:`course_tools.grading.rules.check_rules` once that module exists (the grader's
issue provides it); until then the summary says that the rules were not checked.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.assignments import load_spec
from course_tools.layout import REPO_ROOT, CourseLayout


@dataclass
class FailedCell:
    grade_id: str
    points: float
    error: str  # the error's last line (the assertion message)


@dataclass
class Validation:
    """The verdict on one notebook."""

    path: Path
    graded: int = 0  # graded test cells in the notebook
    failed: list[FailedCell] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # read-only cells that were edited (their first line)
    type_changed: list[str] = field(default_factory=list)
    rule_violations: list[str] = field(default_factory=list)
    rules_checked: bool = False
    problem: str = ""  # the notebook could not be validated at all

    @property
    def ok(self) -> bool:
        return not (self.failed or self.changed or self.type_changed or self.rule_violations or self.problem)

    def summary(self) -> str:
        name = str(self.path)
        if self.problem:
            return f"FAILED  {name}: {self.problem}"
        if self.type_changed:
            lines = [f"FAILED  {name}: the type of {len(self.type_changed)} cell(s) was changed; the grader would "
                     "not find them. Change them back (or start from a fresh copy of the assignment):"]
            return "\n".join(lines + [f"    - {s}" for s in self.type_changed])
        if self.changed:
            lines = [f"FAILED  {name}: {len(self.changed)} read-only cell(s) were edited; the grader restores them, "
                     "so your changes there are lost. Undo them (or copy your answers into a fresh copy):"]
            return "\n".join(lines + [f"    - {s}" for s in self.changed])
        lines = []
        if self.failed:
            lost = sum(c.points for c in self.failed)
            lines.append(f"FAILED  {name}: {len(self.failed)} of {self.graded} graded test cell(s) fail "
                         f"({lost:g} point(s)):")
            lines += [f"    - {c.grade_id} ({c.points:g} pt): {c.error}" for c in self.failed]
        else:
            lines.append(f"PASSED  {name}: all {self.graded} graded test cell(s) pass")
        if self.rule_violations:
            if lines[0].startswith("PASSED"):
                lines[0] = "FAILED" + lines[0][len("PASSED"):] + ", but the assignment's rules are broken:"
            lines += [f"    - rule: {v}" for v in self.rule_violations]
        elif not self.rules_checked:
            lines.append("        (the assignment's rules, e.g. which library calls are forbidden, are not checked "
                         "here; the grader checks them)")
        lines.append("        hidden tests run only when the assignment is graded: passing here is necessary, "
                     "not sufficient")
        return "\n".join(lines)


def _first_line(source: str, width: int = 90) -> str:
    line = next((s for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _last_error_line(raw_error: str) -> str:
    lines = [s.strip() for s in ANSI_ESCAPE.sub("", raw_error).strip().splitlines() if s.strip()]
    if not lines:
        return "(no error message; the cell scored less than its points)"
    last = lines[-1]
    if last.rstrip(":") == "NotImplementedError":
        return "NotImplementedError: an answer it uses is not written yet (replace `raise NotImplementedError()`)"
    return last


def _graded_cells(path: Path) -> dict[str, dict]:
    """Stripped source -> nbgrader metadata of every graded cell of the notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            source = cell.get("source", "")
            cells["".join(source).strip() if isinstance(source, list) else source.strip()] = meta
    return cells


def _nbgrader_validator(root: Path):
    """A :class:`nbgrader.validator.Validator` configured by ``root``'s ``nbgrader_config.py``."""
    from nbgrader.apps.validateapp import ValidateApp
    from nbgrader.validator import Validator

    cwd = os.getcwd()
    os.chdir(root)  # nbgrader reads nbgrader_config.py from the working directory
    try:
        app = ValidateApp()
        app.initialize([])
    finally:
        os.chdir(cwd)
    return Validator(parent=app)


def _check_rules(path: Path, assignment: str, root: Path) -> list[str] | None:
    """The assignment's rules broken by the notebook; None when the rule checker is not available.

    HOOK: ``course_tools.grading.rules.check_rules(notebook_path, spec)`` is provided by the grading
    issue (it returns the violations, one readable string each, or objects whose ``str`` is one).
    """
    try:
        from course_tools.grading.rules import check_rules  # type: ignore[import-not-found]
    except ImportError:
        return None
    spec = load_spec(assignment, root)
    if not spec.forbidden:
        return []
    return [str(v) for v in check_rules(path, spec)]


def validate(path: Path, root: Path = REPO_ROOT, *, validator=None) -> Validation:
    """Validate one notebook the way nbgrader's Validate button does, then check the assignment's rules."""
    path = Path(path).resolve()
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    result = Validation(Path(shown))
    if path.suffix != ".ipynb" or not path.is_file():
        result.problem = (f"no such notebook (expected an .ipynb file, e.g. "
                          f"{CourseLayout(root).assignments.name}/03-convolutions/03-convolutions.ipynb)")
        return result
    try:
        graded = _graded_cells(path)
    except (OSError, ValueError) as exc:
        result.problem = f"cannot read the notebook ({exc}); is it a Jupyter notebook saved by JupyterLab?"
        return result
    result.graded = len(graded)
    if not graded:
        result.problem = "the notebook has no graded test cells: is it an assignment notebook?"
        return result
    validator = validator or _nbgrader_validator(root)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            outcome = validator.validate(str(path))
    except Exception as exc:  # nbgrader raises for old/new metadata schemas and broken notebooks
        result.problem = f"nbgrader could not validate it: {type(exc).__name__}: {exc}"
        return result
    result.type_changed = [_first_line(c["source"]) for c in outcome.get("type_changed", [])]
    result.changed = [_first_line(c["source"]) for c in outcome.get("changed", [])]
    for cell in outcome.get("failed", []):
        meta = graded.get(cell["source"].strip(), {})
        result.failed.append(FailedCell(meta.get("grade_id", _first_line(cell["source"])), float(meta.get("points", 0)),
                                        _last_error_line(cell.get("raw_error", ""))))
    if result.ok:
        violations = _check_rules(path, path.parent.name, root)
        result.rules_checked = violations is not None
        result.rule_violations = violations or []
    return result


def main(argv: list[str] | None = None, prog: str = "python -m course_tools validate") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="validate assignment notebooks before submitting them (exit 1 when a test fails)")
    parser.add_argument("notebooks", nargs="+", type=Path, help="e.g. assignments/03-convolutions/03-convolutions.ipynb")
    args = parser.parse_args(argv)
    validator = None
    results = []
    for nb in args.notebooks:
        if validator is None and nb.suffix == ".ipynb" and nb.is_file():
            validator = _nbgrader_validator(REPO_ROOT)
        print(f"validating {nb} (it runs from a fresh kernel; this takes a while) ...", file=sys.stderr, flush=True)
        result = validate(nb, validator=validator)
        results.append(result)
        print(result.summary(), flush=True)
    failed = [r for r in results if not r.ok]
    if len(results) > 1:
        print(f"{len(results) - len(failed)} of {len(results)} notebook(s) pass")
    return 1 if failed else 0


__all__ = ["FailedCell", "Validation", "main", "validate"]
