"""Graph embeddings: similarity notions, node2vec / DeepWalk walks, shallow and neighbourhood
encoders, neighbourhood aggregation, graph-level embeddings and link prediction (lecture 16).

A graph ``G = (V, E)`` with non-negative edge weights ``E: V x V -> R>=0`` and a node
similarity ``s_G: V x V -> R`` (seed 16.2); :func:`similarity_matrix` gives three of them
(seeds 16.3-16.5): the adjacency ``s_G = 1`` on an edge and 0 otherwise, ``exp(-d_G(v_i, v_j) / tau)``
with ``d_G`` the shortest-path distance, and the ``k``-step random-walk transition probability
``(D^{-1} A)^k``. An *encoder* ``ENC: V -> R^d`` and a *decoder* with ``DEC(z_i, z_j) ~ s_G(v_i, v_j)``
are trained by (seed 16.6)

.. math::

    \\sum_{i, j} L\\big(\\mathrm{DEC}(\\mathrm{ENC}(v_i), \\mathrm{ENC}(v_j)),\\ s_G(v_i, v_j)\\big) \\to \\min

The *shallow* encoder is a ``|V| x d`` table and the decoder ``z_i^T z_j`` (seed 16.7,
:class:`ShallowEncoder`). **node2vec** (Grover & Leskovec, 2016) instead models
``p(v_j | v_i) = exp(z_j^T z_i) / sum_k exp(z_k^T z_i)`` for the nodes ``v_j`` met near ``v_i``
on random walks (seeds 16.8, 16.10): it is skip-gram over walks, trained with negative sampling —
:class:`Node2Vec` runs ``course_lib.text.train_word2vec`` on the walks of :func:`node2vec_walks`;
:func:`walk_pairs` lists the (centre, context) pairs of a window (seed 16.9). The walks are
second-order: having come from ``t`` to ``v``, the next node ``x`` is drawn with probability
proportional to ``alpha_pq(t, x) * w(v, x)`` (seed 16.11), where

* ``alpha = 1/p`` if ``x = t`` (return; a small ``p`` keeps the walk local, *BFS-like*),
* ``alpha = 1`` if ``x`` is a neighbour of ``t`` (distance 1 from where we came),
* ``alpha = 1/q`` otherwise (moving away; a small ``q`` drives the walk outwards, *DFS-like*).

``p = q = 1`` is DeepWalk (Perozzi et al., 2014): a plain first-order, weight-proportional walk.
node2vec's limits (seed 16.12): an embedding exists only for the nodes seen in training, node
attributes are not used, and nothing is shared between nodes (``|V| d`` parameters).
The **neighbourhood autoencoder** (seeds 16.13-16.14, :class:`NeighborhoodAutoencoder`; SDNE,
Wang et al. 2016, and DNGR, Cao et al. 2016) compresses each node's row ``s_i`` of the similarity
matrix, ``sum_i ||DEC(ENC(s_i)) - s_i||^2 -> min``: parameters are shared across nodes, but new
nodes and node attributes are still out of reach. **Neighbourhood aggregation** (seed 16.15,
:func:`aggregate_neighbors`) builds a node's input from its own features and the mean of its
neighbours' features — the first step of GraphSAGE-like models. A **graph** embedding averages
the node embeddings, ``z_G = (1/|V|) sum_v z_v``, or runs an RNN over them (seed 16.16,
:func:`graph_embedding`, :class:`GraphRNNEncoder`).

How the walks are fast (:func:`node2vec_walks`): the graph is held as CSR arrays
(:class:`CSRGraph`) with a first-order alias table per node, and *all walks advance together*
as numpy vectors: one step draws a weight-proportional neighbour for every live walk in O(1), and
the second-order bias is applied by rejection sampling — a candidate ``x`` is accepted with
probability ``alpha_pq(t, x) / max(1/p, 1, 1/q)``; the rejected walks draw again. "Is ``x`` a
neighbour of ``t``" is a binary search in the sorted edge keys ``row * |V| + col``. This is the
exact second-order distribution (rejection sampling from the first-order proposal), with memory
``O(|E|)`` instead of the ``O(sum_v deg(v)^2)`` of precomputed second-order alias tables
(the strategy of pecanpy's SparseOTF mode and of KnightKing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.autoencoders import DenseAutoencoder
from course_lib.sequence import LSTM
from course_lib.text import KeyedVectors, train_word2vec

__all__ = [
    "CSRGraph",
    "GraphRNNEncoder",
    "LinkSplit",
    "NeighborhoodAutoencoder",
    "Node2Vec",
    "ShallowEncoder",
    "aggregate_neighbors",
    "dot_product_decoder",
    "edge_features",
    "encoder_decoder_loss",
    "graph_embedding",
    "link_prediction_split",
    "node2vec_transition_probs",
    "node2vec_walks",
    "similarity_matrix",
    "to_csr",
    "walk_pairs",
]


# ============================================================================================
# graphs as CSR arrays
# ============================================================================================
@dataclass
class CSRGraph:
    """A graph as compressed sparse rows: the out-neighbours of node ``i`` (an index into
    ``nodes``) are ``indices[indptr[i]:indptr[i + 1]]`` (sorted) with edge weights ``weights`` of
    the same slice. ``prob``/``alias`` are the per-node first-order alias tables (absolute CSR
    positions; ``None`` when every node's weights are equal, i.e. uniform sampling).
    ``keys = row * n + col`` (sorted) answers "is (a, b) an edge" by binary search.
    """

    nodes: list[Hashable]
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    directed: bool
    prob: np.ndarray | None = None
    alias: np.ndarray | None = None
    keys: np.ndarray | None = None

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def degree(self) -> np.ndarray:
        """(n,) out-degree of every node."""
        return np.diff(self.indptr)

    def has_edges(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Vectorised edge test: (m,) bool, ``True`` where ``a[i] -> b[i]`` is an edge."""
        if self.keys is None:
            rows = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.degree)
            self.keys = rows * self.num_nodes + self.indices
        q = np.asarray(a, dtype=np.int64) * self.num_nodes + np.asarray(b, dtype=np.int64)
        if self.keys.size == 0:
            return np.zeros(q.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, q), self.keys.size - 1)
        return self.keys[pos] == q


def _alias_tables(indptr: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias tables of every CSR row: column ``k`` keeps itself with probability
    ``prob[k]`` and otherwise jumps to the absolute position ``alias[k]`` of the same row."""
    prob = np.ones(weights.size, dtype=np.float64)
    alias = np.arange(weights.size, dtype=np.int64)
    for r in range(indptr.size - 1):
        a, b = int(indptr[r]), int(indptr[r + 1])
        w = weights[a:b]
        n = b - a
        if n <= 1 or np.all(w == w[0]):
            continue
        scaled = w * (n / w.sum())
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[a + s], alias[a + s] = scaled[s], a + g
            scaled[g] = (scaled[g] + scaled[s]) - 1.0
            (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias


def to_csr(G: Any, weight: str | None = "weight") -> CSRGraph:
    """Convert ``G`` to a :class:`CSRGraph` (idempotent on a CSRGraph).

    ``G``: a networkx graph (node order ``list(G.nodes)``; edge attribute ``weight``, default 1;
    ``weight=None`` ignores weights; directed graphs keep their directions), a scipy sparse or
    dense numpy ``(n, n)`` adjacency/weight matrix (nodes ``0..n-1``, row ``i`` = out-edges of
    ``i``). Negative or non-finite weights raise ``ValueError``; zero-weight entries are dropped.
    """
    if isinstance(G, CSRGraph):
        return G
    import scipy.sparse as sp

    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a course dependency
        nx = None
    if nx is not None and isinstance(G, nx.Graph):
        nodes = list(G.nodes)
        A = nx.to_scipy_sparse_array(G, nodelist=nodes, weight=weight, format="csr", dtype=np.float64)
        directed = G.is_directed()
    else:
        if sp.issparse(G):
            A = sp.csr_array(G, dtype=np.float64)
        else:
            arr = np.asarray(G, dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(f"an adjacency matrix must be 2-D (n, n), got shape {arr.shape}")
            A = sp.csr_array(arr)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"an adjacency matrix must be square, got shape {A.shape}")
        if weight is None:
            A.data = np.ones_like(A.data)
        nodes = list(range(A.shape[0]))
        directed = (A != A.T).nnz > 0
    A.eliminate_zeros()
    A.sort_indices()
    data = A.data.astype(np.float64)
    if data.size and ((data < 0).any() or not np.isfinite(data).all()):
        raise ValueError("edge weights must be finite and non-negative")
    indptr, indices = A.indptr.astype(np.int64), A.indices.astype(np.int64)
    csr = CSRGraph(nodes, indptr, indices, data, directed)
    # uniform rows need no table: skip the construction when every row has equal weights
    row_first = np.repeat(data[indptr[:-1][np.diff(indptr) > 0]], np.diff(indptr)[np.diff(indptr) > 0])
    if not np.array_equal(row_first, data):
        csr.prob, csr.alias = _alias_tables(indptr, data)
    return csr


# ============================================================================================
# similarity notions
# ============================================================================================
def similarity_matrix(
    G: Any, kind: str = "adjacency", tau: float = 1.0, steps: int = 1, *, weighted: bool = False
) -> np.ndarray:
    """Node similarity ``s_G`` as an ``(n, n)`` float64 matrix, rows/columns in ``list(G.nodes)`` order.

    * ``"adjacency"`` (seed 16.3): ``s_ij = 1`` if ``(v_i, v_j)`` is an edge, else 0 (the edge
      weight with ``weighted=True``).
    * ``"exp_distance"`` (seed 16.4): ``s_ij = exp(-d_G(v_i, v_j) / tau)``, ``d_G`` the
      shortest-path length (hops; the weighted path length with ``weighted=True``); ``s_ii = 1``;
      unreachable pairs get 0.
    * ``"random_walk"`` (seed 16.5): ``s_ij = P(walk at v_j after `steps` steps | start at v_i)
      = [(D^{-1} A)^steps]_ij`` — the DeepWalk transition matrix (weights proportional to ``A``
      with ``weighted=True``); rows of nodes without out-edges are 0.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path

    csr = to_csr(G, weight="weight" if weighted else None)
    n = csr.num_nodes
    A = sp.csr_array((csr.weights, csr.indices, csr.indptr), shape=(n, n))
    if kind == "adjacency":
        return A.toarray()
    if kind == "exp_distance":
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau}")
        d = shortest_path(A, method="D", directed=csr.directed, unweighted=not weighted)
        return np.exp(-d / tau)  # exp(-inf) = 0 for unreachable pairs
    if kind == "random_walk":
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps}")
        deg = np.asarray(A.sum(axis=1)).ravel()
        inv = np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)
        P = (sp.diags_array(inv) @ A).toarray()
        return np.linalg.matrix_power(P, int(steps))
    raise ValueError(f"kind must be 'adjacency', 'exp_distance' or 'random_walk', got {kind!r}")


# ============================================================================================
# node2vec walks
# ============================================================================================
def _check_pq(p: float, q: float) -> None:
    if not (p > 0 and q > 0 and math.isfinite(p) and math.isfinite(q)):
        raise ValueError(f"p and q must be positive and finite, got p={p}, q={q}")


def node2vec_transition_probs(G: Any, prev: Hashable | None, cur: Hashable, p: float, q: float) -> dict:
    """Exact second-order transition probabilities ``{next: P(next | prev, cur)}`` (seed 16.11).

    ``P(x | t=prev, v=cur) ∝ alpha_pq(t, x) * w(v, x)`` over the neighbours ``x`` of ``v``, with
    ``alpha = 1/p`` for ``x = t``, ``1`` when ``x`` is a neighbour of ``t``, and ``1/q`` otherwise
    (for a directed graph, "neighbour of t" means an edge ``x -> t``, as in the reference
    implementation). ``prev=None`` (the first step) gives the first-order ``w(v, x) / sum w``.
    ``G`` is a networkx graph (edge attribute ``weight``, default 1). A node without neighbours
    gives ``{}``. ``prev`` is usually a neighbour of ``cur`` (where the walk came from), but only
    its own edges matter.
    """
    _check_pq(p, q)
    if cur not in G:
        raise ValueError(f"node {cur!r} is not in the graph")
    if prev is not None and prev not in G:
        raise ValueError(f"node {prev!r} is not in the graph")
    raw = {}
    for x, attrs in G[cur].items():
        w = float(attrs.get("weight", 1.0))
        if prev is None:
            alpha = 1.0
        elif x == prev:
            alpha = 1.0 / p
        elif G.has_edge(x, prev):
            alpha = 1.0
        else:
            alpha = 1.0 / q
        raw[x] = alpha * w
    total = sum(raw.values())
    return {x: v / total for x, v in raw.items()} if total > 0 else {}


def _first_order(csr: CSRGraph, cur: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One weight-proportional neighbour of every node in ``cur`` (all must have out-edges)."""
    deg = csr.indptr[cur + 1] - csr.indptr[cur]
    k = csr.indptr[cur] + (rng.random(cur.size) * deg).astype(np.int64)
    k = np.minimum(k, csr.indptr[cur + 1] - 1)  # guard against rand * deg rounding up to deg
    if csr.prob is not None:
        keep = rng.random(cur.size) < csr.prob[k]
        k = np.where(keep, k, csr.alias[k])
    return csr.indices[k]


def _second_order(
    csr: CSRGraph,
    prev: np.ndarray,
    cur: np.ndarray,
    p: float,
    q: float,
    rng: np.random.Generator,
    max_rounds: int = 8,
) -> np.ndarray:
    """Rejection sampling of ``x ~ alpha_pq(prev, x) w(cur, x)``: propose from the first-order
    table, accept with ``alpha / max(1/p, 1, 1/q)``, redraw the rejected ones — for at most
    ``max_rounds`` rounds, after which the walks still pending are drawn exactly
    (:func:`_second_order_exact`). Either way the draw has exactly the second-order distribution."""
    inv_p, inv_q = 1.0 / p, 1.0 / q
    top = max(inv_p, 1.0, inv_q)
    out = np.empty(cur.size, dtype=np.int64)
    pending = np.arange(cur.size)
    for _ in range(max_rounds):
        if pending.size == 0:
            return out
        c, t = cur[pending], prev[pending]
        x = _first_order(csr, c, rng)
        alpha = np.where(x == t, inv_p, np.where(csr.has_edges(x, t), 1.0, inv_q))
        ok = rng.random(x.size) * top < alpha
        out[pending[ok]] = x[ok]
        pending = pending[~ok]
    if pending.size:  # the long tail of rejections: draw those exactly
        out[pending] = _second_order_exact(csr, prev[pending], cur[pending], p, q, rng)
    return out


def _second_order_exact(
    csr: CSRGraph, prev: np.ndarray, cur: np.ndarray, p: float, q: float, rng: np.random.Generator
) -> np.ndarray:
    """Exact draw of ``x ~ alpha_pq(prev, x) w(cur, x)`` by inverse-CDF sampling over every
    walk's whole neighbour list at once (segmented cumulative sums): O(sum deg(cur))."""
    deg = csr.indptr[cur + 1] - csr.indptr[cur]
    total = int(deg.sum())
    seg_start = np.cumsum(deg) - deg  # where each walk's segment begins in the flat arrays
    pos = np.repeat(csr.indptr[cur] - seg_start, deg) + np.arange(total)
    x = csr.indices[pos]
    t = np.repeat(prev, deg)
    alpha = np.where(x == t, 1.0 / p, np.where(csr.has_edges(x, t), 1.0, 1.0 / q))
    cum = np.cumsum(alpha * csr.weights[pos])
    before = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    seg_total = cum[seg_start + deg - 1] - before
    target = before + rng.random(cur.size) * seg_total
    k = np.searchsorted(cum, target, side="right")
    k = np.clip(k, seg_start, seg_start + deg - 1)
    return x[k]


def _walk_array(
    csr: CSRGraph, num_walks: int, walk_length: int, p: float, q: float, rng: np.random.Generator
) -> np.ndarray:
    n = csr.num_nodes
    starts = np.concatenate([rng.permutation(n) for _ in range(num_walks)] + [np.zeros(0, np.int64)])
    walks = np.full((starts.size, walk_length), -1, dtype=np.int64)
    if walk_length == 0 or starts.size == 0:
        return walks
    walks[:, 0] = starts
    deg = csr.degree
    live = np.flatnonzero(deg[starts] > 0)
    first_order_only = p == 1.0 and q == 1.0
    for t in range(1, walk_length):
        if live.size == 0:
            break
        cur = walks[live, t - 1]
        if t == 1 or first_order_only:
            nxt = _first_order(csr, cur, rng)
        else:
            nxt = _second_order(csr, walks[live, t - 2], cur, p, q, rng)
        walks[live, t] = nxt
        live = live[deg[nxt] > 0]  # a walk that reached a node without out-edges stops there
    return walks


def node2vec_walks(
    G: Any,
    num_walks: int,
    walk_length: int,
    p: float = 1.0,
    q: float = 1.0,
    seed: int | None = None,
    *,
    return_indices: bool = False,
) -> list[list[Hashable]] | np.ndarray:
    """node2vec's biased second-order random walks (DeepWalk when ``p = q = 1``), seed 16.11.

    ``num_walks`` rounds; each round starts one walk at every node, in a fresh random order, as
    the reference implementation does. A walk has ``walk_length`` nodes (it stops early at a
    node without out-edges, e.g. an isolated node). The first step is drawn proportionally to the
    edge weights; later steps from ``alpha_pq(t, x) * w(v, x)`` (see :func:`node2vec_transition_probs`).
    ``G``: anything :func:`to_csr` takes (networkx, scipy sparse or dense adjacency, CSRGraph).

    Returns ``num_walks * n`` walks as lists of node labels, or with ``return_indices=True`` an
    ``(num_walks * n, walk_length)`` int64 array of indices into ``to_csr(G).nodes`` padded with
    ``-1``. Vectorised: every walk advances at once (see the module docstring).
    """
    _check_pq(p, q)
    if num_walks < 0 or walk_length < 0:
        raise ValueError(f"num_walks and walk_length must be >= 0, got {num_walks}, {walk_length}")
    csr = to_csr(G)
    walks = _walk_array(csr, int(num_walks), int(walk_length), float(p), float(q), np.random.default_rng(seed))
    if return_indices:
        return walks
    labels = np.empty(len(csr.nodes), dtype=object)
    labels[:] = csr.nodes
    lengths = (walks >= 0).sum(1)
    out = labels[np.maximum(walks, 0)].tolist()
    return [w[:n] for w, n in zip(out, lengths.tolist())]


def walk_pairs(walks: Sequence[Sequence[Hashable]], window: int) -> list[tuple[Hashable, Hashable]]:
    """The skip-gram (centre, context) pairs of every walk with a fixed window (seed 16.9).

    For position ``i`` of a walk, the contexts are the nodes at positions ``i - window..i + window``
    except ``i`` itself, cut at the walk's ends; pairs come in walk order, then centre position,
    then offset ``-window..window``. A node that recurs at another position inside the window is
    a context of itself (as in word2vec). The lecture's example: ``[v1, v5, v6, v7, v9, v8, v6,
    v4, v3]`` with ``window=2`` gives, for the first ``v6``, ``(v6, v1), (v6, v5), (v6, v7), (v6, v9)``.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    pairs: list[tuple[Hashable, Hashable]] = []
    for walk in walks:
        if isinstance(walk, str):
            raise TypeError("walks must be sequences of nodes, not strings")
        w = list(walk)
        for i, centre in enumerate(w):
            for j in range(max(0, i - window), min(len(w), i + window + 1)):
                if j != i:
                    pairs.append((centre, w[j]))
    return pairs


class Node2Vec:
    """node2vec (DeepWalk for ``p = q = 1``): skip-gram with negative sampling over biased walks
    (seeds 16.8-16.11).

    :meth:`fit` draws ``num_walks`` walks of ``walk_length`` per node with :func:`node2vec_walks`
    and trains ``course_lib.text.train_word2vec`` (skip-gram, ``window``, ``negative`` noise nodes
    from the walk-frequency^0.75 distribution, ``epochs``, ``lr`` decaying linearly, subsampling
    ``sample`` — gensim's defaults, which node2vec's and pecanpy's scripts use) on them. After
    fitting: ``embeddings`` ``(n, dim)`` float32 tensor in ``nodes`` order, ``kv`` the
    :class:`~course_lib.text.KeyedVectors` (tokens are node indices as strings), ``history``
    with ``walk_seconds``, ``walks_per_s`` and the trainer's history. ``batch_size=None`` picks
    ``clip(2 |V|, 16, 1024)`` pairs per step (the trainer applies a mini-batch's summed SGD steps
    at once, which diverges when a batch holds the same few nodes many times). On graphs of a few
    dozen nodes, set ``sample=0``: every node is "frequent" and subsampling would drop most walks.
    """

    def __init__(
        self,
        dim: int = 128,
        walk_length: int = 80,
        num_walks: int = 10,
        p: float = 1.0,
        q: float = 1.0,
        window: int = 10,
        negative: int = 5,
        epochs: int = 1,
        lr: float = 0.025,
        *,
        sample: float = 1e-3,
        batch_size: int | None = None,
        workers: int | None = None,
        device: torch.device | str | None = None,
        seed: int = 0,
    ) -> None:
        _check_pq(p, q)
        if dim < 1 or walk_length < 2 or num_walks < 1 or window < 1:
            raise ValueError(
                f"need dim >= 1, walk_length >= 2, num_walks >= 1, window >= 1; got {dim}, {walk_length}, "
                f"{num_walks}, {window}"
            )
        self.dim, self.walk_length, self.num_walks, self.p, self.q = dim, walk_length, num_walks, p, q
        self.window, self.negative, self.epochs, self.lr, self.sample = window, negative, epochs, lr, sample
        self.batch_size, self.workers, self.device, self.seed = batch_size, workers, device, seed
        self.nodes: list[Hashable] = []
        self.embeddings: torch.Tensor | None = None
        self.kv: KeyedVectors | None = None
        self.history: dict[str, Any] = {}

    def fit(self, G: Any, walks: np.ndarray | None = None) -> Node2Vec:
        """Walk ``G`` and train; ``walks`` (an index array from ``node2vec_walks(..., return_indices=True)``)
        skips the walking. Returns self."""
        csr = to_csr(G)
        self.nodes = list(csr.nodes)
        start = time.perf_counter()
        if walks is None:
            walks = node2vec_walks(
                csr, self.num_walks, self.walk_length, self.p, self.q, self.seed, return_indices=True
            )
        walk_s = time.perf_counter() - start
        tokens = [str(i) for i in range(csr.num_nodes)]
        corpus = [[tokens[i] for i in row if i >= 0] for row in np.asarray(walks).tolist()]
        # the trainer sums the SGD steps of a mini-batch: on a small graph a batch of 1,024 pairs hits
        # each node dozens of times at once and diverges, so the default batch grows with the graph
        batch = self.batch_size or int(np.clip(2 * csr.num_nodes, 16, 1024))
        kv = train_word2vec(
            corpus, dim=self.dim, window=self.window, negative=self.negative, min_count=1, epochs=self.epochs,
            lr=self.lr, batch_size=batch, device=self.device, workers=self.workers, sample=self.sample,
            seed=self.seed, progress=False,
        )  # fmt: skip
        emb = torch.zeros(csr.num_nodes, self.dim)
        idx = [int(w) for w in kv.words]
        emb[idx] = kv.vectors
        self.embeddings, self.kv = emb, kv
        n_walks = len(corpus)
        self.history = {
            "walk_seconds": walk_s,
            "walks_per_s": n_walks / max(walk_s, 1e-9),
            "num_walks": n_walks,
            **{f"train_{k}": v for k, v in kv.history.items()},
        }
        return self

    def __getitem__(self, node: Hashable) -> torch.Tensor:
        if self.embeddings is None:
            raise RuntimeError("call fit() first")
        try:
            return self.embeddings[self.nodes.index(node)]
        except ValueError:
            raise KeyError(f"node {node!r} was not in the training graph (node2vec cannot embed new nodes)") from None


# ============================================================================================
# encoder-decoder view: the shallow encoder and the neighbourhood autoencoder
# ============================================================================================
def dot_product_decoder(z_i: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
    """``DEC(z_i, z_j) = z_i^T z_j`` (seed 16.7): ``(..., d), (..., d) -> (...)``."""
    if z_i.shape[-1] != z_j.shape[-1]:
        raise ValueError(f"z_i and z_j must share the last dimension, got {tuple(z_i.shape)} and {tuple(z_j.shape)}")
    return (z_i * z_j).sum(-1)


_PAIR_LOSSES = ("mse", "bce")


def encoder_decoder_loss(
    Z: torch.Tensor, S: torch.Tensor, loss: str = "mse", mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean_{i,j} L(z_i^T z_j, s_ij)`` over all pairs (or those where ``mask`` is True), seed 16.6.

    Z: (n, d) node embeddings; S: (n, n) similarities. ``loss="mse"``: ``(z_i^T z_j - s_ij)^2``;
    ``"bce"``: binary cross-entropy of ``sigmoid(z_i^T z_j)`` against ``s_ij`` in ``[0, 1]``.
    """
    if Z.ndim != 2 or S.shape != (Z.shape[0], Z.shape[0]):
        raise ValueError(f"Z must be (n, d) and S (n, n); got {tuple(Z.shape)} and {tuple(S.shape)}")
    scores = Z @ Z.T  # DEC for every pair at once
    S = S.to(scores.dtype)
    if loss == "mse":
        per = (scores - S) ** 2
    elif loss == "bce":
        per = F.binary_cross_entropy_with_logits(scores, S, reduction="none")
    else:
        raise ValueError(f"loss must be one of {_PAIR_LOSSES}, got {loss!r}")
    return per[mask].mean() if mask is not None else per.mean()


class ShallowEncoder(nn.Module):
    """The shallow encoder ``ENC(v_i) = Z[i]``, a ``|V| x d`` table, with the dot-product decoder
    (seed 16.7), trained by :meth:`fit` on ``mean_{i,j} L(z_i^T z_j, s_G(v_i, v_j))`` (seed 16.6).

    ``forward(nodes (B,) int64) -> (B, d)``; ``forward()`` gives all of ``Z``. With ``loss="mse"``
    the optimum of the full sum is the best rank-``d`` positive semidefinite approximation of
    ``(S + S^T)/2`` (its top ``d`` non-negative eigenpairs), which the tests use as the oracle.
    """

    def __init__(self, num_nodes: int, dim: int, *, init_std: float = 0.1, seed: int | None = None) -> None:
        super().__init__()
        if num_nodes < 1 or dim < 1:
            raise ValueError(f"num_nodes and dim must be >= 1, got {num_nodes}, {dim}")
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(num_nodes, dim, generator=gen) * init_std)

    def forward(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        if nodes is None:
            return self.weight
        return self.weight[nodes]

    @staticmethod
    def decode(z_i: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
        return dot_product_decoder(z_i, z_j)

    def loss(self, S: torch.Tensor, loss: str = "mse", mask: torch.Tensor | None = None) -> torch.Tensor:
        return encoder_decoder_loss(self.weight, S, loss, mask)

    def fit(
        self, S: Any, epochs: int = 500, lr: float = 0.05, loss: str = "mse", mask: torch.Tensor | None = None
    ) -> list[float]:
        """Full-batch Adam on :func:`encoder_decoder_loss`; returns the loss of every epoch."""
        S = torch.as_tensor(np.asarray(S) if not isinstance(S, torch.Tensor) else S, dtype=self.weight.dtype)
        S = S.to(self.weight.device)
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        history = []
        for _ in range(epochs):
            opt.zero_grad()
            value = self.loss(S, loss, mask)
            value.backward()
            opt.step()
            history.append(float(value.detach()))
        return history


class NeighborhoodAutoencoder(nn.Module):
    """Neighbourhood autoencoder (seeds 16.13-16.14): ``z_i = ENC(s_i)`` compresses node ``i``'s
    similarity vector ``s_i = (s_G(v_i, v_j))_j`` (or any per-node input row, e.g. the output of
    :func:`aggregate_neighbors`), trained on ``mean_i ||DEC(ENC(s_i)) - s_i||^2``.

    Built on :class:`course_lib.autoencoders.DenseAutoencoder`: ``input_dim`` (= ``|V|`` for
    similarity rows), ``dim`` the code size, ``hidden_dims`` mirrored; ``hidden_dims=()`` is the
    linear autoencoder whose optimum is PCA. ``encode(S (n, input_dim)) -> (n, dim)``,
    ``forward(S) -> (n, input_dim)``.
    """

    def __init__(
        self, input_dim: int, dim: int = 16, hidden_dims: Sequence[int] = (128,), activation: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.ae = DenseAutoencoder(input_dim, dim, hidden_dims=hidden_dims, activation=activation)
        self.input_dim, self.dim = input_dim, dim

    def encode(self, S: torch.Tensor) -> torch.Tensor:
        return self.ae.encode(S)

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        return self.ae(S)

    def loss(self, S: torch.Tensor) -> torch.Tensor:
        """``mean_i sum_j (DEC(ENC(s_i))_j - s_ij)^2``."""
        return ((self(S) - S) ** 2).sum(1).mean()

    def fit(
        self, S: Any, epochs: int = 300, lr: float = 1e-2, batch_size: int | None = None, seed: int = 0
    ) -> list[float]:
        """Adam on :meth:`loss` (full batch, or shuffled mini-batches); returns the per-epoch loss."""
        p = next(self.parameters())
        S = torch.as_tensor(np.asarray(S) if not isinstance(S, torch.Tensor) else S, dtype=p.dtype).to(p.device)
        if S.ndim != 2 or S.shape[1] != self.input_dim:
            raise ValueError(f"S must be (n, {self.input_dim}), got {tuple(S.shape)}")
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        n = S.shape[0]
        bs = n if batch_size is None else batch_size
        history = []
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen).to(S.device) if bs < n else torch.arange(n, device=S.device)
            total = 0.0
            for s in range(0, n, bs):
                batch = S[perm[s : s + bs]]
                opt.zero_grad()
                value = self.loss(batch)
                value.backward()
                opt.step()
                total += float(value.detach()) * batch.shape[0]
            history.append(total / n)
        return history


# ============================================================================================
# aggregation, graph-level embeddings
# ============================================================================================
def aggregate_neighbors(G: Any, features: Any, how: str = "mean") -> torch.Tensor:
    """Neighbourhood aggregation (seed 16.15): ``h_v = [x_v, AGG_{u in N(v)} x_u]``.

    features: (n, F) rows in ``to_csr(G).nodes`` order (numpy or torch; the result follows its
    device and dtype, float). ``how``: ``"mean"`` (the lecture's average), ``"sum"`` or ``"max"``
    over the (out-)neighbours, unweighted; a node without neighbours gets zeros. Returns (n, 2F):
    the node's own features first, then the aggregate.
    """
    csr = to_csr(G)
    x = torch.as_tensor(features)
    if not x.is_floating_point():
        x = x.float()
    if x.ndim != 2 or x.shape[0] != csr.num_nodes:
        raise ValueError(f"features must be ({csr.num_nodes}, F), got {tuple(x.shape)}")
    rows = torch.from_numpy(np.repeat(np.arange(csr.num_nodes), csr.degree)).to(x.device)
    cols = torch.from_numpy(csr.indices).to(x.device)
    n, f = x.shape
    msgs = x[cols]
    if how in ("mean", "sum"):
        agg = torch.zeros(n, f, dtype=x.dtype, device=x.device).index_add_(0, rows, msgs)
        if how == "mean":
            deg = torch.from_numpy(csr.degree).to(x.device, x.dtype).clamp_min(1).unsqueeze(1)
            agg = agg / deg
    elif how == "max":
        agg = torch.zeros(n, f, dtype=x.dtype, device=x.device)  # rows without neighbours stay 0
        agg = agg.scatter_reduce(0, rows.unsqueeze(1).expand(-1, f), msgs, "amax", include_self=False)
    else:
        raise ValueError(f"how must be 'mean', 'sum' or 'max', got {how!r}")
    return torch.cat([x, agg], 1)


def graph_embedding(node_embeddings: torch.Tensor, how: str = "mean", mask: torch.Tensor | None = None) -> torch.Tensor:
    """A graph's embedding from its nodes' (seed 16.16): ``z_G = (1/|V|) sum_v z_v`` (``"mean"``),
    or the ``"sum"``/``"max"`` pooling. ``node_embeddings``: ``(n, d)`` -> ``(d,)``, or a batch of
    graphs padded to ``(B, n, d)`` with ``mask (B, n)`` (True = real node) -> ``(B, d)``. For the
    RNN alternative see :class:`GraphRNNEncoder`.
    """
    z = node_embeddings
    if z.ndim not in (2, 3):
        raise ValueError(f"node_embeddings must be (n, d) or (B, n, d), got {tuple(z.shape)}")
    if z.shape[-2] == 0:
        raise ValueError("a graph needs at least one node")
    if mask is None:
        m = torch.ones(z.shape[:-1], dtype=torch.bool, device=z.device)
    else:
        m = torch.as_tensor(mask, dtype=torch.bool, device=z.device)
        if m.shape != z.shape[:-1]:
            raise ValueError(f"mask must be {tuple(z.shape[:-1])}, got {tuple(m.shape)}")
        if not bool(m.any(-1).all()):
            raise ValueError("every graph needs at least one unmasked node")
    mf = m.unsqueeze(-1).to(z.dtype)
    if how == "mean":
        return (z * mf).sum(-2) / mf.sum(-2)
    if how == "sum":
        return (z * mf).sum(-2)
    if how == "max":
        return z.masked_fill(~m.unsqueeze(-1), -torch.inf).amax(-2)
    raise ValueError(f"how must be 'mean', 'sum' or 'max', got {how!r}")


class GraphRNNEncoder(nn.Module):
    """Graph embedding by an LSTM over a sequence of node embeddings (seed 16.16's alternative),
    e.g. the nodes in the order a random walk or a BFS visits them: ``forward(z (B, T, d),
    lengths (B,) | None) -> (B, hidden)``, the last real step's state after a linear projection.
    Built on ``course_lib.sequence.LSTM``. Unlike the mean, it depends on the node order."""

    def __init__(self, input_dim: int, hidden_size: int = 64, out_dim: int | None = None) -> None:
        super().__init__()
        self.rnn = LSTM(input_dim, hidden_size)
        self.proj = nn.Linear(hidden_size, out_dim or hidden_size)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        if z.ndim != 3:
            raise ValueError(f"z must be (B, T, d), got {tuple(z.shape)}")
        _, (h, _) = self.rnn(z, lengths=lengths)
        return self.proj(h[-1])


# ============================================================================================
# link prediction
# ============================================================================================
@dataclass
class LinkSplit:
    """A link-prediction split: ``train_graph`` (G without the test edges; every node kept),
    ``test_edges`` (m, 2) and ``test_non_edges`` (m, 2) node *indices* into ``nodes``; label 1 for
    the former, 0 for the latter."""

    train_graph: Any
    test_edges: np.ndarray
    test_non_edges: np.ndarray
    nodes: list[Hashable]

    def pairs_and_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """((2m, 2) pairs, (2m,) 0/1 labels): positives then negatives."""
        pairs = np.concatenate([self.test_edges, self.test_non_edges])
        labels = np.concatenate([np.ones(len(self.test_edges)), np.zeros(len(self.test_non_edges))])
        return pairs, labels


def link_prediction_split(
    G: Any, test_frac: float = 0.1, seed: int | None = None, *, keep_connected: bool = True
) -> LinkSplit:
    """Hold out ``round(test_frac * |E|)`` edges of an undirected networkx graph, and as many
    node pairs that are not edges of ``G`` (no self-pairs, no repeats), uniformly at random.

    With ``keep_connected`` (node2vec's protocol) the edges of a random spanning forest are never
    held out, so the training graph keeps every component connected; if fewer removable edges
    exist than asked for, ``ValueError``. ``train_graph`` is a copy of ``G`` without the held-out
    edges (all nodes, node and edge attributes kept).
    """
    import networkx as nx

    if not isinstance(G, nx.Graph) or G.is_directed() or G.is_multigraph():
        raise ValueError("link_prediction_split expects an undirected simple networkx Graph")
    if not 0 < test_frac < 1:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac}")
    rng = np.random.default_rng(seed)
    nodes = list(G.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    edges = np.array([(index[u], index[v]) for u, v in G.edges() if u != v], dtype=np.int64).reshape(-1, 2)
    m = int(round(test_frac * len(edges)))
    candidates = np.arange(len(edges))
    if keep_connected:
        H = nx.Graph()
        H.add_nodes_from(range(len(nodes)))
        H.add_weighted_edges_from((int(a), int(b), float(w)) for (a, b), w in zip(edges, rng.random(len(edges))))
        forest = {(min(a, b), max(a, b)) for a, b in nx.minimum_spanning_edges(H, data=False)}
        key = [(min(a, b), max(a, b)) not in forest for a, b in edges.tolist()]
        candidates = candidates[np.asarray(key, dtype=bool)]
    if m > candidates.size:
        raise ValueError(f"cannot hold out {m} edges: only {candidates.size} can go without disconnecting the graph")
    held = edges[rng.choice(candidates, size=m, replace=False)] if m else np.zeros((0, 2), np.int64)
    train = G.copy()
    train.remove_edges_from((nodes[a], nodes[b]) for a, b in held.tolist())
    n = len(nodes)
    if n * (n - 1) // 2 - G.number_of_edges() < m:
        raise ValueError("the graph has too few non-edges to sample as many negatives as positives")
    existing = {(min(a, b), max(a, b)) for a, b in edges.tolist()}
    neg: set[tuple[int, int]] = set()
    while len(neg) < m:
        a = rng.integers(0, n, size=2 * (m - len(neg)) + 8)
        b = rng.integers(0, n, size=a.size)
        for x, y in zip(a.tolist(), b.tolist()):
            pair = (min(x, y), max(x, y))
            if x != y and pair not in existing and pair not in neg:
                neg.add(pair)
                if len(neg) == m:
                    break
    non_edges = np.array(sorted(neg), dtype=np.int64).reshape(-1, 2)
    non_edges = non_edges[rng.permutation(len(non_edges))]
    return LinkSplit(train, held, non_edges, nodes)


_EDGE_OPS = ("dot", "hadamard", "average", "l1", "l2")


def edge_features(embeddings: torch.Tensor | np.ndarray, pairs: np.ndarray, op: str = "hadamard") -> torch.Tensor:
    """Features of node pairs from node embeddings (node2vec, Table 1): for ``pairs (m, 2)``
    indices, ``"hadamard"`` ``z_u * z_v``, ``"average"`` ``(z_u + z_v)/2``, ``"l1"`` ``|z_u - z_v|``,
    ``"l2"`` ``(z_u - z_v)^2`` -> (m, d); ``"dot"`` ``z_u^T z_v`` -> (m,), the decoder's score."""
    z = torch.as_tensor(embeddings)
    pairs = np.asarray(pairs, dtype=np.int64)
    if z.ndim != 2 or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"embeddings must be (n, d) and pairs (m, 2), got {tuple(z.shape)} and {pairs.shape}")
    zu, zv = z[torch.from_numpy(pairs[:, 0])], z[torch.from_numpy(pairs[:, 1])]
    if op == "dot":
        return (zu * zv).sum(-1)
    if op == "hadamard":
        return zu * zv
    if op == "average":
        return (zu + zv) / 2
    if op == "l1":
        return (zu - zv).abs()
    if op == "l2":
        return (zu - zv) ** 2
    raise ValueError(f"op must be one of {_EDGE_OPS}, got {op!r}")
