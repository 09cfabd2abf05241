"""Execution time and claims of every lecture and assignment notebook, in smoke and in full mode.

Real size: every notebook in both modes, through the course's own executor and build folders
(``build/executed`` and ``build/executed-full``), so the full-mode outputs it leaves are the ones
``make course FULL=1`` publishes and an unchanged notebook is not executed twice (a cached
notebook's row gives the seconds of the run that produced it). Full mode runs with claims audited
(``execute --audit-claims``): a claim that does not hold is counted, and the notebook goes on, so one
run gives every notebook's claims checked / failed. Two notebooks at a time on the 2 cores, each
kernel with one BLAS thread (``OMP_NUM_THREADS=1``; two threads per kernel on a loaded 2-core
machine slow torch down many times over) — the seconds are those of one core per notebook.

``--smoke``: only lecture 01 in smoke mode, in a temporary folder, to check the harness in CI.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from course_tools.benchmarking import BenchmarkReport, benchmark_main
from course_tools.layout import LAYOUT, LECTURES, REPO_ROOT, SOLUTIONS
from course_tools.notebooks import cache
from course_tools.notebooks.convert import find_sources
from course_tools.notebooks.execute import execute_many

#: notebooks at once in full mode, and BLAS threads per kernel
FULL_JOBS = 2
THREADS_PER_KERNEL = 1
#: seconds one notebook may take before it is stopped (the course's goal is 600 s)
FULL_TIMEOUT_S = 2400


def _seconds(result) -> float:
    """Seconds of the run that produced the output (a cached notebook: those in its record)."""
    if result.status == "cached":
        record = cache.read_record(Path(result.output)) or {}
        return float(record.get("seconds", result.seconds))
    return float(result.seconds)


def run(smoke: bool) -> BenchmarkReport:
    os.environ["OMP_NUM_THREADS"] = str(THREADS_PER_KERNEL)  # inherited by every kernel
    sources = find_sources(LECTURES) + find_sources(SOLUTIONS)
    report = BenchmarkReport(
        "Notebook execution time and claims (papermill; full mode two notebooks at a time, one thread each)",
        ["notebook", "mode", "seconds", "claims held", "claims failed", "status"])
    with tempfile.TemporaryDirectory() as tmp:
        if smoke:
            modes = [("smoke", True, Path(tmp) / "smoke", 1, sources[:1])]
        else:
            modes = [("full", False, LAYOUT.executed_full, FULL_JOBS, sources),
                     ("smoke", True, LAYOUT.executed, 1, sources)]
        for mode, is_smoke, build_dir, jobs, todo in modes:
            results = execute_many(todo, smoke=is_smoke, jobs=jobs, timeout=600 if is_smoke else FULL_TIMEOUT_S,
                                   build_dir=build_dir, audit_claims=not is_smoke)
            total = 0.0
            for result in results:
                name = str(Path(result.source).relative_to(REPO_ROOT))
                seconds = round(_seconds(result), 1)
                total += seconds
                status = result.status + (f": {result.detail[:120]}" if result.status not in {"ok", "cached"} else "")
                report.add_row(name, mode, seconds, result.claims_checked, result.claims_failed, status)
                report.figures[f"{name} [{mode}] seconds"] = seconds
            report.figures[f"all notebooks [{mode}] seconds, one after another"] = round(total, 1)
            if not is_smoke:
                report.figures["full mode: claims held"] = sum(r.claims_checked for r in results)
                report.figures["full mode: claims that did not hold"] = sum(r.claims_failed for r in results)
                report.figures["full mode: notebooks over 600 s"] = sum(_seconds(r) > 600 for r in results)
                report.figures["full mode: notebooks that did not finish"] = sum(not r.ok for r in results)
    report.notes.append("each notebook runs in its own kernel; seconds include kernel start-up (~2 s); gpu cells "
                        "are skipped on a machine without CUDA")
    report.notes.append(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end")
    return report


if __name__ == "__main__":
    benchmark_main("notebook_times", run)
