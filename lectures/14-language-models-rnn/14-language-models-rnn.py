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
# # Lecture 14 · Recurrent networks
#
# A language model assigns a probability to a sequence of tokens. This lecture starts with the
# oldest kind, the Markov (n-gram) model estimated by counting, and moves to recurrent networks,
# which carry a state through the whole sequence instead of looking at the last few tokens.
#
# **Learning goals**
# 1. **n-gram language models**: the chain rule cut to a window, counting, add-k and
#    Kneser–Ney smoothing, perplexity, and the text they generate;
# 2. the **vanilla RNN** $h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1})$ and **backpropagation
#    through time**, written by hand in numpy and checked against PyTorch;
# 3. **vanishing gradients**: why the last state of an RNN barely depends on the first inputs, and
#    how the **LSTM** and **GRU** pass the state on without repeated matrix products;
# 4. a **character-level LSTM** that writes Shakespeare, sampled at several temperatures;
# 5. a **BiLSTM part-of-speech tagger** on UD English-EWT, against a left-to-right one.
#
# Everything numerical comes from `course_lib.sequence` (n-gram models, numpy BPTT, RNN/LSTM/GRU
# layers written from the equations and tested against `torch.nn.LSTM`/`GRU`, the models).

# %% tags=["parameters"]
SMOKE = False

# %%
import time
from collections import Counter

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib import sequence as seq
from course_lib.data import load_tiny_shakespeare, load_ud_english
from course_lib.gpu import cuda_available
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots
from course_lib.text import Vocab

SMOKE = setup_notebook(SMOKE, seed=0)
DEVICE = get_device()
NGRAM_TRAIN = 50_000 if SMOKE else 1_000_000  # characters of tiny Shakespeare used to count n-grams
NGRAM_ORDERS = [1, 2, 3] if SMOKE else [1, 2, 3, 4, 5, 6, 7]
GRAD_T = 20 if SMOKE else 60  # sequence length of the vanishing-gradient experiment
CHAR_CFG = ({"embed": 16, "hidden": 32, "layers": 1, "steps": 30, "batch": 16, "seq": 48} if SMOKE else
            {"embed": 48, "hidden": 256, "layers": 1, "steps": 800, "batch": 32, "seq": 64})
TAG_TRAIN = 300 if SMOKE else 12_544  # training sentences of UD English-EWT
TAG_TEST = 200 if SMOKE else 2_077
TAG_EPOCHS = 1 if SMOKE else 3
TAG_DIMS = ({"embed_dim": 24, "hidden_size": 24, "char_embed_dim": 8, "char_hidden_size": 8} if SMOKE else
            {"embed_dim": 64, "hidden_size": 96, "char_embed_dim": 16, "char_hidden_size": 24})
# torch takes its thread count from OMP_NUM_THREADS, which `make course` sets to NB_THREADS (1 by default):
# these small models gain little from a second thread, and with 2 beside any other busy process on a 2-core
# machine each step ran many times slower (lecture 17's biLM: 21 min per epoch instead of 73 s)
print(f"smoke mode: {SMOKE}; device: {DEVICE}")

text = load_tiny_shakespeare()
split = int(0.9 * len(text))
train_text, val_text = text[:split], text[split:]
print(f"tiny Shakespeare: {len(text):,} characters, {len(set(text))} distinct; "
      f"{len(train_text):,} for training, {len(val_text):,} for validation")

# %% [markdown]
# ## 1. Markov (n-gram) language models
#
# By the chain rule, $p(w_1 \dots w_n) = p(w_1)\, p(w_2 \mid w_1) \cdots p(w_n \mid w_1 \dots w_{n-1})$.
# A **Markov model of order $k$** keeps only the last $k$ tokens of the history,
#
# $$p(w_1 \dots w_n) \approx \prod_i p(w_i \mid w_{i-k} \dots w_{i-1}),$$
#
# and estimates each factor by counting: $\hat p(w \mid h) = c(h\,w) / c(h)$. Most long contexts
# are never seen in training, so the counts must be **smoothed**:
#
# * **add-k** (Laplace for $k = 1$): $p(w \mid h) = \dfrac{c(h\,w) + k}{c(h) + kV}$;
# * **interpolated Kneser–Ney**: subtract a discount $D$ from every seen count and give the freed
#   mass to the lower-order model, whose counts are *continuation* counts (in how many contexts a
#   token appears, not how often):
#   $p(w \mid h) = \dfrac{\max(c(h\,w) - D, 0)}{c(h)} + \dfrac{D\, N_{1+}(h\,\bullet)}{c(h)}\, p(w \mid h')$.
#
# A model is judged by its **perplexity** on held-out text,
# $\mathrm{PP} = \exp\!\big(-\tfrac1M \sum_i \log p(w_i \mid h_i)\big)$: the number of equally
# likely choices it is, on average, hesitating between. Here the tokens are characters, so
# $\log \mathrm{PP}$ is the cross-entropy in nats per character, the unit of the char-LSTM below.

# %%
val_ngram = val_text[:10_000 if SMOKE else 100_000]
perplexity = {"add_k": [], "kneser_ney": []}
models = {}
for n in tqdm(NGRAM_ORDERS, desc="n-gram orders"):
    for smoothing in perplexity:
        lm = seq.NGramLM(n, smoothing=smoothing, k=0.1).fit(train_text[:NGRAM_TRAIN])
        perplexity[smoothing].append(lm.perplexity(val_ngram))
        models[(n, smoothing)] = lm
for n, pa, pk in zip(NGRAM_ORDERS, perplexity["add_k"], perplexity["kneser_ney"]):
    print(f"n = {n}: validation perplexity add-0.1 {pa:6.2f}, Kneser-Ney {pk:6.2f} (per character)")

fig, ax = subplots(figsize=(6.4, 4))
ax.plot(NGRAM_ORDERS, perplexity["add_k"], marker="o", label="add-k, k = 0.1")
ax.plot(NGRAM_ORDERS, perplexity["kneser_ney"], marker="o", label="interpolated Kneser–Ney")
ax.set_xlabel("order n (context of n − 1 characters)")
ax.set_ylabel("validation perplexity per character")
ax.set_yscale("log")
ax.legend()
show(fig, "Character n-gram models on tiny Shakespeare: validation perplexity against the order, for two smoothings.")

# %%
best_n = NGRAM_ORDERS[int(np.argmin(perplexity["kneser_ney"]))]
best_kn = min(perplexity["kneser_ney"])
gap_addk = perplexity["add_k"][-1] / perplexity["kneser_ney"][-1]
claim(perplexity["kneser_ney"][-1] < perplexity["add_k"][-1],
      "at the highest order Kneser-Ney has a lower validation perplexity than add-k")
claim(best_n > 1 and best_kn < perplexity["kneser_ney"][0] / 2,
      "a longer context at least halves the unigram model's perplexity")
md(f"Kneser–Ney is best at **n = {best_n}** with a perplexity of **{best_kn:.2f}** per character "
   f"({np.log(best_kn):.2f} nats/char), against **{perplexity['kneser_ney'][0]:.1f}** for the unigram model; at "
   f"n = {NGRAM_ORDERS[-1]} add-k is **{gap_addk:.1f}×** worse: it spreads mass uniformly over the unseen "
   f"continuations of long, rare contexts, while Kneser–Ney backs off to shorter contexts.")

# %% [markdown]
# Samples from the models (seed 14.2: the notes show a Markov chain writing *Game of Thrones*; here
# it writes Shakespeare). A bigram model produces plausible letter pairs, a higher order recognisable
# words and line breaks with speaker names, but no sentence holds together beyond a few characters:
# the model sees nothing older than its window. <!-- narrative: describes the samples printed below -->

# %%
rng = np.random.default_rng(0)
for n in sorted({2, 4, NGRAM_ORDERS[-1]} & set(NGRAM_ORDERS)):
    sample = "".join(models[(n, "kneser_ney")].generate("ROMEO:\n"[-(n - 1):] if n > 1 else "", 200, rng))
    print(f"--- {n}-gram Kneser-Ney sample ---\n{sample}\n")

# %% [markdown]
# ## 2. The recurrent network and backpropagation through time
#
# An RNN reads $x_1, x_2, \dots$ one at a time and keeps a state (seed 14.3):
#
# $$h_t = f(W_{xh} x_t + W_{hh} h_{t-1} + b_h), \qquad o_t = f_o(W_{ho} h_t),$$
#
# with $f = \tanh$ and $f_o$ the softmax over $N$ outputs: the vocabulary for next-token prediction,
# the tag set for POS tagging (seed 14.5). The input $x_t$ is a one-hot vector or an embedding
# (seed 14.4); the two are the same thing, since $W_{xh}$ times a one-hot vector is a column of
# $W_{xh}$, i.e. an embedding lookup (checked below). Layers stack: the states of one RNN are the
# inputs of the next (a **multilayer RNN**, seed 14.6).
#
# **Unrolling** the recurrence over $T$ steps gives a deep feed-forward network whose layers share
# $W_{xh}, W_{hh}$. **Backpropagation through time** (seed 14.8) is ordinary backpropagation on it,
# walking back from $t = T$ (row-vector convention, $a_t$ the pre-activation):
#
# $$\begin{gathered}
#   g_t = \frac{\partial L}{\partial h_t} = \frac{\partial L_t}{\partial h_t} + \delta_{t+1} W_{hh}^\top,\qquad
#   \delta_t = g_t \odot (1 - h_t^2),\\
#   \frac{\partial L}{\partial W_{hh}} = \sum_t h_{t-1}^\top \delta_t,\qquad
#   \frac{\partial L}{\partial W_{xh}} = \sum_t x_t^\top \delta_t .
# \end{gathered}$$
#
# `seq.rnn_forward` / `seq.rnn_backward` implement exactly this in numpy. The cell compares them
# with PyTorch's autograd on the same unrolled network.

# %%
rng = np.random.default_rng(1)
T, N, D, H = 7, 3, 5, 4
x = rng.standard_normal((T, N, D))
h0, Wxh, Whh, bh = (rng.standard_normal((N, H)), 0.5 * rng.standard_normal((D, H)),
                    0.5 * rng.standard_normal((H, H)), 0.1 * rng.standard_normal(H))
hs, cache = seq.rnn_forward(x, h0, Wxh, Whh, bh)
dhs = rng.standard_normal(hs.shape)  # dL/dh_t from an output layer: L = sum_t <dhs_t, h_t>
grads = seq.rnn_backward(dhs, cache)

tens = [torch.tensor(a, requires_grad=True) for a in (x, h0, Wxh, Whh, bh)]
h, outs = tens[1], []
for t in range(T):
    h = torch.tanh(tens[0][t] @ tens[2] + h @ tens[3] + tens[4])
    outs.append(h)
(torch.stack(outs) * torch.tensor(dhs)).sum().backward()
bptt_err = max(float(np.abs(grads[k] - t_.grad.numpy()).max()) for k, t_ in zip(["dx", "dh0", "dWxh", "dWhh", "dbh"], tens))
print(f"largest difference between hand-written BPTT and torch autograd: {bptt_err:.1e}")

ids = rng.integers(0, D, size=6)
onehot_err = float(np.abs(np.eye(D)[ids] @ Wxh - Wxh[ids]).max())
print(f"one-hot input times W_xh vs an embedding lookup of the same rows: largest difference {onehot_err:.1e}")
claim(bptt_err < 1e-12, "hand-written BPTT equals torch autograd to 1e-12")
claim(onehot_err == 0.0, "a one-hot input times W_xh is exactly an embedding lookup")

# %% [markdown]
# ## 3. Vanishing gradients, the LSTM and the GRU
#
# The gradient reaching $x_{T-k}$ from $h_T$ is a product of $k$ Jacobians
# $\partial h_t / \partial h_{t-1} = \mathrm{diag}(1 - h_t^2)\, W_{hh}^\top$. When their norm is
# below 1 the product shrinks geometrically: the final state barely depends on the first words, and
# a dependence between them is hard to learn (seed 14.9). (Above 1 it explodes; clipping the
# gradient norm handles that side.)
#
# The **LSTM** (Hochreiter & Schmidhuber, 1997; the forget gate of Gers et al., 2000) adds a
# **cell state** $c_t$ that is passed on by an elementwise product and a sum, with no matrix
# product (seed 14.10). The lecture notes give no LSTM equations (the set they label "LSTM" is a
# GRU, see below), so here they are, in PyTorch's convention:
#
# $$\begin{aligned}
# i_t &= \sigma(W_{ii} x_t + W_{hi} h_{t-1} + b_i) &&\text{input gate}\\
# f_t &= \sigma(W_{if} x_t + W_{hf} h_{t-1} + b_f) &&\text{forget gate}\\
# g_t &= \tanh(W_{ig} x_t + W_{hg} h_{t-1} + b_g) &&\text{candidate}\\
# o_t &= \sigma(W_{io} x_t + W_{ho} h_{t-1} + b_o) &&\text{output gate}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).
# \end{aligned}$$
#
# Along the cell, $\partial c_t / \partial c_{t-1} = \mathrm{diag}(f_t)$: the gradient survives as
# long as the forget gates stay near 1. Initialising the forget-gate bias at 1 (Gers et al., 2000;
# Jozefowicz et al., 2015) starts training in that regime.
#
# The **GRU** (Cho et al., 2014) merges the cell and the state:
# $z_t = \sigma(W_z [h_{t-1}, x_t])$, $r_t = \sigma(W_r [h_{t-1}, x_t])$,
# $\tilde h_t = \tanh(W [r_t \odot h_{t-1}, x_t])$, $h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t$.
# **Correction (seed 14.11):** the student notes give these equations under the name "LSTM" and
# write $r_{t-1}$ in $\tilde h_t$; the reset gate of the *current* step, $r_t$, is meant (Cho et
# al., 2014, eq. 5–8). PyTorch writes $h_t = (1 - z_t)\tilde h_t + z_t h_{t-1}$ (its $z$ is the
# notes' $1 - z$) and applies $r_t$ after the matrix product; `course_lib.sequence` follows PyTorch.
#
# The cell below measures $\lVert \partial h_T / \partial x_t \rVert$ for the three layers at
# initialisation (`seq.gradient_norms_through_time`), on random inputs of length $T$.

# %%
torch.manual_seed(0)
xg = torch.randn(4, GRAD_T, 8)
H_GRAD = 16 if SMOKE else 32
lstm_fb1 = seq.LSTM(8, H_GRAD)
with torch.no_grad():
    lstm_fb1.bias_hh_l0[H_GRAD:2 * H_GRAD] = 1.0  # forget-gate bias 1 (gate order i, f, g, o)
layers = {"RNN (tanh)": seq.RNN(8, H_GRAD), "GRU": seq.GRU(8, H_GRAD), "LSTM": seq.LSTM(8, H_GRAD),
          "LSTM, forget bias 1": lstm_fb1}
norms = {name: seq.gradient_norms_through_time(layer, xg).numpy() for name, layer in
         tqdm(layers.items(), desc="gradient norms")}
steps_back = np.arange(GRAD_T)[::-1]  # T - 1 - t

fig, ax = subplots(figsize=(6.4, 4))
for name, g in norms.items():
    ax.semilogy(steps_back, g, marker="o" if SMOKE else None, label=name)
ax.set_xlabel("steps back from the last input, T − t")
ax.set_ylabel("‖∂h_T / ∂x_t‖ (mean over the batch)")
ax.legend()
show(fig, f"How much the last state depends on each input, at initialisation (hidden size {H_GRAD}, T = {GRAD_T}).")

# %%
first = {name: float(g[0]) for name, g in norms.items()}
for name, v in first.items():
    print(f"{name:>20}: ‖∂h_T/∂x_1‖ = {v:.1e}, ‖∂h_T/∂x_T‖ = {norms[name][-1]:.1e}")
claim(first["LSTM"] > 10 * first["RNN (tanh)"] and first["GRU"] > 10 * first["RNN (tanh)"],
      f"{GRAD_T - 1} steps back the LSTM's and GRU's gradients are over 10x the vanilla RNN's")
claim(first["LSTM, forget bias 1"] > 100 * first["LSTM"], "a forget-gate bias of 1 keeps 100x more gradient")
md(f"At the first input the vanilla RNN keeps **{first['RNN (tanh)']:.0e}** of gradient, the LSTM "
   f"**{first['LSTM']:.0e}** and with forget bias 1 **{first['LSTM, forget bias 1']:.0e}**: all fade, but the gated "
   f"cells by orders of magnitude less, and training pushes their forget gates further towards 1.")

# %% [markdown]
# The layers above are written from the equations (`seq.LSTM`, `seq.GRU`, `seq.RNN`) with
# PyTorch's parameter names, so weights copy both ways. A last check that they compute what
# `torch.nn.LSTM` / `torch.nn.GRU` compute (the library's tests do this for gradients, several
# layers, both directions and packed batches):

# %%
torch.manual_seed(1)
xc = torch.randn(3, 9, 5, dtype=torch.float64)
layer_err = {}
for name, ours_cls, ref_cls in [("LSTM", seq.LSTM, nn.LSTM), ("GRU", seq.GRU, nn.GRU)]:
    ref = ref_cls(5, 6, num_layers=2, bidirectional=True, batch_first=True).double()
    ours = ours_cls(5, 6, num_layers=2, bidirectional=True).double()
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        layer_err[name] = float((ours(xc)[0] - ref(xc)[0]).abs().max())
    print(f"{name}: largest difference to torch.nn.{name} (2 layers, bidirectional, float64): {layer_err[name]:.1e}")
claim(max(layer_err.values()) < 1e-10, "the course LSTM and GRU equal torch.nn.LSTM / GRU to 1e-10")

# %% [markdown]
# The course LSTM's backward pass is, by default, backpropagation through time written out by
# hand (`LSTM(..., bptt="hand")`), as §2 did for the vanilla RNN in numpy: per step one
# $(N, 4H) \times (4H, H)$ product carries $\partial L / \partial h_{t-1}$ back, the gate
# derivatives are elementwise, and $\partial L / \partial W_{hh}$ over all steps is a single
# product at the end. `bptt="autograd"` instead lets autograd differentiate the loop of steps. Both
# give the same gradients (the library tests them against each other, against finite differences
# and against `torch.nn.LSTM`); the hand-written one is faster because autograd records and then
# replays about eight graph nodes per step:

# %%
def forward_backward_ms(layer, x, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out, _ = layer(x)
        out.sum().backward()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


torch.manual_seed(0)
xs = torch.randn(64, 10 if SMOKE else 100, 128, requires_grad=True)
ref_lstm = nn.LSTM(128, 256, batch_first=True)
speed = {"torch.nn.LSTM": forward_backward_ms(ref_lstm, xs)}
for bptt in ("hand", "autograd"):
    layer = seq.LSTM(128, 256, bptt=bptt)
    layer.load_state_dict(ref_lstm.state_dict())
    speed[f"course LSTM, bptt={bptt!r}"] = forward_backward_ms(layer, xs)
for name, ms in speed.items():
    print(f"{name:<28} {ms:7.1f} ms forward + backward (N=64, T={xs.shape[1]}, D=128, H=256)")
claim(speed["course LSTM, bptt='hand'"] < speed["course LSTM, bptt='autograd'"],
      "BPTT written by hand is faster than autograd through the loop of steps")

# %% [markdown]
# ## 4. A character-level LSTM writes Shakespeare
#
# `seq.CharRNN` embeds each character, runs a (multi-layer) LSTM and predicts the next character at
# every position (seed 14.7): the loss is the cross-entropy of $o_t$ against $x_{t+1}$, in nats per
# character. Training samples random windows of the text; the validation loss runs over the last
# 10 % of the text in one stream, carrying the state across chunks. Generation feeds each sampled
# character back in, drawing from $\mathrm{softmax}(o_t / \tau)$: the **temperature** $\tau$
# trades diversity ($\tau > 1$) for safety ($\tau \to 0$ is argmax decoding).
#
# On a CPU this notebook trains a small one-layer model for a few minutes. The `gpu` cell trains
# two layers of 512 (dropout 0.25, 4,000 steps of 64 × 128 characters). The course's target is
# ≤ 1.55 nats/char; `benchmarks/rnn.py` records it for two layers of 512 on a GPU, or of 256
# (3,500 steps, about 50 minutes) on one CPU core.

# %%
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
train_ids, val_ids = data[:split], data[split:]


def train_char_lm(cfg, dropout=0.0, desc="char-LSTM"):
    """Train a CharRNN on random windows; returns (model, losses per step, seconds)."""
    torch.manual_seed(0)
    model = seq.CharRNN(len(chars), cfg["embed"], cfg["hidden"], cfg["layers"], dropout=dropout,
                        backend="torch").to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["steps"])
    gen = torch.Generator().manual_seed(0)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in tqdm(range(cfg["steps"]), desc=desc):
        idx = torch.randint(0, len(train_ids) - cfg["seq"] - 1, (cfg["batch"],), generator=gen)
        batch = torch.stack([train_ids[i:i + cfg["seq"] + 1] for i in idx.tolist()]).to(DEVICE)
        logits, _ = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), np.array(losses), time.perf_counter() - start


@torch.no_grad()
def val_loss(model, n_chars):
    """Cross-entropy (nats/char) over the first n_chars of the validation text, state carried over."""
    v, total, count, state = val_ids[: n_chars + 1].to(DEVICE)[None], 0.0, 0, None
    for i in range(0, v.shape[1] - 1, 1000):
        xv, yv = v[:, i:i + 1000], v[:, i + 1:i + 1001]
        logits, state = model(xv[:, : yv.shape[1]], state)
        total += F.cross_entropy(logits[0], yv[0], reduction="sum").item()
        count += yv.shape[1]
    return total / count


VAL_CHARS = 5_000 if SMOKE else len(val_ids) - 1
char_cfg = None
if not cuda_available():  # the CPU-sized model (the gpu cell below trains the full-size one)
    char_cfg = CHAR_CFG
    char_model, char_losses, char_seconds = train_char_lm(char_cfg)

# %% tags=["gpu"]
char_cfg = {"embed": 64, "hidden": 512, "layers": 2, "steps": 4000, "batch": 64, "seq": 128}
char_model, char_losses, char_seconds = train_char_lm(char_cfg, dropout=0.25, desc="char-LSTM 2x512 (GPU)")

# %%
char_val = val_loss(char_model, VAL_CHARS)
char_params = sum(p.numel() for p in char_model.parameters())
uniform = float(np.log(len(chars)))
kn_nats = float(np.log(best_kn))
print(f"char-LSTM {char_cfg['layers']}x{char_cfg['hidden']}: {char_params / 1e6:.2f} M parameters, "
      f"{char_cfg['steps']} steps in {char_seconds:.0f} s on {DEVICE.type}; "
      f"validation loss {char_val:.3f} nats/char (uniform guess {uniform:.2f}, best n-gram {kn_nats:.2f})")

fig, ax = subplots(figsize=(6.4, 4))
window = max(1, len(char_losses) // 50)
smooth = np.convolve(char_losses, np.ones(window) / window, mode="valid")
ax.plot(np.arange(len(smooth)) + window, smooth, marker="o" if SMOKE else None, label=f"training (mean of {window} steps)")
ax.axhline(char_val, color="C1", linestyle="--", label="validation, end of training")
ax.axhline(kn_nats, color="C2", linestyle=":", label=f"best Kneser–Ney n-gram (n = {best_n})")
ax.set_xlabel("training step")
ax.set_ylabel("cross-entropy, nats per character")
ax.legend()
show(fig, "Loss of the character-level LSTM on tiny Shakespeare.")

# %%
claim(char_val < uniform - 1.0, "the char-LSTM's validation loss is over 1 nat/char below the uniform guess")
if char_cfg["hidden"] >= 512:
    claim(char_val <= 1.55, "the 2x512 char-LSTM reaches a validation loss of at most 1.55 nats/char")
md(f"The LSTM reaches **{char_val:.2f} nats/char** on the validation text after {char_cfg['steps']} steps "
   f"({char_seconds:.0f} s); the best n-gram model had {kn_nats:.2f}. The n-gram model needs its whole count table "
   f"(millions of contexts), the LSTM {char_params / 1e6:.2f} M parameters; the course's target, ≤ 1.55 "
   f"nats/char, is for the two-layer models of the `gpu` cell and of `benchmarks/rnn.py`.")

# %%
gen = torch.Generator().manual_seed(0)
prefix = [stoi[c] for c in "ROMEO:\n"]
for temperature in [0.3, 0.7, 1.0, 1.5]:
    out = char_model.sample(prefix, 200 if SMOKE else 300, temperature=temperature, generator=gen)
    print(f"--- temperature {temperature} ---\nROMEO:\n{''.join(chars[i] for i in out)}\n")

# %% [markdown]
# At low temperature the samples repeat the most frequent words and patterns ("the the", "I am");
# at $\tau = 1$ they follow the model's distribution, with speaker names, line breaks and mostly
# real words; at $\tau = 1.5$ the spelling falls apart. Karpathy's char-rnn (seed 14.6) shows the
# same model writing Shakespeare, LaTeX and Linux C after training on each. <!-- narrative: reads the samples -->
#
# ## 5. Part-of-speech tagging with a bidirectional LSTM
#
# A tagger outputs one of $N$ = 17 universal POS tags at every word (seed 14.5). A left-to-right
# RNN sees only the words before $t$; a **bidirectional** LSTM runs a second LSTM from the end and
# concatenates the two states, $[\overrightarrow{h}_t ; \overleftarrow{h}_t]$, so each tag depends
# on the whole sentence (seed 14.12). `seq.BiLSTMTagger` adds, for each word, the final states of a
# small character BiLSTM over its spelling, which gives words never seen in training a useful
# vector. Data: UD English-EWT (web text), its train and test splits.

# %%
tag_train = load_ud_english("train")[:TAG_TRAIN]
tag_test = load_ud_english("test")[:TAG_TEST]
word_vocab = Vocab.build([[w.lower() for w, _ in s] for s in tag_train], min_count=2, pad="<pad>", unk="<unk>")
char_vocab = Vocab.build([list(w) for s in tag_train for w, _ in s], min_count=1, pad="<pad>", unk="<unk>")
tag_vocab = Vocab.build([[t for _, t in s] for s in tag_train + tag_test], min_count=1)  # the 17 UPOS tags
print(f"{len(tag_train):,} training and {len(tag_test):,} test sentences; {len(word_vocab):,} words, "
      f"{len(char_vocab)} characters, {len(tag_vocab)} tags")


def tagging_batch(sents):
    """Sentences of (word, tag) -> word ids (N, T), char ids (N, T, L), tags (N, T) (-100 = pad), lengths (N,)."""
    return seq.tagging_batch(sents, word_vocab, char_vocab, tag_vocab)


def train_tagger(bidirectional, batch=32):
    torch.manual_seed(0)
    model = seq.BiLSTMTagger(len(word_vocab), len(tag_vocab), bidirectional=bidirectional,
                             dropout=0.0 if SMOKE else 0.25, char_vocab_size=len(char_vocab), backend="torch",
                             padding_idx=word_vocab.pad_id, **TAG_DIMS).to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    bar = tqdm(total=TAG_EPOCHS * -(-len(tag_train) // batch), desc="BiLSTM" if bidirectional else "left-to-right LSTM")
    for _ in range(TAG_EPOCHS):
        model.train()
        order = rng.permutation(len(tag_train))
        for b in range(0, len(order), batch):
            words, chars_, tags, lengths = tagging_batch([tag_train[i] for i in order[b:b + batch]])
            logits = model(words.to(DEVICE), lengths, chars_.to(DEVICE))
            loss = F.cross_entropy(logits.reshape(-1, len(tag_vocab)), tags.to(DEVICE).reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    model.eval()
    gold, pred = [], []
    with torch.no_grad():
        for b in range(0, len(tag_test), 256):
            words, chars_, tags, lengths = tagging_batch(tag_test[b:b + 256])
            p = model(words.to(DEVICE), lengths, chars_.to(DEVICE)).argmax(-1).cpu()
            mask = tags != -100
            gold.append(tags[mask])
            pred.append(p[mask])
    return torch.cat(gold).numpy(), torch.cat(pred).numpy(), time.perf_counter() - start


tag_results = {name: train_tagger(bi) for name, bi in [("BiLSTM", True), ("left-to-right LSTM", False)]}
tag_acc = {name: 100 * float((g == p).mean()) for name, (g, p, _) in tag_results.items()}
for name, (_, _, secs) in tag_results.items():
    print(f"{name:>20}: test accuracy {tag_acc[name]:.2f} % ({TAG_EPOCHS} epoch(s), {secs:.0f} s)")

# %%
gold, pred, _ = tag_results["BiLSTM"]
gold_u, pred_u, _ = tag_results["left-to-right LSTM"]
tags_sorted = [t for t, _ in Counter(tag_vocab.decode(gold)).most_common()]
tag_ids = [tag_vocab[t] for t in tags_sorted]
per_tag = {name: [100 * float((p[g == i] == i).mean()) for i in tag_ids]
           for name, (g, p) in {"BiLSTM": (gold, pred), "left-to-right LSTM": (gold_u, pred_u)}.items()}
fig, ax = subplots(figsize=(9, 4))
pos = np.arange(len(tags_sorted))
ax.bar(pos - 0.2, per_tag["BiLSTM"], 0.4, label="BiLSTM")
ax.bar(pos + 0.2, per_tag["left-to-right LSTM"], 0.4, label="left-to-right LSTM")
ax.set_xticks(pos, tags_sorted, rotation=60)
ax.set_xlabel("UPOS tag (most frequent first)")
ax.set_ylabel("test accuracy, %")
ax.legend(loc="lower left")
show(fig, "Accuracy per tag on the UD English-EWT test sentences.")

# %%
conf = np.zeros((len(tag_ids), len(tag_ids)))
index = {t: k for k, t in enumerate(tag_ids)}
for g_, p_ in zip(gold, pred):
    if p_ in index:
        conf[index[g_], index[p_]] += 1
conf_norm = conf / conf.sum(1, keepdims=True).clip(min=1)
fig, ax = subplots(figsize=(7, 6))
im = ax.imshow(conf_norm, cmap="Blues", vmin=0, vmax=1)
ax.set_xticks(pos, tags_sorted, rotation=90)
ax.set_yticks(pos, tags_sorted)
ax.set_xlabel("predicted tag")
ax.set_ylabel("true tag")
fig.colorbar(im, ax=ax, label="fraction of the true tag's words")
show(fig, "Confusion matrix of the BiLSTM tagger (rows normalised).")

# %%
off = conf_norm - np.diag(np.diag(conf_norm))
worst = np.unravel_index(np.argmax(off), off.shape)
claim(tag_acc["BiLSTM"] > tag_acc["left-to-right LSTM"], "the BiLSTM tags more accurately than the left-to-right LSTM")
md(f"The BiLSTM tags **{tag_acc['BiLSTM']:.1f} %** of the test words correctly, the left-to-right LSTM "
   f"**{tag_acc['left-to-right LSTM']:.1f} %**. The most frequent confusion is **{tags_sorted[worst[0]]} → "
   f"{tags_sorted[worst[1]]}** ({100 * off[worst]:.0f} % of the {tags_sorted[worst[0]]} words). "
   f"The course's target, ≥ 93 %, is for the larger tagger of `benchmarks/rnn.py` (12 epochs), which records it.")

# %% [markdown]
# ## Summary
#
# - An n-gram model is the chain rule cut to a window, estimated by counting; smoothing decides what
#   happens to unseen contexts, and Kneser–Ney's back-off to continuation counts beats add-k.
# - An RNN carries a state $h_t = \tanh(W_{xh}x_t + W_{hh}h_{t-1})$; BPTT is backpropagation on the
#   unrolled network, and the gradient through many steps is a product of Jacobians that fades.
# - The LSTM's cell state and the GRU's interpolation pass the state on without a matrix product,
#   so the gradient fades far more slowly.
# - A character-level LSTM trained on 1 MB of Shakespeare writes plausible Shakespeare; the
#   temperature trades diversity for correctness.
# - For tagging, a bidirectional LSTM sees both sides of each word and beats a left-to-right one.
#
# **Seed statements** (topic 14 of the notes):
#
# | # | statement | where |
# | --- | --- | --- |
# | 14.1 | Markov model, counts with smoothing | §1 (claims); `tests/test_sequence.py` (probabilities sum to 1, add-k and Kneser–Ney by brute force) |
# | 14.2 | Markov-chain sample | §1, samples (Shakespeare instead of *Game of Thrones*) |
# | 14.3 | $h_t = f(W_{xh}x_t + W_{hh}h_{t-1})$, $o_t = f_o(W_{ho}h_t)$ | §2 (numpy RNN vs autograd, claim); `tests/test_sequence.py` |
# | 14.4 | one-hot or embedded inputs | §2, claim (one-hot times $W$ = lookup) |
# | 14.5 | outputs: vocabulary or tag set | §4 (65 characters), §5 (17 tags) |
# | 14.6 | multilayer RNNs, Shakespeare samples | §3 (2-layer check vs torch), §4 samples; LaTeX / Linux C stated only (Karpathy's data is not in the course mirror) |
# | 14.7 | predict $t+1$, argmax or sampling | §4 (temperature sampling; $\tau \to 0$ is argmax) |
# | 14.8 | unrolling, BPTT | §2, claim; `tests/test_sequence.py` (rnn_backward vs autograd) |
# | 14.9 | the signal fades | §3, plot and claims |
# | 14.10 | LSTM: state without matrix products | §3 (equations written out, claims) |
# | 14.11 | the notes' "LSTM" is a GRU, $r_{t-1}$ should be $r_t$ | **corrected** in §3 (Cho et al., 2014); `course_lib.sequence` docstring |
# | 14.12 | BiLSTM for POS tagging | §5, claim (Bi > uni-directional) |
#
# ## Where to go next
#
# - **Assignment:** [`assignments/14-rnn/`](../../assignments/14-rnn/14-rnn.ipynb): BPTT by hand, an
#   LSTM cell, beam search and additive attention.
# - **Library:** `course_lib.sequence` — `NGramLM`, `rnn_forward` / `rnn_backward`,
#   `gradient_norms_through_time`, `LSTM` / `GRU` / `RNN` and their cells, `CharRNN`, `BiLSTMTagger`
#   (see the API reference).
# - **Benchmark:** `benchmarks/rnn.py` — the course LSTM against `torch.nn.LSTM`, the full-size
#   char-LSTM (≤ 1.55 nats/char) and BiLSTM tagger (≥ 93 %).
# - **Next lecture:** 15, sequence to sequence with attention.
