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
# # Assignment 14 · Recurrent networks by hand
#
# In this assignment you implement four building blocks of lectures 14 and 15:
#
# 1. **backpropagation through time** for a vanilla RNN, in numpy (5 points);
# 2. one **LSTM cell** step, forward (3 points);
# 3. **beam search** over a next-token model (4 points);
# 4. **additive (Bahdanau) attention** (3 points).
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; they also contain hidden tests that run only when your notebook is graded, on
# random shapes you have not seen, against PyTorch (autograd, `torch.nn.LSTMCell`) and against
# brute-force search over every sequence of a small vocabulary. Run **Kernel → Restart & Run
# All** before you submit.
#
# Rules: inside your functions use numpy / tensor arithmetic (`@`, `*`, `np.tanh`,
# `torch.sigmoid`, `torch.softmax`, indexing, loops). **Do not use** `course_lib.sequence`,
# `torch.nn.LSTM`, `torch.nn.LSTMCell`, `torch.nn.GRU`, `torch.nn.RNN`, or autograd
# (`torch.autograd`, `Tensor.backward`): the gradients of part 1 are derived by hand.

# %% tags=["parameters"]
SMOKE = False

# %%
import math
from itertools import product

import numpy as np
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "bptt_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. Backpropagation through time (5 points)
#
# The vanilla RNN of the lecture, time-major, with row vectors ($x_t$: $(N, D)$, $h_t$: $(N, H)$):
#
# $$a_t = x_t W_{xh} + h_{t-1} W_{hh} + b_h, \qquad h_t = \tanh(a_t), \qquad t = 1, \dots, T.$$
#
# `rnn_forward` below is given. Write `rnn_backward(dhs, cache)`: `dhs[t]` is the gradient of the
# loss with respect to $h_t$ coming from *outside* the recurrence (an output layer). Walk back
# from $t = T$: the total gradient on $h_t$ is `dhs[t]` plus what flows back from step $t + 1$,
#
# $$g_t = \frac{\partial L}{\partial h_t} = \mathrm{dhs}_t + \delta_{t+1} W_{hh}^\top, \qquad
#   \delta_t = \frac{\partial L}{\partial a_t} = g_t \odot (1 - h_t^2),$$
#
# and the parameters collect the contributions of every step:
# $\mathrm{d}W_{xh} = \sum_t x_t^\top \delta_t$, $\mathrm{d}W_{hh} = \sum_t h_{t-1}^\top \delta_t$,
# $\mathrm{d}b_h = \sum_{t, n} \delta_t$, $\mathrm{d}x_t = \delta_t W_{xh}^\top$,
# $\mathrm{d}h_0 = \delta_1 W_{hh}^\top$.
#
# Return a dict with the keys `"dx"` $(T, N, D)$, `"dh0"` $(N, H)$, `"dWxh"` $(D, H)$, `"dWhh"`
# $(H, H)$, `"dbh"` $(H,)$.

# %%
def rnn_forward(x, h0, Wxh, Whh, bh):
    """x (T, N, D), h0 (N, H), Wxh (D, H), Whh (H, H), bh (H,) -> hs (T, N, H), cache."""
    hs = np.empty((x.shape[0], x.shape[1], Wxh.shape[1]))
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(x[t] @ Wxh + h @ Whh + bh)
        hs[t] = h
    return hs, {"x": x, "h0": h0, "Wxh": Wxh, "Whh": Whh, "hs": hs}


# %% nbgrader={"grade": false, "grade_id": "rnn_backward", "locked": false, "solution": true, "schema_version": 3}
def rnn_backward(dhs, cache):
    """BPTT for rnn_forward. dhs (T, N, H) -> {"dx", "dh0", "dWxh", "dWhh", "dbh"}."""
    ### BEGIN SOLUTION
    x, h0, Wxh, Whh, hs = cache["x"], cache["h0"], cache["Wxh"], cache["Whh"], cache["hs"]
    T = x.shape[0]
    grads = {"dx": np.zeros_like(x), "dWxh": np.zeros_like(Wxh), "dWhh": np.zeros_like(Whh),
             "dbh": np.zeros(Wxh.shape[1])}
    dnext = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        delta = (dhs[t] + dnext) * (1.0 - hs[t] ** 2)
        h_prev = hs[t - 1] if t > 0 else h0
        grads["dx"][t] = delta @ Wxh.T
        grads["dWxh"] += x[t].T @ delta
        grads["dWhh"] += h_prev.T @ delta
        grads["dbh"] += delta.sum(0)
        dnext = delta @ Whh.T
    grads["dh0"] = dnext
    return grads
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "rnn_backward_tests", "locked": true, "points": 5, "solution": false, "schema_version": 3}
def _rnn_problem(rng, T, N, D, H):
    return (rng.standard_normal((T, N, D)), rng.standard_normal((N, H)), 0.5 * rng.standard_normal((D, H)),
            0.5 * rng.standard_normal((H, H)), 0.1 * rng.standard_normal(H))


def _numerical_grads(args, dhs, eps=1e-6):
    """Central differences of L = sum(hs * dhs) with respect to each argument."""
    out = []
    for k in range(len(args)):
        g = np.zeros_like(args[k])
        for idx in np.ndindex(args[k].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = ((rnn_forward(*plus)[0] * dhs).sum() - (rnn_forward(*minus)[0] * dhs).sum()) / (2 * eps)
        out.append(g)
    return out


_rng = np.random.default_rng(14)
_args = _rnn_problem(_rng, 4, 2, 3, 3)
_hs, _cache = rnn_forward(*_args)
_dhs = _rng.standard_normal(_hs.shape)
_grads = rnn_backward(_dhs, _cache)
assert isinstance(_grads, dict) and set(_grads) >= {"dx", "dh0", "dWxh", "dWhh", "dbh"}, \
    "rnn_backward must return a dict with the keys dx, dh0, dWxh, dWhh, dbh"
for _name, _shape in [("dx", (4, 2, 3)), ("dh0", (2, 3)), ("dWxh", (3, 3)), ("dWhh", (3, 3)), ("dbh", (3,))]:
    assert_shape(_grads[_name], _shape, f"rnn_backward(...)[{_name!r}] for T=4, N=2, D=3, H=3")
for _name, _num in zip(["dx", "dh0", "dWxh", "dWhh", "dbh"], _numerical_grads(_args, _dhs)):
    assert_close(_grads[_name], _num, f"{_name} against central finite differences", atol=1e-6, rtol=1e-5)
_dlast = np.zeros_like(_hs)
_dlast[-1] = 1.0
assert_close(rnn_backward(_dlast, _cache)["dx"][-1], (1 - _hs[-1] ** 2) @ _args[2].T,
             "a loss on h_T alone: dx_T = (1 - h_T^2) Wxh^T")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(1414)
for _trial in range(8):
    _T, _N, _D, _H = (int(v) for v in _rng.integers(1, 7, 4))
    _args = _rnn_problem(_rng, _T, _N, _D, _H)
    _hs, _cache = rnn_forward(*_args)
    _dhs = _rng.standard_normal(_hs.shape)
    _grads = rnn_backward(_dhs, _cache)
    _tens = [torch.tensor(a, requires_grad=True) for a in _args]
    _h, _outs = _tens[1], []
    for _t in range(_T):
        _h = torch.tanh(_tens[0][_t] @ _tens[2] + _h @ _tens[3] + _tens[4])
        _outs.append(_h)
    _ref = torch.autograd.grad((torch.stack(_outs) * torch.tensor(_dhs)).sum(), _tens)
    for _name, _r in zip(["dx", "dh0", "dWxh", "dWhh", "dbh"], _ref):
        assert_close(_grads[_name], _r.numpy(), f"{_name} for T={_T}, N={_N}, D={_D}, H={_H} vs torch autograd",
                     atol=1e-9, rtol=1e-9)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "lstm_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. An LSTM cell (3 points)
#
# One step of an LSTM in PyTorch's layout: the four gates are computed by one matrix product,
# stacked in the order **i, f, g, o** in `W_ih` $(4H, D)$, `W_hh` $(4H, H)$, `b_ih`, `b_hh` $(4H,)$:
#
# $$[\,i, f, g, o\,] = x W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh},$$
# $$c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \qquad h_t = \sigma(o) \odot \tanh(c_t).$$
#
# The cell state $c$ is passed on by an elementwise product and a sum: no matrix product touches
# it, which is why gradients survive many steps. Return `(h_t, c_t)`, each $(N, H)$.

# %% nbgrader={"grade": false, "grade_id": "lstm_cell_forward", "locked": false, "solution": true, "schema_version": 3}
def lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """x (N, D), h, c (N, H), W_ih (4H, D), W_hh (4H, H), b_ih, b_hh (4H,) -> (h_t, c_t), each (N, H)."""
    ### BEGIN SOLUTION
    H = h.shape[1]
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f = torch.sigmoid(gates[:, :H]), torch.sigmoid(gates[:, H:2 * H])
    g, o = torch.tanh(gates[:, 2 * H:3 * H]), torch.sigmoid(gates[:, 3 * H:])
    c_t = f * c + i * g
    return o * torch.tanh(c_t), c_t
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "lstm_cell_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_g = torch.Generator().manual_seed(2)
_H, _D = 2, 3
_x, _h, _c = torch.randn(1, _D, generator=_g), torch.randn(1, _H, generator=_g), torch.randn(1, _H, generator=_g)
_zeros = (torch.zeros(4 * _H, _D), torch.zeros(4 * _H, _H), torch.zeros(4 * _H), torch.zeros(4 * _H))
_h1, _c1 = lstm_cell_forward(_x, _h, _c, *_zeros)
assert_shape(_h1, (1, _H), "h_t for N=1, H=2")
assert_close(_c1, 0.5 * _c, "with all weights zero every gate is sigmoid(0) = 1/2 and g = 0, so c_t = c / 2")
assert_close(_h1, 0.5 * torch.tanh(0.5 * _c), "with all weights zero h_t = tanh(c_t) / 2")
_b = torch.zeros(4 * _H)
_b[_H:2 * _H] = 50.0  # forget gate open
_b[:_H] = -50.0  # input gate closed
_h2, _c2 = lstm_cell_forward(_x, _h, _c, _zeros[0], _zeros[1], _b, torch.zeros(4 * _H))
assert_close(_c2, _c, "forget gate open and input gate closed: the cell state passes unchanged", atol=1e-12)
### BEGIN HIDDEN TESTS
for _trial in range(6):
    _N, _D, _H = (int(v) for v in torch.randint(1, 7, (3,), generator=_g))
    _ref = torch.nn.LSTMCell(_D, _H)
    _x, _h, _c = torch.randn(_N, _D, generator=_g), torch.randn(_N, _H, generator=_g), torch.randn(_N, _H, generator=_g)
    with torch.no_grad():
        _hr, _cr = _ref(_x, (_h, _c))
        _ho, _co = lstm_cell_forward(_x, _h, _c, _ref.weight_ih, _ref.weight_hh, _ref.bias_ih, _ref.bias_hh)
    assert_close(_ho, _hr, f"h_t vs torch.nn.LSTMCell (N={_N}, D={_D}, H={_H})", atol=1e-10)
    assert_close(_co, _cr, f"c_t vs torch.nn.LSTMCell (N={_N}, D={_D}, H={_H})", atol=1e-10)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "beam_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Beam search (4 points)
#
# A decoder gives $\log p(w \mid \text{prefix})$ for every token $w$ of a vocabulary of size $V$.
# Greedy decoding keeps only the best token at each step and can miss the most probable
# *sequence*. Beam search keeps the $B$ best prefixes:
#
# 1. start with the single empty prefix `()` of score 0;
# 2. call `step_fn(prefixes)`, which returns a numpy array `(len(prefixes), V)` of log-probabilities;
#    score every extension `prefix + (w,)` by `score(prefix) + log_probs[b, w]`;
# 3. keep the `beam_size` best extensions overall (ties: any order); those ending in `eos_id` are
#    **finished**, the others are the live prefixes of the next step;
# 4. stop when no prefix is live or after `max_len` tokens; the prefixes still live then count as
#    finished too.
#
# Return the list of finished `(tokens, log_prob)` pairs (`tokens` a tuple of ints, ending with
# `eos_id` unless cut at `max_len`), best log-probability first. With `beam_size = 1` this is
# greedy decoding; with a beam as large as the number of prefixes it is exhaustive search.

# %% nbgrader={"grade": false, "grade_id": "beam_search", "locked": false, "solution": true, "schema_version": 3}
def beam_search(step_fn, beam_size, max_len, eos_id):
    """step_fn(list of prefixes) -> log_probs (len(prefixes), V). Returns [(tokens, log_prob), ...], best first."""
    ### BEGIN SOLUTION
    live = [((), 0.0)]
    finished = []
    for _ in range(max_len):
        log_probs = np.asarray(step_fn([p for p, _ in live]), dtype=float)
        V = log_probs.shape[1]
        scores = (np.array([s for _, s in live])[:, None] + log_probs).ravel()
        parents = live
        live = []
        for idx in np.argsort(-scores, kind="stable")[:beam_size]:
            if not np.isfinite(scores[idx]):
                continue
            b, w = divmod(int(idx), V)
            hyp = (parents[b][0] + (w,), float(scores[idx]))
            (finished if w == eos_id else live).append(hyp)
        if not live:
            break
    finished += live
    return sorted(finished, key=lambda h: -h[1])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "beam_search_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
def _table_model(table, eos_id):
    """A toy decoder: log p(w | prefix) from a dict prefix -> probabilities (default: uniform-ish EOS)."""
    V = len(next(iter(table.values())))

    def step(prefixes):
        rows = [table.get(p, [1.0 if w == eos_id else 1e-12 for w in range(V)]) for p in prefixes]
        return np.log(np.array(rows, dtype=float))
    return step


def _brute_force(step_fn, V, max_len, eos_id):
    """The most probable finished sequence by enumerating every sequence of length <= max_len."""
    best = None
    for L in range(1, max_len + 1):
        for seq in product(range(V), repeat=L):
            if eos_id in seq[:-1] or (L < max_len and seq[-1] != eos_id):
                continue
            lp = sum(float(step_fn([seq[:i]])[0, seq[i]]) for i in range(L))
            if best is None or lp > best[1] + 1e-12:
                best = (seq, lp)
    return best


# vocabulary {0: EOS, 1: "a", 2: "b"}; greedy takes "a" (0.6) but "b b" has probability 0.4 * 0.9 = 0.36 > 0.6 * 0.5
_table = {(): [0.0, 0.6, 0.4], (1,): [0.5, 0.25, 0.25], (2,): [0.05, 0.05, 0.9], (1, 1): [1, 0, 0], (1, 2): [1, 0, 0],
          (2, 2): [1.0, 0.0, 0.0], (2, 1): [1, 0, 0]}
_toy = _table_model({k: [max(p, 1e-12) for p in v] for k, v in _table.items()}, eos_id=0)
_greedy = beam_search(_toy, 1, 3, 0)
assert isinstance(_greedy, list) and _greedy and isinstance(_greedy[0][0], tuple), \
    "beam_search must return a list of (tokens tuple, log_prob) pairs"
assert _greedy[0][0] == (1, 0), f"beam_size=1 is greedy: it picks 'a' then EOS, got {_greedy[0][0]}"
_beam = beam_search(_toy, 2, 3, 0)
assert _beam[0][0] == (2, 2, 0), f"a beam of 2 finds 'b b EOS' (probability 0.36), got {_beam[0][0]}"
assert_close(_beam[0][1], math.log(0.4 * 0.9 * 1.0), "the log-probability of 'b b EOS'", atol=1e-9)
assert all(_beam[i][1] >= _beam[i + 1][1] for i in range(len(_beam) - 1)), "hypotheses must be sorted best first"
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(1515)
for _trial in range(6):
    _V, _L = int(_rng.integers(2, 4)), int(_rng.integers(1, 4))
    _W = _rng.standard_normal((_V + 1, _V)) * 2.0

    def _random_model(prefixes, _W=_W, _V=_V):
        rows = []
        for p in prefixes:
            z = _W[p[-1] + 1 if p else 0] + 0.3 * len(p)
            rows.append(z - np.log(np.exp(z).sum()))
        return np.array(rows)

    _exact = _brute_force(_random_model, _V, _L, 0)
    _got = beam_search(_random_model, _V ** _L, _L, 0)
    assert _got[0][0] == _exact[0], f"an exhaustive beam must find the brute-force optimum (V={_V}, max_len={_L})"
    assert_close(_got[0][1], _exact[1], "the optimum's log-probability", atol=1e-9)
    _g1 = beam_search(_random_model, 1, _L, 0)
    _seq, _lp = (), 0.0
    for _ in range(_L):
        _row = _random_model([_seq])[0]
        _w = int(np.argmax(_row))
        _seq, _lp = _seq + (_w,), _lp + float(_row[_w])
        if _w == 0:
            break
    assert _g1[0][0] == _seq, "beam_size=1 must equal greedy argmax decoding"
    assert beam_search(_random_model, 2, _L, 0)[0][1] >= _lp - 1e-12, "a beam of 2 scores at least as well as greedy on these models"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "attention_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. Additive attention (3 points)
#
# The decoder state $q$ (the query, $(N, D_d)$) scores every encoder state $h_j$ (`values`,
# $(N, S, D_e)$) with a one-hidden-layer network, turns the scores into weights and averages:
#
# $$s_j = v^\top \tanh(W_e h_j + W_d q + b), \qquad \alpha = \mathrm{softmax}_j(s_j), \qquad
#   c = \sum_j \alpha_j h_j,$$
#
# with $W_e$ $(A, D_e)$, $W_d$ $(A, D_d)$, $b$, $v$ $(A,)$. `mask` $(N, S)$ (bool, or `None`)
# is True at the real source positions: padded positions get weight exactly 0 (give them the
# score $-\infty$ before the softmax). Return `(context (N, D_e), alpha (N, S))`.

# %% nbgrader={"grade": false, "grade_id": "additive_attention", "locked": false, "solution": true, "schema_version": 3}
def additive_attention(query, values, W_e, W_d, b, v, mask=None):
    """query (N, Dd), values (N, S, De) -> (context (N, De), alpha (N, S))."""
    ### BEGIN SOLUTION
    hidden = torch.tanh(values @ W_e.T + (query @ W_d.T + b)[:, None, :])  # (N, S, A)
    scores = hidden @ v
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(scores, dim=1)
    return torch.einsum("ns,nsd->nd", alpha, values), alpha
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "additive_attention_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_g = torch.Generator().manual_seed(4)
_N, _S, _De, _Dd, _A = 2, 4, 3, 2, 5
_q, _vals = torch.randn(_N, _Dd, generator=_g), torch.randn(_N, _S, _De, generator=_g)
_We, _Wd = torch.randn(_A, _De, generator=_g), torch.randn(_A, _Dd, generator=_g)
_bb, _vv = torch.randn(_A, generator=_g), torch.randn(_A, generator=_g)
_ctx, _alpha = additive_attention(_q, _vals, _We, _Wd, _bb, _vv)
assert_shape(_ctx, (_N, _De), "context for N=2, De=3")
assert_shape(_alpha, (_N, _S), "alpha for N=2, S=4")
assert_close(_alpha.sum(1), torch.ones(_N), "the attention weights of each row sum to 1")
_ctx0, _alpha0 = additive_attention(_q, _vals, _We, _Wd, _bb, torch.zeros(_A))
assert_close(_alpha0, torch.full((_N, _S), 1 / _S), "v = 0 gives equal scores: uniform weights")
assert_close(_ctx0, _vals.mean(1), "uniform weights: the context is the plain average of the values")
_mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
_ctxm, _alpham = additive_attention(_q, _vals, _We, _Wd, _bb, _vv, _mask)
assert_close(_alpham[0, 2:], torch.zeros(2), "masked (padded) positions get weight 0")
assert_close(_alpham[0].sum(), torch.tensor(1.0), "the real positions' weights still sum to 1")
### BEGIN HIDDEN TESTS
for _trial in range(6):
    _N, _S, _De, _Dd, _A = (int(v) for v in torch.randint(1, 6, (5,), generator=_g))
    _q, _vals = torch.randn(_N, _Dd, generator=_g), torch.randn(_N, _S, _De, generator=_g)
    _We, _Wd = torch.randn(_A, _De, generator=_g), torch.randn(_A, _Dd, generator=_g)
    _bb, _vv = torch.randn(_A, generator=_g), torch.randn(_A, generator=_g)
    _lengths = torch.randint(1, _S + 1, (_N,), generator=_g)
    _mask = torch.arange(_S)[None] < _lengths[:, None]
    _sc = torch.stack([torch.stack([_vv @ torch.tanh(_We @ _vals[n, j] + _Wd @ _q[n] + _bb) for j in range(_S)])
                       for n in range(_N)])
    _sc = _sc.masked_fill(~_mask, -math.inf)
    _al = torch.exp(_sc - _sc.max(1, keepdim=True).values)
    _al = _al / _al.sum(1, keepdim=True)
    _ctxr = torch.stack([sum(_al[n, j] * _vals[n, j] for j in range(_S)) for n in range(_N)])
    _ctx, _alpha = additive_attention(_q, _vals, _We, _Wd, _bb, _vv, _mask)
    assert_close(_alpha, _al, f"alpha vs loops (N={_N}, S={_S}, A={_A}), with a mask", atol=1e-10)
    assert_close(_ctx, _ctxr, f"context vs loops (N={_N}, S={_S}, De={_De})", atol=1e-10)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "solution": false, "schema_version": 3}
# ## Where to go next (not graded)
#
# Lecture 14 uses the same BPTT to plot how the gradient fades through time in an RNN and survives
# in an LSTM; lecture 15 builds a whole encoder-decoder with this attention and decodes it with
# beam search. The reference implementations are in `course_lib.sequence` (published after the
# due date).
