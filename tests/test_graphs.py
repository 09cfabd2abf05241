"""Tests of course_lib.graphs against networkx, numpy matrix powers, brute-force path sums,
explicit loops, eigen/singular-value decompositions and chi-square tests (lecture 16).

Graphs: networkx's karate club, Les Misérables (weighted co-appearances), Florentine families,
small random graphs drawn per seed, and Cora (course_lib.data.load_cora). The samplers are checked
with scipy's chi-square goodness-of-fit test at fixed seeds: empirical frequencies of the next node
against the exact node2vec probabilities (weights 1/p, 1, 1/q times the edge weight).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import networkx as nx
import numpy as np
import pytest
import torch
from scipy import stats

from course_lib import graphs as gr
from course_lib.graphs import (
    GraphRNNEncoder,
    NeighborhoodAutoencoder,
    Node2Vec,
    ShallowEncoder,
    aggregate_neighbors,
    dot_product_decoder,
    edge_features,
    encoder_decoder_loss,
    graph_embedding,
    link_prediction_split,
    node2vec_transition_probs,
    node2vec_walks,
    similarity_matrix,
    to_csr,
    walk_pairs,
)

PQ = [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25), (0.5, 2.0)]


def _random_graph(seed: int, weighted: bool = False) -> nx.Graph:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 14))
    G = nx.gnp_random_graph(n, 0.35, seed=seed)
    G.add_node(n)  # an isolated node
    if weighted:
        for u, v in G.edges:
            G[u][v]["weight"] = float(rng.integers(1, 6))
    return G


def _chisquare(counts: dict, probs: dict) -> float:
    keys = sorted(probs, key=str)
    obs = np.array([counts.get(k, 0) for k in keys], dtype=float)
    exp = np.array([probs[k] for k in keys]) * obs.sum()
    assert set(counts) <= set(probs), f"sampled nodes {set(counts) - set(probs)} are not neighbours"
    return stats.chisquare(obs, exp).pvalue


# ============================================================================================
# similarity matrices (seeds 16.2-16.5)
# ============================================================================================
@pytest.mark.parametrize("seed", range(3))
def test_adjacency_similarity_matches_networkx(seed):
    """seed 16.3: s_G = 1 on an edge, 0 otherwise (the weight with weighted=True)."""
    G = _random_graph(seed, weighted=True)
    np.testing.assert_array_equal(similarity_matrix(G, "adjacency"), nx.to_numpy_array(G, weight=None))
    np.testing.assert_array_equal(similarity_matrix(G, "adjacency", weighted=True), nx.to_numpy_array(G))


@pytest.mark.parametrize("graph", ["karate", "florentine", "lesmis"])
@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_exp_distance_matches_networkx_shortest_paths(graph, tau):
    """seed 16.4: s_G = exp(-d_G / tau) with networkx's shortest-path lengths (hops and weighted)."""
    G = {"karate": nx.karate_club_graph, "florentine": nx.florentine_families_graph,
         "lesmis": nx.les_miserables_graph}[graph]()  # fmt: skip
    G.add_node("isolated")
    nodes = list(G.nodes)
    for weighted in (False, True):
        S = similarity_matrix(G, "exp_distance", tau=tau, weighted=weighted)
        lengths = dict(nx.all_pairs_dijkstra_path_length(G) if weighted else nx.all_pairs_shortest_path_length(G))
        expected = np.zeros((len(nodes), len(nodes)))
        for i, u in enumerate(nodes):
            for j, v in enumerate(nodes):
                if v in lengths[u]:
                    expected[i, j] = np.exp(-lengths[u][v] / tau)
        np.testing.assert_allclose(S, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_random_walk_similarity_is_sum_over_paths(seed, steps):
    """seed 16.5: [(D^-1 A)^k]_ij = sum over all k-step paths i -> j of the product of
    w(a, b) / sum_c w(a, c) — enumerated by brute force on small graphs."""
    G = _random_graph(seed, weighted=True)
    nodes = list(G.nodes)
    S = similarity_matrix(G, "random_walk", steps=steps, weighted=True)

    def step_prob(a, b):
        tot = sum(d.get("weight", 1) for d in G[a].values())
        return G[a][b]["weight"] / tot

    expected = np.zeros_like(S)
    for i, u in enumerate(nodes):
        if steps == 0:
            expected[i, i] = 1.0
            continue
        frontier = {(u,): 1.0}
        for _ in range(steps):
            frontier = {path + (v,): pr * step_prob(path[-1], v) for path, pr in frontier.items() for v in G[path[-1]]}
        for path, pr in frontier.items():
            expected[i, nodes.index(path[-1])] += pr
    np.testing.assert_allclose(S, expected, atol=1e-12)
    deg = np.array([G.degree(v) for v in nodes])
    np.testing.assert_allclose(S[deg > 0].sum(1), 1.0)  # rows of walks that can move are distributions


def test_random_walk_similarity_matches_deepwalk_frequencies():
    """The k-step matrix is the distribution of DeepWalk's k-th node (chi-square, karate club)."""
    G = nx.karate_club_graph()
    k = 3
    S = similarity_matrix(G, "random_walk", steps=k)
    walks = node2vec_walks(G, 300, k + 1, seed=1)
    start = 0
    counts = Counter(w[k] for w in walks if w[0] == start)
    probs = {v: S[start, v] for v in G.nodes if S[start, v] > 0}
    assert _chisquare(counts, probs) > 1e-3


def test_similarity_matrix_errors():
    G = nx.path_graph(3)
    with pytest.raises(ValueError, match="kind"):
        similarity_matrix(G, "cosine")
    with pytest.raises(ValueError, match="tau"):
        similarity_matrix(G, "exp_distance", tau=0)
    with pytest.raises(ValueError, match="steps"):
        similarity_matrix(G, "random_walk", steps=-1)
    with pytest.raises(ValueError, match="square"):
        to_csr(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        to_csr(np.array([[0.0, -1.0], [-1.0, 0.0]]))


# ============================================================================================
# node2vec transition probabilities and walks (seed 16.11)
# ============================================================================================
def test_transition_probs_hand_computed():
    """seed 16.11: from t to v, the next node x gets 1/p (x = t), 1 (x next to t), 1/q (farther),
    times w(v, x) — node2vec's Figure 2 graph: t - v, v - x1, t - x1, v - x2, v - x3 (w(v, x3) = 2)."""
    G = nx.Graph()
    G.add_edges_from([("t", "v"), ("v", "x1"), ("t", "x1"), ("v", "x2")])
    G.add_edge("v", "x3", weight=2.0)
    p, q = 0.5, 4.0
    probs = node2vec_transition_probs(G, "t", "v", p, q)
    raw = {"t": 1 / p, "x1": 1.0, "x2": 1 / q, "x3": 2.0 / q}
    total = sum(raw.values())
    assert probs.keys() == raw.keys()
    for k in raw:
        assert probs[k] == pytest.approx(raw[k] / total)
    first = node2vec_transition_probs(G, None, "v", p, q)
    assert first == pytest.approx({"t": 0.2, "x1": 0.2, "x2": 0.2, "x3": 0.4})
    assert node2vec_transition_probs(G, "t", "v", 1, 1) == pytest.approx(first)  # DeepWalk ignores prev
    G.add_node("lonely")
    assert node2vec_transition_probs(G, None, "lonely", p, q) == {}
    with pytest.raises(ValueError, match="positive"):
        node2vec_transition_probs(G, "t", "v", 0, 1)
    with pytest.raises(ValueError, match="not in the graph"):
        node2vec_transition_probs(G, "t", "nowhere", 1, 1)


@pytest.mark.parametrize("p,q", PQ)
@pytest.mark.parametrize("max_rounds", [0, 1, 1000])
def test_second_order_sampler_chi_square(p, q, max_rounds):
    """seed 16.11: the vectorised sampler (exact inverse-CDF path, the hybrid, pure rejection)
    draws x with the 1/p, 1, 1/q weights: chi-square on Les Misérables (weighted) and karate."""
    for G, (t, v) in ((nx.les_miserables_graph(), ("Myriel", "Valjean")), (nx.karate_club_graph(), (0, 2))):
        csr = to_csr(G)
        ti, vi = csr.nodes.index(t), csr.nodes.index(v)
        n = 20_000
        rng = np.random.default_rng(7)
        x = gr._second_order(csr, np.full(n, ti), np.full(n, vi), p, q, rng, max_rounds=max_rounds)
        counts = Counter(csr.nodes[i] for i in x.tolist())
        probs = node2vec_transition_probs(G, t, v, p, q)
        assert _chisquare(counts, probs) > 1e-3, (p, q, max_rounds)


@pytest.mark.parametrize("p,q", [(0.5, 2.0), (3.0, 0.3)])
def test_walk_triples_match_transition_probs(p, q):
    """End to end: the (prev, cur) -> next frequencies of whole walks on the weighted Les
    Misérables graph match node2vec_transition_probs for the most visited (prev, cur) pairs."""
    G = nx.les_miserables_graph()
    walks = node2vec_walks(G, 40, 40, p, q, seed=3)
    nxt: dict[tuple, Counter] = defaultdict(Counter)
    for w in walks:
        for a, b, c in zip(w, w[1:], w[2:]):
            nxt[(a, b)][c] += 1
    top = sorted(nxt, key=lambda k: -sum(nxt[k].values()))[:5]
    pvals = [_chisquare(nxt[k], node2vec_transition_probs(G, *k, p, q)) for k in top]
    assert min(pvals) > 1e-4, pvals


def test_first_step_respects_weights():
    """Weights respected: a star with edge weights 1..5 — the first step is weight-proportional."""
    G = nx.Graph()
    for k in range(1, 6):
        G.add_edge("hub", k, weight=float(k))
    G.add_edge(1, 2, weight=0.5)
    walks = node2vec_walks(G, 3000, 2, p=0.5, q=2, seed=0)
    counts = Counter(w[1] for w in walks if w[0] == "hub")
    assert _chisquare(counts, {k: k / 15 for k in range(1, 6)}) > 1e-3
    # weight=None drops the weights
    csr = to_csr(G, weight=None)
    assert csr.prob is None and set(csr.weights.tolist()) == {1.0}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("p,q", PQ)
def test_walks_follow_edges(seed, p, q):
    """Walks only follow edges (and keep the direction of a directed graph); every node starts
    num_walks walks; walks stop only at nodes without out-edges."""
    directed = seed % 2 == 1
    G = nx.gnp_random_graph(12, 0.3, seed=seed, directed=directed)
    G.add_node(99)
    walks = node2vec_walks(G, 3, 15, p, q, seed=seed)
    assert len(walks) == 3 * G.number_of_nodes()
    assert Counter(w[0] for w in walks) == {v: 3 for v in G.nodes}
    for w in walks:
        assert all(G.has_edge(a, b) for a, b in zip(w, w[1:]))
        if len(w) < 15:
            assert G.out_degree(w[-1]) == 0 if directed else G.degree(w[-1]) == 0
    arr = node2vec_walks(G, 3, 15, p, q, seed=seed, return_indices=True)
    assert arr.shape == (3 * G.number_of_nodes(), 15) and arr.dtype == np.int64
    nodes = to_csr(G).nodes
    assert [[nodes[i] for i in row if i >= 0] for row in arr.tolist()] == walks  # same seed, same walks


def test_walk_reproducibility_and_errors():
    G = nx.florentine_families_graph()
    assert node2vec_walks(G, 2, 10, 0.5, 2, seed=5) == node2vec_walks(G, 2, 10, 0.5, 2, seed=5)
    assert node2vec_walks(G, 2, 10, 0.5, 2, seed=5) != node2vec_walks(G, 2, 10, 0.5, 2, seed=6)
    assert node2vec_walks(G, 0, 10) == []
    assert all(len(w) == 1 for w in node2vec_walks(G, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        node2vec_walks(G, 1, 5, p=-1)
    with pytest.raises(ValueError, match=">= 0"):
        node2vec_walks(G, -1, 5)


def test_p_and_q_control_bfs_vs_dfs():
    """seed 16.11, what p and q control: a low p returns more often (local, BFS-like); a low q
    wanders farther from the start (DFS-like) than a high q — on Cora."""
    from course_lib.data import load_cora

    A = load_cora().adjacency()
    rate, reach = {}, {}
    for p, q in [(0.25, 1.0), (4.0, 1.0), (1.0, 0.25), (1.0, 4.0)]:
        w = node2vec_walks(A, 1, 12, p, q, seed=0, return_indices=True)
        w = w[(w >= 0).all(1)]
        rate[p, q] = float((w[:, 2:] == w[:, :-2]).mean())
        reach[p, q] = float(np.mean([len(set(r)) for r in w.tolist()]))
    assert rate[0.25, 1.0] > 2 * rate[4.0, 1.0]
    assert reach[1.0, 0.25] > reach[1.0, 4.0] + 1


def test_walk_throughput_on_cora():
    """The vectorised sampler is fast: 2,708 DeepWalk walks of 80 steps on Cora in well under a
    second (the benchmark compares node2vec's throughput with pecanpy)."""
    import time

    from course_lib.data import load_cora

    A = load_cora().adjacency()
    start = time.perf_counter()
    w = node2vec_walks(A, 1, 80, seed=0, return_indices=True)
    assert time.perf_counter() - start < 2.0
    assert w.shape == (2708, 80) and (w >= 0).all()


# ============================================================================================
# skip-gram pairs and Node2Vec (seeds 16.8-16.10)
# ============================================================================================
def test_walk_pairs_lecture_example():
    """seed 16.9: walk [v1, v5, v6, v7, v9, v8, v6, v4, v3], window 2: the first v6 (position 3)
    sees the span [v1, v5, v6, v7, v9] and gives (v6, v1), (v6, v5), (v6, v7), (v6, v9); the
    start v1 sees [v1, v5, v6]."""
    walk = ["v1", "v5", "v6", "v7", "v9", "v8", "v6", "v4", "v3"]
    pairs = walk_pairs([walk], 2)
    first = [(c, o) for c, o in pairs if c == "v6"][:4]
    assert first == [("v6", "v1"), ("v6", "v5"), ("v6", "v7"), ("v6", "v9")]
    assert [o for c, o in pairs[:2]] == ["v5", "v6"] and all(c == "v1" for c, _ in pairs[:2])
    assert len(pairs) == sum(min(len(walk), i + 3) - max(0, i - 2) - 1 for i in range(len(walk)))


@pytest.mark.parametrize("seed", range(3))
def test_walk_pairs_brute_force(seed):
    rng = np.random.default_rng(seed)
    walks = [rng.integers(0, 5, size=int(rng.integers(1, 9))).tolist() for _ in range(4)]
    window = int(rng.integers(1, 4))
    expected = [(w[i], w[j]) for w in walks for i in range(len(w)) for j in range(len(w)) if 0 < abs(i - j) <= window]
    assert sorted(walk_pairs(walks, window)) == sorted(expected)
    assert walk_pairs([[1]], 3) == []
    with pytest.raises(ValueError, match="window"):
        walk_pairs(walks, 0)


def test_node2vec_separates_karate_factions():
    """seeds 16.8, 16.10, 16.12: Node2Vec = course_lib.text's skip-gram with negative sampling over
    walks; on the karate club, nodes are more
    similar to their own faction than to the other (cosine similarity), and the embedding table
    is in node order; a node outside the training graph has no embedding (16.12)."""
    G = nx.karate_club_graph()
    model = Node2Vec(dim=16, walk_length=10, num_walks=10, window=4, epochs=2, sample=0, seed=0).fit(G)
    Z = torch.nn.functional.normalize(model.embeddings, dim=1)
    club = np.array([G.nodes[v]["club"] == "Mr. Hi" for v in G.nodes])
    C = (Z @ Z.T).numpy()
    same = C[np.equal.outer(club, club) & ~np.eye(34, dtype=bool)].mean()
    other = C[~np.equal.outer(club, club)].mean()
    assert same > other + 0.2, (same, other)
    assert torch.equal(model[5], model.embeddings[5])
    assert model.history["num_walks"] == 34 * 10 and model.history["walks_per_s"] > 0
    with pytest.raises(KeyError, match="new nodes"):
        model["stranger"]


# ============================================================================================
# encoder-decoder: the shallow encoder (seeds 16.6-16.7), the neighbourhood AE (16.13-16.14)
# ============================================================================================
def test_encoder_decoder_loss_against_loops():
    """seed 16.6: mean_{i,j} L(z_i^T z_j, s_ij), checked with explicit loops."""
    torch.manual_seed(0)
    Z, S = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, 5, dtype=torch.float64)
    mse = np.mean([(float(Z[i] @ Z[j]) - float(S[i, j])) ** 2 for i in range(5) for j in range(5)])
    assert float(encoder_decoder_loss(Z, S, "mse")) == pytest.approx(mse)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    bce = np.mean([-(S[i, j] * np.log(sig(float(Z[i] @ Z[j]))) + (1 - S[i, j]) * np.log(1 - sig(float(Z[i] @ Z[j]))))
                   for i in range(5) for j in range(5)])  # fmt: skip
    assert float(encoder_decoder_loss(Z, S, "bce")) == pytest.approx(float(bce))
    assert float(dot_product_decoder(Z[1], Z[2])) == pytest.approx(float(Z[1] @ Z[2]))
    with pytest.raises(ValueError, match="loss"):
        encoder_decoder_loss(Z, S, "hinge")
    with pytest.raises(ValueError, match="S"):
        encoder_decoder_loss(Z, S[:4])


@pytest.mark.parametrize("kind", ["adjacency", "exp_distance"])
def test_shallow_encoder_reaches_eckart_young_optimum(kind):
    """seed 16.7: the |V| x d table with the dot-product decoder, trained on the MSE of seed 16.6,
    reaches the best rank-d PSD approximation of S (top-d non-negative eigenvalues, numpy eigh)."""
    G = nx.karate_club_graph()
    S = similarity_matrix(G, kind)
    d = 4
    enc = ShallowEncoder(34, d, seed=0).double()
    hist = enc.fit(S, epochs=600, lr=0.05)
    evals, evecs = np.linalg.eigh(S)
    top = np.clip(evals[::-1][:d], 0, None)
    V = evecs[:, ::-1][:, :d]
    best = np.mean((V @ np.diag(top) @ V.T - S) ** 2)
    assert hist[-1] == pytest.approx(best, rel=0.02, abs=1e-6)
    assert enc(torch.tensor([0, 3])).shape == (2, d) and enc().shape == (34, d)


def test_neighborhood_autoencoder_linear_is_pca():
    """seeds 16.13-16.14: compressing each node's similarity vector s_i; a linear autoencoder with
    a k-dim code reaches PCA's reconstruction error (the tail singular values of the centred S)."""
    G = nx.florentine_families_graph()
    S = torch.tensor(similarity_matrix(G, "exp_distance"), dtype=torch.float64)
    k = 3
    torch.manual_seed(0)
    ae = NeighborhoodAutoencoder(S.shape[1], k, hidden_dims=()).double()
    hist = ae.fit(S, epochs=1200, lr=3e-2)
    sv = torch.linalg.svdvals(S - S.mean(0))
    best = float((sv[k:] ** 2).sum() / S.shape[0])
    assert hist[-1] == pytest.approx(best, rel=0.03)
    assert ae.encode(S).shape == (S.shape[0], k)
    # one set of weights for every node (shared parameters): the count does not grow with |V| beyond the input width
    assert sum(p.numel() for p in ae.parameters()) == 2 * S.shape[1] * k + k + S.shape[1]
    with pytest.raises(ValueError):
        ae.fit(S[:, :5])


def test_neighborhood_autoencoder_nonlinear_minibatch_decreases():
    S = similarity_matrix(nx.karate_club_graph(), "random_walk", steps=2)
    ae = NeighborhoodAutoencoder(34, 4, hidden_dims=(16,))
    hist = ae.fit(S, epochs=60, lr=1e-2, batch_size=8)
    assert hist[-1] < 0.5 * hist[0]


# ============================================================================================
# aggregation, graph embeddings, link prediction (seeds 16.15-16.16)
# ============================================================================================
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("how", ["mean", "sum", "max"])
def test_aggregate_neighbors_against_loop(seed, how):
    """seed 16.15: [x_v, AGG_{u in N(v)} x_u] with an explicit loop over networkx neighbours."""
    G = _random_graph(seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(G.number_of_nodes(), 3))
    out = aggregate_neighbors(G, X, how).numpy()
    assert out.shape == (G.number_of_nodes(), 6)
    nodes = list(G.nodes)
    for i, v in enumerate(nodes):
        nb = [nodes.index(u) for u in G[v]]
        agg = np.zeros(3) if not nb else {"mean": np.mean, "sum": np.sum, "max": np.max}[how](X[nb], axis=0)
        np.testing.assert_allclose(out[i], np.concatenate([X[i], agg]), atol=1e-12)
    with pytest.raises(ValueError, match="how"):
        aggregate_neighbors(G, X, "median")
    with pytest.raises(ValueError, match="features"):
        aggregate_neighbors(G, X[:-1])


def test_graph_embedding_pooling():
    """seed 16.16: z_G = (1/|V|) sum_v z_v; batched with a mask; sum and max."""
    torch.manual_seed(0)
    z = torch.randn(6, 4)
    torch.testing.assert_close(graph_embedding(z), z.mean(0))
    torch.testing.assert_close(graph_embedding(z, "sum"), z.sum(0))
    torch.testing.assert_close(graph_embedding(z, "max"), z.max(0).values)
    batch = torch.stack([z, torch.randn(6, 4)])
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    out = graph_embedding(batch, "mean", mask)
    torch.testing.assert_close(out[1], batch[1, :2].mean(0))
    torch.testing.assert_close(graph_embedding(batch, "max", mask)[1], batch[1, :2].max(0).values)
    with pytest.raises(ValueError):
        graph_embedding(z, "median")
    with pytest.raises(ValueError):
        graph_embedding(batch, mask=torch.zeros(2, 6, dtype=torch.bool))


def test_graph_rnn_encoder_depends_on_order():
    """seed 16.16's alternative: an LSTM over node embeddings; unlike the mean it sees the order."""
    torch.manual_seed(0)
    enc = GraphRNNEncoder(4, 8, out_dim=5)
    z = torch.randn(2, 6, 4)
    out = enc(z, lengths=[6, 3])
    assert out.shape == (2, 5)
    torch.testing.assert_close(enc(z[1:, :3]), out[1:], atol=1e-6, rtol=1e-5)  # padding ignored
    assert not torch.allclose(enc(z.flip(1)), enc(z))


@pytest.mark.parametrize("seed", range(2))
def test_link_prediction_split(seed):
    G = nx.les_miserables_graph()
    split = link_prediction_split(G, 0.3, seed=seed)
    m = round(0.3 * G.number_of_edges())
    assert split.test_edges.shape == (m, 2) and split.test_non_edges.shape == (m, 2)
    nodes = split.nodes
    held = {frozenset((nodes[a], nodes[b])) for a, b in split.test_edges.tolist()}
    assert len(held) == m and all(G.has_edge(*e) for e in map(tuple, held))
    assert not any(split.train_graph.has_edge(*e) for e in map(tuple, held))
    assert split.train_graph.number_of_edges() + m == G.number_of_edges()
    assert nx.number_connected_components(split.train_graph) == nx.number_connected_components(G)
    neg = {frozenset((nodes[a], nodes[b])) for a, b in split.test_non_edges.tolist()}
    assert len(neg) == m and not any(G.has_edge(*tuple(e)) for e in neg) and all(len(e) == 2 for e in neg)
    again = link_prediction_split(G, 0.3, seed=seed)
    np.testing.assert_array_equal(again.test_edges, split.test_edges)
    pairs, labels = split.pairs_and_labels()
    assert pairs.shape == (2 * m, 2) and labels.sum() == m
    with pytest.raises(ValueError, match="disconnecting"):
        link_prediction_split(nx.path_graph(10), 0.5)


def test_edge_features():
    torch.manual_seed(0)
    Z = torch.randn(5, 3)
    pairs = np.array([[0, 1], [2, 4]])
    torch.testing.assert_close(edge_features(Z, pairs, "dot"), torch.stack([Z[0] @ Z[1], Z[2] @ Z[4]]))
    torch.testing.assert_close(edge_features(Z, pairs, "hadamard")[1], Z[2] * Z[4])
    torch.testing.assert_close(edge_features(Z, pairs, "l1")[0], (Z[0] - Z[1]).abs())
    with pytest.raises(ValueError):
        edge_features(Z, pairs, "concat")


def test_link_prediction_auc_on_les_miserables():
    """Dot-product scores of DeepWalk embeddings trained on the training graph rank held-out
    edges above non-edges (ROC-AUC well above 0.5)."""
    from sklearn.metrics import roc_auc_score

    G = nx.les_miserables_graph()
    split = link_prediction_split(G, 0.2, seed=0)
    model = Node2Vec(dim=16, walk_length=10, num_walks=10, window=4, epochs=3, sample=0, seed=0).fit(split.train_graph)
    pairs, labels = split.pairs_and_labels()
    auc = roc_auc_score(labels, edge_features(model.embeddings, pairs, "dot").numpy())
    assert auc > 0.7, auc
