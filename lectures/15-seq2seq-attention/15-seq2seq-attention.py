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
# # Lecture 15 · Sequence to sequence and attention
#
# Many tasks map a sequence to another sequence of a different length: machine translation,
# summarisation, writing comments for code, solving word problems, changing the style of a text
# (seed 15.1). This lecture builds the **encoder–decoder** that does it with two RNNs, decodes it
# greedily and with **beam search**, shows its **bottleneck** — the whole source squeezed into one
# vector — and removes the bottleneck with **attention**.
#
# **Learning goals**
# 1. the **encoder–decoder**: `<EOS>`, the encoder's final state as the context, a decoder RNN
#    trained with teacher forcing;
# 2. **greedy decoding vs beam search** with $B$ prefixes, and why greedy can miss the best sequence;
# 3. the **reversed-source** trick of Sutskever et al. (2014);
# 4. **additive (Bahdanau) attention**: scores from a small network, softmax weights, a context
#    vector per output step; its heat maps;
# 5. the **bottleneck** measured: accuracy against input length with and without attention, and
#    against a plain average of the encoder states.
#
# So that everything trains on a CPU, the "translation" tasks are synthetic and generated in code:
# dates written in many human formats → ISO dates (`make_date_pairs`), and numbers written in words
# → digits (`make_number_pairs`, whose sources are longer). The models come from
# `course_lib.sequence` (`Seq2Seq`, `BahdanauAttention`, `greedy_decode`, `beam_search`).

# %% tags=["parameters"]
SMOKE = False

# %%
import math
import time
from itertools import product

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib import sequence as seq
from course_lib.data import encode_char_pairs, make_date_pairs, make_number_pairs
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots

SMOKE = setup_notebook(SMOKE, seed=0)
DEVICE = get_device()
N_TRAIN, N_TEST = (800, 150) if SMOKE else (4000, 1000)
EPOCHS = 2 if SMOKE else 8  # the numbers task (section 4)
DATE_EPOCHS = 2 if SMOKE else 20  # the date task (sections 1-3): 8 epochs left attention at 97 % exact match
DIMS = {"embed_dim": 16, "hidden_size": 24} if SMOKE else {"embed_dim": 32, "hidden_size": 64}
N_BEAM = 20 if SMOKE else 200  # test sentences decoded with beam search (one at a time)
# torch takes its thread count from OMP_NUM_THREADS, which `make course` sets to NB_THREADS (1 by default):
# these small models gain little from a second thread, and with 2 beside any other busy process on a 2-core
# machine each step ran many times slower (lecture 17's biLM: 21 min per epoch instead of 73 s)
print(f"smoke mode: {SMOKE}; device: {DEVICE}")

date_pairs = make_date_pairs(N_TRAIN + N_TEST, seed=0)
number_pairs = make_number_pairs(N_TRAIN + N_TEST, seed=0)
for s, t in date_pairs[:4] + number_pairs[:4]:
    print(f"{s!r:>60} -> {t!r}")

# %% [markdown]
# ## 1. The encoder–decoder
#
# The **encoder** RNN reads the source $x_1 \dots x_S$; its final state is the **context**, a
# single vector that summarises the sentence and initialises the **decoder** RNN. The decoder
# generates the target one token at a time, each step reading the previous token, until it emits
# the end symbol `<EOS>` (seed 15.2):
#
# $$\begin{gathered}
#   h^e_j = \mathrm{LSTM}_e(x_j, h^e_{j-1}), \qquad h^d_0 = h^e_S, \\
#   h^d_t = \mathrm{LSTM}_d(\hat y_{t-1}, h^d_{t-1}), \qquad p(y_t \mid y_{<t}, x) = \mathrm{softmax}(W h^d_t).
# \end{gathered}$$
#
# Training maximises $\sum_t \log p(y_t \mid y_{<t}, x)$ with **teacher forcing**: the decoder reads
# the true previous token, not its own guess. Sutskever et al. (2014) translated English to French
# with 4-layer LSTMs of 1000 units per layer and 1000-dimensional embeddings, and found that
# feeding the source **reversed** helped (seed 15.4); our models are one LSTM layer of a few dozen
# units, enough for these tasks. <!-- narrative: definitions and history -->

# %%
def encode(pairs, train_pairs):
    train = encode_char_pairs(train_pairs)
    return train, encode_char_pairs(pairs, train.src_itos[4:], train.tgt_itos[4:])


def train_seq2seq(pairs, attention, reverse_source=False, average=False, desc="seq2seq", epochs=EPOCHS):
    """Train a Seq2Seq on pairs[:N_TRAIN]; returns (model, test CharPairs, per-epoch losses, seconds).

    average=True: attention whose scores are frozen at zero, i.e. the context is the plain mean of
    the encoder states (seed 15.10)."""
    train, test = encode(pairs[N_TRAIN:], pairs[:N_TRAIN])
    torch.manual_seed(0)
    model = seq.Seq2Seq(len(train.src_itos), len(train.tgt_itos), attention=attention or average,
                        reverse_source=reverse_source, backend="torch", **DIMS).to(DEVICE)
    if average:
        nn.init.zeros_(model.decoder.attention.v.weight)
        model.decoder.attention.v.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=5e-3)
    batch = 64
    steps = epochs * -(-N_TRAIN // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps)
    src, tgt = torch.from_numpy(train.src), torch.from_numpy(train.tgt)
    rng = np.random.default_rng(0)
    losses, start = [], time.perf_counter()
    bar = tqdm(total=steps, desc=desc)
    for _ in range(epochs):
        model.train()
        order, total = torch.from_numpy(rng.permutation(N_TRAIN)), 0.0
        for b in range(0, N_TRAIN, batch):
            idx = order[b:b + batch]
            s, t = src[idx], tgt[idx]
            s = s[:, : int((s != 0).sum(1).max())].to(DEVICE)
            t = t[:, : int((t != 0).sum(1).max())].to(DEVICE)
            logits = model(s, t[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1), ignore_index=0)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            bar.update(1)
        losses.append(total / N_TRAIN)
    bar.close()
    return model.eval(), test, np.array(losses), time.perf_counter() - start


def exact_match(model, test, pairs, max_len=12):
    """Greedy decoding of the whole test set; returns a bool array (decoded == target)."""
    decoded = []
    for b in range(0, len(test.src), 500):
        decoded += seq.greedy_decode(model, torch.from_numpy(test.src[b:b + 500]).to(DEVICE), max_len=max_len)
    return np.array([test.decode_target(d) == t for d, (_, t) in zip(decoded, pairs)])


date_test_pairs = date_pairs[N_TRAIN:]
runs = {}
for name, kwargs in [("no attention", {"attention": False}), ("attention", {"attention": True}),
                     ("no attention, reversed source", {"attention": False, "reverse_source": True})]:
    model, test, losses, secs = train_seq2seq(date_pairs, desc=f"dates, {name}", epochs=DATE_EPOCHS, **kwargs)
    runs[name] = {"model": model, "test": test, "losses": losses, "seconds": secs,
                  "exact": exact_match(model, test, date_test_pairs)}
    print(f"dates, {name:>30}: exact match {100 * runs[name]['exact'].mean():6.2f} % "
          f"({DATE_EPOCHS} epochs, {secs:.0f} s)")

fig, ax = subplots(figsize=(6.4, 4))
for name, r in runs.items():
    ax.plot(np.arange(1, DATE_EPOCHS + 1), r["losses"], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training cross-entropy, nats per token")
ax.set_yscale("log")
ax.legend()
show(fig, "Training loss of the date models.")

# %%
acc = {name: 100 * float(r["exact"].mean()) for name, r in runs.items()}
claim(acc["attention"] >= acc["no attention"], "with attention the date model is at least as accurate as without")
if not SMOKE:
    claim(acc["attention"] >= 99.0, "with attention the date model reaches 99 % exact match")
claim(min(acc.values()) > 50.0, "all three date models learn the task (over 50 % exact match)")
md(f"Exact match on {N_TEST:,} unseen dates: **{acc['attention']:.1f} %** with attention, **{acc['no attention']:.1f} %** "
   f"without, **{acc['no attention, reversed source']:.1f} %** without attention on the reversed source. The date "
   f"sources are short (at most about 30 characters), yet "
   + (f"the single context vector costs {acc['attention'] - acc['no attention']:.1f} points of exact match: every "
      "character of the answer must be recovered from one vector, and one wrong character spoils a date. "
      if acc["attention"] - acc["no attention"] > 5 else "the single context vector is only a mild bottleneck here. ")
   + "§4 uses longer inputs.")

# %% [markdown]
# **The reversed source.** Reversing the source puts its first words next to the first words of the
# target, so the shortest paths between them in the unrolled network are short; Sutskever et al.
# reported that it lifted their BLEU from 25.9 to 30.6. In the date task the parts of the target
# (year, month, day) come from different places of the source depending on the format, so the
# trick has no fixed direction to help; the numbers above show its effect here. <!-- narrative: interprets the measured numbers shown above -->
#
# ## 2. Greedy decoding and beam search
#
# Decoding looks for $\arg\max_y p(y \mid x) = \arg\max_y \sum_t \log p(y_t \mid y_{<t}, x)$.
# **Greedy** decoding takes the most probable token at every step; it can miss the best sequence,
# since a likely first token may only have unlikely continuations. **Beam search** (seed 15.3)
# keeps the $B$ best prefixes: at each step it scores every one-token extension of each, keeps the
# best $B$, moves those ending with `<EOS>` to the finished list, and stops when $B$ are finished.
# $B = 1$ is greedy; as $B$ grows it approaches exhaustive search.
#
# A toy model where greedy is provably wrong: vocabulary `<EOS>`, `a`, `b`; greedy takes `a`
# (probability 0.6) whose best continuation has probability 0.5, while `b b` has 0.4 × 0.9.

# %%
EOS_T = 0
table = {(): [1e-9, 0.6, 0.4], (1,): [0.5, 0.25, 0.25], (2,): [0.05, 0.05, 0.9]}


def toy_step(prefixes, state):
    rows = [table.get(p, [1.0, 1e-9, 1e-9]) for p in prefixes]
    return np.log(np.array(rows)), state


greedy_toy = seq.beam_search(toy_step, None, beam_size=1, max_len=4, eos_id=EOS_T)[0]
beam_toy = seq.beam_search(toy_step, None, beam_size=2, max_len=4, eos_id=EOS_T)[0]
brute = max((s for L in range(1, 5) for s in product(range(3), repeat=L)
             if s[-1] == EOS_T and EOS_T not in s[:-1]),
            key=lambda s: sum(float(toy_step([s[:i]], None)[0][0, s[i]]) for i in range(len(s))))
print(f"greedy: {greedy_toy.tokens} p = {math.exp(greedy_toy.log_prob):.3f}; "
      f"beam B=2: {beam_toy.tokens} p = {math.exp(beam_toy.log_prob):.3f}; exhaustive search: {brute}")
claim(beam_toy.tokens == brute and greedy_toy.tokens != brute,
      "on the toy model beam search with B = 2 finds the optimum that greedy decoding misses")

# %% [markdown]
# On the trained attention model for dates, beam search ($B$ = 1, 3, 5) over the first test
# sentences, one sentence at a time (`seq.beam_decode`):

# %%
model_att, test_att = runs["attention"]["model"], runs["attention"]["test"]
beam_stats = {}
for B in [1, 3, 5]:
    correct, logp = 0, 0.0
    for i in tqdm(range(N_BEAM), desc=f"beam B={B}"):
        hyp = seq.beam_decode(model_att, torch.from_numpy(test_att.src[i]).to(DEVICE)[: test_att.src_lengths[i]],
                              beam_size=B, max_len=12)[0]
        correct += test_att.decode_target(hyp.tokens) == date_test_pairs[i][1]
        logp += hyp.log_prob
    beam_stats[B] = (100 * correct / N_BEAM, logp / N_BEAM)
    print(f"B = {B}: exact match {beam_stats[B][0]:.1f} %, mean log p(best hypothesis) {beam_stats[B][1]:.4f}")
greedy_acc = 100 * float(runs["attention"]["exact"][:N_BEAM].mean())
claim(abs(beam_stats[1][0] - greedy_acc) < 1e-9, "beam search with B = 1 gives greedy decoding's accuracy")
claim(beam_stats[5][1] >= beam_stats[1][1] - 1e-9, "a beam of 5 finds sequences at least as probable as greedy's")
md(f"On {N_BEAM} test dates greedy decoding scores **{beam_stats[1][0]:.1f} %**, beams of 3 and 5 "
   f"**{beam_stats[3][0]:.1f} %** and **{beam_stats[5][0]:.1f} %**; the mean log-probability of the best "
   f"hypothesis rises from {beam_stats[1][1]:.4f} to {beam_stats[5][1]:.4f}. On a task this deterministic the "
   f"model is confident and greedy is nearly optimal; beam search matters when the distributions are flat.")

# %% [markdown]
# ## 3. Attention
#
# The bottleneck (seed 15.5): one vector must hold the whole source; the first words are far from
# the last state; the decoder drifts away from its initial state; even a BiLSTM encoder's end
# states see the middle of a long sentence only through many steps. **Attention** (Bahdanau, Cho &
# Bengio, 2015) lets every decoder step look at all encoder states (seeds 15.6–15.9):
#
# $$\begin{gathered}
#   s_{jt} = v^\top \tanh\!\big(W_e h^e_j + W_d h^d_{t-1} + b\big), \qquad
#   \alpha_{jt} = \frac{\exp s_{jt}}{\sum_k \exp s_{kt}}, \\
#   c_t = \sum_j \alpha_{jt} h^e_j, \qquad h^d_t = g(\hat y_{t-1}, h^d_{t-1}, c_t).
# \end{gathered}$$
#
# The relevance $s$ is a small fully connected network; the weights $\alpha_{\cdot t}$ form a
# distribution over source positions, and the context $c_t$ is fed to the decoder with the previous
# token and to the output layer. The heat maps show $\alpha_{jt}$ for a few test dates: each output
# character looks at the source characters it is copied or derived from.

# %%
correct_ids = np.flatnonzero(runs["attention"]["exact"]).tolist()
examples = (correct_ids + [i for i in range(8) if i not in correct_ids])[:4]  # correctly decoded ones first
src_batch = torch.from_numpy(test_att.src[examples]).to(DEVICE)
decoded, alphas = seq.greedy_decode(model_att, src_batch, max_len=12, return_attention=True)
fig, axes = subplots(2, 2, figsize=(11, 7))
for ax, i, d, a in zip(axes.ravel(), examples, decoded, alphas):
    src_text = date_test_pairs[i][0]
    out_text = (test_att.decode_target(d) + "⏎")[: a.shape[0]]
    ax.imshow(a[:, : len(src_text)].cpu().numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(src_text)), list(src_text), fontsize=8)
    ax.set_yticks(range(len(out_text)), list(out_text), fontsize=8)
    ax.set_xlabel("source character")
    ax.set_ylabel("output character")
    ax.set_title(repr(src_text), fontsize=10)
show(fig, "Attention weights α (rows: output characters, ⏎ = EOS; columns: source characters) for four test dates.")

# %%
peak = float(np.mean([a.max(1).values.mean().item() for a in alphas]))
claim(peak > 1.5 / max(len(date_test_pairs[i][0]) for i in examples),
      "the attention weights are peaked, far from uniform over the source")
md(f"On average the largest weight of a row is **{peak:.2f}**, against about "
   f"{1 / np.mean([len(date_test_pairs[i][0]) for i in examples]):.2f} for a uniform average.")

# %% [markdown]
# ## 4. The bottleneck: accuracy against input length
#
# The numbers task has sources from one word ("seven") to about 60 characters ("nine hundred
# eighty-seven thousand six hundred fifty-four"). Three models with the same encoder and decoder:
# without attention (the context is the final state only), with the context a **plain average** of
# the encoder states (attention with its scores frozen at zero), and with attention.

# %%
number_test_pairs = number_pairs[N_TRAIN:]
num_runs = {}
for name, kwargs in [("no attention", {"attention": False}), ("plain average", {"attention": False, "average": True}),
                     ("attention", {"attention": True})]:
    model, test, losses, secs = train_seq2seq(number_pairs, desc=f"numbers, {name}", **kwargs)
    num_runs[name] = {"exact": exact_match(model, test, number_test_pairs), "lengths": test.src_lengths}
    print(f"numbers, {name:>14}: exact match {100 * num_runs[name]['exact'].mean():6.2f} % ({secs:.0f} s)")

lengths = num_runs["attention"]["lengths"]
edges = np.quantile(lengths, [0, 0.25, 0.5, 0.75, 1.0]).astype(int)
bins = [(edges[k] if k == 0 else edges[k] + 1, edges[k + 1]) for k in range(4)]
by_len = {name: [100 * float(r["exact"][(lengths >= lo) & (lengths <= hi)].mean()) for lo, hi in bins]
          for name, r in num_runs.items()}
fig, ax = subplots(figsize=(6.4, 4))
centres = [(lo + hi) / 2 for lo, hi in bins]
for name, accs in by_len.items():
    ax.plot(centres, accs, marker="o", label=name)
ax.set_xlabel("source length, characters (centre of a quartile bin)")
ax.set_ylabel("exact match, %")
ax.legend()
show(fig, "Numbers in words → digits: exact match against the source length, with and without attention.")

# %%
for name, accs in by_len.items():
    print(f"{name:>14}: " + ", ".join(f"{lo}-{hi} chars {a:.1f} %" for (lo, hi), a in zip(bins, accs)))
num_acc = {name: 100 * float(r["exact"].mean()) for name, r in num_runs.items()}
drop = {name: accs[0] - accs[-1] for name, accs in by_len.items()}
claim(by_len["attention"][-1] > by_len["no attention"][-1], "on the longest quarter of the inputs attention beats no attention")
claim(num_acc["attention"] > num_acc["plain average"], "weighted averaging (attention) beats a plain average of the states")
md(f"Overall: **{num_acc['attention']:.1f} %** with attention, **{num_acc['plain average']:.1f} %** with a plain "
   f"average, **{num_acc['no attention']:.1f} %** without. From the shortest to the longest quarter of the inputs "
   f"the model without attention loses **{drop['no attention']:.1f}** points, the one with attention "
   f"**{drop['attention']:.1f}**: the single context vector is the bottleneck, and a weighted average of the "
   f"encoder states, not a plain one, removes it (seed 15.10).")

# %% [markdown]
# ## Summary
#
# - An encoder–decoder reads the source into a state and generates the target token by token until
#   `<EOS>`; it trains with teacher forcing.
# - Greedy decoding can miss the most probable sequence; beam search with $B$ prefixes trades time
#   for a better search ($B = 1$ is greedy).
# - The encoder's final state is a bottleneck that grows with the input length; attention computes
#   a fresh, weighted context $c_t = \sum_j \alpha_{jt} h^e_j$ for every output step, and its
#   weights show what each output looks at.
#
# **Seed statements** (topic 15 of the notes):
#
# | # | statement | where |
# | --- | --- | --- |
# | 15.1 | applications: MT, summarisation, code, maths, style | stated in the introduction |
# | 15.2 | `<EOS>`, final state as context, decoder RNN, beam search | §1 (models trained, claims), §2 |
# | 15.3 | beam search with width $B$ | §2, claims (toy optimum, $B$ = 1 is greedy); `tests/test_sequence.py` (exhaustive search, hand-built model) |
# | 15.4 | Sutskever: 4 × 1000 LSTMs, 1000-d embeddings, reversed input | stated in §1 (history); the reversed source measured in §1 |
# | 15.5 | the bottleneck | §4, claim (accuracy against length) |
# | 15.6 | $h^d_t = g(\hat y_{t-1}, h^d_{t-1}, c_t)$ | §3 (`seq.Decoder`); `tests/test_sequence.py` |
# | 15.7 | relevance $s(h^e_j, h^d_{t-1})$ by an FC network | §3 (`seq.BahdanauAttention`); `tests/test_sequence.py` |
# | 15.8 | $\alpha = \mathrm{softmax}(s)$ | §3, heat maps and claim |
# | 15.9 | $c_t = \sum_j \alpha_{jt} h^e_j$ | §3; `tests/test_sequence.py` (attention vs loops) |
# | 15.10 | plain averaging is not enough | §4, claim (attention beats the plain average) |
#
# ## Where to go next
#
# - **Assignment:** [`assignments/14-rnn/`](../../assignments/14-rnn/14-rnn.ipynb) (shared with
#   lecture 14) asks for beam search and additive attention written by hand.
# - **Library:** `course_lib.sequence` — `Seq2Seq`, `Encoder`, `Decoder`, `BahdanauAttention`,
#   `greedy_decode`, `beam_search`, `beam_decode` (see the API reference); `course_lib.data` —
#   `make_date_pairs`, `make_number_pairs`, `encode_char_pairs`.
# - **Benchmark:** `benchmarks/rnn.py` — seq2seq on 30,000 dates with and without attention, exact
#   match by source length.
