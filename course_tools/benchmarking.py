"""The benchmark harness: every script under ``benchmarks/`` reports through it.

A script defines ``run(smoke: bool) -> BenchmarkReport`` and ends with
``benchmark_main("name", run)``. The harness parses ``--smoke``, runs, prints the table and
writes a JSON record (figures, table, machine, torch version, git sha, date) to
``benchmarks/results/<name>.json`` (real size) or ``build/benchmarks/<name>.json`` (smoke size,
never committed). ``python -m course_tools bench --results-only`` regenerates ``benchmarks/RESULTS.md``
from the committed records.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_tools.layout import LAYOUT, REPO_ROOT

RESULTS_DIR = LAYOUT.benchmark_results
SMOKE_RESULTS_DIR = LAYOUT.smoke_benchmarks
RESULTS_MD = LAYOUT.results_md


@dataclass
class BenchmarkReport:
    """A table of rows plus named headline figures (numbers with their units in the key)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_row(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values but the table has {len(self.columns)} columns")
        self.rows.append(list(values))

    def to_markdown(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return f"{v:.4g}"
            return str(v)

        lines = ["| " + " | ".join(self.columns) + " |", "|" + " --- |" * len(self.columns)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


def time_call(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_info() -> dict[str, Any]:
    """CPU model, core count, GPU (if any), Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        info["torch"] = None
        info["gpu"] = None
    return info


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_record(name: str, report: BenchmarkReport, *, smoke: bool, seconds: float, out_dir: Path | None = None) -> Path:
    """Write the JSON record of one benchmark run atomically; return its path."""
    out_dir = out_dir or (SMOKE_RESULTS_DIR if smoke else RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "title": report.title,
        "smoke": smoke,
        "seconds": round(seconds, 3),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "machine": machine_info(),
        "columns": report.columns,
        "rows": report.rows,
        "figures": report.figures,
        "notes": report.notes,
    }
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


def benchmark_main(name: str, run: Callable[[bool], BenchmarkReport], argv: list[str] | None = None) -> BenchmarkReport:
    """Command-line entry point shared by every benchmark script."""
    parser = argparse.ArgumentParser(description=f"benchmark {name}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds on a CPU (CI); record goes to build/")
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write the JSON record")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run(args.smoke)
    seconds = time.perf_counter() - start
    path = write_record(name, report, smoke=args.smoke, seconds=seconds, out_dir=args.out_dir)
    print(f"## {report.title}" + (" (smoke size)" if args.smoke else ""))
    print(report.to_markdown())
    for key, value in report.figures.items():
        print(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}")
    for note in report.notes:
        print(f"- {note}")
    print(f"(took {seconds:.1f} s; record: {path})")
    return report


def render_results_md(results_dir: Path = RESULTS_DIR) -> str:
    """Markdown for ``benchmarks/RESULTS.md`` from every committed JSON record."""
    parts = [
        "# Benchmark results",
        "",
        "Generated by `python -m course_tools bench --results-only` from `benchmarks/results/*.json`; "
        "do not edit by hand. `make bench` re-runs every script at real size and regenerates this page.",
        "",
    ]
    records = sorted(results_dir.glob("*.json"))
    if not records:
        parts.append("No results recorded yet.")
    for path in records:
        rec = json.loads(path.read_text())
        m = rec.get("machine", {})
        parts += [
            f"## {rec['title']}",
            "",
            f"`benchmarks/{rec['name']}.py` — {rec['date']}, git {rec.get('git_sha')}, "
            f"{m.get('cpu')} ({m.get('cores')} cores), GPU: {m.get('gpu') or 'none'}, torch {m.get('torch')}; "
            f"took {rec['seconds']:.0f} s.",
            "",
        ]
        report = BenchmarkReport(rec["title"], rec["columns"], rec["rows"])
        parts += [report.to_markdown(), ""]
        for key, value in rec.get("figures", {}).items():
            parts.append(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}")
        for note in rec.get("notes", []):
            parts.append(f"- {note}")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def run_scripts(scripts: list[Path], *, smoke: bool) -> list[tuple[Path, int]]:
    """Run each benchmark script (``--smoke`` when asked) in its own process; return (script, exit code)."""
    results = []
    for script in scripts:
        print(f"== {script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script}", flush=True)
        proc = subprocess.run([sys.executable, str(script), *(["--smoke"] if smoke else [])], cwd=REPO_ROOT)
        results.append((script, proc.returncode))
    return results


def main(argv: list[str] | None = None, prog: str = "python -m course_tools bench") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="run the benchmark scripts (real size unless --smoke), then regenerate benchmarks/RESULTS.md"
    )
    parser.add_argument("scripts", nargs="*", type=Path, help="scripts to run (default: every benchmarks/*.py)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; records go to build/benchmarks, not committed")
    parser.add_argument("--results-only", action="store_true", help="only regenerate RESULTS.md from the committed records")
    parser.add_argument("--check", action="store_true", help="only check: exit 1 if RESULTS.md is out of date")
    args = parser.parse_args(argv)
    if args.check:
        current = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
        if current != render_results_md():
            print("benchmarks/RESULTS.md is out of date: run `python -m course_tools bench --results-only`", file=sys.stderr)
            return 1
        return 0
    failed = []
    if not args.results_only:
        scripts = [s.resolve() for s in args.scripts] or sorted(LAYOUT.benchmarks.glob("*.py"))
        failed = [s for s, code in run_scripts(scripts, smoke=args.smoke) if code != 0]
    RESULTS_MD.write_text(render_results_md())
    print(f"wrote {RESULTS_MD}")
    for script in failed:
        print(f"benchmark failed: {script}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
