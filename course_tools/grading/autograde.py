"""Robust autograding: sandboxed, parallel, resumable, with per-student reports and feedback.

``python -m course_tools autograde NAME [--jobs N | --cluster tcp://HOST:8786] [--student ID] [--force]
[--no-sandbox]`` grades every submission in ``grading/submitted/<student>/NAME/``.

How it works
------------
*Client* (:func:`autograde`): detects the sandbox (:mod:`course_tools.grading.sandbox`) where the
kernels will run, converts the source notebooks once, and hands one job per submission to a
scheduler (:mod:`course_tools.grading.scheduler`): a local pool of *worker* processes (``--jobs``
at a time), or a Dask distributed cluster (``--cluster``), whose tasks run the same worker process
on a worker machine and send back its report and notebooks. The client alone writes the graded
notebooks, the reports and the gradebook (nbgrader's SQLite database, one transaction per
submission); a report (``grading/reports/NAME/<student>.json``, written atomically last) marks a
submission as done. A run killed with SIGKILL leaves no half-written
report; the next run re-grades exactly the submissions without a current report and rewrites the
gradebook from all reports, so the result equals an uninterrupted run, and a re-run changes
nothing (the report stores a hash of the submission, the source and the grading settings).

Several machines: run ``dask scheduler`` on one and ``dask worker tcp://HOST:8786 --nthreads 1``
on each grading machine, with the course's repository and virtual environment at the same path as
the client's and a working sandbox (dask-jobqueue or dask-kubernetes start such workers on a batch
or Kubernetes cluster); then ``--cluster tcp://HOST:8786``. The submission travels with its task.

*Worker* (:func:`grade_submission`, a trusted process outside the sandbox): checks each notebook
(JSON, nbformat 4, expected name), rebuilds it from the source (:func:`assemble`: locked cells and
tests always from the source, in source order; the student's answer cells and added cells in
between), scans the student's code statically (:func:`scan_student_code`), and runs the cells one
by one in a Jupyter kernel started *inside* the sandbox (ipc transport, sockets in a folder shared
with the sandbox). Per cell and per notebook wall-clock limits (interrupt, then kill), output
capped, memory/CPU/process/file limits from the sandbox. A kernel death, kill or MemoryError
restarts the kernel and replays the cells that ran before, so the rest of the notebook is still
graded.

*Test cells* run in this worker, the trusted evaluator (:mod:`course_tools.grading.evaluator`),
never in the kernel: a prelude (:func:`course_tools.grading.wire.bootstrap`) connects an agent in
the kernel to the worker over a Unix socket; during each test part the agent serves the
evaluator's calls of the student's functions and methods and sends back plain data only. A part
passes exactly when it ran to its end in the evaluator and the exchange never broke. What the
static scan flags is listed in the report for a human to look at.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import copy
import datetime as _dt
import fcntl
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from course_tools.grading import sandbox as sb
from course_tools.grading.config import (  # noqa: E402 - re-exported for callers of this module
    AGENT_READY_TIMEOUT_S,
    AUTOGRADED_DIR,
    GRADER_VERSION,
    HIDDEN_BEGIN,
    HIDDEN_END,
    HIDDEN_FAILED,
    KERNEL_ENV_VARS,
    KERNEL_START_ATTEMPTS,
    MAX_JSON_DEPTH,
    MAX_LOG_TAIL_CHARS,
    MAX_NOTEBOOK_BYTES,
    MAX_SUBMISSION_BYTES,
    REDACTED_DIR,
    REPORTS_DIR,
    RESERVED_STUDENT_IDS,
    RULE_OVERRIDES,
    STUDENT_ID_RE,
    STUDENT_ID_RULE,
    SUBMITTED_DIR,
    GradeConfig,
    config_from_dict,
)
from course_tools.grading.evaluator import Channel, Evaluator, GraderAbort  # noqa: E402
from course_tools.grading.kernel import ExecResult, KernelSession, KernelStartError  # noqa: E402
from course_tools.grading.rules import load_overrides  # noqa: E402
from course_tools.grading.scheduler import (
    DaskCluster,
    Job,
    LocalPool,
    Outcome,
    Scheduler,
    isolation_from_dict,
    worker_timeout,
)
from course_tools.layout import (
    GPU_ENV_VAR,
    REPO_ROOT,
    SMOKE_ENV_VAR,
    SOLUTIONS,
    CourseLayout,
)

# =============================================================================================
# notebooks: loading, checking, assembling from the source


@dataclass
class Problem:
    reason: str  # short code: invalid-json, wrong-nbformat, missing-notebook, ...
    message: str


def load_student_notebook(path: Path) -> tuple[Any, Problem | None]:
    """Read a submitted notebook; return (notebook, None) or (None, the reason it cannot be graded)."""
    import nbformat

    try:
        if path.is_symlink() or not path.is_file():
            return None, Problem("not-a-file", f"{path.name} is not a regular file (a folder or a link); "
                                               "submit the notebook itself")
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, Problem("too-large", f"{path.name} is {size / 2**20:.0f} MB; the limit is "
                                              f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB (clear large outputs and save again)")
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem("unreadable", f"{path.name}: cannot read: {exc}")
    too_deep = Problem("invalid-json", f"{path.name} is JSON nested more than {MAX_JSON_DEPTH} levels deep "
                                       "(a notebook needs fewer than 20): not a notebook Jupyter saved")
    try:
        data = json.loads(raw.decode("utf-8", errors="strict"))
    except RecursionError:
        return None, too_deep
    except UnicodeDecodeError as exc:
        return None, Problem("invalid-json", f"{path.name} is not UTF-8 text: {exc}")
    except json.JSONDecodeError as exc:
        return None, Problem("invalid-json", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                             f"column {exc.colno}")
    if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return None, too_deep
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, Problem("wrong-nbformat", f"{path.name} is JSON but not a notebook (no 'cells')")
    major = data.get("nbformat")
    if major != 4:
        return None, Problem("wrong-nbformat", f"{path.name} has nbformat {major!r}; nbformat 4 is expected "
                                               "(save it with Jupyter 4 or newer)")
    try:
        nb = nbformat.from_dict(data)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat.ValidationError and friends
        message = getattr(exc, "message", str(exc))
        return None, Problem("wrong-nbformat", f"{path.name} is not a valid nbformat 4 notebook: {str(message)[:300]}")
    return nb, None


def json_depth(data, limit: int) -> int:
    """The nesting depth of parsed JSON (iterative; stops counting past ``limit``)."""
    best, stack = 0, [(data, 1)]
    while stack:
        obj, d = stack.pop()
        if isinstance(obj, (dict, list)):
            if d > best:
                best = d
                if best > limit:
                    return best
            stack.extend((v, d + 1) for v in (obj.values() if isinstance(obj, dict) else obj))
    return best


def _nbg(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def cell_role(cell) -> str:
    """``test`` (graded, not a solution), ``answer`` (solution), ``manual`` (graded solution),
    ``locked`` (read-only instructor cell), ``plain`` (no nbgrader role)."""
    meta = _nbg(cell)
    if not meta.get("grade_id"):
        return "plain"
    if meta.get("grade") and meta.get("solution"):
        return "manual"
    if meta.get("grade"):
        return "test"
    if meta.get("solution"):
        return "answer"
    if meta.get("locked") or meta.get("task"):
        return "locked"
    return "plain"


def _key(cell) -> str:
    gid = _nbg(cell).get("grade_id")
    return f"grade:{gid}" if gid else f"id:{cell.get('id', '')}"


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def assemble(source_nb, student_nb) -> tuple[Any, list[str]]:
    """The notebook to run: source order; source versions of locked and test cells; the student's
    answer cells and plain cells (matched by grade id / cell id); cells the student added kept after
    the cell they followed. Returns (notebook, the list of changes made to the submission)."""
    import nbformat

    changes: list[str] = []
    source_keys = [_key(c) for c in source_nb.cells]
    source_roles = {_key(c): cell_role(c) for c in source_nb.cells}
    matched: dict[str, Any] = {}
    attached: dict[str | None, list] = {}
    anchor: str | None = None
    student_order: list[str] = []
    for cell in student_nb.cells:
        k = _key(cell)
        if k in source_roles and k not in matched:
            matched[k] = cell
            student_order.append(k)
            anchor = k
            continue
        extra = copy.deepcopy(cell)
        if _nbg(extra):
            role = cell_role(extra)
            gid = _nbg(extra).get("grade_id")
            if k in matched:
                changes.append(f"duplicate of cell {gid or extra.get('id')} (kept as an ungraded cell)")
            elif role != "plain":
                changes.append(f"cell with unknown grade id {gid!r} (kept as an ungraded cell)")
            extra.metadata.pop("nbgrader", None)
        if extra.get("cell_type") == "code" or extra.get("cell_type") == "markdown":
            attached.setdefault(anchor, []).append(extra)
    # cells that were reordered
    expected_order = [k for k in source_keys if k in matched]
    if student_order != expected_order:
        changes.append("cells were reordered (source order restored)")
    out = nbformat.v4.new_notebook()
    out.metadata = copy.deepcopy(source_nb.metadata)
    out.cells.extend(attached.get(None, []))
    for scell in source_nb.cells:
        k = _key(scell)
        role = source_roles[k]
        gid = _nbg(scell).get("grade_id")
        name = gid or scell.get("id")
        st = matched.get(k)
        if role in ("test", "locked") or (role == "plain" and scell.cell_type == "markdown"):
            cell = copy.deepcopy(scell)
            if role in ("test", "locked"):
                if st is None:
                    changes.append(f"{role} cell {name} was deleted (restored from the source)")
                elif st.get("cell_type") != scell.cell_type or _as_released(_src(st)) not in (
                        _as_released(_src(scell)), _normalised(_src(scell))):
                    changes.append(f"{role} cell {name} was edited (restored from the source)")
        elif role in ("answer", "manual"):
            if st is None:
                changes.append(f"answer cell {name} is missing (graded as empty)")
                cell = copy.deepcopy(scell)
                cell.source = f"# answer cell {name} is missing from the submission"
            else:
                cell = copy.deepcopy(scell)
                cell.source = _src(st)
                if st.get("cell_type") != scell.cell_type:
                    changes.append(f"answer cell {name} changed type to {st.get('cell_type')} (run as {scell.cell_type})")
        else:  # plain code cell (setup, parameters): the student's version, else the source's
            if st is None:
                cell = copy.deepcopy(scell)
                changes.append(f"cell {name} is missing (the source version was run)")
            else:
                cell = copy.deepcopy(scell)
                cell.source = _src(st)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        out.cells.append(cell)
        out.cells.extend(attached.get(k, []))
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out, changes


def split_hidden(source: str) -> list[tuple[str, bool]]:
    """Split a test cell into [(code, is_hidden)] parts at the hidden-test markers.

    Returns one hidden part holding the whole cell when the parts do not parse on their own
    (markers inside an indented block), so that nothing hidden is ever reported as visible.
    """
    if HIDDEN_BEGIN not in source:
        return [(source, False)]
    parts: list[tuple[str, bool]] = []
    current: list[str] = []
    hidden = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(HIDDEN_BEGIN) or stripped.startswith(HIDDEN_END):
            if current:
                parts.append(("\n".join(current), hidden))
            current = []
            hidden = stripped.startswith(HIDDEN_BEGIN)
            continue
        current.append(line)
    if current:
        parts.append(("\n".join(current), hidden))
    parts = [(code, h) for code, h in parts if code.strip()]
    try:
        for code, _ in parts:
            ast.parse(_transform(code))
    except SyntaxError:
        return [(source, True)]
    return parts or [(source, False)]


def _normalised(source: str) -> str:
    return "\n".join(ln.rstrip() for ln in source.splitlines() if ln.strip())


def _as_released(source: str) -> str:
    """A test cell as nbgrader releases it (hidden tests and their markers removed), whitespace-normalised:
    an untouched release is not "edited"."""
    out, hidden = [], False
    for line in source.splitlines():
        s = line.strip()
        if s.startswith(HIDDEN_BEGIN):
            hidden = True
        elif s.startswith(HIDDEN_END):
            hidden = False
        elif not hidden:
            out.append(line)
    return _normalised("\n".join(out))


def redact_source(source: str) -> str:
    """A test cell's source without its hidden tests (for feedback)."""
    out, hidden = [], False
    for line in source.splitlines():
        s = line.strip()
        if s.startswith(HIDDEN_BEGIN):
            hidden = True
            out.append("# (hidden tests: not shown)")
            continue
        if s.startswith(HIDDEN_END):
            hidden = False
            continue
        if not hidden:
            out.append(line)
    return "\n".join(out)


# =============================================================================================
# static scan of the student's code


def _transform(code: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(code)
    except Exception:  # pragma: no cover - IPython is installed with nbgrader
        return code


FLAG_MODULES = {
    "ctypes": "tampering", "gc": "tampering", "importlib": "tampering", "builtins": "tampering",
    "marshal": "tampering", "inspect": "suspicious", "IPython": "tampering", "ipykernel": "tampering",
    "subprocess": "process", "multiprocessing": "process", "pty": "process", "signal": "process",
    "socket": "network", "urllib": "network", "http": "network", "requests": "network", "ftplib": "network",
    "smtplib": "network", "asyncio": "suspicious", "threading": "suspicious", "shutil": "filesystem",
}
FLAG_ATTRS = {
    "sys": {"modules": "tampering", "excepthook": "tampering", "displayhook": "tampering", "settrace": "tampering",
            "setprofile": "tampering", "_getframe": "tampering", "meta_path": "tampering", "path_hooks": "tampering",
            "stdout": "suspicious", "stderr": "suspicious", "exit": "process", "addaudithook": "tampering"},
    "os": {"system": "process", "fork": "process", "forkpty": "process", "_exit": "process", "kill": "process",
           "killpg": "process", "popen": "process", "execv": "process", "execve": "process", "execvp": "process",
           "spawnv": "process", "chdir": "filesystem", "remove": "filesystem", "unlink": "filesystem",
           "rmdir": "filesystem", "environ": "suspicious", "setuid": "process"},
}
FLAG_CALLS = {"exec": "tampering", "eval": "tampering", "compile": "tampering", "__import__": "tampering",
              "globals": "suspicious", "vars": "suspicious", "setattr": "suspicious", "delattr": "suspicious"}
NOTABLE_MAGICS = ("bash", "sh", "script", "writefile", "run", "load", "sx", "system", "env", "reset", "xmode",
                  "capture", "python", "python3", "perl", "ruby", "js", "javascript", "html")


@dataclass
class Flag:
    cell: str
    line: int
    kind: str  # tampering | suspicious | process | network | filesystem
    what: str


def _root_name(node) -> tuple[str | None, list[str]]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, list(reversed(parts))
    return None, list(reversed(parts))


def scan_student_code(cells: list[tuple[str, str]], trusted_bindings: dict[str, str]) -> list[Flag]:
    """Flag constructs in the student's cells [(cell name, source)] that could tamper with grading.

    ``trusted_bindings`` maps the names the source binds by import (``np``, ``assert_close``) to what
    they import (``numpy``, ``course_lib.testing.assert_close``). Nothing here changes a score.
    """
    flags: list[Flag] = []
    builtin_names = set(dir(builtins))
    modules = {k: v for k, v in trusted_bindings.items()}  # alias -> dotted origin

    def add(cell, node_or_line, kind, what):
        line = node_or_line if isinstance(node_or_line, int) else getattr(node_or_line, "lineno", 0)
        flags.append(Flag(cell, line, kind, what))

    for name, source in cells:
        for i, raw in enumerate(source.splitlines(), 1):
            s = raw.lstrip()
            if s.startswith("!"):
                add(name, i, "process", f"shell command `{s[:60]}`")
            m = re.match(r"%%?(\w+)", s)
            if m and m.group(1) in NOTABLE_MAGICS:
                add(name, i, "suspicious", f"magic %{m.group(1)}")
            if re.search(r"\bget_ipython\b", raw):
                add(name, i, "tampering", "uses get_ipython() (the kernel's shell)")
        try:
            tree = ast.parse(_transform(source))
        except SyntaxError as exc:
            add(name, exc.lineno or 0, "suspicious", f"syntax error, not scanned: {exc.msg}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for mod in names:
                    top = mod.split(".")[0]
                    if top in FLAG_MODULES:
                        add(name, node, FLAG_MODULES[top], f"imports {mod}")
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if isinstance(node, ast.Import):  # `import a.b` binds a; `import a.b as c` binds a.b
                        target = alias.name if alias.asname else alias.name.split(".")[0]
                    else:
                        target = f"{node.module}.{alias.name}"
                    if bound in trusted_bindings and trusted_bindings[bound] != target:
                        add(name, node, "tampering", f"rebinds test helper `{bound}` to {target}")
                    modules[bound] = target
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in trusted_bindings:
                    add(name, node, "tampering", f"redefines test helper `{node.name}`")
                elif node.name in builtin_names and node in tree.body:
                    add(name, node, "suspicious", f"shadows the builtin `{node.name}`")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                flat = []
                for t in targets:
                    flat.extend(t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])
                for t in flat:
                    if isinstance(t, ast.Name):
                        if t.id in trusted_bindings:
                            add(name, node, "tampering", f"reassigns test helper `{t.id}`")
                        elif t.id in builtin_names and node in tree.body:
                            add(name, node, "suspicious", f"shadows the builtin `{t.id}`")
                    elif isinstance(t, (ast.Attribute, ast.Subscript)):
                        root, parts = _root_name(t.value if isinstance(t, ast.Subscript) else t)
                        if root in modules or root in ("sys", "builtins", "__builtins__", "os"):
                            origin = modules.get(root, root)
                            what = ".".join([origin] + parts)
                            add(name, node, "tampering", f"modifies module attribute {what}")
            elif isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id in FLAG_CALLS:
                    if fn.id in ("setattr", "delattr"):
                        root = _root_name(node.args[0])[0] if node.args else None
                        if root in modules or root in ("sys", "builtins", "os"):
                            add(name, node, "tampering", f"{fn.id}() on module {modules.get(root, root)}")
                    else:
                        add(name, node, FLAG_CALLS[fn.id], f"calls {fn.id}()")
                if isinstance(fn, ast.Name) and fn.id == "open" and node.args:
                    arg = node.args[0]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and (
                            arg.value.startswith(("/", "~")) or ".." in arg.value):
                        add(name, node, "filesystem", f"opens {arg.value!r} (outside the working dir)")
            elif isinstance(node, ast.Attribute):
                root, parts = _root_name(node)
                if root in ("sys", "os") and parts and parts[0] in FLAG_ATTRS[root]:
                    add(name, node, FLAG_ATTRS[root][parts[0]], f"uses {root}.{parts[0]}")
                elif root in modules and modules[root] in ("sys", "os") and parts and parts[0] in FLAG_ATTRS[modules[root]]:
                    add(name, node, FLAG_ATTRS[modules[root]][parts[0]], f"uses {modules[root]}.{parts[0]}")
            elif isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
                add(name, node, "tampering", f"uses {node.id}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"(^|/)(solutions|gradebook\.db|grading)(/|$)", node.value):
                    add(name, node, "filesystem", f"mentions the path {node.value[:80]!r}")
    seen, out = set(), []
    for f in flags:
        k = (f.cell, f.line, f.what)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return out


def trusted_imports(source_nb) -> tuple[str, dict[str, str], list[str]]:
    """The import statements of the source's non-answer code cells (run by the grader prelude),
    the names they bind -> what they import, and the modules they import."""
    stmts, bindings, modules = [], {}, []
    for cell in source_nb.cells:
        if cell.cell_type != "code" or cell_role(cell) in ("answer", "manual"):
            continue
        try:
            tree = ast.parse(_transform(_src(cell)))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                stmts.append(ast.unparse(node))
                for a in node.names:
                    bindings[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    modules.append(a.name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if any(a.name == "*" for a in node.names):
                    continue
                stmts.append(ast.unparse(node))
                modules.append(node.module)
                for a in node.names:
                    bindings[a.asname or a.name] = f"{node.module}.{a.name}"
    return "\n".join(stmts), bindings, modules


def names_used(code: str) -> set[str]:
    try:
        tree = ast.parse(_transform(code))
    except SyntaxError:
        return set()
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return loaded - stored


def names_defined(code: str) -> list[str]:
    """Names a (locked, instructor) cell binds with def, class or import at top level."""
    try:
        tree = ast.parse(_transform(code))
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(node.name)
        elif isinstance(node, ast.Import):
            out += [a.asname or a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out += [a.asname or a.name for a in node.names if a.name != "*"]
    return out


# =============================================================================================
# grading one notebook


@dataclass
class CellReport:
    grade_id: str
    points: float | None  # None: needs manual grading
    max_points: float
    status: str  # passed | failed | not-run | manual
    reason: str = ""
    message: str = ""  # the failing assertion (full, for the instructor)
    hidden: bool = False  # the failure was in the hidden tests
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rules: list[str] = field(default_factory=list)  # the assignment's rules this cell's answers broke
    override: str = ""  # the instructor's reason for allowing them (rule-overrides.toml)


@dataclass
class NotebookReport:
    notebook: str
    status: str  # graded | not-graded
    reason: str = ""
    score: float = 0.0
    max_score: float = 0.0
    cells: list[CellReport] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    flags: list[dict] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # every rule violation found (static and dynamic)
    exchanges: int = 0  # requests the evaluator sent to the kernel's agent
    cached_reads: int = 0  # attribute reads answered without a request (no student code ran since)
    kernel_starts: int = 0
    startup_seconds: float = 0.0  # kernel start + grader prelude, all starts
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def _error_message(err: dict | None) -> str:
    if not err:
        return ""
    return f"{err.get('ename', '')}: {err.get('evalue', '')}".strip(": ")


class NotebookRunner:
    """Runs one assembled notebook: answer and instructor cells in the sandboxed kernel, test cells
    in the trusted :class:`~course_tools.grading.evaluator.Evaluator` of this (worker) process."""

    def __init__(self, session: KernelSession, cfg: GradeConfig, source_nb, nb, report: NotebookReport,
                 forbidden: tuple[str, ...] = ()):
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
        self.source_cells = {_key(c): c for c in source_nb.cells}
        self.channel: Channel | None = None
        self.agent_key = secrets.token_hex(16)
        self._warm = None
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
                o["traceback"] = [ln for ln in o.get("traceback", []) if self.holder not in ln
                                  and not any(t in ln for t in tokens)]
            out.append(o)
        return [_node(o) for o in out]

    # -------------------------------------------------------------- kernel lifecycle
    def start_kernel(self) -> None:
        t0 = time.monotonic()
        try:
            self._start_kernel()
        finally:
            self.report.startup_seconds = round(self.report.startup_seconds + time.monotonic() - t0, 3)

    def _start_kernel(self) -> None:
        import threading

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
        from course_tools.grading import wire

        args = {"stage": str(self.session.stage), "work": str(self.session.workdir), "socket_path": str(sock_path),
                "key": self.agent_key, "holder": self.holder, "forbidden": list(self.forbidden), "token": token,
                "lib_paths": sorted({str(p.parent) for p in sb._package_paths()})}
        code = ("def _grader_boot(src, args):\n"
                "    import types\n"
                "    m = types.ModuleType('_grader_wire')\n"
                "    m.__file__ = '<grader agent>'\n"
                "    exec(compile(src, '<grader agent>', 'exec'), m.__dict__)\n"
                "    m.bootstrap(get_ipython(), **args)\n"
                f"_grader_boot({Path(wire.__file__).read_text()!r}, {args!r})\n"
                "del _grader_boot\n")
        res = self.session.execute(code, min(self.cfg.startup_timeout, max(5.0, self.remaining())), silent=False,
                                   store_history=False, token=token)
        if res.status != "ok" or not res.token_seen:
            raise KernelStartError(f"the grader prelude failed: {_error_message(res.error) or res.status} "
                                   f"{res.exit_info} {self.session.log_tail()[-500:]}")
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
        self.report.events.append(f"kernel restarted ({why}); replaying {len(self.history)} cells "
                                  "(cells that hit a limit are not replayed)")
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
                rep.events.append(f"kernel start failed (attempt {attempt} of {KERNEL_START_ATTEMPTS}), retrying: "
                                  f"{str(exc)[:300]}")
                self.session.shutdown()
                time.sleep(attempt)
        if failure is not None or not self.session.alive() or self.channel is None or self.channel.sock is None:
            exc = failure if failure is not None else KernelStartError("the kernel is not running")
            rep.status, rep.reason = "not-graded", f"kernel start failed: {exc}"
            rep.events.append(f"kernel start failed: {exc}")
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
            f"print({token!r} + __import__('json').dumps({self.holder}.verify_rule_wrappers()))", 30,
            silent=True, store_history=False, token=token)
        for o in res.outputs:
            if o.get("output_type") == "stream" and token in o.get("text", ""):
                with contextlib.suppress(ValueError, IndexError):
                    self.rules_missing = json.loads(o["text"].split(token, 1)[1].splitlines()[0])
        if not res.token_seen:
            self.rules_missing = ["(the rules' check did not run: the kernel did not answer)"]

    def _not_run_rest(self, start: int, reason: str) -> None:
        for cell in self.nb.cells[start:]:
            if cell.cell_type == "code" and cell_role(cell) in ("test", "manual") and _nbg(cell)["grade_id"] not in self.reported:
                self._record(cell, CellReport(_nbg(cell)["grade_id"], 0.0, float(_nbg(cell).get("points", 0)),
                                              "not-run", reason))

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
            if self.skip_gpu and self.is_gpu_cell(cell) and role != "test":
                from course_lib.gpu import SKIP_MESSAGE

                cell.outputs = [_node({"output_type": "stream", "name": "stdout", "text": SKIP_MESSAGE})]
                continue
            if role in ("test",):
                ok = self._run_test(cell)
            else:
                ok = self._run_plain(cell, role)
                scell = self.source_cells.get(_key(cell))
                if scell is not None and cell_role(scell) in ("plain", "locked") and scell.cell_type == "code":
                    self.evaluator.run_instructor_cell(_src(scell), _nbg(scell).get("grade_id") or scell.get("id", "?"))
            if not ok:
                self._not_run_rest(index + 1, "not run: the kernel could not be restarted")
                return

    def _run_plain(self, cell, role: str) -> bool:
        code = _src(cell)
        res = self.session.execute(code, min(self.cfg.cell_timeout, self.remaining()))
        cell.outputs = self._scrub(res.outputs, [])
        cell.execution_count = res.execution_count
        why = self.describe(res, self.cfg.cell_timeout)
        name = _nbg(cell).get("grade_id") or cell.get("id")
        if why and why != "error":
            self.report.events.append(f"cell {name}: {why}")
        if res.truncated_chars:
            self.report.events.append(f"cell {name}: output truncated ({res.truncated_chars:,} characters dropped)")
        if role == "manual":
            self._record(cell, CellReport(_nbg(cell)["grade_id"], None, float(_nbg(cell).get("points", 0)), "manual",
                                          "needs manual grading", seconds=round(res.seconds, 3)))
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
        ch.interrupted = lambda: exe.interrupted_at is not None
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
        meta = _nbg(cell)
        gid, max_points = meta["grade_id"], float(meta.get("points", 0))
        source = _src(cell)
        parts = split_hidden(source)
        cr = CellReport(gid, 0.0, max_points, "failed")
        all_outputs: list = []
        t0 = time.monotonic()
        passed = True
        for i, (code, hidden) in enumerate(parts):
            label = f"<test {gid}{' hidden' if hidden else ''} {i}>"
            outcome, res = self._exchange_part(code, label, hidden)
            kernel_outputs = self._scrub(res.outputs, []) if res is not None else []
            outs = [*kernel_outputs, *[_node(o) for o in outcome.outputs]]
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
            cr.status, cr.points, cr.reason = "passed", max_points, "passed"
        cr.seconds = round(time.monotonic() - t0, 3)
        cr.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
        cell.outputs = all_outputs
        self._record(cell, cr)
        return True


# =============================================================================================
# one submission (runs in a worker process)


def _hash_dir(folder: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    total = 0
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(folder).as_posix()
            size = p.stat().st_size
            total += size
            h.update(rel.encode() + b"\0" + str(size).encode() + b"\0")
            with open(p, "rb") as fh:  # all of it: a change past any size cap still changes the hash
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest(), total


def submission_hash(sub_dir: Path, source_nbs: dict[str, Path], cfg: GradeConfig, iso: sb.Isolation,
                    rules: dict | None = None) -> str:
    """What a grade depends on: the grader, the submission, the sources, the settings, the sandbox,
    and the rules (forbidden names and this student's overrides)."""
    h = hashlib.sha256()
    h.update(GRADER_VERSION.encode())
    if rules:
        h.update(json.dumps(rules, sort_keys=True).encode())
    h.update(_hash_dir(sub_dir)[0].encode())
    for name in sorted(source_nbs):
        h.update(name.encode() + Path(source_nbs[name]).read_bytes())
    h.update(json.dumps(cfg.key(), sort_keys=True).encode())
    h.update(iso.variant.encode())
    return h.hexdigest()


def _stage_submission(sub_dir: Path, extra_dir: Path | None, stage: Path) -> None:
    stage.mkdir(parents=True, exist_ok=True)
    total = 0
    for p in sorted(sub_dir.rglob("*")) if sub_dir.is_dir() else []:
        if p.is_symlink():
            continue
        rel = p.relative_to(sub_dir)
        if any(part.startswith(".ipynb_checkpoints") for part in rel.parts):
            continue
        if p.is_dir():
            (stage / rel).mkdir(parents=True, exist_ok=True)
        elif p.is_file():
            total += p.stat().st_size
            if total > MAX_SUBMISSION_BYTES:
                break
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, stage / rel)
    if extra_dir and extra_dir.is_dir():
        shutil.copytree(extra_dir, stage, dirs_exist_ok=True, symlinks=False)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _write_nb_atomic(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)


def redact(nb, part_outputs: dict[str, list[tuple[bool, bool, list]]]):
    """The feedback version of a graded notebook: hidden tests removed from the test cells; what a
    hidden part printed or raised replaced by "hidden test failed" (or "hidden tests passed")."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) != "test":
            continue
        src = _src(cell)
        if HIDDEN_BEGIN not in src:
            continue
        cell.source = redact_source(src)
        outputs = []
        for hidden, passed, outs in part_outputs.get(_nbg(cell).get("grade_id"), []):
            if not hidden:
                outputs += outs
            elif passed:
                outputs.append({"output_type": "stream", "name": "stdout", "text": "hidden tests passed\n"})
            else:
                outputs.append({"output_type": "error", "ename": "HiddenTestFailed", "evalue": HIDDEN_FAILED,
                                "traceback": [f"{HIDDEN_FAILED}: your code did not pass a test that is not shown"]})
        cell.outputs = [_node(o) for o in outputs]
    return nb


def _node(output: dict):
    import nbformat

    return nbformat.from_dict(output)


def grade_submission(job: dict) -> dict:
    """Grade one student's submission (all notebooks of the assignment); return the report dict."""
    import nbformat

    cfg = _cfg_from_dict(job["config"])
    # the evaluator (this process) sees the kernels' smoke/GPU settings and draws no windows
    os.environ.update({k: v for k, v in job.get("kernel_env", {}).items() if v})
    os.environ["MPLBACKEND"] = "Agg"
    iso = sb.Isolation(**{**job["isolation"], "notes": tuple(job["isolation"].get("notes", ()))})
    sub_dir = Path(job["submission"])
    student, assignment = job["student"], job["assignment"]
    source_paths = {k: Path(v) for k, v in job["sources"].items()}
    t0 = time.monotonic()
    report: dict[str, Any] = {
        "student": student, "assignment": assignment, "grader_version": GRADER_VERSION,
        "input_hash": job["input_hash"], "isolation": iso.describe(), "isolation_variant": iso.variant,
        "timestamp": job.get("timestamp"),
        "notebooks": [], "started_at": _now(),
    }
    present = sorted(p.name for p in sub_dir.glob("*.ipynb")) if sub_dir.is_dir() else []
    empty = not sub_dir.is_dir() or not any(p.is_file() and not p.is_symlink() for p in sub_dir.rglob("*"))
    unexpected = [p for p in present if p not in source_paths]
    base = Path(tempfile.mkdtemp(prefix="cg-", dir=job.get("tmp_root") or None))
    os.chmod(base, 0o711)
    (base / "owner.pid").write_text(str(os.getpid()))
    try:
        stage = base / "stage"
        _stage_submission(sub_dir, Path(job["extra_files"]) if job.get("extra_files") else None, stage)
        for nb_name, src_path in sorted(source_paths.items()):
            source_nb = nbformat.read(src_path, as_version=4)
            nbr = NotebookReport(nb_name, "graded")
            nbr.max_score = sum(float(_nbg(c).get("points", 0)) for c in source_nb.cells
                                if cell_role(c) in ("test", "manual"))
            path = sub_dir / nb_name
            problem = None
            student_nb = None
            if empty:
                problem = Problem("no-submission", "nothing was submitted (the submission folder is empty)")
            elif not path.exists():
                hint = f"; found {', '.join(unexpected)} instead (renamed?)" if unexpected else ""
                problem = Problem("missing-notebook", f"{nb_name} is missing from the submission{hint}")
            else:
                student_nb, problem = load_student_notebook(path)
            if problem:
                nbr.status, nbr.reason = "not-graded", f"{problem.reason}: {problem.message}"
                for c in source_nb.cells:
                    if cell_role(c) in ("test", "manual"):
                        nbr.cells.append(CellReport(_nbg(c)["grade_id"], 0.0, float(_nbg(c).get("points", 0)),
                                                    "not-run", f"not graded: {problem.reason}"))
                report["notebooks"].append(asdict(nbr))
                _write_placeholder(job, nb_name, nbr)
                continue
            nb, changes = assemble(source_nb, student_nb)
            nbr.changes = changes
            _, bindings, _ = trusted_imports(source_nb)
            student_cells = [(_nbg(c).get("grade_id") or c.get("id", "?"), _src(c)) for c in nb.cells
                             if c.cell_type == "code" and cell_role(c) in ("answer", "plain", "manual")]
            nbr.flags = [asdict(f) for f in scan_student_code(student_cells, bindings)]
            session = KernelSession(iso, cfg, base / f"k-{Path(nb_name).stem}", stage, job["slot"],
                                    job.get("kernel_env", {}))
            session.jobs = job.get("jobs", 1)
            session.base.mkdir()
            runner = NotebookRunner(session, cfg, source_nb, nb, nbr, forbidden=tuple(job.get("forbidden") or ()))
            runner.run()
            if runner.start_failed:
                report["retry"] = True  # not a final grade: the next run grades it again
            if runner.tampered:
                nbr.events.append(f"kernel tampering: {runner.tampered}")
            apply_rules(nbr, nb, source_nb, runner, tuple(job.get("forbidden") or ()), job.get("overrides") or [])
            nbr.score = sum(c.points or 0.0 for c in nbr.cells)
            _write_nb_atomic(nb, Path(job["autograded_dir"]) / nb_name)
            _write_nb_atomic(redact(nb, runner.part_outputs), Path(job["redacted_dir"]) / nb_name)
            report["notebooks"].append(asdict(nbr))
        for extra in unexpected:
            report.setdefault("warnings", []).append(f"unexpected notebook {extra} was not graded")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report["score"] = sum(n["score"] for n in report["notebooks"])
    report["max_score"] = sum(n["max_score"] for n in report["notebooks"])
    report["status"] = "graded" if all(n["status"] == "graded" for n in report["notebooks"]) else "partly-graded" \
        if any(n["status"] == "graded" for n in report["notebooks"]) else "not-graded"
    report["seconds"] = round(time.monotonic() - t0, 3)
    report["peak_rss_mb"] = max([n["peak_rss_mb"] for n in report["notebooks"]] or [0.0])
    report["finished_at"] = _now()
    return report


def apply_rules(nbr: NotebookReport, nb, source_nb, runner: NotebookRunner, forbidden: tuple[str, ...],
                overrides: list[dict]) -> None:
    """The assignment's rules: a test cell whose answers use a forbidden name scores 0 (unless overridden).

    Static: :func:`course_tools.grading.rules.check_cells` on the student's cells of the graded
    notebook; the test cells that use a name bound by a violating cell (directly or through other
    student cells) are affected. Dynamic: the forbidden callables the kernel's wrappers saw entered
    during a test cell's calls. Wrappers the student's code removed void the dynamic check: every
    test cell is affected.
    """
    from course_tools.grading import rules

    if not forbidden:
        return
    cells = rules.notebook_cells(nb, source_nb)
    violations = rules.check_cells(cells, forbidden)
    student_cells = [(name, src) for name, src, mine in cells if mine]
    tests = {_nbg(c)["grade_id"]: _src(c) for c in nb.cells if c.cell_type == "code" and cell_role(c) == "test"}
    by_cell: dict[str, list[str]] = {}
    for v in violations:
        by_cell.setdefault(v.cell, []).append(str(v))
    per_test: dict[str, list[str]] = {}
    judge, answers = rules.instructor_names(source_nb)
    for gid, via in rules.affected_tests(tests, student_cells, set(by_cell), judge_names=judge,
                                         answer_names=answers).items():
        per_test[gid] = [t for c in sorted(via) for t in by_cell[c]]
    for gid, names in runner.entered.items():
        per_test.setdefault(gid, []).extend(
            f"{gid}: the answer called {n} during this test ({k} times; forbidden by the assignment's rules)"
            for n, k in sorted(names.items()))
    if runner.rules_missing:
        why = (f"the answers removed the grader's watch on forbidden names ({', '.join(runner.rules_missing[:5])}): "
               "the rules could not be checked")
        for gid in tests:
            per_test.setdefault(gid, []).append(why)
    nbr.rules = [str(v) for v in violations] + sorted({t for ts in per_test.values() for t in ts} - {
        str(v) for v in violations})
    for cr in nbr.cells:
        found = per_test.get(cr.grade_id)
        if not found:
            continue
        cr.rules = found
        if cr.status != "passed":  # it scored nothing anyway: its own reason stays, the rules are listed
            continue
        reason = rules.override_for(overrides, cr.grade_id)
        if reason is not None:
            cr.override = reason
            continue
        cr.points, cr.status, cr.reason = 0.0, "failed", "rule violation"
        cr.message = "; ".join(found)[:2000] + " (the tests themselves passed)"


def _write_placeholder(job: dict, nb_name: str, nbr: NotebookReport) -> None:
    """A one-cell notebook saying why ``nb_name`` was not graded (so feedback exists for it)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**{nb_name} was not graded.**\n\n{html.escape(nbr.reason)}"))
    for d in (job["autograded_dir"], job["redacted_dir"]):
        _write_nb_atomic(nb, Path(d) / nb_name)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


_cfg_from_dict = config_from_dict


def worker_main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    try:
        report = grade_submission(job)
        report["status_final"] = not report.pop("retry", False)
    except Exception as exc:  # a grader bug: report it, do not cache it
        import traceback

        report = {"student": job["student"], "assignment": job["assignment"], "status": "grader-error",
                  "status_final": False, "reason": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-MAX_LOG_TAIL_CHARS:], "input_hash": job["input_hash"], "notebooks": [],
                  "score": 0.0, "max_score": 0.0}
    _write_json_atomic(Path(job["report"]), report)
    return 0


# =============================================================================================
# the parent: orchestration, gradebook, reports


@dataclass
class RunSummary:
    assignment: str
    isolation: str
    graded: list[str] = field(default_factory=list)  # students graded in this run
    cached: list[str] = field(default_factory=list)  # students whose current report was reused
    failed: list[str] = field(default_factory=list)  # grader errors (retried next run)
    refused: list[str] = field(default_factory=list)  # submission folders whose name is not a valid student id
    seconds: float = 0.0
    reports_dir: Path | None = None
    grades_csv: Path | None = None
    plot: Path | None = None


def _log_default(msg: str) -> None:
    print(msg, flush=True)


def _source_notebooks(name: str, root: Path, out_dir: Path) -> dict[str, Path]:
    from course_tools.notebooks.convert import read_source, write_notebook

    src_dir = root / SOLUTIONS / name
    sources = sorted(src_dir.glob("*.py"))
    if not sources:
        raise GradingSetupError(f"solutions/{name}/ has no .py notebook sources")
    out = {}
    for p in sources:
        nb = read_source(p, strip_jupytext=True)
        out[p.stem + ".ipynb"] = write_notebook(nb, out_dir / (p.stem + ".ipynb"))
    return out


def _extra_files(name: str, root: Path, out_dir: Path) -> Path | None:
    """Non-notebook files of the source assignment (data the notebook reads), copied next to it."""
    src_dir = root / SOLUTIONS / name
    ignore = shutil.ignore_patterns("*.py", "*.ipynb", "*.pyc", "__pycache__", ".ipynb_checkpoints", "feedback")
    files = [p for p in src_dir.iterdir() if not p.name.endswith((".py", ".ipynb", ".pyc"))
             and p.name not in ("__pycache__", ".ipynb_checkpoints", "feedback")]
    if not files:
        return None
    shutil.copytree(src_dir, out_dir, ignore=ignore, dirs_exist_ok=True)
    return out_dir


class GradingSetupError(RuntimeError):
    pass


def _ensure_gradebook(name: str, root: Path, sources: dict[str, Path], log) -> None:
    """Make sure the gradebook knows assignment ``name`` with the source's graded cells (runs
    ``nbgrader generate_assignment`` into a scratch release folder when it does not)."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    from course_tools.grading.release import run_nbgrader, sync_solutions

    want = {}
    for nb_name, p in sources.items():
        nb = nbformat.read(p, as_version=4)
        want[Path(nb_name).stem] = {_nbg(c)["grade_id"]: float(_nbg(c).get("points", 0)) for c in nb.cells
                                    if cell_role(c) in ("test", "manual")}
    db = CourseLayout(root).gradebook
    ok = False
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                a = gb.find_assignment(name)
                have = {nb.name: {gc.name: float(gc.max_score) for gc in nb.grade_cells} for nb in a.notebooks}
                ok = have == want
            except MissingEntry:
                ok = False
    if ok:
        return
    log(f"registering {name} in the gradebook (nbgrader generate_assignment into a scratch folder)")
    sync_solutions(name, root)
    with tempfile.TemporaryDirectory(prefix="cg-release-") as tmp:
        run_nbgrader(["generate_assignment", name, "--force", f"--CourseDirectory.release_directory={tmp}"], root)


def record_in_gradebook(gb, report: dict) -> None:
    """Write one student's scores (idempotent: update in place, one commit)."""
    import warnings

    from nbgrader.api import MissingEntry

    warnings.filterwarnings("ignore", message=".*not in session.*")

    name, student = report["assignment"], report["student"]
    gb.update_or_create_student(student)
    kwargs = {}
    if report.get("timestamp"):
        kwargs["timestamp"] = report["timestamp"]
    try:
        gb.update_or_create_submission(name, student, **kwargs)
    except Exception:
        gb.db.rollback()
        gb.update_or_create_submission(name, student)
    for nbr in report["notebooks"]:
        nb_id = Path(nbr["notebook"]).stem
        for cell in nbr["cells"]:
            try:
                grade = gb.find_grade(cell["grade_id"], nb_id, name, student)
            except MissingEntry:
                continue
            grade.auto_score = cell["points"]
            grade.needs_manual_grade = grade.manual_score is not None or cell["points"] is None
        try:
            sub_nb = gb.find_submission_notebook(nb_id, name, student)
            for comment in sub_nb.comments:
                comment.auto_comment = None
        except MissingEntry:
            pass
    gb.db.commit()


def assignment_rules(name: str, root: Path) -> tuple[str, ...]:
    """What an answer of ``name`` may not use: the spec's ``forbidden`` prefixes, its ``answers``
    (the course_lib reference implementations) and ``reveals`` (syllabus.toml of ``root``, else of
    the repository the grader runs from)."""
    from course_tools.assignments import load_spec
    from course_tools.layout import SYLLABUS_FILE

    spec = load_spec(name, root if (root / SYLLABUS_FILE).exists() else REPO_ROOT)
    return tuple(dict.fromkeys([*spec.forbidden, *spec.answers.values(), *spec.reveals]))


RUN_SUMMARY_FILE = "_summary.txt"


def valid_student_id(student: str) -> bool:
    return STUDENT_ID_RE.fullmatch(student) is not None and student not in RESERVED_STUDENT_IDS


def _read_timestamp(sub_dir: Path) -> str | None:
    p = sub_dir / "timestamp.txt"
    with contextlib.suppress(OSError):
        return p.read_text().strip() or None
    return None


def autograde(name: str, root: Path | None = None, *, jobs: int | None = None, students: list[str] | None = None,
              force: bool = False, no_sandbox: bool = False, isolation: str | None = None,
              config: GradeConfig | None = None, feedback: bool = True, export: bool = True, log=_log_default,
              tmp_root: str | None = None, cluster: str | None = None, client=None) -> RunSummary:
    """Grade every submission of assignment ``name`` under ``root/grading/submitted``.

    ``jobs`` worker processes at a time on this machine, or, with ``cluster`` (a Dask scheduler's
    address, ``tcp://host:8786``) or ``client`` (a ``distributed.Client``), one Dask task per
    submission on the cluster's workers (:mod:`course_tools.grading.scheduler`)."""

    root = Path(root or REPO_ROOT).resolve()
    cfg = config or GradeConfig()
    t0 = time.monotonic()
    grading = CourseLayout(root).grading
    grading.mkdir(exist_ok=True)
    lock_fh = open(grading / ".autograde.lock", "w")
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise GradingSetupError(f"another autograde run holds {grading / '.autograde.lock'}") from None
    try:
        work = grading / ".work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if cluster is not None or client is not None:
            try:
                scheduler: Scheduler = DaskCluster(cluster, client=client, log=log)
            except RuntimeError as exc:
                raise GradingSetupError(str(exc)) from None
        else:
            scheduler = LocalPool(jobs or len(os.sched_getaffinity(0)), work, root, tmp_root)
        with scheduler:
            course = CourseLayout(root)
            hidden = [course.solutions, course.grading, course.nbgrader_config]
            iso, cuda = _isolation(scheduler, no_sandbox, isolation, cfg, hidden)
            log(f"isolation: {iso.describe()}")
            log(f"limits: {cfg.limits.describe()}; {cfg.cell_timeout:g} s per cell, "
                f"{cfg.notebook_timeout:g} s per notebook")
            return _autograde_locked(name, root, cfg, iso, cuda, scheduler, work, students, force, feedback, export,
                                     log, tmp_root, t0)
    finally:
        lock_fh.close()


def _isolation(scheduler: Scheduler, no_sandbox: bool, force: str | None, cfg: GradeConfig,
               hidden: list[Path]) -> tuple[sb.Isolation, bool]:
    """The sandbox every machine that runs kernels uses (one variant on all of them: it is part of
    the grades' cache key) and whether all of them have CUDA."""
    probes = scheduler.probe(no_sandbox, force, cfg.limits, hidden)
    errors = [f"{p.get('worker', p['host'])}: {p['error']}" for p in probes if "error" in p]
    if errors:
        raise sb.SandboxError("; ".join(errors))
    problems = [f"{p.get('worker', p['host'])}: {x}" for p in probes for x in p["problems"]]
    if problems:
        raise GradingSetupError("the sandbox would expose course files: " + "; ".join(problems))
    variants = {p["isolation"]["variant"] for p in probes}
    if len(variants) > 1:
        raise GradingSetupError("the workers have different sandboxes (" + ", ".join(
            f"{p.get('worker', p['host'])}: {p['isolation']['variant']}" for p in probes)
            + "): grades would depend on where a submission ran; give every worker the same one "
              "(or choose one with --isolation)")
    return isolation_from_dict(probes[0]["isolation"]), all(p["cuda"] for p in probes)


def _autograde_locked(name, root, cfg, iso, cuda, scheduler, work, students, force, feedback, export, log,
                      tmp_root, t0) -> RunSummary:
    from nbgrader.api import Gradebook

    summary = RunSummary(name, iso.describe())
    sources = _source_notebooks(name, root, work / "source")
    extra = _extra_files(name, root, work / "extra")
    _ensure_gradebook(name, root, sources, log)
    scheduler.clean(tmp_root)
    submitted = root / SUBMITTED_DIR
    all_students = sorted(p.name for p in submitted.iterdir() if (p / name).is_dir()) if submitted.is_dir() else []
    for odd in [s for s in all_students if not valid_student_id(s)]:
        log(f"  refused the submission folder {odd!r}: {STUDENT_ID_RULE} (collect normalises such names)")
        summary.refused.append(odd)
    all_students = [s for s in all_students if valid_student_id(s)]
    if students:
        missing = [s for s in students if s not in all_students]
        if missing:
            raise GradingSetupError(f"no submission of {name} from {', '.join(missing)} in {submitted}")
        all_students = [s for s in all_students if s in students]
    reports_dir = root / REPORTS_DIR / name
    reports_dir.mkdir(parents=True, exist_ok=True)
    summary.reports_dir = reports_dir
    kernel_env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_VARS}
    if cfg.smoke is not None:
        kernel_env[SMOKE_ENV_VAR] = "1" if cfg.smoke else "0"
    kernel_env.setdefault(GPU_ENV_VAR, os.environ.get(GPU_ENV_VAR, ""))
    if not kernel_env[GPU_ENV_VAR]:  # decided once for the run: gpu cells run only where every worker has CUDA
        kernel_env[GPU_ENV_VAR] = "1" if cuda else "0"

    forbidden = assignment_rules(name, root)
    if forbidden:
        log(f"rules: {len(forbidden)} forbidden names ({', '.join(forbidden[:6])}{' ...' if len(forbidden) > 6 else ''})")
    overrides_path = root / RULE_OVERRIDES
    student_overrides: dict[str, list[dict]] = {}
    todo: list[Job] = []
    done = []
    for student in all_students:
        sub_dir = submitted / student / name
        try:
            student_overrides[student] = load_overrides(overrides_path, name, student)
        except ValueError as exc:
            raise GradingSetupError(str(exc)) from None
        h = submission_hash(sub_dir, sources, cfg, iso,
                            {"forbidden": list(forbidden), "overrides": student_overrides[student]})
        rpath = reports_dir / f"{student}.json"
        if not force and rpath.exists():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(rpath.read_text())
                if old.get("input_hash") == h and old.get("status_final"):
                    done.append(old)
                    summary.cached.append(student)
                    continue
        spec = {
            "student": student, "assignment": name, "submission": str(sub_dir),
            "sources": {k: str(v) for k, v in sources.items()},
            "extra_files": str(extra) if extra else None, "config": cfg.key(),
            "isolation": {**iso.__dict__, "notes": list(iso.notes)},
            "input_hash": h, "kernel_env": kernel_env, "tmp_root": tmp_root,
            "forbidden": list(forbidden), "overrides": student_overrides.get(student, []),
            "timestamp": _read_timestamp(sub_dir),
        }
        todo.append(Job(student, h, spec, sub_dir, tuple(sources)))
    db_url = f"sqlite:///{CourseLayout(root).gradebook}"
    with Gradebook(db_url) as gb:
        for rep in done:
            record_in_gradebook(gb, rep)
    where = scheduler.describe()
    if summary.cached:
        log(f"{len(summary.cached)} submissions already graded (unchanged), {len(todo)} to grade on {where}")
    else:
        log(f"{len(todo)} submissions to grade on {where}")

    timeout = worker_timeout(cfg.notebook_timeout, cfg.startup_timeout, cfg.max_restarts, len(sources))
    with Gradebook(db_url) as gb, contextlib.closing(scheduler.grade(todo, timeout)) as outcomes:
        for outcome in outcomes:
            rep = _store_outcome(root, name, reports_dir, outcome)
            student = outcome.student
            if rep.get("status") == "grader-error":
                summary.failed.append(student)
                log(f"  {student:<24} GRADER ERROR: {rep.get('reason', '')[:300]}")
                continue
            record_in_gradebook(gb, rep)
            summary.graded.append(student)
            log(f"  {student:<24} {rep['score']:g}/{rep['max_score']:g}  {rep['status']:<13} "
                f"{rep.get('seconds', 0):.1f} s  {_one_line(rep)}")
    reports = []
    for student in all_students:
        with contextlib.suppress(OSError, ValueError):
            rep = json.loads((reports_dir / f"{student}.json").read_text())
            if rep.get("status") != "grader-error":
                reports.append(rep)
                _write_text_atomic(reports_dir / f"{student}.txt", render_text(rep))
                _write_text_atomic(reports_dir / f"{student}.html", render_html(rep))
    summary.grades_csv = write_grades_csv(reports, reports_dir / "grades.csv")
    summary.plot = plot_distribution(reports, reports_dir / "distribution.png", name)
    # run files start with "_": a student id never does (students named "summary" keep their own reports)
    _write_text_atomic(reports_dir / RUN_SUMMARY_FILE, render_summary(reports, summary, iso))
    if feedback and reports:
        from course_tools.grading.release import GradingError

        try:
            generate_feedback(name, root)
        except GradingError as exc:
            log(f"feedback generation failed: {str(exc)[-800:]}")
    if export:
        from course_tools.grading.release import run_nbgrader

        run_nbgrader(["export", f"--to={CourseLayout(root).grading / 'grades.csv'}"], root)
    summary.seconds = round(time.monotonic() - t0, 2)
    log(f"graded {len(summary.graded)}, unchanged {len(summary.cached)}, grader errors {len(summary.failed)} "
        f"in {summary.seconds:.1f} s; reports in {reports_dir}")
    return summary


def _store_outcome(root: Path, name: str, reports_dir: Path, outcome: Outcome) -> dict:
    """Write what a worker sent back: its notebooks (graded, redacted), then its report, atomically and
    last (a report marks the submission as done)."""
    student = outcome.student
    dirs = {"autograded": root / AUTOGRADED_DIR / student / name, "redacted": root / REDACTED_DIR / student / name}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
    for rel, data in outcome.files.items():
        kind, _, nb_name = rel.partition("/")
        if kind not in dirs or not nb_name or "/" in nb_name or nb_name.startswith("."):
            raise GradingSetupError(f"a worker sent back an unexpected file {rel!r}")
        dirs[kind].mkdir(parents=True, exist_ok=True)
        _write_bytes_atomic(dirs[kind] / nb_name, data)
    _write_json_atomic(reports_dir / f"{student}.json", outcome.report)
    return outcome.report


def _one_line(rep: dict) -> str:
    bits = []
    for n in rep.get("notebooks", []):
        if n["status"] != "graded":
            bits.append(n["reason"][:80])
        bits += n.get("events", [])[:2]
        if n.get("flags"):
            bits.append(f"{len(n['flags'])} flags")
    return "; ".join(bits)[:160]


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def generate_feedback(name: str, root: Path | None = None) -> str:
    """nbgrader's feedback HTML (``grading/feedback/<student>/NAME/``), made from the redacted
    notebooks of :func:`redact` (hidden tests removed), never from the full autograded ones."""
    from course_tools.grading.release import run_nbgrader
    return run_nbgrader(["generate_feedback", name, "--force",
                         f"--CourseDirectory.autograded_directory={REDACTED_DIR.as_posix()}"], Path(root or REPO_ROOT))


def write_grades_csv(reports: list[dict], path: Path) -> Path:
    import csv

    cells = []
    for rep in reports:
        for n in rep["notebooks"]:
            for c in n["cells"]:
                key = f"{Path(n['notebook']).stem}:{c['grade_id']}"
                if key not in cells:
                    cells.append(key)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "score", "max_score", "status", *cells, "reason"])
        for rep in sorted(reports, key=lambda r: r["student"]):
            scores = {f"{Path(n['notebook']).stem}:{c['grade_id']}": c["points"] for n in rep["notebooks"] for c in n["cells"]}
            reasons = "; ".join(n["reason"] for n in rep["notebooks"] if n["status"] != "graded")
            w.writerow([rep["student"], rep["score"], rep["max_score"], rep["status"],
                        *["" if scores.get(k) is None else scores.get(k) for k in cells], reasons])
    os.replace(tmp, path)
    return path


def plot_distribution(reports: list[dict], path: Path, name: str) -> Path | None:
    if not reports:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [r["score"] for r in reports]
    top = max(r["max_score"] for r in reports) or 1.0
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    bins = min(20, max(5, int(top) + 1))
    ax.hist(scores, bins=bins, range=(0, top), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"score (of {top:g})")
    ax.set_ylabel("students")
    mean = sum(scores) / len(scores)
    ax.axvline(mean, color="#dd8452", linestyle="--", label=f"mean {mean:.1f}")
    ax.set_title(f"{name}: {len(scores)} submissions")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def render_text(rep: dict) -> str:
    lines = [f"{rep['student']} · {rep['assignment']} · {rep['score']:g}/{rep['max_score']:g} ({rep['status']})",
             f"isolation: {rep.get('isolation', '')}", ""]
    for n in rep["notebooks"]:
        lines.append(f"{n['notebook']}: {n['score']:g}/{n['max_score']:g}  {n['status']}"
                     + (f" — {n['reason']}" if n["reason"] else "")
                     + f"  ({n['seconds']:.1f} s, peak {n['peak_rss_mb']:.0f} MB, {n['kernel_starts']} kernel starts)")
        for c in n["cells"]:
            pts = "manual" if c["points"] is None else f"{c['points']:g}/{c['max_points']:g}"
            lines.append(f"  {c['grade_id']:<24} {pts:<8} {c['status']:<8} {c['seconds']:6.2f} s  "
                         f"{c['peak_rss_mb']:6.0f} MB  {c['reason'] if c['status'] != 'passed' else ''}")
            if c["message"] and c["status"] != "passed":
                lines.append(f"      {c['message'][:400]}")
            if c.get("override"):
                lines.append(f"      rules broken but allowed by the instructor ({c['override']}): "
                             + "; ".join(c.get("rules", []))[:400])
        for title, key in (("changes to the submission", "changes"), ("events", "events"),
                           ("restored before tests (tampering)", "restored")):
            if n.get(key):
                lines.append(f"  {title}:")
                lines += [f"    - {x}" for x in n[key]]
        if n.get("rules"):
            lines.append("  the assignment's rules (affected test cells score 0 unless overridden):")
            lines += [f"    - {x}" for x in n["rules"]]
        if n.get("flags"):
            lines.append("  static scan flags (for review; scores unaffected):")
            lines += [f"    - [{f['kind']}] cell {f['cell']} line {f['line']}: {f['what']}" for f in n["flags"]]
    for w in rep.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"


def render_html(rep: dict) -> str:
    e = html.escape
    rows = []
    for n in rep["notebooks"]:
        rows.append(f"<h2>{e(n['notebook'])}: {n['score']:g}/{n['max_score']:g} ({e(n['status'])})</h2>")
        if n["reason"]:
            rows.append(f"<p class=bad>{e(n['reason'])}</p>")
        rows.append(f"<p>{n['seconds']:.1f} s, peak memory {n['peak_rss_mb']:.0f} MB, "
                    f"{n['kernel_starts']} kernel start(s)</p>")
        rows.append("<table><tr><th>test cell</th><th>points</th><th>status</th><th>reason / message</th>"
                    "<th>s</th><th>MB</th></tr>")
        for c in n["cells"]:
            pts = "manual" if c["points"] is None else f"{c['points']:g}/{c['max_points']:g}"
            msg = "" if c["status"] == "passed" else f"{e(c['reason'])}<br><code>{e(c['message'][:600])}</code>"
            if c.get("override"):
                msg += f"<br>rules broken, allowed by the instructor: {e(c['override'])}"
            rows.append(f"<tr class={'ok' if c['status'] == 'passed' else 'bad'}><td>{e(c['grade_id'])}</td>"
                        f"<td>{pts}</td><td>{e(c['status'])}</td><td>{msg}</td>"
                        f"<td>{c['seconds']:.2f}</td><td>{c['peak_rss_mb']:.0f}</td></tr>")
        rows.append("</table>")
        for title, key in (("Changes to the submission", "changes"), ("Events", "events"),
                           ("Restored before tests (tampering)", "restored")):
            if n.get(key):
                rows.append(f"<h3>{title}</h3><ul>" + "".join(f"<li>{e(x)}</li>" for x in n[key]) + "</ul>")
        if n.get("rules"):
            rows.append("<h3>The assignment's rules (affected test cells score 0 unless overridden)</h3><ul>"
                        + "".join(f"<li>{e(x)}</li>" for x in n["rules"]) + "</ul>")
        if n.get("flags"):
            rows.append("<h3>Static scan flags (for review; scores unaffected)</h3><ul>" + "".join(
                f"<li>[{e(f['kind'])}] cell {e(f['cell'])} line {f['line']}: {e(f['what'])}</li>" for f in n["flags"])
                + "</ul>")
    return (f"<!doctype html><meta charset=utf-8><title>{e(rep['student'])} · {e(rep['assignment'])}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}.ok{background:#eef8ee}"
            ".bad{background:#fdeeee}code{white-space:pre-wrap}</style>"
            f"<h1>{e(rep['student'])} · {e(rep['assignment'])}: {rep['score']:g}/{rep['max_score']:g}</h1>"
            f"<p>isolation: {e(rep.get('isolation', ''))}</p>" + "\n".join(rows))


def render_summary(reports: list[dict], summary: RunSummary, iso: sb.Isolation) -> str:
    lines = [f"assignment {summary.assignment}: {len(reports)} submissions", f"isolation: {iso.describe()}", ""]
    for rep in sorted(reports, key=lambda r: r["student"]):
        lines.append(f"{rep['student']:<24} {rep['score']:6g}/{rep['max_score']:<6g} {rep['status']:<13} {_one_line(rep)}")
    return "\n".join(lines) + "\n"


# =============================================================================================
# command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="assignment, e.g. 01-neural-networks")
    p.add_argument("--student", action="append", default=None, help="grade only this student (repeatable)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel submissions (default: CPU cores)")
    p.add_argument("--cluster", default=None, metavar="tcp://HOST:8786",
                   help="grade on this Dask scheduler's workers instead of local processes (--jobs is ignored)")
    p.add_argument("--force", action="store_true", help="re-grade submissions whose report is current")
    p.add_argument("--no-sandbox", action="store_true", help="grade without isolation if none is available")
    p.add_argument("--isolation", choices=sb.KINDS, default=None, help="use this mechanism (default: strongest)")
    p.add_argument("--cell-timeout", type=float, default=GradeConfig.cell_timeout)
    p.add_argument("--notebook-timeout", type=float, default=GradeConfig.notebook_timeout)
    p.add_argument("--memory", type=float, default=sb.Limits.address_space / 2**30, help="address space limit, GiB")
    p.add_argument("--smoke", action="store_true", help="run the notebooks in smoke mode (COURSE_SMOKE=1)")
    p.add_argument("--no-feedback", action="store_true")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--interrupt-grace", type=float, default=GradeConfig.interrupt_grace, help=argparse.SUPPRESS)
    p.add_argument("--course-root", type=Path, default=None, help=argparse.SUPPRESS)


def run_from_args(args: argparse.Namespace, root: Path | None = None) -> int:
    cfg = GradeConfig(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                      interrupt_grace=args.interrupt_grace,
                      limits=replace(sb.Limits(), address_space=int(args.memory * 2**30)),
                      smoke=True if args.smoke else None)
    try:
        autograde(args.name, root or args.course_root, jobs=args.jobs, students=args.student, force=args.force,
                  no_sandbox=args.no_sandbox, isolation="none" if args.isolation == "none" else args.isolation,
                  config=cfg, feedback=not args.no_feedback, export=not args.no_export, cluster=args.cluster)
    except (sb.SandboxError, GradingSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        # jsonschema (imported by nbformat) builds ~40 parsers for the optional "iri" format checker
        # of rfc3987_syntax at import time: 2+ s per worker for a format nbformat never uses
        sys.modules.setdefault("rfc3987_syntax", None)
        return worker_main(argv[1])
    parser = argparse.ArgumentParser(prog="python -m course_tools autograde",
                                     description="sandboxed, parallel, resumable autograding")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
