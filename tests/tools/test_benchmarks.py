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


def _parts_script(values: dict[str, float]):
    """A benchmark with parts "a" and "b"; each part's row and figure carry values[part]."""

    def run(smoke: bool, parts: tuple[str, ...]) -> BenchmarkReport:
        report = BenchmarkReport("parts demo", ["part", "value"])
        for part in parts:
            with report.part(part):
                report.add_row(part, values[part])
                report.figures[f"{part} value"] = values[part]
                report.notes.append(f"note of {part}")
        report.notes.append("device: test")  # outside every part: always from the latest run
        return report

    return run


def test_only_reruns_one_part_and_keeps_the_others(tmp_path, capsys):
    out = ["--out-dir", str(tmp_path)]
    benchmark_main("pd", _parts_script({"a": 1.0, "b": 2.0}), out, parts=("a", "b"))
    first = json.loads((tmp_path / "pd.json").read_text())
    assert first["rows"] == [["a", 1.0], ["b", 2.0]] and first["row_parts"] == ["a", "b"]
    assert set(first["parts"]) == {"a", "b"} and first["figure_parts"] == {"a value": "a", "b value": "b"}
    # re-run part "a" alone with a new value: "b" is kept, untouched, with its own provenance
    first["parts"]["b"]["date"] = "2000-01-01T00:00:00+00:00"
    (tmp_path / "pd.json").write_text(json.dumps(first))
    benchmark_main("pd", _parts_script({"a": 5.0, "b": -1.0}), [*out, "--only", "a"], parts=("a", "b"))
    merged = json.loads((tmp_path / "pd.json").read_text())
    assert merged["rows"] == [["a", 5.0], ["b", 2.0]]
    assert merged["figures"] == {"a value": 5.0, "b value": 2.0}
    assert merged["notes"] == ["note of a", "note of b", "device: test"]
    assert merged["parts"]["b"]["date"].startswith("2000") and not merged["parts"]["a"]["date"].startswith("2000")
    md = render_results_md(tmp_path)
    assert "Parts measured in separate runs" in md and "- b: 2000-01-01" in md and "| a | 5 |" in md
    # re-running part "b" after that keeps the new "a"
    benchmark_main("pd", _parts_script({"a": 9.0, "b": 3.0}), [*out, "--only", "b"], parts=("a", "b"))
    again = json.loads((tmp_path / "pd.json").read_text())
    assert again["rows"] == [["a", 5.0], ["b", 3.0]] and len(again["notes"]) == 3
    capsys.readouterr()


def test_only_refuses_what_it_cannot_merge(tmp_path, capsys):
    out = ["--out-dir", str(tmp_path)]
    run = _parts_script({"a": 1.0, "b": 2.0})
    benchmark_main("pd", run, [*out, "--only", "b"], parts=("a", "b"))  # no record yet: one with part b alone
    partial = json.loads((tmp_path / "pd.json").read_text())
    assert partial["rows"] == [["b", 2.0]] and list(partial["parts"]) == ["b"]
    assert "Not measured yet: a (`python benchmarks/pd.py --only a`)" in render_results_md(tmp_path)
    benchmark_main("pd", run, [*out, "--only", "a"], parts=("a", "b"))
    assert json.loads((tmp_path / "pd.json").read_text())["rows"] == [["a", 1.0], ["b", 2.0]]
    assert "Not measured yet" not in render_results_md(tmp_path)
    legacy = {"name": "pd", "smoke": False, "columns": ["part", "value"], "rows": [], "figures": {}, "notes": []}
    (tmp_path / "pd.json").write_text(json.dumps(legacy))
    with pytest.raises(ValueError, match="before it had parts"):
        benchmark_main("pd", run, [*out, "--only", "a"], parts=("a", "b"))
    assert json.loads((tmp_path / "pd.json").read_text()) == legacy, "a refused merge must leave the record as it was"
    with pytest.raises(SystemExit):  # an unknown part is an argparse error naming the choices
        benchmark_main("pd", run, [*out, "--only", "c"], parts=("a", "b"))
    assert "invalid choice: 'c'" in capsys.readouterr().err

    def forgetful(smoke: bool, parts: tuple[str, ...]) -> BenchmarkReport:
        return BenchmarkReport("t", ["x"])

    with pytest.raises(RuntimeError, match=r"never opened part\(s\) \['a', 'b'\]"):
        benchmark_main("pd", forgetful, out, parts=("a", "b"))
    with pytest.raises(ValueError, match="do not nest"):
        report = BenchmarkReport("t", ["x"])
        with report.part("a"), report.part("b"):
            pass


def test_readme_names_every_benchmark_that_has_parts():
    """The README's `--only` row lists the scripts whose parts can be re-run alone."""
    with_parts = sorted(p.stem for p in SCRIPTS if "parts=PARTS" in p.read_text())
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "scripts with `PARTS`" in line)
    listed = row.split("scripts with `PARTS`:", 1)[1].split(")", 1)[0]
    missing = [name for name in with_parts if f"`{name}`" not in listed]
    assert with_parts and not missing, f"README's --only row does not name {missing}: add them"
