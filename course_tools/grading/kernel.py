"""The student's Jupyter kernel, started inside the sandbox and driven from outside over ipc sockets.

:class:`KernelSession` starts the kernel (connection file, environment, sandbox command, limits),
runs code in it (:meth:`KernelSession.execute`, or :meth:`KernelSession.start_execute` for an
execution that the evaluator drives while it talks to the in-kernel agent), interrupts, kills and
reaps it, and samples its memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.grading import sandbox as sb
from course_tools.grading.config import (
    IDLE_AFTER_REPLY_TIMEOUT_S,
    KILL_POLL_INTERVAL_S,
    MAX_TRACEBACK_LINES,
    GradeConfig,
)
from course_tools.layout import NBGRADER_EXECUTION_ENV_VAR, OFFLINE_ENV_VAR


@dataclass
class ExecResult:
    status: str  # ok | error | died | killed
    outputs: list = field(default_factory=list)
    error: dict | None = None  # ename, evalue, traceback
    seconds: float = 0.0
    timed_out: bool = False  # interrupted (or killed) at the time limit
    output_limited: bool = False
    truncated_chars: int = 0
    token_seen: bool = False
    stdout_tail: str = ""
    execution_count: int | None = None
    exit_info: str = ""


class KernelSession:
    """A Jupyter kernel inside the sandbox, driven from outside over ipc sockets."""

    def __init__(self, iso: sb.Isolation, cfg: GradeConfig, base: Path, stage: Path, slot: int, env: dict[str, str]):
        self.iso, self.cfg, self.base, self.stage, self.slot, self.extra_env = iso, cfg, base, stage, slot, env
        self.proc: subprocess.Popen | None = None
        self.kc = None
        self.kernel_pid: int | None = None
        self.starts = 0
        self.peak_rss = 0
        self.jobs = 1

    @property
    def workdir(self) -> Path:
        return self.base / "work"

    def start(self, timeout: float) -> None:
        from jupyter_client import BlockingKernelClient

        self.starts += 1
        ipc = self.base / f"ipc{self.starts}"
        spec = sb.SandboxSpec(stage=self.stage, ipc=ipc, workdir=self.workdir, newroot=self.base / f"root{self.starts}",
                              readonly=sb.default_readonly_paths(), uid=sb.kernel_uid(self.iso, self.slot))
        on_host = self.iso.kind == "none" or self.iso.variant == "unshare-net"  # no private tmpfs workdir
        if on_host:
            shutil.rmtree(self.workdir, ignore_errors=True)
        sb.prepare_dirs(spec, host_access=on_host)
        mpl = ipc / "mpl"
        mpl.mkdir()
        _copy_font_cache(mpl)
        if spec.uid is not None:
            for p in [ipc, mpl, *mpl.iterdir()]:
                os.chown(p, spec.uid, spec.uid)
        key = secrets.token_hex(16)
        conn = {"transport": "ipc", "ip": str(ipc / "k"), "shell_port": 1, "iopub_port": 2, "stdin_port": 3,
                "control_port": 4, "hb_port": 5, "key": key, "signature_scheme": "hmac-sha256", "kernel_name": "grader"}
        conn_file = ipc / "kernel.json"
        conn_file.write_text(json.dumps(conn))
        if spec.uid is not None:
            os.chown(conn_file, spec.uid, spec.uid)
        threads = str(max(1, (os.cpu_count() or 1) // max(1, self.jobs)))
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir), "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp" if self.iso.hides_course else str(self.workdir),
            "MPLCONFIGDIR": str(mpl), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "IPYTHONDIR": str(self.workdir / ".ipython"), "JUPYTER_PLATFORM_DIRS": "1",
            "JUPYTER_CONFIG_DIR": str(self.workdir / ".jupyter"), "JUPYTER_DATA_DIR": str(self.workdir / ".jupyter"),
            "JUPYTER_RUNTIME_DIR": str(ipc), "PYDEVD_DISABLE_FILE_VALIDATION": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
            OFFLINE_ENV_VAR: "1", NBGRADER_EXECUTION_ENV_VAR: "autograde",
        }
        env.update(self.extra_env)
        argv = [sys.executable, "-I", "-m", "ipykernel_launcher", "-f", str(conn_file),
                "--HistoryManager.enabled=False", "--IPKernelApp.ignore_cwd=True"]
        cmd = sb.kernel_command(self.iso, spec, argv, self.cfg.limits)
        self.kernel_log = ipc / "kernel.log"
        logf = open(self.kernel_log, "wb")
        cwd = str(self.workdir) if self.workdir.exists() else str(self.base)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     cwd=cwd, preexec_fn=sb.preexec(self.iso, self.cfg.limits, uid=spec.uid))
        logf.close()
        self.conn_file = conn_file
        kc = BlockingKernelClient()
        kc.load_connection_info(conn)
        kc.start_channels()
        self.kc = kc
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise KernelStartError(f"the kernel exited during start-up ({self.exit_info()}): {self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise KernelStartError(f"the kernel did not start within {timeout:.0f} s: {self.log_tail()}")
            try:
                kc.kernel_info()
                reply = kc.get_shell_msg(timeout=1.0)
                if reply["msg_type"] == "kernel_info_reply":
                    break
            except Exception:  # queue.Empty: not up yet
                continue
        # drain the start-up iopub chatter
        with contextlib.suppress(Exception):
            while True:
                kc.get_iopub_msg(timeout=0.2)
        self.kernel_pid = self._find_kernel_pid()

    def _find_kernel_pid(self) -> int | None:
        import psutil

        try:
            procs = [psutil.Process(self.proc.pid)] + psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return None
        for p in procs:
            with contextlib.suppress(psutil.Error):
                cmd = p.cmdline()
                if str(self.conn_file) in cmd and any("ipykernel" in c for c in cmd) and "--init" not in cmd:
                    if not any(c.endswith(("bwrap", "unshare", "setpriv")) for c in cmd[:1]):
                        return p.pid
        return None

    def exit_info(self) -> str:
        rc = self.proc.poll() if self.proc else None
        if rc is None:
            return "running"
        if rc < 0:
            return f"killed by {_signame(-rc)}"
        if rc >= 128:
            return f"killed by {_signame(rc - 128)}"
        return f"exit code {rc}"

    def log_tail(self) -> str:
        try:
            return self.kernel_log.read_bytes()[-1500:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self) -> None:
        if self.kernel_pid:
            with contextlib.suppress(OSError):
                os.kill(self.kernel_pid, signal.SIGINT)

    def sample_memory(self) -> int:
        if self.kernel_pid:
            try:
                for line in Path(f"/proc/{self.kernel_pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss = max(self.peak_rss, int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                pass
        return self.peak_rss

    def kill_strays(self) -> int:
        """SIGKILL every process the kernel started (its children), return how many."""
        import psutil

        if not self.kernel_pid:
            return 0
        killed: set[int] = set()
        for _ in range(50):
            try:
                kids = [k for k in psutil.Process(self.kernel_pid).children(recursive=True)
                        if k.status() != psutil.STATUS_ZOMBIE]
            except psutil.Error:
                break
            if not kids:
                break
            for k in kids:
                with contextlib.suppress(psutil.Error):
                    k.kill()
                    killed.add(k.pid)
            time.sleep(KILL_POLL_INTERVAL_S)
        return len(killed)

    def kill(self) -> None:
        import psutil

        if self.proc is None:
            return
        with contextlib.suppress(psutil.Error):
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    p.kill()
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)

    def shutdown(self) -> None:
        self.sample_memory()
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
            self.kc = None
        self.kill()

    def agent_socket_path(self) -> Path:
        """Where the evaluator listens for this kernel's agent (inside the ipc folder shared with the sandbox)."""
        return self.base / f"ipc{self.starts}" / "agent.sock"

    def start_execute(self, code: str, *, silent: bool = False, store_history: bool = True,
                      token: str | None = None, keep_outputs: bool = True) -> _Execution:
        """Send ``code`` for execution and return at once; :meth:`_Execution.poll` collects its messages."""
        return _Execution(self, code, silent=silent, store_history=store_history, token=token,
                          keep_outputs=keep_outputs)

    def execute(self, code: str, timeout: float, *, silent: bool = False, store_history: bool = True,
                token: str | None = None, keep_outputs: bool = True) -> ExecResult:
        """Run ``code``; collect its outputs (capped) until the reply and idle, or a limit."""
        if not self.alive():
            return ExecResult(status="died", exit_info=self.exit_info())
        exe = self.start_execute(code, silent=silent, store_history=store_history, token=token,
                                 keep_outputs=keep_outputs)
        deadline = exe.start + max(0.1, timeout)
        while not exe.poll(0.05):
            exe.enforce(deadline)
        return exe.finish()


class _Execution:
    """One execute request in flight: its outputs (capped), its reply, the limits applied to it."""

    def __init__(self, session: KernelSession, code: str, *, silent: bool, store_history: bool,
                 token: str | None, keep_outputs: bool):
        import zmq

        self.session, self.token, self.keep_outputs = session, token, keep_outputs
        self.res = ExecResult(status="ok")
        self.kc = session.kc
        self.msg_id = self.kc.execute(code, silent=silent, store_history=store_history, allow_stdin=False,
                                      stop_on_error=False)
        self.start = time.monotonic()
        self.interrupted_at: float | None = None
        self.reply = None
        self.idle = False
        self.done = False
        self.chars = 0
        self.stored = 0
        self.tail = ""
        self.outputs: list = []
        self.idle_deadline: float | None = None
        self.poller = zmq.Poller()
        self.poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        self.poller.register(self.kc.shell_channel.socket, zmq.POLLIN)

    def enforce(self, deadline: float) -> None:
        """Interrupt at ``deadline`` (or at the output cap), kill after the interrupt grace."""
        if self.done:
            return
        res, cfg, now = self.res, self.session.cfg, time.monotonic()
        if self.reply is None and self.interrupted_at is None and (now > deadline or self.chars > cfg.output_hard_cap):
            if now > deadline:
                res.timed_out = True
            else:
                res.output_limited = True
            self.session.interrupt()
            self.interrupted_at = now
        if self.interrupted_at is not None and self.reply is None and now > self.interrupted_at + cfg.interrupt_grace:
            self.session.kill()
            res.status, res.exit_info = "killed", "killed after ignoring the interrupt"
            self.done = True

    def poll(self, wait: float) -> bool:
        """Process the messages that arrive within ``wait`` seconds; True once the execution is over."""
        if self.done:
            return True
        res, kc, cfg = self.res, self.kc, self.session.cfg
        now = time.monotonic()
        if self.reply is not None and self.idle_deadline is None:
            self.idle_deadline = now + IDLE_AFTER_REPLY_TIMEOUT_S
        if (self.reply is not None and self.idle) or (self.idle_deadline is not None and now > self.idle_deadline):
            self.done = True
            return True
        if not self.session.alive():
            res.status, res.exit_info = "died", self.session.exit_info()
            self.done = True
            return True
        events = dict(self.poller.poll(int(wait * 1000)))
        if kc.shell_channel.socket in events:
            with contextlib.suppress(Exception):
                msg = kc.get_shell_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == self.msg_id:
                    self.reply = msg
        if kc.iopub_channel.socket in events:
            for _ in range(200):
                try:
                    msg = kc.get_iopub_msg(timeout=0)
                except Exception:
                    break
                if msg["parent_header"].get("msg_id") != self.msg_id:
                    continue
                self._iopub(msg["msg_type"], msg["content"], cfg)
        if self.reply is not None and self.idle:
            self.done = True
        return self.done

    def _iopub(self, mt: str, content: dict, cfg) -> None:
        res, token, outputs = self.res, self.token, self.outputs
        if mt == "status" and content.get("execution_state") == "idle":
            self.idle = True
        elif mt == "stream":
            text = content.get("text", "")
            self.chars += len(text)
            window = self.tail + text
            if token and token in window:
                res.token_seen = True
            self.tail = window[-(len(token) + 2):] if token else ""
            if self.keep_outputs:
                self.stored = _add_stream(outputs, content.get("name", "stdout"), text, self.stored, cfg.output_cap, res)
        elif mt in ("display_data", "execute_result"):
            size = len(json.dumps(content.get("data", {})))
            self.chars += size
            if self.keep_outputs:
                if self.stored + size <= cfg.output_cap * 20:
                    out = {"output_type": mt, "data": content.get("data", {}), "metadata": content.get("metadata", {})}
                    if mt == "execute_result":
                        out["execution_count"] = content.get("execution_count")
                    outputs.append(out)
                    self.stored += size
                else:
                    res.truncated_chars += size
        elif mt == "error":
            res.error = {"ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                         "traceback": list(content.get("traceback", []))[-MAX_TRACEBACK_LINES:]}
            if self.keep_outputs:
                outputs.append({"output_type": "error", **res.error})
        elif mt == "clear_output" and self.keep_outputs:
            outputs.clear()
            self.stored = 0
        elif mt == "execute_input":
            res.execution_count = content.get("execution_count")

    def finish(self, deadline: float | None = None) -> ExecResult:
        """Collect the rest of the execution (limits applied from ``deadline``); return its result."""
        deadline = deadline if deadline is not None else self.start + self.session.cfg.cell_timeout
        while not self.poll(0.05):
            self.enforce(deadline)
        res = self.res
        res.seconds = time.monotonic() - self.start
        if res.status == "ok":
            if self.reply is None:
                res.status, res.exit_info = ("died", self.session.exit_info()) if not self.session.alive() \
                    else ("killed", "no reply")
            else:
                content = self.reply["content"]
                if content.get("status") != "ok":
                    res.status = "error"
                    if res.error is None:
                        res.error = {"ename": content.get("ename", "Error"), "evalue": content.get("evalue", ""),
                                     "traceback": list(content.get("traceback", []))[-MAX_TRACEBACK_LINES:]}
                elif res.error is not None:
                    res.status = "error"
                if res.execution_count is None:
                    res.execution_count = content.get("execution_count")
        if res.truncated_chars:
            self.outputs.append({"output_type": "stream", "name": "stdout",
                                 "text": f"\n[output truncated by the grader: {res.truncated_chars:,} more characters]\n"})
        res.outputs = self.outputs
        self.session.sample_memory()
        return res


class KernelStartError(RuntimeError):
    pass


def _add_stream(outputs: list, name: str, text: str, stored: int, cap: int, res: ExecResult) -> int:
    room = max(0, cap - stored)
    keep = text[:room]
    res.truncated_chars += len(text) - len(keep)
    if keep:
        if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == name:
            outputs[-1]["text"] += keep
        else:
            outputs.append({"output_type": "stream", "name": name, "text": keep})
    return stored + len(keep)


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _copy_font_cache(dest: Path) -> None:
    """Give the kernel matplotlib's font cache (building it costs seconds per kernel start)."""
    candidates = [os.environ.get("MPLCONFIGDIR"), os.path.join(os.path.expanduser("~"), ".cache", "matplotlib"),
                  os.path.join(os.path.expanduser("~"), ".matplotlib")]
    for c in candidates:
        if c and os.path.isdir(c):
            for f in Path(c).glob("fontlist-*.json"):
                with contextlib.suppress(OSError):
                    shutil.copy(f, dest / f.name)
            return
