"""Robust autograding: sandboxed, parallel, resumable, with per-student reports and feedback.

``python -m course_tools autograde NAME [--jobs N] [--student ID] [--force] [--no-sandbox]``
grades every submission in ``grading/submitted/<student>/NAME/``.

How it works
------------
*Parent* (:func:`autograde`): detects the sandbox (:mod:`course_tools.grading.sandbox`), converts the
source notebooks once, and starts one *worker* process per submission (``--jobs`` at a time).
The parent alone writes the gradebook (nbgrader's SQLite database), one transaction per
submission, from the worker's report; a report (``grading/reports/NAME/<student>.json``, written
atomically last) marks a submission as done. A run killed with SIGKILL leaves no half-written
report; the next run re-grades exactly the submissions without a current report and rewrites the
gradebook from all reports, so the result equals an uninterrupted run, and a re-run changes
nothing (the report stores a hash of the submission, the source and the grading settings).

*Worker* (:func:`grade_submission`, a trusted process outside the sandbox): checks each notebook
(JSON, nbformat 4, expected name), rebuilds it from the source (:func:`assemble`: locked cells and
tests always from the source, in source order; the student's answer cells and added cells in
between), scans the student's code statically (:func:`scan_student_code`), and runs the cells one
by one in a Jupyter kernel started *inside* the sandbox (ipc transport, sockets in a folder shared
with the sandbox). Per cell and per notebook wall-clock limits (interrupt, then kill), output
capped, memory/CPU/process/file limits from the sandbox. A kernel death, kill or MemoryError
restarts the kernel and replays the cells that ran before, so the rest of the notebook is still
graded.

*Inside the kernel* a grader prelude, run before any student code, snapshots the trusted modules
(those the source imports, their testing helpers, ``course_lib``), the builtins, the classes and
hooks of IPython and ipykernel, and the helper names the source binds. Before every test cell a
grader request restores all of them (and reports what it had to restore), a canary request checks
that a failing statement is still reported as an error, and the test cell (split into its visible
and hidden parts) ends with a grader line that checks nothing trusted changed during the test and
prints a per-request random token. A test part passes only when the kernel's reply says ``ok``, no
error was published and the token was printed; stderr output does not matter. This is hardening,
not proof: student code shares the Python process with the tests (see the module notes in
``DESIGN.md``); what the static scan flags is listed in the report for a human to look at.
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
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from course_tools.grading import sandbox as sb
from course_tools.layout import (
    CACHE_ENV_VAR,
    GPU_ENV_VAR,
    GRADING,
    MIRROR_ENV_VAR,
    NBGRADER_EXECUTION_ENV_VAR,
    OFFLINE_ENV_VAR,
    REPO_ROOT,
    SMOKE_ENV_VAR,
    SOLUTIONS,
    CourseLayout,
)

GRADER_VERSION = "robust-1"
#: the environment variables passed on to a student kernel (nothing else of the grader's environment is)
KERNEL_ENV_VARS = (GPU_ENV_VAR, SMOKE_ENV_VAR, CACHE_ENV_VAR, MIRROR_ENV_VAR)
REPORTS_DIR = Path(GRADING) / "reports"
REDACTED_DIR = Path(GRADING) / "redacted"
SUBMITTED_DIR = Path(GRADING) / "submitted"
AUTOGRADED_DIR = Path(GRADING) / "autograded"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FAILED = "hidden test failed"
MAX_SUBMISSION_BYTES = 50 << 20
#: seconds between sweeps when killing a kernel's leftover children
KILL_POLL_INTERVAL_S = 0.05
#: after a cell's execute_reply, how long to wait for the kernel's "idle" status before moving on
IDLE_AFTER_REPLY_TIMEOUT_S = 2.0
#: lines of a kernel traceback kept in a report, and characters of a worker's crash log
MAX_TRACEBACK_LINES = 60
MAX_LOG_TAIL_CHARS = 4000
EXTRA_TRUSTED_MODULES = ("numpy.testing", "numpy.linalg", "torch.testing", "torch.nn", "torch.nn.functional",
                         "torch.autograd", "torch.linalg", "course_lib.testing")


@dataclass(frozen=True)
class GradeConfig:
    """Limits and switches of one autograding run (all part of the submissions' cache key)."""

    cell_timeout: float = 120.0  # seconds per cell (a test cell: per visible/hidden part)
    notebook_timeout: float = 900.0  # seconds per notebook, restarts and replays included
    startup_timeout: float = 120.0  # kernel start + grader prelude
    interrupt_grace: float = 5.0  # after SIGINT, seconds before the kernel is killed
    max_restarts: int = 3  # kernel restarts per notebook
    output_cap: int = 100_000  # characters of output kept per cell in the graded notebook
    output_hard_cap: int = 20_000_000  # characters per cell after which a running cell is interrupted
    limits: sb.Limits = field(default_factory=sb.Limits)
    smoke: bool | None = None  # COURSE_SMOKE for the kernels (None: inherit the environment)

    def key(self) -> dict:
        """Everything that can change a grade, with numbers as floats (6 and 6.0 are the same limit)."""
        def norm(v):
            if isinstance(v, dict):
                return {k: norm(x) for k, x in v.items()}
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        return norm(asdict(self))


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
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem("unreadable", f"{path.name}: cannot read: {exc}")
    try:
        data = json.loads(raw.decode("utf-8", errors="strict"))
    except UnicodeDecodeError as exc:
        return None, Problem("invalid-json", f"{path.name} is not UTF-8 text: {exc}")
    except json.JSONDecodeError as exc:
        return None, Problem("invalid-json", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                             f"column {exc.colno}")
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
                elif _src(st).strip() != _src(scell).strip() or st.get("cell_type") != scell.cell_type:
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
# the code the grader runs inside the kernel

GUARD_SOURCE = r'''
import builtins as _builtins, json as _json, os as _os, signal as _signal, sys as _sys
import threading as _threading, types as _types

_MISSING = object()
_VOLATILE = {"__warningregistry__", "__slotnames__", "_abc_impl", "__abstractmethods__", "__annotations__",
             "__dict__", "__weakref__", "__doc__", "__parameters__", "__orig_bases__", "__module__",
             "__qualname__", "__firstlineno__", "__static_attributes__", "_is_protocol", "__cached__",
             "__file__", "__path__", "__spec__", "__loader__", "__package__", "__name__", "__builtins__",
             "__all__", "__protocol_attrs__", "__non_callable_proto_members__"}
_VOLATILE_ATTRS = {"torch.Storage"}  # changed by torch.set_default_dtype
_ALLOWED_EVENT_MODULES = ("matplotlib", "matplotlib_inline", "IPython", "ipykernel", "ipywidgets", "comm")


def _same(a, b):
    if a is b:
        return True
    if isinstance(a, _types.MethodType) and isinstance(b, _types.MethodType):
        return a.__func__ is b.__func__ and a.__self__ is b.__self__
    return False


class Guard:
    def __init__(self, module_names, bindings, trusted_prefixes):
        ip = get_ipython()
        self.ip, self.kernel = ip, getattr(ip, "kernel", None)
        self.stdout = _sys.stdout
        self.prefixes = tuple(trusted_prefixes)
        self.modules = {}
        for name in module_names:
            mod = _sys.modules.get(name)
            # sys and builtins change legitimately (sys.last_value, ...); they get their own checks
            if isinstance(mod, _types.ModuleType) and name not in ("sys", "builtins"):
                self.modules[name] = mod
        self.module_dicts = {n: dict(vars(m)) for n, m in self.modules.items()}
        self.functions, self.classes = {}, {}
        for d in self.module_dicts.values():
            for v in d.values():
                self._remember(v)
        self.builtins = dict(vars(_builtins))
        objs = [ip, self.kernel, getattr(self.kernel, "session", None), ip.displayhook, ip.display_pub,
                ip.InteractiveTB, ip.SyntaxTB, ip.input_transformer_manager, ip.events, ip.compile]
        self.objs = [o for o in objs if o is not None]
        for o in self.objs:
            for cls in type(o).__mro__[:-1]:
                self._remember_class(cls)
        self.instance = [(o, {k: v for k, v in vars(o).items() if callable(v)}) for o in self.objs if hasattr(o, "__dict__")]
        itm = ip.input_transformer_manager
        self.lists = [(ip, "input_transformers_post"), (ip, "ast_transformers"), (itm, "cleanup_transforms"),
                      (itm, "line_transforms"), (itm, "token_transformers")]
        self.lists = [(o, a, getattr(o, a), list(getattr(o, a))) for o, a in self.lists if hasattr(o, a)]
        self.events = {k: list(v) for k, v in ip.events.callbacks.items()}
        self.handlers = []
        for attr in ("shell_handlers", "control_handlers"):
            d = getattr(self.kernel, attr, None)
            if isinstance(d, dict):
                self.handlers.append((attr, d, dict(d)))
        self.sys_attrs = {n: getattr(_sys, n) for n in ("displayhook", "stdout", "stderr", "breakpointhook",
                                                        "unraisablehook") if hasattr(_sys, n)}
        self.custom_exceptions = ip.custom_exceptions
        self.sigint = _signal.getsignal(_signal.SIGINT)
        self.bindings = dict(bindings)

    def _remember(self, v):
        if isinstance(v, _types.FunctionType):
            self.functions[id(v)] = (v, v.__code__, v.__defaults__, v.__kwdefaults__)
        elif isinstance(v, type) and (getattr(v, "__module__", "") or "").startswith(self.prefixes):
            self._remember_class(v)

    def _remember_class(self, cls):
        if id(cls) in self.classes or cls.__flags__ & (1 << 8):  # Py_TPFLAGS_IMMUTABLETYPE
            return
        snap = dict(vars(cls))
        self.classes[id(cls)] = (cls, snap)
        for v in snap.values():
            if isinstance(v, _types.FunctionType):
                self.functions[id(v)] = (v, v.__code__, v.__defaults__, v.__kwdefaults__)
            elif isinstance(v, (staticmethod, classmethod)) and isinstance(v.__func__, _types.FunctionType):
                f = v.__func__
                self.functions[id(f)] = (f, f.__code__, f.__defaults__, f.__kwdefaults__)

    # ------------------------------------------------------------------ compare (and fix)
    def _check(self, fix, user_names=(), unshadow=()):
        found = []
        note = found.append
        for name, mod in self.modules.items():
            if _sys.modules.get(name) is not mod:
                note(f"sys.modules[{name!r}] was replaced")
                if fix:
                    _sys.modules[name] = mod
            d, snap = vars(mod), self.module_dicts[name]
            for k, v in snap.items():
                if k in _VOLATILE or f"{name}.{k}" in _VOLATILE_ATTRS:
                    continue
                cur = d.get(k, _MISSING)
                if not _same(cur, v):
                    note(f"{name}.{k} was {'deleted' if cur is _MISSING else 'replaced'}")
                    if fix:
                        d[k] = v
            for k in [k for k in d if k not in snap]:
                v = d[k]
                if (not k.startswith("_") and not isinstance(v, _types.ModuleType)) or k in ("__getattr__", "__dir__"):
                    note(f"{name}.{k} was added")
                    if fix:
                        del d[k]
        for fn, code, defaults, kwdefaults in self.functions.values():
            if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
                note(f"the code of {getattr(fn, '__module__', '?')}.{fn.__qualname__} was replaced")
                if fix:
                    fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
        for cls, snap in self.classes.values():
            d = vars(cls)
            for k, v in snap.items():
                if k in _VOLATILE:
                    continue
                cur = d.get(k, _MISSING)
                if not _same(cur, v):
                    note(f"{cls.__module__}.{cls.__qualname__}.{k} was {'deleted' if cur is _MISSING else 'replaced'}")
                    if fix:
                        type.__setattr__(cls, k, v)
            for k in [k for k in d if k not in snap and k not in _VOLATILE]:
                note(f"{cls.__module__}.{cls.__qualname__}.{k} was added")
                if fix:
                    type.__delattr__(cls, k)
        b = vars(_builtins)
        for k, v in self.builtins.items():
            if k in ("_", "__", "___"):
                continue
            cur = b.get(k, _MISSING)
            if not _same(cur, v):
                note(f"builtins.{k} was {'deleted' if cur is _MISSING else 'replaced'}")
                if fix:
                    b[k] = v
        for o, snap in self.instance:
            d = vars(o)
            for k, v in list(d.items()):
                if callable(v) and not isinstance(v, type) and (k not in snap or not _same(v, snap[k])):
                    if k in snap or isinstance(v, (_types.FunctionType, _types.MethodType, _types.LambdaType)):
                        note(f"{type(o).__name__}.{k} was overridden on the instance")
                        if fix:
                            if k in snap:
                                d[k] = snap[k]
                            else:
                                del d[k]
            for k, v in snap.items():
                if k not in d:
                    note(f"{type(o).__name__}.{k} was deleted")
                    if fix:
                        d[k] = v
        for o, a, lst, items in self.lists:
            cur = getattr(o, a, _MISSING)
            if cur is not lst or len(lst) != len(items) or any(x is not y for x, y in zip(lst, items)):
                note(f"IPython {a} were changed")
                if fix:
                    lst[:] = items
                    if cur is not lst:
                        setattr(o, a, lst)
        cbs = self.ip.events.callbacks
        for k, items in self.events.items():
            cur = cbs.get(k, [])
            extra = [f for f in cur if not any(_same(f, g) for g in items)
                     and not (getattr(f, "__module__", "") or "").startswith(_ALLOWED_EVENT_MODULES)]
            missing = [g for g in items if not any(_same(f, g) for f in cur)]
            if extra or missing:
                note(f"IPython event callbacks for {k!r} were changed")
                if fix:
                    for f in extra:
                        cur.remove(f)
                    cur.extend(missing)
                    cbs[k] = cur
        for attr, d, items in self.handlers:
            if getattr(self.kernel, attr, None) is not d or any(not _same(d.get(k), v) for k, v in items.items()):
                note(f"kernel {attr} were changed")
                if fix:
                    d.clear()
                    d.update(items)
                    setattr(self.kernel, attr, d)
        for n, v in self.sys_attrs.items():
            if getattr(_sys, n, None) is not v:
                note(f"sys.{n} was replaced")
                if fix:
                    setattr(_sys, n, v)
        if _sys.gettrace() is not None or _sys.getprofile() is not None:
            note("a trace/profile function was installed")
            if fix:
                _sys.settrace(None)
                _sys.setprofile(None)
                _threading.settrace(None)
                _threading.setprofile(None)
        if self.ip.custom_exceptions is not self.custom_exceptions:
            note("IPython custom exception handlers were changed")
            if fix:
                self.ip.custom_exceptions = self.custom_exceptions
        if _signal.getsignal(_signal.SIGINT) is not self.sigint:
            note("the SIGINT handler was changed")
            if fix:
                _signal.signal(_signal.SIGINT, self.sigint)
        ns = self.ip.user_ns
        for k, v in self.bindings.items():
            if k in user_names or fix:
                cur = ns.get(k, _MISSING)
                if cur is not v:
                    if cur is not _MISSING:
                        note(f"test helper `{k}` was rebound")
                    if fix:
                        ns[k] = v
        for k in unshadow:
            if k in ns and ns[k] is not self.builtins.get(k, _MISSING):
                note(f"builtin `{k}` was shadowed")
                if fix:
                    del ns[k]
        return found

    def restore(self, token, unshadow=()):
        found = self._check(True, unshadow=unshadow)
        self._reap()
        self.stdout.write(token + _json.dumps(found) + "\n")
        self.stdout.flush()

    def finish(self, token):
        found = self._check(False)
        if found:
            self._check(True)
            raise AssertionError("grading integrity: changed while the test ran: " + "; ".join(found[:8]))
        self.stdout.write(token + "\n")
        self.stdout.flush()

    def capture(self, names):
        ns = self.ip.user_ns
        for k in names:
            if k in ns:
                self.bindings[k] = ns[k]

    def _reap(self):
        while True:
            try:
                pid, _ = _os.waitpid(-1, _os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
'''

PRELUDE_TEMPLATE = r'''
def _grader_prelude():
    import os, shutil, sys, types
    stage, work = {stage!r}, {work!r}
    if stage != work and os.path.isdir(stage):
        for dirpath, dirnames, filenames in os.walk(stage):
            rel = os.path.relpath(dirpath, stage)
            target = work if rel == "." else os.path.join(work, rel)
            os.makedirs(target, exist_ok=True)
            for f in filenames:
                try:
                    shutil.copyfile(os.path.join(dirpath, f), os.path.join(target, f))
                except OSError:
                    pass
    os.chdir(work)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", work, os.getcwd())] + [work]
    scratch = {{}}
    exec(compile({imports!r}, "<grader imports>", "exec"), scratch)
    names = list({modules!r})
    for extra in {extra_modules!r}:
        if extra.split(".")[0] in sys.modules:
            try:
                __import__(extra)
                names.append(extra)
            except Exception:
                pass
    bindings = {{k: v for k, v in scratch.items() if k != "__builtins__"}}
    for v in bindings.values():
        if isinstance(v, types.ModuleType):
            names.append(v.__name__)
    names += [n for n in list(sys.modules) if n == "course_lib" or n.startswith("course_lib.")]
    names = [n for n in dict.fromkeys(names) if n in sys.modules]
    g = {{"get_ipython": get_ipython}}
    exec(compile({guard!r}, "<grader guard>", "exec"), g)
    holder = types.ModuleType({holder!r})
    holder.guard = g["Guard"](names, bindings, tuple(sorted({{n.split(".")[0] for n in names}})))
    sys.modules[{holder!r}] = holder
    get_ipython().user_ns.update(bindings)
    print({token!r})
_grader_prelude()
del _grader_prelude
'''


# =============================================================================================
# kernel session


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

    def execute(self, code: str, timeout: float, *, silent: bool = False, store_history: bool = True,
                token: str | None = None, keep_outputs: bool = True) -> ExecResult:
        """Run ``code``; collect its outputs (capped) until the reply and idle, or a limit."""
        import zmq

        res = ExecResult(status="ok")
        if not self.alive():
            res.status, res.exit_info = "died", self.exit_info()
            return res
        kc = self.kc
        msg_id = kc.execute(code, silent=silent, store_history=store_history, allow_stdin=False, stop_on_error=False)
        start = time.monotonic()
        deadline = start + max(0.1, timeout)
        interrupted_at = None
        reply = None
        idle = False
        chars = 0
        stored = 0
        tail = ""
        outputs: list = []
        poller = zmq.Poller()
        poller.register(kc.iopub_channel.socket, zmq.POLLIN)
        poller.register(kc.shell_channel.socket, zmq.POLLIN)
        idle_deadline = None
        while not (reply is not None and idle):
            now = time.monotonic()
            if reply is not None and idle_deadline is None:
                idle_deadline = now + IDLE_AFTER_REPLY_TIMEOUT_S
            if idle_deadline is not None and now > idle_deadline:
                break
            if not self.alive():
                res.status, res.exit_info = "died", self.exit_info()
                break
            if reply is None and interrupted_at is None and (now > deadline or chars > self.cfg.output_hard_cap):
                if now > deadline:
                    res.timed_out = True
                else:
                    res.output_limited = True
                self.interrupt()
                interrupted_at = now
            if interrupted_at is not None and reply is None and now > interrupted_at + self.cfg.interrupt_grace:
                self.kill()
                res.status, res.exit_info = "killed", "killed after ignoring the interrupt"
                break
            events = dict(poller.poll(50))
            if kc.shell_channel.socket in events:
                with contextlib.suppress(Exception):
                    msg = kc.get_shell_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        reply = msg
            if kc.iopub_channel.socket in events:
                for _ in range(200):
                    try:
                        msg = kc.get_iopub_msg(timeout=0)
                    except Exception:
                        break
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    mt, content = msg["msg_type"], msg["content"]
                    if mt == "status" and content.get("execution_state") == "idle":
                        idle = True
                    elif mt == "stream":
                        text = content.get("text", "")
                        chars += len(text)
                        window = tail + text
                        if token and token in window:
                            res.token_seen = True
                        tail = window[-(len(token) + 2):] if token else ""
                        if keep_outputs:
                            stored = _add_stream(outputs, content.get("name", "stdout"), text, stored,
                                                 self.cfg.output_cap, res)
                    elif mt in ("display_data", "execute_result"):
                        size = len(json.dumps(content.get("data", {})))
                        chars += size
                        if keep_outputs:
                            if stored + size <= self.cfg.output_cap * 20:
                                out = {"output_type": mt, "data": content.get("data", {}),
                                       "metadata": content.get("metadata", {})}
                                if mt == "execute_result":
                                    out["execution_count"] = content.get("execution_count")
                                outputs.append(out)
                                stored += size
                            else:
                                res.truncated_chars += size
                    elif mt == "error":
                        res.error = {"ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                                     "traceback": list(content.get("traceback", []))[-MAX_TRACEBACK_LINES:]}
                        if keep_outputs:
                            outputs.append({"output_type": "error", **res.error})
                    elif mt == "clear_output" and keep_outputs:
                        outputs.clear()
                        stored = 0
                    elif mt == "execute_input":
                        res.execution_count = content.get("execution_count")
        res.seconds = time.monotonic() - start
        if res.status == "ok":
            if reply is None:
                res.status, res.exit_info = ("died", self.exit_info()) if not self.alive() else ("killed", "no reply")
            else:
                content = reply["content"]
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
            outputs.append({"output_type": "stream", "name": "stdout",
                            "text": f"\n[output truncated by the grader: {res.truncated_chars:,} more characters]\n"})
        res.outputs = outputs
        self.sample_memory()
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
    kernel_starts: int = 0
    startup_seconds: float = 0.0  # kernel start + grader prelude, all starts
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def _error_message(err: dict | None) -> str:
    if not err:
        return ""
    return f"{err.get('ename', '')}: {err.get('evalue', '')}".strip(": ")


class NotebookRunner:
    """Runs one assembled notebook cell by cell with the grader's protections."""

    def __init__(self, session: KernelSession, cfg: GradeConfig, source_nb, nb, report: NotebookReport):
        self.session, self.cfg, self.source_nb, self.nb, self.report = session, cfg, source_nb, nb, report
        self.holder = "_grader_" + secrets.token_hex(8)
        self.imports, self.bindings, self.modules = trusted_imports(source_nb)
        self.history: list[str] = []  # code of cells run in the current kernel (for replays)
        self.deadline = time.monotonic() + cfg.notebook_timeout
        self.tampered = ""  # set when the canary shows the kernel no longer reports errors
        self.reported: set[str] = set()
        self.part_outputs: dict[str, list[tuple[bool, bool, list]]] = {}  # grade id -> [(hidden, passed, outputs)]
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
        self.session.start(min(self.cfg.startup_timeout, max(5.0, self.remaining())))
        self.report.kernel_starts = self.session.starts
        token = "PRELUDE-" + secrets.token_hex(8)
        stage = str(self.session.stage)
        work = str(self.session.workdir)
        code = PRELUDE_TEMPLATE.format(stage=stage, work=work, imports=self.imports, modules=self.modules,
                                       extra_modules=list(EXTRA_TRUSTED_MODULES), guard=GUARD_SOURCE,
                                       holder=self.holder, token=token)
        res = self.session.execute(code, min(self.cfg.startup_timeout, max(5.0, self.remaining())), silent=False,
                             store_history=False, token=token)
        if res.status != "ok" or not res.token_seen:
            raise KernelStartError(f"the grader prelude failed: {_error_message(res.error) or res.status} "
                                   f"{res.exit_info} {self.session.log_tail()[-500:]}")
        self.history = []

    def restart(self, why: str) -> bool:
        """Start a fresh kernel and replay the cells that ran; False when that is not possible."""
        self.session.shutdown()
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
        try:
            self.start_kernel()
        except KernelStartError as exc:
            rep.status, rep.reason = "not-graded", f"kernel start failed: {exc}"
            self._not_run_rest(0, "kernel could not start")
            return
        try:
            self._run_cells()
        finally:
            self.session.shutdown()
            rep.seconds = round(time.monotonic() - t0, 3)
            rep.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)

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
            if not ok:
                self._not_run_rest(index + 1, "not run: the kernel could not be restarted")
                return

    def _run_plain(self, cell, role: str) -> bool:
        code = _src(cell)
        if role == "locked":
            self._restore(cell_name=_nbg(cell).get("grade_id", ""))
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
        if role == "locked":
            names = names_defined(code)
            if names:
                self.session.execute(f"__import__('sys').modules[{self.holder!r}].guard.capture({names!r})", 30,
                               silent=True, store_history=False, keep_outputs=False)
        return True

    def _restore(self, cell_name: str, unshadow: tuple = ()) -> tuple[bool, list[str]]:
        token = "RESTORE-" + secrets.token_hex(12)
        code = f"__import__('sys').modules[{self.holder!r}].guard.restore({token!r}, {tuple(unshadow)!r})"
        res = self.session.execute(code, 30, silent=True, store_history=False, token=token)
        found: list[str] = []
        for o in res.outputs:
            if o.get("output_type") == "stream" and token in o.get("text", ""):
                with contextlib.suppress(ValueError, IndexError):
                    found = json.loads(o["text"].split(token, 1)[1].splitlines()[0])
        if found:
            self.report.restored.append(f"before {cell_name}: " + "; ".join(found[:12]))
        return res.status == "ok" and res.token_seen, found

    def _canary(self) -> bool:
        token = "CANARY-" + secrets.token_hex(12)
        res = self.session.execute(f"raise AssertionError({token!r})", 30, silent=True, store_history=False)
        return res.status == "error" and res.error is not None and token in res.error.get("evalue", "")

    def _run_test(self, cell) -> bool:
        meta = _nbg(cell)
        gid, max_points = meta["grade_id"], float(meta.get("points", 0))
        source = _src(cell)
        parts = split_hidden(source)
        cr = CellReport(gid, 0.0, max_points, "failed")
        all_outputs: list = []
        tokens: list[str] = []
        t0 = time.monotonic()
        used = names_used(source)
        unshadow = tuple(sorted(n for n in used if n in vars(builtins) and n not in self.bindings))
        passed = True
        for code, hidden in parts:
            ok_restore, _ = self._restore(gid, unshadow)
            if not ok_restore:
                cr.reason = "the grader could not restore the test environment (kernel tampered?)"
                cr.hidden, passed = hidden, False
                break
            if not self._canary():
                self.tampered = "the kernel no longer reports a failing statement as an error"
                cr.reason = f"kernel tampering: {self.tampered}"
                cr.hidden, passed = hidden, False
                break
            token = "PASS-" + secrets.token_hex(16)
            tokens.append(token)
            full = code + "\n" * 8 + f"__import__('sys').modules[{self.holder!r}].guard.finish({token!r})\n"
            res = self.session.execute(full, min(self.cfg.cell_timeout, max(0.1, self.remaining())), token=token)
            if cell.execution_count is None:
                cell.execution_count = res.execution_count
            all_outputs.extend(res.outputs)
            dead = self.fatal(res)
            ok = res.status == "ok" and res.token_seen and res.error is None
            self.part_outputs.setdefault(gid, []).append((hidden, ok, self._scrub(res.outputs, [token])))
            if not ok:
                passed = False
                cr.hidden = hidden
                why = self.describe(res, self.cfg.cell_timeout)
                msg = _error_message(res.error)
                if why == "error" and msg.startswith("AssertionError: grading integrity"):
                    cr.reason = "tampering detected during the test"
                elif why == "error":
                    cr.reason = "hidden test failed" if hidden else "test failed"
                elif why:
                    cr.reason = why
                elif res.status == "ok" and not res.token_seen:
                    cr.reason = "the test did not run to its end (no completion token)"
                else:
                    cr.reason = res.status
                cr.message = msg or cr.reason
                self.after_cell()
                if dead:
                    cr.seconds = round(time.monotonic() - t0, 3)
                    cr.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
                    cell.outputs = self._scrub(all_outputs, tokens)
                    self._record(cell, cr)
                    return self.restart(dead)
                break
            self.history.append(code)
            self.after_cell()
        if passed:
            cr.status, cr.points, cr.reason = "passed", max_points, "passed"
        cr.seconds = round(time.monotonic() - t0, 3)
        cr.peak_rss_mb = round(self.session.peak_rss / 2**20, 1)
        cell.outputs = self._scrub(all_outputs, tokens)
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
            if total <= MAX_SUBMISSION_BYTES:
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
    return h.hexdigest(), total


def submission_hash(sub_dir: Path, source_nbs: dict[str, Path], cfg: GradeConfig, iso: sb.Isolation) -> str:
    h = hashlib.sha256()
    h.update(GRADER_VERSION.encode())
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
            if not path.exists():
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
            runner = NotebookRunner(session, cfg, source_nb, nb, nbr)
            runner.run()
            if runner.tampered:
                nbr.events.append(f"kernel tampering: {runner.tampered}")
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


def _write_placeholder(job: dict, nb_name: str, nbr: NotebookReport) -> None:
    """A one-cell notebook saying why ``nb_name`` was not graded (so feedback exists for it)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"**{nb_name} was not graded.**\n\n{html.escape(nbr.reason)}"))
    for d in (job["autograded_dir"], job["redacted_dir"]):
        _write_nb_atomic(nb, Path(d) / nb_name)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _cfg_from_dict(d: dict) -> GradeConfig:
    d = dict(d)
    d["limits"] = sb.Limits(**{k: int(v) for k, v in d["limits"].items()})
    d["max_restarts"] = int(d["max_restarts"])
    d["output_cap"], d["output_hard_cap"] = int(d["output_cap"]), int(d["output_hard_cap"])
    return GradeConfig(**d)


def worker_main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    try:
        report = grade_submission(job)
        report["status_final"] = True
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


def _read_timestamp(sub_dir: Path) -> str | None:
    p = sub_dir / "timestamp.txt"
    with contextlib.suppress(OSError):
        return p.read_text().strip() or None
    return None


def _clean_stale_tmp(tmp_root: str | None) -> None:
    base = Path(tmp_root or tempfile.gettempdir())
    for d in base.glob("cg-*"):
        pidf = d / "owner.pid"
        try:
            pid = int(pidf.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def autograde(name: str, root: Path | None = None, *, jobs: int | None = None, students: list[str] | None = None,
              force: bool = False, no_sandbox: bool = False, isolation: str | None = None,
              config: GradeConfig | None = None, feedback: bool = True, export: bool = True, log=_log_default,
              tmp_root: str | None = None) -> RunSummary:
    """Grade every submission of assignment ``name`` under ``root/grading/submitted``."""

    root = Path(root or REPO_ROOT).resolve()
    cfg = config or GradeConfig()
    jobs = max(1, jobs or len(os.sched_getaffinity(0)))
    t0 = time.monotonic()
    iso = sb.detect(allow_none=no_sandbox, force=isolation, limits=cfg.limits)
    log(f"isolation: {iso.describe()}")
    log(f"limits: {cfg.limits.describe()}; {cfg.cell_timeout:g} s per cell, {cfg.notebook_timeout:g} s per notebook")
    grading = CourseLayout(root).grading
    grading.mkdir(exist_ok=True)
    lock_fh = open(grading / ".autograde.lock", "w")
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise GradingSetupError(f"another autograde run holds {grading / '.autograde.lock'}") from None
    try:
        return _autograde_locked(name, root, cfg, iso, jobs, students, force, feedback, export, log, tmp_root, t0)
    finally:
        lock_fh.close()


def _autograde_locked(name, root, cfg, iso, jobs, students, force, feedback, export, log, tmp_root, t0) -> RunSummary:
    from nbgrader.api import Gradebook

    summary = RunSummary(name, iso.describe())
    work = CourseLayout(root).grading / ".work" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources = _source_notebooks(name, root, work / "source")
    extra = _extra_files(name, root, work / "extra")
    _ensure_gradebook(name, root, sources, log)
    _clean_stale_tmp(tmp_root)
    submitted = root / SUBMITTED_DIR
    all_students = sorted(p.name for p in submitted.iterdir() if (p / name).is_dir()) if submitted.is_dir() else []
    if students:
        missing = [s for s in students if s not in all_students]
        if missing:
            raise GradingSetupError(f"no submission of {name} from {', '.join(missing)} in {submitted}")
        all_students = [s for s in all_students if s in students]
    reports_dir = root / REPORTS_DIR / name
    reports_dir.mkdir(parents=True, exist_ok=True)
    summary.reports_dir = reports_dir
    course = CourseLayout(root)
    hidden = [course.solutions, course.grading, course.nbgrader_config]
    probe_spec = sb.SandboxSpec(stage=Path("/nonexistent/stage"), ipc=Path("/nonexistent/ipc"),
                                workdir=Path("/nonexistent/work"), newroot=Path("/nonexistent/root"),
                                readonly=sb.default_readonly_paths())
    if iso.hides_course:
        problems = sb.check_hidden(probe_spec, hidden)
        if problems:
            raise GradingSetupError("the sandbox would expose course files: " + "; ".join(problems))
    kernel_env = {k: v for k, v in os.environ.items() if k in KERNEL_ENV_VARS}
    if cfg.smoke is not None:
        kernel_env[SMOKE_ENV_VAR] = "1" if cfg.smoke else "0"
    kernel_env.setdefault(GPU_ENV_VAR, os.environ.get(GPU_ENV_VAR, ""))
    if not kernel_env[GPU_ENV_VAR]:
        from course_lib.gpu import cuda_available

        kernel_env[GPU_ENV_VAR] = "1" if cuda_available() else "0"

    todo, done = [], []
    for student in all_students:
        sub_dir = submitted / student / name
        h = submission_hash(sub_dir, sources, cfg, iso)
        rpath = reports_dir / f"{student}.json"
        if not force and rpath.exists():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(rpath.read_text())
                if old.get("input_hash") == h and old.get("status_final"):
                    done.append(old)
                    summary.cached.append(student)
                    continue
        todo.append((student, sub_dir, h))
    db_url = f"sqlite:///{CourseLayout(root).gradebook}"
    with Gradebook(db_url) as gb:
        for rep in done:
            record_in_gradebook(gb, rep)
    if summary.cached:
        log(f"{len(summary.cached)} submissions already graded (unchanged), {len(todo)} to grade with {jobs} workers")
    else:
        log(f"{len(todo)} submissions to grade with {jobs} workers")

    free_slots = list(range(jobs))
    running: dict[int, tuple] = {}
    pending = list(todo)
    worker_timeout = cfg.notebook_timeout * max(1, len(sources)) + cfg.startup_timeout * (cfg.max_restarts + 1) + 120
    try:
        with Gradebook(db_url) as gb:
            while pending or running:
                while pending and free_slots:
                    student, sub_dir, h = pending.pop(0)
                    slot = free_slots.pop(0)
                    job = {
                        "student": student, "assignment": name, "submission": str(sub_dir),
                        "sources": {k: str(v) for k, v in sources.items()},
                        "extra_files": str(extra) if extra else None, "config": cfg.key(),
                        "isolation": {**iso.__dict__, "notes": list(iso.notes)}, "slot": slot, "jobs": jobs,
                        "input_hash": h, "report": str(reports_dir / f"{student}.json"),
                        "autograded_dir": str(root / AUTOGRADED_DIR / student / name),
                        "redacted_dir": str(root / REDACTED_DIR / student / name),
                        "kernel_env": kernel_env, "tmp_root": tmp_root,
                        "timestamp": _read_timestamp(sub_dir),
                    }
                    job_path = work / f"job-{student}.json"
                    job_path.write_text(json.dumps(job))
                    for stale in (root / AUTOGRADED_DIR / student / name, root / REDACTED_DIR / student / name):
                        shutil.rmtree(stale, ignore_errors=True)
                    logf = open(work / f"worker-{student}.log", "wb")
                    proc = subprocess.Popen([sys.executable, "-m", "course_tools.grading.autograde", "--worker",
                                             str(job_path)], stdout=logf, stderr=subprocess.STDOUT, cwd=str(root),
                                            preexec_fn=_worker_preexec)
                    logf.close()
                    running[proc.pid] = (proc, student, slot, time.monotonic(), h)
                finished = []
                for pid, (proc, student, slot, started, h) in running.items():
                    rc = proc.poll()
                    if rc is None and time.monotonic() - started > worker_timeout:
                        proc.kill()
                        proc.wait()
                        rc = -9
                        _write_json_atomic(reports_dir / f"{student}.json", {
                            "student": student, "assignment": name, "status": "grader-error", "status_final": False,
                            "reason": f"the worker exceeded {worker_timeout:.0f} s and was killed", "notebooks": [],
                            "input_hash": h, "score": 0.0, "max_score": 0.0})
                    if rc is None:
                        continue
                    finished.append(pid)
                    free_slots.append(slot)
                    rpath = reports_dir / f"{student}.json"
                    rep = None
                    with contextlib.suppress(OSError, ValueError):
                        rep = json.loads(rpath.read_text())
                    if rep is None or rep.get("input_hash") != h:
                        log_tail = (work / f"worker-{student}.log").read_bytes()[-1500:].decode("utf-8", "replace")
                        rep = {"student": student, "assignment": name, "status": "grader-error",
                               "status_final": False, "reason": f"the worker exited ({rc}) without a report: {log_tail}",
                               "notebooks": [], "input_hash": h, "score": 0.0, "max_score": 0.0}
                        _write_json_atomic(rpath, rep)
                    if rep.get("status") == "grader-error":
                        summary.failed.append(student)
                        log(f"  {student:<24} GRADER ERROR: {rep.get('reason', '')[:300]}")
                        continue
                    record_in_gradebook(gb, rep)
                    summary.graded.append(student)
                    log(f"  {student:<24} {rep['score']:g}/{rep['max_score']:g}  {rep['status']:<13} "
                        f"{rep.get('seconds', 0):.1f} s  {_one_line(rep)}")
                    done.append(rep)
                for pid in finished:
                    running.pop(pid)
                if running and not finished:
                    time.sleep(0.1)
    finally:
        for proc, *_ in running.values():
            with contextlib.suppress(OSError):
                proc.kill()
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
    _write_text_atomic(reports_dir / "summary.txt", render_summary(reports, summary, iso))
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


def _one_line(rep: dict) -> str:
    bits = []
    for n in rep.get("notebooks", []):
        if n["status"] != "graded":
            bits.append(n["reason"][:80])
        bits += n.get("events", [])[:2]
        if n.get("flags"):
            bits.append(f"{len(n['flags'])} flags")
    return "; ".join(bits)[:160]


def _worker_preexec() -> None:
    sb._libc().prctl(sb.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


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
        for title, key in (("changes to the submission", "changes"), ("events", "events"),
                           ("restored before tests (tampering)", "restored")):
            if n.get(key):
                lines.append(f"  {title}:")
                lines += [f"    - {x}" for x in n[key]]
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
            rows.append(f"<tr class={'ok' if c['status'] == 'passed' else 'bad'}><td>{e(c['grade_id'])}</td>"
                        f"<td>{pts}</td><td>{e(c['status'])}</td><td>{msg}</td>"
                        f"<td>{c['seconds']:.2f}</td><td>{c['peak_rss_mb']:.0f}</td></tr>")
        rows.append("</table>")
        for title, key in (("Changes to the submission", "changes"), ("Events", "events"),
                           ("Restored before tests (tampering)", "restored")):
            if n.get(key):
                rows.append(f"<h3>{title}</h3><ul>" + "".join(f"<li>{e(x)}</li>" for x in n[key]) + "</ul>")
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
                  config=cfg, feedback=not args.no_feedback, export=not args.no_export)
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
