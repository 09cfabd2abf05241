"""Language models and recurrent networks: n-gram LMs, BPTT by hand, RNN/LSTM/GRU, taggers,
sequence to sequence with attention, greedy and beam-search decoding (lectures 14-15).

Four parts:

* :class:`NGramLM` — Markov language models ``p(w_1..w_n) = prod_i p(w_i | w_{i-n+1}..w_{i-1})``
  estimated by counting, with add-k or interpolated Kneser-Ney smoothing.
* :func:`rnn_forward` / :func:`rnn_backward` — a vanilla tanh RNN in numpy with backpropagation
  through time written by hand; :func:`gradient_norms_through_time` measures how the gradient of
  the last state with respect to earlier inputs fades (the vanishing-gradient plot).
* :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell` and the layers :class:`RNN`,
  :class:`LSTM`, :class:`GRU` (multi-layer, bidirectional, variable lengths) written from the
  equations on torch tensors. Their parameters have exactly the names, shapes and gate order of
  ``torch.nn.LSTM`` / ``torch.nn.GRU`` / ``torch.nn.RNN`` and their cells, so
  ``ours.load_state_dict(theirs.state_dict())`` works in both directions.
* Models built on them: :class:`CharRNN`, :class:`BiLSTMTagger`, :class:`Encoder`,
  :class:`Decoder`, :class:`BahdanauAttention`, :class:`Seq2Seq`, and the decoders
  :func:`greedy_decode`, :func:`beam_search` (generic) and :func:`beam_decode` (for a Seq2Seq).

Equations (torch's conventions; ``σ`` the logistic sigmoid, ``⊙`` the elementwise product,
row vectors ``x_t: (N, D)``, ``h_t: (N, H)``):

RNN:   ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``

LSTM (gate order i, f, g, o in the fused weights ``W_ih: (4H, D)``, ``W_hh: (4H, H)``)::

    [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      (one matrix product per step)
    i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
    c_t = f ⊙ c_{t-1} + i ⊙ g                                     (no matrix product on c)
    h_t = o ⊙ tanh(c_t)

GRU (gate order r, z, n in ``W_ih: (3H, D)``, ``W_hh: (3H, H)``)::

    r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

Two differences from the lecture notes' GRU (seed 14.11, where the student notes call it an
"LSTM"): the notes write ``h_t = (1 - z_t) h_{t-1} + z_t h̃_t``, so their ``z`` is torch's
``1 - z`` (a "write" gate rather than a "keep" gate; the two parametrisations are equivalent);
and their candidate ``h̃_t = tanh(W [r_{t-1} ⊙ h_{t-1}, x_t])`` uses the *previous* step's reset
gate, a slip for the *current* ``r_t`` (Cho et al., 2014, eq. 6-8). Cho et al. also apply the reset
gate to ``h_{t-1}`` *before* the matrix product (``W_hn (r_t ⊙ h_{t-1})``); torch and cuDNN apply it
*after* (``r_t ⊙ (W_hn h_{t-1} + b_hn)``), which lets all three hidden-side products be fused into
one. This module follows torch.

Time-major vs batch-first: the numpy RNN is time-major (``x: (T, N, D)``); the torch layers take
``batch_first=True`` by default (``(N, T, D)``), like the rest of the course.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = [
    "lstm_cell_forward",
    "additive_attention",
    "BOS",
    "EOS",
    "GRU",
    "LSTM",
    "RNN",
    "UNK",
    "BahdanauAttention",
    "BiLSTMTagger",
    "CharRNN",
    "Decoder",
    "Encoder",
    "EncoderMemory",
    "GRUCell",
    "Hypothesis",
    "LSTMCell",
    "NGramLM",
    "RNNCell",
    "Seq2Seq",
    "beam_decode",
    "beam_search",
    "gradient_norms_through_time",
    "greedy_decode",
    "rnn_backward",
    "rnn_forward",
    "tagging_batch",
]

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"


# ============================================================================================
# n-gram language models
# ============================================================================================
def _as_sentences(tokens: Any) -> list[list[Hashable]]:
    """A str, a sequence of tokens (one stream) or a list of lists of tokens (sentences)."""
    if isinstance(tokens, str):
        return [list(tokens)]
    tokens = list(tokens)
    if tokens and all(isinstance(t, list) for t in tokens):
        return [list(s) for s in tokens]
    if any(isinstance(t, list) for t in tokens):
        raise ValueError("tokens must be one sequence of tokens or a list of sentences (lists), not a mixture")
    return [tokens]


class NGramLM:
    """An n-gram (Markov) language model estimated by counting (seed 14.1).

    ``p(w_1..w_m) = prod_i p(w_i | w_{i-n+1}..w_{i-1})``, every sentence padded with ``n - 1``
    start symbols ``<s>`` on the left and one end symbol ``</s>`` on the right.

    Vocabulary (``self.vocab``, the outcomes the distribution is over): every token seen by
    :meth:`fit`, plus ``</s>`` and ``<unk>``. ``<s>`` only ever appears in contexts and is never
    predicted. Any token not in the vocabulary (in a context or as the predicted token) is read as
    ``<unk>``, which has no training count: it only gets the probability mass smoothing gives to
    unseen events. For every context, seen or not, ``sum_w prob(context, w) = 1`` over ``self.vocab``.

    Smoothing, with ``c(.)`` the training counts and ``V = len(self.vocab)``:

    * ``"add_k"``: ``p(w | h) = (c(h w) + k) / (c(h) + k V)`` (Laplace for ``k = 1``; ``k -> 0``
      gives the maximum-likelihood estimate on seen contexts). An unseen context gives ``1 / V``.
    * ``"kneser_ney"``: interpolated Kneser-Ney (Chen & Goodman, 1998, eq. 17 with one discount per
      order)::

          p(w | h) = max(c(h w) - D, 0) / c(h)  +  D N1+(h •) / c(h) · p(w | h')

      where ``h'`` drops the oldest word of ``h``, ``N1+(h •)`` is the number of distinct words
      seen after ``h``, the highest order uses the counts ``c`` and every lower order the
      continuation counts ``c'(h w) = N1+(• h w)`` (the number of distinct words seen before
      ``h w``). The recursion ends with the uniform distribution ``1 / V`` below the unigrams; a
      context never seen (``c(h) = 0``) hands all its mass to ``p(w | h')``. The discount of each
      order is the standard ``D = n1 / (n1 + 2 n2)`` (Ney, Essen & Kneser, 1994), ``n_r`` the number
      of n-grams of that order with count ``r`` (0.75 when ``n1`` or ``n2`` is zero).
    """

    def __init__(self, n: int, smoothing: str = "add_k", k: float = 1.0) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if smoothing not in ("add_k", "kneser_ney"):
            raise ValueError(f"smoothing must be 'add_k' or 'kneser_ney', got {smoothing!r}")
        if smoothing == "add_k" and not k > 0:
            raise ValueError(f"k must be > 0 for add-k smoothing, got {k!r}")
        self.n, self.smoothing, self.k = n, smoothing, float(k)
        self.vocab: list[Hashable] = []
        self.index: dict[Hashable, int] = {}
        self.discounts: list[float] = []
        self._fitted = False

    # ---------------------------------------------------------------- fitting
    def fit(self, tokens: Sequence[Hashable] | Sequence[Sequence[Hashable]] | str) -> NGramLM:
        """Count n-grams. ``tokens``: one stream of tokens (a ``str`` is a stream of characters)
        or a list of sentences (lists of tokens), each padded separately. Returns ``self``."""
        sentences = _as_sentences(tokens)
        seen = {t for s in sentences for t in s}
        for special in (BOS, EOS, UNK):
            if special in seen:
                raise ValueError(f"the training tokens contain the reserved symbol {special!r}")
        try:
            ordered = sorted(seen)
        except TypeError:
            ordered = sorted(seen, key=repr)
        self.vocab = [*ordered, EOS, UNK]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        n = self.n
        counts: Counter = Counter()
        for s in sentences:
            padded = [BOS] * (n - 1) + s + [EOS]
            counts.update(tuple(padded[i:i + n]) for i in range(len(padded) - n + 1))
        # per order m = 1..n: table[m][context (m-1 tokens)] = Counter(next -> count)
        tables: dict[int, dict[tuple, Counter]] = {m: defaultdict(Counter) for m in range(1, n + 1)}
        for gram, c in counts.items():
            tables[n][gram[:-1]][gram[-1]] += c
        if self.smoothing == "kneser_ney":  # continuation counts: N1+(• h w) = distinct predecessors of (h w)
            for m in range(n - 1, 0, -1):
                for ctx, nxt in tables[m + 1].items():
                    for w in nxt:
                        tables[m][ctx[1:]][w] += 1
        self._tables = {m: dict(t) for m, t in tables.items()}
        self._totals = {m: {h: sum(c.values()) for h, c in t.items()} for m, t in self._tables.items()}
        self.discounts = [0.0] * (n + 1)
        for m in range(1, n + 1):
            freq = Counter(c for nxt in self._tables[m].values() for c in nxt.values())
            n1, n2 = freq.get(1, 0), freq.get(2, 0)
            self.discounts[m] = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.75
        self._fitted = True
        return self

    # ---------------------------------------------------------------- probabilities
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("call fit() before using the model")

    def _context(self, context: Sequence[Hashable] | str) -> tuple:
        """The last n-1 tokens, unknown ones as <unk>, left-padded with <s>."""
        ctx = list(context)[-(self.n - 1):] if self.n > 1 else []
        ctx = [t if (t == BOS or t in self.index) and t != EOS else UNK for t in ctx]
        return tuple([BOS] * (self.n - 1 - len(ctx)) + ctx)

    def _token(self, token: Hashable) -> Hashable:
        return token if token in self.index else UNK

    def _prob(self, ctx: tuple, w: Hashable, m: int) -> float:
        """p(w | last m-1 tokens of ctx) at order m (KN recursion)."""
        V = len(self.vocab)
        if m == 0:
            return 1.0 / V
        h = ctx[len(ctx) - (m - 1):] if m > 1 else ()
        nxt = self._tables[m].get(h)
        lower = self._prob(ctx, w, m - 1)
        if nxt is None:
            return lower
        total, D = self._totals[m][h], self.discounts[m]
        return max(nxt.get(w, 0) - D, 0.0) / total + D * len(nxt) / total * lower

    def prob(self, context: Sequence[Hashable] | str, token: Hashable) -> float:
        """``p(token | context)``: ``context`` any sequence of tokens (only the last ``n - 1`` count;
        shorter ones are left-padded with ``<s>``); unknown tokens are ``<unk>``."""
        self._check_fitted()
        ctx, w = self._context(context), self._token(token)
        if self.smoothing == "add_k":
            nxt = self._tables[self.n].get(ctx)
            V = len(self.vocab)
            if nxt is None:
                return 1.0 / V
            return (nxt.get(w, 0) + self.k) / (self._totals[self.n][ctx] + self.k * V)
        return self._prob(ctx, w, self.n)

    def distribution(self, context: Sequence[Hashable] | str) -> np.ndarray:
        """``(V,)`` float64 array: ``p(w | context)`` for every ``w`` of ``self.vocab`` (sums to 1)."""
        self._check_fitted()
        ctx, V = self._context(context), len(self.vocab)
        if self.smoothing == "add_k":
            nxt = self._tables[self.n].get(ctx)
            if nxt is None:
                return np.full(V, 1.0 / V)
            p = np.full(V, self.k)
            for w, c in nxt.items():
                p[self.index[w]] += c
            return p / (self._totals[self.n][ctx] + self.k * V)
        p = np.full(V, 1.0 / V)
        for m in range(1, self.n + 1):
            h = ctx[len(ctx) - (m - 1):] if m > 1 else ()
            nxt = self._tables[m].get(h)
            if nxt is None:
                continue
            total, D = self._totals[m][h], self.discounts[m]
            top = np.zeros(V)
            for w, c in nxt.items():
                top[self.index[w]] = max(c - D, 0.0)
            p = top / total + D * len(nxt) / total * p
        return p

    def log_prob(self, tokens: Sequence[Hashable] | Sequence[Sequence[Hashable]] | str) -> tuple[float, int]:
        """``(sum of natural-log probabilities, number of predicted tokens)`` of ``tokens`` (same
        formats as :meth:`fit`; every sentence scores its tokens and its final ``</s>``)."""
        self._check_fitted()
        total, count = 0.0, 0
        for s in _as_sentences(tokens):
            padded = [BOS] * (self.n - 1) + s + [EOS]
            for i in range(self.n - 1, len(padded)):
                total += math.log(self.prob(padded[i - self.n + 1:i], padded[i]))
                count += 1
        return total, count

    def perplexity(self, tokens: Sequence[Hashable] | Sequence[Sequence[Hashable]] | str) -> float:
        """``exp(-(1/M) sum_i log p(w_i | context_i))`` over the ``M`` predicted tokens (each
        sentence's tokens and its ``</s>``)."""
        total, count = self.log_prob(tokens)
        return math.exp(-total / count)

    def generate(self, prefix: Sequence[Hashable] | str, length: int,
                 rng: np.random.Generator | int | None = None) -> list[Hashable]:
        """Sample up to ``length`` tokens after ``prefix`` from the model (seed 14.2); stops early,
        without emitting it, when ``</s>`` is drawn. ``rng``: a numpy Generator or a seed."""
        self._check_fitted()
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        history, out = list(prefix), []
        for _ in range(length):
            p = self.distribution(history)
            w = self.vocab[int(rng.choice(len(p), p=p / p.sum()))]
            if w == EOS:
                break
            out.append(w)
            history.append(w)
        return out


# ============================================================================================
# vanilla RNN in numpy, BPTT by hand
# ============================================================================================
def rnn_forward(x: np.ndarray, h0: np.ndarray, Wxh: np.ndarray, Whh: np.ndarray,
                bh: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Vanilla RNN over a whole sequence (seed 14.3), time-major:

    ``h_t = tanh(x_t Wxh + h_{t-1} Whh + bh)``, ``t = 1..T``.

    Shapes: ``x (T, N, D)``, ``h0 (N, H)``, ``Wxh (D, H)``, ``Whh (H, H)``, ``bh (H,)``.
    Returns ``hs (T, N, H)`` (every state ``h_1..h_T``) and a cache for :func:`rnn_backward`.
    """
    x, h0, Wxh, Whh, bh = (np.asarray(a) for a in (x, h0, Wxh, Whh, bh))
    if x.ndim != 3:
        raise ValueError(f"x must be (T, N, D), got shape {x.shape}")
    T, N, D = x.shape
    if Wxh.ndim != 2 or Wxh.shape[0] != D:
        raise ValueError(f"Wxh must be (D={D}, H), got shape {Wxh.shape}")
    H = Wxh.shape[1]
    if Whh.shape != (H, H) or bh.shape != (H,) or h0.shape != (N, H):
        raise ValueError(f"expected Whh ({H}, {H}), bh ({H},), h0 ({N}, {H}); got {Whh.shape}, {bh.shape}, {h0.shape}")
    dtype = np.result_type(x, h0, Wxh, Whh, bh)
    hs = np.empty((T, N, H), dtype=dtype)
    xw = (x.reshape(T * N, D) @ Wxh).reshape(T, N, H) + bh  # input projections of all steps at once
    h = h0
    for t in range(T):
        h = np.tanh(xw[t] + h @ Whh)
        hs[t] = h
    return hs, {"x": x, "h0": h0, "Wxh": Wxh, "Whh": Whh, "hs": hs}


def rnn_backward(dhs: np.ndarray, cache: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Backpropagation through time for :func:`rnn_forward` (seed 14.8).

    ``dhs (T, N, H)``: the gradient of the loss with respect to every state ``h_t`` coming from
    outside the recurrence (e.g. from the output layer; zeros where a state feeds nothing else).
    Walking back from ``t = T``, with ``g_t = dhs_t + da_{t+1} Whh^T`` the total gradient on
    ``h_t`` and ``da_t = g_t ⊙ (1 - h_t^2)`` the gradient on the pre-activation::

        dx_t = da_t Wxh^T,  dWxh = sum_t x_t^T da_t,  dWhh = sum_t h_{t-1}^T da_t,
        dbh = sum_t sum_n da_t,  dh0 = da_1 Whh^T.

    Returns ``{"dx" (T, N, D), "dh0" (N, H), "dWxh" (D, H), "dWhh" (H, H), "dbh" (H,)}``.
    """
    x, h0, Wxh, Whh, hs = cache["x"], cache["h0"], cache["Wxh"], cache["Whh"], cache["hs"]
    dhs = np.asarray(dhs)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of hs {hs.shape}, got {dhs.shape}")
    T, N, D = x.shape
    H = hs.shape[2]
    das = np.empty_like(hs, dtype=np.result_type(hs, dhs))
    dnext = np.zeros((N, H), dtype=das.dtype)
    for t in range(T - 1, -1, -1):
        da = (dhs[t] + dnext) * (1.0 - hs[t] ** 2)
        das[t] = da
        dnext = da @ Whh.T
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)  # (T, N, H)
    flat_da = das.reshape(T * N, H)
    return {
        "dx": (flat_da @ Wxh.T).reshape(T, N, D),
        "dh0": dnext,
        "dWxh": x.reshape(T * N, D).T @ flat_da,
        "dWhh": h_prev.reshape(T * N, H).T @ flat_da,
        "dbh": flat_da.sum(axis=0),
    }


def gradient_norms_through_time(model: Callable[[Tensor], Any], x: Tensor) -> Tensor:
    """How much the last output depends on each input: the vanishing-gradient curve (seed 14.9).

    ``model`` maps ``x: (N, T, D)`` (batch first) to outputs ``(N, T, H)`` — or to a tuple whose
    first element is that, like :class:`LSTM` and ``torch.nn.LSTM(batch_first=True)``. Returns a
    ``(T,)`` tensor whose entry ``t`` is the mean over the batch of the Frobenius norm of the
    Jacobian ``∂ h_T / ∂ x_t`` (``H`` backward passes, one per component of ``h_T``). For a
    vanilla RNN it shrinks geometrically as ``t`` moves away from ``T`` whenever
    ``‖W_hh‖ · max tanh' < 1``.
    """
    if x.ndim != 3:
        raise ValueError(f"x must be (N, T, D), got shape {tuple(x.shape)}")
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        if out.ndim != 3 or out.shape[:2] != x.shape[:2]:
            raise ValueError(f"model must return (N, T, H) outputs, got shape {tuple(out.shape)}")
        last = out[:, -1]  # (N, H)
        sq = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        for k in range(last.shape[1]):
            (g,) = torch.autograd.grad(last[:, k].sum(), x, retain_graph=k + 1 < last.shape[1])
            sq += (g**2).sum(-1)  # samples are independent: row n of g is ∂h_T[n, k] / ∂x[n]
    return sq.sqrt().mean(0)


# ============================================================================================
# cells and layers from the equations
# ============================================================================================
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def lstm_cell_forward(x: Tensor, h: Tensor, c: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Tensor,
                      b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """One LSTM step, functional form (the equations of the module docstring, torch's gate order
    i, f, g, o): ``x (N, D)``, ``h, c (N, H)``, ``W_ih (4H, D)``, ``W_hh (4H, H)``, ``b_ih, b_hh (4H,)``
    -> ``(h_t, c_t)``, each ``(N, H)``. Equal to ``torch.nn.LSTMCell`` with these weights."""
    if x.ndim != 2 or h.ndim != 2 or c.shape != h.shape:
        raise ValueError(f"x must be (N, D) and h, c (N, H); got {tuple(x.shape)}, {tuple(h.shape)}, {tuple(c.shape)}")
    H = h.shape[1]
    if W_ih.shape != (4 * H, x.shape[1]) or W_hh.shape != (4 * H, H) or b_ih.shape != (4 * H,) or b_hh.shape != (4 * H,):
        raise ValueError(f"expected W_ih ({4 * H}, {x.shape[1]}), W_hh ({4 * H}, {H}), b_ih and b_hh ({4 * H},); got "
                         f"{tuple(W_ih.shape)}, {tuple(W_hh.shape)}, {tuple(b_ih.shape)}, {tuple(b_hh.shape)}")
    i, f, g, o = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).chunk(4, dim=1)
    c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_t), c_t


def additive_attention(query: Tensor, values: Tensor, W_e: Tensor, W_d: Tensor, b: Tensor, v: Tensor,
                       mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Additive (Bahdanau) attention, functional form (seeds 15.7-15.9):
    ``s_j = v^T tanh(W_e h_j + W_d q + b)``, ``α = softmax(s)`` over the positions where ``mask`` is
    True, ``c = Σ_j α_j h_j``. ``query (N, Dd)``, ``values (N, S, De)``, ``W_e (A, De)``,
    ``W_d (A, Dd)``, ``b (A,)``, ``v (A,)``, ``mask (N, S) bool | None`` -> ``(context (N, De),
    alpha (N, S))``. Equal to :class:`BahdanauAttention` with ``W_e.weight = W_e``,
    ``W_d.weight = W_d``, ``W_d.bias = b``, ``v.weight = v[None]``."""
    if values.ndim != 3 or query.ndim != 2 or query.shape[0] != values.shape[0]:
        raise ValueError(f"query must be (N, Dd) and values (N, S, De); got {tuple(query.shape)}, {tuple(values.shape)}")
    scores = torch.tanh(values @ W_e.T + (query @ W_d.T + b)[:, None, :]) @ v  # (N, S)
    if mask is not None:
        if mask.shape != scores.shape:
            raise ValueError(f"mask must be {tuple(scores.shape)}, got {tuple(mask.shape)}")
        scores = scores.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(scores, dim=1)
    return (alpha[:, :, None] * values).sum(1), alpha


def _lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """One LSTM step from the input projection ``gx = x W_ih^T + b_ih: (N, 4H)``."""
    gates = gx + (F.linear(h, w_hh, b_hh))  # the four gates in one matrix product
    H = h.shape[1]
    s = torch.sigmoid(gates)  # i, f, o (the g slice is recomputed with tanh below)
    g = torch.tanh(gates[:, 2 * H:3 * H])
    c = s[:, H:2 * H] * c + s[:, :H] * g
    h = s[:, 3 * H:] * torch.tanh(c)
    return h, c


class _LSTMScan(torch.autograd.Function):
    """One direction of one LSTM layer over all T steps, with backpropagation through time written
    by hand (the same equations as :func:`_lstm_step`, whose autograd graph it replaces).

    ``gx (T, N, 4H)``: the input projections ``x_t W_ih^T + b_ih`` of every step (one matrix product
    per layer, outside this function, so autograd carries its gradient on to ``x``, ``W_ih`` and
    ``b_ih``); ``h0, c0 (N, H)``; ``w_hh (4H, H)``; ``b_hh (4H,)`` or None; ``mask (T, N, 1)`` bool or
    None (padded steps keep the state and output zeros); ``reverse``: read the steps T-1 .. 0.
    Returns ``(outputs (T, N, H), h_n, c_n)``.

    Why it is faster than autograd through ``_lstm_step``: each step's forward is one ``addmm`` and
    a handful of in-place elementwise ops with no graph recorded, and the backward of a step is
    one ``(N, 4H) @ (4H, H)`` product plus elementwise gate derivatives, while the gradient of
    ``W_hh`` over all steps is a single ``(4H, T·N) @ (T·N, H)`` product at the end instead of T
    small ones. Backward, step t (``dh``, ``dc``: gradients reaching ``h_t``, ``c_t``)::

        dc  += dh ⊙ o ⊙ (1 - tanh²(c_t))
        d[o] = dh ⊙ tanh(c_t) ⊙ o(1-o)      d[i] = dc ⊙ g ⊙ i(1-i)
        d[f] = dc ⊙ c_{t-1} ⊙ f(1-f)        d[g] = dc ⊙ i ⊙ (1-g²)
        dh_{t-1} = d[i,f,g,o] W_hh           dc_{t-1} = dc ⊙ f
    """

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                mask: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        T, N, G = gx.shape
        H = G // 4
        pre = gx if b_hh is None else gx + b_hh
        acts = torch.empty_like(gx)  # i, f, g, o after their nonlinearities, every step
        hs = gx.new_empty(T, N, H)  # the state h_t after step t (the output too when there is no mask)
        cs = gx.new_empty(T, N, H)  # the state c_t after step t
        tcs = gx.new_empty(T, N, H)  # tanh of the new cell value of step t
        outs = hs if mask is None else gx.new_empty(T, N, H)
        w_t = w_hh.t()
        h, c = h0, c0
        for t in range(T - 1, -1, -1) if reverse else range(T):
            a = torch.addmm(pre[t], h, w_t, out=acts[t])
            a[:, : 2 * H].sigmoid_()
            a[:, 2 * H : 3 * H].tanh_()
            a[:, 3 * H :].sigmoid_()
            c_new = torch.addcmul(a[:, H : 2 * H] * c, a[:, :H], a[:, 2 * H : 3 * H])
            tc = torch.tanh(c_new, out=tcs[t])
            h_new = a[:, 3 * H :] * tc
            if mask is None:
                h = hs[t].copy_(h_new)
                c = cs[t].copy_(c_new)
            else:
                m = mask[t]
                torch.mul(h_new, m, out=outs[t])
                h = torch.where(m, h_new, h, out=hs[t])
                c = torch.where(m, c_new, c, out=cs[t])
        ctx.save_for_backward(acts, hs, cs, tcs, h0, c0, w_hh, mask)
        ctx.reverse, ctx.has_bias = reverse, b_hh is not None
        return outs, h.clone(), c.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_out: Tensor | None, dh_n: Tensor | None, dc_n: Tensor | None) -> tuple[Any, ...]:
        acts, hs, cs, tcs, h0, c0, w_hh, mask = ctx.saved_tensors
        T, N, G = acts.shape
        H = G // 4
        reverse = ctx.reverse
        dh = torch.zeros_like(h0) if dh_n is None else dh_n.clone()
        dc = torch.zeros_like(c0) if dc_n is None else dc_n.clone()
        d_pre = torch.empty_like(acts)
        order = range(T) if reverse else range(T - 1, -1, -1)  # the forward's steps, last first
        for t in order:
            first = t == (T - 1 if reverse else 0)
            prev = (t + 1) if reverse else (t - 1)
            c_prev = c0 if first else cs[prev]
            a, tc = acts[t], tcs[t]
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            dh_new = dh if d_out is None else dh + d_out[t]
            if mask is not None:
                m = mask[t]
                keep = ~m
                dh_pass, dc_pass = dh * keep, dc * keep  # padded step: the state passes through
                dh_new = dh_new * m
                dc = dc * m
            dc = dc + dh_new * o * (1 - tc * tc)
            da = d_pre[t]
            torch.mul(dh_new * tc, o * (1 - o), out=da[:, 3 * H :])
            torch.mul(dc * g, i * (1 - i), out=da[:, :H])
            torch.mul(dc * c_prev, f * (1 - f), out=da[:, H : 2 * H])
            torch.mul(dc * i, 1 - g * g, out=da[:, 2 * H : 3 * H])
            dc = dc * f
            dh = da @ w_hh
            if mask is not None:
                dh = dh + dh_pass
                dc = dc + dc_pass
        # h_{t-1} of every step, in the same layout as d_pre: one product gives dW_hh over all steps
        h_prev = torch.cat([hs[1:], h0[None]]) if reverse else torch.cat([h0[None], hs[:-1]])
        dw_hh = d_pre.reshape(T * N, G).t() @ h_prev.reshape(T * N, H)
        db_hh = d_pre.sum((0, 1)) if ctx.has_bias else None
        return d_pre, dh, dc, dw_hh, db_hh, None, None


def _gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One GRU step (torch's convention, reset gate after the product) from ``gx: (N, 3H)``."""
    gh = F.linear(h, w_hh, b_hh)
    H = h.shape[1]
    rz = torch.sigmoid(gx[:, :2 * H] + gh[:, :2 * H])
    n = torch.tanh(gx[:, 2 * H:] + rz[:, :H] * gh[:, 2 * H:])
    return n + rz[:, H:] * (h - n)  # (1 - z) n + z h


def _rnn_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, relu: bool) -> Tensor:
    a = gx + F.linear(h, w_hh, b_hh)
    return torch.relu(a) if relu else torch.tanh(a)


class _CellBase(nn.Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        G = _GATES[mode] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G))
            self.bias_hh = nn.Parameter(torch.empty(G))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: Tensor, h: Tensor | None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must be (N, {self.input_size}), got shape {tuple(x.shape)}")
        if h is None:
            return x.new_zeros(x.shape[0], self.hidden_size)
        if h.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"state must be ({x.shape[0]}, {self.hidden_size}), got shape {tuple(h.shape)}")
        return h


class RNNCell(_CellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU); ``x (N, D)``, ``h (N, H)`` -> ``h' (N, H)``.
    Parameters as ``torch.nn.RNNCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._check(x, h)
        return _rnn_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh,
                         self.mode == "RNN_RELU")


class LSTMCell(_CellBase):
    """One LSTM step (module docstring; gates i, f, g, o fused in one product): ``x (N, D)``,
    ``state = (h, c)`` each ``(N, H)`` (zeros if None) -> ``(h', c')``. Parameters as ``torch.nn.LSTMCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = (None, None) if state is None else state
        h, c = self._check(x, h), self._check(x, c)
        return _lstm_step(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh, self.bias_hh)


class GRUCell(_CellBase):
    """One GRU step in torch's convention (module docstring: ``h' = (1 - z) n + z h``, the reset
    gate multiplies ``h W_hn^T + b_hn``): ``x (N, D)``, ``h (N, H)`` -> ``h' (N, H)``.
    Parameters as ``torch.nn.GRUCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__("GRU", input_size, hidden_size, bias)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        h = self._check(x, h)
        return _gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)


class _RecurrentLayer(nn.Module):
    """Multi-layer, optionally bidirectional recurrent layer with torch's parameter names
    (``weight_ih_l{k}[_reverse]``, ...), inputs and outputs."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(f"input_size, hidden_size and num_layers must be >= 1, got {input_size}, {hidden_size}, "
                             f"{num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bidirectional, self.batch_first = num_layers, bidirectional, batch_first
        self.bias, self.dropout = bias, dropout
        self.bptt = "autograd"  # LSTM may choose "hand": backpropagation through time written out (_LSTMScan)
        self.num_directions = 2 if bidirectional else 1
        G = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            d_in = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in ("", "_reverse")[: self.num_directions]:
                setattr(self, f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(G, d_in)))
                setattr(self, f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(G, hidden_size)))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(G)))
                    setattr(self, f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(G)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _params(self, layer: int, reverse: bool) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        s = f"l{layer}" + ("_reverse" if reverse else "")
        return (getattr(self, f"weight_ih_{s}"), getattr(self, f"weight_hh_{s}"),
                getattr(self, f"bias_ih_{s}", None), getattr(self, f"bias_hh_{s}", None))

    def _run_direction(self, x: Tensor, h: Tensor, c: Tensor | None, layer: int, reverse: bool,
                       mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """x (T, N, D) time-major; mask (T, N, 1) or None. Returns outputs (T, N, H), h_n, c_n."""
        w_ih, w_hh, b_ih, b_hh = self._params(layer, reverse)
        T = x.shape[0]
        gx = F.linear(x, w_ih, b_ih)  # all input projections in one matrix product: (T, N, G)
        outs: list[Tensor] = [x.new_empty(0)] * T
        steps = range(T - 1, -1, -1) if reverse else range(T)
        relu = self.mode == "RNN_RELU"
        if self.mode == "LSTM" and self.bptt == "hand":
            return _LSTMScan.apply(gx, h, c, w_hh, b_hh, mask, reverse)
        for t in steps:
            if self.mode == "LSTM":
                h_new, c_new = _lstm_step(gx[t], h, c, w_hh, b_hh)
            elif self.mode == "GRU":
                h_new, c_new = _gru_step(gx[t], h, w_hh, b_hh), None
            else:
                h_new, c_new = _rnn_step(gx[t], h, w_hh, b_hh, relu), None
            if mask is None:
                h, c = h_new, c_new
                outs[t] = h
            else:  # padded positions keep the state and output zeros, as pack_padded_sequence does
                m = mask[t]
                h = torch.where(m, h_new, h)
                if c_new is not None:
                    c = torch.where(m, c_new, c)
                outs[t] = h_new * m
        return torch.stack(outs), h, c

    def forward(self, x: Tensor | PackedSequence, hx: Any = None,
                lengths: Tensor | Sequence[int] | None = None) -> tuple[Any, Any]:
        """Run the layer.

        ``x``: ``(N, T, D)`` if ``batch_first`` else ``(T, N, D)``, or a ``PackedSequence`` (the
        output is then packed the same way). ``hx``: initial state ``h0 (L*dirs, N, H)`` (and
        ``c0`` for LSTM, as a tuple), zeros if None. ``lengths (N,)``: true lengths of padded
        sequences — each sequence is then read only over its first ``lengths[n]`` steps (the
        reverse direction starts at its last real step), outputs at padded steps are zero and the
        final states are those at each sequence's last real step: the semantics of
        ``pack_padded_sequence(..., enforce_sorted=False)``.

        Returns ``(output, h_n)`` or, for LSTM, ``(output, (h_n, c_n))``: ``output (N, T, dirs*H)``
        (batch first) and ``h_n, c_n (L*dirs, N, H)`` ordered ``l0, l0_reverse, l1, ...`` like torch.
        """
        packed = isinstance(x, PackedSequence)
        if packed:
            packed_in = x
            x, lengths = pad_packed_sequence(x, batch_first=self.batch_first)
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D ({'N, T, D' if self.batch_first else 'T, N, D'}), got {tuple(x.shape)}")
        xt = x.transpose(0, 1) if self.batch_first else x  # time-major inside
        T, N, D = xt.shape
        if D != self.input_size:
            raise ValueError(f"x has {D} features, the layer expects input_size={self.input_size}")
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            if lengths.shape != (N,) or (lengths < 1).any() or (lengths > T).any():
                raise ValueError(f"lengths must be (N={N},) with values in 1..{T}, got {lengths.tolist()}")
            if bool((lengths < T).any()):
                mask = (torch.arange(T, device=x.device)[:, None] < lengths[None, :])[..., None]  # (T, N, 1)
        LD = self.num_layers * self.num_directions
        shape = (LD, N, self.hidden_size)
        if self.mode == "LSTM":
            h0, c0 = (xt.new_zeros(shape), xt.new_zeros(shape)) if hx is None else hx
            if c0.shape != shape:
                raise ValueError(f"c0 must be {shape}, got {tuple(c0.shape)}")
        else:
            h0, c0 = (xt.new_zeros(shape) if hx is None else hx), None
        if h0.shape != shape:
            raise ValueError(f"h0 must be {shape}, got {tuple(h0.shape)}")
        layer_in, h_n, c_n = xt, [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                out, h, c = self._run_direction(layer_in, h0[k], None if c0 is None else c0[k], layer, d == 1, mask)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
            if self.dropout > 0 and self.training and layer + 1 < self.num_layers:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        output = layer_in.transpose(0, 1) if self.batch_first else layer_in
        state: Any = torch.stack(h_n)
        if self.mode == "LSTM":
            state = (state, torch.stack(c_n))
        if packed:
            bdim = 0 if self.batch_first else 1
            order = packed_in.sorted_indices
            sorted_out = output if order is None else output.index_select(bdim, order)
            sorted_len = lengths if order is None else lengths[order.cpu()]
            p = pack_padded_sequence(sorted_out, sorted_len.cpu(), batch_first=self.batch_first, enforce_sorted=True)
            output = PackedSequence(p.data, p.batch_sizes, packed_in.sorted_indices, packed_in.unsorted_indices)
        return output, state


class RNN(_RecurrentLayer):
    """Vanilla (tanh or ReLU) multi-layer RNN; the signature and parameters of ``torch.nn.RNN``
    (``batch_first=True`` by default). See :meth:`_RecurrentLayer.forward`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, bias: bool = True, dropout: float = 0.0, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bidirectional, batch_first, bias, dropout)


class LSTM(_RecurrentLayer):
    """Multi-layer, optionally bidirectional LSTM written from the equations (module docstring),
    the four gates fused in one matrix product per step and the input projections of all steps in
    one product per layer. Parameters, inputs and outputs as ``torch.nn.LSTM`` (``batch_first=True``
    by default); variable lengths through ``lengths=`` or a ``PackedSequence``.

    ``bptt="hand"`` (the default) runs each direction of each layer through :class:`_LSTMScan`, whose
    backward pass is backpropagation through time written out by hand (about 2x faster on a CPU
    than autograd's graph of T steps); ``bptt="autograd"`` lets autograd differentiate the loop of
    :func:`_lstm_step` instead. The two agree with ``torch.nn.LSTM`` to rounding (tested)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, bias: bool = True, dropout: float = 0.0, bptt: str = "hand") -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bidirectional, batch_first, bias, dropout)
        if bptt not in ("hand", "autograd"):
            raise ValueError(f"bptt must be 'hand' (backpropagation through time written out) or 'autograd', "
                             f"got {bptt!r}")
        self.bptt = bptt


class GRU(_RecurrentLayer):
    """Multi-layer, optionally bidirectional GRU in torch's convention (module docstring).
    Parameters, inputs and outputs as ``torch.nn.GRU`` (``batch_first=True`` by default)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 batch_first: bool = True, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bidirectional, batch_first, bias, dropout)


_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
_TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _make_layer(cell: str, backend: str, input_size: int, hidden_size: int, num_layers: int = 1,
                bidirectional: bool = False, dropout: float = 0.0) -> nn.Module:
    """A batch-first recurrent layer: this module's (``backend="course"``) or torch's (``"torch"``,
    the same parameters, faster on a CPU); they are interchangeable through ``state_dict``."""
    if cell not in _LAYERS:
        raise ValueError(f"cell must be one of {sorted(_LAYERS)}, got {cell!r}")
    if backend not in ("course", "torch"):
        raise ValueError(f"backend must be 'course' or 'torch', got {backend!r}")
    cls = _LAYERS[cell] if backend == "course" else _TORCH_LAYERS[cell]
    return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True,
               dropout=dropout if num_layers > 1 else 0.0)


def _run_layer(layer: nn.Module, x: Tensor, lengths: Tensor | None, hx: Any = None) -> tuple[Tensor, Any]:
    """Run a course or torch layer on padded batch-first ``x`` with optional true ``lengths``."""
    if isinstance(layer, _RecurrentLayer):
        return layer(x, hx, lengths=lengths)
    if lengths is None:
        return layer(x, hx)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, state = layer(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


# ============================================================================================
# character language model and tagger
# ============================================================================================
class CharRNN(nn.Module):
    """Character-level language model (seeds 14.4-14.7): embedding -> multi-layer RNN/LSTM/GRU ->
    linear layer giving next-character logits at every position.

    ``forward(x (N, T) int64, state=None) -> (logits (N, T, V), state)``; train with the
    cross-entropy of ``logits[:, t]`` against ``x[:, t + 1]`` (nats per character).
    ``backend="torch"`` swaps in ``torch.nn.LSTM`` (same parameters) for speed.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 cell: str = "lstm", dropout: float = 0.0, backend: str = "course") -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = _make_layer(cell, backend, embed_dim, hidden_size, num_layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        if x.ndim != 2:
            raise ValueError(f"x must be (N, T) character ids, got shape {tuple(x.shape)}")
        out, state = self.rnn(self.embed(x), state)
        return self.head(self.drop(out)), state

    @torch.no_grad()
    def sample(self, prefix: Sequence[int], length: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> list[int]:
        """``length`` character ids sampled after ``prefix`` (non-empty) from
        ``softmax(logits / temperature)``; ``temperature -> 0`` approaches argmax decoding."""
        if not prefix:
            raise ValueError("prefix must hold at least one character id")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        logits, state = self(torch.tensor([list(prefix)], device=device))
        out: list[int] = []
        for _ in range(length):
            p = torch.softmax(logits[0, -1].double() / temperature, dim=-1)
            nxt = int(torch.multinomial(p.cpu(), 1, generator=generator))
            out.append(nxt)
            logits, state = self(torch.tensor([[nxt]], device=device), state)
        self.train(was_training)
        return out


class BiLSTMTagger(nn.Module):
    """Sequence tagger (POS tagging, seed 14.12): word embeddings (optionally concatenated with a
    character-level BiLSTM encoding of each word, which gives out-of-vocabulary words a vector
    built from their spelling) -> (Bi)LSTM -> linear layer giving tag logits per word.

    ``forward(words (N, T) int64, lengths (N,) | None, chars (N, T, L) int64 | None,
    features (N, T, feature_dim) | None)`` returns ``logits (N, T, tagset_size)``. The LSTM reads,
    per word, ``[e(w_t); c(w_t); f_t]``: the word embedding (left out when ``embed_dim=0``), the
    character encoding (when ``char_vocab_size`` is given; ``chars`` then required) and
    ``feature_dim`` extra per-token features given by the caller (e.g. ELMo vectors,
    :class:`course_lib.contextual.ELMoTagger`; ``features`` then required). ``padding_idx`` pads
    words and characters. The representation of word ``t`` is the concatenation of the forward
    state (reading words ``1..t``) and the backward state (reading ``T..t``). Train with
    ``cross_entropy(..., ignore_index=-100)`` on tags padded with -100.
    """

    def __init__(self, vocab_size: int, tagset_size: int, embed_dim: int = 100, hidden_size: int = 128,
                 num_layers: int = 1, bidirectional: bool = True, dropout: float = 0.0, padding_idx: int = 0,
                 char_vocab_size: int | None = None, char_embed_dim: int = 32, char_hidden_size: int = 32,
                 backend: str = "course", feature_dim: int = 0) -> None:
        super().__init__()
        if embed_dim < 0 or feature_dim < 0:
            raise ValueError(f"embed_dim and feature_dim must be >= 0, got {embed_dim} and {feature_dim}")
        if embed_dim == 0 and feature_dim == 0 and char_vocab_size is None:
            raise ValueError("the tagger needs an input: embed_dim > 0, char_vocab_size or feature_dim > 0")
        self.padding_idx = padding_idx
        self.feature_dim = feature_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx) if embed_dim > 0 else None
        d_in = embed_dim + feature_dim
        self.char_embed = self.char_rnn = None
        if char_vocab_size is not None:
            self.char_embed = nn.Embedding(char_vocab_size, char_embed_dim, padding_idx=padding_idx)
            self.char_rnn = _make_layer("lstm", backend, char_embed_dim, char_hidden_size, 1, bidirectional=True)
            d_in += 2 * char_hidden_size
        self.rnn = _make_layer("lstm", backend, d_in, hidden_size, num_layers, bidirectional, dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), tagset_size)

    def _encode_chars(self, chars: Tensor, word_mask: Tensor) -> Tensor:
        """(N, T, L) character ids -> (N, T, 2 Hc): final forward and backward states per word."""
        N, T, _ = chars.shape
        real = chars[word_mask]  # (M, L): only the real words
        lengths = (real != self.padding_idx).sum(1).clamp(min=1)
        _, state = _run_layer(self.char_rnn, self.char_embed(real), lengths)
        h = state[0]  # (2, M, Hc)
        enc = torch.cat([h[0], h[1]], dim=1)
        out = enc.new_zeros(N, T, enc.shape[1])
        out[word_mask] = enc
        return out

    def forward(self, words: Tensor, lengths: Tensor | Sequence[int] | None = None,
                chars: Tensor | None = None, features: Tensor | None = None) -> Tensor:
        if words.ndim != 2:
            raise ValueError(f"words must be (N, T) ids, got shape {tuple(words.shape)}")
        N, T = words.shape
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=words.device).long()
            word_mask = torch.arange(T, device=words.device)[None, :] < lengths[:, None]
        else:
            word_mask = torch.ones(N, T, dtype=torch.bool, device=words.device)
        parts = [] if self.embed is None else [self.embed(words)]
        if self.char_rnn is not None:
            if chars is None or chars.ndim != 3 or chars.shape[:2] != (N, T):
                raise ValueError(f"chars must be (N={N}, T={T}, L) character ids for a tagger with a character "
                                 f"encoder, got {None if chars is None else tuple(chars.shape)}")
            parts.append(self._encode_chars(chars, word_mask))
        if self.feature_dim:
            if features is None or features.shape != (N, T, self.feature_dim):
                raise ValueError(f"features must be (N={N}, T={T}, {self.feature_dim}) for a tagger with "
                                 f"feature_dim={self.feature_dim}, got {None if features is None else tuple(features.shape)}")
            parts.append(features.to(self.head.weight.dtype))
        elif features is not None:
            raise ValueError("features given to a tagger built with feature_dim=0")
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        out, _ = _run_layer(self.rnn, self.drop(x), lengths)
        return self.head(self.drop(out))


# ============================================================================================
# sequence to sequence with attention
# ============================================================================================
class BahdanauAttention(nn.Module):
    """Additive attention (Bahdanau, Cho & Bengio, 2015; seeds 15.7-15.9).

    ``s_j = v^T tanh(W_e h_j^e + W_d h^d + b)`` (a one-hidden-layer network of width ``attn_dim``),
    ``α_j = softmax_j(s_j)`` over the real (unmasked) source positions, ``c = Σ_j α_j h_j^e``.

    ``forward(query (N, dec_dim), values (N, S, enc_dim), mask (N, S) bool | None, keys=None)``
    returns ``(context (N, enc_dim), alpha (N, S))``; ``mask`` is True at real positions and every
    row needs one. ``keys = project_keys(values)`` can be computed once per source sentence.
    """

    def __init__(self, enc_dim: int, dec_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.enc_dim, self.dec_dim, self.attn_dim = enc_dim, dec_dim, attn_dim
        self.W_e = nn.Linear(enc_dim, attn_dim, bias=False)
        self.W_d = nn.Linear(dec_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, values: Tensor) -> Tensor:
        """``W_e h_j^e`` for every source position: (N, S, enc_dim) -> (N, S, attn_dim)."""
        return self.W_e(values)

    def forward(self, query: Tensor, values: Tensor, mask: Tensor | None = None,
                keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if values.ndim != 3 or values.shape[2] != self.enc_dim:
            raise ValueError(f"values must be (N, S, {self.enc_dim}), got shape {tuple(values.shape)}")
        N, S, _ = values.shape
        if query.shape != (N, self.dec_dim):
            raise ValueError(f"query must be ({N}, {self.dec_dim}), got shape {tuple(query.shape)}")
        keys = self.project_keys(values) if keys is None else keys
        scores = self.v(torch.tanh(keys + self.W_d(query)[:, None, :])).squeeze(2)  # (N, S)
        if mask is not None:
            if mask.shape != (N, S):
                raise ValueError(f"mask must be ({N}, {S}), got shape {tuple(mask.shape)}")
            if not bool(mask.any(1).all()):
                raise ValueError("every row of mask needs at least one real (True) position")
            scores = scores.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(scores, dim=1)
        return torch.bmm(alpha[:, None, :], values).squeeze(1), alpha


@dataclass
class EncoderMemory:
    """What the decoder reads of the source: ``outputs (N, S, E)``, ``mask (N, S)`` (True at real
    positions) and the attention's projected ``keys (N, S, A)`` (None without attention)."""

    outputs: Tensor
    mask: Tensor
    keys: Tensor | None = None

    def select(self, index: Tensor) -> EncoderMemory:
        """The memory of the batch rows ``index`` (e.g. one source row repeated per beam)."""
        return EncoderMemory(self.outputs[index], self.mask[index], None if self.keys is None else self.keys[index])


class Encoder(nn.Module):
    """Source encoder (seed 15.2): embedding -> (Bi)RNN/LSTM/GRU over the source.

    ``forward(src (N, S) int64, lengths (N,) | None) -> (outputs (N, S, dirs*H), state)`` where
    ``state`` is ``h (L, N, dirs*H)`` — or ``(h, c)`` for LSTM — the final state of each layer
    (forward and backward final states concatenated when bidirectional): the context vector that
    initialises the decoder.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 bidirectional: bool = False, dropout: float = 0.0, padding_idx: int = 0,
                 backend: str = "course") -> None:
        super().__init__()
        self.cell, self.num_layers, self.bidirectional = cell, num_layers, bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.rnn = _make_layer(cell, backend, embed_dim, hidden_size, num_layers, bidirectional, dropout)
        self.drop = nn.Dropout(dropout)

    def _merge(self, h: Tensor) -> Tensor:
        if not self.bidirectional:
            return h
        L2, N, H = h.shape
        return h.view(self.num_layers, 2, N, H).transpose(1, 2).reshape(self.num_layers, N, 2 * H)

    def forward(self, src: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        if src.ndim != 2:
            raise ValueError(f"src must be (N, S) ids, got shape {tuple(src.shape)}")
        out, state = _run_layer(self.rnn, self.drop(self.embed(src)), lengths)
        state = tuple(self._merge(s) for s in state) if isinstance(state, tuple) else self._merge(state)
        return out, state


class Decoder(nn.Module):
    """Target decoder, one step at a time (seeds 15.2, 15.6): ``h_t = g(y_{t-1}, h_{t-1}, c_t)``.

    Without attention the RNN reads ``emb(y_{t-1})`` and the only view of the source is the initial
    state (the encoder's final state). With ``attention``, ``c_t = attention(h_{t-1}^top, encoder
    outputs)`` is concatenated to the input embedding and to the top state before the output layer.
    ``step(y_prev (N,), state, memory) -> (logits (N, V), state, alpha (N, S) | None)``; ``state``
    is ``h (L, N, H)`` or ``(h, c)`` for LSTM, laid out like the :class:`Encoder`'s.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1, cell: str = "lstm",
                 attention: BahdanauAttention | None = None, dropout: float = 0.0, padding_idx: int = 0) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.cell, self.hidden_size, self.num_layers, self.attention = cell, hidden_size, num_layers, attention
        ctx = attention.enc_dim if attention is not None else 0
        if attention is not None and attention.dec_dim != hidden_size:
            raise ValueError(f"attention.dec_dim ({attention.dec_dim}) must equal hidden_size ({hidden_size})")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.cells = nn.ModuleList(
            _CELLS[cell](embed_dim + ctx if i == 0 else hidden_size, hidden_size) for i in range(num_layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size + ctx, vocab_size)

    def step(self, y_prev: Tensor, state: Any, memory: EncoderMemory) -> tuple[Tensor, Any, Tensor | None]:
        lstm = self.cell == "lstm"
        h, c = state if lstm else (state, None)
        inp = self.drop(self.embed(y_prev))
        alpha = None
        if self.attention is not None:
            context, alpha = self.attention(h[-1], memory.outputs, memory.mask, memory.keys)
            inp = torch.cat([inp, context], dim=1)
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            if lstm:
                hi, ci = cell(inp, (h[i], c[i]))
                cs.append(ci)
            else:
                hi = cell(inp, h[i])
            hs.append(hi)
            inp = self.drop(hi)
        top = inp if self.attention is None else torch.cat([inp, context], dim=1)
        new_h = torch.stack(hs)
        return self.head(top), ((new_h, torch.stack(cs)) if lstm else new_h), alpha

    def forward(self, tgt_in: Tensor, state: Any, memory: EncoderMemory) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in (N, T)`` (BOS then the target without its last token) ->
        ``(logits (N, T, V), alphas (N, T, S) | None)``."""
        logits, alphas = [], []
        for t in range(tgt_in.shape[1]):
            lg, state, a = self.step(tgt_in[:, t], state, memory)
            logits.append(lg)
            alphas.append(a)
        return torch.stack(logits, 1), (torch.stack(alphas, 1) if self.attention is not None else None)


def _reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[n]`` entries along dim 1 (padding stays at the end)."""
    S = x.shape[1]
    pos = torch.arange(S, device=x.device)[None, :]
    idx = torch.where(pos < lengths[:, None], lengths[:, None] - 1 - pos, pos)
    return x.gather(1, idx if x.ndim == 2 else idx[..., None].expand(-1, -1, x.shape[2]))


class Seq2Seq(nn.Module):
    """Encoder-decoder translation model, without or with Bahdanau attention (seeds 15.2-15.9).

    Sequences are int64 ids padded with ``pad_id``; targets start with ``bos_id`` and end with
    ``eos_id``. ``reverse_source=True`` feeds each source reversed (Sutskever et al., 2014; seed
    15.4); encoder outputs are put back in source order so attention weights index source
    positions. ``forward(src (N, S), tgt_in (N, T), src_lengths=None) -> logits (N, T, V)``; with
    ``return_attention=True`` also ``alphas (N, T, S)`` (None without attention).
    The decoder's hidden size is the encoder's output size (``2 hidden_size`` when bidirectional).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_size: int = 128,
                 num_layers: int = 1, cell: str = "lstm", attention: bool = True, attn_dim: int | None = None,
                 bidirectional_encoder: bool = False, reverse_source: bool = False, dropout: float = 0.0,
                 pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, backend: str = "course") -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id, self.reverse_source = pad_id, bos_id, eos_id, reverse_source
        self.encoder = Encoder(src_vocab_size, embed_dim, hidden_size, num_layers, cell, bidirectional_encoder,
                               dropout, pad_id, backend)
        H = self.encoder.output_size
        attn = BahdanauAttention(H, H, attn_dim or H) if attention else None
        self.decoder = Decoder(tgt_vocab_size, embed_dim, H, num_layers, cell, attn, dropout, pad_id)

    def encode(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None) -> tuple[EncoderMemory, Any]:
        """``(memory, initial decoder state)`` for a padded source batch ``src (N, S)``."""
        if src.ndim != 2:
            raise ValueError(f"src must be (N, S) ids, got shape {tuple(src.shape)}")
        lengths = (src != self.pad_id).sum(1) if src_lengths is None else torch.as_tensor(src_lengths,
                                                                                          device=src.device).long()
        if (lengths < 1).any():
            raise ValueError("every source sequence needs at least one token")
        if self.reverse_source:
            src = _reverse_within(src, lengths)
        out, state = self.encoder(src, lengths)
        if self.reverse_source:
            out = _reverse_within(out, lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        attn = self.decoder.attention
        return EncoderMemory(out, mask, None if attn is None else attn.project_keys(out)), state

    def forward(self, src: Tensor, tgt_in: Tensor, src_lengths: Tensor | Sequence[int] | None = None,
                return_attention: bool = False) -> Any:
        memory, state = self.encode(src, src_lengths)
        logits, alphas = self.decoder(tgt_in, state, memory)
        return (logits, alphas) if return_attention else logits


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: Tensor, max_len: int, src_lengths: Tensor | Sequence[int] | None = None,
                  return_attention: bool = False) -> Any:
    """Argmax decoding of a batch ``src (N, S)``: at each step feed back the most probable token.

    Returns a list of ``N`` token-id lists (without BOS, up to and excluding EOS, at most
    ``max_len`` tokens); with ``return_attention=True`` also a list of ``(len_i + 1, S)`` attention
    matrices (rows = decoding steps including the EOS step when reached; None without attention).
    """
    was_training = model.training
    model.eval()
    memory, state = model.encode(src, src_lengths)
    N = src.shape[0]
    y = torch.full((N,), model.bos_id, dtype=torch.long, device=src.device)
    tokens = torch.full((N, max_len), model.eos_id, dtype=torch.long, device=src.device)
    alphas = []
    done = torch.zeros(N, dtype=torch.bool, device=src.device)
    steps = 0
    for t in range(max_len):
        logits, state, a = model.decoder.step(y, state, memory)
        y = logits.argmax(1)
        tokens[:, t] = torch.where(done, model.eos_id, y)
        alphas.append(a)
        steps = t + 1
        done |= y == model.eos_id
        if bool(done.all()):
            break
    model.train(was_training)
    out, attn = [], []
    for n, row in enumerate(tokens[:, :steps].tolist()):
        seq = row[: row.index(model.eos_id)] if model.eos_id in row else row
        out.append(seq)
        if return_attention:
            k = min(len(seq) + 1, steps)
            attn.append(None if alphas[0] is None else torch.stack([a[n] for a in alphas[:k]]))
    return (out, attn) if return_attention else out


# ============================================================================================
# beam search
# ============================================================================================
@dataclass(frozen=True)
class Hypothesis:
    """A finished beam-search hypothesis: ``tokens`` (ending with EOS unless cut at ``max_len``),
    ``log_prob`` (sum of the token log-probabilities) and ``score`` (``log_prob / lp(len)``)."""

    tokens: tuple[int, ...]
    log_prob: float
    score: float


def _select_rows(state: Any, index: list[int]) -> Any:
    """Rows ``index`` of every tensor/array in a nest of tuples, lists and dicts (None passes)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, torch.tensor(index, dtype=torch.long, device=state.device))
    if isinstance(state, np.ndarray):
        return state[index]
    if isinstance(state, dict):
        return {k: _select_rows(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_select_rows(s, index) for s in state)
    raise TypeError(f"beam_search state must be tensors/arrays nested in tuples, lists or dicts, got {type(state)}")


def _length_penalty(length_penalty: float | Callable[[int], float]) -> Callable[[int], float]:
    if callable(length_penalty):
        return length_penalty
    alpha = float(length_penalty)
    return lambda L: ((5.0 + L) / 6.0) ** alpha


def beam_search(step_fn: Callable[[list[tuple[int, ...]], Any], tuple[Any, Any]], init_state: Any, beam_size: int,
                max_len: int, eos_id: int, length_penalty: float | Callable[[int], float] = 0.0) -> list[Hypothesis]:
    """Beam search keeping the ``beam_size`` best prefixes (seeds 15.2, 15.3).

    ``step_fn(prefixes, state) -> (log_probs (len(prefixes), V), new_state)``: ``prefixes`` are
    the live hypotheses (tuples of token ids; the first call gets ``[()]`` with ``init_state``),
    ``log_probs[b, w] = log p(w | prefixes[b])`` (a tensor or array), and ``state`` /
    ``new_state`` hold tensors or arrays whose leading dimension indexes the prefixes (nested in
    tuples, lists or dicts; None is allowed): the search keeps the rows of the chosen parents.

    Each step scores every one-token extension by its total log-probability and walks the best
    ``2 B`` of them in order: an extension ending in ``eos_id`` that ranks in the top ``B`` is
    finished, the others fill the ``B`` live slots. The search stops when ``B`` hypotheses have
    finished, none is live, or after ``max_len`` tokens (live ones are then finished as they are).
    ``score = log_prob / lp(len(tokens))`` with GNMT's ``lp(L) = ((5 + L) / 6) ** length_penalty``
    (Wu et al., 2016; 0 = no normalisation), or ``length_penalty(L)`` if it is a callable.
    ``beam_size=1`` is greedy decoding. Returns the finished hypotheses, best score first.
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be >= 1, got {beam_size}, {max_len}")
    lp = _length_penalty(length_penalty)
    live: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    state = init_state
    finished: list[Hypothesis] = []
    for step in range(max_len):
        prefixes = [p for p, _ in live]
        log_probs, state = step_fn(prefixes, state)
        lp_arr = log_probs.detach().double().cpu().numpy() if isinstance(log_probs, Tensor) else np.asarray(
            log_probs, dtype=np.float64)
        if lp_arr.ndim != 2 or lp_arr.shape[0] != len(prefixes):
            raise ValueError(f"step_fn must return log_probs of shape ({len(prefixes)}, V), got {lp_arr.shape}")
        V = lp_arr.shape[1]
        flat = (np.array([s for _, s in live])[:, None] + lp_arr).ravel()
        order = np.argsort(-flat, kind="stable")[: 2 * beam_size]
        new_live, parents = [], []
        for rank, idx in enumerate(order):
            score = float(flat[idx])
            if not np.isfinite(score):
                break
            b, w = divmod(int(idx), V)
            tokens = prefixes[b] + (w,)
            if w == eos_id:
                if rank < beam_size:
                    finished.append(Hypothesis(tokens, score, score / lp(len(tokens))))
            elif len(new_live) < beam_size:
                new_live.append((tokens, score))
                parents.append(b)
        live = new_live
        if len(finished) >= beam_size or not live:
            live = []
            break
        if step + 1 < max_len:
            state = _select_rows(state, parents)
    finished += [Hypothesis(t, s, s / lp(len(t))) for t, s in live]
    return sorted(finished, key=lambda h: -h.score)


@torch.no_grad()
def beam_decode(model: Seq2Seq, src: Tensor, beam_size: int, max_len: int,
                length_penalty: float | Callable[[int], float] = 0.0) -> list[Hypothesis]:
    """:func:`beam_search` over a :class:`Seq2Seq` for one source sentence ``src (S,)`` or
    ``(1, S)``; the hypotheses' tokens exclude BOS and end with EOS unless cut at ``max_len``."""
    src = src[None] if src.ndim == 1 else src
    if src.ndim != 2 or src.shape[0] != 1:
        raise ValueError(f"src must be one sentence, (S,) or (1, S), got shape {tuple(src.shape)}")
    was_training = model.training
    model.eval()
    memory, state = model.encode(src)
    lstm = model.decoder.cell == "lstm"
    to_rows = (lambda s: tuple(x.transpose(0, 1) for x in s)) if lstm else (lambda s: s.transpose(0, 1))
    from_rows = (lambda s: tuple(x.transpose(0, 1).contiguous() for x in s)) if lstm else (
        lambda s: s.transpose(0, 1).contiguous())

    def step_fn(prefixes: list[tuple[int, ...]], rows: Any) -> tuple[Tensor, Any]:
        y = torch.tensor([p[-1] if p else model.bos_id for p in prefixes], device=src.device)
        mem = memory.select(torch.zeros(len(prefixes), dtype=torch.long, device=src.device))
        logits, new_state, _ = model.decoder.step(y, from_rows(rows), mem)
        return torch.log_softmax(logits.double(), dim=1), to_rows(new_state)

    hyps = beam_search(step_fn, to_rows(state), beam_size, max_len, model.eos_id, length_penalty)
    model.train(was_training)
    return hyps


def tagging_batch(sentences: Sequence[Sequence[tuple[str, str]]], word_vocab: Any, char_vocab: Any, tag_vocab: Any,
                  max_chars: int = 20) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Tagged sentences ``[[(word, tag), ...], ...]`` -> the inputs of :class:`BiLSTMTagger`.

    Returns word ids ``(N, T)`` (lower-cased words through ``word_vocab``), character ids
    ``(N, T, L)`` with ``L = min(max_chars, longest word)`` (each word cut to ``L`` characters),
    tag ids ``(N, T)`` and lengths ``(N,)``. Padding is id 0 for words and characters and -100 for
    tags (``cross_entropy``'s ``ignore_index``). The vocabularies are :class:`course_lib.text.Vocab`
    (anything with ``encode(list) -> int array``).
    """
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("tagging_batch needs at least one sentence, and no empty sentence")
    n, T = len(sentences), max(len(s) for s in sentences)
    L = min(max_chars, max(len(w) for s in sentences for w, _ in s))
    words, chars = torch.zeros(n, T, dtype=torch.long), torch.zeros(n, T, L, dtype=torch.long)
    tags = torch.full((n, T), -100, dtype=torch.long)
    for i, s in enumerate(sentences):
        words[i, : len(s)] = torch.as_tensor(word_vocab.encode([w.lower() for w, _ in s]), dtype=torch.long)
        tags[i, : len(s)] = torch.as_tensor(tag_vocab.encode([t for _, t in s]), dtype=torch.long)
        for j, (w, _) in enumerate(s):
            cs = char_vocab.encode(list(w[:L]))
            chars[i, j, : len(cs)] = torch.as_tensor(cs, dtype=torch.long)
    return words, chars, tags, torch.tensor([len(s) for s in sentences])
