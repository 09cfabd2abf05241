"""The assertion helpers students see in assignments fail loudly and say why."""

import numpy as np
import pytest
import torch

from course_lib.testing import assert_close, assert_shape


def test_assert_close_accepts_equal_values_of_any_container():
    assert_close(np.array([1.0, 2.0]), [1.0, 2.0])
    assert_close(torch.tensor([[1.0]]), np.array([[1.0]]))
    assert_close(3.0, 3.0 + 1e-12)


@pytest.mark.parametrize(
    "actual, expected, match",
    [
        (None, [1.0], "forget to return"),
        (np.zeros(3), np.zeros(4), "shape \\(3,\\) does not match the expected shape \\(4,\\)"),
        (np.array([1.0, np.nan]), np.array([1.0, 2.0]), "NaN"),
        (np.array([[1.0, 2.0], [3.0, 4.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]), "1 of 4 entries differ.*index \\(1, 1\\).*4.5.*4.0"),
    ],
)
def test_assert_close_messages(actual, expected, match):
    with pytest.raises(AssertionError, match=match):
        assert_close(actual, expected, "check")


def test_assert_shape():
    assert_shape(np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError, match="W has shape \\(3, 2\\), expected \\(2, 3\\)"):
        assert_shape(np.zeros((3, 2)), (2, 3), "W")
