"""Activation functions of lecture 01 and their derivatives, in numpy.

Every elementwise activation ``f`` comes with ``f_grad(x) = f'(x)`` evaluated at the *input*
``x``, so a layer's backward pass is ``dx = dout * f_grad(x)``. Inputs keep their shape and dtype
(integers are promoted to float64).
"""

from __future__ import annotations

import numpy as np


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    r"""Logistic sigmoid $\sigma(x) = 1 / (1 + e^{-x})$, elementwise, any shape.

    Numerically stable for large ``|x|`` (no overflow for ``x < -700``): for negative inputs it
    evaluates the equivalent form $e^{x} / (1 + e^{x})$.
    """
    x = _as_float(x)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    r"""$\sigma'(x) = \sigma(x)\,(1 - \sigma(x))$."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    r"""Hyperbolic tangent $\tanh(x) = (e^{x} - e^{-x}) / (e^{x} + e^{-x}) = 2\sigma(2x) - 1$."""
    return np.tanh(_as_float(x))


def tanh_grad(x: np.ndarray) -> np.ndarray:
    r"""$\tanh'(x) = 1 - \tanh^2(x)$."""
    t = np.tanh(_as_float(x))
    return 1.0 - t * t


def relu(x: np.ndarray) -> np.ndarray:
    r"""Rectified linear unit $\max(0, x)$."""
    x = _as_float(x)
    return np.maximum(x, 0.0).astype(x.dtype, copy=False)


def relu_grad(x: np.ndarray) -> np.ndarray:
    r"""$\mathrm{ReLU}'(x) = [x > 0]$ (the subgradient 0 is used at $x = 0$, as PyTorch does)."""
    x = _as_float(x)
    return (x > 0).astype(x.dtype)


def leaky_relu(x: np.ndarray, slope: float = 0.1) -> np.ndarray:
    r"""Leaky ReLU $\max(\text{slope}\cdot x, x)$ for $0 \le$ slope $< 1$ (the lecture uses 0.1)."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky_relu needs 0 <= slope < 1 so that max(slope*x, x) is the leaky form; got slope={slope}")
    x = _as_float(x)
    return np.where(x > 0, x, slope * x)


def leaky_relu_grad(x: np.ndarray, slope: float = 0.1) -> np.ndarray:
    r"""Derivative of leaky ReLU: 1 for $x > 0$, slope otherwise."""
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky_relu_grad needs 0 <= slope < 1; got slope={slope}")
    x = _as_float(x)
    return np.where(x > 0, 1.0, slope).astype(x.dtype)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    r"""Exponential linear unit: $x$ for $x > 0$, $\alpha (e^{x} - 1)$ otherwise."""
    x = _as_float(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_grad(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    r"""Derivative of ELU: 1 for $x > 0$, $\alpha e^{x}$ otherwise."""
    x = _as_float(x)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))).astype(x.dtype)


def maxout(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Maxout unit: the maximum over ``k`` affine maps, $\max_j (x W_j + b_j)$.

    x: (N, d_in), W: (k, d_in, d_out), b: (k, d_out) -> (N, d_out).
    With k = 2, W_2 = 0, b_2 = 0 it is ReLU of a linear layer; with enough pieces it approximates
    any convex function.
    """
    x = _as_float(x)
    W = np.asarray(W)
    b = np.asarray(b)
    if x.ndim != 2:
        raise ValueError(f"maxout expects x of shape (N, d_in); got shape {x.shape}")
    if W.ndim != 3:
        raise ValueError(f"maxout expects W of shape (k, d_in, d_out); got shape {W.shape}")
    k, d_in, d_out = W.shape
    if x.shape[1] != d_in:
        raise ValueError(f"x has {x.shape[1]} features but W expects d_in={d_in} (W: {W.shape})")
    if b.shape != (k, d_out):
        raise ValueError(f"b must have shape (k, d_out) = {(k, d_out)}; got {b.shape}")
    z = np.einsum("ni,kio->kno", x, W) + b[:, None, :]
    return z.max(axis=0)


__all__ = [
    "elu",
    "elu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "maxout",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
]
