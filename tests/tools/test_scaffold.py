"""``new-lecture`` in a temporary copy of the repository, then the fast part of the suite there.

The copy holds the files git tracks or would track (no .venv, build/, grading/); the scaffold
runs through the command line (``python -m course_tools new-lecture``) of the copy, once for a new
lecture number (18) and once for a number syllabus.toml already lists as planned (06), whose entry
must be filled in, not duplicated. Then, in the copy: the syllabus, assignments, notebook-source
and release checks, the new modules' oracle tests and the new lecture executed by nbval.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from course_tools.layout import REPO_ROOT
from course_tools.scaffold import ScaffoldError, scaffold, update_syllabus


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted({f for f in out.split("\0") if f and (REPO_ROOT / f).is_file() and not (REPO_ROOT / f).is_symlink()})


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo") / "course"
    for rel in _tracked_files():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, root / rel)
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    for args in (["18", "transformers"], ["06", "architectures"]):
        proc = subprocess.run([sys.executable, "-m", "course_tools", "new-lecture", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, env


def test_scaffold_fills_the_planned_entry_and_appends_a_new_one(copy):
    root, _ = copy
    data = tomllib.loads((root / "syllabus.toml").read_text())
    numbers = [lec["number"] for lec in data["lecture"]]
    assert numbers.count("06") == 1 and numbers.count("18") == 1 and numbers == sorted(numbers)
    six = next(lec for lec in data["lecture"] if lec["number"] == "06")
    assert six["title"] == "CNN architectures and transfer learning", "the planned title is kept"
    assert six["modules"] == ["course_lib/architectures.py"] and six["assignment"] == "06-architectures"
    assignments = {a["name"]: a for a in data["assignment"]}
    assert assignments["18-transformers"]["answers"] == {"mean_squared_error": "course_lib.transformers.mean_squared_error"}
    assert assignments["06-architectures"]["release"] > six["date"]
    for rel in ("lectures/18-transformers/18-transformers.py", "solutions/18-transformers/18-transformers.py",
                "assignments/18-transformers/18-transformers.ipynb", "course_lib/transformers.py",
                "tests/test_transformers.py", "benchmarks/transformers.py"):
        assert (root / rel).is_file(), rel
    assert "[Transformers](lectures/18-transformers/18-transformers.py)" in (root / "README.md").read_text()


def test_fast_suite_passes_in_the_scaffolded_copy(copy):
    root, env = copy
    subprocess.run([sys.executable, "-m", "course_tools", "sync"], cwd=root, env=env, check=True, capture_output=True)
    tests = ["tests/tools/test_syllabus.py", "tests/tools/test_assignments.py", "tests/tools/test_notebook_sources.py",
             "tests/tools/test_release.py", "tests/test_transformers.py", "tests/test_architectures.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests,
                           "--nbval-lax", "lectures/18-transformers", "lectures/06-architectures"],
                          cwd=root, env={**env, "COURSE_SMOKE": "1"}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    bench = subprocess.run([sys.executable, "benchmarks/transformers.py", "--smoke"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr[-2000:]


def test_refuses_an_existing_lecture_and_bad_arguments(tmp_path):
    shutil.copy2(REPO_ROOT / "syllabus.toml", tmp_path / "syllabus.toml")
    (tmp_path / "lectures" / "03-convolutions").mkdir(parents=True)
    with pytest.raises(ScaffoldError, match="exists already"):
        scaffold(tmp_path, "03", "pooling")
    with pytest.raises(ScaffoldError, match="NN must be"):
        scaffold(tmp_path, "1a", "x")
    with pytest.raises(ScaffoldError, match="TOPIC"):
        scaffold(tmp_path, "19", "9lives")


def test_update_syllabus_inserts_in_order_and_never_writes_invalid_toml():
    text = '[[lecture]]\nnumber = "01"\nfolder = "01-a"\ntitle = "A"\ntopics = "a"\nassignment = ""\n\n' \
           '[[lecture]]\nnumber = "03"\nfolder = "03-c"\ntitle = "C"\ntopics = "c"\nassignment = ""\n'
    entry = {"number": "02", "folder": "02-b", "title": 'B "quoted"', "topics": "b", "assignment": ""}
    out = tomllib.loads(update_syllabus(text, entry, None))
    assert [lec["number"] for lec in out["lecture"]] == ["01", "02", "03"]
    assert out["lecture"][1]["title"] == 'B "quoted"'
    assert Path(REPO_ROOT / "syllabus.toml").is_file()
