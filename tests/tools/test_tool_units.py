"""Unit tests of small course_tools pieces the end-to-end suites only reach indirectly.

- the grader's wire format (``course_tools.grading.wire``): values cross the student/evaluator
  boundary as plain data only — subclasses arrive as their exact base type, nesting is capped,
  and a message survives a real socket;
- the nbgrader preprocessors (``course_tools.grading.preprocessors``);
- the API reference's dollar-math conversion (``course_tools.site.autodoc_math``);
- the student bundle's pyproject (``course_tools.student_release.templates``);
- the dependency canary's reading of the pins (``course_tools.canary``);
- what the trusted evaluator takes from the kernel, and the kernel session's output cap.
"""

from __future__ import annotations

import socket
import tomllib

import nbformat
import numpy as np
import pytest
import torch

from course_tools import canary
from course_tools.grading import preprocessors, wire
from course_tools.layout import REPO_ROOT
from course_tools.site import autodoc_math
from course_tools.student_release import templates


def _no_refs(obj):
    raise AssertionError(f"a plain value was turned into a reference: {type(obj).__name__}")


def _codec() -> wire.Codec:
    return wire.Codec(_no_refs, _no_refs)


def _round_trip(value):
    codec, buffers = _codec(), []
    node = codec.encode(value, buffers)
    return codec.decode(node, buffers)


class LyingArray(np.ndarray):
    """An ndarray subclass whose comparisons always say 'equal' (the attack of issue 11)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return True


class LyingTensor(torch.Tensor):
    pass


class LyingInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def test_plain_values_round_trip_exactly():
    value = {"a": [1, 2.5, None, True, "x", (3, 4)], "b": b"\x00\x01", 7: {1, 2}, "c": 1 + 2j}
    assert _round_trip(value) == value
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = _round_trip(arr)
    assert type(out) is np.ndarray and out.dtype == np.float32 and np.array_equal(out, arr)
    t = torch.randn(2, 3, dtype=torch.float64)
    out_t = _round_trip(t)
    assert type(out_t) is torch.Tensor and out_t.dtype == torch.float64 and torch.equal(out_t, t)


def test_subclasses_arrive_as_their_exact_base_type():
    lying = np.zeros(4).view(LyingArray)
    out = _round_trip(lying)
    assert type(out) is np.ndarray
    assert not np.array_equal(out, np.ones(4)), "the evaluator compares with numpy's own ufuncs, not the student's"
    out_t = _round_trip(torch.zeros(3).as_subclass(LyingTensor))
    assert type(out_t) is torch.Tensor
    out_i = _round_trip(LyingInt(3))
    assert type(out_i) is int and out_i != 4


def test_nesting_is_capped():
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        _codec().encode(deep, [])


def test_a_message_survives_a_socket():
    a, b = socket.socketpair()
    try:
        wire.send_msg(a, {"op": "call", "n": 3}, [b"abc", bytes(range(256))])
        header, buffers = wire.recv_msg(b)
    finally:
        a.close()
        b.close()
    assert header["op"] == "call" and header["n"] == 3
    assert [bytes(x) for x in buffers] == [b"abc", bytes(range(256))]


def _cell(source: str, *, graded: bool, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    if graded:
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 1, "solution": False, "locked": True}
    return cell


def test_gpu_tags_are_stripped_from_graded_cells_only():
    nb = nbformat.v4.new_notebook(cells=[_cell("assert True", graded=True, tags=["gpu", "x"]),
                                         _cell("train()", graded=False, tags=["gpu"])])
    nb, _ = preprocessors.StripGpuTagFromGradedCells().preprocess(nb, {})
    assert nb.cells[0].metadata["tags"] == ["x"] and nb.cells[1].metadata["tags"] == ["gpu"]


def test_skipped_gpu_cells_get_the_visible_note_without_cuda(monkeypatch):
    monkeypatch.setenv("COURSE_GPU", "0")
    nb = nbformat.v4.new_notebook(cells=[_cell("train()", graded=False, tags=["gpu"]), _cell("x = 1", graded=False)])
    nb, _ = preprocessors.MarkSkippedGpuCells().preprocess(nb, {})
    assert "needs a CUDA GPU" in nb.cells[0].outputs[0]["text"] and nb.cells[1].outputs == []


def test_dollar_math_becomes_rst_math_outside_literals():
    assert autodoc_math.convert_line(r"the sigmoid $\sigma(x)$ and ``$COURSE_DATA_DIR``") == (
        r"the sigmoid :math:`\sigma(x)` and ``$COURSE_DATA_DIR``"
    )
    assert autodoc_math.convert_line("costs $5 and $6") == "costs $5 and $6", "prices are not math"
    out = autodoc_math.convert(["Loss:", r"    $$L = -\log p$$.", "done"])
    assert ".. math::" in "\n".join(out) and r"L = -\log p." in "\n".join(out)


def test_the_student_pyproject_keeps_the_base_pins_and_only_course_lib():
    text = templates.pyproject(REPO_ROOT / "pyproject.toml")
    data = tomllib.loads(text)
    repo = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert data["project"]["dependencies"] == repo["dependencies"]
    assert "optional-dependencies" not in data["project"]
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["course_lib*"]


def test_the_canary_reads_every_pin_of_pyproject():
    pins = canary.direct_dependencies()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    every = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert len(pins) == len(every) and pins["torch"] == "2.13.0"


def test_answer_names_are_what_the_answer_cells_bind_at_top_level():
    """The evaluator takes exactly these names from the student's kernel (as proxies), nothing else."""
    from course_tools.grading import evaluator

    answer = nbformat.v4.new_code_cell("import numpy as np\ndef relu(x):\n    y = 1\n    return x\nclass Net:\n    pass\n"
                                       "W, (b, c) = 1, (2, 3)\nfor i in range(3):\n    pass\n")
    given = nbformat.v4.new_code_cell("helper = 5")
    nb = nbformat.v4.new_notebook(cells=[answer, given])
    names = evaluator.answer_names(nb, lambda cell: "answer" if cell is answer else "given")
    assert names == {"np", "relu", "Net", "W", "b", "c", "i"}, "locals of relu (y) and given cells stay out"
    assert evaluator.loaded_names(evaluator._parse("z = relu(x) + W")) == {"relu", "x", "W"}
    assert issubclass(evaluator.GraderAbort, BaseException) and not issubclass(evaluator.GraderAbort, Exception), (
        "a test's `except Exception` must not swallow a broken exchange"
    )


def test_kernel_output_is_capped_and_merged_per_stream():
    from course_tools.grading import kernel

    res = kernel.ExecResult("ok")
    outputs: list = []
    stored = kernel._add_stream(outputs, "stdout", "abc", 0, 5, res)
    stored = kernel._add_stream(outputs, "stdout", "defg", stored, 5, res)
    stored = kernel._add_stream(outputs, "stderr", "x", stored, 5, res)
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": "abcde"}]
    assert stored == 5 and res.truncated_chars == 3
    assert kernel._signame(9) == "SIGKILL" and kernel._signame(999) == "signal 999"
