# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "solution": false, "schema_version": 3}
# # Assignment 16 · node2vec walks and ranking metrics
#
# In this assignment you implement the pieces of lecture 16 (and 17) that turn a graph into
# training data for skip-gram, and the two metrics that score a recommender:
#
# 1. node2vec's **biased transition probabilities** (3 points);
# 2. **walk generation** with them — DeepWalk when $p = q = 1$ (3 points);
# 3. the skip-gram **(centre, context) pairs** of a window (2 points);
# 4. **HR@k** and **NDCG@k** for the leave-one-out protocol (3 points).
#
# Graphs are `networkx` graphs; an edge's weight is its `"weight"` attribute (1 when missing).
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# graphs you have not seen (networkx generators), against the course's reference library.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: plain Python, `numpy`, `torch` and `networkx`'s graph queries (`G[v]`, `G.has_edge`,
# `G.nodes`) are fine. **Do not use** `course_lib.graphs`, `course_lib.recsys` or
# `sklearn.metrics` (no `ndcg_score`) in your answers.

# %% tags=["parameters"]
SMOKE = False

# %%
import math

import networkx as nx
import numpy as np
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close

SMOKE = setup_notebook(SMOKE, seed=0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "probs_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. Biased transition probabilities (3 points)
#
# A node2vec walk has just moved from $t$ to $v$. It picks the next node $x$ among the
# neighbours of $v$ with probability proportional to $\alpha_{pq}(t, x)\, w(v, x)$, where
#
# $$\alpha_{pq}(t, x) = \begin{cases} 1/p & x = t \text{ (return)},\\ 1 & x \text{ is a neighbour of } t,\\
# 1/q & \text{otherwise (move away)}.\end{cases}$$
#
# On the first step there is no $t$ (`prev=None`): the probability is $w(v, x) / \sum_y w(v, y)$.
# Return a dict `{x: probability}` over the neighbours of `cur` (empty for a node without
# neighbours) and raise `ValueError` when `p` or `q` is not positive.

# %% nbgrader={"grade": false, "grade_id": "probs", "locked": false, "solution": true, "schema_version": 3}
def node2vec_transition_probs(G, prev, cur, p, q):
    """P(next | prev, cur) of node2vec's second-order walk, as {next: probability}."""
    ### BEGIN SOLUTION
    if not (p > 0 and q > 0):
        raise ValueError(f"p and q must be positive, got p={p}, q={q}")
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
    return {x: r / total for x, r in raw.items()} if total > 0 else {}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "probs_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
# a path 0 - 1 - 2 plus a triangle 1 - 2 - 3: from t = 0 to v = 1, the neighbours of 1 are 0 (return), 2, 3
_G = nx.Graph([(0, 1), (1, 2), (1, 3), (2, 3)])
_P = node2vec_transition_probs(_G, 0, 1, p=0.5, q=2.0)
assert set(_P) == {0, 2, 3}, f"the candidates are the neighbours of cur=1, i.e. {{0, 2, 3}}, got {set(_P)}"
# weights 1/p = 2 (return to 0), 1/q = 0.5 for 2 and 3 (not neighbours of 0) -> 2/3, 1/6, 1/6
assert_close(torch.tensor([_P[0], _P[2], _P[3]]), torch.tensor([2 / 3, 1 / 6, 1 / 6]), "p=0.5, q=2 from 0 to 1")
_P = node2vec_transition_probs(_G, 2, 1, p=1.0, q=4.0)  # from 2 to 1: 3 is a common neighbour, 0 is not
assert_close(torch.tensor([_P[2], _P[3], _P[0]]), torch.tensor([1, 1, 0.25]) / 2.25, "p=1, q=4 from 2 to 1")
_P = node2vec_transition_probs(_G, None, 1, p=3.0, q=3.0)
assert_close(torch.tensor(sorted(_P.values())), torch.full((3,), 1 / 3), "first step: uniform over the neighbours")
_W = nx.Graph()
_W.add_weighted_edges_from([(0, 1, 1.0), (0, 2, 3.0)])
assert_close(node2vec_transition_probs(_W, None, 0, 1.0, 1.0)[2], 0.75, "weights count: w(0, 2) = 3 of 4")
try:
    node2vec_transition_probs(_G, 0, 1, p=0.0, q=1.0)
except ValueError:
    pass
else:
    raise AssertionError("p = 0 must raise ValueError")
### BEGIN HIDDEN TESTS
from course_lib.graphs import node2vec_transition_probs as _ref_probs

_rng = np.random.default_rng(1916)
for _seed, (_p, _q) in enumerate([(0.25, 4.0), (4.0, 0.25), (1.0, 1.0), (2.0, 0.5)]):
    _H = nx.gnp_random_graph(12, 0.35, seed=_seed)
    for _u, _v in _H.edges:
        _H[_u][_v]["weight"] = float(_rng.uniform(0.2, 3.0))
    for _cur in _H.nodes:
        for _prev in [None, *_H[_cur]]:
            _mine, _ref = node2vec_transition_probs(_H, _prev, _cur, _p, _q), _ref_probs(_H, _prev, _cur, _p, _q)
            assert set(_mine) == set(_ref), f"candidates from {_prev}->{_cur} on a random graph"
            for _x in _ref:
                assert abs(_mine[_x] - _ref[_x]) < 1e-9, f"P({_x} | {_prev}, {_cur}) with p={_p}, q={_q}"
_K = nx.star_graph(4)
_K.add_node(99)
assert node2vec_transition_probs(_K, None, 99, 1.0, 1.0) == {}, "an isolated node has no transitions"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "walks_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. Walk generation (3 points)
#
# `node2vec_walks(G, num_walks, walk_length, p, q, seed)` runs `num_walks` rounds; each round
# starts one walk at **every** node (in a shuffled order). A walk is a list of `walk_length`
# nodes: the start, then one step drawn from `node2vec_transition_probs(G, prev, cur, p, q)`
# (with `prev=None` on the first step) until it has `walk_length` nodes — or it stops early at a
# node without neighbours. Use `np.random.default_rng(seed)` so that the same seed gives the
# same walks. Return the list of `num_walks * |V|` walks.

# %% nbgrader={"grade": false, "grade_id": "walks", "locked": false, "solution": true, "schema_version": 3}
def node2vec_walks(G, num_walks, walk_length, p=1.0, q=1.0, seed=None):
    """num_walks * |V| node2vec walks (lists of nodes) of at most walk_length nodes each."""
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    nodes = list(G.nodes)
    walks = []
    for _ in range(num_walks):
        for i in rng.permutation(len(nodes)):
            walk = [nodes[i]]
            while len(walk) < walk_length:
                prev = walk[-2] if len(walk) > 1 else None
                probs = node2vec_transition_probs(G, prev, walk[-1], p, q)
                if not probs:
                    break
                options = list(probs)
                walk.append(options[rng.choice(len(options), p=np.array([probs[x] for x in options]))])
            walks.append(walk)
    return walks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "walks_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_G = nx.karate_club_graph()
_walks = node2vec_walks(_G, 3, 10, p=0.5, q=2.0, seed=0)
assert len(_walks) == 3 * 34, f"3 rounds x 34 nodes = 102 walks, got {len(_walks)}"
assert all(len(w) == 10 for w in _walks), "every karate-club walk has walk_length = 10 nodes"
assert sorted(w[0] for w in _walks) == sorted(list(_G.nodes) * 3), "each round starts one walk at every node"
assert all(_G.has_edge(a, b) for w in _walks for a, b in zip(w, w[1:])), "walks only follow edges"
assert node2vec_walks(_G, 1, 6, 2.0, 0.5, seed=7) == node2vec_walks(_G, 1, 6, 2.0, 0.5, seed=7), "same seed, same walks"
_I = nx.Graph([(0, 1)])
_I.add_node(2)
assert sorted(map(len, node2vec_walks(_I, 1, 5, seed=0))) == [1, 5, 5], "a walk from an isolated node has 1 node"
# a path 0-1-2: from 0 -> 1 the walk returns to 0 with probability (1/p) / (1/p + 1/q)
_path = nx.path_graph(3)
_second = [w[2] for w in node2vec_walks(_path, 400, 3, p=0.25, q=4.0, seed=1) if w[:2] == [0, 1]]
_share = float(np.mean([x == 0 for x in _second]))
assert abs(_share - 16 / 17) < 0.08, f"p=0.25, q=4: 0->1->0 should happen 16/17 of the time, got {_share:.2f}"
### BEGIN HIDDEN TESTS
from course_lib.graphs import node2vec_transition_probs as _ref_probs

for _H, (_p, _q) in [(nx.lollipop_graph(5, 3), (0.5, 2.0)), (nx.barbell_graph(4, 1), (3.0, 0.3))]:
    _walks = node2vec_walks(_H, 300, 12, _p, _q, seed=3)
    assert len(_walks) == 300 * _H.number_of_nodes(), "num_walks rounds of one walk per node"
    assert all(_H.has_edge(a, b) for w in _walks for a, b in zip(w, w[1:])), "walks only follow edges"
    _counts = {}
    for w in _walks:
        for t, v, x in zip(w, w[1:], w[2:]):
            _counts.setdefault((t, v), {}).setdefault(x, 0)
            _counts[(t, v)][x] += 1
    for (t, v), c in _counts.items():
        n = sum(c.values())
        if n < 300:
            continue
        ref = _ref_probs(_H, t, v, _p, _q)
        tv = 0.5 * sum(abs(c.get(x, 0) / n - ref[x]) for x in ref)
        assert tv < 0.08, f"empirical P(. | {t}, {v}) is {tv:.3f} away (total variation) from node2vec's, p={_p}, q={_q}"
_Wt = nx.Graph()
_Wt.add_weighted_edges_from([(0, 1, 1.0), (0, 2, 9.0)])
_first = [w[1] for w in node2vec_walks(_Wt, 2000, 2, seed=5) if w[0] == 0]
assert abs(np.mean([x == 2 for x in _first]) - 0.9) < 0.04, "the first step follows the edge weights"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "pairs_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Skip-gram pairs (2 points)
#
# Skip-gram over walks trains on (centre, context) pairs: for position $i$ of a walk, the
# contexts are the nodes at positions $i - \text{window}, \dots, i + \text{window}$ except $i$
# itself, cut at the ends of the walk. Return the list of pairs in walk order, then centre
# position, then context position from left to right. A node recurring inside the window is a
# context of itself. Raise `ValueError` for `window < 1`.
#
# The lecture's example: the walk $[v_1, v_5, v_6, v_7, v_9, v_8, v_6, v_4, v_3]$ with window 2
# gives, for the first $v_6$, the pairs $(v_6, v_1), (v_6, v_5), (v_6, v_7), (v_6, v_9)$.

# %% nbgrader={"grade": false, "grade_id": "pairs", "locked": false, "solution": true, "schema_version": 3}
def walk_pairs(walks, window):
    """All (centre, context) pairs of the walks with the given window."""
    ### BEGIN SOLUTION
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    pairs = []
    for walk in walks:
        walk = list(walk)
        for i, centre in enumerate(walk):
            for j in range(max(0, i - window), min(len(walk), i + window + 1)):
                if j != i:
                    pairs.append((centre, walk[j]))
    return pairs
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pairs_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_S = ["v1", "v5", "v6", "v7", "v9", "v8", "v6", "v4", "v3"]
_pairs = walk_pairs([_S], 2)
assert _pairs[5:9] == [("v6", "v1"), ("v6", "v5"), ("v6", "v7"), ("v6", "v9")], (
    f"the lecture's example: pairs of the first v6 are (v6,v1),(v6,v5),(v6,v7),(v6,v9); got {_pairs[5:9]}")
assert _pairs[:2] == [("v1", "v5"), ("v1", "v6")], "the first centre has only right-hand contexts"
assert len(_pairs) == 2 * (2 * 9 - 3), f"window 2 on 9 nodes gives 30 pairs, got {len(_pairs)}"
assert walk_pairs([[1, 2, 1]], 1) == [(1, 2), (2, 1), (2, 1), (1, 2)], "a repeated node is its own neighbour's context"
assert walk_pairs([[4]], 3) == [], "a one-node walk has no pairs"
try:
    walk_pairs([_S], 0)
except ValueError:
    pass
else:
    raise AssertionError("window = 0 must raise ValueError")
### BEGIN HIDDEN TESTS
from course_lib.graphs import walk_pairs as _ref_pairs

_rng = np.random.default_rng(1619)
for _window in [1, 2, 3, 5]:
    _ws = [_rng.integers(0, 6, size=int(_rng.integers(1, 12))).tolist() for _ in range(7)]
    assert walk_pairs(_ws, _window) == _ref_pairs(_ws, _window), f"pairs of random walks with window {_window}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "rank_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. HR@k and NDCG@k (3 points)
#
# In the leave-one-out protocol each user has one held-out item, scored together with sampled
# negatives. `scores` is a `(users, candidates)` tensor, `target_col` a `(users,)` tensor with
# the column of each user's held-out item. With the 1-based rank
# $r_u = 1 + \#\{c : \text{score}_{u,c} > \text{score}_{u,\text{target}}\}$ (ties count in the
# target's favour),
#
# $$\mathrm{HR@}k = \frac1U \sum_u [r_u \le k], \qquad \mathrm{NDCG@}k = \frac1U \sum_u \frac{[r_u \le k]}{\log_2(r_u + 1)}.$$
#
# Return Python floats. Vectorise: no loop over users.

# %% nbgrader={"grade": false, "grade_id": "hr", "locked": false, "solution": true, "schema_version": 3}
def _ranks(scores, target_col):
    """1-based rank of each user's target among its candidates (ties in the target's favour)."""
    ### BEGIN SOLUTION
    scores, target_col = torch.as_tensor(scores), torch.as_tensor(target_col).long()
    target = scores.gather(1, target_col.unsqueeze(1))
    return (scores > target).sum(1) + 1
    ### END SOLUTION


def hit_rate_at_k(scores, target_col, k=10):
    """Share of users whose held-out item ranks in the top k."""
    ### BEGIN SOLUTION
    return float((_ranks(scores, target_col) <= k).double().mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "hr_tests", "locked": true, "points": 1, "solution": false, "schema_version": 3}
_scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
_target = torch.tensor([0, 2, 0])  # ranks 1, 2, 4
assert_close(hit_rate_at_k(_scores, _target, 1), 1 / 3, "only user 0 ranks its item first")
assert_close(hit_rate_at_k(_scores, _target, 2), 2 / 3, "users 0 and 1 are in the top 2")
assert_close(hit_rate_at_k(_scores, _target, 4), 1.0, "everyone is in the top 4 of 4 candidates")
assert isinstance(hit_rate_at_k(_scores, _target, 2), float), "return a Python float"
### BEGIN HIDDEN TESTS
from course_lib.recsys import hit_rate_at_k as _ref_hr

_gen = torch.Generator().manual_seed(1717)
for _u, _c, _k in [(50, 100, 10), (7, 5, 1), (30, 20, 20)]:
    _s = torch.randn(_u, _c, generator=_gen)
    _t = torch.randint(0, _c, (_u,), generator=_gen)
    assert_close(hit_rate_at_k(_s, _t, _k), _ref_hr(_s, _t, _k), f"HR@{_k} on random scores ({_u} users, {_c} candidates)")
    _si = torch.randint(0, 4, (_u, _c), generator=_gen).double()
    assert_close(hit_rate_at_k(_si, _t, _k), _ref_hr(_si, _t, _k, ties="optimistic"), f"HR@{_k} with tied scores")
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "ndcg", "locked": false, "solution": true, "schema_version": 3}
def ndcg_at_k(scores, target_col, k=10):
    """NDCG@k with one relevant item per user."""
    ### BEGIN SOLUTION
    r = _ranks(scores, target_col).double()
    return float(((r <= k).double() / torch.log2(r + 1)).mean())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ndcg_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
# ranks 1, 2, 4 (the scores and targets of the HR test)
_scores = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
_target = torch.tensor([0, 2, 0])
assert_close(ndcg_at_k(_scores, _target, 2), (1 + 1 / math.log2(3)) / 3, "NDCG@2: 1 for rank 1, 1/log2(3) for rank 2")
assert_close(ndcg_at_k(_scores, _target, 4), (1 + 1 / math.log2(3) + 1 / math.log2(5)) / 3, "NDCG@4 of ranks 1, 2, 4")
assert_close(ndcg_at_k(_scores, _target, 1), 1 / 3, "NDCG@1 equals HR@1")
### BEGIN HIDDEN TESTS
from course_lib.recsys import ndcg_at_k as _ref_ndcg

_gen = torch.Generator().manual_seed(1718)
for _u, _c, _k in [(50, 100, 10), (9, 6, 3), (25, 40, 40)]:
    _s = torch.randn(_u, _c, generator=_gen)
    _t = torch.randint(0, _c, (_u,), generator=_gen)
    assert_close(ndcg_at_k(_s, _t, _k), _ref_ndcg(_s, _t, _k), f"NDCG@{_k} on random scores ({_u} users, {_c} candidates)")
    _si = torch.randint(0, 4, (_u, _c), generator=_gen).double()
    assert_close(ndcg_at_k(_si, _t, _k), _ref_ndcg(_si, _t, _k, ties="optimistic"), f"NDCG@{_k} with tied scores")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "solution": false, "schema_version": 3}
# That's it: the reference versions are `course_lib.graphs.node2vec_transition_probs`,
# `node2vec_walks` (vectorised: all walks advance at once, with rejection sampling for the
# second-order bias), `walk_pairs`, and `course_lib.recsys.hit_rate_at_k` / `ndcg_at_k`
# (which also average over tied scores). Lecture 16 trains node2vec on these walks.
