"""The two packages stay apart, and every folder and environment-variable name is defined once."""

from __future__ import annotations

import ast
import json
import pkgutil
import re
import subprocess
import sys

import course_lib
from course_tools import layout
from course_tools.layout import LAYOUT, REPO_ROOT

FORBIDDEN_IN_COURSE_LIB = ("nbgrader", "papermill", "nbval", "nbclient", "jupyter_book", "sphinx", "course_tools")


def course_lib_modules() -> list[str]:
    names = ["course_lib"]
    for info in pkgutil.walk_packages(course_lib.__path__, prefix="course_lib."):
        names.append(info.name)
    return sorted(names)


def test_course_lib_imports_no_tooling():
    """Every course_lib module, imported in a fresh interpreter, pulls in no Jupyter tooling and no course_tools."""
    modules = course_lib_modules()
    assert len(modules) > 10, modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    offenders = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN_IN_COURSE_LIB)
    assert not offenders, f"importing course_lib loaded tooling modules: {offenders[:20]}"


def test_course_lib_source_never_names_course_tools():
    for path in sorted((REPO_ROOT / "course_lib").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] in FORBIDDEN_IN_COURSE_LIB]
            assert not bad, f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {bad}"


def _python_files():
    roots = ["course_lib", "course_tools", "benchmarks"]
    files = [p for r in roots for p in (REPO_ROOT / r).rglob("*.py")]
    return sorted(files + [REPO_ROOT / "conftest.py", REPO_ROOT / "nbgrader_config.py"])


ENV_DEFINITION = re.compile(r"""^\s*([A-Z_]+)\s*=\s*["'](COURSE_[A-Z_]+|NBGRADER_EXECUTION)["']""", re.M)


def test_every_environment_variable_is_defined_once():
    """A name like ``COURSE_SMOKE`` is assigned to a constant in exactly one module; others import it."""
    definitions: dict[str, list[str]] = {}
    for path in _python_files():
        for match in ENV_DEFINITION.finditer(path.read_text(encoding="utf-8")):
            definitions.setdefault(match.group(2), []).append(str(path.relative_to(REPO_ROOT)))
    duplicated = {name: where for name, where in definitions.items() if len(where) > 1}
    assert not duplicated, f"environment variables defined more than once: {duplicated}"
    for name in ("COURSE_SMOKE", "COURSE_GPU", "COURSE_DATA_DIR", "COURSE_DATA_MIRROR", "COURSE_DATA_OFFLINE"):
        assert name in definitions, f"{name} is not defined as a constant anywhere"
    assert layout.SMOKE_ENV_VAR == "COURSE_SMOKE" and layout.GPU_ENV_VAR == "COURSE_GPU"


def test_no_module_uses_an_environment_variable_literal_it_does_not_define():
    """``os.environ["COURSE_SMOKE"]`` and friends go through the constants, not a second spelling."""
    use = re.compile(r"""environ(?:\.get|\.setdefault|\.pop)?\s*[\[(]\s*["'](COURSE_[A-Z_]+)["']""")
    offenders = []
    for path in _python_files():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if use.search(line):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "use the constants of course_tools.layout instead:\n" + "\n".join(offenders)


#: a folder name used as a path: ``root / "solutions"``, ``Path("grading")``, ``os.path.join(HERE, "grading")``
FOLDER_LITERAL = re.compile(
    r"""(?:/\s*|Path\(\s*|join\([^)]*,\s*|_directory\s*=\s*)["'](lectures|solutions|assignments|grading|build|book|benchmarks)["'/]"""
)


def test_folder_names_are_spelled_only_in_the_layout_module():
    """``root / "solutions"`` is written ``root / SOLUTIONS`` (or ``CourseLayout(root).solutions``) in the tooling."""
    offenders = []
    for path in _python_files():
        if path == REPO_ROOT / "course_tools" / "layout.py":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if FOLDER_LITERAL.search(code):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "spell folder names through course_tools.layout:\n" + "\n".join(offenders)


def test_there_is_one_repository_root():
    """One ``REPO_ROOT`` (course_tools.layout); conftest.py alone uses its own folder, since tests copy it."""
    defs = []
    for path in _python_files():
        if path.name == "conftest.py":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(r"^(REPO_ROOT|REPO|ROOT)\s*=\s*Path\(", line):
                defs.append(f"{path.relative_to(REPO_ROOT)}:{lineno}")
    assert defs == ["course_tools/layout.py:" + str(_line_of("course_tools/layout.py", "REPO_ROOT = Path("))], defs


def _line_of(rel: str, needle: str) -> int:
    for lineno, line in enumerate((REPO_ROOT / rel).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(needle):
            return lineno
    raise AssertionError(f"{needle!r} not in {rel}")


def test_layout_paths():
    assert LAYOUT.solutions == REPO_ROOT / "solutions" and LAYOUT.executed == REPO_ROOT / "build" / "executed"
    assert LAYOUT.gradebook == REPO_ROOT / "grading" / "gradebook.db"
    assert LAYOUT.source_dir("lectures") == LAYOUT.lectures
    try:
        LAYOUT.source_dir("nope")
    except ValueError as exc:
        assert "lectures" in str(exc)
    else:
        raise AssertionError("source_dir accepted an unknown kind")


def test_one_command_line_lists_every_command_and_each_has_help():
    from course_tools.__main__ import COMMANDS

    proc = subprocess.run([sys.executable, "-m", "course_tools", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0
    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)
    expected = {"sync", "execute", "site", "syllabus", "bench", "release", "check-release", "collect", "autograde",
                "feedback", "export"}
    assert expected <= set(COMMANDS)
    for name in COMMANDS:
        sub = subprocess.run([sys.executable, "-m", "course_tools", name, "--help"], capture_output=True, text=True,
                             cwd=REPO_ROOT, timeout=120)
        assert sub.returncode == 0 and "usage: python -m course_tools" in sub.stdout, (name, sub.stdout, sub.stderr)
    bad = subprocess.run([sys.executable, "-m", "course_tools", "frobnicate"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr
