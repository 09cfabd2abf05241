"""Grading on a Dask cluster gives the local pool's grades (issue 11, section 5).

The same submissions of assignment 01 (the solution, a known-wrong answer, a notebook that is a
symlink into ``solutions/`` beside a regular file, and an empty folder) are graded twice, in two
copies of a temporary course: by the local pool (``--jobs 2``) and on a
``distributed.LocalCluster`` of two worker processes. Reports, ``grades.csv`` and the gradebook
must agree; a second cluster run grades nothing (resumable), and only the client wrote files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import autograde as ag
from course_tools.grading import sandbox as sb
from course_tools.grading import scheduler
from course_tools.grading.release import generate
from course_tools.layout import REPO_ROOT

NAME = "01-neural-networks"
NB = f"{NAME}.ipynb"
CFG = ag.GradeConfig(cell_timeout=60, notebook_timeout=300, smoke=True, limits=sb.Limits(address_space=3 * 2**30))
try:
    NO_SANDBOX = sb.detect(limits=CFG.limits) is None
except sb.SandboxError:  # graded with --no-sandbox
    NO_SANDBOX = True


def _course(tmp: Path) -> Path:
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
    shutil.copytree(
        REPO_ROOT / "solutions" / NAME,
        course / "solutions" / NAME,
        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"),
    )
    return course


def _submit(course: Path, sol) -> None:
    wrong = nbformat.from_dict(json.loads(json.dumps(sol)))
    [cell] = [c for c in wrong.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid"]
    cell.source = cell.source.replace("return s * (1.0 - s)", "return s")
    sub = course / "grading" / "submitted"
    for student, nb in {"solution": sol, "wrong-sigmoid": wrong}.items():
        (sub / student / NAME).mkdir(parents=True)
        nbformat.write(nb, sub / student / NAME / NB)
    (sub / "linked" / NAME).mkdir(parents=True)
    os.symlink(course / "solutions" / NAME / NB, sub / "linked" / NAME / NB)
    (sub / "linked" / NAME / "notes.txt").write_text("the notebook is a link")
    (sub / "empty" / NAME).mkdir(parents=True)


def _grades(course: Path):
    reports = {}
    for p in sorted((course / "grading" / "reports" / NAME).glob("*.json")):
        r = json.loads(p.read_text())
        reports[p.stem] = (
            r["score"],
            r["max_score"],
            r["status"],
            r["isolation"],
            [
                (
                    n["notebook"],
                    n["status"],
                    n["reason"],
                    n["changes"],
                    n["rules"],
                    [(c["grade_id"], c["points"], c["status"], c["reason"], c["message"]) for c in n["cells"]],
                )
                for n in r["notebooks"]
            ],
        )
    con = sqlite3.connect(course / "grading" / "gradebook.db")
    try:
        gradebook = sorted(
            con.execute(
                "select s.student_id, bc.name, g.auto_score from grade g join submitted_notebook sn on g.notebook_id = sn.id "
                "join submitted_assignment s on sn.assignment_id = s.id join base_cell bc on g.cell_id = bc.id"
            ).fetchall()
        )
    finally:
        con.close()
    csv = (course / "grading" / "reports" / NAME / "grades.csv").read_text()
    return reports, gradebook, csv


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    distributed = pytest.importorskip("distributed")
    local, dask = _course(tmp_path_factory.mktemp("pool")), _course(tmp_path_factory.mktemp("dask"))
    for course in (local, dask):
        generate(NAME, course)
        _submit(course, nbformat.read(course / "solutions" / NAME / NB, as_version=4))
    kw = dict(config=CFG, no_sandbox=NO_SANDBOX, feedback=False, export=False, log=lambda m: None)
    pooled = ag.autograde(NAME, local, jobs=2, **kw)
    lines: list[str] = []
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        on_dask = ag.autograde(NAME, dask, cluster=cluster.scheduler_address, **{**kw, "log": lines.append})
        again = ag.autograde(NAME, dask, cluster=cluster.scheduler_address, **kw)
    return {"local": local, "dask": dask, "pooled": pooled, "on_dask": on_dask, "again": again, "log": lines}


def test_the_cluster_gives_the_local_pools_grades(both):
    assert not both["pooled"].failed and not both["on_dask"].failed, "\n".join(both["log"])
    students = ["empty", "linked", "solution", "wrong-sigmoid"]
    assert sorted(both["pooled"].graded) == sorted(both["on_dask"].graded) == students
    local, dask = _grades(both["local"]), _grades(both["dask"])
    assert local[0] == dask[0]  # every report: scores, statuses, reasons, per-cell messages
    assert local[1] == dask[1] and local[2] == dask[2]  # the gradebook and grades.csv
    reports = local[0]
    assert reports["solution"][0] == reports["solution"][1] > 0
    assert 0 < reports["wrong-sigmoid"][0] < reports["solution"][0]
    assert "not-a-file" in reports["linked"][4][0][2] and "no-submission" in reports["empty"][4][0][2]
    assert any("Dask cluster tcp://" in line for line in both["log"]), both["log"]


def test_the_client_writes_the_graded_notebooks_and_a_rerun_grades_nothing(both):
    again = both["again"]
    assert again.graded == [] and sorted(again.cached) == sorted(both["on_dask"].graded)
    for course in (both["local"], both["dask"]):
        graded = nbformat.read(course / "grading" / "autograded" / "solution" / NAME / NB, as_version=4)
        redacted = nbformat.read(course / "grading" / "redacted" / "solution" / NAME / NB, as_version=4)
        assert any(c.get("execution_count") for c in graded.cells) and len(redacted.cells) == len(graded.cells)
    assert not list((both["dask"] / "grading" / ".work" / NAME).glob("out")), "cluster workers wrote into the course"


def test_pack_and_unpack_keep_names_kinds_and_sizes(tmp_path):
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "a.ipynb").write_bytes(b"{}" * 10)
    (src / "data" / "big.bin").write_bytes(b"x" * 300)
    (src / "link.ipynb").symlink_to("/etc/passwd")
    (src / "dangling.ipynb").symlink_to("/nonexistent/x")
    (src / "folder.ipynb").mkdir()
    entries = scheduler.pack_folder(src, full=["a.ipynb"], budget=100)
    kinds = {rel: kind for rel, kind, _ in entries}
    assert kinds == {
        "a.ipynb": "file",
        "dangling.ipynb": "link",
        "data": "dir",
        "data/big.bin": "sparse",
        "folder.ipynb": "dir",
        "link.ipynb": "link",
    }
    out = scheduler.unpack_folder(entries, tmp_path / "out")
    assert (out / "a.ipynb").read_bytes() == b"{}" * 10 and (out / "data" / "big.bin").stat().st_size == 300
    assert (out / "link.ipynb").is_symlink() and (out / "link.ipynb").resolve() == out  # never to its target
    assert (out / "dangling.ipynb").is_symlink() and not (out / "dangling.ipynb").exists()
    with pytest.raises(ValueError, match="outside"):
        scheduler.unpack_folder([["../escape", "file", b""]], tmp_path / "out2")


def test_slots_are_unique_on_a_machine(tmp_path):
    a, b = scheduler.SlotPool(tmp_path), scheduler.SlotPool(tmp_path)
    got = [a.claim(), b.claim(), a.claim()]
    assert len(set(got)) == 3
    a.release(got[0])
    assert b.claim() == got[0]
    a.close()
    b.close()


def test_local_workers_are_forked_from_the_preloaded_fork_server_unless_switched_off(monkeypatch, tmp_path):
    """The local pool forks workers from a fork server (the Dask test above checks that they grade as
    the fresh interpreters of Dask tasks do); a worker's output goes to its log and its exit status back."""
    monkeypatch.setenv(scheduler.FORKSERVER_ENV_VAR, "0")
    assert scheduler._worker_context() is None
    monkeypatch.setenv(scheduler.FORKSERVER_ENV_VAR, "1")
    assert scheduler._worker_context().get_start_method() == "forkserver"
    log = tmp_path / "worker.log"
    proc = scheduler.start_worker({"student": "s1"}, tmp_path / "job.json", log, tmp_path)
    assert isinstance(proc, scheduler.ForkedWorker)
    rc = proc.wait(120)
    assert rc == 1 and proc.poll() == 1, "a worker whose job is not a full spec fails"
    text = log.read_text()
    assert "Traceback" in text and "KeyError" in text, text[-500:]
    with pytest.raises(subprocess.TimeoutExpired):
        slow = scheduler.ForkedWorker(_sleeper())
        slow.wait(0.1)
    slow.kill()
    assert slow.wait(10) != 0


def _sleeper():
    import multiprocessing
    import time

    p = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    p.start()
    return p


def test_the_fork_servers_preload_imports_what_every_worker_needs():
    """What :mod:`course_tools.grading.worker_preload` promises, in a fresh interpreter (it changes
    sys.modules: rfc3987_syntax is blocked, as the worker's entry point does)."""
    code = (
        "import sys, course_tools.grading.worker_preload\n"
        "need = ['jupyter_client', 'nbformat', 'numpy', 'torch', 'course_tools.grading.autograde',\n"
        "        'course_tools.grading.evaluator', 'course_tools.grading.kernel', 'course_tools.grading.runner']\n"
        "missing = [m for m in need if m not in sys.modules]\n"
        "assert not missing, missing\n"
        "assert sys.modules['rfc3987_syntax'] is None\n"
        "print('preloaded', len(need))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0 and "preloaded 8" in proc.stdout, proc.stdout + proc.stderr
