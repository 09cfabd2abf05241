"""Tests of course_lib.layers: every backward pass against torch.autograd in float64, the
gradient checker against torch gradients and against planted bugs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.layers import (
    Linear,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    grad_check,
    log_softmax,
    numerical_gradient,
    relative_error,
    sgd_step,
    softmax,
)


def max_rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| relative to the largest |expected| (the issue's "max relative error")."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    return float(np.abs(actual - expected).max(initial=0.0)) / scale


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


TOL = 1e-6
sizes = st.integers(1, 7)
seeds = st.integers(0, 2**31 - 1)


# ------------------------------------------------------------------------------ Linear
@settings(max_examples=40, deadline=None)
@given(n=sizes, d_in=sizes, d_out=sizes, seed=seeds)
def test_linear_forward_backward_match_torch(n, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(d_in, d_out, rng=rng)
    layer.params["b"][...] = rng.normal(size=d_out)
    x = rng.normal(size=(n, d_in))
    dout = rng.normal(size=(n, d_out))
    y = layer.forward(x)
    dx = layer.backward(dout)

    tx, tW, tb = t64(x, True), t64(layer.params["W"], True), t64(layer.params["b"], True)
    ty = F.linear(tx, tW.T, tb)  # torch's weight is (out, in) = our W transposed
    ty.backward(t64(dout))
    assert y.shape == (n, d_out) and dx.shape == (n, d_in)
    assert max_rel_err(y, ty.detach().numpy()) < TOL
    assert max_rel_err(dx, tx.grad.numpy()) < TOL
    assert max_rel_err(layer.grads["W"], tW.grad.numpy()) < TOL
    assert max_rel_err(layer.grads["b"], tb.grad.numpy()) < TOL


def test_linear_leading_batch_dimensions_and_single_vector():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng)
    x = rng.normal(size=(2, 5, 4))
    dout = rng.normal(size=(2, 5, 3))
    y = layer.forward(x)
    dx = layer.backward(dout)
    tx, tW = t64(x, True), t64(layer.params["W"], True)
    ty = tx @ tW
    ty.backward(t64(dout))
    assert max_rel_err(y, ty.detach().numpy()) < TOL
    assert max_rel_err(dx, tx.grad.numpy()) < TOL
    assert max_rel_err(layer.grads["W"], tW.grad.numpy()) < TOL
    # a single example of shape (in,) behaves like a batch of one
    v = rng.normal(size=4)
    np.testing.assert_allclose(layer.forward(v), layer.forward(v[None])[0], rtol=1e-14)


def test_linear_grads_are_overwritten_in_place():
    rng = np.random.default_rng(1)
    layer = Linear(3, 2, rng=rng)
    gW = layer.grads["W"]
    x = rng.normal(size=(4, 3))
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    first = gW.copy()
    layer.forward(x)
    layer.backward(np.ones((4, 2)))
    assert layer.grads["W"] is gW
    np.testing.assert_allclose(gW, first, rtol=1e-15)  # not accumulated


def test_linear_parameter_counts_match_the_lecture_and_torch():
    first, second = Linear(784, 1000, rng=0), Linear(1000, 10, rng=0)
    assert first.num_parameters() == 785_000
    assert second.num_parameters() == 10_010
    for layer, (i, o) in ((first, (784, 1000)), (second, (1000, 10))):
        assert layer.num_parameters() == sum(p.numel() for p in torch.nn.Linear(i, o).parameters())
        assert layer.params["W"].shape == (i, o) and layer.params["b"].shape == (o,)
        assert layer.grads["W"].shape == (i, o) and layer.grads["b"].shape == (o,)


def test_linear_init_scheme_and_determinism():
    he = Linear(2000, 400, rng=0)
    W = he.params["W"]
    assert abs(W.std() / np.sqrt(2 / 2000) - 1) < 0.01
    assert abs(W.mean()) < 3 * np.sqrt(2 / 2000) / np.sqrt(W.size)
    assert np.all(he.params["b"] == 0)
    xavier = Linear(2000, 400, rng=0, init="xavier")
    assert abs(xavier.params["W"].std() / np.sqrt(2 / 2400) - 1) < 0.01
    np.testing.assert_array_equal(Linear(5, 3, rng=7).params["W"], Linear(5, 3, rng=7).params["W"])
    np.testing.assert_array_equal(
        Linear(5, 3, rng=np.random.default_rng(7)).params["W"], Linear(5, 3, rng=7).params["W"]
    )
    assert not np.array_equal(Linear(5, 3, rng=7).params["W"], Linear(5, 3, rng=8).params["W"])
    np.random.seed(3)
    a = Linear(5, 3).params["W"]
    np.random.seed(3)
    np.testing.assert_array_equal(Linear(5, 3).params["W"], a)
    f32 = Linear(5, 3, rng=0, dtype=np.float32)
    assert f32.params["W"].dtype == np.float32 and f32.grads["b"].dtype == np.float32
    assert f32.forward(np.ones((2, 5), dtype=np.float32)).dtype == np.float32


def test_linear_errors():
    with pytest.raises(ValueError, match="positive integer"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="init"):
        Linear(2, 3, init="zeros")
    with pytest.raises(ValueError, match="floating"):
        Linear(2, 3, dtype=np.int64)
    with pytest.raises(ValueError, match="rng"):
        Linear(2, 3, rng="seed")
    layer = Linear(4, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expects x of shape \(N, 4\)"):
        layer.forward(np.ones((2, 5)))
    layer.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="dout has shape"):
        layer.backward(np.ones((2, 4)))


# ----------------------------------------------------------------------- activations
ACTIVATIONS = [(ReLU, torch.relu), (Sigmoid, torch.sigmoid), (Tanh, torch.tanh)]


@pytest.mark.parametrize(("cls", "torch_fn"), ACTIVATIONS)
@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=seeds, scale=st.sampled_from([0.1, 1.0, 30.0]))
def test_activation_layers_match_torch(cls, torch_fn, shape, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * scale
    dout = rng.normal(size=shape)
    layer = cls()
    y = layer.forward(x)
    dx = layer.backward(dout)
    tx = t64(x, True)
    ty = torch_fn(tx)
    ty.backward(t64(dout))
    assert layer.params == {} and layer.grads == {}
    assert y.shape == x.shape and dx.shape == x.shape
    assert max_rel_err(y, ty.detach().numpy()) < TOL
    # Where |x| is large, tanh and sigmoid round to within an ulp of their limits and the derivative
    # 1 - y^2 (or y (1 - y)) is a difference of nearly equal numbers: a y one ulp away from torch's
    # moves it by ~2e-16 |dout| (hypothesis found x = -14: 4.46261e-12 against torch's 4.46226e-12,
    # a relative error of 8e-5 on a derivative of 3e-12). Allow that absolute floor.
    expected = tx.grad.numpy()
    floor = 4 * np.finfo(np.float64).eps * float(np.abs(dout).max())
    assert float(np.abs(dx - expected).max()) <= max(TOL * float(np.abs(expected).max()), floor)


@pytest.mark.parametrize(("cls", "torch_fn"), ACTIVATIONS)
def test_activation_layers_extreme_inputs_and_kink(cls, torch_fn):
    x = np.array([[-1000.0, -750.0, -1e-12, 0.0, 1e-12, 750.0, 1000.0]])
    dout = np.ones_like(x)
    layer = cls()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        y = layer.forward(x)
        dx = layer.backward(dout)
    tx = t64(x, True)
    ty = torch_fn(tx)
    ty.backward(t64(dout))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh])
def test_activation_errors(cls):
    layer = cls()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones(3))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dout has shape"):
        layer.backward(np.ones((3, 2)))


# -------------------------------------------------------------------------------- losses
@settings(max_examples=40, deadline=None)
@given(n=sizes, c=st.integers(1, 9), seed=seeds, scale=st.sampled_from([0.01, 1.0, 50.0, 2000.0]))
def test_softmax_cross_entropy_matches_torch(n, c, seed, scale):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * scale
    y = rng.integers(0, c, size=n)
    loss_fn = SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stable: no overflow for logits in the thousands
        loss = loss_fn.forward(logits, y)
        dlogits = loss_fn.backward()
    tz = t64(logits, True)
    t_loss = F.cross_entropy(tz, torch.from_numpy(y))
    t_loss.backward()
    assert isinstance(loss, float)
    assert abs(loss - t_loss.item()) <= TOL * max(abs(t_loss.item()), 1e-12) or loss == t_loss.item()
    assert dlogits.shape == (n, c)
    if c == 1:
        assert np.all(dlogits == 0)
    else:
        assert max_rel_err(dlogits, tz.grad.numpy()) < TOL


def test_softmax_cross_entropy_upstream_gradient_and_helpers():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, size=5)
    loss_fn = SoftmaxCrossEntropy()
    loss_fn(logits, y)
    np.testing.assert_allclose(loss_fn.backward(3.0), 3.0 * loss_fn.backward(), rtol=1e-15)
    tz = t64(logits)
    np.testing.assert_allclose(log_softmax(logits), F.log_softmax(tz, dim=1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(softmax(logits), F.softmax(tz, dim=1).numpy(), rtol=1e-12)


def test_softmax_cross_entropy_errors():
    loss_fn = SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match="before forward"):
        loss_fn.backward()
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        loss_fn.forward(np.zeros(3), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="shape"):
        loss_fn.forward(np.zeros((3, 2)), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="integers"):
        loss_fn.forward(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        loss_fn.forward(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="at least one"):
        loss_fn.forward(np.zeros((0, 2)), np.zeros(0, dtype=int))


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), seed=seeds)
def test_mse_loss_matches_torch(shape, seed):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=shape)
    target = rng.normal(size=shape)
    loss_fn = MSELoss()
    loss = loss_fn.forward(pred, target)
    dpred = loss_fn.backward()
    tp = t64(pred, True)
    t_loss = F.mse_loss(tp, t64(target))
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= TOL * abs(t_loss.item())
    assert max_rel_err(dpred, tp.grad.numpy()) < TOL
    with pytest.raises(ValueError, match="target has shape"):
        loss_fn.forward(pred, np.zeros((*shape, 2)))


# ---------------------------------------------------------------------------- Sequential
@pytest.mark.parametrize("seed", range(8))
def test_sequential_network_matches_torch(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    widths = [int(w) for w in rng.integers(1, 8, size=depth + 1)]
    n = int(rng.integers(1, 6))
    acts = [(ReLU, torch.nn.ReLU), (Sigmoid, torch.nn.Sigmoid), (Tanh, torch.nn.Tanh)]
    ours, theirs = [], []
    for i in range(depth):
        lin = Linear(widths[i], widths[i + 1], rng=rng)
        lin.params["b"][...] = rng.normal(size=widths[i + 1])
        tlin = torch.nn.Linear(widths[i], widths[i + 1]).double()
        with torch.no_grad():
            tlin.weight.copy_(torch.from_numpy(lin.params["W"].T))
            tlin.bias.copy_(torch.from_numpy(lin.params["b"]))
        ours.append(lin)
        theirs.append(tlin)
        if i < depth - 1:
            a, ta = acts[int(rng.integers(0, 3))]
            ours.append(a())
            theirs.append(ta())
    model, tmodel = Sequential(*ours), torch.nn.Sequential(*theirs)
    x = rng.normal(size=(n, widths[0]))
    y = rng.integers(0, widths[-1], size=n)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(x), y)
    dx = model.backward(loss_fn.backward())

    tx = t64(x, True)
    t_loss = F.cross_entropy(tmodel(tx), torch.from_numpy(y))
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= TOL * abs(t_loss.item())
    if widths[-1] > 1:
        assert max_rel_err(dx, tx.grad.numpy()) < TOL
    t_linears = [m for m in tmodel if isinstance(m, torch.nn.Linear)]
    our_linear_idx = [i for i, m in enumerate(model) if isinstance(m, Linear)]
    for i, tlin in zip(our_linear_idx, t_linears):
        if widths[-1] > 1:
            assert max_rel_err(model.grads[f"{i}.W"], tlin.weight.grad.numpy().T) < TOL
            assert max_rel_err(model.grads[f"{i}.b"], tlin.bias.grad.numpy()) < TOL
        assert model.params[f"{i}.W"] is model[i].params["W"]
        assert model.grads[f"{i}.b"] is model[i].grads["b"]
    assert len(model) == len(ours)
    assert model.num_parameters() == sum(p.numel() for p in tmodel.parameters())


def test_sgd_step_matches_torch_optim():
    rng = np.random.default_rng(4)
    model = Sequential(Linear(3, 5, rng=rng), Tanh(), Linear(5, 2, rng=rng))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        for i in (0, 2):
            tmodel[i].weight.copy_(torch.from_numpy(model[i].params["W"].T))
            tmodel[i].bias.copy_(torch.from_numpy(model[i].params["b"]))
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.3)
    x, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    loss_fn = MSELoss()
    for _ in range(3):
        loss_fn.forward(model.forward(x), target)
        model.backward(loss_fn.backward())
        sgd_step(model.params, model.grads, lr=0.3)
        opt.zero_grad()
        F.mse_loss(tmodel(t64(x)), t64(target)).backward()
        opt.step()
    for i in (0, 2):
        assert max_rel_err(model[i].params["W"], tmodel[i].weight.detach().numpy().T) < TOL
        assert max_rel_err(model[i].params["b"], tmodel[i].bias.detach().numpy()) < TOL
    with pytest.raises(ValueError, match="different keys"):
        sgd_step({"a": np.zeros(2)}, {"b": np.zeros(2)}, 0.1)


def test_sequential_rejects_non_layers():
    with pytest.raises(ValueError, match="forward/backward"):
        Sequential(Linear(2, 2, rng=0), np.tanh)


# ------------------------------------------------------------------ gradient checking
def _smooth(t):
    """A scalar function written once for numpy arrays and torch tensors."""
    lib = torch if isinstance(t, torch.Tensor) else np
    return (lib.sin(t) * t**2).sum() + (lib.exp(0.3 * t)).sum() ** 2 / 10


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds)
def test_numerical_gradient_matches_torch_autograd(shape, seed):
    x = np.random.default_rng(seed).normal(size=shape)
    x_before = x.copy()
    num = numerical_gradient(lambda a: float(_smooth(a)), x)
    tx = t64(x, True)
    _smooth(tx).backward()
    assert num.shape == x.shape and num.dtype == x.dtype
    assert max_rel_err(num, tx.grad.numpy()) < 1e-7
    np.testing.assert_array_equal(x, x_before)  # restored exactly


def test_numerical_gradient_through_a_reference_and_errors():
    rng = np.random.default_rng(5)
    layer = Linear(4, 3, rng=rng)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 3, size=6)
    loss_fn = SoftmaxCrossEntropy()
    # f ignores its argument: the perturbation reaches the loss through layer.params["W"]
    num = numerical_gradient(lambda _: loss_fn.forward(layer.forward(x), y), layer.params["W"])
    tW = t64(layer.params["W"], True)
    F.cross_entropy(t64(x) @ tW + t64(layer.params["b"]), torch.from_numpy(y)).backward()
    assert max_rel_err(num, tW.grad.numpy()) < 1e-7
    with pytest.raises(ValueError, match="floating-point"):
        numerical_gradient(lambda a: float(a.sum()), np.arange(3))
    with pytest.raises(ValueError, match="floating-point"):
        numerical_gradient(lambda a: float(sum(a)), [1.0, 2.0])
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(lambda a: float(a.sum()), np.ones(3), eps=0.0)


def _layer_problem(seed: int):
    """Loss of a Linear+Tanh+Linear network as a function of the first weight matrix."""
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(5, 4, rng=rng), Tanh(), Linear(4, 3, rng=rng))
    x = rng.normal(size=(7, 5))
    y = rng.integers(0, 3, size=7)
    loss_fn = SoftmaxCrossEntropy()

    def f(_):
        return loss_fn.forward(model.forward(x), y)

    def grad_f(_):
        f(None)
        model.backward(loss_fn.backward())
        return model.grads["0.W"].copy()

    return model, f, grad_f, x, loss_fn


@pytest.mark.parametrize("seed", range(4))
def test_grad_check_accepts_correct_gradients(seed):
    model, f, grad_f, _, _ = _layer_problem(seed)
    # Rounding in f (~1e-16 * |f| / eps ~ 1e-11 absolute) limits the relative error of entries
    # that are 1e4 times smaller than the largest one to ~1e-6: hence 1e-6 here, 1e-7 below.
    assert grad_check(f, grad_f, model.params["0.W"]) < 1e-6
    x = np.random.default_rng(seed).normal(size=(3, 4))
    tx = t64(x, True)
    _smooth(tx).backward()
    exact = tx.grad.numpy()
    assert grad_check(lambda a: float(_smooth(a)), lambda a: exact, x) < 1e-7


@pytest.mark.parametrize(
    ("bug", "min_error"),
    [
        ("scale", 1e-3),  # gradient 1 % too large
        ("sign", 1.0),  # sign flipped
        ("missing_1_over_N", 0.5),  # forgot to average over the batch
        ("tanh_grad_at_preactivation", 1e-2),  # used 1 - z^2 instead of 1 - tanh(z)^2
        ("one_entry", 1e-2),  # a single entry wrong
    ],
)
def test_grad_check_catches_planted_bugs(bug, min_error):
    model, f, grad_f, x, loss_fn = _layer_problem(11)
    W = model.params["0.W"]

    def buggy(_):
        g = grad_f(None)
        if bug == "scale":
            return g * 1.01
        if bug == "sign":
            return -g
        if bug == "missing_1_over_N":
            return g * len(x)
        if bug == "tanh_grad_at_preactivation":
            z1 = x @ W + model[0].params["b"]
            dh = loss_fn.backward() @ model[2].params["W"].T
            return x.T @ (dh * (1.0 - z1**2))
        g = g.copy()
        g[0, 0] += 0.1 * np.abs(g).max()
        return g

    assert grad_check(f, grad_f, W) < 1e-6  # the same problem passes without the bug
    error = grad_check(f, buggy, W)
    assert error > min_error, f"planted bug {bug!r} gave relative error {error:.2e}"


def test_grad_check_is_scale_invariant_and_validates_shapes():
    x = np.random.default_rng(9).normal(size=(4,))
    tx = t64(x, True)
    _smooth(tx).backward()
    exact = tx.grad.numpy()
    for c in (1e-6, 1.0, 1e6):
        assert grad_check(lambda a, c=c: c * float(_smooth(a)), lambda a, c=c: c * exact, x) < 1e-7
    with pytest.raises(ValueError, match="shape"):
        grad_check(lambda a: float(a.sum()), lambda a: np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="numpy array"):
        grad_check(lambda a: float(sum(a)), lambda a: np.ones(2), [1.0, 2.0])


def test_relative_error_definition():
    a = np.array([1.0, 0.0, -2.0, 1e-20])
    b = np.array([1.1, 0.0, 2.0, 0.0])
    np.testing.assert_allclose(relative_error(a, b), [0.1 / 1.1, 0.0, 2.0, 1.0], rtol=1e-14)
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.ones(2), np.ones(3))


def test_float32_gradient_check_is_much_worse_than_float64():
    """Finite differences in float32 lose most digits: the lecture's reason to check in float64."""
    rng = np.random.default_rng(0)
    x64 = rng.normal(size=(20,))
    tx = t64(x64, True)
    _smooth(tx).backward()
    exact = tx.grad.numpy()
    err64 = grad_check(lambda a: float(_smooth(a)), lambda a: exact, x64.copy())
    x32 = x64.astype(np.float32)
    err32 = grad_check(lambda a: float(_smooth(a)), lambda a: exact, x32)
    assert err64 < 1e-7 and err32 > 1e-3 and err32 > 1e4 * err64
