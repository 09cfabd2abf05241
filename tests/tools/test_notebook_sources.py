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
