"""The notebook runner: one assembled notebook, its answer and instructor cells in the sandboxed
kernel, its test cells in the trusted evaluator, with restarts, replays and limits."""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from course_tools.grading import sandbox as sb
from course_tools.grading import wire
from course_tools.grading.cells import Role, cell_key, cell_role, cell_source, nbg
from course_tools.grading.config import AGENT_READY_TIMEOUT_S, KERNEL_START_ATTEMPTS, GradeConfig
from course_tools.grading.evaluator import Channel, Evaluator, GraderAbort
from course_tools.grading.kernel import ExecResult, KernelSession, KernelStartError
from course_tools.grading.reports import CellReport, CellStatus, NotebookReport, NotebookStatus
from course_tools.grading.scan import trusted_imports
from course_tools.grading.submission import output_node, split_hidden
from course_tools.layout import GPU_ENV_VAR


def prelude_code(args: dict[str, Any]) -> str:
    """The grader prelude, the first code the kernel runs: the source of :func:`wire._grader_boot`
    (a real, tested function), called with the source of :mod:`course_tools.grading.wire` (the kernel
    cannot import ``course_tools``: it is not visible in the sandbox) and the agent's settings."""
    boot = inspect.getsource(wire._grader_boot)
    return f"{boot}\n_grader_boot(get_ipython(), {Path(wire.__file__).read_text()!r}, {args!r})\ndel _grader_boot\n"


def error_message(err: dict | None) -> str:
    if not err:
        return ""
    return f"{err.get('ename', '')}: {err.get('evalue', '')}".strip(": ")


class NotebookRunner:
    """Runs one assembled notebook: answer and instructor cells in the sandboxed kernel, test cells
    in the trusted :class:`~course_tools.grading.evaluator.Evaluator` of this (worker) process."""

    def __init__(
        self,
        session: KernelSession,
        cfg: GradeConfig,
        source_nb,
        nb,
        report: NotebookReport,
        forbidden: tuple[str, ...] = (),
    ):
        self.session, self.cfg, self.source_nb, self.nb, self.report = session, cfg, source_nb, nb, report
        self.holder = "_grader_" + secrets.token_hex(8)
        self.imports, self.bindings, self.modules = trusted_imports(source_nb)
        self.history: list[str] = []  # code of cells run in the current kernel (for replays)
        self.deadline = time.monotonic() + cfg.notebook_timeout
        self.tampered = ""
        self.reported: set[str] = set()
        self.part_outputs: dict[str, list[tuple[bool, bool, list]]] = {}  # grade id -> [(hidden, passed, outputs)]
        self.forbidden = tuple(forbidden)
        self.entered: dict[str, dict[str, int]] = {}  # grade id -> forbidden names entered during its test
        self.rules_missing: list[str] = []  # forbidden wrappers the student's code removed
        self.evaluator = Evaluator(source_nb, cell_role)
        self.source_cells = {cell_key(c): c for c in source_nb.cells}
        self.channel: Channel | None = None
        self.agent_key = secrets.token_hex(16)
        self._warm: threading.Thread | None = None
        from course_lib.gpu import is_gpu_cell

        self.skip_gpu = session.extra_env.get(GPU_ENV_VAR, "0") != "1"  # decided once by the parent
        self.is_gpu_cell = is_gpu_cell

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _scrub(self, outputs: list, tokens: list[str]) -> list:
        """Remove grader tokens and grader lines from outputs and tracebacks."""
        out = []
        for o in outputs:
            o = copy.deepcopy(o)
            if o.get("output_type") == "stream":
                for t in tokens:
                    o["text"] = o["text"].replace(t + "\n", "").replace(t, "")
                if not o["text"]:
                    continue
            elif o.get("output_type") == "error":
                o["traceback"] = [
                    ln for ln in o.get("traceback", []) if self.holder not in ln and not any(t in ln for t in tokens)
                ]
            out.append(o)
        return [output_node(o) for o in out]

    # -------------------------------------------------------------- kernel lifecycle
    def start_kernel(self) -> None:
        t0 = time.monotonic()
        try:
            self._start_kernel()
        finally:
            self.report.startup_seconds = round(self.report.startup_seconds + time.monotonic() - t0, 3)

    def _start_kernel(self) -> None:
        if self._warm is None and self.imports:  # the evaluator imports what the source imports meanwhile
            self._warm = threading.Thread(target=self.evaluator.warm_up, args=(self.imports,), daemon=True)
            self._warm.start()
        self.session.start(min(self.cfg.startup_timeout, max(5.0, self.remaining())))
        self.report.kernel_starts = self.session.starts
        sock_path = self.session.agent_socket_path()
        if self.channel is None:
            self.channel = Channel(sock_path, self.agent_key)
        else:
            self.channel.drop_connection()
            self.channel.relisten(sock_path)
        token = "PRELUDE-" + secrets.token_hex(8)
        args = {
            "stage": str(self.session.stage),
            "work": str(self.session.workdir),
            "socket_path": str(sock_path),
            "key": self.agent_key,
            "holder": self.holder,
            "forbidden": list(self.forbidden),
            "token": token,
            "lib_paths": sorted({str(p.parent) for p in sb._package_paths()}),
        }
        code = prelude_code(args)
        res = self.session.execute(
            code,
            min(self.cfg.startup_timeout, max(5.0, self.remaining())),
            silent=False,
            store_history=False,
            token=token,
        )
        if res.status != "ok" or not res.token_seen:
            raise KernelStartError(
                f"the grader prelude failed: {error_message(res.error) or res.status} "
                f"{res.exit_info} {self.session.log_tail()[-500:]}"
            )
        try:
            self.channel.accept(10.0)
        except GraderAbort as exc:
            raise KernelStartError(f"the kernel's agent did not connect: {exc.reason}") from None
        self.history = []
        if self._warm is not None:
            self._warm.join()

    def restart(self, why: str) -> bool:
        """Start a fresh kernel and replay the cells that ran; False when that is not possible."""
        self.session.shutdown()
        if self.channel is not None:
            self.channel.drop_connection()
        if self.session.starts > self.cfg.max_restarts:
            self.report.events.append(f"kernel not restarted: {self.cfg.max_restarts} restarts used")
            return False
        if self.remaining() < 5:
            return False
        self.report.events.append(
            f"kernel restarted ({why}); replaying {len(self.history)} cells (cells that hit a limit are not replayed)"
        )
        history = list(self.history)
        try:
            self.start_kernel()
        except KernelStartError as exc:
            self.report.events.append(f"restart failed: {exc}")
            return False
        for code in history:
            res = self.session.execute(code, min(self.cfg.cell_timeout, self.remaining()), keep_outputs=False)
            if res.status in ("died", "killed"):
                self.report.events.append("a replayed cell killed the kernel again")
                return False
            self.history.append(code)
        return True

    def after_cell(self) -> None:
        n = self.session.kill_strays()
        if n:
            self.report.events.append(f"killed {n} processes the notebook left running")

    def fatal(self, res: ExecResult) -> str:
        """'' when the kernel is usable after ``res``, else why it has to be restarted."""
        if res.status == "died":
            return f"kernel died ({res.exit_info})"
        if res.status == "killed":
            return f"kernel killed ({res.exit_info})"
        if res.error and res.error.get("ename") == "MemoryError":
            return "memory limit (MemoryError)"
        return ""

    @staticmethod
    def describe(res: ExecResult, cell_timeout: float) -> str:
        if res.status in ("died", "killed"):
            if "SIGXCPU" in res.exit_info:
                return "CPU time limit"
            if res.timed_out:
                return f"time limit ({cell_timeout:g} s; the interrupt was ignored, kernel killed)"
            return f"kernel death ({res.exit_info})"
        if res.timed_out:
            return f"time limit ({cell_timeout:g} s)"
        if res.output_limited:
            return "output limit (interrupted)"
        if res.error and res.error.get("ename") == "MemoryError":
            return "memory limit (MemoryError)"
        if res.error:
            return "error"
        return ""

    # -------------------------------------------------------------- running
    def run(self) -> None:
        rep = self.report
        t0 = time.monotonic()
        failure: KernelStartError | None = None
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                self.start_kernel()
                break
            except KernelStartError as exc:
                if attempt == KERNEL_START_ATTEMPTS or self.remaining() < 10:
                    failure = exc
                    break
                rep.events.append(
                    f"kernel start failed (attempt {attempt} of {KERNEL_START_ATTEMPTS}), retrying: {str(exc)[:300]}"
                )
                self.session.shutdown()
                time.sleep(attempt)
        if failure is not None or not self.session.alive() or self.channel is None or self.channel.sock is None:
            err = failure if failure is not None else KernelStartError("the kernel is not running")
            rep.status, rep.reason = NotebookStatus.NOT_GRADED, f"kernel start failed: {err}"
            rep.events.append(f"kernel start failed: {err}")
            self._not_run_rest(0, "kernel could not start")
            self.start_failed = True
            self.session.shutdown()
            if self.channel is not None:
                self.channel.close()
            return
        try:
            self._run_cells()
            self._check_rule_wrappers()
        finally:
            self.session.shutdown()
            if self.channel is not None:
                self.channel.close()
            rep.seconds = round(time.monotonic() - t0, 3)
            rep.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
            rep.events.extend(self.evaluator.events)
            if self.channel is not None:
                rep.exchanges, rep.cached_reads = self.channel.requests, self.channel.cache_hits

    start_failed = False

    def _check_rule_wrappers(self) -> None:
        if not self.forbidden or not self.session.alive():
            return
        token = "RULES-" + secrets.token_hex(8)
        res = self.session.execute(
            f"print({token!r} + __import__('json').dumps({self.holder}.verify_rule_wrappers()))",
            30,
            silent=True,
            store_history=False,
            token=token,
        )
        for o in res.outputs:
            if o.get("output_type") == "stream" and token in o.get("text", ""):
                with contextlib.suppress(ValueError, IndexError):
                    self.rules_missing = json.loads(o["text"].split(token, 1)[1].splitlines()[0])
        if not res.token_seen:
            self.rules_missing = ["(the rules' check did not run: the kernel did not answer)"]

    def _not_run_rest(self, start: int, reason: str) -> None:
        for cell in self.nb.cells[start:]:
            if (
                cell.cell_type == "code"
                and cell_role(cell) in (Role.TEST, Role.MANUAL)
                and nbg(cell)["grade_id"] not in self.reported
            ):
                self._record(
                    cell,
                    CellReport(
                        nbg(cell)["grade_id"], 0.0, float(nbg(cell).get("points", 0)), CellStatus.NOT_RUN, reason
                    ),
                )

    def _record(self, cell, cr: CellReport) -> None:
        self.reported.add(cr.grade_id)
        self.report.cells.append(cr)

    def _run_cells(self) -> None:
        rep = self.report
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            role = cell_role(cell)
            if self.remaining() <= 0:
                rep.events.append(f"notebook time limit ({self.cfg.notebook_timeout:g} s) reached")
                self._not_run_rest(index, f"not run: notebook time limit ({self.cfg.notebook_timeout:g} s)")
                return
            if self.skip_gpu and self.is_gpu_cell(cell) and role != Role.TEST:
                from course_lib.gpu import SKIP_MESSAGE

                cell.outputs = [output_node({"output_type": "stream", "name": "stdout", "text": SKIP_MESSAGE})]
                continue
            if role == Role.TEST:
                ok = self._run_test(cell)
            else:
                ok = self._run_plain(cell, role)
                scell = self.source_cells.get(cell_key(cell))
                if scell is not None and cell_role(scell) in (Role.PLAIN, Role.LOCKED) and scell.cell_type == "code":
                    self.evaluator.run_instructor_cell(
                        cell_source(scell), nbg(scell).get("grade_id") or scell.get("id", "?")
                    )
            if not ok:
                self._not_run_rest(index + 1, "not run: the kernel could not be restarted")
                return

    def _run_plain(self, cell, role: str) -> bool:
        code = cell_source(cell)
        res = self.session.execute(code, min(self.cfg.cell_timeout, self.remaining()))
        cell.outputs = self._scrub(res.outputs, [])
        cell.execution_count = res.execution_count
        why = self.describe(res, self.cfg.cell_timeout)
        name = nbg(cell).get("grade_id") or cell.get("id")
        if why and why != "error":
            self.report.events.append(f"cell {name}: {why}")
        if res.truncated_chars:
            self.report.events.append(f"cell {name}: output truncated ({res.truncated_chars:,} characters dropped)")
        if role == Role.MANUAL:
            self._record(
                cell,
                CellReport(
                    nbg(cell)["grade_id"],
                    None,
                    float(nbg(cell).get("points", 0)),
                    CellStatus.MANUAL,
                    "needs manual grading",
                    seconds=round(res.seconds, 3),
                ),
            )
        dead = self.fatal(res)
        self.after_cell()
        if dead:
            return self.restart(dead)
        if not (res.timed_out or res.output_limited):  # replays skip cells that hit a limit
            self.history.append(code)
        return True

    def _exchange_part(self, code: str, label: str, hidden: bool):
        """Run one test part in the evaluator while the kernel's agent serves its calls."""
        from course_tools.grading.evaluator import PartOutcome

        ch = self.channel
        if ch is None or ch.sock is None:
            return PartOutcome(ok=False, reason="no connection to the kernel"), None
        limit = min(self.cfg.cell_timeout, max(0.1, self.remaining()))
        exe = self.session.start_execute(f"{self.holder}.serve()", store_history=False)
        deadline = exe.start + limit

        def on_wait():
            exe.poll(0)
            exe.enforce(deadline)
            if exe.done:
                res = exe.res
                if res.status in ("died", "killed"):
                    why = self.describe(res, self.cfg.cell_timeout)
                    raise GraderAbort(why or res.status, fatal=self.fatal(res) or res.status)
                if exe.interrupted_at is not None:  # interrupted between two requests: the agent stopped serving
                    raise GraderAbort("time limit" if res.timed_out else "output limit (interrupted)")
                raise GraderAbort("the kernel ended the grader's exchange (kernel tampered with?)")

        ch.on_wait = on_wait
        ch.interrupted = lambda: exe.interrupted_at is not None  # type: ignore[method-assign]
        ch.broken = ""
        try:
            ch.wait_ready(min(AGENT_READY_TIMEOUT_S, limit))
            outcome = self.evaluator.run_part(code, label, ch, hidden=hidden)
        except GraderAbort as exc:
            outcome = PartOutcome(ok=False, reason=exc.reason, message=exc.reason, fatal=exc.fatal)
        if outcome.ok or not ch.broken:
            closing = ch.end()
            outcome.entered = closing.get("entered", {})
            if closing.get("error") and outcome.ok:  # a write the test sent without waiting failed
                outcome.ok, outcome.reason = False, "hidden test failed" if hidden else "test failed"
                outcome.message = f"writing into a student object failed: {closing['error']}"
        else:
            ch.end()
        if ch.broken and exe.interrupted_at is None and not exe.done:
            exe.session.interrupt()
        res = exe.finish(deadline)
        if outcome.reason == "time limit" and res.timed_out:
            outcome.reason = f"time limit ({self.cfg.cell_timeout:g} s)"
        dead = self.fatal(res)
        if dead and not outcome.fatal:
            outcome.fatal = dead
        if outcome.fatal and not outcome.reason:
            outcome.reason = self.describe(res, self.cfg.cell_timeout) or outcome.fatal
        if outcome.fatal:
            outcome.ok = False
            if res.status in ("died", "killed"):
                outcome.reason = self.describe(res, self.cfg.cell_timeout) or outcome.reason
        ch.on_wait = lambda: None
        return outcome, res

    def _run_test(self, cell) -> bool:
        meta = nbg(cell)
        gid, max_points = meta["grade_id"], float(meta.get("points", 0))
        source = cell_source(cell)
        parts = split_hidden(source)
        cr = CellReport(gid, 0.0, max_points, CellStatus.FAILED)
        all_outputs: list = []
        t0 = time.monotonic()
        passed = True
        for i, (code, hidden) in enumerate(parts):
            label = f"<test {gid}{' hidden' if hidden else ''} {i}>"
            outcome, res = self._exchange_part(code, label, hidden)
            kernel_outputs = self._scrub(res.outputs, []) if res is not None else []
            outs = [*kernel_outputs, *[output_node(o) for o in outcome.outputs]]
            if res is not None and cell.execution_count is None:
                cell.execution_count = res.execution_count
            all_outputs.extend(outs)
            if outcome.entered:
                for k, v in outcome.entered.items():
                    self.entered.setdefault(gid, {})[k] = self.entered.get(gid, {}).get(k, 0) + v
            self.part_outputs.setdefault(gid, []).append((hidden, outcome.ok, outs))
            self.after_cell()
            if not outcome.ok:
                passed = False
                cr.hidden = hidden
                cr.reason = outcome.reason or ("hidden test failed" if hidden else "test failed")
                cr.message = outcome.message or cr.reason
                if outcome.fatal:
                    cr.seconds = round(time.monotonic() - t0, 3)
                    cr.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
                    cell.outputs = all_outputs
                    self._record(cell, cr)
                    return self.restart(outcome.fatal)
                break
        if passed:
            cr.status, cr.points, cr.reason = CellStatus.PASSED, max_points, "passed"
        cr.seconds = round(time.monotonic() - t0, 3)
        cr.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
        cell.outputs = all_outputs
        self._record(cell, cr)
        return True
