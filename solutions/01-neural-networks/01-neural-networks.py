# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "solution": false, "schema_version": 3}
# # Assignment 01 · Activations and the fully connected layer
#
# In this assignment you implement, in numpy, the building blocks of lecture 01:
#
# 1. the activation functions $\sigma$, $\tanh$, ReLU, Leaky ReLU and ELU, **and their
#    derivatives** (you will need them for backpropagation in assignment 02);
# 2. the forward pass of a fully connected layer, $Y = XW + b$.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some of them also contain hidden tests that run only when your notebook is
# graded, on inputs you have not seen (random shapes, large and small values), against PyTorch.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: numpy only inside your functions (no `torch`, no `scipy.special`), vectorised (no Python
# loops over elements), and the output must have the same shape as the input.

# %% tags=["parameters"]
SMOKE = False

# %%
import numpy as np
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "sigmoid_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. Sigmoid (2 points)
#
# $$\sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma'(x) = \sigma(x)\,\bigl(1 - \sigma(x)\bigr).$$
#
# The direct formula overflows for very negative $x$ (`np.exp(800)` is `inf`). For $x < 0$ use
# the equivalent form $\sigma(x) = e^{x} / (1 + e^{x})$, which never overflows. Your function
# must return finite values without warnings for any finite input.

# %% nbgrader={"grade": false, "grade_id": "sigmoid", "locked": false, "solution": true, "schema_version": 3}
def sigmoid(x):
    """Numerically stable logistic sigmoid, elementwise. x: any shape -> same shape."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out
    ### END SOLUTION


def sigmoid_grad(x):
    """Derivative of the sigmoid at x, elementwise."""
    ### BEGIN SOLUTION
    s = sigmoid(x)
    return s * (1.0 - s)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sigmoid_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
assert_close(sigmoid(np.array([0.0])), [0.5], "sigmoid(0) must be 1/2")
assert_close(sigmoid(np.array([-2.0, 2.0])).sum(), 1.0, "sigmoid(-x) + sigmoid(x) must be 1")
assert_close(sigmoid_grad(np.array([0.0])), [0.25], "sigmoid'(0) must be 1/4")
with np.errstate(over="raise", invalid="raise", divide="raise"):
    extreme = sigmoid(np.array([-800.0, 800.0]))
assert_close(extreme, [0.0, 1.0], "sigmoid must not overflow at +-800", atol=1e-12)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(101)
for _shape in [(7,), (3, 4), (2, 3, 5)]:
    _x = _rng.normal(scale=20.0, size=_shape)
    _t = torch.from_numpy(_x).requires_grad_(True)
    _y = torch.sigmoid(_t)
    _y.sum().backward()
    assert_close(sigmoid(_x), _y.detach(), f"sigmoid on a random {_shape} array", rtol=1e-10, atol=1e-300)
    assert_close(sigmoid_grad(_x), _t.grad, f"sigmoid_grad on a random {_shape} array", rtol=1e-8, atol=1e-300)
    assert_shape(sigmoid(_x), _shape, "sigmoid(x)")
with np.errstate(over="raise", invalid="raise", divide="raise"):
    assert_close(sigmoid(np.array([-1e4, -745.0, 1e4])), torch.sigmoid(torch.tensor([-1e4, -745.0, 1e4])),
                 "sigmoid at extreme inputs", atol=1e-300)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "tanh_relu_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. Tanh and ReLU (2 points)
#
# $$\tanh'(x) = 1 - \tanh^2(x), \qquad \mathrm{ReLU}(x) = \max(0, x), \qquad
# \mathrm{ReLU}'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}$$
#
# (At $x = 0$ ReLU has no derivative; use 0, as PyTorch does.) You may use `np.tanh`.

# %% nbgrader={"grade": false, "grade_id": "tanh_relu", "locked": false, "solution": true, "schema_version": 3}
def tanh_grad(x):
    """Derivative of tanh at x, elementwise."""
    ### BEGIN SOLUTION
    t = np.tanh(np.asarray(x, dtype=np.float64))
    return 1.0 - t * t
    ### END SOLUTION


def relu(x):
    """max(0, x), elementwise."""
    ### BEGIN SOLUTION
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    ### END SOLUTION


def relu_grad(x):
    """Derivative of ReLU at x (0 at x = 0), elementwise."""
    ### BEGIN SOLUTION
    return (np.asarray(x) > 0).astype(np.float64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "tanh_relu_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
assert_close(tanh_grad(np.array([0.0])), [1.0], "tanh'(0) must be 1")
assert_close(relu(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0], "relu must zero the negatives and keep the positives")
assert_close(relu_grad(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 1.0], "relu'(x) is 1 for x > 0 and 0 otherwise")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(202)
for _shape in [(9,), (4, 6), (2, 2, 3)]:
    _x = _rng.normal(scale=3.0, size=_shape)
    _t = torch.from_numpy(_x).requires_grad_(True)
    torch.tanh(_t).sum().backward()
    assert_close(tanh_grad(_x), _t.grad, f"tanh_grad on a random {_shape} array", rtol=1e-10)
    _t = torch.from_numpy(_x).requires_grad_(True)
    _y = torch.relu(_t)
    _y.sum().backward()
    assert_close(relu(_x), _y.detach(), f"relu on a random {_shape} array")
    assert_close(relu_grad(_x), _t.grad, f"relu_grad on a random {_shape} array")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "leaky_elu_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Leaky ReLU and ELU (2 points)
#
# The lecture's Leaky ReLU is $\max(0.1x, x)$; in general $\max(a x, x)$ for a slope
# $0 \le a < 1$. ELU keeps a smooth negative part:
#
# $$\mathrm{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & x \le 0 \end{cases}, \qquad
# \mathrm{ELU}'(x) = \begin{cases} 1 & x > 0 \\ \alpha e^{x} & x \le 0 \end{cases}$$
#
# Avoid overflow warnings: `np.exp` of a large positive $x$ must not be evaluated.

# %% nbgrader={"grade": false, "grade_id": "leaky_elu", "locked": false, "solution": true, "schema_version": 3}
def leaky_relu(x, slope=0.1):
    """max(slope * x, x), elementwise."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, slope * x)
    ### END SOLUTION


def elu(x, alpha=1.0):
    """ELU, elementwise."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    ### END SOLUTION


def elu_grad(x, alpha=1.0):
    """Derivative of ELU at x, elementwise."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "leaky_elu_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
assert_close(leaky_relu(np.array([-10.0, 3.0])), [-1.0, 3.0], "leaky_relu with the default slope 0.1")
assert_close(elu(np.array([0.0, 2.0])), [0.0, 2.0], "ELU is the identity for x >= 0")
assert_close(elu(np.array([-1.0])), [np.exp(-1.0) - 1.0], "ELU(-1) = e^-1 - 1 with alpha = 1")
assert_close(elu_grad(np.array([-1.0, 1.0])), [np.exp(-1.0), 1.0], "ELU'(x) is e^x for x < 0 and 1 for x > 0")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(303)
for _shape, _slope, _alpha in [((8,), 0.01, 0.5), ((3, 5), 0.2, 1.0), ((2, 3, 4), 0.1, 2.0)]:
    _x = _rng.normal(scale=4.0, size=_shape)
    _t = torch.from_numpy(_x)
    assert_close(leaky_relu(_x, _slope), torch.nn.functional.leaky_relu(_t, _slope), f"leaky_relu, slope {_slope}")
    _t = torch.from_numpy(_x).requires_grad_(True)
    _y = torch.nn.functional.elu(_t, alpha=_alpha)
    _y.sum().backward()
    assert_close(elu(_x, _alpha), _y.detach(), f"elu, alpha {_alpha}", rtol=1e-10)
    assert_close(elu_grad(_x, _alpha), _t.grad, f"elu_grad, alpha {_alpha}", rtol=1e-10)
with np.errstate(over="raise"):
    elu(np.array([1000.0]))
    elu_grad(np.array([1000.0]))
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "linear_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. The fully connected layer (4 points)
#
# A fully connected layer with $n$ inputs and $m$ outputs computes, for a batch $X$ of shape
# $(N, n)$,
#
# $$Y = X W + b, \qquad W \in \mathbb{R}^{n \times m},\; b \in \mathbb{R}^{m},$$
#
# so it has $n \cdot m + m$ parameters. Complete the class: `__init__` stores the parameters in
# `self.params = {"W": ..., "b": ...}` (W drawn from $\mathcal N(0, 1/n)$ with the given
# generator, b zeros), `forward` returns $Y$ and raises a `ValueError` when `x` is not of shape
# $(N, n)$, and `num_parameters` returns $n m + m$.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "solution": true, "schema_version": 3}
class Linear:
    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng(0) if rng is None else rng
        self.in_features = in_features
        self.out_features = out_features
        ### BEGIN SOLUTION
        self.params = {
            "W": rng.normal(scale=1.0 / np.sqrt(in_features), size=(in_features, out_features)),
            "b": np.zeros(out_features),
        }
        ### END SOLUTION

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features)."""
        ### BEGIN SOLUTION
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear expects x of shape (N, {self.in_features}); got {x.shape}")
        return x @ self.params["W"] + self.params["b"]
        ### END SOLUTION

    def num_parameters(self):
        ### BEGIN SOLUTION
        return self.in_features * self.out_features + self.out_features
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "linear_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
_layer = Linear(3, 2)
assert_shape(_layer.params["W"], (3, 2), "params['W']")
assert_shape(_layer.params["b"], (2,), "params['b']")
_layer.params["W"] = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
_layer.params["b"] = np.array([0.5, -0.5])
assert_close(_layer.forward(np.array([[1.0, 2.0, 3.0]])), [[4.5, 4.5]], "Y = XW + b on one example")
assert _layer.num_parameters() == 8, f"a 3 -> 2 layer has 3*2 + 2 = 8 parameters, got {_layer.num_parameters()}"
try:
    _layer.forward(np.ones((4, 5)))
except ValueError:
    pass
else:
    raise AssertionError("forward must raise ValueError for x of shape (4, 5) when in_features = 3")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(404)
for _n, _m, _batch in [(784, 1000, 3), (5, 1, 1), (13, 7, 11)]:
    _layer = Linear(_n, _m, rng=np.random.default_rng(1))
    assert _layer.num_parameters() == _n * _m + _m, f"num_parameters of a {_n} -> {_m} layer"
    _W = _layer.params["W"]
    assert abs(_W.std() * np.sqrt(_n) - 1.0) < 0.25 or _W.size < 50, "W must be drawn from N(0, 1/n)"
    _x = _rng.normal(size=(_batch, _n))
    _layer.params["b"] = _rng.normal(size=_m)
    _ref = torch.nn.functional.linear(torch.from_numpy(_x), torch.from_numpy(_W.T), torch.from_numpy(_layer.params["b"]))
    assert_close(_layer.forward(_x), _ref, f"forward of a {_n} -> {_m} layer on a batch of {_batch}", rtol=1e-10)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "linear_stack_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. A stack of linear layers is still linear (2 points)
#
# Lecture 01 argues that without nonlinearities, depth buys nothing:
# $(XW_1 + b_1)W_2 + b_2 = X(W_1W_2) + (b_1W_2 + b_2)$. Write `collapse(layer1, layer2)`
# returning one `Linear` layer that computes exactly `layer2.forward(layer1.forward(x))`.

# %% nbgrader={"grade": false, "grade_id": "collapse", "locked": false, "solution": true, "schema_version": 3}
def collapse(layer1, layer2):
    """One Linear layer equal to layer2 ∘ layer1."""
    ### BEGIN SOLUTION
    merged = Linear(layer1.in_features, layer2.out_features)
    merged.params["W"] = layer1.params["W"] @ layer2.params["W"]
    merged.params["b"] = layer1.params["b"] @ layer2.params["W"] + layer2.params["b"]
    return merged
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "collapse_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_l1, _l2 = Linear(4, 3, rng=np.random.default_rng(5)), Linear(3, 2, rng=np.random.default_rng(6))
_l1.params["b"] = np.array([1.0, -1.0, 0.5])
_x = np.random.default_rng(7).normal(size=(5, 4))
_merged = collapse(_l1, _l2)
assert_shape(_merged.params["W"], (4, 2), "the collapsed W")
assert_close(_merged.forward(_x), _l2.forward(_l1.forward(_x)), "collapse(l1, l2) must equal l2(l1(x))", rtol=1e-10)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(505)
for _a, _b, _c in [(7, 2, 9), (1, 5, 1)]:
    _l1, _l2 = Linear(_a, _b, rng=_rng), Linear(_b, _c, rng=_rng)
    _l1.params["b"] = _rng.normal(size=_b)
    _l2.params["b"] = _rng.normal(size=_c)
    _x = _rng.normal(size=(6, _a))
    _ref = torch.nn.Sequential(torch.nn.Linear(_a, _b), torch.nn.Linear(_b, _c)).double()
    with torch.no_grad():
        _ref[0].weight.copy_(torch.from_numpy(_l1.params["W"].T))
        _ref[0].bias.copy_(torch.from_numpy(_l1.params["b"]))
        _ref[1].weight.copy_(torch.from_numpy(_l2.params["W"].T))
        _ref[1].bias.copy_(torch.from_numpy(_l2.params["b"]))
        assert_close(collapse(_l1, _l2).forward(_x), _ref(torch.from_numpy(_x)), f"collapse of {_a}->{_b}->{_c}", rtol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# ## Done
# Restart the kernel and run all cells: every test cell above must run without an error.
# The graded version runs hidden tests too, so check edge cases (very large inputs, a batch of
# one, wrong shapes) yourself.
