"""The notebook executor (course_tools.notebooks.execute), the converter, and gpu-cell handling in nbval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.gpu import SKIP_MESSAGE, cuda_available, mark_skipped_gpu_cells
from course_lib.notebook import smoke_mode
from course_tools.layout import REPO_ROOT
from course_tools.notebooks.convert import NotebookSourceError, read_source
from course_tools.notebooks.execute import execute_many, format_table

ROOT = REPO_ROOT

DEMO = '''# %% tags=["parameters"]
SMOKE = False

# %%
import os
print(f"SMOKE={SMOKE} env={os.environ.get('COURSE_SMOKE')}")

# %% tags=["gpu"]
print("gpu cell executed")

# %%
print("last cell")
'''


@pytest.fixture
def demo(tmp_path):
    src = tmp_path / "lectures" / "98-demo" / "98-demo.py"
    src.parent.mkdir(parents=True)
    src.write_text(DEMO)
    return src


def outputs(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("has_cuda", [False, True], ids=["no-cuda", "fake-cuda"])
def test_executor_passes_smoke_and_skips_gpu_cells_only_without_cuda(demo, tmp_path, monkeypatch, has_cuda):
    monkeypatch.setenv("COURSE_GPU", "1" if has_cuda else "0")
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    [result] = execute_many([demo], smoke=True, jobs=1, timeout=120, build_dir=tmp_path / "build")
    assert result.status == "ok", result.detail
    assert result.skipped_gpu_cells == (0 if has_cuda else 1)
    outs = outputs(Path(result.output))
    # cells: parameters, injected parameters, print, gpu, last
    assert outs[2] == "SMOKE=True env=1\n"
    assert outs[3] == ("gpu cell executed\n" if has_cuda else SKIP_MESSAGE)
    assert outs[4] == "last cell\n"


def test_executor_full_mode_passes_smoke_false(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GPU", "0")
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    [result] = execute_many([demo], smoke=False, jobs=1, timeout=120, build_dir=tmp_path / "build")
    assert outputs(Path(result.output))[2] == "SMOKE=False env=None\n"


def test_kernels_share_the_cores_unless_omp_num_threads_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GPU", "0")
    folder = tmp_path / "lectures" / "96-threads"
    folder.mkdir(parents=True)
    sources = []
    for name in ("96-a", "96-b"):
        sources.append(folder / f"{name}.py")
        sources[-1].write_text('# %% tags=["parameters"]\nSMOKE = False\n# %%\nimport os, torch\n'
                               'print(os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads())\n')
    cores = os.cpu_count() or 1
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for jobs, expected in ((1, cores), (2, max(1, cores // 2))):
        results = execute_many(sources, jobs=jobs, timeout=120, build_dir=tmp_path / f"b{jobs}", use_cache=False)
        for r in results:
            assert r.status == "ok", r.detail
            assert outputs(Path(r.output))[2] == f"{expected} {expected}\n", (jobs, outputs(Path(r.output)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the caller's choice (make's NB_THREADS) wins, even alone
    [r] = execute_many(sources[:1], jobs=1, timeout=120, build_dir=tmp_path / "b3", use_cache=False)
    assert outputs(Path(r.output))[2] == "1 1\n"


def test_failures_and_timeouts_are_reported_per_notebook_and_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GPU", "0")
    folder = tmp_path / "lectures" / "97-mixed"
    folder.mkdir(parents=True)
    ok = folder / "97-ok.py"
    ok.write_text('# %% tags=["parameters"]\nSMOKE = False\n# %%\nprint("fine")\n')
    bad = folder / "97-bad.py"
    bad.write_text('# %% tags=["parameters"]\nSMOKE = False\n# %%\nx = 1\n# %%\nraise ValueError("planted failure")\n')
    slow = folder / "97-slow.py"
    slow.write_text('# %% tags=["parameters"]\nSMOKE = False\n# %%\nprint("before the slow cell")\n'
                    '# %%\nimport time\ntime.sleep(600)\n# %%\nprint("never reached")\n')
    results = {Path(r.source).stem: r for r in execute_many([ok, bad, slow], jobs=3, timeout=20, build_dir=tmp_path / "b")}
    assert results["97-ok"].status == "ok"
    assert results["97-bad"].status == "failed" and "planted failure" in results["97-bad"].detail
    assert "ValueError" in results["97-bad"].detail
    assert Path(results["97-bad"].output).exists(), "a failed notebook's partial output is kept for inspection"
    assert results["97-slow"].status == "timeout" and results["97-slow"].seconds < 60
    # a timed-out notebook keeps the cells it executed, and says where it stopped (papermill's injected
    # parameters cell counts: it is in the notebook the reader opens)
    assert "code cell 4 of 5 ('import time')" in results["97-slow"].detail, results["97-slow"].detail
    assert str(results["97-slow"].output) in results["97-slow"].detail
    kept = nbformat.read(results["97-slow"].output, as_version=4)
    assert kept.metadata["course"]["timed_out_in"].startswith("code cell 4 of 5")
    printed = ["".join(o.get("text", "")) for c in kept.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert "before the slow cell\n" in printed and not any("never reached" in t for t in printed)
    assert not list((tmp_path / "b").rglob("*.partial.ipynb")), "no partial file is left behind"
    from course_tools.notebooks.conventions import executed_problems

    assert any("killed on its timeout in code cell 4 of 5" in p for p in executed_problems(kept))
    table = format_table(list(results.values()))
    assert "timeout" in table and "failed" in table and "total" in table


def test_cli_exit_status_and_table(demo, tmp_path):
    env = {**os.environ, "COURSE_GPU": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "course_tools.notebooks.execute", "execute", str(demo), "--build-dir", str(tmp_path / "b"), "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "seconds" in proc.stdout and "ok (1 gpu cells skipped)" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())[0]["status"] == "ok"
    proc = subprocess.run([sys.executable, "-m", "course_tools.notebooks.execute", "execute", str(tmp_path / "missing.py")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "no such notebook source" in proc.stderr


def test_conversion_is_deterministic_and_keeps_tags_and_nbgrader_metadata(tmp_path):
    src = tmp_path / "n.py"
    src.write_text('# %% tags=["gpu"]\nx = 1\n\n# %% nbgrader={"grade": true, "grade_id": "t1", "locked": true, "points": 2, "solution": false, "schema_version": 3}\nassert x\n')
    a, b = read_source(src), read_source(src)
    assert nbformat.writes(a) == nbformat.writes(b)
    assert [c.id for c in a.cells] == ["cell-000", "cell-001"]
    assert a.cells[0].metadata["tags"] == ["gpu"]
    assert a.cells[1].metadata["nbgrader"]["points"] == 2
    assert "jupytext" not in read_source(src, strip_jupytext=True).metadata


def test_unreadable_source_gives_a_clear_error(tmp_path):
    with pytest.raises(NotebookSourceError, match="does not exist"):
        read_source(tmp_path / "nope.py")


def test_smoke_mode_and_gpu_overrides(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")
    assert smoke_mode(False) is True
    monkeypatch.setenv("COURSE_SMOKE", "0")
    assert smoke_mode(False) is False and smoke_mode(True) is True
    monkeypatch.setenv("COURSE_GPU", "0")
    assert cuda_available() is False
    monkeypatch.setenv("COURSE_GPU", "1")
    assert cuda_available() is True


def test_mark_skipped_gpu_cells_leaves_executed_cells_alone():
    nb = nbformat.v4.new_notebook()
    ran = nbformat.v4.new_code_cell("1", metadata={"tags": ["gpu"]})
    ran.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    skipped = nbformat.v4.new_code_cell("2", metadata={"tags": ["gpu"]})
    plain = nbformat.v4.new_code_cell("3")
    nb.cells = [ran, skipped, plain]
    assert mark_skipped_gpu_cells(nb) == 1
    assert skipped.outputs[0].text == SKIP_MESSAGE and ran.outputs[0].text == "ran\n" and plain.outputs == []


@pytest.mark.parametrize("has_cuda", [False, True], ids=["no-cuda", "fake-cuda"])
def test_nbval_skips_gpu_cells_without_cuda_and_keeps_the_execution(tmp_path, has_cuda):
    """Run pytest --nbval-lax with this repository's conftest on a tiny notebook."""
    folder = tmp_path / "lectures" / "98-demo"
    folder.mkdir(parents=True)
    nb = read_source(_write(folder / "98-demo.py", DEMO))
    nbformat.write(nb, folder / "98-demo.ipynb")
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    env = {**os.environ, "COURSE_GPU": "1" if has_cuda else "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-rs", "lectures"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    if has_cuda:
        assert "4 passed" in proc.stdout
    else:
        assert "3 passed, 1 skipped" in proc.stdout and "skipped: needs a CUDA GPU" in proc.stdout
    assert "seconds per notebook" in proc.stdout
    executed = tmp_path / "build" / "executed" / "lectures" / "98-demo" / "98-demo.ipynb"
    outs = outputs(executed)
    assert outs[1] == "SMOKE=False env=1\n"  # nbval runs the notebook as written, smoke mode via COURSE_SMOKE
    assert outs[2] == ("gpu cell executed\n" if has_cuda else SKIP_MESSAGE)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CLAIMS_DEMO = '''# %% tags=["parameters"]
SMOKE = False

# %%
from course_lib.notebook import claim, setup_notebook
SMOKE = setup_notebook(SMOKE)
claim(2 > 1, "two beats one")

# %%
claim(1 > 2, "one beats two")

# %%
print("after the failed claim")
'''


def test_claims_are_counted_and_audit_mode_runs_past_a_failed_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_GPU", "0")
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    monkeypatch.setenv("COURSE_CLAIMS", "audit")  # the executor, not the caller's environment, decides
    src = tmp_path / "lectures" / "95-claims" / "95-claims.py"
    src.parent.mkdir(parents=True)
    src.write_text(CLAIMS_DEMO)
    [plain] = execute_many([src], smoke=False, jobs=1, timeout=120, build_dir=tmp_path / "plain")
    assert plain.status == "failed" and "one beats two" in plain.detail
    assert (plain.claims_checked, plain.claims_failed) == (1, 0)
    [audited] = execute_many([src], smoke=False, jobs=1, timeout=120, build_dir=tmp_path / "audit", audit_claims=True)
    assert audited.status == "ok", audited.detail
    assert (audited.claims_checked, audited.claims_failed, audited.claims_unchecked) == (1, 1, 0)
    assert outputs(Path(audited.output))[-1] == "after the failed claim\n"
    record = json.loads(Path(audited.output).with_name("95-claims.run.json").read_text())
    assert record["claims_audited"] and record["claims_failed"] == 1 and record["parts"]["mode"] == "full-audit-claims"
    [smoke] = execute_many([src], smoke=True, jobs=1, timeout=120, build_dir=tmp_path / "smoke", audit_claims=True)
    assert smoke.status == "ok" and (smoke.claims_checked, smoke.claims_unchecked) == (0, 2)
    assert "1/1/0" in format_table([audited]) and "claims" in format_table([audited])
