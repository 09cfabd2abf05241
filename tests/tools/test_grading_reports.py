"""The grader's parts (issue 11, section 6): report objects and their renderings, the enums'
strings, and the grader prelude the kernel runs (a real function of ``wire``, not a string)."""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import asdict

import nbformat

from course_tools.grading import wire
from course_tools.grading.cells import Role, cell_role
from course_tools.grading.reports import (
    CellReport,
    CellStatus,
    NotebookReport,
    NotebookStatus,
    SubmissionReport,
    SubmissionStatus,
    grades_table,
    render_html,
    render_text,
)
from course_tools.grading.runner import prelude_code


def _report() -> dict:
    nbr = NotebookReport(
        "01-x.ipynb",
        NotebookStatus.GRADED,
        score=2.0,
        max_score=5.0,
        cells=[
            CellReport("a_tests", 2.0, 2.0, CellStatus.PASSED, "passed"),
            CellReport(
                "b_tests",
                0.0,
                3.0,
                CellStatus.FAILED,
                "rule violation",
                "b: calls F.conv2d <forbidden>",
                rules=["b: calls F.conv2d"],
            ),
            CellReport("c_manual", None, 1.0, CellStatus.MANUAL, "needs manual grading"),
        ],
        changes=["cells were reordered"],
        rules=["b: calls F.conv2d"],
        flags=[{"cell": "b", "line": 3, "kind": "tampering", "what": "uses <gc>"}],
    )
    return {
        "student": "alice",
        "assignment": "01-x",
        "status": SubmissionStatus.GRADED,
        "score": 2.0,
        "max_score": 5.0,
        "isolation": "bwrap",
        "notebooks": [asdict(nbr)],
        "input_hash": "h",
        "seconds": 1.5,
        "warnings": ["unexpected notebook y.ipynb was not graded"],
    }


def test_enums_are_the_report_strings():
    stored = json.loads(json.dumps(_report(), sort_keys=True))
    assert stored["status"] == "graded" and stored["notebooks"][0]["status"] == "graded"
    assert [c["status"] for c in stored["notebooks"][0]["cells"]] == ["passed", "failed", "manual"]
    assert {r.value for r in Role} == {"test", "answer", "manual", "locked", "plain"}
    cell = nbformat.v4.new_code_cell("x", metadata={"nbgrader": {"grade_id": "t", "grade": True, "solution": False}})
    assert cell_role(cell) == "test" and cell_role(cell) is Role.TEST


def test_one_walk_gives_text_html_and_csv_the_same_content():
    stored = json.loads(json.dumps(_report()))
    rep = SubmissionReport.from_dict(stored)
    assert rep.notebooks[0].cells[1].status is CellStatus.FAILED and rep.status is SubmissionStatus.GRADED
    text, page = render_text(stored), render_html(rep)
    assert text == render_text(rep)
    for s in (text, page):  # the same cells in the same order, the sections, the rules, the flags
        assert s.index("a_tests") < s.index("b_tests") < s.index("c_manual")
        assert "reordered" in s and "rule violation" in s and "calls F.conv2d" in s and "tampering" in s
    assert "<forbidden>" not in page and "&lt;forbidden&gt;" in page and "&lt;gc&gt;" in page  # escaped
    assert "unexpected notebook" in text and "unexpected notebook" not in page  # warnings: the instructor's
    assert "  c_manual                 manual" in text
    header, rows = grades_table([rep])
    assert header == [
        "student",
        "score",
        "max_score",
        "status",
        "01-x:a_tests",
        "01-x:b_tests",
        "01-x:c_manual",
        "reason",
    ]
    assert rows == [["alice", 2.0, 5.0, "graded", 2.0, 0.0, "", ""]]


def test_the_prelude_is_wire_grader_boot_run_on_the_wire_source():
    args = {"stage": "/s", "token": "T"}
    tree = ast.parse(prelude_code(args))
    fn, call, delete = tree.body
    assert isinstance(fn, ast.FunctionDef) and fn.name == "_grader_boot"
    assert isinstance(delete, ast.Delete) and delete.targets[0].id == "_grader_boot"
    src_arg = call.value.args[1]
    assert src_arg.value == open(wire.__file__).read() and ast.literal_eval(call.value.args[2]) == args
    # run the prelude as the kernel does, with a stand-in for the wire module's source that records
    # what bootstrap() received and the module it was built in
    src_arg.value = (
        "import sys\ndef bootstrap(ip, **kw):\n    sys.modules['_grader_probe_'] = (ip, kw, __file__, __name__)\n"
    )
    ns = {"get_ipython": lambda: "the shell"}
    exec(compile(ast.fix_missing_locations(tree), "<prelude>", "exec"), ns)
    assert sys.modules.pop("_grader_probe_") == ("the shell", args, "<grader agent>", "_grader_wire")
    assert "_grader_boot" not in ns and "_grader_wire" not in sys.modules  # nothing left behind
