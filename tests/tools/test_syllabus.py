"""syllabus.toml finds things by name: each lecture's modules, tests and benchmarks exist and cover the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_tools import syllabus
from course_tools.layout import REPO_ROOT

#: test files of course_tools (tests/tools/) map to the tooling, not to a course_lib module
TOOLS_TESTS = REPO_ROOT / "tests" / "tools"


def _claims():
    lectures = syllabus.load()
    shared = syllabus.shared()
    modules = [m for lec in lectures for m in lec.modules] + list(shared.modules)
    tests = [t for lec in lectures for t in lec.tests] + list(shared.tests)
    benchmarks = [b for lec in lectures for b in lec.benchmarks] + list(shared.benchmarks)
    return modules, tests, benchmarks


def test_every_listed_file_exists():
    modules, tests, benchmarks = _claims()
    missing = [p for p in modules + tests + benchmarks if not (REPO_ROOT / p).is_file()]
    assert not missing, f"syllabus.toml lists files that do not exist: {missing}"


def _topic_modules() -> list[str]:
    """course_lib's modules: top-level files and packages (a package counts through its __init__.py)."""
    lib = REPO_ROOT / "course_lib"
    out = [str(p.relative_to(REPO_ROOT)) for p in lib.glob("*.py") if p.name != "__init__.py"]
    out += [str((p / "__init__.py").relative_to(REPO_ROOT)) for p in lib.iterdir() if (p / "__init__.py").is_file()]
    return sorted(out)


def test_every_course_lib_module_is_claimed_by_a_lecture_or_shared():
    modules, _, _ = _claims()
    unclaimed = [m for m in _topic_modules() if m not in modules]
    assert not unclaimed, f"course_lib modules no lecture of syllabus.toml lists (add them to `modules`): {unclaimed}"


def test_every_test_file_maps_to_a_module_or_a_tool():
    _, tests, _ = _claims()
    library_tests = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").glob("test_*.py"))
    unmapped = [t for t in library_tests if t not in tests]
    assert not unmapped, f"tests/ files no lecture lists (course_tools tests belong in tests/tools/): {unmapped}"
    assert all(Path(t).parent.name == "tests" for t in tests), "library tests live in tests/, tool tests in tests/tools/"
    assert list(TOOLS_TESTS.glob("test_*.py")), "tests/tools/ holds the tooling's tests"


def test_every_benchmark_script_is_claimed():
    _, _, benchmarks = _claims()
    scripts = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "benchmarks").glob("*.py"))
    assert [s for s in scripts if s not in benchmarks] == []


def test_malformed_lists_are_rejected(tmp_path):
    (tmp_path / "syllabus.toml").write_text(
        '[[lecture]]\nnumber = "01"\nfolder = "01-x"\ntitle = "X"\ntopics = "x"\nassignment = ""\nmodules = "course_lib/x.py"\n'
    )
    with pytest.raises(ValueError, match="modules must be a list"):
        syllabus.load(tmp_path)


def test_readme_table_links_the_library_modules():
    table = syllabus.table()
    assert "| library |" in table.splitlines()[0]
    assert "[`course_lib.conv`](course_lib/conv.py)" in table
