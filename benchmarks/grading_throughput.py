"""How fast does the robust autograder grade a class? (issue 5: sandboxed, parallel grading)

40 synthetic submissions of the pilot assignment ``01-neural-networks`` (the solution, with every
fifth submission's sigmoid derivative wrong and every tenth the untouched release), graded in a
temporary course in smoke mode (``COURSE_SMOKE=1``) by
:func:`course_tools.grading.autograde.autograde`:

* with 1 worker and with 2 workers, in the strongest sandbox the machine offers;
* with 1 worker and no sandbox (``--no-sandbox``, a quarter of the submissions), to separate the
  sandbox's cost from the grader's own (prelude, restore/canary requests, reports);
* against the *plain execution* of the same notebook: nbclient running the solution notebook top
  to bottom in an ordinary kernel (start, run, shut down), as papermill or nbgrader would.

Seconds per submission = wall-clock of the whole run / submissions (feedback and CSV export are
not included; the gradebook writes are). The speed-up is the 1-worker time over the 2-worker time.

Then the overhead the trusted evaluator costs on each of the four first assignments (01–04): the
median seconds of grading one honest submission (the solution) with 1 worker, over the median
seconds of plain execution of the same notebook, interleaved run by run so that the machine's load
falls on both alike (issue 11's goal: at most 1.3x).

``--smoke`` (CI) grades 2 submissions of a tiny synthetic assignment (one function, one test, no
torch), so it checks that the pipeline runs rather than measuring it; most of its time is nbgrader
registering the assignment and starting kernels.
"""

from __future__ import annotations

import copy
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from course_tools.benchmarking import BenchmarkReport, benchmark_main
from course_tools.layout import (
    ASSIGNMENTS,
    GPU_ENV_VAR,
    GRADING,
    NBGRADER_CONFIG_FILE,
    REPO_ROOT,
    SMOKE_ENV_VAR,
    SOLUTIONS,
)

NAME = "01-neural-networks"
#: the assignments the overhead is measured on, and how many runs of each side
OVERHEAD_ASSIGNMENTS = ("01-neural-networks", "02-backpropagation", "03-convolutions",
                        "04-optimization-regularization")
OVERHEAD_RUNS = 10
NB = f"{NAME}.ipynb"
REPO = REPO_ROOT


TINY = "99-tiny"
TINY_SOURCE = '''# %% tags=["parameters"]
SMOKE = False

# %% nbgrader={"grade": false, "grade_id": "answer", "locked": false, "solution": true, "schema_version": 3}
def answer(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "answer_test", "locked": true, "points": 3, "solution": false, "schema_version": 3}
assert answer(2) == 4, "answer(2) must be 4"
### BEGIN HIDDEN TESTS
assert answer(-5) == -10
### END HIDDEN TESTS
'''


def _course(tmp: Path, name: str) -> Path:
    course = tmp / "course"
    (course / SOLUTIONS).mkdir(parents=True)
    shutil.copy(REPO / NBGRADER_CONFIG_FILE, course)
    if name == TINY:
        (course / SOLUTIONS / name).mkdir()
        (course / SOLUTIONS / name / f"{name}.py").write_text(TINY_SOURCE)
    else:
        shutil.copytree(REPO / SOLUTIONS / name, course / SOLUTIONS / name,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    return course


def _submissions(course: Path, name: str, n: int, prefix: str) -> None:
    import nbformat

    nb_name = f"{name}.ipynb"
    sol = nbformat.read(course / SOLUTIONS / name / nb_name, as_version=4)
    rel = nbformat.read(course / ASSIGNMENTS / name / nb_name, as_version=4)
    for i in range(n):
        nb = copy.deepcopy(rel if i % 10 == 3 else sol)
        if i % 5 == 0:
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid":
                    cell.source = cell.source.replace("return s * (1.0 - s)", "return s")
        folder = course / GRADING / "submitted" / f"{prefix}{i:03d}" / name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / nb_name)


def _plain_execution(course: Path, name: str, runs: int) -> list[float]:
    """Seconds to execute the solution notebook in a plain kernel (nbclient), ``runs`` times."""
    import nbformat
    from nbclient import NotebookClient

    times = []
    for _ in range(runs):
        nb = nbformat.read(course / SOLUTIONS / name / f"{name}.ipynb", as_version=4)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
            times.append(time.perf_counter() - start)
    return times


def _overhead(tmp: Path, cfg, runs: int) -> list[tuple[str, float, float]]:
    """(assignment, plain s, graded s per submission) for each of :data:`OVERHEAD_ASSIGNMENTS`.

    Plain: the median of ``runs`` executions of the solution notebook, half before and half after
    the grading. Graded: one run of the grader over ``runs`` honest submissions (the solution), wall
    seconds / ``runs``, as a class is graded (the run's fixed costs shared among its submissions).
    """
    from course_tools.grading import autograde as ag
    from course_tools.grading.release import generate

    rows = []
    for name in OVERHEAD_ASSIGNMENTS:
        course = _course(tmp / name, name)
        generate(name, course)
        plain = _plain_execution(course, name, runs // 2)
        for i in range(runs):
            folder = course / GRADING / "submitted" / f"honest{i:02d}" / name
            folder.mkdir(parents=True)
            shutil.copy(course / SOLUTIONS / name / f"{name}.ipynb", folder)
        start = time.perf_counter()
        summary = ag.autograde(name, course, jobs=1, config=cfg, feedback=False, export=False, log=lambda m: None)
        graded = (time.perf_counter() - start) / runs
        if summary.failed or len(summary.graded) != runs:
            raise RuntimeError(f"grading the solution of {name} failed: {summary}")
        plain += _plain_execution(course, name, runs - runs // 2)
        rows.append((name, statistics.median(plain), graded))
    return rows


def run(smoke: bool) -> BenchmarkReport:
    from course_tools.grading import autograde as ag
    from course_tools.grading import sandbox as sb
    from course_tools.grading.release import generate

    os.environ[SMOKE_ENV_VAR] = "1"
    os.environ.setdefault(GPU_ENV_VAR, "0")
    name = TINY if smoke else NAME
    n = 2 if smoke else 40
    n_plain = 1 if smoke else 5
    n_unsandboxed = 0 if smoke else 10
    cfg = ag.GradeConfig(smoke=True)
    iso = sb.detect(allow_none=True, limits=cfg.limits)
    report = BenchmarkReport(
        title=f"Autograding throughput: {name} (smoke mode), seconds per submission",
        columns=["how", "isolation", "workers", "submissions", "wall s", "s per submission", "vs plain execution"])
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        course = _course(Path(tmp), name)
        generate(name, course)
        plain = _plain_execution(course, name, n_plain)
        plain_s = statistics.median(plain)
        report.add_row("plain execution (nbclient, no grading)", "none", 1, n_plain, round(sum(plain), 2),
                       round(plain_s, 2), 1.0)
        results = {}
        for label, jobs, no_sandbox, count in (("robust grader", 1, False, n), ("robust grader", 2, False, n),
                                               ("robust grader, --no-sandbox", 1, True, n_unsandboxed)):
            if not count:
                continue
            shutil.rmtree(course / GRADING / "submitted", ignore_errors=True)
            shutil.rmtree(course / GRADING / "reports", ignore_errors=True)
            prefix = f"j{jobs}{'n' if no_sandbox else 's'}-"
            _submissions(course, name, count, prefix)
            start = time.perf_counter()
            summary = ag.autograde(name, course, jobs=jobs, config=cfg, no_sandbox=no_sandbox,
                                   isolation="none" if no_sandbox else None, feedback=False, export=False,
                                   log=lambda m: None)
            wall = time.perf_counter() - start
            if summary.failed or len(summary.graded) != count:
                raise RuntimeError(f"benchmark run failed: {summary}")
            per = wall / count
            results[(jobs, no_sandbox)] = per
            report.add_row(label, "none" if no_sandbox else iso.variant, jobs, count, round(wall, 2), round(per, 2),
                           round(per / plain_s, 2))
    report.figures["plain execution s per notebook"] = round(plain_s, 3)
    report.figures["robust grader s per submission, 1 worker"] = round(results[(1, False)], 3)
    report.figures["robust grader s per submission, 2 workers"] = round(results[(2, False)], 3)
    report.figures["speed-up 2 workers vs 1"] = round(results[(1, False)] / results[(2, False)], 3)
    report.figures["overhead vs plain execution, 1 worker (x)"] = round(results[(1, False)] / plain_s, 3)
    if (1, True) in results:
        report.figures["sandbox cost s per submission (1 worker)"] = round(results[(1, False)] - results[(1, True)], 3)
    if not smoke:
        with tempfile.TemporaryDirectory(prefix="grading-overhead-") as tmp:
            rows = _overhead(Path(tmp), cfg, OVERHEAD_RUNS)
        for name, plain_s, graded_s in rows:
            report.add_row(f"overhead on {name}: plain execution", "none", 1, OVERHEAD_RUNS, "", round(plain_s, 2), 1.0)
            report.add_row(f"overhead on {name}: robust grader (trusted evaluator)", iso.variant, 1, OVERHEAD_RUNS, "",
                           round(graded_s, 2), round(graded_s / plain_s, 2))
            report.figures[f"overhead vs plain execution, {name} (x)"] = round(graded_s / plain_s, 3)
        report.figures["overhead vs plain execution, worst of the four assignments (x)"] = round(
            max(g / p for _, p, g in rows), 3)
    report.notes.append(f"isolation: {iso.describe()}")
    report.notes.append(f"machine cores: {os.cpu_count()} (shared with other jobs while measuring: load average "
                        f"{os.getloadavg()[0]:.1f} at the end)")
    report.notes.append("per submission the grader forks a worker process (the trusted evaluator) from a fork "
                        "server that imported the grader and numpy/torch once, and starts a kernel in the sandbox; "
                        "test cells run in the evaluator and reach the student's code through proxies (one socket "
                        "round trip per call; plain attribute and dict/list reads are served from the evaluator's "
                        "copy while no student code ran, plain writes are not waited for)")
    return report


if __name__ == "__main__":
    benchmark_main("grading_throughput", run)
