"""What each assignment declares in ``syllabus.toml``: its dates, its answers and its rules.

An ``[[assignment]]`` entry gives

- ``name``: the folder under ``solutions/`` and ``assignments/``;
- ``release`` and ``due``: dates (TOML dates, ``2027-02-22``);
- ``answers``: a table *notebook name → dotted course_lib name*: the reference implementation
  that answers a graded cell (the student release stubs these until the due date);
- ``reveals`` (optional): other ``course_lib`` objects whose code gives an answer away (the
  optimiser classes that apply the update rules an assignment asks for); the student release stubs
  them with the answers, the grader treats them like the answers;
- ``forbidden``: dotted prefixes an answer may not import, reference or call (the grader
  enforces them; the notebook's "Rules" paragraph states them for the student).

:func:`load_specs` reads every entry; :func:`load_spec` one of them.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.layout import REPO_ROOT, SYLLABUS_FILE


class AssignmentSpecError(ValueError):
    """``syllabus.toml``'s assignment entries are malformed; the message names the entry and the key."""


@dataclass(frozen=True)
class AssignmentSpec:
    """One assignment's dates, answers mapping and rules."""

    name: str
    release: dt.date | None = None
    due: dt.date | None = None
    answers: dict[str, str] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()
    reveals: tuple[str, ...] = ()

    def stubbed_names(self) -> list[str]:
        """The ``course_lib`` names hidden from students until the due date: the answers, then ``reveals``."""
        return sorted(set(self.answers.values())) + sorted(set(self.reveals) - set(self.answers.values()))

    def is_released(self, on: dt.date) -> bool:
        return self.release is None or self.release <= on

    def is_due(self, on: dt.date) -> bool:
        """True once the due date has passed (answers may then be published)."""
        return self.due is not None and self.due < on


def _date(entry: dict, key: str, where: str) -> dt.date | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise AssignmentSpecError(f"{where}: {key} must be a TOML date such as 2027-02-22; got {value!r}")


def load_specs(root: Path = REPO_ROOT) -> dict[str, AssignmentSpec]:
    """Every ``[[assignment]]`` of ``syllabus.toml``, by name."""
    path = Path(root) / SYLLABUS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AssignmentSpecError(f"cannot read {path}: {exc}") from exc
    specs: dict[str, AssignmentSpec] = {}
    for i, entry in enumerate(data.get("assignment", [])):
        where = f"{path} [[assignment]] #{i + 1}"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise AssignmentSpecError(f"{where}: needs a `name` (the folder under solutions/)")
        where = f"{path} assignment {name!r}"
        if name in specs:
            raise AssignmentSpecError(f"{where}: declared twice")
        answers = entry.get("answers", {})
        if not isinstance(answers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.startswith("course_lib.") for k, v in answers.items()
        ):
            raise AssignmentSpecError(f"{where}: `answers` must map notebook names to dotted course_lib names")
        forbidden = entry.get("forbidden", [])
        if not isinstance(forbidden, list) or not all(isinstance(f, str) and f for f in forbidden):
            raise AssignmentSpecError(f"{where}: `forbidden` must be a list of dotted names")
        reveals = entry.get("reveals", [])
        if not isinstance(reveals, list) or not all(isinstance(r, str) and r.startswith("course_lib.") for r in reveals):
            raise AssignmentSpecError(f"{where}: `reveals` must be a list of dotted course_lib names")
        release, due = _date(entry, "release", where), _date(entry, "due", where)
        if release and due and due < release:
            raise AssignmentSpecError(f"{where}: due {due} is before release {release}")
        specs[name] = AssignmentSpec(name, release, due, dict(answers), tuple(forbidden), tuple(reveals))
    return specs


def load_spec(name: str, root: Path = REPO_ROOT) -> AssignmentSpec:
    """The spec of assignment ``name``; an assignment ``syllabus.toml`` does not declare gets an empty one."""
    return load_specs(root).get(name, AssignmentSpec(name))


__all__ = ["AssignmentSpec", "AssignmentSpecError", "load_spec", "load_specs"]
