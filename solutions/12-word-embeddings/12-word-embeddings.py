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
# # Assignment 12 · word2vec's machinery by hand
#
# In this assignment you implement the pieces of skip-gram with negative sampling (lecture 12):
#
# 1. the **noise distribution** $P(w) = U(w)^{3/4} / \sum_v U(v)^{3/4}$ (2 points);
# 2. an **alias sampler** that draws from it in $O(1)$ per sample (4 points);
# 3. the **negative-sampling loss** (2 points) and 4. its **gradients by hand** (3 points);
# 5. **skip-gram pair generation** with word2vec's dynamic window (3 points);
# 6. FastText's **character n-grams** (2 points).
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# corpora, vectors and words you have not seen, against the course's reference implementation.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: use numpy and torch (tensor arithmetic, `torch.sigmoid`, `torch.log`, indexing,
# `torch.randint`, `torch.rand`). **Do not use** `course_lib.text` (the course's implementation
# of exactly these functions) or `gensim`, and no autograd inside your answers. Python loops are
# fine where the text says so: clarity first.

# %% tags=["parameters"]
SMOKE = False

# %%
import numpy as np
import torch

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "noise_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. The noise distribution (2 points)
#
# Negative sampling contrasts each true (centre, context) pair with $k$ *noise* words drawn from
#
# $$P(w) = \frac{U(w)^{3/4}}{\sum_{v \in W} U(v)^{3/4}},$$
#
# $U(w)$ the word's count in the corpus. The power $3/4$ flattens the unigram distribution: frequent
# words are drawn less often than their share, rare words more often (power 1 is the unigram, 0 the
# uniform distribution). Write `noise_distribution(counts, power=0.75)`: `counts` a 1-D array of
# non-negative counts, the result a float64 numpy array of the same length that sums to 1. A word
# with count 0 gets probability 0 (also for `power=0`). Raise `ValueError` when all counts are 0.

# %% nbgrader={"grade": false, "grade_id": "noise_distribution", "locked": false, "solution": true, "schema_version": 3}
def noise_distribution(counts, power=0.75):
    """counts: (V,) non-negative -> (V,) float64 probabilities proportional to counts**power."""
    ### BEGIN SOLUTION
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.sum() <= 0:
        raise ValueError("counts must be a 1-D array with a positive sum")
    p = np.where(c > 0, np.abs(c) ** power, 0.0)
    return p / p.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "noise_distribution_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_p = noise_distribution([16, 1, 0, 81])
assert_shape(_p, (4,), "noise_distribution of 4 counts")
assert_close(_p, np.array([8, 1, 0, 27]) / 36, "counts 16, 1, 0, 81 -> 16^0.75 = 8, 1, 0, 81^0.75 = 27, over 36")
assert_close(noise_distribution([3, 1], power=1.0), [0.75, 0.25], "power 1 is the unigram distribution")
assert_close(noise_distribution([3, 1, 0], power=0.0), [0.5, 0.5, 0.0], "power 0: uniform over the words seen")
try:
    noise_distribution([0, 0])
except ValueError:
    pass
else:
    raise AssertionError("noise_distribution must raise ValueError when every count is 0")
### BEGIN HIDDEN TESTS
from course_lib import text as _ref  # noqa: E402

_rng = np.random.default_rng(1212)
for _trial in range(8):
    _c = _rng.zipf(1.5, size=int(_rng.integers(2, 300))).astype(np.float64)
    _c[_rng.random(_c.size) < 0.1] = 0
    _c[0] = max(_c[0], 1)
    _pw = [0.75, 0.5, 1.0, 0.0][_trial % 4]
    assert_close(noise_distribution(_c, _pw), _ref.noise_distribution(_c, _pw), f"counts of {_c.size} words, power {_pw}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "alias_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. The alias method (4 points)
#
# word2vec draws millions of noise words; inverting the cumulative distribution costs
# $O(\log V)$ per draw. Walker's **alias method** costs $O(1)$: scale the probabilities to
# $q_i = V p_i$ (mean 1) and build two tables of length $V$, `prob` and `alias`, so that column
# $i$ keeps word $i$ with probability `prob[i]` and otherwise gives word `alias[i]`. Sampling
# picks a column uniformly, then flips that column's biased coin:
#
# $$P(i) = \frac{1}{V}\Big(\text{prob}[i] + \sum_{j:\ \text{alias}[j] = i} (1 - \text{prob}[j])\Big) = p_i .$$
#
# Vose's construction: put the columns with $q_i < 1$ in a list *small*, the others in *large*.
# While both are non-empty, pop $s$ from *small* and $g$ from *large*; set `prob[s] = q[s]`,
# `alias[s] = g`; $g$ gave away $1 - q_s$, so `q[g] = q[g] + q[s] - 1`, and $g$ goes back to
# *small* or *large* accordingly. Columns left over get `prob = 1` (and alias themselves).
#
# Write the class `AliasSampler(probs)` (probabilities, possibly unnormalised; store the tables as
# torch tensors `self.prob` (float64) and `self.alias` (int64)) with `sample(n, generator=None)`
# returning `n` draws as an int64 tensor, *vectorised* (no Python loop over the draws): `torch.randint`
# for the column and `torch.rand` for the coin, both with the given `generator`.

# %% nbgrader={"grade": false, "grade_id": "AliasSampler", "locked": false, "solution": true, "schema_version": 3}
class AliasSampler:
    """Walker's alias method: O(V) tables, O(1) per draw."""

    def __init__(self, probs):
        ### BEGIN SOLUTION
        p = np.asarray(probs, dtype=np.float64)
        n = p.size
        q = p * (n / p.sum())
        prob = np.ones(n)
        alias = np.arange(n)
        small = [i for i in range(n) if q[i] < 1.0]
        large = [i for i in range(n) if q[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = q[s], g
            q[g] = q[g] + q[s] - 1.0
            (small if q[g] < 1.0 else large).append(g)
        self.prob = torch.tensor(prob, dtype=torch.float64)
        self.alias = torch.tensor(alias, dtype=torch.int64)
        ### END SOLUTION

    def sample(self, n, generator=None):
        """n draws: (n,) int64."""
        ### BEGIN SOLUTION
        col = torch.randint(self.prob.numel(), (n,), generator=generator)
        coin = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.where(coin < self.prob[col], col, self.alias[col])
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "AliasSampler_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
def _implied(sampler):
    """The distribution the tables encode (formula above)."""
    prob, alias = sampler.prob.double(), sampler.alias.long()
    out = prob.clone()
    out.index_add_(0, alias, 1.0 - prob)
    return out / prob.numel()


_probs = np.array([0.5, 0.3, 0.1, 0.1])
_s = AliasSampler(_probs)
assert_shape(_s.prob, (4,), "AliasSampler.prob for 4 words")
assert_close(_implied(_s), _probs, "the tables must encode exactly the probabilities 0.5, 0.3, 0.1, 0.1")
_draws = _s.sample(100_000, generator=torch.Generator().manual_seed(0))
assert _draws.dtype == torch.int64 and _draws.shape == (100_000,), "sample(n) must return (n,) int64"
_freq = torch.bincount(_draws, minlength=4).double() / _draws.numel()
assert_close(_freq, _probs, "empirical frequencies of 100,000 draws", atol=0.01, rtol=0)
assert_close(_implied(AliasSampler([2.0, 2.0])), [0.5, 0.5], "unnormalised probabilities 2, 2")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(4242)
for _trial in range(6):
    _pr = _rng.dirichlet(np.full(int(_rng.integers(2, 200)), 0.3))
    _sa = AliasSampler(_pr * 7.0)
    assert_close(_implied(_sa), _pr, f"alias tables for {_pr.size} words")
    _d = _sa.sample(200_000, generator=torch.Generator().manual_seed(_trial))
    _f = torch.bincount(_d, minlength=_pr.size).double() / _d.numel()
    _tv = 0.5 * float((_f - torch.from_numpy(_pr)).abs().sum())
    _tv_ref = 0.5 * float((torch.bincount(_ref.AliasSampler(_pr).sample(200_000, torch.Generator().manual_seed(_trial)),
                                          minlength=_pr.size).double() / 200_000 - torch.from_numpy(_pr)).abs().sum())
    assert _tv < 3 * _tv_ref + 0.01, f"total variation {_tv:.4f} vs the reference sampler's {_tv_ref:.4f}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "loss_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. The negative-sampling loss (2 points)
#
# For a centre word $w_I$ with central vector $v_{w_I}$, its true context $w_O$ with context vector
# $v'_{w_O}$ and $k$ noise words $w_1 \dots w_k$, skip-gram with negative sampling *maximises*
#
# $$\log \sigma(\langle v'_{w_O}, v_{w_I}\rangle) + \sum_{i=1}^{k} \log \sigma(-\langle v'_{w_i}, v_{w_I}\rangle).$$
#
# (The lecture notes write this as "$p(w_O \mid w_I) =$"; it is *not* a probability, only an
# objective that replaces $\log p(w_O \mid w_I)$.) Write `sgns_loss(center, context, negative)` —
# `center` $(B, d)$, `context` $(B, d)$, `negative` $(B, k, d)$ — returning the **negated**
# objective **averaged** over the $B$ pairs (a scalar tensor). Use the stable
# $\log\sigma(x) = -\operatorname{softplus}(-x)$, $\operatorname{softplus}(x) = \max(x, 0) + \log(1 + e^{-|x|})$.
# Raise `ValueError` on inconsistent shapes.

# %% nbgrader={"grade": false, "grade_id": "sgns_loss", "locked": false, "solution": true, "schema_version": 3}
def sgns_loss(center, context, negative):
    """center (B, d), context (B, d), negative (B, k, d) -> scalar: -mean_b[log s(pos) + sum log s(-neg)]."""
    ### BEGIN SOLUTION
    if center.dim() != 2 or context.shape != center.shape or negative.dim() != 3 or negative.shape[0] != center.shape[0] \
            or negative.shape[2] != center.shape[1]:
        raise ValueError(f"shapes {tuple(center.shape)}, {tuple(context.shape)}, {tuple(negative.shape)} do not fit")

    def softplus(x):
        return x.clamp_min(0) + torch.log1p(torch.exp(-x.abs()))

    pos = (center * context).sum(-1)
    neg = (negative * center.unsqueeze(1)).sum(-1)
    return (softplus(-pos) + softplus(neg).sum(-1)).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sgns_loss_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_z = torch.zeros(3, 4)
assert_close(sgns_loss(_z, _z, torch.zeros(3, 5, 4)), 6 * np.log(2), "all vectors zero: (1 + k) log 2 with k = 5")
_c, _o = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
_n = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
_expected = -(np.log(1 / (1 + np.exp(-2))) + np.log(0.5) + np.log(1 / (1 + np.exp(-1))))
assert_close(sgns_loss(_c, _o, _n), _expected, "one pair: <v', v> = 2, noise dots 0 and -1")
assert torch.isfinite(sgns_loss(100 * _c, -100 * _o, 100 * _n)), "use a stable log-sigmoid: no inf at large dots"
try:
    sgns_loss(_z, torch.zeros(3, 5), torch.zeros(3, 5, 4))
except ValueError:
    pass
else:
    raise AssertionError("sgns_loss must raise ValueError when center and context shapes differ")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(77)
for _B, _k, _d in [(1, 1, 1), (7, 3, 5), (64, 15, 16), (5, 5, 300)]:
    _a, _b, _cneg = (torch.randn(_B, _d, generator=_g), torch.randn(_B, _d, generator=_g),
                     torch.randn(_B, _k, _d, generator=_g))
    assert_close(sgns_loss(_a, _b, _cneg), _ref.sgns_loss(_a, _b, _cneg), f"sgns_loss with B={_B}, k={_k}, d={_d}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "grads_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. Its gradients by hand, and one SGD step (3 points)
#
# With $s_O = \langle v'_{w_O}, v_{w_I}\rangle$, $s_i = \langle v'_{w_i}, v_{w_I}\rangle$ and
# $\sigma'(x) = \sigma(x)(1 - \sigma(x))$, the loss of one pair $\ell = -\log\sigma(s_O) - \sum_i \log\sigma(-s_i)$ has
#
# $$\begin{gathered}
#   \frac{\partial \ell}{\partial v_{w_I}} = (\sigma(s_O) - 1)\, v'_{w_O} + \sum_{i=1}^k \sigma(s_i)\, v'_{w_i},\\
#   \frac{\partial \ell}{\partial v'_{w_O}} = (\sigma(s_O) - 1)\, v_{w_I},\qquad
#   \frac{\partial \ell}{\partial v'_{w_i}} = \sigma(s_i)\, v_{w_I}.
# \end{gathered}$$
#
# Write `sgns_grads(center, context, negative)` returning `(loss, d_center, d_context, d_negative)`
# for the **averaged** loss of §3 (so every gradient is divided by $B$), shapes
# `()`, $(B, d)$, $(B, d)$, $(B, k, d)$ — **without autograd**. The test below then uses them for
# SGD steps on a tiny corpus, as word2vec does (it adds the per-pair gradients to the rows with
# `index_add_`, because a word can appear in several pairs of a batch).

# %% nbgrader={"grade": false, "grade_id": "sgns_grads", "locked": false, "solution": true, "schema_version": 3}
def sgns_grads(center, context, negative):
    """-> (loss, d_center (B, d), d_context (B, d), d_negative (B, k, d)) of the averaged loss."""
    ### BEGIN SOLUTION
    loss = sgns_loss(center, context, negative)
    B = center.shape[0]
    pos = (center * context).sum(-1)
    neg = (negative * center.unsqueeze(1)).sum(-1)
    g_pos = (torch.sigmoid(pos) - 1.0) / B  # (B,)
    g_neg = torch.sigmoid(neg) / B  # (B, k)
    d_center = g_pos.unsqueeze(1) * context + (g_neg.unsqueeze(2) * negative).sum(1)
    d_context = g_pos.unsqueeze(1) * center
    d_negative = g_neg.unsqueeze(2) * center.unsqueeze(1)
    return loss, d_center, d_context, d_negative
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sgns_grads_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_g = torch.Generator().manual_seed(5)
_a = torch.randn(4, 3, generator=_g, requires_grad=True)
_b = torch.randn(4, 3, generator=_g, requires_grad=True)
_cn = torch.randn(4, 2, 3, generator=_g, requires_grad=True)
_auto = sgns_loss(_a, _b, _cn)
_auto.backward()
_l, _da, _db, _dn = sgns_grads(_a.detach(), _b.detach(), _cn.detach())
assert_close(_l, _auto.detach(), "the loss returned by sgns_grads")
assert_close(_da, _a.grad, "d loss / d center vs autograd")
assert_close(_db, _b.grad, "d loss / d context vs autograd")
assert_close(_dn, _cn.grad, "d loss / d negative vs autograd")
# SGD on a tiny corpus: the pairs (0, 1) and (2, 3) must become likely, the noise pairs unlikely
_Win, _Wout = 0.1 * torch.randn(4, 2, generator=_g), torch.zeros(4, 2)
_ci, _oi, _ni = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[3], [1]])
for _ in range(300):
    _l, _dc, _do, _dneg = sgns_grads(_Win[_ci], _Wout[_oi], _Wout[_ni])
    _Win.index_add_(0, _ci, -1.0 * _dc)
    _Wout.index_add_(0, _oi, -1.0 * _do)
    _Wout.index_add_(0, _ni.reshape(-1), -1.0 * _dneg.reshape(-1, 2))
assert float(_l) < 0.2, f"300 SGD steps with your gradients should bring the loss below 0.2, got {float(_l):.3f}"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(99)
for _B, _k, _d in [(1, 1, 2), (9, 5, 7), (33, 10, 20)]:
    _a, _b, _cneg = (torch.randn(_B, _d, generator=_g), torch.randn(_B, _d, generator=_g),
                     torch.randn(_B, _k, _d, generator=_g))
    for _mine, _theirs, _what in zip(sgns_grads(_a, _b, _cneg), _ref.sgns_grads(_a, _b, _cneg),
                                     ["loss", "d_center", "d_context", "d_negative"]):
        assert_close(_mine, _theirs, f"{_what} with B={_B}, k={_k}, d={_d}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "pairs_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. Skip-gram pairs with a dynamic window (3 points)
#
# Skip-gram maximises $\sum_i \sum_{-c \le j \le c,\ j \ne 0} \log p(w_{i+j} \mid w_i)$ — note the
# $j \ne 0$: a word is not its own context (one of the lecture notes drops it). Write
# `skipgram_pairs(sentences, window, dynamic=True, rng=None)`: `sentences` a list of lists of word
# ids; return two int64 numpy arrays `(centers, contexts)` with one entry per pair
# $(w_i, w_{i+j})$, $1 \le |j| \le c_i$, never crossing a sentence boundary.
# With `dynamic=False`, $c_i$ = `window` for every word. With `dynamic=True` (word2vec), $c_i$ is
# drawn uniformly from $1..$`window` for each centre word (`rng.integers(1, window + 1, size=...)`,
# `rng` a `np.random.Generator`, or a seed), so a context at distance $j$ is used with probability
# $(\text{window} - j + 1)/\text{window}$: near words count more. The order of the pairs is free.

# %% nbgrader={"grade": false, "grade_id": "skipgram_pairs", "locked": false, "solution": true, "schema_version": 3}
def skipgram_pairs(sentences, window, dynamic=True, rng=None):
    """sentences: list of lists of ids -> (centers (P,), contexts (P,)) int64."""
    ### BEGIN SOLUTION
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    centers, contexts = [], []
    for sent in sentences:
        n = len(sent)
        b = rng.integers(1, window + 1, size=n) if dynamic else np.full(n, window)
        for i in range(n):
            for j in range(max(0, i - b[i]), min(n, i + b[i] + 1)):
                if j != i:
                    centers.append(sent[i])
                    contexts.append(sent[j])
    return np.array(centers, dtype=np.int64), np.array(contexts, dtype=np.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "skipgram_pairs_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_c, _o = skipgram_pairs([[10, 11, 12, 13]], window=1, dynamic=False)
assert sorted(zip(_c.tolist(), _o.tolist())) == [(10, 11), (11, 10), (11, 12), (12, 11), (12, 13), (13, 12)], (
    f"window 1 over 10 11 12 13 gives each neighbour pair in both directions, got {list(zip(_c, _o))}")
_c, _o = skipgram_pairs([[1, 2], [3, 4, 5]], window=5, dynamic=False)
assert len(_c) == 2 + 6 and (1, 3) not in set(zip(_c.tolist(), _o.tolist())), "pairs must not cross sentences"
# dynamic window: distance j is used with probability (window - j + 1) / window
_sent = [list(range(400))]
_c, _o = skipgram_pairs(_sent, window=4, dynamic=True, rng=np.random.default_rng(0))
_dist = np.abs(_c - _o)
assert _dist.min() >= 1 and _dist.max() <= 4, "dynamic pairs stay within the window and never pair a word with itself"
_share = np.array([(_dist == j).sum() for j in range(1, 5)]) / (2 * 400)
assert_close(_share, [4 / 4, 3 / 4, 2 / 4, 1 / 4], "share of centre words using distance 1..4", atol=0.06, rtol=0)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(555)
for _trial in range(6):
    _sents = [list(_rng.integers(0, 50, size=int(_rng.integers(1, 30)))) for _ in range(int(_rng.integers(1, 8)))]
    _w = int(_rng.integers(1, 6))
    _mc, _mo = skipgram_pairs(_sents, _w, dynamic=False)
    _rc, _ro = _ref.skipgram_pairs(_sents, _w, dynamic=False)
    assert sorted(zip(_mc.tolist(), _mo.tolist())) == sorted(zip(_rc.tolist(), _ro.tolist())), (
        f"fixed-window pairs of {len(_sents)} unseen sentences, window {_w}")
_long = [list(_rng.integers(0, 1000, size=3000))]
_mc, _mo = skipgram_pairs(_long, 5, dynamic=True, rng=1)
_rc, _ro = _ref.skipgram_pairs(_long, 5, dynamic=True, rng=1)
assert abs(len(_mc) - len(_rc)) < 0.05 * len(_rc), f"dynamic pairs: {len(_mc)} vs about {len(_rc)} expected"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ngrams_md", "locked": true, "solution": false, "schema_version": 3}
# ## 6. FastText's character n-grams (2 points)
#
# FastText represents a word as the bag of the character n-grams of `"<" + word + ">"` (the
# brackets mark the beginning and the end, so the 3-gram `"ing"` inside a word differs from the
# suffix `"ng>"`), and its vector as the sum of the n-gram vectors $z_w = \sum_i v_{t_i}$ — which
# gives a vector to a word never seen in training. Write `char_ngrams(word, n_min=3, n_max=6)`:
# the list of n-grams of `"<word>"` for $n_{min} \le n \le n_{max}$, **by length, then by
# position**, repeats kept. The lecture's examples: «руслан» → `<ру, рус, усл, сла, лан, ан>` and
# "eating" → `<ea, eat, ati, tin, ing, ng>` for $n = 3$. With `n_min = 1`, leave out the lone `"<"`
# and `">"` (fastText never uses them).

# %% nbgrader={"grade": false, "grade_id": "char_ngrams", "locked": false, "solution": true, "schema_version": 3}
def char_ngrams(word, n_min=3, n_max=6):
    """-> list of the n-grams of "<word>", n_min <= n <= n_max, by length then position."""
    ### BEGIN SOLUTION
    ext = "<" + word + ">"
    out = []
    for n in range(n_min, n_max + 1):
        for i in range(len(ext) - n + 1):
            gram = ext[i : i + n]
            if gram not in ("<", ">"):
                out.append(gram)
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "char_ngrams_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
assert char_ngrams("eating", 3, 3) == ["<ea", "eat", "ati", "tin", "ing", "ng>"], char_ngrams("eating", 3, 3)
assert char_ngrams("руслан", 3, 3) == ["<ру", "рус", "усл", "сла", "лан", "ан>"], char_ngrams("руслан", 3, 3)
assert char_ngrams("ab", 3, 4) == ["<ab", "ab>", "<ab>"], f"'<ab>' has two 3-grams and one 4-gram: {char_ngrams('ab', 3, 4)}"
assert len(char_ngrams("where")) == 5 + 4 + 3 + 2, "'<where>' (7 characters) has 5 + 4 + 3 + 2 n-grams for n = 3..6"
assert char_ngrams("a", 1, 1) == ["a"], "the lone boundary symbols are not 1-grams"
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(606)
_alphabet = list("abcdefghijklmnopqrstuvwxyzабвгдеёжзийклмнопрстуфхцчшщъыьэюя'-")
for _trial in range(40):
    _word = "".join(_rng.choice(_alphabet, size=int(_rng.integers(1, 12))))
    _lo = int(_rng.integers(1, 4))
    _hi = _lo + int(_rng.integers(0, 4))
    assert char_ngrams(_word, _lo, _hi) == _ref.char_ngrams(_word, _lo, _hi), f"char_ngrams({_word!r}, {_lo}, {_hi})"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "solution": false, "schema_version": 3}
# ## That's it
#
# These are the pieces of `course_lib.text`: `noise_distribution`, `AliasSampler`, `sgns_loss`,
# `sgns_grads`, `skipgram_pairs` and `char_ngrams`; `train_word2vec` batches the SGD step of §4
# over thousands of pairs at once and `train_fasttext` sums the n-gram rows of §6.
