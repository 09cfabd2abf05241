"""The assignments' declarations in syllabus.toml: dates, answers mapping, rules."""

from __future__ import annotations

import ast
import datetime as dt
import importlib

import pytest

from course_tools.assignments import AssignmentSpecError, load_spec, load_specs
from course_tools.grading.release import assignment_names
from course_tools.layout import LAYOUT


def _graded_names(name: str) -> set[str]:
    """Top-level functions and classes defined in the solution cells of an assignment's sources."""
    names = set()
    for src in sorted((LAYOUT.solutions / name).glob("*.py")):
        cells = src.read_text(encoding="utf-8").split("\n# %%")
        for cell in cells:
            header = cell.splitlines()[0] if cell else ""
            if '"solution": true' not in header:
                continue
            body = "\n".join(cell.splitlines()[1:])
            tree = ast.parse(body)
            names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    return names


def test_every_assignment_is_declared_with_dates():
    specs = load_specs()
    assert sorted(specs) == assignment_names(), "each solutions/ folder has one [[assignment]] in syllabus.toml"
    for spec in specs.values():
        assert spec.release and spec.due and spec.release < spec.due, spec


@pytest.mark.parametrize("name", assignment_names())
def test_answers_are_graded_cells_and_exist_in_course_lib(name):
    spec = load_spec(name)
    graded = _graded_names(name)
    assert spec.answers, f"{name} declares no answers"
    assert set(spec.answers) <= graded, f"answers not defined in a solution cell: {set(spec.answers) - graded}"
    for dotted in spec.answers.values():
        module, attr = dotted.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), attr), f"{dotted} does not exist"


def test_malformed_entries_are_refused(tmp_path):
    (tmp_path / "syllabus.toml").write_text('[[assignment]]\nname = "x"\nrelease = "soon"\n')
    with pytest.raises(AssignmentSpecError, match="TOML date"):
        load_specs(tmp_path)
    (tmp_path / "syllabus.toml").write_text('[[assignment]]\nname = "x"\n[assignment.answers]\nf = "numpy.f"\n')
    with pytest.raises(AssignmentSpecError, match="course_lib"):
        load_specs(tmp_path)
    (tmp_path / "syllabus.toml").write_text('[[assignment]]\nname = "x"\nrelease = 2027-03-01\ndue = 2027-02-01\n')
    with pytest.raises(AssignmentSpecError, match="before release"):
        load_specs(tmp_path)


def test_release_and_due_logic():
    spec = load_spec("03-convolutions")
    assert not spec.is_released(spec.release - dt.timedelta(days=1)) and spec.is_released(spec.release)
    assert not spec.is_due(spec.due) and spec.is_due(spec.due + dt.timedelta(days=1))
    assert load_spec("99-unknown").answers == {}
