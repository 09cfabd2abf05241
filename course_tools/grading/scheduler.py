"""Where submissions are graded: a pool of worker processes on this machine, or a Dask cluster.

Both schedulers take the same jobs (one per submission, built by the client,
:func:`course_tools.grading.autograde.autograde`) and yield one :class:`Outcome` per job as it
finishes: the worker's report and the graded and redacted notebooks, as data. Only the client
writes them (reports, gradebook, ``grades.csv``), so both give the same files and grades.

:class:`LocalPool`
    ``--jobs N`` worker processes at a time on this machine, each forked from a fork server that
    imported the grader and numpy/torch once (:mod:`course_tools.grading.worker_preload`; with
    ``COURSE_GRADER_FORKSERVER=0``, or where there is no fork server, a fresh
    ``python -m course_tools.grading.autograde --worker JOB``); each dies with the client (a
    watched pidfd for a forked worker, ``PR_SET_PDEATHSIG`` for a fresh one), its kernels with it.
:class:`DaskCluster`
    ``--cluster tcp://host:8786``: a Dask distributed scheduler. Each task (:func:`grade_remote`)
    unpacks one submission and its sources into a private temporary folder on a worker and runs the
    same worker process there, in the worker machine's own sandbox. The submission travels with the
    task (regular files only; links and oversized files as placeholders that the worker reports the
    same way), so the workers need no shared file system, only the course's code and environment
    at the same path as the client's.

Every worker process takes a *slot* (:class:`SlotPool`): a number unique on its machine, held
with a lock file, that picks the kernel's uid when grading as root (one uid per parallel job).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from course_tools.grading import sandbox as sb
from course_tools.grading.config import MAX_NOTEBOOK_BYTES, MAX_SUBMISSION_BYTES
from course_tools.layout import GRADER_FORKSERVER_ENV_VAR

#: slots per machine (kernel uids uid_base .. uid_base + MAX_SLOTS - 1 when grading as root)
MAX_SLOTS = 256
#: seconds a Dask client waits for the scheduler to answer
CLUSTER_CONNECT_TIMEOUT_S = 30
#: characters of a worker's log kept in the report of a worker that crashed
LOG_TAIL_CHARS = 1500

Log = Callable[[str], None]


@dataclass
class Job:
    """One submission to grade: ``spec`` is the worker's job (JSON), with the client's paths."""

    student: str
    input_hash: str
    spec: dict[str, Any]
    submission: Path  # the folder under grading/submitted
    expected_notebooks: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What a worker sends back: its report and the notebooks it wrote (``autograded/NB``,
    ``redacted/NB`` -> bytes)."""

    student: str
    report: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def grader_error(job: Job | dict[str, Any], reason: str) -> dict[str, Any]:
    """The report of a submission the grader failed on (never final: the next run grades it again)."""
    spec = job.spec if isinstance(job, Job) else job
    return {
        "student": spec["student"],
        "assignment": spec["assignment"],
        "status": "grader-error",
        "status_final": False,
        "reason": reason,
        "notebooks": [],
        "input_hash": spec["input_hash"],
        "score": 0.0,
        "max_score": 0.0,
    }


# ---------------------------------------------------------------------------------------------
# what both schedulers share: slots, the worker process, reading its output


class SlotPool:
    """Slots unique on this machine, held with ``flock`` on files in a per-user folder of the
    temporary directory, so that two runs (or two Dask workers) on one machine never share one."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or Path(tempfile.gettempdir()) / f"course-grader-slots-{os.geteuid()}"
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.held: dict[int, IO[str]] = {}

    def claim(self) -> int:
        for slot in range(MAX_SLOTS):
            if slot in self.held:
                continue
            fh = open(self.folder / f"{slot}.lock", "w")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self.held[slot] = fh
            return slot
        raise RuntimeError(f"all {MAX_SLOTS} grading slots of this machine are taken ({self.folder})")

    def release(self, slot: int) -> None:
        fh = self.held.pop(slot, None)
        if fh is not None:
            fh.close()

    def close(self) -> None:
        for slot in list(self.held):
            self.release(slot)


def worker_preexec() -> None:
    """The worker process dies with the process that started it."""
    sb._libc().prctl(sb.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


#: ``COURSE_GRADER_FORKSERVER=0``: start every worker as a fresh interpreter (slower; for debugging)
FORKSERVER_ENV_VAR = GRADER_FORKSERVER_ENV_VAR
WORKER_PRELOAD = "course_tools.grading.worker_preload"
_forkserver: Any = None


def _worker_context() -> Any:
    """The ``multiprocessing`` fork-server context workers are forked from (None: not available)."""
    global _forkserver
    if os.environ.get(FORKSERVER_ENV_VAR, "1").strip() == "0" or multiprocessing.current_process().daemon:
        return None  # a daemonic process (a Dask worker's) may not start multiprocessing children
    if _forkserver is None:
        if "forkserver" not in multiprocessing.get_all_start_methods():
            return None
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([WORKER_PRELOAD])
        _forkserver = ctx
    return _forkserver


def _die_with_client(client_pid: int) -> None:
    """End this forked worker, and with it its kernels, as soon as the client process is gone.

    A forked worker cannot rely on ``PR_SET_PDEATHSIG`` alone: its parent is the fork server, and the
    fork server only leaves when every holder of its "alive" pipe has closed it — the client *and*
    each forked child, which inherits the pipe. A SIGKILLed client would leave the fork server and
    every worker grading on. So the worker closes its copy of the pipe (the fork server then leaves
    with the client) and watches the client itself: a daemon thread waits on a pidfd (or, where
    there is none, polls) and exits the process when the client ends, also when it already had."""
    from multiprocessing import forkserver

    server: Any = getattr(forkserver, "_forkserver", None)  # private API: the SIGKILL test of
    alive_fd = getattr(server, "_forkserver_alive_fd", None)  # test_grading_hostile checks the outcome
    if isinstance(alive_fd, int):
        with contextlib.suppress(OSError):
            os.close(alive_fd)
        server._forkserver_alive_fd = None
    pidfd: int | None = None
    try:
        pidfd = os.pidfd_open(client_pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while True:
                try:
                    os.kill(client_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-client", daemon=True).start()


def _forked_worker(job_path: str, log_path: str, cwd: str, env: dict[str, str], client_pid: int) -> None:
    """A worker forked from the fork server: the client's environment and folder, output into the
    log; it dies with the client (:func:`_die_with_client`)."""
    worker_preexec()
    _die_with_client(client_pid)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)  # as the client has it now, not as it was when the fork server started
    os.chdir(cwd)
    rc = 1
    try:
        from course_tools.grading.autograde import worker_main

        rc = worker_main(job_path)
    except BaseException:  # noqa: BLE001 - reported by collect() from the log, as for a crashed process
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(rc)


class ForkedWorker:
    """A worker process from the fork server, with the part of ``Popen``'s interface the pool uses."""

    def __init__(self, process: Any):
        self.process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return None if self.process.is_alive() else self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(f"grader worker {self.pid}", timeout or 0.0)
        return self.process.exitcode

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()


def start_worker(spec: dict[str, Any], job_path: Path, log_path: Path, cwd: Path,
                 fork: bool = True) -> subprocess.Popen[bytes] | ForkedWorker:
    """Write the job and start its worker process (output into ``log_path``): forked from the fork
    server (:func:`_worker_context`), or, with ``fork=False`` or where there is none, a fresh interpreter."""
    job_path.write_text(json.dumps(spec))
    ctx = _worker_context() if fork else None
    if ctx is not None:
        process = ctx.Process(target=_forked_worker, args=(str(job_path), str(log_path), str(cwd), dict(os.environ), os.getpid()),
                              name=f"grader-worker-{spec.get('student', '')}", daemon=False)
        process.start()
        return ForkedWorker(process)
    with open(log_path, "wb") as logf:
        return subprocess.Popen(
            [sys.executable, "-m", "course_tools.grading.autograde", "--worker", str(job_path)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=str(cwd),
            preexec_fn=worker_preexec,
        )


def out_paths(spec: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Where the worker of ``spec`` writes its report and notebooks."""
    return {
        "out_dir": str(out_dir),
        "report": str(out_dir / "report.json"),
        "autograded_dir": str(out_dir / "autograded"),
        "redacted_dir": str(out_dir / "redacted"),
    }


def collect(spec: dict[str, Any], rc: int | None, timeout: float | None, log_path: Path) -> Outcome:
    """The outcome of a finished (or, with ``timeout``, killed) worker, read from its out folder."""
    out = Path(spec["out_dir"])
    report: dict[str, Any] | None = None
    if timeout is not None:
        report = grader_error(spec, f"the worker exceeded {timeout:.0f} s and was killed")
    else:
        with contextlib.suppress(OSError, ValueError):
            report = json.loads((out / "report.json").read_text())
        if report is None or report.get("input_hash") != spec["input_hash"]:
            tail = b""
            with contextlib.suppress(OSError):
                tail = log_path.read_bytes()[-LOG_TAIL_CHARS:]
            report = grader_error(spec, f"the worker exited ({rc}) without a report: {tail.decode('utf-8', 'replace')}")
    files: dict[str, bytes] = {}
    if report.get("status") != "grader-error":
        for kind in ("autograded", "redacted"):
            for p in sorted((out / kind).glob("*.ipynb")):
                files[f"{kind}/{p.name}"] = p.read_bytes()
    return Outcome(spec["student"], report, files)


def worker_timeout(notebook_timeout: float, startup_timeout: float, max_restarts: int, notebooks: int) -> float:
    """Seconds after which a worker is killed (its notebooks' limits plus every kernel start)."""
    return notebook_timeout * max(1, notebooks) + startup_timeout * (max_restarts + 1) + 120


def clean_stale_tmp(tmp_root: str | None) -> int:
    """Remove grading folders (``cg-*`` in the temporary folder) whose owner process is gone."""
    base = Path(tmp_root or tempfile.gettempdir())
    removed = 0
    for d in base.glob("cg-*"):
        try:
            pid = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
        except PermissionError:
            pass
    return removed


# ---------------------------------------------------------------------------------------------
# isolation, probed where the kernels run


def probe_isolation(allow_none: bool, force: str | None, limits: dict[str, int], hidden: list[str]) -> dict[str, Any]:
    """The isolation of this machine (``sb.detect``) and whether it hides ``hidden``; also whether
    CUDA is available. Returns plain data: it also runs on Dask workers (``client.run``)."""
    import socket

    host = socket.gethostname()
    try:
        iso = sb.detect(allow_none=allow_none, force=force, limits=sb.Limits(**limits))
    except sb.SandboxError as exc:
        return {"host": host, "error": str(exc)}
    problems: list[str] = []
    if iso.hides_course:
        probe_spec = sb.SandboxSpec(
            stage=Path("/nonexistent/stage"),
            ipc=Path("/nonexistent/ipc"),
            workdir=Path("/nonexistent/work"),
            newroot=Path("/nonexistent/root"),
            readonly=sb.default_readonly_paths(),
        )
        problems = sb.check_hidden(probe_spec, [Path(h) for h in hidden])
    from course_lib.gpu import cuda_available

    return {
        "host": host,
        "isolation": {**iso.__dict__, "notes": list(iso.notes)},
        "problems": problems,
        "cuda": bool(cuda_available()),
    }


def isolation_from_dict(d: dict[str, Any]) -> sb.Isolation:
    return sb.Isolation(**{**d, "notes": tuple(d.get("notes", ()))})


# ---------------------------------------------------------------------------------------------
# the schedulers


class Scheduler:
    """Grades jobs somewhere; :meth:`grade` yields an :class:`Outcome` per job as each finishes."""

    kind = "abstract"
    workers = 1

    def probe(self, allow_none: bool, force: str | None, limits: sb.Limits, hidden: list[Path]) -> list[dict[str, Any]]:
        """:func:`probe_isolation` on every machine that runs kernels."""
        raise NotImplementedError

    def clean(self, tmp_root: str | None) -> None:
        """Remove the grading folders that crashed runs left on the machines that run kernels."""
        raise NotImplementedError

    def grade(self, jobs: Iterable[Job], timeout: float) -> Iterator[Outcome]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalPool(Scheduler):
    """``jobs`` worker processes at a time on this machine; job files and logs in ``work``."""

    kind = "local"

    def __init__(self, jobs: int, work: Path, cwd: Path, tmp_root: str | None = None):
        self.workers, self.work, self.cwd, self.tmp_root = max(1, jobs), work, cwd, tmp_root

    def describe(self) -> str:
        return f"{self.workers} local workers"

    def probe(self, allow_none: bool, force: str | None, limits: sb.Limits, hidden: list[Path]) -> list[dict[str, Any]]:
        return [probe_isolation(allow_none, force, limits.__dict__, [str(h) for h in hidden])]

    def clean(self, tmp_root: str | None) -> None:
        clean_stale_tmp(tmp_root)

    def grade(self, jobs: Iterable[Job], timeout: float) -> Iterator[Outcome]:
        pending = list(jobs)
        slots = SlotPool()
        running: dict[int, tuple[subprocess.Popen[bytes] | ForkedWorker, dict[str, Any], int, float, Path]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job = pending.pop(0)
                    slot = slots.claim()
                    out_dir = self.work / "out" / job.student
                    shutil.rmtree(out_dir, ignore_errors=True)
                    spec = {
                        **job.spec,
                        **out_paths(job.spec, out_dir),
                        "slot": slot,
                        "jobs": self.workers,
                        "tmp_root": self.tmp_root,
                    }
                    log_path = self.work / f"worker-{job.student}.log"
                    proc = start_worker(spec, self.work / f"job-{job.student}.json", log_path, self.cwd)
                    running[proc.pid] = (proc, spec, slot, time.monotonic(), log_path)
                finished = []
                for pid, (proc, spec, slot, started, log_path) in running.items():
                    rc = proc.poll()
                    killed_after = None
                    if rc is None and time.monotonic() - started > timeout:
                        proc.kill()
                        rc = proc.wait()
                        killed_after = timeout
                    if rc is None:
                        continue
                    finished.append(pid)
                    slots.release(slot)
                    yield collect(spec, rc, killed_after, log_path)
                for pid in finished:
                    running.pop(pid)
                if running and not finished:
                    time.sleep(0.1)
        finally:
            for proc, *_ in running.values():
                with contextlib.suppress(OSError):
                    proc.kill()
            slots.close()


class DaskCluster(Scheduler):
    """A Dask distributed scheduler at ``address`` (``tcp://host:8786``), or a ``client`` given."""

    kind = "dask"

    def __init__(self, address: str | None = None, client: Any = None, log: Log | None = None):
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - distributed is pinned in the tools extra
            raise RuntimeError("--cluster needs the `distributed` package (pip install -e '.[tools]')") from exc
        if client is None:
            try:
                client = Client(address, timeout=CLUSTER_CONNECT_TIMEOUT_S, set_as_default=False)
            except OSError as exc:
                raise RuntimeError(
                    f"cannot reach the Dask scheduler at {address}: {exc} (start one with "
                    "`dask scheduler` and workers with `dask worker ADDRESS`)"
                ) from None
            self._own = True
        else:
            self._own = False
        self.client, self.address = client, address or str(client.scheduler.address)
        self.log = log
        info = client.scheduler_info()
        self.threads = {addr: int(w.get("nthreads", 1)) for addr, w in info.get("workers", {}).items()}
        if not self.threads:
            raise RuntimeError(
                f"the Dask scheduler at {self.address} has no workers (start some with "
                f"`dask worker {self.address} --nthreads 1`)"
            )
        self.workers = sum(self.threads.values())
        #: concurrent tasks per machine (a kernel's BLAS threads = the machine's cores / this)
        self.host_tasks: dict[str, int] = {}
        for addr, n in self.threads.items():
            host = _host_of(addr)
            self.host_tasks[host] = self.host_tasks.get(host, 0) + n

    def describe(self) -> str:
        return f"Dask cluster {self.address}: {len(self.threads)} workers, {self.workers} threads"

    def probe(self, allow_none: bool, force: str | None, limits: sb.Limits, hidden: list[Path]) -> list[dict[str, Any]]:
        got = self.client.run(probe_isolation, allow_none, force, dict(limits.__dict__), [str(h) for h in hidden])
        return [{**v, "worker": k} for k, v in sorted(got.items())]

    def clean(self, tmp_root: str | None) -> None:
        self.client.run(clean_stale_tmp, None)

    def grade(self, jobs: Iterable[Job], timeout: float) -> Iterator[Outcome]:
        from distributed import as_completed

        futures = {}
        for job in jobs:
            payload = pack_job(job)
            fut = self.client.submit(
                grade_remote,
                job.spec,
                payload,
                timeout,
                self.host_tasks,
                pure=False,
                key=f"grade-{job.student}-{uuid.uuid4().hex[:8]}",
            )
            futures[fut] = job
        try:
            for fut in as_completed(list(futures), loop=self.client.loop):
                job = futures[fut]
                try:
                    got = fut.result()
                    outcome = Outcome(got["student"], got["report"], got["files"])
                except Exception as exc:  # the task or its worker failed: retried next run
                    outcome = Outcome(
                        job.student,
                        grader_error(job, f"the Dask task failed: {type(exc).__name__}: {str(exc)[:LOG_TAIL_CHARS]}"),
                    )
                fut.release()
                yield outcome
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self._own:
            self.client.close()


def _host_of(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5``."""
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


# ---------------------------------------------------------------------------------------------
# a job's files, carried to a Dask worker


def pack_folder(folder: Path, full: Iterable[str] = (), budget: int = MAX_SUBMISSION_BYTES) -> list[list[Any]]:
    """A folder as ``[relative path, kind, data]`` entries: ``dir``, ``link`` (never followed; data:
    whether it resolves),
    ``file`` (bytes) or ``sparse`` (size only). Files are carried in full in sorted order while
    their total stays within ``budget`` (what the worker copies into its stage), and the notebooks
    named in ``full`` up to the notebook size limit (what the worker reads); the rest only by size,
    so the worker sees the same names, kinds and sizes as the client."""
    full = set(full)
    entries: list[list[Any]] = []
    total = 0
    if not folder.is_dir():
        return entries
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():  # whether it resolves decides "missing" or "not a regular file"
            entries.append([rel, "link", p.exists()])
        elif p.is_dir():
            entries.append([rel, "dir", None])
        elif p.is_file():
            size = p.stat().st_size
            if not any(part.startswith(".ipynb_checkpoints") for part in Path(rel).parts):
                total += size
            if total <= budget or (rel in full and size <= MAX_NOTEBOOK_BYTES):
                entries.append([rel, "file", p.read_bytes()])
            else:
                entries.append([rel, "sparse", size])
    return entries


def unpack_folder(entries: list[list[Any]], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for rel, kind, data in entries:
        target = dest / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to unpack {rel!r} outside {dest}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            target.mkdir(exist_ok=True)
        elif kind == "link":  # the grader refuses links and never reads their target: the folder it is in
            os.symlink("." if data else "/nonexistent/link-in-the-submission", target)  # or nothing
        elif kind == "file":
            target.write_bytes(data)
        elif kind == "sparse":
            with open(target, "wb") as fh:
                fh.truncate(int(data))
    return dest


def pack_job(job: Job) -> dict[str, Any]:
    spec = job.spec
    extra = spec.get("extra_files")
    return {
        "submission": pack_folder(job.submission, job.expected_notebooks),
        "sources": {k: Path(v).read_bytes() for k, v in spec["sources"].items()},
        "extra": pack_folder(Path(extra), budget=1 << 62) if extra else None,
    }


def grade_remote(
    spec: dict[str, Any], payload: dict[str, Any], timeout: float, host_tasks: dict[str, int]
) -> dict[str, Any]:
    """A Dask task: grade one submission in a worker process on this (worker) machine; return the
    outcome as plain data. Everything is written into a private temporary folder, removed after."""
    base = Path(tempfile.mkdtemp(prefix="cg-dask-"))
    (base / "owner.pid").write_text(str(os.getpid()))
    slots = SlotPool()
    try:
        sub = unpack_folder(payload["submission"], base / "submission")
        (base / "source").mkdir()
        sources = {}
        for name, data in payload["sources"].items():
            (base / "source" / name).write_bytes(data)
            sources[name] = str(base / "source" / name)
        extra = str(unpack_folder(payload["extra"], base / "extra")) if payload.get("extra") is not None else None
        tasks = 1
        with contextlib.suppress(Exception):
            from distributed import get_worker

            w = get_worker()
            tasks = host_tasks.get(_host_of(w.address), w.state.nthreads)
        slot = slots.claim()
        tmp_root = spec.get("tmp_root")
        local = {
            **spec,
            **out_paths(spec, base / "out"),
            "submission": str(sub),
            "sources": sources,
            "extra_files": extra,
            "slot": slot,
            "jobs": max(1, tasks),
            "tmp_root": tmp_root if tmp_root and Path(tmp_root).is_dir() else None,
        }
        log_path = base / "worker.log"
        proc = start_worker(local, base / "job.json", log_path, base, fork=False)  # a Dask worker is daemonic
        killed_after = None
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            killed_after = timeout
        outcome = collect(local, rc, killed_after, log_path)
        return {"student": outcome.student, "report": outcome.report, "files": outcome.files}
    finally:
        slots.close()
        shutil.rmtree(base, ignore_errors=True)
