"""Execution cache of the notebook executor: an unchanged notebook is not executed again.

Beside every executed notebook ``<build>/<path>.ipynb`` that ran without error, the executor writes
a small record ``<build>/<path>.run.json``::

    {"key": "…", "parts": {...}, "output_sha256": "…", "date": "…", "seconds": 12.3, "device": "…", ...}

The **key** is a SHA-256 over everything that decides what the notebook prints:

- the bytes of the notebook source (``lectures/NN-topic/NN-topic.py``);
- the bytes (and relative paths) of every ``course_lib/**/*.py`` the kernel imports;
- the mode (``smoke`` / ``full``);
- whether ``gpu`` cells run (a CUDA device, or ``COURSE_GPU``), since they are skipped otherwise;
- the installed torch and numpy versions;
- :data:`CACHE_VERSION` (bumped when the executor changes what it writes).

``execute`` reuses a notebook whose record has the current key **and** whose executed notebook still
has the SHA-256 the record names (a notebook overwritten since, e.g. by ``make test``'s nbval run, is
executed again). ``--force`` ignores the records. Failed or timed-out runs write no record, so they
are always retried. Data files a notebook downloads are not part of the key (they are versioned by
:mod:`course_lib.data`); to re-run after changing anything else, use ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import course_lib

#: bump when the executor changes what it writes into an executed notebook
CACHE_VERSION = 1
#: suffix of the record written beside ``<name>.ipynb``
RECORD_SUFFIX = ".run.json"
#: the library the kernels import (the installed/PYTHONPATH copy this process sees)
LIB_DIR = Path(course_lib.__file__).resolve().parent
#: the packages whose versions change numerical results
VERSIONED_PACKAGES = ("torch", "numpy")


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def library_digest(lib_dir: Path = LIB_DIR) -> str:
    """SHA-256 over the relative paths and bytes of every ``*.py`` under ``lib_dir`` (sorted)."""
    digest = hashlib.sha256()
    lib_dir = Path(lib_dir)
    for path in sorted(p for p in lib_dir.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(lib_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`VERSIONED_PACKAGES` (``"absent"`` when one is not installed)."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass(frozen=True)
class CacheKey:
    """What an executed notebook depends on; :attr:`digest` is the cache key."""

    source_sha256: str
    library_sha256: str
    mode: str  # "smoke" or "full"
    gpu_cells: bool
    versions: dict[str, str] = field(default_factory=dict)
    cache_version: int = CACHE_VERSION

    def parts(self) -> dict:
        return {"source_sha256": self.source_sha256, "library_sha256": self.library_sha256, "mode": self.mode,
                "gpu_cells": self.gpu_cells, "versions": dict(self.versions), "cache_version": self.cache_version}

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.parts(), sort_keys=True).encode()).hexdigest()


def cache_key(source: Path, *, smoke: bool, gpu_cells: bool, lib_dir: Path = LIB_DIR,
              library_sha256: str | None = None, audit_claims: bool = False) -> CacheKey:
    """The key of executing ``source`` in this mode with this library (pass ``library_sha256`` to reuse one digest).

    A full run with claims audited (``audit_claims``) is a mode of its own: its outputs may show failed claims.
    """
    return CacheKey(
        source_sha256=_sha256_file(source),
        library_sha256=library_sha256 or library_digest(lib_dir),
        mode="smoke" if smoke else "full-audit-claims" if audit_claims else "full",
        gpu_cells=bool(gpu_cells),
        versions=package_versions(),
    )


def record_path(output: Path) -> Path:
    """``build/executed/lectures/01-x/01-x.ipynb`` → ``build/executed/lectures/01-x/01-x.run.json``."""
    output = Path(output)
    return output.with_name(output.stem + RECORD_SUFFIX)


def read_record(output: Path) -> dict | None:
    """The record beside ``output``, or None when there is none or it is unreadable."""
    try:
        record = json.loads(record_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(output: Path, key: CacheKey, run: dict) -> Path:
    """Write the record of a successful run of ``output`` (``run``: mode, date, seconds, device, ...)."""
    output = Path(output)
    record = {"key": key.digest, "parts": key.parts(), "output_sha256": _sha256_file(output), **run}
    path = record_path(output)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def cached_run(output: Path, key: CacheKey) -> dict | None:
    """The record of ``output`` when it can be reused for ``key``: same key, notebook unchanged since."""
    output = Path(output)
    record = read_record(output)
    if not record or record.get("key") != key.digest or not output.exists():
        return None
    if record.get("output_sha256") != _sha256_file(output):
        return None
    return record


def why_not_cached(output: Path, key: CacheKey) -> str:
    """A sentence saying why ``output`` must be executed again (for ``--explain`` and for tests)."""
    output = Path(output)
    record = read_record(output)
    if record is None:
        return "no record of an earlier run"
    if not output.exists():
        return "the executed notebook is missing"
    old = record.get("parts", {})
    changed = [name for name, value in key.parts().items() if old.get(name) != value]
    if changed:
        return "changed since the last run: " + ", ".join(changed)
    if record.get("output_sha256") != _sha256_file(output):
        return "the executed notebook was overwritten since the last run"
    return "cached"
