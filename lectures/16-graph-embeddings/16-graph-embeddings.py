# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture 16 · Graph embeddings
#
# "Something2vec": anything that comes in sequences or relations — words, items in baskets,
# nodes of a graph — can be given a vector so that similar things get close vectors. This
# lecture embeds the **nodes** of a graph (and whole graphs), in the encoder–decoder framework.
#
# **Learning goals**
# 1. node-level and graph-level tasks, and three notions of **node similarity** $s_G$;
# 2. the **encoder–decoder** view: a shallow $|V| \times d$ encoder, a dot-product decoder, a
#    loss that makes $z_i^\top z_j \approx s_G(v_i, v_j)$;
# 3. **DeepWalk and node2vec**: skip-gram over (biased) random walks, what $p$ and $q$ do;
# 4. using the embeddings: **node classification** on Cora and **link prediction**;
# 5. the **neighbourhood autoencoder** and **neighbourhood aggregation** (features + structure);
# 6. **graph embeddings** by averaging node embeddings.
#
# Everything numerical comes from `course_lib.graphs` (walks, pairs, encoders, splits), tested
# against networkx, brute-force loops and exact eigen-decompositions.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import networkx as nx
import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split
from tqdm.auto import tqdm

from course_lib import graphs as cg
from course_lib.data import load_cora
from course_lib.notebook import claim, md, setup_notebook, show, subplots

SMOKE = setup_notebook(SMOKE, seed=0)
# torch takes its thread count from OMP_NUM_THREADS, which `make course` sets to NB_THREADS (1 by default):
# these small models gain little from a second thread, and with 2 beside any other busy process on a 2-core
# machine each step ran many times slower (lecture 17's biLM: 21 min per epoch instead of 73 s)
KARATE_WALKS = 10 if SMOKE else 40  # walks per node on the karate club
CORA = dict(num_walks=1, walk_length=10, dim=16, window=5) if SMOKE else dict(num_walks=5, walk_length=40, dim=64, window=5)
SWEEP_DIMS = [8, 16] if SMOKE else [16, 64]
SWEEP_PQ = [(1.0, 1.0), (1.0, 0.5)] if SMOKE else [(1.0, 1.0), (1.0, 0.5), (4.0, 1.0)]
SWEEP = dict(num_walks=1, walk_length=10, window=5) if SMOKE else dict(num_walks=4, walk_length=40, window=5)
AE_EPOCHS = 2 if SMOKE else 10
N_GRAPHS = 20 if SMOKE else 200  # graphs per family in §6
WORKERS = torch.get_num_threads()  # threads of the skip-gram trainer (see above)
print(f"smoke mode: {SMOKE}")


def lr_accuracy(X, y, seed=0):
    """Logistic regression on a 50/50 stratified split: test accuracy (share of nodes)."""
    Xtr, Xte, ytr, yte = train_test_split(np.asarray(X), y, test_size=0.5, stratify=y, random_state=seed)
    return float(LogisticRegression(max_iter=1000).fit(Xtr, ytr).score(Xte, yte))


# %% [markdown]
# ## 1. Graphs, tasks and node similarity
#
# A graph $G = (V, E)$: nodes $V = \{v_i\}$ and non-negative edge weights
# $E: V \times V \to \mathbb{R}_{\ge 0}$. **Node-level** tasks predict something per node (the
# topic of a paper in a citation graph, a user's community, a missing link); **graph-level**
# tasks predict something per graph (is a molecule toxic?). To embed nodes we first fix what
# "similar" means — a function $s_G: V \times V \to \mathbb{R}$:
#
# * **adjacency**: $s_G(v_i, v_j) = 1$ if $(v_i, v_j) \in E$, else 0;
# * **distance**: $s_G(v_i, v_j) = \exp(-d_G(v_i, v_j) / \tau)$ with $d_G$ the shortest-path length;
# * **random walk**: $s_G(v_i, v_j) = P(\text{a walk from } v_i \text{ is at } v_j \text{ after } k \text{ steps}) = [(D^{-1}A)^k]_{ij}$.
#
# Zachary's karate club (34 members, 78 friendships) split into two factions; nodes are sorted
# by faction below so that the block structure shows.
# <!-- narrative -->

# %%
karate = nx.karate_club_graph()
faction = np.array([karate.nodes[v]["club"] == "Officer" for v in karate.nodes], dtype=int)
order = np.argsort(faction, kind="stable")
sims = {
    "adjacency": cg.similarity_matrix(karate, "adjacency"),
    "exp(-d/τ), τ = 1": cg.similarity_matrix(karate, "exp_distance", tau=1.0),
    "random walk, k = 2": cg.similarity_matrix(karate, "random_walk", steps=2),
}
fig, axes = subplots(1, 3, figsize=(13, 4.2))
for ax, (name, S) in zip(axes, sims.items()):
    im = ax.imshow(S[np.ix_(order, order)], cmap="viridis")
    ax.axhline(faction.size - faction.sum() - 0.5, color="w", lw=1)
    ax.axvline(faction.size - faction.sum() - 0.5, color="w", lw=1)
    ax.set(title=name, xlabel="node j (sorted by faction)", ylabel="node i (sorted by faction)")
    fig.colorbar(im, ax=ax, shrink=0.8)
show(fig, "Three similarity matrices of the karate club; the white lines separate the two factions.")


def within_share(S):
    """Share of the similarity mass (off the diagonal) that stays inside a faction."""
    same = faction[:, None] == faction[None, :]
    off = ~np.eye(len(S), dtype=bool)
    return float(S[same & off].sum() / S[off].sum())


shares = {name: within_share(S) for name, S in sims.items()}
for name, s in shares.items():
    print(f"{name:20s}: {100 * s:5.1f} % of the similarity lies within a faction")
claim(all(s > 0.5 for s in shares.values()), "every similarity puts most of its mass within the factions")
P2 = sims["random walk, k = 2"]
claim(np.allclose(P2.sum(1), 1.0), "the k-step random-walk similarity is a row-stochastic matrix")

# %% [markdown]
# ## 2. The encoder–decoder view and the shallow encoder
#
# An **encoder** $\mathrm{ENC}: V \to \mathbb{R}^d$, $z_i = \mathrm{ENC}(v_i)$, and a **decoder**
# with $\mathrm{DEC}(z_i, z_j) \approx s_G(v_i, v_j)$, trained by
#
# $$\sum_{i, j} L\big(\mathrm{DEC}(\mathrm{ENC}(v_i), \mathrm{ENC}(v_j)),\ s_G(v_i, v_j)\big) \to \min .$$
#
# The simplest encoder is **shallow**: a $|V| \times d$ table, $\mathrm{ENC}(v_i) = Z_i$, with the
# dot-product decoder $\mathrm{DEC}(z_i, z_j) = z_i^\top z_j$. With the squared loss the optimum
# is known: the best rank-$d$ positive semidefinite approximation of $S$ (its top $d$ eigenpairs),
# so we can check that gradient descent finds it.
# <!-- narrative -->

# %%
S = torch.tensor(sims["exp(-d/τ), τ = 1"], dtype=torch.float32)
dims = [2, 4, 8]
curves, finals, optima = {}, {}, {}
for d in dims:
    enc = cg.ShallowEncoder(len(S), d, seed=0)
    curves[d] = enc.fit(S, epochs=300 if SMOKE else 1500, lr=0.05)
    finals[d] = float(enc.loss(S).detach())
    w, V = torch.linalg.eigh(S.double())
    w, V = w.flip(0)[:d].clamp_min(0), V.flip(1)[:, :d]
    optima[d] = float(((V * w) @ V.T - S.double()).pow(2).mean())
fig, ax = subplots()
for d in dims:
    ax.plot(curves[d], label=f"d = {d}")
    ax.axhline(optima[d], ls="--", lw=0.8, color="k")
ax.set(xlabel="epoch (full-batch Adam)", ylabel="mean squared error", yscale="log", title="shallow encoder on exp(-d_G)")
ax.legend()
show(fig, "Training loss of the shallow encoder; dashed: the rank-d eigen-decomposition optimum.")
for d in dims:
    print(f"d = {d}: loss {finals[d]:.5f}, optimum {optima[d]:.5f}")
claim(all(finals[d] <= 1.05 * optima[d] + 1e-4 for d in dims), "gradient descent reaches the rank-d optimum (within 5 %)")
claim(finals[8] < finals[4] < finals[2], "a larger dimension d reconstructs the similarity better")

# %% [markdown]
# ## 3. DeepWalk and node2vec: skip-gram over random walks
#
# node2vec models the probability of meeting $v_j$ near $v_i$ on a random walk with a softmax
# over all nodes,
# $p(v_j \mid v_i) \approx \dfrac{e^{z_j^\top z_i}}{\sum_k e^{z_k^\top z_i}}$, and minimises
# $L = \sum_{(i, j)} \big(-z_j^\top z_i + \log \sum_k e^{z_k^\top z_i}\big)$ over the
# (centre, context) pairs of the walks — it is **skip-gram** (lecture 13) where sentences are
# walks. The sum over $k$ costs $|V|$ per pair, so in practice it is replaced by **negative
# sampling**. The pairs come from a window over each walk:
# <!-- narrative -->

# %%
walk = ["v1", "v5", "v6", "v7", "v9", "v8", "v6", "v4", "v3"]
pairs = cg.walk_pairs([walk], window=2)
first_v6 = [pr for pr in pairs if pr[0] == "v6"][:4]
print("window around the first v6:", walk[0:5])
print("its pairs:", first_v6)
claim(first_v6 == [("v6", "v1"), ("v6", "v5"), ("v6", "v7"), ("v6", "v9")],
      "the worked example: the first v6 gives the pairs (v6,v1), (v6,v5), (v6,v7), (v6,v9)")

# %% [markdown]
# **Biased walks.** DeepWalk walks uniformly (proportionally to the edge weights). node2vec's walk
# is second-order: having come from $t$ to $v$, it moves to a neighbour $x$ of $v$ with
# probability $\propto \alpha_{pq}(t, x)\, w(v, x)$, where $\alpha = 1/p$ to **return** to $t$,
# $\alpha = 1$ to a **common neighbour** of $t$ and $v$, and $\alpha = 1/q$ to **move away**.
# A large $q$ keeps the walk near where it started (**BFS-like**, local, "structural roles"); a
# small $q$ sends it outwards (**DFS-like**, exploring communities); a small $p$ makes it
# backtrack. $p = q = 1$ is DeepWalk.
# <!-- narrative -->

# %%
t, v = 0, 8  # came from the instructor (0) to member 8
for p, q in [(1, 1), (0.25, 4), (4, 0.25)]:
    probs = cg.node2vec_transition_probs(karate, t, v, p, q)
    kind = {x: "return" if x == t else ("common" if karate.has_edge(x, t) else "away") for x in probs}
    total = {k: sum(pr for x, pr in probs.items() if kind[x] == k) for k in ("return", "common", "away")}
    print(f"p={p}, q={q}: " + ", ".join(f"P({k}) = {val:.2f}" for k, val in total.items()))
pr_bfs = cg.node2vec_transition_probs(karate, t, v, 1, 4)
pr_dfs = cg.node2vec_transition_probs(karate, t, v, 1, 0.25)
away = [x for x in pr_bfs if x != t and not karate.has_edge(x, t)]
claim(sum(pr_dfs[x] for x in away) > sum(pr_bfs[x] for x in away), "a small q moves the walk away more often than a large q")

# %% [markdown]
# The walks themselves: for each $(p, q)$ we start walks at every node and measure how far
# (shortest-path hops) the walk is from its start after 10 steps, and how many distinct nodes it visits.
# <!-- narrative -->

# %%
les = nx.les_miserables_graph()
les_dist = dict(nx.all_pairs_shortest_path_length(les))
settings = {"DeepWalk (p=1, q=1)": (1, 1), "BFS-like (p=1, q=4)": (1, 4), "DFS-like (p=1, q=0.25)": (1, 0.25)}
walk_stats = {}
for name, (p, q) in settings.items():
    ws = cg.node2vec_walks(les, KARATE_WALKS, 11, p, q, seed=0)
    walk_stats[name] = (np.mean([les_dist[w[0]][w[-1]] for w in ws]), np.mean([len(set(w)) for w in ws]))
    print(f"{name:24s}: distance after 10 steps {walk_stats[name][0]:.2f} hops, {walk_stats[name][1]:.1f} distinct nodes")
bfs, dfs = walk_stats["BFS-like (p=1, q=4)"], walk_stats["DFS-like (p=1, q=0.25)"]
claim(dfs[0] > bfs[0] and dfs[1] > bfs[1], "DFS-like walks end farther from their start and visit more nodes than BFS-like walks")

# %% [markdown]
# Now the embeddings of the karate club, one per setting (skip-gram with negative sampling from
# `course_lib.text`, $d = 16$, projected to 2-D by PCA), coloured by faction. A logistic
# regression tells (by 5-fold cross-validation) how well each embedding separates the factions.
# <!-- narrative -->

# %%
karate_emb, karate_acc = {}, {}
for name, (p, q) in tqdm(settings.items(), desc="node2vec on the karate club"):
    model = cg.Node2Vec(dim=16, walk_length=20, num_walks=KARATE_WALKS, p=p, q=q, window=5, sample=0,
                        epochs=1 if SMOKE else 3, workers=1, seed=0).fit(karate)  # fmt: skip
    karate_emb[name] = model.embeddings.numpy()
    karate_acc[name] = float(cross_val_score(LogisticRegression(max_iter=1000), karate_emb[name], faction, cv=5).mean())
fig, axes = subplots(1, 3, figsize=(13, 4.2))
for ax, (name, Z) in zip(axes, karate_emb.items()):
    Z2 = PCA(2).fit_transform(Z)
    for f, colour in [(0, "tab:blue"), (1, "tab:orange")]:
        ax.scatter(*Z2[faction == f].T, c=colour, s=30, label=["Mr. Hi", "Officer"][f])
    ax.set(title=f"{name}\nfaction accuracy {100 * karate_acc[name]:.0f} %", xlabel="PC 1", ylabel="PC 2")
axes[0].legend()
show(fig, "node2vec embeddings of the karate club (PCA to 2-D), coloured by the faction each member joined.")
acc_dw = karate_acc["DeepWalk (p=1, q=1)"]
md(f"DeepWalk's embedding separates the factions with **{100 * acc_dw:.0f} %** cross-validated accuracy.")

# %%
claim(acc_dw >= 0.8, "DeepWalk's karate-club embedding separates the two factions (at least 80 % accuracy)")

# %% [markdown]
# **node2vec's limits.** The table $Z$ has a row only for the nodes seen in training (a new node
# needs retraining), node attributes (a paper's words) are ignored, and no parameters are
# shared between nodes ($|V| d$ of them). §5 addresses the last two.
# <!-- narrative -->

# %% [markdown]
# ## 4. Using the embeddings: node classification and link prediction on Cora
#
# Cora: 2,708 machine-learning papers, 5,429 citations, 7 topics. We hold out 10 % of the
# citations (keeping the graph connected) and as many non-citing pairs, embed the **training
# graph** once with DeepWalk, and use the embedding for both tasks:
#
# * **node classification**: logistic regression on $z_v$, 50/50 stratified split of the nodes;
# * **link prediction**: score a pair by the decoder $z_u^\top z_v$ and measure the ROC-AUC
#   of held-out citations against non-citations (0.5 = chance, 1 = perfect).
# <!-- narrative -->

# %%
cora = load_cora()
y = cora.labels
cora_graph = nx.from_scipy_sparse_array(cora.adjacency())
split = cg.link_prediction_split(cora_graph, test_frac=0.1, seed=0)
start = time.perf_counter()
n2v = cg.Node2Vec(**CORA, workers=WORKERS, seed=0).fit(split.train_graph)
n2v_seconds = time.perf_counter() - start
Z = n2v.embeddings.numpy()
acc_n2v = lr_accuracy(Z, y)
acc_feat = lr_accuracy(cora.features, y)
majority = float(np.bincount(y).max() / len(y))
pairs_lp, labels_lp = split.pairs_and_labels()
auc_dot = roc_auc_score(labels_lp, cg.edge_features(Z, pairs_lp, "dot").numpy())
print(f"DeepWalk on Cora ({CORA}): {n2v_seconds:.1f} s, {n2v.history['walks_per_s']:.0f} walks/s")
print(f"node classification accuracy: DeepWalk {100 * acc_n2v:.1f} %, bag-of-words {100 * acc_feat:.1f} %, "
      f"majority class {100 * majority:.1f} %")
print(f"link prediction ROC-AUC of z_u·z_v on {len(split.test_edges)} held-out citations: {auc_dot:.3f}")

# %%
claim(acc_n2v > majority + 0.3, "structure alone (DeepWalk) classifies Cora's topics far above the majority class")
claim(auc_dot > 0.8, "the dot-product decoder ranks held-out citations above non-citations (ROC-AUC > 0.8)")

# %% [markdown]
# Accuracy against the dimension $d$ (DeepWalk) and against $(p, q)$ (at $d = 64$; 16 in smoke
# mode), on the full graph with shorter walks:
# <!-- narrative -->

# %%
full_A = cora.adjacency()
walks_by_pq = {pq: cg.node2vec_walks(full_A, SWEEP["num_walks"], SWEEP["walk_length"], *pq, seed=0, return_indices=True)
               for pq in SWEEP_PQ}  # fmt: skip
acc_dim, acc_pq = {}, {}
sweep_dim = SWEEP_DIMS[len(SWEEP_DIMS) // 2]
with tqdm(total=len(SWEEP_DIMS) + len(SWEEP_PQ), desc="Cora sweep") as bar:
    for d in SWEEP_DIMS:
        m = cg.Node2Vec(dim=d, **SWEEP, workers=WORKERS, seed=0).fit(full_A, walks=walks_by_pq[(1.0, 1.0)])
        acc_dim[d] = lr_accuracy(m.embeddings.numpy(), y)
        bar.update(1)
    for pq in SWEEP_PQ:
        m = cg.Node2Vec(dim=sweep_dim, **SWEEP, p=pq[0], q=pq[1], workers=WORKERS, seed=0).fit(full_A, walks=walks_by_pq[pq])
        acc_pq[pq] = lr_accuracy(m.embeddings.numpy(), y)
        bar.update(1)
fig, (ax1, ax2) = subplots(1, 2, figsize=(11, 4))
ax1.plot(SWEEP_DIMS, [100 * acc_dim[d] for d in SWEEP_DIMS], marker="o")
ax1.set(xscale="log", xlabel="embedding dimension d", ylabel="test accuracy (%)", title="DeepWalk, accuracy vs d")
ax2.bar([f"p={p:g}\nq={q:g}" for p, q in SWEEP_PQ], [100 * acc_pq[pq] for pq in SWEEP_PQ])
ax2.set(xlabel="(p, q)", ylabel="test accuracy (%)", title=f"node2vec, d = {sweep_dim}")
ax2.set_ylim(min(100 * min(acc_pq.values()) - 5, 90), None)
show(fig, "Cora node classification with logistic regression on node2vec embeddings.")
for pq, a in acc_pq.items():
    print(f"p={pq[0]:g}, q={pq[1]:g}: {100 * a:.1f} %")
spread = 100 * (max(acc_pq.values()) - min(acc_pq.values()))
md(f"On Cora the choice of $(p, q)$ moves the accuracy by **{spread:.1f}** points; DeepWalk reaches "
   f"{100 * acc_dim[SWEEP_DIMS[0]]:.1f} % at d = {SWEEP_DIMS[0]} and {100 * acc_dim[SWEEP_DIMS[-1]]:.1f} % at "
   f"d = {SWEEP_DIMS[-1]}.")

# %%
claim(acc_dim[SWEEP_DIMS[-1]] > acc_dim[SWEEP_DIMS[0]], "a larger embedding dimension gives a higher accuracy on Cora")
claim(spread < 5, "on Cora, a homophilous graph, (p, q) changes the accuracy by less than 5 points")

# %% [markdown]
# ## 5. Sharing parameters: the neighbourhood autoencoder and neighbourhood aggregation
#
# **Neighbourhood autoencoder** (SDNE / DNGR): node $i$'s input is its similarity vector
# $s_i = (s_G(v_i, v_j))_j \in \mathbb{R}^{|V|}$, and an autoencoder with a shared encoder
# compresses it, $z_i = \mathrm{ENC}(s_i)$, $\sum_i \lVert \mathrm{DEC}(\mathrm{ENC}(s_i)) - s_i \rVert^2 \to \min$.
# Parameters are now shared, but the input still has one entry per node (no new nodes) and
# still ignores node attributes.
#
# **Neighbourhood aggregation**: give each node its features $x_v$ and the **mean of its
# neighbours' features**, $h_v = [x_v, \frac{1}{|N(v)|}\sum_{u \in N(v)} x_u]$, and train the
# autoencoder on $h_v$ — now words and links both enter, and a new node only needs its features and
# its neighbours. Below, both autoencoders have a code of 64 numbers (hidden layer 256), and a
# logistic regression reads the code.
# <!-- narrative -->

# %%
S_cora = torch.tensor(cg.similarity_matrix(full_A, "random_walk", steps=1) + np.eye(cora.num_nodes), dtype=torch.float32)
X_feat = torch.tensor(cora.features)
H_agg = cg.aggregate_neighbors(full_A, X_feat)
codes, ae_losses = {}, {}
for name, inputs in tqdm({"structure only: s_i": S_cora, "aggregated features: [x_v, mean x_u]": H_agg}.items(),
                         desc="autoencoders"):  # fmt: skip
    torch.manual_seed(0)
    ae = cg.NeighborhoodAutoencoder(inputs.shape[1], 64, (256,))
    ae_losses[name] = ae.fit(inputs, epochs=AE_EPOCHS, lr=1e-3, batch_size=256)
    with torch.no_grad():
        codes[name] = ae.encode(inputs).numpy()
acc_ae = {name: lr_accuracy(c, y) for name, c in codes.items()}
acc_agg_raw = lr_accuracy(H_agg.numpy(), y)  # no autoencoder: logistic regression on [x_v, mean x_u] itself
for name, a in acc_ae.items():
    print(f"{name:40s}: accuracy {100 * a:.1f} % (reconstruction loss {ae_losses[name][0]:.3f} -> {ae_losses[name][-1]:.3f})")
acc_struct, acc_agg = acc_ae["structure only: s_i"], acc_ae["aggregated features: [x_v, mean x_u]"]
md(f"The code of the aggregated features reaches **{100 * acc_agg:.1f} %**, against **{100 * acc_struct:.1f} %** for the "
   f"structure-only autoencoder; the aggregated features themselves (no compression) reach **{100 * acc_agg_raw:.1f} %**, "
   f"above DeepWalk's **{100 * acc_n2v:.1f} %** and the paper's own words alone (**{100 * acc_feat:.1f} %**).")

# %%
claim(acc_agg > acc_struct, "the autoencoder of aggregated features beats the structure-only neighbourhood autoencoder")
claim(acc_agg_raw > acc_n2v, "aggregating Cora's bag-of-words features beats the structure-only DeepWalk embedding")
claim(acc_agg_raw > acc_feat, "adding the neighbours' mean features beats a node's own features alone")

# %% [markdown]
# ## 6. Graph embeddings
#
# A whole graph gets the **average** of its node embeddings, $z_G = \frac{1}{|V|}\sum_{v} z_v$
# (or an RNN over the sequence of node embeddings, `course_lib.graphs.GraphRNNEncoder`). The
# node embeddings must live in one space for all graphs, so a per-graph node2vec table will not
# do; we use node features that any graph has — $\log(1 + \deg v)$ and the clustering
# coefficient — aggregated twice over neighbourhoods, and average them. Task: tell
# small-world (Watts–Strogatz) graphs from preferential-attachment (Barabási–Albert) graphs of
# the same size and mean degree.
# <!-- narrative -->

# %%
rng = np.random.default_rng(0)


def graph_vector(G):
    x = torch.tensor([[np.log1p(G.degree(v)), nx.clustering(G, v)] for v in G.nodes], dtype=torch.float32)
    h = cg.aggregate_neighbors(G, cg.aggregate_neighbors(G, x))
    return cg.graph_embedding(h, "mean")


families = []
for _ in range(N_GRAPHS):
    n = int(rng.integers(30, 80))
    families.append((nx.watts_strogatz_graph(n, 4, 0.1, seed=int(rng.integers(1 << 30))), 0))
    families.append((nx.barabasi_albert_graph(n, 2, seed=int(rng.integers(1 << 30))), 1))
ZG = torch.stack([graph_vector(G) for G, _ in families]).numpy()
yG = np.array([label for _, label in families])
acc_graph = float(cross_val_score(LogisticRegression(max_iter=2000), ZG, yG, cv=5).mean())
fig, ax = subplots()
Z2 = PCA(2).fit_transform((ZG - ZG.mean(0)) / ZG.std(0))
for f, name in [(0, "Watts–Strogatz"), (1, "Barabási–Albert")]:
    ax.scatter(*Z2[yG == f].T, s=15, label=name)
ax.set(xlabel="PC 1", ylabel="PC 2", title="mean-pooled graph embeddings")
ax.legend()
show(fig, "Each point is a graph: the mean of its nodes' aggregated structural features, projected by PCA.")
md(f"Averaged node embeddings tell the two families apart with **{100 * acc_graph:.0f} %** cross-validated accuracy.")

# %%
claim(acc_graph > 0.9, "the averaged node embedding separates small-world from preferential-attachment graphs")

# %% [markdown]
# ## Summary
#
# - A similarity $s_G$ (adjacency, $e^{-d_G/\tau}$, random-walk probabilities) defines what an
#   embedding should preserve; an encoder and a decoder are trained so that $\mathrm{DEC}(z_i, z_j) \approx s_G$.
# - The shallow encoder with a dot-product decoder reaches the eigen-decomposition optimum.
# - DeepWalk and node2vec are skip-gram over random walks; $q$ switches between BFS-like
#   (local) and DFS-like (outward) walks, $p$ controls backtracking.
# - Structure-only embeddings classify Cora's papers and predict held-out citations; aggregating
#   the neighbours' features adds the words and wins.
# - A graph's embedding can be the mean of its nodes'.
# <!-- narrative: restates the claims of §1–§6 -->
#
# ### Seed statements (topic 16 of the lecture notes)
#
# | # | statement | where it is checked |
# | --- | --- | --- |
# | 16.1 | node- vs graph-level tasks | §1 (text), §4 (node), §6 (graph) |
# | 16.2 | $G = (V, E)$, $E \ge 0$, $s_G$ | §1; `tests/test_graphs.py` |
# | 16.3–16.5 | adjacency, $e^{-d_G/\tau}$, random-walk similarity | §1 heat maps and claims; `tests/test_graphs.py` (networkx oracles) |
# | 16.6–16.7 | ENC/DEC loss; shallow $\lvert V\rvert \times d$ encoder, $z_i^\top z_j$ | §2 claims (eigen optimum); tests |
# | 16.8, 16.10 | node2vec = skip-gram on walks; softmax loss, negative sampling | §3; `tests/test_graphs.py` |
# | 16.9 | the worked example of pairs | §3 claim; tests; assignment 16 |
# | 16.11 | $1/p$, 1, $1/q$ weights; what $p$, $q$ control | §3 claims (probabilities, walk distances); chi-square test in `tests/test_graphs.py`; assignment 16 |
# | 16.12 | node2vec's limits | §3 (text); tests (unseen node raises `KeyError`) |
# | 16.13–16.14 | neighbourhood autoencoder | §5 claim; tests |
# | 16.15 | neighbourhood aggregation | §5 claims; tests |
# | 16.16 | $z_G$ = mean, or an RNN | §6 claim; tests (`graph_embedding`, `GraphRNNEncoder`) |
# <!-- narrative -->

# %% [markdown]
# ## Where to go next
#
# - The assignment [`assignments/16-graph-embeddings/`](../../assignments/16-graph-embeddings/16-graph-embeddings.ipynb): the biased
#   transition probabilities, walk generation, skip-gram pairs, HR@k and NDCG@k.
# - The library: `course_lib.graphs` (walks, `Node2Vec`, encoders, aggregation, link-prediction
#   splits) and `course_lib.text` (the skip-gram trainer).
# - The benchmark `benchmarks/node2vec_pecanpy.py`: `course_lib`'s
#   node2vec side by side with pecanpy + gensim on Cora (accuracy and walks per second).
# - Lecture 17: contextual word embeddings (ELMo) and neural recommenders.
# - Papers: Perozzi et al. 2014 (DeepWalk), Grover & Leskovec 2016 (node2vec), Wang et al. 2016
#   (SDNE), Hamilton, Ying & Leskovec 2017 (representation learning on graphs: the
#   encoder–decoder view).
# <!-- narrative -->
