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
# # Assignment 02 · Backpropagation by hand
#
# In lecture 02 you saw that backpropagation needs only a *local* rule per layer: given
# $\delta = \partial L / \partial(\text{output})$, compute $\partial L / \partial(\text{input})$ and
# the gradients of the layer's own parameters. In this assignment you write those rules in numpy:
#
# 1. `Linear.backward` — the fully connected layer $Y = XW + b$ (3 points);
# 2. `ReLU.backward` (2 points);
# 3. `SoftmaxCrossEntropy` — a numerically stable loss and its gradient (4 points);
# 4. a **gradient checker** with centred finite differences (4 points);
# 5. a two-layer network built from *your* layers, trained on the scikit-learn digits to at
#    least 95 % test accuracy (5 points).
#
# Replace every `raise NotImplementedError()` with your code. The test cells check your answers;
# some of them also contain hidden tests that run only when your notebook is graded, on shapes
# and values you have not seen, against PyTorch. Run **Kernel → Restart & Run All** before you
# submit.
#
# Rules: numpy only inside your classes and functions (no `torch`, no `course_lib.layers`),
# vectorised (no Python loops over the entries of a batch), and every gradient has exactly the
# shape of the thing it differentiates.

# %% tags=["parameters"]
SMOKE = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "linear_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. The fully connected layer (3 points)
#
# Forward: a batch $X$ of shape $(N, n)$, weights $W$ of shape $(n, m)$, bias $b$ of shape $(m,)$:
#
# $$Y = XW + b \quad (N, m).$$
#
# Backward: given $\delta = \partial L / \partial Y$ of shape $(N, m)$,
#
# $$\frac{\partial L}{\partial W} = X^\top \delta \;(n, m), \qquad
#   \frac{\partial L}{\partial b} = \sum_{k=1}^{N} \delta_k \;(m,), \qquad
#   \frac{\partial L}{\partial X} = \delta\, W^\top \;(N, n).$$
#
# (Check it for one entry: $Y_{kj} = \sum_i X_{ki} W_{ij} + b_j$, so
# $\partial L / \partial W_{ij} = \sum_k \delta_{kj} X_{ki}$.)
#
# `forward` is given and stores its input in `self.x`. Write `backward(dout)`: store the
# parameter gradients in `self.grads["W"]` and `self.grads["b"]` and **return** $\partial L/\partial X$.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "solution": true, "schema_version": 3}
class Linear:
    """Y = X W + b for X: (N, in_features); W: (in_features, out_features); b: (out_features,)."""

    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng(rng)
        # He initialisation: W ~ N(0, 2 / in_features), b = 0
        self.params = {
            "W": rng.normal(0.0, np.sqrt(2.0 / in_features), size=(in_features, out_features)),
            "b": np.zeros(out_features),
        }
        self.grads = {"W": np.zeros((in_features, out_features)), "b": np.zeros(out_features)}
        self.x = None

    def forward(self, x):
        """x: (N, in_features) -> (N, out_features)."""
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        """dout: (N, out_features) = dL/dY -> dL/dX: (N, in_features); fills self.grads."""
        ### BEGIN SOLUTION
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "linear_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_layer = Linear(3, 2, rng=0)
_layer.params["W"] = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
_layer.params["b"] = np.array([0.1, -0.2])
_x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
assert_close(_layer.forward(_x), [[5.1, 8.8], [14.1, 16.3]], "Linear.forward (given) on the small example")
_dx = _layer.backward(np.ones((2, 2)))
assert _dx is not None, "Linear.backward must return dL/dX"
assert_shape(_dx, (2, 3), "dL/dX")
assert_shape(_layer.grads["W"], (3, 2), "grads['W']")
assert_shape(_layer.grads["b"], (2,), "grads['b']")
assert_close(_layer.grads["W"], [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]], "dL/dW = X^T dout with dout = ones")
assert_close(_layer.grads["b"], [2.0, 2.0], "dL/db = dout summed over the batch")
assert_close(_dx, [[0.0, 2.5, 3.0], [0.0, 2.5, 3.0]], "dL/dX = dout W^T with dout = ones")
_dout = np.array([[1.0, 0.0], [0.0, -2.0]])
_layer.forward(_x)
assert_close(_layer.backward(_dout), [[1.0, 2.0, 0.0], [2.0, -1.0, -6.0]], "dL/dX with a general dout")
assert_close(_layer.grads["W"], [[1.0, -8.0], [2.0, -10.0], [3.0, -12.0]], "dL/dW with a general dout")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(2024)
for _n, _i, _o in [(1, 4, 3), (7, 5, 2), (16, 9, 11), (3, 1, 1)]:
    _layer = Linear(_i, _o, rng=_rng)
    _layer.params["b"] = _rng.normal(size=_o)
    _x = _rng.normal(size=(_n, _i))
    _dout = _rng.normal(size=(_n, _o))
    _layer.forward(_x)
    _dx = _layer.backward(_dout)
    _tx = torch.from_numpy(_x).requires_grad_(True)
    _tW = torch.from_numpy(_layer.params["W"].copy()).requires_grad_(True)
    _tb = torch.from_numpy(_layer.params["b"].copy()).requires_grad_(True)
    (_tx @ _tW + _tb).backward(torch.from_numpy(_dout))
    assert_close(_dx, _tx.grad, f"dL/dX for a batch of {_n}, Linear({_i}, {_o})", rtol=1e-9, atol=1e-12)
    assert_close(_layer.grads["W"], _tW.grad, f"dL/dW for a batch of {_n}, Linear({_i}, {_o})", rtol=1e-9, atol=1e-12)
    assert_close(_layer.grads["b"], _tb.grad, f"dL/db for a batch of {_n}, Linear({_i}, {_o})", rtol=1e-9, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "relu_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. ReLU (2 points)
#
# $\mathrm{ReLU}(x) = \max(0, x)$ elementwise, so $\partial L / \partial x = \delta \odot [x > 0]$
# (use 0 at $x = 0$, as PyTorch does). `forward` is given; write `backward`.

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "solution": true, "schema_version": 3}
class ReLU:
    """max(0, x) elementwise; no parameters."""

    def __init__(self):
        self.params, self.grads = {}, {}
        self.x = None

    def forward(self, x):
        """x: any shape -> same shape."""
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout):
        """dout: dL/d(output), same shape as x -> dL/dx."""
        ### BEGIN SOLUTION
        return dout * (self.x > 0)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "relu_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_relu = ReLU()
_relu.forward(np.array([[-2.0, 0.0, 3.0]]))
_d = _relu.backward(np.array([[10.0, 10.0, 10.0]]))
assert _d is not None, "ReLU.backward must return dL/dx"
assert_close(_d, [[0.0, 0.0, 10.0]], "ReLU passes the gradient only where x > 0 (and 0 at x = 0)")
_relu.forward(np.array([1.0, -1.0]))
assert_close(_relu.backward(np.array([-3.0, 5.0])), [-3.0, 0.0], "ReLU.backward keeps the sign of dout")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(77)
for _shape in [(1, 1), (5, 8), (2, 3, 4)]:
    _x = _rng.normal(size=_shape)
    _dout = _rng.normal(size=_shape)
    _relu = ReLU()
    _relu.forward(_x)
    _tx = torch.from_numpy(_x).requires_grad_(True)
    torch.relu(_tx).backward(torch.from_numpy(_dout))
    assert_close(_relu.backward(_dout), _tx.grad, f"ReLU.backward on a random {_shape} array")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ce_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Softmax + cross-entropy (4 points)
#
# For logits $Z$ of shape $(N, C)$ and integer labels $y$ of shape $(N,)$:
#
# $$P_{nk} = \frac{e^{Z_{nk}}}{\sum_{m} e^{Z_{nm}}}, \qquad L = -\frac{1}{N}\sum_{n=1}^{N} \log P_{n, y_n},
#   \qquad \frac{\partial L}{\partial Z} = \frac{P - Y}{N},$$
#
# where $Y$ is the one-hot matrix of the labels ($Y_{nk} = 1$ if $k = y_n$).
#
# **Stability.** `np.exp(1000)` overflows. Softmax does not change when a constant is subtracted
# from a row, so compute with $Z_{nk} - \max_m Z_{nm}$, and take the log of the softmax as
# $\log P_{nk} = (Z_{nk} - \max) - \log \sum_m e^{Z_{nm} - \max}$ (never `np.log` of a
# probability that may have underflowed to 0). Your loss must be finite and warning-free for
# logits in the thousands.
#
# `forward(logits, y)` returns the loss as a Python `float` and stores what `backward()` needs;
# `backward()` returns $\partial L/\partial Z$.

# %% nbgrader={"grade": false, "grade_id": "softmax_ce", "locked": false, "solution": true, "schema_version": 3}
class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels."""

    def forward(self, logits, y):
        """logits: (N, C), y: (N,) ints in [0, C) -> float."""
        ### BEGIN SOLUTION
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs = np.exp(log_p)
        self.y = y
        return float(-log_p[np.arange(len(y)), y].mean())
        ### END SOLUTION

    def backward(self):
        """-> dL/dlogits: (N, C)."""
        ### BEGIN SOLUTION
        n = len(self.y)
        d = self.probs.copy()
        d[np.arange(n), self.y] -= 1.0
        return d / n
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "softmax_ce_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
_ce = SoftmaxCrossEntropy()
_loss = _ce.forward(np.zeros((2, 4)), np.array([0, 3]))
assert isinstance(_loss, float), f"forward must return a Python float, got {type(_loss).__name__}"
assert_close(_loss, np.log(4.0), "equal logits: the loss is log(C)")
assert_close(_ce.backward(), [[-0.375, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, -0.375]],
             "gradient for equal logits: (1/C - onehot) / N")
_z = np.array([[2.0, 1.0, 0.1]])
_ce.forward(_z, np.array([0]))
assert_close(_ce.forward(_z, np.array([0])), 0.4170300, "loss of logits [2, 1, 0.1] with label 0", rtol=1e-6)
assert_close(_ce.backward().sum(axis=1), [0.0], "each row of dL/dlogits sums to 0", atol=1e-12)
with np.errstate(over="raise", under="ignore", invalid="raise", divide="raise"):
    _big = _ce.forward(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    _dbig = _ce.backward()
assert_close(_big, 500.0, "stable loss for logits in the thousands", rtol=1e-9)
assert_close(_dbig, [[0.0, 0.0], [-0.5, 0.5]], "stable gradient for logits in the thousands", atol=1e-12)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(31)
for _n, _c, _scale in [(1, 2, 1.0), (9, 5, 3.0), (20, 10, 0.1), (4, 7, 500.0)]:
    _z = _rng.normal(size=(_n, _c)) * _scale
    _y = _rng.integers(0, _c, size=_n)
    _ce = SoftmaxCrossEntropy()
    with np.errstate(over="raise", under="ignore", invalid="raise", divide="raise"):
        _loss = _ce.forward(_z, _y)
        _d = _ce.backward()
    _tz = torch.from_numpy(_z).requires_grad_(True)
    _tl = torch.nn.functional.cross_entropy(_tz, torch.from_numpy(_y))
    _tl.backward()
    assert_close(_loss, _tl.item(), f"loss for N={_n}, C={_c}, logit scale {_scale}", rtol=1e-9, atol=1e-12)
    assert_close(_d, _tz.grad, f"dL/dlogits for N={_n}, C={_c}, logit scale {_scale}", rtol=1e-8, atol=1e-12)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "gradcheck_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. A gradient checker (4 points)
#
# **Numerical gradient** of a scalar function $f$ of an array $x$, by centred differences:
#
# $$g_i = \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}.$$
#
# Write `numerical_gradient(f, x, eps=1e-5)` for a float array `x` of **any shape**: for each
# entry, add `eps` *in place*, evaluate `f(x)`, subtract `eps`, evaluate again, and **restore the
# original value** before moving on (`np.nditer(x, flags=["multi_index"])` or `np.ndindex(x.shape)`
# iterates over all indices). Changing `x` in place means that `f` may also ignore its argument and
# read `x` through another reference, e.g. `f = lambda _: loss(model)` with
# `x = model.params["W"]`. Return an array of the shape of `x`.
#
# **Gradient check**: `grad_check(f, grad_f, x, eps=1e-5)` computes the analytic gradient
# `a = grad_f(x)` *first* (copy it: evaluating `f` may overwrite buffers), then the numerical
# gradient `n`, and returns the maximum over all entries of the relative error
#
# $$\frac{|a_i - n_i|}{\max(|a_i|, |n_i|)} \qquad (0 \text{ where } a_i = n_i = 0)$$
#
# as a Python `float`. A correct gradient gives about $10^{-7}$ or less in float64; a wrong one
# gives $10^{-2}$ or more.

# %% nbgrader={"grade": false, "grade_id": "gradcheck", "locked": false, "solution": true, "schema_version": 3}
def numerical_gradient(f, x, eps=1e-5):
    """Centred finite differences of the scalar function f at x (perturbed in place and restored)."""
    ### BEGIN SOLUTION
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        f_plus = f(x)
        x[idx] = old - eps
        f_minus = f(x)
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad
    ### END SOLUTION


def grad_check(f, grad_f, x, eps=1e-5):
    """Maximum relative error between grad_f(x) and numerical_gradient(f, x, eps)."""
    ### BEGIN SOLUTION
    analytic = np.array(grad_f(x), dtype=np.float64)
    numeric = numerical_gradient(f, x, eps)
    denom = np.maximum(np.abs(analytic), np.abs(numeric))
    rel = np.divide(np.abs(analytic - numeric), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(rel.max())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "gradcheck_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
_x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
_x_before = _x.copy()
_g = numerical_gradient(lambda a: float((a**3).sum()), _x)
assert _g is not None, "numerical_gradient must return the gradient"
assert_shape(_g, (2, 3), "numerical_gradient(f, x)")
assert_close(_g, 3 * _x_before**2, "numerical gradient of sum(x^3) is 3x^2", rtol=1e-8)
assert_close(_x, _x_before, "numerical_gradient must restore x", rtol=0, atol=0)
_err_ok = grad_check(lambda a: float((a**3).sum()), lambda a: 3 * a**2, _x)
_err_bug = grad_check(lambda a: float((a**3).sum()), lambda a: 2 * a**2, _x)
assert isinstance(_err_ok, float), f"grad_check must return a float, got {type(_err_ok).__name__}"
assert _err_ok < 1e-7, f"a correct gradient should give a tiny relative error, got {_err_ok:.2e}"
assert 0.3 < _err_bug < 0.34, f"gradient 2x^2 instead of 3x^2 has relative error 1/3 everywhere, got {_err_bug:.3f}"
_w = np.array([1.0, -2.0])
_err_ref = grad_check(lambda _: float(np.sin(_w).sum()), lambda _: np.cos(_w), _w)  # f reads _w directly
assert _err_ref < 1e-7, f"f may read x through another reference (perturb x in place); got {_err_ref:.2e}"
### BEGIN HIDDEN TESTS
import course_lib.layers as _L

_rng = np.random.default_rng(555)
# numerical_gradient against torch autograd on an unseen shape and function
_x = _rng.normal(size=(3, 2, 4))
_tx = torch.from_numpy(_x.copy()).requires_grad_(True)
(torch.tanh(_tx) * _tx).sum().backward()
_g = numerical_gradient(lambda a: float((np.tanh(a) * a).sum()), _x)
assert_close(_g, _tx.grad, "numerical gradient of sum(tanh(x) x) on a (3, 2, 4) array", rtol=1e-7, atol=1e-9)
# planted bugs in the gradient of a small network's first weight matrix (course_lib as the model)
_net = _L.Sequential(_L.Linear(6, 5, rng=1), _L.Tanh(), _L.Linear(5, 4, rng=2))
_X, _Y = _rng.normal(size=(8, 6)), _rng.integers(0, 4, size=8)
_lossfn = _L.SoftmaxCrossEntropy()


def _f(_):
    return _lossfn.forward(_net.forward(_X), _Y)


def _good(_):
    _f(None)
    _net.backward(_lossfn.backward())
    return _net.grads["0.W"].copy()


def _no_mean(_):
    return _good(None) * len(_X)  # forgot the 1/N of the batch mean


def _one_wrong(_):
    _g = _good(None)
    _g[2, 3] += 0.2 * np.abs(_g).max()
    return _g


_W = _net.params["0.W"]
assert grad_check(_f, _good, _W) < 1e-6, "grad_check must accept the correct gradient of a network"
assert grad_check(_f, _no_mean, _W) > 0.5, "grad_check must catch a gradient missing the 1/N factor"
assert grad_check(_f, _one_wrong, _W) > 1e-2, "grad_check must catch a single wrong entry"
assert_close(grad_check(_f, _no_mean, _W), _L.grad_check(_f, _no_mean, _W), "grad_check value on a planted bug",
             rtol=1e-6)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "train_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. Train a two-layer network on the digits (5 points)
#
# The scikit-learn digits: 1,797 grey images of 8×8 pixels (values 0..16), 10 classes. Below
# they are scaled to $[0, 1]$ and split into 70 % training and 30 % test examples.
#
# Build `model = [Linear(64, H), ReLU(), Linear(H, 10)]` from **your** classes and train it
# with mini-batch gradient descent: for each batch run the layers forward, the loss forward,
# `SoftmaxCrossEntropy.backward()`, the layers backward in reverse order, and update every
# parameter $\theta \leftarrow \theta - \eta\, \partial L/\partial\theta$. Then define
# `predict(X)`, returning the predicted class (an int array of shape `(N,)`) for each row of `X`.
#
# Goal: **at least 95 % test accuracy**. Something like H = 64, batches of 32, $\eta = 0.1$ and
# a few dozen epochs works; the whole training takes a second or two. Keep a list of the batch
# losses and plot it — the curve should go down.

# %%
digits = load_digits()
X_all = digits.data / 16.0
y_all = digits.target
X_train, X_test, y_train, y_test = train_test_split(X_all, y_all, test_size=0.3, random_state=0, stratify=y_all)
print(f"train {X_train.shape}, test {X_test.shape}")

# %% nbgrader={"grade": false, "grade_id": "train", "locked": false, "solution": true, "schema_version": 3}
### BEGIN SOLUTION
rng = np.random.default_rng(0)
model = [Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng)]
loss_fn = SoftmaxCrossEntropy()
lr, batch_size, epochs = 0.1, 32, 40
losses = []
for _epoch in range(epochs):
    order = rng.permutation(len(X_train))
    for start in range(0, len(X_train), batch_size):
        idx = order[start : start + batch_size]
        out = X_train[idx]
        for layer in model:
            out = layer.forward(out)
        losses.append(loss_fn.forward(out, y_train[idx]))
        grad = loss_fn.backward()
        for layer in reversed(model):
            grad = layer.backward(grad)
        for layer in model:
            for key in layer.params:
                layer.params[key] -= lr * layer.grads[key]


def predict(X):
    out = X
    for layer in model:
        out = layer.forward(out)
    return out.argmax(axis=1)


plt.figure(figsize=(6, 3.5))
plt.plot(losses, lw=0.7)
plt.yscale("log")
plt.xlabel("batch")
plt.ylabel("training loss")
plt.title("your two-layer network on the digits")
plt.show()
print(f"test accuracy: {100 * (predict(X_test) == y_test).mean():.1f} %")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "train_tests", "locked": true, "points": 5, "solution": false, "schema_version": 3}
assert isinstance(model, list) and len(model) == 3, "model must be the list [Linear(64, H), ReLU(), Linear(H, 10)]"
assert isinstance(model[0], Linear) and isinstance(model[1], ReLU) and isinstance(model[2], Linear), (
    "model must be [Linear, ReLU, Linear] built from the classes defined in this notebook"
)
assert model[0].params["W"].shape[0] == 64 and model[2].params["W"].shape[1] == 10, "input 64 features, output 10 classes"
_pred = np.asarray(predict(X_test))
assert_shape(_pred, (len(X_test),), "predict(X_test)")
# an independent forward pass with the trained weights
_logits = np.maximum(X_test @ model[0].params["W"] + model[0].params["b"], 0) @ model[2].params["W"] + model[2].params["b"]
assert np.array_equal(_pred, _logits.argmax(axis=1)), "predict(X) must be the arg-max of the model's logits"
_acc = float((_logits.argmax(axis=1) == y_test).mean())
print(f"test accuracy: {100 * _acc:.1f} %")
assert _acc >= 0.95, f"test accuracy {100 * _acc:.1f} % is below the required 95 %"
### BEGIN HIDDEN TESTS
# the student's layers, trained by a reference loop with a different seed and split, must also learn
# (mini-batches of 128 at learning rate 0.5: 300 steps reach 97-98 % with correct layers, as 1,200
# steps of 32 at 0.1 do, and each step's calls of the student's code cost the grader a round trip)
_Xa, _Xb, _ya, _yb = train_test_split(X_all, y_all, test_size=0.3, random_state=7, stratify=y_all)
_rng = np.random.default_rng(99)
_m = [Linear(64, 48, rng=_rng), ReLU(), Linear(48, 10, rng=_rng)]
_lf = SoftmaxCrossEntropy()
for _epoch in range(30):
    _order = _rng.permutation(len(_Xa))
    for _s in range(0, len(_Xa), 128):
        _idx = _order[_s : _s + 128]
        _o = _Xa[_idx]
        for _layer in _m:
            _o = _layer.forward(_o)
        _lf.forward(_o, _ya[_idx])
        _gr = _lf.backward()
        for _layer in reversed(_m):
            _gr = _layer.backward(_gr)
        for _layer in _m:
            for _k in _layer.params:
                _layer.params[_k] = _layer.params[_k] - 0.5 * _layer.grads[_k]
_o = _Xb
for _layer in _m:
    _o = _layer.forward(_o)
_acc2 = float((_o.argmax(axis=1) == _yb).mean())
assert _acc2 >= 0.95, f"your layers trained by the reference loop reach only {100 * _acc2:.1f} %"
### END HIDDEN TESTS
