"""Collect, autograde, give feedback and export grades through nbgrader.

Folders (``nbgrader_config.py``): submissions in ``grading/submitted/<student>/<assignment>/``,
autograded copies in ``grading/autograded/``, feedback HTML in ``grading/feedback/``, the gradebook
in ``grading/gradebook.db``, grades in ``grading/grades.csv``. Re-running any step is safe: nbgrader
updates the gradebook in place, and collecting never overwrites a submission with an older copy.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from course_tools.grading.release import GradingError, run_nbgrader
from course_tools.layout import REPO_ROOT, CourseLayout


@dataclass
class CellScore:
    student: str
    notebook: str
    grade_id: str
    score: float
    max_score: float


def collect(name: str, from_dir: Path, root: Path = REPO_ROOT) -> list[Path]:
    """Copy submissions into ``grading/submitted``.

    ``from_dir`` holds one folder per student, named by the student id, containing that student's
    notebooks of assignment ``name`` (directly or in a sub-folder named ``name``). A submission
    already collected is replaced only by a newer file.
    """
    from_dir = Path(from_dir)
    if not from_dir.is_dir():
        raise GradingError(f"{from_dir} is not a folder of student submissions (expected <student>/<notebook>.ipynb)")
    copied = []
    for student_dir in sorted(p for p in from_dir.iterdir() if p.is_dir()):
        inner = student_dir / name if (student_dir / name).is_dir() else student_dir
        notebooks = sorted(inner.glob("*.ipynb"))
        if not notebooks:
            continue
        target = CourseLayout(root).grading / "submitted" / student_dir.name / name
        target.mkdir(parents=True, exist_ok=True)
        for nb in notebooks:
            dest = target / nb.name
            if dest.exists() and dest.stat().st_mtime >= nb.stat().st_mtime:
                continue
            shutil.copy2(nb, dest)
            copied.append(dest)
    return copied


def autograde(name: str, root: Path = REPO_ROOT, *, student: str | None = None, force: bool = False) -> str:
    """``nbgrader autograde NAME``: run every submission with the source's tests restored."""
    args = ["autograde", name]
    if student:
        args.append(f"--student={student}")
    if force:
        args.append("--force")
    return run_nbgrader(args, root)


def feedback(name: str, root: Path = REPO_ROOT) -> str:
    """``nbgrader generate_feedback NAME``: one HTML page per student under ``grading/feedback``."""
    return run_nbgrader(["generate_feedback", name, "--force"], root)


def export(root: Path = REPO_ROOT, to: Path | None = None) -> Path:
    """``nbgrader export``: write the grades of every assignment and student to a CSV file."""
    to = to or CourseLayout(root).grading / "grades.csv"
    run_nbgrader(["export", f"--to={to}"], root)
    return to


def cell_scores(name: str, root: Path = REPO_ROOT) -> list[CellScore]:
    """Per-cell scores of every graded submission of ``name`` from the gradebook."""
    from nbgrader.api import Gradebook

    db_url = "sqlite:///" + str(CourseLayout(root).gradebook)
    scores = []
    with Gradebook(db_url) as gb:
        assignment = gb.find_assignment(name)
        for submission in assignment.submissions:
            for nb in submission.notebooks:
                for grade in nb.grades:
                    scores.append(CellScore(submission.student.id, nb.name, grade.name, float(grade.score), float(grade.max_score)))
    return scores
