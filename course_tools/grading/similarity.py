"""Similarity report: which submissions of an assignment share code, with each other and with the references.

``python -m course_tools similarity NAME [--top K] [--threshold T]`` (``make similarity ASSIGNMENT=NAME``)
reads the collected submissions ``grading/submitted/<student>/NAME/*.ipynb`` and writes
``grading/reports/NAME/_similarity.html`` (the top pairs, their matching regions side by side) and
``grading/reports/NAME/_similarity.csv`` (every pair), and prints the top pairs. Run files start
with ``_``, which no student id does, so a student named ``similarity`` keeps their own report. It
reads the gradebook and the per-student reports never and writes nothing but these two files: it
never changes a score. A high similarity is a lead for a human to read, not a verdict.

What is compared
----------------
Per submission, its *answer cells*: the code cells whose nbgrader ``grade_id`` is a solution cell
of the source (``solutions/NAME/*.py``), labelled by it, and every other code cell the grader runs
in the student's version (cells the student added, released cells without a grade id, cells whose
metadata was edited away, second copies of a test cell), labelled ``cell N``, as
:func:`course_tools.grading.autograde.assemble` runs them; test cells and locked cells (the grader
restores them from the source) and markdown are never compared. Unchanged released cells are all given
code, so they add nothing.
Two *references* are compared with every submission: ``solution`` (the answer cells of the
instructor's source) and ``course_lib`` (the reference implementations the assignment's
``answers`` and ``reveals`` in ``syllabus.toml`` name, with the module's private helpers they call,
read from the source files, not imported). Everything the student received — every code cell of
the released notebook ``assignments/NAME/*.ipynb`` and the code blocks of its markdown — is
*given code* and never counts as shared.

How (MOSS's winnowing, Schleimer, Wilkerson and Aiken, SIGMOD 2003)
-------------------------------------------------------------------
1. Tokens: Python's :mod:`tokenize` on each cell (IPython ``%magic``/``!shell`` lines blanked,
   leading indentation dropped so any cell tokenizes; a cell that still fails is tokenized in
   pieces). Comments, newlines and indentation are dropped; every identifier becomes ``V``, every
   number ``N``, every string ``S``; keywords and operators stay. So renaming variables, rewording
   comments or reformatting changes nothing.
2. k-grams: every run of ``k`` consecutive tokens of a cell (default 15) is hashed (Karp-Rabin
   over token ids from blake2b, so runs are reproducible across processes).
3. Winnowing: in every window of ``w`` consecutive k-gram hashes (default 6) the minimum (the
   rightmost on ties) is a fingerprint. Any shared run of at least ``k + w - 1`` tokens (20 by
   default, about two lines) is guaranteed to share a fingerprint; runs shorter than ``k`` never do.
4. Given code is dropped from the token stream before the k-grams are formed: the tokens of a
   line that is a line of the given code (compared with whitespace collapsed), and the tokens of
   every k-gram whose hash is one of the given code's k-gram hashes (all of them, not only its
   fingerprints: given code with renamed variables or another layout). So no k-gram joins given
   pieces (a pasted helper, then the stub's signature) and only the student's own code is
   fingerprinted; the given hashes are also removed from the fingerprints.
5. Similarity of documents A and B with fingerprint sets F_A, F_B:
   ``similarity = |F_A ∩ F_B| / max(min(|F_A|, |F_B|), 8)`` — the share of the *smaller* document
   found in the other (a short answer copied whole into a longer one scores 1, like MOSS's
   percentages), with at least 8 fingerprints in the denominator so that a near-empty submission
   cannot score high on one shared line. The CSV also gives the Jaccard index
   ``|F_A ∩ F_B| / |F_A ∪ F_B|``.
6. Regions: for the pairs shown, every k-gram (not only fingerprints) common to both and not given
   marks its source lines; runs of marked lines in a cell are regions, each paired with the region
   of the other side it shares most k-grams with; paired regions have the same colour.

The HTML is static: every piece of student text is escaped, and a Content-Security-Policy
forbids scripts and any load from elsewhere.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import html
import io
import itertools
import keyword
import re
import sys
import time
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_tools.grading.config import REPORTS_DIR, SUBMITTED_DIR
from course_tools.layout import REPO_ROOT, CourseLayout

#: the defaults of the method (module docstring)
DEFAULT_K = 15
DEFAULT_WINDOW = 6
DEFAULT_TOP = 10
DEFAULT_THRESHOLD = 0.5
#: the smallest denominator of the similarity (a submission with fewer fingerprints is "short")
MIN_FINGERPRINTS = 8
#: pairs shown per table (with their regions side by side) at most, however many are flagged (the CSV has all)
MAX_SHOWN = 100
#: characters of one cell that are compared (a larger cell is cut, with a note in the report)
MAX_CELL_CHARS = 200_000
#: characters of one submission's answer cells that are compared (the cells after are left out, with a note)
MAX_DOCUMENT_CHARS = 2_000_000
#: the report's file names in grading/reports/NAME/ (run files start with "_": no student id does)
HTML_FILE = "_similarity.html"
CSV_FILE = "_similarity.csv"
#: names of the two reference documents (not valid student ids: they start with "@")
SOLUTION_REF = "@solution"
COURSE_LIB_REF = "@course_lib"
_MOD = (1 << 61) - 1
_BASE = 1_000_003
_COLOURS = 8


class SimilarityError(RuntimeError):
    """The report cannot be made (nothing collected, no release, unknown assignment); the message says what to do."""


# =============================================================================================
# tokens, k-grams, winnowing


@dataclass(frozen=True)
class Token:
    text: str  # the normalised token: V, N, S, a keyword or an operator
    line: int  # 1-based line of the cell's source where it starts


_MAGIC = re.compile(r"^\s*[%!]")


def _prepare(source: str) -> list[str]:
    """The cell's lines without leading indentation, IPython magics and shell lines blanked."""
    return ["\n" if _MAGIC.match(ln) else ln.lstrip(" \t\f") for ln in source.splitlines(keepends=True)]


def _normalise(tok: tokenize.TokenInfo) -> str | None:
    kind = tok.type
    if kind == tokenize.NAME:
        return tok.string if keyword.iskeyword(tok.string) else "V"
    if kind == tokenize.NUMBER:
        return "N"
    if kind == tokenize.STRING:
        return "S"
    if kind == tokenize.OP:
        return tok.string
    if kind == tokenize.ERRORTOKEN:
        return tok.string if tok.string.strip() else None
    return None  # COMMENT, NL, NEWLINE, INDENT, DEDENT, ENCODING, ENDMARKER, FSTRING_* parts


def tokens(source: str) -> list[Token]:
    """The normalised tokens of one cell (any text: what does not tokenize is skipped a line at a time)."""
    lines = _prepare(source[:MAX_CELL_CHARS])
    out: list[Token] = []
    start = 0
    while start < len(lines):
        reader = io.StringIO("".join(lines[start:])).readline
        try:
            for tok in tokenize.generate_tokens(reader):
                text = _normalise(tok)
                if text is not None:
                    out.append(Token(text, tok.start[0] + start))
            break
        except (tokenize.TokenError, SyntaxError) as exc:
            # an unclosed string or bracket: keep what was read, go on after the line it started on
            where = exc.args[1] if isinstance(exc, tokenize.TokenError) else (exc.lineno or 1, 0)
            bad_line = where[0] if isinstance(where, tuple) and where and isinstance(where[0], int) else 1
            out = [t for t in out if t.line < start + bad_line]
            start += max(bad_line, 1)
    return out


_TOKEN_IDS: dict[str, int] = {}


def _token_id(text: str) -> int:
    tid = _TOKEN_IDS.get(text)
    if tid is None:
        tid = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=7).digest(), "big")
        _TOKEN_IDS[text] = tid
    return tid


def kgram_hashes(toks: list[Token], k: int) -> list[int]:
    """The Karp-Rabin hash of every k consecutive tokens (one hash for a cell shorter than k? none)."""
    if len(toks) < k:
        return []
    ids = [_token_id(t.text) for t in toks]
    top = pow(_BASE, k - 1, _MOD)
    h = 0
    for v in ids[:k]:
        h = (h * _BASE + v) % _MOD
    out = [h]
    for i in range(k, len(ids)):
        h = ((h - ids[i - k] * top) * _BASE + ids[i]) % _MOD
        out.append(h)
    return out


def winnow(hashes: list[int], w: int) -> list[int]:
    """Positions of the fingerprints: the rightmost minimum of every window of ``w`` hashes, each once."""
    if not hashes:
        return []
    if len(hashes) <= w:
        m = min(hashes)
        return [max(i for i, h in enumerate(hashes) if h == m)]
    picked: list[int] = []
    for s in range(len(hashes) - w + 1):
        window = hashes[s : s + w]
        m = min(window)
        pos = s + w - 1 - window[::-1].index(m)
        if not picked or picked[-1] != pos:
            picked.append(pos)
    return picked


# =============================================================================================
# documents: a submission's answer cells, the references, the given code


@dataclass
class Cell:
    label: str  # grade id, "cell 7" (a code cell without an answer grade id), or the course_lib name
    source: str = field(repr=False)
    toks: list[Token] = field(default_factory=list, repr=False)
    hashes: list[int] = field(default_factory=list, repr=False)  # every k-gram hash (position i: tokens i..i+k-1)

    def span(self, i: int, k: int) -> tuple[int, int]:
        return self.toks[i].line, self.toks[i + k - 1].line


@dataclass
class Document:
    name: str  # a student id, or SOLUTION_REF / COURSE_LIB_REF
    cells: list[Cell] = field(repr=False)
    fingerprints: set[int] = field(default_factory=set, repr=False)

    @property
    def is_reference(self) -> bool:
        return self.name in (SOLUTION_REF, COURSE_LIB_REF)

    def prepare(self, k: int, w: int, given: Given) -> None:
        """The cells' own tokens (given code dropped), their k-gram hashes and the document's fingerprints."""
        self.fingerprints = set()
        for c in self.cells:
            lines = c.source[:MAX_CELL_CHARS].splitlines()
            own = {n for n, text in enumerate(lines, 1) if _line_key(text) not in given.lines}
            toks = tokens(c.source)
            keep = [t.line in own for t in toks]
            for i, h in enumerate(kgram_hashes(toks, k)):
                if h in given.hashes:  # a run of given code, perhaps renamed or reformatted
                    keep[i : i + k] = [False] * k
            c.toks = [t for t, kept in zip(toks, keep, strict=True) if kept]
            c.hashes = kgram_hashes(c.toks, k)
            self.fingerprints.update(c.hashes[i] for i in winnow(c.hashes, w))
        self.fingerprints -= given.hashes


def _line_key(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Given:
    """The given code as the report removes it: its lines (whitespace collapsed) and all its k-gram hashes."""

    lines: set[str]
    hashes: set[int]

    @classmethod
    def of(cls, sources: Iterable[str], k: int) -> Given:
        lines: set[str] = set()
        hashes: set[int] = set()
        for src in sources:
            lines.update(key for key in map(_line_key, src.splitlines()) if key)
            hashes.update(kgram_hashes(tokens(src), k))
        return cls(lines, hashes)


@dataclass
class Skipped:
    student: str
    notebook: str
    reason: str


def _cell_source(cell: Any) -> str:
    s = cell.get("source", "")
    if isinstance(s, list):
        return "".join(x for x in s if isinstance(x, str))
    return s if isinstance(s, str) else ""


def _nbgrader(cell: Any) -> dict:
    meta = cell.get("metadata", {})
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def _is_solution(cell: Any) -> bool:
    nbg = _nbgrader(cell)
    return bool(nbg.get("grade_id")) and bool(nbg.get("solution"))


_FENCE = re.compile(r"^```[ \t]*(?:python|py|ipython3?)?[ \t]*\n(.*?)^```", re.M | re.S)


def given_code(released: Iterable[Any]) -> list[str]:
    """What a student received as code: every code cell of the released notebooks, and their markdown's code blocks."""
    out = []
    for cell in released:
        src = _cell_source(cell)
        if cell.get("cell_type") == "code":
            out.append(src)
        elif cell.get("cell_type") == "markdown":
            out += [m.group(1) for m in _FENCE.finditer(src)]
    return out


def _read_json_notebook(path: Path) -> dict:
    import json

    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SimilarityError(f"cannot read the released notebook {path}: {exc}; run `make release`") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SimilarityError(f"the released notebook {path} has no cells; run `make release`")
    return nb


@dataclass
class Assignment:
    """What the report needs of assignment NAME: expected notebooks, answer ids, given code, references."""

    name: str
    notebooks: list[str]  # file names of the source notebooks, e.g. 03-convolutions.ipynb
    answer_ids: dict[str, set[str]]  # notebook file name -> grade ids of its solution cells
    restored_ids: dict[str, set[str]]  # notebook file name -> grade ids of tests and locked cells (the source's count)
    given: list[str]
    references: list[Document]
    notes: list[str] = field(default_factory=list)


def load_assignment(name: str, root: Path) -> Assignment:
    from course_tools.assignments import load_spec
    from course_tools.notebooks.convert import read_source

    course = CourseLayout(root)
    src_dir, rel_dir = course.solutions / name, course.assignments / name
    sources = sorted(src_dir.glob("*.py")) if src_dir.is_dir() else []
    if not sources:
        known = sorted(p.name for p in course.solutions.iterdir() if p.is_dir()) if course.solutions.is_dir() else []
        raise SimilarityError(
            f"no assignment {name!r}: {src_dir} has no .py notebook sources"
            + (f" (assignments: {', '.join(known)})" if known else "")
        )
    notebooks: list[str] = []
    answer_ids: dict[str, set[str]] = {}
    restored_ids: dict[str, set[str]] = {}
    given: list[str] = []
    solution_cells: list[Cell] = []
    for src in sources:
        nb_name = src.stem + ".ipynb"
        notebooks.append(nb_name)
        nb = read_source(src)
        answer_ids[nb_name] = {_nbgrader(c)["grade_id"] for c in nb.cells if _is_solution(c) and c.cell_type == "code"}
        restored_ids[nb_name] = {
            str(_nbgrader(c)["grade_id"]) for c in nb.cells if _nbgrader(c).get("grade_id") and not _is_solution(c)
        }
        prefix = f"{src.stem}:" if len(sources) > 1 else ""
        solution_cells += [
            Cell(prefix + _nbgrader(c)["grade_id"], _cell_source(c))
            for c in nb.cells
            if _is_solution(c) and c.cell_type == "code"
        ]
        released_path = rel_dir / nb_name
        if not released_path.is_file():
            raise SimilarityError(
                f"{released_path} does not exist: the given code is read from the release; "
                f"run `make release ASSIGNMENT={name}`"
            )
        released = _read_json_notebook(released_path)
        given += given_code(c for c in released["cells"] if isinstance(c, dict))
    spec = load_spec(name, root)
    notes: list[str] = []
    lib_cells = []
    for dotted in dict.fromkeys([*spec.answers.values(), *spec.reveals]):
        found = reference_source(dotted, root)
        if found is None:
            notes.append(f"the reference {dotted} (syllabus.toml) was not found in the course_lib sources")
        else:
            lib_cells.append(Cell(dotted, found))
    refs = [Document(SOLUTION_REF, solution_cells)]
    if lib_cells:
        refs.append(Document(COURSE_LIB_REF, lib_cells))
    elif not spec.answers:
        notes.append(f"syllabus.toml maps no course_lib answers for {name}: compared with the solution only")
    return Assignment(name, notebooks, answer_ids, restored_ids, given, refs, notes)


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def reference_source(dotted: str, root: Path, _depth: int = 0) -> str | None:
    """The source of ``course_lib.module.Name`` (read, not imported) with the module's private helpers it
    uses, transitively; follows one ``from .x import Name`` re-export."""
    module, _, obj = dotted.rpartition(".")
    path = _module_file(module, root)
    if path is None or _depth > 2:
        return None
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if obj not in defs:
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and any(a.name == obj and a.asname in (None, obj) for a in node.names):
                pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
                target = node.module or ""
                if node.level:
                    parts = pkg.split(".")
                    target = ".".join(parts[: len(parts) - node.level + 1] + ([target] if target else []))
                return reference_source(f"{target}.{obj}", root, _depth + 1)
        return None
    lines = text.splitlines(keepends=True)
    order: list[str] = []
    todo = [obj]
    while todo and len(order) < 20:
        cur = todo.pop(0)
        if cur in order:
            continue
        order.append(cur)
        used = {n.id for n in ast.walk(defs[cur]) if isinstance(n, ast.Name)}
        todo += sorted(u for u in used if u in defs and u.startswith("_") and u not in order)
    pieces = []
    for nm in order:
        node = defs[nm]
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        pieces.append("".join(lines[first - 1 : node.end_lineno]))
    return "\n\n".join(pieces)


def load_submissions(a: Assignment, root: Path) -> tuple[list[Document], list[Skipped], list[str], list[str]]:
    """Every collected submission's answer cells; the notebooks that could not be read; the refused folder
    names; notes (submissions cut to MAX_DOCUMENT_CHARS)."""
    from course_tools.grading.autograde import load_student_notebook, valid_student_id

    submitted = root / SUBMITTED_DIR
    folders = sorted(p for p in submitted.iterdir() if (p / a.name).is_dir()) if submitted.is_dir() else []
    if not folders:
        raise SimilarityError(
            f"no submissions of {a.name} collected in {submitted}: run "
            f"`make collect ASSIGNMENT={a.name} FROM=<folder with <student>/{a.notebooks[0]}>` first"
        )
    docs: list[Document] = []
    skipped: list[Skipped] = []
    refused: list[str] = []
    notes: list[str] = []
    for folder in folders:
        student = folder.name
        if not valid_student_id(student):
            refused.append(student)
            continue
        cells: list[Cell] = []
        found = False
        for nb_name in a.notebooks:
            path = folder / a.name / nb_name
            if not path.exists() and not path.is_symlink():
                continue
            found = True
            nb, problem = load_student_notebook(path)
            if problem is not None:
                skipped.append(Skipped(student, nb_name, problem.message))
                continue
            prefix = f"{Path(nb_name).stem}:" if len(a.notebooks) > 1 else ""
            answers, restored = a.answer_ids[nb_name], a.restored_ids[nb_name]
            replaced: set[str] = set()
            for i, cell in enumerate(nb.cells, 1):
                gid = _nbgrader(cell).get("grade_id")
                gid = gid if isinstance(gid, str) else None
                if gid in answers:  # run as code even when the student made it a markdown cell
                    cells.append(Cell(prefix + str(gid), _cell_source(cell)))
                elif gid in restored and gid not in replaced:  # the grader runs the source's version instead
                    replaced.add(gid)
                elif cell.get("cell_type") == "code":  # run as the student wrote it (a duplicate test cell too)
                    cells.append(Cell(f"{prefix}cell {i}", _cell_source(cell)))
        if not found:
            skipped.append(Skipped(student, ", ".join(a.notebooks), "no notebook submitted"))
        elif cells or not any(s.student == student for s in skipped):
            total = 0
            kept: list[Cell] = []
            for c in cells:
                total += min(len(c.source), MAX_CELL_CHARS)
                if total > MAX_DOCUMENT_CHARS:
                    notes.append(
                        f"{student}: only the first {MAX_DOCUMENT_CHARS:,} characters of answer code were compared "
                        f"({len(cells) - len(kept)} of {len(cells)} cells left out)"
                    )
                    break
                kept.append(c)
            docs.append(Document(student, kept))
    return docs, skipped, refused, notes


# =============================================================================================
# pairs and regions


@dataclass
class Pair:
    a: Document
    b: Document
    shared: int
    similarity: float
    jaccard: float
    regions: list[tuple[Region, Region]] = field(default_factory=list, repr=False)

    @property
    def kind(self) -> str:
        return "reference" if self.b.is_reference or self.a.is_reference else "students"

    def cells(self) -> str:
        return "; ".join(sorted({f"{ra.cell} ~ {rb.cell}" for ra, rb in self.regions}))


@dataclass
class Region:
    cell: str
    first: int
    last: int
    hashes: set[int] = field(repr=False)
    colour: int = 0


def similarity(fa: set[int], fb: set[int]) -> tuple[int, float, float]:
    """(shared fingerprints, shared / max(min(|fa|, |fb|), MIN_FINGERPRINTS), Jaccard)."""
    shared = len(fa & fb)
    if not shared:
        return 0, 0.0, 0.0
    return shared, shared / max(min(len(fa), len(fb)), MIN_FINGERPRINTS), shared / (len(fa) + len(fb) - shared)


def _marked_regions(doc: Document, common: set[int], k: int) -> list[Region]:
    regions = []
    for c in doc.cells:
        lines: dict[int, set[int]] = {}
        for i, h in enumerate(c.hashes):
            if h in common:
                lo, hi = c.span(i, k)
                for ln in range(lo, hi + 1):
                    lines.setdefault(ln, set()).add(h)
        run: Region | None = None
        for ln in sorted(lines):
            if run is not None and ln == run.last + 1:
                run.last = ln
                run.hashes |= lines[ln]
            else:
                run = Region(c.label, ln, ln, set(lines[ln]))
                regions.append(run)
    return regions


def match_regions(a: Document, b: Document, k: int, given: Given) -> list[tuple[Region, Region]]:
    """The matching regions of a pair, from every k-gram both share (not only fingerprints), given code excluded."""
    common = ({h for c in a.cells for h in c.hashes} & {h for c in b.cells for h in c.hashes}) - given.hashes
    ra, rb = _marked_regions(a, common, k), _marked_regions(b, common, k)
    pairs: list[tuple[Region, Region]] = []
    coloured: dict[int, int] = {}  # id of a region of b -> its colour (several regions of a may match one of b)
    for x in ra:
        best = max(rb, key=lambda y: len(x.hashes & y.hashes), default=None)
        if best is not None and x.hashes & best.hashes:
            colour = coloured.setdefault(id(best), len(coloured) % _COLOURS)
            x.colour = best.colour = colour
            pairs.append((x, best))
    return pairs


@dataclass
class Report:
    assignment: str
    k: int
    window: int
    threshold: float
    top: int
    documents: list[Document]
    references: list[Document]
    student_pairs: list[Pair]
    reference_pairs: list[Pair]
    skipped: list[Skipped]
    refused: list[str]
    notes: list[str]
    given_lines: set[str] = field(default_factory=set, repr=False)
    seconds: float = 0.0
    html_path: Path | None = None
    csv_path: Path | None = None

    def shown(self, pairs: list[Pair]) -> list[Pair]:
        """The top pairs and the flagged ones (at or above the threshold), at most MAX_SHOWN; never a pair sharing nothing."""
        return [p for i, p in enumerate(pairs) if p.shared and (i < self.top or p.similarity >= self.threshold)][
            :MAX_SHOWN
        ]

    def flagged(self, pairs: list[Pair]) -> int:
        return sum(p.similarity >= self.threshold for p in pairs)


def compare(
    docs: list[Document], refs: list[Document], given: Given, *, k: int, window: int
) -> tuple[list[Pair], list[Pair]]:
    """All student pairs and all student-reference pairs, most similar first."""
    for d in [*docs, *refs]:
        d.prepare(k, window, given)
    student_pairs = [
        Pair(x, y, *similarity(x.fingerprints, y.fingerprints)) for x, y in itertools.combinations(docs, 2)
    ]
    reference_pairs = [Pair(x, r, *similarity(x.fingerprints, r.fingerprints)) for x in docs for r in refs]
    order = lambda p: (-p.similarity, -p.shared, p.a.name, p.b.name)  # noqa: E731
    return sorted(student_pairs, key=order), sorted(reference_pairs, key=order)


def build_report(
    name: str,
    root: Path | None = None,
    *,
    top: int = DEFAULT_TOP,
    threshold: float = DEFAULT_THRESHOLD,
    k: int = DEFAULT_K,
    window: int = DEFAULT_WINDOW,
) -> Report:
    """Compare every collected submission of ``name`` (nothing is written)."""
    if k < 2 or window < 1:
        raise SimilarityError(f"k must be at least 2 and the window at least 1; got k={k}, window={window}")
    if top < 0 or not 0.0 <= threshold <= 1.0:
        raise SimilarityError(f"--top must be >= 0 and --threshold in [0, 1]; got {top}, {threshold}")
    t0 = time.monotonic()
    root = Path(root or REPO_ROOT).resolve()
    a = load_assignment(name, root)
    docs, skipped, refused, cut = load_submissions(a, root)
    given = Given.of(a.given, k)
    student_pairs, reference_pairs = compare(docs, a.references, given, k=k, window=window)
    rep = Report(
        name,
        k,
        window,
        threshold,
        top,
        docs,
        a.references,
        student_pairs,
        reference_pairs,
        skipped,
        refused,
        [*a.notes, *cut],
        given.lines,
    )
    for p in rep.shown(student_pairs) + rep.shown(reference_pairs):
        p.regions = match_regions(p.a, p.b, k, given)
    short = [d.name for d in docs if len(d.fingerprints) < MIN_FINGERPRINTS]
    if short:
        rep.notes.append(
            f"{len(short)} submissions have fewer than {MIN_FINGERPRINTS} fingerprints of their own "
            f"(little code beyond the given code): {', '.join(short[:20])}{' ...' if len(short) > 20 else ''}"
        )
    rep.seconds = time.monotonic() - t0
    return rep


# =============================================================================================
# output: CSV, HTML, text


def _display(name: str) -> str:
    return {SOLUTION_REF: "reference: solution", COURSE_LIB_REF: "reference: course_lib"}.get(name, name)


def write_csv(rep: Report, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "kind",
                "a",
                "b",
                "similarity",
                "jaccard",
                "shared_fingerprints",
                "fingerprints_a",
                "fingerprints_b",
                "flagged",
                "matching_cells",
            ]
        )
        for p in rep.student_pairs + rep.reference_pairs:
            out.writerow(
                [
                    p.kind,
                    p.a.name,
                    _display(p.b.name),
                    f"{p.similarity:.3f}",
                    f"{p.jaccard:.3f}",
                    p.shared,
                    len(p.a.fingerprints),
                    len(p.b.fingerprints),
                    int(p.similarity >= rep.threshold),
                    p.cells(),
                ]
            )
    tmp.replace(path)
    return path


_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; vertical-align: top; text-align: left; }
tr.flag td { background: #fde2e2; }
.side { width: 100%; table-layout: fixed; }
.side > tbody > tr > td { width: 50%; }
pre { margin: 0; font-size: 12px; white-space: pre-wrap; word-break: break-all; }
.ln { color: #999; user-select: none; }
.g { color: #999; }
.cell { font-weight: bold; margin-top: 0.6em; }
.m0 { background: #ffd6a5; } .m1 { background: #caffbf; } .m2 { background: #9bf6ff; } .m3 { background: #bdb2ff; }
.m4 { background: #ffc6ff; } .m5 { background: #fdffb6; } .m6 { background: #a0c4ff; } .m7 { background: #ffadad; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _side(doc: Document, regions: list[Region], given: set[str]) -> str:
    by_cell: dict[str, dict[int, int]] = {}
    for r in regions:
        for ln in range(r.first, r.last + 1):
            by_cell.setdefault(r.cell, {})[ln] = r.colour
    parts = []
    for c in doc.cells:
        marks = by_cell.get(c.label)
        if not marks:
            continue
        lines = c.source[:MAX_CELL_CHARS].splitlines() or [""]
        body = []
        for n, text in enumerate(lines, 1):
            row = f'<span class="ln">{n:4d} </span>{_esc(text)}'
            if n in marks:
                row = f'<span class="m{marks[n]}">{row}</span>'
            elif _line_key(text) in given:
                row = f'<span class="g">{row}</span>'
            body.append(row)
        parts.append(f'<div class="cell">{_esc(c.label)}</div><pre>' + "\n".join(body) + "</pre>")
    return "".join(parts) or "<p>(no matching lines)</p>"


def _pair_rows(rep: Report, pairs: list[Pair], anchor: str) -> str:
    rows = []
    for i, p in enumerate(pairs, 1):
        flag = p.similarity >= rep.threshold
        rows.append(
            f'<tr class="{"flag" if flag else ""}"><td><a href="#{anchor}{i}">{i}</a></td>'
            f"<td>{_esc(_display(p.a.name))}</td><td>{_esc(_display(p.b.name))}</td>"
            f"<td>{p.similarity:.0%}</td><td>{p.jaccard:.0%}</td>"
            f"<td>{p.shared} of {len(p.a.fingerprints)} / {len(p.b.fingerprints)}</td>"
            f"<td>{'flagged' if flag else ''}</td><td>{_esc(p.cells())}</td></tr>"
        )
    head = (
        "<tr><th>#</th><th>A</th><th>B</th><th>similarity</th><th>Jaccard</th><th>shared fingerprints</th>"
        "<th></th><th>matching cells</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>No pair shares code beyond the given code.</p>"


def _pair_details(pairs: list[Pair], anchor: str, given: set[str]) -> str:
    out = []
    for i, p in enumerate(pairs, 1):
        listing = "".join(
            f'<tr><td class="m{ra.colour}">{_esc(ra.cell)} lines {ra.first}–{ra.last}</td>'
            f'<td class="m{rb.colour}">{_esc(rb.cell)} lines {rb.first}–{rb.last}</td></tr>'
            for ra, rb in p.regions
        )
        out.append(
            f'<h3 id="{anchor}{i}">{i}. {_esc(_display(p.a.name))} ~ {_esc(_display(p.b.name))}: {p.similarity:.0%}</h3>'
            f"<table><tr><th>{_esc(_display(p.a.name))}</th><th>{_esc(_display(p.b.name))}</th></tr>{listing}</table>"
            f'<table class="side"><tr><td>{_side(p.a, [ra for ra, _ in p.regions], given)}</td>'
            f"<td>{_side(p.b, [rb for _, rb in p.regions], given)}</td></tr></table>"
        )
    return "".join(out)


def _overflow_text(rep: Report, pairs: list[Pair]) -> str | None:
    n = rep.flagged(pairs)
    if n <= len(rep.shown(pairs)):
        return None
    return (
        f"{n} pairs are at or above {rep.threshold:.0%}; the {MAX_SHOWN} most similar are shown here, all are in "
        f"{CSV_FILE} (a higher --threshold narrows the list)"
    )


def _overflow(rep: Report, pairs: list[Pair]) -> str:
    text = _overflow_text(rep, pairs)
    return f"<p><strong>{_esc(text)}</strong></p>" if text else ""


def render_html(rep: Report) -> str:
    students, refs = rep.shown(rep.student_pairs), rep.shown(rep.reference_pairs)
    skipped = "".join(
        f"<tr><td>{_esc(s.student)}</td><td>{_esc(s.notebook)}</td><td>{_esc(s.reason)}</td></tr>" for s in rep.skipped
    )
    skipped += "".join(
        f"<tr><td>{_esc(s)}</td><td></td><td>not a valid student id (refused, as by autograde)</td></tr>"
        for s in rep.refused
    )
    notes = "".join(f"<li>{_esc(n)}</li>" for n in rep.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Similarity: {_esc(rep.assignment)}</title><style>{_CSS}</style></head><body>
<h1>Similarity of the answer cells: {_esc(rep.assignment)}</h1>
<p>{len(rep.documents)} submissions compared with each other and with the references (the instructor's
solution, the course_lib implementations). Token winnowing as in MOSS: identifiers, numbers and strings
normalised, k = {rep.k} tokens, window {rep.window}; the given code (the released notebook) never counts.
Similarity = shared fingerprints / those of the smaller side (at least {MIN_FINGERPRINTS}); pairs at or above
{rep.threshold:.0%} are flagged. This report changes no score: a high similarity is a lead for a human to read.
Every pair is in <code>{_esc(CSV_FILE)}</code>.</p>
{f"<ul>{notes}</ul>" if notes else ""}
<h2>Between submissions</h2>{_overflow(rep, rep.student_pairs)}{_pair_rows(rep, students, "s")}
<h2>Against the references</h2>{_overflow(rep, rep.reference_pairs)}{_pair_rows(rep, refs, "r")}
<h2>Not compared</h2>{f"<table><tr><th>student</th><th>notebook</th><th>why</th></tr>{skipped}</table>" if skipped else "<p>None.</p>"}
<h2>Matching regions: between submissions</h2>
<p>Lines of the same colour match; grey lines are given code (in the released notebook) and never count.</p>
{_pair_details(students, "s", rep.given_lines)}
<h2>Matching regions: against the references</h2>{_pair_details(refs, "r", rep.given_lines)}
</body></html>
"""


def describe(rep: Report) -> str:
    lines = [
        f"similarity of {rep.assignment}: {len(rep.documents)} submissions, "
        f"{len(rep.student_pairs)} pairs, {len(rep.reference_pairs)} comparisons with the references "
        f"in {rep.seconds:.1f} s (k={rep.k}, window {rep.window})"
    ]
    for title, pairs in (("between submissions", rep.student_pairs), ("against the references", rep.reference_pairs)):
        shown = rep.shown(pairs)
        lines.append(
            f"top pairs {title} ({rep.flagged(pairs)} flagged at {rep.threshold:.0%} or more):"
            if shown
            else f"no pair {title} shares code beyond the given code"
        )
        lines += [
            f"  {p.similarity:4.0%}  {_display(p.a.name)} ~ {_display(p.b.name)}  "
            f"({p.shared} shared of {len(p.a.fingerprints)}/{len(p.b.fingerprints)} fingerprints)"
            f"{'  FLAGGED' if p.similarity >= rep.threshold else ''}"
            for p in shown[: max(rep.top, 1)]
        ]
        if len(shown) > rep.top:
            lines.append(f"  ... {len(shown) - rep.top} more flagged pairs in the HTML report")
        overflow = _overflow_text(rep, pairs)
        if overflow:
            lines.append(f"  {overflow}")
    lines += [f"  not compared: {s.student} {s.notebook}: {s.reason}" for s in rep.skipped]
    lines += [f"  refused the folder {s!r}: not a valid student id" for s in rep.refused]
    lines += [f"  note: {n}" for n in rep.notes]
    if rep.html_path:
        lines.append(f"wrote {rep.html_path} and {rep.csv_path}")
    return "\n".join(lines)


def similarity_report(name: str, root: Path | None = None, **kwargs) -> Report:
    """Build the report of ``name`` and write ``grading/reports/NAME/_similarity.{html,csv}``."""
    root = Path(root or REPO_ROOT).resolve()
    rep = build_report(name, root, **kwargs)
    out = root / REPORTS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    rep.csv_path = write_csv(rep, out / CSV_FILE)
    tmp = out / (HTML_FILE + ".tmp")
    tmp.write_text(render_html(rep), encoding="utf-8")
    rep.html_path = tmp.replace(out / HTML_FILE)
    return rep


def main(
    argv: list[str] | None = None, prog: str = "python -m course_tools similarity", root: Path | None = None
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="pairwise similarity of the answer cells of an assignment's collected submissions, and "
        "against the solution and course_lib (MOSS-style winnowing; the given code does not count; changes no score)",
    )
    parser.add_argument("name", help="the assignment, e.g. 03-convolutions")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"pairs shown per table (default {DEFAULT_TOP})")
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"flag pairs at or above this similarity, 0..1 (default {DEFAULT_THRESHOLD}); "
        "flagged pairs are always shown",
    )
    parser.add_argument("--k", type=int, default=DEFAULT_K, help=f"tokens per k-gram (default {DEFAULT_K})")
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help=f"winnowing window in k-grams (default {DEFAULT_WINDOW})"
    )
    args = parser.parse_args(argv)
    try:
        rep = similarity_report(args.name, root, top=args.top, threshold=args.threshold, k=args.k, window=args.window)
    except SimilarityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
