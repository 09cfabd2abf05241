"""course_lib.activations against torch.nn.functional and torch autograd, on random shapes in float64."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_lib import activations as act

FLOATS = st.floats(min_value=-50, max_value=50, allow_nan=False, width=64)
ARRAYS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), elements=FLOATS)

PAIRS = {
    "sigmoid": (act.sigmoid, act.sigmoid_grad, torch.sigmoid),
    "tanh": (act.tanh, act.tanh_grad, torch.tanh),
    "relu": (act.relu, act.relu_grad, torch.relu),
    "leaky_relu": (act.leaky_relu, act.leaky_relu_grad, lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    "elu": (act.elu, act.elu_grad, torch.nn.functional.elu),
}


def torch_value_and_grad(fn, x):
    t = torch.from_numpy(x).requires_grad_(True)
    y = fn(t)
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("name", sorted(PAIRS))
@settings(max_examples=40, deadline=None)
@given(x=ARRAYS)
def test_activation_and_derivative_match_torch(name, x):
    f, df, ref = PAIRS[name]
    value, grad = torch_value_and_grad(ref, x)
    np.testing.assert_allclose(f(x), value, rtol=1e-12, atol=1e-300)
    # derivatives such as 1 - tanh(x)^2 cancel catastrophically near saturation: both sides carry an
    # absolute rounding error of a few ulps of 1.0, hence the atol of 8 * machine epsilon
    np.testing.assert_allclose(df(x), grad, rtol=1e-10, atol=8 * np.finfo(np.float64).eps)
    assert f(x).shape == x.shape and df(x).shape == x.shape


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3, 0.99])
@pytest.mark.parametrize("alpha", [0.1, 1.0, 2.5])
def test_parametrised_activations_match_torch(slope, alpha):
    x = np.random.default_rng(int(slope * 100 + alpha * 10)).normal(scale=3, size=(7, 5))
    value, grad = torch_value_and_grad(lambda t: torch.nn.functional.leaky_relu(t, slope), x)
    np.testing.assert_allclose(act.leaky_relu(x, slope), value, rtol=1e-12)
    np.testing.assert_allclose(act.leaky_relu_grad(x, slope), grad, rtol=1e-12)
    value, grad = torch_value_and_grad(lambda t: torch.nn.functional.elu(t, alpha), x)
    np.testing.assert_allclose(act.elu(x, alpha), value, rtol=1e-12)
    np.testing.assert_allclose(act.elu_grad(x, alpha), grad, rtol=1e-12)


def test_sigmoid_is_stable_beyond_700():
    x = np.array([-1e5, -800.0, -745.0, -700.0, 700.0, 800.0, 1e5])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = act.sigmoid(x)
        g = act.sigmoid_grad(x)
        e = act.elu(np.array([1e5]))
        eg = act.elu_grad(np.array([1e5]))
    np.testing.assert_allclose(y, torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(g)) and np.isfinite(e).all() and np.isfinite(eg).all()


def test_derivatives_match_finite_differences_away_from_kinks():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 3.0, size=50) * rng.choice([-1.0, 1.0], size=50)
    eps = 1e-6
    for f, df, _ in PAIRS.values():
        numeric = (f(x + eps) - f(x - eps)) / (2 * eps)
        np.testing.assert_allclose(df(x), numeric, rtol=1e-6, atol=1e-8)


def test_integer_input_is_promoted():
    assert act.relu(np.array([-2, 3])).dtype == np.float64
    np.testing.assert_array_equal(act.relu(np.array([-2, 3])), [0.0, 3.0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), d_in=st.integers(1, 5), d_out=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_maxout_matches_torch_max_of_linear_maps(n, d_in, d_out, k, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.normal(size=(n, d_in)), rng.normal(size=(k, d_in, d_out)), rng.normal(size=(k, d_out))
    pieces = torch.stack([torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(W[j].T), torch.from_numpy(b[j])) for j in range(k)])
    np.testing.assert_allclose(act.maxout(x, W, b), pieces.max(dim=0).values.numpy(), rtol=1e-12)


def test_maxout_with_a_zero_piece_is_relu_of_a_linear_layer():
    rng = np.random.default_rng(0)
    x, W1, b1 = rng.normal(size=(8, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    W = np.stack([W1, np.zeros_like(W1)])
    b = np.stack([b1, np.zeros_like(b1)])
    np.testing.assert_allclose(act.maxout(x, W, b), act.relu(x @ W1 + b1))


@pytest.mark.parametrize(
    "x_shape, W_shape, b_shape, match",
    [((4,), (2, 4, 3), (2, 3), "shape \\(N, d_in\\)"), ((5, 4), (4, 3), (2, 3), "\\(k, d_in, d_out\\)"),
     ((5, 2), (2, 4, 3), (2, 3), "4"), ((5, 4), (2, 4, 3), (3,), "b must have shape")],
)
def test_maxout_rejects_wrong_shapes(x_shape, W_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        act.maxout(np.zeros(x_shape), np.zeros(W_shape), np.zeros(b_shape))


def test_leaky_relu_rejects_bad_slope():
    with pytest.raises(ValueError, match="slope"):
        act.leaky_relu(np.zeros(3), slope=1.5)
