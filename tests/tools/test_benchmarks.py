"""Every benchmark script runs at smoke size and writes its record; RESULTS.md matches the records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from course_tools.benchmarking import BenchmarkReport, benchmark_main, render_results_md, time_call, write_record
from course_tools.layout import REPO_ROOT

ROOT = REPO_ROOT
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_runs_at_smoke_size(script, tmp_path):
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--out-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    [record] = list(tmp_path.glob("*.json"))
    data = json.loads(record.read_text())
    assert data["smoke"] is True and data["rows"], f"{script.name} wrote an empty record"
    assert {"cpu", "cores", "torch"} <= set(data["machine"])


def test_results_md_is_generated_from_the_committed_records():
    assert (ROOT / "benchmarks" / "RESULTS.md").read_text() == render_results_md(), "run `python -m course_tools.benchmarking`"


def test_harness_round_trip(tmp_path, capsys):
    def run(smoke: bool) -> BenchmarkReport:
        report = BenchmarkReport("demo", ["size", "ms"])
        report.add_row(3, 1.5)
        report.figures["speed-up (x)"] = 2.0
        return report

    benchmark_main("demo", run, ["--smoke", "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| size | ms |" in out and "| 3 | 1.5 |" in out and "speed-up (x): 2" in out
    rec = json.loads((tmp_path / "demo.json").read_text())
    assert rec["rows"] == [[3, 1.5]] and rec["figures"] == {"speed-up (x)": 2.0}
    md = render_results_md(tmp_path)
    assert "## demo" in md and "| 3 | 1.5 |" in md
    with pytest.raises(ValueError, match="columns"):
        BenchmarkReport("x", ["a"]).add_row(1, 2)
    path = write_record("again", run(True), smoke=True, seconds=0.1, out_dir=tmp_path)
    assert not list(tmp_path.glob("*.tmp")) and path.exists()


def test_time_call_returns_the_median():
    calls = []
    assert time_call(lambda: calls.append(1), repeat=3, warmup=2) >= 0
    assert len(calls) == 5
