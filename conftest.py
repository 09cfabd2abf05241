"""Repository-wide pytest hooks for notebooks run by nbval (``pytest --nbval-lax lectures``).

- ``gpu``-tagged cells are skipped where no CUDA device exists, with the reason shown
  (the same decision as the papermill executor and nbgrader: :mod:`course_lib.gpu`).
- The one execution nbval does is kept: each notebook's outputs are written to
  ``build/executed/<path>.ipynb`` so the website and reports need no second run.
- At the end a table gives the seconds each notebook took, so slow notebooks are visible.
- Hypothesis runs derandomised (profile ``course``): every run of the suite draws the same
  examples, so a red CI reproduces on any machine with the same command. Set
  ``HYPOTHESIS_PROFILE=explore`` to draw fresh random examples when hunting for new failures.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

from course_lib.gpu import SKIP_MESSAGE, cuda_available, is_gpu_cell, mark_skipped_gpu_cells
from course_lib.notebook import SMOKE_ENV_VAR
from course_tools.layout import CourseLayout

try:  # a test dependency: absent where only the notebooks are run (nbval in a student release)
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover
    _hypothesis_settings = None
if _hypothesis_settings is not None:
    _hypothesis_settings.register_profile("course", derandomize=True, print_blob=True)
    _hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))

# this file's folder, not course_tools.layout.REPO_ROOT: tests run pytest in temporary course copies
ROOT = Path(__file__).resolve().parent
EXECUTED_DIR = CourseLayout(ROOT).executed

_notebook_seconds: dict[str, float] = defaultdict(float)
_notebook_status: dict[str, str] = {}
_executed_files: dict[str, object] = {}


def _is_nbval_cell(item) -> bool:
    return hasattr(item, "cell") and hasattr(item, "cell_num") and str(getattr(item, "fspath", "")).endswith(".ipynb")


def pytest_collection_modifyitems(config, items):
    if any(_is_nbval_cell(i) for i in items):
        os.environ.setdefault(SMOKE_ENV_VAR, "1")  # kernels started later inherit smoke mode
    if cuda_available():
        return
    skip = pytest.mark.skip(reason=SKIP_MESSAGE.strip())
    for item in items:
        if _is_nbval_cell(item) and is_gpu_cell(item.cell):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not _is_nbval_cell(item):
        return (yield)
    try:
        return (yield)
    finally:
        # copy what nbval saw into the notebook it read, for build/executed
        outputs = getattr(item, "test_outputs", None)
        if outputs is not None:
            for out in outputs:
                if out.get("output_type") == "execute_result":
                    out.setdefault("execution_count", item.cell_num + 1)
            item.cell["outputs"] = list(outputs)
            item.cell["execution_count"] = item.cell_num + 1
        _executed_files[str(item.fspath)] = item.parent


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    if ".ipynb::" not in nodeid:
        return
    notebook = nodeid.split("::", 1)[0]
    _notebook_seconds[notebook] += report.duration
    if report.failed:
        _notebook_status[notebook] = "FAILED"
    else:
        _notebook_status.setdefault(notebook, "ok")


def pytest_sessionfinish(session, exitstatus):
    for path, nbfile in _executed_files.items():
        nb = getattr(nbfile, "nb", None)
        if nb is None:
            continue
        if not cuda_available():
            mark_skipped_gpu_cells(nb)
        try:
            rel = Path(path).resolve().relative_to(ROOT)
        except ValueError:
            continue
        from course_tools.notebooks.convert import write_notebook
        from course_tools.notebooks.execute import run_metadata

        seconds = next((s for name, s in _notebook_seconds.items() if path.endswith(name.split("::")[0])), 0.0)
        nb.metadata["course"] = run_metadata(True, seconds, "nbval (make test)")
        write_notebook(nb, EXECUTED_DIR / rel)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _notebook_seconds:
        return
    tr = terminalreporter
    width = max(len(n) for n in _notebook_seconds)
    tr.write_sep("=", "seconds per notebook (nbval, smoke mode)")
    for name, secs in sorted(_notebook_seconds.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{name:<{width}}  {secs:8.1f} s  {_notebook_status.get(name, '?')}")
    tr.write_line(f"{'total':<{width}}  {sum(_notebook_seconds.values()):8.1f} s")


