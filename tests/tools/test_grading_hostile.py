"""Hostile and broken submissions, graded in ONE run beside honest ones (issues 5 and 11).

One module-scoped run of :func:`course_tools.grading.autograde.autograde` (``--jobs 2``, small
limits) grades, in a temporary course with assignment 01, honest submissions (the solution, the
untouched release, a known-wrong answer, a hidden-test failure) and every hostile or broken case of
the issue. Each case asserts the score of every test cell (the honest part is graded exactly as
the solution would be, the cheating gains nothing), that the run completed, and that the report
names what happened. The oracle for every expected score is the source's own tests: a cell scores
its points exactly when the matching answer is the solution's.

Then: a re-run changes nothing (gradebook rows, scores, reports), and a run killed with SIGKILL
midway leaves no process behind and, resumed, gives the grades of an uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import autograde as ag
from course_tools.grading import sandbox as sb
from course_tools.grading.leaks import secret_lines
from course_tools.grading.release import generate
from course_tools.layout import REPO_ROOT

ROOT = REPO_ROOT
NAME = "01-neural-networks"
NB = f"{NAME}.ipynb"
POINTS = {"sigmoid_tests": 2, "tanh_relu_tests": 2, "leaky_elu_tests": 2, "linear_tests": 4, "collapse_tests": 2}
FULL = dict(POINTS)
# the same settings as the command line in the SIGKILL test gives (they are part of the cache key)
CFG = ag.GradeConfig(cell_timeout=6, notebook_timeout=120, interrupt_grace=2.0,
                     limits=sb.Limits(address_space=int(1.5 * 2**30)), smoke=True)

try:
    ISOLATION = sb.detect(limits=CFG.limits)
except sb.SandboxError:  # graded with --no-sandbox; the escape checks are skipped
    ISOLATION = None
SANDBOXED = ISOLATION is not None and ISOLATION.hides_course


def test_ci_machine_gets_a_sandbox_that_hides_the_course():
    """As root with util-linux (CI's machine), the strongest variant must work: a silent fallback
    to plain `unshare -rn` once hid a bug (a tmpfs on /tmp covered a venv living under /tmp)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("not root or no unshare: the strongest sandbox cannot be required here")
    assert SANDBOXED, f"fell back to {ISOLATION and ISOLATION.variant}: {ISOLATION and ISOLATION.notes}"
# RLIMIT_NPROC is not enforced for root: a fork bomb is only safe when the kernel has its own uid
NPROC_ENFORCED = (ISOLATION is not None and ISOLATION.drop_uid) or os.geteuid() != 0


def scores(**lost) -> dict[str, float]:
    return {k: (0.0 if k in lost else float(v)) for k, v in POINTS.items()}


# ------------------------------------------------------------------------------------------
# building submissions from the source notebook


def _cell(nb, gid):
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == gid:
            return c
    raise KeyError(gid)


def edit(nb, gid, old, new):
    c = _cell(nb, gid)
    assert old in c.source, f"{old!r} not in {gid}"
    c.source = c.source.replace(old, new)
    return nb


def insert_after(nb, gid, code):
    idx = nb.cells.index(_cell(nb, gid))
    cell = nbformat.v4.new_code_cell(code)
    cell.id = uuid.uuid4().hex[:8]
    nb.cells.insert(idx + 1, cell)
    return nb


WRONG_SIGMOID = ("return s * (1.0 - s)", "return s")


def wrong_sigmoid(nb):
    return edit(nb, "sigmoid", *WRONG_SIGMOID)


IPYTHON_TAMPER = '''
import ast, sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
class _Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=[s], handlers=[handler], orelse=[], finalbody=[]) for s in node.body]
        return ast.fix_missing_locations(node)
ip.ast_transformers.append(_Swallow())
def _flip(result):
    result.error_in_exec = None
ip.events.register("post_run_cell", _flip)
_orig_run_cell = ip.run_cell
def _run_cell(*a, **k):
    r = _orig_run_cell(*a, **k)
    r.error_in_exec = None
    return r
ip.run_cell = _run_cell
print("All tests passed! Your score: 12/12")
'''

PYTHON_TAMPER = '''
import builtins, sys, types
import numpy.testing
import course_lib.testing
def assert_close(*args, **kwargs):
    return None
def assert_shape(*args, **kwargs):
    return None
def abs(x):
    return 0
course_lib.testing.assert_close.__code__ = (lambda *a, **k: None).__code__
course_lib.testing.assert_shape = lambda *a, **k: None
np.isclose = lambda a, b, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), dtype=bool)
numpy.testing.assert_allclose = lambda *a, **k: None
torch.sigmoid = lambda t: torch.zeros_like(t)
builtins.abs = lambda x: 0
_fake = types.ModuleType("course_lib.testing")
_fake.assert_close = assert_close
sys.modules["course_lib.testing"] = _fake
'''

HIJACK = '''
async def _fake_execute(*args, **kwargs):
    return {"status": "ok", "execution_count": 1, "payload": [], "user_expressions": {}}
get_ipython().kernel.do_execute = _fake_execute
'''

STUCK_RELU = '''    import time
    while True:
        try:
            time.sleep(1)
        except BaseException:
            pass
'''


def escape_code(course: Path, port: int, marker: str) -> str:
    reads = [course / "solutions" / NAME / f"{NAME}.py", course / "solutions" / NAME / NB,
             course / "grading" / "gradebook.db", ROOT / "solutions" / NAME / f"{NAME}.py",
             course / "grading" / ".work" / NAME / "source" / NB, Path("/proc/1/root") / str(course).lstrip("/")]
    writes = [Path("/tmp") / f"{marker}.txt", course / "grading" / f"{marker}.txt", course / f"{marker}.txt",
              ROOT / f"{marker}.txt", Path("/var/tmp") / f"{marker}.txt"]
    return f'''
import os, socket
for _p in {[str(p) for p in reads]!r}:
    try:
        with open(_p, "rb") as _fh:
            _data = _fh.read()
        print("READ", _p, len(_data))
        print(_data[:5000].decode("utf-8", "replace"))
    except Exception as _e:
        print("blocked read", _p, type(_e).__name__)
for _p in {[str(p) for p in writes]!r}:
    try:
        with open(_p, "w") as _fh:
            _fh.write("pwned")
        print("wrote", _p)
    except Exception as _e:
        print("blocked write", _p, type(_e).__name__)
try:
    print(os.listdir({str(course)!r}))
except Exception as _e:
    print("blocked listdir", type(_e).__name__)
for _addr in [("127.0.0.1", {port}), ("10.0.0.1", 80)]:
    _s = socket.socket()
    _s.settimeout(2)
    try:
        _s.connect(_addr)
        _s.sendall(b"pwned")
        print("CONNECTED", _addr)
    except Exception as _e:
        print("blocked network", _addr, type(_e).__name__)
    finally:
        _s.close()
'''


# ------------------------------------------------------------------------------------------
# the nine attacks of issue 11, each with a WRONG sigmoid (zeros of the right shape): under the
# in-kernel guard each scored full marks; with test cells judged in the evaluator each must lose
# exactly sigmoid_tests (2 points). Real student code, run as submitted.

_ZEROS = """
def sigmoid(x):
    return _wrap(np.zeros(np.shape(x)))


def sigmoid_grad(x):
    return _wrap(np.zeros(np.shape(x)))
"""

LYING_SUBCLASS = """
import numpy as np, torch
class _AlwaysClose(np.ndarray):
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = np.ones(np.broadcast_shapes(*[np.shape(i) for i in inputs]), dtype=bool)
        return out.view(_AlwaysClose)
class _Liar(torch.Tensor):
    def numpy(self):
        return torch.Tensor.numpy(self.as_subclass(torch.Tensor)).view(_AlwaysClose)
    def detach(self):
        return self
    def cpu(self):
        return self
def _wrap(a):
    return torch.as_tensor(a).as_subclass(_Liar)
""" + _ZEROS

FRAME_READER = """
import sys, numpy as np, torch
class _Mirror(torch.Tensor):
    def numpy(self):
        f = sys._getframe(1)
        while f is not None:
            if "expected" in f.f_locals:
                return np.asarray(f.f_locals["expected"], dtype=np.float64)
            f = f.f_back
        return torch.Tensor.numpy(self.as_subclass(torch.Tensor))
    def detach(self):
        return self
    def cpu(self):
        return self
def _wrap(a):
    return torch.as_tensor(a).as_subclass(_Mirror)
""" + _ZEROS

NUMPY_DICT_PATCH = """
import numpy as np
np.__dict__["isclose"] = lambda a, b, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), dtype=bool)
def _wrap(a):
    return a
""" + _ZEROS

ARMED_TO_NUMPY = """
import builtins, sys, numpy as np
import course_lib.testing as _t
_real_to_numpy, _real_import = _t.to_numpy, builtins.__import__
def _armed(x):
    f = sys._getframe(1)
    e = f.f_locals.get("expected")
    return np.asarray(e if e is not None else x, dtype=np.float64)
def _hooked_import(name, *a, **k):
    if name == "sys":  # the guard's final check: put the real helper back first
        _t.to_numpy = _real_to_numpy
    return _real_import(name, *a, **k)
builtins.__import__ = _hooked_import
def _wrap(a):
    _t.to_numpy = _armed
    return a
""" + _ZEROS

SETTRACE = """
import sys, numpy as np
_set = getattr(sys, "set" + "trace")
def _tracer(frame, event, arg):
    if frame.f_code.co_name == "assert_close":
        def _local(f, ev, a):
            if "bad" in f.f_locals:
                f.f_locals["bad"][...] = False
                import ctypes
                ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(f), ctypes.c_int(0))
            if ev == "return":
                _set(None)
            return _local
        return _local
    return _tracer
def _wrap(a):
    _set(_tracer)
    return a
""" + _ZEROS

GC_GUARD = """
import gc, numpy as np
for _o in gc.get_objects():
    if type(_o).__name__ == "Guard":
        _o._check = lambda *a, **k: []
def _wrap(a):
    return a
""" + _ZEROS

CODE_SWAP = """
import gc, numpy as np
def _noop(*a, **k):
    return None
for _o in gc.get_objects():
    if callable(_o) and getattr(_o, "__name__", "") in ("assert_close", "assert_shape") and hasattr(_o, "__code__"):
        try:
            _o.__code__ = _noop.__code__
        except (TypeError, ValueError):
            pass
def _wrap(a):
    return a
""" + _ZEROS

FAKE_SYS = """
import sys, types, numpy as np
_fake = types.ModuleType("sys")
_fake.__dict__.update(sys.__dict__)
class _Holder:
    def __getattr__(self, name):
        return lambda *a, **k: []
_fake.modules = type("M", (dict,), {"__getitem__": lambda self, k: _Holder()})(sys.modules)
sys.modules["sys"] = _fake
def _wrap(a):
    return a
""" + _ZEROS

CTYPES_BYTECODE = """
import sys, numpy as np
_ct = sys.modules.get("ctypes") or __import__("importlib").import_module("ctypes")
def _pass(*a, **k):
    return None
for _f in [v for v in list(globals().values()) if getattr(v, "__name__", "") in ("assert_close", "assert_shape")]:
    _dst, _src = _f.__code__.co_code, _pass.__code__.co_code
    _n = min(len(_dst), len(_src))
    _off = sys.getsizeof(_dst) - len(_dst) - 1
    _ct.memmove(id(_dst) + _off, id(_src) + _off, _n)
def _wrap(a):
    return a
""" + _ZEROS

ATTACKS = {
    "attack-lying-subclass": LYING_SUBCLASS, "attack-frame-reader": FRAME_READER,
    "attack-numpy-dict-patch": NUMPY_DICT_PATCH, "attack-armed-to-numpy": ARMED_TO_NUMPY,
    "attack-settrace": SETTRACE, "attack-gc-guard": GC_GUARD, "attack-code-swap": CODE_SWAP,
    "attack-fake-sys": FAKE_SYS, "attack-ctypes-bytecode": CTYPES_BYTECODE,
}


PRINT_CALLER = """    import inspect, linecache, sys, traceback
    for _fr in inspect.stack(context=40):
        print("FRAME", _fr.filename, "".join(_fr.code_context or []))
    traceback.print_stack()
    _f = sys._getframe()
    while _f is not None:
        print("GLOBALS", sorted(k for k in _f.f_globals if not k.startswith("__"))[:50])
        _f = _f.f_back
    print("CACHE", [(k, "".join(v[2])[:3000]) for k, v in list(linecache.cache.items())[:200]])
"""


def attack_submission(sol, code: str):
    nb = copy.deepcopy(sol)
    _cell(nb, "sigmoid").source = code
    return nb


def build_cases(sol, release, course: Path, port: int, marker: str) -> dict:
    """student -> (notebook | raw bytes | None for "no notebook", expected per-cell scores)."""
    def s():
        return copy.deepcopy(sol)

    cases = {}
    cases["honest-solution"] = (s(), scores())
    cases["honest-untouched"] = (copy.deepcopy(release), scores(**POINTS))
    cases["honest-wrong"] = (wrong_sigmoid(s()), scores(sigmoid_tests=1))
    cases["honest-hidden-fail"] = (edit(s(), "tanh_relu", "np.asarray(x, dtype=np.float64)",
                                        "np.asarray(x, dtype=np.float32)"), scores(tanh_relu_tests=1))
    # nbgrader scores a test cell that writes to stderr 0: here the student's functions warn
    noisy = edit(s(), "sigmoid", '    """Derivative of the sigmoid at x, elementwise."""\n',
                 '    """Derivative of the sigmoid at x, elementwise."""\n'
                 '    import sys, warnings\n    print("debug: sigmoid_grad called", file=sys.stderr)\n'
                 '    warnings.warn("sigmoid_grad is experimental")\n')
    cases["honest-stderr"] = (noisy, scores())
    cases["broken-json"] = (b'{"cells": [ {"cell_type": "code", "source": "truncated', scores(**POINTS))
    nb3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    cases["broken-nbformat"] = (json.dumps(nb3).encode(), scores(**POINTS))
    cases["broken-renamed"] = (("renamed.ipynb", s()), scores(**POINTS))
    loops = s()
    _cell(loops, "sigmoid").source += "\n\nwhile True:\n    pass\n"
    edit(loops, "tanh_relu", '    """max(0, x), elementwise."""\n', '    """max(0, x), elementwise."""\n' + STUCK_RELU)
    cases["hostile-loops"] = (loops, scores(tanh_relu_tests=1))
    crash = insert_after(s(), "sigmoid", "import os\nos._exit(1)")
    insert_after(crash, "linear", "import ctypes\nctypes.string_at(0)")
    cases["hostile-crash"] = (crash, scores())
    bombs = insert_after(s(), "sigmoid", "_hog = []\nwhile True:\n    _hog.append(' ' * 10_000_000)")
    if NPROC_ENFORCED:
        insert_after(bombs, "tanh_relu", "import os\nwhile True:\n    os.fork()")
    cases["hostile-bombs"] = (bombs, scores())
    cases["hostile-flood"] = (insert_after(s(), "sigmoid", "for _ in range(100):\n    print('x' * 1_000_000, flush=True)"),
                              scores())
    san = s()
    for gid in ("sigmoid_tests", "collapse_tests"):
        san.cells.remove(_cell(san, gid))
    for gid in ("linear_tests", "tanh_relu_tests"):
        c = _cell(san, gid)
        san.cells.remove(c)
        san.cells.insert(0, c)
    cases["hostile-sanitise"] = (san, scores())
    ed = edit(wrong_sigmoid(s()), "tanh_relu", "return np.maximum(np.asarray(x, dtype=np.float64), 0.0)", "return x")
    _cell(ed, "sigmoid_tests").source = "pass"
    _cell(ed, "leaky_elu_tests").source = "print('all tests passed')"
    stripped = _cell(ed, "tanh_relu_tests")
    stripped.source = "pass"
    del stripped.metadata["nbgrader"]
    cases["hostile-edited-tests"] = (ed, scores(sigmoid_tests=1, tanh_relu_tests=1))
    gpu = wrong_sigmoid(s())  # with nbgrader's skip_cells_with_tag, a gpu-tagged test cell is skipped: full points
    for gid in ("sigmoid_tests", "sigmoid"):
        _cell(gpu, gid).metadata["tags"] = ["gpu"]
    cases["hostile-gpu-tag"] = (gpu, scores(sigmoid_tests=1))
    pyt = wrong_sigmoid(s())
    edit(pyt, "linear", "scale=1.0 / np.sqrt(in_features)", "scale=1.0")
    cases["hostile-python-tamper"] = (insert_after(pyt, "sigmoid", PYTHON_TAMPER),
                                      scores(sigmoid_tests=1, linear_tests=1))
    cases["hostile-ipython-tamper"] = (insert_after(wrong_sigmoid(s()), "sigmoid", IPYTHON_TAMPER),
                                       scores(sigmoid_tests=1))
    intest = edit(s(), "sigmoid", "    return s * (1.0 - s)",
                  "    np.isclose = lambda a, b, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)\n"
                  "    return s")
    cases["hostile-patch-during-test"] = (intest, scores(sigmoid_tests=1))
    cases["hostile-hijack-kernel"] = (insert_after(wrong_sigmoid(s()), "sigmoid", HIJACK), scores(**POINTS))
    for student, code in ATTACKS.items():
        cases[student] = (attack_submission(sol, code), scores(sigmoid_tests=1))
    # section 4: folders and names
    cases["no-submission"] = (None, scores(**POINTS))  # an empty folder: a row, a report, 0 points
    cases["broken-deep-json"] = (('{"cells": [' + "[" * 100_000 + "]" * 100_000 + '], "nbformat": 4}').encode(),
                                 scores(**POINTS))
    cases["broken-folder-notebook"] = (("dir", NB), scores(**POINTS))  # a folder named like the notebook
    cases["summary"] = (s(), scores())  # a student named like a run file keeps their own report
    # a student's function that prints every frame and source it can reach during the hidden tests
    cases["hostile-print-caller"] = (edit(s(), "sigmoid", '    """Derivative of the sigmoid at x, elementwise."""\n',
                                          '    """Derivative of the sigmoid at x, elementwise."""\n' + PRINT_CALLER),
                                     scores())
    if SANDBOXED:  # unsandboxed, this notebook would really write into the repository and /tmp
        cases["hostile-escape"] = (insert_after(s(), "sigmoid", escape_code(course, port, marker)), scores())
    return cases


def submit(course: Path, student: str, content) -> None:
    folder = course / "grading" / "submitted" / student / NAME
    folder.mkdir(parents=True, exist_ok=True)
    if content is None:
        return
    if isinstance(content, tuple) and content[0] == "dir":
        (folder / content[1]).mkdir()
        (folder / content[1] / "x.txt").write_text("not a notebook")
    elif isinstance(content, bytes):
        (folder / NB).write_bytes(content)
    elif isinstance(content, tuple):
        nbformat.write(content[1], folder / content[0])
    else:
        nbformat.write(content, folder / NB)


class Server:
    """A TCP server on the host's 127.0.0.1 that records every connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def make_course(tmp: Path) -> Path:
    import shutil

    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / NAME, course / "solutions" / NAME,
                    ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    return course


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("hostile"))
    release = generate(NAME, course)
    sol = nbformat.read(course / "solutions" / NAME / NB, as_version=4)
    rel = nbformat.read(release / NB, as_version=4)
    server = Server()
    marker = f"pwned-{uuid.uuid4().hex[:10]}"
    cases = build_cases(sol, rel, course, server.port, marker)
    for student, (content, _) in cases.items():
        submit(course, student, content)
    lines: list[str] = []
    t0 = time.monotonic()
    summary = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=ISOLATION is None, log=lines.append)
    seconds = time.monotonic() - t0
    server.close()
    reports = {p.stem: json.loads(p.read_text()) for p in (course / "grading" / "reports" / NAME).glob("*.json")}
    yield {"course": course, "cases": cases, "summary": summary, "reports": reports, "log": lines,
           "server": server, "marker": marker, "sol": sol, "seconds": seconds}


def _nb_report(run, student):
    [nbr] = run["reports"][student]["notebooks"]
    return nbr


def _cells(run, student):
    return {c["grade_id"]: c for c in _nb_report(run, student)["cells"]}


def _graded_text(run, student) -> str:
    nb = nbformat.read(run["course"] / "grading" / "autograded" / student / NAME / NB, as_version=4)
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") if o.get("output_type") == "stream" else json.dumps(o))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------
# every case: the run completed and every test cell scored what the honest part deserves


def test_run_completed_for_every_submission(run):
    s = run["summary"]
    assert not s.failed, f"grader errors: {s.failed}\n" + "\n".join(run["log"])
    assert sorted(s.graded) == sorted(run["cases"]), "\n".join(run["log"])
    assert any(line.startswith("isolation: ") for line in run["log"])
    print(f"\nhostile run: {len(run['cases'])} submissions in {run['seconds']:.1f} s; "
          f"isolation: {s.isolation}")


@pytest.mark.parametrize("student", [
    "honest-solution", "honest-untouched", "honest-wrong", "honest-hidden-fail", "honest-stderr", "hostile-gpu-tag",
    "broken-json", "broken-nbformat",
    "broken-renamed", "hostile-loops", "hostile-crash", "hostile-bombs", "hostile-flood", "hostile-sanitise",
    "hostile-edited-tests", "hostile-python-tamper", "hostile-ipython-tamper", "hostile-patch-during-test",
    "hostile-hijack-kernel", "hostile-escape", "no-submission", "broken-deep-json", "broken-folder-notebook",
    "summary", "hostile-print-caller", *ATTACKS])
def test_each_test_cell_scores_what_the_honest_part_deserves(run, student):
    if student not in run["cases"]:
        pytest.skip(f"{student} needs a sandbox that hides the course")
    expected = run["cases"][student][1]
    got = {gid: c["points"] for gid, c in _cells(run, student).items()}
    assert got == expected, f"{student}: expected {expected}, got {got}\n" + ag.render_text(run["reports"][student])
    assert run["reports"][student]["score"] == sum(expected.values())


def test_gradebook_holds_exactly_the_reports(run):
    from course_tools.grading import nbgrader_cli

    book = {(s.student, s.grade_id): s.score for s in nbgrader_cli.cell_scores(NAME, run["course"])}
    want = {(student, gid): pts for student, (_, exp) in run["cases"].items() for gid, pts in exp.items()}
    assert book == want


# ------------------------------------------------------------------------------------------
# the report names what happened


def test_broken_notebooks_are_not_graded_with_a_clear_reason(run):
    reasons = {s: _nb_report(run, s)["reason"] for s in ("broken-json", "broken-nbformat", "broken-renamed",
                                                          "no-submission", "broken-deep-json",
                                                          "broken-folder-notebook")}
    assert reasons["broken-json"].startswith("invalid-json:") and "line 1" in reasons["broken-json"]
    assert reasons["no-submission"].startswith("no-submission:") and "empty" in reasons["no-submission"]
    assert reasons["broken-deep-json"].startswith("invalid-json:") and "nested more than" in reasons["broken-deep-json"]
    assert reasons["broken-folder-notebook"].startswith("not-a-file:")
    assert reasons["broken-nbformat"].startswith("wrong-nbformat:") and "nbformat 3" in reasons["broken-nbformat"]
    assert reasons["broken-renamed"].startswith("missing-notebook:") and "renamed.ipynb" in reasons["broken-renamed"]
    for s in reasons:
        assert _nb_report(run, s)["status"] == "not-graded"
        assert all(c["status"] == "not-run" for c in _cells(run, s).values())


def test_honest_failures_carry_the_assertion_message(run):
    c = _cells(run, "honest-wrong")["sigmoid_tests"]
    assert c["reason"] == "test failed" and "sigmoid'(0) must be 1/4" in c["message"] and not c["hidden"]
    h = _cells(run, "honest-hidden-fail")["tanh_relu_tests"]
    assert h["reason"] == "hidden test failed" and h["hidden"] and "tanh_grad on a random" in h["message"]
    for c in _cells(run, "honest-solution").values():
        assert c["status"] == "passed" and c["seconds"] > 0 and c["peak_rss_mb"] > 0


def test_stderr_in_a_test_cell_does_not_cost_points(run):
    graded = nbformat.read(run["course"] / "grading" / "autograded" / "honest-stderr" / NAME / NB, 4)
    streams = [o for o in _cell(graded, "sigmoid_tests").outputs if o.get("name") == "stderr"]
    assert streams and "debug: sigmoid_grad called" in "".join(o["text"] for o in streams)
    assert _cells(run, "honest-stderr")["sigmoid_tests"]["status"] == "passed"


def test_a_gpu_tag_does_not_skip_a_test_cell(run):
    graded = nbformat.read(run["course"] / "grading" / "autograded" / "hostile-gpu-tag" / NAME / NB, 4)
    assert "gpu" not in _cell(graded, "sigmoid_tests").metadata.get("tags", [])
    assert _cells(run, "hostile-gpu-tag")["sigmoid_tests"]["reason"] == "test failed"


def test_infinite_loops_are_interrupted_or_killed(run):
    nbr = _nb_report(run, "hostile-loops")
    events = " | ".join(nbr["events"])
    assert "cell sigmoid: time limit" in events  # interrupted (KeyboardInterrupt), kernel kept
    stuck = _cells(run, "hostile-loops")["tanh_relu_tests"]
    assert "interrupt was ignored" in stuck["reason"]  # the loop swallowed SIGINT: killed, restarted
    assert "kernel restarted" in events and nbr["kernel_starts"] == 2


def test_kernel_deaths_restart_and_replay(run):
    nbr = _nb_report(run, "hostile-crash")
    events = " | ".join(nbr["events"])
    assert "kernel died (exit code 1)" in events and "SIGSEGV" in events
    assert nbr["kernel_starts"] == 3


def test_memory_and_fork_bombs_are_contained(run):
    nbr = _nb_report(run, "hostile-bombs")
    events = " | ".join(nbr["events"])
    assert "memory limit (MemoryError)" in events
    assert nbr["peak_rss_mb"] < CFG.limits.address_space / 2**20
    if NPROC_ENFORCED:
        assert "processes the notebook left running" in events


def test_huge_output_is_truncated(run):
    text = _graded_text(run, "hostile-flood")
    assert "output truncated by the grader" in text
    assert "output truncated (" in " | ".join(_nb_report(run, "hostile-flood")["events"])
    assert len(text) < 2 * CFG.output_cap + 10_000


def test_deleted_reordered_and_edited_tests_are_restored_from_the_source(run):
    san = " | ".join(_nb_report(run, "hostile-sanitise")["changes"])
    assert "test cell sigmoid_tests was deleted" in san and "test cell collapse_tests was deleted" in san
    assert "reordered" in san
    ed = " | ".join(_nb_report(run, "hostile-edited-tests")["changes"])
    assert "test cell sigmoid_tests was edited" in ed and "test cell leaky_elu_tests was edited" in ed
    assert "test cell tanh_relu_tests was deleted" in ed  # its metadata was stripped: not that cell any more
    graded = nbformat.read(run["course"] / "grading" / "autograded" / "hostile-edited-tests" / NAME / NB, 4)
    assert "### BEGIN HIDDEN TESTS" in _cell(graded, "sigmoid_tests").source  # the source's cell ran


def test_python_level_tampering_is_flagged_and_gains_nothing(run):
    """The patches live in the student's kernel; the tests ran in the evaluator (scores checked above)."""
    nbr = _nb_report(run, "hostile-python-tamper")
    flags = {f["what"] for f in nbr["flags"]}
    assert "redefines test helper `assert_close`" in flags and "modifies module attribute numpy.isclose" in flags


def test_ipython_tampering_and_fake_banner_gain_nothing(run):
    nbr = _nb_report(run, "hostile-ipython-tamper")
    assert any("get_ipython" in f["what"] for f in nbr["flags"])
    assert "All tests passed! Your score: 12/12" in _graded_text(run, "hostile-ipython-tamper")


def test_patching_during_a_test_fails_that_test(run):
    c = _cells(run, "hostile-patch-during-test")["sigmoid_tests"]
    assert c["reason"] == "test failed" and "sigmoid'(0) must be 1/4" in c["message"]


def test_hijacked_kernel_scores_nothing(run):
    for c in _cells(run, "hostile-hijack-kernel").values():
        assert "exchange" in c["reason"], c


@pytest.mark.parametrize("student", list(ATTACKS))
def test_attacks_on_the_judge_fail_with_the_wrong_answers_message(run, student):
    """Whatever the kernel did to itself, the evaluator judged the zeros it received."""
    c = _cells(run, student)["sigmoid_tests"]
    assert c["points"] == 0 and c["status"] == "failed", c
    assert c["reason"] in ("test failed",) or "kernel" in c["reason"], c


@pytest.mark.skipif(not SANDBOXED, reason="no sandbox that hides the course on this machine")
def test_no_escape_from_the_sandbox(run):
    text = _graded_text(run, "hostile-escape")
    assert "READ " not in text and "CONNECTED" not in text
    assert text.count("blocked read") == 6 and text.count("blocked network") == 2
    assert run["server"].connections == 0
    course, marker = run["course"], run["marker"]
    for p in (Path("/tmp"), course / "grading", course, ROOT, Path("/var/tmp")):
        assert not (p / f"{marker}.txt").exists(), f"the sandbox wrote {p / marker}.txt on the host"
    hidden = [ln for ln, kind in secret_lines(run["sol"]).items()]
    assert not [ln for ln in hidden if ln in text]


# ------------------------------------------------------------------------------------------
# feedback, CSV, plot


def test_student_code_cannot_read_the_tests_that_call_it(run):
    """The tests run in the evaluator: frames, globals and linecache of the kernel hold no test source."""
    text = _graded_text(run, "hostile-print-caller")
    assert "FRAME" in text and "CACHE" in text
    hidden = [ln for ln, kind in secret_lines(run["sol"]).items() if kind == "hidden test"]
    assert hidden and not [ln for ln in hidden if ln in text]


def test_feedback_shows_hidden_failures_without_their_code(run):
    course = run["course"]
    page = (course / "grading" / "feedback" / "honest-hidden-fail" / NAME / f"{NAME}.html").read_text()
    assert "hidden test failed" in page
    hidden = [ln for ln, kind in secret_lines(run["sol"]).items() if kind == "hidden test"]
    for student in run["cases"]:
        for html_page in (course / "grading" / "feedback" / student / NAME).glob("*.html"):
            from course_tools.grading.leaks import html_text

            text = {ln.strip() for ln in html_text(html_page).splitlines()}
            leaked = [ln for ln in hidden if ln in text]
            assert not leaked, f"feedback of {student} shows hidden tests: {leaked[:3]}"


def test_grades_csv_and_distribution_plot(run):
    import csv

    reports = run["course"] / "grading" / "reports" / NAME
    rows = {r["student"]: r for r in csv.DictReader((reports / "grades.csv").open())}
    assert set(rows) == set(run["cases"])
    assert float(rows["honest-wrong"]["score"]) == 10.0 and rows["honest-wrong"]["01-neural-networks:sigmoid_tests"] == "0.0"
    png = (reports / "distribution.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    nbgrader_rows = list(csv.DictReader((run["course"] / "grading" / "grades.csv").open()))
    assert {r["student_id"]: float(r["score"]) for r in nbgrader_rows} == {
        s: sum(exp.values()) for s, (_, exp) in run["cases"].items()}
    for student in run["cases"]:
        assert (reports / f"{student}.txt").exists() and (reports / f"{student}.html").exists()
    # the run's summary is its own file: the student "summary" has a report of their own
    assert "summary" in (reports / "_summary.txt").read_text() and "01-neural-networks" in (reports / "_summary.txt").read_text()
    assert json.loads((reports / "summary.json").read_text())["student"] == "summary"
    assert float(rows["no-submission"]["score"]) == 0.0 and float(rows["broken-deep-json"]["score"]) == 0.0


# ------------------------------------------------------------------------------------------
# idempotence and SIGKILL


def _gradebook_state(course: Path):
    con = sqlite3.connect(course / "grading" / "gradebook.db")
    try:
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")}
        grades = sorted(con.execute(
            "select s.student_id, bc.name, g.auto_score, g.manual_score, g.needs_manual_grade from grade g "
            "join submitted_notebook sn on g.notebook_id = sn.id join submitted_assignment s on sn.assignment_id = s.id "
            "join base_cell bc on g.cell_id = bc.id").fetchall())
    finally:
        con.close()
    return counts, grades


def _reports_state(course: Path):
    return {p.name: p.read_bytes() for p in (course / "grading" / "reports" / NAME).glob("*.json")}


def test_rerun_changes_nothing(run):
    course = run["course"]
    before = _gradebook_state(course), _reports_state(course)
    again = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=ISOLATION is None, feedback=False,
                         export=False, log=lambda m: None)
    assert again.graded == [] and sorted(again.cached) == sorted(run["cases"])
    assert (_gradebook_state(course), _reports_state(course)) == before


# the killed run's kernels get uids of their own: other runs on this machine (another test worker's) use the default
KILLED_RUN_UID_BASE = 100_000 + os.getpid() % 10_000 * 512  # 512 > the slots a machine has


def _our_processes(course: Path) -> list:
    import psutil

    from course_tools.grading.scheduler import MAX_SLOTS

    found = []
    uids = set(range(KILLED_RUN_UID_BASE, KILLED_RUN_UID_BASE + MAX_SLOTS)) if ISOLATION and ISOLATION.drop_uid else set()
    for p in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if str(course) in cmd or (p.info["uids"] and p.info["uids"].real in uids):
                found.append((p.pid, cmd[:200]))
        except psutil.Error:
            continue
    return found


def test_sigkill_midway_then_resume_gives_the_uninterrupted_grades(run):
    course = run["course"]
    copies = {"resume-a": "honest-solution", "resume-b": "honest-wrong", "resume-c": "honest-hidden-fail",
              "resume-d": "honest-untouched"}
    for new, old in copies.items():
        submit(course, new, run["cases"][old][0])
    cmd = [sys.executable, "-m", "course_tools.grading.autograde", NAME, "--jobs", "2", "--smoke", "--no-feedback",
           "--no-export", "--cell-timeout", str(CFG.cell_timeout), "--notebook-timeout", str(CFG.notebook_timeout),
           "--memory", "1.5", "--interrupt-grace", "2", "--course-root", str(course)]
    if ISOLATION is None:
        cmd.append("--no-sandbox")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, sb.UID_BASE_ENV: str(KILLED_RUN_UID_BASE)})
    reports = course / "grading" / "reports" / NAME
    deadline = time.monotonic() + 240
    done: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = [s for s in copies if (reports / f"{s}.json").exists()]
        if done:
            break
        time.sleep(0.1)
    assert done and proc.poll() is None, "the run ended before it could be killed midway"
    import psutil

    # the fork server and its workers run a command line that names no course folder: follow the tree
    descendants = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)
    assert not _our_processes(course), f"processes outlived the killed run: {_our_processes(course)}"
    def lives(p) -> bool:
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    alive = [p for p in descendants if lives(p)]
    assert not alive, f"the run's own processes outlived it: {[(p.pid, p.cmdline()[:3]) for p in alive]}"
    finished = [s for s in copies if (reports / f"{s}.json").exists()]
    assert 1 <= len(finished) < len(copies), f"not killed midway: {finished} had reports"
    resumed = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=ISOLATION is None, feedback=False,
                           export=False, log=lambda m: None)
    assert not resumed.failed
    assert set(resumed.graded) == set(copies) - set(finished), "the resumed run must grade exactly the rest"
    assert set(finished) <= set(resumed.cached)
    state = _gradebook_state(course)
    by_student: dict = {}
    for student, cell, auto, *_ in state[1]:
        by_student.setdefault(student, {})[cell] = auto
    for new, old in copies.items():
        assert by_student[new] == by_student[old], f"{new} (resumed) differs from {old} (uninterrupted)"
    assert not list(Path("/tmp").glob("cg-*/owner.pid")) or all(
        _pid_alive(int(p.read_text())) for p in Path("/tmp").glob("cg-*/owner.pid"))
    final = ag.autograde(NAME, course, jobs=2, config=CFG, no_sandbox=ISOLATION is None, feedback=False,
                         export=False, log=lambda m: None)
    assert final.graded == [] and _gradebook_state(course) == state


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
