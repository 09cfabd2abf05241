"""The repository's local quality gates, run by pre-commit (``.pre-commit-config.yaml``) and ``make lint``.

    python -m course_tools.lint CHECK [FILE ...]

Checks (each exits 1 with one line per problem and the fix):

- ``format-changed``: ``ruff format --check`` on the Python files *added* since the merge base
  with ``main``. ruff format was never enforced on the repository; formatting the existing files
  (or the whole of a file an open branch touches with a small hunk) would conflict with every
  open branch, so modified files are not checked. Without a ``main`` ref (a shallow CI clone) it
  checks nothing and says so.
- ``jupytext-sync``: every ``.py`` source under lectures/ and solutions/ is a jupytext percent
  notebook in canonical form (reading and writing it back gives the same text, so its generated
  ``.ipynb`` twin maps back exactly) and declares the ``ipynb,py:percent`` pairing.
- ``no-notebooks``: git tracks no ``.ipynb`` under lectures/ and solutions/ (the twins are
  generated; outputs belong in build/executed).
- ``no-data``: git tracks no data files (archives, arrays, checkpoints, tables, images over
  :data:`MAX_DATA_BYTES`, any file over :data:`MAX_FILE_BYTES`) outside the allowed places.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from course_tools.layout import REPO_ROOT, SOURCE_DIRS

#: data-file suffixes that never belong in git (data sets come from course_lib.data's mirror or URL)
DATA_SUFFIXES = (
    ".gz",
    ".zip",
    ".tar",
    ".tgz",
    ".bz2",
    ".xz",
    ".7z",
    ".npy",
    ".npz",
    ".pt",
    ".pth",
    ".ckpt",
    ".safetensors",
    ".bin",
    ".h5",
    ".hdf5",
    ".pkl",
    ".pickle",
    ".parquet",
    ".feather",
    ".arrow",
    ".csv",
    ".tsv",
    ".mat",
    ".db",
    ".sqlite",
)
#: images and other binaries: allowed up to this size (logos, figures of the book)
MAX_DATA_BYTES = 200_000
#: no tracked file may be larger than this (assignments' notebooks and benchmark records are well below)
MAX_FILE_BYTES = 2_000_000
#: where a file with a data suffix is allowed anyway (small fixtures of the tests)
DATA_ALLOWED = ("tests/fixtures/",)
#: the pairing every notebook source declares
PAIRING = "formats: ipynb,py:percent"


def _git(args: Sequence[str], root: Path) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def tracked_files(root: Path = REPO_ROOT) -> list[str]:
    return [f for f in _git(["ls-files", "-z"], root).split("\0") if f]


def changed_files(root: Path = REPO_ROOT, base: str = "main") -> list[str] | None:
    """Files added (committed or untracked) since the merge base with ``base``; None without that ref."""
    try:
        merge_base = _git(["merge-base", "HEAD", base], root).strip()
    except subprocess.CalledProcessError:
        return None
    names = _git(["diff", "--name-only", "--diff-filter=A", merge_base], root).split()
    names += _git(["ls-files", "--others", "--exclude-standard"], root).split()
    return sorted(set(names))


def format_changed(files: Sequence[str], root: Path = REPO_ROOT) -> list[str]:
    changed = changed_files(root)
    if changed is None:
        print("format-changed: no `main` ref to compare with; nothing checked", file=sys.stderr)
        return []
    candidates = [f for f in changed if f.endswith(".py") and (root / f).is_file()]
    if files:
        given = set(files)
        candidates = [f for f in candidates if f in given]
    if not candidates:
        return []
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--force-exclude", *candidates],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return []
    # ruff prints "Would reformat: FILE" (older) or a diff headed "--> FILE:LINE:COL" (newer)
    found = re.findall(r"^Would reformat: (\S+)$", proc.stdout, re.M) + re.findall(r"--> (\S+?):\d+:\d+", proc.stdout)
    names = sorted(set(found)) or ["(ruff's output)"]
    return [f"{name}: not ruff-formatted (run `python -m ruff format {name}`)" for name in names]


def jupytext_sync(files: Sequence[str], root: Path = REPO_ROOT) -> list[str]:
    import jupytext

    problems = []
    sources = [f for f in files if f.endswith(".py") and f.split("/")[0] in SOURCE_DIRS and f.count("/") == 2]
    for rel in sources:
        text = (root / rel).read_text(encoding="utf-8")
        if PAIRING not in text.split("# ---", 2)[1 if text.startswith("# ---") else 0]:
            problems.append(f"{rel}: the jupytext header must declare `{PAIRING}` (copy it from another source)")
            continue
        try:
            nb = jupytext.reads(text, fmt="py:percent")
        except Exception as exc:  # jupytext raises many types
            problems.append(f"{rel}: not a jupytext percent notebook ({type(exc).__name__}: {exc})")
            continue
        again = _body(jupytext.writes(nb, fmt="py:percent"))
        text = _body(text)
        if again != text:
            first = next(
                i for i, (a, b) in enumerate(zip(again.splitlines() + [""], text.splitlines() + [""])) if a != b
            )
            problems.append(
                f"{rel}: line {first + 1} is not in jupytext's canonical form, so the .ipynb twin would not "
                f"map back to it (run `jupytext --to py:percent {rel}` and review the diff)"
            )
    return problems


def _body(text: str) -> str:
    """A percent source without its YAML header (jupytext adds version details to the header on writing)."""
    if text.startswith("# ---"):
        end = text.find("\n# ---", 5)
        return text[end + len("\n# ---") :] if end >= 0 else text
    return text


def no_notebooks(root: Path = REPO_ROOT) -> list[str]:
    return [
        f"{f}: a generated notebook is tracked; `git rm --cached {f}` (the .py next to it is the source)"
        for f in tracked_files(root)
        if f.endswith(".ipynb") and f.split("/")[0] in SOURCE_DIRS
    ]


def no_data(root: Path = REPO_ROOT) -> list[str]:
    problems = []
    for rel in tracked_files(root):
        path = root / rel
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        if rel.lower().endswith(DATA_SUFFIXES) and not rel.startswith(DATA_ALLOWED):
            problems.append(f"{rel}: a data file is tracked; data sets come through course_lib.data (mirror or URL)")
        elif size > MAX_FILE_BYTES:
            problems.append(f"{rel}: {size / 1e6:.1f} MB is too large to commit (limit {MAX_FILE_BYTES / 1e6:.0f} MB)")
        elif rel.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".svg", ".pdf")) and size > MAX_DATA_BYTES:
            problems.append(f"{rel}: an image of {size / 1e3:.0f} kB; keep figures under {MAX_DATA_BYTES / 1e3:.0f} kB")
    return problems


CHECKS = ("format-changed", "jupytext-sync", "no-notebooks", "no-data")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools.lint", description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=CHECKS)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    if args.check == "format-changed":
        problems = format_changed(args.files)
    elif args.check == "jupytext-sync":
        problems = jupytext_sync(args.files or tracked_files())
    elif args.check == "no-notebooks":
        problems = no_notebooks()
    else:
        problems = no_data()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
