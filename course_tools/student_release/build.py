"""Build the repository students receive on a given day.

    python -m course_tools student-release OUT [--date 2027-03-01 | --until 05] [--force] [--full]

The bundle holds, and nothing else:

- ``lectures/``: the lectures of ``syllabus.toml`` whose ``date`` has come (and whose folder
  exists). A lecture that uses a stubbed ``course_lib`` name (directly or through other
  ``course_lib`` code) ships as a **pre-executed** ``.ipynb`` — outputs from ``build/executed``
  when it matches the source, else executed here with the reference library — whose first cell
  says so; the others ship as their ``.py`` source;
- ``assignments/``: nbgrader's release (``assignments/NAME/``) of each assignment whose release
  date has come;
- ``course_lib/`` with every answer of an assignment not yet due replaced by a stub
  (:mod:`course_tools.student_release.stubs`);
- a student ``README.md``, ``Makefile`` (venv, lab, validate), ``pyproject.toml``,
  ``environment.yml``, ``requirements/constraints.txt``, a student ``nbgrader_config.py`` (gpu
  cells skipped when validating) and ``.gitignore``.

No ``solutions/``, hidden tests, gradebook, instructor configuration or ``course_tools``. The
bundle is checked before the command returns (:mod:`course_tools.student_release.scan`); two builds
from the same checkout give the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from course_tools import syllabus
from course_tools.assignments import AssignmentSpec, load_specs
from course_tools.layout import ASSIGNMENTS, LAYOUT, LECTURES, REPO_ROOT, CourseLayout
from course_tools.student_release import templates
from course_tools.student_release.stubs import (
    LIB,
    LibraryIndex,
    OpenAnswer,
    StubError,
    check_imports_survive,
    open_answers,
    shared_helpers,
    stub_module_source,
    stub_set,
)

#: id of the Markdown cell put first in a pre-executed lecture
PRE_EXECUTED_CELL_ID = "student-release-pre-executed"
#: notebook and cell metadata that records when and how long a run took (dropped: the bundle is reproducible)
VOLATILE_METADATA = ("papermill", "execution")


class ReleaseError(RuntimeError):
    """The bundle cannot be built as asked; the message says what to change."""


@dataclass
class Plan:
    """What goes into the bundle for one day."""

    on: dt.date
    lectures: list[syllabus.Lecture]
    assignments: list[AssignmentSpec]
    stubs: dict[str, OpenAnswer]
    #: lecture folder -> the stubbed (or stub-calling) course_lib names it uses
    pre_executed: dict[str, list[str]] = field(default_factory=dict)
    shared: dict[str, set[str]] = field(default_factory=dict)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ReleaseError(f"--date must be a date such as 2027-03-01; got {text!r}") from exc


def release_date(root: Path, *, date: dt.date | None = None, until: str | None = None) -> dt.date:
    """The day of the release: ``date``, or the date of lecture ``until``, or today."""
    if date and until:
        raise ReleaseError("give --date or --until, not both")
    if until is None:
        return date or dt.date.today()
    lectures = {lec.number: lec for lec in syllabus.load(root)}
    number = until.zfill(2)
    if number not in lectures:
        raise ReleaseError(f"--until {until}: syllabus.toml has no lecture {number} (it has {', '.join(lectures)})")
    lec = lectures[number]
    if lec.date is None:
        raise ReleaseError(f"--until {until}: lecture {number} has no `date` in syllabus.toml; add one or use --date")
    return lec.date


def plan(root: Path, on: dt.date) -> Plan:
    """Decide the bundle's lectures, assignments, stubs and pre-executed lectures for day ``on``."""
    layout = CourseLayout(root)
    lectures = []
    for lec in syllabus.load(root):
        if not lec.available(root):
            continue
        if lec.date is None:
            raise ReleaseError(f"syllabus.toml: lecture {lec.number} ({lec.folder}) has no `date`; add one")
        if lec.date <= on:
            lectures.append(lec)
    specs = load_specs(root)
    assignments = []
    for name, spec in specs.items():
        if not (layout.solutions / name).is_dir() or not spec.is_released(on):
            continue
        if not any((layout.assignments / name).glob("*.ipynb")):
            raise ReleaseError(f"assignment {name} is released on {spec.release} but {ASSIGNMENTS}/{name}/ is empty: "
                               "run `make release` and commit it")
        assignments.append(spec)
    index = LibraryIndex(root / LIB)
    stubs = stub_set(index, open_answers(specs.values(), on))
    check_imports_survive(index, stubs)
    tainted = index.tainted(stubs)
    result = Plan(on, lectures, assignments, stubs, shared=shared_helpers(index, stubs))
    for lec in lectures:
        src = layout.lectures / lec.folder / f"{lec.folder}.py"
        used = sorted(index.uses(src.read_text(encoding="utf-8"), str(src)) & tainted)
        if used:
            result.pre_executed[lec.folder] = used
    for spec in assignments:
        for nb_path in sorted((layout.assignments / spec.name).glob("*.ipynb")):
            code = "\n".join(_code_cells(json.loads(nb_path.read_text(encoding="utf-8"))))
            used = sorted(index.uses(code, str(nb_path)) & tainted)
            if used:
                raise ReleaseError(
                    f"{nb_path.relative_to(root)} (released {spec.release}) uses {', '.join(used)}, stubbed on {on} "
                    "because an assignment that answers them is not due yet: its tests would fail for the wrong "
                    "reason. Release it after that due date, or stop using those names in the notebook"
                )
    return result


def _code_cells(nb: dict) -> list[str]:
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            text = "".join(src) if isinstance(src, list) else src
            # IPython magics and shell escapes are not Python
            out.append("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    return out


# ----------------------------------------------------------------------------------------------
# pre-executed lectures


def _cell_sources(nb: dict) -> list[tuple[str, str]]:
    out = []
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        out.append((cell.get("cell_type", ""), "".join(src) if isinstance(src, list) else src))
    return out


def _matches_source(executed: dict, source_nb: dict) -> bool:
    """True when an executed notebook was run from this very source (papermill's injected cell aside)."""
    cells = [c for c in executed.get("cells", []) if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    return _cell_sources({"cells": cells}) == _cell_sources(source_nb)


def executed_lecture(root: Path, lec: syllabus.Lecture, executed_dir: Path, *, full: bool, log) -> dict:
    """The executed notebook of a lecture: from ``executed_dir`` when it matches the source, else run now."""
    from course_tools.notebooks.convert import read_source
    from course_tools.notebooks.execute import execute_many, output_path

    src = root / LECTURES / lec.folder / f"{lec.folder}.py"
    source_nb = read_source(src)
    out = output_path(src, executed_dir, root)
    if out.exists() and _matches_source(json.loads(out.read_text(encoding="utf-8")), source_nb):
        log(f"  {lec.folder}: outputs from {out}")
    else:
        log(f"  {lec.folder}: executing ({'full' if full else 'smoke'} mode) into {out} ...")
        [result] = execute_many([src], smoke=not full, jobs=1, build_dir=executed_dir)
        if result.status != "ok":
            raise ReleaseError(f"{src.relative_to(root)} failed to execute with the reference course_lib "
                               f"({result.status}: {result.detail}); fix the lecture before releasing it")
    return json.loads(out.read_text(encoding="utf-8"))


def pre_executed_notebook(executed: dict, lec: syllabus.Lecture, used: list[str], stubs: dict[str, OpenAnswer]) -> dict:
    """A copy of an executed lecture for students: run metadata dropped, a first cell saying why it is pre-executed."""
    nb = copy.deepcopy(executed)
    params = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {}
    mode = "smoke" if params.get("SMOKE", True) else "full"
    for key in VOLATILE_METADATA:
        nb.get("metadata", {}).pop(key, None)
    nb.get("metadata", {}).pop("jupytext", None)  # no pairing with a .py the student does not have
    for cell in nb.get("cells", []):
        for key in VOLATILE_METADATA:
            cell.get("metadata", {}).pop(key, None)
    why = sorted({(stubs[n].assignment, stubs[n].due) for n in used if n in stubs}, key=lambda t: (str(t[1]), t[0]))
    names = ", ".join(f"`{n}`" for n in used)
    open_list = "; ".join(f"assignment {a} (due {d.isoformat() if d else 'no date set'})" for a, d in why)
    text = (
        "> **Pre-executed lecture.** This notebook was run with the course's reference `course_lib` "
        f"({mode} mode) and ships with its outputs. It uses {names}, which in your copy of `course_lib` "
        f"raise `NotImplementedError` until {open_list} is due: read it as it is; re-running the cells that use "
        "them works once the release after the due date brings the reference implementation."
    )
    nb["cells"] = [{"cell_type": "markdown", "id": PRE_EXECUTED_CELL_ID, "metadata": {}, "source": text}, *nb["cells"]]
    return nb


# ----------------------------------------------------------------------------------------------
# writing the bundle


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _notebook_json(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        readme = out / "README.md"
        ours = readme.exists() and readme.read_text(encoding="utf-8").startswith(templates.README_TITLE)
        if not force or not ours:
            raise ReleaseError(
                f"{out} exists and is not empty: give an empty or new folder"
                + (", or --force to replace this earlier student release" if ours else " (it is not a student release)")
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def build(root: Path, out: Path, on: dt.date, *, executed_dir: Path | None = None, full: bool = False,
          force: bool = False, log=print) -> Plan:
    """Write the bundle of day ``on`` into ``out``; return its plan."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if out == root or out in root.parents:
        raise ReleaseError(f"{out} holds the repository itself; write the bundle elsewhere (e.g. build/student)")
    layout = CourseLayout(root)
    executed_dir = executed_dir or layout.executed
    try:
        p = plan(root, on)
    except StubError as exc:
        raise ReleaseError(str(exc)) from exc
    _prepare_out(out, force)

    # course_lib, answers of open assignments stubbed
    by_module: dict[str, dict[str, str]] = {}
    for dotted, why in p.stubs.items():
        module, _, name = dotted.rpartition(".")
        by_module.setdefault(module, {})[name] = why.message()
    index = LibraryIndex(root / LIB)
    for info in index.modules.values():
        rel = info.path.relative_to(root)
        stubs = by_module.get(info.name)
        _write(out / rel, stub_module_source(info.source, stubs, str(rel)) if stubs else info.source)
    for extra in sorted((root / LIB).rglob("*")):  # package data (none today), never caches
        if extra.is_file() and extra.suffix not in {".py", ".pyc"} and "__pycache__" not in extra.parts:
            _write(out / extra.relative_to(root), extra.read_bytes())

    # lectures
    for lec in p.lectures:
        folder = layout.lectures / lec.folder
        if lec.folder in p.pre_executed:
            nb = executed_lecture(root, lec, executed_dir, full=full, log=log)
            nb = pre_executed_notebook(nb, lec, p.pre_executed[lec.folder], p.stubs)
            _write(out / LECTURES / lec.folder / f"{lec.folder}.ipynb", _notebook_json(nb))
            skip = {f"{lec.folder}.py"}
        else:
            skip = set()
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix != ".ipynb" and f.name not in skip and "__pycache__" not in f.parts \
                    and ".ipynb_checkpoints" not in f.parts:
                _write(out / f.relative_to(root), f.read_bytes())

    # assignments: nbgrader's release, as committed
    for spec in p.assignments:
        for f in sorted((layout.assignments / spec.name).rglob("*")):
            if f.is_file() and ".ipynb_checkpoints" not in f.parts:
                _write(out / f.relative_to(root), f.read_bytes())

    # environment and student files
    student_pyproject = templates.pyproject(root / "pyproject.toml")
    _write(out / "pyproject.toml", student_pyproject)
    import tomllib

    deps = tomllib.loads(student_pyproject)["project"]["dependencies"]
    _write(out / "environment.yml", templates.environment_yml(deps))
    _write(out / "requirements" / "constraints.txt", (root / "requirements" / "constraints.txt").read_bytes())
    _write(out / "Makefile", templates.MAKEFILE)
    _write(out / "nbgrader_config.py", templates.NBGRADER_CONFIG)
    _write(out / ".gitignore", templates.GITIGNORE)
    _write(out / "README.md", templates.readme(
        on,
        [(lec.folder, f"{lec.number} · {lec.title}", lec.folder in p.pre_executed) for lec in p.lectures],
        [(spec.name, spec.due) for spec in p.assignments],
        [(d, why.assignment, why.due) for d, why in p.stubs.items() if why.helper_of is None],
    ))
    return p


def bundle_digest(out: Path) -> tuple[int, int, str]:
    """(file count, total bytes, sha256 over every path and its bytes, in sorted order)."""
    h = hashlib.sha256()
    count = size = 0
    for f in sorted(p for p in Path(out).rglob("*") if p.is_file()):
        data = f.read_bytes()
        h.update(f.relative_to(out).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
        count, size = count + 1, size + len(data)
    return count, size, h.hexdigest()


def main(argv: list[str] | None = None, prog: str = "python -m course_tools student-release") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write the bundle into (new or empty)")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--date", help="the day of the release, e.g. 2027-03-01 (default: today)")
    when.add_argument("--until", help="the release on the date of lecture NN (e.g. 05)")
    parser.add_argument("--force", action="store_true", help="replace OUT when it holds an earlier student release")
    parser.add_argument("--full", action="store_true", help="execute lectures that must ship pre-executed in full mode "
                        "(default: smoke mode; outputs already in build/executed are reused either way)")
    parser.add_argument("--executed-dir", type=Path, default=None, help="executed notebooks to reuse (default build/executed)")
    parser.add_argument("--no-scan", action="store_true", help="skip the leak scan of the finished bundle")
    args = parser.parse_args(argv)
    from course_tools.student_release.scan import scan_bundle

    try:
        on = release_date(LAYOUT.root, date=_parse_date(args.date) if args.date else None, until=args.until)
        print(f"student release of {on.isoformat()} -> {args.out}")
        p = build(REPO_ROOT, args.out, on, executed_dir=args.executed_dir, full=args.full, force=args.force)
    except ReleaseError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    answers = [d for d, w in p.stubs.items() if w.helper_of is None]
    print(f"lectures: {', '.join(lec.number for lec in p.lectures) or 'none'}"
          f" (pre-executed: {', '.join(sorted(p.pre_executed)) or 'none'})")
    print(f"assignments: {', '.join(s.name for s in p.assignments) or 'none'}")
    print(f"stubbed: {len(answers)} answers + {len(p.stubs) - len(answers)} private helpers of them")
    for helper, users in p.shared.items():
        print(f"  kept, shared with code that stays: {helper} (used by {', '.join(sorted(users))})")
    if not args.no_scan:
        problems = scan_bundle(args.out, REPO_ROOT, on)
        if problems:
            print(f"{prog}: the bundle leaks — do not publish it:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print("leak scan: clean (no solution or hidden-test line, no answer body of an open assignment)")
    count, size, digest = bundle_digest(args.out)
    print(f"{count} files, {size / 1e6:.2f} MB ({size} bytes), sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
