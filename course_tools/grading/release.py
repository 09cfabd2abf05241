"""Regenerate ``assignments/`` (nbgrader's release) from ``solutions/`` (nbgrader's source).

``solutions/NN-topic/*.py`` → (jupytext, stable cell ids) ``.ipynb`` → ``nbgrader generate_assignment``
→ ``assignments/NN-topic/*.ipynb``. :func:`check_release` regenerates into a temporary folder and
lists the notebooks whose committed release differs, so a test can fail on a stale release.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course_lib.gpu import GPU_ENV_VAR
from course_tools.layout import ASSIGNMENTS, NBGRADER_CONFIG_FILE, REPO_ROOT, SOLUTIONS
from course_tools.notebooks.convert import find_sources, read_source, write_notebook

#: characters of nbgrader's log quoted in an error message
NBGRADER_LOG_TAIL_CHARS = 4000


class GradingError(RuntimeError):
    """An nbgrader step failed; the message carries nbgrader's own explanation."""


def nbgrader_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for nbgrader subprocesses: the venv's bin first on PATH (nbgrader runs ``alembic``)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault(GPU_ENV_VAR, "1" if _cuda() else "0")
    if extra:
        env.update(extra)
    return env


def _cuda() -> bool:
    from course_lib.gpu import cuda_available

    return cuda_available()


def run_nbgrader(args: list[str], course_root: Path, *, env: dict[str, str] | None = None, timeout: int = 1800) -> str:
    """Run ``nbgrader ARGS`` in ``course_root``; return its log, raise :class:`GradingError` on failure."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course_root, env=env or nbgrader_env(), capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "[ERROR]" in log or "| ERROR]" in log:
        raise GradingError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}) in {course_root}:\n{log[-NBGRADER_LOG_TAIL_CHARS:]}")
    return log


def assignment_names(root: Path = REPO_ROOT) -> list[str]:
    return sorted({p.parent.name for p in find_sources(SOLUTIONS, root)})


def sync_solutions(name: str, root: Path = REPO_ROOT) -> list[Path]:
    """Write the source notebooks (``solutions/NAME/*.ipynb``) from their ``.py`` files."""
    written = []
    for src in sorted((root / SOLUTIONS / name).glob("*.py")):
        written.append(write_notebook(read_source(src, strip_jupytext=True), src.with_suffix(".ipynb")))
    if not written:
        raise GradingError(f"solutions/{name}/ has no .py notebook sources")
    return written


def generate(name: str, root: Path = REPO_ROOT, release_dir: Path | None = None) -> Path:
    """Regenerate the release of assignment ``name``; return its folder."""
    sync_solutions(name, root)
    args = ["generate_assignment", name, "--force"]
    if release_dir is not None:
        args.append(f"--CourseDirectory.release_directory={release_dir}")
    run_nbgrader(args, root)
    out = (release_dir or root / ASSIGNMENTS) / name
    for nb_path in out.glob("*.ipynb"):  # normalise: sorted keys, one trailing newline, like nbformat.write
        nb = json.loads(nb_path.read_text())
        nb_path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return out


def _same_release(fresh: Path, committed: Path) -> bool:
    """Byte-identical, or differing only in ``metadata.language_info.version``: the Python version of
    the interpreter that generated the release (the kernel's, see ``kernel_language_info``), which
    the course pins to 3.11 but not to a patch release (3.11.7 and 3.11.9 match, 3.12.1 does not)."""
    if fresh.read_bytes() == committed.read_bytes():
        return True
    try:
        a, b = json.loads(fresh.read_text()), json.loads(committed.read_text())
    except ValueError:
        return False
    minors = [str(nb.get("metadata", {}).get("language_info", {}).pop("version", "")).rsplit(".", 1)[0] for nb in (a, b)]
    return minors[0] == minors[1] and a == b


def check_release(root: Path = REPO_ROOT) -> list[str]:
    """Regenerate every assignment into a temp dir; return the released files that differ or are missing."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        shutil.copytree(root / SOLUTIONS, course / SOLUTIONS, ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
        shutil.copy(root / NBGRADER_CONFIG_FILE, course / NBGRADER_CONFIG_FILE)
        for name in assignment_names(course):
            fresh = generate(name, course)
            committed = root / ASSIGNMENTS / name
            fresh_files = {p.name for p in fresh.glob("*.ipynb")}
            committed_files = {p.name for p in committed.glob("*.ipynb")} if committed.exists() else set()
            for missing in sorted(fresh_files - committed_files):
                problems.append(f"assignments/{name}/{missing} is missing")
            for extra in sorted(committed_files - fresh_files):
                problems.append(f"assignments/{name}/{extra} has no source in solutions/{name}/")
            for fname in sorted(fresh_files & committed_files):
                if not _same_release(fresh / fname, committed / fname):
                    problems.append(f"assignments/{name}/{fname} differs from what solutions/{name}/ generates")
    return problems
