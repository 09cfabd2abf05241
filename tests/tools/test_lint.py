"""The local quality gates: the pre-commit configuration, and each check on planted problems."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
import yaml

from course_tools import lint
from course_tools.layout import REPO_ROOT

SOURCE = (REPO_ROOT / "lectures/01-neural-networks/01-neural-networks.py").read_text()


def test_config_has_only_local_system_hooks_whose_commands_exist():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "hook repositories cannot be fetched here"
    hooks = config["repos"][0]["hooks"]
    assert {h["id"] for h in hooks} >= {
        "ruff-check",
        "ruff-format-new-files",
        "jupytext-sync",
        "no-notebooks",
        "no-data",
        "assignments-regenerated",
        "mypy",
    }
    for hook in hooks:
        assert hook["language"] == "system", hook["id"]
        words = hook["entry"].split()
        assert words[:2] == ["python", "-m"], hook["id"]
        assert importlib.util.find_spec(words[2]) is not None, f"{hook['id']}: no module {words[2]}"


def test_make_test_runs_lint_first():
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "lint" in recipe[1], "the first step of `make test` is `make lint`"
    assert "pre-commit run --all-files" in makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]


def test_the_repository_passes_the_fast_checks():
    assert lint.no_notebooks() == []
    assert lint.no_data() == []
    assert lint.jupytext_sync(lint.tracked_files()) == []


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "old.py").write_text("x = {  'a':1 }\n")  # never formatted, on main already
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "main")
    _git(tmp_path, "checkout", "-qb", "feature")
    return tmp_path


def test_format_check_covers_added_files_only(repo):
    (repo / "old.py").write_text("x = {  'a':1 }\ny = 2\n")
    (repo / "new.py").write_text("y = [1,2]\n")
    (repo / "new_ok.py").write_text("z = [1, 2]\n")
    problems = lint.format_changed([], root=repo)
    assert len(problems) == 1 and problems[0].startswith("new.py"), problems


def test_planted_notebook_data_and_unsynced_source_are_caught(repo):
    lecture = repo / "lectures/01-x"
    lecture.mkdir(parents=True)
    (lecture / "01-x.ipynb").write_text("{}")
    (repo / "mnist.npz").write_bytes(b"\0" * 10)
    (lecture / "01-x.py").write_text(SOURCE.replace("# %% [markdown]\n", "# %% [markdown]\n\n\n\n", 1))
    (lecture / "02-y.py").write_text(SOURCE.replace("formats: ipynb,py:percent", "formats: py:percent"))
    _git(repo, "add", "-A")
    assert lint.no_notebooks(repo) == [
        "lectures/01-x/01-x.ipynb: a generated notebook is tracked; `git rm --cached lectures/01-x/01-x.ipynb` "
        "(the .py next to it is the source)"
    ]
    assert [p.split(":")[0] for p in lint.no_data(repo)] == ["mnist.npz"]
    problems = lint.jupytext_sync(["lectures/01-x/01-x.py", "lectures/01-x/02-y.py"], root=repo)
    assert len(problems) == 2
    assert "canonical form" in problems[0] and "ipynb,py:percent" in problems[1]
