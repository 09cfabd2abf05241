"""Tests of course_lib.sequence.

Oracles: brute-force counting over the raw token lists (n-gram LMs), torch autograd in float64
(BPTT of the numpy RNN), ``torch.nn.RNN/LSTM/GRU`` and their cells with copied weights, including
packed variable-length batches (outputs, final states and every gradient; float64 to 1e-10 and
float32 to 1e-5), explicit loops (attention), and exhaustive enumeration (beam search).
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib import sequence as S
from course_lib.sequence import (
    EOS,
    GRU,
    LSTM,
    RNN,
    UNK,
    BahdanauAttention,
    BiLSTMTagger,
    CharRNN,
    GRUCell,
    LSTMCell,
    NGramLM,
    RNNCell,
    Seq2Seq,
    beam_decode,
    beam_search,
    gradient_norms_through_time,
    greedy_decode,
    rnn_backward,
    rnn_forward,
)

F64 = torch.float64
TOL = {torch.float64: {"rtol": 1e-10, "atol": 1e-10}, torch.float32: {"rtol": 1e-5, "atol": 1e-5}}


# ============================================================================================
# n-gram language models
# ============================================================================================
def random_corpus(seed: int, sentences: bool) -> list:
    rng = random.Random(seed)
    alphabet = "abcde"[: rng.randint(2, 5)]
    if sentences:
        return [[rng.choice(alphabet) for _ in range(rng.randint(0, 8))] for _ in range(rng.randint(1, 6))]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))


def padded_sentences(corpus, n):
    sents = [list(corpus)] if isinstance(corpus, str) else corpus
    return [["<s>"] * (n - 1) + list(s) + [EOS] for s in sents]


def brute_add_k(corpus, n, k, context, token, vocab):
    """(c(h w) + k) / (c(h) + k V) by scanning every padded sentence."""
    V = len(vocab)
    h = tuple((["<s>"] * (n - 1) + [t if t in vocab else UNK for t in context])[-(n - 1):]) if n > 1 else ()
    w = token if token in vocab else UNK
    c_hw = c_h = 0
    for s in padded_sentences(corpus, n):
        for i in range(n - 1, len(s)):
            if tuple(s[i - n + 1:i]) == h:
                c_h += 1
                c_hw += s[i] == w
    return 1 / V if c_h == 0 else (c_hw + k) / (c_h + k * V)


def brute_kneser_ney(corpus, n, context, token, vocab):
    """Interpolated KN written straight from the formula, every count found by scanning n-gram lists."""
    V = len(vocab)
    grams = [tuple(s[i - n + 1:i + 1]) for s in padded_sentences(corpus, n) for i in range(n - 1, len(s))]
    # counts of order m: raw for m = n, continuation (distinct left neighbours) for m < n
    def counts(m):
        if m == n:
            return Counter(grams)
        higher = set(counts(m + 1))
        return Counter(g[1:] for g in higher)

    def discount(m):
        freq = Counter(counts(m).values())
        n1, n2 = freq[1], freq[2]
        return n1 / (n1 + 2 * n2) if n1 and n2 else 0.75

    ctx = (["<s>"] * (n - 1) + [t if t in vocab else UNK for t in context])[-(n - 1):] if n > 1 else []
    w = token if token in vocab else UNK

    def p(m):
        if m == 0:
            return 1 / V
        h = tuple(ctx[len(ctx) - (m - 1):]) if m > 1 else ()
        cm = counts(m)
        follow = {g[-1]: c for g, c in cm.items() if g[:-1] == h}
        if not follow:
            return p(m - 1)
        total, D = sum(follow.values()), discount(m)
        return max(follow.get(w, 0) - D, 0) / total + D * len(follow) / total * p(m - 1)

    return p(n)


def some_contexts(lm, rng, count=6):
    words = [t for t in lm.vocab if t not in (EOS, UNK)] + ["zz-unseen"]
    return [[rng.choice(words) for _ in range(rng.randint(0, lm.n + 1))] for _ in range(count)]


@pytest.mark.parametrize("smoothing", ["add_k", "kneser_ney"])
@pytest.mark.parametrize("seed", range(6))
def test_ngram_probabilities_sum_to_one_for_every_context(smoothing, seed):
    """seed 14.1: p(w | context) is a distribution over the vocabulary for seen and unseen contexts."""
    rng = random.Random(seed)
    corpus = random_corpus(seed, sentences=seed % 2 == 0)
    n = rng.randint(1, 4)
    lm = NGramLM(n, smoothing, k=rng.choice([0.01, 0.5, 1.0])).fit(corpus)
    assert lm.vocab[-2:] == [EOS, UNK] and "<s>" not in lm.vocab
    contexts = some_contexts(lm, rng) + [["zz-unseen"] * n, []]
    for ctx in contexts:
        dist = lm.distribution(ctx)
        assert dist.shape == (len(lm.vocab),) and (dist > 0).all()
        assert dist.sum() == pytest.approx(1.0, abs=1e-12)
        probs = np.array([lm.prob(ctx, w) for w in lm.vocab])
        np.testing.assert_allclose(probs, dist, rtol=1e-12, atol=1e-15)
    assert lm.prob([], "never-seen") == lm.prob([], UNK)


@pytest.mark.parametrize("seed", range(5))
def test_add_k_matches_brute_force_counts(seed):
    rng = random.Random(100 + seed)
    corpus = random_corpus(seed, sentences=seed % 2 == 1)
    n, k = rng.randint(1, 3), rng.choice([0.1, 1.0, 2.0])
    lm = NGramLM(n, "add_k", k).fit(corpus)
    vocab = set(lm.vocab)
    for ctx in some_contexts(lm, rng):
        for w in [*lm.vocab, "zz-unseen"]:
            assert lm.prob(ctx, w) == pytest.approx(brute_add_k(corpus, n, k, ctx, w, vocab), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_kneser_ney_matches_formula_by_brute_force(seed):
    rng = random.Random(200 + seed)
    corpus = random_corpus(seed + 7, sentences=seed % 2 == 0)
    n = rng.randint(1, 3)
    lm = NGramLM(n, "kneser_ney").fit(corpus)
    vocab = set(lm.vocab)
    for ctx in some_contexts(lm, rng, 4):
        for w in lm.vocab:
            assert lm.prob(ctx, w) == pytest.approx(brute_kneser_ney(corpus, n, ctx, w, vocab), rel=1e-12)


def test_kneser_ney_unigram_by_hand():
    """'aab': c(a)=2, c(b)=c(</s>)=1, N=4, n1=2, n2=1 so D=0.5, V=4 (a, b, </s>, <unk>):
    p(a) = 1.5/4 + 0.5*3/4/4 = 0.46875, p(b) = p(</s>) = 0.21875, p(<unk>) = 0.09375."""
    lm = NGramLM(1, "kneser_ney").fit("aab")
    assert lm.discounts[1] == 0.5
    assert [lm.prob([], w) for w in ["a", "b", EOS, UNK]] == pytest.approx([0.46875, 0.21875, 0.21875, 0.09375])


def test_kneser_ney_uses_continuation_counts():
    """'Francisco' is frequent but only after 'San': its unigram (continuation) probability is
    that of a word seen after one distinct word, lower than 'the', seen after several."""
    sents = [["San", "Francisco"]] * 5 + [["see", "the"], ["at", "the"], ["in", "the"]]
    lm = NGramLM(2, "kneser_ney").fit(sents)
    # unseen context: the bigram level is skipped and the continuation unigram decides
    assert lm.prob(["unseen"], "the") > lm.prob(["unseen"], "Francisco")
    assert lm.prob(["San"], "Francisco") > 0.5


def test_perplexity_and_log_prob_chain_rule():
    """seed 14.1: log p(sentence) = sum of the conditional log-probabilities, with </s> at the end."""
    text = "the cat sat on the mat the cat ate".split()
    lm = NGramLM(2, "add_k", k=0.5).fit([text])
    sent = "the cat sat".split()
    manual = math.log(lm.prob([], "the")) + math.log(lm.prob(["the"], "cat")) + math.log(
        lm.prob(["cat"], "sat")) + math.log(lm.prob(["sat"], EOS))
    total, count = lm.log_prob([sent])
    assert count == 4 and total == pytest.approx(manual)
    assert lm.perplexity([sent]) == pytest.approx(math.exp(-manual / 4))


def test_higher_order_fits_training_text_better():
    rng = random.Random(0)
    text = "".join(rng.choice(["abc", "abd", "bca"]) for _ in range(200))
    ppl = [NGramLM(n, "add_k", k=1e-3).fit(text).perplexity(text) for n in (1, 2, 3, 4)]
    assert ppl[0] > ppl[1] > ppl[2] >= ppl[3] * 0.999


def test_generate_is_seeded_and_follows_the_counts():
    """seed 14.2: sampling from a near-deterministic model reproduces the pattern; single-token
    samples follow distribution() (a chi-square-sized tolerance)."""
    lm = NGramLM(3, "add_k", k=1e-9).fit("abc" * 200)  # after "bc": "a" 199 times, "</s>" once
    assert "".join(lm.generate("ab", 9, rng=0)) == "cabcabcab"
    assert lm.generate("ab", 5, rng=3) == lm.generate("ab", 5, rng=np.random.default_rng(3))
    kn = NGramLM(2, "kneser_ney").fit("abracadabra")
    rng = np.random.default_rng(1)
    draws = Counter(tuple(kn.generate("a", 1, rng)) for _ in range(4000))
    p = kn.distribution("a")
    for i, w in enumerate(kn.vocab):
        expected = 4000 * p[i]
        got = draws[(w,)] if w != EOS else draws[()]
        assert abs(got - expected) < 5 * math.sqrt(expected) + 3, (w, got, expected)
    assert lm.generate("ab", 0, rng=0) == []


def test_ngram_errors():
    with pytest.raises(ValueError, match="n must be"):
        NGramLM(0)
    with pytest.raises(ValueError, match="smoothing"):
        NGramLM(2, "witten_bell")
    with pytest.raises(ValueError, match="k must be"):
        NGramLM(2, "add_k", k=0)
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(2).prob([], "a")
    with pytest.raises(ValueError, match="reserved"):
        NGramLM(2).fit([["a", EOS]])
    with pytest.raises(ValueError, match="mixture"):
        NGramLM(2).fit([["a"], "b"])


# ============================================================================================
# numpy RNN and BPTT
# ============================================================================================
def rnn_case(seed):
    rng = np.random.default_rng(seed)
    T, N, D, H = rng.integers(1, 6), rng.integers(1, 4), rng.integers(1, 5), rng.integers(1, 6)
    return (rng.normal(size=(T, N, D)), rng.normal(size=(N, H)), rng.normal(size=(D, H)) * 0.5,
            rng.normal(size=(H, H)) * 0.5, rng.normal(size=H))


@pytest.mark.parametrize("seed", range(8))
def test_rnn_forward_backward_match_torch_autograd(seed):
    """seeds 14.3, 14.8: h_t = tanh(x_t Wxh + h_{t-1} Whh + b) and BPTT against autograd (float64)."""
    arrays = rnn_case(seed)
    hs, cache = rnn_forward(*arrays)
    x, h0, Wxh, Whh, bh = (torch.tensor(a, requires_grad=True) for a in arrays)
    h, ref = h0, []
    for t in range(x.shape[0]):
        h = torch.tanh(x[t] @ Wxh + h @ Whh + bh)
        ref.append(h)
    ref = torch.stack(ref)
    np.testing.assert_allclose(hs, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    dhs = np.random.default_rng(seed + 50).normal(size=hs.shape)
    ref.backward(torch.tensor(dhs))
    grads = rnn_backward(dhs, cache)
    assert set(grads) == {"dx", "dh0", "dWxh", "dWhh", "dbh"}
    for name, t in zip(["dx", "dh0", "dWxh", "dWhh", "dbh"], [x, h0, Wxh, Whh, bh]):
        assert grads[name].shape == tuple(t.shape)
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_rnn_numpy_shape_errors():
    x, h0, Wxh, Whh, bh = rnn_case(0)
    with pytest.raises(ValueError, match="x must be"):
        rnn_forward(x[0], h0, Wxh, Whh, bh)
    with pytest.raises(ValueError, match="Wxh"):
        rnn_forward(x, h0, Wxh.T[:, :1] if Wxh.shape[0] > 1 else np.ones((9, 2)), Whh, bh)
    with pytest.raises(ValueError, match="h0"):
        rnn_forward(x, h0[:, :0], Wxh, Whh, bh)
    hs, cache = rnn_forward(x, h0, Wxh, Whh, bh)
    with pytest.raises(ValueError, match="dhs"):
        rnn_backward(hs[:, :, :0], cache)


def test_gradient_norms_match_bptt_and_vanish_for_an_rnn():
    """seed 14.9: ||∂h_T/∂x_t|| (Frobenius norm of the Jacobian), checked against rnn_backward run
    once per component of h_T; with ||Whh|| = 0.5 the curve falls by > 1e3 over 20 steps."""
    rng = np.random.default_rng(0)
    T, N, D, H = 20, 2, 3, 4
    Wxh = rng.normal(size=(D, H)) * 0.5
    Q, _ = np.linalg.qr(rng.normal(size=(H, H)))
    Whh, bh = 0.5 * Q, rng.normal(size=H) * 0.1
    x = rng.normal(size=(T, N, D))
    layer = RNN(D, H).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.tensor(Wxh.T))
        layer.weight_hh_l0.copy_(torch.tensor(Whh.T))
        layer.bias_ih_l0.copy_(torch.tensor(bh))
        layer.bias_hh_l0.zero_()
    norms = gradient_norms_through_time(layer, torch.tensor(x).transpose(0, 1))
    hs, cache = rnn_forward(x, np.zeros((N, H)), Wxh, Whh, bh)
    sq = np.zeros((T, N))
    for k in range(H):
        dhs = np.zeros_like(hs)
        dhs[-1, :, k] = 1.0
        sq += (rnn_backward(dhs, cache)["dx"] ** 2).sum(-1)
    np.testing.assert_allclose(norms.numpy(), np.sqrt(sq).mean(1), rtol=1e-10)
    assert norms[0] < 1e-3 * norms[-1]
    # torch's own LSTM works as the model too
    assert gradient_norms_through_time(nn.LSTM(D, H, batch_first=True).double(),
                                       torch.tensor(x).transpose(0, 1)).shape == (T,)
    with pytest.raises(ValueError, match="x must be"):
        gradient_norms_through_time(layer, torch.zeros(3, 4))


def test_lstm_passes_the_cell_state_without_matrix_products():
    """seed 14.10: with the forget gate open (f = 1) and the input gate shut (i = 0) the cell state
    is carried unchanged, ∂c_T/∂c_0 = I, however many steps and whatever W_hh."""
    H, D, T = 3, 2, 50
    cell = LSTMCell(D, H).double()
    with torch.no_grad():
        cell.bias_ih[:H] = -1e3  # input gate -> 0
        cell.bias_ih[H:2 * H] = 1e3  # forget gate -> 1
        cell.weight_hh.mul_(5.0)
    c0 = torch.randn(1, H, dtype=F64, requires_grad=True)
    h, c = torch.zeros(1, H, dtype=F64), c0
    for _ in range(T):
        h, c = cell(torch.randn(1, D, dtype=F64), (h, c))
    torch.testing.assert_close(c, c0)
    jac = torch.stack([torch.autograd.grad(c[0, k], c0, retain_graph=True)[0][0] for k in range(H)])
    torch.testing.assert_close(jac, torch.eye(H, dtype=F64))


def test_gru_follows_torch_not_the_notes_r_prev():
    """seed 14.11: the notes' GRU h_t = (1 - z_t) h_{t-1} + z_t h̃_t is torch's GRU with z_notes = 1 - z;
    the candidate must use the current reset gate r_t (the notes' r_{t-1} gives another function),
    applied, in torch's convention, to W_hn h_{t-1} + b_hn."""
    torch.manual_seed(0)
    D, H, N = 3, 4, 2
    cell = GRUCell(D, H).double()
    x, h = torch.randn(N, D, dtype=F64), torch.randn(N, H, dtype=F64)
    Wi, Wh, bi, bh = cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
    gi, gh = x @ Wi.T + bi, h @ Wh.T + bh
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z_notes = 1 - torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    cand = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    notes = (1 - z_notes) * h + z_notes * cand
    torch.testing.assert_close(cell(x, h), notes)
    torch.testing.assert_close(cell(x, h), _torch_cell(nn.GRUCell, cell)(x, h))
    r_prev = torch.sigmoid(torch.randn(N, H, dtype=F64))  # a previous step's reset gate
    wrong = (1 - z_notes) * h + z_notes * torch.tanh(gi[:, 2 * H:] + r_prev * gh[:, 2 * H:])
    assert (cell(x, h) - wrong).abs().max() > 1e-3


# ============================================================================================
# cells and layers against torch
# ============================================================================================
def _torch_cell(cls, ours):
    ref = cls(ours.input_size, ours.hidden_size, bias=ours.bias_ih is not None).to(ours.weight_ih.dtype)
    ref.load_state_dict(ours.state_dict())
    return ref


def _grads(params):
    return [p.grad.clone() for p in params]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("seed", range(3))
def test_cells_match_torch_outputs_and_gradients(kind, seed, dtype):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    N, D, H, bias = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 6), rng.random() < 0.8
    ours = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](D, H, bias=bias).to(dtype)
    ref = _torch_cell({"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind], ours)
    x = torch.randn(N, D, dtype=dtype, requires_grad=True)
    state = [torch.randn(N, H, dtype=dtype, requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    results = []
    for model in (ours, ref):
        for t in [x, *state]:
            t.grad = None
        model.zero_grad()
        out = model(x, tuple(state) if kind == "lstm" else state[0])
        out = torch.cat(out, 1) if kind == "lstm" else out
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out))
        results.append([out.detach(), *(t.grad.clone() for t in [x, *state]), *_grads(model.parameters())])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **TOL[dtype])
    assert ours(x).shape[-1] == H if kind != "lstm" else ours(x)[0].shape == (N, H)


def layer_case(seed):
    rng = random.Random(seed)
    return {
        "kind": rng.choice(["lstm", "gru", "rnn"]) if seed >= 3 else ["lstm", "gru", "lstm"][seed],
        "N": rng.randint(1, 4), "T": rng.randint(1, 6), "D": rng.randint(1, 4), "H": rng.randint(1, 5),
        "num_layers": rng.randint(1, 3), "bidirectional": rng.random() < 0.6, "bias": rng.random() < 0.85,
        "batch_first": rng.random() < 0.7, "variable": rng.random() < 0.6,
    }


OURS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _run_pair(case, dtype, seed, packed_input=False):
    torch.manual_seed(seed)
    kw = {k: case[k] for k in ("num_layers", "bidirectional", "bias", "batch_first")}
    ref = TORCH[case["kind"]](case["D"], case["H"], **kw).to(dtype)
    ours = OURS[case["kind"]](case["D"], case["H"], **kw).to(dtype)
    ours.load_state_dict(ref.state_dict())  # copy weights from torch ...
    ref.load_state_dict(ours.state_dict())  # ... and back
    N, T = case["N"], case["T"]
    shape = (N, T, case["D"]) if case["batch_first"] else (T, N, case["D"])
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    LD = case["num_layers"] * (2 if case["bidirectional"] else 1)
    h0 = torch.randn(LD, N, case["H"], dtype=dtype, requires_grad=True)
    c0 = torch.randn(LD, N, case["H"], dtype=dtype, requires_grad=True)
    hx = (h0, c0) if case["kind"] == "lstm" else h0
    lengths = None
    if case["variable"]:
        lengths = torch.randint(1, T + 1, (N,))
        lengths[torch.randint(N, ())] = T
    results = []
    for which, model in (("ours", ours), ("torch", ref)):
        for t in (x, h0, c0):
            t.grad = None
        if lengths is not None and (which == "torch" or packed_input):
            inp = pack_padded_sequence(x, lengths, batch_first=case["batch_first"], enforce_sorted=False)
            out, state = model(inp, hx)
            out_packed = out
            out, _ = pad_packed_sequence(out, batch_first=case["batch_first"], total_length=T)
        else:
            out, state = model(x, hx, lengths=lengths) if which == "ours" else model(x, hx)
            out_packed = None
        h_n, c_n = state if case["kind"] == "lstm" else (state, None)
        loss = (out * torch.cos(torch.arange(out.numel(), dtype=dtype)).view_as(out)).sum() + (h_n**2).sum()
        if c_n is not None:
            loss = loss + (c_n**3).sum()
        loss.backward()
        grads = [t.grad.clone() for t in (x, h0)] + ([c0.grad.clone()] if c_n is not None else [])
        results.append({"out": out.detach(), "h_n": h_n.detach(), "c_n": None if c_n is None else c_n.detach(),
                        "grads": grads + _grads(model.parameters()), "packed": out_packed})
    return results


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(14))
def test_layers_match_torch_including_variable_lengths(seed, dtype):
    """Multi-layer, bidirectional, with/without bias, batch-first or time-major, padded batches
    with lengths= against torch's packed sequences: outputs, h_n, c_n and every gradient."""
    case = layer_case(seed)
    ours, ref = _run_pair(case, dtype, seed)
    torch.testing.assert_close(ours["out"], ref["out"], **TOL[dtype])
    torch.testing.assert_close(ours["h_n"], ref["h_n"], **TOL[dtype])
    if ref["c_n"] is not None:
        torch.testing.assert_close(ours["c_n"], ref["c_n"], **TOL[dtype])
    assert len(ours["grads"]) == len(ref["grads"])
    for a, b in zip(ours["grads"], ref["grads"]):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layers_accept_packed_sequences(kind):
    case = {"kind": kind, "N": 4, "T": 5, "D": 3, "H": 2, "num_layers": 2, "bidirectional": True, "bias": True,
            "batch_first": True, "variable": True}
    ours, ref = _run_pair(case, torch.float64, 11, packed_input=True)
    torch.testing.assert_close(ours["packed"].data, ref["packed"].data)
    torch.testing.assert_close(ours["packed"].sorted_indices, ref["packed"].sorted_indices)
    torch.testing.assert_close(ours["h_n"], ref["h_n"])
    for a, b in zip(ours["grads"], ref["grads"]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("seed", range(8))
def test_hand_written_lstm_bptt_equals_autograd_bptt(seed):
    """LSTM(bptt="hand") (backward written out, _LSTMScan) against LSTM(bptt="autograd") (autograd
    through the step loop): outputs, final states and every gradient, padded batches and reverse
    directions included, in float64."""
    rng = random.Random(100 + seed)
    N, T, D, H = rng.randint(1, 5), rng.randint(1, 9), rng.randint(1, 4), rng.randint(1, 6)
    kw = {"num_layers": rng.randint(1, 3), "bidirectional": rng.random() < 0.6, "bias": rng.random() < 0.8}
    torch.manual_seed(seed)
    hand = LSTM(D, H, bptt="hand", **kw).double()
    auto = LSTM(D, H, bptt="autograd", **kw).double()
    auto.load_state_dict(hand.state_dict())
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    LD = kw["num_layers"] * (2 if kw["bidirectional"] else 1)
    h0, c0 = (torch.randn(LD, N, H, dtype=torch.float64, requires_grad=True) for _ in range(2))
    lengths = torch.randint(1, T + 1, (N,)) if rng.random() < 0.6 else None
    results = []
    for model in (hand, auto):
        for t in (x, h0, c0):
            t.grad = None
        out, (h_n, c_n) = model(x, (h0, c0), lengths=lengths)
        (out.sin().sum() + (h_n * torch.arange(h_n.numel()).view_as(h_n)).sum() + (c_n**2).sum()).backward()
        results.append([out, h_n, c_n, x.grad, h0.grad, c0.grad, *(p.grad for p in model.parameters())])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_hand_written_lstm_bptt_passes_finite_differences(reverse, masked):
    """torch.autograd.gradcheck of _LSTMScan itself: every input gradient against central differences."""
    T, N, H = 5, 3, 2
    g = torch.Generator().manual_seed(int(reverse) + 2 * int(masked))

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    mask = None
    if masked:
        lengths = torch.tensor([5, 2, 4])
        mask = (torch.arange(T)[:, None] < lengths[None, :])[..., None]
    args = (rand(T, N, 4 * H), rand(N, H), rand(N, H), rand(4 * H, H), rand(4 * H), mask, reverse)
    assert torch.autograd.gradcheck(S._LSTMScan.apply, args, eps=1e-6, atol=1e-7)


def test_layer_errors_and_defaults():
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True)
    assert lstm.batch_first
    out, (h, c) = lstm(torch.randn(2, 5, 3))
    assert out.shape == (2, 5, 8) and h.shape == c.shape == (4, 2, 4)
    with pytest.raises(ValueError, match="features"):
        lstm(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="3-D"):
        lstm(torch.randn(5, 3))
    with pytest.raises(ValueError, match="lengths"):
        lstm(torch.randn(2, 5, 3), lengths=[0, 5])
    with pytest.raises(ValueError, match="h0"):
        GRU(3, 4)(torch.randn(2, 5, 3), torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="x must be"):
        LSTMCell(3, 4)(torch.randn(2, 2))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="bptt"):
        LSTM(3, 4, bptt="numpy")
    assert LSTM(3, 4).bptt == "hand"


# ============================================================================================
# models
# ============================================================================================
def test_char_rnn_backends_agree_and_it_learns_a_pattern():
    """seeds 14.5-14.7: logits over the vocabulary at every position; argmax/sampling continue a learned text."""
    torch.manual_seed(0)
    ours = CharRNN(4, 8, 16, num_layers=2)
    ref = CharRNN(4, 8, 16, num_layers=2, backend="torch")
    ref.load_state_dict(ours.state_dict())
    x = torch.randint(0, 4, (3, 7))
    torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)
    seq = torch.tensor([[0, 1, 2, 3] * 6])
    opt = torch.optim.Adam(ours.parameters(), lr=0.03)
    for _ in range(80):
        logits, _ = ours(seq[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 4), seq[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    g = torch.Generator().manual_seed(0)
    assert ours.sample([0, 1], 6, temperature=0.1, generator=g) == [2, 3, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="temperature"):
        ours.sample([0], 3, temperature=0)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_tagger_direction_padding_and_char_encoder(bidirectional):
    """seed 14.12: a BiLSTM's tag at word 0 depends on the last word; a left-to-right one's does not.
    A sentence gets the same logits alone or padded inside a batch."""
    torch.manual_seed(0)
    tagger = BiLSTMTagger(20, 5, embed_dim=6, hidden_size=7, bidirectional=bidirectional, char_vocab_size=9,
                          char_embed_dim=4, char_hidden_size=3).double()
    words = torch.randint(1, 20, (3, 6))
    lengths = torch.tensor([6, 4, 2])
    chars = torch.randint(1, 9, (3, 6, 5))
    chars[..., 3:] = 0
    out = tagger(words, lengths, chars)
    assert out.shape == (3, 6, 5)
    alone = tagger(words[1:2, :4], [4], chars[1:2, :4])
    torch.testing.assert_close(out[1:2, :4], alone)
    changed = words.clone()
    changed[0, 5] = (changed[0, 5] % 19) + 1
    diff = (tagger(changed, lengths, chars)[0, 0] - out[0, 0]).abs().max()
    assert (diff > 1e-6) if bidirectional else (diff == 0)
    ref = BiLSTMTagger(20, 5, embed_dim=6, hidden_size=7, bidirectional=bidirectional, char_vocab_size=9,
                       char_embed_dim=4, char_hidden_size=3, backend="torch").double()
    ref.load_state_dict(tagger.state_dict())
    torch.testing.assert_close(ref(words, lengths, chars)[1, :4], out[1, :4])
    with pytest.raises(ValueError, match="chars"):
        tagger(words, lengths)


def test_bahdanau_attention_against_a_loop():
    """seeds 15.7-15.9: s_j = v^T tanh(W_e h_j + W_d q + b), α = softmax over real positions, c = Σ α_j h_j."""
    torch.manual_seed(0)
    att = BahdanauAttention(5, 4, 3).double()
    N, Sx = 3, 6
    values, query = torch.randn(N, Sx, 5, dtype=F64), torch.randn(N, 4, dtype=F64)
    lengths = [6, 3, 1]
    mask = torch.arange(Sx)[None] < torch.tensor(lengths)[:, None]
    context, alpha = att(query, values, mask)
    att.requires_grad_(False)
    for n in range(N):
        s = [float(att.v.weight[0] @ torch.tanh(att.W_e.weight @ values[n, j] + att.W_d.weight @ query[n]
                                                 + att.W_d.bias)) for j in range(lengths[n])]
        a = np.exp(np.array(s) - max(s))
        a /= a.sum()
        np.testing.assert_allclose(alpha[n, :lengths[n]].detach().numpy(), a, rtol=1e-12)
        assert (alpha[n, lengths[n]:] == 0).all()
        torch.testing.assert_close(context[n], (torch.tensor(a)[:, None] * values[n, :lengths[n]]).sum(0))
    with pytest.raises(ValueError, match="at least one"):
        att(query, values, torch.zeros(N, Sx, dtype=torch.bool))
    with pytest.raises(ValueError, match="query"):
        att(query[:, :2], values)


def _seq2seq(attention, reverse=False, cell="lstm", bidir=False):
    torch.manual_seed(1)
    return Seq2Seq(9, 8, embed_dim=6, hidden_size=5, num_layers=2, cell=cell, attention=attention,
                   bidirectional_encoder=bidir, reverse_source=reverse).double()


@pytest.mark.parametrize("attention,reverse,cell,bidir", [(True, False, "lstm", False), (False, True, "gru", True),
                                                          (True, True, "lstm", True), (False, False, "rnn", False)])
def test_seq2seq_padding_greedy_and_beam_agree(attention, reverse, cell, bidir):
    """seed 15.2: greedy decoding feeds back the argmax; beam search with B=1 is the same decoding;
    a sentence decodes the same alone or padded in a batch; attention rows sum to 1 on real positions."""
    model = _seq2seq(attention, reverse, cell, bidir)
    src = torch.tensor([[3, 4, 5, 6, 7], [5, 6, 3, 0, 0], [8, 0, 0, 0, 0]])
    tgt_in = torch.tensor([[1, 3, 4, 5], [1, 6, 7, 0], [1, 4, 0, 0]])
    logits, alphas = model(src, tgt_in, return_attention=True)
    assert logits.shape == (3, 4, 8)
    alone = model(src[1:2, :3], tgt_in[1:2])
    torch.testing.assert_close(logits[1:2], alone)
    if attention:
        torch.testing.assert_close(alphas.sum(-1), torch.ones(3, 4, dtype=F64))
        assert (alphas[1, :, 3:] == 0).all()
    else:
        assert alphas is None
    out, attn = greedy_decode(model, src, max_len=6, return_attention=True)
    for n in range(3):
        seq = out[n]
        hyp = beam_decode(model, src[n, : int((src[n] != 0).sum())], beam_size=1, max_len=6)[0]
        assert list(hyp.tokens[: len(seq)]) == seq and (len(hyp.tokens) == len(seq) + 1 or len(seq) == 6)
        feed = torch.tensor([[1, *seq]])
        assert model(src[n:n + 1], feed).argmax(-1)[0, : len(seq)].tolist() == seq
        if attention:
            assert attn[n].shape[1] == 5


def test_reverse_source_reverses_within_lengths():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert S._reverse_within(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


# ============================================================================================
# beam search
# ============================================================================================
def run_beam(table, beam_size, max_len, eos, length_penalty=0.0):
    """beam_search on a probability table ``table(prefix) -> (V,)``. Each call returns as new state
    the (length, token sum) of its prefixes, as a numpy array and a torch tensor: the next call
    must receive exactly the rows of the chosen parents, which the step checks."""

    def step_fn(prefixes, state):
        lengths, sums = state
        if prefixes != [()]:
            assert lengths.tolist() == [len(p) - 1 for p in prefixes], "state rows do not follow the parents"
            assert sums.tolist() == [sum(p[:-1]) for p in prefixes], "state rows do not follow the parents"
        log_probs = torch.log(torch.tensor(np.array([table(p) for p in prefixes])))
        return log_probs, (np.array([len(p) for p in prefixes]), torch.tensor([sum(p) for p in prefixes]))

    return beam_search(step_fn, (np.array([-1]), torch.tensor([-1])), beam_size, max_len, eos, length_penalty)


def random_table(seed, V):
    def table(prefix):
        rng = np.random.default_rng(abs(hash((seed, *prefix))) % 2**32)
        p = rng.dirichlet(np.full(V, 0.7)) + 1e-6
        return p / p.sum()

    return table


def exhaustive(table, V, max_len, eos, alpha):
    out = []

    def rec(prefix, logp):
        for w, p in enumerate(table(prefix)):
            tokens, lp = prefix + (w,), logp + math.log(p)
            if w == eos or len(tokens) == max_len:
                out.append((tokens, lp, lp / ((5 + len(tokens)) / 6) ** alpha))
            else:
                rec(tokens, lp)

    rec((), 0.0)
    return sorted(out, key=lambda t: -t[2])


def greedy(table, max_len, eos):
    prefix, logp = (), 0.0
    while len(prefix) < max_len:
        p = table(prefix)
        w = int(np.argmax(p))
        prefix, logp = prefix + (w,), logp + math.log(p[w])
        if w == eos:
            break
    return prefix, logp


def test_beam_search_beats_greedy_on_a_hand_built_model():
    """seed 15.3: p(a)=0.6, p(b)=0.4 first; after a every token has 1/3, after b EOS has 1. Greedy
    takes a (best sequence 0.6/3 = 0.2); the optimum is b EOS (0.4), found with B = 2."""
    a, b, eos = 0, 1, 2

    def table(prefix):
        if prefix == ():
            return np.array([0.6, 0.4, 1e-12])
        if prefix[0] == a:
            return np.full(3, 1 / 3)
        return np.array([1e-12, 1e-12, 1.0])

    assert greedy(table, 3, eos)[0][0] == a
    assert run_beam(table, 1, 3, eos)[0].tokens == greedy(table, 3, eos)[0]
    best = run_beam(table, 2, 3, eos)[0]
    assert best.tokens == (b, eos) and best.log_prob == pytest.approx(math.log(0.4))
    assert exhaustive(table, 3, 3, eos, 0.0)[0][0] == (b, eos)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), V=st.integers(2, 4), max_len=st.integers(1, 4))
def test_beam_size_one_is_greedy(seed, V, max_len):
    table = random_table(seed, V)
    [hyp] = run_beam(table, 1, max_len, eos=0)
    tokens, logp = greedy(table, max_len, eos=0)
    assert hyp.tokens == tokens and hyp.log_prob == pytest.approx(logp, rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), V=st.integers(2, 3), max_len=st.integers(1, 4),
       alpha=st.sampled_from([0.0, 0.6, 1.0]))
def test_wide_beam_equals_exhaustive_search(seed, V, max_len, alpha):
    """With B at least the number of complete sequences, beam search enumerates them all, ranked
    like exhaustive search (with GNMT's length penalty)."""
    table = random_table(seed, V)
    ref = exhaustive(table, V, max_len, 0, alpha)
    got = run_beam(table, len(ref), max_len, 0, alpha)
    assert [h.tokens for h in got] == [t for t, _, _ in ref]
    np.testing.assert_allclose([h.score for h in got], [s for _, _, s in ref], rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), V=st.integers(2, 5), B=st.integers(2, 4), max_len=st.integers(1, 5))
def test_narrow_beam_returns_true_scores_best_first(seed, V, B, max_len):
    table = random_table(seed, V)
    hyps = run_beam(table, B, max_len, 0, 0.5)
    ref = exhaustive(table, V, max_len, 0, 0.5)
    truth = {t: (lp, s) for t, lp, s in ref}
    assert hyps and [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:
        assert h.log_prob == pytest.approx(truth[h.tokens][0], rel=1e-12)
    assert hyps[0].score <= ref[0][2] + 1e-12


def test_beam_search_errors():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(lambda p, s: (np.zeros((1, 2)), s), None, 0, 3, 0)
    with pytest.raises(ValueError, match="log_probs"):
        beam_search(lambda p, s: (np.zeros((2, 2)), s), None, 2, 3, 0)
    with pytest.raises(TypeError, match="state"):
        beam_search(lambda p, s: (np.log(np.full((len(p), 2), 0.5)), s), "text", 2, 3, 0)


# ------------------------------------------------------------------ functional LSTM step and attention
@pytest.mark.parametrize("seed", range(3))
def test_lstm_cell_forward_equals_torch_lstm_cell(seed):
    """The functional LSTM step (the assignment's answer) equals torch.nn.LSTMCell (float64)."""
    g = torch.Generator().manual_seed(seed)
    N, D, H = (int(v) for v in torch.randint(1, 6, (3,), generator=g))
    ref = nn.LSTMCell(D, H).double()
    x, h, c = (torch.randn(N, k, generator=g, dtype=torch.float64) for k in (D, H, H))
    h_ref, c_ref = ref(x, (h, c))
    h_ours, c_ours = S.lstm_cell_forward(x, h, c, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    torch.testing.assert_close(h_ours, h_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(c_ours, c_ref, atol=1e-12, rtol=0)
    with pytest.raises(ValueError):
        S.lstm_cell_forward(x, h, c, ref.weight_ih[:-1], ref.weight_hh, ref.bias_ih, ref.bias_hh)


@pytest.mark.parametrize("seed", range(3))
def test_additive_attention_equals_bahdanau_module(seed):
    """The functional additive attention equals BahdanauAttention with the same weights, masks included."""
    g = torch.Generator().manual_seed(seed)
    N, S_, De, Dd, A = (int(v) for v in torch.randint(1, 6, (5,), generator=g))
    module = BahdanauAttention(De, Dd, A).double()
    q = torch.randn(N, Dd, generator=g, dtype=torch.float64)
    vals = torch.randn(N, S_, De, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, S_ + 1, (N,), generator=g)
    mask = torch.arange(S_)[None] < lengths[:, None]
    ctx_ref, a_ref = module(q, vals, mask)
    ctx, a = S.additive_attention(q, vals, module.W_e.weight, module.W_d.weight, module.W_d.bias,
                                  module.v.weight[0], mask)
    torch.testing.assert_close(ctx, ctx_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(a, a_ref, atol=1e-12, rtol=0)
    assert bool((a[~mask] == 0).all())


def test_tagging_batch_against_a_plain_loop():
    """S.tagging_batch equals a per-word dictionary lookup on random tagged sentences (pads 0 / -100)."""
    from course_lib.text import Vocab

    rng = np.random.default_rng(3)
    letters = list("abcdeXYZ")
    sents = [[("".join(rng.choice(letters, rng.integers(1, 30))), str(rng.choice(["N", "V", "D"])))
              for _ in range(rng.integers(1, 9))] for _ in range(12)]
    wv = Vocab.build([[w.lower() for w, _ in s] for s in sents[:8]], min_count=1, pad="<pad>", unk="<unk>")
    cv = Vocab.build([list(w) for s in sents[:6] for w, _ in s], min_count=1, pad="<pad>", unk="<unk>")
    tv = Vocab.build([[t for _, t in s] for s in sents], min_count=1)
    words, chars, tags, lengths = S.tagging_batch(sents, wv, cv, tv, max_chars=20)
    T, L = max(map(len, sents)), min(20, max(len(w) for s in sents for w, _ in s))
    assert words.shape == (12, T) and chars.shape == (12, T, L) and tags.shape == (12, T)
    assert lengths.tolist() == [len(s) for s in sents]
    for i, s in enumerate(sents):
        for j in range(T):
            if j >= len(s):
                assert words[i, j] == 0 and tags[i, j] == -100 and not chars[i, j].any()
                continue
            w, t = s[j]
            assert words[i, j] == wv.stoi.get(w.lower(), wv.stoi["<unk>"])
            assert tags[i, j] == tv.stoi[t]
            expect = [cv.stoi.get(c, cv.stoi["<unk>"]) for c in w[:L]] + [0] * (L - min(len(w), L))
            assert chars[i, j].tolist() == expect
    with pytest.raises(ValueError, match="empty sentence"):
        S.tagging_batch([[]], wv, cv, tv)
