"""Where everything is: the repository's folders and the course's environment variables, defined once.

Every module of ``course_tools`` (and the repository's ``conftest.py``, ``nbgrader_config.py`` and
benchmark scripts) finds its folders through :data:`LAYOUT` instead of spelling ``"solutions"`` or
``REPO_ROOT / "build"`` itself. The environment variables a notebook or a data loader reads are
defined where ``course_lib`` needs them (:mod:`course_lib.notebook`, :mod:`course_lib.gpu`,
:mod:`course_lib.data.store`) and re-exported here, so that the tooling and the library can never
disagree on a name. ``tests/tools/test_layout.py`` fails when a folder name or an environment
variable is given a second literal definition anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from course_lib.data.store import CACHE_ENV_VAR, MIRROR_ENV_VAR, OFFLINE_ENV_VAR, mirror_dir
from course_lib.gpu import GPU_ENV_VAR
from course_lib.notebook import SMOKE_ENV_VAR

#: the folder names, relative to the repository root
LECTURES = "lectures"
SOLUTIONS = "solutions"
ASSIGNMENTS = "assignments"
BUILD = "build"
GRADING = "grading"
BOOK = "book"
BENCHMARKS = "benchmarks"
TESTS = "tests"
SYLLABUS_FILE = "syllabus.toml"
NBGRADER_CONFIG_FILE = "nbgrader_config.py"
GRADEBOOK_FILE = "gradebook.db"
#: the notebook-source folders (jupytext percent ``.py`` files, ``.ipynb`` twins generated)
SOURCE_DIRS = (LECTURES, SOLUTIONS)

#: environment variable of the grading workers: ``autograde`` while a submission is graded
NBGRADER_EXECUTION_ENV_VAR = "NBGRADER_EXECUTION"
#: ``0``: the local grading pool starts each worker as a fresh interpreter instead of forking it
#: from its preloaded fork server (slower; for debugging the worker start)
GRADER_FORKSERVER_ENV_VAR = "COURSE_GRADER_FORKSERVER"
#: the grader's sandbox: first uid of the per-slot kernel users, the bwrap binary to use, and a
#: forced sandbox variant (tests of the weaker variants). sandbox.py defines them because it also
#: runs inside the sandbox as a standalone script, where this package is not visible.
from course_tools.grading.sandbox import BWRAP_ENV as BWRAP_ENV_VAR  # noqa: E402
from course_tools.grading.sandbox import UID_BASE_ENV as GRADER_UID_BASE_ENV_VAR  # noqa: E402
from course_tools.grading.sandbox import VARIANT_ENV as SANDBOX_VARIANT_ENV_VAR  # noqa: E402


@dataclass(frozen=True)
class CourseLayout:
    """The folders of one course checkout (the repository, or a temporary copy in tests)."""

    root: Path

    @property
    def lectures(self) -> Path:
        return self.root / LECTURES

    @property
    def solutions(self) -> Path:
        return self.root / SOLUTIONS

    @property
    def assignments(self) -> Path:
        return self.root / ASSIGNMENTS

    @property
    def book(self) -> Path:
        return self.root / BOOK

    @property
    def benchmarks(self) -> Path:
        return self.root / BENCHMARKS

    @property
    def benchmark_results(self) -> Path:
        """Committed real-size benchmark records."""
        return self.benchmarks / "results"

    @property
    def results_md(self) -> Path:
        return self.benchmarks / "RESULTS.md"

    @property
    def build(self) -> Path:
        return self.root / BUILD

    @property
    def executed(self) -> Path:
        """Executed notebooks (the executor's and nbval's output; the website's input)."""
        return self.build / "executed"

    @property
    def executed_full(self) -> Path:
        """Full-mode executed notebooks (``make course FULL=1``; kept apart from the smoke runs)."""
        return self.build / "executed-full"

    @property
    def site(self) -> Path:
        return self.build / "site"

    @property
    def site_staging(self) -> Path:
        return self.build / "site-src"

    @property
    def lab_config(self) -> Path:
        """Per-role Jupyter config folders of ``make lab`` (``build/lab/<role>``, generated)."""
        return self.build / "lab"

    @property
    def smoke_benchmarks(self) -> Path:
        """Smoke-size benchmark records (never committed)."""
        return self.build / "benchmarks"

    @property
    def grading(self) -> Path:
        """nbgrader's working folders, reports and the gradebook (git-ignored)."""
        return self.root / GRADING

    @property
    def gradebook(self) -> Path:
        return self.grading / GRADEBOOK_FILE

    @property
    def syllabus(self) -> Path:
        return self.root / SYLLABUS_FILE

    @property
    def nbgrader_config(self) -> Path:
        return self.root / NBGRADER_CONFIG_FILE

    @property
    def data_mirror(self) -> Path:
        """The offline data mirror (``$COURSE_DATA_MIRROR``, else ``<repo>/../shared/data``)."""
        return mirror_dir()

    def source_dir(self, kind: str) -> Path:
        """``lectures/`` or ``solutions/``."""
        if kind not in SOURCE_DIRS:
            raise ValueError(f"kind must be one of {SOURCE_DIRS}; got {kind!r}")
        return self.root / kind


#: the repository this package was imported from
REPO_ROOT = Path(__file__).resolve().parents[1]
LAYOUT = CourseLayout(REPO_ROOT)

__all__ = [
    "GRADER_FORKSERVER_ENV_VAR",
    "ASSIGNMENTS",
    "BENCHMARKS",
    "BOOK",
    "BUILD",
    "BWRAP_ENV_VAR",
    "CACHE_ENV_VAR",
    "GPU_ENV_VAR",
    "GRADEBOOK_FILE",
    "GRADER_UID_BASE_ENV_VAR",
    "GRADING",
    "LAYOUT",
    "LECTURES",
    "MIRROR_ENV_VAR",
    "NBGRADER_CONFIG_FILE",
    "NBGRADER_EXECUTION_ENV_VAR",
    "OFFLINE_ENV_VAR",
    "REPO_ROOT",
    "SANDBOX_VARIANT_ENV_VAR",
    "SMOKE_ENV_VAR",
    "SOLUTIONS",
    "SOURCE_DIRS",
    "SYLLABUS_FILE",
    "TESTS",
    "CourseLayout",
]
