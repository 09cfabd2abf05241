"""Tests of course_lib.identification against brute-force loops, autograd and scikit-learn.

Every triplet loss is compared with a Python loop over *all* ordered triplets of a small random
batch (random sizes, 1-4 people, so batches without positives or negatives occur), values and
gradients in float64. Mined semi-hard triplets are checked against the inequality and against an
exhaustive search; ROC curves and AUC against ``sklearn.metrics`` on distances with ties;
gallery search and the best threshold against exhaustive searches.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import sklearn.metrics
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.identification import (
    EmbeddingNet,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    best_threshold_accuracy,
    count_triplets,
    gallery_search,
    identity_folds,
    identity_split,
    pairwise_distances,
    pairwise_ranking_loss,
    roc_auc,
    roc_curve,
    semi_hard_triplets,
    triplet_loss,
    verification_accuracy,
    verification_pairs,
)

F64 = torch.float64
SEEDS = range(6)
HYP = settings(max_examples=40, deadline=None)


def batch(seed: int, normalise: bool = True) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Random (N, D) float64 embeddings, (N,) labels of 1-4 people and a margin."""
    rng = random.Random(seed)
    n, dim, people = rng.randint(1, 11), rng.randint(1, 5), rng.randint(1, 4)
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, dim, generator=g, dtype=F64)
    if normalise:
        emb = torch.nn.functional.normalize(emb, dim=1)
    labels = torch.randint(0, people, (n,), generator=g)
    return emb, labels, rng.choice([0.0, 0.2, 0.5, 1.0])


def sq(a: torch.Tensor, b: torch.Tensor, squared: bool = True) -> torch.Tensor:
    d2 = ((a - b) ** 2).sum()
    return d2 if squared else d2.sqrt()


def all_triplets(labels) -> list[tuple[int, int, int]]:
    labels = list(map(int, labels))
    n = len(labels)
    return [
        (a, p, q)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    ]


# --------------------------------------------------------------------------------------------
# distances
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("squared", [True, False])
def test_pairwise_distances_match_a_double_loop(seed, squared):
    emb, _, _ = batch(seed, normalise=False)
    d = pairwise_distances(emb, squared=squared)
    n = len(emb)
    expected = torch.stack([torch.stack([sq(emb[i], emb[j], squared) for j in range(n)]) for i in range(n)])
    torch.testing.assert_close(d, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(d, torch.cdist(emb, emb) ** (2 if squared else 1), rtol=1e-10, atol=1e-10)
    assert torch.equal(d, d.T) and torch.equal(torch.diagonal(d), torch.zeros(n, dtype=F64))


def test_pairwise_distances_gradient_matches_autograd_of_the_loop_and_is_finite_at_zero():
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(5, 3, generator=g, dtype=F64, requires_grad=True)
    weights = torch.rand(5, 5, generator=g, dtype=F64)
    (pairwise_distances(emb, squared=False) * weights).sum().backward()
    ours = emb.grad.clone()
    emb.grad = None
    sum(weights[i, j] * sq(emb[i], emb[j], False) for i in range(5) for j in range(5) if i != j).backward()
    torch.testing.assert_close(ours, emb.grad, rtol=1e-9, atol=1e-9)
    dup = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], dtype=F64, requires_grad=True)
    pairwise_distances(dup, squared=False).sum().backward()
    assert torch.isfinite(dup.grad).all()


def test_shape_errors():
    with pytest.raises(ValueError, match="N, D"):
        pairwise_distances(torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        batch_hard_triplet_loss(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), 0.2)
    with pytest.raises(ValueError, match="integers"):
        batch_all_triplet_loss(torch.zeros(3, 2), torch.zeros(3), 0.2)
    with pytest.raises(ValueError, match="margin"):
        semi_hard_triplets(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), -1.0)
    with pytest.raises(ValueError, match="same shape"):
        triplet_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(2, 2), 0.2)
    with pytest.raises(ValueError, match="share D"):
        gallery_search(torch.zeros(3, 2), torch.zeros(4, 3), 1)
    with pytest.raises(ValueError, match="k must be"):
        gallery_search(torch.zeros(3, 2), torch.zeros(4, 2), 5)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_triplet_loss_is_the_mean_of_the_hinged_formula(seed):
    """seed 10.5: sum_i [||f_a - f_p||^2 - ||f_a - f_n||^2 + alpha]_+ (as a mean), with the [.]_+."""
    g = torch.Generator().manual_seed(seed)
    n = 1 + seed
    a, p, q = (torch.randn(n, 4, generator=g, dtype=F64) for _ in range(3))
    margin = 0.3 * seed
    expected = sum(max(sq(a[i], p[i]).item() - sq(a[i], q[i]).item() + margin, 0.0) for i in range(n)) / n
    assert triplet_loss(a, p, q, margin).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_triplet_loss_is_zero_not_negative_for_an_easy_triplet_and_zero_for_no_triplets():
    """seed 10.5: without [.]_+ (as the notes write it) this triplet would give -3.8."""
    a, p, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.1, 0.0]]), torch.tensor([[2.0, 0.0]])
    assert triplet_loss(a, p, q, 0.2).item() == 0.0
    empty = torch.zeros(0, 3, requires_grad=True)
    loss = triplet_loss(empty, empty, empty, 0.2)
    loss.backward()
    assert loss.item() == 0.0 and empty.grad.shape == (0, 3)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("squared", [True, False])
def test_batch_all_matches_a_loop_over_all_triplets(seed, squared):
    emb, labels, margin = batch(seed)
    emb.requires_grad_(True)
    ours = batch_all_triplet_loss(emb, labels, margin, squared=squared)
    ours.backward()
    grad = emb.grad.clone()
    emb.grad = None
    terms = [
        torch.relu(sq(emb[a], emb[p], squared) - sq(emb[a], emb[q], squared) + margin)
        for a, p, q in all_triplets(labels)
    ]
    positive = [t for t in terms if t.item() > 0]
    if not positive:
        assert ours.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))
        return
    expected = sum(positive) / len(positive)
    expected.backward()
    assert ours.item() == pytest.approx(expected.item(), rel=1e-10)
    torch.testing.assert_close(grad, emb.grad, rtol=1e-8, atol=1e-10)


def test_batch_all_chunks_over_anchors_without_changing_the_result(monkeypatch):
    import course_lib.identification as ident

    emb = torch.nn.functional.normalize(torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=F64))
    labels = torch.arange(20) % 4
    whole = batch_all_triplet_loss(emb, labels, 0.5)
    monkeypatch.setattr(ident, "_BATCH_ALL_ELEMENTS", 3 * 20 * 20)  # 3 anchors per chunk
    assert batch_all_triplet_loss(emb, labels, 0.5).item() == pytest.approx(whole.item(), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("squared", [True, False])
def test_batch_hard_matches_a_loop_over_anchors_positives_and_negatives(seed, squared):
    emb, labels, margin = batch(seed + 100)
    emb.requires_grad_(True)
    ours = batch_hard_triplet_loss(emb, labels, margin, squared=squared)
    ours.backward()
    grad = emb.grad.clone()
    emb.grad = None
    n, lab = len(emb), labels.tolist()
    terms = []
    for a in range(n):
        pos = [sq(emb[a], emb[p], squared) for p in range(n) if p != a and lab[p] == lab[a]]
        neg = [sq(emb[a], emb[q], squared) for q in range(n) if lab[q] != lab[a]]
        if pos and neg:
            terms.append(torch.relu(max(pos, key=lambda t: t.item()) - min(neg, key=lambda t: t.item()) + margin))
    if not terms:
        assert ours.item() == 0.0
        return
    expected = sum(terms) / len(terms)
    expected.backward()
    assert ours.item() == pytest.approx(expected.item(), rel=1e-10, abs=1e-12)
    torch.testing.assert_close(grad, emb.grad, rtol=1e-8, atol=1e-10)


def test_batch_hard_is_an_upper_bound_of_every_triplet_of_its_anchor():
    emb, labels, margin = torch.nn.functional.normalize(torch.randn(16, 4, dtype=F64), dim=1), torch.arange(16) % 4, 0.3
    d = pairwise_distances(emb)
    hardest = {
        a: max(float(torch.relu(d[a, p] - d[a, q] + margin)) for (a2, p, q) in all_triplets(labels) if a2 == a)
        for a in range(16)
    }
    assert batch_hard_triplet_loss(emb, labels, margin).item() == pytest.approx(np.mean(list(hardest.values())))


@st.composite
def labelled_batches(draw):
    n = draw(st.integers(2, 14))
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    dim = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    emb = torch.nn.functional.normalize(
        torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64), dim=1
    )
    margin = draw(st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0]))
    return emb, torch.tensor(labels), margin, draw(st.booleans())


@HYP
@given(labelled_batches())
def test_semi_hard_triplets_satisfy_the_inequality_and_are_the_hardest_semi_hard(case):
    """seed 10.6: semi-hard negatives satisfy d(a,p) < d(a,n) < d(a,p) + alpha (not the notes' "> alpha")."""
    emb, labels, margin, squared = case
    a_idx, p_idx, n_idx = semi_hard_triplets(emb, labels, margin, squared=squared)
    d = pairwise_distances(emb, squared=squared)
    lab = labels.tolist()
    assert a_idx.dtype == p_idx.dtype == n_idx.dtype == torch.int64
    for a, p, q in zip(a_idx.tolist(), p_idx.tolist(), n_idx.tolist()):
        assert a != p and lab[a] == lab[p] and lab[q] != lab[a]
        assert d[a, p] < d[a, q] < d[a, p] + margin
        # their loss lies strictly inside (0, alpha)
        assert 0 < float(d[a, p] - d[a, q] + margin) < margin
    # exhaustive search: exactly the pairs that have a semi-hard negative, each with the closest one
    expected = []
    for a, p in itertools.permutations(range(len(lab)), 2):
        if lab[a] != lab[p]:
            continue
        cands = [q for q in range(len(lab)) if lab[q] != lab[a] and d[a, p] < d[a, q] < d[a, p] + margin]
        if cands:
            expected.append((a, p, min(cands, key=lambda q: (float(d[a, q]), q))))
    assert list(zip(a_idx.tolist(), p_idx.tolist(), n_idx.tolist())) == sorted(expected)


def test_semi_hard_triplets_are_empty_for_a_zero_margin_and_feed_the_triplet_loss():
    emb = torch.nn.functional.normalize(torch.randn(12, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    labels = torch.arange(12) % 3
    assert all(t.numel() == 0 for t in semi_hard_triplets(emb, labels, 0.0))
    a, p, q = semi_hard_triplets(emb, labels, 1.0)
    assert len(a) > 0
    loss = triplet_loss(emb[a], emb[p], emb[q], 1.0)
    assert 0 < loss.item() < 1.0  # every semi-hard triplet has a loss inside (0, alpha)


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise_ranking_loss_matches_a_loop_and_is_the_triplet_loss_for_negative_distances(seed):
    """seed 10.7: sum over pairs in R of [a(x_i) - a(x_j) < 0] -> min, plus its hinge/logistic surrogates."""
    g = torch.Generator().manual_seed(seed)
    hi, lo = torch.randn(7, generator=g, dtype=F64), torch.randn(7, generator=g, dtype=F64)
    diffs = (hi - lo).tolist()
    assert pairwise_ranking_loss(hi, lo, surrogate="zero_one").item() == pytest.approx(np.mean([x < 0 for x in diffs]))
    assert pairwise_ranking_loss(hi, lo, margin=0.7).item() == pytest.approx(np.mean([max(0.7 - x, 0) for x in diffs]))
    assert pairwise_ranking_loss(hi, lo, surrogate="logistic").item() == pytest.approx(
        np.mean([np.log1p(np.exp(-x)) for x in diffs])
    )
    a, p, q = (torch.randn(7, 3, generator=g, dtype=F64) for _ in range(3))
    d_ap, d_an = ((a - p) ** 2).sum(1), ((a - q) ** 2).sum(1)
    assert pairwise_ranking_loss(-d_ap, -d_an, margin=0.4).item() == pytest.approx(triplet_loss(a, p, q, 0.4).item())
    with pytest.raises(ValueError, match="surrogate"):
        pairwise_ranking_loss(hi, lo, surrogate="square")


@HYP
@given(st.lists(st.integers(0, 5), min_size=0, max_size=14))
def test_count_triplets_matches_enumeration(labels):
    assert count_triplets(labels) == len(all_triplets(labels))


def test_count_triplets_of_olivetti_is_quadratic_in_the_data_set():
    """Why not enumerate all triplets: 1.4 million for 400 faces, ~N^2 (m - 1) for m images per person."""
    olivetti = np.arange(400) // 10
    assert count_triplets(olivetti) == 40 * 10 * 9 * 390 == 1_404_000
    assert count_triplets(np.arange(4000) // 10) == 4000 * 9 * 3990  # 10x the people: ~100x the triplets
    assert count_triplets(torch.tensor([0, 0, 1])) == 2


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "channels"), [((3, 1, 64, 64), 1), ((2, 28, 28), 1), ((2, 3, 16, 20), 3)])
def test_embedding_net_outputs_unit_rows_and_trains(shape, channels):
    """seed 10.9: batch -> net -> L2 normalisation."""
    torch.manual_seed(0)
    net = EmbeddingNet(16, in_channels=channels, widths=(8, 16))
    x = torch.randn(shape)
    out = net(x)
    assert out.shape == (shape[0], 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(shape[0]))
    assert not torch.allclose(net.features(x).norm(dim=1), torch.ones(shape[0]))
    batch_hard_triplet_loss(out, torch.arange(shape[0]) % 2, 0.5).backward()
    assert net.body[0].weight.grad is not None
    assert EmbeddingNet(5, normalize=False, widths=(4,))(torch.randn(2, 1, 8, 8)).shape == (2, 5)


def test_embedding_net_rejects_bad_inputs():
    net = EmbeddingNet(8, widths=(4, 4, 4))
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="at least 8x8"):
        net(torch.randn(2, 1, 4, 4))


# --------------------------------------------------------------------------------------------
# splits and pairs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_identity_split_never_shares_a_person(seed):
    labels = np.arange(400) // 10  # Olivetti: image j shows person j // 10
    train, test = identity_split(labels, 10, seed=seed)
    assert len(test) == 100 and len(train) == 300
    assert set(labels[train]).isdisjoint(labels[test])
    assert np.array_equal(np.sort(np.r_[train, test]), np.arange(400))
    assert np.array_equal(test, identity_split(labels, 10, seed=seed)[1])
    assert len(np.unique(labels[test])) == 10
    with pytest.raises(ValueError, match="n_test_identities"):
        identity_split(labels, 40)


@pytest.mark.parametrize("seed", range(6))
def test_identity_folds_test_every_person_once_and_never_share_one(seed):
    rng = np.random.default_rng(seed)
    n_people = int(rng.integers(6, 41))
    labels = rng.permutation(np.repeat(rng.permutation(1000)[:n_people], rng.integers(1, 8, n_people)))
    n_folds = int(rng.integers(2, min(n_people, 7) + 1))
    n_val = int(rng.integers(0, n_people - -(-n_people // n_folds)))
    folds = identity_folds(labels, n_folds, n_val, seed=seed)
    assert len(folds) == n_folds
    tested = np.concatenate([labels[test] for _, _, test in folds])
    assert sorted(np.unique(tested)) == sorted(np.unique(labels)) and len(tested) == len(labels), "each image tested once"
    sizes = [len(np.unique(labels[test])) for _, _, test in folds]
    assert max(sizes) - min(sizes) <= 1, "folds of nearly equal numbers of people"
    for train, val, test in folds:
        assert np.array_equal(np.sort(np.r_[train, val, test]), np.arange(len(labels))), "a fold covers every image"
        people = [set(labels[part]) for part in (train, val, test)]
        assert people[0].isdisjoint(people[1]) and people[0].isdisjoint(people[2]) and people[1].isdisjoint(people[2])
        assert len(people[1]) == n_val and len(people[0]) >= 1
        assert all(np.all(np.diff(part) > 0) for part in (train, val, test)), "sorted index arrays"
    again = identity_folds(labels, n_folds, n_val, seed=seed)
    assert all(np.array_equal(a, b) for fa, fb in zip(folds, again, strict=True) for a, b in zip(fa, fb, strict=True))


def test_identity_folds_refuses_impossible_sizes():
    labels = np.arange(400) // 10
    with pytest.raises(ValueError, match="n_folds"):
        identity_folds(labels, 1)
    with pytest.raises(ValueError, match="n_folds"):
        identity_folds(labels, 41)
    with pytest.raises(ValueError, match="no training people"):
        identity_folds(labels, 4, 30)
    with pytest.raises(ValueError, match="labels"):
        identity_folds(labels.reshape(20, 20), 4)


def test_verification_pairs_all_and_balanced():
    labels = np.array([0, 0, 1, 1, 1, 2])
    i, j, same = verification_pairs(labels)
    assert len(i) == 15 and (i < j).all() and np.array_equal(same, labels[i] == labels[j]) and same.sum() == 4
    i, j, same = verification_pairs(np.arange(100) // 10, 60, seed=3)
    assert same.sum() == 30 and len(same) == 60 and (i < j).all()
    assert np.array_equal(same, (np.arange(100) // 10)[i] == (np.arange(100) // 10)[j])
    assert len(set(zip(i.tolist(), j.tolist()))) == 60
    with pytest.raises(ValueError, match="cannot draw"):
        verification_pairs(labels, 10)


# --------------------------------------------------------------------------------------------
# verification metrics
# --------------------------------------------------------------------------------------------
@st.composite
def scored_pairs(draw):
    n = draw(st.integers(2, 40))
    same = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda s: 0 < sum(s) < len(s)))
    # few distinct values force ties; floats otherwise
    if draw(st.booleans()):
        dist = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    else:
        dist = draw(st.lists(st.floats(0, 4, allow_nan=False), min_size=n, max_size=n))
    return np.array(dist, dtype=np.float64), np.array(same)


@HYP
@given(scored_pairs())
def test_roc_curve_and_auc_match_scikit_learn(case):
    d, same = case
    fpr, tpr, thr = roc_curve(torch.from_numpy(d), torch.from_numpy(same))
    sk_fpr, sk_tpr, sk_thr = sklearn.metrics.roc_curve(same, -d, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], -sk_thr[1:])
    assert thr[0] == -np.inf
    assert roc_auc(d, same) == pytest.approx(sklearn.metrics.roc_auc_score(same, -d), abs=1e-12)


@HYP
@given(scored_pairs())
def test_best_threshold_accuracy_is_the_best_of_all_thresholds(case):
    d, same = case
    acc, thr = best_threshold_accuracy(d, same)
    candidates = [-np.inf, *sorted(set(d.tolist()))]
    accs = [np.mean((d <= t) == same) for t in candidates]
    assert acc == pytest.approx(max(accs)) and thr == candidates[int(np.argmax(accs))]
    assert verification_accuracy(d, same, thr) == pytest.approx(acc)


def test_roc_errors_and_a_perfect_separation():
    with pytest.raises(ValueError, match="both"):
        roc_curve(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(ValueError, match=r"\(P,\)"):
        roc_auc(np.zeros(3), np.zeros(2, dtype=bool))
    d, same = np.array([0.1, 0.2, 0.9, 1.0]), np.array([True, True, False, False])
    assert roc_auc(d, same) == 1.0 and best_threshold_accuracy(d, same) == (1.0, 0.2)


# --------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_gallery_search_matches_brute_force(seed):
    rng = random.Random(seed)
    q, g, dim = rng.randint(1, 6), rng.randint(1, 30), rng.randint(1, 8)
    k = rng.randint(1, g)
    gen = torch.Generator().manual_seed(seed)
    query, gallery = torch.randn(q, dim, generator=gen, dtype=F64), torch.randn(g, dim, generator=gen, dtype=F64)
    dist, idx = gallery_search(query, gallery, k)
    assert dist.shape == idx.shape == (q, k)
    for r in range(q):
        brute = sorted((float(torch.linalg.vector_norm(query[r] - gallery[j])), j) for j in range(g))[:k]
        assert idx[r].tolist() == [j for _, j in brute]
        np.testing.assert_allclose(dist[r].numpy(), [x for x, _ in brute], rtol=1e-9, atol=1e-9)
