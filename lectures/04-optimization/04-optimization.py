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
# # Lecture 04 · Optimisation: from gradient descent to Adam
#
# Training a network means minimising the empirical risk over its weights $w$,
#
# $$Q(w) = \frac{1}{\ell}\sum_{i=1}^{\ell} L\bigl(y_i, a(x_i)\bigr) \to \min_w .$$
#
# **Learning goals** — this lecture covers
# 1. **gradient descent** and **stochastic gradient descent** (SGD): an unbiased but noisy
#    gradient, a step size $\eta_t \to 0$, and guarantees only for convex functions;
# 2. **mini-batches**: how the batch size and a decaying step control the noise;
# 3. the trouble with **elongated level sets**, and **momentum** and **Nesterov momentum**;
# 4. per-coordinate steps: **Adagrad**, **RMSProp** and **Adam**;
# 5. how these formulas relate to `torch.optim` (they are not written the same way);
# 6. **learning-rate schedules**;
# 7. the same MLP trained on MNIST with each optimiser.
#
# The update rules come from `course_lib.optim`, in two forms: pure functions
# (`momentum_update(w, grad_fn, state, lr=..., momentum=...)`) that we run on two-dimensional
# test functions to *see* the trajectories, and `torch.optim.Optimizer` subclasses
# (`course_lib.optim.Momentum(model.parameters(), lr=...)`) that train networks. The test suite
# checks both against `torch.optim` over 200-step trajectories.

# %% tags=["parameters"]
SMOKE = False

# %%

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import optim as co
from course_lib.data import load_mnist
from course_lib.notebook import claim, setup_notebook, show, subplots
from course_lib.training import accuracy, fit

SMOKE = setup_notebook(SMOKE, seed=0)
QUAD_STEPS = 60 if SMOKE else 100
ROSEN_STEPS = 600 if SMOKE else 5000
NOISE_STEPS = 300 if SMOKE else 3000
MNIST_TRAIN = 1024 if SMOKE else 60000
MNIST_TEST = 500 if SMOKE else 10000
MNIST_EPOCHS = 1 if SMOKE else 8
BATCH = 128
print(f"smoke mode: {SMOKE}; MNIST: {MNIST_TRAIN} training images, {MNIST_EPOCHS} epoch(s) per optimiser")

# %% [markdown]
# ## 1. Gradient descent and SGD
#
# **Gradient descent** moves against the gradient of the whole objective:
#
# $$w_t = w_{t-1} - \eta\, \nabla Q(w_{t-1}).$$
#
# Every step sums over all $\ell$ training examples - far too expensive when the network has
# millions of weights and the data set millions of images. **Stochastic gradient descent** uses
# one random example $i_t$ instead:
#
# $$w_t = w_{t-1} - \eta_t\, \nabla L\bigl(y_{i_t}, a(x_{i_t})\bigr).$$
#
# Because $i_t$ is uniform, $\mathbb{E}_{i_t}\nabla L(y_{i_t}, a(x_{i_t})) = \nabla Q(w)$: the
# estimate is **unbiased**, but noisy, so near the minimum SGD keeps oscillating. The fix is a
# step size that depends on the iteration and **decays to zero**, $\eta_t \to 0$ (classically
# $\sum_t \eta_t = \infty$, $\sum_t \eta_t^2 < \infty$, e.g. $\eta_t \propto 1/t$).
# Convergence is guaranteed only for **convex** functions; a network's loss is not convex and
# has many local minima, so in practice we take whatever good point SGD finds.
#
# **Mini-batch SGD** averages the gradient over $B$ random examples. Powers of two fit memory
# well; the estimate becomes more stable (its variance falls as $1/B$), and the lecture's advice <!-- narrative: theory -->
# is to take small batches, from 2 to 32.

# %% [markdown]
# ## 2. Two test functions
#
# * an **elongated quadratic** $f(w) = \tfrac12\,(w_1^2 + 20\,w_2^2)$: level sets are ellipses
#   with axis ratio $\sqrt{20} \approx 4.5$; the curvature along $w_2$ is 20 times that along $w_1$;
# * the **Rosenbrock function** $f(w) = (1 - w_1)^2 + 100\,(w_2 - w_1^2)^2$: a curved, narrow,
#   almost flat valley with the minimum at $(1, 1)$.
#
# On the quadratic, plain gradient descent is stable only for $\eta < 2/20$; with $\eta$ close
# to that limit it zig-zags across the narrow direction while crawling along the long one
# (each step multiplies $w_1$ by $1 - \eta$ and $w_2$ by $1 - 20\eta$).

# %%
KAPPA = 20.0


def quad(w):
    return 0.5 * (w[..., 0] ** 2 + KAPPA * w[..., 1] ** 2)


def quad_grad(w):
    return np.array([w[0], KAPPA * w[1]])


def rosenbrock(w):
    return (1 - w[..., 0]) ** 2 + 100 * (w[..., 1] - w[..., 0] ** 2) ** 2


def rosenbrock_grad(w):
    x, y = w
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


# %% [markdown]
# ## 3. Momentum and Nesterov momentum
#
# With elongated level sets gradient descent needs a carefully chosen step and converges slowly.
# **Momentum** averages the directions of recent steps, so the zig-zag components cancel and the
# consistent ones add up:
#
# $$h_0 = 0,\qquad h_t = \alpha\, h_{t-1} + \eta\, \nabla Q(w_{t-1}),\qquad w_t = w_{t-1} - h_t ,$$
#
# with $\alpha$ (typically 0.9) the exponential decay of old steps. **Nesterov momentum** first
# makes the momentum step and takes the gradient *where it lands*, which corrects an overshoot
# one step earlier:
#
# $$h_t = \alpha\, h_{t-1} + \eta\, \nabla Q\bigl(w_{t-1} - \alpha\, h_{t-1}\bigr),\qquad w_t = w_{t-1} - h_t .$$
#
# ## 4. Adagrad, RMSProp, Adam
#
# Sparse features are rarely updated, and features on different scales want different steps.
# **Adagrad** gives each coordinate $j$ its own step, shrinking with the squared gradients seen
# so far ($G_j^0 = 0$):
#
# $$G_j^t = G_j^{t-1} + g_{tj}^2,\qquad w_j^t = w_j^{t-1} - \frac{\eta_t}{\sqrt{G_j^t + \varepsilon}}\, g_{tj},
# \qquad g_t = \nabla Q(w^{t-1}).$$
#
# Adagrad's denominator only grows, so its steps die out. **RMSProp** replaces the sum by a
# running average, so the step depends on recent gradients only:
#
# $$G_j^t = \alpha\, G_j^{t-1} + (1-\alpha)\, g_{tj}^2,\qquad w_j^t = w_j^{t-1} - \frac{\eta_t}{\sqrt{G_j^t + \varepsilon}}\, g_{tj}.$$
#
# **Adam** is momentum and RMSProp together, with a **bias correction** for the zero
# initialisation of both averages (without it the first steps are $(1-\beta_1)$ times too short):
#
# $$\begin{gathered}m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,\\
# \hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t},\quad
# w_t = w_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}.\end{gathered}$$
#
# We run all six rules from the same start with `course_lib.optim.optimize`, which returns the
# whole trajectory. Step sizes were picked by hand for each rule so that each looks its best
# within the budget; there is no fair "same $\eta$" for rules whose steps mean different things.

# %%
QUAD_CFG = {
    "SGD": dict(lr=0.09),
    "Momentum": dict(lr=0.02, momentum=0.8),
    "Nesterov": dict(lr=0.02, momentum=0.8),
    "Adagrad": dict(lr=1.0),
    "RMSProp": dict(lr=0.1, alpha=0.9),
    "Adam": dict(lr=0.3),
}
ROSEN_CFG = {
    "SGD": dict(lr=1.5e-3),
    "Momentum": dict(lr=2e-4, momentum=0.9),
    "Nesterov": dict(lr=2e-4, momentum=0.9),
    "Adagrad": dict(lr=0.5),
    "RMSProp": dict(lr=0.01, alpha=0.9),
    "Adam": dict(lr=0.05),
}
COLORS = dict(zip(co.UPDATE_RULES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))


def run_all(grad, w0, n_steps, cfg):
    return {name: co.optimize(co.UPDATE_RULES[name], grad, np.array(w0, dtype=float), n_steps, **cfg[name])
            for name in cfg}


def plot_paths(f, paths, extent, title, log_levels=True, minimum=None):
    fig, axes = subplots(2, 3, figsize=(13, 7.5), sharex=True, sharey=True)
    xs = np.linspace(extent[0], extent[1], 300)
    ys = np.linspace(extent[2], extent[3], 300)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1)
    values = f(grid)
    levels = np.geomspace(max(values.min(), 1e-3), values.max(), 25) if log_levels else 25
    for ax, (name, path) in zip(axes.flat, paths.items()):
        ax.contour(xs, ys, values, levels=levels, cmap="Greys", linewidths=0.6)
        ax.plot(path[:, 0], path[:, 1], ".-", color=COLORS[name], ms=2.5, lw=1)
        ax.plot(*path[0], "ko", ms=5)
        if minimum is not None:
            ax.plot(*minimum, "r*", ms=12)
        ax.set_title(f"{name}: f = {f(path[-1]):.2e} after {len(path) - 1} steps")
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
    for ax in axes[-1]:
        ax.set_xlabel("$w_1$")
    for ax in axes[:, 0]:
        ax.set_ylabel("$w_2$")
    fig.suptitle(title)
    show(fig, title)


def plot_losses(f, paths, title):
    fig, ax = subplots(figsize=(7, 4))
    for name, path in paths.items():
        ax.semilogy(np.maximum(f(path), 1e-16), label=name, color=COLORS[name])
    ax.set_xlabel("step")
    ax.set_ylabel("f(w_t)")
    ax.set_title(title)
    ax.legend()
    show(fig, title)


quad_paths = run_all(quad_grad, [-4.5, 1.5], QUAD_STEPS, QUAD_CFG)
plot_paths(quad, quad_paths, (-5, 1.5, -2, 2), "elongated quadratic ½(w₁² + 20 w₂²)", minimum=(0, 0))
plot_losses(quad, quad_paths, "elongated quadratic: loss per step")

# %% [markdown]
# SGD with a step close to the stability limit zig-zags along $w_2$ and crawls along $w_1$.
# Momentum dampens the zig-zag and speeds up the slow direction, but overshoots and swings
# around the minimum; Nesterov, which looks ahead before it steps, overshoots much less. The
# per-coordinate methods divide each coordinate by the size of its own gradients, so both axes
# get similar step lengths and the path heads almost straight for the minimum (Adagrad,
# RMSProp). Adam's first steps have length about $\eta$ in every coordinate whatever the
# gradient's size; its momentum then carries it past the minimum, and it circles in.
#
# Now the Rosenbrock valley, where the direction of the valley changes along the way:

# %%
rosen_paths = run_all(rosenbrock_grad, [-1.2, 1.0], ROSEN_STEPS, ROSEN_CFG)
plot_paths(rosenbrock, rosen_paths, (-1.6, 1.6, -0.6, 1.6), "Rosenbrock (1 - w₁)² + 100 (w₂ - w₁²)²", minimum=(1, 1))
plot_losses(rosenbrock, rosen_paths, "Rosenbrock: loss per step")
for name, path in rosen_paths.items():
    print(f"{name:>9}: f = {rosenbrock(path[-1]):.3e} at w = ({path[-1][0]:.4f}, {path[-1][1]:.4f}) "
          f"after {ROSEN_STEPS} steps")
rosen_final = {name: rosenbrock(path[-1]) for name, path in rosen_paths.items()}
claim(rosen_final["Momentum"] < rosen_final["SGD"], "on the Rosenbrock valley momentum gets further than plain SGD")
claim(min(rosen_final["RMSProp"], rosen_final["Adam"]) < rosen_final["SGD"],
      "the adaptive methods get further along the flat valley floor than plain SGD")

# %% [markdown]
# Plain SGD must use a step small enough for the steep walls, and then moves slowly along the
# flat valley floor; momentum builds up speed along the floor. The adaptive methods take
# comparatively large steps along the flat direction. Their normalised steps do not shrink as
# the gradient vanishes, though: RMSProp ends up bouncing around the minimum at a distance set by
# $\eta$, and with enough steps (full mode) Adam, after reaching the minimum to machine
# precision, is even kicked out once - when the gradients are tiny, so is $\hat v_t$, and
# $\hat m_t / (\sqrt{\hat v_t} + \varepsilon)$ is again of order 1. A decaying step size
# (section 7) cures both.

# %% [markdown]
# ## 5. Mini-batches and a decaying step: the noise of SGD
#
# Take linear regression $Q(w) = \frac1\ell \sum_i (x_i^\top w - y_i)^2$ with $\ell = 2000$
# noisy examples in 2 dimensions and run SGD with mini-batches of size $B$, each step drawing
# $B$ random examples. The distance of the iterate to the exact minimiser $w^*$ shows the noise:
# with a constant $\eta$ SGD reaches a "noise ball" whose size shrinks as $B$ grows (the
# gradient's variance is $\propto 1/B$). A decaying step $\eta_t = \eta_0 / (1 + t/\tau)$
# (`lr_schedules.inverse_time`) lets even $B = 1$ converge.

# %%
rng = np.random.default_rng(0)
ell = 2000
X_reg = rng.normal(size=(ell, 2)) * np.array([1.0, 3.0])
w_true = np.array([2.0, -1.0])
y_reg = X_reg @ w_true + rng.normal(scale=1.0, size=ell)
w_star = np.linalg.lstsq(X_reg, y_reg, rcond=None)[0]


def minibatch_grad(batch_size, seed):
    gen = np.random.default_rng(seed)

    def grad(w):
        idx = gen.integers(0, ell, size=batch_size)
        Xb, yb = X_reg[idx], y_reg[idx]
        return 2 * Xb.T @ (Xb @ w - yb) / batch_size

    return grad


w_start = np.array([-2.0, 2.0])
LR = 0.04
tail = slice(-NOISE_STEPS // 10, None)  # the last 10 % of the steps
noise = {}
fig, axes = subplots(1, 2, figsize=(13, 4.2))
for B in (1, 4, 32, 256):
    path = co.optimize(co.sgd_update, minibatch_grad(B, seed=B), w_start, NOISE_STEPS, lr=LR)
    dist = np.linalg.norm(path - w_star, axis=1)
    axes[0].semilogy(dist, label=f"B = {B}", lw=0.8)
    noise[B] = dist[tail].mean()
    print(f"constant η = {LR}, B = {B:>3}: mean distance to w* over the last 10 % of steps = {dist[tail].mean():.4f}")
axes[0].set_title(f"constant step η = {LR}: the noise shrinks with the batch size")
schedule = co.lr_schedules.inverse_time(LR, decay=0.05)
runs = {f"constant η = {LR}": dict(lr=LR), f"η_t = {LR} / (1 + t/20)": dict(lr=LR, lr_schedule=schedule)}
for name, kw in runs.items():
    path = co.optimize(co.sgd_update, minibatch_grad(1, seed=1), w_start, NOISE_STEPS, **kw)
    dist = np.linalg.norm(path - w_star, axis=1)
    axes[1].semilogy(dist, label=name, lw=0.8)
    noise[name] = dist[tail].mean()
    print(f"B = 1, {name}: mean distance to w* over the last 10 % of steps = {dist[tail].mean():.4f}")
axes[1].set_title("B = 1: a decaying step removes the noise floor")
for ax in axes:
    ax.set_xlabel("step")
    ax.set_ylabel("‖w_t - w*‖")
    ax.legend()
show(fig, 'SGD with mini-batches of growing size at a constant step (left) and with a decaying step (right).')
claim(noise[256] < noise[32] < noise[4] < noise[1], "at a constant step the noise ball shrinks as the batch grows")
claim(noise[list(runs)[1]] < noise[list(runs)[0]], "with B = 1 a decaying step ends closer to w* than a constant one")

# %% [markdown]
# ## 6. The optimisers as `torch.optim.Optimizer`s, and how torch writes them
#
# The classes in `course_lib.optim` implement exactly the formulas above and plug into any
# PyTorch training loop. `torch.optim` implements the same methods but writes several of them
# differently; the test suite (`tests/test_optim.py`) pins down each correspondence:
#
# | lecture | `torch.optim` | exact correspondence |
# | --- | --- | --- |
# | momentum: $h_t = \alpha h_{t-1} + \eta g_t$, $w \mathrel{-}= h_t$ | `SGD(momentum=α)`: $b_t = \alpha b_{t-1} + (1-d)\,g_t$, $w \mathrel{-}= \eta\, b_t$ | dampening $d = 0$: $h_t = \eta\, b_t$, identical for a constant $\eta$; with a schedule torch rescales the whole history by the new $\eta$ |
# | Nesterov: gradient at $w_{t-1} - \alpha h_{t-1}$ | `SGD(nesterov=True)`: $p_t = p_{t-1} - \eta\,(g_t + \alpha b_t)$ with $g$ at $p$ | torch stores the **look-ahead point** $p_t = w_t - \alpha h_t$; so does `course_lib.optim.Nesterov` |
# | Adagrad: $\eta g / \sqrt{G + \varepsilon}$ | $\eta g / (\sqrt{G} + \varepsilon)$ | `Adagrad(eps=0, initial_accumulator_value=ε)` |
# | RMSProp: $\eta g / \sqrt{G + \varepsilon}$ | $\eta g / (\sqrt{G} + \varepsilon)$ | equal for $\varepsilon = 0$ |
# | Adam with $\hat m, \hat v$ | step $\frac{\eta}{1-\beta_1^t}$, denominator $\frac{\sqrt{v_t}}{\sqrt{1-\beta_2^t}} + \varepsilon$ | the same formula rearranged |
#
# Why does Nesterov store the look-ahead point? `loss.backward()` computes the gradient at the
# parameter's current value, and the rule needs it at $w_{t-1} - \alpha h_{t-1}$. Substituting
# $\tilde w = w - \alpha h$ into the rule gives
# $\tilde w_t = \tilde w_{t-1} + \alpha h_{t-1} - (1+\alpha)\, h_t$, with the gradient taken at
# $\tilde w_{t-1}$, which is what the optimiser computes. A quick check on a random least-squares problem:

# %%
torch.manual_seed(0)
A = torch.randn(50, 5, dtype=torch.float64)
b = torch.randn(50, dtype=torch.float64)


def train_params(make_opt, steps=100):
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = make_opt([w])
    for _ in range(steps):
        opt.zero_grad()
        ((A @ w - b) ** 2).mean().backward()
        opt.step()
    return w.detach()


pairs = {
    "Momentum": (lambda p: co.Momentum(p, lr=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "Nesterov": (lambda p: co.Nesterov(p, lr=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "Adagrad": (lambda p: co.Adagrad(p, lr=0.1, eps=0.01),
                lambda p: torch.optim.Adagrad(p, lr=0.1, eps=0.0, initial_accumulator_value=0.01)),
    "RMSProp": (lambda p: co.RMSProp(p, lr=0.01, alpha=0.9, eps=0.0),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0)),
    "Adam": (lambda p: co.Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
}
for name, (ours, theirs) in pairs.items():
    diff = (train_params(ours) - train_params(theirs)).abs().max().item()
    print(f"{name:>9}: largest difference from torch.optim after 100 steps = {diff:.1e}")

# %% [markdown]
# ## 7. Learning-rate schedules
#
# The theory asks for $\eta_t \to 0$; practice uses a handful of shapes
# (`course_lib.optim.lr_schedules`, each a function $t \mapsto \eta_t$;
# `to_torch_scheduler` turns one into a torch scheduler):
#
# * step: $\eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}$;
# * exponential: $\eta_t = \eta_0\, \gamma^t$;
# * $1/t$: $\eta_t = \eta_0 / (1 + \lambda t)$;
# * cosine: $\eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})\bigl(1 + \cos(\pi t / T)\bigr)$.

# %%
T_SCHED = 100
schedules = {
    "step (s = 30, γ = 0.3)": co.lr_schedules.step(0.1, step_size=30, gamma=0.3),
    "exponential (γ = 0.97)": co.lr_schedules.exponential(0.1, gamma=0.97),
    "1/t (λ = 0.1)": co.lr_schedules.inverse_time(0.1, decay=0.1),
    "cosine (T = 100)": co.lr_schedules.cosine(0.1, total_steps=T_SCHED),
}
fig, ax = subplots(figsize=(7, 4))
for name, sched in schedules.items():
    ax.plot([sched(t) for t in range(T_SCHED + 1)], label=name)
ax.set_xlabel("step t")
ax.set_ylabel("η_t")
ax.legend()
ax.set_title("learning-rate schedules, η₀ = 0.1")
show(fig, 'The learning-rate schedules of §6 over the training steps.')

# %% [markdown]
# ## 8. The same MLP on MNIST with each optimiser
#
# A two-hidden-layer MLP (784-256-128-10, ReLU) trained with each optimiser from the same
# initial weights, on the same mini-batches of 128 images, with step sizes in the usual range
# for each method. We record the training loss of every mini-batch and the test accuracy after
# every epoch.

# %%
X_train_u8, y_train_np = load_mnist("train")
X_test_u8, y_test_np = load_mnist("test")
MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics after scaling to [0, 1]


def to_tensor(images):
    return (torch.from_numpy(images).float().div(255).sub(MEAN).div(STD)).reshape(len(images), -1)


X_train, y_train = to_tensor(X_train_u8[:MNIST_TRAIN]), torch.from_numpy(y_train_np[:MNIST_TRAIN])
X_test, y_test = to_tensor(X_test_u8[:MNIST_TEST]), torch.from_numpy(y_test_np[:MNIST_TEST])
print(f"train {tuple(X_train.shape)}, test {tuple(X_test.shape)}")

MNIST_CFG = {
    "SGD": dict(lr=0.1),
    "Momentum": dict(lr=0.01, momentum=0.9),
    "Nesterov": dict(lr=0.01, momentum=0.9),
    "Adagrad": dict(lr=0.01),
    "RMSProp": dict(lr=1e-3, alpha=0.99),
    "Adam": dict(lr=1e-3),
}


def make_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def train_mnist(name):
    """Per-batch training losses, test accuracy after each epoch and seconds for one optimiser."""
    model = make_mlp()
    opt = co.OPTIMIZERS[name](model.parameters(), **MNIST_CFG[name])
    # seed=1: the same shuffled batches for every optimiser
    history = fit(model, nn.functional.cross_entropy, opt, X_train, y_train, epochs=MNIST_EPOCHS, batch_size=BATCH,
                  X_val=X_test, y_val=y_test, metric=accuracy, seed=1, progress=False)
    return np.array(history.batch_loss), history.val_metric, history.seconds


results = {name: train_mnist(name) for name in tqdm(MNIST_CFG, desc="optimisers")}

# %%
def smooth(x, k=50):
    k = max(1, min(k, len(x) // 5))
    return np.convolve(x, np.ones(k) / k, mode="valid")


fig, axes = subplots(1, 2, figsize=(13, 4.2))
for name, (losses, test_acc, _) in results.items():
    axes[0].semilogy(smooth(losses), label=name, color=COLORS[name])
    if MNIST_EPOCHS > 1:
        axes[1].plot(range(1, len(test_acc) + 1), [100 * a for a in test_acc], "o-", label=name, color=COLORS[name])
if MNIST_EPOCHS == 1:  # one epoch (smoke mode): a curve would be a single point, so compare the final accuracies
    names = list(results)
    axes[1].bar(names, [100 * results[n][1][-1] for n in names], color=[COLORS[n] for n in names])
    axes[1].set_xlabel("optimiser (1 epoch)")
    axes[1].tick_params(axis="x", labelrotation=30)
else:
    axes[1].set_xlabel("epoch")
    axes[1].legend()
axes[0].set_xlabel("mini-batch")
axes[0].set_ylabel("training loss (moving average)")
axes[1].set_ylabel("test accuracy, %")
axes[0].legend()
fig.suptitle("784-256-128-10 MLP on MNIST")
show(fig, 'Training loss and test accuracy of the 784-256-128-10 MLP on MNIST for each optimiser.')
for name, (losses, test_acc, seconds) in results.items():
    print(f"{name:>9} {str(MNIST_CFG[name]):<32} final training loss {losses[-50:].mean():.4f}, "
          f"test accuracy {100 * test_acc[-1]:.2f} %, {seconds:.1f} s")
claim(all(test_acc[-1] > 0.9 for _, test_acc, _ in results.values()),
      "all six optimisers train this network to more than 90 % test accuracy")

# %% [markdown]
# All six methods train this small network (the claim above); the differences are in speed at a given step size.
# Momentum and Nesterov with $\eta = 0.01, \alpha = 0.9$ move about as far per step as SGD with
# $\eta = 0.1$ (the effective step is $\eta / (1-\alpha)$), and Adam/RMSProp are fast from the first
# batches with their default $\eta = 10^{-3}$. `benchmarks/optimizers.py` repeats this comparison
# at full size and records the table.
#
# ## Summary
#
# - SGD is an unbiased, noisy estimate of gradient descent; mini-batches and a decaying step tame
#   the noise.
# - Momentum averages steps to cross elongated valleys; Nesterov evaluates the gradient after the
#   momentum step.
# - Adagrad, RMSProp and Adam scale each coordinate by the history of its squared gradients; Adam
#   adds momentum and bias correction and is the usual default.
#
# ## Where to go next
#
# - **Assignment:** [`assignments/04-optimization-regularization/`](../../assignments/04-optimization-regularization/04-optimization-regularization.ipynb)
#   (shared with lecture 05) asks you to implement the update rules.
# - **Library:** `course_lib.optim` (update rules and `torch.optim.Optimizer` classes) and
#   `course_lib.training` (the `fit`/`evaluate` loop used above); see the API reference.
# - **Benchmark:** `benchmarks/optimizers.py` repeats the MNIST comparison at full size.
