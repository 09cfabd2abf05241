"""The assignment's rules: what an answer may not use, checked in the student's code.

Each assignment declares ``forbidden`` dotted prefixes in ``syllabus.toml``
(:class:`course_tools.assignments.AssignmentSpec`), e.g. ``torch.nn.functional`` or
``course_lib.conv`` for assignment 03. Two checks apply them:

* **static** (:func:`check_rules`, here): the student's cells (answer cells and cells the student
  added; the instructor's cells are exempt) are parsed and every *use* of a forbidden name is a
  :class:`Violation`: ``import``/``from ... import`` statements, attribute chains resolved through
  the aliases the whole notebook binds (``import torch.nn.functional as F`` in a setup cell, then
  ``F.conv2d`` in an answer), aliases made by assignment (``g = F``; ``c = F.conv2d``),
  ``getattr(obj, "constant")`` (also ``getattr(obj, "con" + "v2d")``: constant expressions are
  folded), ``__import__("...")`` and ``importlib.import_module("...")`` with constant names.
  A forbidden *method* (``torch.Tensor.unfold``: its owner is a class) is matched by its attribute
  name on any object, since the type of ``x`` in ``x.unfold(...)`` is not known statically.
  ``getattr`` with a computed name on a module that holds a forbidden name is a violation too
  (it could reach anything there).
* **dynamic** (:meth:`course_tools.grading.wire.Agent.install_rule_wrappers`): before any student
  code runs, the kernel's agent wraps the forbidden callables (and the functions of a forbidden
  module of at most :data:`course_tools.grading.wire.MAX_MODULE_WRAPS` public functions) and records
  which were entered while it served a graded call; after the notebook it checks the wrappers are
  still in place.

The grader (:mod:`course_tools.grading.autograde`) sets the test cells affected by a violation to
0, with the reason in the report, unless ``grading/rule-overrides.toml`` allows it for that
student (README, "The assignment's rules"). ``python -m course_tools validate`` applies the same
static check before a student submits.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from course_tools.layout import REPO_ROOT, SOLUTIONS


@dataclass(frozen=True)
class Violation:
    cell: str  # grade id of the cell, or "cell N" for a cell without one
    line: int
    name: str  # the forbidden name used (resolved), e.g. torch.nn.functional.conv2d
    rule: str  # the forbidden prefix it matches, e.g. torch.nn.functional
    how: str  # import | attribute | getattr | __import__ | method | dynamic getattr | called

    def __str__(self) -> str:
        where = f"{self.cell}, line {self.line}" if self.line else self.cell
        verb = {"import": "imports", "method": "calls the method", "called": "called",
                "dynamic getattr": "uses getattr with a computed name on"}.get(self.how, "uses")
        return f"{where}: {verb} {self.name} (forbidden by the assignment's rules: {self.rule})"


def _nbg(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def is_student_cell(cell) -> bool:
    """Answer cells (nbgrader ``solution``) and cells without an nbgrader role (the student may add them)."""
    meta = _nbg(cell)
    if not meta.get("grade_id"):
        return True
    return bool(meta.get("solution"))


def matches(dotted: str, forbidden: Iterable[str]) -> str | None:
    """The forbidden prefix ``dotted`` falls under (``torch.nn.functional.conv2d`` under ``torch.nn.functional``)."""
    for f in forbidden:
        if dotted == f or dotted.startswith(f + "."):
            return f
    return None


def _holds_forbidden(dotted: str, forbidden: Iterable[str]) -> bool:
    return any(f.startswith(dotted + ".") for f in forbidden)


def _method_rules(forbidden: Iterable[str]) -> dict[str, str]:
    """attribute name -> rule, for forbidden names whose owner is a class (``torch.Tensor.unfold``)."""
    out = {}
    for f in forbidden:
        parts = f.split(".")
        if len(parts) >= 3 and parts[-2][:1].isupper() and not parts[-1][:1].isupper():
            out[parts[-1]] = f
    return out


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(code))
        except Exception:
            return None


def _const_str(node) -> str | None:
    """The value of a constant string expression ("a" + "b", "%s" % "x", f-strings of constants)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _const_str(node.left), _const_str(node.right)
        return a + b if a is not None and b is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            elif isinstance(v, ast.FormattedValue) and _const_str(v.value) is not None:
                parts.append(_const_str(v.value))
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and _const_str(node.func.value) is not None and len(node.args) == 1 \
            and isinstance(node.args[0], (ast.List, ast.Tuple)):
        items = [_const_str(e) for e in node.args[0].elts]
        return _const_str(node.func.value).join(items) if all(i is not None for i in items) else None
    return None


class _Checker:
    def __init__(self, forbidden: tuple[str, ...]):
        self.forbidden = forbidden
        self.methods = _method_rules(forbidden)
        self.aliases: dict[str, str] = {}  # name -> dotted name it refers to
        self.found: list[Violation] = []
        self.cell = ""
        self.report = False

    # resolution of expressions to dotted names
    def resolve(self, node) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id == "getattr" and len(node.args) >= 2:
                base, attr = self.resolve(node.args[0]), _const_str(node.args[1])
                return f"{base}.{attr}" if base and attr else None
            if isinstance(fn, ast.Name) and fn.id == "__import__" and node.args:
                name = _const_str(node.args[0])
                fromlist = node.args[3] if len(node.args) > 3 else next(
                    (k.value for k in node.keywords if k.arg == "fromlist"), None)
                if name:
                    return name if fromlist is not None and not (isinstance(fromlist, ast.Constant)
                                                                 and fromlist.value is None) else name.split(".")[0]
            if (isinstance(fn, ast.Attribute) and fn.attr == "import_module" and self.resolve(fn.value) == "importlib") \
                    or (isinstance(fn, ast.Name) and self.aliases.get(fn.id) == "importlib.import_module"):
                return _const_str(node.args[0]) if node.args else None
        return None

    def add(self, node, name: str, rule: str, how: str) -> None:
        if self.report:
            self.found.append(Violation(self.cell, getattr(node, "lineno", 0), name, rule, how))

    def check_name(self, node, dotted: str | None, how: str) -> bool:
        if dotted:
            rule = matches(dotted, self.forbidden)
            if rule:
                self.add(node, dotted, rule, how)
                return True
        return False

    def run(self, tree: ast.Module) -> None:
        for stmt in tree.body:  # in order: a statement sees the aliases of the statements before it
            self._visit(stmt)
            self._bind(stmt)

    def _visit(self, tree) -> None:
        # the outermost resolvable expression is reported once (F.conv2d, not also F)
        skip: set[int] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.check_name(node, a.name, "import")
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not self.check_name(node, node.module, "import"):
                    for a in node.names:
                        self.check_name(node, f"{node.module}.{a.name}" if a.name != "*" else node.module, "import")
                        if a.name == "*" and _holds_forbidden(node.module, self.forbidden):
                            self.add(node, f"{node.module}.*", next(f for f in self.forbidden
                                                                    if f.startswith(node.module + ".")), "import")
            elif isinstance(node, (ast.Attribute, ast.Name, ast.Call)):
                dotted = self.resolve(node)
                how = "attribute"
                if isinstance(node, ast.Call):
                    how = "getattr" if isinstance(node.func, ast.Name) and node.func.id == "getattr" else "__import__"
                    if dotted is None and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                            and len(node.args) >= 2 and _const_str(node.args[1]) is None:
                        base = self.resolve(node.args[0])
                        if base and _holds_forbidden(base, self.forbidden):
                            self.add(node, base, next(f for f in self.forbidden if f.startswith(base + ".")),
                                     "dynamic getattr")
                if dotted and self.check_name(node, dotted, how):
                    for sub in ast.walk(node):
                        if sub is not node:
                            skip.add(id(sub))
                    continue
                if isinstance(node, ast.Attribute) and node.attr in self.methods and dotted is None:
                    self.add(node, f"<object>.{node.attr}", self.methods[node.attr], "method")

    def _bind(self, stmt) -> None:
        """Aliases bound at top level by ``stmt`` (imports and assignments of resolvable expressions)."""
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    self.aliases[top] = top
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
            for a in stmt.names:
                if a.name != "*":
                    self.aliases[a.asname or a.name] = f"{stmt.module}.{a.name}"
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            dotted = self.resolve(stmt.value)
            for t in targets:
                if isinstance(t, ast.Name):
                    if dotted:
                        self.aliases[t.id] = dotted
                    else:
                        self.aliases.pop(t.id, None)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.aliases.pop(stmt.name, None)
        elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt):
                    self._bind(child)
                elif isinstance(child, ast.ExceptHandler):
                    for s in child.body:
                        self._bind(s)
        # names bound inside functions: `import torch.nn.functional as F` in a function body is still
        # seen by _visit (the import itself is a violation)


def check_cells(cells: list[tuple[str, str, bool]], forbidden: Iterable[str]) -> list[Violation]:
    """Violations in ``cells`` = [(cell name, source, is the student's)], in notebook order.

    Every cell binds aliases (a setup cell's ``import torch.nn.functional as F`` makes ``F.conv2d``
    in an answer a use of ``torch.nn.functional.conv2d``); only the student's cells are reported.
    """
    forbidden = tuple(sorted({f.strip() for f in forbidden if f and f.strip()}))
    if not forbidden:
        return []
    checker = _Checker(forbidden)
    for name, source, student in cells:
        tree = _parse(source)
        if tree is None:
            continue
        checker.cell, checker.report = name, student
        checker.run(tree)
    seen, out = set(), []
    for v in checker.found:
        if (v.cell, v.line, v.name) not in seen:
            seen.add((v.cell, v.line, v.name))
            out.append(v)
    return out


def _cell_name(cell, index: int) -> str:
    return _nbg(cell).get("grade_id") or f"cell {index + 1}"


def notebook_cells(nb, source_nb=None) -> list[tuple[str, str, bool]]:
    """(name, source, is the student's) of the code cells. A cell whose text equals a non-answer code
    cell of the source (setup, demo, test cells) is the instructor's, whatever its metadata says."""
    trusted = set()
    if source_nb is not None:
        trusted = {_src(c).strip() for c in source_nb.cells if c.get("cell_type") == "code" and not _nbg(c).get("solution")}
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        src = _src(cell)
        student = is_student_cell(cell) and src.strip() not in trusted
        out.append((_cell_name(cell, i), src, student))
    return out


def _find_source(notebook_path: Path, spec) -> object | None:
    src = REPO_ROOT / SOLUTIONS / spec.name / (Path(notebook_path).stem + ".py")
    if not src.exists():
        return None
    try:
        from course_tools.notebooks.convert import read_source

        return read_source(src, strip_jupytext=True)
    except Exception:
        return None


def check_rules(notebook_path: Path, spec, *, source_nb=None) -> list[Violation]:
    """The uses of the assignment's forbidden names in the student's cells of a notebook.

    ``spec``: the assignment's :class:`~course_tools.assignments.AssignmentSpec` (its ``forbidden``).
    ``source_nb``: the source notebook (default: ``solutions/<assignment>/<stem>.py`` when it exists);
    cells equal to its instructor cells are never reported.
    """
    import nbformat

    nb = nbformat.read(str(notebook_path), as_version=4)
    if source_nb is None:
        source_nb = _find_source(Path(notebook_path), spec)
    return check_cells(notebook_cells(nb, source_nb), spec.forbidden)


# ---------------------------------------------------------------------------------------- scoring


def affected_tests(test_cells: dict[str, str], student_cells: list[tuple[str, str]],
                   violating: set[str], *, judge_names: set[str] = frozenset(),
                   answer_names: set[str] = frozenset()) -> dict[str, set[str]]:
    """Which test cells rely on a violating cell: test grade id -> names of the violating cells.

    A test relies on a cell when it uses a name the cell binds at top level, directly or through
    other student cells that use such a name (``conv2d`` calling a ``pad2d`` that calls ``F.pad``).
    ``judge_names``: names the evaluator binds itself from the instructor's cells (a test using
    ``F`` uses the evaluator's ``F``, not a student's re-import), unless they are ``answer_names``.
    """
    from course_tools.grading.evaluator import loaded_names, stored_names

    binds: dict[str, set[str]] = {}
    loads: dict[str, set[str]] = {}
    for name, src in student_cells:
        tree = _parse(src)
        if tree is None:
            continue
        binds[name] = binds.get(name, set()) | stored_names(tree)
        loads[name] = loads.get(name, set()) | loaded_names(tree)
    def relevant(n: str) -> bool:  # `import numpy as np` in a violating cell does not taint every use of np
        return n in answer_names or n not in judge_names

    tainted: dict[str, set[str]] = {}  # bound name -> violating cells behind it
    for cell in violating:
        for n in binds.get(cell, ()):
            if relevant(n):
                tainted.setdefault(n, set()).add(cell)
    changed = True
    while changed:
        changed = False
        for cell, used in loads.items():
            via = set().union(*[tainted[n] for n in used if n in tainted]) if used & tainted.keys() else set()
            if not via:
                continue
            for n in binds.get(cell, ()):
                if relevant(n) and not via <= tainted.get(n, set()):
                    tainted.setdefault(n, set()).update(via)
                    changed = True
    out: dict[str, set[str]] = {}
    for gid, src in test_cells.items():
        tree = _parse(src)
        if tree is None:
            continue
        used = {n for n in loaded_names(tree) if relevant(n)}
        via = set()
        for n in used & tainted.keys():
            via |= tainted[n]
        if via:
            out[gid] = via
    return out


def instructor_names(source_nb) -> tuple[set[str], set[str]]:
    """(names the source's instructor code cells bind, names its answer cells bind)."""
    from course_tools.grading.evaluator import stored_names

    judge, answers = set(), set()
    for cell in source_nb.cells:
        if cell.get("cell_type") != "code" or _nbg(cell).get("grade"):
            continue
        tree = _parse(_src(cell))
        if tree is not None:
            (answers if _nbg(cell).get("solution") else judge).update(stored_names(tree))
    return judge, answers


def load_overrides(path: Path, assignment: str, student: str) -> list[dict]:
    """The instructor's overrides for one student: [{"cells": [...] or ["*"], "reason": "..."}].

    ``grading/rule-overrides.toml``::

        [[override]]
        assignment = "03-convolutions"
        student = "alice"
        cells = ["conv2d_tests"]       # optional: every cell when left out
        reason = "F.pad allowed for padding (email of 2027-03-01)"
    """
    import tomllib

    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} is not valid TOML ({exc}); fix it or remove it") from None
    out = []
    for i, entry in enumerate(data.get("override", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("student"), str) \
                or not isinstance(entry.get("assignment"), str) or not isinstance(entry.get("reason", ""), str):
            raise ValueError(f"{path}: [[override]] number {i + 1} needs string `assignment`, `student` "
                             "and `reason` (and optionally a list of `cells`)")
        cells = entry.get("cells", ["*"])
        if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
            raise ValueError(f"{path}: [[override]] number {i + 1}: `cells` must be a list of grade ids")
        if entry["assignment"] == assignment and entry["student"] == student:
            out.append({"cells": cells, "reason": entry.get("reason", "") or "allowed by the instructor"})
    return out


def override_for(overrides: list[dict], grade_id: str) -> str | None:
    for o in overrides:
        if "*" in o["cells"] or grade_id in o["cells"]:
            return o["reason"]
    return None


__all__ = ["Violation", "affected_tests", "check_cells", "check_rules", "load_overrides", "matches",
           "notebook_cells", "override_for"]
