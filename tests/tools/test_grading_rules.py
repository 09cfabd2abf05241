"""The assignment's rules (issue 11, section 2): what an answer may not use is found and costs the
affected test cells their points.

Static check (:mod:`course_tools.grading.rules`) on code snippets and on every assignment's
solution and release (none may break its own rules); then one autograde run of assignment 03
(``--jobs 2``) with the solution, an answer calling ``F.conv2d``, one importing
``course_lib.conv``, one reaching ``torch.nn.functional`` by a name the static check cannot
read (the dynamic check's case), and the ``F.conv2d`` answer again with an instructor override.
"""

from __future__ import annotations

import copy
import json
import shutil

import nbformat
import pytest

from course_tools.assignments import AssignmentSpec, load_spec, load_specs
from course_tools.grading import autograde as ag
from course_tools.grading import rules
from course_tools.grading import sandbox as sb
from course_tools.grading.release import generate
from course_tools.layout import REPO_ROOT, SOLUTIONS

F03 = ("torch.nn.functional", "torch.nn.Conv2d", "torch.Tensor.unfold", "torch.autograd", "course_lib.conv")
SETUP = ("setup", "import numpy as np\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n", False)

CASES = {  # student cell -> the forbidden name found (None: allowed)
    "def conv(x, w):\n    return F.conv2d(x, w)\n": "torch.nn.functional.conv2d",
    "g = F\ndef conv(x, w):\n    return g.conv2d(x, w)\n": "torch.nn.functional",
    "def conv(x, w):\n    return torch.nn.functional.conv2d(x, w)\n": "torch.nn.functional.conv2d",
    "def conv(x):\n    return nn.functional.pad(x, (1, 1))\n": "torch.nn.functional.pad",
    "def conv(x, w):\n    return getattr(torch.nn, 'func' + 'tional').conv2d(x, w)\n": "torch.nn.functional.conv2d",
    "def conv(x, n):\n    return getattr(torch.nn, n)(x)\n": "torch.nn",
    "import course_lib.conv as cc\n": "course_lib.conv",
    "from course_lib.conv import conv2d_naive\n": "course_lib.conv",
    "from course_lib import conv\n": "course_lib.conv",
    "from torch.nn.functional import *\n": "torch.nn.functional",
    "m = __import__('course_lib.conv', fromlist=['x'])\n": "course_lib.conv",
    "import importlib\nm = importlib.import_module('torch.nn.' + 'functional')\n": "torch.nn.functional",
    "def conv(x):\n    return x.unfold(2, 3, 1)\n": "<object>.unfold",
    "layer = nn.Conv2d(1, 1, 3)\n": "torch.nn.Conv2d",
    "def g(x):\n    return torch.autograd.grad(x.sum(), x)\n": "torch.autograd.grad",
    # allowed: other torch and numpy, the names of forbidden things as strings or locals
    "def conv(x, w):\n    return np.pad(x, 1) @ w + torch.zeros(1).numpy()\n": None,
    "def conv(x):\n    return nn.ReLU()(x)\n": None,
    "def conv(x):\n    '''not F.conv2d'''\n    conv2d = 'F.conv2d'\n    return torch.einsum('ij->i', x)\n": None,
}


@pytest.mark.parametrize("code", list(CASES), ids=[f"case{i}" for i in range(len(CASES))])
def test_static_check_finds_forbidden_uses(code):
    found = rules.check_cells([SETUP, ("answer", code, True)], F03)
    want = CASES[code]
    if want is None:
        assert found == [], [str(v) for v in found]
    else:
        assert want in [v.name for v in found], [str(v) for v in found]
        assert all(v.cell == "answer" for v in found)  # the setup cell's own import is the instructor's
        assert "forbidden by the assignment's rules" in str(found[0])


def test_no_assignment_breaks_its_own_rules():
    """Every solution and release passes the static check (cells equal to the source's instructor
    cells are exempt, e.g. a demo cell that compares with course_lib.conv)."""
    specs = load_specs()
    checked = 0
    for name, spec in specs.items():
        for src in sorted((REPO_ROOT / SOLUTIONS / name).glob("*.py")):
            from course_tools.notebooks.convert import read_source

            nb = read_source(src, strip_jupytext=True)
            assert rules.check_cells(rules.notebook_cells(nb, nb), spec.forbidden) == [], f"{name} solution"
            release = REPO_ROOT / "assignments" / name / f"{src.stem}.ipynb"
            if release.exists():
                assert [str(v) for v in rules.check_rules(release, spec)] == [], f"{name} release"
            checked += 1
    assert checked >= 4


def test_affected_tests_follow_the_answers_that_use_a_violating_one():
    student = [("pad", "def pad2d(x):\n    return F.pad(x, (1, 1))\n"),
               ("conv", "def conv2d(x, w):\n    return pad2d(x) @ w\n"),
               ("pool", "def pool(x):\n    return x.max()\n")]
    tests = {"pad_tests": "assert pad2d(1) == F.pad(1)", "conv_tests": "assert conv2d(1, 2)",
             "pool_tests": "assert pool(F.relu(1))"}
    got = rules.affected_tests(tests, student, {"pad"}, judge_names={"F", "np"}, answer_names={"pad2d", "conv2d"})
    assert got == {"pad_tests": {"pad"}, "conv_tests": {"pad"}}


def test_overrides_file(tmp_path):
    p = tmp_path / "rule-overrides.toml"
    p.write_text('[[override]]\nassignment = "03-convolutions"\nstudent = "alice"\ncells = ["conv2d_tests"]\n'
                 'reason = "F.pad allowed"\n\n[[override]]\nassignment = "03-convolutions"\nstudent = "bob"\n'
                 'reason = "all cells"\n')
    alice = rules.load_overrides(p, "03-convolutions", "alice")
    assert rules.override_for(alice, "conv2d_tests") == "F.pad allowed" and rules.override_for(alice, "x") is None
    assert rules.override_for(rules.load_overrides(p, "03-convolutions", "bob"), "anything") == "all cells"
    assert rules.load_overrides(p, "01-neural-networks", "alice") == []
    p.write_text('[[override]]\nstudent = "alice"\n')
    with pytest.raises(ValueError, match="needs string `assignment`"):
        rules.load_overrides(p, "03-convolutions", "alice")


def test_validate_hook_reports_violations(tmp_path):
    from course_tools.grading.validate import _check_rules

    nb = nbformat.read(REPO_ROOT / "assignments" / "03-convolutions" / "03-convolutions.ipynb", as_version=4)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "conv2d_naive":
            c.source = "def conv2d_naive(x, w, b=None, stride=1, padding=0, dilation=1):\n    return F.conv2d(x, w, b)\n"
    path = tmp_path / "03-convolutions" / "03-convolutions.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    found = _check_rules(path, "03-convolutions", REPO_ROOT)
    assert found and "torch.nn.functional.conv2d" in found[0] and "conv2d_naive" in found[0]


# ------------------------------------------------------------------------------------------
# end to end: assignment 03 graded with its rules

NAME = "03-convolutions"
NB = f"{NAME}.ipynb"
_CHECKS = ("    if x.shape[1] != w.shape[1]:\n"
           "        raise ValueError(f'x has {x.shape[1]} channels but w expects {w.shape[1]}')\n"
           "    kh, kw = dilation * (w.shape[2] - 1) + 1, dilation * (w.shape[3] - 1) + 1\n"
           "    if kh > x.shape[2] + 2 * padding or kw > x.shape[3] + 2 * padding:\n"
           "        raise ValueError('the dilated kernel does not fit the padded input')\n")
FCONV = ("def conv2d_naive(x, w, b=None, stride=1, padding=0, dilation=1):\n" + _CHECKS +
         "    return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)\n")
IMPORTED = "from course_lib.conv import max_pool2d, max_pool2d_backward\n"
HIDDEN_NAME = ("import importlib\n_f = importlib.import_module(''.join(reversed('lanoitcnuf.nn.hcrot')))\n\n\n"
               "def conv2d_naive(x, w, b=None, stride=1, padding=0, dilation=1):\n" + _CHECKS +
               "    return _f.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)\n")
CFG = ag.GradeConfig(cell_timeout=60, notebook_timeout=300, smoke=True, limits=sb.Limits(address_space=3 * 2**30))
try:
    NO_SANDBOX = sb.detect(limits=CFG.limits) is None
except sb.SandboxError:  # graded with --no-sandbox
    NO_SANDBOX = True


def _with(sol, gid, code):
    nb = copy.deepcopy(sol)
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid]
    cell.source = code
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("rules") / "course"
    (course / SOLUTIONS).mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    shutil.copytree(REPO_ROOT / SOLUTIONS / NAME, course / SOLUTIONS / NAME,
                    ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    generate(NAME, course)
    sol = nbformat.read(course / SOLUTIONS / NAME / NB, as_version=4)
    subs = {"solution": sol, "uses-fconv": _with(sol, "conv2d_naive", FCONV),
            "imports-course-lib": _with(sol, "max_pool", IMPORTED),
            "hidden-name": _with(sol, "conv2d_naive", HIDDEN_NAME), "overridden": _with(sol, "conv2d_naive", FCONV)}
    for student, nb in subs.items():
        folder = course / "grading" / "submitted" / student / NAME
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / NB)
    (course / "grading" / "rule-overrides.toml").write_text(
        f'[[override]]\nassignment = "{NAME}"\nstudent = "overridden"\ncells = ["conv2d_tests"]\n'
        'reason = "F.conv2d allowed for this student (test of the override)"\n')
    summary = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=NO_SANDBOX, feedback=False, export=False,
                           log=lambda m: None)
    reports = {p.stem: json.loads(p.read_text()) for p in (course / "grading" / "reports" / NAME).glob("*.json")}
    return summary, reports, course


def _cells(reports, student):
    [nbr] = reports[student]["notebooks"]
    return {c["grade_id"]: c for c in nbr["cells"]}


def test_solution_scores_full_marks_under_the_rules(graded):
    summary, reports, _ = graded
    assert not summary.failed
    cells = _cells(reports, "solution")
    assert all(c["points"] == c["max_points"] for c in cells.values()), cells
    assert reports["solution"]["notebooks"][0]["rules"] == []


@pytest.mark.parametrize("student,lost,found", [
    ("uses-fconv", {"conv2d_tests"}, "torch.nn.functional.conv2d"),
    ("imports-course-lib", {"max_pool_forward_tests", "max_pool_backward_tests"}, "course_lib.conv"),
    ("hidden-name", {"conv2d_tests"}, "called torch.nn.functional.conv2d"),
])
def test_forbidden_use_costs_exactly_the_affected_cells(graded, student, lost, found):
    _, reports, _ = graded
    cells = _cells(reports, student)
    for gid, c in cells.items():
        if gid in lost:
            assert c["points"] == 0 and c["reason"] == "rule violation", c
            assert "the tests themselves passed" in c["message"], c  # the answer itself was right
        else:
            assert c["points"] == c["max_points"], c
    text = ag.render_text(reports[student])
    assert found in text and "the assignment's rules" in text


def test_dynamic_check_records_entered_forbidden_functions(graded):
    _, reports, _ = graded
    msg = _cells(reports, "imports-course-lib")["max_pool_forward_tests"]["message"]
    assert "imports course_lib.conv" in msg and "called course_lib.conv.max_pool2d" in msg  # static and dynamic
    hidden = reports["hidden-name"]["notebooks"][0]["rules"]
    assert hidden and all("called torch.nn.functional" in r for r in hidden), hidden  # only the dynamic check saw it


def test_instructor_override_keeps_the_points_and_says_why(graded):
    _, reports, _ = graded
    c = _cells(reports, "overridden")["conv2d_tests"]
    assert c["points"] == c["max_points"] and c["override"].startswith("F.conv2d allowed")
    assert c["rules"] and "torch.nn.functional.conv2d" in c["rules"][0]
    assert "allowed by the instructor" in ag.render_text(reports["overridden"])


def test_the_students_feedback_says_which_rule_cost_which_cell(graded):
    """The feedback HTML (made from the redacted notebooks) names the cell that scored 0 and the rule
    its answers broke, and still shows no hidden test."""
    from course_tools.grading.leaks import html_text, secret_lines

    _, _, course = graded
    ag.generate_feedback(NAME, course)
    sol = nbformat.read(course / SOLUTIONS / NAME / NB, as_version=4)
    hidden = [ln for ln, kind in secret_lines(sol).items() if kind == "hidden test"]
    assert hidden
    pages = {s: html_text(course / "grading" / "feedback" / s / NAME / f"{NAME}.html")
             for s in ("uses-fconv", "hidden-name", "solution", "overridden")}
    for student, found in (("uses-fconv", "torch.nn.functional.conv2d"),
                           ("hidden-name", "called torch.nn.functional.conv2d")):
        text = pages[student]
        assert f"{ag.RULE_NOTE} of " in text and found in text, text[-3000:]
        assert " times;" not in text  # how often the (partly hidden) tests called it stays out
        lines = {ln.strip() for ln in text.splitlines()}
        assert not [ln for ln in hidden if ln in lines], f"feedback of {student} shows hidden tests"
    assert ag.RULE_NOTE not in pages["solution"] and ag.RULE_NOTE not in pages["overridden"]
    graded_nb = nbformat.read(course / "grading" / "redacted" / "uses-fconv" / NAME / NB, as_version=4)
    notes = [c.metadata["nbgrader"]["grade_id"] for c in graded_nb.cells
             if any(ag.RULE_NOTE in o.get("text", "") for o in c.get("outputs", []))]
    assert notes == ["conv2d_tests"]  # the cell that lost its points, and only it


def test_rules_come_from_the_syllabus():
    spec = load_spec(NAME)
    got = ag.assignment_rules(NAME, REPO_ROOT)
    assert set(spec.forbidden) <= set(got) and set(spec.answers.values()) <= set(got)
    assert isinstance(spec, AssignmentSpec) and ag.assignment_rules("99-not-declared", REPO_ROOT) == ()


def test_changing_an_override_regrades_only_that_student(graded):
    _, _, course = graded
    p = course / "grading" / "rule-overrides.toml"
    p.write_text(p.read_text().replace("test of the override", "changed"))
    again = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=NO_SANDBOX, feedback=False,
                         export=False, log=lambda m: None, students=["overridden", "solution"])
    assert again.graded == ["overridden"] and again.cached == ["solution"]
