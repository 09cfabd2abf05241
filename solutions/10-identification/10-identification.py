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
# # Assignment 10 · Face identification and denoising autoencoders
#
# In this assignment you implement, on PyTorch tensors, the building blocks of lectures 10 and 11:
#
# 1. all **pairwise squared distances** of a batch of embeddings, with one matrix product (3 points);
# 2. FaceNet's **triplet loss** with its positive part $[\cdot]_+$ (3 points);
# 3. **semi-hard triplet mining** inside a batch (4 points);
# 4. one **training step of a denoising autoencoder** (3 points).
#
# Embeddings are `(N, D)` tensors, labels `(N,)` integer tensors (person ids). Use `float64`.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# random shapes, labels and margins you have not seen, against brute-force loops written from
# the formulas. Run **Kernel → Restart & Run All** before you submit.
#
# Rules: inside your functions use tensor arithmetic, indexing and reductions (`@`, `.sum()`,
# `.clamp()`, `.min()`, boolean masks, ...) and, for section 4, the model and optimizer you are
# given. **Do not call** `torch.cdist`, and do not import `course_lib.identification` or
# `course_lib.autoencoders` (the course's own solutions).

# %% tags=["parameters"]
SMOKE = False

# %%
import copy

import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "dist_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. Pairwise distances (3 points)
#
# For embeddings $e_1, \dots, e_N \in \mathbb{R}^D$ (the rows of `emb`) compute the $N \times N$
# matrix $D_{ij} = \lVert e_i - e_j \rVert_2^2$ **without loops**, using
#
# $$\lVert e_i - e_j \rVert^2 = \lVert e_i \rVert^2 - 2\, e_i \cdot e_j + \lVert e_j \rVert^2 ,$$
#
# i.e. one matrix product `emb @ emb.T`. Rounding can make this slightly negative: clamp at 0, and
# set the diagonal to exactly 0. With `squared=False` return the Euclidean distances
# $\sqrt{D_{ij}}$ instead. Raise a `ValueError` when `emb` is not 2-dimensional.

# %% nbgrader={"grade": false, "grade_id": "pairwise_distances", "locked": false, "solution": true, "schema_version": 3}
def pairwise_distances(emb, squared=True):
    """emb: (N, D) -> (N, N) with out[i, j] = ||emb_i - emb_j||^2 (or its square root if not squared)."""
    ### BEGIN SOLUTION
    if emb.ndim != 2:
        raise ValueError(f"emb must be (N, D), got shape {tuple(emb.shape)}")
    sq = (emb * emb).sum(1)
    d2 = (sq[:, None] - 2.0 * emb @ emb.T + sq[None, :]).clamp_min(0.0)
    d2 = d2 * (1.0 - torch.eye(len(emb), dtype=emb.dtype))
    return d2 if squared else d2.sqrt()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pairwise_distances_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_e = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
assert_shape(pairwise_distances(_e), (3, 3), "pairwise_distances of 3 points in 2-D")
assert_close(pairwise_distances(_e), [[0, 25, 1], [25, 0, 20], [1, 20, 0]], "squared distances of (0,0), (3,4), (1,0)")
assert_close(pairwise_distances(_e, squared=False)[0], [0, 5, 1], "Euclidean distances from (0,0)")
_big = torch.full((2, 3), 1e4) + torch.tensor([[0.0], [1e-4]])  # nearly identical large vectors
assert (pairwise_distances(_big) >= 0).all(), "clamp the squared distances at 0 (rounding can make them negative)"
assert (pairwise_distances(_big).diagonal() == 0).all(), "the diagonal must be exactly 0"
try:
    pairwise_distances(torch.zeros(3))
except ValueError:
    pass
else:
    raise AssertionError("pairwise_distances must raise ValueError for a 1-d input")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(1001)
for _trial in range(6):
    _n, _d = int(torch.randint(1, 12, (1,), generator=_g)), int(torch.randint(1, 9, (1,), generator=_g))
    _x = torch.randn(_n, _d, generator=_g) * 3
    _ref = torch.tensor([[float(((_x[i] - _x[j]) ** 2).sum()) for j in range(_n)] for i in range(_n)])
    assert_close(pairwise_distances(_x), _ref, f"pairwise_distances of random ({_n}, {_d}) embeddings vs a double loop",
                 atol=1e-9, rtol=1e-9)
    assert_close(pairwise_distances(_x, squared=False), _ref.sqrt(), "Euclidean distances vs a double loop",
                 atol=1e-6, rtol=1e-7)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "triplet_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. The triplet loss (3 points)
#
# Row $i$ of `anchor`, `positive`, `negative` (all $(N, D)$) is one triplet. With a margin
# $\alpha \ge 0$, return the **mean** over the $N$ triplets of
#
# $$\big[\, \lVert a_i - p_i \rVert^2 - \lVert a_i - n_i \rVert^2 + \alpha \,\big]_+ , \qquad [z]_+ = \max(z, 0).$$
#
# The lecture notes forget the $[\cdot]_+$: without it the loss is unbounded below. Return a
# scalar tensor (gradients must flow to the three inputs); for $N = 0$ return a zero tensor.
# Raise a `ValueError` when the three shapes differ.

# %% nbgrader={"grade": false, "grade_id": "triplet_loss", "locked": false, "solution": true, "schema_version": 3}
def triplet_loss(anchor, positive, negative, margin):
    """(N, D) x 3, margin >= 0 -> scalar: mean_i [ ||a_i - p_i||^2 - ||a_i - n_i||^2 + margin ]_+ ."""
    ### BEGIN SOLUTION
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor, positive and negative must have one shape; got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    if anchor.shape[0] == 0:
        return (anchor.sum() + positive.sum() + negative.sum()) * 0.0
    d_ap = ((anchor - positive) ** 2).sum(1)
    d_an = ((anchor - negative) ** 2).sum(1)
    return (d_ap - d_an + margin).clamp_min(0.0).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "triplet_loss_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
_p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
_n = torch.tensor([[0.0, 2.0], [0.0, 0.5]])
# triplet 0: 1 - 4 + 0.5 < 0 -> 0; triplet 1: 1 - 0.25 + 0.5 = 1.25 -> mean 0.625
assert_close(triplet_loss(_a, _p, _n, 0.5), 0.625, "one satisfied and one violating triplet, margin 0.5")
assert_close(triplet_loss(_a[:1], _p[:1], _n[:1], 0.5), 0.0,
             "a triplet that satisfies the margin contributes 0 (did you forget the [.]_+?)")
_ar = _a.clone().requires_grad_(True)
triplet_loss(_ar, _p, _n, 0.5).backward()
assert_close(_ar.grad, [[0.0, 0.0], [0.0, -0.5]], "gradient of the triplet loss with respect to the anchors")
assert_close(triplet_loss(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), 0.2), 0.0, "no triplets: loss 0")
try:
    triplet_loss(_a, _p, torch.zeros(2, 3), 0.5)
except ValueError:
    pass
else:
    raise AssertionError("triplet_loss must raise ValueError when the shapes differ")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(1002)
for _trial in range(6):
    _t, _d = int(torch.randint(1, 15, (1,), generator=_g)), int(torch.randint(1, 6, (1,), generator=_g))
    _m = float(torch.rand(1, generator=_g)) * 2
    _xs = [torch.randn(_t, _d, generator=_g) for _ in range(3)]
    _ref = sum(max(float(((_xs[0][i] - _xs[1][i]) ** 2).sum() - ((_xs[0][i] - _xs[2][i]) ** 2).sum()) + _m, 0.0)
               for i in range(_t)) / _t
    assert_close(triplet_loss(*_xs, _m), _ref, f"triplet_loss of {_t} random triplets in {_d}-D, margin {_m:.2f}, vs a loop")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "semi_hard_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Semi-hard triplet mining (4 points)
#
# Within a batch, with $d$ the **squared** distances of section 1, a negative $n$ of the positive
# pair $(a, p)$ is **semi-hard** when
#
# $$d(a, p) < d(a, n) < d(a, p) + \alpha :$$
#
# farther than the positive, yet still inside the margin (its triplet loss is in $(0, \alpha)$).
# (The notes write "$d(a, n) > \alpha$": that is wrong.) Return three `int64` index tensors
# `(a_idx, p_idx, n_idx)` of the same length $T$, built as follows:
#
# * go through every **ordered** positive pair $(a, p)$: $a \ne p$, `labels[a] == labels[p]`, in
#   increasing order of $a$, then of $p$;
# * among the negatives $n$ (`labels[n] != labels[a]`) that are semi-hard for $(a, p)$, keep the
#   one with the **smallest** $d(a, n)$ (the lowest index $n$ on ties);
# * a pair with no semi-hard negative contributes no triplet.
#
# Hint: `positive_pairs = (same & ~eye).nonzero()` lists the pairs in this order; for all of them
# at once, mask the rows `D[a_idx]` of the distance matrix and take `.min(1)` after filling the
# non-candidates with `inf`. A loop over the pairs is accepted too.

# %% nbgrader={"grade": false, "grade_id": "semi_hard_triplets", "locked": false, "solution": true, "schema_version": 3}
def semi_hard_triplets(emb, labels, margin):
    """emb: (N, D), labels: (N,) ints, margin alpha -> (a_idx, p_idx, n_idx), each (T,) int64."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        d = pairwise_distances(emb)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        a_idx, p_idx = (same & ~eye).nonzero(as_tuple=True)
        d_ap = d[a_idx, p_idx][:, None]
        d_an = d[a_idx]
        candidate = ~same[a_idx] & (d_an > d_ap) & (d_an < d_ap + margin)
        best, n_idx = d_an.masked_fill(~candidate, float("inf")).min(1)
        keep = torch.isfinite(best)
        return a_idx[keep], p_idx[keep], n_idx[keep]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "semi_hard_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
# four points on a line: person 0 at x = 0 and x = 1, person 1 at x = 1.2 and x = 3
_emb = torch.tensor([[0.0], [1.0], [1.2], [3.0]])
_lab = torch.tensor([0, 0, 1, 1])
_a, _p, _n = semi_hard_triplets(_emb, _lab, 0.5)
# d(0,1) = 1, d(0,2) = 1.44 is in (1, 1.5): semi-hard. d(1,0) = 1, d(1,2) = 0.04 < 1: hard, not semi-hard.
# d(2,3) = 3.24, d(2,1) = 0.04: hard. d(3,2) = 3.24, d(3,1) = 4 is in (3.24, 3.74)? no (4 > 3.74).
assert _a.dtype == torch.int64 and _p.dtype == torch.int64 and _n.dtype == torch.int64, "return int64 index tensors"
assert (_a.tolist(), _p.tolist(), _n.tolist()) == ([0], [1], [2]), (
    f"expected the single triplet (0, 1, 2), got a={_a.tolist()}, p={_p.tolist()}, n={_n.tolist()}")
_a, _p, _n = semi_hard_triplets(_emb, _lab, 1.0)  # now d(3,1) = 4 < 3.24 + 1 as well
assert (_a.tolist(), _p.tolist(), _n.tolist()) == ([0, 3], [1, 2], [2, 1]), (
    f"with margin 1 expected the triplets (0,1,2) and (3,2,1), got a={_a.tolist()}, p={_p.tolist()}, n={_n.tolist()}")
assert len(semi_hard_triplets(_emb, _lab, 0.0)[0]) == 0, "with margin 0 no negative can be semi-hard"
### BEGIN HIDDEN TESTS
def _brute_semi_hard(emb, labels, margin):
    d = [[float(((emb[i] - emb[j]) ** 2).sum()) for j in range(len(emb))] for i in range(len(emb))]
    out = []
    for a in range(len(emb)):
        for p in range(len(emb)):
            if p == a or labels[p] != labels[a]:
                continue
            cands = [(d[a][n], n) for n in range(len(emb)) if labels[n] != labels[a] and d[a][p] < d[a][n] < d[a][p] + margin]
            if cands:
                out.append((a, p, min(cands)[1]))
    return out


_g = torch.Generator().manual_seed(1003)
for _trial in range(8):
    _nn = int(torch.randint(2, 16, (1,), generator=_g))
    _lab = torch.randint(0, int(torch.randint(2, 5, (1,), generator=_g)), (_nn,), generator=_g)
    _emb = torch.randn(_nn, 3, generator=_g)
    _m = float(torch.rand(1, generator=_g)) * 3
    _got = list(zip(*(t.tolist() for t in semi_hard_triplets(_emb, _lab, _m))))
    _ref = _brute_semi_hard(_emb, _lab.tolist(), _m)
    assert _got == _ref, f"semi_hard_triplets on {_nn} random embeddings, margin {_m:.2f}: got {_got}, expected {_ref}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "denoise_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. A training step of a denoising autoencoder (3 points)
#
# A denoising autoencoder (Vincent et al., 2008) sees a **corrupted** input and must output the
# **clean** one: its loss is $\frac1n \sum_i \lVert f(g(\tilde x_i)) - x_i \rVert^2 / d$ (the mean squared
# error over all $n \times d$ values) with $\tilde x_i = \text{corrupt}(x_i)$.
#
# Write `denoising_step(model, optimizer, clean, corrupt)` that performs **one** optimisation step:
# corrupt the batch (call `corrupt(clean)` exactly once), run the model on the corrupted batch,
# compute the mean squared error **against the clean batch**, clear the old gradients,
# backpropagate, take the optimizer step, and return the loss as a Python `float` (its value
# before the step). `model` maps a batch to a batch of the same shape.

# %% nbgrader={"grade": false, "grade_id": "denoising_step", "locked": false, "solution": true, "schema_version": 3}
def denoising_step(model, optimizer, clean, corrupt):
    """One step on the batch `clean` (N, ...): loss = mean((model(corrupt(clean)) - clean)^2). Returns the loss."""
    ### BEGIN SOLUTION
    noisy = corrupt(clean)
    loss = ((model(noisy) - clean) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "denoising_step_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
def _reference_step(model, lr, clean, corrupt):
    """The expected result, computed by hand: returns (loss, updated weight, updated bias) of one SGD step."""
    noisy = corrupt(clean)
    w, b = model.weight.detach().clone().requires_grad_(True), model.bias.detach().clone().requires_grad_(True)
    loss = ((noisy @ w.T + b - clean) ** 2).mean()
    gw, gb = torch.autograd.grad(loss, (w, b))
    return float(loss.detach()), w.detach() - lr * gw, b.detach() - lr * gb


torch.manual_seed(10)
_model = torch.nn.Linear(4, 4)
_clean = torch.rand(6, 4)
_shift = lambda x: x + 0.3  # noqa: E731 - a deterministic "corruption" for the test
_expected = _reference_step(copy.deepcopy(_model), 0.1, _clean, _shift)
_opt = torch.optim.SGD(_model.parameters(), lr=0.1)
for _p in _model.parameters():
    _p.grad = torch.full_like(_p, 100.0)  # stale gradients: the step must clear them
_loss = denoising_step(_model, _opt, _clean, _shift)
assert isinstance(_loss, float), f"return the loss as a Python float, got {type(_loss).__name__}"
assert_close(_loss, _expected[0], "the loss: MSE between the output on the corrupted batch and the CLEAN batch")
assert_close(_model.weight.detach(), _expected[1], "the weights after one SGD step (did you clear the old gradients?)")
assert_close(_model.bias.detach(), _expected[2], "the bias after one SGD step")
_calls = []
denoising_step(_model, _opt, _clean, lambda x: _calls.append(1) or x)
assert len(_calls) == 1, f"call corrupt exactly once per step, it was called {len(_calls)} times"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(1004)
for _trial in range(4):
    _d = int(torch.randint(2, 7, (1,), generator=_g))
    _model = torch.nn.Linear(_d, _d)
    _clean = torch.rand(int(torch.randint(1, 9, (1,), generator=_g)), _d, generator=_g)
    _noise = 0.5 * torch.randn(_clean.shape, generator=_g)
    _corrupt = lambda x, _noise=_noise: (x + _noise).clamp(0, 1)  # noqa: E731
    _lr = float(torch.rand(1, generator=_g)) * 0.5
    _expected = _reference_step(copy.deepcopy(_model), _lr, _clean, _corrupt)
    _opt = torch.optim.SGD(_model.parameters(), lr=_lr)
    for _step in range(2):  # two steps in a row: the gradients of the first must not leak into the second
        _loss = denoising_step(_model, _opt, _clean, _corrupt)
        if _step == 0:
            assert_close(_loss, _expected[0], f"loss of a random denoising step ({_d}-D, Gaussian noise, clipped)")
            assert_close(_model.weight.detach(), _expected[1], "weights after a random denoising step")
            assert_close(_model.bias.detach(), _expected[2], "bias after a random denoising step")
            _expected = _reference_step(copy.deepcopy(_model), _lr, _clean, _corrupt)
    assert_close(_model.weight.detach(), _expected[1], "weights after the second step (stale gradients?)")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "solution": false, "schema_version": 3}
# ## Putting it together
#
# With these four functions you can train a FaceNet-style embedding (`pairwise_distances` →
# `semi_hard_triplets` → `triplet_loss` on an L2-normalised network output) and a denoising
# autoencoder (`denoising_step` with `corrupt = lambda x: (x + 0.3 * torch.randn_like(x)).clamp(0, 1)`).
# Lectures 10 and 11 do both with the course's own implementations.
