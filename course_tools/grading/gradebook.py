"""The gradebook writer: nbgrader's SQLite gradebook (registration and one transaction per
submission), ``grades.csv`` and nbgrader's feedback. Only the client process writes them."""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from course_tools.grading.cells import Role, cell_role, nbg
from course_tools.grading.config import REDACTED_DIR
from course_tools.grading.reports import SubmissionReport, grades_table
from course_tools.layout import REPO_ROOT, CourseLayout


def ensure_gradebook(name: str, root: Path, sources: dict[str, Path], log) -> None:
    """Make sure the gradebook knows assignment ``name`` with the source's graded cells (runs
    ``nbgrader generate_assignment`` into a scratch release folder when it does not)."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    from course_tools.grading.release import run_nbgrader, sync_solutions

    want = {}
    for nb_name, p in sources.items():
        nb = nbformat.read(p, as_version=4)
        want[Path(nb_name).stem] = {
            nbg(c)["grade_id"]: float(nbg(c).get("points", 0))
            for c in nb.cells
            if cell_role(c) in (Role.TEST, Role.MANUAL)
        }
    db = CourseLayout(root).gradebook
    ok = False
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                a = gb.find_assignment(name)
                have = {nb.name: {gc.name: float(gc.max_score) for gc in nb.grade_cells} for nb in a.notebooks}
                ok = have == want
            except MissingEntry:
                ok = False
    if ok:
        return
    log(f"registering {name} in the gradebook (nbgrader generate_assignment into a scratch folder)")
    sync_solutions(name, root)
    with tempfile.TemporaryDirectory(prefix="cg-release-") as tmp:
        run_nbgrader(["generate_assignment", name, "--force", f"--CourseDirectory.release_directory={tmp}"], root)


def record_in_gradebook(gb, report: dict) -> None:
    """Write one student's scores (idempotent: update in place, one commit)."""
    from nbgrader.api import MissingEntry

    warnings.filterwarnings("ignore", message=".*not in session.*")

    name, student = report["assignment"], report["student"]
    gb.update_or_create_student(student)
    kwargs = {}
    if report.get("timestamp"):
        kwargs["timestamp"] = report["timestamp"]
    try:
        gb.update_or_create_submission(name, student, **kwargs)
    except Exception:
        gb.db.rollback()
        gb.update_or_create_submission(name, student)
    for nbr in report["notebooks"]:
        nb_id = Path(nbr["notebook"]).stem
        for cell in nbr["cells"]:
            try:
                grade = gb.find_grade(cell["grade_id"], nb_id, name, student)
            except MissingEntry:
                continue
            grade.auto_score = cell["points"]
            grade.needs_manual_grade = grade.manual_score is not None or cell["points"] is None
        try:
            sub_nb = gb.find_submission_notebook(nb_id, name, student)
            for comment in sub_nb.comments:
                comment.auto_comment = None
        except MissingEntry:
            pass
    gb.db.commit()


def write_grades_csv(reports: list[dict[str, Any]], path: Path) -> Path:
    """``grades.csv`` of the reports (:func:`course_tools.grading.reports.grades_table`), atomically."""
    header, rows = grades_table([SubmissionReport.from_dict(r) for r in reports])
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def generate_feedback(name: str, root: Path | None = None) -> str:
    """nbgrader's feedback HTML (``grading/feedback/<student>/NAME/``), made from the redacted
    notebooks of :func:`redact` (hidden tests removed), never from the full autograded ones."""
    from course_tools.grading.release import run_nbgrader

    return run_nbgrader(
        ["generate_feedback", name, "--force", f"--CourseDirectory.autograded_directory={REDACTED_DIR.as_posix()}"],
        Path(root or REPO_ROOT),
    )
