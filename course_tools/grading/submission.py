"""A submission: loading and checking its notebooks, assembling the notebook to run from the
source, hashing and staging its files, and the redaction of hidden tests for feedback."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_tools.grading import sandbox as sb
from course_tools.grading.cells import Role, cell_key, cell_role, cell_source, nbg, transform_cell
from course_tools.grading.config import (
    GRADER_VERSION,
    HIDDEN_BEGIN,
    HIDDEN_END,
    HIDDEN_FAILED,
    MAX_JSON_DEPTH,
    MAX_NOTEBOOK_BYTES,
    MAX_SUBMISSION_BYTES,
    GradeConfig,
)


@dataclass
class Problem:
    reason: str  # short code: invalid-json, wrong-nbformat, missing-notebook, ...
    message: str


def load_student_notebook(path: Path) -> tuple[Any, Problem | None]:
    """Read a submitted notebook; return (notebook, None) or (None, the reason it cannot be graded)."""
    import nbformat

    try:
        if path.is_symlink() or not path.is_file():
            return None, Problem(
                "not-a-file", f"{path.name} is not a regular file (a folder or a link); submit the notebook itself"
            )
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, Problem(
                "too-large",
                f"{path.name} is {size / 2**20:.0f} MB; the limit is "
                f"{MAX_NOTEBOOK_BYTES / 2**20:.0f} MB (clear large outputs and save again)",
            )
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem("unreadable", f"{path.name}: cannot read: {exc}")
    too_deep = Problem(
        "invalid-json",
        f"{path.name} is JSON nested more than {MAX_JSON_DEPTH} levels deep "
        "(a notebook needs fewer than 20): not a notebook Jupyter saved",
    )
    try:
        data = json.loads(raw.decode("utf-8", errors="strict"))
    except RecursionError:
        return None, too_deep
    except UnicodeDecodeError as exc:
        return None, Problem("invalid-json", f"{path.name} is not UTF-8 text: {exc}")
    except json.JSONDecodeError as exc:
        return None, Problem(
            "invalid-json", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        )
    if json_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return None, too_deep
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        return None, Problem("wrong-nbformat", f"{path.name} is JSON but not a notebook (no 'cells')")
    major = data.get("nbformat")
    if major != 4:
        return None, Problem(
            "wrong-nbformat",
            f"{path.name} has nbformat {major!r}; nbformat 4 is expected (save it with Jupyter 4 or newer)",
        )
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


def assemble(source_nb, student_nb) -> tuple[Any, list[str]]:
    """The notebook to run: source order; source versions of locked and test cells; the student's
    answer cells and plain cells (matched by grade id / cell id); cells the student added kept after
    the cell they followed. Returns (notebook, the list of changes made to the submission)."""
    import nbformat

    changes: list[str] = []
    source_keys = [cell_key(c) for c in source_nb.cells]
    source_roles = {cell_key(c): cell_role(c) for c in source_nb.cells}
    matched: dict[str, Any] = {}
    attached: dict[str | None, list] = {}
    anchor: str | None = None
    student_order: list[str] = []
    for cell in student_nb.cells:
        k = cell_key(cell)
        if k in source_roles and k not in matched:
            matched[k] = cell
            student_order.append(k)
            anchor = k
            continue
        extra = copy.deepcopy(cell)
        if nbg(extra):
            role = cell_role(extra)
            gid = nbg(extra).get("grade_id")
            if k in matched:
                changes.append(f"duplicate of cell {gid or extra.get('id')} (kept as an ungraded cell)")
            elif role != Role.PLAIN:
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
        k = cell_key(scell)
        role = source_roles[k]
        gid = nbg(scell).get("grade_id")
        name = gid or scell.get("id")
        st = matched.get(k)
        if role in (Role.TEST, Role.LOCKED) or (role == Role.PLAIN and scell.cell_type == "markdown"):
            cell = copy.deepcopy(scell)
            if role in (Role.TEST, Role.LOCKED):
                if st is None:
                    changes.append(f"{role} cell {name} was deleted (restored from the source)")
                elif st.get("cell_type") != scell.cell_type or as_released(cell_source(st)) not in (
                    as_released(cell_source(scell)),
                    normalised(cell_source(scell)),
                ):
                    changes.append(f"{role} cell {name} was edited (restored from the source)")
        elif role in (Role.ANSWER, Role.MANUAL):
            if st is None:
                changes.append(f"answer cell {name} is missing (graded as empty)")
                cell = copy.deepcopy(scell)
                cell.source = f"# answer cell {name} is missing from the submission"
            else:
                cell = copy.deepcopy(scell)
                cell.source = cell_source(st)
                if st.get("cell_type") != scell.cell_type:
                    changes.append(
                        f"answer cell {name} changed type to {st.get('cell_type')} (run as {scell.cell_type})"
                    )
        else:  # plain code cell (setup, parameters): the student's version, else the source's
            if st is None:
                cell = copy.deepcopy(scell)
                changes.append(f"cell {name} is missing (the source version was run)")
            else:
                cell = copy.deepcopy(scell)
                cell.source = cell_source(st)
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
            ast.parse(transform_cell(code))
    except SyntaxError:
        return [(source, True)]
    return parts or [(source, False)]


def normalised(source: str) -> str:
    return "\n".join(ln.rstrip() for ln in source.splitlines() if ln.strip())


def as_released(source: str) -> str:
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
    return normalised("\n".join(out))


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


def hash_dir(folder: Path) -> tuple[str, int]:
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


def submission_hash(
    sub_dir: Path, source_nbs: dict[str, Path], cfg: GradeConfig, iso: sb.Isolation, rules: dict | None = None
) -> str:
    """What a grade depends on: the grader, the submission, the sources, the settings, the sandbox,
    and the rules (forbidden names and this student's overrides)."""
    h = hashlib.sha256()
    h.update(GRADER_VERSION.encode())
    if rules:
        h.update(json.dumps(rules, sort_keys=True).encode())
    h.update(hash_dir(sub_dir)[0].encode())
    for name in sorted(source_nbs):
        h.update(name.encode() + Path(source_nbs[name]).read_bytes())
    h.update(json.dumps(cfg.key(), sort_keys=True).encode())
    h.update(iso.variant.encode())
    return h.hexdigest()


def stage_submission(sub_dir: Path, extra_dir: Path | None, stage: Path) -> None:
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


def redact(nb, part_outputs: dict[str, list[tuple[bool, bool, list]]]):
    """The feedback version of a graded notebook: hidden tests removed from the test cells; what a
    hidden part printed or raised replaced by "hidden test failed" (or "hidden tests passed")."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) != Role.TEST:
            continue
        src = cell_source(cell)
        if HIDDEN_BEGIN not in src:
            continue
        cell.source = redact_source(src)
        outputs = []
        for hidden, passed, outs in part_outputs.get(str(nbg(cell).get("grade_id", "")), []):
            if not hidden:
                outputs += outs
            elif passed:
                outputs.append({"output_type": "stream", "name": "stdout", "text": "hidden tests passed\n"})
            else:
                outputs.append(
                    {
                        "output_type": "error",
                        "ename": "HiddenTestFailed",
                        "evalue": HIDDEN_FAILED,
                        "traceback": [f"{HIDDEN_FAILED}: your code did not pass a test that is not shown"],
                    }
                )
        cell.outputs = [output_node(o) for o in outputs]
    return nb


def output_node(output: dict):
    import nbformat

    return nbformat.from_dict(output)
