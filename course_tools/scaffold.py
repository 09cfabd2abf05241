"""Add a lecture in one command: ``python -m course_tools new-lecture NN TOPIC`` (``make new-lecture NN=18 TOPIC=transformers``).

Writes, each only where it does not exist yet (existing files are kept and reported):

- ``lectures/NN-topic/NN-topic.py``: parameters cell, ``setup_notebook``, a skeleton of sections;
- ``solutions/NN-topic/NN-topic.py``: an nbgrader source with one autograded answer cell, its
  visible test and a hidden test;
- ``course_lib/<module>.py`` (``<module>`` = the topic with ``_`` for ``-``) with one example
  function, ``tests/test_<module>.py`` checking it against an independent oracle (torch), and
  ``benchmarks/<module>.py`` on the harness :mod:`course_tools.benchmarking`;
- the ``syllabus.toml`` entries: the ``[[lecture]]`` (modules, tests, benchmarks, date) — the
  planned entry of the same number is filled in rather than duplicated — and the
  ``[[assignment]]`` (release and due dates, answers, forbidden);

then regenerates the assignment's release (``assignments/NN-topic/``) and README.md's syllabus
table. The website's table of contents is built from ``syllabus.toml``, so it needs no edit. The
result passes ``make test`` as it is; replace the example function with the lecture's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.layout import ASSIGNMENTS, BENCHMARKS, LECTURES, REPO_ROOT, SOLUTIONS, SYLLABUS_FILE, TESTS

#: the example function every scaffolded module starts with (the assignment's one answer)
EXAMPLE = "mean_squared_error"
#: days from a lecture to its assignment's release, and from release to due date
RELEASE_AFTER_DAYS, DUE_AFTER_DAYS = 7, 14
LECTURE_KEYS = ("number", "folder", "title", "topics", "assignment", "date", "modules", "tests", "benchmarks")

JUPYTEXT_HEADER = """\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---
"""


class ScaffoldError(ValueError):
    """The lecture cannot be scaffolded as asked; the message says what to change."""


@dataclass
class Scaffold:
    """What :func:`scaffold` wrote and kept."""

    folder: str
    module: str
    assignment: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    syllabus: str = ""


def _slug(topic: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        raise ScaffoldError(f"TOPIC must start with a letter and use letters, digits and '-': got {topic!r}")
    return slug


def _number(nn: str) -> str:
    if not re.fullmatch(r"\d{1,2}", nn):
        raise ScaffoldError(f"NN must be a lecture number such as 18; got {nn!r}")
    return nn.zfill(2)


# ----------------------------------------------------------------------------------------------
# templates


def lecture_source(number: str, title: str, topics: str, module: str, with_claim: bool) -> str:
    claim_import = "from course_lib.notebook import claim, setup_notebook" if with_claim else \
        "from course_lib.notebook import setup_notebook"
    claim_line = (
        '\nclaim(float(loss) >= 0.0, "the mean squared error is never negative")\n' if with_claim else "\n"
    )
    return f'''{JUPYTEXT_HEADER}
# %% [markdown]
# # Lecture {number} · {title}
#
# Topics: {topics}.
#
# This lecture covers
# 1. the first idea, with its formula;
# 2. the second idea, implemented in `course_lib.{module}` and checked against an oracle;
# 3. a small experiment that measures what the lecture claims.
#
# Everything numerical comes from `course_lib.{module}`, whose tests (`tests/test_{module}.py`)
# compare each function with an independent implementation.

# %% tags=["parameters"]
SMOKE = False

# %%
import numpy as np
import torch

from course_lib import {module} as lib
{claim_import}

SMOKE = setup_notebook(SMOKE, seed=0)
N_SAMPLES = 256 if SMOKE else 65_536
print(f"smoke mode: {{SMOKE}}; {{N_SAMPLES}} samples")

# %% [markdown]
# ## 1. The first idea
#
# The mean squared error of predictions $\\hat y$ against targets $y$:
#
# $$\\mathrm{{MSE}}(\\hat y, y) = \\frac{{1}}{{n}} \\sum_{{i=1}}^{{n}} (\\hat y_i - y_i)^2 .$$

# %%
target = torch.randn(N_SAMPLES)
prediction = target + 0.1 * torch.randn(N_SAMPLES)
loss = lib.{EXAMPLE}(prediction, target)
print(f"MSE of predictions with noise of standard deviation 0.1: {{float(loss):.4f}} (expected about 0.01)")
{claim_line}
# %% [markdown]
# ## 2. The second idea
#
# (Replace this skeleton: one section per topic of the syllabus entry, each with its formula, the
# code from `course_lib.{module}` that computes it and a plot or a number that shows it.)

# %%
errors = np.array([float(lib.{EXAMPLE}(target + s * torch.randn(N_SAMPLES), target)) for s in (0.1, 0.2, 0.4)])
print("MSE for noise 0.1, 0.2, 0.4:", np.round(errors, 4))

# %% [markdown]
# ## Summary
#
# - the first idea;
# - the second idea.
'''


def solution_source(number: str, title: str, module: str) -> str:
    nbg = '"locked": true, "solution": false, "schema_version": 3'
    return f'''{JUPYTEXT_HEADER}
# %% [markdown] nbgrader={{"grade": false, "grade_id": "intro", {nbg}}}
# # Assignment {number} · {title}
#
# In this assignment you implement the building blocks of lecture {number}.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some of them also contain hidden tests that run only when your notebook is
# graded, on inputs you have not seen, against PyTorch. Run **Kernel → Restart & Run All**
# before you submit.
#
# Rules: tensor arithmetic only inside your functions (no `torch.nn.functional`, no
# `course_lib.{module}`).

# %% tags=["parameters"]
SMOKE = False

# %%
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={{"grade": false, "grade_id": "mse_md", {nbg}}}
# ## 1. The mean squared error (2 points)
#
# $$\\mathrm{{MSE}}(\\hat y, y) = \\frac{{1}}{{n}} \\sum_{{i=1}}^{{n}} (\\hat y_i - y_i)^2$$
#
# over all $n$ entries of two tensors of the same shape. Raise a `ValueError` when the shapes
# differ.

# %% nbgrader={{"grade": false, "grade_id": "mse", "locked": false, "solution": true, "schema_version": 3}}
def {EXAMPLE}(prediction, target):
    """Mean of the squared differences over every entry. prediction, target: the same shape -> scalar tensor."""
    ### BEGIN SOLUTION
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {{tuple(prediction.shape)}} and target {{tuple(target.shape)}} differ in shape")
    diff = prediction - target
    return (diff * diff).mean()
    ### END SOLUTION


# %% nbgrader={{"grade": true, "grade_id": "mse_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}}
assert_close({EXAMPLE}(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])), 2.0, "MSE of [1, 2] against [1, 4] is (0 + 4) / 2")
try:
    {EXAMPLE}(torch.zeros(2), torch.zeros(3))
except ValueError:
    pass
else:
    raise AssertionError("{EXAMPLE} must raise ValueError when the shapes differ")
### BEGIN HIDDEN TESTS
_gen = torch.Generator().manual_seed({int(number) * 101})
for _shape in [(1,), (7,), (3, 5), (2, 3, 4)]:
    _p, _t = torch.randn(_shape, generator=_gen), torch.randn(_shape, generator=_gen)
    assert_close({EXAMPLE}(_p, _t), torch.nn.functional.mse_loss(_p, _t), f"MSE on random tensors of shape {{_shape}}")
### END HIDDEN TESTS
'''


def module_source(number: str, title: str, module: str) -> str:
    return f'''"""{title} (lecture {number}): the lecture's functions, each tested against an oracle in tests/test_{module}.py."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["{EXAMPLE}"]


{example_function()}'''


def example_function() -> str:
    return f'''def {EXAMPLE}(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean of the squared differences over every entry; ``prediction``, ``target``: the same shape -> scalar.

    ``MSE = (1/n) sum_i (prediction_i - target_i)^2`` over all ``n`` entries.
    """
    if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("prediction and target must be tensors")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {{tuple(prediction.shape)}} and target {{tuple(target.shape)}} differ in shape")
    diff = prediction - target
    return (diff * diff).mean()
'''


def test_source(module: str) -> str:
    return f'''"""course_lib.{module} against independent oracles (torch.nn.functional)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.{module} import {EXAMPLE}


@pytest.mark.parametrize("seed", range(5))
def test_{EXAMPLE}_matches_torch_on_random_shapes(seed):
    gen = torch.Generator().manual_seed(seed)
    shape = tuple(int(s) for s in torch.randint(1, 6, (int(torch.randint(1, 4, (1,), generator=gen)),), generator=gen))
    prediction = torch.randn(shape, generator=gen, dtype=torch.float64)
    target = torch.randn(shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close({EXAMPLE}(prediction, target), F.mse_loss(prediction, target))


def test_{EXAMPLE}_of_equal_tensors_is_zero_and_shapes_must_match():
    x = torch.randn(4, 3)
    assert float({EXAMPLE}(x, x)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        {EXAMPLE}(torch.zeros(2), torch.zeros(3))
'''


def benchmark_source(number: str, module: str) -> str:
    return f'''"""How fast is course_lib.{module}.{EXAMPLE} next to torch.nn.functional.mse_loss? (lecture {number})

One float32 tensor of 10^6 entries (10^4 in smoke mode); median seconds of 5 calls each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.{module} import {EXAMPLE}
from course_tools.benchmarking import BenchmarkReport, benchmark_main, time_call


def run(smoke: bool) -> BenchmarkReport:
    torch.manual_seed(0)
    n = 10_000 if smoke else 1_000_000
    prediction, target = torch.randn(n), torch.randn(n)
    report = BenchmarkReport(f"{EXAMPLE} on {{n}} entries", ["implementation", "median seconds"])
    ours = time_call(lambda: {EXAMPLE}(prediction, target))
    theirs = time_call(lambda: F.mse_loss(prediction, target))
    report.add_row("course_lib.{module}.{EXAMPLE}", ours)
    report.add_row("torch.nn.functional.mse_loss", theirs)
    report.figures["course_lib / torch time ratio"] = ours / theirs
    return report


if __name__ == "__main__":
    benchmark_main("{module}", run)
'''


# ----------------------------------------------------------------------------------------------
# syllabus.toml


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"unsupported value {value!r}")


def _blocks(lines: list[str], header: str) -> list[tuple[int, int]]:
    """(first, end) line ranges of each ``header`` table: from the header to the first blank line after it."""
    out = []
    for i, line in enumerate(lines):
        if line.strip() == header:
            end = i + 1
            while end < len(lines) and lines[end].strip() and not lines[end].startswith("[["):
                end += 1
            out.append((i, end))
    return out


def lecture_block(entry: dict) -> list[str]:
    lines = ["[[lecture]]"]
    for key in LECTURE_KEYS:
        if key in entry and entry[key] is not None:
            lines.append(f"{key} = {_toml(entry[key])}")
    extra = sorted(set(entry) - set(LECTURE_KEYS))
    lines += [f"{key} = {_toml(entry[key])}" for key in extra]
    return lines


def assignment_block(name: str, release: dt.date, due: dt.date, module: str) -> list[str]:
    return [
        "[[assignment]]",
        f"name = {_toml(name)}",
        f"release = {release.isoformat()}",
        f"due = {due.isoformat()}",
        f'forbidden = ["torch.nn.functional", "course_lib.{module}"]',
        "[assignment.answers]",
        f'{EXAMPLE} = "course_lib.{module}.{EXAMPLE}"',
    ]


def update_syllabus(text: str, entry: dict, assignment: list[str] | None) -> str:
    """``syllabus.toml`` with lecture ``entry`` filled in (same number) or inserted in order, and ``assignment`` appended."""
    lines = text.splitlines()
    data = tomllib.loads(text)
    numbers = [lec["number"] for lec in data.get("lecture", [])]
    blocks = _blocks(lines, "[[lecture]]")
    if len(blocks) != len(numbers):
        raise ScaffoldError(f"{SYLLABUS_FILE}: cannot find the {len(numbers)} [[lecture]] tables one per block; "
                            "keep each entry's keys on consecutive lines")
    new = lecture_block(entry)
    if entry["number"] in numbers:
        first, end = blocks[numbers.index(entry["number"])]
        lines[first:end] = new
    else:
        later = [i for i, n in enumerate(numbers) if int(n) > int(entry["number"])]
        if later:
            at = blocks[later[0]][0]
            lines[at:at] = [*new, ""]
        else:
            at = blocks[-1][1] if blocks else len(lines)
            lines[at:at] = ["", *new]
    if assignment:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *assignment]
    out = "\n".join(lines) + "\n"
    parsed = tomllib.loads(out)  # never write a file that does not parse
    assert [lec["number"] for lec in parsed["lecture"]].count(entry["number"]) == 1
    return out


# ----------------------------------------------------------------------------------------------


def _has_claim(root: Path) -> bool:
    notebook = root / "course_lib" / "notebook.py"
    return notebook.exists() and re.search(r"^def claim\(", notebook.read_text(encoding="utf-8"), re.M) is not None


def scaffold(root: Path, nn: str, topic: str, *, title: str | None = None, topics: str | None = None,
             date: dt.date | None = None, assignment: bool = True) -> Scaffold:
    """Write the new lecture's files and syllabus entries into the checkout at ``root`` (no release, no README)."""
    root = Path(root)
    number, slug = _number(nn), _slug(topic)
    folder, module = f"{number}-{slug}", slug.replace("-", "_")
    syllabus_path = root / SYLLABUS_FILE
    text = syllabus_path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    lectures = data.get("lecture", [])
    planned = next((lec for lec in lectures if lec["number"] == number), None)
    for lec in lectures:
        if lec["folder"] == folder and lec["number"] != number:
            raise ScaffoldError(f"{SYLLABUS_FILE} already has folder {folder} as lecture {lec['number']}")
    if planned and (root / LECTURES / planned["folder"]).is_dir() and planned["folder"] != folder:
        raise ScaffoldError(f"lecture {number} exists already as {LECTURES}/{planned['folder']}/; pick another number")
    if (root / LECTURES / folder / f"{folder}.py").exists():
        raise ScaffoldError(f"{LECTURES}/{folder}/{folder}.py exists already: nothing to scaffold")

    entry: dict = dict(planned or {})
    entry["number"], entry["folder"] = number, folder
    entry.setdefault("title", title or slug.replace("-", " ").capitalize())
    if title:
        entry["title"] = title
    entry.setdefault("topics", topics or slug.replace("-", " "))
    if topics:
        entry["topics"] = topics
    if date or "date" not in entry:
        earlier = [lec["date"] for lec in lectures if "date" in lec and int(lec["number"]) < int(number)]
        entry["date"] = date or (max(earlier) + dt.timedelta(days=7) if earlier else dt.date.today())
    asg_name = entry.get("assignment") or (folder if assignment else "")
    specs = {a["name"] for a in data.get("assignment", [])}
    make_assignment = assignment and bool(asg_name) and not (root / SOLUTIONS / asg_name).exists()
    entry["assignment"] = asg_name
    mod_path, test_path, bench_path = f"course_lib/{module}.py", f"{TESTS}/test_{module}.py", f"{BENCHMARKS}/{module}.py"
    for key, path in (("modules", mod_path), ("tests", test_path), ("benchmarks", bench_path)):
        entry[key] = [*entry.get(key, []), *([] if path in entry.get(key, []) else [path])]

    result = Scaffold(folder, module, asg_name if make_assignment else "")
    title_text = entry["title"]

    def write(rel: str, content: str) -> None:
        path = root / rel
        if path.exists():
            result.kept.append(rel)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        result.written.append(rel)

    lib_file = root / mod_path
    if lib_file.exists() and not re.search(rf"^def {EXAMPLE}\(", lib_file.read_text(encoding="utf-8"), re.M):
        # an existing module gets the example function appended (the scaffold's lecture and assignment use it)
        lib_file.write_text(lib_file.read_text(encoding="utf-8").rstrip("\n") + "\n\n\n" + example_function(),
                            encoding="utf-8")
        result.written.append(f"{mod_path} (appended {EXAMPLE})")
    else:
        write(mod_path, module_source(number, title_text, module))
    write(test_path if not (root / test_path).exists() else f"{TESTS}/test_{module}_example.py", test_source(module))
    write(bench_path, benchmark_source(number, module))
    write(f"{LECTURES}/{folder}/{folder}.py", lecture_source(number, title_text, entry["topics"], module,
                                                          _has_claim(root)))
    block = None
    if make_assignment:
        write(f"{SOLUTIONS}/{asg_name}/{asg_name}.py", solution_source(number, title_text, module))
        if asg_name not in specs:
            release = entry["date"] + dt.timedelta(days=RELEASE_AFTER_DAYS)
            block = assignment_block(asg_name, release, release + dt.timedelta(days=DUE_AFTER_DAYS), module)
    if f"{TESTS}/test_{module}_example.py" in result.written:
        entry["tests"] = [*entry["tests"], f"{TESTS}/test_{module}_example.py"]
    syllabus_path.write_text(update_syllabus(text, entry, block), encoding="utf-8")
    result.syllabus = "filled planned entry" if planned else "added entry"
    return result


def main(argv: list[str] | None = None, prog: str = "python -m course_tools new-lecture") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("number", help="the lecture number, e.g. 18")
    parser.add_argument("topic", help="the topic slug, e.g. transformers (folder NN-topic, module course_lib.<topic>)")
    parser.add_argument("--title", help="the lecture's title (default: the planned entry's, else the topic)")
    parser.add_argument("--topics", help="the syllabus topics line (default: the planned entry's)")
    parser.add_argument("--date", type=dt.date.fromisoformat, help="the lecture's date (default: the planned entry's, "
                        "else a week after the previous lecture)")
    parser.add_argument("--no-assignment", action="store_true", help="no solutions/ source and no [[assignment]]")
    parser.add_argument("--no-release", action="store_true", help="do not regenerate the assignment's release now")
    args = parser.parse_args(argv)
    try:
        result = scaffold(REPO_ROOT, args.number, args.topic, title=args.title, topics=args.topics, date=args.date,
                          assignment=not args.no_assignment)
    except ScaffoldError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    for rel in result.written:
        print(f"wrote {rel}")
    for rel in result.kept:
        print(f"kept existing {rel}")
    print(f"{SYLLABUS_FILE}: {result.syllabus} for lecture {result.folder}")
    if result.assignment and not args.no_release:
        from course_tools.grading.release import generate

        generate(result.assignment, REPO_ROOT)
        print(f"wrote {ASSIGNMENTS}/{result.assignment}/ (nbgrader release)")
    from course_tools import syllabus

    syllabus.main([], prog="python -m course_tools syllabus")
    print("next: edit the files above, then `make test`; commit them together with assignments/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
