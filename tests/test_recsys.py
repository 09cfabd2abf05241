"""Tests of course_lib.recsys against brute-force loops, scikit-learn's ndcg_score, manual
computations of the models' formulas, and split invariants on MovieLens-100k (lecture 17).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import ndcg_score

from course_lib.data import load_movielens_100k
from course_lib.recsys import (
    DSSM,
    GMF,
    MatrixFactorization,
    MLPRec,
    NeuMF,
    Popularity,
    evaluate_ranking,
    hit_rate_at_k,
    leave_one_out_split,
    ndcg_at_k,
    sample_negatives,
    score_candidates,
    target_ranks,
    train_recommender,
)


@pytest.fixture(scope="module")
def ml100k():
    return load_movielens_100k()


# ============================================================================================
# metrics
# ============================================================================================
def _brute_force(scores: np.ndarray, target: np.ndarray, k: int, ties: str) -> tuple[float, float]:
    """Loop over users; the 'average' case enumerates every position the target can take among
    its tied candidates."""
    hrs, ndcgs = [], []
    for row, t in zip(scores, target):
        above = sum(1 for c, v in enumerate(row) if c != t and v > row[t])
        tied = sum(1 for c, v in enumerate(row) if c != t and v == row[t])
        ranks = {"optimistic": [above + 1], "pessimistic": [above + tied + 1],
                 "average": list(range(above + 1, above + tied + 2))}[ties]  # fmt: skip
        hrs.append(np.mean([r <= k for r in ranks]))
        ndcgs.append(np.mean([(1 / math.log2(r + 1)) if r <= k else 0.0 for r in ranks]))
    return float(np.mean(hrs)), float(np.mean(ndcgs))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", ["average", "pessimistic", "optimistic"])
def test_metrics_against_brute_force(seed, ties):
    rng = np.random.default_rng(seed)
    U, C = int(rng.integers(1, 30)), int(rng.integers(1, 40))
    scores = rng.integers(0, 6, size=(U, C)).astype(float)  # few values: many ties
    target = rng.integers(0, C, size=U)
    k = int(rng.integers(1, C + 2))
    hr, nd = _brute_force(scores, target, k, ties)
    assert hit_rate_at_k(scores, target, k, ties) == pytest.approx(hr)
    assert ndcg_at_k(torch.tensor(scores), torch.tensor(target), k, ties) == pytest.approx(nd)


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn_including_ties(seed):
    """With ties="average", NDCG@k equals scikit-learn's ndcg_score on one-hot relevance (which
    averages the gains of tied candidates); with distinct scores all tie modes agree."""
    rng = np.random.default_rng(seed)
    U, C, k = 40, 20, int(rng.integers(1, 12))
    target = rng.integers(0, C, size=U)
    rel = np.eye(C)[target]
    for scores in (rng.integers(0, 4, size=(U, C)).astype(float), rng.normal(size=(U, C))):
        assert ndcg_at_k(scores, target, k) == pytest.approx(ndcg_score(rel, scores, k=k))
    distinct = rng.normal(size=(U, C))
    assert ndcg_at_k(distinct, target, k, "pessimistic") == pytest.approx(ndcg_at_k(distinct, target, k, "optimistic"))


def test_metric_edge_cases():
    s = np.zeros((3, 100))
    assert hit_rate_at_k(s, 0, 10, "pessimistic") == 0.0  # a constant scorer gains nothing
    assert hit_rate_at_k(s, 0, 10, "optimistic") == 1.0
    assert hit_rate_at_k(s, 0, 10) == pytest.approx(0.1)  # random ordering: k / C
    perfect = np.tile(np.arange(100.0)[::-1], (3, 1))
    assert hit_rate_at_k(perfect, 0, 1) == 1.0 and ndcg_at_k(perfect, 0, 1) == 1.0
    assert ndcg_at_k(perfect, np.array([1, 1, 1]), 10) == pytest.approx(1 / math.log2(3))
    above, tied = target_ranks(np.array([[1.0, 3.0, 1.0, 0.0]]), 0)
    assert above.tolist() == [1] and tied.tolist() == [1]
    with pytest.raises(ValueError, match="scores"):
        hit_rate_at_k(np.zeros(5), 0, 1)
    with pytest.raises(ValueError, match="target_col"):
        hit_rate_at_k(s, np.array([0, 100, 1]), 1)
    with pytest.raises(ValueError, match="k"):
        ndcg_at_k(s, 0, 0)
    with pytest.raises(ValueError, match="ties"):
        ndcg_at_k(s, 0, 5, "random")
    with pytest.raises(ValueError, match="NaN"):
        ndcg_at_k(np.full((1, 3), np.nan), 0, 1)


# ============================================================================================
# protocol on MovieLens-100k
# ============================================================================================
def test_leave_one_out_split_invariants(ml100k):
    """NCF's protocol on ML-100k: one test row per user (943), each the user's latest rating;
    train and test partition the 100,000 ratings (seed 17.5's framework, state of the split)."""
    ratings = ml100k.ratings
    train, test = leave_one_out_split(ratings)
    assert test.shape == (943, 4) and train.shape == (99_057, 4)
    assert np.array_equal(test[:, 0], np.arange(943))
    latest = np.full(943, -1)
    np.maximum.at(latest, ratings[:, 0], ratings[:, 3])
    assert np.array_equal(test[:, 3], latest)
    both = np.concatenate([train, test])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, ratings.tolist()))
    train_max = np.full(943, -1)
    np.maximum.at(train_max, train[:, 0], train[:, 3])
    assert (train_max <= test[:, 3]).all()
    assert set(np.unique(train[:, 0]).tolist()) == set(range(943))  # every user keeps training data


def test_leave_one_out_ties_and_singletons():
    r = np.array([[0, 1, 5, 10], [0, 2, 4, 10], [1, 3, 3, 7], [2, 4, 1, 1], [2, 5, 2, 0]])
    train, test = leave_one_out_split(r)
    assert test.tolist() == [[0, 2, 4, 10], [2, 4, 1, 1]]  # tie at t=10: the later row; user 1 has one rating
    assert train.tolist() == [[0, 1, 5, 10], [1, 3, 3, 7], [2, 5, 2, 0]]
    with pytest.raises(ValueError):
        leave_one_out_split(np.zeros((3,)))


def test_sample_negatives(ml100k):
    ratings = ml100k.ratings
    _, test = leave_one_out_split(ratings)
    neg = sample_negatives(ratings, ml100k.n_items, 99, users=test[:, 0], seed=0)
    assert neg.shape == (943, 99) and neg.dtype == np.int64
    seen = set(map(tuple, ratings[:, :2].tolist()))
    assert not any((u, i) in seen for u, row in zip(test[:, 0].tolist(), neg.tolist()) for i in row)
    assert all(len(set(row)) == 99 for row in neg.tolist())
    assert np.array_equal(neg, sample_negatives(ratings, ml100k.n_items, 99, users=test[:, 0], seed=0))
    assert not np.array_equal(neg, sample_negatives(ratings, ml100k.n_items, 99, users=test[:, 0], seed=1))
    # uniform over the unseen items: a user's unseen set is covered about evenly (chi-square-free check)
    small = np.array([[0, 0], [0, 1]])
    draws = np.concatenate([sample_negatives(small, 5, 1, seed=s).ravel() for s in range(600)])
    assert set(draws.tolist()) == {2, 3, 4} and np.bincount(draws, minlength=5)[2:].min() > 150
    with pytest.raises(ValueError, match="unseen"):
        sample_negatives(small, 3, 2)


def test_popularity_baseline_on_ml100k(ml100k):
    """Popularity beats random ranking by far under the protocol (random HR@10 = 0.1)."""
    train, test = leave_one_out_split(ml100k.ratings)
    neg = sample_negatives(ml100k.ratings, ml100k.n_items, 99, users=test[:, 0], seed=0)
    pop = Popularity(ml100k.n_items).fit(train)
    counts = np.bincount(train[:, 1], minlength=ml100k.n_items)
    assert torch.equal(pop(torch.tensor([0]), torch.tensor([49])), torch.tensor([float(counts[49])]))
    res = evaluate_ranking(pop, test, neg)
    assert 0.3 < res["HR@10"] < 0.6 and res["NDCG@10"] < res["HR@10"]


# ============================================================================================
# models
# ============================================================================================
def test_gmf_and_mlp_formulas():
    torch.manual_seed(0)
    gmf = GMF(7, 9, dim=4)
    u, i = torch.tensor([0, 3, 6]), torch.tensor([8, 2, 2])
    manual = (gmf.user.weight[u] * gmf.item.weight[i]) @ gmf.out.weight[0] + gmf.out.bias
    torch.testing.assert_close(gmf(u, i), manual)
    mlp = MLPRec(7, 9, layers=(8, 6, 3))
    x = torch.cat([mlp.user.weight[u], mlp.item.weight[i]], 1)
    lin = [m for m in mlp.tower if isinstance(m, torch.nn.Linear)]
    h = torch.relu(lin[1](torch.relu(lin[0](x))))
    torch.testing.assert_close(mlp(u, i), mlp.out(h).squeeze(-1))
    assert mlp.user.embedding_dim == 4
    with pytest.raises(ValueError, match="item ids"):
        gmf(u, torch.tensor([9, 0, 0]))
    with pytest.raises(ValueError, match="even"):
        MLPRec(3, 3, layers=(7, 3))


def test_neumf_shapes_and_pretrained_fusion():
    """seed 17.5 (the NCF framework): NeuMF.from_pretrained: h = [alpha h_GMF, (1 - alpha) h_MLP] makes the fused logit exactly
    alpha GMF + (1 - alpha) MLP before fine-tuning."""
    torch.manual_seed(0)
    gmf, mlp = GMF(10, 12, 5), MLPRec(10, 12, (8, 4), dropout=0.1)
    for m in (gmf, mlp):  # pretend training moved every parameter
        for p in m.parameters():
            p.data.normal_()
    mlp.eval()
    model = NeuMF.from_pretrained(gmf, mlp, alpha=0.3).eval()
    u, i = torch.randint(0, 10, (20,)), torch.randint(0, 12, (20,))
    torch.testing.assert_close(model(u, i), 0.3 * gmf(u, i) + 0.7 * mlp(u, i))
    fresh = NeuMF(10, 12, 5, (8, 4))
    assert fresh(u, i).shape == (20,) and fresh.out.in_features == 5 + 4
    with pytest.raises(ValueError, match="alpha"):
        NeuMF.from_pretrained(gmf, mlp, alpha=1.5)


def test_dssm_cosine_two_towers():
    """seed 17.4 (DSSM): gamma * cos of two tanh towers, as a matrix product of unit vectors."""
    torch.manual_seed(0)
    xu, xi = torch.randn(6, 5), torch.randn(8, 3)
    model = DSSM(xu, xi, hidden=(7,), dim=4, gamma=5.0)
    u, i = torch.tensor([0, 5, 2]), torch.tensor([7, 0, 0])
    fu = model.user_tower(xu[u])
    fi = model.item_tower(xi[i])
    torch.testing.assert_close(model(u, i), 5.0 * F.cosine_similarity(fu, fi, dim=1))
    lin = model.user_tower[0]
    torch.testing.assert_close(fu, torch.tanh(model.user_tower[2](torch.tanh(lin(xu[u])))))
    all_scores = model.gamma * model.user_vectors() @ model.item_vectors().T
    torch.testing.assert_close(all_scores[u, i], model(u, i))
    cand = torch.tensor([[7, 1, 2], [0, 0, 5], [3, 4, 6]])
    torch.testing.assert_close(model.score_pairs(u, cand), all_scores[u.unsqueeze(1), cand])
    torch.testing.assert_close(score_candidates(model, u.numpy(), cand.numpy()), all_scores[u.unsqueeze(1), cand])
    assert (all_scores.abs() <= 5.0 + 1e-5).all()
    hybrid = DSSM(xu, xi, dim=4, id_dim=3, learn_gamma=True)
    assert hybrid(u, i).shape == (3,) and hybrid.log_gamma.requires_grad
    with pytest.raises(ValueError, match="gamma"):
        DSSM(xu, xi, gamma=0)


def test_matrix_factorization_formula():
    torch.manual_seed(0)
    mf = MatrixFactorization(4, 5, 3)
    for p in mf.parameters():
        p.data.normal_()
    u, i = torch.tensor([1, 3]), torch.tensor([4, 0])
    manual = (
        mf.bias + mf.user_bias.weight[u, 0] + mf.item_bias.weight[i, 0] + (mf.user.weight[u] * mf.item.weight[i]).sum(1)
    )
    torch.testing.assert_close(mf(u, i), manual)


def _planted(seed: int = 0, n_users: int = 60, n_items: int = 50, groups: int = 5):
    """Users and items in groups; each user interacts with 8 random items of its own group."""
    rng = np.random.default_rng(seed)
    ug, ig = rng.integers(0, groups, n_users), np.arange(n_items) % groups
    rows = []
    for u in range(n_users):
        own = np.flatnonzero(ig == ug[u])
        for t, it in enumerate(rng.choice(own, 8, replace=False)):
            rows.append((u, it, 5, t))
    return np.array(rows), n_users, n_items, ug, ig


@pytest.mark.parametrize(
    "name,loss", [("GMF", "bce"), ("MLP", "bce"), ("NeuMF", "bce"), ("MF", "bpr"), ("DSSM", "softmax")]
)
def test_models_learn_planted_structure(name, loss):
    """Trained on group-structured interactions, every model ranks the held-out same-group item
    well above chance (HR@5 of 1 target among 1 + 20 negatives; chance = 5/21)."""
    ratings, n_users, n_items, ug, ig = _planted()
    train, test = leave_one_out_split(ratings)
    neg = sample_negatives(ratings, n_items, 20, users=test[:, 0], seed=0)
    torch.manual_seed(0)
    group_onehot = np.eye(5)
    model = {
        "GMF": lambda: GMF(n_users, n_items, 8),
        "MLP": lambda: MLPRec(n_users, n_items, (16, 8), init_std=0.3),
        "NeuMF": lambda: NeuMF(n_users, n_items, 8, (16, 8), init_std=0.3),
        "MF": lambda: MatrixFactorization(n_users, n_items, 8),
        "DSSM": lambda: DSSM(np.eye(n_users), group_onehot[ig], hidden=(16,), dim=8, id_dim=4),
    }[name]()
    # the ReLU towers need larger initial embeddings and more steps on so little data (MLPRec's docstring)
    epochs, batch = (30, 32) if name in ("MLP", "NeuMF") else (25, 64)
    hist = train_recommender(
        model, train, n_items, epochs=epochs, num_negatives=4, loss=loss, batch_size=batch, lr=1e-2, seed=0
    )
    assert hist[-1] < hist[0]
    res = evaluate_ranking(model, test, neg, k=5)
    assert res["HR@5"] > 0.6, res
    scores = score_candidates(model, test[:, 0], np.column_stack([test[:, 1], neg]))
    assert scores.shape == (len(test), 21)


def test_train_recommender_negatives_are_unseen_and_errors():
    from course_lib import recsys

    rng = np.random.default_rng(0)
    keys = np.unique(np.array([0 * 10 + 1, 0 * 10 + 2, 1 * 10 + 0]))
    out = recsys._sample_unseen(np.array([0, 0, 1]), 50, 10, keys, rng)
    assert not np.isin(out[:2], [1, 2]).any() and not np.isin(out[2], [0]).any()
    with pytest.raises(ValueError, match="loss"):
        train_recommender(GMF(2, 2), np.array([[0, 0]]), 2, loss="hinge")
