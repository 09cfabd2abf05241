"""``python -m course_tools validate`` (``make validate NB=...``): nbgrader's validation with an exit status.

One run of the command line on the smallest assignment: the unmodified release fails (every graded
cell named, exit 1), the solution notebook passes, and a path that is not a notebook is reported.
"""

from __future__ import annotations

import subprocess
import sys

from course_tools.grading.validate import FailedCell, Validation
from course_tools.layout import REPO_ROOT

RELEASE = "assignments/01-neural-networks/01-neural-networks.ipynb"
SOLUTION = "solutions/01-neural-networks/01-neural-networks.ipynb"


def test_validate_fails_the_release_passes_the_solution_and_exits_1():
    from course_tools.grading.release import sync_solutions

    sync_solutions("01-neural-networks")  # the solution's .ipynb twin is generated (git-ignored)
    proc = subprocess.run([sys.executable, "-m", "course_tools", "validate", RELEASE, SOLUTION, "missing.ipynb"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    release, solution, missing = (next(line for line in out.splitlines() if p in line) for p in
                                  (RELEASE, SOLUTION, "missing.ipynb"))
    assert release.startswith("FAILED") and "5 of 5 graded test cell(s) fail" in release, out
    assert "- sigmoid_tests (2 pt): NotImplementedError: an answer it uses is not written yet" in out, out
    assert "\x1b[" not in out, "ANSI colour codes leaked into the summary"
    assert solution.startswith("PASSED") and "all 5 graded test cell(s) pass" in solution, out
    assert missing.startswith("FAILED") and "no such notebook" in missing
    assert out.rstrip().endswith("1 of 3 notebook(s) pass")


def test_summary_of_edited_locked_cells_and_rule_violations():
    edited = Validation(REPO_ROOT / "a.ipynb", graded=3, changed=["assert relu(0) == 0"])
    assert not edited.ok and "read-only cell(s) were edited" in edited.summary()
    broken = Validation(REPO_ROOT / "a.ipynb", graded=3, rule_violations=["conv2d calls torch.nn.functional.conv2d"],
                        rules_checked=True)
    assert not broken.ok and broken.summary().startswith("FAILED") and "rule: conv2d calls" in broken.summary()
    failing = Validation(REPO_ROOT / "a.ipynb", graded=3, failed=[FailedCell("relu_tests", 2, "AssertionError: x")])
    assert "1 of 3 graded test cell(s) fail (2 point(s))" in failing.summary()
