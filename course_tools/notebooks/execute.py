"""The course's notebook executor, used by the Makefile and by the tests.

    python -m course_tools sync                      # write the .ipynb twins
    python -m course_tools execute [--full] [--force] [--jobs N] [--timeout S] [PATH ...]

``execute`` converts each source (``lectures/*/*.py`` and ``solutions/*/*.py`` by default) to a
notebook, runs it with papermill (``SMOKE=True`` and ``COURSE_SMOKE=1`` unless ``--full``) in a
separate process per notebook, several at once, each under a wall-clock timeout, skips ``gpu``
cells where no CUDA device exists (they then show a visible "skipped" output), writes the executed
notebooks under ``build/executed/`` (smoke) or ``build/executed-full/`` (``--full``) and prints a
table notebook → seconds → status. A notebook whose source, ``course_lib`` sources, mode, GPU
decision and torch/numpy versions are unchanged since its last successful run is not executed again
(status ``cached``; see :mod:`course_tools.notebooks.cache`); ``--force`` executes every notebook.
The table also counts the claims each run checked (``✔``), failed (``✘``) and left unchecked
(smoke). ``--audit-claims`` (full mode, ``COURSE_CLAIMS=audit``) lets a run go on past a claim that
does not hold, so that one run measures every claim; such runs are cached apart from plain ones.
Exit status 0 when every notebook ran (or was cached), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from course_lib.gpu import GPU_ENV_VAR, cuda_available, mark_skipped_gpu_cells, skip_tag
from course_lib.notebook import CLAIM_CHECKED_MARK, CLAIM_FAILED_MARK, CLAIM_UNCHECKED_MARK, CLAIMS_ENV_VAR
from course_tools.layout import LAYOUT, LECTURES, REPO_ROOT, SMOKE_ENV_VAR, SOLUTIONS
from course_tools.notebooks import cache
from course_tools.notebooks.convert import find_sources, read_source, write_notebook

BUILD_DIR = LAYOUT.executed
#: full-mode outputs live apart, so that a smoke run never overwrites or reuses them (and vice versa)
FULL_BUILD_DIR = LAYOUT.executed_full
DEFAULT_TIMEOUT_S = 600


@dataclass
class RunResult:
    """What happened to one notebook."""

    source: str
    output: str
    seconds: float
    status: str  # "ok", "cached" (unchanged since its last successful run: not executed), "failed", "timeout"
    detail: str = ""
    skipped_gpu_cells: int = 0
    #: claims in the output: checked and held, checked and failed (``--audit-claims``), not checked (smoke)
    claims_checked: int = 0
    claims_failed: int = 0
    claims_unchecked: int = 0

    @property
    def ok(self) -> bool:
        """True when the output is a successful run of the current source (executed now or cached)."""
        return self.status in {"ok", "cached"}


def output_path(source: Path, build_dir: Path = BUILD_DIR, root: Path = REPO_ROOT) -> Path:
    """``lectures/01-x/01-x.py`` → ``build/executed/lectures/01-x/01-x.ipynb``."""
    try:
        rel = source.resolve().relative_to(root)
    except ValueError:
        rel = Path(source.parent.name) / source.name
    return build_dir / rel.with_suffix(".ipynb")


def _first_error(nb) -> str:
    for index, cell in enumerate(c for c in nb.cells if c.get("cell_type") == "code"):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"code cell {index}: {out.get('ename')}: {str(out.get('evalue'))[:200]}"
    return ""


def count_claims(nb) -> dict[str, int]:
    """How many claim lines the outputs of ``nb`` show, by outcome (``claims_checked``, ``_failed``, ``_unchecked``)."""
    counts = {"claims_checked": 0, "claims_failed": 0, "claims_unchecked": 0}
    marks = {CLAIM_CHECKED_MARK: "claims_checked", CLAIM_FAILED_MARK: "claims_failed",
             CLAIM_UNCHECKED_MARK: "claims_unchecked"}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") != "stream" or out.get("name") != "stdout":
                continue
            text = out.get("text", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                for mark, field in marks.items():
                    if line.startswith(mark):
                        counts[field] += 1
    return counts


def run_metadata(smoke: bool, seconds: float, executor: str) -> dict:
    """What the website says about a run: mode, date (UTC), seconds, device (``metadata.course``)."""
    import datetime
    import platform

    if cuda_available():
        try:
            import torch

            device = f"GPU ({torch.cuda.get_device_name(0)})"
        except (AssertionError, RuntimeError):  # COURSE_GPU=1 forced on a machine without CUDA (tests)
            device = "GPU (forced by COURSE_GPU=1)"
    else:
        device = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return {"mode": "smoke" if smoke else "full", "seconds": round(seconds, 1), "executor": executor,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "device": device}


def partial_path(output: Path) -> Path:
    """Where a run in progress keeps its notebook (papermill saves it as each cell starts)."""
    return output.with_name(f".{output.stem}.partial.ipynb")


def execute_one(source: Path, output: Path, *, smoke: bool = True, cell_timeout: int = DEFAULT_TIMEOUT_S,
                keep_partial: bool = False) -> RunResult:
    """Execute one notebook source in this process with papermill (the worker of :func:`execute_many`).

    With ``keep_partial``, papermill writes the notebook in progress to :func:`partial_path` instead
    of a temporary folder, so that a run killed on its timeout still leaves what it had executed."""
    import nbformat
    import papermill

    source = Path(source)
    start = time.perf_counter()
    nb = read_source(source)
    if smoke:
        os.environ[SMOKE_ENV_VAR] = "1"
    has_cuda = cuda_available()
    # the kernel inherits the environment: fix the GPU decision so every executor agrees with us
    os.environ[GPU_ENV_VAR] = "1" if has_cuda else "0"
    status, detail = "ok", ""
    tag = skip_tag(has_cuda)
    extra = {"skip_cells_with_tag": tag} if tag else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = partial_path(output) if keep_partial else Path(tmp) / output.name
        tmp_out.parent.mkdir(parents=True, exist_ok=True)
        try:
            papermill.execute_notebook(
                nb,
                str(tmp_out),
                parameters={"SMOKE": bool(smoke)},
                cwd=str(source.parent),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=cell_timeout,
                **extra,
            )
        except papermill.PapermillExecutionError as exc:
            status, detail = "failed", f"code cell {exc.exec_count}: {exc.ename}: {str(exc.evalue)[:200]}"
        except Exception as exc:  # kernel death, timeout inside papermill, bad notebook
            status, detail = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
        skipped = 0
        if tmp_out.exists():
            executed = nbformat.read(tmp_out, as_version=4)
            executed.metadata["course"] = run_metadata(smoke, time.perf_counter() - start, "papermill")
            skipped = mark_skipped_gpu_cells(executed) if not has_cuda else 0
            if status == "ok" and _first_error(executed):
                status, detail = "failed", _first_error(executed)
            claims = count_claims(executed)
            executed.metadata["course"].update(claims)
            write_notebook(executed, output)
            tmp_out.unlink(missing_ok=True)
        else:
            claims = {}
    return RunResult(str(source), str(output), round(time.perf_counter() - start, 2), status, detail, skipped,
                     **claims)


def _run_in_subprocess(source: Path, output: Path, smoke: bool, timeout: int, audit_claims: bool = False,
                       threads: dict[str, str] | None = None) -> RunResult:
    """Run :func:`execute_one` in a child process group, killed whole on timeout.

    The executor, not the caller's environment, decides whether claims are audited (``COURSE_CLAIMS``).
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_file = Path(fh.name)
    cmd = [sys.executable, "-m", "course_tools.notebooks.execute", "_one", str(source), str(output), str(result_file),
           "--cell-timeout", str(timeout), "--keep-partial"]  # one cell may use the notebook's whole budget
    if not smoke:
        cmd.append("--full")
    env = {**{k: v for k, v in os.environ.items() if k != CLAIMS_ENV_VAR}, **(threads or {})}
    if audit_claims and not smoke:
        env[CLAIMS_ENV_VAR] = "audit"
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        result_file.unlink(missing_ok=True)
        seconds = round(time.perf_counter() - start, 2)
        where = _save_timed_out(output, smoke, seconds)
        return RunResult(str(source), str(output), seconds, "timeout", f"killed after {timeout} s (notebook timeout){where}")
    finally:
        try:  # the kernel is in the same process group: make sure nothing is left running
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    partial_path(output).unlink(missing_ok=True)  # a crashed run leaves no half-written notebook behind
    try:
        result = RunResult(**json.loads(result_file.read_text()))
    except (OSError, ValueError, TypeError):
        tail = (log or "").strip().splitlines()[-3:]
        result = RunResult(str(source), str(output), round(time.perf_counter() - start, 2), "failed",
                           f"executor crashed (exit {proc.returncode}): {' | '.join(tail)}")
    finally:
        result_file.unlink(missing_ok=True)
    return result


def _save_timed_out(output: Path, smoke: bool, seconds: float) -> str:
    """Keep what a notebook killed on its timeout had executed: its partial notebook goes to ``output``
    (as a failed run's does), its run metadata saying where it stopped. Returns that, for the report."""
    import nbformat

    partial = partial_path(output)
    try:
        nb = nbformat.read(partial, as_version=4)
    except (OSError, ValueError, nbformat.reader.NotJSONError):
        partial.unlink(missing_ok=True)
        return ""  # killed before papermill saved anything (or mid-save)
    partial.unlink(missing_ok=True)
    code = [c for c in nb.cells if c.cell_type == "code"]
    running = next((i for i, c in enumerate(code) if c.get("metadata", {}).get("papermill", {}).get("status") == "running"),
                   None)
    if running is None:  # between two cells: the first one that has not run
        running = next((i for i, c in enumerate(code) if c.get("execution_count") is None), len(code) - 1)
    first_line = next((line for line in code[running].source.splitlines() if line.strip()), "") if code else ""
    stopped = f"code cell {running + 1} of {len(code)} ({first_line.strip()[:60]!r})"
    nb.metadata["course"] = {**run_metadata(smoke, seconds, "papermill"), "timed_out_in": stopped,
                             **count_claims(nb)}
    write_notebook(nb, output)
    shown = os.path.relpath(output, REPO_ROOT) if output.resolve().is_relative_to(REPO_ROOT) else str(output)
    return f" in {stopped}; the cells before it are kept in {shown}"


def _cached_result(source: Path, output: Path, record: dict, seconds: float) -> RunResult:
    detail = f"executed {record.get('date', '?')} in {record.get('seconds', '?')} s on {record.get('device', '?')}"
    claims = {k: int(record.get(k, 0)) for k in ("claims_checked", "claims_failed", "claims_unchecked")}
    return RunResult(str(source), str(output), round(seconds, 2), "cached", detail,
                     int(record.get("skipped_gpu_cells", 0)), **claims)


def kernel_threads(jobs: int, running: int) -> dict[str, str]:
    """The BLAS/torch thread budget of each kernel: ``OMP_NUM_THREADS`` as the caller set it (``make``
    sets ``NB_THREADS``, 1 by default), or else the cores shared among the notebooks that run at once.
    Two threads per kernel beside another busy process on 2 cores made small models many times slower."""
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // max(1, min(jobs, running))))}


def _run_cached(source: Path, output: Path, key: cache.CacheKey, smoke: bool, timeout: int, use_cache: bool,
                audit_claims: bool = False, threads: dict[str, str] | None = None) -> RunResult:
    """Reuse ``output`` when its record matches ``key``; otherwise execute and, on success, record the run."""
    start = time.perf_counter()
    if use_cache:
        record = cache.cached_run(output, key)
        if record is not None:
            return _cached_result(source, output, record, time.perf_counter() - start)
    cache.record_path(output).unlink(missing_ok=True)  # a stale record must never vouch for a new output
    result = _run_in_subprocess(source, output, smoke, timeout, audit_claims, threads)
    if result.status == "ok" and output.exists():
        meta = json.loads(output.read_text(encoding="utf-8")).get("metadata", {}).get("course", {})
        if audit_claims and not smoke:
            meta = {**meta, "claims_audited": True}
        cache.write_record(output, key, {**meta, "source": os.path.relpath(source, REPO_ROOT),
                                         "skipped_gpu_cells": result.skipped_gpu_cells})
    return result


def execute_many(
    sources: list[Path],
    *,
    smoke: bool = True,
    jobs: int | None = None,
    timeout: int = DEFAULT_TIMEOUT_S,
    build_dir: Path = BUILD_DIR,
    use_cache: bool = True,
    lib_dir: Path | None = None,
    audit_claims: bool = False,
) -> list[RunResult]:
    """Execute ``sources`` in parallel (``jobs`` at once, default = cores), each in its own process.

    ``audit_claims`` (full mode only): a claim that does not hold is counted and the run goes on;
    such runs have their own cache key, so a plain full run never reuses one.

    A source whose executed notebook in ``build_dir`` has a matching cache record is not executed
    (status ``cached``) unless ``use_cache`` is False; ``lib_dir`` is the ``course_lib`` hashed into the
    key (default: the one the kernels import, :data:`course_tools.notebooks.cache.LIB_DIR`).
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    threads = kernel_threads(jobs, min(jobs, len(sources)))
    library_sha256 = cache.library_digest(lib_dir or cache.LIB_DIR)
    gpu_cells = cuda_available()
    work = []
    for s in sources:
        source = Path(s)
        key = cache.cache_key(source, smoke=smoke, gpu_cells=gpu_cells, library_sha256=library_sha256,
                              audit_claims=audit_claims and not smoke)
        work.append((source, output_path(source, build_dir), key))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_cached, source, out, key, smoke, timeout, use_cache, audit_claims, threads)
                   for source, out, key in work]
        return [f.result() for f in futures]


def format_table(results: list[RunResult]) -> str:
    """The notebook → seconds → status table printed after every run."""
    width = max([len("notebook")] + [len(os.path.relpath(r.source, REPO_ROOT)) for r in results])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  claims ✔/✘/smoke  status",
             f"{'-' * width}  {'-' * 8}  {'-' * 16}  ------"]
    for r in results:
        status = r.status + (f" ({r.skipped_gpu_cells} gpu cells skipped)" if r.skipped_gpu_cells else "")
        if r.detail:
            status += f": {r.detail}"
        claims = f"{r.claims_checked}/{r.claims_failed}/{r.claims_unchecked}"
        lines.append(f"{os.path.relpath(r.source, REPO_ROOT):<{width}}  {r.seconds:>8.1f}  {claims:>16}  {status}")
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in results):>8.1f}  "
                 f"{sum(r.claims_checked for r in results)}/{sum(r.claims_failed for r in results)}/"
                 f"{sum(r.claims_unchecked for r in results)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m course_tools") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="write the .ipynb twin of every lecture and solution source")
    p_sync.add_argument("paths", nargs="*", type=Path)
    p_exec = sub.add_parser("execute", help="execute notebooks into build/executed and print a timing table")
    p_exec.add_argument("paths", nargs="*", type=Path, help="sources (.py); default: every lecture and solution")
    p_exec.add_argument("--full", action="store_true", help="full mode (SMOKE=False): the quality the issues name")
    p_exec.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: number of cores)")
    p_exec.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds per notebook")
    p_exec.add_argument("--force", action="store_true", help="execute every notebook, even those unchanged since their last run")
    p_exec.add_argument("--build-dir", type=Path, default=None,
                        help="output folder (default: build/executed, or build/executed-full with --full)")
    p_exec.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p_exec.add_argument("--audit-claims", action="store_true",
                        help="with --full: print a claim that does not hold and go on (count every claim in one run)")
    p_one = sub.add_parser("_one", help=argparse.SUPPRESS)
    p_one.add_argument("source", type=Path)
    p_one.add_argument("output", type=Path)
    p_one.add_argument("result_file", type=Path)
    p_one.add_argument("--full", action="store_true")
    p_one.add_argument("--cell-timeout", type=int, default=DEFAULT_TIMEOUT_S)
    p_one.add_argument("--keep-partial", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "sync":
        from course_tools.notebooks.convert import sync

        for twin in sync([p.resolve() for p in args.paths] or None):
            print(os.path.relpath(twin, REPO_ROOT))
        return 0
    if args.command == "_one":
        result = execute_one(args.source, args.output, smoke=not args.full, cell_timeout=args.cell_timeout,
                             keep_partial=args.keep_partial)
        args.result_file.write_text(json.dumps(asdict(result)))
        return 0
    sources = [p.resolve() for p in args.paths] or find_sources(LECTURES) + find_sources(SOLUTIONS)
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        print(f"no such notebook source: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.audit_claims and not args.full:
        print("--audit-claims needs --full: smoke mode checks no claims", file=sys.stderr)
        return 2
    mode = "full, claims audited" if args.audit_claims else "full" if args.full else "smoke"
    print(f"executing {len(sources)} notebooks ({mode} mode, {args.jobs or os.cpu_count()} at a time, "
          f"GPU cells {'run' if cuda_available() else 'skipped: no CUDA device'}, "
          f"{'no cache (--force)' if args.force else 'unchanged notebooks cached'})", flush=True)
    build_dir = args.build_dir or (FULL_BUILD_DIR if args.full else BUILD_DIR)
    results = execute_many(sources, smoke=not args.full, jobs=args.jobs, timeout=args.timeout, build_dir=build_dir,
                           use_cache=not args.force, audit_claims=args.audit_claims)
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
