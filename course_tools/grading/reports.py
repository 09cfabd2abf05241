"""Reports: typed objects for a cell, a notebook, a submission and a run, with the statuses as
enums, and their renderings — text, HTML (one :func:`walk` over a report feeds both) and the rows of
``grades.csv`` — plus the run's summary and grade-distribution plot.

A submission's report is stored as JSON (``grading/reports/NAME/<student>.json``), the
``dataclasses.asdict`` of these objects; :meth:`SubmissionReport.from_dict` reads it back. The
enums are ``StrEnum``\\ s, so the JSON and the rendered strings are the plain values.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar


class CellStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"
    MANUAL = "manual"  # needs manual grading


class NotebookStatus(StrEnum):
    GRADED = "graded"
    NOT_GRADED = "not-graded"


class SubmissionStatus(StrEnum):
    GRADED = "graded"
    PARTLY_GRADED = "partly-graded"  # some of its notebooks could not be graded
    NOT_GRADED = "not-graded"
    GRADER_ERROR = "grader-error"  # the grader failed: never final, graded again next run


@dataclass
class CellReport:
    grade_id: str
    points: float | None  # None: needs manual grading
    max_points: float
    status: CellStatus
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
    status: NotebookStatus
    reason: str = ""
    score: float = 0.0
    max_score: float = 0.0
    cells: list[CellReport] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # every rule violation found (static and dynamic)
    exchanges: int = 0  # requests the evaluator sent to the kernel's agent
    cached_reads: int = 0  # attribute reads answered without a request (no student code ran since)
    kernel_starts: int = 0
    startup_seconds: float = 0.0  # kernel start + grader prelude, all starts
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class SubmissionReport:
    """The typed view of one stored report (what the renderers and ``grades.csv`` read)."""

    student: str
    assignment: str
    status: SubmissionStatus
    score: float = 0.0
    max_score: float = 0.0
    isolation: str = ""
    reason: str = ""
    notebooks: list[NotebookReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubmissionReport:
        nbs = []
        for n in d.get("notebooks", []):
            nb = _known(NotebookReport, n)
            nb.status = NotebookStatus(nb.status)
            nb.cells = [_known(CellReport, c) for c in n.get("cells", [])]
            for c in nb.cells:
                c.status = CellStatus(c.status)
            nbs.append(nb)
        rep = _known(cls, {**d, "notebooks": nbs})
        rep.status = SubmissionStatus(rep.status)
        return rep


T = TypeVar("T")


def _known(kind: type[T], d: dict[str, Any]) -> T:
    """``kind(**d)`` with the keys ``kind`` has (reports carry more: timings, hashes, tracebacks)."""
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    return kind(**{k: v for k, v in d.items() if k in names})


def as_report(rep: SubmissionReport | dict[str, Any]) -> SubmissionReport:
    return rep if isinstance(rep, SubmissionReport) else SubmissionReport.from_dict(rep)


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


# ---------------------------------------------------------------------------------------------
# one walk over a report, two renderings

#: the lists of a notebook report shown under a title, in this order
SECTIONS = (
    ("changes to the submission", "changes"),
    ("events", "events"),
    ("restored before tests (tampering)", "restored"),
)
RULES_TITLE = "the assignment's rules (affected test cells score 0 unless overridden)"
FLAGS_TITLE = "static scan flags (for review; scores unaffected)"


class Renderer(Protocol):
    def header(self, rep: SubmissionReport) -> None: ...
    def notebook(self, n: NotebookReport) -> None: ...
    def cell(self, c: CellReport) -> None: ...
    def end_cells(self, n: NotebookReport) -> None: ...
    def section(self, title: str, items: list[str]) -> None: ...
    def flags(self, title: str, flags: list[dict[str, Any]]) -> None: ...
    def warning(self, text: str) -> None: ...
    def result(self) -> str: ...


def walk(rep: SubmissionReport, out: Renderer) -> str:
    """Feed ``rep`` to a renderer, in the order every rendering shows it."""
    out.header(rep)
    for n in rep.notebooks:
        out.notebook(n)
        for c in n.cells:
            out.cell(c)
        out.end_cells(n)
        for title, key in SECTIONS:
            if getattr(n, key):
                out.section(title, getattr(n, key))
        if n.rules:
            out.section(RULES_TITLE, n.rules)
        if n.flags:
            out.flags(FLAGS_TITLE, n.flags)
    for w in rep.warnings:
        out.warning(w)
    return out.result()


def _points(c: CellReport) -> str:
    return "manual" if c.points is None else f"{c.points:g}/{c.max_points:g}"


class TextRenderer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def header(self, rep: SubmissionReport) -> None:
        self.lines += [
            f"{rep.student} · {rep.assignment} · {rep.score:g}/{rep.max_score:g} ({rep.status})",
            f"isolation: {rep.isolation}",
            "",
        ]

    def notebook(self, n: NotebookReport) -> None:
        self.lines.append(
            f"{n.notebook}: {n.score:g}/{n.max_score:g}  {n.status}"
            + (f" — {n.reason}" if n.reason else "")
            + f"  ({n.seconds:.1f} s, peak {n.peak_rss_mb:.0f} MB, {n.kernel_starts} kernel starts)"
        )

    def cell(self, c: CellReport) -> None:
        passed = c.status == CellStatus.PASSED
        self.lines.append(
            f"  {c.grade_id:<24} {_points(c):<8} {c.status:<8} {c.seconds:6.2f} s  "
            f"{c.peak_rss_mb:6.0f} MB  {c.reason if not passed else ''}"
        )
        if c.message and not passed:
            self.lines.append(f"      {c.message[:400]}")
        if c.override:
            self.lines.append(
                f"      rules broken but allowed by the instructor ({c.override}): " + "; ".join(c.rules)[:400]
            )

    def end_cells(self, n: NotebookReport) -> None:
        pass

    def section(self, title: str, items: list[str]) -> None:
        self.lines.append(f"  {title}:")
        self.lines += [f"    - {x}" for x in items]

    def flags(self, title: str, flags: list[dict[str, Any]]) -> None:
        self.section(title, [f"[{f['kind']}] cell {f['cell']} line {f['line']}: {f['what']}" for f in flags])

    def warning(self, text: str) -> None:
        self.lines.append(f"warning: {text}")

    def result(self) -> str:
        return "\n".join(self.lines) + "\n"


class HtmlRenderer:
    STYLE = (
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}.ok{background:#eef8ee}"
        ".bad{background:#fdeeee}code{white-space:pre-wrap}</style>"
    )

    def __init__(self) -> None:
        self.head = ""
        self.rows: list[str] = []

    def header(self, rep: SubmissionReport) -> None:
        e = html.escape
        self.head = (
            f"<!doctype html><meta charset=utf-8><title>{e(rep.student)} · {e(rep.assignment)}</title>"
            + self.STYLE
            + f"<h1>{e(rep.student)} · {e(rep.assignment)}: {rep.score:g}/{rep.max_score:g}</h1>"
            f"<p>isolation: {e(rep.isolation)}</p>"
        )

    def notebook(self, n: NotebookReport) -> None:
        e = html.escape
        self.rows.append(f"<h2>{e(n.notebook)}: {n.score:g}/{n.max_score:g} ({e(n.status)})</h2>")
        if n.reason:
            self.rows.append(f"<p class=bad>{e(n.reason)}</p>")
        self.rows.append(
            f"<p>{n.seconds:.1f} s, peak memory {n.peak_rss_mb:.0f} MB, {n.kernel_starts} kernel start(s)</p>"
        )
        self.rows.append(
            "<table><tr><th>test cell</th><th>points</th><th>status</th><th>reason / message</th>"
            "<th>s</th><th>MB</th></tr>"
        )

    def cell(self, c: CellReport) -> None:
        e = html.escape
        passed = c.status == CellStatus.PASSED
        msg = "" if passed else f"{e(c.reason)}<br><code>{e(c.message[:600])}</code>"
        if c.override:
            msg += f"<br>rules broken, allowed by the instructor: {e(c.override)}"
        self.rows.append(
            f"<tr class={'ok' if passed else 'bad'}><td>{e(c.grade_id)}</td>"
            f"<td>{_points(c)}</td><td>{e(c.status)}</td><td>{msg}</td>"
            f"<td>{c.seconds:.2f}</td><td>{c.peak_rss_mb:.0f}</td></tr>"
        )

    def end_cells(self, n: NotebookReport) -> None:
        self.rows.append("</table>")

    def _title(self, title: str) -> str:
        return title[:1].upper() + title[1:]  # a constant of this module (not escaped)

    def section(self, title: str, items: list[str]) -> None:
        self.rows.append(
            f"<h3>{self._title(title)}</h3><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"
        )

    def flags(self, title: str, flags: list[dict[str, Any]]) -> None:
        e = html.escape
        self.rows.append(
            f"<h3>{self._title(title)}</h3><ul>"
            + "".join(f"<li>[{e(f['kind'])}] cell {e(f['cell'])} line {f['line']}: {e(f['what'])}</li>" for f in flags)
            + "</ul>"
        )

    def warning(self, text: str) -> None:
        pass  # warnings are the instructor's (the text report)

    def result(self) -> str:
        return self.head + "\n".join(self.rows)


def render_text(rep: SubmissionReport | dict[str, Any]) -> str:
    """The instructor's text report of one submission."""
    return walk(as_report(rep), TextRenderer())


def render_html(rep: SubmissionReport | dict[str, Any]) -> str:
    """The HTML report of one submission."""
    return walk(as_report(rep), HtmlRenderer())


def one_line(rep: SubmissionReport | dict[str, Any]) -> str:
    """What went wrong, in one line of the run's log and summary."""
    r = as_report(rep)
    bits: list[str] = []
    for n in r.notebooks:
        if n.status != NotebookStatus.GRADED:
            bits.append(n.reason[:80])
        bits += n.events[:2]
        if n.flags:
            bits.append(f"{len(n.flags)} flags")
    return "; ".join(bits)[:160]


def render_summary(reports: list[dict[str, Any]], summary: RunSummary, isolation: str) -> str:
    lines = [f"assignment {summary.assignment}: {len(reports)} submissions", f"isolation: {isolation}", ""]
    for r in sorted((as_report(r) for r in reports), key=lambda r: r.student):
        lines.append(f"{r.student:<24} {r.score:6g}/{r.max_score:<6g} {r.status:<13} {one_line(r)}")
    return "\n".join(lines) + "\n"


def grades_table(reports: list[SubmissionReport]) -> tuple[list[str], list[list[Any]]]:
    """``grades.csv``: a header (student, score, max_score, status, one column per graded cell as
    ``notebook:grade_id``, reason) and one row per student, sorted."""
    cells: list[str] = []
    for rep in reports:
        for n in rep.notebooks:
            for c in n.cells:
                key = f"{Path(n.notebook).stem}:{c.grade_id}"
                if key not in cells:
                    cells.append(key)
    rows = []
    for rep in sorted(reports, key=lambda r: r.student):
        scores = {f"{Path(n.notebook).stem}:{c.grade_id}": c.points for n in rep.notebooks for c in n.cells}
        reasons = "; ".join(n.reason for n in rep.notebooks if n.status != NotebookStatus.GRADED)
        rows.append(
            [
                rep.student,
                rep.score,
                rep.max_score,
                str(rep.status),
                *["" if scores.get(k) is None else scores.get(k) for k in cells],
                reasons,
            ]
        )
    return ["student", "score", "max_score", "status", *cells, "reason"], rows


def plot_distribution(reports: list[dict[str, Any]], path: Path, name: str) -> Path | None:
    """A histogram of the scores (``distribution.png``); None without reports."""
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
