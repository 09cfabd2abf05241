"""The similarity report (issue 11, section 3): token winnowing over answer cells, given code ignored,
references compared, hostile input contained, no score touched. Synthetic courses in tmp dirs; no kernel."""

from __future__ import annotations

import csv
import itertools
import json
import shutil

import nbformat
import pytest

from course_tools.grading import similarity as sim
from course_tools.layout import REPO_ROOT

NAME = "toy"

# the given code: a helper of a locked cell that students paste into their answers, and the stubs' signatures
GIVEN_HELPER = '''def check_matrix(a, name, ndim=2):
    """Raise ValueError unless a is an ndarray with ndim dimensions."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has NaN or infinite entries")
    return a
'''
SIGNATURES = {
    "softmax": 'def softmax(z):\n    """Row-wise softmax of z: (N, K) -> (N, K)."""\n',
    "conv1d": 'def conv1d(x, w, stride=1):\n    """Valid 1-d cross-correlation of x: (L,) with w: (k,) -> (floor((L - k) / stride) + 1,)."""\n',
    "moving_average": 'def moving_average(x, n):\n    """Means of the n-long windows of x: (L,) -> (L - n + 1,)."""\n',
}
IDS = list(SIGNATURES)

# the instructor's solution, and the course_lib reference (written differently, as in the course)
SOLUTION = {
    "softmax": "    shifted = z - z.max(axis=1, keepdims=True)\n    e = np.exp(shifted)\n    return e / e.sum(axis=1, keepdims=True)\n",
    "conv1d": "    k = len(w)\n    n_out = (len(x) - k) // stride + 1\n    return np.array([x[i * stride:i * stride + k] @ w for i in range(n_out)])\n",
    "moving_average": "    c = np.cumsum(np.concatenate([[0.0], x]))\n    return (c[n:] - c[:-n]) / n\n",
}
TOYLIB = '''"""A toy course_lib module: the references of the toy assignment."""
import numpy as np


def _check_1d(x, name):
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {x.shape}")
    return x


def softmax(z):
    m = np.max(z, axis=-1, keepdims=True)
    ez = np.exp(z - m)
    total = np.sum(ez, axis=-1, keepdims=True)
    return ez / total


def conv1d(x, w, stride=1):
    _check_1d(x, "x")
    _check_1d(w, "w")
    k = w.shape[0]
    if k > x.shape[0]:
        raise ValueError(f"filter of length {k} is longer than the input of length {x.shape[0]}")
    starts = np.arange(0, x.shape[0] - k + 1, stride)
    windows = x[starts[:, None] + np.arange(k)[None, :]]
    return windows @ w


def moving_average(x, n):
    _check_1d(x, "x")
    kernel = np.full(n, 1.0 / n)
    return np.convolve(x, kernel, mode="valid")
'''

ALICE = {  # honest, loops
    "softmax": """    out = np.empty_like(z, dtype=float)
    for row in range(z.shape[0]):
        biggest = z[row].max()
        expd = np.exp(z[row] - biggest)
        out[row] = expd / expd.sum()
    return out
""",
    "conv1d": """    length = x.shape[0]
    taps = w.shape[0]
    result = []
    pos = 0
    while pos + taps <= length:
        acc = 0.0
        for j in range(taps):
            acc += x[pos + j] * w[j]
        result.append(acc)
        pos += stride
    return np.array(result)
""",
    "moving_average": """    means = []
    for start in range(len(x) - n + 1):
        window = x[start:start + n]
        means.append(sum(window) / n)
    return np.array(means)
""",
}
BOB = {  # honest, vectorised differently
    "softmax": """    # subtract the row maximum for stability
    e = np.exp(z - np.max(z, 1)[:, None])
    s = np.sum(e, 1)
    return e / s[:, None]
""",
    "conv1d": """    w = np.asarray(w)
    idx = np.arange(len(w))[None, :] + stride * np.arange((len(x) - len(w)) // stride + 1)[:, None]
    return (x[idx] * w).sum(-1)
""",
    "moving_average": """    if n <= 0:
        raise ValueError("n must be positive")
    total = x[:n].sum()
    out = [total / n]
    for i in range(n, len(x)):
        total = total + x[i] - x[i - n]
        out.append(total / n)
    return np.asarray(out)
""",
}


def _rename(code: str) -> str:
    """Alice's code as a copier hands it in: every variable renamed, comments and blank lines added."""
    for old, new in [
        ("out", "res"),
        ("row", "r"),
        ("biggest", "mx"),
        ("expd", "ex"),
        ("length", "L"),
        ("taps", "K"),
        ("result", "vals"),
        ("pos", "p"),
        ("acc", "tot"),
        ("means", "avg"),
        ("start", "s0"),
        ("window", "chunk"),
    ]:
        code = __import__("re").sub(rf"\b{old}\b", new, code)
    lines = code.splitlines(keepends=True)
    return "".join(ln + ("    # my own idea\n\n" if i % 2 else "") for i, ln in enumerate(lines))


def _source_py(solution: dict[str, str]) -> str:
    cells = [
        "# %% [markdown]\n# # Toy assignment\n",
        "# %%\nimport numpy as np\n",
        '# %% nbgrader={"grade": false, "grade_id": "helper", "locked": true, "solution": false, "schema_version": 3}\n'
        + GIVEN_HELPER,
    ]
    for gid in IDS:
        cells.append(
            f'# %% nbgrader={{"grade": false, "grade_id": "{gid}", "locked": false, "solution": true, '
            f'"schema_version": 3}}\n{SIGNATURES[gid]}    ### BEGIN SOLUTION\n{solution[gid]}    ### END SOLUTION\n'
        )
        cells.append(
            f'# %% nbgrader={{"grade": true, "grade_id": "{gid}_tests", "locked": true, "points": 1, '
            f'"solution": false, "schema_version": 3}}\nassert {gid} is not None\n'
        )
    return "\n\n".join(cells)


def _released() -> nbformat.NotebookNode:
    def meta(gid, **kw):
        return {"nbgrader": {"grade_id": gid, "schema_version": 3, **kw}}

    cells = [
        nbformat.v4.new_markdown_cell("# Toy assignment\n\n```python\nfor i in range(len(x)):\n    total += x[i]\n```"),
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_code_cell(GIVEN_HELPER, metadata=meta("helper", grade=False, locked=True, solution=False)),
    ]
    for gid in IDS:
        cells.append(
            nbformat.v4.new_code_cell(
                SIGNATURES[gid] + "    # YOUR CODE HERE\n    raise NotImplementedError()",
                metadata=meta(gid, grade=False, locked=False, solution=True),
            )
        )
        cells.append(
            nbformat.v4.new_code_cell(
                f"assert {gid} is not None",
                metadata=meta(f"{gid}_tests", grade=True, locked=True, points=1, solution=False),
            )
        )
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i:03d}"
    return nbformat.v4.new_notebook(cells=cells)


def make_course(root):
    (root / "solutions" / NAME).mkdir(parents=True)
    (root / "solutions" / NAME / f"{NAME}.py").write_text(_source_py(SOLUTION))
    (root / "assignments" / NAME).mkdir(parents=True)
    nbformat.write(_released(), root / "assignments" / NAME / f"{NAME}.ipynb")
    (root / "course_lib").mkdir()
    (root / "course_lib" / "__init__.py").write_text("")
    (root / "course_lib" / "toylib.py").write_text(TOYLIB)
    answers = "\n".join(f'{gid} = "course_lib.toylib.{gid}"' for gid in IDS)
    (root / "syllabus.toml").write_text(f'[[assignment]]\nname = "{NAME}"\n[assignment.answers]\n{answers}\n')
    return root


@pytest.fixture()
def course(tmp_path):
    return make_course(tmp_path / "course")


def submit(
    root,
    student: str,
    answers: dict[str, str],
    *,
    helper: bool = True,
    extra_cell: str | None = None,
    name: str = NAME,
    released=None,
    strip: tuple[str, ...] = (),
):
    """Student's notebook: the release with the answer cells filled (the given helper pasted at their top);
    the nbgrader metadata of the cells in ``strip`` removed (the grader still runs them)."""
    nb = released if released is not None else _released()
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            body = answers[gid]
            cell.source = (GIVEN_HELPER + "\n\n" if helper else "") + body
        if gid in strip:
            del cell.metadata["nbgrader"]
    if extra_cell is not None:
        added = nbformat.v4.new_code_cell(extra_cell)
        added["id"] = "student-added"
        nb.cells.append(added)
    folder = root / "grading" / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def full(answers: dict[str, str]) -> dict[str, str]:
    return {gid: SIGNATURES[gid] + answers[gid] for gid in IDS}


def _pair(rep, a, b):
    for p in rep.student_pairs + rep.reference_pairs:
        if {p.a.name, p.b.name} == {a, b}:
            return p
    raise AssertionError(f"no pair {a} ~ {b}")


def test_tokens_normalise_names_literals_and_layout():
    a = sim.tokens("def f(x, y=2):  # add\n    return x + y * 'a'\n")
    b = sim.tokens('def   g(first,\n      second=3.5):\n\n    return first + second * "zz"')
    assert (
        [t.text for t in a]
        == [t.text for t in b]
        == ["def", "V", "(", "V", ",", "V", "=", "N", ")", ":", "return", "V", "+", "V", "*", "S"]
    )
    assert [t.line for t in b][-1] == 4
    # hostile or broken cells still tokenize: magics, an unclosed string, bad indentation
    broken = sim.tokens("%timeit f(1)\n!ls\n  x = 1\n y = '''open\nz = 2\n")
    assert [t.text for t in broken][:3] == ["V", "=", "N"] and broken[0].line == 3
    assert sim.winnow([5, 3, 3, 9, 1, 7, 8], 3) == [2, 4] and sim.winnow([4, 2], 5) == [1] and sim.winnow([], 4) == []


def test_renamed_copy_is_found_honest_work_is_not_and_given_code_does_not_count(course):
    submit(course, "alice", full(ALICE))
    submit(course, "bob", full(BOB))
    # alice's, renamed, one answer cell's metadata removed so that it is not an answer cell by its grade id
    submit(course, "carol", {gid: SIGNATURES[gid] + _rename(ALICE[gid]) for gid in IDS}, strip=("conv1d",))
    submit(course, "dave", full(SOLUTION), helper=False)  # the instructor's solution, verbatim
    rep = sim.similarity_report(NAME, course, top=5, threshold=0.5)
    copy_pair, honest = _pair(rep, "alice", "carol"), _pair(rep, "alice", "bob")
    assert copy_pair.similarity >= 0.9, copy_pair
    # every student pasted the given helper (30+ identical lines each) and starts from the same signatures
    assert honest.similarity <= 0.15 and _pair(rep, "bob", "carol").similarity <= 0.15, (honest, rep.student_pairs)
    assert rep.student_pairs[0] is copy_pair
    assert _pair(rep, "dave", sim.SOLUTION_REF).similarity == 1.0
    assert _pair(rep, "alice", sim.SOLUTION_REF).similarity <= 0.15
    # the regions of the copy cover the copied lines, not the given helper
    regions = [(ra.cell, ra.first, ra.last) for ra, _ in copy_pair.regions]
    assert {c for c, _, _ in regions} == set(IDS)
    assert {rb.cell for _, rb in copy_pair.regions} == set(IDS) - {"conv1d"} | {"cell 6"}
    helper_lines = GIVEN_HELPER.count("\n") + 2
    assert all(first > helper_lines for _, first, _ in regions), regions
    rows = list(csv.DictReader(open(course / "grading" / "reports" / NAME / sim.CSV_FILE)))
    assert len(rows) == 6 + 4 * 2 and rows[0]["a"] == "alice" and rows[0]["b"] == "carol" and rows[0]["flagged"] == "1"


def test_given_code_alone_is_not_copying(course):
    """Students who hand in nothing but what they received (stubs, the helper, the markdown's example) share
    nothing, even with the helper's variables renamed and reformatted differently by each."""
    for s, (arr, label) in {"erin": ("arr", "label"), "fay": ("m", "what")}.items():
        helper = (
            GIVEN_HELPER.replace("(a, name", f"({arr}, {label}").replace("a.", f"{arr}.").replace("(a)", f"({arr})")
        )
        helper = helper.replace("{name}", "{" + label + "}").replace("return a", f"return {arr}").replace(", ", ",  ")
        assert helper.count(arr) >= 5 and not set(helper.splitlines()) & set(GIVEN_HELPER.splitlines()[2:])
        submit(
            course,
            s,
            {gid: SIGNATURES[gid] + "    for i in range(len(x)):\n        total += x[i]\n" for gid in IDS},
            extra_cell=helper,
        )
    rep = sim.build_report(NAME, course)
    p = _pair(rep, "erin", "fay")
    assert p.shared == 0 and p.similarity == 0.0 and not rep.shown(rep.student_pairs)
    assert any("fewer than" in n for n in rep.notes)


def test_copy_of_the_course_lib_reference_is_flagged_against_it(course):
    submit(course, "alice", full(ALICE))
    lib = sim.reference_source("course_lib.toylib.conv1d", course)
    assert "def _check_1d" in lib and "def conv1d" in lib  # the private helper it calls comes along
    body = lib.replace("conv1d", "my_conv").replace("windows", "wins").replace("starts", "st")
    submit(course, "mallory", full(ALICE | {"conv1d": "    return my_conv(x, w, stride)\n"}))
    # the copy hides in a second copy of a test cell (the grader runs it as an ungraded cell)
    path = course / "grading" / "submitted" / "mallory" / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(path, as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "conv1d_tests")
    hidden = nbformat.v4.new_code_cell(body, metadata=json.loads(json.dumps(test_cell.metadata)))
    hidden["id"] = "hidden-copy"
    at = nb.cells.index(test_cell) + 1
    nb.cells.insert(at, hidden)
    nbformat.write(nb, path)
    rep = sim.build_report(NAME, course, threshold=0.4)
    against_lib = _pair(rep, "mallory", sim.COURSE_LIB_REF)
    assert against_lib.similarity >= 0.4 and against_lib in rep.shown(rep.reference_pairs)
    assert _pair(rep, "alice", sim.COURSE_LIB_REF).similarity <= 0.15
    assert {(ra.cell, rb.cell) for ra, rb in against_lib.regions} == {(f"cell {at + 1}", "course_lib.toylib.conv1d")}
    # before the test cell it would be the cell the grader replaces by the source's test: never run, not compared
    nb.cells.insert(at - 1, nb.cells.pop(at))
    nbformat.write(nb, path)
    assert _pair(sim.build_report(NAME, course), "mallory", sim.COURSE_LIB_REF).shared == 0


def test_real_assignment_copy_of_course_lib_pad2d(tmp_path):
    """On assignment 03 as released: a pad2d pasted from course_lib.conv (helpers and all) is flagged against it."""
    name = "03-convolutions"
    root = tmp_path / "course"
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO_ROOT / folder / name, root / folder / name)
    shutil.copy(REPO_ROOT / "syllabus.toml", root / "syllabus.toml")
    (root / "course_lib").symlink_to(REPO_ROOT / "course_lib")
    released = nbformat.read(root / "assignments" / name / f"{name}.ipynb", as_version=4)
    lib = sim.reference_source("course_lib.conv.pad2d", REPO_ROOT)
    assert "def _pad(" in lib and "def _source_index(" in lib
    stub = next(c.source for c in released.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "pad2d")
    copied = stub.replace("raise NotImplementedError()", "return _pad(x, _pad4(p), mode)") + "\n\n" + lib
    submit(root, "copier", {"pad2d": copied}, helper=False, name=name, released=released)
    submit(root, "blank", {}, helper=False, name=name, released=released)  # the unmodified release
    rep = sim.build_report(name, root)
    assert _pair(rep, "copier", sim.COURSE_LIB_REF).similarity >= 0.9
    assert _pair(rep, "blank", sim.COURSE_LIB_REF).shared == 0 and _pair(rep, "blank", "copier").shared == 0


def test_html_escapes_student_code_and_hostile_notebooks_do_not_crash(course, monkeypatch):
    monkeypatch.setattr(sim, "MAX_DOCUMENT_CHARS", 5000)
    evil = '    s = "</pre><script>alert(document.cookie)</script><img src=x onerror=alert(1)>"\n' + ALICE["softmax"]
    submit(course, "alice", full(ALICE | {"softmax": evil}))
    submit(course, "carol", full(ALICE | {"softmax": evil}))
    submit(course, "bob", full(BOB))
    bad = course / "grading" / "submitted" / "zed" / NAME
    bad.mkdir(parents=True)
    (bad / f"{NAME}.ipynb").write_text('{"cells": [ not json')
    deep = course / "grading" / "submitted" / "deep" / NAME
    deep.mkdir(parents=True)
    (deep / f"{NAME}.ipynb").write_text('{"cells": [' + "[" * 50_000 + "]" * 50_000 + '], "nbformat": 4}')
    (course / "grading" / "submitted" / "empty" / NAME).mkdir(parents=True)
    submit(course, "huge", full(BOB), extra_cell="x = 1\n" * 2000)  # cut at MAX_DOCUMENT_CHARS, with a note
    submit(course, "bad id", full(BOB))
    rep = sim.similarity_report(NAME, course)
    page = (course / "grading" / "reports" / NAME / sim.HTML_FILE).read_text()
    assert "<script" not in page.lower() and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;/pre&gt;&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in page
    assert "<img" not in page and "default-src 'none'" in page
    assert page.count("<pre>") == page.count("</pre>")
    skipped = {s.student: s.reason for s in rep.skipped}
    assert "not valid JSON" in skipped["zed"] and "nested more than" in skipped["deep"]
    assert skipped["empty"] == "no notebook submitted"
    assert "zed" in page and "not valid JSON" in page
    assert {d.name for d in rep.documents} == {"alice", "bob", "carol", "huge"}
    assert rep.refused == ["bad id"] and any(n.startswith("huge: only the first") for n in rep.notes)
    assert _pair(rep, "alice", "carol").similarity == 1.0


def test_report_changes_no_score_and_does_not_collide_with_student_reports(course):
    submit(course, "alice", full(ALICE))
    submit(course, "similarity", full(ALICE))  # a student named like the report
    grading = course / "grading"
    (grading / "gradebook.db").write_bytes(b"SQLite format 3\x00 the gradebook")
    reports = grading / "reports" / NAME
    reports.mkdir(parents=True)
    for ext in ("json", "txt", "html"):
        (reports / f"similarity.{ext}").write_text(f"similarity's own {ext} report")
    (reports / "grades.csv").write_text("student,score\nalice,3\nsimilarity,3\n")
    before = {p: p.read_bytes() for p in grading.rglob("*") if p.is_file()}
    rep = sim.similarity_report(NAME, course)
    after = {p: p.read_bytes() for p in grading.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before
    assert sorted(p.name for p in set(after) - set(before)) == [sim.CSV_FILE, sim.HTML_FILE]
    assert rep.student_pairs[0].similarity == 1.0


def test_clear_errors_and_the_command_line(course, capsys):
    with pytest.raises(sim.SimilarityError, match="make collect"):
        sim.build_report(NAME, course)
    with pytest.raises(sim.SimilarityError, match="no assignment 'nope'"):
        sim.build_report("nope", course)
    submit(course, "alice", full(ALICE))
    submit(course, "carol", {gid: SIGNATURES[gid] + _rename(ALICE[gid]) for gid in IDS})
    assert sim.main([NAME, "--top", "1", "--threshold", "0.8"], root=course) == 0
    out = capsys.readouterr().out
    assert "alice ~ carol" in out and "FLAGGED" in out and sim.HTML_FILE in out
    assert sim.main([NAME, "--threshold", "2"], root=course) == 1
    assert "--threshold in [0, 1]" in capsys.readouterr().err
    shutil.rmtree(course / "assignments")
    assert sim.main([NAME], root=course) == 1
    assert "make release" in capsys.readouterr().err


def test_rank_order_agrees_with_copydetect(course, tmp_path):
    """copydetect 0.5.0 (an independent implementation of winnowing) ranks the same pairs in the same order."""
    from copydetect import detector  # declared in the test extra

    whole = {
        s: "\n\n".join(SIGNATURES[g] + code[g] for g in IDS)
        for s, code in [
            ("alice", ALICE),
            ("bob", BOB),
            ("carol", {g: _rename(ALICE[g]) for g in IDS}),
            ("half", ALICE | {"conv1d": BOB["conv1d"], "moving_average": BOB["moving_average"]}),
            ("sol", SOLUTION),
        ]
    }
    pairs = [
        ("alice", "carol"),
        ("alice", "half"),
        ("alice", "bob"),
        ("bob", "half"),
        ("alice", "sol"),
        ("carol", "half"),
        ("bob", "sol"),
    ]
    given = sim.Given.of(sim.given_code(_released().cells), sim.DEFAULT_K)
    docs = {s: sim.Document(s, [sim.Cell("all", text)]) for s, text in whole.items()}
    for d in docs.values():
        d.prepare(sim.DEFAULT_K, sim.DEFAULT_WINDOW, given)
    ours = [sim.similarity(docs[a].fingerprints, docs[b].fingerprints)[1] for a, b in pairs]
    files = {}
    for s, text in whole.items():
        (tmp_path / f"{s}.py").write_text(text)
        files[s] = detector.CodeFingerprint(str(tmp_path / f"{s}.py"), 25, 6)
    theirs = []
    for a, b in pairs:
        _, (sa, sb), _ = detector.compare_files(files[a], files[b])
        theirs.append(max(sa, sb))
    for i, j in itertools.combinations(range(len(pairs)), 2):  # the same order wherever ours differ
        if abs(ours[i] - ours[j]) > 0.05:
            assert (ours[i] > ours[j]) == (theirs[i] > theirs[j]), (pairs[i], pairs[j], ours, theirs)
    assert all(abs(x - y) <= 0.2 for x, y in zip(ours, theirs, strict=True)), (ours, theirs)
    assert ours[0] == 1.0 and 0.2 < ours[1] < 0.6 < ours[3] < 0.9 and ours[2] == ours[4] == 0.0
