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
# # Lecture 10 · Face identification
#
# A face-recognition system must recognise people it never saw during training: the employees
# hired after the model was built, the passport holders of next year. A classifier with one
# output per person cannot do that. What transfers to new people is an **embedding**
# $f: \text{image} \to \mathbb{R}^D$ whose distances mean something: two photos of one person are
# close, photos of different people are far apart. *Verification* ("is this the same person?")
# is then a threshold on a distance, and *identification* ("who is this?") a nearest-neighbour
# search in a gallery.
#
# **Learning goals**
# 1. the identification data sets (LFW, MegaFace) and the rule of this lecture: split **by
#    person**, so that every number is measured on people never seen in training;
# 2. **DeepFace**: train a classifier over the people, take its penultimate layer as the
#    descriptor, L2-normalise, compare by a distance and a threshold; and transfer to new people
#    by swapping the last layer;
# 3. **FaceNet**: the **triplet loss** $[\,d(a,p) - d(a,n) + \alpha\,]_+$ on normalised
#    embeddings, and why triplets are **mined** inside each batch (batch-all, batch-hard, semi-hard)
#    instead of enumerated;
# 4. verification: ROC curves, the accuracy at a threshold chosen on the training people, the
#    pairwise ranking loss;
# 5. looking at embeddings: t-SNE, and gallery search with images.
#
# Everything numerical comes from `course_lib.identification` (distances, triplet losses,
# mining, the embedding network, identity splits, verification pairs, ROC, gallery search),
# whose tests compare each function with brute-force loops and scikit-learn.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE
from torch import nn
from tqdm.auto import tqdm

from course_lib import identification as I
from course_lib.data import load_olivetti_faces
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots

SMOKE = setup_notebook(SMOKE, seed=0)
DEVICE = get_device()
STEPS = 6 if SMOKE else 600  # training steps per embedding (P x K batches of 15 people x 4 photos)
WIDTHS = (8, 16, 32) if SMOKE else (16, 32, 64)  # EmbeddingNet channel widths
SIDE = 32  # faces are average-pooled from 64x64 to 32x32 so that CPU training takes minutes
MARGIN = 0.2  # alpha, on squared distances between unit vectors (which lie in [0, 4])
EMB_DIM = 64
print(f"smoke mode: {SMOKE}; device: {DEVICE}; {STEPS} steps per embedding, widths {WIDTHS}, {SIDE}x{SIDE} faces")

# %% [markdown]
# ## 1. Identification data sets, and splitting by person
#
# <!-- narrative: published facts, with sources -->
# The benchmarks of the field, as published:
#
# | data set | photos | people | source |
# | --- | --- | --- | --- |
# | LFW (Labeled Faces in the Wild) | 13,233 | 5,749 (1,680 with two or more photos) | Huang, Ramesh, Berg & Learned-Miller, *Labeled Faces in the Wild*, UMass tech. report 07-49, 2007 |
# | MegaFace (challenge 2 training set) | 4.7 million | 672,057 (about 7 photos per person) | Nech & Kemelmacher-Shlizerman, *Level Playing Field for Million Scale Face Recognition*, CVPR 2017 |
#
# LFW's verification protocol is 6,000 pairs of photos (half same person, half different) in ten
# folds; MegaFace measures identification against a gallery of a million distractors. The
# lecture notes round these to "about 13k photos of about 6k people" and "4.7M photos of about
# 700k people": the exact numbers are those above. Neither set is on this machine; we use the
# **Olivetti faces** (AT&T Laboratories Cambridge, 1992–1994): 40 people × 10 photos, 64×64
# grey levels, the same people under different expressions, glasses and slight turns.
#
# The rule that makes the numbers honest: **split by identity**. Ten people are held out
# entirely; everything we report about verification and search is measured on them.

# %%
images, labels = load_olivetti_faces()
x_all = F.avg_pool2d(torch.from_numpy(images)[:, None], 64 // SIDE)  # (400, 1, SIDE, SIDE)
x_all = (x_all - x_all.mean()) / x_all.std()
train_idx, test_idx = I.identity_split(labels, 10, seed=0)
x_train, y_train = x_all[train_idx], labels[train_idx]
x_test, y_test = x_all[test_idx], labels[test_idx]
print(f"{len(images)} photos of {len(np.unique(labels))} people, {images.shape[1]}x{images.shape[2]} pixels")
print(f"training: {len(train_idx)} photos of {len(np.unique(y_train))} people; "
      f"test: {len(test_idx)} photos of {len(np.unique(y_test))} unseen people {sorted(np.unique(y_test).tolist())}")
claim(not set(y_train) & set(y_test), "no person appears in both the training and the test split")

fig, axes = subplots(2, 10, figsize=(11, 2.7))
for col, person in enumerate(np.unique(y_test)):
    shots = np.flatnonzero(labels == person)[:2]
    for row in range(2):
        axes[row, col].imshow(images[shots[row]], cmap="gray")
        axes[row, col].axis("off")
    axes[0, col].set_title(f"#{person}", fontsize=9)
show(fig, "The ten test people (two photos each): nobody here is seen during training.")

# %% [markdown]
# ## 2. DeepFace: a classifier over people, its penultimate layer as the descriptor
#
# DeepFace (Taigman, Yang, Ranzato & Wolf, CVPR 2014) trains an ordinary classifier with one
# class per training person. Its **penultimate layer** $h(x)$ is kept as the face descriptor,
# **L2-normalised**, $f(x) = h(x) / \lVert h(x) \rVert_2$, and two photos are compared by a metric
# and a threshold:
#
# $$\text{same}(x, x') \iff \lVert f(x) - f(x') \rVert_2 \le t .$$
#
# The classifier's last layer is thrown away, so nothing limits the descriptor to the training
# people. Our version: `EmbeddingNet` (conv–BN–ReLU blocks, global pooling, a linear layer to
# 64 numbers) with a 30-way linear layer on top of `features()`, trained by cross-entropy.
#
# Every network below is trained the same way: Adam with a cosine learning-rate schedule, $P
# \times K$ batches of $P = 15$ people × $K = 4$ photos (the batches triplet mining needs), random
# horizontal flips and shifts of up to 3 pixels.

# %%
def augment(x, gen):
    """Random horizontal flips and shifts of up to 3 pixels (reflect padding). x: (N, 1, H, W)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, (3, 3, 3, 3), mode="reflect")
    dy, dx = torch.randint(0, 7, (2, n), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def pk_batch(y, p, k, rng):
    """Indices of a P x K batch: p random people, k random photos of each."""
    people = rng.choice(np.unique(y), size=p, replace=False)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c in people])


def step_loss(method, out, yb, head):
    if method == "classifier":
        return F.cross_entropy(head(out), yb)
    if method == "batch-all":
        return I.batch_all_triplet_loss(out, yb, MARGIN)
    if method == "batch-hard":
        return I.batch_hard_triplet_loss(out, yb, MARGIN)
    a, p, n = I.semi_hard_triplets(out, yb, MARGIN)
    return I.triplet_loss(out[a], out[p], out[n], MARGIN)


def train_embedding(method, x, y, steps=STEPS, seed=0):
    """method: 'classifier' (DeepFace-style) or a triplet mining strategy. Returns (net, head, losses)."""
    torch.manual_seed(seed)
    people = np.unique(y)
    net = make_net(method).to(DEVICE)
    head = nn.Linear(EMB_DIM, len(people)).to(DEVICE) if method == "classifier" else None
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    opt = torch.optim.Adam(params, lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    class_of = {c: i for i, c in enumerate(people)}
    losses = []
    net.train()
    for _ in tqdm(range(steps), desc=method, leave=False):
        idx = pk_batch(y, 15, 4, rng)
        xb = augment(x[idx], gen).to(DEVICE)
        yb = torch.tensor([class_of[c] for c in y[idx]], device=DEVICE)
        loss = step_loss(method, net(xb), yb, head)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval()
    return net, head, np.array(losses)


def make_net(method):
    # the classifier reads the unnormalised features; the triplet losses see unit vectors (FaceNet)
    return I.EmbeddingNet(EMB_DIM, widths=WIDTHS, dropout=0.2, normalize=method != "classifier")


@torch.no_grad()
def descriptors(net, x):
    """L2-normalised descriptors (N, D); net=None: raw pixels, centred per image."""
    if net is None:
        flat = x.flatten(1)
        return F.normalize(flat - flat.mean(1, keepdim=True), dim=1)
    return F.normalize(net.features(x.to(DEVICE)), dim=1).cpu()


METHODS = ["classifier", "batch-all", "batch-hard", "semi-hard"]
NAMES = {"classifier": "DeepFace-style classifier", "batch-all": "triplet, batch-all",
         "batch-hard": "triplet, batch-hard", "semi-hard": "triplet, semi-hard", "pixels": "raw pixels"}
nets, heads, curves, seconds = {}, {}, {}, {}
for method in METHODS:
    start = time.perf_counter()
    nets[method], heads[method], curves[method] = train_embedding(method, x_train, y_train)
    seconds[method] = time.perf_counter() - start
    print(f"{NAMES[method]:>26}: {STEPS} steps in {seconds[method]:.1f} s, "
          f"loss {curves[method][:10].mean():.3f} (first 10 steps) -> {curves[method][-10:].mean():.3f} (last 10)")

# %%
fig, axes = subplots(1, 2, figsize=(11, 3.6))
smooth = max(1, STEPS // 30)
for method in METHODS:
    c = np.convolve(curves[method], np.ones(smooth) / smooth, mode="valid")
    ax = axes[0] if method == "classifier" else axes[1]
    ax.plot(np.arange(len(c)) + smooth, c, marker="o" if SMOKE else None, label=NAMES[method])
axes[0].set_title("cross-entropy over 30 people")
axes[1].set_title(f"triplet losses (margin {MARGIN})")
for ax in axes:
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (moving average)")
    ax.legend()
show(fig, "Training losses. The triplet losses are not comparable with each other: batch-all averages over "
     "the triplets that still violate the margin, batch-hard over the hardest triplet of each anchor, "
     "semi-hard over one mined triplet per positive pair.")
claim(all(curves[m][-10:].mean() < curves[m][:10].mean() for m in METHODS),
      "every training loss decreases (last 10 steps against the first 10)")

# %% [markdown]
# ### Few photos of new people: swap the last layer
#
# The notes' advice for a small data set (transfer learning): keep the trained network and
# replace only its last layer. Here the descriptor network of the classifier is frozen and a
# *new* 10-way linear layer is trained on 5 photos of each unseen person, then tested on their
# other 5 photos. For comparison, the same linear layer on raw pixels.

# %%
def swap_last_layer(feats_fit, y_fit, feats_eval, y_eval, epochs=300):
    """Train a new linear layer (multinomial logistic regression) on fixed features; return its accuracy."""
    torch.manual_seed(0)
    classes = {c: i for i, c in enumerate(np.unique(y_fit))}
    t_fit = torch.tensor([classes[c] for c in y_fit])
    t_eval = torch.tensor([classes[c] for c in y_eval])
    layer = nn.Linear(feats_fit.shape[1], len(classes))
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(layer(feats_fit), t_fit).backward()
        opt.step()
    return (layer(feats_eval).argmax(1) == t_eval).double().mean().item()


shot = np.tile(np.arange(10) < 5, 10)  # test photos are sorted by person: the first 5 of each person fit the layer
transfer = {}
for name, net in [("classifier", nets["classifier"]), ("pixels", None)]:
    d = descriptors(net, x_test)
    transfer[name] = swap_last_layer(d[shot], y_test[shot], d[~shot], y_test[~shot])
    print(f"new last layer on {NAMES[name]:>26} features: {100 * transfer[name]:.1f} % of the "
          f"{int((~shot).sum())} other photos of the 10 new people (chance: 10 %)")

# %%
claim(transfer["classifier"] > 0.6, "a new last layer on the frozen classifier features recognises the new people "
      "far above chance (more than 60 %, chance is 10 %)")
md(f"With 5 photos per new person, the swapped last layer reaches **{100 * transfer['classifier']:.1f} %** on "
   f"the frozen descriptors (raw pixels: {100 * transfer['pixels']:.1f} %). Olivetti is easy for raw pixels — the "
   "photos of one person are taken against the same background in the same session — so the interesting "
   "comparison is verification below, where the threshold must carry over to unseen people.")

# %% [markdown]
# ## 3. FaceNet: the triplet loss, and why not enumerate all triplets
#
# FaceNet (Schroff, Kalenichenko & Philbin, CVPR 2015) trains the embedding for the distance
# directly: batch → network → **L2 normalisation** → triplet loss. A **triplet** is an anchor
# $x^a$, a positive $x^p$ (same person) and a negative $x^n$ (another person); with
# $d(u, v) = \lVert f(u) - f(v) \rVert_2^2$ and a margin $\alpha$,
#
# $$L = \sum_{i=1}^{N} \big[\, \lVert f(x_i^a) - f(x_i^p) \rVert_2^2 - \lVert f(x_i^a) - f(x_i^n) \rVert_2^2 + \alpha \,\big]_+ ,
# \qquad [z]_+ = \max(z, 0).$$
#
# The positive part $[\cdot]_+$ matters (one version of the notes drops it and starts the sum at
# $i = 0$): without it the loss is unbounded below, and the network would be rewarded for pushing
# already-far negatives ever further instead of fixing the violating triplets. `course_lib`
# returns the **mean** over triplets instead of the sum, so the step size does not depend on
# how many triplets a batch has. Because $f$ is normalised, $d \in [0, 4]$ and a fixed
# $\alpha = 0.2$ means the same thing throughout training.
#
# **How many triplets are there?** With $n_c$ photos of person $c$ among $N$:
# $\sum_c n_c (n_c - 1)(N - n_c)$ ordered triplets, about $N^2 (m - 1)$ for $m$ photos per
# person — quadratic in the data set.

# %%
counts = {"Olivetti, all 400 photos": I.count_triplets(labels),
          f"our training split ({len(train_idx)} photos)": I.count_triplets(y_train),
          "one 15 x 4 batch": I.count_triplets(np.repeat(np.arange(15), 4))}
for name, c in counts.items():
    print(f"{name:>32}: {c:>12,} valid triplets")
lfw_like = {m: I.count_triplets(np.repeat(np.arange(5749), m)) for m in (2, 3)}
print(f"{'LFW-sized, 5,749 people x 2':>32}: {lfw_like[2]:>16,} (x 3 photos: {lfw_like[3]:,})")
claim(counts["Olivetti, all 400 photos"] == 40 * 10 * 9 * 390 == 1_404_000,
      "Olivetti has 40 * 10 * 9 * 390 = 1,404,000 valid triplets")

# %% [markdown]
# Most of these triplets are useless once training has started: they already satisfy the margin,
# contribute $0$ to the loss and $0$ to the gradient. The next cell evaluates the loss of **every**
# triplet of the training split, before training and after training with each kind of mining.

# %%
@torch.no_grad()
def active_fraction(emb, y):
    """Fraction of all valid triplets (a, p, n) with a positive loss d(a, p) - d(a, n) + alpha > 0."""
    d = I.pairwise_distances(emb.double())
    yt = torch.as_tensor(y)
    same = yt[:, None] == yt[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    active = total = 0
    for a in range(len(y)):  # one anchor at a time: (P, N) losses
        lossmat = d[a][pos[a]][:, None] - d[a][~same[a]][None, :] + MARGIN
        active += int((lossmat > 0).sum())
        total += lossmat.numel()
    return active / total


untrained = make_net("batch-all").eval()
frac_before = active_fraction(descriptors(untrained, x_train), y_train)
frac_after = {m: active_fraction(descriptors(nets[m], x_train), y_train) for m in ("batch-all", "semi-hard", "batch-hard")}
print(f"triplets of the training split with a positive loss: {100 * frac_before:.1f} % before training; after "
      + ", ".join(f"{m} training {100 * f:.1f} %" for m, f in frac_after.items()))

# %%
claim(frac_after["batch-all"] < frac_before / 2,
      "training on all triplets (batch-all) leaves less than half as many violating triplets as at the start")
md(f"After batch-all training only **{100 * frac_after['batch-all']:.1f} %** of the "
   f"{counts[f'our training split ({len(train_idx)} photos)']:,} training triplets still violate the margin "
   f"({100 * frac_before:.1f} % before): most random triplets are wasted work. (Batch-hard trains on the "
   f"hardest triplet of each anchor only; {100 * frac_after['batch-hard']:.1f} % still violate the margin "
   "after it — its loss sits near the margin, the embedding stays in a small ball — yet it ranks the "
   "photos well, as §4 shows.) Hence **mining**: compute all distances of a batch once "
   "(`pairwise_distances`, one matrix product) and pick the informative triplets inside it.")

# %% [markdown]
# ### Three mining strategies
#
# On a batch of $B$ embeddings with the distance matrix $D_{ij} = d(i, j)$:
#
# * **batch-all** (Hermans, Beyer & Leibe, 2017): all valid triplets of the batch, the loss
#   averaged over those with a positive loss;
# * **batch-hard** (same paper): for every anchor, its *farthest* positive and its *closest*
#   negative, $\big[\max_p D_{ap} - \min_n D_{an} + \alpha\big]_+$;
# * **semi-hard** (FaceNet): for every positive pair $(a, p)$, a negative with
#
# $$d(a, p) < d(a, n) < d(a, p) + \alpha ,$$
#
# farther than the positive, yet still inside the margin, so the loss is in $(0, \alpha)$. One
# version of the notes writes the condition as "$d(a, n) > \alpha$", which is wrong; the other
# gives only the left inequality. FaceNet's reason for avoiding the *hardest* negatives: early in
# training they are often mislabelled or degenerate photos, and they can collapse the embedding to
# a point ($f(x) = \text{const}$ gives loss $\alpha$ for every triplet).
#
# Every triplet `semi_hard_triplets` returns satisfies the inequality; checked here on one batch
# of the trained network:

# %%
rng = np.random.default_rng(5)
batch = pk_batch(y_train, 15, 4, rng)
with torch.no_grad():
    emb = nets["semi-hard"](x_train[batch].to(DEVICE)).cpu()
yb = torch.as_tensor(y_train[batch])
a, p, n = I.semi_hard_triplets(emb, yb, MARGIN)
D = I.pairwise_distances(emb)
print(f"{len(a)} semi-hard triplets among {I.count_triplets(yb):,} valid ones "
      f"({int((yb[:, None] == yb[None, :]).sum()) - len(yb)} positive pairs) in a 15 x 4 batch")
claim(bool(((D[a, p] < D[a, n]) & (D[a, n] < D[a, p] + MARGIN)).all()) and bool((yb[a] == yb[p]).all())
      and bool((yb[a] != yb[n]).all()), "every mined triplet satisfies d(a,p) < d(a,n) < d(a,p) + alpha")

# %% [markdown]
# ## 4. Verification on unseen people
#
# For the 10 test people we form balanced pairs as LFW does: every same-person pair ($10 \cdot
# \binom{10}{2} = 450$) and as many random different-person pairs. A descriptor turns each pair
# into a distance, and the **ROC curve** plots, for every threshold $t$, the true-positive rate
# (same-person pairs accepted) against the false-positive rate (different-person pairs accepted).
#
# The threshold is **chosen on the training people** (the best accuracy over their balanced
# pairs) and then applied, unchanged, to the unseen people — exactly what a deployed system does.
# We also print the best accuracy an oracle threshold would reach on the test pairs, an upper
# bound. Baseline: raw pixels (each photo centred and normalised to unit length).

# %%
def pair_distances(desc, y, seed):
    n_same = int(sum(c * (c - 1) // 2 for c in np.unique(y, return_counts=True)[1]))
    i, j, same = I.verification_pairs(y, 2 * n_same, seed=seed)
    d = I.pairwise_distances(desc.double(), squared=False).numpy()
    return d[i, j], same


results = {}
for name in [*METHODS, "pixels"]:
    net = nets.get(name)
    d_tr, s_tr = pair_distances(descriptors(net, x_train), y_train, seed=1)
    d_te, s_te = pair_distances(descriptors(net, x_test), y_test, seed=2)
    _, threshold = I.best_threshold_accuracy(d_tr, s_tr)
    results[name] = {"auc": I.roc_auc(d_te, s_te), "acc": I.verification_accuracy(d_te, s_te, threshold),
                     "best": I.best_threshold_accuracy(d_te, s_te)[0], "threshold": threshold,
                     "roc": I.roc_curve(d_te, s_te)}
print(f"{len(s_te)} test pairs ({int(s_te.sum())} same-person)")
print(f"{'descriptor':>26} | ROC-AUC | accuracy at the training threshold | best accuracy on test | threshold")
for name, r in results.items():
    print(f"{NAMES[name]:>26} | {r['auc']:.3f}   | {100 * r['acc']:>6.1f} %"
          f"{'':>27}| {100 * r['best']:>6.1f} %{'':>13}| {r['threshold']:.3f}")

# %%
fig, axes = subplots(1, 2, figsize=(11, 4.2))
for name, r in results.items():
    fpr, tpr, _ = r["roc"]
    for ax in axes:
        ax.plot(fpr, tpr, label=f"{NAMES[name]} (AUC {r['auc']:.3f})", ls="--" if name == "pixels" else "-")
axes[1].set_xlim(0, 0.2)
axes[1].set_ylim(0.5, 1.0)
axes[0].set_title("ROC on the 10 unseen people")
axes[1].set_title("zoom: false-positive rate below 0.2")
for ax in axes:
    ax.set_xlabel("false-positive rate (different people accepted)")
    ax.set_ylabel("true-positive rate")
axes[0].legend(loc="lower right", fontsize=8)
show(fig, "Verification ROC curves of each descriptor on pairs of photos of people never seen in training.")

# %%
triplet_best = max(["batch-all", "batch-hard", "semi-hard"], key=lambda m: results[m]["acc"])
r_t, r_c, r_p = results[triplet_best], results["classifier"], results["pixels"]
claim(max(results[m]["auc"] for m in METHODS) > r_p["auc"], "a learned descriptor has a higher ROC-AUC than raw pixels")
claim(r_t["auc"] > r_p["auc"] and r_t["acc"] > r_p["acc"],
      f"the best triplet embedding ({NAMES[triplet_best]}) beats raw pixels in ROC-AUC and in accuracy at the "
      "training threshold")
verdict = "reaches" if r_t["acc"] >= 0.95 else "stays below"
md(f"On the unseen people the best triplet embedding, **{NAMES[triplet_best]}**, verifies **{100 * r_t['acc']:.1f} %** "
   f"of the pairs correctly with the threshold taken from the training people (ROC-AUC {r_t['auc']:.3f}); the "
   f"classifier features reach {100 * r_c['acc']:.1f} % (AUC {r_c['auc']:.3f}) and raw pixels {100 * r_p['acc']:.1f} % "
   f"(AUC {r_p['auc']:.3f}). The course's target for the triplet embedding is 95 %; this run {verdict} it "
   f"({STEPS} steps at {SIDE}x{SIDE}). The gap between the transferred threshold and the oracle one "
   f"({100 * r_t['best']:.1f} %) is the price of deciding the threshold before seeing the new people.")

# %% [markdown]
# **One split is one draw of people.** Ten test people give 900 pairs, but the pairs are not
# independent: a person who looks alike in every photo, or one who wears glasses in only some of
# them, moves every pair they are in. The same training recipe therefore scores quite differently
# on different draws of ten people, and a single split, like the one above, can be lucky or
# unlucky by several points. The benchmark (`benchmarks/identification_autoencoders.py`) uses
# **identity cross-validation** instead, `I.identity_folds(labels, 4, 5)`: the 40 people in 4
# folds of 10, each fold the test people once, 5 of the other 30 for the threshold and 25 for
# training; it reports the mean over the folds and every fold's accuracy
# (`benchmarks/RESULTS.md`). LFW's protocol does the same with 10
# folds. <!-- narrative -->

# %% [markdown]
# **At full resolution (GPU only).** The CPU-sized runs above use 32×32 faces and a narrow
# network. Where a CUDA GPU is present, the next cell retrains the batch-hard embedding on the
# original 64×64 photos with widths (32, 64, 128) and 1,500 steps, and evaluates it the same way
# (without a GPU the cell is skipped and the numbers above stand).

# %% tags=["gpu"]
x64 = (torch.from_numpy(images)[:, None] - images.mean()) / images.std()
saved = (WIDTHS, STEPS)
WIDTHS, STEPS = ((8, 16, 32), 6) if SMOKE else ((32, 64, 128), 1500)
net64, _, _ = train_embedding("batch-hard", x64[train_idx], y_train)
WIDTHS, STEPS = saved
d_tr, s_tr = pair_distances(descriptors(net64, x64[train_idx]), y_train, seed=1)
d_te, s_te = pair_distances(descriptors(net64, x64[test_idx]), y_test, seed=2)
acc64 = I.verification_accuracy(d_te, s_te, I.best_threshold_accuracy(d_tr, s_tr)[1])
auc64 = I.roc_auc(d_te, s_te)
print(f"batch-hard at 64x64: verification accuracy on the unseen people {100 * acc64:.1f} % at the training "
      f"threshold, ROC-AUC {auc64:.3f} (32x32 CPU run: {100 * results['batch-hard']['acc']:.1f} %, "
      f"{results['batch-hard']['auc']:.3f})")
claim(auc64 > results["pixels"]["auc"], "at 64x64 the batch-hard embedding beats raw pixels in ROC-AUC")

# %% [markdown]
# <!-- narrative: a published result, cited -->
# For scale: FaceNet reports **99.63 %** (± 0.09) verification accuracy on LFW's 6,000 pairs
# (Schroff et al., 2015, table 6, with face alignment), trained on 100–200 million photos of about 8
# million people; DeepFace reported 97.35 %. A number measured on 10 Olivetti people says nothing
# about LFW — it says that the method transfers to people it never saw.
#
# ### The pairwise ranking loss
#
# The notes also mention the **pairwise ranking loss**: for pairs $(i, j) \in R$ where object $i$
# should rank above object $j$, minimise the number of wrongly ordered pairs,
# $\sum_{(i,j) \in R} [\,a(x_i) - a(x_j) < 0\,]$ — "not quite distance learning", because it
# constrains only the *order* of scores. Its hinge surrogate $[\alpha - (a_i - a_j)]_+$ with the
# score $a = -d(\text{anchor}, \cdot)$ and the pairs (positive, negative) of one anchor is exactly
# the triplet loss:

# %%
d_ap, d_an = D[a, p], D[a, n]
rank_hinge = I.pairwise_ranking_loss(-d_ap, -d_an, margin=MARGIN)
trip = I.triplet_loss(emb[a], emb[p], emb[n], MARGIN)
misordered = I.pairwise_ranking_loss(-d_ap, -d_an, surrogate="zero_one")
print(f"hinge ranking loss {rank_hinge:.6f} = triplet loss {trip:.6f}; wrongly ordered pairs: {100 * misordered:.1f} %")
claim(torch.isclose(rank_hinge, trip, atol=1e-6), "the hinge ranking loss with a = -d equals the triplet loss")
claim(float(misordered) == 0.0, "semi-hard triplets are correctly ordered (d(a,p) < d(a,n)): zero ranking errors, "
      "yet a positive triplet loss")

# %% [markdown]
# ## 5. Looking at the embeddings: t-SNE and gallery search
#
# t-SNE (van der Maaten & Hinton, 2008) places points in 2-D so that neighbours stay neighbours.
# Below: the 100 photos of the unseen people under raw pixels, the classifier's descriptor and
# the best triplet embedding, one colour per person. As a number beside the picture: leave-one-out
# 1-nearest-neighbour identification among the 100 test photos.

# %%
def loo_1nn(desc, y):
    dist = I.pairwise_distances(desc.double())
    dist.fill_diagonal_(float("inf"))
    return float(np.mean(y[dist.argmin(1).numpy()] == y))


shown = ["pixels", "classifier", triplet_best]
fig, axes = subplots(1, 3, figsize=(12, 4))
nn1 = {}
for ax, name in zip(axes, shown):
    desc = descriptors(nets.get(name), x_test).numpy()
    nn1[name] = loo_1nn(torch.from_numpy(desc), y_test)
    xy = TSNE(2, perplexity=15, init="pca", random_state=0).fit_transform(desc)
    ax.scatter(xy[:, 0], xy[:, 1], c=np.searchsorted(np.unique(y_test), y_test), cmap="tab10", s=18)
    ax.set_title(f"{NAMES[name]}\n1-NN: {100 * nn1[name]:.0f} %")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
show(fig, "t-SNE of the 100 photos of the unseen people, coloured by person; the title gives the leave-one-out "
     "1-nearest-neighbour accuracy.")

# %%
claim(nn1[triplet_best] >= 0.8, "leave-one-out 1-NN on the unseen people is at least 80 % with the triplet embedding")
md(f"Leave-one-out 1-NN identification of the unseen people: raw pixels {100 * nn1['pixels']:.0f} %, classifier "
   f"features {100 * nn1['classifier']:.0f} %, {NAMES[triplet_best]} {100 * nn1[triplet_best]:.0f} %.")

# %% [markdown]
# **Gallery search.** A gallery holds 5 enrolled photos of each unseen person; each of their other
# photos is a query, answered by `gallery_search` (one matrix product and `topk`). Green frames
# are the same person.

# %%
emb_test = descriptors(nets[triplet_best], x_test)
gallery, queries = np.flatnonzero(shot), np.flatnonzero(~shot)
dist, idx = I.gallery_search(emb_test[queries], emb_test[gallery], k=5)
hits = y_test[gallery][idx.numpy()] == y_test[queries][:, None]
top1, top5 = hits[:, 0].mean(), hits.any(1).mean()
print(f"{len(queries)} queries against a gallery of {len(gallery)}: top-1 {100 * top1:.1f} %, top-5 {100 * top5:.1f} %")

rows = queries[np.linspace(0, len(queries) - 1, 5).astype(int)]
fig, axes = subplots(len(rows), 6, figsize=(8, 7.2))
for r, q in enumerate(rows):
    qi = int(np.flatnonzero(queries == q)[0])
    axes[r, 0].imshow(images[test_idx[q]], cmap="gray")
    axes[r, 0].set_title("query", fontsize=9)
    for k in range(5):
        g = gallery[int(idx[qi, k])]
        ax = axes[r, k + 1]
        ax.imshow(images[test_idx[g]], cmap="gray")
        ax.set_title(f"d = {dist[qi, k]:.2f}", fontsize=9)
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:green" if y_test[g] == y_test[q] else "tab:red")
            spine.set_linewidth(3)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
show(fig, f"Gallery search with the {NAMES[triplet_best]} embedding: a query and its five nearest gallery photos "
     "(green: same person, red: someone else).")
claim(top1 >= 0.8, "top-1 gallery search on the unseen people is at least 80 % correct")
md(f"Top-1 search accuracy on the unseen people: **{100 * top1:.1f} %**, top-5: {100 * top5:.1f} %.")

# %% [markdown]
# ## Summary
#
# <!-- narrative: restates the claims of sections 2-5 -->
# - Identification needs an embedding that works for **new people**; every measurement here is on
#   people held out by `identity_split`.
# - DeepFace: a classifier over the training people, its L2-normalised penultimate layer as the
#   descriptor, a distance and a threshold; a new last layer adapts it to new people.
# - FaceNet: the triplet loss $[d(a,p) - d(a,n) + \alpha]_+$ on unit vectors. The number of
#   triplets grows as $N^2 (m-1)$ and almost all are inactive after a little training, so
#   triplets are mined in each batch: batch-all, batch-hard, or semi-hard
#   ($d(a,p) < d(a,n) < d(a,p) + \alpha$).
# - Verification is judged by ROC curves and by the accuracy at a threshold chosen on other
#   people; search is a nearest-neighbour query in the embedding space.
#
# ### Seed statements (lecture notes, topic 10)
#
# | # | statement | where it is checked or corrected |
# | --- | --- | --- |
# | 10.1 | LFW: 13,233 photos, 5,749 people | §1, cited (Huang et al., 2007); the notes' "~13k / ~6k" made exact |
# | 10.2 | MegaFace: 4.7M photos, 672,057 people, ~7 per person | §1, cited (Nech & Kemelmacher-Shlizerman, 2017) |
# | 10.3 | few data: swap the last layer | §2, new last layer on frozen features (claim) |
# | 10.4 | DeepFace: classifier, penultimate layer, L2 normalisation, metric, threshold | §2 and §4 (claims); `EmbeddingNet.features`, `best_threshold_accuracy` tests |
# | 10.5 | triplet loss with $[\cdot]_+$ | §3; `tests/test_identification.py` (brute force); the notes' missing $[\cdot]_+$ and $i = 0$ corrected |
# | 10.6 | semi-hard negatives $d(a,p) < d(a,n) < d(a,p) + \alpha$ | §3 (claim) and hypothesis test; the notes' "$> \alpha$" corrected |
# | 10.7 | pairwise ranking loss, "not quite distance learning" | §4 (claims: hinge = triplet loss; order vs distance) |
# | 10.8 | FaceNet 99.63 % on LFW | §4, cited (Schroff et al., 2015); not reproducible here (no LFW) |
# | 10.9 | batch → net → normalise → triplet loss | §2–3, `EmbeddingNet` with `normalize=True` and the training loop |
#
# ## Where to go next
#
# - **Assignment:** [`assignments/10-identification/`](../../assignments/10-identification/10-identification.ipynb)
#   — implement pairwise distances, the triplet loss, semi-hard mining and a denoising
#   autoencoder's training step.
# - **Library:** `course_lib.identification` — distances, triplet losses and mining, `EmbeddingNet`,
#   identity splits, verification pairs, ROC, gallery search (see the API reference).
# - **Benchmark:** `benchmarks/identification_autoencoders.py` — verification of every mining
#   strategy (64×64 faces on a GPU, 32×32 on a CPU), including batch-hard on plain Euclidean
#   distances as Hermans et al. train it (on squared distances its loss sits near $\alpha$, as §3
#   notes, and with longer training the embedding collapses), and `batch_hard_triplet_loss`
#   against a loop over all triplets at batch sizes 32–512.
# - **Next lecture:** autoencoders, where an embedding is learned without any labels.
