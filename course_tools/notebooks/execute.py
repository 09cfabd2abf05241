"""The course's notebook executor, used by the Makefile and by the tests.

    python -m course_tools sync                      # write the .ipynb twins
    python -m course_tools execute [--full] [--jobs N] [--timeout S] [PATH ...]

``execute`` converts each source (``lectures/*/*.py`` and ``solutions/*/*.py`` by default) to a
notebook, runs it with papermill (``SMOKE=True`` and ``COURSE_SMOKE=1`` unless ``--full``) in a
separate process per notebook, several at once, each under a wall-clock timeout, skips ``gpu``
cells where no CUDA device exists (they then show a visible "skipped" output), writes the executed
notebooks under ``build/executed/`` and prints a table notebook → seconds → status.
Exit status 0 when every notebook ran, 1 otherwise.
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
from course_tools.layout import LAYOUT, LECTURES, REPO_ROOT, SMOKE_ENV_VAR, SOLUTIONS
from course_tools.notebooks.convert import find_sources, read_source, write_notebook

BUILD_DIR = LAYOUT.executed
DEFAULT_TIMEOUT_S = 600


@dataclass
class RunResult:
    """What happened to one notebook."""

    source: str
    output: str
    seconds: float
    status: str  # "ok", "failed", "timeout"
    detail: str = ""
    skipped_gpu_cells: int = 0


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


def execute_one(source: Path, output: Path, *, smoke: bool = True, cell_timeout: int = DEFAULT_TIMEOUT_S) -> RunResult:
    """Execute one notebook source in this process with papermill (the worker of :func:`execute_many`)."""
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
        tmp_out = Path(tmp) / output.name
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
            write_notebook(executed, output)
    return RunResult(str(source), str(output), round(time.perf_counter() - start, 2), status, detail, skipped)


def _run_in_subprocess(source: Path, output: Path, smoke: bool, timeout: int) -> RunResult:
    """Run :func:`execute_one` in a child process group, killed whole on timeout."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_file = Path(fh.name)
    cmd = [sys.executable, "-m", "course_tools.notebooks.execute", "_one", str(source), str(output), str(result_file)]
    if not smoke:
        cmd.append("--full")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        result_file.unlink(missing_ok=True)
        return RunResult(str(source), str(output), round(time.perf_counter() - start, 2), "timeout",
                         f"killed after {timeout} s (notebook timeout)")
    finally:
        try:  # the kernel is in the same process group: make sure nothing is left running
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        result = RunResult(**json.loads(result_file.read_text()))
    except (OSError, ValueError, TypeError):
        tail = (log or "").strip().splitlines()[-3:]
        result = RunResult(str(source), str(output), round(time.perf_counter() - start, 2), "failed",
                           f"executor crashed (exit {proc.returncode}): {' | '.join(tail)}")
    finally:
        result_file.unlink(missing_ok=True)
    return result


def execute_many(
    sources: list[Path],
    *,
    smoke: bool = True,
    jobs: int | None = None,
    timeout: int = DEFAULT_TIMEOUT_S,
    build_dir: Path = BUILD_DIR,
) -> list[RunResult]:
    """Execute ``sources`` in parallel (``jobs`` at once, default = cores), each in its own process."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_in_subprocess, Path(s), output_path(Path(s), build_dir), smoke, timeout) for s in sources]
        return [f.result() for f in futures]


def format_table(results: list[RunResult]) -> str:
    """The notebook → seconds → status table printed after every run."""
    width = max([len("notebook")] + [len(os.path.relpath(r.source, REPO_ROOT)) for r in results])
    lines = [f"{'notebook':<{width}}  {'seconds':>8}  status", f"{'-' * width}  {'-' * 8}  ------"]
    for r in results:
        status = r.status + (f" ({r.skipped_gpu_cells} gpu cells skipped)" if r.skipped_gpu_cells else "")
        if r.detail:
            status += f": {r.detail}"
        lines.append(f"{os.path.relpath(r.source, REPO_ROOT):<{width}}  {r.seconds:>8.1f}  {status}")
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in results):>8.1f}")
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
    p_exec.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    p_exec.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p_one = sub.add_parser("_one", help=argparse.SUPPRESS)
    p_one.add_argument("source", type=Path)
    p_one.add_argument("output", type=Path)
    p_one.add_argument("result_file", type=Path)
    p_one.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "sync":
        from course_tools.notebooks.convert import sync

        for twin in sync([p.resolve() for p in args.paths] or None):
            print(os.path.relpath(twin, REPO_ROOT))
        return 0
    if args.command == "_one":
        result = execute_one(args.source, args.output, smoke=not args.full)
        args.result_file.write_text(json.dumps(asdict(result)))
        return 0
    sources = [p.resolve() for p in args.paths] or find_sources(LECTURES) + find_sources(SOLUTIONS)
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        print(f"no such notebook source: {', '.join(missing)}", file=sys.stderr)
        return 2
    mode = "full" if args.full else "smoke"
    print(f"executing {len(sources)} notebooks ({mode} mode, {args.jobs or os.cpu_count()} at a time, "
          f"GPU cells {'run' if cuda_available() else 'skipped: no CUDA device'})", flush=True)
    results = execute_many(sources, smoke=not args.full, jobs=args.jobs, timeout=args.timeout, build_dir=args.build_dir)
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
