"""The student release: stubs, the bundle's contents and leaks, reproducibility, and the bundle in its own venv.

The bundle test builds the release of 2027-03-02 (assignments 01 and 02 past their due dates,
03 and 04 open): lectures 01-02 ship as sources and must run against the stubbed course_lib,
lectures 03-05 ship pre-executed. The "fresh venv" is cheap isolation, not a download: a new
``venv`` without packages whose one ``.pth`` line adds the course venv's site-packages (the pinned
dependencies), into which the bundle itself is installed with ``pip install -e .`` exactly as its
README says (offline: ``--no-index --no-deps``). The test checks that ``course_lib`` then comes
from the bundle, not from the repository.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

from course_tools import syllabus
from course_tools.assignments import load_specs
from course_tools.grading.release import assignment_names
from course_tools.layout import LAYOUT, MIRROR_ENV_VAR, REPO_ROOT
from course_tools.student_release import build, bundle_digest, plan, scan_bundle
from course_tools.student_release.build import PRE_EXECUTED_CELL_ID
from course_tools.student_release.scan import ALLOWED_TOP
from course_tools.student_release.stubs import LibraryIndex, stub_module_source

DAY = dt.date(2027, 3, 2)


# ----------------------------------------------------------------------------------------------
# declarations


def test_lecture_dates_are_weekly_in_order_and_precede_their_assignments():
    lectures = syllabus.load()
    dates = [lec.date for lec in lectures]
    assert all(dates), "every [[lecture]] of syllabus.toml has a date"
    assert dates == sorted(dates) and len(set(dates)) == len(dates), "lecture dates increase"
    specs = load_specs()
    for lec in lectures:
        spec = specs.get(lec.assignment)
        if spec and spec.release:
            assert lec.date <= spec.release, f"assignment {spec.name} is released before lecture {lec.number} is given"


@pytest.mark.parametrize("name", assignment_names())
def test_every_graded_name_with_a_course_lib_twin_is_an_answer(name):
    """A graded function or class whose name course_lib also defines must be in the answers mapping."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_assignments import _graded_names

    index = LibraryIndex(REPO_ROOT / "course_lib")
    public = {n: f"{m}.{n}" for m, info in index.modules.items() for n in info.defs if not n.startswith("_")}
    spec = load_specs()[name]
    twins = {g: public[g] for g in _graded_names(name) if g in public}
    missing = {g: t for g, t in twins.items() if g not in spec.answers}
    assert not missing, f"{name}: add these to [assignment.answers] in syllabus.toml: {missing}"


# ----------------------------------------------------------------------------------------------
# the AST rewrite

MODULE = '''\
"""A module."""

import math


def keep(x):
    # a comment that stays
    return x + 1


@staticmethod
def answer(x: float, *, scale: float = 2.0) -> float:
    """The answer's docstring."""
    # the method: square it
    y = x * x
    return scale * y


def one_liner(x): return math.sqrt(x)


class Layer:
    """A layer."""

    size = 3

    def __init__(self, n: int) -> None:
        self.n = n

    def forward(self, x):
        return x * self.n
'''


def test_stub_rewrite_keeps_signatures_docstrings_and_every_other_line(tmp_path):
    out = stub_module_source(MODULE, {"answer": "answer is open", "one_liner": "open too", "Layer": "layer open"})
    assert "def keep(x):\n    # a comment that stays\n    return x + 1\n" in out, "untouched code stays byte for byte"
    assert "@staticmethod\ndef answer(x: float, *, scale: float = 2.0) -> float:\n" in out
    assert "y = x * x" not in out and "the method: square it" not in out and "x * self.n" not in out
    (tmp_path / "stubbed_mod.py").write_text(out)
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("stubbed_mod")
        assert mod.keep(1) == 2
        assert inspect.signature(mod.answer.__func__).parameters["scale"].default == 2.0
        assert mod.answer.__func__.__doc__ == "The answer's docstring."
        for call, message in [(lambda: mod.answer.__func__(1.0), "answer is open"), (lambda: mod.one_liner(4.0), "open too"),
                              (lambda: mod.Layer(2), "layer open")]:
            with pytest.raises(NotImplementedError, match=message):
                call()
        assert mod.Layer.size == 3 and mod.Layer.__doc__ == "A layer."
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("stubbed_mod", None)


def test_plan_stubs_private_helpers_only_answers_use_and_keeps_imports_working():
    p = plan(REPO_ROOT, dt.date(2027, 2, 17))
    assert "course_lib.conv.pad2d" in p.stubs and "course_lib.conv._pad4" in p.stubs
    assert p.stubs["course_lib.conv._pad4"].helper_of == "course_lib.conv.pad2d"
    assert "course_lib.conv._pad" not in p.stubs, "a helper that kept code (conv2d_im2col) uses must stay"
    assert p.stubs["course_lib.layers.Linear"].assignment == "02-backpropagation", "the later due date wins"
    late = plan(REPO_ROOT, dt.date(2027, 7, 1))
    assert late.stubs == {} and late.pre_executed == {}


# ----------------------------------------------------------------------------------------------
# the bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    executed = tmp_path_factory.mktemp("executed")
    # reuse executions already in build/executed (build() checks they match their sources)
    if LAYOUT.executed.is_dir():
        shutil.copytree(LAYOUT.executed, executed, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("bundle") / "student"
    p = build(REPO_ROOT, out, DAY, executed_dir=executed, log=lambda *_: None)
    return out, p, executed


def test_bundle_holds_what_is_released_and_nothing_else(bundle):
    out, p, _ = bundle
    assert {e.name for e in out.iterdir()} <= ALLOWED_TOP
    for name in ("solutions", "course_tools", "grading", "tests", "benchmarks", "book", "gradebook.db"):
        assert not (out / name).exists(), f"{name} must not be in the student bundle"
    assert sorted(p.pre_executed) == ["03-convolutions", "04-optimization", "05-regularization"]
    assert (out / "lectures/01-neural-networks/01-neural-networks.py").is_file()
    nb = json.loads((out / "lectures/03-convolutions/03-convolutions.ipynb").read_text())
    assert nb["cells"][0]["id"] == PRE_EXECUTED_CELL_ID and "Pre-executed" in nb["cells"][0]["source"]
    assert "03-convolutions (due 2027-03-08)" in nb["cells"][0]["source"]
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "pre-executed = outputs kept"
    assert not (out / "lectures/03-convolutions/03-convolutions.py").exists()
    conv = (out / "course_lib/conv.py").read_text()
    assert "03-convolutions (due 2027-03-08)" in conv
    assert "NotImplementedError" not in (out / "course_lib/activations.py").read_text(), "01 is due: answers published"
    readme = (out / "README.md").read_text()
    for phrase in ("make venv", "make lab", "make validate NB=", "Validate", "Submit", "`course_lib.conv.pad2d`"):
        assert phrase in readme
    student_pyproject = (out / "pyproject.toml").read_text()
    assert 'include = ["course_lib*"]' in student_pyproject and "course_tools" not in student_pyproject
    count, size, _ = bundle_digest(out)
    print(f"\nstudent bundle of {DAY}: {count} files, {size / 1e6:.2f} MB")


def test_bundle_passes_the_leak_scan_and_the_scan_catches_planted_leaks(bundle, tmp_path):
    out, _, _ = bundle
    assert scan_bundle(out, REPO_ROOT, DAY) == []
    planted = tmp_path / "planted"
    shutil.copytree(out, planted)
    # the body of an open answer, renamed and re-indented, pasted into a lecture: found by AST
    index = LibraryIndex(REPO_ROOT / "course_lib")
    node = index.node("course_lib.conv.conv2d_naive")
    node.name = "my_conv"
    lecture = planted / "lectures/01-neural-networks/01-neural-networks.py"
    lecture.write_text(lecture.read_text() + "\n\n# %%\n" + ast.unparse(node) + "\n")
    # a hidden-test line in the README, a solutions/ folder
    (planted / "README.md").write_text((planted / "README.md").read_text() + "\n_rng = np.random.default_rng(2024)\n")
    (planted / "solutions").mkdir()
    problems = "\n".join(scan_bundle(planted, REPO_ROOT, DAY))
    assert "holds the body of course_lib.conv.conv2d_naive" in problems
    assert "README.md: hidden test line" in problems
    assert "solutions: not part of a student bundle" in problems


def test_bundle_is_reproducible(bundle, tmp_path):
    out, _, executed = bundle
    again = tmp_path / "again"
    build(REPO_ROOT, again, DAY, executed_dir=executed, log=lambda *_: None)
    assert bundle_digest(again) == bundle_digest(out)


DRIVER = textwrap.dedent('''
    import json, os, pkgutil, sys, importlib
    from pathlib import Path
    import course_lib, jupytext, nbformat
    from nbclient import NotebookClient
    bundle = Path(sys.argv[1])
    report = {"course_lib": course_lib.__file__, "import_errors": {}, "notebooks": {}}
    for mod in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        try:
            importlib.import_module(mod.name)
        except Exception as exc:
            report["import_errors"][mod.name] = repr(exc)
    for rel in sys.argv[2:]:
        path = bundle / rel
        nb = jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}).execute()
        cells = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            grade = (cell.metadata.get("nbgrader") or {}).get("grade", False)
            cells.append({"graded": grade, "errors": [(e["ename"], e["evalue"][:200]) for e in errors]})
        report["notebooks"][rel] = cells
    print(json.dumps(report))
''')


def test_fresh_venv_runs_released_assignments_and_lectures_that_are_not_pre_executed(bundle, tmp_path):
    out, p, _ = bundle
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_course_base_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    # students download the data sets; the test reads them from the offline mirror
    env[MIRROR_ENV_VAR] = str(LAYOUT.data_mirror)
    env.update({"COURSE_SMOKE": "1", "OMP_NUM_THREADS": "1", "PATH": f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"})
    # the README's install command, offline
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                    "-c", "requirements/constraints.txt", "-e", "."], cwd=out, env=env, check=True, capture_output=True)
    assignments = [str(nb.relative_to(out)) for nb in sorted((out / "assignments").glob("*/*.ipynb"))]
    lectures = [f"lectures/{lec.folder}/{lec.folder}.py" for lec in p.lectures if lec.folder not in p.pre_executed]
    assert lectures == ["lectures/01-neural-networks/01-neural-networks.py",
                        "lectures/02-backpropagation/02-backpropagation.py"]
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([python, driver, out, *assignments, *lectures], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["course_lib"]).resolve().is_relative_to(out.resolve()), "course_lib must come from the bundle"
    assert report["import_errors"] == {}, "stubs must not break any course_lib import"
    for rel in lectures:
        errors = [e for c in report["notebooks"][rel] for e in c["errors"]]
        assert errors == [], f"{rel} fails against the student's course_lib: {errors}"
    for rel in assignments:
        cells = report["notebooks"][rel]
        errors = [e for c in cells for e in c["errors"]]
        assert [c for c in cells if c["graded"]], rel
        assert all(c["errors"] for c in cells if c["graded"]), f"{rel}: an unanswered graded cell passed"
        kinds = {name for name, _ in errors}
        assert kinds <= {"NotImplementedError", "NameError"}, f"{rel} fails for another reason than unanswered: {errors}"
        assert "NotImplementedError" in kinds, rel
