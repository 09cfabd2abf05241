"""Direct tests of the grader's static scan (course_tools.grading.scan) and grades.csv writer
(course_tools.grading.gradebook); the hostile and round-trip suites exercise both end to end."""

from __future__ import annotations

import csv

import pytest

from course_tools.grading.gradebook import write_grades_csv
from course_tools.grading.scan import names_defined, names_used, scan_student_code


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import ctypes\n", "imports ctypes"),
        ("import gc\ngc.get_objects()\n", "imports gc"),
        ("import sys\nsys.settrace(None)\n", "uses sys.settrace"),
        ("getattr(__import__('sys'), 'set' + 'trace')(None)\n", "calls __import__()"),
        ("import numpy as np\nnp.isclose = lambda *a, **k: True\n", "modifies module attribute numpy.isclose"),
    ],
)
def test_scan_flags_tampering(code, expected):
    flags = scan_student_code([("answer", code)], {"np": "numpy"})
    assert [(f.cell, f.kind, f.what) for f in flags] == [("answer", "tampering", expected)]
    assert flags[0].line >= 1


def test_scan_leaves_honest_code_alone():
    code = "import numpy as np\n\ndef relu(x):\n    return np.maximum(x, 0)\n\nclass Net:\n    pass\n"
    assert scan_student_code([("answer", code)], {"np": "numpy"}) == []
    assert names_defined(code) == ["np", "relu", "Net"]  # every top-level binding, imports included
    assert names_used("y = f(x) + g") == {"f", "x", "g"}


def _report(student, points, status="graded", reason=""):
    cells = [
        {"grade_id": gid, "points": p, "max_points": 1.0, "status": "passed" if p else "failed"}
        for gid, p in zip(["t1", "t2"], points)
    ]
    return {
        "student": student,
        "assignment": "a",
        "status": status,
        "score": sum(p or 0 for p in points),
        "max_score": 2.0,
        "notebooks": [
            {
                "notebook": "a.ipynb",
                "status": status if status != "grader-error" else "not-graded",
                "reason": reason,
                "cells": cells,
            }
        ],
    }


def test_grades_csv_rows_sorted_with_a_column_per_cell(tmp_path):
    path = write_grades_csv(
        [
            _report("zoe", [1.0, 0.0]),
            _report("amy", [1.0, 1.0]),
            _report("bob", [None, None], "grader-error", "kernel died"),
        ],
        tmp_path / "grades.csv",
    )
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["student", "score", "max_score", "status", "a:t1", "a:t2", "reason"]
    assert [r[0] for r in rows[1:]] == ["amy", "bob", "zoe"]
    assert rows[1][1:6] == ["2.0", "2.0", "graded", "1.0", "1.0"]
    assert rows[2][3:] == ["grader-error", "", "", "kernel died"]  # no points, but a row with its reason
    assert rows[3][4:6] == ["1.0", "0.0"]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
