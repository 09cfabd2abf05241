"""Recommender systems: the leave-one-out protocol, HR@k and NDCG@k, neural collaborative
filtering (GMF, MLP, NeuMF), the two-tower DSSM, and popularity / matrix-factorisation baselines
(lecture 17).

**Protocol** (He et al., 2017, "Neural Collaborative Filtering", arXiv 1708.05031): implicit
feedback — every rating is an interaction. :func:`leave_one_out_split` holds out each user's latest
interaction; :func:`sample_negatives` draws, per user, 99 items the user never interacted with;
the model scores the 100 candidates and :func:`hit_rate_at_k` / :func:`ndcg_at_k` ask where the
held-out item lands. With one relevant item at 1-based rank ``r``: ``HR@k = [r <= k]`` and
``NDCG@k = [r <= k] / log2(r + 1)`` (the ideal DCG is 1), averaged over users.

**Models** (all ``forward(users (B,), items (B,)) -> (B,)`` logits or scores):

* :class:`GMF` — ``y = sigma(h^T (p_u ⊙ q_i))``, a generalised matrix factorisation;
* :class:`MLPRec` — ``y = sigma(h^T MLP([p_u, q_i]))``, a ReLU tower over concatenated embeddings;
* :class:`NeuMF` — both branches with separate embeddings, their last layers concatenated:
  ``y = sigma(h^T [p^G_u ⊙ q^G_i, MLP([p^M_u, q^M_i])])``; :meth:`NeuMF.from_pretrained` fuses a
  trained GMF and MLP with ``h = [alpha h_GMF, (1 - alpha) h_MLP]`` (the paper's pre-training);
* :class:`DSSM` — Huang et al. (2013)'s deep structured semantic model as a two-tower recommender:
  a tanh MLP embeds the user's features, another the item's, and the score is
  ``gamma * cos(y_u, y_i)``; trained with the softmax over one positive and sampled negatives,
  ``P(i+ | u) = exp(gamma cos(u, i+)) / sum_{i in {i+} ∪ negatives} exp(gamma cos(u, i))``;
* :class:`MatrixFactorization` — ``b + b_u + b_i + p_u^T q_i`` (trained with BCE or BPR);
  :class:`Popularity` — an item's training-interaction count, the same for every user.

:func:`train_recommender` trains any of them on implicit pairs with freshly sampled negatives
each epoch (``num_negatives`` per positive, items the user has not interacted with in training),
with the pointwise log loss of NCF (``"bce"``), BPR's pairwise loss (``"bpr"``) or DSSM's
softmax (``"softmax"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DSSM",
    "GMF",
    "MLPRec",
    "MatrixFactorization",
    "NeuMF",
    "Popularity",
    "evaluate_ranking",
    "hit_rate_at_k",
    "leave_one_out_split",
    "ndcg_at_k",
    "sample_negatives",
    "score_candidates",
    "target_ranks",
    "train_recommender",
]


# ============================================================================================
# protocol: split and negatives
# ============================================================================================
def _as_interactions(ratings: Any, min_cols: int = 2) -> np.ndarray:
    arr = np.asarray(ratings)
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise ValueError(f"ratings must be (n, >= {min_cols}) with columns user, item, ..., got shape {arr.shape}")
    if arr.shape[0] and (arr[:, :2] < 0).any():
        raise ValueError("user and item ids must be non-negative (0-based)")
    return arr


def leave_one_out_split(ratings: Any, time_col: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """NCF's leave-one-out split: each user's latest interaction is the test row.

    ratings: (n, c) with ``user, item`` in the first two columns and the timestamp in ``time_col``
    (MovieLens: ``user, item, rating, timestamp``). Ties in time go to the row that comes *last*
    in ``ratings`` (a stable sort by user, then time). Users with a single interaction keep it in
    training and get no test row. Returns ``(train (n - u, c), test (u, c))``; ``test`` is sorted by
    user, ``train`` keeps the input's row order.
    """
    arr = _as_interactions(ratings, 3 if time_col not in (0, 1) else 2)
    n = arr.shape[0]
    order = np.lexsort((np.arange(n), arr[:, time_col], arr[:, 0]))  # by user, time, row
    users = arr[order, 0]
    last = np.ones(n, dtype=bool)
    last[:-1] = users[1:] != users[:-1]  # last row of each user's block
    first = np.ones(n, dtype=bool)
    first[1:] = users[1:] != users[:-1]
    held = order[last & ~first]  # a user with one interaction has first == last: keep it for training
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return arr[~mask], arr[held]  # ``order`` is sorted by user, so ``held`` is too


def sample_negatives(
    interactions: Any,
    n_items: int,
    num_negatives: int = 99,
    users: Sequence[int] | np.ndarray | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """For each user, ``num_negatives`` distinct items it never interacted with, uniformly.

    interactions: (n, >= 2) user, item rows — pass *every* known interaction (train and test),
    so that no sampled negative is a real positive. ``users`` (default: the sorted unique users
    of ``interactions``) gives the rows of the result. Returns (len(users), num_negatives) int64;
    ``ValueError`` if a user has interacted with too many items to leave that many.
    """
    arr = _as_interactions(interactions)
    if num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
    if arr.shape[0] and arr[:, 1].max() >= n_items:
        raise ValueError(f"item id {int(arr[:, 1].max())} is out of range for n_items={n_items}")
    users = np.unique(arr[:, 0]) if users is None else np.asarray(users, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.argsort(arr[:, 0], kind="stable")
    su, si = arr[order, 0], arr[order, 1]
    out = np.empty((users.size, num_negatives), dtype=np.int64)
    seen = np.zeros(n_items, dtype=bool)
    for r, u in enumerate(users.tolist()):
        a, b = np.searchsorted(su, u, "left"), np.searchsorted(su, u, "right")
        seen[si[a:b]] = True
        unseen = np.flatnonzero(~seen)
        seen[si[a:b]] = False
        if unseen.size < num_negatives:
            raise ValueError(f"user {u} has only {unseen.size} unseen items, fewer than num_negatives={num_negatives}")
        out[r] = rng.choice(unseen, size=num_negatives, replace=False)
    return out


# ============================================================================================
# metrics
# ============================================================================================
_TIES = ("average", "pessimistic", "optimistic")


def _check_scores(scores: Any, target_col: Any, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(scores)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"scores must be (users, candidates), got shape {tuple(s.shape)}")
    t = torch.as_tensor(target_col, device=s.device).long()
    if t.ndim == 0:
        t = t.expand(s.shape[0])
    if t.shape != (s.shape[0],):
        raise ValueError(f"target_col must be an int or ({s.shape[0]},), got shape {tuple(t.shape)}")
    if ((t < 0) | (t >= s.shape[1])).any():
        raise ValueError(f"target_col must lie in [0, {s.shape[1]})")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if torch.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, t


def target_ranks(scores: Any, target_col: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(above (U,), tied (U,))``: how many other candidates score strictly higher than the
    target and how many score exactly the same. The 1-based rank lies in ``above + 1 ..
    above + tied + 1``."""
    s, t = _check_scores(scores, target_col, 1)
    target = s.gather(1, t.unsqueeze(1))
    above = (s > target).sum(1)
    tied = (s == target).sum(1) - 1
    return above, tied


def _metric(scores: Any, target_col: Any, k: int, ties: str, gain) -> float:
    s, t = _check_scores(scores, target_col, k)
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
    above, tied = target_ranks(s, t)
    above, tied = above.double(), tied.double()
    if ties == "optimistic":
        vals = gain(above + 1)
    elif ties == "pessimistic":
        vals = gain(above + tied + 1)
    else:  # the expectation over a uniformly random order of the tied candidates
        m = int(tied.max()) + 1
        offsets = torch.arange(m, dtype=torch.float64, device=s.device)
        ranks = above.unsqueeze(1) + 1 + offsets  # (U, m)
        valid = offsets.unsqueeze(0) <= tied.unsqueeze(1)
        vals = (gain(ranks) * valid).sum(1) / (tied + 1)
    return float(vals.mean())


def hit_rate_at_k(scores: Any, target_col: Any, k: int = 10, ties: str = "average") -> float:
    """HR@k: the share of users whose held-out item is among the top ``k`` of its candidates.

    scores: (U, C) one row per user, one column per candidate (numpy or torch); target_col: an
    int or (U,) — the column of each user's held-out item. Ties between the target and other
    candidates: ``"average"`` (default) counts the expected hit under a random order of the tied
    candidates — what scikit-learn's ``ndcg_score`` does for NDCG; ``"pessimistic"`` ranks the
    target after every tied candidate (a constant scorer then scores 0), ``"optimistic"`` before.
    """
    return _metric(scores, target_col, k, ties, lambda r: (r <= k).double())


def ndcg_at_k(scores: Any, target_col: Any, k: int = 10, ties: str = "average") -> float:
    """NDCG@k with one relevant item per user: ``mean_u [r_u <= k] / log2(r_u + 1)``, ``r_u`` the
    1-based rank of the held-out item among the user's candidates (ideal DCG = 1). Arguments and
    tie handling as in :func:`hit_rate_at_k`; ``ties="average"`` equals
    ``sklearn.metrics.ndcg_score(one_hot(target_col), scores, k=k)``."""
    return _metric(scores, target_col, k, ties, lambda r: (r <= k).double() / torch.log2(r + 1))


# ============================================================================================
# models
# ============================================================================================
def _check_ids(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> None:
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(
            f"users and items must be (B,) of equal length, got {tuple(users.shape)}, {tuple(items.shape)}"
        )
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= n_users):
        raise ValueError(f"user ids must lie in [0, {n_users})")
    if items.numel() and (int(items.min()) < 0 or int(items.max()) >= n_items):
        raise ValueError(f"item ids must lie in [0, {n_items})")


class GMF(nn.Module):
    """Generalised matrix factorisation: ``logit = h^T (p_u ⊙ q_i) + b`` (NCF, eq. 9 without the
    sigmoid). ``forward(users (B,), items (B,)) -> (B,)`` logits; ``embed`` gives ``p_u ⊙ q_i``.
    Embeddings start from N(0, ``init_std``), NCF's 0.01."""

    def __init__(self, n_users: int, n_items: int, dim: int = 8, init_std: float = 0.01) -> None:
        super().__init__()
        if n_users < 1 or n_items < 1 or dim < 1:
            raise ValueError(f"n_users, n_items and dim must be >= 1, got {n_users}, {n_items}, {dim}")
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.out = nn.Linear(dim, 1)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)

    def embed(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        _check_ids(users, items, self.n_users, self.n_items)
        return self.user(users) * self.item(items)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(users, items)).squeeze(-1)


class MLPRec(nn.Module):
    """NCF's MLP: ``logit = h^T relu(... relu(W_1 [p_u, q_i] + b_1) ...) + b`` (eq. 10).
    ``layers[0]`` is the width of the concatenated embeddings (each ``layers[0] // 2``), the rest the
    tower (NCF: 64 -> 32 -> 16 -> 8). ``forward(users, items) -> (B,)`` logits. Embeddings start
    from N(0, ``init_std``) (NCF: 0.01); on small data with few steps per epoch, such tiny inputs
    can leave the ReLU tower at the constant prior for many epochs — a larger ``init_std`` (0.1-0.3)
    helps."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        layers: Sequence[int] = (64, 32, 16, 8),
        dropout: float = 0.0,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        layers = list(layers)
        if len(layers) < 1 or layers[0] < 2 or layers[0] % 2 or any(w < 1 for w in layers):
            raise ValueError(f"layers must start with an even width >= 2, got {layers}")
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Embedding(n_users, layers[0] // 2)
        self.item = nn.Embedding(n_items, layers[0] // 2)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        tower: list[nn.Module] = []
        for a, b in zip(layers[:-1], layers[1:]):
            tower += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        self.tower = nn.Sequential(*tower)
        self.out = nn.Linear(layers[-1], 1)

    def embed(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        _check_ids(users, items, self.n_users, self.n_items)
        return self.tower(torch.cat([self.user(users), self.item(items)], -1))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(users, items)).squeeze(-1)


class NeuMF(nn.Module):
    """Neural matrix factorisation (NCF, eq. 12): a GMF branch and an MLP branch with their own
    embeddings, fused by one linear layer on ``[p^G_u ⊙ q^G_i, MLP([p^M_u, q^M_i])]``.
    ``forward(users, items) -> (B,)`` logits."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        gmf_dim: int = 8,
        mlp_layers: Sequence[int] = (64, 32, 16, 8),
        dropout: float = 0.0,
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        self.gmf = GMF(n_users, n_items, gmf_dim, init_std)
        self.mlp = MLPRec(n_users, n_items, mlp_layers, dropout, init_std)
        del self.gmf.out, self.mlp.out  # the branches' own output layers are replaced by the fusion
        self.out = nn.Linear(gmf_dim + list(mlp_layers)[-1], 1)
        self.n_users, self.n_items = n_users, n_items

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.gmf.embed(users, items), self.mlp.embed(users, items)], -1)
        return self.out(h).squeeze(-1)

    @classmethod
    def from_pretrained(cls, gmf: GMF, mlp: MLPRec, alpha: float = 0.5) -> NeuMF:
        """Initialise from a trained GMF and MLP (NCF, section 3.4.1): embeddings and tower copied,
        ``h = [alpha h_GMF, (1 - alpha) h_MLP]`` and ``b = alpha b_GMF + (1 - alpha) b_MLP``, so the
        fused logit starts as ``alpha logit_GMF + (1 - alpha) logit_MLP``."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if (gmf.n_users, gmf.n_items) != (mlp.n_users, mlp.n_items):
            raise ValueError("the GMF and the MLP must be built for the same users and items")
        widths = [mlp.user.embedding_dim * 2] + [m.out_features for m in mlp.tower if isinstance(m, nn.Linear)]
        dropout = next((m.p for m in mlp.tower if isinstance(m, nn.Dropout)), 0.0)
        model = cls(gmf.n_users, gmf.n_items, gmf.dim, widths, dropout)
        model.gmf.user.load_state_dict(gmf.user.state_dict())
        model.gmf.item.load_state_dict(gmf.item.state_dict())
        model.mlp.user.load_state_dict(mlp.user.state_dict())
        model.mlp.item.load_state_dict(mlp.item.state_dict())
        model.mlp.tower.load_state_dict(mlp.tower.state_dict())
        with torch.no_grad():
            model.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], 1))
            model.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)
        return model


class MatrixFactorization(nn.Module):
    """Biased matrix factorisation ``score = b + b_u + b_i + p_u^T q_i`` (a logit for ``"bce"``, a
    preference for ``"bpr"``). ``forward(users, items) -> (B,)``."""

    def __init__(self, n_users: int, n_items: int, dim: int = 32) -> None:
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.bias = nn.Parameter(torch.zeros(()))
        for e in (self.user, self.item):
            nn.init.normal_(e.weight, std=0.01)
        for e in (self.user_bias, self.item_bias):
            nn.init.zeros_(e.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        _check_ids(users, items, self.n_users, self.n_items)
        dot = (self.user(users) * self.item(items)).sum(-1)
        return self.bias + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + dot


class Popularity(nn.Module):
    """The popularity baseline: ``score(u, i)`` = the number of training interactions of item ``i``
    (the same ranking for every user). Build with :meth:`fit`; no trainable parameters."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(n_items))

    def fit(self, train: Any) -> Popularity:
        arr = _as_interactions(train)
        counts = np.bincount(arr[:, 1].astype(np.int64), minlength=self.counts.numel())
        if counts.size != self.counts.numel():
            raise ValueError(f"item ids exceed n_items={self.counts.numel()}")
        self.counts = torch.as_tensor(counts, dtype=torch.float32, device=self.counts.device)
        return self

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.counts[items]


def _mlp_tower(sizes: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers)


class DSSM(nn.Module):
    """Two-tower DSSM (Huang et al., 2013): ``score(u, i) = gamma * cos(f(x_u), g(x_i))`` with
    ``f``, ``g`` tanh MLPs over the user's and the item's feature vectors.

    user_features: (n_users, F_u), item_features: (n_items, F_i) (dense; kept as buffers — e.g.
    a user's multi-hot history and an item's genres); ``hidden`` the tower widths before the
    ``dim``-wide output; ``id_dim > 0`` concatenates a learned id embedding to each side's
    features (a hybrid of content and collaborative signals); ``gamma`` the softmax smoothing
    factor (DSSM's gamma; learned when ``learn_gamma``). ``forward(users, items) -> (B,)`` scores
    in ``[-gamma, gamma]``; ``user_vectors``/``item_vectors`` the unit tower outputs, so that all
    items can be scored for a user by one matrix product; :meth:`score_pairs` scores ``(B, m)``
    candidates with one user-tower pass per user.
    """

    def __init__(
        self,
        user_features: Any,
        item_features: Any,
        hidden: Sequence[int] = (128,),
        dim: int = 64,
        *,
        id_dim: int = 0,
        gamma: float = 10.0,
        learn_gamma: bool = False,
    ) -> None:
        super().__init__()
        xu = torch.as_tensor(
            np.asarray(user_features) if not isinstance(user_features, torch.Tensor) else user_features
        )
        xi = torch.as_tensor(
            np.asarray(item_features) if not isinstance(item_features, torch.Tensor) else item_features
        )
        if xu.ndim != 2 or xi.ndim != 2:
            raise ValueError(f"features must be 2-D (n, F), got {tuple(xu.shape)} and {tuple(xi.shape)}")
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        self.register_buffer("user_features", xu.float())
        self.register_buffer("item_features", xi.float())
        self.n_users, self.n_items = xu.shape[0], xi.shape[0]
        self.id_dim = id_dim
        if id_dim:
            self.user_id = nn.Embedding(self.n_users, id_dim)
            self.item_id = nn.Embedding(self.n_items, id_dim)
            nn.init.normal_(self.user_id.weight, std=0.1)
            nn.init.normal_(self.item_id.weight, std=0.1)
        self.user_tower = _mlp_tower([xu.shape[1] + id_dim, *hidden, dim], nn.Tanh)
        self.item_tower = _mlp_tower([xi.shape[1] + id_dim, *hidden, dim], nn.Tanh)
        log_gamma = torch.tensor(math.log(gamma))
        if learn_gamma:
            self.log_gamma = nn.Parameter(log_gamma)
        else:
            self.register_buffer("log_gamma", log_gamma)

    @property
    def gamma(self) -> torch.Tensor:
        return self.log_gamma.exp()

    def user_vectors(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim) unit user embeddings (all users when ``users`` is None)."""
        users = torch.arange(self.n_users, device=self.user_features.device) if users is None else users
        x = self.user_features[users]
        if self.id_dim:
            x = torch.cat([x, self.user_id(users)], -1)
        return F.normalize(self.user_tower(x), dim=-1)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim) unit item embeddings (all items when ``items`` is None)."""
        items = torch.arange(self.n_items, device=self.item_features.device) if items is None else items
        x = self.item_features[items]
        if self.id_dim:
            x = torch.cat([x, self.item_id(items)], -1)
        return F.normalize(self.item_tower(x), dim=-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        _check_ids(users, items, self.n_users, self.n_items)
        return self.gamma * (self.user_vectors(users) * self.item_vectors(items)).sum(-1)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of each user against several items, ``users (B,), items (B, m) -> (B, m)``, running
        the user tower once per user rather than once per (user, item) pair (what
        :func:`train_recommender` uses for the positive and its negatives)."""
        if items.ndim != 2 or users.shape != (items.shape[0],):
            raise ValueError(f"users must be (B,) and items (B, m), got {tuple(users.shape)} and {tuple(items.shape)}")
        _check_ids(users, items[:, 0], self.n_users, self.n_items)
        iv = self.item_vectors(items.reshape(-1)).view(*items.shape, -1)
        return self.gamma * torch.linalg.vecdot(iv, self.user_vectors(users).unsqueeze(1))


# ============================================================================================
# training and evaluation
# ============================================================================================
_LOSSES = ("bce", "bpr", "softmax")


def _sample_unseen(
    users: np.ndarray, num: int, n_items: int, seen_keys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(len(users), num) items drawn uniformly among those each user has not interacted with
    (with replacement across the row, as NCF's training does); ``seen_keys`` = sorted user * n_items + item."""
    out = rng.integers(0, n_items, size=(users.size, num))
    u = np.repeat(users, num).reshape(users.size, num)
    bad = np.isin(u * n_items + out, seen_keys)
    while bad.any():
        out[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        bad[bad] = np.isin(u[bad] * n_items + out[bad], seen_keys)
    return out


def train_recommender(
    model: nn.Module,
    train: Any,
    n_items: int,
    *,
    epochs: int = 10,
    num_negatives: int = 4,
    loss: str = "bce",
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Train ``model`` on implicit feedback; returns the mean loss of every epoch.

    train: (n, >= 2) user, item rows (every row a positive). Each epoch draws ``num_negatives``
    items per positive from those the user has no training interaction with, shuffles, and runs
    Adam (``lr``, ``weight_decay``) on mini-batches of ``batch_size`` positives. Losses, with
    ``s`` the model's score: ``"bce"`` (NCF) ``-log sigma(s+) - sum_j log sigma(-s_j)``, averaged
    over the ``1 + num_negatives`` examples; ``"bpr"`` ``-mean_j log sigma(s+ - s_j)``;
    ``"softmax"`` (DSSM) ``-log softmax([s+, s_1..s_k])_0``. The model's device is used.
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    if epochs < 0 or num_negatives < 1 or batch_size < 1:
        raise ValueError(
            f"need epochs >= 0, num_negatives >= 1, batch_size >= 1; got {epochs}, {num_negatives}, {batch_size}"
        )
    arr = _as_interactions(train)
    users_np, items_np = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    seen = np.unique(users_np * n_items + items_np)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    history = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc=f"{type(model).__name__} ({loss})", unit="epoch")
    model.train()
    try:
        for _ in range(epochs):
            negs = _sample_unseen(users_np, num_negatives, n_items, seen, rng)
            perm = rng.permutation(users_np.size)
            u_all = torch.from_numpy(users_np[perm]).to(device)
            i_all = torch.from_numpy(items_np[perm]).to(device)
            n_all = torch.from_numpy(negs[perm]).to(device)
            total = 0.0
            for s in range(0, u_all.numel(), batch_size):
                u, i, n = u_all[s : s + batch_size], i_all[s : s + batch_size], n_all[s : s + batch_size]
                B, k = n.shape
                if hasattr(model, "score_pairs"):  # e.g. DSSM: one user-tower pass per user
                    both = model.score_pairs(u, torch.cat([i.unsqueeze(1), n], 1))
                    pos, neg = both[:, 0], both[:, 1:]
                else:
                    pos = model(u, i)
                    neg = model(u.repeat_interleave(k), n.reshape(-1)).view(B, k)
                if loss == "bce":
                    value = (F.softplus(-pos).sum() + F.softplus(neg).sum()) / (B * (1 + k))
                elif loss == "bpr":
                    value = F.softplus(-(pos.unsqueeze(1) - neg)).mean()
                else:
                    value = -F.log_softmax(torch.cat([pos.unsqueeze(1), neg], 1), dim=1)[:, 0].mean()
                opt.zero_grad()
                value.backward()
                opt.step()
                total += float(value.detach()) * B
            history.append(total / max(u_all.numel(), 1))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


@torch.no_grad()
def score_candidates(model: nn.Module, users: Any, candidates: Any, batch_size: int = 4096) -> torch.Tensor:
    """Scores ``(U, C)`` of every user's candidate items: ``model(users[u], candidates[u, c])``.
    users: (U,), candidates: (U, C) item ids (e.g. the held-out item then 99 negatives)."""
    was_training = model.training
    model.eval()
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    u = torch.as_tensor(np.asarray(users), dtype=torch.long, device=device)
    c = torch.as_tensor(np.asarray(candidates), dtype=torch.long, device=device)
    if c.ndim != 2 or u.shape != (c.shape[0],):
        raise ValueError(f"users must be (U,) and candidates (U, C), got {tuple(u.shape)} and {tuple(c.shape)}")
    if hasattr(model, "score_pairs"):
        out = torch.cat([model.score_pairs(u[s : s + 256], c[s : s + 256]) for s in range(0, u.numel(), 256)])
        model.train(was_training)
        return out.float().cpu()
    flat_u = u.repeat_interleave(c.shape[1])
    flat_c = c.reshape(-1)
    out = torch.cat(
        [model(flat_u[s : s + batch_size], flat_c[s : s + batch_size]) for s in range(0, flat_u.numel(), batch_size)]
    )
    model.train(was_training)
    return out.view(c.shape).float().cpu()


def evaluate_ranking(
    model: nn.Module, test: Any, negatives: Any, k: int = 10, ties: str = "average"
) -> dict[str, float]:
    """HR@k and NDCG@k of ``model`` under the leave-one-out protocol: ``test`` (U, >= 2) the
    held-out (user, item) rows, ``negatives`` (U, N) the sampled items of the same users; the
    candidates are ``[held-out item, *negatives]`` (target column 0)."""
    arr = _as_interactions(test)
    negatives = np.asarray(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != arr.shape[0]:
        raise ValueError(f"negatives must be ({arr.shape[0]}, N), got shape {negatives.shape}")
    candidates = np.column_stack([arr[:, 1], negatives])
    scores = score_candidates(model, arr[:, 0], candidates)
    return {f"HR@{k}": hit_rate_at_k(scores, 0, k, ties), f"NDCG@{k}": ndcg_at_k(scores, 0, k, ties)}
