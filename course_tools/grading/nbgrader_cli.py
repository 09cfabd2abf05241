"""Collect, autograde, give feedback and export grades through nbgrader.

Folders (``nbgrader_config.py``): submissions in ``grading/submitted/<student>/<assignment>/``,
autograded copies in ``grading/autograded/``, feedback HTML in ``grading/feedback/``, the gradebook
in ``grading/gradebook.db``, grades in ``grading/grades.csv``. Re-running any step is safe: nbgrader
updates the gradebook in place, and collecting never overwrites a submission with an older copy.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
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


@dataclass
class Collected:
    """What :func:`collect` did: the files copied, what it refused and why, the students without a notebook."""

    copied: list[Path] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path under FROM, why)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (folder name, student id it was given)
    empty: list[str] = field(default_factory=list)  # students with no notebook: graded as "no submission"

    def __len__(self) -> int:
        return len(self.copied)

    def describe(self) -> str:
        lines = [f"collected {len(self.copied)} files into grading/submitted"]
        lines += [f"  student folder {a!r} collected as {b!r} (student ids are letters, digits and . _ @ + -)"
                  for a, b in self.renamed]
        lines += [f"  {s}: no notebook submitted (graded as \"no submission\")" for s in self.empty]
        lines += [f"  refused {p}: {why}" for p, why in self.refused]
        return "\n".join(lines)


def normalise_student_id(name: str) -> str | None:
    """A valid student id for a folder name: unicode letters folded to ASCII, other characters to ``_``;
    None when nothing usable is left."""
    import unicodedata

    from course_tools.grading.config import RESERVED_STUDENT_IDS, STUDENT_ID_RE

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", ascii_name).strip("._-+@")[:64]
    if not cleaned or not STUDENT_ID_RE.fullmatch(cleaned) or cleaned in RESERVED_STUDENT_IDS:
        return None
    return cleaned


def _copy_regular(src: Path, dest: Path, cap: int) -> int:
    """Copy at most ``cap`` bytes of a regular file (opened without following links); the bytes copied."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{src.name} is not a regular file")
        tmp = dest.with_name(f".{dest.name}.collect.tmp")
        n = 0
        with open(fd, "rb", closefd=False) as fh, open(tmp, "wb") as out:
            while True:
                chunk = fh.read(min(1 << 20, cap + 1 - n))
                if not chunk:
                    break
                n += len(chunk)
                if n > cap:
                    out.close()
                    tmp.unlink()
                    raise OSError(f"larger than {cap / 2**20:.0f} MB")
                out.write(chunk)
        st = os.stat(src, follow_symlinks=False)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dest)
        return n
    finally:
        os.close(fd)


def collect(name: str, from_dir: Path, root: Path = REPO_ROOT) -> Collected:
    """Copy submissions into ``grading/submitted``.

    ``from_dir`` holds one folder per student, named by the student id, containing that student's
    files of assignment ``name`` (directly or in a sub-folder named ``name``). Only regular files
    are copied (never a link, device or folder named like a notebook), at most
    ``MAX_SUBMISSION_BYTES`` per student; what is refused is reported, and one student's problem
    never stops the others. Student folder names that are not valid ids are normalised (or refused
    when nothing is left, or when two folders would get the same id). A student folder without a
    notebook is collected empty and graded as "no submission". A submission already collected is
    replaced only by a newer file.
    """
    from course_tools.grading.config import MAX_SUBMISSION_BYTES, STUDENT_ID_RE

    from_dir = Path(from_dir)
    if not from_dir.is_dir():
        raise GradingError(f"{from_dir} is not a folder of student submissions (expected <student>/<notebook>.ipynb)")
    result = Collected()
    ids: dict[str, str] = {}
    entries = sorted(from_dir.iterdir())
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir():
            if entry.is_symlink() or entry.name.endswith(".ipynb"):
                result.refused.append((entry.name, "not a student folder (a link or a file); "
                                                   "put each student's files in a folder named by the student id"))
            continue
        student = entry.name
        if not STUDENT_ID_RE.fullmatch(student):
            student = normalise_student_id(entry.name) or ""
            if not student:
                result.refused.append((repr(entry.name), "the folder name gives no usable student id; rename it"))
                continue
            result.renamed.append((entry.name, student))
        if student in ids:
            result.refused.append((repr(entry.name), f"student id {student!r} already taken by {ids[student]!r}"))
            continue
        ids[student] = entry.name
        try:
            _collect_student(entry, name, CourseLayout(root).grading / "submitted" / student / name, result,
                             MAX_SUBMISSION_BYTES, student)
        except OSError as exc:  # one student's unreadable folder must not stop the others
            result.refused.append((entry.name, f"could not be collected: {exc}"))
    return result


def _collect_student(student_dir: Path, name: str, target: Path, result: Collected, cap: int, student: str) -> None:
    inner = student_dir / name
    if inner.is_symlink():
        result.refused.append((f"{student_dir.name}/{name}", "a link, not a folder: not followed"))
        inner = student_dir
    elif not inner.is_dir():
        inner = student_dir
    total = 0
    notebooks = 0
    pending: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(inner, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(inner)
        if any(part.startswith(".") for part in rel_dir.parts) or (inner == student_dir and rel_dir.parts[:1] == (name,)):
            dirnames[:] = []
            continue
        for d in list(dirnames):
            if (here / d).is_symlink():
                result.refused.append((f"{student_dir.name}/{(here / d).relative_to(student_dir).as_posix()}",
                                       "a link: not followed"))
                dirnames.remove(d)
            elif d.endswith(".ipynb"):
                result.refused.append((f"{student_dir.name}/{(here / d).relative_to(student_dir).as_posix()}",
                                       "a folder named like a notebook: not a notebook"))
                dirnames.remove(d)
        for f in sorted(filenames):
            p = here / f
            shown = f"{student_dir.name}/{p.relative_to(student_dir).as_posix()}"
            if f.startswith("."):
                continue
            try:
                st = os.stat(p, follow_symlinks=False)
            except OSError as exc:
                result.refused.append((shown, f"unreadable: {exc}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                result.refused.append((shown, "a link: not followed (submit the file itself)"))
                continue
            if not stat.S_ISREG(st.st_mode):
                result.refused.append((shown, "not a regular file"))
                continue
            if total + st.st_size > cap:
                result.refused.append((shown, f"over the {cap / 2**20:.0f} MB a submission may have"))
                continue
            total += st.st_size
            notebooks += f.endswith(".ipynb")
            pending.append((p, target / rel_dir / f))
    target.mkdir(parents=True, exist_ok=True)
    if not notebooks:
        result.empty.append(student)
    for src, dest in pending:
        if dest.exists() and dest.stat().st_mtime >= os.stat(src, follow_symlinks=False).st_mtime:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            _copy_regular(src, dest, cap)
        except OSError as exc:
            result.refused.append((f"{student_dir.name}/{src.relative_to(student_dir).as_posix()}", str(exc)))
            continue
        result.copied.append(dest)


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
