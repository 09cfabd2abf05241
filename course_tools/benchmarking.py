"""The benchmark harness: every script under ``benchmarks/`` reports through it.

A script defines ``run(smoke: bool) -> BenchmarkReport`` and ends with
``benchmark_main("name", run)``. The harness parses ``--smoke``, runs, prints the table and
writes a JSON record (figures, table, machine, torch version, git sha, date) to
``benchmarks/results/<name>.json`` (real size) or ``build/benchmarks/<name>.json`` (smoke size,
never committed). ``python -m course_tools bench --results-only`` regenerates ``benchmarks/RESULTS.md``
from the committed records.

**Parts.** A script whose experiments are worth running on their own (one needs a GPU, another
an hour of CPU) declares them: ``benchmark_main("name", run, parts=("speed", "char-LSTM"))``,
``run(smoke, parts)`` runs the parts it is given, each inside ``with report.part("speed"):``.
``--only char-LSTM`` then re-runs that part alone and merges it into the committed record: the
other parts' rows, figures and notes are kept, and the record says, per part, when, at which
commit and on which machine it was measured (RESULTS.md prints that where the parts differ, and
names the parts not measured yet: with no record, ``--only`` writes one with just its parts).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_tools.layout import LAYOUT, REPO_ROOT

RESULTS_DIR = LAYOUT.benchmark_results
SMOKE_RESULTS_DIR = LAYOUT.smoke_benchmarks
RESULTS_MD = LAYOUT.results_md


@dataclass
class BenchmarkReport:
    """A table of rows plus named headline figures (numbers with their units in the key).

    Inside ``with report.part(name):`` every row, figure and note added belongs to that part
    (``row_parts``, ``figure_parts``, ``note_parts``), and the part's wall-clock seconds are kept.
    """

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    row_parts: list[str | None] = field(default_factory=list)
    note_parts: list[str | None] = field(default_factory=list)
    figure_parts: dict[str, str | None] = field(default_factory=dict)
    part_seconds: dict[str, float] = field(default_factory=dict)
    current_part: str | None = None

    def add_row(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values but the table has {len(self.columns)} columns")
        self.rows.append(list(values))

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Attribute what is added inside the block to part ``name`` and time it."""
        if self.current_part is not None:
            raise ValueError(f"part {name!r} opened inside part {self.current_part!r}; parts do not nest")
        self._sync_parts()
        self.current_part, start = name, time.perf_counter()
        try:
            yield
        finally:
            self._sync_parts()
            self.part_seconds[name] = round(self.part_seconds.get(name, 0.0) + time.perf_counter() - start, 3)
            self.current_part = None

    def _sync_parts(self) -> None:
        """Attribute rows, notes and figures added since the last call to the current part."""
        self.row_parts += [self.current_part] * (len(self.rows) - len(self.row_parts))
        self.note_parts += [self.current_part] * (len(self.notes) - len(self.note_parts))
        for key in self.figures:
            self.figure_parts.setdefault(key, self.current_part)

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


def _merge_parts(old: dict[str, Any], new: dict[str, Any], parts: Sequence[str], rerun: Sequence[str]) -> dict[str, Any]:
    """``new`` (a run of the parts ``rerun``) merged into the committed record ``old``: the other parts are kept."""
    if "parts" not in old or "row_parts" not in old:
        raise ValueError(
            f"the committed record of {old.get('name')!r} was written by a whole run before it had parts; "
            "run the whole script once (without --only) before re-running single parts"
        )
    if old.get("columns") != new["columns"]:
        raise ValueError(f"the table's columns changed ({old.get('columns')} -> {new['columns']}): run the whole script")
    order = {p: i for i, p in enumerate(parts)}
    def kept(part: str | None) -> bool:  # an old part not re-run; what was outside every part comes from the new run
        return part is not None and part not in rerun

    rows = [(r, p) for r, p in zip(old["rows"], old["row_parts"], strict=True) if kept(p)]
    rows += list(zip(new["rows"], new["row_parts"], strict=True))
    rows.sort(key=lambda rp: order.get(rp[1], len(order)))  # stable: each part keeps its own order
    notes = [(n, p) for n, p in zip(old["notes"], old["note_parts"], strict=True) if kept(p)]
    notes += list(zip(new["notes"], new["note_parts"], strict=True))
    notes.sort(key=lambda np_: order.get(np_[1], len(order)))
    figure_parts = {k: p for k, p in old["figure_parts"].items() if kept(p)} | new["figure_parts"]
    figures = {k: v for k, v in old["figures"].items() if kept(old["figure_parts"].get(k))} | new["figures"]
    merged_parts = {p: v for p, v in old["parts"].items() if kept(p)} | new["parts"]
    return new | {
        "rows": [r for r, _ in rows],
        "row_parts": [p for _, p in rows],
        "notes": [n for n, _ in notes],
        "note_parts": [p for _, p in notes],
        "figures": dict(sorted(figures.items(), key=lambda kv: order.get(figure_parts[kv[0]], len(order)))),
        "figure_parts": figure_parts,
        "parts": dict(sorted(merged_parts.items(), key=lambda kv: order.get(kv[0], len(order)))),
    }


def write_record(
    name: str,
    report: BenchmarkReport,
    *,
    smoke: bool,
    seconds: float,
    out_dir: Path | None = None,
    parts: Sequence[str] | None = None,
    rerun: Sequence[str] | None = None,
    sha: str | None = None,
) -> Path:
    """Write the JSON record of one benchmark run atomically; return its path.

    ``parts``: the parts the script declares; ``rerun``: the subset this run measured (default:
    all). When ``rerun`` is a proper subset, the run is merged into the record already at the path
    (if there is none, the record holds just the parts run). ``sha``: the commit the run started
    from (default: HEAD now; a long run should pass the one it read at its start).
    """
    out_dir = out_dir or (SMOKE_RESULTS_DIR if smoke else RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    report._sync_parts()
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    sha, machine = sha or git_sha(), machine_info()
    record: dict[str, Any] = {
        "name": name,
        "title": report.title,
        "smoke": smoke,
        "seconds": round(seconds, 3),
        "date": now,
        "git_sha": sha,
        "machine": machine,
        "columns": report.columns,
        "rows": report.rows,
        "figures": report.figures,
        "notes": report.notes,
    }
    path = out_dir / f"{name}.json"
    if parts:
        record |= {
            "row_parts": report.row_parts,
            "note_parts": report.note_parts,
            "figure_parts": report.figure_parts,
            "parts": {
                p: {"date": now, "git_sha": sha, "machine": machine, "seconds": report.part_seconds[p]}
                for p in parts
                if p in report.part_seconds
            },
        }
        record["declared_parts"] = list(parts)
        rerun = list(rerun or parts)
        if set(rerun) != set(parts) and path.exists():  # merge; with no record yet, the parts run are the record
            old = json.loads(path.read_text())
            if old.get("smoke", False) != smoke:
                raise ValueError(f"{path} holds a {'smoke' if old.get('smoke') else 'real'}-size run; cannot merge into it")
            record = _merge_parts(old, record, parts, rerun)
            record["seconds"] = round(sum(v["seconds"] for v in record["parts"].values()), 3)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


def benchmark_main(
    name: str,
    run: Callable[..., BenchmarkReport],
    argv: list[str] | None = None,
    *,
    parts: Sequence[str] | None = None,
) -> BenchmarkReport:
    """Command-line entry point shared by every benchmark script.

    Without ``parts``, ``run(smoke)``; with ``parts``, ``run(smoke, selected_parts)`` and an
    ``--only PART ...`` option that re-runs some parts and merges them into the committed record.
    """
    parser = argparse.ArgumentParser(description=f"benchmark {name}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds on a CPU (CI); record goes to build/")
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write the JSON record")
    if parts:
        parser.add_argument(
            "--only",
            nargs="+",
            choices=list(parts),
            metavar="PART",
            help=f"run only these parts ({', '.join(parts)}) and merge them into the existing record",
        )
    args = parser.parse_args(argv)
    sha = git_sha()  # the code that runs: HEAD may move during an hour-long run
    selected = [p for p in parts if p in (args.only or parts)] if parts else []
    start = time.perf_counter()
    report = run(args.smoke, tuple(selected)) if parts else run(args.smoke)
    seconds = time.perf_counter() - start
    report._sync_parts()
    missing = [p for p in selected if p not in report.part_seconds]
    if missing:
        raise RuntimeError(f"benchmark {name}: run() never opened part(s) {missing} (use `with report.part(...)`)")
    path = write_record(
        name, report, smoke=args.smoke, seconds=seconds, out_dir=args.out_dir, parts=parts, rerun=selected or None, sha=sha
    )
    suffix = (" (smoke size)" if args.smoke else "") + (f" (parts: {', '.join(selected)})" if parts else "")
    print(f"## {report.title}{suffix}")
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
        runs = rec.get("parts", {})
        missing = [p for p in rec.get("declared_parts", []) if p not in runs]
        if missing:
            parts.append(
                f"Not measured yet: {', '.join(missing)} (`python benchmarks/{rec['name']}.py --only {' '.join(missing)}`)."
            )
            parts.append("")
        if len({(v.get("date"), v.get("git_sha")) for v in runs.values()}) > 1:
            parts.append("Parts measured in separate runs:")
            parts.append("")
            for part, v in runs.items():
                vm = v.get("machine", {})
                parts.append(
                    f"- {part}: {v.get('date')}, git {v.get('git_sha')}, {vm.get('cpu')} ({vm.get('cores')} cores), "
                    f"GPU: {vm.get('gpu') or 'none'}; {v.get('seconds', 0):.0f} s"
                )
            parts.append("")
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
