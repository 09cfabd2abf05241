"""The one place that decides whether ``gpu``-tagged notebook cells run.

Cells that need a CUDA GPU carry the cell tag ``gpu``. Where no CUDA device exists, every
executor of the course (papermill via :mod:`course_tools.notebooks.execute`, nbval via ``conftest.py``,
nbgrader via ``nbgrader_config.py``) skips them, and the executed notebook shows
:data:`SKIP_MESSAGE` as the cell's output. ``COURSE_GPU=0`` / ``COURSE_GPU=1`` overrides the
check (tests use it to fake either branch; ``nbgrader_config.py`` uses it to avoid importing torch).
"""

from __future__ import annotations

import os

GPU_TAG = "gpu"
SKIP_MESSAGE = "skipped: needs a CUDA GPU (this cell is tagged 'gpu' and no CUDA device was found)\n"
GPU_ENV_VAR = "COURSE_GPU"


def cuda_available() -> bool:
    """True when ``gpu`` cells should run: ``COURSE_GPU`` if set, else ``torch.cuda.is_available()``."""
    forced = os.environ.get(GPU_ENV_VAR, "").strip().lower()
    if forced in {"0", "false", "no", "off"}:
        return False
    if forced in {"1", "true", "yes", "on"}:
        return True
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def is_gpu_cell(cell) -> bool:
    """True when a notebook cell (an ``nbformat`` node or dict) carries the ``gpu`` tag."""
    tags = cell.get("metadata", {}).get("tags", []) or []
    return GPU_TAG in tags


def skip_tag(has_cuda: bool | None = None) -> str | None:
    """The tag nbclient should skip (``skip_cells_with_tag``): ``"gpu"`` without CUDA, else None."""
    if has_cuda is None:
        has_cuda = cuda_available()
    return None if has_cuda else GPU_TAG


def mark_skipped_gpu_cells(nb) -> int:
    """Give every un-executed ``gpu`` cell of ``nb`` the visible skip message; return how many.

    Called on a notebook after an executor ran it with ``gpu`` cells skipped, so readers of the
    executed notebook (and of the website) see why the cell has no output.
    """
    import nbformat

    count = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and is_gpu_cell(cell) and not cell.get("outputs"):
            cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=SKIP_MESSAGE)]
            count += 1
    return count
