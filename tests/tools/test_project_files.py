"""Packaging, environment and README stay consistent with each other."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from course_tools.layout import REPO_ROOT

ROOT = REPO_ROOT


def pyproject_pins() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = data["project"]["optional-dependencies"]
    return data["project"]["dependencies"] + [pin for group in extras.values() for pin in group]


def test_every_dependency_is_pinned_exactly_and_torch_is_the_cpu_release():
    pins = pyproject_pins()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.+]*", p) for p in pins), [p for p in pins if "==" not in p]
    assert "torch==2.13.0" in pins
    assert not any(p.startswith("torchvision") for p in pins), "torchvision does not import beside the CPU torch build"


def test_environment_yml_has_the_same_pins_as_pyproject():
    text = (ROOT / "environment.yml").read_text()
    pip_section = [ln.strip()[2:] for ln in text.splitlines() if ln.startswith("      - ")]
    assert sorted(p for p in pip_section if not p.startswith("-e .")) == sorted(pyproject_pins())
    assert "  - python=3.11" in text


def test_constraints_agree_with_pyproject():
    constraints = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            constraints[name.lower().replace("_", "-")] = version
    for pin in pyproject_pins():
        name, version = pin.split("==")
        assert constraints.get(name.lower().replace("_", "-")) == version, f"{pin} disagrees with requirements/constraints.txt"


def test_readme_syllabus_table_is_current():
    proc = subprocess.run([sys.executable, "-m", "course_tools.syllabus", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_readme_gives_exactly_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in block.strip().splitlines()]
    assert commands == ["make course", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_syllabus_links_point_to_existing_files():
    from course_tools.syllabus import table

    for target in re.findall(r"\]\(([^)]+)\)", table(ROOT)):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
