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
# # Lecture 01 · Neural networks: neurons, layers, nonlinearities
#
# Linear models are too simple for images and text: they treat features as if they acted
# independently, and hand-made polynomial features are neither scalable nor interpretable.
# Gradient boosting works well on tables but cannot turn raw pixels into features. A neural
# network *learns* the features: it is a composition of simple differentiable blocks,
#
# $$x^{(0)} \xrightarrow{h_1} x^{(1)} \xrightarrow{h_2} x^{(2)} \to \dots \to y,$$
#
# trained end to end by minimising a loss $\frac{1}{\ell}\sum_i L\bigl(y_i, a(x_i)\bigr)$.
#
# **Learning goals** — this lecture covers
# 1. the neuron as a linear model, and the **fully connected layer** with its $nm$ weights;
# 2. **activation functions** (sigmoid, tanh, ReLU, Leaky ReLU, ELU, Maxout) and their derivatives;
# 3. why a stack of linear layers is **still linear**;
# 4. the **computation-graph** view, on the example where the class depends on the signs of two
#    linear functions;
# 5. the **universal approximation theorem** (Cybenko), demonstrated.
#
# Everything numerical comes from `course_lib` (`course_lib.activations`, `course_lib.layers`),
# whose tests compare each function with PyTorch.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib import activations as act
from course_lib.layers import Linear
from course_lib.notebook import claim, setup_notebook, show, subplots
from course_lib.training import fit

SMOKE = setup_notebook(SMOKE, seed=0)
UA_WIDTHS = [1, 2, 4, 8, 16] if SMOKE else [1, 2, 4, 8, 16, 32, 64, 128]
UA_STEPS = 150 if SMOKE else 3000
rng = np.random.default_rng(0)
print(f"smoke mode: {SMOKE}; widths {UA_WIDTHS}, {UA_STEPS} optimisation steps each")

# %% [markdown]
# ## 1. The neuron and the fully connected layer
#
# A neuron receives signals $x_1, \dots, x_d$, weighs them and passes on the sum — a linear model:
#
# $$a(x) = \sum_{j=1}^{d} w_j x_j + b.$$
#
# A **fully connected (FC) layer** is $m$ neurons reading the same $n$ inputs:
#
# $$z_j = \sum_{i=1}^{n} w_{ij}\, x_i + b_j, \quad j = 1..m, \qquad\text{i.e.}\qquad Z = XW + b,$$
#
# with $W \in \mathbb{R}^{n\times m}$ and $b \in \mathbb{R}^{m}$: $nm$ weights plus $m$ biases.
# `course_lib.layers.Linear` implements it on a batch $X$ of shape $(N, n)$.

# %%
layer = Linear(4, 3, rng=rng)
X = rng.normal(size=(5, 4))
Z = layer.forward(X)
n_weights = layer.params["W"].size
n_biases = layer.params["b"].size
print(f"input {X.shape} -> output {Z.shape}")
print(f"W: {layer.params['W'].shape}, b: {layer.params['b'].shape} -> {n_weights} weights (n*m = 4*3) + {n_biases} biases")
assert np.allclose(Z, X @ layer.params["W"] + layer.params["b"])

# %% [markdown]
# Fully connected layers get large fast, which is why they need a lot of data. Parameters of one
# FC layer for a few input/output sizes:

# %%
for n, m in [(2, 2), (784, 1000), (1000, 10), (4096, 4096)]:
    print(f"{n:>5} inputs -> {m:>5} outputs: {n * m + m:>12,} parameters")

# %% [markdown]
# ## 2. Nonlinearities
#
# After every layer comes a nonlinear function $f$ applied elementwise. The classic ones:
#
# | name | $f(x)$ | $f'(x)$ |
# | --- | --- | --- |
# | sigmoid | $\sigma(x) = \dfrac{1}{1+e^{-x}}$ | $\sigma(x)(1-\sigma(x))$ |
# | tanh | $\tanh(x)$ | $1-\tanh^2(x)$ |
# | ReLU | $\max(0, x)$ | $[x > 0]$ |
# | Leaky ReLU | $\max(0.1x, x)$ | $1$ if $x>0$ else $0.1$ |
# | ELU | $x$ if $x \ge 0$, else $\alpha(e^x-1)$ | $1$ if $x>0$ else $\alpha e^x$ |
# | Maxout | $\max(w_1^\top x + b_1,\ w_2^\top x + b_2)$ | the gradient of the active piece |
#
# Sigmoid and tanh *saturate*: for large $|x|$ their derivative is almost 0, so little gradient
# flows back through them (lecture 02). ReLU does not saturate for $x > 0$ and costs one comparison.

# %%
xs = np.linspace(-5, 5, 401)
curves = {
    "sigmoid": (act.sigmoid, act.sigmoid_grad),
    "tanh": (act.tanh, act.tanh_grad),
    "ReLU": (act.relu, act.relu_grad),
    "Leaky ReLU (0.1)": (act.leaky_relu, act.leaky_relu_grad),
    "ELU (α = 1)": (act.elu, act.elu_grad),
}
fig, axes = subplots(2, 3, figsize=(12, 6.5))
for ax, (name, (f, df)) in zip(axes.flat, curves.items()):
    ax.plot(xs, f(xs), label="f(x)")
    ax.plot(xs, df(xs), "--", label="f'(x)")
    ax.set_title(name)
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(loc="upper left")
# Maxout with two pieces in one dimension: max(w1 x + b1, w2 x + b2)
W = np.array([[[1.0]], [[-0.5]]])  # (k=2, d_in=1, d_out=1)
b = np.array([[0.0], [-1.0]])  # (k=2, d_out=1)
axes.flat[5].plot(xs, act.maxout(xs[:, None], W, b)[:, 0], label="max(x, -0.5x - 1)")
axes.flat[5].plot(xs, xs, ":", lw=1, label="piece 1")
axes.flat[5].plot(xs, -0.5 * xs - 1, ":", lw=1, label="piece 2")
axes.flat[5].set_title("Maxout (k = 2)")
axes.flat[5].legend(loc="upper left")
fig.suptitle("Activation functions (solid) and their derivatives (dashed)")
fig.supxlabel("$x$")
fig.supylabel("$f(x)$, $f'(x)$")
show(fig, 'Five elementwise activations with their derivatives, and a two-piece Maxout unit.')

# %% [markdown]
# The derivatives above are the analytic ones from `course_lib.activations`; a quick check against
# centred finite differences $\frac{f(x+\varepsilon)-f(x-\varepsilon)}{2\varepsilon}$ (away from the
# kinks at 0):

# %%
eps = 1e-6
pts = np.array([-3.0, -0.7, 0.4, 2.5])
for name, (f, df) in curves.items():
    numeric = (f(pts + eps) - f(pts - eps)) / (2 * eps)
    print(f"{name:<18} max |analytic - numeric| = {np.abs(df(pts) - numeric).max():.2e}")

# %% [markdown]
# ## 3. Without nonlinearities, depth buys nothing
#
# Two linear layers in a row are one linear layer:
#
# $$(XW_1 + b_1)W_2 + b_2 = X\,\underbrace{W_1W_2}_{W} + \underbrace{b_1W_2 + b_2}_{b}.$$
#
# Below, a stack of 5 linear layers equals a single one to machine precision — and stops doing
# so as soon as a ReLU sits between the layers.

# %%
sizes = [6, 16, 16, 16, 16, 3]
stack = [Linear(a, c, rng=rng) for a, c in zip(sizes[:-1], sizes[1:])]
for lin in stack:
    lin.params["b"] = rng.normal(size=lin.params["b"].shape)
X = rng.normal(size=(10, sizes[0]))

h = X
for lin in stack:
    h = lin.forward(h)
W_total = np.eye(sizes[0])
b_total = np.zeros(sizes[0])
for lin in stack:
    W_total, b_total = W_total @ lin.params["W"], b_total @ lin.params["W"] + lin.params["b"]
linear_gap = np.abs(h - (X @ W_total + b_total)).max()
print(f"5 linear layers vs one collapsed layer: max difference {linear_gap:.2e}")

h = X
for i, lin in enumerate(stack):
    h = lin.forward(h)
    if i < len(stack) - 1:
        h = act.relu(h)
relu_gap = np.abs(h - (X @ W_total + b_total)).max()
print(f"with ReLU between the layers:          max difference {relu_gap:.2e}")
claim(linear_gap < 1e-9, "a stack of 5 linear layers equals one linear layer to machine precision")
claim(relu_gap > 1e-3, "with ReLU between the layers the stack is no longer that linear map")

# %% [markdown]
# ## 4. The computation graph: a class defined by the signs of two linear functions
#
# The lecture's example has two features $x_1, x_2$ and two lines $b_1(x) = w_1^\top x + c_1$,
# $b_2(x) = w_2^\top x + c_2$. A point is **blue** when the two functions have the same sign and
# **orange** otherwise. No single linear model separates the classes (it is XOR of two half-planes),
# but a graph of linear models does:
#
# 1. first layer: $z_1 = b_1(x)$, $z_2 = b_2(x)$ (two neurons) followed by a nonlinearity,
#    here $\sigma(k z)$ with a large gain $k$ so it acts like a step;
# 2. second layer: a linear model on $(z_1, z_2)$-features, again with a step.
#
# With steps $s_j = [z_j > 0]$: same sign $\iff s_1 + s_2 \ne 1$, and
# $[s_1 + s_2 - 0.5 > 0] - [s_1 + s_2 - 1.5 > 0]$ is 1 exactly when the signs differ.
# So the network below has 2 inputs → 2 hidden units → 2 units → 1 output, every block linear
# plus a sigmoid.

# %%
w1, c1 = np.array([1.0, 1.0]), -0.2
w2, c2 = np.array([1.0, -1.0]), 0.1
grid = np.linspace(-1.5, 1.5, 301)
g1, g2 = np.meshgrid(grid, grid)
P = np.stack([g1.ravel(), g2.ravel()], axis=1)
truth = np.sign(P @ w1 + c1) == np.sign(P @ w2 + c2)  # True = blue

k = 50.0  # sigmoid gain: sigma(k z) ~ step(z)
hidden = Linear(2, 2, rng=rng)
hidden.params["W"] = np.stack([w1, w2], axis=1)  # (2 inputs, 2 hidden)
hidden.params["b"] = np.array([c1, c2])
combine = Linear(2, 2, rng=rng)
combine.params["W"] = np.array([[1.0, 1.0], [1.0, 1.0]])
combine.params["b"] = np.array([-0.5, -1.5])
out = Linear(2, 1, rng=rng)
out.params["W"] = np.array([[1.0], [-1.0]])
out.params["b"] = np.array([-0.5])

s = act.sigmoid(k * hidden.forward(P))
t = act.sigmoid(k * combine.forward(s))
orange_prob = act.sigmoid(k * out.forward(t))[:, 0]
pred_blue = orange_prob < 0.5
print(f"accuracy of the hand-built 2-2-2-1 network on the grid: {100 * (pred_blue == truth).mean():.2f} %")

lin_fit = np.linalg.lstsq(np.c_[P, np.ones(len(P))], truth.astype(float) * 2 - 1, rcond=None)[0]
lin_acc = ((np.c_[P, np.ones(len(P))] @ lin_fit > 0) == truth).mean()
print(f"accuracy of the best least-squares linear classifier:  {100 * lin_acc:.2f} %")
net_acc = (pred_blue == truth).mean()
claim(net_acc > 0.99, "the hand-built 2-2-2-1 network classifies more than 99 % of the grid correctly")
claim(lin_acc < 0.8, "no linear classifier comes close: the best least-squares one is below 80 %")

fig, axes = subplots(1, 2, figsize=(10, 4.5))
for ax, values, title in [(axes[0], truth, "true classes"), (axes[1], pred_blue, "network's prediction")]:
    ax.contourf(g1, g2, values.reshape(g1.shape), levels=[-0.5, 0.5, 1.5], colors=["tab:orange", "tab:blue"], alpha=0.6)
    ax.plot(grid, -(w1[0] * grid + c1) / w1[1], "k--", lw=1)
    ax.plot(grid, -(w2[0] * grid + c2) / w2[1], "k:", lw=1)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_title(title)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
show(fig, "The XOR-of-half-planes problem: true classes (left) and the hand-built 2-2-2-1 network's prediction (right); dashed and dotted lines are the two linear functions.")

# %% [markdown]
# ## 5. Universal approximation
#
# **Theorem (Cybenko, 1989).** For any continuous $g$ on a compact set and any $\varepsilon > 0$
# there is a two-layer network $a(x) = \sum_{j=1}^{H} v_j\, \sigma(w_j x + c_j)$ with
# $\sup_x |a(x) - g(x)| < \varepsilon$.
#
# The theorem says nothing about how large $H$ must be, nor how to find the weights. Below we fit
# $g(x) = \sin(3x) + 0.3x^2$ on $[-2, 2]$ with networks of growing width $H$ (tanh hidden layer,
# Adam on the mean squared error) and measure the error as $H$ grows.

# %%
x_train = torch.linspace(-2, 2, 256).unsqueeze(1)
target = torch.sin(3 * x_train) + 0.3 * x_train**2
results = {}
start = time.perf_counter()
for width in tqdm(UA_WIDTHS, desc="widths"):
    torch.manual_seed(width)
    net = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(), torch.nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    fit(net, torch.nn.functional.mse_loss, opt, x_train, target, epochs=UA_STEPS, progress=False)
    with torch.no_grad():
        pred = net(x_train)
    results[width] = (pred.squeeze(1).numpy(), (pred - target).abs().max().item(), torch.nn.functional.mse_loss(pred, target).item())
print(f"fitted {len(UA_WIDTHS)} networks in {time.perf_counter() - start:.1f} s")
for width, (_, max_err, mse) in results.items():
    print(f"H = {width:>3}: max |a(x) - g(x)| = {max_err:.4f}, MSE = {mse:.2e}")
claim(results[UA_WIDTHS[-1]][1] < 0.1 * results[UA_WIDTHS[0]][1],
      f"the widest network (H = {UA_WIDTHS[-1]}) has less than a tenth of the narrowest one's maximum error")

# %%
fig, axes = subplots(1, 2, figsize=(12, 4.2))
axes[0].plot(x_train.squeeze(1), target.squeeze(1), "k", lw=2.5, label="g(x)")
for width in UA_WIDTHS[:: max(1, len(UA_WIDTHS) // 4)]:
    axes[0].plot(x_train.squeeze(1), results[width][0], label=f"H = {width}")
axes[0].set_title("two-layer fits of growing width")
axes[0].set_xlabel("$x$")
axes[0].set_ylabel("$g(x)$ and the fits $a(x)$")
axes[0].legend()
axes[1].loglog(UA_WIDTHS, [results[w][1] for w in UA_WIDTHS], "o-", label="max error")
axes[1].loglog(UA_WIDTHS, [results[w][2] for w in UA_WIDTHS], "s--", label="MSE")
axes[1].set_xlabel("hidden units H")
axes[1].set_ylabel("error on the training grid")
axes[1].set_title("error against the width of the hidden layer")
axes[1].legend()
show(fig, 'Two-layer tanh networks of growing width $H$ fitted to $g(x)$ (left) and their maximum and mean squared errors (right).')

# %% [markdown]
# ## Summary
#
# - A neuron is a linear model; an FC layer with $n$ inputs and $m$ outputs has $nm + m$ parameters.
# - Nonlinearities between layers are essential: without them the whole network collapses to one
#   linear map. Their derivatives decide how gradients flow (lecture 02).
# - Networks are computation graphs of simple differentiable blocks; even tiny graphs express
#   classes no linear model can.
# - Two layers suffice *in principle* for any continuous function, but the width needed can be
#   large — depth and structure (convolutions, lecture 03) make learning practical.
#
#
# ## Where to go next
#
# - **Assignment:** [`assignments/01-neural-networks/`](../../assignments/01-neural-networks/01-neural-networks.ipynb)
#   asks you to implement these activations, their derivatives and the FC layer yourself.
# - **Library:** `course_lib.activations` (every activation and its derivative) and
#   `course_lib.layers` (the `Linear` layer); see the API reference.
# - **Benchmark:** none for this lecture; lecture 02 trains the MNIST MLP (`benchmarks/backprop_mnist.py`).
