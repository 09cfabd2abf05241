"""Dependency canary: the course on the newest release of every dependency but torch (``make canary``).

    python -m course_tools.canary [--venv build/canary/venv] [--keep]

Creates a throwaway venv, installs the pinned torch and the newest release pip resolves for every
other direct dependency of ``pyproject.toml`` (base, ``tools`` and ``test`` extras; no
constraints file), the course itself without dependencies, then runs the library tests
(``tests/`` without ``tests/tools``) and two representative notebooks in smoke mode (lecture 02:
numpy backprop and MNIST; lecture 04: torch optimisers and training). Prints a table package →
pinned → newest → pass/fail and exits 1 when something failed. A package's pass/fail is the
outcome of the whole run with that version installed; where the run fails, the failing tests and
notebooks are listed so the culprit can be found (upgrade one package at a time in the venv kept
with ``--keep``). Not part of CI: it needs the package registry and several minutes.

To try a newer torch where the machine allows it, edit the ``torch==`` pin in ``pyproject.toml``
on a branch and run ``make canary`` there (torch is kept pinned by default because its wheels are
large and CPU/GPU-specific).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

from course_tools.layout import LAYOUT, LECTURES, REPO_ROOT

NOTEBOOKS = (f"{LECTURES}/02-backpropagation/02-backpropagation.py", f"{LECTURES}/04-optimization/04-optimization.py")
KEEP_PINNED = ("torch",)


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].strip()


def direct_dependencies(root: Path = REPO_ROOT) -> dict[str, str]:
    """Package → pinned version of every direct dependency (base and extras)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"]) + [
        r for extra in project.get("optional-dependencies", {}).values() for r in extra
    ]
    out = {}
    for req in reqs:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^;\s]+)", req)
        if match:
            out[match.group(1)] = match.group(3)
    return out


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, capture_output=True, cwd=cwd, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools.canary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=LAYOUT.build / "canary" / "venv")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    args = parser.parse_args(argv)
    pins = direct_dependencies()
    if args.venv.exists():
        shutil.rmtree(args.venv)
    venv.EnvBuilder(with_pip=True, clear=True).create(args.venv)
    py = str(args.venv / "bin" / "python")
    wanted = [f"{n}=={v}" if n in KEEP_PINNED else n for n, v in pins.items()]
    steps = [
        [py, "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [py, "-m", "pip", "install", "-q", "--upgrade", *wanted],
        [py, "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO_ROOT)],
    ]
    for cmd in steps:
        proc = _run(cmd)
        if proc.returncode != 0:
            print(f"canary: installing failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
    listing = json.loads(_run([py, "-m", "pip", "list", "--format", "json"]).stdout)
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in listing}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"OMP_NUM_THREADS": "1", "COURSE_SMOKE": "1", "PATH": f"{args.venv / 'bin'}{os.pathsep}{env['PATH']}"})
    failures: list[str] = []
    tests = _run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "tests", "--ignore=tests/tools"],
        cwd=REPO_ROOT,
        env=env,
    )
    summary = (tests.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"library tests: {summary}")
    if tests.returncode != 0:
        failures += [ln for ln in tests.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))] or [summary]
    with tempfile.TemporaryDirectory() as tmp:
        nb = _run(
            [py, "-m", "course_tools", "execute", "--jobs", "1", "--build-dir", tmp, *NOTEBOOKS], cwd=REPO_ROOT, env=env
        )
        print(nb.stdout[-2000:])
        if nb.returncode != 0:
            failures.append(f"notebooks: {nb.stdout[-1500:]}{nb.stderr[-1500:]}")
    verdict = "pass" if not failures else "fail"
    width = max(map(len, pins))
    print(f"\n{'package':<{width}}  {'pinned':<14}  {'newest':<14}  result")
    for name, pinned in pins.items():
        newest = installed.get(name.lower().replace("_", "-"), "?")
        note = "kept pinned" if name in KEEP_PINNED else ("same" if newest == pinned else "newer")
        print(f"{name:<{width}}  {pinned:<14}  {newest:<14}  {verdict} ({note})")
    for failure in failures:
        print(f"  {failure}")
    if not args.keep:
        shutil.rmtree(args.venv, ignore_errors=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
