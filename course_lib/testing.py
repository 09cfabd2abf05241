"""Assertion helpers for the assignments' visible and hidden tests.

They accept numpy arrays, torch tensors, Python scalars and (nested) lists, and fail with a
message a student can act on: what was checked, the shapes, and the largest difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """Convert a numpy array, torch tensor, scalar or nested list to a float64-or-native array."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x)


def assert_shape(x: Any, shape: tuple[int, ...], name: str = "result") -> None:
    """Fail with a readable message unless ``x`` has exactly ``shape``."""
    actual = tuple(to_numpy(x).shape)
    if actual != tuple(shape):
        raise AssertionError(f"{name} has shape {actual}, expected {tuple(shape)}")


def assert_close(
    actual: Any,
    expected: Any,
    message: str = "",
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> None:
    """Fail unless ``actual`` equals ``expected`` elementwise within ``atol + rtol * |expected|``.

    The message names the mismatch: shapes when they differ, otherwise the number of wrong
    entries, the worst index and both values there.
    """
    prefix = f"{message}: " if message else ""
    if actual is None:
        raise AssertionError(f"{prefix}got None - did the function forget to return its result?")
    a = to_numpy(actual)
    e = to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shape {a.shape} does not match the expected shape {e.shape}")
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    if np.isnan(a64).any() and not np.isnan(e64).any():
        raise AssertionError(f"{prefix}the result contains NaN (at {int(np.isnan(a64).sum())} entries)")
    with np.errstate(invalid="ignore"):
        bad = ~np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        diff = np.where(bad, np.abs(a64 - e64), -np.inf)
        worst = np.unravel_index(int(np.nanargmax(diff)), a.shape) if a.ndim else ()
        raise AssertionError(
            f"{prefix}{int(bad.sum())} of {a.size} entries differ (rtol={rtol:g}, atol={atol:g}); "
            f"worst at index {tuple(int(i) for i in worst)}: got {a64[worst]!r}, expected {e64[worst]!r}"
        )


__all__ = ["assert_close", "assert_shape", "to_numpy"]
