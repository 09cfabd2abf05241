"""Check a finished student bundle: nothing in it that students may not have on its day.

:func:`scan_bundle` returns one line per problem (empty: clean):

- a file outside the bundle's fixed set of top-level entries (``solutions/``, ``course_tools/``,
  ``grading/``, a gradebook, tests ...);
- an nbgrader marker, or a line of a hidden test of any assignment, or a line of a solution of an
  assignment not yet due (:func:`course_tools.grading.leaks.secret_lines`: lines between the
  markers that do not also occur outside them), anywhere in the bundle's text (notebook sources
  and outputs included) — unless students see that line anyway, in a lecture or in the part of
  ``course_lib`` that is not stubbed (``return out``, ``with torch.no_grad():``);
- an answer of an open assignment that is not a stub in the bundle's ``course_lib``;
- the body of such an answer (or of its stubbed helpers), or one of its non-trivial statements,
  found as code anywhere in the bundle — compared as ASTs, so reformatting or renaming the
  function does not hide it. Statements that also occur in ``course_lib`` code that stays are
  not evidence (argument checks shared with other functions).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

from course_tools.assignments import load_specs
from course_tools.grading.leaks import markers_in, secret_lines
from course_tools.layout import ASSIGNMENTS, LECTURES, SOLUTIONS
from course_tools.student_release.stubs import LIB, LibraryIndex, body_fingerprints, open_answers, stub_set

#: what a bundle may hold at its top level
ALLOWED_TOP = {
    "README.md", "Makefile", "pyproject.toml", "environment.yml", "requirements", "nbgrader_config.py", ".gitignore",
    LIB, LECTURES, ASSIGNMENTS,
}
#: statements smaller than this many AST nodes are too generic to be evidence on their own
MIN_STATEMENT_NODES = 12


def _texts(path: Path) -> tuple[str, list[str]]:
    """(all readable text of a file, its Python code pieces)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        nb = json.loads(raw)
        parts, code = [], []
        for cell in nb.get("cells", []):
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            parts.append(src)
            if cell.get("cell_type") == "code":
                code.append("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))))
            for out in cell.get("outputs", []):
                text = out.get("text", "")
                parts.append("".join(text) if isinstance(text, list) else text)
                for key, value in (out.get("data") or {}).items():
                    if key.startswith("text/"):
                        parts.append("".join(value) if isinstance(value, list) else value)
        return "\n".join(parts), code
    return raw, [raw] if path.suffix == ".py" else []


def _statements(node: ast.AST) -> dict[str, str]:
    """``ast.dump`` → first source line of every non-trivial simple or compound statement inside ``node``."""
    out = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.stmt) and not isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if sum(1 for _ in ast.walk(sub)) >= MIN_STATEMENT_NODES:
                out[ast.dump(sub)] = ast.unparse(sub).splitlines()[0][:120]
    return out


def _is_stub(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            body = sub.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            if len(body) != 1 or not isinstance(body[0], ast.Raise):
                return False
    return True


def scan_bundle(bundle: Path, root: Path, on: dt.date) -> list[str]:
    """Every problem found in the bundle at ``bundle`` for day ``on`` (``root``: the instructor's repository)."""
    from course_tools.notebooks.convert import read_source

    bundle = Path(bundle)
    problems = [f"{p.name}: not part of a student bundle" for p in sorted(bundle.iterdir()) if p.name not in ALLOWED_TOP]
    specs = load_specs(root)

    # secret lines of the sources
    forbidden: dict[str, str] = {}
    for src in sorted((root / SOLUTIONS).glob("*/*.py")):
        spec = specs.get(src.parent.name)
        published = spec is not None and spec.is_due(on)
        for line, kind in secret_lines(read_source(src)).items():
            if kind == "hidden test" or not published:
                forbidden.setdefault(line, f"{kind} line of {src.relative_to(root)}")

    index = LibraryIndex(root / LIB)
    stubs = stub_set(index, open_answers(specs.values(), on))
    # lines students see anyway are no evidence: the lectures, and course_lib outside the stubbed definitions
    public: set[str] = set()
    for lec in sorted((root / LECTURES).glob("*/*.py")):
        public |= {ln.strip() for ln in lec.read_text(encoding="utf-8").splitlines()}
    for info in index.modules.values():
        lines = info.source.splitlines()
        for name, node in info.defs.items():
            if f"{info.name}.{name}" in stubs:
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines[start - 1 : node.end_lineno] = [""] * ((node.end_lineno or start) - start + 1)
        public |= {ln.strip() for ln in lines}
    forbidden = {line: why for line, why in forbidden.items() if line not in public}

    # answer bodies of open assignments, as ASTs
    fingerprints: dict[str, str] = {}
    statements: dict[str, tuple[str, str]] = {}
    for dotted in stubs:
        node = index.node(dotted)
        for fp in body_fingerprints(node):
            fingerprints[fp] = dotted
        for st, line in _statements(node).items():
            statements.setdefault(st, (dotted, line))
    kept: set[str] = set()
    for info in index.modules.values():
        for name, node in info.defs.items():
            if f"{info.name}.{name}" not in stubs:
                kept |= _statements(node).keys()
    statements = {k: v for k, v in statements.items() if k not in kept}

    bundle_index = LibraryIndex(bundle / LIB)
    for dotted in stubs:
        try:
            node = bundle_index.node(dotted)
        except ValueError:
            problems.append(f"{dotted}: missing from the bundle's {LIB}")
            continue
        if not _is_stub(node):
            problems.append(f"{dotted}: answers an open assignment but is not a stub in the bundle")

    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if path.suffix not in {".py", ".ipynb", ".md", ".txt", ".toml", ".yml", ""} and path.name != "Makefile":
            continue
        text, code = _texts(path)
        for marker in markers_in(text):
            problems.append(f"{rel}: contains the nbgrader marker {marker!r}")
        for line in {ln.strip() for ln in text.splitlines()} & forbidden.keys():
            problems.append(f"{rel}: {forbidden[line]}: {line}")
        for piece in code:
            try:
                tree = ast.parse(piece)
            except SyntaxError:
                continue
            for fp in body_fingerprints(tree) & fingerprints.keys():
                problems.append(f"{rel}: holds the body of {fingerprints[fp]} (an answer of an open assignment)")
            for st in _statements(tree).keys() & statements.keys():
                dotted, line = statements[st]
                problems.append(f"{rel}: holds a statement of {dotted} (an answer of an open assignment): {line}")
    return sorted(set(problems))


__all__ = ["ALLOWED_TOP", "scan_bundle"]
