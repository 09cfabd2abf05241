"""Tests of course_lib.contextual: the scalar mix against a manual computation, the biLM's
causal structure (the forward LM sees only the past, the backward LM only the future) by
perturbation, padding invariance, the loss against a manual cross-entropy, and contextual vectors
(lecture 17, seeds 17.1-17.3); the tagger that reads ELMo features: the concatenation against a
tagger whose embedding table holds the features, gradients that stop at the frozen biLM, the cached
layers against a batched ``embed``, and a synthetic task only the contextual features solve.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.contextual import BiLM, ELMo, ELMoTagger, ScalarMix, elmo_layers, pad_elmo_layers, train_bilm
from course_lib.sequence import BiLSTMTagger
from course_lib.text import Vocab


def _model(seed: int = 0, **kw) -> BiLM:
    torch.manual_seed(seed)
    cfg = {"embed_dim": 12, "hidden_size": 8, "num_layers": 2}
    cfg.update(kw)
    return BiLM(kw.pop("vocab", 20), **{k: v for k, v in cfg.items() if k != "vocab"}).eval()


@pytest.mark.parametrize("seed", range(3))
def test_scalar_mix_formula(seed):
    """seed 17.3: ELMo_k = gamma * sum_j s_j h_{k,j} with s = softmax(w)."""
    torch.manual_seed(seed)
    L = seed + 2
    mix = ScalarMix(L, gamma=1.0)
    with torch.no_grad():
        mix.scalar_parameters.copy_(torch.randn(L))
        mix.gamma.fill_(0.7)
    h = torch.randn(L, 3, 5, 4)
    w = mix.scalar_parameters.detach()
    s = [torch.exp(w[j]) / torch.exp(w).sum() for j in range(L)]
    manual = 0.7 * sum(s[j] * h[j] for j in range(L))
    torch.testing.assert_close(mix(h), manual)
    torch.testing.assert_close(mix(list(h)), manual)
    torch.testing.assert_close(mix.weights.sum(), torch.tensor(1.0))
    fresh = ScalarMix(L)
    torch.testing.assert_close(fresh(h), h.mean(0))  # w = 0: an equal mix
    fresh(h).sum().backward()
    assert fresh.scalar_parameters.grad is not None and fresh.gamma.grad is not None
    with pytest.raises(ValueError, match="layers"):
        mix(h[:-1])


@pytest.mark.parametrize("proj", [True, False])
def test_embed_shapes_and_token_layer(proj):
    """seed 17.3: the representation stacks [x; x] and [h_fwd; h_bwd] per layer."""
    model = _model(embed_dim=12 if proj else 8)
    ids = torch.randint(1, 20, (3, 7))
    reps = model.embed(ids)
    assert reps.shape == (3, 3, 7, 16)
    x, fwd, bwd = model.states(ids)
    torch.testing.assert_close(reps[0], torch.cat([x, x], -1))
    torch.testing.assert_close(reps[2], torch.cat([fwd[1], bwd[1]], -1))
    f_logits, b_logits = model(ids)
    assert f_logits.shape == b_logits.shape == (3, 7, 20)


@pytest.mark.parametrize("backend", ["course", "torch"])
@pytest.mark.parametrize("k", [0, 3, 6])
def test_directions_see_only_their_side(backend, k):
    """seed 17.1: a biLM, not an autoencoder — perturbing tokens left of k leaves the backward
    states at k unchanged (and changes the forward ones); perturbing right of k leaves the forward
    states at k unchanged."""
    model = _model(backend=backend)
    torch.manual_seed(1)
    ids = torch.randint(1, 20, (2, 7))
    _, fwd, bwd = model.states(ids)
    left, right = ids.clone(), ids.clone()
    left[:, :k] = (left[:, :k] + 5) % 19 + 1
    right[:, k + 1 :] = (right[:, k + 1 :] + 5) % 19 + 1
    _, fwd_l, bwd_l = model.states(left)
    _, fwd_r, bwd_r = model.states(right)
    for j in range(2):
        torch.testing.assert_close(bwd_l[j][:, k], bwd[j][:, k])
        torch.testing.assert_close(fwd_r[j][:, k], fwd[j][:, k])
        if k > 0:
            assert not torch.allclose(fwd_l[j][:, k], fwd[j][:, k])
        if k < 6:
            assert not torch.allclose(bwd_r[j][:, k], bwd[j][:, k])


def test_padding_and_lengths():
    """A sentence padded into a batch gets the same states as alone; padded positions are zero;
    the backward LM starts at each sentence's last real token."""
    model = _model()
    a, b = torch.randint(1, 20, (1, 7)), torch.randint(1, 20, (1, 4))
    batch = torch.zeros(2, 7, dtype=torch.long)
    batch[0], batch[1, :4] = a[0], b[0]
    reps = model.embed(batch, torch.tensor([7, 4]))
    torch.testing.assert_close(reps[:, 1, :4], model.embed(b)[:, 0])
    torch.testing.assert_close(reps[:, 0], model.embed(a)[:, 0])
    assert (reps[:, 1, 4:] == 0).all()
    torch.testing.assert_close(model.embed([b[0].tolist(), a[0].tolist()])[:, 0, :4], reps[:, 1, :4])
    with pytest.raises(ValueError, match="lengths"):
        model.embed(batch, torch.tensor([7, 8]))
    with pytest.raises(ValueError, match="token ids"):
        model.embed(torch.full((1, 3), 25))


def test_loss_matches_manual_cross_entropy():
    """The biLM objective: forward CE of t_{k+1} from position k, backward CE of t_{k-1}, averaged."""
    model = _model()
    ids = torch.randint(1, 20, (2, 6))
    lens = torch.tensor([6, 3])
    f, b = model(ids, lens)
    terms_f = [
        F.cross_entropy(f[n, k : k + 1], ids[n, k + 1 : k + 2]) for n in range(2) for k in range(int(lens[n]) - 1)
    ]
    terms_b = [F.cross_entropy(b[n, k : k + 1], ids[n, k - 1 : k]) for n in range(2) for k in range(1, int(lens[n]))]
    manual = (torch.stack(terms_f).mean() + torch.stack(terms_b).mean()) / 2
    torch.testing.assert_close(model.loss(ids, lens), manual)


def test_same_word_in_two_contexts_gets_different_vectors():
    """seed 17.2: "stick" in "let's stick to ..." and "a wooden stick": the token layer is the
    same, the contextual layers and the scalar mix differ."""
    sents = [["let's", "stick", "to", "the", "plan"], ["a", "wooden", "stick", "broke"]]
    vocab = Vocab.build(sents, min_count=1, pad="<pad>", unk="<unk>")
    torch.manual_seed(0)
    model = BiLM(vocab, embed_dim=8, hidden_size=8).eval()
    reps = model.embed(sents)
    v1, v2 = reps[:, 0, 1], reps[:, 1, 2]  # "stick" at positions 1 and 2
    torch.testing.assert_close(v1[0], v2[0])
    for j in (1, 2):
        assert F.cosine_similarity(v1[j], v2[j], dim=0) < 0.999
    elmo = ELMo(model)
    out = elmo(sents)
    assert out.shape == (2, 5, 16) and not torch.allclose(out[0, 1], out[1, 2])
    assert all(not p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in elmo.parameters() if p.requires_grad) == 3 + 1  # s_0..s_2 and gamma


def test_training_lowers_loss_on_a_repetitive_corpus():
    """train_bilm fits a small corpus: the loss falls well below the uniform log V."""
    import math

    sents = [["the", "cat", "sat", "on", "the", "mat"], ["the", "dog", "sat", "on", "the", "log"]] * 8
    vocab = Vocab.build(sents, min_count=1, pad="<pad>")
    torch.manual_seed(0)
    model = BiLM(vocab, embed_dim=16, hidden_size=16, backend="torch")
    hist = train_bilm(model, sents, epochs=30, batch_size=8, lr=1e-2)
    assert hist[-1] < 0.5 * math.log(len(vocab)) and hist[-1] < hist[0]
    with pytest.raises(ValueError, match="pad"):
        BiLM(Vocab.build(sents, min_count=1), 8, 8)


# --------------------------------------------------------------------------------------------
# ELMo features in a tagger


@pytest.mark.parametrize("backend", ["course", "torch"])
@pytest.mark.parametrize("embed_dim", [0, 5])
def test_tagger_features_are_concatenated_after_the_word_embedding(backend, embed_dim):
    """BiLSTMTagger(feature_dim=F) on features Φ[words] gives the same logits as a plain tagger
    whose embedding table is [E | Φ] (the LSTM reads [e(w_t); f_t]); embed_dim=0 drops e(w_t)."""
    torch.manual_seed(embed_dim)
    V, F_, K = 11, 4, 6
    tagger = BiLSTMTagger(V, K, embed_dim=embed_dim, hidden_size=7, feature_dim=F_, backend=backend).eval()
    ref = BiLSTMTagger(V, K, embed_dim=embed_dim + F_, hidden_size=7, backend=backend).eval()
    phi = torch.randn(V, F_)
    phi[0] = 0.0  # the padding row
    with torch.no_grad():
        table = phi if embed_dim == 0 else torch.cat([tagger.embed.weight, phi], 1)
        ref.embed.weight.copy_(table)
    ref.rnn.load_state_dict(tagger.rnn.state_dict())
    ref.head.load_state_dict(tagger.head.state_dict())
    words = torch.randint(1, V, (3, 6))
    words[1, 4:] = 0
    lengths = torch.tensor([6, 4, 5])
    out = tagger(words, lengths, features=phi[words])
    assert out.shape == (3, 6, K)
    torch.testing.assert_close(out, ref(words, lengths), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="features must be"):
        tagger(words, lengths)
    with pytest.raises(ValueError, match="features must be"):
        tagger(words, lengths, features=phi[words][:, :, :-1])
    with pytest.raises(ValueError, match="feature_dim=0"):
        ref(words, lengths, features=phi[words])
    with pytest.raises(ValueError, match="needs an input"):
        BiLSTMTagger(V, K, embed_dim=0)


def _random_elmo_tagger(seed: int):
    g = np.random.default_rng(seed)
    V, H, L, K = int(g.integers(8, 20)), int(g.integers(3, 9)), int(g.integers(1, 4)), int(g.integers(2, 7))
    torch.manual_seed(seed)
    bilm = BiLM(V, embed_dim=int(g.integers(3, 9)), hidden_size=H, num_layers=L)
    model = ELMoTagger(bilm, vocab_size=13, tagset_size=K, embed_dim=int(g.integers(0, 6)), hidden_size=5)
    N, T = int(g.integers(1, 5)), int(g.integers(2, 8))
    tokens = torch.randint(1, V, (N, T))
    words = torch.randint(1, 13, (N, T))
    lengths = torch.as_tensor(g.integers(1, T + 1, N))
    lengths[0] = T
    return model, bilm, words, tokens, lengths, (V, H, L, K, N, T)


@pytest.mark.parametrize("seed", range(4))
def test_elmo_tagger_features_are_the_scalar_mix_of_the_frozen_layers(seed):
    """seed 17.3 downstream: the features the tagger reads are γ Σ_j s_j h_{k,j} (an explicit loop
    over the layers of BiLM.embed), whether the biLM runs inside (tokens=) or its layers are given;
    the tagger's logits have shape (N, T, K) on random sizes."""
    model, bilm, words, tokens, lengths, (V, H, L, K, N, T) = _random_elmo_tagger(seed)
    with torch.no_grad():
        model.elmo.mix.scalar_parameters.copy_(torch.randn(L + 1))
        model.elmo.mix.gamma.fill_(1.3)
    w = model.elmo.mix.scalar_parameters.detach()
    s = torch.exp(w) / torch.exp(w).sum()
    reps = bilm.eval().embed(tokens, lengths)
    assert reps.shape == (L + 1, N, T, 2 * H)
    manual = 1.3 * sum(s[j] * reps[j] for j in range(L + 1))
    torch.testing.assert_close(model.features(words, lengths, tokens=tokens), manual)
    torch.testing.assert_close(model.features(words, lengths, layers=reps), manual)
    torch.testing.assert_close(model.mix_weights, s)
    logits = model(words, lengths, tokens=tokens)
    assert logits.shape == (N, T, K)
    torch.testing.assert_close(logits, model(words, lengths, layers=reps))
    with pytest.raises(ValueError, match="tokens=|layers="):
        model(words, lengths)
    with pytest.raises(ValueError, match="layers must be"):
        model(words, lengths, layers=reps[1:])


@pytest.mark.parametrize("seed", range(3))
def test_gradients_reach_the_mix_and_the_tagger_but_not_the_frozen_bilm(seed):
    """With freeze=True (the paper's setting) the biLM's parameters have requires_grad=False and
    get no gradient; w, γ and every tagger parameter do, and an optimiser step leaves the biLM as it was."""
    model, bilm, words, tokens, lengths, (*_, K, N, T) = _random_elmo_tagger(seed)
    before = {k: v.clone() for k, v in bilm.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    expected = list(model.elmo.mix.parameters()) + list(model.tagger.parameters())
    assert {id(p) for p in trainable} == {id(p) for p in expected}
    opt = torch.optim.SGD(trainable, lr=0.5)
    tags = torch.randint(0, K, (N, T))
    loss = F.cross_entropy(model(words, lengths, tokens=tokens).reshape(-1, K), tags.reshape(-1))
    loss.backward()
    for p in bilm.parameters():
        assert not p.requires_grad and p.grad is None
    for p in expected:
        assert p.grad is not None
    assert model.elmo.mix.scalar_parameters.grad.abs().sum() > 0 and model.elmo.mix.gamma.grad.abs() > 0
    opt.step()
    for k, v in bilm.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # not frozen: the gradient goes on into the biLM
    torch.manual_seed(seed)
    free = ELMoTagger(BiLM(9, 4, 4), vocab_size=5, tagset_size=3, embed_dim=2, hidden_size=3, freeze=False)
    free(torch.randint(1, 5, (2, 4)), tokens=torch.randint(1, 9, (2, 4))).sum().backward()
    assert all(p.grad is not None for p in free.elmo.bilm.embedding.parameters())


@pytest.mark.parametrize("seed", range(3))
def test_cached_layers_padded_equal_the_batched_embed(seed):
    """elmo_layers computes each sentence's (L + 1, n_i, 2H) stack once; pad_elmo_layers of a batch
    of them equals BiLM.embed of the padded batch (the states do not depend on the padding)."""
    g = np.random.default_rng(seed)
    torch.manual_seed(seed)
    bilm = BiLM(15, 6, 5, num_layers=int(g.integers(1, 4)), backend="torch" if seed % 2 else "course")
    sents = [g.integers(1, 15, int(g.integers(1, 9))).tolist() for _ in range(7)]
    cache = elmo_layers(bilm.train(), sents, batch_size=3)
    assert bilm.training  # the mode is restored
    assert [c.shape for c in cache] == [(bilm.num_layers + 1, len(s), 10) for s in sents]
    assert not any(c.requires_grad for c in cache)
    pick = [5, 0, 3]
    T = max(len(sents[i]) for i in pick)
    ids = torch.zeros(3, T, dtype=torch.long)
    for r, i in enumerate(pick):
        ids[r, : len(sents[i])] = torch.tensor(sents[i])
    lengths = torch.tensor([len(sents[i]) for i in pick])
    torch.testing.assert_close(pad_elmo_layers([cache[i] for i in pick]), bilm.eval().embed(ids, lengths))
    with pytest.raises(ValueError, match="same L"):
        pad_elmo_layers([cache[0], cache[1][:, :, :4]])
    with pytest.raises(ValueError, match="no sentences"):
        pad_elmo_layers([])


def _tag_accuracy(model, batches, use_elmo, epochs, lr=1e-2):
    train, test = batches
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(epochs):
        model.train()
        for words, layers, tags in train:
            logits = model(words, layers=layers) if use_elmo else model(words)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tags.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    words, layers, tags, is_amb = test
    with torch.no_grad():
        pred = (model(words, layers=layers) if use_elmo else model(words)).argmax(-1)
    return float((pred[is_amb] == tags[is_amb]).float().mean())


def test_elmo_features_disambiguate_by_context_that_static_embeddings_cannot_see():
    """The case ELMo is for (few labels, a large unlabelled corpus). Two classes of 10 words, A and
    B, and one ambiguous word "w" whose tag is the class of its sentence. The biLM reads 600
    unlabelled class-pure sentences with all 20 words; the taggers see labelled sentences of words
    0-4 of each class only and are tested on sentences of words 5-9. To the static tagger (a
    BiLSTM over word embeddings) every context word of a test sentence is <unk>, so it tags "w" at
    the ambiguity rate (50 %); the frozen biLM has seen words 5-9 in context, so with its features
    the same tagger tags "w" (near) perfectly."""
    g = np.random.default_rng(0)
    words_of = {c: [f"{c}{i}" for i in range(10)] for c in "ab"}

    def sentences(n, which):
        out = []
        for _ in range(n):
            c = "ab"[int(g.integers(2))]
            sent = [str(x) for x in g.choice([words_of[c][i] for i in which], int(g.integers(3, 6)))]
            sent.insert(int(g.integers(0, len(sent) + 1)), "w")
            out.append((sent, [c.upper()] * len(sent)))
        return out

    corpus = [s for s, _ in sentences(600, range(10))]
    train, test = sentences(120, range(5)), sentences(200, range(5, 10))
    bilm_vocab = Vocab.build(corpus, min_count=1, pad="<pad>", unk="<unk>")
    tag_vocab = Vocab.build([s for s, _ in train], min_count=1, pad="<pad>", unk="<unk>")
    torch.manual_seed(0)
    bilm = BiLM(bilm_vocab, embed_dim=16, hidden_size=16, num_layers=2, backend="torch")
    train_bilm(bilm, corpus, epochs=8, batch_size=32, lr=1e-2)
    cache = {id(s): x for s, x in zip([s for s, _ in train + test], elmo_layers(bilm, [s for s, _ in train + test]))}

    def batch(data):
        ids, _ = tag_vocab.encode_batch([s for s, _ in data])
        tags = torch.tensor([[0 if t == "A" else 1 for t in ts] + [-100] * (ids.shape[1] - len(ts)) for _, ts in data])
        amb = torch.tensor([[w == "w" for w in s] + [False] * (ids.shape[1] - len(s)) for s, _ in data])
        return ids, pad_elmo_layers([cache[id(s)] for s, _ in data]), tags, amb

    train_b = [batch(train[i : i + 16])[:3] for i in range(0, len(train), 16)]
    test_b = batch(test)
    assert float((test_b[0][test_b[3]] == tag_vocab.unk_id).float().mean()) == 0  # "w" itself is known
    kw = {"embed_dim": 8, "hidden_size": 16, "padding_idx": tag_vocab.pad_id, "backend": "torch"}
    torch.manual_seed(1)
    static = BiLSTMTagger(len(tag_vocab), 2, **kw)
    torch.manual_seed(1)
    elmo = ELMoTagger(bilm, len(tag_vocab), 2, **kw)
    acc_static = _tag_accuracy(static, (train_b, test_b), False, epochs=15)
    acc_elmo = _tag_accuracy(elmo, (train_b, test_b), True, epochs=15)
    assert acc_elmo >= 0.95, acc_elmo
    assert acc_static <= 0.65, acc_static
