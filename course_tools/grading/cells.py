"""Cells of an nbgrader notebook: their role (:class:`Role`), nbgrader metadata, key and source."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What a cell is for the grader (the strings are those of the reports)."""

    TEST = "test"  # graded, not a solution: runs in the trusted evaluator
    ANSWER = "answer"  # a solution cell the student fills in
    MANUAL = "manual"  # graded and a solution: graded by hand
    LOCKED = "locked"  # a read-only instructor cell
    PLAIN = "plain"  # no nbgrader role


def nbg(cell: Any) -> dict[str, Any]:
    """The cell's nbgrader metadata ({} when it has none or it is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def cell_role(cell: Any) -> Role:
    """``test`` (graded, not a solution), ``answer`` (solution), ``manual`` (graded solution),
    ``locked`` (read-only instructor cell), ``plain`` (no nbgrader role)."""
    meta = nbg(cell)
    if not meta.get("grade_id"):
        return Role.PLAIN
    if meta.get("grade") and meta.get("solution"):
        return Role.MANUAL
    if meta.get("grade"):
        return Role.TEST
    if meta.get("solution"):
        return Role.ANSWER
    if meta.get("locked") or meta.get("task"):
        return Role.LOCKED
    return Role.PLAIN


def cell_key(cell: Any) -> str:
    """How a student's cell is matched with the source's: its grade id, else its cell id."""
    gid = nbg(cell).get("grade_id")
    return f"grade:{gid}" if gid else f"id:{cell.get('id', '')}"


def cell_source(cell: Any) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def transform_cell(code: str) -> str:
    """IPython's syntax (magics, ``!`` commands) turned into Python, as the kernel runs it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return str(TransformerManager().transform_cell(code))
    except Exception:  # pragma: no cover - IPython is installed with nbgrader
        return code
