"""Hostile folders and names at collect time (issue 11, section 4): only regular files are copied,
within the size cap; links, devices and folders named like notebooks are refused with a reason;
odd student ids are normalised or refused; an empty folder becomes a "no submission"; one
student's problem never stops the others. Also the grader's own checks of what it is given:
deep or huge JSON and folders named like notebooks are "not graded" with a reason."""

from __future__ import annotations

import copy
import json
import os
import time

import nbformat
import pytest

from course_tools.grading import autograde as ag
from course_tools.grading import submission
from course_tools.grading.config import KERNEL_START_ATTEMPTS, MAX_NOTEBOOK_BYTES, MAX_SUBMISSION_BYTES
from course_tools.grading.kernel import KernelStartError
from course_tools.grading.nbgrader_cli import collect, normalise_student_id
from course_tools.grading.reports import NotebookReport, NotebookStatus
from course_tools.grading.runner import NotebookRunner
from course_tools.layout import REPO_ROOT

NAME = "03-convolutions"
NB = f"{NAME}.ipynb"


def _nb() -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


@pytest.fixture()
def inbox(tmp_path):
    src = tmp_path / "inbox"
    secret = tmp_path / "solutions.py"
    secret.write_text("SECRET = 'the solution'\n")
    (src / "alice").mkdir(parents=True)
    (src / "alice" / NB).write_text(_nb())
    (src / "alice" / "data.csv").write_text("1,2\n")
    (src / "alice" / "link.py").symlink_to(secret)  # a link into solutions/
    (src / "alice" / "linked-dir").symlink_to(tmp_path)
    (src / "bob" / NB).mkdir(parents=True)  # a folder named like the notebook
    (src / "bob" / "notes.txt").write_text("hi")
    (src / "carol").mkdir()
    (src / "carol" / NB).symlink_to(tmp_path / "missing.ipynb")  # dangling
    (src / "dave\nx").mkdir()
    (src / "dave\nx" / NB).write_text(_nb())
    (src / "Zoë Ünïcode").mkdir()
    (src / "Zoë Ünïcode" / NB).write_text(_nb())
    (src / "...").mkdir()
    (src / "..." / NB).write_text(_nb())
    (src / "erin").mkdir()  # empty: "no submission"
    (src / "frank").mkdir()
    (src / "frank" / NB).symlink_to("/dev/zero")
    (src / "gina" / NAME).mkdir(parents=True)
    (src / "gina" / NAME / NB).write_text(_nb())
    with open(src / "gina" / NAME / "huge.bin", "wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_SUBMISSION_BYTES + 1)
    (src / "mallory").symlink_to(tmp_path)  # a student folder that is a link
    (src / "loose.ipynb").write_text(_nb())
    return src


def test_collect_copies_regular_files_only_and_reports_the_rest(inbox, tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    res = collect(NAME, inbox, root)
    sub = root / "grading" / "submitted"
    copied = sorted(p.relative_to(sub).as_posix() for p in res.copied)
    assert copied == [f"Zoe_Unicode/{NAME}/{NB}", f"alice/{NAME}/{NB}", f"alice/{NAME}/data.csv",
                      f"bob/{NAME}/notes.txt", f"dave_x/{NAME}/{NB}", f"gina/{NAME}/{NB}"]
    refused = dict(res.refused)
    assert "a link" in refused["alice/link.py"] and "a link" in refused["alice/linked-dir"]
    assert "named like a notebook" in refused[f"bob/{NB}"]
    assert "a link" in refused[f"carol/{NB}"] and "a link" in refused[f"frank/{NB}"]
    assert "MB" in refused[f"gina/{NAME}/huge.bin"]
    assert "no usable student id" in refused["'...'"]
    assert "not a student folder" in refused["mallory"] and "not a student folder" in refused["loose.ipynb"]
    assert ("dave\nx", "dave_x") in res.renamed and ("Zoë Ünïcode", "Zoe_Unicode") in res.renamed
    assert set(res.empty) == {"bob", "carol", "erin", "frank"}
    assert (sub / "erin" / NAME).is_dir() and not any((sub / "erin" / NAME).iterdir())
    assert not any(p.is_symlink() for p in sub.rglob("*"))
    text = res.describe()
    assert "refused alice/link.py" in text and "no notebook submitted" in text
    again = collect(NAME, inbox, root)  # nothing newer: nothing copied again
    assert again.copied == []


def test_student_ids():
    assert normalise_student_id("a\nb") == "a_b" and normalise_student_id("../../etc") == "etc"
    assert normalise_student_id("summary") == "summary"  # allowed: the run's files start with "_"
    assert normalise_student_id("grades") is None and normalise_student_id("\n") is None
    assert ag.valid_student_id("alice.b@uni-x") and not ag.valid_student_id("a\nb") and not ag.valid_student_id("_x")


def test_deep_huge_and_odd_notebooks_are_not_graded_with_a_reason(tmp_path):
    deep = tmp_path / "deep.ipynb"
    deep.write_text('{"cells": [' + "[" * 100_000 + "]" * 100_000 + '], "nbformat": 4}')
    _, problem = submission.load_student_notebook(deep)
    assert problem.reason == "invalid-json" and "nested more than" in problem.message
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    assert submission.load_student_notebook(folder)[1].reason == "not-a-file"
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as fh:
        fh.truncate(MAX_NOTEBOOK_BYTES + 1)
    assert submission.load_student_notebook(big)[1].reason == "too-large"
    ok = tmp_path / "ok.ipynb"
    ok.write_text(json.dumps(nbformat.v4.new_notebook()))
    assert submission.load_student_notebook(ok)[1] is None


def test_whole_submission_is_hashed_past_the_size_cap(tmp_path):
    """A change after the first 50 MB still changes the hash (a resubmission is never graded from cache)."""
    sub = tmp_path / "s"
    sub.mkdir()
    big = sub / "weights.bin"
    with open(big, "wb") as fh:
        fh.truncate(MAX_SUBMISSION_BYTES + 10)
    h1, _ = submission.hash_dir(sub)
    with open(big, "r+b") as fh:
        fh.seek(MAX_SUBMISSION_BYTES + 5)
        fh.write(b"x")
    assert submission.hash_dir(sub)[0] != h1
    os.utime(big)


def test_repo_root_is_not_touched():
    assert not (REPO_ROOT / "grading" / "submitted" / "dave_x").exists()


class _FakeSession:
    def __init__(self):
        self.up = False
        self.shutdowns = 0
        self.peak_rss = 0

    def alive(self):
        return self.up

    def shutdown(self):
        self.shutdowns += 1
        self.up = False


def _runner(fail_times: int):
    """A NotebookRunner whose kernel start fails ``fail_times`` times (no real kernel)."""
    import types

    r = object.__new__(NotebookRunner)
    r.session, r.channel = _FakeSession(), None
    r.report = NotebookReport("x.ipynb", NotebookStatus.GRADED)
    r.nb = nbformat.v4.new_notebook()
    r.reported, r.deadline = set(), 1e18
    r.evaluator = types.SimpleNamespace(events=[])
    calls = {"n": 0, "ran": False}

    def start():
        calls["n"] += 1
        if calls["n"] <= fail_times:
            raise KernelStartError(f"no kernel (try {calls['n']})")
        r.session.up = True
        r.channel = types.SimpleNamespace(sock=object(), requests=0, cache_hits=0, close=lambda: None)

    r.start_kernel = start
    r._run_cells = lambda: calls.__setitem__("ran", True)
    r._check_rule_wrappers = lambda: None
    return r, calls


def test_kernel_start_failures_are_retried(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    r, calls = _runner(fail_times=2)
    r.run()
    assert calls == {"n": 3, "ran": True} and not r.start_failed
    assert sum("retrying" in e for e in r.report.events) == 2
    r, calls = _runner(fail_times=99)
    r.run()
    assert calls["n"] == KERNEL_START_ATTEMPTS and not calls["ran"] and r.start_failed
    assert r.report.status == "not-graded" and r.report.reason.startswith("kernel start failed: no kernel")


@pytest.mark.parametrize("name", ["01-neural-networks", "02-backpropagation", "03-convolutions",
                                  "04-optimization-regularization"])
def test_an_untouched_release_is_not_reported_as_edited(name):
    """The release lacks the hidden tests: that is not an edit of the test cells."""
    from course_tools.notebooks.convert import read_source

    src = read_source(REPO_ROOT / "solutions" / name / f"{name}.py", strip_jupytext=True)
    release = nbformat.read(REPO_ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)
    assert submission.assemble(src, release)[1] == []
    edited = copy.deepcopy(release)
    test = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade") and not
                c.metadata["nbgrader"].get("solution"))
    test.source = "pass"
    assert any("was edited" in ch for ch in submission.assemble(src, edited)[1])
