"""The executor's cache (course_tools.notebooks.cache): an unchanged notebook is not executed again.

One real tiny execution (a few seconds) feeds every test of this module; re-executions past it are
observed through a spy in place of the per-notebook subprocess, so that no second kernel starts.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from course_tools.layout import LAYOUT
from course_tools.notebooks import cache
from course_tools.notebooks import execute as ex

TINY = '''# %% tags=["parameters"]
SMOKE = False

# %%
print(f"tiny SMOKE={SMOKE}")
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A tiny lecture executed once for real (smoke mode), and a byte-identical copy of course_lib."""
    root = tmp_path_factory.mktemp("course")
    src = root / "lectures" / "96-tiny" / "96-tiny.py"
    src.parent.mkdir(parents=True)
    src.write_text(TINY)
    lib = root / "lib" / "course_lib"
    shutil.copytree(cache.LIB_DIR, lib, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = root / "build"
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_GPU", "0")
    mp.delenv("COURSE_SMOKE", raising=False)
    [result] = ex.execute_many([src], smoke=True, jobs=1, timeout=120, build_dir=build, lib_dir=lib)
    mp.undo()
    assert result.status == "ok", result.detail
    return {"root": root, "src": src, "lib": lib, "build": build, "out": Path(result.output)}


@pytest.fixture
def spy(monkeypatch):
    """Replace the per-notebook subprocess: record the call, write a fake executed notebook, start no kernel."""
    calls: list[tuple[Path, bool]] = []

    def fake(source, output, smoke, timeout, audit_claims=False, threads=None):
        calls.append((Path(source), smoke))
        nb = nbformat.v4.new_notebook()
        nb.metadata["course"] = {"mode": "smoke" if smoke else "full", "date": "2099-01-01 00:00 UTC", "seconds": 1.0,
                                 "device": "spy", "executor": "papermill"}
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
        return ex.RunResult(str(source), str(output), 0.1, "ok")

    monkeypatch.setenv("COURSE_GPU", "0")
    monkeypatch.setattr(ex, "_run_in_subprocess", fake)
    return calls


def copy_course(course, tmp_path) -> dict:
    """A private copy of the executed course (tests that change a file must not disturb the others)."""
    root = tmp_path / "course"
    shutil.copytree(course["root"], root)
    rel = {k: Path(course[k]).relative_to(course["root"]) for k in ("src", "lib", "build", "out")}
    return {k: root / v for k, v in rel.items()} | {"root": root}


def run(c, *, smoke=True, use_cache=True):
    [result] = ex.execute_many([c["src"]], smoke=smoke, jobs=1, timeout=120, build_dir=c["build"], lib_dir=c["lib"],
                               use_cache=use_cache)
    return result


def test_a_successful_run_leaves_a_record_beside_the_notebook(course):
    record = json.loads(cache.record_path(course["out"]).read_text())
    assert cache.record_path(course["out"]).name == "96-tiny.run.json"
    assert record["mode"] == "smoke" and record["parts"]["mode"] == "smoke"
    assert record["seconds"] > 0 and record["date"].endswith("UTC") and record["device"].startswith("CPU")
    assert set(record["parts"]["versions"]) == {"torch", "numpy"}
    assert "tiny SMOKE=True" in course["out"].read_text()


def test_unchanged_notebook_is_reused_without_starting_a_kernel(course, spy, monkeypatch):
    before = course["out"].read_bytes()
    start = time.perf_counter()
    result = run(course)
    assert spy == [], "an unchanged notebook was executed again"
    assert result.status == "cached" and result.ok and time.perf_counter() - start < 5
    assert "executed" in result.detail and " s on CPU" in result.detail
    assert course["out"].read_bytes() == before
    assert "cached" in ex.format_table([result])


def test_cli_prints_cached_and_force_executes_again(course, spy, capsys, monkeypatch, tmp_path):
    c = copy_course(course, tmp_path)
    monkeypatch.setattr(cache, "LIB_DIR", c["lib"])
    assert ex.main(["execute", str(c["src"]), "--build-dir", str(c["build"])]) == 0
    assert "cached" in capsys.readouterr().out and spy == []
    assert ex.main(["execute", str(c["src"]), "--build-dir", str(c["build"]), "--force"]) == 0
    assert len(spy) == 1 and "no cache (--force)" in capsys.readouterr().out


def test_a_changed_notebook_is_executed_again(course, tmp_path, monkeypatch):
    """The second (and last) real execution: the new output shows the changed source."""
    c = copy_course(course, tmp_path)
    monkeypatch.setenv("COURSE_GPU", "0")
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    c["src"].write_text(TINY.replace("tiny SMOKE", "changed SMOKE"))
    key = cache.cache_key(c["src"], smoke=True, gpu_cells=False, lib_dir=c["lib"])
    assert cache.why_not_cached(c["out"], key) == "changed since the last run: source_sha256"
    result = run(c)
    assert result.status == "ok", result.detail
    assert "changed SMOKE=True" in c["out"].read_text()
    assert run(c).status == "cached"


def test_a_changed_course_lib_file_executes_again(course, spy, tmp_path):
    c = copy_course(course, tmp_path)
    assert run(c).status == "cached" and spy == []  # a byte-identical copy of the library keeps the key
    training = c["lib"] / "training.py"
    training.write_text(training.read_text() + "\n# a change\n")
    key = cache.cache_key(c["src"], smoke=True, gpu_cells=False, lib_dir=c["lib"])
    assert cache.why_not_cached(c["out"], key) == "changed since the last run: library_sha256"
    assert run(c).status == "ok" and len(spy) == 1
    (c["lib"] / "new_module.py").write_text("X = 1\n")  # a new file counts too
    assert run(c).status == "ok" and len(spy) == 2
    assert run(c).status == "cached" and len(spy) == 2


def test_full_and_smoke_runs_never_reuse_each_other(course, spy, tmp_path):
    c = copy_course(course, tmp_path)
    full = run(c, smoke=False)  # same build folder on purpose: the key alone must tell the modes apart
    assert full.status == "ok" and spy == [(c["src"], False)]
    assert json.loads(cache.record_path(c["out"]).read_text())["parts"]["mode"] == "full"
    assert run(c, smoke=False).status == "cached"
    assert run(c, smoke=True).status == "ok" and spy[-1] == (c["src"], True)
    # and the CLI keeps them in separate folders by default; the Makefile builds the site from the full one
    assert ex.FULL_BUILD_DIR == LAYOUT.executed_full != ex.BUILD_DIR == LAYOUT.executed
    makefile = (LAYOUT.root / "Makefile").read_text()
    assert "build/executed$(if $(filter 1,$(FULL)),-full,)" in makefile
    assert "site build --strict --executed $(EXECUTED)" in makefile


def test_other_key_parts_gpu_and_versions(course, monkeypatch):
    base = cache.cache_key(course["src"], smoke=True, gpu_cells=False, lib_dir=course["lib"])
    assert base.digest == cache.cache_key(course["src"], smoke=True, gpu_cells=False, lib_dir=course["lib"]).digest
    assert base.digest != cache.cache_key(course["src"], smoke=True, gpu_cells=True, lib_dir=course["lib"]).digest
    monkeypatch.setattr(cache, "package_versions", lambda: {"torch": "9.9.9", "numpy": base.versions["numpy"]})
    other = cache.cache_key(course["src"], smoke=True, gpu_cells=False, lib_dir=course["lib"])
    assert other.digest != base.digest
    assert cache.why_not_cached(course["out"], other) == "changed since the last run: versions"


def test_an_overwritten_output_or_a_failed_run_is_not_trusted(course, spy, tmp_path, monkeypatch):
    c = copy_course(course, tmp_path)
    nb = json.loads(c["out"].read_text())
    nb["metadata"]["course"]["executor"] = "nbval (make test)"  # what make test's nbval run does to build/executed
    c["out"].write_text(json.dumps(nb))
    key = cache.cache_key(c["src"], smoke=True, gpu_cells=False, lib_dir=c["lib"])
    assert cache.why_not_cached(c["out"], key) == "the executed notebook was overwritten since the last run"
    assert run(c).status == "ok" and len(spy) == 1

    def failing(source, output, smoke, timeout, audit_claims=False, threads=None):
        spy.append((Path(source), smoke))
        return ex.RunResult(str(source), str(output), 0.1, "failed", "code cell 1: ValueError: planted")

    monkeypatch.setattr(ex, "_run_in_subprocess", failing)
    c["src"].write_text(TINY + "\n# %%\nraise ValueError('planted')\n")
    assert run(c).status == "failed"
    assert not cache.record_path(c["out"]).exists(), "a failed run left a record that would vouch for it"
    assert run(c).status == "failed" and len(spy) == 3, "a failed notebook must be retried"
