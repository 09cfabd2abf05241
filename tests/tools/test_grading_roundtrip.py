"""End-to-end grading with nbgrader in a temporary course folder.

For every assignment: the solution scores full marks, the untouched release scores 0 on every
graded cell, and grades export to CSV. For assignment 01 a submission with one known-wrong
function loses exactly that function's points. A synthetic assignment with a ``gpu`` cell shows
that nbgrader skips it (visibly) without CUDA and runs it when CUDA is (faked) present.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from course_lib.gpu import SKIP_MESSAGE
from course_tools.grading import nbgrader_cli
from course_tools.grading.release import assignment_names, generate, nbgrader_env, run_nbgrader
from course_tools.layout import REPO_ROOT

ROOT = REPO_ROOT
ASSIGNMENTS = assignment_names(ROOT)


def make_course(tmp: Path, names: list[str]) -> Path:
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for name in names:
        shutil.copytree(ROOT / "solutions" / name, course / "solutions" / name, ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    return course


def submit(course: Path, student: str, name: str, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    folder = course / "grading" / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    for fname, nb in notebooks.items():
        nbformat.write(nb, folder / fname)


def scores_by_student(course: Path, name: str) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for s in nbgrader_cli.cell_scores(name, course):
        out[s.student][f"{s.notebook}:{s.grade_id}"] = (s.score, s.max_score)
    return out


def replace_in_solution_cell(nb, grade_id: str, old: str, new: str):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            assert old in cell.source, f"{old!r} not in cell {grade_id}"
            cell.source = cell.source.replace(old, new)
            return nb
    raise AssertionError(f"no cell {grade_id}")


# known-wrong answers: (assignment, notebook, solution cell, text, replacement, test cell that must fail)
WRONG_ANSWERS = [
    ("01-neural-networks", "01-neural-networks.ipynb", "sigmoid", "return s * (1.0 - s)", "return s", "sigmoid_tests"),
]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Generate, submit (solution, untouched release, known-wrong) and autograde every assignment."""
    course = make_course(tmp_path_factory.mktemp("grading"), ASSIGNMENTS)
    for name in ASSIGNMENTS:
        release = generate(name, course)
        sources = {p.name: nbformat.read(p, as_version=4) for p in sorted((course / "solutions" / name).glob("*.ipynb"))}
        submit(course, "solution", name, sources)
        submit(course, "untouched", name, {p.name: nbformat.read(p, as_version=4) for p in sorted(release.glob("*.ipynb"))})
        for wrong in [w for w in WRONG_ANSWERS if w[0] == name]:
            _, fname, cell, old, new, failing_test = wrong
            wrong_nb = replace_in_solution_cell(sources[fname], cell, old, new)
            submit(course, f"wrong-{cell}", name, {**sources, fname: wrong_nb})
            # the same wrong answer, with its failing test cell tagged gpu to have it skipped
            tagged = nbformat.from_dict(json.loads(json.dumps(wrong_nb)))
            for c in tagged.cells:
                if c.metadata.get("nbgrader", {}).get("grade_id") == failing_test:
                    c.metadata["tags"] = [*c.metadata.get("tags", []), "gpu"]
            submit(course, f"gpu-tagged-{cell}", name, {**sources, fname: tagged})
        nbgrader_cli.autograde(name, course)
    return course


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_scores_full_marks(graded, name):
    scores = scores_by_student(graded, name)["solution"]
    assert scores, f"no graded cells recorded for the solution of {name}"
    lost = {cell: s for cell, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the solution of {name} lost points on {lost}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_release_scores_zero_everywhere(graded, name):
    scores = scores_by_student(graded, name)["untouched"]
    assert scores and all(max_score > 0 for _, max_score in scores.values())
    earned = {cell: s for cell, s in scores.items() if s[0] != 0}
    assert not earned, f"the untouched release of {name} earned points on {earned}: a test passes without an answer"


@pytest.mark.parametrize("student", ["wrong", "gpu-tagged"], ids=["plain", "test-cell-tagged-gpu"])
@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=[f"{w[0]}:{w[2]}" for w in WRONG_ANSWERS])
def test_known_wrong_answer_loses_exactly_its_points(graded, wrong, student):
    """Also when the student tags the failing test cell gpu (a skipped graded cell would score full points)."""
    name, fname, cell, _, _, failing_test = wrong
    scores = scores_by_student(graded, name)[f"{student}-{cell}"]
    notebook = Path(fname).stem
    for cell_id, (score, max_score) in scores.items():
        if cell_id == f"{notebook}:{failing_test}":
            assert score == 0, f"{cell_id} should fail for the wrong {cell}, scored {score}/{max_score}"
        else:
            assert score == max_score, f"{cell_id} should be unaffected by the wrong {cell}, scored {score}/{max_score}"


def test_grades_export_to_csv(graded):
    path = nbgrader_cli.export(graded)
    rows = list(csv.DictReader(path.open()))
    by_key = {(r["assignment"], r["student_id"]): r for r in rows}
    for name in ASSIGNMENTS:
        solution, untouched = by_key[(name, "solution")], by_key[(name, "untouched")]
        assert float(solution["score"]) == float(solution["max_score"]) > 0
        assert float(untouched["score"]) == 0.0


def test_feedback_is_generated(graded):
    name = ASSIGNMENTS[0]
    nbgrader_cli.feedback(name, graded)
    pages = list((graded / "grading" / "feedback" / "solution" / name).glob("*.html"))
    assert pages, "no feedback HTML written"
    assert "Test cell" in pages[0].read_text() or "Points" in pages[0].read_text()


GPU_SOURCE = '''# %% tags=["parameters"]
SMOKE = False

# %% nbgrader={"grade": false, "grade_id": "answer", "locked": false, "solution": true, "schema_version": 3}
def answer():
    ### BEGIN SOLUTION
    return 42
    ### END SOLUTION

# %% tags=["gpu"]
print("gpu cell executed")

# %% nbgrader={"grade": true, "grade_id": "answer_test", "locked": true, "points": 3, "solution": false, "schema_version": 3}
assert answer() == 42
'''


@pytest.mark.parametrize("has_cuda", [False, True], ids=["no-cuda", "fake-cuda"])
def test_gpu_cells_are_skipped_without_cuda_and_run_with_it(tmp_path, has_cuda):
    course = make_course(tmp_path, [])
    (course / "solutions" / "99-gpu").mkdir(parents=True)
    (course / "solutions" / "99-gpu" / "99-gpu.py").write_text(GPU_SOURCE)
    env = nbgrader_env({"COURSE_GPU": "1" if has_cuda else "0"})
    generate("99-gpu", course)
    submit(course, "alice", "99-gpu", {"99-gpu.ipynb": nbformat.read(course / "solutions" / "99-gpu" / "99-gpu.ipynb", 4)})
    run_nbgrader(["autograde", "99-gpu"], course, env=env)
    [score] = nbgrader_cli.cell_scores("99-gpu", course)
    assert (score.score, score.max_score) == (3.0, 3.0)
    graded_nb = nbformat.read(course / "grading" / "autograded" / "alice" / "99-gpu" / "99-gpu.ipynb", 4)
    [gpu_cell] = [c for c in graded_nb.cells if "gpu" in c.metadata.get("tags", [])]
    text = "".join(o.get("text", "") for o in gpu_cell.outputs)
    assert text == ("gpu cell executed\n" if has_cuda else SKIP_MESSAGE)
