"""The course website: Jupyter Book 1 pages from the executed notebooks, built and checked offline.

    python -m course_tools site build [--executed build/executed] [--out build/site] [--strict]
    python -m course_tools site check [--out build/site]

``build`` assembles a staging folder (``build/site-src``) from

- ``book/`` (``_config.yml``, the landing page ``intro.md``, the Russian ↔ English ``glossary.md``),
- the executed lecture notebooks ``<executed>/lectures/NN-topic/NN-topic.ipynb`` (written by
  ``python -m course_tools execute`` or by ``make test``'s nbval run; nothing is
  executed here),
- the released assignments ``assignments/NN-topic/*.ipynb`` (student version, with a download
  link to the ``.ipynb``),
- a syllabus page generated from ``syllabus.toml`` (:func:`course_tools.syllabus.table`),
- ``benchmarks/RESULTS.md``,

writes the table of contents, runs ``jupyter-book build`` with notebook execution off and
warnings as errors, copies the HTML to ``--out`` and post-checks it (:func:`check_site`): no page
references an external script, stylesheet, font or image; every internal link and anchor
resolves; no assignment page (nor its download) contains a line of a solution or a hidden test.
Exit status 0 when the site was built and every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.gpu import SKIP_MESSAGE, is_gpu_cell
from course_tools import syllabus
from course_tools.layout import ASSIGNMENTS, BENCHMARKS, BOOK, LAYOUT, LECTURES, REPO_ROOT
from course_tools.site import api
from course_tools.site.checks import check_site
from course_tools.site.pages import Page, SiteError

BOOK_DIR = LAYOUT.book
EXECUTED_DIR = LAYOUT.executed
SITE_DIR = LAYOUT.site
STAGING_DIR = LAYOUT.site_staging  # the staging folder of SITE_DIR: always <out>-src beside <out>

SYLLABUS_PLACEHOLDER = "% generated: syllabus table"
LECTURE_ROLE = re.compile(r"\{lecture\}`(\d\d)`")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@dataclass
class SiteReport:
    out: Path
    staging: Path
    pages: list[Page] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # lectures without an executed notebook
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lecture_pages(self) -> list[Page]:
        return [p for p in self.pages if p.kind == "lecture"]

    def assignment_pages(self) -> list[Page]:
        return [p for p in self.pages if p.kind == "assignment"]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds it (keeps mtimes, so Sphinx rebuilds less); True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


# --------------------------------------------------------------------------------------------
# notebook transformations


def _source_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _widget_text(model_id: str, state: dict) -> str | None:
    """A text rendering of an ipywidgets tqdm bar (HBox of HTML, FloatProgress, HTML) from its saved state."""
    model = state.get(model_id, {}).get("state", {})
    children = model.get("children") or []
    parts = []
    for child in children:
        child_state = state.get(str(child).removeprefix("IPY_MODEL_"), {})
        name, cstate = child_state.get("model_name", ""), child_state.get("state", {})
        if name == "HTMLModel":
            parts.append(html.unescape(re.sub(r"<[^>]+>", "", str(cstate.get("value", "")))))
        elif name in {"FloatProgressModel", "IntProgressModel"}:
            hi, value = float(cstate.get("max") or 0), float(cstate.get("value") or 0)
            filled = int(round(10 * value / hi)) if hi > 0 else 0
            parts.append("|" + "█" * min(filled, 10) + " " * (10 - min(filled, 10)) + "|")
    text = "".join(parts).replace("\u2007", " ").replace("\xa0", " ").strip()
    return text or None


def flatten_widgets(nb) -> int:
    """Replace ipywidgets outputs (tqdm bars) by text, so pages need no widget JavaScript from a CDN.

    The text comes from the widget state the executor saved (papermill saves the bar's final
    state). Without a saved state (nbval keeps none) the output is dropped: its ``text/plain`` is
    the bar as it was created ("0%"), which would mislead. Returns the number of outputs changed.
    """
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}) or {}
    changed = 0
    for cell in nb.get("cells", []):
        outputs = []
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if WIDGET_VIEW not in data:
                outputs.append(out)
                continue
            changed += 1
            text = _widget_text(str(data[WIDGET_VIEW].get("model_id", "")), state)
            if text is not None:
                outputs.append({**out, "data": {"text/plain": text}})
        if "outputs" in cell:
            cell["outputs"] = outputs
    nb.get("metadata", {}).pop("widgets", None)
    return changed


def notebook_mode(nb) -> str:
    """``"smoke"`` or ``"full"``: papermill records ``SMOKE``; nbval (``make test``) always runs smoke mode."""
    course = nb.get("metadata", {}).get("course", {}) or {}
    if course.get("mode") in {"smoke", "full"}:
        return course["mode"]
    params = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {}
    if "SMOKE" in params:
        return "smoke" if params["SMOKE"] else "full"
    return "smoke"


def _markdown_cell(text: str, cell_id: str) -> dict:
    """A Markdown cell with a fixed id (staged notebooks stay byte-identical between builds)."""
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _title_index(nb) -> int:
    """Index after which a banner goes: after the first cell when it is a Markdown title, else 0."""
    cells = nb.get("cells", [])
    if cells and cells[0].get("cell_type") == "markdown" and _source_text(cells[0]).lstrip().startswith("# "):
        return 1
    return 0


GPU_NOTE = (
    ":::{admonition} Needs a GPU\n:class: warning\n"
    "The next cell is tagged `gpu`: it needs a CUDA GPU, and none was present when this page was "
    "built, so it was skipped. Nothing later on the page depends on it; run the notebook on a "
    "machine with a GPU to see its output.\n:::"
)


#: a lecture's link to its assignment in the repository, and where that page is on the site
REPO_ASSIGNMENT_LINK = re.compile(r"\]\(\.\./\.\./assignments/([^/)]+)/[^)]*\.ipynb\)")


def run_note(nb, mode: str) -> str:
    """How the page was run: mode, date, seconds, device (``metadata.course`` written by the executors)."""
    meta = nb.get("metadata", {}).get("course", {}) or {}
    parts = [f"**{mode}** mode"]
    if meta.get("date"):
        parts.append(f"executed {meta['date']}")
    if meta.get("seconds") is not None:
        parts.append(f"in {float(meta['seconds']):.0f} s")
    if meta.get("device"):
        parts.append(f"on {meta['device']}")
    if meta.get("executor"):
        parts.append(f"by {meta['executor']}")
    note = ", ".join(parts) + "."
    checked, failed = int(meta.get("claims_checked", 0) or 0), int(meta.get("claims_failed", 0) or 0)
    if checked or failed:
        note += f" Claims checked: {checked} held"
        note += f", **{failed} did not hold** (marked ✘ where they stand)." if failed else "."
    return note


def prepare_lecture(nb, mode: str | None = None, api_modules: set[str] | None = None):
    """A copy of an executed lecture notebook ready for the site.

    Drops papermill's injected-parameters cell and the ``parameters`` cell (``SMOKE = False`` would
    contradict the note), notes how the page was run under the title (mode, date, seconds, device)
    with a warning banner on smoke builds, marks skipped ``gpu`` cells with a visible "needs a
    GPU" admonition, points links to the repository's assignments at their site pages, flattens
    widget outputs to text and removes executor metadata. With ``api_modules``, mentions of those
    ``course_lib`` modules link to their API reference pages.
    """
    nb = copy.deepcopy(nb)
    mode = mode or notebook_mode(nb)
    how = run_note(nb, mode)
    flatten_widgets(nb)
    nb.get("metadata", {}).pop("papermill", None)
    cells = []
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", []) or []
        if "injected-parameters" in tags or "parameters" in tags:
            continue
        if cell.get("cell_type") == "markdown":
            cell["source"] = REPO_ASSIGNMENT_LINK.sub(r"](../assignments/\1.ipynb)", _source_text(cell))
            if api_modules:
                cell["source"] = api.link_modules(cell["source"], api_modules)
        if cell.get("cell_type") == "code" and is_gpu_cell(cell):
            texts = ["".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
            if any(SKIP_MESSAGE.strip() in t for t in texts):
                cells.append(_markdown_cell(GPU_NOTE, f"site-gpu-note-{len(cells)}"))
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    if mode == "smoke":
        banner = (
            ":::{admonition} Smoke build: numbers are not representative\n:class: warning\nThis page was executed in **smoke mode**: "
            "small data and few epochs, so that it runs in seconds on a CPU; its numbers and plots are "
            "illustrations, not the lecture's results, and its claims are shown as *not checked at smoke "
            f"size*. `make course FULL=1` builds the site at full size.\n\nRun: {how}\n:::"
        )
    else:
        banner = (":::{note}\nThis page was executed at **full size** (`make course FULL=1`); every claim "
                  f"on it was checked.\n\nRun: {how}\n:::")
    cells.insert(_title_index({"cells": cells}), _markdown_cell(banner, "site-mode-note"))
    nb["cells"] = cells
    return nb


def prepare_assignment(nb, download: str):
    """A copy of a released (student) assignment with a download note under its title.

    ``download`` is the path of the ``.ipynb`` relative to the page (it becomes a ``{download}``
    link, so Sphinx copies the file into the site).
    """
    nb = copy.deepcopy(nb)
    name = Path(download).name
    note = (
        ":::{note}\nThis is the **student version** of the assignment, exactly as released: the "
        "solutions are replaced by `raise NotImplementedError()` and the hidden tests are not "
        f"included. {{download}}`Download {name} <{download}>`, open it in JupyterLab (`make lab`), "
        "fill in the solution cells, run the visible tests and submit the notebook.\n:::"
    )
    nb["cells"].insert(_title_index(nb), _markdown_cell(note, "site-download-note"))
    return nb


PLOT_CALL = re.compile(r"\bplt\.(show|imshow|plot|subplots?|figure|bar|hist|scatter)\(|\.imshow\(|\bdisplay\(fig")


def plotting_cells(nb) -> list[int]:
    """Indices of code cells that draw a figure (matplotlib calls), ``gpu`` cells excluded."""
    return [i for i, cell in enumerate(nb.get("cells", []))
            if cell.get("cell_type") == "code" and not is_gpu_cell(cell) and PLOT_CALL.search(_source_text(cell))]


def image_outputs(nb) -> int:
    """Number of image outputs (PNG, JPEG or SVG) in a notebook."""
    kinds = ("image/png", "image/jpeg", "image/svg+xml")
    return sum(1 for cell in nb.get("cells", []) for out in cell.get("outputs", []) or []
               if any(k in (out.get("data") or {}) for k in kinds))


def error_outputs(nb) -> list[str]:
    """Error outputs of a notebook outside cells tagged ``raises-exception`` (a page must not show a crash)."""
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or "raises-exception" in (cell.get("metadata", {}).get("tags") or []):
            continue
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                found.append(f"cell {index}: {out.get('ename')}: {str(out.get('evalue'))[:120]}")
    return found


# --------------------------------------------------------------------------------------------
# generated pages


def _syllabus_links(table: str, lectures_on_site: set[str], assignments_on_site: set[str]) -> str:
    """Point the table's repository links at site pages (or drop them when the page does not exist)."""

    def repl(match: re.Match) -> str:
        text, kind, folder = match.group(1), match.group(2), match.group(3)
        on_site = lectures_on_site if kind == "lectures" else assignments_on_site
        return f"[{text}]({kind}/{folder}.ipynb)" if folder in on_site else text

    table = re.sub(r"\[([^\]]+)\]\((lectures|assignments)/([^/)]+)/[^)]*\)", repl, table)
    # other repository files (course_lib/conv.py, benchmarks/...) are not pages: keep their text
    return re.sub(r"(?<!!)\[([^\]]+)\]\((?![a-z]+:)(?!(?:lectures|assignments)/[^/)]+\.ipynb\))[^)]*\)", r"\1", table)


def syllabus_page(root: Path, lectures_on_site: set[str], assignments_on_site: set[str]) -> str:
    """The syllabus page: the README's table, then one entry per lecture (label ``syllabus-NN``)."""
    lines = [
        "# Syllabus",
        "",
        "The lectures in teaching order, with their topics and homework. A lecture is *available* "
        "once its notebook is written; lectures still planned are listed so that the glossary can "
        "point at them.",
        "",
        _syllabus_links(syllabus.table(root), lectures_on_site, assignments_on_site),
        "",
        "## Lectures",
        "",
    ]
    for lec in syllabus.load(root):
        lines += [f"(syllabus-{lec.number})=", f"### {lec.number} · {lec.title}", "", f"**Topics:** {lec.topics}.", ""]
        if lec.folder in lectures_on_site:
            lines.append(f"**Status:** available — [read the lecture](lectures/{lec.folder}.ipynb).")
        elif lec.available(root):
            lines.append("**Status:** written; its executed page was not part of this build.")
        else:
            lines.append("**Status:** planned.")
        if lec.assignment:
            if lec.assignment in assignments_on_site:
                lines.append(f"**Assignment:** [{lec.assignment}](assignments/{lec.assignment}.ipynb).")
            else:
                lines.append(f"**Assignment:** {lec.assignment} (planned).")
        lines.append("")
    return "\n".join(lines)


def glossary_page(text: str, root: Path, lectures_on_site: set[str]) -> str:
    """Expand ``{lecture}`NN``` into a link to lecture NN's page, or to its syllabus entry."""
    by_number = {lec.number: lec for lec in syllabus.load(root)}

    def repl(match: re.Match) -> str:
        number = match.group(1)
        if number not in by_number:
            raise SiteError(f"book/glossary.md links to lecture {number}, which syllabus.toml does not list")
        lec = by_number[number]
        if lec.folder in lectures_on_site:
            return f"{{doc}}`{number} · {lec.title} <lectures/{lec.folder}>`"
        return f"{{ref}}`{number} · {lec.title} (planned) <syllabus-{number}>`"

    return LECTURE_ROLE.sub(repl, text)


def glossary_terms(text: str) -> list[tuple[str, str, str]]:
    """The (Russian, English, lecture number) rows of ``book/glossary.md``."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (m := LECTURE_ROLE.fullmatch(cells[2])):
            rows.append((cells[0], cells[1], m.group(1)))
    return rows


def benchmarks_page(root: Path) -> str:
    """``benchmarks/RESULTS.md`` as a page (a placeholder when ``make bench`` has not run yet)."""
    path = root / BENCHMARKS / LAYOUT.results_md.name
    if not path.exists():
        return "# Benchmark results\n\nNo benchmark results yet: `make bench` writes them.\n"
    text = path.read_text(encoding="utf-8")
    # relative links point into the repository, not the site: keep their text only
    return re.sub(r"(?<!!)\[([^\]]+)\]\((?![a-z]+:)[^)]*\)", r"\1", text)


def toc_yaml(lectures: list[Page], assignments: list[Page], api_modules: list[str] = ()) -> str:
    """The Jupyter Book table of contents: landing page, lectures, assignments, reference pages."""
    lines = ["# generated by python -m course_tools.site; do not edit", "format: jb-book", "root: intro", "parts:"]
    for caption, pages in (("Lectures", lectures), ("Assignments", assignments)):
        if pages:
            lines += [f"  - caption: {caption}", "    chapters:"] + [f"      - file: {p.docname}" for p in pages]
    lines += ["  - caption: Reference", "    chapters:", "      - file: syllabus", "      - file: glossary",
              "      - file: benchmarks"]
    if api_modules:
        lines += [f"      - file: {api.API_DIR}/index", "        sections:"]
        lines += [f"          - file: {api.docname(m)}" for m in api_modules]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# staging and building


def stage(executed: Path, staging: Path, *, root: Path = REPO_ROOT, book: Path | None = None, strict: bool = False,
          mode: str | None = None) -> SiteReport:
    """Assemble the Jupyter Book source folder ``staging``; return what it holds.

    Lectures of ``syllabus.toml`` whose folder exists but whose executed notebook is missing are
    left out (listed in ``report.skipped``); with ``strict`` that is an error.
    """
    import nbformat

    from course_tools.notebooks.convert import write_notebook

    book = book or root / BOOK
    for required in ("_config.yml", "intro.md", "glossary.md"):
        if not (book / required).exists():
            raise SiteError(f"{book / required} is missing: the website needs book/_config.yml, intro.md and glossary.md")
    report = SiteReport(out=Path(), staging=staging)
    staging.mkdir(parents=True, exist_ok=True)
    wanted: set[Path] = set()

    def emit_text(rel: str, text: str) -> None:
        _write_if_changed(staging / rel, text)
        wanted.add(staging / rel)

    def emit_file(rel: str, source: Path) -> None:
        target = staging / rel
        if not (target.exists() and target.read_bytes() == source.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        wanted.add(target)

    def emit_nb(rel: str, nb) -> None:
        target = staging / rel
        text = nbformat.writes(nbformat.from_dict(nb))
        if not (target.exists() and target.read_text(encoding="utf-8") == text):
            write_notebook(nbformat.from_dict(nb), target)
        wanted.add(target)

    api_modules = api.public_modules(root)
    for rel, text in api.pages(root).items():
        emit_text(rel, text)
    lectures_on_site: list[Page] = []
    for lec in syllabus.load(root):
        executed_nb = executed / LECTURES / lec.folder / f"{lec.folder}.ipynb"
        if not executed_nb.exists():
            if lec.available(root):
                report.skipped.append(f"lectures/{lec.folder}: no executed notebook at {_rel(executed_nb, root)}")
            continue
        nb = json.loads(executed_nb.read_text(encoding="utf-8"))
        errors = error_outputs(nb)
        if errors:
            report.problems.append(f"{_rel(executed_nb, root)} shows an error: {errors[0]}")
        timed_out = nb.get("metadata", {}).get("course", {}).get("timed_out_in")
        if timed_out:
            report.problems.append(f"{_rel(executed_nb, root)} was killed on its timeout in {timed_out}: the cells "
                                   "after it never ran (execute it again with a longer --timeout)")
        if plotting_cells(nb) and not image_outputs(nb):
            report.problems.append(
                f"{_rel(executed_nb, root)}: code cells {plotting_cells(nb)} draw figures but the executed notebook "
                "holds no image (was it executed with MPLBACKEND=Agg? kernels need the inline backend)")
        emit_nb(f"lectures/{lec.folder}.ipynb", prepare_lecture(nb, mode, set(api_modules)))
        lectures_on_site.append(Page("lecture", f"lectures/{lec.folder}", _rel(executed_nb, root), lec.number))
    if strict and report.skipped:
        raise SiteError("lectures without an executed notebook (run `make course` first):\n  " + "\n  ".join(report.skipped))

    assignments_on_site: list[Page] = []
    for released in sorted((root / ASSIGNMENTS).glob("*/*.ipynb")):
        folder = released.parent.name
        if released.stem != folder:
            continue  # one page per assignment: the notebook named after its folder
        nb = json.loads(released.read_text(encoding="utf-8"))
        emit_file(f"assignments/files/{released.name}", released)
        emit_nb(f"assignments/{folder}.ipynb", prepare_assignment(nb, f"files/{released.name}"))
        assignments_on_site.append(Page("assignment", f"assignments/{folder}", _rel(released, root)))

    lecture_folders = {p.docname.split("/", 1)[1] for p in lectures_on_site}
    assignment_folders = {p.docname.split("/", 1)[1] for p in assignments_on_site}
    table = _syllabus_links(syllabus.table(root), lecture_folders, assignment_folders)
    intro = (book / "intro.md").read_text(encoding="utf-8")
    if SYLLABUS_PLACEHOLDER not in intro:
        raise SiteError(f"book/intro.md lacks the line {SYLLABUS_PLACEHOLDER!r} where the syllabus table goes")
    intro = "\n".join(table if ln.startswith(SYLLABUS_PLACEHOLDER) else ln for ln in intro.splitlines()) + "\n"
    emit_text("intro.md", intro)
    emit_text("glossary.md", glossary_page((book / "glossary.md").read_text(encoding="utf-8"), root, lecture_folders))
    emit_text("syllabus.md", syllabus_page(root, lecture_folders, assignment_folders))
    emit_text("benchmarks.md", benchmarks_page(root))
    emit_text("_config.yml", (book / "_config.yml").read_text(encoding="utf-8"))
    if _write_if_changed(staging / "_toc.yml", toc_yaml(lectures_on_site, assignments_on_site, api_modules)):
        # a new or removed page changes the previous/next links of pages whose own text did not
        # change, which Sphinx's incremental build would leave stale: build everything afresh
        shutil.rmtree(staging / "_build", ignore_errors=True)
    wanted.add(staging / "_toc.yml")
    for extra in sorted(book.rglob("*")):  # _static/ (CSS, favicon) and anything else an author adds to book/
        rel = extra.relative_to(book)
        if extra.is_file() and str(rel) not in {"_config.yml", "_toc.yml", "intro.md", "glossary.md"} \
                and "_build" not in rel.parts:
            emit_file(str(rel), extra)

    # forget pages of an earlier build that are gone (a renamed lecture), keep Sphinx's caches
    for path in sorted(staging.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted and "_build" not in path.relative_to(staging).parts:
            path.unlink()
        elif path.is_dir() and path.name != "_build" and not any(path.iterdir()):
            path.rmdir()
    report.pages = (
        [Page("book", "intro", "book/intro.md")]
        + lectures_on_site
        + assignments_on_site
        + [Page("book", "syllabus", "syllabus.toml"), Page("book", "glossary", "book/glossary.md"),
           Page("book", "benchmarks", "benchmarks/RESULTS.md")]
        + [Page("api", f"{api.API_DIR}/index", "course_lib")]
        + [Page("api", api.docname(m), str(api.module_path(m, root).relative_to(root))) for m in api_modules]
    )
    return report


def run_jupyter_book(staging: Path, *, log: Path | None = None) -> Path:
    """``jupyter-book build`` of ``staging`` with warnings as errors; return the HTML folder."""
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
           "build", str(staging), "--builder", "html", "-W", "--keep-going"]
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # Sphinx colours its warnings
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output, encoding="utf-8")
    html_dir = staging / "_build" / "html"
    if proc.returncode != 0 or not (html_dir / "index.html").exists():
        warnings = [ln for ln in output.splitlines() if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
        shown = "\n".join(warnings[-30:] or output.splitlines()[-40:])
        raise SiteError(f"jupyter-book build failed (exit {proc.returncode}); full log in {log}:\n{shown}")
    return html_dir


def build(executed: Path = EXECUTED_DIR, out: Path = SITE_DIR, *, root: Path = REPO_ROOT, staging: Path | None = None,
          strict: bool = False, mode: str | None = None) -> SiteReport:
    """Stage, build with Jupyter Book, copy to ``out`` and check; problems go to ``report.problems``.

    Raises :class:`SiteError` when the build itself fails (a missing book file, a Sphinx warning).
    """
    start = time.perf_counter()
    out = Path(out)
    staging = staging or out.with_name(out.name + "-src")
    report = stage(Path(executed), staging, root=root, strict=strict, mode=mode)
    html_dir = run_jupyter_book(staging, log=staging / "_build" / "jupyter-book.log")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html_dir, out)
    report.out = out
    report.problems += check_site(out, root=root, assignments=[p for p in report.pages if p.kind == "assignment"])
    report.seconds = round(time.perf_counter() - start, 1)
    return report


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, prog: str = "python -m course_tools site") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the website from the executed notebooks, then check it")
    p_build.add_argument("--executed", type=Path, default=EXECUTED_DIR, help="executed notebooks (default build/executed)")
    p_build.add_argument("--out", type=Path, default=SITE_DIR, help="HTML output folder (default build/site)")
    p_build.add_argument("--strict", action="store_true", help="fail when a written lecture has no executed notebook")
    p_build.add_argument("--mode", choices=["smoke", "full"], default=None,
                         help="execution mode named on the pages (default: read from the notebooks)")
    p_check = sub.add_parser("check", help="only the post-build checks of an existing site")
    p_check.add_argument("--out", type=Path, default=SITE_DIR)
    args = parser.parse_args(argv)

    if args.command == "check":
        problems = check_site(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{args.out}: {'OK' if not problems else f'{len(problems)} problems'}")
        return 0 if not problems else 1

    try:
        report = build(args.executed, args.out, strict=args.strict, mode=args.mode)
    except SiteError as exc:
        print(f"site build failed: {exc}", file=sys.stderr)
        return 1
    for note in report.skipped:
        print(f"warning: left out {note}", file=sys.stderr)
    lectures = ", ".join(p.docname.split("/", 1)[1] for p in report.lecture_pages()) or "none"
    print(f"website: {_rel(report.out, REPO_ROOT)}/index.html — {len(report.pages)} pages "
          f"(lectures: {lectures}; {len(report.assignment_pages())} assignments) in {report.seconds:.1f} s")
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 0 if not report.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
