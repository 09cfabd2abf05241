"""Tests of course_lib.autograd: the scalar Value engine and MLP against torch.autograd (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.autograd import MLP, Value, softmax_cross_entropy

# --------------------------------------------------------------------------------------------
# Random expression graphs: one "program" is run twice, once on Values and once on torch scalars.
# Every data-dependent choice (keeping a base positive, a divisor away from zero, ...) is made
# from the Value's data and then applied identically to both, so the two graphs are the same.
# --------------------------------------------------------------------------------------------

OPS = [
    "add", "sub", "mul", "div", "neg", "radd", "rsub", "rmul", "rdiv",
    "pow2", "pow3", "pow_neg", "pow_half", "exp", "log", "tanh", "relu", "sigmoid",
]


def _apply(op: str, a, b, a_data: float, b_data: float, const: float):
    """One step of a program; a, b are both Values or both torch tensors."""
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b if abs(b_data) > 0.1 else a / (b * b + 1.0)
    if op == "neg":
        return -a
    if op == "radd":
        return const + a
    if op == "rsub":
        return const - a
    if op == "rmul":
        return const * a
    if op == "rdiv":
        return const / a if abs(a_data) > 0.1 else const / (a * a + 1.0)
    if op == "pow2":
        return a**2
    if op == "pow3":
        return a**3
    if op == "pow_neg":
        return a**-1.5 if a_data > 0.1 else (a * a + 1.0) ** -1.5
    if op == "pow_half":
        return a**0.5 if a_data > 0.1 else (a * a + 1.0) ** 0.5
    if op == "exp":
        return a.exp() if abs(a_data) < 10 else a.tanh().exp()
    if op == "log":
        return a.log() if a_data > 0.01 else (a * a + 1.0).log()
    if op == "tanh":
        return a.tanh()
    if op == "relu":
        return a.relu()
    if op == "sigmoid":
        return a.sigmoid()
    raise AssertionError(op)


def _run_program(leaves: list[float], program: list[tuple[str, int, int, float]]):
    vals = [Value(x) for x in leaves]
    tens = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    v_pool, t_pool = list(vals), list(tens)
    for op, i, j, const in program:
        i, j = i % len(v_pool), j % len(v_pool)
        va, vb, ta, tb = v_pool[i], v_pool[j], t_pool[i], t_pool[j]
        v_out = _apply(op, va, vb, va.data, vb.data, const)
        t_out = _apply(op, ta, tb, va.data, vb.data, const)
        if abs(v_out.data) > 1e4:  # keep magnitudes moderate for long programs
            v_out, t_out = v_out.tanh(), t_out.tanh()
        v_pool.append(v_out)
        t_pool.append(t_out)
    # the output sums every intermediate node, so most nodes feed several others (fan-out)
    v_final = sum(v_pool[len(leaves):], Value(0.0))
    t_final = sum(t_pool[len(leaves):], torch.tensor(0.0, dtype=torch.float64))
    return vals, tens, v_final, t_final


programs = st.lists(
    st.tuples(
        st.sampled_from(OPS),
        st.integers(0, 10_000),
        st.integers(0, 10_000),
        st.floats(-3, 3, allow_nan=False).filter(lambda c: abs(c) > 1e-3),
    ),
    min_size=1,
    max_size=25,
)
leaf_values = st.lists(st.floats(-2.5, 2.5, allow_nan=False, allow_subnormal=False), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(leaves=leaf_values, program=programs)
def test_value_matches_torch_on_random_expression_graphs(leaves, program):
    vals, tens, v_final, t_final = _run_program(leaves, program)
    v_final.backward()
    t_final.backward()
    assert math.isclose(v_final.data, t_final.item(), rel_tol=1e-9, abs_tol=1e-9)
    v_grads = np.array([v.grad for v in vals])
    t_grads = np.array([0.0 if t.grad is None else t.grad.item() for t in tens])
    scale = max(1.0, float(np.abs(t_grads).max()))
    np.testing.assert_allclose(v_grads, t_grads, rtol=1e-7, atol=1e-9 * scale)


@pytest.mark.parametrize(
    ("expr", "x0"),
    [
        (lambda x: x + 2.0, 1.5),
        (lambda x: 2.0 + x, 1.5),
        (lambda x: x - 2.0, 1.5),
        (lambda x: 2.0 - x, 1.5),
        (lambda x: x * 3.0, 1.5),
        (lambda x: 3.0 * x, 1.5),
        (lambda x: x / 4.0, 1.5),
        (lambda x: 4.0 / x, 1.5),
        (lambda x: -x, 1.5),
        (lambda x: x**-2, 1.5),
        (lambda x: x**0.25, 1.5),
        (lambda x: x.exp(), -0.7),
        (lambda x: x.log(), 0.7),
        (lambda x: x.tanh(), 0.3),
        (lambda x: x.sigmoid(), -0.3),
        (lambda x: x.relu(), -0.3),
        (lambda x: x.relu(), 0.3),
        (lambda x: x.relu(), 0.0),
    ],
)
def test_each_operation_against_torch(expr, x0):
    v = Value(x0)
    out = expr(v)
    out.backward()
    t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    t_out = expr(t)
    t_out.backward()
    assert math.isclose(out.data, t_out.item(), rel_tol=1e-12, abs_tol=1e-15)
    assert math.isclose(v.grad, t.grad.item(), rel_tol=1e-12, abs_tol=1e-15)


def test_sigmoid_is_overflow_free_for_large_inputs():
    for x0 in (-800.0, 800.0):
        v = Value(x0)
        s = v.sigmoid()
        s.backward()
        t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        torch.sigmoid(t).backward()
        assert s.data == pytest.approx(torch.sigmoid(t).item(), abs=1e-300)
        assert v.grad == pytest.approx(t.grad.item(), abs=1e-300)


def test_reused_node_accumulates_gradient_over_all_paths():
    # a = x*x + x*x*x: paths through both terms add up, d a/dx = 2x + 3x^2
    x = Value(1.5)
    sq = x * x
    a = sq + sq * x
    a.backward()
    assert x.grad == pytest.approx(2 * 1.5 + 3 * 1.5**2, rel=1e-14)
    # the same node used twice as both operands
    y = Value(-0.8)
    b = y * y
    b.backward()
    assert y.grad == pytest.approx(-1.6, rel=1e-14)


def test_backward_twice_accumulates_and_zero_grad_resets():
    x = Value(0.4)
    out = (x * 3.0).tanh()
    out.backward()
    g = x.grad
    out.zero_grad()
    assert x.grad == 0.0 and out.grad == 0.0
    out.backward()
    assert x.grad == pytest.approx(g, rel=1e-15)
    out.grad = 0.0
    out.backward()  # without zeroing the interior nodes, gradients add up (as in PyTorch)
    assert x.grad == pytest.approx(3 * g, rel=1e-14)


def test_deep_graph_beyond_recursion_limit():
    x = Value(0.5)
    h = x
    for _ in range(20_000):
        h = h + x * 1e-4
    h.backward()
    assert h.data == pytest.approx(0.5 + 20_000 * 0.5e-4, rel=1e-12)
    assert x.grad == pytest.approx(1.0 + 20_000 * 1e-4, rel=1e-12)


def test_topological_order_puts_inputs_first():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d.tanh()
    order = e.topological_order()
    pos = {id(n): i for i, n in enumerate(order)}
    assert len(order) == 5
    for node in order:
        for child in node._prev:
            assert pos[id(child)] < pos[id(node)]


def test_errors_are_clear():
    x = Value(2.0)
    with pytest.raises(TypeError, match="constant"):
        _ = x ** Value(2.0)
    with pytest.raises(ValueError, match="non-positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="not a real number"):
        _ = Value(-8.0) ** 0.5
    with pytest.raises(ZeroDivisionError):
        _ = x / 0.0
    with pytest.raises(TypeError, match="cannot combine"):
        _ = x + "1"
    with pytest.raises(TypeError):
        Value(x)


# --------------------------------------------------------------------------------------------
# MLP against torch.nn with the same weights
# --------------------------------------------------------------------------------------------


def _torch_mlp(arrays, activation: str) -> torch.nn.Sequential:
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[activation]
    mods: list[torch.nn.Module] = []
    for i, (W, b) in enumerate(arrays):
        lin = torch.nn.Linear(W.shape[0], W.shape[1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(arrays) - 1:
            mods.append(act())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("seed", range(6))
def test_mlp_forward_and_backward_match_torch(seed):
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    sizes = [int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3)))] + [int(rng.integers(2, 4))]
    activation = ["tanh", "relu", "sigmoid"][seed % 3]
    mlp = MLP(n_in, sizes, activation=activation, rng=rng)
    arrays = mlp.arrays()
    # non-zero biases so that their gradients are exercised
    arrays = [(W, rng.normal(size=b.shape)) for W, b in arrays]
    mlp.load_arrays(arrays)
    net = _torch_mlp(arrays, activation)

    batch = rng.normal(size=(3, n_in))
    labels = rng.integers(0, sizes[-1], size=3)
    loss = Value(0.0)
    for x, y in zip(batch, labels):
        loss = loss + softmax_cross_entropy(mlp(list(x)), int(y))
    loss = loss / len(batch)
    loss.backward()

    t_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(batch)), torch.from_numpy(labels))
    t_loss.backward()
    assert loss.data == pytest.approx(t_loss.item(), rel=1e-12)
    lin_layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    for (gW, gb), lin in zip(mlp.arrays(grad=True), lin_layers):
        np.testing.assert_allclose(gW, lin.weight.grad.numpy().T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gb, lin.bias.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_mlp_shapes_init_and_determinism():
    mlp = MLP(3, [4, 2], rng=0)
    assert len(mlp.parameters()) == (3 + 1) * 4 + (4 + 1) * 2
    out = mlp([1.0, -1.0, 0.5])
    assert len(out) == 2 and all(isinstance(v, Value) for v in out)
    W1, b1 = mlp.arrays()[0]
    assert W1.shape == (3, 4) and b1.shape == (4,)
    assert np.all(np.abs(W1) <= 1 / np.sqrt(3)) and np.all(b1 == 0)
    again = MLP(3, [4, 2], rng=0)
    for (Wa, ba), (Wb, bb) in zip(mlp.arrays(), again.arrays()):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    assert not np.array_equal(MLP(3, [4, 2], rng=1).arrays()[0][0], W1)
    np.random.seed(5)
    first = MLP(3, [4], rng=None).arrays()[0][0]
    np.random.seed(5)
    np.testing.assert_array_equal(MLP(3, [4], rng=None).arrays()[0][0], first)


def test_mlp_learns_xor():
    x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    y = [0.0, 1.0, 1.0, 0.0]
    mlp = MLP(2, [8, 1], activation="tanh", rng=3)

    def loss_fn() -> Value:
        return sum(((mlp(xi)[0] - yi) ** 2 for xi, yi in zip(x, y)), Value(0.0)) / 4

    start = loss_fn().data
    for _ in range(300):
        mlp.zero_grad()
        loss = loss_fn()
        loss.backward()
        for p in mlp.parameters():
            p.data -= 0.2 * p.grad
    end = loss_fn().data
    assert end < 0.01 < start
    preds = [mlp(xi)[0].data > 0.5 for xi in x]
    assert preds == [False, True, True, False]


def test_mlp_errors():
    with pytest.raises(ValueError, match="at least one"):
        MLP(3, [])
    with pytest.raises(ValueError, match="activation"):
        MLP(3, [2], activation="gelu")
    with pytest.raises(ValueError, match="expects 3 inputs"):
        MLP(3, [2], rng=0)([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        MLP(3, [2], rng=0).load_arrays([(np.zeros((2, 3)), np.zeros(2))])
    with pytest.raises(ValueError, match="out of range"):
        softmax_cross_entropy([Value(0.0), Value(1.0)], 2)
