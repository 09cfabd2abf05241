"""What every grading worker imports, loaded once by the fork server the local pool starts them from.

:func:`course_tools.grading.scheduler.start_worker` forks each worker from a ``multiprocessing``
fork server that imported this module: a worker then starts with the grader, Jupyter's client and
numpy/torch (the trusted evaluator judges with them) already in memory, instead of spending 1-3 s
of CPU importing them for every submission. Each worker is still a process of its own, forked
before any grading happened, so nothing of one submission reaches the next.
"""

from __future__ import annotations

import contextlib
import sys

# jsonschema (imported by nbformat) builds ~40 parsers for the optional "iri" format checker of
# rfc3987_syntax at import time: 2+ s for a format nbformat never uses (as in autograde.main)
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import jupyter_client  # noqa: E402,F401
import nbformat  # noqa: E402,F401
import numpy  # noqa: E402,F401

import course_tools.grading.autograde  # noqa: E402,F401
import course_tools.grading.evaluator  # noqa: E402,F401
import course_tools.grading.kernel  # noqa: E402,F401
import course_tools.grading.runner  # noqa: E402,F401

with contextlib.suppress(ImportError):  # importing torch starts no thread: forking after it is safe
    import torch  # noqa: F401
