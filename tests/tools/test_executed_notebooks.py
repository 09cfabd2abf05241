"""The executed lectures (build/executed, written by make test's nbval run or the executor) read well.

Run after the notebooks are executed (the Makefile runs this file with test_site.py, after nbval):
no figure problem printed by course_lib.notebook.show, every figure captioned, no error, and the
claims are there (counted; in full mode a false claim has already failed the run).
"""

from __future__ import annotations

import json

import pytest

from course_tools import syllabus
from course_tools.layout import LAYOUT, LECTURES
from course_tools.notebooks.conventions import claim_counts, executed_problems

LECTURES_WRITTEN = [lec for lec in syllabus.load() if lec.available()]


def _executed(lec):
    path = LAYOUT.executed / LECTURES / lec.folder / f"{lec.folder}.ipynb"
    if not path.exists():
        pytest.fail(f"{path} does not exist: execute the lectures first (make test does; or "
                    f"python -m course_tools execute lectures/{lec.folder}/{lec.folder}.py)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("lec", LECTURES_WRITTEN, ids=lambda lec: lec.folder)
def test_executed_lecture_has_readable_captioned_figures_and_its_claims(lec):
    nb = _executed(lec)
    problems = executed_problems(nb)
    assert not problems, f"lectures/{lec.folder} as executed:\n  " + "\n  ".join(problems)
    counts = claim_counts(nb)
    assert counts["checked"] + counts["unchecked"] > 0, f"lectures/{lec.folder} printed no claim"
