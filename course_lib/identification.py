"""Face identification: embeddings, the triplet loss, triplet mining and verification (lecture 10).

Identification learns a map ``f: image -> R^D`` whose Euclidean distances say "same person" or
"different people". Two routes are taught:

* **DeepFace** (Taigman et al., 2014): train a classifier with one class per person, take the
  penultimate layer as the descriptor, L2-normalise it, compare two descriptors by a metric and a
  threshold (:func:`best_threshold_accuracy`);
* **FaceNet** (Schroff et al., 2015): batch -> network -> L2 normalisation -> triplet loss

  .. math::

      L = \\sum_{i=1}^{N} \\big[\\, \\|f(x_i^a) - f(x_i^p)\\|_2^2 - \\|f(x_i^a) - f(x_i^n)\\|_2^2 + \\alpha \\,\\big]_+

  over triplets (anchor, positive of the same person, negative of another person), with
  ``[z]_+ = max(z, 0)`` (the student notes drop the ``[.]_+``; without it the loss is unbounded
  below and rewards pushing easy negatives ever further). Here every loss is the *mean* over its
  triplets rather than the sum, so the learning rate does not depend on the batch size.

Triplet selection. A set of ``N`` images, ``m`` per person, has about ``N^2 (m - 1)`` valid
triplets (:func:`count_triplets`: 1.4 million for Olivetti's 400 faces), and most of them satisfy the margin after a little training, contributing zero loss and zero gradient.
So the triplets are *mined* inside each batch:

* :func:`batch_all_triplet_loss` — every valid triplet of the batch, averaged over those with a
  positive loss (Hermans, Beyer & Leibe, 2017, "batch all");
* :func:`batch_hard_triplet_loss` — per anchor, the farthest positive and the closest negative
  ("batch hard", same paper);
* :func:`semi_hard_triplets` — FaceNet's semi-hard negatives, which satisfy
  ``d(a, p) < d(a, n) < d(a, p) + alpha`` (farther than the positive, yet inside the margin; the
  notes' "d(a, n) > alpha" is wrong).

Distances are *squared* Euclidean by default, as in the formula above; every function that takes
``squared`` can use plain Euclidean distances instead. Verification metrics (:func:`roc_curve`,
:func:`roc_auc`, :func:`best_threshold_accuracy`) take a distance per pair and a boolean "same
person" per pair: the decision rule is "same iff distance <= threshold".

Shapes: embeddings ``emb: (N, D)``, labels ``(N,)`` integers (person ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EmbeddingNet",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "best_threshold_accuracy",
    "count_triplets",
    "gallery_search",
    "identity_folds",
    "identity_split",
    "pairwise_distances",
    "pairwise_ranking_loss",
    "roc_auc",
    "roc_curve",
    "semi_hard_triplets",
    "triplet_loss",
    "verification_accuracy",
    "verification_pairs",
]

# anchors per chunk in batch_all_triplet_loss: chunk * N * N floats stay below ~64 MB in float32
_BATCH_ALL_ELEMENTS = 2**24


# --------------------------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------------------------
def _check_emb(emb: torch.Tensor, name: str = "emb") -> None:
    if not isinstance(emb, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(emb).__name__}")
    if emb.ndim != 2:
        raise ValueError(f"{name} must be (N, D) embeddings, got shape {tuple(emb.shape)}")
    if not emb.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {emb.dtype}")


def _check_labels(labels: torch.Tensor, n: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be (N,) = ({n},) for {n} embeddings, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integers (person ids), got {labels.dtype}")
    return labels


def _check_margin(margin: float) -> float:
    margin = float(margin)
    if not margin >= 0:  # also rejects nan
        raise ValueError(f"margin must be >= 0, got {margin}")
    return margin


def _zero_loss(emb: torch.Tensor) -> torch.Tensor:
    """A zero that is still connected to ``emb`` (``backward`` works and gives zero gradients)."""
    return emb.sum() * 0.0


def _masks(labels: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """positive[a, p]: same person and a != p; negative[a, n]: different people. Both (N, N) bool."""
    labels = labels.to(device)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=device)
    return same & ~eye, ~same


# --------------------------------------------------------------------------------------------
# distances
# --------------------------------------------------------------------------------------------
def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not infinite) gradient where ``d2 == 0``."""
    zero = d2 == 0
    return torch.sqrt(d2.masked_fill(zero, 1.0)).masked_fill(zero, 0.0)


def _cross_sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 = ||a_i||^2 - 2 a_i . b_j + ||b_j||^2, clamped at 0. a: (M, D), b: (K, D) -> (M, K)."""
    d2 = (a * a).sum(1, keepdim=True) - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]
    return d2.clamp_min(0.0)


def pairwise_distances(emb: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """All pairwise (squared) Euclidean distances of a batch of embeddings.

    emb: (N, D) -> (N, N) with ``out[i, j] = ||emb_i - emb_j||^2`` (or its square root when
    ``squared=False``). Computed with one matrix product, ``||a||^2 - 2 a.b + ||b||^2``, clamped
    at 0 against rounding; the diagonal is exactly 0 and the result exactly symmetric. The
    square root has a zero gradient where a distance is 0 (instead of ``inf``).
    """
    _check_emb(emb)
    d2 = _cross_sq_distances(emb, emb)
    d2 = 0.5 * (d2 + d2.T)
    d2 = d2 * (1.0 - torch.eye(len(emb), dtype=emb.dtype, device=emb.device))
    return d2 if squared else _safe_sqrt(d2)


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    """FaceNet's triplet loss, the mean over triplets (lecture 10, with the ``[.]_+`` the notes miss).

    anchor, positive, negative: (N, D), row ``i`` of each forms triplet ``i``; margin: ``alpha >= 0``.
    Returns the scalar ``(1/N) sum_i [ ||a_i - p_i||^2 - ||a_i - n_i||^2 + alpha ]_+``; 0 (still
    differentiable) when ``N = 0``, so the output of :func:`semi_hard_triplets` can be fed in
    even when a batch has no semi-hard triplet.
    """
    _check_emb(anchor, "anchor")
    _check_emb(positive, "positive")
    _check_emb(negative, "negative")
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor, positive and negative must have the same shape (N, D); got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)} and {tuple(negative.shape)}"
        )
    margin = _check_margin(margin)
    if anchor.shape[0] == 0:
        return (anchor.sum() + positive.sum() + negative.sum()) * 0.0
    d_ap = (anchor - positive).pow(2).sum(1)
    d_an = (anchor - negative).pow(2).sum(1)
    return F.relu(d_ap - d_an + margin).mean()


def batch_all_triplet_loss(
    emb: torch.Tensor, labels: torch.Tensor, margin: float, *, squared: bool = True
) -> torch.Tensor:
    """Triplet loss over *every* valid triplet of the batch ("batch all", Hermans et al., 2017).

    emb: (N, D), labels: (N,). Valid triplets: ``a != p``, ``labels[a] == labels[p]``,
    ``labels[n] != labels[a]`` (ordered, so ``(a, p, n)`` and ``(p, a, n)`` are two triplets).
    Each has ``l = [d(a, p) - d(a, n) + alpha]_+`` with ``d`` from :func:`pairwise_distances`.

    Convention: the result is the sum of ``l`` divided by the number of triplets with ``l > 0``
    (not by all valid triplets). Once most triplets satisfy the margin, averaging over all of
    them would shrink the gradient towards 0 while the few informative triplets remain; this
    keeps its scale. Returns 0 (still differentiable) when no triplet has a positive loss.
    Memory: ``(N, N, N)`` in chunks of anchors, never all at once.
    """
    _check_emb(emb)
    labels = _check_labels(labels, emb.shape[0])
    margin = _check_margin(margin)
    d = pairwise_distances(emb, squared=squared)
    pos, neg = _masks(labels, emb.device)
    n = emb.shape[0]
    chunk = max(1, _BATCH_ALL_ELEMENTS // max(1, n * n))
    total = _zero_loss(emb)
    count = 0
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        # l[a, p, n] = d(a, p) - d(a, n) + alpha over the anchors of this chunk
        lossmat = F.relu(d[sl, :, None] - d[sl, None, :] + margin)
        valid = pos[sl, :, None] & neg[sl, None, :]
        lossmat = lossmat * valid
        total = total + lossmat.sum()
        count += int((lossmat > 0).sum())
    return total / count if count else total


def batch_hard_triplet_loss(
    emb: torch.Tensor, labels: torch.Tensor, margin: float, *, squared: bool = True
) -> torch.Tensor:
    """The "batch hard" triplet loss (Hermans et al., 2017): the hardest positive and negative per anchor.

    emb: (N, D), labels: (N,). For each anchor ``a`` that has at least one positive and one
    negative in the batch: ``[ max_p d(a, p) - min_n d(a, n) + alpha ]_+``; the result is the mean
    over those anchors (0, still differentiable, when there is none). ``O(N^2)`` time and memory,
    versus ``O(N^3)`` for a loop over all triplets.
    """
    _check_emb(emb)
    labels = _check_labels(labels, emb.shape[0])
    margin = _check_margin(margin)
    d = pairwise_distances(emb, squared=squared)
    pos, neg = _masks(labels, emb.device)
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return _zero_loss(emb)
    hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()


@torch.no_grad()
def semi_hard_triplets(
    emb: torch.Tensor, labels: torch.Tensor, margin: float, *, squared: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FaceNet's semi-hard triplets of a batch: indices ``(a_idx, p_idx, n_idx)``, each (T,) int64.

    emb: (N, D), labels: (N,). For every ordered positive pair ``(a, p)`` (``a != p``, same
    person), the candidates are the negatives with

        d(a, p) < d(a, n) < d(a, p) + alpha,

    farther than the positive but still violating the margin (their loss is in ``(0, alpha)``).
    Choice: **one negative per (a, p) pair, the hardest semi-hard one** (smallest ``d(a, n)``,
    lowest index on ties), so the result is deterministic; pairs without any semi-hard negative
    are left out (no fallback to hard or easy negatives). Triplets come ordered by ``(a, p)``.
    No gradient flows (these are indices): feed ``emb[a_idx], emb[p_idx], emb[n_idx]`` to
    :func:`triplet_loss`. With ``alpha = 0`` no negative qualifies and the result is empty.
    """
    _check_emb(emb)
    labels = _check_labels(labels, emb.shape[0])
    margin = _check_margin(margin)
    d = pairwise_distances(emb.detach(), squared=squared)
    pos, neg = _masks(labels, emb.device)
    a_idx, p_idx = pos.nonzero(as_tuple=True)
    d_ap = d[a_idx, p_idx][:, None]  # (P, 1)
    d_an = d[a_idx]  # (P, N)
    candidate = neg[a_idx] & (d_an > d_ap) & (d_an < d_ap + margin)
    best, n_idx = d_an.masked_fill(~candidate, float("inf")).min(1)
    keep = torch.isfinite(best)
    return a_idx[keep], p_idx[keep], n_idx[keep]


def pairwise_ranking_loss(
    scores_high: torch.Tensor,
    scores_low: torch.Tensor,
    *,
    margin: float = 1.0,
    surrogate: str = "hinge",
) -> torch.Tensor:
    """Pairwise ranking loss: for each pair ``(i, j)`` in ``R``, ``a(x_i)`` should exceed ``a(x_j)``.

    scores_high, scores_low: (P,) scores ``a(x_i)`` and ``a(x_j)`` of the P ordered pairs. The
    lecture's objective is the number of wrongly ordered pairs, ``sum_{(i,j) in R} [a(x_i) -
    a(x_j) < 0] -> min``; it learns an *order*, not distances ("not quite distance learning").
    Returns the mean over pairs of

    * ``"zero_one"``: ``[a_i - a_j < 0]`` (the lecture's count / P; not differentiable);
    * ``"hinge"``: ``[margin - (a_i - a_j)]_+`` (with ``a = -d`` and pairs (positive, negative) of
      one anchor this is exactly :func:`triplet_loss` with ``alpha = margin``);
    * ``"logistic"``: ``log(1 + exp(-(a_i - a_j)))`` (RankNet).

    0 for ``P = 0``.
    """
    for name, s in (("scores_high", scores_high), ("scores_low", scores_low)):
        if not isinstance(s, torch.Tensor) or s.ndim != 1 or not s.is_floating_point():
            raise ValueError(f"{name} must be a floating-point (P,) tensor, got {getattr(s, 'shape', type(s))}")
    if scores_high.shape != scores_low.shape:
        raise ValueError(
            f"scores_high and scores_low must both be (P,); got {tuple(scores_high.shape)} and "
            f"{tuple(scores_low.shape)}"
        )
    if scores_high.numel() == 0:
        return (scores_high.sum() + scores_low.sum()) * 0.0
    diff = scores_high - scores_low
    if surrogate == "zero_one":
        return (diff < 0).to(diff.dtype).mean()
    if surrogate == "hinge":
        return F.relu(_check_margin(margin) - diff).mean()
    if surrogate == "logistic":
        return F.softplus(-diff).mean()
    raise ValueError(f"surrogate must be 'zero_one', 'hinge' or 'logistic', got {surrogate!r}")


def count_triplets(labels: torch.Tensor | np.ndarray | Sequence[int]) -> int:
    """Number of valid ordered triplets ``(a, p, n)`` of a labelled set ("why not use them all").

    labels: (N,) person ids. With ``n_c`` images of person ``c`` among ``N``:
    ``sum_c n_c (n_c - 1) (N - n_c)`` (anchor and positive ordered and distinct, negative of
    another person). Olivetti (40 people x 10 images): 40 * 10 * 9 * 390 = 1,404,000 triplets for
    400 images. With ``m`` images per person the count is ``N (m - 1) (N - m) ~ N^2 (m - 1)``:
    quadratic in the data set, and the vast majority have zero loss once training has started.
    """
    labels = torch.as_tensor(np.asarray(labels))
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {tuple(labels.shape)}")
    _, counts = torch.unique(labels, return_counts=True)
    n = labels.numel()
    counts = counts.to(torch.int64).tolist()
    return int(sum(c * (c - 1) * (n - c) for c in counts))


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------
class EmbeddingNet(nn.Module):
    """A small CNN mapping images to L2-normalised embeddings (FaceNet: batch -> net -> normalise).

    Input ``(N, C, H, W)`` (or ``(N, H, W)`` for one channel), e.g. 64x64 Olivetti faces or 28x28
    MNIST digits; H and W at least ``2 ** len(widths)``. Architecture: for each width,
    ``conv3x3 -> BatchNorm -> ReLU -> conv3x3 -> BatchNorm -> ReLU -> maxpool 2``; then adaptive
    average pooling to 2x2, dropout, and a linear layer to ``embedding_dim``. ``forward``
    returns ``f(x) / ||f(x)||_2`` (rows of unit norm) unless ``normalize=False``;
    :meth:`features` always returns the unnormalised ``f(x)``. For a DeepFace-style classifier,
    put ``nn.Linear(embedding_dim, n_people)`` on top of :meth:`features` and use the normalised
    features as descriptors afterwards.
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        *,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.0,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if embedding_dim < 1 or in_channels < 1 or not widths or min(widths) < 1:
            raise ValueError(
                f"invalid EmbeddingNet sizes: embedding_dim={embedding_dim}, "
                f"in_channels={in_channels}, widths={tuple(widths)}"
            )
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c = w
        self.in_channels = in_channels
        self.embedding_dim = embedding_dim
        self.min_size = 2 ** len(widths)
        self.normalize = normalize
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * c, embedding_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised embeddings: (N, C, H, W) or (N, H, W) -> (N, embedding_dim)."""
        if x.ndim == 3 and self.in_channels == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"EmbeddingNet expects (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"images must be at least {self.min_size}x{self.min_size}, got {tuple(x.shape[-2:])}")
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) or (N, H, W) -> (N, embedding_dim), rows of unit L2 norm when ``normalize``."""
        f = self.features(x)
        return F.normalize(f, dim=1) if self.normalize else f


# --------------------------------------------------------------------------------------------
# data: splits and verification pairs
# --------------------------------------------------------------------------------------------
def identity_split(
    labels: torch.Tensor | np.ndarray | Sequence[int],
    n_test_identities: int,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split examples by **person**: no identity appears on both sides.

    labels: (N,) person ids (e.g. Olivetti's 40 people x 10 images from
    :func:`course_lib.data.load_olivetti_faces`). ``n_test_identities`` people, drawn with
    ``numpy.random.default_rng(seed)``, go to the test side with all their images, so that
    verification is measured on people never seen in training. Returns ``(train_idx, test_idx)``,
    sorted int64 index arrays. Call it again on the training part for a validation split.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    people = np.unique(labels)
    if not 0 < n_test_identities < len(people):
        raise ValueError(
            f"n_test_identities must be in 1..{len(people) - 1} for {len(people)} people, got {n_test_identities}"
        )
    test_people = np.random.default_rng(seed).choice(people, size=n_test_identities, replace=False)
    is_test = np.isin(labels, test_people)
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def identity_folds(
    labels: torch.Tensor | np.ndarray | Sequence[int],
    n_folds: int,
    n_val_identities: int = 0,
    *,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cross-validation by **person**: ``[(train_idx, val_idx, test_idx)]``, one triple per fold.

    The people are shuffled with ``numpy.random.default_rng(seed)`` and dealt into ``n_folds``
    folds of (nearly) equal size (``numpy.array_split``); fold ``k``'s people are its test people,
    so every person is a test person exactly once. Of the other people, ``n_val_identities``
    (:func:`identity_split` with ``seed + 1``) are validation people, e.g. to choose a
    verification threshold, and the rest are training people. No person is on two sides of a
    fold. Index arrays are sorted int64 (``val_idx`` is empty when ``n_val_identities = 0``).
    One split of a few test people is a noisy estimate; the mean over the folds is steadier.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    people = np.unique(labels)
    if not 2 <= n_folds <= len(people):
        raise ValueError(f"n_folds must be in 2..{len(people)} for {len(people)} people, got {n_folds}")
    largest_fold = -(-len(people) // n_folds)
    if not 0 <= n_val_identities < len(people) - largest_fold:
        raise ValueError(
            f"n_val_identities={n_val_identities} leaves no training people: with {n_folds} folds of "
            f"{len(people)} people, at most {len(people) - largest_fold - 1} can be validation people"
        )
    folds = []
    for test_people in np.array_split(np.random.default_rng(seed).permutation(people), n_folds):
        is_test = np.isin(labels, test_people)
        rest, test = np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)
        if n_val_identities:
            train_pos, val_pos = identity_split(labels[rest], n_val_identities, seed=seed + 1)
            folds.append((rest[train_pos], rest[val_pos], test))
        else:
            folds.append((rest, np.empty(0, dtype=np.int64), test))
    return folds


def verification_pairs(
    labels: torch.Tensor | np.ndarray | Sequence[int],
    n_pairs: int | None = None,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of examples for face verification: ``(i_idx, j_idx, same)``, each (P,).

    labels: (N,) person ids. With ``n_pairs=None``: every unordered pair ``i < j`` (``N (N - 1) /
    2`` of them, mostly "different"). With ``n_pairs``: a balanced set as in the LFW protocol,
    ``n_pairs // 2`` same-person and ``n_pairs - n_pairs // 2`` different-person pairs, each
    drawn without replacement (``numpy.random.default_rng(seed)``); raises ``ValueError`` when
    there are not enough. ``same`` is a bool array; ``i_idx < j_idx`` always.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,), got shape {labels.shape}")
    i_idx, j_idx = np.triu_indices(len(labels), k=1)
    same = labels[i_idx] == labels[j_idx]
    if n_pairs is None:
        return i_idx.astype(np.int64), j_idx.astype(np.int64), same
    n_same, n_diff = n_pairs // 2, n_pairs - n_pairs // 2
    same_pos, diff_pos = np.flatnonzero(same), np.flatnonzero(~same)
    if n_pairs < 0 or n_same > len(same_pos) or n_diff > len(diff_pos):
        raise ValueError(
            f"cannot draw {n_same} same-person and {n_diff} different-person pairs: there are "
            f"{len(same_pos)} and {len(diff_pos)}"
        )
    rng = np.random.default_rng(seed)
    chosen = np.sort(
        np.concatenate([rng.choice(same_pos, n_same, replace=False), rng.choice(diff_pos, n_diff, replace=False)])
    )
    return i_idx[chosen].astype(np.int64), j_idx[chosen].astype(np.int64), same[chosen]


# --------------------------------------------------------------------------------------------
# verification metrics: rule "same iff distance <= threshold"
# --------------------------------------------------------------------------------------------
def _as_pairs(distances, same) -> tuple[np.ndarray, np.ndarray]:
    d = distances.detach().cpu().numpy() if isinstance(distances, torch.Tensor) else np.asarray(distances)
    s = same.detach().cpu().numpy() if isinstance(same, torch.Tensor) else np.asarray(same)
    if d.ndim != 1 or s.shape != d.shape:
        raise ValueError(f"distances and same must both be (P,); got {d.shape} and {s.shape}")
    if d.size == 0:
        raise ValueError("no pairs given")
    if np.isnan(d.astype(np.float64)).any():
        raise ValueError("distances contain NaN")
    return d.astype(np.float64), s.astype(bool)


def roc_curve(distances, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of the verification rule "same person iff distance <= t", over every threshold.

    distances: (P,) distances of P pairs; same: (P,) bool, True for same-person pairs (both may be
    tensors or arrays). Returns ``(fpr, tpr, thresholds)``, each (K + 1,) for K distinct
    distances: ``thresholds`` = ``-inf`` (nothing accepted, the point (0, 0)) then the distinct
    distances in increasing order; ``tpr[k]`` = accepted same-person pairs / same-person pairs,
    ``fpr[k]`` = accepted different-person pairs / different-person pairs at ``thresholds[k]``.
    Equals ``sklearn.metrics.roc_curve(same, -distances, drop_intermediate=False)`` with the
    thresholds negated. Needs both kinds of pairs.
    """
    d, s = _as_pairs(distances, same)
    n_pos, n_neg = int(s.sum()), int((~s).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"the ROC curve needs both same-person and different-person pairs; got {n_pos} and {n_neg}")
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(d)), d.size - 1]  # last position of each distinct distance
    tp = np.cumsum(s)[last_of_value]
    fp = np.cumsum(~s)[last_of_value]
    tpr = np.r_[0.0, tp / n_pos]
    fpr = np.r_[0.0, fp / n_neg]
    return fpr, tpr, np.r_[-np.inf, d[last_of_value]]


def roc_auc(distances, same) -> float:
    """Area under :func:`roc_curve` (trapezoids): P(d_diff > d_same) + P(tie) / 2 over random pairs of pairs."""
    fpr, tpr, _ = roc_curve(distances, same)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def verification_accuracy(distances, same, threshold: float) -> float:
    """Fraction of pairs classified correctly by "same iff distance <= threshold". (P,), (P,) -> float."""
    d, s = _as_pairs(distances, same)
    return float(np.mean((d <= threshold) == s))


def best_threshold_accuracy(distances, same) -> tuple[float, float]:
    """The best verification accuracy over all thresholds, and the threshold that reaches it.

    distances: (P,), same: (P,) bool. Tries ``t = -inf`` and every distinct distance for the rule
    "same iff distance <= t"; accuracy = (accepted same + rejected different) / P. Returns
    ``(accuracy, threshold)``, the smallest best threshold on ties. Choose the threshold on
    training (or validation) people and report :func:`verification_accuracy` on unseen ones.
    """
    d, s = _as_pairs(distances, same)
    order = np.argsort(d, kind="stable")
    d, s = d[order], s[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(d)), d.size - 1]
    tp = np.r_[0, np.cumsum(s)[last_of_value]]
    fp = np.r_[0, np.cumsum(~s)[last_of_value]]
    correct = tp + (int((~s).sum()) - fp)
    k = int(np.argmax(correct))
    thresholds = np.r_[-np.inf, d[last_of_value]]
    return float(correct[k] / d.size), float(thresholds[k])


# --------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def gallery_search(query: torch.Tensor, gallery: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest gallery embeddings of each query (Euclidean distance).

    query: (Q, D), gallery: (G, D), ``1 <= k <= G``. Returns ``(distances, indices)``, both
    (Q, k), sorted by increasing distance: ``indices[q, r]`` is the gallery row of the ``r``-th
    neighbour of query ``q`` and ``distances[q, r]`` its Euclidean distance. One matrix product
    (``||q||^2 - 2 q.g + ||g||^2``) and ``torch.topk``; for L2-normalised embeddings this is also
    the ranking by cosine similarity.
    """
    _check_emb(query, "query")
    _check_emb(gallery, "gallery")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query (Q, D) and gallery (G, D) must share D; got {tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    if not 1 <= k <= gallery.shape[0]:
        raise ValueError(f"k must be in 1..{gallery.shape[0]} (the gallery size), got {k}")
    d2 = _cross_sq_distances(query, gallery)
    dist, idx = torch.topk(d2, k, dim=1, largest=False, sorted=True)
    return dist.sqrt(), idx
