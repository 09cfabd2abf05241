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
# # Lecture 05 · Regularisation, batch normalisation, initialisation, augmentation
#
# A network with millions of weights can memorise its training set. This lecture collects the
# tools that make it generalise and train reliably.
#
# **Learning goals**
# 1. **regularisation**: fewer parameters, penalties, and **dropout** - inverted and classic,
#    its behaviour in training and at test time, and its interpretation as an ensemble;
# 2. **batch normalisation**: the formulas, the backward pass, and the larger learning rates it
#    allows;
# 3. **weight initialisation**: why zeros fail (all neurons stay identical) and how the scale of
#    the weights makes signals vanish or explode, fixed by **Xavier** and **He** initialisation;
# 4. **data augmentation** (shift, rotate, blur, stretch, glare) as torch operations, and
#    **test-time augmentation**.
#
# Everything numerical comes from `course_lib.regularization` (dropout, batch norm with a
# hand-written backward pass, initialisers, augmentations), tested against PyTorch.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn
from tqdm.auto import tqdm

from course_lib import optim as co
from course_lib import regularization as R
from course_lib.data import load_mnist, load_olivetti_faces
from course_lib.notebook import claim, md, setup_notebook, show, subplots
from course_lib.training import accuracy

SMOKE = setup_notebook(SMOKE, seed=0)
DROP_TRAIN = 512 if SMOKE else 5000  # a small training set, so that overfitting shows
DROP_EPOCHS = 2 if SMOKE else 20
MC_SAMPLES = [1, 2, 5] if SMOKE else [1, 2, 5, 10, 20, 50]
BN_TRAIN = 1024 if SMOKE else 60000
BN_EPOCHS = 1 if SMOKE else 2
BN_LRS = [0.03, 0.3, 3.0] if SMOKE else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
INIT_STEPS = 20 if SMOKE else 300
AUG_TRAIN = 256 if SMOKE else 5000
AUG_EPOCHS = 1 if SMOKE else 8
TEST_SIZE = 500 if SMOKE else 10000
print(f"smoke mode: {SMOKE}")

X_train_u8, y_train_np = load_mnist("train")
X_test_u8, y_test_np = load_mnist("test")
MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics after scaling to [0, 1]


def flat(images):
    """uint8 (N, 28, 28) -> standardised float (N, 784)."""
    return torch.from_numpy(images).float().div(255).sub(MEAN).div(STD).reshape(len(images), -1)


y_test = torch.from_numpy(y_test_np[:TEST_SIZE])
X_test_flat = flat(X_test_u8[:TEST_SIZE])


def train(model, opt, X, y, epochs, batch=128, seed=1, augment=None, desc="training"):
    """Plain mini-batch training with cross-entropy; returns the per-batch losses (progress bar per batch)."""
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    bar = tqdm(total=epochs * -(-len(X) // batch), desc=desc, leave=False)
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch):
            bar.update(1)
            idx = order[i : i + batch]
            xb = X[idx] if augment is None else augment(X[idx])
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    return np.array(losses)


# %% [markdown]
# ## 1. Regularisation and dropout
#
# Ways to regularise a network:
# * **fewer parameters** - reduce the input (PCA) or share weights (convolutions);
# * a **penalty** on the weights added to the loss, e.g. $Q(w) + \lambda \lVert w \rVert^2$;
# * **dropout**: during training, drop random neurons and optimise as if they did not exist.
#
# Dropout is a layer. With a mask $m$ of independent Bernoulli variables, each 1 with the
# **keep probability** $q$ (the lecture calls it $p$):
#
# * **inverted dropout** (what frameworks implement): $d(x) = \frac{1}{q}\, m \odot x$ in
#   training, $d(x) = x$ at test time;
# * **classic dropout**: $d(x) = m \odot x$ in training, $d(x) = q\,x$ at test time.
#
# Both make the test-time output equal to the *expected* training output:
# $\mathbb{E}[\tfrac1q m \odot x] = x$ and $\mathbb{E}[m \odot x] = q\,x$. Inverted dropout moves
# the rescaling into training, so the trained network needs nothing special at test time.
#
# **Naming trap.** `torch.nn.Dropout(p)` and `course_lib.regularization.dropout(x, p, training)`
# take $p$ = the probability of **dropping** a unit, i.e. $p = 1 - q$.

# %%
torch.manual_seed(0)
x = torch.linspace(0.5, 2.0, 8)
print("x                     ", np.round(x.numpy(), 2))
print("inverted, training    ", np.round(R.dropout(x, 0.5, training=True).numpy(), 2))
print("inverted, test time   ", np.round(R.dropout(x, 0.5, training=False).numpy(), 2))
print("classic,  training    ", np.round(R.dropout(x, 0.5, training=True, inverted=False).numpy(), 2))
print("classic,  test time   ", np.round(R.dropout(x, 0.5, training=False, inverted=False).numpy(), 2))
draws = torch.stack([R.dropout(x, 0.5, training=True) for _ in range(20000)])
print("inverted: mean of 20000 training outputs", np.round(draws.mean(0).numpy(), 2), "(≈ x)")

# %% [markdown]
# ### Dropout against overfitting
#
# A wide MLP (784-512-512-10) trained with Adam on only `DROP_TRAIN` MNIST digits (5000 in full
# mode) can memorise them: its training loss goes to almost zero while the test loss stops
# improving. Below, the same network is trained with and without inverted dropout ($p = 0.5$ after
# each hidden layer, `course_lib.regularization.Dropout`), and the cell after the training states
# what the run measured. Dropout is no cure-all: trained long enough, this network overfits with
# dropout too.

# %%
X_small, y_small = flat(X_train_u8[:DROP_TRAIN]), torch.from_numpy(y_train_np[:DROP_TRAIN])


def wide_mlp(p_drop):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), R.Dropout(p_drop),
        nn.Linear(512, 512), nn.ReLU(), R.Dropout(p_drop),
        nn.Linear(512, 10),
    )


drop_models, drop_results = {}, {}
for p_drop in [0.0, 0.5]:
    model = wide_mlp(p_drop)
    start = time.perf_counter()
    train(model, co.Adam(model.parameters(), lr=1e-3), X_small, y_small, DROP_EPOCHS, desc=f"dropout p = {p_drop}")
    with torch.no_grad():
        train_out, test_out = model(X_small), model(X_test_flat)
    drop_models[p_drop] = model
    drop_results[p_drop] = {"train_loss": nn.functional.cross_entropy(train_out, y_small).item(),
                            "test_loss": nn.functional.cross_entropy(test_out, y_test).item(),
                            "test_acc": accuracy(test_out, y_test)}
    print(f"p = {p_drop}: training loss {nn.functional.cross_entropy(train_out, y_small):.4f}, "
          f"accuracy {100 * accuracy(train_out, y_small):.2f} %; "
          f"test loss {nn.functional.cross_entropy(test_out, y_test):.4f}, accuracy {100 * accuracy(test_out, y_test):.2f} % "
          f"({time.perf_counter() - start:.1f} s)")

# %%
no_drop, with_drop = drop_results[0.0], drop_results[0.5]
claim(with_drop["train_loss"] > no_drop["train_loss"], "dropout fits the training set more slowly (higher training loss)")
claim(with_drop["test_loss"] < no_drop["test_loss"] and with_drop["test_acc"] > no_drop["test_acc"],
      "dropout generalises better: lower test loss and higher test accuracy")
md(f"In this run dropout changed the training loss from {no_drop['train_loss']:.4f} to {with_drop['train_loss']:.4f}, "
   f"the test loss from {no_drop['test_loss']:.4f} to {with_drop['test_loss']:.4f} and the test accuracy from "
   f"{100 * no_drop['test_acc']:.2f} % to {100 * with_drop['test_acc']:.2f} % "
   f"({DROP_EPOCHS} epochs on {DROP_TRAIN} digits).")

# %% [markdown]
# ### The ensemble view
#
# Each training step trains a different random **sub-network** (the one that survives the mask),
# and all of them share weights; there are $2^{n}$ of them for $n$ droppable units. Using the
# network at test time is then like using an **ensemble** of these sub-networks. Two ways to
# compute the ensemble's answer:
#
# * **Monte-Carlo averaging**: keep dropout on, run $K$ random sub-networks and average their
#   predicted probabilities;
# * **weight scaling**: switch dropout off (inverted dropout: use $x$; classic: use $q\,x$) and run
#   the network once. For one layer this is exactly the ensemble's *mean* pre-activation; through
#   nonlinearities it is an approximation, and it costs a single pass.
#
# Below: test accuracy of the dropout network as a function of $K$, against the single
# deterministic pass.

# %%
model = drop_models[0.5]
mc_acc = []
with torch.no_grad():
    det_acc = accuracy(model(X_test_flat), y_test)
    model.train()  # dropout on: every call is a new random sub-network
    torch.manual_seed(1)
    probs, done = 0, 0
    for K in MC_SAMPLES:
        while done < K:
            probs = probs + torch.softmax(model(X_test_flat), dim=1)
            done += 1
        mc_acc.append((probs.argmax(1) == y_test).double().mean().item())
    model.eval()

fig, ax = subplots(figsize=(7, 4))
ax.semilogx(MC_SAMPLES, [100 * a for a in mc_acc], "o-", label="average of K random sub-networks")
ax.axhline(100 * det_acc, color="k", ls="--", label="dropout off (weight scaling), one pass")
ax.set_xlabel("K sub-networks")
ax.set_ylabel("test accuracy, %")
ax.legend()
ax.set_title("dropout as an ensemble")
show(fig, 'Test accuracy of one random sub-network, of averages over growing numbers of sub-networks, and of the deterministic (rescaled) pass.')
for K, a in zip(MC_SAMPLES, mc_acc):
    print(f"K = {K:>2}: test accuracy {100 * a:.2f} %")
print(f"one pass with dropout off: {100 * det_acc:.2f} %")

# %%
claim(mc_acc[-1] > mc_acc[0], f"the average of {MC_SAMPLES[-1]} sub-networks beats a single random sub-network")
claim(mc_acc[-1] > det_acc - 0.01, "averaging many sub-networks comes within a point of the deterministic pass")

# %% [markdown]
# A single random sub-network is a noisy member of the ensemble; averaging more of them
# approaches the deterministic pass, which gets (approximately) the ensemble's answer at the cost
# of one forward pass. The claims above say whether this run shows it.

# %% [markdown]
# ## 2. Batch normalisation
#
# *Covariate shift*: test objects are distributed differently from training ones (domain
# adaptation reweights training objects, $\sum_i s_i\,(a(x_i) - y_i)^2 \to \min$, giving more
# weight to those that resemble the test set). *Internal covariate shift*: when the first layers
# change, the inputs of later layers shift and they have to re-adapt. Batch normalisation
# standardises every component of a layer's input over the mini-batch $B$ of size $n$:
#
# $$\begin{gathered}\mu_B = \frac1n \sum_{j=1}^n x_{B,j},\qquad \sigma_B^2 = \frac1n \sum_{j=1}^n (x_{B,j} - \mu_B)^2,\\
# \tilde x_{B,j} = \frac{x_{B,j} - \mu_B}{\sqrt{\sigma_B^2 + \varepsilon}},\qquad z_{B,j} = \gamma\,\tilde x_{B,j} + \beta ,\end{gathered}$$
#
# with learned $\gamma$ and $\beta$ (so the layer can undo the normalisation if that helps). It
# usually sits **between the linear layer and the nonlinearity**, and it **allows larger steps**
# in gradient descent. (Whether it really removes internal covariate shift is disputed.)
#
# At test time there is no batch: the layer uses running averages of $\mu_B$ and $\sigma_B^2$
# collected in training, $\hat\mu \leftarrow (1-m)\,\hat\mu + m\,\mu_B$ with momentum $m = 0.1$
# (PyTorch averages the *unbiased* variance $\frac{n}{n-1}\sigma_B^2$).
#
# The backward pass has to account for $\mu_B$ and $\sigma_B$ depending on every $x_j$; with
# $g = \gamma \odot \partial L / \partial z$ it simplifies to
#
# $$\begin{gathered}\frac{\partial L}{\partial x_j} = \frac{1}{n\sqrt{\sigma_B^2 + \varepsilon}}\Bigl(n\, g_j - \sum_k g_k - \tilde x_j \sum_k g_k \tilde x_k\Bigr),\\
# \qquad \frac{\partial L}{\partial \gamma} = \sum_j \frac{\partial L}{\partial z_j}\tilde x_j,\qquad
# \frac{\partial L}{\partial \beta} = \sum_j \frac{\partial L}{\partial z_j}.\end{gathered}$$
#
# `course_lib.regularization.batchnorm_forward` / `batchnorm_backward` implement these; a check
# against PyTorch on a skewed batch:

# %%
torch.manual_seed(0)
xb = (torch.randn(64, 5, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1, 2.0, 10.0]) + 3.0).requires_grad_()
gamma = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
beta = torch.zeros(5, dtype=torch.float64, requires_grad=True)
running_mean, running_var = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
out, cache = R.batchnorm_forward(xb.detach(), gamma.detach(), beta.detach(), running_mean, running_var, training=True)
print("per-feature mean before:", np.round(xb.detach().mean(0).numpy(), 2), " std:", np.round(xb.detach().std(0).numpy(), 2))
x_hat = cache["x_hat"]
print("per-feature mean of x̃:  ", np.round(x_hat.mean(0).numpy(), 6), " std:",
      np.round(x_hat.std(0, correction=0).numpy(), 4))
print("running mean after one step:", np.round(running_mean.numpy(), 3))

ref = nn.functional.batch_norm(xb, torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64),
                               gamma, beta, training=True)
dout = torch.randn(64, 5, dtype=torch.float64)
dx, dgamma, dbeta = R.batchnorm_backward(dout, cache)
ref_dx, ref_dgamma, ref_dbeta = torch.autograd.grad(ref, (xb, gamma, beta), dout)
print(f"forward: max |ours - torch| = {(out - ref).abs().max():.1e}")
print(f"backward: max |dx - autograd| = {(dx - ref_dx).abs().max():.1e}, dgamma {(dgamma - ref_dgamma).abs().max():.1e}, "
      f"dbeta {(dbeta - ref_dbeta).abs().max():.1e}")

# %% [markdown]
# ### Batch norm and the usable learning rate
#
# The same ReLU MLP (784-256-256-256-10, PyTorch's default initialisation) trained with plain SGD
# for the same number of steps, with and without `course_lib.regularization.BatchNorm` (the module
# whose backward pass is `batchnorm_backward`) after each hidden linear layer, across learning rates.

# %%
X_bn, y_bn = flat(X_train_u8[:BN_TRAIN]), torch.from_numpy(y_train_np[:BN_TRAIN])


def deep_mlp(bn):
    torch.manual_seed(0)
    layers, d = [], 784
    for h in (256, 256, 256):
        layers += [nn.Linear(d, h)] + ([R.BatchNorm(h)] if bn else []) + [nn.ReLU()]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, 10))


bn_results = {}
for bn in (False, True):
    for lr in BN_LRS:
        model = deep_mlp(bn)
        losses = train(model, co.SGD(model.parameters(), lr=lr), X_bn, y_bn, BN_EPOCHS,
                       desc=f"{'with' if bn else 'without'} BN, η = {lr:g}")
        with torch.no_grad():
            acc = accuracy(model(X_test_flat), y_test)
        bn_results[bn, lr] = (float(np.mean(losses[-20:])), acc)

fig, ax = subplots(figsize=(7, 4))
for bn in (False, True):
    ax.semilogx(BN_LRS, [100 * bn_results[bn, lr][1] for lr in BN_LRS], "o-", label="with BN" if bn else "without BN")
ax.set_xlabel("learning rate η (SGD)")
ax.set_ylabel("test accuracy, %")
ax.set_title(f"same MLP, {BN_EPOCHS} epoch(s) of SGD on {BN_TRAIN} images")
ax.legend()
show(fig, "Test accuracy after training against the learning rate, with and without batch norm.")


def diverged(loss, acc):
    """A run diverged when its loss is not finite or huge, or its accuracy is near chance (10 %)."""
    return not np.isfinite(loss) or loss > 100 or acc < 0.15


def bn_cell(bn, lr):
    loss, acc = bn_results[bn, lr]
    return f"diverged (loss {loss:.1e}), {100 * acc:.1f} %" if diverged(loss, acc) else f"{loss:.3f}, {100 * acc:.2f} %"


usable = {bn: [lr for lr in BN_LRS if not diverged(*bn_results[bn, lr])] for bn in (False, True)}
rows = [f"| {lr:g} | {bn_cell(False, lr)} | {bn_cell(True, lr)} |" for lr in BN_LRS]
md("| learning rate η | without BN: final loss, test accuracy | with BN: final loss, test accuracy |\n"
   "| --- | --- | --- |\n" + "\n".join(rows))

# %%
claim(len(usable[True]) > len(usable[False]), "batch norm trains at more of these learning rates than plain SGD")
claim(any(lr not in usable[False] for lr in BN_LRS), "without batch norm the largest steps diverge")
md(f"Learning rates that train without diverging: **{', '.join(f'{lr:g}' for lr in usable[False]) or 'none'}** "
   f"without batch norm, **{', '.join(f'{lr:g}' for lr in usable[True]) or 'none'}** with it.")

# %% [markdown]
# Without batch norm there is a window of good step sizes: too small and training is slow, too
# large and the loss blows up and the accuracy drops to chance (the table marks such runs
# *diverged*). With batch norm every layer's input is re-standardised, the scale of the weights
# no longer changes the scale of the signal, and the window widens; the claims above check it on
# this run. (`benchmarks/optimizers.py` records this table at full size.)

# %% [markdown]
# ## 3. Weight initialisation
#
# **Zeros are a bad start.** If all weights of a layer are equal, all its neurons compute the
# same function and receive the same gradient, so they stay identical forever: the layer acts
# like a single neuron. With exact zeros it is worse still: hidden activations are 0 (for tanh
# or ReLU), and so are the gradients of every weight but the last layer's bias.
#
# **The scale matters.** For $z = \sum_{i=1}^{n} w_i x_i$ with independent zero-mean $w_i$ and
# $x_i$, $\operatorname{Var} z = n \operatorname{Var} w \operatorname{Var} x$. If
# $n\operatorname{Var} w < 1$ the signal shrinks geometrically with depth (vanishes), if $> 1$ it
# grows (explodes); the same holds for the gradients going back. Hence:
#
# * **Xavier (Glorot)**: $\operatorname{Var} w = \frac{2}{n_\text{in} + n_\text{out}}$, e.g.
#   $w \sim U\bigl[-\sqrt{6/(n_\text{in}+n_\text{out})},\ \sqrt{6/(n_\text{in}+n_\text{out})}\bigr]$ -
#   a compromise between the forward ($n_\text{in}$) and the backward ($n_\text{out}$) condition,
#   for tanh-like activations;
# * **He (Kaiming)**: $w_j \sim \sqrt{2/n}\; \mathcal N(0, 1)$, i.e. $\operatorname{Var} w = 2/n_\text{in}$:
#   ReLU zeroes half of its inputs and halves the second moment, and the factor 2 restores it.
#   (The lecture notes write $\frac{2}{\sqrt n}$; the standard deviation is $\sqrt{2/n}$.)
#
# We push 1000 standardised MNIST images (200 in smoke mode) through a 10-layer MLP of width 256, with tanh and with
# ReLU, under four initialisations (biases 0), and look at the activations of every layer.

# %%
N_PROBE = 200 if SMOKE else 1000
X_probe = flat(X_train_u8[:N_PROBE])
DEPTH, WIDTH = 10, 256
INITS = {
    "zeros": lambda w: nn.init.zeros_(w),
    "too small N(0, 0.01²)": lambda w: nn.init.normal_(w, 0.0, 0.01),
    "Xavier uniform": R.xavier_uniform_,
    "He normal": R.he_normal_,
}


def deep_net(init, act):
    torch.manual_seed(0)
    layers, d = [], 784
    for _ in range(DEPTH):
        lin = nn.Linear(d, WIDTH)
        init(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, act()]
        d = WIDTH
    out = nn.Linear(d, 10)
    init(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


def activation_stats(init, act):
    """Activations after each nonlinearity, and the gradient std at each linear layer's output."""
    net = deep_net(init, act)
    acts, outs = [], []
    h = X_probe
    for layer in net[:-1]:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            h.retain_grad()
            outs.append(h)
        else:
            acts.append(h)
    loss = nn.functional.cross_entropy(net[-1](h), torch.from_numpy(y_train_np[:N_PROBE]))
    loss.backward()
    return [a.detach() for a in acts], [o.grad.std().item() for o in outs]


stats = {(act.__name__, name): activation_stats(init, act) for act in (nn.Tanh, nn.ReLU) for name, init in INITS.items()}

for act in ("Tanh", "ReLU"):  # one figure per nonlinearity, 2x2, so that the labels stay readable on a page
    fig, axes = subplots(2, 2, figsize=(10, 8.5), sharey=True)
    for col, (ax, name) in enumerate(zip(axes.flat, INITS)):
        acts, _ = stats[act, name]
        top = 1.0 if act == "Tanh" else max(max(a.max().item() for a in acts), 1e-12)
        edges = np.linspace(-1.0 if act == "Tanh" else 0.0, top, 41)
        for layer, a in enumerate(acts):  # one histogram per layer, stacked upwards
            counts, _ = np.histogram(a.flatten().numpy().clip(edges[0], edges[-1]), bins=edges)
            height = 0.9 * counts / max(counts.max(), 1)
            ax.stairs(layer + height, edges, baseline=layer, fill=True, color=f"C{col}", alpha=0.75)
            ax.text(edges[-1], layer + 0.45, f"std {a.std():.0e}", ha="right", fontsize=10)
        ax.set_title(f"{act}, {name}")
        ax.set_yticks(np.arange(DEPTH) + 0.4, [str(i + 1) for i in range(DEPTH)])
        ax.grid(False)
        ax.set_xlabel("activation" + (" (0 to max)" if act == "ReLU" else ""))
        if col % 2 == 0:
            ax.set_ylabel("layer")
    show(fig, f"{act} network: histograms of each layer's activations for every initialisation "
              "(each histogram scaled to its own peak).")

fig, axes = subplots(1, 2, figsize=(13, 4.2))
for act, ax in zip(("Tanh", "ReLU"), axes):
    for r, name in enumerate(INITS):
        acts, grad_std = stats[act, name]
        ax.semilogy(range(1, DEPTH + 1), [max(a.std().item(), 1e-30) for a in acts], "o-", color=f"C{r}", label=f"{name}: activations")
        ax.semilogy(range(1, DEPTH + 1), [max(g, 1e-30) for g in grad_std], "x--", color=f"C{r}", alpha=0.7)
    ax.set_xlabel("layer")
    ax.set_ylabel("standard deviation")
    ax.set_title(f"{act}: activations (o), gradients (x)")
    ax.set_ylim(1e-30, 1e2)
axes[0].legend(fontsize=8, loc="lower left")
show(fig, 'Standard deviation of the activations (o) and of the gradients (x) per layer, for each initialisation.')
for act in ("Tanh", "ReLU"):
    for name in INITS:
        acts, grad_std = stats[act, name]
        print(f"{act:>4}, {name:<22}: activation std layer 1 -> 10: {acts[0].std():.2e} -> {acts[-1].std():.2e}; "
              f"gradient std at layer 1: {grad_std[0]:.2e}")


def std_ratio(act, name):
    acts, _ = stats[act, name]
    return acts[-1].std().item() / max(acts[0].std().item(), 1e-30)


claim(all(stats[act, "zeros"][0][-1].abs().max() == 0 for act in ("Tanh", "ReLU")),
      "with zero weights every activation is exactly 0")
claim(all(std_ratio(act, "too small N(0, 0.01²)") < 1e-3 for act in ("Tanh", "ReLU")),
      "with N(0, 0.01²) weights the signal vanishes over 10 layers (std falls by more than 1000×)")
claim(0.3 < std_ratio("Tanh", "Xavier uniform") < 3, "Xavier keeps the tanh activations at a steady spread")
claim(std_ratio("ReLU", "Xavier uniform") < 0.2, "Xavier loses a large factor over 10 ReLU layers")
claim(0.3 < std_ratio("ReLU", "He normal") < 3, "He keeps the ReLU signal at a constant scale")

# %% [markdown]
# * **zeros**: every activation is exactly 0 and so is every gradient below the output layer -
#   nothing but the last bias can learn.
# * **too small**: each layer multiplies the signal by about $\sqrt{n}\cdot 0.01 = 0.16$: after 10
#   layers it has vanished, and so have the gradients.
# * **Xavier** keeps tanh activations at a steady spread; for ReLU it loses a factor $\sqrt 2$ per
#   layer (ReLU halves the second moment), about $2^{-5} = 1/32$ over 10 layers.
# * **He** keeps the ReLU signal at a constant scale; with tanh the pre-activations have variance
#   about 2, so tanh starts to saturate (mass piles up near $\pm 1$).
#
# ### Symmetric neurons
#
# Train a one-hidden-layer tanh network (64-32-10) on scikit-learn's 8×8 digits from equal
# initial weights: every hidden neuron receives the same gradient and they stay identical.

# %%
digits = load_digits()
Xd = torch.tensor(digits.data / 16.0, dtype=torch.float32)
yd = torch.tensor(digits.target)


def symmetric_run(kind):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    for lin in (net[0], net[2]):
        if kind == "Xavier":
            R.xavier_uniform_(lin.weight)
        else:
            nn.init.constant_(lin.weight, 0.0 if kind == "zeros" else 0.05)
        nn.init.zeros_(lin.bias)
    opt = co.SGD(net.parameters(), lr=0.5)
    for _ in range(INIT_STEPS):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xd), yd).backward()
        opt.step()
    W1 = net[0].weight.detach()
    distinct = len(torch.unique(W1.round(decimals=5), dim=0))
    with torch.no_grad():
        acc = accuracy(net(Xd), yd)
    return distinct, W1.abs().max().item(), acc


symmetric = {}
for kind in ("zeros", "constant 0.05", "Xavier"):
    distinct, w_max, acc = symmetric_run(kind)
    symmetric[kind] = (distinct, w_max, acc)
    print(f"{kind:<14}: {distinct:>2} distinct hidden neurons of 32, max |W1| = {w_max:.3f}, "
          f"training accuracy {100 * acc:.1f} % after {INIT_STEPS} full-batch steps")
claim(symmetric["zeros"][1] == 0, "with zeros the first layer never moves")
claim(symmetric["constant 0.05"][0] == 1, "with a constant the 32 hidden neurons stay one neuron copied 32 times")
claim(symmetric["Xavier"][0] == 32, "random initialisation breaks the symmetry: 32 distinct neurons")

# %% [markdown]
# With zeros the first layer never moves (max $|W_1| = 0$); with a constant the 32 hidden neurons
# remain one neuron copied 32 times, which caps what the network can learn. Random
# initialisation breaks the symmetry.

# %% [markdown]
# ## 4. Data augmentation
#
# New training images for free: transformations that do not change the label.
# `course_lib.regularization` implements them as torch operations on batches $(N, C, H, W)$:
#
# * **shift** by whole pixels (`shift`), or sub-pixel with `affine`;
# * **rotate** and **stretch**/**scale** about the centre (`rotate`, `stretch`, `scale`): an affine
#   map $p = S R q + t$ of pixel positions, sampled with bilinear interpolation
#   (`affine_grid` + `grid_sample`);
# * **blur**: convolution with a Gaussian kernel $\propto e^{-k^2/2\sigma^2}$, separable in rows and columns;
# * **glare** (a bright spot, $x + s\,\text{spot}\,(1-x)$) and **brightness** ($c\,x$).
#
# (Libraries such as `albumentations` offer dozens more.) Augmentation enlarges the training set
# and regularises the model. The grid shows each transformation on real digits and faces:

# %%
def show_grid(images, ops, title):
    fig, axes = subplots(len(images), len(ops), figsize=(1.45 * len(ops), 1.5 * len(images)))
    for c, (name, op) in enumerate(ops.items()):
        out = op(images)
        for r in range(len(images)):
            ax = axes[r, c]
            ax.imshow(out[r, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title)
    show(fig, title)


gen = torch.Generator().manual_seed(0)
AUGMENTATIONS = {
    "original": lambda x: x,
    "shift (3, -2)": lambda x: R.shift(x, 3, -2),
    "rotate 25°": lambda x: R.rotate(x, 25.0),
    "rotate -25°": lambda x: R.rotate(x, -25.0),
    "stretch 1.3 × 0.8": lambda x: R.stretch(x, 1.3, 0.8),
    "scale 0.75": lambda x: R.scale(x, 0.75),
    "blur σ = 1": lambda x: R.blur(x, 1.0),
    "glare 0.9": lambda x: R.glare(x, 0.9),
    "brightness 0.5": lambda x: R.brightness(x, 0.5),
    "random": lambda x: R.random_augment(x, gen, max_angle=20, max_shift=3, scale_range=(0.8, 1.2), max_blur=1.0),
}
digits_img = torch.from_numpy(X_train_u8[:5]).float().div(255).unsqueeze(1)
show_grid(digits_img, AUGMENTATIONS, "augmentations of MNIST digits")
faces, _ = load_olivetti_faces()
show_grid(torch.from_numpy(faces[[0, 10, 20]]).unsqueeze(1), AUGMENTATIONS, "the same augmentations on Olivetti faces")

# %% [markdown]
# ### Training with augmentation, and test-time augmentation
#
# A small CNN trained on a few thousand digits, once on the plain images and once on a fresh
# random augmentation of every batch (rotation up to 12°, shift up to 2.5 px, zoom 0.9-1.1).
# **Test-time augmentation** (TTA) then averages the predicted class probabilities over a few
# transformed copies of each test image (`tta_predict`), here the original, four one-pixel shifts
# and two small rotations.

# %%
X_aug = torch.from_numpy(X_train_u8[:AUG_TRAIN]).float().div(255).unsqueeze(1)
y_aug = torch.from_numpy(y_train_np[:AUG_TRAIN])
X_test_img = torch.from_numpy(X_test_u8[:TEST_SIZE]).float().div(255).unsqueeze(1)


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


aug_gen = torch.Generator().manual_seed(2)
TRAIN_AUGMENT = {
    "no augmentation": None,
    "random augmentation": lambda x: R.random_augment(x, aug_gen, max_angle=12, max_shift=2.5, scale_range=(0.9, 1.1)),
}
TTA = [
    lambda x: x,
    lambda x: R.shift(x, 1, 0),
    lambda x: R.shift(x, -1, 0),
    lambda x: R.shift(x, 0, 1),
    lambda x: R.shift(x, 0, -1),
    lambda x: R.rotate(x, 8.0),
    lambda x: R.rotate(x, -8.0),
]
tta_results = {}
for name, augment in TRAIN_AUGMENT.items():
    cnn = small_cnn()
    start = time.perf_counter()
    train(cnn, co.Adam(cnn.parameters(), lr=1e-3), X_aug, y_aug, AUG_EPOCHS, batch=64, augment=augment, desc=f"CNN, {name}")
    with torch.no_grad():
        plain = accuracy(cnn(X_test_img), y_test)
        tta = (R.tta_predict(cnn, X_test_img, TTA).argmax(1) == y_test).double().mean().item()
    tta_results[name] = (plain, tta)
    print(f"{name:<20}: test accuracy {100 * plain:.2f} %, with TTA ({len(TTA)} views) {100 * tta:.2f} % "
          f"({time.perf_counter() - start:.1f} s)")

fig, ax = subplots(figsize=(7, 4))
pos = np.arange(len(tta_results))
ax.bar(pos - 0.2, [100 * v[0] for v in tta_results.values()], 0.4, label="single view")
ax.bar(pos + 0.2, [100 * v[1] for v in tta_results.values()], 0.4, label=f"TTA, {len(TTA)} views")
ax.set_xticks(pos, list(tta_results))
low = min(min(v) for v in tta_results.values())
ax.set_ylim(100 * max(0.0, low - 0.02), 100)
ax.set_xlabel("training data")
ax.set_ylabel("test accuracy, %")
ax.legend()
show(fig, 'Test accuracy of the CNN trained with and without augmentation, from a single view and averaged over the test-time views.')

# %%
plain_none, tta_none = tta_results["no augmentation"]
plain_aug, tta_aug = tta_results["random augmentation"]
claim(plain_aug > plain_none, "training with augmentation raises the test accuracy of the small CNN")
claim(tta_aug > plain_aug - 0.001, "test-time augmentation does not lower the augmented CNN's accuracy")
md(f"Augmentation changed the test error from **{100 * (1 - plain_none):.2f} %** to **{100 * (1 - plain_aug):.2f} %**; "
   f"TTA changed the augmented CNN's accuracy by **{100 * (tta_aug - plain_aug):+.2f}** points "
   f"({AUG_EPOCHS} epochs on {AUG_TRAIN} digits).")

# %% [markdown]
# Augmentation acts as a regulariser: the network sees a new version of every digit at every
# epoch and cannot memorise them. TTA averages the predictions over views of the same image, an
# ensemble at test time; its effect on these centred, size-normalised digits is small (the line
# above gives it for this run). It helps more where test images vary more, and it multiplies the
# cost of inference by the number of views.
#
# ## Summary
#
# - Dropout trains an ensemble of weight-sharing sub-networks; inverted dropout rescales in
#   training, so inference is a single ordinary pass.
# - Batch norm standardises layer inputs over the mini-batch (running averages at test time) and
#   widens the range of usable learning rates.
# - Initialisation must break symmetry and keep the variance of signals and gradients constant
#   across layers: Xavier for tanh, He for ReLU.
# - Augmentations enlarge the data set for free, and averaging predictions over augmented views
#   can help at test time too.
#
# ## Where to go next
#
# - **Assignment:** [`assignments/04-optimization-regularization/`](../../assignments/04-optimization-regularization/04-optimization-regularization.ipynb)
#   (shared with lecture 04) asks you to implement dropout, batch norm and the initialisers.
# - **Library:** `course_lib.regularization` — dropout, batch norm with its hand-written backward
#   pass, the initialisers and the augmentations (see the API reference).
# - **Benchmark:** `benchmarks/optimizers.py` records the batch-norm learning-rate table at full size.
