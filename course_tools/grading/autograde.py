"""Robust autograding: sandboxed, parallel, resumable, with per-student reports and feedback.

``python -m course_tools autograde NAME [--jobs N | --cluster tcp://HOST:8786] [--student ID] [--force]
[--no-sandbox]`` grades every submission in ``grading/submitted/<student>/NAME/``.

How it works
------------
*Client* (:func:`autograde`): detects the sandbox (:mod:`course_tools.grading.sandbox`) where the
kernels will run, converts the source notebooks once, and hands one job per submission to a
scheduler (:mod:`course_tools.grading.scheduler`): a local pool of *worker* processes (``--jobs``
at a time), or a Dask distributed cluster (``--cluster``), whose tasks run the same worker process
on a worker machine and send back its report and notebooks. The client alone writes the graded
notebooks, the reports and the gradebook (nbgrader's SQLite database, one transaction per
submission); a report (``grading/reports/NAME/<student>.json``, written atomically last) marks a
submission as done. A run killed with SIGKILL leaves no half-written
report; the next run re-grades exactly the submissions without a current report and rewrites the
gradebook from all reports, so the result equals an uninterrupted run, and a re-run changes
nothing (the report stores a hash of the submission, the source and the grading settings).

Several machines: run ``dask scheduler`` on one and ``dask worker tcp://HOST:8786 --nthreads 1``
on each grading machine, with the course's repository and virtual environment at the same path as
the client's and a working sandbox (dask-jobqueue or dask-kubernetes start such workers on a batch
or Kubernetes cluster); then ``--cluster tcp://HOST:8786``. The submission travels with its task.

*Worker* (:func:`grade_submission`, a trusted process outside the sandbox): checks each notebook
(JSON, nbformat 4, expected name) and rebuilds it from the source
(:mod:`course_tools.grading.submission`: locked cells and tests always from the source, in source
order; the student's answer cells and added cells in between), scans the student's code statically
(:mod:`course_tools.grading.scan`), and runs the cells one by one
(:class:`course_tools.grading.runner.NotebookRunner`) in a Jupyter kernel started *inside* the sandbox (ipc transport, sockets in a folder shared
with the sandbox). Per cell and per notebook wall-clock limits (interrupt, then kill), output
capped, memory/CPU/process/file limits from the sandbox. A kernel death, kill or MemoryError
restarts the kernel and replays the cells that ran before, so the rest of the notebook is still
graded.

*Test cells* run in this worker, the trusted evaluator (:mod:`course_tools.grading.evaluator`),
never in the kernel: a prelude (:func:`course_tools.grading.wire._grader_boot`, then
:func:`~course_tools.grading.wire.bootstrap`) connects an agent in
the kernel to the worker over a Unix socket; during each test part the agent serves the
evaluator's calls of the student's functions and methods and sends back plain data only. A part
passes exactly when it ran to its end in the evaluator and the exchange never broke. What the
static scan flags is listed in the report for a human to look at. The assignment's rules
(:mod:`course_tools.grading.rules`) are applied last (:func:`apply_rules`); the reports
(:mod:`course_tools.grading.reports`) and the gradebook (:mod:`course_tools.grading.gradebook`)
are written by the client.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from course_tools.grading import sandbox as sb
from course_tools.grading.cells import Role, cell_role, cell_source, nbg
from course_tools.grading.config import (
    AUTOGRADED_DIR,
    GRADER_VERSION,
    KERNEL_ENV_VARS,
    MAX_LOG_TAIL_CHARS,
    REDACTED_DIR,
    REPORTS_DIR,
    RESERVED_STUDENT_IDS,
    RULE_OVERRIDES,
    STUDENT_ID_RE,
    STUDENT_ID_RULE,
    SUBMITTED_DIR,
    GradeConfig,
    config_from_dict,
)
from course_tools.grading.gradebook import ensure_gradebook, generate_feedback, record_in_gradebook, write_grades_csv
from course_tools.grading.kernel import KernelSession
from course_tools.grading.reports import (
    CellReport,
    CellStatus,
    NotebookReport,
    NotebookStatus,
    RunSummary,
    SubmissionStatus,
    one_line,
    plot_distribution,
    render_html,
    render_summary,
    render_text,
)
from course_tools.grading.rules import load_overrides
from course_tools.grading.runner import NotebookRunner
from course_tools.grading.scan import scan_student_code, trusted_imports
from course_tools.grading.scheduler import (
    DaskCluster,
    Job,
    LocalPool,
    Outcome,
    Scheduler,
    isolation_from_dict,
    worker_timeout,
)
from course_tools.grading.submission import (
    Problem,
    assemble,
    load_student_notebook,
    output_node,
    redact,
    stage_submission,
    submission_hash,
)
from course_tools.layout import (
    GPU_ENV_VAR,
    REPO_ROOT,
    SMOKE_ENV_VAR,
    SOLUTIONS,
    CourseLayout,
)

#: what ``from course_tools.grading.autograde import *`` gives: the entry points and the report
#: renderers (the parts live in the modules listed in :mod:`course_tools.grading`)
__all__ = ["GradeConfig", "GradingSetupError", "RunSummary", "add_arguments", "assignment_rules", "autograde",
           "generate_feedback", "grade_submission", "main", "render_html", "render_text", "run_from_args",
           "valid_student_id", "worker_main"]


# =============================================================================================
# one submission (runs in a worker process)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _write_nb_atomic(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)


def grade_submission(job: dict) -> dict:
    """Grade one student's submission (all notebooks of the assignment); return the report dict."""
    import nbformat

    cfg = _cfg_from_dict(job["config"])
    # the evaluator (this process) sees the kernels' smoke/GPU settings and draws no windows
    os.environ.update({k: v for k, v in job.get("kernel_env", {}).items() if v})
    os.environ["MPLBACKEND"] = "Agg"
    iso = sb.Isolation(**{**job["isolation"], "notes": tuple(job["isolation"].get("notes", ()))})
    sub_dir = Path(job["submission"])
    student, assignment = job["student"], job["assignment"]
    source_paths = {k: Path(v) for k, v in job["sources"].items()}
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "student": student, "assignment": assignment, "grader_version": GRADER_VERSION,
        "input_hash": job["input_hash"], "isolation": iso.describe(), "isolation_variant": iso.variant,
        "timestamp": job.get("timestamp"),
        "notebooks": [], "started_at": _now(),
    }
    present = sorted(p.name for p in sub_dir.glob("*.ipynb")) if sub_dir.is_dir() else []
    empty = not sub_dir.is_dir() or not any(p.is_file() and not p.is_symlink() for p in sub_dir.rglob("*"))
    unexpected = [p for p in present if p not in source_paths]
    base = Path(tempfile.mkdtemp(prefix="cg-", dir=job.get("tmp_root") or None))
    os.chmod(base, 0o711)
    (base / "owner.pid").write_text(str(os.getpid()))
    try:
        stage = base / "stage"
        stage_submission(sub_dir, Path(job["extra_files"]) if job.get("extra_files") else None, stage)
        for nb_name, src_path in sorted(source_paths.items()):
            source_nb = nbformat.read(src_path, as_version=4)
            nbr = NotebookReport(nb_name, NotebookStatus.GRADED)
            nbr.max_score = sum(float(nbg(c).get("points", 0)) for c in source_nb.cells
                                if cell_role(c) in (Role.TEST, Role.MANUAL))
            path = sub_dir / nb_name
            problem = None
            student_nb = None
            if empty:
                problem = Problem("no-submission", "nothing was submitted (the submission folder is empty)")
            elif not path.exists():
                hint = f"; found {', '.join(unexpected)} instead (renamed?)" if unexpected else ""
                problem = Problem("missing-notebook", f"{nb_name} is missing from the submission{hint}")
            else:
                student_nb, problem = load_student_notebook(path)
            if problem:
                nbr.status, nbr.reason = NotebookStatus.NOT_GRADED, f"{problem.reason}: {problem.message}"
                for c in source_nb.cells:
                    if cell_role(c) in (Role.TEST, Role.MANUAL):
                        nbr.cells.append(CellReport(nbg(c)["grade_id"], 0.0, float(nbg(c).get("points", 0)),
                                                    CellStatus.NOT_RUN, f"not graded: {problem.reason}"))
                report["notebooks"].append(asdict(nbr))
                _write_placeholder(job, nb_name, nbr)
                continue
            nb, changes = assemble(source_nb, student_nb)
            nbr.changes = changes
            _, bindings, _ = trusted_imports(source_nb)
            student_cells = [(nbg(c).get("grade_id") or c.get("id", "?"), cell_source(c)) for c in nb.cells
                             if c.cell_type == "code" and cell_role(c) in (Role.ANSWER, Role.PLAIN, Role.MANUAL)]
            nbr.flags = [asdict(f) for f in scan_student_code(student_cells, bindings)]
            session = KernelSession(iso, cfg, base / f"k-{Path(nb_name).stem}", stage, job["slot"],
                                    job.get("kernel_env", {}))
            session.jobs = job.get("jobs", 1)
            session.base.mkdir()
            runner = NotebookRunner(session, cfg, source_nb, nb, nbr, forbidden=tuple(job.get("forbidden") or ()))
            runner.run()
            if runner.start_failed:
                report["retry"] = True  # not a final grade: the next run grades it again
            if runner.tampered:
                nbr.events.append(f"kernel tampering: {runner.tampered}")
            apply_rules(nbr, nb, source_nb, runner, tuple(job.get("forbidden") or ()), job.get("overrides") or [])
            nbr.score = sum(c.points or 0.0 for c in nbr.cells)
            feedback_nb = redact(nb, runner.part_outputs)
            for graded_nb in (nb, feedback_nb):
                add_rule_notes(graded_nb, nbr)
            _write_nb_atomic(nb, Path(job["autograded_dir"]) / nb_name)
            _write_nb_atomic(feedback_nb, Path(job["redacted_dir"]) / nb_name)
            report["notebooks"].append(asdict(nbr))
        for extra in unexpected:
            report.setdefault("warnings", []).append(f"unexpected notebook {extra} was not graded")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report["score"] = sum(n["score"] for n in report["notebooks"])
    report["max_score"] = sum(n["max_score"] for n in report["notebooks"])
    graded = [n["status"] == NotebookStatus.GRADED for n in report["notebooks"]]
    report["status"] = SubmissionStatus.GRADED if all(graded) else SubmissionStatus.PARTLY_GRADED if any(graded) \
        else SubmissionStatus.NOT_GRADED
    report["seconds"] = round(time.monotonic() - t0, 3)
    report["peak_rss_mb"] = max([n["peak_rss_mb"] for n in report["notebooks"]] or [0.0])
    report["finished_at"] = _now()
    return report


def apply_rules(nbr: NotebookReport, nb, source_nb, runner: NotebookRunner, forbidden: tuple[str, ...],
                overrides: list[dict]) -> None:
    """The assignment's rules: a test cell whose answers use a forbidden name scores 0 (unless overridden).

    Static: :func:`course_tools.grading.rules.check_cells` on the student's cells of the graded
    notebook; the test cells that use a name bound by a violating cell (directly or through other
    student cells) are affected. Dynamic: the forbidden callables the kernel's wrappers saw entered
    during a test cell's calls. Wrappers the student's code removed void the dynamic check: every
    test cell is affected.
    """
    from course_tools.grading import rules

    if not forbidden:
        return
    cells = rules.notebook_cells(nb, source_nb)
    violations = rules.check_cells(cells, forbidden)
    student_cells = [(name, src) for name, src, mine in cells if mine]
    tests = {nbg(c)["grade_id"]: cell_source(c) for c in nb.cells if c.cell_type == "code" and cell_role(c) == Role.TEST}
    by_cell: dict[str, list[str]] = {}
    for v in violations:
        by_cell.setdefault(v.cell, []).append(str(v))
    per_test: dict[str, list[str]] = {}
    judge, answers = rules.instructor_names(source_nb)
    for gid, via in rules.affected_tests(tests, student_cells, set(by_cell), judge_names=judge,
                                         answer_names=answers).items():
        per_test[gid] = [t for c in sorted(via) for t in by_cell[c]]
    for gid, names in runner.entered.items():
        per_test.setdefault(gid, []).extend(
            f"{gid}: the answer called {n} during this test ({k} times; forbidden by the assignment's rules)"
            for n, k in sorted(names.items()))
    if runner.rules_missing:
        why = (f"the answers removed the grader's watch on forbidden names ({', '.join(runner.rules_missing[:5])}): "
               "the rules could not be checked")
        for gid in tests:
            per_test.setdefault(gid, []).append(why)
    nbr.rules = [str(v) for v in violations] + sorted({t for ts in per_test.values() for t in ts} - {
        str(v) for v in violations})
    for cr in nbr.cells:
        found = per_test.get(cr.grade_id)
        if not found:
            continue
        cr.rules = found
        if cr.status != CellStatus.PASSED:  # it scored nothing anyway: its own reason stays, the rules are listed
            continue
        reason = rules.override_for(overrides, cr.grade_id)
        if reason is not None:
            cr.override = reason
            continue
        cr.points, cr.status, cr.reason = 0.0, CellStatus.FAILED, "rule violation"
        cr.message = "; ".join(found)[:2000] + " (the tests themselves passed)"


#: the first line of the note a test cell gets when the assignment's rules cost it its points
RULE_NOTE = "The assignment's rules: this cell scores 0"


def student_rule_text(rule: str) -> str:
    """A rule violation as the student's feedback shows it: about the student's own code; the count of
    calls during the cell's tests (hidden ones included) is left out."""
    return re.sub(r" \(\d+ times; ", " (", rule)


def add_rule_notes(nb, nbr: NotebookReport) -> None:
    """Append to each test cell that lost its points to the assignment's rules an output saying so and
    which rules its answers broke (the feedback shows it; the tests themselves are not quoted)."""
    lost = {c.grade_id: c for c in nbr.cells if c.reason == "rule violation"}
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) != Role.TEST:
            continue
        cr = lost.get(nbg(cell).get("grade_id"))
        if cr is None:
            continue
        text = (f"{RULE_NOTE} of {cr.max_points:g} points: its tests passed, but the answers they use break "
                "what the assignment forbids:\n" + "".join(f"- {student_rule_text(r)}\n" for r in cr.rules))
        cell.outputs.append(output_node({"output_type": "stream", "name": "stderr", "text": text}))


def _write_placeholder(job: dict, nb_name: str, nbr: NotebookReport) -> None:
    """A one-cell notebook saying why ``nb_name`` was not graded (so feedback exists for it)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**{nb_name} was not graded.**\n\n{html.escape(nbr.reason)}"))
    for d in (job["autograded_dir"], job["redacted_dir"]):
        _write_nb_atomic(nb, Path(d) / nb_name)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


_cfg_from_dict = config_from_dict


def worker_main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    try:
        report = grade_submission(job)
        report["status_final"] = not report.pop("retry", False)
    except Exception as exc:  # a grader bug: report it, do not cache it
        import traceback

        report = {"student": job["student"], "assignment": job["assignment"], "status": SubmissionStatus.GRADER_ERROR,
                  "status_final": False, "reason": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-MAX_LOG_TAIL_CHARS:], "input_hash": job["input_hash"], "notebooks": [],
                  "score": 0.0, "max_score": 0.0}
    _write_json_atomic(Path(job["report"]), report)
    return 0


# =============================================================================================
# the parent: orchestration, gradebook, reports


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _source_notebooks(name: str, root: Path, out_dir: Path) -> dict[str, Path]:
    from course_tools.notebooks.convert import read_source, write_notebook

    src_dir = root / SOLUTIONS / name
    sources = sorted(src_dir.glob("*.py"))
    if not sources:
        raise GradingSetupError(f"solutions/{name}/ has no .py notebook sources")
    out = {}
    for p in sources:
        nb = read_source(p, strip_jupytext=True)
        out[p.stem + ".ipynb"] = write_notebook(nb, out_dir / (p.stem + ".ipynb"))
    return out


def _extra_files(name: str, root: Path, out_dir: Path) -> Path | None:
    """Non-notebook files of the source assignment (data the notebook reads), copied next to it."""
    src_dir = root / SOLUTIONS / name
    ignore = shutil.ignore_patterns("*.py", "*.ipynb", "*.pyc", "__pycache__", ".ipynb_checkpoints", "feedback")
    files = [p for p in src_dir.iterdir() if not p.name.endswith((".py", ".ipynb", ".pyc"))
             and p.name not in ("__pycache__", ".ipynb_checkpoints", "feedback")]
    if not files:
        return None
    shutil.copytree(src_dir, out_dir, ignore=ignore, dirs_exist_ok=True)
    return out_dir


class GradingSetupError(RuntimeError):
    pass


def assignment_rules(name: str, root: Path) -> tuple[str, ...]:
    """What an answer of ``name`` may not use: the spec's ``forbidden`` prefixes, its ``answers``
    (the course_lib reference implementations) and ``reveals`` (syllabus.toml of ``root``, else of
    the repository the grader runs from)."""
    from course_tools.assignments import load_spec
    from course_tools.layout import SYLLABUS_FILE

    spec = load_spec(name, root if (root / SYLLABUS_FILE).exists() else REPO_ROOT)
    return tuple(dict.fromkeys([*spec.forbidden, *spec.answers.values(), *spec.reveals]))


RUN_SUMMARY_FILE = "_summary.txt"


def valid_student_id(student: str) -> bool:
    return STUDENT_ID_RE.fullmatch(student) is not None and student not in RESERVED_STUDENT_IDS


def _read_timestamp(sub_dir: Path) -> str | None:
    p = sub_dir / "timestamp.txt"
    with contextlib.suppress(OSError):
        return p.read_text().strip() or None
    return None


def autograde(name: str, root: Path | None = None, *, jobs: int | None = None, students: list[str] | None = None,
              force: bool = False, no_sandbox: bool = False, isolation: str | None = None,
              config: GradeConfig | None = None, feedback: bool = True, export: bool = True, log=_log_default,
              tmp_root: str | None = None, cluster: str | None = None, client=None) -> RunSummary:
    """Grade every submission of assignment ``name`` under ``root/grading/submitted``.

    ``jobs`` worker processes at a time on this machine, or, with ``cluster`` (a Dask scheduler's
    address, ``tcp://host:8786``) or ``client`` (a ``distributed.Client``), one Dask task per
    submission on the cluster's workers (:mod:`course_tools.grading.scheduler`)."""

    root = Path(root or REPO_ROOT).resolve()
    cfg = config or GradeConfig()
    t0 = time.monotonic()
    grading = CourseLayout(root).grading
    grading.mkdir(exist_ok=True)
    lock_fh = open(grading / ".autograde.lock", "w")
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise GradingSetupError(f"another autograde run holds {grading / '.autograde.lock'}") from None
    try:
        work = grading / ".work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if cluster is not None or client is not None:
            try:
                scheduler: Scheduler = DaskCluster(cluster, client=client, log=log)
            except RuntimeError as exc:
                raise GradingSetupError(str(exc)) from None
        else:
            scheduler = LocalPool(jobs or len(os.sched_getaffinity(0)), work, root, tmp_root)
        with scheduler:
            course = CourseLayout(root)
            hidden = [course.solutions, course.grading, course.nbgrader_config]
            iso, cuda = _isolation(scheduler, no_sandbox, isolation, cfg, hidden)
            log(f"isolation: {iso.describe()}")
            log(f"limits: {cfg.limits.describe()}; {cfg.cell_timeout:g} s per cell, "
                f"{cfg.notebook_timeout:g} s per notebook")
            return _autograde_locked(name, root, cfg, iso, cuda, scheduler, work, students, force, feedback, export,
                                     log, tmp_root, t0)
    finally:
        lock_fh.close()


def _isolation(scheduler: Scheduler, no_sandbox: bool, force: str | None, cfg: GradeConfig,
               hidden: list[Path]) -> tuple[sb.Isolation, bool]:
    """The sandbox every machine that runs kernels uses (one variant on all of them: it is part of
    the grades' cache key) and whether all of them have CUDA."""
    probes = scheduler.probe(no_sandbox, force, cfg.limits, hidden)
    errors = [f"{p.get('worker', p['host'])}: {p['error']}" for p in probes if "error" in p]
    if errors:
        raise sb.SandboxError("; ".join(errors))
    problems = [f"{p.get('worker', p['host'])}: {x}" for p in probes for x in p["problems"]]
    if problems:
        raise GradingSetupError("the sandbox would expose course files: " + "; ".join(problems))
    variants = {p["isolation"]["variant"] for p in probes}
    if len(variants) > 1:
        raise GradingSetupError("the workers have different sandboxes (" + ", ".join(
            f"{p.get('worker', p['host'])}: {p['isolation']['variant']}" for p in probes)
            + "): grades would depend on where a submission ran; give every worker the same one "
              "(or choose one with --isolation)")
    return isolation_from_dict(probes[0]["isolation"]), all(p["cuda"] for p in probes)


def _autograde_locked(name, root, cfg, iso, cuda, scheduler, work, students, force, feedback, export, log,
                      tmp_root, t0) -> RunSummary:
    from nbgrader.api import Gradebook

    summary = RunSummary(name, iso.describe())
    sources = _source_notebooks(name, root, work / "source")
    extra = _extra_files(name, root, work / "extra")
    ensure_gradebook(name, root, sources, log)
    scheduler.clean(tmp_root)
    submitted = root / SUBMITTED_DIR
    all_students = sorted(p.name for p in submitted.iterdir() if (p / name).is_dir()) if submitted.is_dir() else []
    for odd in [s for s in all_students if not valid_student_id(s)]:
        log(f"  refused the submission folder {odd!r}: {STUDENT_ID_RULE} (collect normalises such names)")
        summary.refused.append(odd)
    all_students = [s for s in all_students if valid_student_id(s)]
    if students:
        missing = [s for s in students if s not in all_students]
        if missing:
            raise GradingSetupError(f"no submission of {name} from {', '.join(missing)} in {submitted}")
        all_students = [s for s in all_students if s in students]
    reports_dir = root / REPORTS_DIR / name
    reports_dir.mkdir(parents=True, exist_ok=True)
    summary.reports_dir = reports_dir
    kernel_env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_VARS}
    if cfg.smoke is not None:
        kernel_env[SMOKE_ENV_VAR] = "1" if cfg.smoke else "0"
    kernel_env.setdefault(GPU_ENV_VAR, os.environ.get(GPU_ENV_VAR, ""))
    if not kernel_env[GPU_ENV_VAR]:  # decided once for the run: gpu cells run only where every worker has CUDA
        kernel_env[GPU_ENV_VAR] = "1" if cuda else "0"

    forbidden = assignment_rules(name, root)
    if forbidden:
        log(f"rules: {len(forbidden)} forbidden names ({', '.join(forbidden[:6])}{' ...' if len(forbidden) > 6 else ''})")
    overrides_path = root / RULE_OVERRIDES
    student_overrides: dict[str, list[dict]] = {}
    todo: list[Job] = []
    done = []
    for student in all_students:
        sub_dir = submitted / student / name
        try:
            student_overrides[student] = load_overrides(overrides_path, name, student)
        except ValueError as exc:
            raise GradingSetupError(str(exc)) from None
        h = submission_hash(sub_dir, sources, cfg, iso,
                            {"forbidden": list(forbidden), "overrides": student_overrides[student]})
        rpath = reports_dir / f"{student}.json"
        if not force and rpath.exists():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(rpath.read_text())
                if old.get("input_hash") == h and old.get("status_final"):
                    done.append(old)
                    summary.cached.append(student)
                    continue
        spec = {
            "student": student, "assignment": name, "submission": str(sub_dir),
            "sources": {k: str(v) for k, v in sources.items()},
            "extra_files": str(extra) if extra else None, "config": cfg.key(),
            "isolation": {**iso.__dict__, "notes": list(iso.notes)},
            "input_hash": h, "kernel_env": kernel_env, "tmp_root": tmp_root,
            "forbidden": list(forbidden), "overrides": student_overrides.get(student, []),
            "timestamp": _read_timestamp(sub_dir),
        }
        todo.append(Job(student, h, spec, sub_dir, tuple(sources)))
    db_url = f"sqlite:///{CourseLayout(root).gradebook}"
    with Gradebook(db_url) as gb:
        for rep in done:
            record_in_gradebook(gb, rep)
    where = scheduler.describe()
    if summary.cached:
        log(f"{len(summary.cached)} submissions already graded (unchanged), {len(todo)} to grade on {where}")
    else:
        log(f"{len(todo)} submissions to grade on {where}")

    timeout = worker_timeout(cfg.notebook_timeout, cfg.startup_timeout, cfg.max_restarts, len(sources))
    with Gradebook(db_url) as gb, contextlib.closing(scheduler.grade(todo, timeout)) as outcomes:
        for outcome in outcomes:
            rep = _store_outcome(root, name, reports_dir, outcome)
            student = outcome.student
            if rep.get("status") == SubmissionStatus.GRADER_ERROR:
                summary.failed.append(student)
                log(f"  {student:<24} GRADER ERROR: {rep.get('reason', '')[:300]}")
                continue
            record_in_gradebook(gb, rep)
            summary.graded.append(student)
            log(f"  {student:<24} {rep['score']:g}/{rep['max_score']:g}  {rep['status']:<13} "
                f"{rep.get('seconds', 0):.1f} s  {one_line(rep)}")
    reports = []
    for student in all_students:
        with contextlib.suppress(OSError, ValueError):
            rep = json.loads((reports_dir / f"{student}.json").read_text())
            if rep.get("status") != SubmissionStatus.GRADER_ERROR:
                reports.append(rep)
                _write_text_atomic(reports_dir / f"{student}.txt", render_text(rep))
                _write_text_atomic(reports_dir / f"{student}.html", render_html(rep))
    summary.grades_csv = write_grades_csv(reports, reports_dir / "grades.csv")
    summary.plot = plot_distribution(reports, reports_dir / "distribution.png", name)
    # run files start with "_": a student id never does (students named "summary" keep their own reports)
    _write_text_atomic(reports_dir / RUN_SUMMARY_FILE, render_summary(reports, summary, iso.describe()))
    if feedback and reports:
        from course_tools.grading.release import GradingError

        try:
            generate_feedback(name, root)
        except GradingError as exc:
            log(f"feedback generation failed: {str(exc)[-800:]}")
    if export:
        from course_tools.grading.release import run_nbgrader

        run_nbgrader(["export", f"--to={CourseLayout(root).grading / 'grades.csv'}"], root)
    summary.seconds = round(time.monotonic() - t0, 2)
    log(f"graded {len(summary.graded)}, unchanged {len(summary.cached)}, grader errors {len(summary.failed)} "
        f"in {summary.seconds:.1f} s; reports in {reports_dir}")
    return summary


def _store_outcome(root: Path, name: str, reports_dir: Path, outcome: Outcome) -> dict:
    """Write what a worker sent back: its notebooks (graded, redacted), then its report, atomically and
    last (a report marks the submission as done)."""
    student = outcome.student
    dirs = {"autograded": root / AUTOGRADED_DIR / student / name, "redacted": root / REDACTED_DIR / student / name}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
    for rel, data in outcome.files.items():
        kind, _, nb_name = rel.partition("/")
        if kind not in dirs or not nb_name or "/" in nb_name or nb_name.startswith("."):
            raise GradingSetupError(f"a worker sent back an unexpected file {rel!r}")
        dirs[kind].mkdir(parents=True, exist_ok=True)
        _write_bytes_atomic(dirs[kind] / nb_name, data)
    _write_json_atomic(reports_dir / f"{student}.json", outcome.report)
    return outcome.report


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# =============================================================================================
# command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="assignment, e.g. 01-neural-networks")
    p.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel submissions (default: CPU cores)")
    p.add_argument("--cluster", default=None, metavar="tcp://HOST:8786",
                   help="grade on this Dask scheduler's workers instead of local processes (--jobs is ignored)")
    p.add_argument("--force", action="store_true", help="re-grade submissions whose report is current")
    p.add_argument("--no-sandbox", action="store_true", help="grade without isolation if none is available")
    p.add_argument("--isolation", choices=sb.KINDS, default=None, help="use this mechanism (default: strongest)")
    p.add_argument("--cell-timeout", type=float, default=GradeConfig.cell_timeout)
    p.add_argument("--notebook-timeout", type=float, default=GradeConfig.notebook_timeout)
    p.add_argument("--memory", type=float, default=sb.Limits.address_space / 2**30, help="address space limit, GiB")
    p.add_argument("--smoke", action="store_true", help="run the notebooks in smoke mode (COURSE_SMOKE=1)")
    p.add_argument("--no-feedback", action="store_true")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--interrupt-grace", type=float, default=GradeConfig.interrupt_grace, help=argparse.SUPPRESS)
    p.add_argument("--course-root", type=Path, default=None, help=argparse.SUPPRESS)


def run_from_args(args: argparse.Namespace, root: Path | None = None) -> int:
    cfg = GradeConfig(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                      interrupt_grace=args.interrupt_grace,
                      limits=replace(sb.Limits(), address_space=int(args.memory * 2**30)),
                      smoke=True if args.smoke else None)
    try:
        autograde(args.name, root or args.course_root, jobs=args.jobs, students=args.student, force=args.force,
                  no_sandbox=args.no_sandbox, isolation="none" if args.isolation == "none" else args.isolation,
                  config=cfg, feedback=not args.no_feedback, export=not args.no_export, cluster=args.cluster)
    except (sb.SandboxError, GradingSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        # jsonschema (imported by nbformat) builds ~40 parsers for the optional "iri" format checker
        # of rfc3987_syntax at import time: 2+ s per worker for a format nbformat never uses
        sys.modules.setdefault("rfc3987_syntax", None)
        return worker_main(argv[1])
    parser = argparse.ArgumentParser(prog="python -m course_tools autograde",
                                     description="sandboxed, parallel, resumable autograding")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
