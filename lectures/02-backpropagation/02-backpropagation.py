# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture 02 · Backpropagation
#
# A fully connected network has weights in every layer, and training means tuning all of them
# to minimise a loss. Gradient descent needs the derivative of the loss with respect to *every*
# weight. This lecture shows how to get all of them in one backward sweep whose cost is about
# that of the forward pass — **backpropagation** — and then uses it on the fully connected MNIST
# network, whose weaknesses motivate the convolutional networks of lecture 03.
#
# **Learning goals**
# 1. The chain rule on a small computation graph: a derivative is a **sum over paths**.
# 2. Path sums versus backprop: the number of paths grows **exponentially** with depth, the
#    cost of backprop **linearly**.
# 3. Forward and backward **by hand** for a two-layer MLP, checked against a scalar autograd
#    engine (`course_lib.autograd.Value`) and against PyTorch.
# 4. **Gradient checking**: finite differences, why *relative* error, float32 versus float64.
# 5. The fully connected **MNIST** network: 785,000 + 10,010 parameters, trained with our numpy
#    layers and with PyTorch — and how its accuracy collapses when the digits move by a few pixels.
#
# Library code: `course_lib.autograd` (the scalar engine) and `course_lib.layers` (numpy layers
# with `forward`/`backward`, `numerical_gradient`, `grad_check`); their tests compare every
# gradient with `torch.autograd`.

# %% tags=["parameters"]
SMOKE = False

# %%
import itertools
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from course_lib.autograd import MLP, Value, softmax_cross_entropy
from course_lib.data import load_mnist
from course_lib.layers import (
    Linear,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
    grad_check,
    numerical_gradient,
    relative_error,
    sgd_step,
)
from course_lib.notebook import claim, md, setup_notebook, show, subplots
from course_lib.regularization import shift

SMOKE = setup_notebook(SMOKE, seed=0)
PATH_DEPTHS = list(range(1, 7)) if SMOKE else list(range(1, 11))  # depths for the path-sum timing
N_TRAIN = 2_000 if SMOKE else 60_000  # MNIST training images used
N_TEST = 500 if SMOKE else 10_000
HIDDEN = 64 if SMOKE else 512  # hidden units of the MNIST MLP (the lecture's network has 1000)
NUMPY_EPOCHS = 1 if SMOKE else 8
TORCH_EPOCHS = 1 if SMOKE else 6
rng = np.random.default_rng(0)
print(f"smoke mode: {SMOKE}; MNIST {N_TRAIN} train / {N_TEST} test images, hidden width {HIDDEN}")

# %% [markdown]
# ## 1. The chain rule on a computation graph
#
# Take two inputs $x_1, x_2$, two hidden layers of two units each and one output. With
# $f = \sigma$ (the sigmoid) after every hidden unit:
#
# $$z_j = f(w_{1j} x_1 + w_{2j} x_2), \qquad h_k = f(v_{1k} z_1 + v_{2k} z_2), \qquad
# a(x) = p_{11} h_1 + p_{21} h_2 .$$
#
# The output layer is easy: $\partial a / \partial p_{11} = h_1$ — the larger $h_1$, the more
# $p_{11}$ matters. One layer down, $v_{11}$ acts on $a$ only through $h_1$:
#
# $$\frac{\partial a}{\partial v_{11}} = \frac{\partial a}{\partial h_1}\frac{\partial h_1}{\partial v_{11}}
#   = p_{11}\, f'(\cdot)\, z_1 .$$
#
# Two layers down, $w_{11}$ changes $z_1$, and $z_1$ feeds **both** $h_1$ and $h_2$: the
# derivative is a sum over all paths from $w_{11}$ to $a$, each path contributing the product of
# the local derivatives along it:
#
# $$\frac{\partial a}{\partial w_{11}} =
#   \frac{\partial a}{\partial h_1}\frac{\partial h_1}{\partial z_1}\frac{\partial z_1}{\partial w_{11}}
# + \frac{\partial a}{\partial h_2}\frac{\partial h_2}{\partial z_1}\frac{\partial z_1}{\partial w_{11}} .$$

# %%
fig, ax = subplots(figsize=(7, 3.2))
pos = {"x1": (0, 1), "x2": (0, 0), "z1": (1, 1), "z2": (1, 0), "h1": (2, 1), "h2": (2, 0), "a": (3, 0.5)}
edges = [(u, v) for u in ("x1", "x2") for v in ("z1", "z2")]
edges += [(u, v) for u in ("z1", "z2") for v in ("h1", "h2")] + [("h1", "a"), ("h2", "a")]
on_path = {("x1", "z1"), ("z1", "h1"), ("z1", "h2"), ("h1", "a"), ("h2", "a")}
for u, v in edges:
    (x0, y0), (x1_, y1_) = pos[u], pos[v]
    red = (u, v) in on_path
    ax.plot([x0, x1_], [y0, y1_], color="crimson" if red else "0.7", lw=2.5 if red else 1, zorder=1)
for name, (px, py) in pos.items():
    ax.scatter(px, py, s=900, color="white", edgecolor="0.2", zorder=2)
    ax.text(px, py, f"${name[0]}_{name[1:]}$" if len(name) > 1 else "$a$", ha="center", va="center", zorder=3)
ax.text(0.5, 1.1, "$w_{11}$", color="crimson", ha="center")
ax.set_title("the two paths from $w_{11}$ to $a$ (red)")
ax.set_xlim(-0.35, 3.35)  # room for the markers of the outer nodes (s=900 is about 30 px wide)
ax.set_ylim(-0.3, 1.35)
ax.set_axis_off()
show(fig, 'The two-layer graph of §1: the paths from $w_{11}$ to the output $a$ are drawn in red.')

# %% [markdown]
# The same numbers three ways: the path sum written out by hand, and the scalar autograd engine
# `Value`, which records every operation and then applies the chain rule backwards.

# %%
def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


x_in = np.array([0.5, -1.2])
w, v, p = rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), rng.normal(size=2)
z = sigmoid(x_in @ w)  # z_j = f(w_1j x1 + w_2j x2)
h = sigmoid(z @ v)  # h_k = f(v_1k z1 + v_2k z2)
a = h @ p

dz1_dw11 = z[0] * (1 - z[0]) * x_in[0]
paths = [p[k] * h[k] * (1 - h[k]) * v[0, k] * dz1_dw11 for k in range(2)]  # via h1 and via h2
print(f"a = {a:.6f};  path via h1: {paths[0]:+.6f}, path via h2: {paths[1]:+.6f}, sum: {sum(paths):+.6f}")

# the same graph built from Value nodes
W = [[Value(w[i, j], label=f"w{i + 1}{j + 1}") for j in range(2)] for i in range(2)]
V = [[Value(v[i, j]) for j in range(2)] for i in range(2)]
P = [Value(p[k]) for k in range(2)]
zv = [(W[0][j] * x_in[0] + W[1][j] * x_in[1]).sigmoid() for j in range(2)]
hv = [(V[0][k] * zv[0] + V[1][k] * zv[1]).sigmoid() for k in range(2)]
av = P[0] * hv[0] + P[1] * hv[1]
av.backward()
print(f"Value: a = {av.data:.6f}, da/dw11 = {W[0][0].grad:+.6f}, da/dp11 = {P[0].grad:+.6f} (= h1 = {h[0]:.6f})")
assert abs(W[0][0].grad - sum(paths)) < 1e-12 and abs(P[0].grad - h[0]) < 1e-12

# %% [markdown]
# ## 2. Path sums versus backpropagation
#
# In a layered network of depth $L$ and width $m$ (every unit connected to every unit of the
# next layer), the number of paths from one input to the output is $m^{L}$: one unit is chosen
# in each layer. Summing over paths therefore costs about $L\, m^{L}$ multiplications per input.
#
# Backprop computes the same sum but **factorises** it. Walking from the output backwards, it
# keeps for every unit $u$ the total derivative $\delta_u = \partial a / \partial u$, computed from
# the layer above:
#
# $$\delta_u = \sum_{v \,:\, u \to v} \delta_v \,\frac{\partial v}{\partial u}.$$
#
# Every edge is used once: the cost is the number of edges, $L\,m^2$ — linear in depth. (This is
# the lecture's "3, 2, 1" order: first $\partial a/\partial h$, then $\partial a/\partial z$ from
# it, then $\partial a/\partial x$.)
#
# Below, a tanh network with $m = 3$ units per layer: the gradient of the output with respect to
# the inputs by explicit enumeration of all paths and by a backward sweep, for growing depth.

# %%
M = 3


def deep_forward(x, weights):
    """Pre-activations of every layer of h_l = tanh(h_{l-1} V_l); output a = sum of the last layer."""
    pre, hcur = [], x
    for Vl in weights:
        pre.append(hcur @ Vl)
        hcur = np.tanh(pre[-1])
    return pre, hcur.sum()


def grad_by_paths(x, weights):
    """da/dx_i as an explicit sum over all m**L paths from x_i to a."""
    pre, _ = deep_forward(x, weights)
    local = [1.0 - np.tanh(zl) ** 2 for zl in pre]  # f'(z) of every unit
    grad = np.zeros_like(x)
    for i in range(len(x)):
        for path in itertools.product(range(M), repeat=len(weights)):
            term, prev = 1.0, i
            for layer, unit in enumerate(path):
                term *= weights[layer][prev, unit] * local[layer][unit]
                prev = unit
            grad[i] += term
    return grad


def grad_by_backprop(x, weights):
    """The same gradient with one backward sweep: delta <- (delta * f'(z)) V^T, layer by layer."""
    pre, _ = deep_forward(x, weights)
    delta = np.ones(M)
    for Vl, zl in zip(reversed(weights), reversed(pre)):
        delta = (delta * (1.0 - np.tanh(zl) ** 2)) @ Vl.T
    return delta


rows = []
for depth in tqdm(PATH_DEPTHS, desc="depth"):
    weights = [rng.normal(size=(M, M)) for _ in range(depth)]
    x0 = rng.normal(size=M)
    t0 = time.perf_counter()
    g_paths = grad_by_paths(x0, weights)
    t_paths = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(100):
        g_bp = grad_by_backprop(x0, weights)
    t_bp = (time.perf_counter() - t0) / 100
    assert np.allclose(g_paths, g_bp, rtol=1e-9, atol=1e-12)
    rows.append((depth, M ** (depth + 1), depth * M * M, t_paths, t_bp))
    print(f"depth {depth}: {M ** (depth + 1):6d} paths vs {depth * M * M:3d} edges;"
          f" path sum {t_paths * 1e3:8.2f} ms, backprop {t_bp * 1e3:.3f} ms, same gradient")

# %%
d_, n_paths, n_edges, t_paths, t_bp = map(np.array, zip(*rows))
fig, axes = subplots(1, 2, figsize=(11, 4))
axes[0].semilogy(d_, n_paths, "o-", label="terms of the path sum ($m^{L+1}$)")
axes[0].semilogy(d_, n_edges, "s-", label="edges visited by backprop ($L m^2$)")
axes[0].set(xlabel="depth $L$", ylabel="count", title=f"work per gradient (width m = {M})")
axes[1].semilogy(d_, t_paths * 1e3, "o-", label="path enumeration")
axes[1].semilogy(d_, t_bp * 1e3, "s-", label="backprop")
axes[1].set(xlabel="depth $L$", ylabel="ms", title="measured time for all $\\partial a/\\partial x_i$")
for axis in axes:
    axis.legend()
show(fig, 'Work (left) and measured time (right) of the path sum and of backprop as the depth grows, on a log scale.')

# %% [markdown]
# A straight line on a log scale is exponential growth: each extra layer multiplies the path
# sum's work by $m$, while backprop adds a constant. The `Value` engine does the same as
# `grad_by_backprop`, one scalar at a time: it sorts the graph topologically and calls each
# node's local chain rule once.

# %%
depth = PATH_DEPTHS[-1]
weights = [rng.normal(size=(M, M)) for _ in range(depth)]
x0 = rng.normal(size=M)
xs = [Value(t) for t in x0]
hs = xs
for Vl in weights:
    hs = [sum((hs[i] * Vl[i, j] for i in range(M)), Value(0.0)).tanh() for j in range(M)]
out = sum(hs, Value(0.0))
out.backward()
print(f"Value graph of depth {depth}: {len(out.topological_order())} nodes; "
      f"max |difference| to the backprop sweep {np.abs(np.array([t.grad for t in xs]) - grad_by_backprop(x0, weights)).max():.1e}")

# %% [markdown]
# ## 3. Forward and backward by hand for a two-layer MLP
#
# A batch $X \in \mathbb{R}^{N \times D}$, labels $y_n \in \{1..C\}$, one hidden ReLU layer:
#
# $$\begin{gathered}Z_1 = X W_1 + b_1,\quad H = \max(0, Z_1),\quad Z_2 = H W_2 + b_2,\\
#   P = \operatorname{softmax}(Z_2),\quad L = -\frac1N \sum_{n} \log P_{n, y_n}.\end{gathered}$$
#
# The backward pass applies the chain rule layer by layer, from the loss down
# ($Y$ is the one-hot matrix of the labels, $\odot$ the elementwise product):
#
# $$\begin{gathered}\frac{\partial L}{\partial Z_2} = \frac{P - Y}{N},\qquad
#   \frac{\partial L}{\partial W_2} = H^\top \frac{\partial L}{\partial Z_2},\\
#   \frac{\partial L}{\partial b_2} = \sum_n \Bigl(\frac{\partial L}{\partial Z_2}\Bigr)_n,\qquad
#   \frac{\partial L}{\partial H} = \frac{\partial L}{\partial Z_2} W_2^\top,\end{gathered}$$
#
# $$\frac{\partial L}{\partial Z_1} = \frac{\partial L}{\partial H} \odot [Z_1 > 0],\qquad
#   \frac{\partial L}{\partial W_1} = X^\top \frac{\partial L}{\partial Z_1},\qquad
#   \frac{\partial L}{\partial b_1} = \sum_n \Bigl(\frac{\partial L}{\partial Z_1}\Bigr)_n .$$
#
# Each formula is a matrix product with the shape of the thing it differentiates, e.g.
# $W_1 \in \mathbb{R}^{D\times H}$ and $X^\top \partial L/\partial Z_1$ is $(D \times N)(N \times H)$.

# %%
N, D, HID, C = 6, 4, 5, 3
X = rng.normal(size=(N, D))
y = rng.integers(0, C, size=N)
W1, b1 = rng.normal(size=(D, HID)) * 0.7, rng.normal(size=HID) * 0.1
W2, b2 = rng.normal(size=(HID, C)) * 0.7, rng.normal(size=C) * 0.1

# forward, by hand
Z1 = X @ W1 + b1
H = np.maximum(0, Z1)
Z2 = H @ W2 + b2
Z2s = Z2 - Z2.max(axis=1, keepdims=True)  # subtracting the row maximum keeps exp() finite
Pr = np.exp(Z2s) / np.exp(Z2s).sum(axis=1, keepdims=True)
loss = -np.log(Pr[np.arange(N), y]).mean()

# backward, by hand
Y = np.eye(C)[y]
dZ2 = (Pr - Y) / N
dW2, db2 = H.T @ dZ2, dZ2.sum(axis=0)
dH = dZ2 @ W2.T
dZ1 = dH * (Z1 > 0)
dW1, db1 = X.T @ dZ1, dZ1.sum(axis=0)
by_hand = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
print(f"loss = {loss:.6f}")

# %% [markdown]
# Three independent checks of the same four gradients:
# - `course_lib.layers`: `Linear`, `ReLU`, `SoftmaxCrossEntropy` in a `Sequential`;
# - `course_lib.autograd`: the same network built from scalar `Value` nodes (one node per
#   multiplication — fine for 6 examples, hopeless for MNIST);
# - PyTorch's autograd.

# %%
# course_lib.layers
net = Sequential(Linear(D, HID, rng=0), ReLU(), Linear(HID, C, rng=0))
for key, arr in {"0.W": W1, "0.b": b1, "2.W": W2, "2.b": b2}.items():
    net.params[key][...] = arr
ce = SoftmaxCrossEntropy()
loss_layers = ce.forward(net.forward(X), y)
net.backward(ce.backward())
from_layers = {"W1": net.grads["0.W"], "b1": net.grads["0.b"], "W2": net.grads["2.W"], "b2": net.grads["2.b"]}

# course_lib.autograd
mlp = MLP(D, [HID, C], activation="relu", rng=0)
mlp.load_arrays([(W1, b1), (W2, b2)])
loss_value = sum((softmax_cross_entropy(mlp(list(xn)), int(yn)) for xn, yn in zip(X, y)), Value(0.0)) / N
loss_value.backward()
(gW1, gb1), (gW2, gb2) = mlp.arrays(grad=True)
from_value = {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}

# torch
tparams = {k: torch.tensor(a, requires_grad=True) for k, a in {"W1": W1, "b1": b1, "W2": W2, "b2": b2}.items()}
tlogits = torch.relu(torch.from_numpy(X) @ tparams["W1"] + tparams["b1"]) @ tparams["W2"] + tparams["b2"]
tloss = F.cross_entropy(tlogits, torch.from_numpy(y))
tloss.backward()
from_torch = {k: t.grad.numpy() for k, t in tparams.items()}

print(f"loss: by hand {loss:.12f}, layers {loss_layers:.12f}, Value {loss_value.data:.12f}, torch {tloss.item():.12f}")
print(f"{'parameter':>9} | {'layers':>9} | {'Value':>9} | {'torch':>9}   (max relative error of the hand-derived gradient)")
for k in by_hand:
    errs = [relative_error(by_hand[k], other[k]).max() for other in (from_layers, from_value, from_torch)]
    print(f"{k:>9} | " + " | ".join(f"{e:9.1e}" for e in errs))
    assert max(errs) < 1e-10

# %% [markdown]
# ## 4. Gradient checking
#
# When there is no PyTorch to compare with (a new layer, a custom loss), check the analytic
# gradient against **centred finite differences**:
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon},$$
#
# whose truncation error is $O(\varepsilon^2)$ (the one-sided difference has $O(\varepsilon)$).
# It costs two evaluations of $f$ per parameter, so it is a test, never a training method.
#
# Compare with the **relative** error
#
# $$\text{rel}(a, n) = \frac{|a - n|}{\max(|a|, |n|)} .$$
#
# An absolute error of $10^{-6}$ is excellent for a gradient of size 100 and a disaster for one
# of size $10^{-6}$; the relative error does not depend on the scale of the loss.
# `course_lib.layers.grad_check(f, grad_f, x)` returns its maximum over the entries of $x$.

# %%
def loss_of_w1(_):
    """The loss as a function of net.params['0.W'] (numerical_gradient perturbs it in place)."""
    return ce.forward(net.forward(X), y)


def grad_of_w1(_):
    loss_of_w1(None)
    net.backward(ce.backward())
    return net.grads["0.W"].copy()


print(f"grad_check on W1: max relative error {grad_check(loss_of_w1, grad_of_w1, net.params['0.W']):.1e}")


def forgot_one_over_n(_):
    return grad_of_w1(None) * N  # a classic bug: the batch mean's 1/N left out


print(f"with a planted bug (no 1/N): max relative error {grad_check(loss_of_w1, forgot_one_over_n, net.params['0.W']):.1e}")

num = numerical_gradient(loss_of_w1, net.params["0.W"])
for scale in (1e-6, 1.0, 1e6):
    abs_err = np.abs(scale * num - scale * dW1).max()
    rel_err = relative_error(scale * dW1, scale * num).max()
    print(f"loss scaled by {scale:7.0e}: max absolute error {abs_err:.1e}, max relative error {rel_err:.1e}")

# %% [markdown]
# Rules of thumb for the maximum relative error in float64: around $10^{-7}$ or below — correct;
# above $10^{-2}$ — wrong; in between, look closer. Two things push a correct gradient up:
#
# - **kinks**: ReLU is not differentiable at 0; if some $Z_1$ lies within $\varepsilon$ of 0,
#   the finite difference straddles the kink and the two disagree;
# - **rounding**: $f$ itself carries a rounding error of about $u\,|f|$ ($u$ = unit roundoff),
#   which the division by $2\varepsilon$ amplifies. The total error is about
#   $c_1 \varepsilon^2 + c_2 u / \varepsilon$, smallest near $\varepsilon \approx u^{1/3}$.
#
# In **float32** ($u \approx 6\cdot 10^{-8}$) the best step is near $10^{-2}$ and even there
# only a few digits are right; in **float64** ($u \approx 1.1\cdot 10^{-16}$) the best step is
# near $10^{-5}$ with many more correct digits. So check gradients in float64. The curves below
# evaluate $f$ in each precision (a tanh network: smooth, no kinks) and compare with the exact
# float64 gradient; the maximum over entries is dominated by the smallest entries, whose
# relative error is largest.

# %%
smooth = Sequential(Linear(D, HID, rng=1), Tanh(), Linear(HID, C, rng=2))
smooth32 = Sequential(
    Linear(D, HID, rng=1, dtype=np.float32), Tanh(), Linear(HID, C, rng=2, dtype=np.float32)
)
X32 = X.astype(np.float32)
ce.forward(smooth.forward(X), y)
smooth.backward(ce.backward())
exact = smooth.grads["0.W"].copy()
eps_grid = np.logspace(-10, -1, 28)
errors = {"float64": [], "float32": []}
for eps in eps_grid:
    g64 = numerical_gradient(lambda _: ce.forward(smooth.forward(X), y), smooth.params["0.W"], eps)
    errors["float64"].append(relative_error(exact, g64).max())
    g32 = numerical_gradient(lambda _: ce.forward(smooth32.forward(X32), y), smooth32.params["0.W"], eps)
    errors["float32"].append(relative_error(exact, g32).max())

fig, ax = subplots(figsize=(6.5, 4))
for name, errs in errors.items():
    ax.loglog(eps_grid, errs, "o-", ms=3, label=name)
ax.set(xlabel="finite-difference step $\\varepsilon$", ylabel="max relative error",
       title="gradient check: truncation ($\\propto\\varepsilon^2$) vs rounding ($\\propto u/\\varepsilon$)")
ax.legend()
show(fig, 'Maximum relative error of the finite-difference gradient against the step $\\varepsilon$, in float64 and float32.')
near_default = int(np.argmin(np.abs(np.log(eps_grid / 1e-5))))
for name, errs in errors.items():
    best = int(np.argmin(errs))
    print(f"{name}: best max relative error {errs[best]:.1e} at eps = {eps_grid[best]:.0e}; "
          f"{errs[near_default]:.1e} at eps = {eps_grid[near_default]:.0e} (near the default 1e-5)")

# %% [markdown]
# ## 5. The fully connected network on MNIST
#
# MNIST: 28×28 grey images of handwritten digits, 60,000 for training and 10,000 for testing.
# The simplest network reads the pixels as a vector:
#
# 1. the image becomes $28 \cdot 28 = 784$ input neurons;
# 2. a hidden fully connected layer of 1000 units looks for combinations of pixels — it has
#    $(784 + 1)\cdot 1000 = 785{,}000$ parameters;
# 3. the output layer adds $(1000 + 1)\cdot 10 = 10{,}010$ more.
#
# The counts, from the layers themselves:

# %%
fc1, fc2 = Linear(784, 1000, rng=0), Linear(1000, 10, rng=0)
print(f"hidden layer: {fc1.num_parameters():,} parameters (W {fc1.params['W'].shape} + b {fc1.params['b'].shape})")
print(f"output layer: {fc2.num_parameters():,} parameters (W {fc2.params['W'].shape} + b {fc2.params['b'].shape})")
total = fc1.num_parameters() + fc2.num_parameters()
print(f"total: {total:,} parameters for {784} inputs — about {total / 784:.0f} weights per pixel")
torch_count = sum(t.numel() for t in torch.nn.Sequential(torch.nn.Linear(784, 1000), torch.nn.Linear(1000, 10)).parameters())
assert fc1.num_parameters() == 785_000 and fc2.num_parameters() == 10_010 and total == torch_count
del fc1, fc2

# %% [markdown]
# Far more weights than inputs: such networks overfit easily, <!-- narrative: counts printed above --> and nothing in them knows that
# neighbouring pixels belong together — each hidden unit is wired to fixed pixel positions.
#
# We train it anyway, first with our numpy layers and plain mini-batch gradient descent
# $\theta \leftarrow \theta - \eta\,\nabla_\theta L$ (`course_lib.layers.sgd_step`), using
# `HIDDEN` hidden units (set `HIDDEN = 1000` for the lecture's exact network; 512 trains in
# half the time to the same accuracy). Pixels are scaled to $[0, 1]$ and standardised with the
# training set's mean and standard deviation.

# %%
train_images, train_labels = load_mnist("train")
test_images, test_labels = load_mnist("test")
pick_train = rng.permutation(len(train_images))[:N_TRAIN]
pick_test = rng.permutation(len(test_images))[:N_TEST]
train_images, train_labels = train_images[pick_train], train_labels[pick_train]
test_images, test_labels = test_images[pick_test], test_labels[pick_test]
MEAN, STD = float(train_images.mean()) / 255.0, float(train_images.std()) / 255.0


def to_vectors(images):
    """uint8 images (N, 28, 28) -> standardised float32 vectors (N, 784)."""
    return ((images.reshape(len(images), -1).astype(np.float32) / 255.0) - MEAN) / STD


X_train, X_test = to_vectors(train_images), to_vectors(test_images)
print(f"train {X_train.shape}, test {X_test.shape}; pixel mean {MEAN:.4f}, std {STD:.4f}")

fig, axes = subplots(1, 8, figsize=(10, 1.6))
for axis, img, lab in zip(axes, train_images, train_labels):
    axis.imshow(img, cmap="gray")
    axis.set_title(str(lab))
    axis.set_axis_off()
show(fig, 'The first training digits of MNIST with their labels.')

# %%
def predict_numpy(model, X, batch=2_000):
    """Class predictions of a numpy model, in batches."""
    return np.concatenate([model.forward(X[i : i + batch]).argmax(axis=1) for i in range(0, len(X), batch)])


LR, BATCH = 0.1, 64
np_model = Sequential(
    Linear(784, HIDDEN, rng=rng, dtype=np.float32), ReLU(), Linear(HIDDEN, 10, rng=rng, dtype=np.float32)
)
loss_fn = SoftmaxCrossEntropy()
np_history = {"loss": [], "train_acc": [], "test_acc": []}
steps_per_epoch = -(-N_TRAIN // BATCH)
start = time.perf_counter()
bar = tqdm(total=NUMPY_EPOCHS * steps_per_epoch, desc="numpy MLP")
for epoch in range(NUMPY_EPOCHS):
    lr = LR / 10 if NUMPY_EPOCHS >= 3 and epoch >= NUMPY_EPOCHS - 2 else LR  # smaller steps at the end
    order = rng.permutation(N_TRAIN)
    running = 0.0
    for i in range(0, N_TRAIN, BATCH):
        idx = order[i : i + BATCH]
        loss = loss_fn.forward(np_model.forward(X_train[idx]), train_labels[idx])
        np_model.backward(loss_fn.backward())
        sgd_step(np_model.params, np_model.grads, lr)
        running += loss * len(idx)
        bar.update(1)
    np_history["loss"].append(running / N_TRAIN)
    np_history["train_acc"].append((predict_numpy(np_model, X_train) == train_labels).mean())
    np_history["test_acc"].append((predict_numpy(np_model, X_test) == test_labels).mean())
    bar.set_postfix(loss=f"{np_history['loss'][-1]:.4f}", test=f"{np_history['test_acc'][-1]:.4f}")
bar.close()
np_seconds = time.perf_counter() - start
print(f"numpy MLP 784-{HIDDEN}-10: test accuracy {100 * np_history['test_acc'][-1]:.2f} % "
      f"after {NUMPY_EPOCHS} epochs ({np_seconds:.1f} s, {1e3 * np_seconds / (NUMPY_EPOCHS * steps_per_epoch):.1f} ms per batch)")

# %% [markdown]
# The same network in PyTorch: `nn.Linear` and autograd replace our layers and our backward
# pass, and we use SGD with momentum and a cosine learning-rate schedule (lecture 04 explains
# both), which squeezes out a little more accuracy in fewer epochs.

# %%
torch.manual_seed(0)
torch_model = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10))
TBATCH = 128
optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9)
t_steps = TORCH_EPOCHS * -(-N_TRAIN // TBATCH)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_steps)
Xt_train, Xt_test = torch.from_numpy(X_train), torch.from_numpy(X_test)
yt_train, yt_test = torch.from_numpy(train_labels), torch.from_numpy(test_labels)


@torch.no_grad()
def predict_torch(model, X):
    return model(X).argmax(dim=1).numpy()


torch_history = {"loss": [], "train_acc": [], "test_acc": []}
start = time.perf_counter()
bar = tqdm(total=t_steps, desc="torch MLP")
for _epoch in range(TORCH_EPOCHS):
    order = torch.randperm(N_TRAIN)
    running = 0.0
    for i in range(0, N_TRAIN, TBATCH):
        idx = order[i : i + TBATCH]
        loss = F.cross_entropy(torch_model(Xt_train[idx]), yt_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item() * len(idx)
        bar.update(1)
    torch_history["loss"].append(running / N_TRAIN)
    torch_history["train_acc"].append((predict_torch(torch_model, Xt_train) == train_labels).mean())
    torch_history["test_acc"].append((predict_torch(torch_model, Xt_test) == test_labels).mean())
    bar.set_postfix(loss=f"{torch_history['loss'][-1]:.4f}", test=f"{torch_history['test_acc'][-1]:.4f}")
bar.close()
torch_seconds = time.perf_counter() - start
print(f"torch MLP 784-{HIDDEN}-10: test accuracy {100 * torch_history['test_acc'][-1]:.2f} % "
      f"after {TORCH_EPOCHS} epochs ({torch_seconds:.1f} s)")

# %%
fig, axes = subplots(1, 2, figsize=(11, 4))
for name, hist in (("numpy layers + SGD", np_history), ("torch + momentum, cosine", torch_history)):
    epochs = np.arange(1, len(hist["loss"]) + 1)
    axes[0].plot(epochs, hist["loss"], "o-", label=name)
    axes[1].plot(epochs, 100 * np.array(hist["train_acc"]), "o--", label=f"{name}: train")
    axes[1].plot(epochs, 100 * np.array(hist["test_acc"]), "o-", label=f"{name}: test")
axes[0].set(xlabel="epoch", ylabel="mean training loss", title="loss", yscale="log")
axes[1].set(xlabel="epoch", ylabel="accuracy, %", title="accuracy")
for axis in axes:
    axis.legend(fontsize=8)
show(fig, 'Training loss (left) and training/test accuracy (right) per epoch of the two MLPs.')

# %% [markdown]
# With hundreds of thousands of weights the network can nearly memorise the training set, so
# training accuracy tends to run ahead of test accuracy (compare the dashed and solid curves).
# (The lecture notes quote 99.68 % on MNIST from a fully connected network with 12 million
# parameters — after 114 hours of training *with augmentation*: shifted and distorted copies of
# the training digits.) <!-- narrative: a published number, not measured here -->
#
# ## 6. Move the digit, lose the network
#
# MNIST digits are centred in their frame. A hidden unit of the MLP is wired to fixed pixel
# positions: if the digit moves, a different set of pixels lights up, and the unit no longer
# responds. We shift every test image by $s$ pixels (up, down, left and right, filling with
# background) and measure the accuracy, averaged over the four directions.

# %%
def shift_images(images, dx, dy):
    """images (N, H, W) -> same shape, content moved dx px right and dy px down; zeros fill the gap.

    A numpy view of course_lib.regularization.shift (tested there against exact pixel moves).
    """
    moved = shift(torch.from_numpy(np.asarray(images, dtype=np.float64))[:, None], int(dx), int(dy))
    return moved[:, 0].numpy().astype(images.dtype)


SHIFTS = [0, 1, 2, 3, 4]
DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1)]
shift_acc = {"numpy": [], "torch": []}
for s in SHIFTS:
    accs = {"numpy": [], "torch": []}
    for ux, uy in DIRECTIONS:
        moved = to_vectors(shift_images(test_images, s * ux, s * uy))
        accs["numpy"].append((predict_numpy(np_model, moved) == test_labels).mean())
        accs["torch"].append((predict_torch(torch_model, torch.from_numpy(moved)) == test_labels).mean())
    for k in shift_acc:
        shift_acc[k].append(float(np.mean(accs[k])))

print(f"{'shift, px':>9} | {'numpy MLP':>10} | {'torch MLP':>10}")
for s, a_np, a_t in zip(SHIFTS, shift_acc["numpy"], shift_acc["torch"]):
    print(f"{s:>9} | {100 * a_np:8.2f} % | {100 * a_t:8.2f} %")

fig, axes = subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
digit = test_images[0]
strip = np.concatenate([shift_images(digit[None], s, 0)[0] for s in SHIFTS], axis=1)
axes[0].imshow(strip, cmap="gray")
axes[0].set_title(f"the same test digit shifted right by {SHIFTS} px")
axes[0].set_axis_off()
axes[1].plot(SHIFTS, 100 * np.array(shift_acc["numpy"]), "o-", label="numpy MLP")
axes[1].plot(SHIFTS, 100 * np.array(shift_acc["torch"]), "s-", label="torch MLP")
axes[1].set(xlabel="shift, pixels", ylabel="test accuracy, %", title="MLP accuracy on shifted digits", ylim=(0, 100))
axes[1].legend()
show(fig, "A test digit shifted right by 0-4 pixels (left) and the MLPs' test accuracy on shifted digits (right).")
claim(all(acc[SHIFTS.index(4)] < acc[0] - 0.2 for acc in shift_acc.values()),
      "a 4-pixel shift costs both MLPs more than 20 points of test accuracy")
md(f"Test accuracy at shift 0 → 4 px: numpy MLP {100 * shift_acc['numpy'][0]:.1f} % → "
   f"{100 * shift_acc['numpy'][-1]:.1f} %, torch MLP {100 * shift_acc['torch'][0]:.1f} % → {100 * shift_acc['torch'][-1]:.1f} %.")

# %% [markdown]
# A shift of a few pixels — invisible to a person — costs the fully connected network a large
# part of its accuracy (the claim above). What we want instead is a detector of a **pattern** that responds
# wherever the pattern appears, with the same weights at every position: a **convolution**
# (lecture 03). Its layers have local connectivity and shared weights, hence far fewer
# parameters than the 785,000 above.
#
# ## Summary
# - The derivative with respect to a deep weight is a sum over all paths to the output; the
#   number of paths grows exponentially with depth.
# - Backprop computes the same sum in one backward sweep, reusing $\partial L / \partial(\text{unit})$
#   layer by layer: the cost is linear in the number of edges, like the forward pass.
# - Each layer only needs its local rule: $\partial L/\partial W = X^\top \delta$,
#   $\partial L/\partial X = \delta W^\top$, $\delta \odot f'(Z)$ for an activation,
#   $(P - Y)/N$ for softmax + cross-entropy.
# - Check new gradients with centred differences and the **relative** error, in **float64**.
# - A fully connected network on raw pixels has a huge number of weights and no notion of
#   position: shifting the digits breaks it. Convolutions fix this.
#
# ## Where to go next
#
# - **Assignment:** [`assignments/02-backpropagation/`](../../assignments/02-backpropagation/02-backpropagation.ipynb)
#   asks you to write the backward passes of the layers and check them numerically.
# - **Library:** `course_lib.autograd` (the scalar engine `Value`) and `course_lib.layers`
#   (numpy layers, `numerical_gradient`, `grad_check`); see the API reference.
# - **Benchmark:** `benchmarks/backprop_mnist.py` trains the MNIST MLP at full size.
