"""Conventions every lecture and assignment source must follow (DESIGN.md, "Notebooks")."""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.gpu import is_gpu_cell
from course_tools.layout import REPO_ROOT
from course_tools.notebooks.convert import find_sources, read_source

ROOT = REPO_ROOT
SOURCES = find_sources("lectures", ROOT) + find_sources("solutions", ROOT)


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_there_are_sources():
    assert find_sources("lectures", ROOT), "no lecture sources found under lectures/"
    assert find_sources("solutions", ROOT), "no assignment sources found under solutions/"


@pytest.mark.parametrize("source", SOURCES, ids=rel)
def test_first_code_cell_is_the_smoke_parameter(source):
    nb = read_source(source)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{rel(source)} has no code cells"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{rel(source)}: the first code cell must be tagged 'parameters'"
    assert "SMOKE = False" in first.source, f"{rel(source)}: the parameters cell must set SMOKE = False"
    assert any("setup_notebook(SMOKE" in c.source or "smoke_mode(SMOKE" in c.source for c in code[1:3]), (
        f"{rel(source)}: the cell after the parameters must call setup_notebook(SMOKE) so COURSE_SMOKE=1 works"
    )


@pytest.mark.parametrize("source", SOURCES, ids=rel)
def test_folder_and_file_follow_the_naming_scheme(source):
    folder = source.parent.name
    assert folder[:2].isdigit() and folder[2] == "-", f"{rel(source)}: folders are named NN-topic"
    assert source.stem.startswith(folder[:2]), f"{rel(source)}: notebook names start with the lecture number"


@pytest.mark.parametrize("source", find_sources("solutions", ROOT), ids=rel)
def test_graded_cells_are_well_formed(source):
    nb = read_source(source)
    ids = []
    graded = 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta:
            continue
        ids.append(meta["grade_id"])
        if meta.get("grade"):
            graded += 1
            assert not is_gpu_cell(cell), f"{rel(source)}: graded cell {meta['grade_id']} is tagged gpu (it would score full points when skipped)"
            assert meta.get("points", 0) > 0, f"{rel(source)}: graded cell {meta['grade_id']} has no points"
            assert "tqdm" not in cell.source, f"{rel(source)}: {meta['grade_id']} uses tqdm (stderr output scores 0 in nbgrader)"
        if meta.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, f"{rel(source)}: solution cell {meta['grade_id']} has no BEGIN SOLUTION region"
    assert graded, f"{rel(source)} has no graded test cells"
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"{rel(source)}: duplicate grade_ids {dupes}"


def test_every_lecture_folder_is_in_the_syllabus():
    from course_tools.syllabus import load

    folders = {lec.folder for lec in load(ROOT)}
    for source in find_sources("lectures", ROOT):
        assert source.parent.name in folders, f"{source.parent.name} is not listed in syllabus.toml"


# --------------------------------------------------------------------------------------------
# stated results and the lecture skeleton (course_lib.notebook's conventions)

LECTURE_SOURCES = find_sources("lectures", ROOT)


def test_stated_result_heuristic_flags_an_unclaimed_percentage_and_accepts_a_claim_or_the_marker():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from course_tools.notebooks.conventions import unclaimed_results

    nb = new_notebook(cells=[new_markdown_cell("## 1. Results\n\nThe CNN beats the MLP: 98.7 % against 23 %."),
                             new_code_cell("print(acc)"), new_markdown_cell("## 2. Next")])
    found = unclaimed_results(nb)
    assert len(found) == 1 and found[0].cell == 0, found
    nb.cells[1].source = 'claim(cnn > mlp, "the CNN beats the MLP")'
    assert unclaimed_results(nb) == []
    nb.cells[1].source = "print(acc)"
    nb.cells[0].source += " <!-- narrative: quoted from a paper -->"
    assert unclaimed_results(nb) == []
    # a claim after the next section heading does not count; math and code spans are ignored
    nb = new_notebook(cells=[new_markdown_cell("Adam diverges here."), new_markdown_cell("## 2. Next"),
                             new_code_cell('claim(True, "x")'), new_markdown_cell("Formula $a > b$ with `lower()`.")])
    assert [f.cell for f in unclaimed_results(nb)] == [0]


@pytest.mark.parametrize("source", LECTURE_SOURCES, ids=rel)
def test_every_stated_result_in_a_lecture_has_a_claim(source):
    from course_tools.notebooks.conventions import unclaimed_results

    found = unclaimed_results(read_source(source))
    assert not found, (f"{rel(source)} states results with no claim(...) in the cells after them (before the next "
                       "section); add course_lib.notebook.claim(condition, statement) or mark a narrative paragraph "
                       "<!-- narrative -->:\n  " + "\n  ".join(map(str, found)))


@pytest.mark.parametrize("source", LECTURE_SOURCES, ids=rel)
def test_every_lecture_follows_the_skeleton(source):
    from course_tools import syllabus
    from course_tools.notebooks.conventions import skeleton_expectations, skeleton_problems

    lec = {lec.folder: lec for lec in syllabus.load(ROOT)}[source.parent.name]
    problems = skeleton_problems(read_source(source), **skeleton_expectations(lec))
    assert not problems, f"{rel(source)} (skeleton described in course_lib/notebook.py):\n  " + "\n  ".join(problems)


def test_skeleton_check_reports_what_is_missing():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from course_tools.notebooks.conventions import skeleton_problems

    nb = new_notebook(cells=[new_markdown_cell("# Lecture 98 · Demo\n\nIntro."), new_markdown_cell("## 2. Second"),
                             new_code_cell("fig, ax = subplots()\nplt.show()")])
    problems = "\n".join(skeleton_problems(nb, assignment="98-demo", modules=["course_lib.demo"]))
    for needle in ["Learning goals", "numbered 1, 2, 3", "Summary", "Where to go next", "plt.show()"]:
        assert needle in problems, (needle, problems)
    nb.cells = [new_markdown_cell("# Lecture 98 · Demo\n\n**Learning goals**\n1. x"), new_markdown_cell("## 1. First"),
                new_code_cell('show(fig, "A caption.")'), new_markdown_cell("## Summary\n\n- x"),
                new_markdown_cell("## Where to go next\n\n[a](assignments/98-demo/98-demo.ipynb), `course_lib.demo`")]
    assert skeleton_problems(nb, assignment="98-demo", modules=["course_lib.demo"]) == []
