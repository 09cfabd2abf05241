"""Execution time of every lecture and assignment notebook, in smoke and in full mode.

Real size: every notebook in both modes (full mode takes as long as the lectures say).
``--smoke``: only lecture 01 in smoke mode, to check the harness in CI without re-running everything.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from course_tools.benchmarking import BenchmarkReport, benchmark_main
from course_tools.layout import LECTURES, REPO_ROOT, SOLUTIONS
from course_tools.notebooks.convert import find_sources
from course_tools.notebooks.execute import execute_many


def run(smoke: bool) -> BenchmarkReport:
    sources = find_sources(LECTURES) + find_sources(SOLUTIONS)
    modes = [("smoke", True)] if smoke else [("smoke", True), ("full", False)]
    if smoke:
        sources = sources[:1]
    report = BenchmarkReport("Notebook execution time (papermill, one notebook at a time)", ["notebook", "mode", "seconds", "status"])
    with tempfile.TemporaryDirectory() as tmp:
        for mode, is_smoke in modes:
            for result in execute_many(sources, smoke=is_smoke, jobs=1, timeout=3600, build_dir=Path(tmp) / mode):
                name = str(Path(result.source).relative_to(REPO_ROOT))
                report.add_row(name, mode, round(result.seconds, 1), result.status)
                report.figures[f"{name} [{mode}] seconds"] = result.seconds
    report.notes.append("each notebook runs in its own kernel; seconds include kernel start-up (~2 s)")
    return report


if __name__ == "__main__":
    benchmark_main("notebook_times", run)
