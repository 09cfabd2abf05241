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
# # Lecture 17 · ELMo and recommenders
#
# Two more "something2vec" stories. **ELMo** gives a word a vector that depends on its sentence
# (contextual embeddings), from a bidirectional language model. **Neural recommenders** embed
# users and items so that a score of the pair predicts an interaction: DSSM's two towers and the
# neural collaborative filtering family (GMF, MLP, NeuMF).
#
# **Learning goals**
# 1. ELMo: forward and backward LSTM language models, and the embedding
#    $\mathrm{ELMo}_k = \gamma \sum_j s_j h_{k,j}$ over **all** layers;
# 2. why the same word gets different vectors in different contexts (and the token layer does not);
# 3. ELMo features in a downstream task: a frozen biLM, a learned scalar mix, and lecture 14's POS
#    tagger trained on few labelled sentences;
# 4. implicit-feedback recommendation, the **leave-one-out** protocol, **HR@10** and **NDCG@10**;
# 5. GMF, MLP and NeuMF (neural collaborative filtering), and the two-tower **DSSM**, against
#    popularity and matrix factorisation.
#
# Everything numerical comes from `course_lib.contextual` (biLM, scalar mix, the ELMo tagger) and
# `course_lib.recsys` (splits, negatives, models, metrics), tested against `torch.nn.LSTM`,
# brute-force loops and scikit-learn's `ndcg_score`.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from course_lib import contextual as cx
from course_lib import recsys as rs
from course_lib import sequence as seq
from course_lib.data import load_movielens_100k, load_ud_english
from course_lib.notebook import claim, md, setup_notebook, show, subplots
from course_lib.text import Vocab

SMOKE = setup_notebook(SMOKE, seed=0)
# torch takes its thread count from OMP_NUM_THREADS, which `make course` sets to NB_THREADS (1 by default):
# these small models gain little from a second thread, and with 2 beside any other busy process on a 2-core
# machine each step ran many times slower (lecture 17's biLM: 21 min per epoch instead of 73 s)
LM_SENTENCES = 200 if SMOKE else None  # None: all 12,544 training sentences of UD English-EWT
LM_EPOCHS = 1 if SMOKE else 3
LM_HIDDEN = 16 if SMOKE else 64
TAG_LABELLED = 100 if SMOKE else 1000  # labelled sentences the taggers of section 2 learn from
TAG_TEST = 100 if SMOKE else None  # None: all 2,077 test sentences
TAG_EPOCHS = 1 if SMOKE else 10
TAG_DIMS = ({"embed_dim": 16, "hidden_size": 16, "char_embed_dim": 8, "char_hidden_size": 8} if SMOKE else
            {"embed_dim": 64, "hidden_size": 96, "char_embed_dim": 16, "char_hidden_size": 24})  # lecture 14's
REC_EPOCHS = 1 if SMOKE else 20
REC_BATCH = 4096 if SMOKE else 256  # positives per batch, each with its 4 sampled negatives
# GMF, MLP, NeuMF: Adam lr and weight decay chosen on a validation split (each user's second-latest
# item; see benchmarks/recommenders.py); NCF's lr 1e-3 leaves them still improving after 20 epochs
NCF_LR, NCF_WEIGHT_DECAY = 5e-3, 1e-6
REC_USERS = 200 if SMOKE else None  # smoke mode keeps the first users only
print(f"smoke mode: {SMOKE}")

# %% [markdown]
# ## 1. ELMo: a bidirectional language model
#
# The lecture notes describe ELMo as a recurrent "autoencoder" whose final states give the
# embedding. **That is not what ELMo is** (Peters et al., 2018, arXiv 1802.05365): it is a
# **bidirectional language model (biLM)**. A forward LSTM LM reads $t_1, \dots, t_{k-1}$ and
# predicts $t_k$; a backward LSTM LM reads $t_N, \dots, t_{k+1}$ and predicts $t_k$; they share
# the token layer and the softmax and maximise
#
# $$\sum_{k=1}^{N} \Big(\log p(t_k \mid t_1, \dots, t_{k-1}) + \log p(t_k \mid t_{k+1}, \dots, t_N)\Big).$$
#
# A token $k$ then has $L + 1$ representations: the token layer $h_{k,0} = [x_k; x_k]$ and, for
# each LSTM layer $j$, the concatenation $h_{k,j} = [\overrightarrow{h}_{k,j}; \overleftarrow{h}_{k,j}]$
# — the $[T, h_l, h_r]$ of the notes. A downstream task learns softmax-normalised weights $s_j$
# and a scale $\gamma$:
#
# $$\mathrm{ELMo}_k^{\text{task}} = \gamma^{\text{task}} \sum_{j=0}^{L} s_j^{\text{task}}\, h_{k,j}.$$
#
# So for "stick" in "Let's stick to …": (1) concatenate the forward and backward states of each
# layer, (2) weigh the layers with the task's $s_j$, (3) sum and scale — over *every* position's
# states, not the final state of a sentence.
#
# The corpus: the words (lower-cased, no tags) of the training sentences of UD English-EWT, web
# text — the same sentences whose tags lecture 14's tagger learned from; section 2 puts the biLM
# to work on that tagger. The biLM is small (two layers of 64 units, a 6,000-word vocabulary) and
# trains for a few epochs on a CPU; ELMo's was 4,096 units with 512-dimensional projections,
# trained on the 1B Word Benchmark.
# <!-- narrative -->

# %%
ud_train, ud_test = load_ud_english("train"), load_ud_english("test")
lm_corpus = [[w.lower() for w, _ in s] for s in ud_train[:LM_SENTENCES] if len(s) >= 2]
vocab = Vocab.build(lm_corpus, min_count=1 if SMOKE else 3, pad="<pad>", unk="<unk>")
torch.manual_seed(0)
bilm = cx.BiLM(vocab, embed_dim=LM_HIDDEN, hidden_size=LM_HIDDEN, num_layers=2, backend="torch")
start = time.perf_counter()
lm_history = cx.train_bilm(bilm, lm_corpus, epochs=LM_EPOCHS, batch_size=32, lr=3e-3, max_len=40, progress=True)
lm_seconds = time.perf_counter() - start
ppl = np.exp(lm_history)
ids = np.concatenate([np.asarray(vocab.encode(s)) for s in lm_corpus])
freq = np.bincount(ids, minlength=len(vocab)) / len(ids)
unigram_ppl = float(np.exp(-np.log(freq[ids]).mean()))  # exp of the unigram cross-entropy
print(f"biLM on {len(lm_corpus):,} UD English-EWT training sentences ({len(ids):,} words), vocabulary "
      f"{len(vocab):,}: {lm_seconds:.0f} s")
print("training perplexity per epoch (average of both directions):", np.round(ppl, 1),
      f"; a unigram model (word frequencies, no context): {unigram_ppl:.1f}")
md(f"After {LM_EPOCHS} epoch(s) the biLM's perplexity is **{ppl[-1]:.0f}**, against **{unigram_ppl:.0f}** for word "
   "frequencies alone: the context helps predict the next (and the previous) word.")

# %%
claim(ppl[-1] < unigram_ppl, "the biLM predicts words better than their frequencies alone (lower perplexity than a unigram model)")

# %% [markdown]
# ### One word, two contexts
#
# "stick" as a verb and as a noun. The token layer is a table look-up, so it is the same in both
# sentences; the LSTM layers see the context, so they differ.
# <!-- narrative -->

# %%
sentences = [  # tokenised as UD English-EWT is ("let 's")
    "let 's stick to the plan .".split(),
    "we stick to the road .".split(),
    "he picked up a big stick .".split(),
]
with torch.no_grad():
    layers = bilm.embed(sentences)  # (L + 1, 3, T, 2H); words outside the vocabulary become <unk>
pos = [s.index("stick") for s in sentences]
vecs = torch.stack([layers[:, i, pos[i]] for i in range(3)], 1)  # (L + 1, 3, 2H)


def cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


table = {j: (cos(vecs[j, 0], vecs[j, 1]), cos(vecs[j, 0], vecs[j, 2])) for j in range(layers.shape[0])}
print("cosine of 'stick' in sentence 1 with ...   sentence 2 (verb)   sentence 3 (noun)")
for j, (same, other) in table.items():
    name = "token layer h_0" if j == 0 else f"LSTM layer h_{j}"
    print(f"  {name:16s}                       {same:8.4f}            {other:8.4f}")
fig, ax = subplots()
x = np.arange(len(table))
ax.bar(x - 0.2, [t[0] for t in table.values()], 0.4, label="verb vs verb ('stick to')")
ax.bar(x + 0.2, [t[1] for t in table.values()], 0.4, label="verb vs noun ('a big stick')")
ax.set_xticks(x, ["token layer"] + [f"layer {j}" for j in range(1, len(table))])
ax.set(xlabel="biLM layer", ylabel="cosine similarity", title="'stick' in three sentences")
ax.legend(loc="lower left")
show(fig, "Cosine similarity of the vectors of 'stick' in different sentences, per biLM layer.")

# %%
claim(abs(table[0][0] - 1) < 1e-6 and abs(table[0][1] - 1) < 1e-6, "the token layer gives 'stick' the same vector in every sentence")
claim(all(table[j][1] < 0.999 for j in range(1, len(table))), "every LSTM layer gives 'stick' different vectors in different contexts")

# %% [markdown]
# ### The scalar mix
#
# `course_lib.contextual.ELMo` freezes the biLM and learns $w$ (with $s = \mathrm{softmax}(w)$)
# and $\gamma$ with the downstream task. Below we set some weights and check the mix against the
# formula.
# <!-- narrative -->

# %%
elmo = cx.ELMo(bilm, freeze=True, gamma=1.0)
with torch.no_grad():
    elmo.mix.scalar_parameters.copy_(torch.tensor([0.0, 1.0, 2.0]))
    elmo.mix.gamma.fill_(0.5)
    feats = elmo([sentences[0]])
    s_j = elmo.mix.weights
    manual = 0.5 * (s_j[:, None, None, None] * bilm.embed([sentences[0]])).sum(0)
print("layer weights s_j =", np.round(s_j.numpy(), 3), f"(sum {float(s_j.sum()):.3f}); γ = 0.5; ELMo features",
      tuple(feats.shape))
claim(torch.allclose(feats, manual, atol=1e-5), "ELMo's features are γ Σ_j s_j h_{k,j} with softmax weights s_j")

# %% [markdown]
# ## 2. ELMo features for lecture 14's part-of-speech tagger
#
# How does a task use ELMo? Peters et al. (§3.3) **freeze** the biLM, compute its layers for the
# task's sentences and feed the task model, at every word $k$, the concatenation
# $[x_k; \mathrm{ELMo}_k^{\text{task}}]$ of its own context-free word representation $x_k$ and the
# scalar mix above; only $s^{\text{task}}$, $\gamma^{\text{task}}$ and the task model are trained.
# The biLM learned from raw text, which is plentiful; the task model learns from labelled
# sentences, which are few. So ELMo should help most when the labels are few — here lecture 14's
# BiLSTM tagger (word embeddings + a character BiLSTM over each word's spelling) learns the 17
# universal POS tags from a small part of the labelled sentences of UD English-EWT (the first
# 1,000 of 12,544 in full mode, while the biLM read the words of all of them), twice:
#
# * **(a) static:** the tagger alone, its word vectors trained on those sentences only;
# * **(b) ELMo + static:** the same tagger reading $[x_k; \mathrm{ELMo}_k]$
#   (`cx.ELMoTagger`: `seq.BiLSTMTagger` with `feature_dim` $= 2H$ extra inputs per word).
#
# Because the biLM is frozen, its layers are computed once per sentence (`cx.elmo_layers`) and
# padded into each mini-batch (`cx.pad_elmo_layers`): an epoch of the ELMo tagger costs hardly
# more than an epoch of the static one. Both are tested on the UD English-EWT test sentences.
# <!-- narrative -->

# %%
tag_train, tag_test = ud_train[:TAG_LABELLED], ud_test[:TAG_TEST]
word_vocab = Vocab.build([[w.lower() for w, _ in s] for s in tag_train], min_count=2, pad="<pad>", unk="<unk>")
char_vocab = Vocab.build([list(w) for s in tag_train for w, _ in s], min_count=1, pad="<pad>", unk="<unk>")
tag_vocab = Vocab.build([[t for _, t in s] for s in ud_train], min_count=1)  # the 17 UPOS tags
start = time.perf_counter()
layer_cache = cx.elmo_layers(bilm, [[w.lower() for w, _ in s] for s in tag_train + tag_test], batch_size=128)
train_layers, test_layers = layer_cache[: len(tag_train)], layer_cache[len(tag_train) :]
test_words = [w.lower() for s in tag_test for w, _ in s]
unseen = float(np.mean([w not in word_vocab for w in test_words]))
unseen_lm = float(np.mean([w not in vocab for w in test_words]))
print(f"{len(tag_train):,} labelled training sentences ({sum(map(len, tag_train)):,} words), "
      f"{len(tag_test):,} test sentences; biLM layers of every sentence cached in {time.perf_counter() - start:.1f} s, "
      f"each (L + 1, n, 2H) = {tuple(train_layers[0].shape)}")
print(f"test words outside the tagger's vocabulary: {100 * unseen:.1f} %; outside the biLM's: {100 * unseen_lm:.1f} %")


def tagging_batch(sents):
    """Sentences of (word, tag) -> word ids (N, T), char ids (N, T, L), tags (N, T) (-100 = pad), lengths (N,)."""
    return seq.tagging_batch(sents, word_vocab, char_vocab, tag_vocab)


def train_tagger(use_elmo, batch=32):
    """Lecture 14's tagger, with (b) or without (a) ELMo features; returns (test accuracy in %, model, seconds)."""
    torch.manual_seed(0)
    kw = {"dropout": 0.0 if SMOKE else 0.25, "char_vocab_size": len(char_vocab), "backend": "torch",
          "padding_idx": word_vocab.pad_id, **TAG_DIMS}
    if use_elmo:
        model = cx.ELMoTagger(bilm, len(word_vocab), len(tag_vocab), **kw)  # freezes the biLM
    else:
        model = seq.BiLSTMTagger(len(word_vocab), len(tag_vocab), **kw)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    n_batches = -(-len(tag_train) // batch)
    for _ in tqdm(range(TAG_EPOCHS), desc="ELMo + static" if use_elmo else "static", unit="epoch"):
        model.train()
        for idx in np.array_split(rng.permutation(len(tag_train)), n_batches):
            words, chars, tags, lengths = tagging_batch([tag_train[i] for i in idx])
            extra = {"layers": cx.pad_elmo_layers([train_layers[i] for i in idx])} if use_elmo else {}
            logits = model(words, lengths, chars, **extra)
            loss = F.cross_entropy(logits.reshape(-1, len(tag_vocab)), tags.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for b in range(0, len(tag_test), 256):
            words, chars, tags, lengths = tagging_batch(tag_test[b : b + 256])
            extra = {"layers": cx.pad_elmo_layers(test_layers[b : b + 256])} if use_elmo else {}
            pred = model(words, lengths, chars, **extra).argmax(-1)
            mask = tags != -100
            correct += int((pred[mask] == tags[mask]).sum())
            total += int(mask.sum())
    return 100 * correct / total, model, time.perf_counter() - start


tag_runs = {"(a) static": train_tagger(False), "(b) ELMo + static": train_tagger(True)}
tag_acc = {name: acc for name, (acc, _, _) in tag_runs.items()}
elmo_tagger = tag_runs["(b) ELMo + static"][1]
print(f"{'tagger':20s} {'UPOS test accuracy':>19s} {'train + test s':>15s}")
for name, (acc, _, secs) in tag_runs.items():
    print(f"{name:20s} {acc:17.2f} % {secs:15.0f}")

# %%
gain = tag_acc["(b) ELMo + static"] - tag_acc["(a) static"]
md(f"""| tagger ({len(tag_train):,} labelled sentences, {TAG_EPOCHS} epoch(s)) | UPOS accuracy on {len(tag_test):,} test sentences |
| --- | --- |
| (a) static: word embeddings + character BiLSTM | {tag_acc["(a) static"]:.2f} % |
| (b) the same + ELMo features of the frozen biLM | {tag_acc["(b) ELMo + static"]:.2f} % |

With ELMo features the tagger tags **{tag_acc["(b) ELMo + static"]:.1f} %** of the test words correctly, against
**{tag_acc["(a) static"]:.1f} %** with static representations alone (**{gain:+.1f}** points). {100 * unseen:.0f} % of
the test words are outside the tagger's vocabulary (seen fewer than twice in the labelled sentences, so the static
tagger has no trained vector for them), but only {100 * unseen_lm:.0f} % are outside the biLM's, and the biLM's LSTM layers add what the
unlabelled sentences taught it about each word's context.""")

# %%
claim(tag_acc["(b) ELMo + static"] > tag_acc["(a) static"],
      "ELMo features improve the POS tagger's test accuracy over static embeddings alone (few labelled sentences)")

# %% [markdown]
# ### What the tagger learned to mix
#
# The tagger's scalar mix $s = \mathrm{softmax}(w)$ over the token layer and the two LSTM layers
# started equal ($w = 0$); after training it is the weighting this task prefers. (Peters et al.,
# §5.3, found the first biLM layer better than the second for POS tagging, and the second better
# for word-sense disambiguation.)
# <!-- narrative -->

# %%
mix_w = elmo_tagger.mix_weights.detach().numpy()
gamma = float(elmo_tagger.elmo.mix.gamma.detach())
fig, ax = subplots()
layer_names = ["token layer $h_{k,0}$"] + [f"LSTM layer $h_{{k,{j}}}$" for j in range(1, len(mix_w))]
ax.bar(np.arange(len(mix_w)), mix_w, 0.6)
ax.axhline(1 / len(mix_w), color="gray", ls="--", label="initial (equal) weight")
ax.set_xticks(np.arange(len(mix_w)), layer_names)
ax.set(xlabel="biLM layer j", ylabel="learned weight $s_j$", title=f"the POS tagger's scalar mix (γ = {gamma:.2f})",
       ylim=(0, 1.3 * max(mix_w.max(), 1 / len(mix_w))))
ax.legend(loc="upper left")
show(fig, "The softmax-normalised layer weights s_j that the ELMo tagger learned.")
print("s_j =", np.round(mix_w, 3), f"(sum {mix_w.sum():.3f}), γ = {gamma:.3f}")

# %% [markdown]
# ## 3. Recommenders: implicit feedback and the leave-one-out protocol
#
# MovieLens-100k: 100,000 ratings by 943 users of 1,682 films. As in the NCF paper, every rating
# is an **interaction** (1), everything else unknown. Each user's **latest** interaction is held
# out; the model ranks it against **99 items the user never rated** (sampled once), and we
# report, with $r_u$ the rank of the held-out item among the 100,
#
# $$\mathrm{HR@}10 = \frac1U \sum_u [r_u \le 10], \qquad \mathrm{NDCG@}10 = \frac1U \sum_u \frac{[r_u \le 10]}{\log_2(r_u + 1)} .$$
#
# A random ranking gives HR@10 = 0.10 and NDCG@10 ≈ 0.045.
# <!-- narrative -->

# %%
ml = load_movielens_100k()
train, test = rs.leave_one_out_split(ml.ratings)
if REC_USERS is not None:
    train, test = train[train[:, 0] < REC_USERS], test[test[:, 0] < REC_USERS]
negatives = rs.sample_negatives(ml.ratings, ml.n_items, 99, users=test[:, 0], seed=0)
n_users, n_items = ml.n_users, ml.n_items
print(f"{len(train)} training interactions, {len(test)} held-out items, each against {negatives.shape[1]} negatives")
rand_scores = torch.rand(len(test), 100, generator=torch.Generator().manual_seed(0))
hr_rand, ndcg_rand = rs.hit_rate_at_k(rand_scores, 0, 10), rs.ndcg_at_k(rand_scores, 0, 10)
print(f"random scores: HR@10 = {hr_rand:.3f}, NDCG@10 = {ndcg_rand:.3f}")

# %% [markdown]
# ## 4. The models
#
# * **Popularity**: score an item by its number of training interactions (the same for everyone).
# * **Matrix factorisation** (MF): $\hat y_{ui} = p_u^\top q_i + b_u + b_i$, trained with BPR.
# * **GMF** (NCF's generalised MF): $\hat y_{ui} = \sigma(h^\top (p_u \odot q_i))$.
# * **MLP**: $\hat y_{ui} = \sigma(h^\top \mathrm{MLP}([p_u; q_i]))$ — the interaction is learned.
# * **NeuMF**: both branches with their own embeddings, fused by one layer on
#   $[p^G_u \odot q^G_i;\ \mathrm{MLP}([p^M_u; q^M_i])]$; the paper initialises it from a trained GMF and MLP.
# * **DSSM** (two towers): a user tower $f$ and an item tower $g$ over their features,
#   $\text{score} = \gamma \cos(f(x_u), g(x_i))$, trained with a softmax over one positive and
#   sampled negatives. Here $x_u$ is the user's normalised history and $x_i$ the film's 19 genres
#   (each with an id embedding).
#
# NCF models train with binary cross-entropy on each positive and 4 sampled negatives
# (drawn afresh every epoch).
# <!-- narrative -->

# %%
history_feats = np.zeros((n_users, n_items), dtype=np.float32)
history_feats[train[:, 0], train[:, 1]] = 1.0
history_feats /= np.maximum(history_feats.sum(1, keepdims=True), 1.0)
width = 32 if SMOKE else 128
trained = {}
# name: (builder, loss, lr, weight decay, epochs); "NeuMF (pre-trained)" starts from the GMF and MLP above
builders = {
    "MF (BPR)": (lambda: rs.MatrixFactorization(n_users, n_items, 32), "bpr", 2e-3, 0.0, REC_EPOCHS),
    "GMF": (lambda: rs.GMF(n_users, n_items, 8), "bce", NCF_LR, NCF_WEIGHT_DECAY, REC_EPOCHS),
    "MLP": (lambda: rs.MLPRec(n_users, n_items, (64, 32, 16, 8), init_std=0.3), "bce", NCF_LR, NCF_WEIGHT_DECAY, REC_EPOCHS),
    "NeuMF": (lambda: rs.NeuMF(n_users, n_items, 8, (64, 32, 16, 8), init_std=0.3), "bce", NCF_LR, NCF_WEIGHT_DECAY, REC_EPOCHS),
    "NeuMF (pre-trained)": (lambda: rs.NeuMF.from_pretrained(trained["GMF"], trained["MLP"], alpha=0.5), "bce", 1e-4,
                            NCF_WEIGHT_DECAY, max(REC_EPOCHS // 2, 1)),
    "DSSM": (lambda: rs.DSSM(history_feats, ml.item_genres.astype(np.float32), hidden=(width,), dim=width // 2,
                             id_dim=32, gamma=10.0), "softmax", 1e-3, 0.0, REC_EPOCHS),
}  # fmt: skip
results = {"random": {"HR@10": hr_rand, "NDCG@10": ndcg_rand}}
results["Popularity"] = rs.evaluate_ranking(rs.Popularity(n_items).fit(train), test, negatives, k=10)
losses, seconds = {}, {}
for name, (build, loss, lr, wd, epochs) in tqdm(builders.items(), desc="recommenders"):
    torch.manual_seed(0)
    model = build()
    start = time.perf_counter()
    losses[name] = rs.train_recommender(model, train, n_items, epochs=epochs, num_negatives=4, loss=loss,
                                        batch_size=REC_BATCH, lr=lr, weight_decay=wd, seed=0)  # fmt: skip
    seconds[name] = time.perf_counter() - start
    results[name] = rs.evaluate_ranking(model, test, negatives, k=10)
    trained[name] = model
print(f"{'model':20s} {'HR@10':>7s} {'NDCG@10':>8s} {'train s':>8s}")
for name, r in results.items():
    print(f"{name:20s} {r['HR@10']:7.3f} {r['NDCG@10']:8.3f} {seconds.get(name, 0.0):8.1f}")
# HR@10 is a mean of len(test) hits: its standard error sqrt(h (1 - h) / U)
hr_se = float(np.sqrt(results["NeuMF"]["HR@10"] * (1 - results["NeuMF"]["HR@10"]) / len(test)))
print(f"standard error of an HR@10 near NeuMF's over {len(test)} users: {hr_se:.3f}")

# %%
fig, ax = subplots(figsize=(10, 4))
names = list(results)
x = np.arange(len(names))
ax.bar(x - 0.2, [results[n]["HR@10"] for n in names], 0.4, label="HR@10")
ax.bar(x + 0.2, [results[n]["NDCG@10"] for n in names], 0.4, label="NDCG@10")
ax.set_xticks(x, [n.replace(" (", "\n(") for n in names])
ax.set(xlabel="model", ylabel="metric (1 held-out vs 99 negatives)", title="MovieLens-100k, leave-one-out")
ax.legend()
show(fig, "HR@10 and NDCG@10 of each recommender on MovieLens-100k.")
best = max((n for n in builders), key=lambda n: results[n]["HR@10"])
personal = list(builders)
spread = max(results[n]["HR@10"] for n in personal if n != "DSSM") - min(results[n]["HR@10"] for n in personal if n != "DSSM")
md(f"NeuMF reaches HR@10 = **{results['NeuMF']['HR@10']:.3f}** and NDCG@10 = **{results['NeuMF']['NDCG@10']:.3f}** "
   f"(**{results['NeuMF (pre-trained)']['HR@10']:.3f}** / **{results['NeuMF (pre-trained)']['NDCG@10']:.3f}** when it starts "
   f"from the trained GMF and MLP, as in the paper), against **{results['Popularity']['HR@10']:.3f}** / "
   f"**{results['Popularity']['NDCG@10']:.3f}** for popularity; the best model here is **{best}**. Mind the noise: "
   f"HR@10 is a mean over {len(test)} users, with a standard error of about {hr_se:.3f}, and MF, GMF, MLP and both "
   f"NeuMFs lie within {spread:.3f} of each other"
   + (" — on a dataset this small, their order is not evidence that one architecture is better; the gap to popularity is."
      if spread < 3 * hr_se else ", a spread wider than the noise."))

# %%
claim(all(results[n]["HR@10"] > 2 * hr_rand for n in builders), "every trained model ranks far better than random (HR@10 above 0.2)")
claim(results["NeuMF"]["HR@10"] > results["Popularity"]["HR@10"], "NeuMF beats the popularity baseline on HR@10")
claim(results["NeuMF"]["NDCG@10"] > results["Popularity"]["NDCG@10"], "NeuMF beats the popularity baseline on NDCG@10")
claim(min(results[n]["HR@10"] for n in personal) - results["Popularity"]["HR@10"] > 5 * hr_se,
      "every personalised model beats popularity by more than 5 standard errors of HR@10")
claim(min(results[n]["HR@10"] for n in ("NeuMF", "NeuMF (pre-trained)")) > 0.6,
      "NeuMF, from scratch and pre-trained, reaches HR@10 above 0.60")
claim(spread < 3 * hr_se, "MF, GMF, MLP and both NeuMFs are within 3 standard errors of HR@10 of each other")

# %% [markdown]
# ## Summary
#
# - ELMo is a biLM, not an autoencoder; a token's ELMo vector is a task-weighted sum
#   $\gamma \sum_j s_j h_{k,j}$ of all its layers; the LSTM layers make it depend on the context.
# - A task uses ELMo by freezing the biLM and feeding $[x_k; \mathrm{ELMo}_k]$ to its own model, learning
#   only $s_j$, $\gamma$ and that model: lecture 14's tagger, trained on few labelled sentences, tags
#   more accurately with ELMo features than with static word and character representations alone.
# - The leave-one-out protocol ranks each user's latest item among 99 sampled negatives; HR@10
#   counts hits, NDCG@10 also rewards a high rank.
# - Personalised models (MF, GMF, MLP, NeuMF, DSSM) beat popularity by far; NeuMF combines a dot
#   product and a learned interaction — but on MovieLens-100k the personalised models are within
#   a few standard errors of each other.
# <!-- narrative: restates the claims above -->
#
# ### Seed statements (topic 17 of the lecture notes)
#
# | # | statement | where it is checked or corrected |
# | --- | --- | --- |
# | 17.1 | ELMo as a recurrent "autoencoder" | **corrected** in §1 (a biLM; Peters et al. 2018, arXiv 1802.05365); `tests/test_contextual.py` |
# | 17.2 | "stick": concatenate directions, weigh per task, sum | §1 claims (contexts differ; scalar mix = formula); §2 (a task learns its own weights $s_j$: the tagger's mix, plotted); `tests/test_contextual.py` |
# | 17.3 | $[T, h_l, h_r]$ vs the paper's $\gamma \sum_j s_j h_{k,j}$ | §1 (formula and claim); §2 (the ELMo tagger, a claim); `tests/test_contextual.py` |
# | 17.4 | DSSM | §4 (two towers, trained and evaluated); `tests/test_recsys.py` |
# | 17.5 | neural collaborative filtering | §4 (GMF, MLP, NeuMF); `tests/test_recsys.py` |
# <!-- narrative -->

# %% [markdown]
# ## Where to go next
#
# - The assignment [`assignments/16-graph-embeddings/`](../../assignments/16-graph-embeddings/16-graph-embeddings.ipynb) also
#   asks for HR@k and NDCG@k.
# - The library: `course_lib.contextual` (`BiLM`, `ScalarMix`, `ELMo`, `train_bilm`, and for a task
#   `ELMoTagger`, `elmo_layers`, `pad_elmo_layers`), `course_lib.sequence.BiLSTMTagger` (its
#   `feature_dim` takes extra per-word features) and `course_lib.recsys` (`leave_one_out_split`, `sample_negatives`, `GMF`, `MLPRec`, `NeuMF`, `DSSM`,
#   `hit_rate_at_k`, `ndcg_at_k`).
# - The benchmark `benchmarks/recommenders.py`: all the models with
#   20 epochs and the pre-trained NeuMF.
# - Lecture 14 (language models and RNNs) built the tagger of §2 and trained it on all 12,544 labelled
#   sentences; `benchmarks/rnn.py` records its full-size accuracy.
# - Papers: Peters et al. 2018 (ELMo), He et al. 2017 (neural collaborative filtering), Huang et
#   al. 2013 (DSSM).
# <!-- narrative -->
