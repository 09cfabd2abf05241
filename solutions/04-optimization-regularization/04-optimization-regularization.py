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
# # Assignment 04 · Optimisers, dropout and batch normalisation from scratch
#
# In this assignment you implement, in numpy, the methods of lectures 04 and 05:
#
# 1. the six update rules: SGD, momentum, Nesterov momentum, Adagrad, RMSProp, Adam;
# 2. inverted dropout, forward and backward;
# 3. batch normalisation, forward (with running statistics) and backward.
#
# Replace every `raise NotImplementedError()` with your code. The test cells check your answers;
# some also contain hidden tests that run only when your notebook is graded: they compare whole
# 200-step trajectories of your optimisers with `torch.optim` and your batch norm with
# `torch.nn.functional.batch_norm` + autograd, on configurations you have not seen.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: numpy only inside your functions (no `torch`), vectorised, and do not modify the
# arrays you are given unless the instructions say so.

# %% tags=["parameters"]
SMOKE = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.notebook import setup_notebook
from course_lib.optim import optimize
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)


def make_problem(seed, dim, n_steps=200):
    """A random elongated quadratic with a wiggle and mini-batch-like noise:
    grad_t(w) = A (w - c) + 0.3 sin(w) + xi_t. Returns (new_grad, w0); every call of new_grad() gives
    a fresh gradient function whose noise sequence xi_1, xi_2, ... starts again from the beginning."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    A = Q @ np.diag(np.geomspace(0.1, 2.0, dim)) @ Q.T
    c = rng.normal(size=dim)
    w0 = rng.normal(size=dim)
    xi = 0.5 * rng.normal(size=(n_steps, dim))

    def new_grad():
        calls = [0]

        def grad(w):
            g = A @ (w - c) + 0.3 * np.sin(w) + xi[calls[0]]
            calls[0] += 1
            return g

        return grad

    return new_grad, w0


def torch_path(grad_fn, w0, n_steps, make_opt):
    """Run a torch optimiser with the gradients of ``grad_fn``; return its parameter after each step
    (n_steps, dim) and the optimiser (for its state)."""
    p = torch.tensor(w0, requires_grad=True)
    opt = make_opt([p])
    rows = []
    for _ in range(n_steps):
        p.grad = torch.from_numpy(grad_fn(p.detach().numpy().copy()))
        opt.step()
        rows.append(p.detach().numpy().copy())
    return np.array(rows), opt


# %% [markdown] nbgrader={"grade": false, "grade_id": "rules_md", "locked": true, "solution": false, "schema_version": 3}
# ## The interface of an update rule
#
# Every update rule is a function
#
# ```python
# w_next, state_next = rule(w, grad_fn, state, lr=..., <hyper-parameters>)
# ```
#
# * `w` - the current point, a numpy array of any shape;
# * `grad_fn(w)` - returns the gradient at a point (call it **exactly once** per step; it may be
#   a noisy mini-batch gradient, so two calls would give two different answers);
# * `state` - a dict with whatever the rule carries from step to step (velocity, accumulators,
#   step counter), or `None` at the first step; return the new state as a **new** dict.
#
# `course_lib.optim.optimize(rule, grad_fn, w0, n_steps, lr=..., ...)` runs a rule and returns the
# trajectory `(n_steps + 1, *w0.shape)`, starting with `w0`.
#
# ## 1. SGD and momentum (2 points)
#
# $$\text{SGD:}\quad w_t = w_{t-1} - \eta\, \nabla Q(w_{t-1})$$
#
# $$\text{momentum:}\quad h_0 = 0,\quad h_t = \alpha\, h_{t-1} + \eta\, \nabla Q(w_{t-1}),\quad w_t = w_{t-1} - h_t$$
#
# Keep $h$ in `state["h"]`. (`torch.optim.SGD(lr, momentum)` stores $b = h / \eta$ instead; for a
# constant $\eta$ the trajectories agree.)

# %% nbgrader={"grade": false, "grade_id": "sgd_momentum", "locked": false, "solution": true, "schema_version": 3}
def sgd_update(w, grad_fn, state=None, *, lr):
    """One SGD step; returns (w_next, {})."""
    ### BEGIN SOLUTION
    return w - lr * grad_fn(w), {}
    ### END SOLUTION


def momentum_update(w, grad_fn, state=None, *, lr, momentum=0.9):
    """One heavy-ball momentum step; returns (w_next, {"h": h_t})."""
    ### BEGIN SOLUTION
    h = state["h"] if state else np.zeros_like(w)
    h = momentum * h + lr * grad_fn(w)
    return w - h, {"h": h}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sgd_momentum_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_w, _s = sgd_update(np.array([1.0, -2.0]), lambda w: 2 * w, None, lr=0.1)
assert_close(_w, [0.8, -1.6], "SGD on f(w) = |w|^2 from (1, -2) with lr 0.1")
_w, _s = momentum_update(np.array([1.0]), lambda w: np.array([1.0]), None, lr=0.5, momentum=0.9)
assert_close(_s["h"], [0.5], "first momentum step: h_1 = lr * g")
_w, _s = momentum_update(_w, lambda w: np.array([1.0]), _s, lr=0.5, momentum=0.9)
assert_close(_s["h"], [0.9 * 0.5 + 0.5], "second momentum step: h_2 = alpha h_1 + lr * g")
assert_close(_w, [1.0 - 0.5 - 0.95], "w_2 = w_0 - h_1 - h_2")
_new, _w0 = make_problem(0, 3)
_ref, _ = torch_path(_new(), _w0, 50, lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.8))
assert_close(optimize(momentum_update, _new(), _w0, 50, lr=0.2, momentum=0.8)[1:], _ref,
             "momentum vs torch.optim.SGD(momentum=0.8) over 50 steps", rtol=1e-8, atol=1e-10)
### BEGIN HIDDEN TESTS
for _seed, _lr, _a in [(11, 0.37, 0.55), (12, 0.08, 0.93), (13, 0.5, 0.0)]:
    _new, _w0 = make_problem(_seed, 2 + _seed % 5)
    _ref, _ = torch_path(_new(), _w0, 200, lambda p, lr=_lr: torch.optim.SGD(p, lr=lr))
    assert_close(optimize(sgd_update, _new(), _w0, 200, lr=_lr)[1:], _ref, f"SGD, seed {_seed}", rtol=1e-8, atol=1e-10)
    _ref, _opt = torch_path(_new(), _w0, 200, lambda p, lr=_lr, a=_a: torch.optim.SGD(p, lr=lr, momentum=a))
    _path = optimize(momentum_update, _new(), _w0, 200, lr=_lr, momentum=_a)
    assert_close(_path[1:], _ref, f"momentum {_a}, lr {_lr}, seed {_seed}", rtol=1e-8, atol=1e-10)
_state = None
_w = np.zeros((2, 3))
for _ in range(3):
    _w, _state = momentum_update(_w, lambda w: np.ones_like(w), _state, lr=0.1, momentum=0.5)
assert_shape(_w, (2, 3), "momentum_update on a (2, 3) array")
assert_close(_state["h"], np.full((2, 3), 0.1 * (1 + 0.5 + 0.25)), "h after three steps of a constant gradient")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "nesterov_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. Nesterov momentum (2 points)
#
# $$h_t = \alpha\, h_{t-1} + \eta\, \nabla Q\bigl(w_{t-1} - \alpha\, h_{t-1}\bigr),\qquad w_t = w_{t-1} - h_t .$$
#
# `w` is the lecture's iterate; the gradient is evaluated at the look-ahead point. (PyTorch's
# `SGD(nesterov=True)` stores the look-ahead point $w_t - \alpha h_t$ as the parameter; the hidden
# tests convert.)

# %% nbgrader={"grade": false, "grade_id": "nesterov", "locked": false, "solution": true, "schema_version": 3}
def nesterov_update(w, grad_fn, state=None, *, lr, momentum=0.9):
    """One Nesterov momentum step; returns (w_next, {"h": h_t})."""
    ### BEGIN SOLUTION
    h = state["h"] if state else np.zeros_like(w)
    h = momentum * h + lr * grad_fn(w - momentum * h)
    return w - h, {"h": h}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "nesterov_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_seen = []


def _recording_grad(w):
    _seen.append(w.copy())
    return np.ones_like(w)


_w, _s = nesterov_update(np.zeros(2), _recording_grad, None, lr=0.5, momentum=0.8)
_w, _s = nesterov_update(_w, _recording_grad, _s, lr=0.5, momentum=0.8)
assert len(_seen) == 2, f"grad_fn must be called once per step, it was called {len(_seen)} times in 2 steps"
assert_close(_seen[1], [-0.9, -0.9], "the second gradient must be taken at w_1 - alpha h_1 = -0.5 - 0.8 * 0.5")
assert_close(_w, [-0.5 - 0.9, -0.5 - 0.9], "w_2 = w_1 - h_2 with h_2 = 0.8 * 0.5 + 0.5")
### BEGIN HIDDEN TESTS
for _seed, _lr, _a in [(21, 0.3, 0.9), (22, 0.05, 0.6), (23, 0.6, 0.3)]:
    _new, _w0 = make_problem(_seed, 2 + _seed % 4)
    _tgrad = _new()
    _p = torch.tensor(_w0, requires_grad=True)
    _opt = torch.optim.SGD([_p], lr=_lr, momentum=_a, nesterov=True)
    _rows = []
    for _ in range(200):
        _p.grad = torch.from_numpy(_tgrad(_p.detach().numpy().copy()))
        _opt.step()
        # the lecture's iterate: w_t = p_t + alpha h_t with h_t = lr * momentum_buffer
        _rows.append(_p.detach().numpy() + _a * _lr * _opt.state[_p]["momentum_buffer"].numpy())
    assert_close(optimize(nesterov_update, _new(), _w0, 200, lr=_lr, momentum=_a)[1:], np.array(_rows),
                 f"Nesterov vs torch SGD(nesterov=True), lr {_lr}, momentum {_a}", rtol=1e-8, atol=1e-10)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "adaptive_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Adagrad and RMSProp (3 points)
#
# Per coordinate $j$, with $g_t = \nabla Q(w_{t-1})$ and $G^0 = 0$:
#
# $$\text{Adagrad:}\quad G_j^t = G_j^{t-1} + g_{tj}^2,\qquad w_j^t = w_j^{t-1} - \frac{\eta}{\sqrt{G_j^t + \varepsilon}}\, g_{tj}$$
#
# $$\text{RMSProp:}\quad G_j^t = \alpha\, G_j^{t-1} + (1-\alpha)\, g_{tj}^2,\qquad w_j^t = w_j^{t-1} - \frac{\eta}{\sqrt{G_j^t + \varepsilon}}\, g_{tj}$$
#
# Keep $G$ in `state["G"]`. Note that $\varepsilon$ is **under** the square root, as in the
# lecture; PyTorch adds it after the root (`torch.optim.Adagrad(eps=0,
# initial_accumulator_value=ε)` is the exact equivalent of the lecture's Adagrad).

# %% nbgrader={"grade": false, "grade_id": "adaptive", "locked": false, "solution": true, "schema_version": 3}
def adagrad_update(w, grad_fn, state=None, *, lr, eps=1e-10):
    """One Adagrad step; returns (w_next, {"G": G_t})."""
    ### BEGIN SOLUTION
    g = grad_fn(w)
    G = (state["G"] if state else np.zeros_like(w)) + g * g
    return w - lr * g / np.sqrt(G + eps), {"G": G}
    ### END SOLUTION


def rmsprop_update(w, grad_fn, state=None, *, lr, alpha=0.99, eps=1e-8):
    """One RMSProp step; returns (w_next, {"G": G_t})."""
    ### BEGIN SOLUTION
    g = grad_fn(w)
    G = alpha * (state["G"] if state else np.zeros_like(w)) + (1 - alpha) * g * g
    return w - lr * g / np.sqrt(G + eps), {"G": G}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "adaptive_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_w, _s = adagrad_update(np.array([1.0, 1.0]), lambda w: np.array([3.0, -4.0]), None, lr=0.1, eps=0.0)
assert_close(_w, [0.9, 1.1], "first Adagrad step with eps = 0 has length lr in every coordinate")
assert_close(_s["G"], [9.0, 16.0], "Adagrad accumulates squared gradients")
_w, _s = adagrad_update(np.array([0.0]), lambda w: np.array([2.0]), None, lr=1.0, eps=5.0)
assert_close(_w, [-2.0 / 3.0], "eps goes under the square root: 2 / sqrt(4 + 5)")
_w, _s = rmsprop_update(np.array([0.0]), lambda w: np.array([2.0]), None, lr=1.0, alpha=0.75, eps=0.0)
assert_close(_s["G"], [0.25 * 4.0], "RMSProp: G_1 = (1 - alpha) g^2")
assert_close(_w, [-2.0 / 1.0], "RMSProp: w_1 = -lr g / sqrt(G_1)")
### BEGIN HIDDEN TESTS
for _seed, _lr, _eps in [(31, 0.05, 1e-3), (32, 0.3, 0.1), (33, 0.01, 1e-10)]:
    _new, _w0 = make_problem(_seed, 3 + _seed % 3)
    _ref, _ = torch_path(_new(), _w0, 200,
                         lambda p, lr=_lr, e=_eps: torch.optim.Adagrad(p, lr=lr, eps=0.0, initial_accumulator_value=e))
    assert_close(optimize(adagrad_update, _new(), _w0, 200, lr=_lr, eps=_eps)[1:], _ref,
                 f"Adagrad vs torch Adagrad(eps=0, initial_accumulator_value={_eps}), lr {_lr}", rtol=1e-8, atol=1e-10)
for _seed, _lr, _alpha in [(34, 0.01, 0.9), (35, 0.003, 0.99), (36, 0.05, 0.5)]:
    _new, _w0 = make_problem(_seed, 2 + _seed % 4)
    _ref, _ = torch_path(_new(), _w0, 200, lambda p, lr=_lr, a=_alpha: torch.optim.RMSprop(p, lr=lr, alpha=a, eps=0.0))
    assert_close(optimize(rmsprop_update, _new(), _w0, 200, lr=_lr, alpha=_alpha, eps=0.0)[1:], _ref,
                 f"RMSProp vs torch RMSprop(eps=0), lr {_lr}, alpha {_alpha}", rtol=1e-8, atol=1e-10)
_G, _w = 0.0, np.array([0.5, -1.0])
_wr, _sr = _w, None
for _t in range(3):  # eps under the root, checked against the formula on three steps
    _g = np.cos(_wr) + 1.0
    _G = 0.8 * _G + 0.2 * _g**2
    _expected = _wr - 0.1 * _g / np.sqrt(_G + 0.5)
    _wr, _sr = rmsprop_update(_wr, lambda w: np.cos(w) + 1.0, _sr, lr=0.1, alpha=0.8, eps=0.5)
    assert_close(_wr, _expected, f"RMSProp with eps = 0.5 under the root, step {_t + 1}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "adam_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. Adam (2 points)
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t,\qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,$$
#
# $$\hat m_t = \frac{m_t}{1-\beta_1^t},\qquad \hat v_t = \frac{v_t}{1-\beta_2^t},\qquad
# w_t = w_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}$$
#
# ($t = 1, 2, \dots$; here $\varepsilon$ is added **after** the root, as in the Adam paper and in
# PyTorch.) Keep `state = {"t": t, "m": m_t, "v": v_t}`.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "solution": true, "schema_version": 3}
def adam_update(w, grad_fn, state=None, *, lr, betas=(0.9, 0.999), eps=1e-8):
    """One Adam step; returns (w_next, {"t": t, "m": m_t, "v": v_t})."""
    ### BEGIN SOLUTION
    b1, b2 = betas
    g = grad_fn(w)
    t = (state["t"] if state else 0) + 1
    m = b1 * (state["m"] if state else np.zeros_like(w)) + (1 - b1) * g
    v = b2 * (state["v"] if state else np.zeros_like(w)) + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), {"t": t, "m": m, "v": v}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "adam_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_w, _s = adam_update(np.zeros(3), lambda w: np.array([1e-3, -5.0, 200.0]), None, lr=0.01, eps=1e-12)
assert_close(_w, [-0.01, 0.01, -0.01], "thanks to the bias correction the first Adam step is lr * sign(g)")
assert _s["t"] == 1, "the step counter starts at t = 1"
assert_close(_s["m"], [1e-4, -0.5, 20.0], "m_1 = (1 - beta1) g_1 (uncorrected)")
### BEGIN HIDDEN TESTS
for _seed, _lr, _betas, _eps in [(41, 0.01, (0.9, 0.999), 1e-8), (42, 0.1, (0.5, 0.9), 1e-3), (43, 0.003, (0.95, 0.99), 0.1)]:
    _new, _w0 = make_problem(_seed, 2 + _seed % 5)
    _ref, _opt = torch_path(_new(), _w0, 200, lambda p, lr=_lr, b=_betas, e=_eps: torch.optim.Adam(p, lr=lr, betas=b, eps=e))
    _state = None
    _w = _w0
    _rows = []
    _grad = _new()
    for _ in range(200):
        _w, _state = adam_update(_w, _grad, _state, lr=_lr, betas=_betas, eps=_eps)
        _rows.append(_w)
    assert_close(np.array(_rows), _ref, f"Adam vs torch Adam, lr {_lr}, betas {_betas}, eps {_eps}", rtol=1e-8, atol=1e-10)
    _tstate = next(iter(_opt.state.values()))
    assert_close(_state["m"], _tstate["exp_avg"], "Adam's m after 200 steps", rtol=1e-8, atol=1e-10)
    assert_close(_state["v"], _tstate["exp_avg_sq"], "Adam's v after 200 steps", rtol=1e-8, atol=1e-12)
    assert _state["t"] == 200
### END HIDDEN TESTS

# %% [markdown]
# Your optimisers on the Rosenbrock function $(1-w_1)^2 + 100\,(w_2 - w_1^2)^2$ (not graded):

# %%
def rosenbrock_grad(w):
    x, y = w
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


_steps = 300 if SMOKE else 3000
_configs = {
    "SGD": (sgd_update, dict(lr=1.5e-3)),
    "momentum": (momentum_update, dict(lr=2e-4, momentum=0.9)),
    "Nesterov": (nesterov_update, dict(lr=2e-4, momentum=0.9)),
    "Adagrad": (adagrad_update, dict(lr=0.5)),
    "RMSProp": (rmsprop_update, dict(lr=0.01, alpha=0.9)),
    "Adam": (adam_update, dict(lr=0.05)),
}
xs, ys = np.linspace(-1.6, 1.6, 200), np.linspace(-0.6, 1.6, 200)
XX, YY = np.meshgrid(xs, ys)
fig, ax = plt.subplots(figsize=(8, 5))
ax.contour(xs, ys, (1 - XX) ** 2 + 100 * (YY - XX**2) ** 2, levels=np.geomspace(1e-2, 500, 20), cmap="Greys")
for name, (rule, kw) in _configs.items():
    try:
        path = optimize(rule, rosenbrock_grad, np.array([-1.2, 1.0]), _steps, **kw)
    except NotImplementedError:
        print(f"{name}: not implemented yet")
        continue
    ax.plot(path[:, 0], path[:, 1], lw=1, label=f"{name}: ends at ({path[-1, 0]:.3f}, {path[-1, 1]:.3f})")
ax.plot(1, 1, "r*", ms=12)
if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=8)
ax.set_title(f"your optimisers, {_steps} steps from (-1.2, 1)")
plt.show()

# %% [markdown] nbgrader={"grade": false, "grade_id": "dropout_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. Inverted dropout (2 points)
#
# With the **drop** probability $p$ (PyTorch's convention; the lecture's $p$ is the *keep*
# probability $q = 1 - p$), inverted dropout is
#
# $$\text{training: } d(x) = \frac{1}{q}\, m \odot x,\quad m_i \sim \text{Bernoulli}(q); \qquad \text{test time: } d(x) = x .$$
#
# Draw the mask **exactly** as `mask = rng.random(x.shape) < q` (so that the tests can reproduce
# it) and return it; at test time return `x` unchanged and `mask = None`. The backward pass of
# $d(x) = m \odot x / q$ is $\partial L/\partial x = m \odot (\partial L/\partial d) / q$.
# `p = 1` drops everything: return zeros (and a mask of `False`), without dividing by zero.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "solution": true, "schema_version": 3}
def dropout_forward(x, p, training, rng):
    """Inverted dropout. x: any shape. Returns (out, mask); mask is a bool array like x, or None at test time."""
    ### BEGIN SOLUTION
    if not training:
        return x, None
    q = 1.0 - p
    mask = rng.random(x.shape) < q
    if q == 0:
        return np.zeros_like(x), mask
    return x * mask / q, mask
    ### END SOLUTION


def dropout_backward(dout, mask, p):
    """Gradient of inverted dropout in training mode: dout (shape of x) -> dx."""
    ### BEGIN SOLUTION
    q = 1.0 - p
    if q == 0:
        return np.zeros_like(dout)
    return dout * mask / q
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "dropout_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_x = np.arange(1.0, 7.0).reshape(2, 3)
_out, _mask = dropout_forward(_x, 0.5, True, np.random.default_rng(0))
_expected_mask = np.random.default_rng(0).random((2, 3)) < 0.5
assert _mask is not None and _mask.shape == (2, 3), "the mask must have the shape of x"
assert np.array_equal(_mask, _expected_mask), "draw the mask as rng.random(x.shape) < q"
assert_close(_out, _x * _expected_mask / 0.5, "training output = mask * x / q")
_out, _mask = dropout_forward(_x, 0.5, False, np.random.default_rng(0))
assert _mask is None and np.array_equal(_out, _x), "at test time inverted dropout is the identity"
_big = np.ones(200_000)
_mean = dropout_forward(_big, 0.3, True, np.random.default_rng(1))[0].mean()
# each output is 0 or 1/0.7 with mean 1 and variance 0.3/0.7; 5 standard deviations of the mean of 200000:
assert abs(_mean - 1.0) < 5 * np.sqrt(0.3 / 0.7 / 200_000), f"the mean output should be about 1, got {_mean:.4f}"
### BEGIN HIDDEN TESTS
for _seed, _shape, _p in [(51, (4, 7), 0.2), (52, (3, 2, 5), 0.75), (53, (1,), 0.5), (54, (6, 6), 0.0)]:
    _x = np.random.default_rng(_seed + 100).normal(size=_shape)
    _out, _mask = dropout_forward(_x, _p, True, np.random.default_rng(_seed))
    _m = np.random.default_rng(_seed).random(_shape) < 1 - _p
    assert np.array_equal(_mask, _m), f"mask for p = {_p}, shape {_shape}"
    # oracle: torch autograd through the same masked, rescaled product
    _t = torch.from_numpy(_x).requires_grad_(True)
    _y = _t * torch.from_numpy(_m) / (1 - _p)
    _dout = np.random.default_rng(_seed + 200).normal(size=_shape)
    _y.backward(torch.from_numpy(_dout))
    assert_close(_out, _y.detach(), f"dropout forward, p = {_p}, shape {_shape}")
    assert_close(dropout_backward(_dout, _mask, _p), _t.grad, f"dropout backward, p = {_p}, shape {_shape}")
_out, _mask = dropout_forward(np.ones((3, 3)), 1.0, True, np.random.default_rng(0))
assert np.array_equal(_out, np.zeros((3, 3))) and not _mask.any(), "p = 1 drops everything"
assert np.array_equal(dropout_backward(np.ones((3, 3)), _mask, 1.0), np.zeros((3, 3)))
_many = np.stack([dropout_forward(np.full(50, 2.0), 0.6, True, np.random.default_rng(s))[0] for s in range(2000)])
_z = (_many.mean(0) - 2.0) / (2.0 / 0.4 * np.sqrt(0.4 * 0.6 / 2000))
assert np.abs(_z).max() < 5.5, "the expectation of inverted dropout must equal x"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "bn_md", "locked": true, "solution": false, "schema_version": 3}
# ## 6. Batch normalisation, forward (3 points)
#
# For `x` of shape $(N, D)$, per feature (column), over the batch of $n = N$ rows:
#
# $$\mu_B = \frac1n \sum_j x_j,\qquad \sigma_B^2 = \frac1n \sum_j (x_j - \mu_B)^2,\qquad
# \tilde x_j = \frac{x_j - \mu_B}{\sqrt{\sigma_B^2 + \varepsilon}},\qquad z_j = \gamma\,\tilde x_j + \beta .$$
#
# In training, also update the running statistics **in place** (`running_mean[:] = ...`), as
# PyTorch does: $\hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_B$ and
# $\hat\sigma^2 \leftarrow (1 - m)\,\hat\sigma^2 + m\,\frac{n}{n-1}\,\sigma_B^2$ (the *unbiased*
# variance). At test time (`training=False`) normalise with $\hat\mu$ and $\hat\sigma^2$ instead
# and leave them unchanged. Return `(out, cache)`, where `cache` holds whatever your backward pass
# needs.

# %% nbgrader={"grade": false, "grade_id": "bn_forward", "locked": false, "solution": true, "schema_version": 3}
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """x: (N, D); gamma, beta, running_mean, running_var: (D,). Returns (out (N, D), cache)."""
    ### BEGIN SOLUTION
    n = x.shape[0]
    if training:
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        running_mean[:] = (1 - momentum) * running_mean + momentum * mean
        running_var[:] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma * x_hat + beta
    return out, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "training": training}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bn_forward_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])
_rm, _rv = np.zeros(2), np.ones(2)
_out, _ = batchnorm_forward(_x, np.ones(2), np.zeros(2), _rm, _rv, True, momentum=0.1, eps=0.0)
assert_shape(_out, (3, 2), "batchnorm_forward output")
assert_close(_out.mean(0), [0.0, 0.0], "in training each feature is centred", atol=1e-12)
assert_close(_out.std(0), [1.0, 1.0], "in training each feature has unit (biased) std")
assert_close(_rm, [0.3, 1.2], "running_mean = 0.9 * 0 + 0.1 * batch mean")
assert_close(_rv, [0.9 + 0.1 * 4.0, 0.9 + 0.1 * 12.0], "running_var uses the unbiased batch variance")
_out, _ = batchnorm_forward(_x, np.array([2.0, 1.0]), np.array([0.0, -1.0]), np.array([1.0, 10.0]),
                            np.array([4.0, 1.0]), False, eps=0.0)
assert_close(_out, [[0.0, -1.0], [2.0, -1.0], [4.0, 5.0]], "test time: gamma * (x - running_mean) / sqrt(running_var) + beta")
### BEGIN HIDDEN TESTS
for _seed, (_N, _D), _training, _mom, _eps in [(61, (7, 4), True, 0.1, 1e-5), (62, (2, 9), True, 0.5, 1e-3),
                                                (63, (5, 3), False, 0.1, 1e-5), (64, (1, 6), False, 0.2, 0.1),
                                                (65, (32, 1), True, 1.0, 1e-5)]:
    _rng = np.random.default_rng(_seed)
    _x = _rng.normal(size=(_N, _D)) * _rng.uniform(0.5, 4) + _rng.normal()
    _g, _b = _rng.normal(size=_D), _rng.normal(size=_D)
    _rm, _rv = _rng.normal(size=_D), _rng.uniform(0.5, 2, size=_D)
    _trm, _trv = torch.from_numpy(_rm.copy()), torch.from_numpy(_rv.copy())
    _ref = torch.nn.functional.batch_norm(torch.from_numpy(_x), _trm, _trv, torch.from_numpy(_g), torch.from_numpy(_b),
                                          training=_training, momentum=_mom, eps=_eps)
    _out, _ = batchnorm_forward(_x, _g, _b, _rm, _rv, _training, momentum=_mom, eps=_eps)
    assert_close(_out, _ref, f"batch norm forward, {(_N, _D)}, training={_training}", rtol=1e-9, atol=1e-10)
    assert_close(_rm, _trm, f"running_mean after a step, {(_N, _D)}, training={_training}", rtol=1e-10, atol=1e-12)
    assert_close(_rv, _trv, f"running_var after a step, {(_N, _D)}, training={_training}", rtol=1e-10, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "bn_backward_md", "locked": true, "solution": false, "schema_version": 3}
# ## 7. Batch normalisation, backward (3 points)
#
# Given $\partial L/\partial z$ (`dout`, shape $(N, D)$), return $(\partial L/\partial x,
# \partial L/\partial \gamma, \partial L/\partial \beta)$. In training $\mu_B$ and $\sigma_B$
# depend on every $x_j$; with $g_j = \gamma\, \partial L/\partial z_j$ the result simplifies to
#
# $$\begin{gathered}\frac{\partial L}{\partial x_j} = \frac{1}{n\sqrt{\sigma_B^2 + \varepsilon}}\Bigl(n\, g_j - \sum_k g_k - \tilde x_j \sum_k g_k \tilde x_k\Bigr),\\
# \qquad \frac{\partial L}{\partial \gamma} = \sum_j \frac{\partial L}{\partial z_j}\,\tilde x_j,
# \qquad \frac{\partial L}{\partial \beta} = \sum_j \frac{\partial L}{\partial z_j}.\end{gathered}$$
#
# (Derive it: write $\tilde x_j$ as a function of all $x_k$ through $\mu_B$ and $\sigma_B^2$ and
# apply the chain rule.) At test time the statistics are constants:
# $\partial L/\partial x = \gamma\, \partial L/\partial z / \sqrt{\hat\sigma^2 + \varepsilon}$.

# %% nbgrader={"grade": false, "grade_id": "bn_backward", "locked": false, "solution": true, "schema_version": 3}
def batchnorm_backward(dout, cache):
    """dout: (N, D) -> (dx (N, D), dgamma (D,), dbeta (D,))."""
    ### BEGIN SOLUTION
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
    if not cache["training"]:
        return g * inv_std, dgamma, dbeta
    n = dout.shape[0]
    dx = inv_std / n * (n * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    return dx, dgamma, dbeta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bn_backward_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
def _bn_grads_torch(x, gamma, beta, dout, training, rm, rv, eps=1e-5):
    tx = torch.from_numpy(x).requires_grad_(True)
    tg = torch.from_numpy(gamma).requires_grad_(True)
    tb = torch.from_numpy(beta).requires_grad_(True)
    y = torch.nn.functional.batch_norm(tx, torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy()), tg, tb,
                                       training=training, eps=eps)
    return torch.autograd.grad(y, (tx, tg, tb), torch.from_numpy(dout))


_rng = np.random.default_rng(5)
_x, _dout = _rng.normal(size=(4, 3)), _rng.normal(size=(4, 3))
_g, _b = np.array([1.0, 2.0, 0.5]), np.zeros(3)
_, _cache = batchnorm_forward(_x, _g, _b, np.zeros(3), np.ones(3), True)
_dx, _dg, _db = batchnorm_backward(_dout, _cache)
_ref = _bn_grads_torch(_x, _g, _b, _dout, True, np.zeros(3), np.ones(3))
assert_close(_db, _ref[2], "dbeta = sum of dout over the batch")
assert_close(_dg, _ref[1], "dgamma = sum of dout * x_hat over the batch", rtol=1e-8)
assert_close(_dx, _ref[0], "dx in training (the batch statistics depend on x)", rtol=1e-7, atol=1e-10)
assert_close(_dx.sum(0), np.zeros(3), "in training dx sums to zero over the batch", atol=1e-10)
### BEGIN HIDDEN TESTS
for _seed, (_N, _D), _training, _eps in [(71, (9, 5), True, 1e-5), (72, (2, 4), True, 1e-3), (73, (6, 2), False, 1e-5),
                                         (74, (1, 3), False, 0.1), (75, (64, 8), True, 1e-5)]:
    _rng = np.random.default_rng(_seed)
    _x = _rng.normal(size=(_N, _D)) * _rng.uniform(0.2, 5) + _rng.normal(scale=3)
    _g, _b = _rng.normal(size=_D), _rng.normal(size=_D)
    _rm, _rv = _rng.normal(size=_D), _rng.uniform(0.5, 2, size=_D)
    _dout = _rng.normal(size=(_N, _D))
    _ref = _bn_grads_torch(_x, _g, _b, _dout, _training, _rm, _rv, eps=_eps)
    _, _cache = batchnorm_forward(_x, _g, _b, _rm.copy(), _rv.copy(), _training, eps=_eps)
    _dx, _dg, _db = batchnorm_backward(_dout, _cache)
    _what = f"{(_N, _D)}, training={_training}, eps={_eps}"
    assert_close(_dx, _ref[0], f"dx, {_what}", rtol=1e-7, atol=1e-9)
    assert_close(_dg, _ref[1], f"dgamma, {_what}", rtol=1e-8, atol=1e-10)
    assert_close(_db, _ref[2], f"dbeta, {_what}", rtol=1e-10, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown]
# That's it: the same six update rules are `course_lib.optim.SGD`, ..., `Adam` (as
# `torch.optim.Optimizer`s), and dropout and batch norm are in `course_lib.regularization`.
