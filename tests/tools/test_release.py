"""The committed release (assignments/) is current and leaks no solution or hidden test."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_tools.grading.leaks import find_leaks, markers_in, released_notebook_text, secret_lines
from course_tools.grading.release import assignment_names, check_release
from course_tools.layout import REPO_ROOT
from course_tools.notebooks.convert import read_source

ROOT = REPO_ROOT
ASSIGNMENTS = assignment_names(ROOT)


def test_release_is_regenerated_from_current_solutions():
    problems = check_release(ROOT)
    assert not problems, "assignments/ is stale - run `make release` and commit it:\n" + "\n".join(problems)


def released_pairs():
    for name in ASSIGNMENTS:
        for src in sorted((ROOT / "solutions" / name).glob("*.py")):
            yield pytest.param(src, ROOT / "assignments" / name / src.with_suffix(".ipynb").name, id=f"{name}/{src.stem}")


@pytest.mark.parametrize("source, released", list(released_pairs()))
def test_release_contains_no_solution_or_hidden_test_lines(source, released):
    assert released.exists(), f"{released} is missing - run `make release`"
    src_nb = read_source(source)
    secrets = secret_lines(src_nb)
    assert secrets, f"{source} has no solution/hidden-test lines at all - is it an nbgrader source?"
    rel_nb = json.loads(released.read_text())
    text = released_notebook_text(rel_nb)
    assert not markers_in(text), f"{released} contains nbgrader markers {markers_in(text)}"
    leaks = find_leaks(src_nb, text, str(released))
    assert not leaks, "released notebook leaks:\n" + "\n".join(f"  [{lk.kind}] {lk.line}" for lk in leaks)
    # and nothing in outputs either: a release has no executed outputs
    assert all(not c.get("outputs") for c in rel_nb["cells"] if c["cell_type"] == "code")


def test_leak_scanner_catches_a_planted_leak():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x ** 2 + 1\n    ### END SOLUTION\n"),
        nbformat.v4.new_code_cell("assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(3) == 10, 'hidden'\n### END HIDDEN TESTS\n"),
    ]
    secrets = secret_lines(nb)
    assert secrets == {"return x ** 2 + 1": "solution", "assert f(3) == 10, 'hidden'": "hidden test"}
    clean = "def f(x):\n    raise NotImplementedError()\nassert f(1) == 2\n"
    assert find_leaks(nb, clean, "clean") == []
    leaked = clean + "    return x ** 2 + 1\n"
    assert [lk.kind for lk in find_leaks(nb, leaked, "leaked")] == ["solution"]
    assert [lk.kind for lk in find_leaks(nb, clean + "assert f(3) == 10, 'hidden'", "h")] == ["hidden test"]


def test_lines_shared_with_visible_code_are_not_secret():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = np.zeros(3)\n### BEGIN SOLUTION\nx = np.zeros(3)\ny = x + 1\n### END SOLUTION\n")]
    assert secret_lines(nb) == {"y = x + 1": "solution"}


def test_released_notebooks_carry_the_kernels_kernelspec_and_language_info():
    """What JupyterLab's python3 kernel reports on opening, so an unmodified notebook opens unmodified."""
    from course_tools.notebooks.convert import KERNELSPEC, kernel_language_info

    expected = kernel_language_info()
    minor = expected.pop("version").rsplit(".", 1)[0]  # the patch release is the generating interpreter's
    for name in ASSIGNMENTS:
        for path in sorted((ROOT / "assignments" / name).glob("*.ipynb")):
            metadata = json.loads(path.read_text())["metadata"]
            assert metadata["kernelspec"] == KERNELSPEC, path
            info = dict(metadata["language_info"])
            assert str(info.pop("version", "")).rsplit(".", 1)[0] == minor and info == expected, (
                f"{path}: language_info {metadata['language_info']} is not the kernel's - run `make release`")


def test_sync_rewrites_a_twin_without_the_kernels_language_info(tmp_path):
    from course_tools.notebooks.convert import kernel_language_info, sync

    source = tmp_path / "lectures" / "99-topic" / "99-topic.py"
    source.parent.mkdir(parents=True)
    source.write_text("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n")
    (twin,) = sync(root=tmp_path)
    assert json.loads(twin.read_text())["metadata"]["language_info"] == kernel_language_info()
    old = json.loads(twin.read_text())
    old["metadata"]["language_info"] = {"name": "python"}  # what the generator wrote before
    twin.write_text(json.dumps(old))
    sync(root=tmp_path)
    assert json.loads(twin.read_text())["metadata"]["language_info"] == kernel_language_info()


def test_release_check_tolerates_only_another_python_patch_release(tmp_path):
    from course_tools.grading.release import _same_release

    def notebook(name: str, version: str, source: str = "x = 1") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [{"source": source}],
                                    "metadata": {"language_info": {"name": "python", "version": version}}}))
        return path

    assert _same_release(notebook("a", "3.11.7"), notebook("b", "3.11.9"))
    assert not _same_release(notebook("a", "3.11.7"), notebook("b", "3.12.1"))
    assert not _same_release(notebook("a", "3.11.7"), notebook("b", "3.11.7", source="x = 2"))
