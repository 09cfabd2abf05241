"""Text notebooks (jupytext percent ``.py``) to ``.ipynb``, deterministically.

``lectures/`` and ``solutions/`` hold the sources; their ``.ipynb`` twins are generated here and
git-ignored. Cell ids are derived from the cell's position so that regenerating a notebook from an
unchanged source gives byte-identical JSON (the release check relies on it).

The notebook metadata is what the course's ``python3`` kernel reports on opening (its kernelspec
and its full ``language_info``): JupyterLab writes the kernel's ``language_info`` into the
notebook model when the kernel connects, and any difference marks a freshly opened, unmodified
notebook as modified (the tab's dot, and an "unsaved changes" prompt on closing it).
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

from course_tools.layout import LECTURES, REPO_ROOT, SOLUTIONS, SOURCE_DIRS


class NotebookSourceError(ValueError):
    """A notebook source could not be read or converted; the message names the file and the fix."""


#: the kernelspec of the course's kernel (ipykernel's ``python3``), as JupyterLab records it
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@functools.cache
def _kernel_language_info() -> dict:
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


def kernel_language_info() -> dict:
    """The ``language_info`` the course's kernel reports (ipykernel in this interpreter; its
    ``version`` is this Python's, e.g. ``3.11.7``): what JupyterLab writes into a notebook on opening it."""
    return copy.deepcopy(_kernel_language_info())


def find_sources(kind: str, root: Path = REPO_ROOT) -> list[Path]:
    """The notebook sources of ``kind`` (``"lectures"`` or ``"solutions"``): ``kind/NN-topic/*.py``."""
    if kind not in SOURCE_DIRS:
        raise ValueError(f"kind must be one of {SOURCE_DIRS}; got {kind!r}")
    return sorted(p for p in (root / kind).glob("*/*.py") if not p.name.startswith("_"))


def read_source(path: Path | str, *, strip_jupytext: bool = False):
    """Read a percent-format ``.py`` notebook into an ``nbformat`` v4 node with stable cell ids.

    With ``strip_jupytext`` the notebook-level ``jupytext`` metadata is dropped (release notebooks
    must not ask JupyterLab to pair them with a ``.py`` file on the student's machine).
    """
    import jupytext
    import nbformat

    path = Path(path)
    if not path.exists():
        raise NotebookSourceError(f"notebook source {path} does not exist")
    try:
        nb = jupytext.read(path, fmt="py:percent")
    except Exception as exc:  # jupytext raises many types; report them uniformly
        raise NotebookSourceError(
            f"could not read {path} as a jupytext percent notebook ({type(exc).__name__}: {exc}); "
            "check the '# %%' cell markers and the JSON metadata on them"
        ) from exc
    nb.nbformat, nb.nbformat_minor = 4, 5
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
    if strip_jupytext:
        nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
    # jupytext's own minimal {"name": "python"} (or none): the kernel's full one, so that opening
    # the notebook in JupyterLab does not mark it modified
    if nb.metadata.get("language_info", {}).keys() <= {"name"}:
        nb.metadata["language_info"] = kernel_language_info()
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookSourceError(f"{path} converts to an invalid notebook: {exc.message}") from exc
    return nb


def write_notebook(nb, path: Path | str) -> Path:
    """Write ``nb`` atomically (temp file + rename), so a crash never leaves half a notebook."""
    import nbformat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    os.replace(tmp, path)
    return path


def ipynb_twin(source: Path) -> Path:
    return source.with_suffix(".ipynb")


def _minimal_language_info(twin: Path) -> bool:
    """A twin written before the generator recorded the kernel's full ``language_info`` (it would
    open in JupyterLab as modified, and through jupytext's pairing so would its ``.py``)."""
    try:
        info = json.loads(twin.read_text(encoding="utf-8")).get("metadata", {}).get("language_info", {})
    except (OSError, ValueError, AttributeError):
        return True
    return not isinstance(info, dict) or info.keys() <= {"name"}


def sync(sources: list[Path] | None = None, *, root: Path = REPO_ROOT) -> list[Path]:
    """Write the ``.ipynb`` twin beside every source whose twin is missing, older, or lacks the
    kernel's ``language_info``; return them all."""
    if sources is None:
        sources = find_sources(LECTURES, root) + find_sources(SOLUTIONS, root)
    twins = []
    for src in sources:
        twin = ipynb_twin(src)
        if not twin.exists() or twin.stat().st_mtime < src.stat().st_mtime or _minimal_language_info(twin):
            write_notebook(read_source(src, strip_jupytext=src.parts[-3] == SOLUTIONS), twin)
            # the source's timestamp: jupytext (JupyterLab) warns on every opening of a .py whose
            # paired .ipynb is more recent
            stat = src.stat()
            os.utime(twin, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        twins.append(twin)
    return twins
