"""Which ``course_lib`` code a student may not see yet, and the stubs that replace it.

Every ``[[assignment]]`` of ``syllabus.toml`` maps its graded names to the ``course_lib`` objects
that answer them (:mod:`course_tools.assignments`). Until the assignment's due date has passed,
the student release replaces each of those objects — and every private helper of the same module
that only they use — by a stub that keeps the signature and the docstring and raises
``NotImplementedError`` naming the assignment and its due date.

The module is analysed statically (:mod:`ast`, nothing is imported):

- :class:`LibraryIndex` parses every module of ``course_lib``: its top-level functions and
  classes, the ``course_lib`` names each of them refers to (through ``from course_lib.x import y``,
  ``import course_lib.x as m`` + ``m.y``, or a plain name of the same module) and the names its
  import-time code refers to;
- :func:`stub_set` grows the open answers by their exclusive private helpers;
- :func:`LibraryIndex.tainted` is everything that (transitively) calls a stub: a lecture that uses
  a tainted name cannot run against the student's ``course_lib`` and ships pre-executed;
- :func:`stub_module_source` rewrites one module's text: only the stubbed definitions change
  (``ast.unparse`` of a copy whose bodies are replaced), every other line stays byte-identical.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.assignments import AssignmentSpec
from course_tools.layout import ASSIGNMENTS

LIB = "course_lib"


class StubError(ValueError):
    """The answers mapping names something the library does not define, or stubbing would break an import."""


@dataclass(frozen=True)
class OpenAnswer:
    """Why a ``course_lib`` object is stubbed: the assignment it answers and that assignment's dates."""

    dotted: str
    assignment: str
    release: dt.date | None
    due: dt.date | None
    #: the answer this object is a private helper of (``None`` for an answer itself)
    helper_of: str | None = None

    def message(self) -> str:
        due = f"due {self.due.isoformat()}" if self.due else "no due date set"
        what = f"is part of {self.helper_of}, an answer" if self.helper_of else "is an answer"
        return (
            f"{self.dotted} {what} of assignment {self.assignment} ({due}): write your own in "
            f"{ASSIGNMENTS}/{self.assignment}/. The reference implementation comes with the course release "
            "after the due date."
        )


def open_answers(specs: Iterable[AssignmentSpec], on: dt.date) -> dict[str, OpenAnswer]:
    """The answers (dotted ``course_lib`` names) of every assignment not yet due on ``on``.

    A name that answers several open assignments is kept until the last of them is due.
    """
    out: dict[str, OpenAnswer] = {}
    for spec in specs:
        if spec.is_due(on):
            continue
        for dotted in spec.stubbed_names():
            known = out.get(dotted)
            if known is None or (known.due is not None and (spec.due is None or spec.due > known.due)):
                out[dotted] = OpenAnswer(dotted, spec.name, spec.release, spec.due)
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------------------------
# the library's static index


def _dotted_attribute(node: ast.expr) -> str | None:
    """``a.b.c`` for an Attribute chain rooted at a Name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _imports(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    """Local name → dotted target for every ``course_lib`` import anywhere in ``tree``."""
    names: dict[str, str] = {}
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                if node.level > 1:
                    parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if base != LIB and not base.startswith(LIB + "."):
                continue
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == LIB or alias.name.startswith(LIB + "."):
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        names[alias.name.split(".")[0]] = alias.name.split(".")[0]
    return names


def references(node: ast.AST, local_defs: Iterable[str], imports: Mapping[str, str], module: str) -> set[str]:
    """The dotted ``course_lib`` names (unresolved re-exports included) that ``node`` refers to."""
    local = set(local_defs)
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            chain = _dotted_attribute(sub)
            if chain is None:
                continue
            head, _, rest = chain.partition(".")
            if head in imports and rest:
                found.add(f"{imports[head]}.{rest}")
        elif isinstance(sub, ast.Name):
            if sub.id in local:
                found.add(f"{module}.{sub.id}")
            elif sub.id in imports:
                found.add(imports[sub.id])
    return found


@dataclass
class ModuleInfo:
    """One parsed ``course_lib`` module."""

    name: str
    path: Path
    source: str
    tree: ast.Module
    is_package: bool
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)


class LibraryIndex:
    """Every module of a ``course_lib`` folder, with the reference graph between their definitions."""

    def __init__(self, lib_dir: Path) -> None:
        self.lib_dir = Path(lib_dir)
        self.modules: dict[str, ModuleInfo] = {}
        for path in sorted(self.lib_dir.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(self.lib_dir.parent).with_suffix("")
            is_package = rel.name == "__init__"
            name = ".".join(rel.parts[:-1] if is_package else rel.parts)
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(path))
            info = ModuleInfo(name, path, source, tree, is_package)
            for stmt in tree.body:
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    info.defs[stmt.name] = stmt
            info.imports = _imports(tree, name, is_package)
            self.modules[name] = info
        # edges: canonical definition -> canonical definitions it refers to
        self.edges: dict[str, set[str]] = {}
        # module-level code (run at import) -> what it refers to
        self.import_time: dict[str, set[str]] = {}
        for info in self.modules.values():
            for def_name, node in info.defs.items():
                refs = references(node, info.defs, info.imports, info.name)
                refs.discard(f"{info.name}.{def_name}")
                self.edges[f"{info.name}.{def_name}"] = {c for r in refs if (c := self.canonical(r))}
            # what import-time code *calls* (a stub referenced, subclassed or stored in a table is harmless)
            top = [s for s in info.tree.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
            top += [a for n in info.defs.values() if not isinstance(n, ast.ClassDef) for a in n.args.defaults]
            called = [c.func for s in top for c in ast.walk(s) if isinstance(c, ast.Call)]
            called += [d.func if isinstance(d, ast.Call) else d for n in info.defs.values() for d in n.decorator_list]
            refs = set().union(*(references(f, info.defs, info.imports, info.name) for f in called)) if called else set()
            self.import_time[info.name] = {c for r in refs if (c := self.canonical(r))}

    def split(self, dotted: str) -> tuple[ModuleInfo, list[str]] | None:
        """``course_lib.conv.pad2d`` → (the module ``course_lib.conv``, ``["pad2d"]``)."""
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            if module in self.modules:
                return self.modules[module], parts[cut:]
        return None

    def canonical(self, dotted: str, _depth: int = 0) -> str | None:
        """The definition a dotted name denotes, following re-exports; None for modules and non-definitions."""
        found = self.split(dotted)
        if found is None or not found[1] or _depth > 10:
            return None
        info, attrs = found
        head = attrs[0]
        if head in info.defs:
            return f"{info.name}.{head}"
        if head in info.imports:
            return self.canonical(".".join([info.imports[head], *attrs[1:]]), _depth + 1)
        return None

    def node(self, dotted: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
        """The AST of a top-level definition (``course_lib.conv.pad2d``); raises StubError when absent."""
        canonical = self.canonical(dotted)
        found = self.split(canonical) if canonical else None
        if found is None:
            raise StubError(
                f"{dotted} is declared as an answer in syllabus.toml but {self.lib_dir.name}/ defines no such "
                "top-level function or class: fix the `answers` table of its [[assignment]]"
            )
        info, attrs = found
        return info.defs[attrs[0]]

    def referrers(self, target: str) -> set[str]:
        """Definitions that refer to ``target``, and ``<module M>`` where M's top-level code refers to it."""
        out = {src for src, dsts in self.edges.items() if target in dsts}
        for name, info in self.modules.items():
            top = [s for s in info.tree.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
            if any(self.canonical(r) == target for s in top for r in references(s, info.defs, info.imports, name)):
                out.add(f"<module {name}>")
        return out

    def tainted(self, stubbed: Iterable[str]) -> set[str]:
        """Every definition that (transitively) refers to a stubbed one, the stubbed ones included."""
        bad = set(stubbed)
        changed = True
        while changed:
            changed = False
            for src, dsts in self.edges.items():
                if src not in bad and dsts & bad:
                    bad.add(src)
                    changed = True
        return bad

    def uses(self, source: str, filename: str = "<notebook>") -> set[str]:
        """The canonical ``course_lib`` definitions a piece of code (a lecture's source) refers to."""
        tree = ast.parse(source, filename=filename)
        imports = _imports(tree, "__main__", False)
        return {c for r in references(tree, (), imports, "__main__") if (c := self.canonical(r))}


def stub_set(index: LibraryIndex, answers: Mapping[str, OpenAnswer]) -> dict[str, OpenAnswer]:
    """The open answers (canonical names) plus every private helper that only stubbed code uses.

    A private (``_name``) top-level definition of an answer's module is stubbed too when every
    definition that refers to it is itself stubbed: it is part of the answer (``conv._pad`` of
    ``pad2d`` when nothing else pads) and nobody else needs it. Helpers shared with code that stays
    (argument checks, shape arithmetic) are kept; :func:`shared_helpers` lists them.
    """
    stubs: dict[str, OpenAnswer] = {}
    for dotted, why in answers.items():
        index.node(dotted)  # raises StubError with the fix when the name does not exist
        canonical = index.canonical(dotted)
        assert canonical is not None
        stubs[canonical] = why if canonical == dotted else OpenAnswer(canonical, why.assignment, why.release, why.due)
    modules = {name.rpartition(".")[0] for name in stubs}
    changed = True
    while changed:
        changed = False
        for module in sorted(modules):
            for def_name in index.modules[module].defs:
                dotted = f"{module}.{def_name}"
                if not def_name.startswith("_") or def_name.startswith("__") or dotted in stubs:
                    continue
                users = index.referrers(dotted)
                if users and users <= set(stubs):
                    owner = stubs[sorted(users)[0]]
                    root = owner.helper_of or owner.dotted
                    stubs[dotted] = OpenAnswer(dotted, owner.assignment, owner.release, owner.due, helper_of=root)
                    changed = True
    return dict(sorted(stubs.items()))


def shared_helpers(index: LibraryIndex, stubs: Mapping[str, OpenAnswer]) -> dict[str, set[str]]:
    """Private helpers a stub uses that stay because code that is not stubbed uses them too."""
    out: dict[str, set[str]] = {}
    for dotted in stubs:
        for dep in index.edges.get(dotted, set()):
            if dep in stubs or not dep.rpartition(".")[2].startswith("_"):
                continue
            out.setdefault(dep, set()).add(dotted)
    return dict(sorted(out.items()))


def check_imports_survive(index: LibraryIndex, stubs: Iterable[str]) -> None:
    """Raise StubError when a module's import-time code would call a stubbed definition (or one that calls a stub)."""
    bad = index.tainted(stubs)
    for module, refs in index.import_time.items():
        for dotted in sorted(refs & bad):
            raise StubError(
                f"{module} uses {dotted} at import time, and {dotted} is (or calls) a stubbed answer: the student's "
                f"`import {module}` would fail. Move that use into a function, or change the answers mapping"
            )


# ----------------------------------------------------------------------------------------------
# rewriting a module


def _docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return [first]
    return []


def _raise(message: str) -> ast.Raise:
    call = ast.Call(func=ast.Name(id="NotImplementedError", ctx=ast.Load()), args=[ast.Constant(message)], keywords=[])
    return ast.Raise(exc=call, cause=None)


def stub_node(node: ast.stmt, message: str) -> ast.stmt:
    """A copy of a function or class definition whose every function body is ``raise NotImplementedError``.

    Signatures, decorators, annotations, bases and docstrings are kept; class-level statements
    that are not definitions (attributes, ``__slots__``) are kept as they are.
    """
    node = copy.deepcopy(node)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        node.body = [*_docstring(node.body), _raise(message)]
    elif isinstance(node, ast.ClassDef):
        body: list[ast.stmt] = []
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                body.append(stub_node(stmt, message))
            else:
                body.append(stmt)
        node.body = body or [ast.Pass()]
    else:
        raise TypeError(f"cannot stub a {type(node).__name__}")
    return node


def _function_edits(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], message: str) -> list[tuple[int, int, str]]:
    """Line edits (1-based first, last, replacement) that turn a function's body into ``raise NotImplementedError``.

    The signature, the docstring and the comments above the first statement's line are kept as written.
    """
    doc = _docstring(node.body)
    body = node.body[len(doc) :]
    if not body:
        return []
    first = body[0]
    if first.lineno == node.lineno or (doc and doc[0].end_lineno == first.lineno):
        return []  # one-liner: the caller unparses the whole definition
    if doc:
        start = (doc[0].end_lineno or doc[0].lineno) + 1
    else:
        start = first.lineno
        while start - 1 > node.lineno and lines[start - 2].strip().startswith("#"):
            start -= 1
    indent = " " * first.col_offset
    raise_text = ast.unparse(_raise(message))
    return [(start, node.end_lineno or first.lineno, f"{indent}{raise_text}\n")]


def _node_edits(node: ast.stmt, lines: list[str], message: str) -> list[tuple[int, int, str]] | None:
    """Edits that stub ``node`` in place, or None when it must be rewritten whole (one-line bodies)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        edits = _function_edits(node, lines, message)
        body = node.body[len(_docstring(node.body)) :]
        return edits if edits or not body else None
    if isinstance(node, ast.ClassDef):
        edits: list[tuple[int, int, str]] = []
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                sub = _node_edits(stmt, lines, message)
                if sub is None:
                    return None
                edits += sub
        return edits
    raise TypeError(f"cannot stub a {type(node).__name__}")


def stub_module_source(source: str, stubs: Mapping[str, str], filename: str = "<module>") -> str:
    """``source`` with each top-level definition named in ``stubs`` (name → message) replaced by its stub.

    Only function bodies change (each becomes one ``raise NotImplementedError(message)`` line after
    the signature and docstring, written as they were); every other line is kept byte for byte.
    """
    tree = ast.parse(source, filename=filename)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    names = set(stubs)
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and stmt.name in names:
            names.discard(stmt.name)
            in_place = _node_edits(stmt, lines, stubs[stmt.name])
            if in_place is None:
                start = min([stmt.lineno, *(d.lineno for d in stmt.decorator_list)])
                in_place = [(start, stmt.end_lineno or stmt.lineno, ast.unparse(stub_node(stmt, stubs[stmt.name])) + "\n")]
            edits += in_place
    if names:
        raise StubError(f"{filename} has no top-level definition named {sorted(names)}")
    for start, end, text in sorted(edits, key=lambda e: -e[0]):
        lines[start - 1 : end] = [text]
    out = "".join(lines)
    ast.parse(out, filename=filename)  # the rewrite must stay valid Python
    return out


def body_fingerprints(node: ast.AST) -> set[str]:
    """``ast.dump`` of the body (docstring excluded) of ``node`` and of every function inside it."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            body = sub.body[len(_docstring(sub.body)) :]
            if body and not (len(body) == 1 and isinstance(body[0], ast.Raise | ast.Pass)):
                out.add(ast.dump(ast.Module(body=body, type_ignores=[])))
    return out


__all__ = [
    "LibraryIndex",
    "OpenAnswer",
    "StubError",
    "body_fingerprints",
    "check_imports_survive",
    "open_answers",
    "shared_helpers",
    "stub_module_source",
    "stub_node",
    "stub_set",
]
