"""Tests of course_lib.contextual: the scalar mix against a manual computation, the biLM's
causal structure (the forward LM sees only the past, the backward LM only the future) by
perturbation, padding invariance, the loss against a manual cross-entropy, and contextual vectors
(lecture 17, seeds 17.1-17.3).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.contextual import BiLM, ELMo, ScalarMix, train_bilm
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
