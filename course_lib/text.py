"""Words as vectors: vocabularies, word2vec, FastText, doc2vec and the sentence CNN (lectures 12-13).

**Skip-gram** (Mikolov et al., 2013) models the probability of a context word ``w_O`` given a
central word ``w_I`` with two embedding tables, central ``v`` (``W_in``) and context ``v'``
(``W_out``):

.. math::

    p(w_O \\mid w_I) = \\frac{\\exp\\langle v'_{w_O}, v_{w_I}\\rangle}{\\sum_{w \\in W} \\exp\\langle v'_w, v_{w_I}\\rangle},
    \\qquad \\sum_i \\sum_{-c \\le j \\le c,\\ j \\ne 0} \\log p(w_{i+j} \\mid w_i) \\to \\max

(:func:`full_softmax_loss`; the ``j != 0`` is missing from one of the lecture's sources). The
denominator costs a pass over the whole vocabulary, so word2vec maximises the **negative
sampling** objective instead — it is *not* a probability, although two of the lecture's sources
write it as ``p(w_O|w_I) =``:

.. math::

    \\log \\sigma\\langle v'_{w_O}, v_{w_I}\\rangle + \\sum_{i=1}^{k} \\log \\sigma(-\\langle v'_{w_i}, v_{w_I}\\rangle),
    \\qquad w_i \\sim P(w) = \\frac{U(w)^{3/4}}{\\sum_{v} U(v)^{3/4}}

(:func:`sgns_loss` is its negative, averaged over pairs; :func:`noise_distribution`,
:class:`AliasSampler`). **CBOW** predicts the central word from the mean of its context vectors.

**FastText** (Bojanowski et al., 2017) represents a word by its character n-grams with boundary
symbols (:func:`char_ngrams`), each hashed into one of ``buckets`` rows with FNV-1a
(:func:`ngram_bucket`); the word vector combines the word's own row and its n-gram rows. The
paper *sums* them (``z_w = sum_i v_{t_i}``); the fastText library (and gensim) *averages* them:
:func:`train_fasttext` averages by default and takes ``combine="sum"`` for the paper's form.
Words never seen in training still get a vector from their n-grams.

**doc2vec** (Le & Mikolov, 2014; :class:`Doc2Vec`) adds a trainable vector per document, used with
the context words to predict the central word (PV-DM) or alone to predict the document's words
(PV-DBOW). :func:`average_embeddings` gives the simpler text features of the lecture: the
(optionally weighted) mean of a text's word vectors. :class:`TextCNN` is Kim's (2014) sentence
CNN: 1-D convolutions of several widths over the word vectors, max-over-time pooling, dropout and a
linear classifier, with random, frozen, fine-tuned or two-channel embeddings.

How the training is vectorised (:func:`train_word2vec`, :func:`train_fasttext`, :class:`Doc2Vec`):
the corpus is encoded once; each epoch subsamples frequent words, builds all (input, target)
examples of a chunk of sentences with numpy, shuffles them and runs mini-batches of plain SGD with
hand-written gradients and ``index_add_`` scatter updates into the two tables — the same update as
word2vec's C code, only summed over a mini-batch instead of applied one pair at a time. This beat
``nn.Embedding(sparse=True)`` + ``torch.optim.SGD`` by about 2x on a CPU (autograd's sparse
gradients are built, coalesced and then added; ``index_add_`` adds directly). The learning rate
decays linearly from ``lr`` to ``min_lr`` over all the training words, as in word2vec.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AliasSampler",
    "Doc2Vec",
    "FastTextKeyedVectors",
    "KeyedVectors",
    "TextCNN",
    "Vocab",
    "average_embeddings",
    "cbow_examples",
    "char_ngrams",
    "fnv1a_32",
    "full_softmax_loss",
    "ngram_bucket",
    "noise_distribution",
    "sgns_grads",
    "sgns_loss",
    "skipgram_pairs",
    "subsample_keep_prob",
    "tokenize",
    "tokenize_like_kim",
    "train_fasttext",
    "train_word2vec",
]

# ============================================================================================
# tokens and vocabularies
# ============================================================================================
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Split ``text`` into words: runs of Unicode letters/digits, with inner apostrophes kept
    (``"don't"``); punctuation and whitespace are dropped. Lower-cased unless ``lower=False``.

    >>> tokenize("Руслан's cat, eating 2 fish!")
    ["руслан's", 'cat', 'eating', '2', 'fish']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    return _WORD_RE.findall(text)


# Kim (2014)'s cleaning for the sentence CNN, as its released preprocessing does it: every
# character outside ASCII letters, digits and ( ) , ! ? ' ` becomes a space; the clitics are
# split off their word; ( ) , ! ? become tokens of their own.
_KIM_DROPPED = re.compile(r"[^A-Za-z0-9(),!?'`]+")
_KIM_CLITIC = re.compile(r"(n't|'s|'ve|'re|'d|'ll)", re.IGNORECASE)
_KIM_PUNCT = re.compile(r"([(),!?])")


def tokenize_like_kim(text: str, *, lower: bool = True) -> list[str]:
    """Tokenise ``text`` the way Kim's sentence-CNN experiments (2014) clean MR.

    Rules, in order: (1) each run of characters other than ASCII letters, digits and
    ``( ) , ! ? ' `` ` is replaced by a space -- so hyphens, periods, quotes-as-``"``, colons
    and non-ASCII letters go; (2) the clitics ``n't 's 've 're 'd 'll`` are split off the word
    they end, in any case (``"don't"`` -> ``do n't``); (3) ``( ) , ! ?`` become tokens of their own;
    (4) lower-case unless ``lower=False``, then split on whitespace. Unlike :func:`tokenize`,
    punctuation that carries sentiment (``!``, ``?``) is kept and clitics are separate tokens,
    which gives a smaller vocabulary (on MR: about 18k words instead of 21k).

    >>> tokenize_like_kim("It's a well-made, funny film -- isn't it?!")
    ['it', "'s", 'a', 'well', 'made', ',', 'funny', 'film', 'is', "n't", 'it', '?', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize_like_kim expects a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    text = _KIM_DROPPED.sub(" ", text)
    text = _KIM_CLITIC.sub(r" \1", text)
    text = _KIM_PUNCT.sub(r" \1 ", text)
    return text.split()


class Vocab:
    """A vocabulary: ``itos`` (id -> word), ``stoi`` (word -> id) and ``counts`` (corpus counts).

    Special tokens come first, in the order ``pad``, ``unk``, ``specials``; then the words by
    decreasing count (ties in order of first appearance). Specials have count 0. With ``unk``
    set, :meth:`encode` maps unknown words to it; without, it drops them — what word2vec does
    with words under ``min_count``.
    """

    def __init__(
        self,
        itos: Sequence[str],
        counts: Sequence[int] | np.ndarray | None = None,
        *,
        pad: str | None = None,
        unk: str | None = None,
        specials: Sequence[str] = (),
    ) -> None:
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("itos has repeated words")
        self.counts: np.ndarray = (
            np.zeros(len(self.itos), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        )
        if self.counts.shape != (len(self.itos),):
            raise ValueError(f"counts has shape {self.counts.shape}, expected ({len(self.itos)},)")
        for name, tok in (("pad", pad), ("unk", unk)):
            if tok is not None and tok not in self.stoi:
                raise ValueError(f"{name} token {tok!r} is not in itos")
        self.pad, self.unk = pad, unk
        self.specials: tuple[str, ...] = tuple(dict.fromkeys(t for t in (pad, unk, *specials) if t is not None))
        if any(t not in self.stoi for t in self.specials):
            raise ValueError(f"every special token must be in itos, got {self.specials}")

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_count: int = 5,
        max_size: int | None = None,
        *,
        pad: str | None = None,
        unk: str | None = None,
        specials: Sequence[str] = (),
    ) -> Vocab:
        """Count the words of ``token_lists`` (an iterable of token sequences) and keep those seen
        at least ``min_count`` times, at most ``max_size`` of them (the most frequent; specials not
        counted). E.g. for an RNN: ``Vocab.build(sents, min_count=1, pad="<pad>", unk="<unk>")``
        gives ``<pad>`` id 0 and ``<unk>`` id 1."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be >= 0, got {max_size}")
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            if isinstance(tokens, str):
                raise TypeError("token_lists must hold sequences of tokens, not strings (tokenize them first)")
            counter.update(tokens)
        head = [t for t in (pad, unk, *specials) if t is not None]
        head = list(dict.fromkeys(head))
        words = [(w, c) for w, c in counter.items() if c >= min_count and w not in head]
        words.sort(key=lambda wc: -wc[1])  # stable: ties keep their first-appearance order
        if max_size is not None:
            words = words[:max_size]
        itos = head + [w for w, _ in words]
        counts = [0] * len(head) + [c for _, c in words]
        return cls(itos, counts, pad=pad, unk=unk, specials=head)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: object) -> bool:
        return word in self.stoi

    def __getitem__(self, word: str) -> int:
        if word in self.stoi:
            return self.stoi[word]
        if self.unk is not None:
            return self.stoi[self.unk]
        raise KeyError(f"{word!r} is not in the vocabulary (and it has no unk token)")

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words, pad={self.pad!r}, unk={self.unk!r})"

    @property
    def pad_id(self) -> int | None:
        return None if self.pad is None else self.stoi[self.pad]

    @property
    def unk_id(self) -> int | None:
        return None if self.unk is None else self.stoi[self.unk]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids ``(n,)`` int64; unknown words become ``unk_id``, or are dropped without ``unk``."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a sequence of tokens, not a string (tokenize it first)")
        stoi, unk = self.stoi, self.unk_id
        if unk is None:
            ids = [stoi[t] for t in tokens if t in stoi]
        else:
            ids = [stoi.get(t, unk) for t in tokens]
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray | torch.Tensor, *, skip_specials: bool = False) -> list[str]:
        """Words of the ids; ``skip_specials`` leaves out ``pad``, ``unk`` and the other specials."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        special = set(self.specials) if skip_specials else set()
        for i in np.asarray(list(ids), dtype=np.int64).tolist():
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary of {len(self.itos)} words")
            if self.itos[i] in special:
                continue
            out.append(self.itos[i])
        return out

    def encode_batch(
        self,
        token_lists: Sequence[Sequence[str]],
        *,
        max_len: int | None = None,
        min_len: int = 1,
        edge_pad: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad with ``pad_id``: ``(ids (B, L) int64, lengths (B,) int64)``, where
        ``L = max(min_len, longest + 2 * edge_pad)``, and sequences longer than ``max_len`` are cut.

        ``edge_pad``: ``pad_id`` tokens put before *and* after every sequence, as Kim (2014) pads a
        sentence with ``h_max - 1`` zero vectors on each side so that a width-``h_max`` filter sees
        the first and last words at every offset. Row ``i`` is then ``edge_pad`` pads, the
        sequence, and pads up to ``L``; ``lengths`` counts the sequence's own tokens only.
        """
        if self.pad is None:
            raise ValueError("encode_batch needs a pad token: build the vocabulary with pad='<pad>'")
        if edge_pad < 0:
            raise ValueError(f"edge_pad must be >= 0, got {edge_pad}")
        seqs = [self.encode(t) for t in token_lists]
        if max_len is not None:
            seqs = [s[:max_len] for s in seqs]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        width = max([min_len, *(n + 2 * edge_pad for n in lengths.tolist())])
        out = torch.full((len(seqs), width), self.pad_id, dtype=torch.int64)
        for i, s in enumerate(seqs):
            out[i, edge_pad : edge_pad + len(s)] = torch.from_numpy(s)
        return out, lengths


# ============================================================================================
# subsampling, noise distribution, alias sampling
# ============================================================================================
def _counts_array(counts: Any) -> np.ndarray:
    c = counts.detach().cpu().numpy() if isinstance(counts, torch.Tensor) else np.asarray(counts)
    c = c.astype(np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {c.shape}")
    if (c < 0).any() or not np.isfinite(c).all():
        raise ValueError("counts must be finite and non-negative")
    if c.sum() <= 0:
        raise ValueError("counts sum to zero")
    return c


def subsample_keep_prob(counts: Any, t: float = 1e-5, *, formula: str = "word2vec") -> np.ndarray:
    """Probability of *keeping* each occurrence of a word, ``(V,)`` float64 in ``(0, 1]``.

    With ``f = count / total``:

    * ``formula="word2vec"`` (the C code, and gensim): ``keep = (sqrt(f / t) + 1) * t / f``;
    * ``formula="paper"`` (Mikolov et al. 2013, eq. 5, discard ``1 - sqrt(t / f)``): ``keep = sqrt(t / f)``;

    both clipped to 1 (rare words are always kept). The paper suggests ``t = 1e-5`` for corpora of
    billions of words; word2vec and gensim default to ``1e-3``, the sensible value for a corpus of
    a million words such as Brown.
    """
    if t <= 0:
        raise ValueError(f"t must be positive, got {t}")
    c = _counts_array(counts)
    f = c / c.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        if formula == "word2vec":
            keep = (np.sqrt(f / t) + 1.0) * t / f
        elif formula == "paper":
            keep = np.sqrt(t / f)
        else:
            raise ValueError(f"formula must be 'word2vec' or 'paper', got {formula!r}")
    keep[f == 0] = 1.0
    return np.minimum(keep, 1.0)


def noise_distribution(counts: Any, power: float = 0.75) -> np.ndarray:
    """Negative-sampling distribution ``P(w) = U(w)^power / sum_v U(v)^power``, ``(V,)`` float64
    (``U`` = corpus counts; ``power=0.75`` as in word2vec, 1 gives the unigram, 0 the uniform)."""
    c = _counts_array(counts)
    with np.errstate(divide="ignore"):
        p = np.where(c > 0, c**power, 0.0)
    return p / p.sum()


class AliasSampler:
    """Walker's alias method (Vose's O(V) construction): draws from a discrete distribution in O(1)
    per sample, vectorised.

    Column ``i`` of the table keeps ``i`` with probability ``prob[i]`` and otherwise gives
    ``alias[i]``; sampling picks a column uniformly and flips that biased coin, so
    ``P(i) = (prob[i] + sum_{j: alias[j]=i} (1 - prob[j])) / V`` equals ``probs[i]`` exactly.
    ``probs`` may be unnormalised; the tables live on ``device`` (default: that of ``probs``).
    """

    def __init__(self, probs: Any, *, device: torch.device | str | None = None) -> None:
        if device is None and isinstance(probs, torch.Tensor):
            device = probs.device
        p = _counts_array(probs)
        n = p.size
        scaled = p * (n / p.sum())
        prob = np.ones(n, dtype=np.float64)
        alias = np.arange(n, dtype=np.int64)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = scaled[s], g
            scaled[g] = (scaled[g] + scaled[s]) - 1.0
            (small if scaled[g] < 1.0 else large).append(g)
        # what is left has scaled == 1 up to rounding: keep prob = 1
        self.probs = torch.as_tensor(p / p.sum(), device=device)
        self.prob = torch.as_tensor(prob, device=device)
        self.alias = torch.as_tensor(alias, device=device)

    def __len__(self) -> int:
        return self.prob.numel()

    def to(self, device: torch.device | str) -> AliasSampler:
        """Move the tables (in place) and return self."""
        self.probs, self.prob, self.alias = self.probs.to(device), self.prob.to(device), self.alias.to(device)
        return self

    def sample(self, n: int | Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws (an int or a shape), int64 on the tables' device."""
        shape = (n,) if isinstance(n, int) else tuple(n)
        if any(s < 0 for s in shape):
            raise ValueError(f"sample size must be non-negative, got {n}")
        dev = self.prob.device
        col = torch.randint(len(self), shape, generator=generator, device=dev)
        coin = torch.rand(shape, generator=generator, device=dev, dtype=torch.float64)
        return torch.where(coin < self.prob[col], col, self.alias[col])


# ============================================================================================
# training examples
# ============================================================================================
def _as_sentences(token_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """One sequence or a list of sequences -> flat ids (n,) and sentence index (n,)."""
    if isinstance(token_ids, torch.Tensor):
        token_ids = token_ids.cpu().numpy()
    if isinstance(token_ids, np.ndarray):
        if token_ids.ndim != 1:
            raise ValueError(
                f"token_ids must be 1-D (one sentence) or a list of sentences, got shape {token_ids.shape}"
            )
        return token_ids.astype(np.int64), np.zeros(token_ids.size, dtype=np.int64)
    seq = list(token_ids)
    if not seq or all(isinstance(x, (int, np.integer)) for x in seq):
        ids = np.asarray(seq, dtype=np.int64)
        return ids, np.zeros(ids.size, dtype=np.int64)
    parts = [np.asarray(s.cpu().numpy() if isinstance(s, torch.Tensor) else s, dtype=np.int64) for s in seq]
    if any(p.ndim != 1 for p in parts):
        raise ValueError("each sentence must be a 1-D sequence of ids")
    lengths = np.array([p.size for p in parts], dtype=np.int64)
    ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return ids, np.repeat(np.arange(len(parts), dtype=np.int64), lengths)


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _reduced_windows(n: int, window: int, dynamic: bool, rng: np.random.Generator) -> np.ndarray:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if dynamic:
        return rng.integers(1, window + 1, size=n)
    return np.full(n, window, dtype=np.int64)


def _pair_positions(sent: np.ndarray, b: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (center, context) of every pair with 1 <= |j| <= b[center] inside one sentence."""
    centers, contexts = [], []
    n = sent.size
    for j in range(1, window + 1):
        if j >= n:
            break
        same = sent[:-j] == sent[j:]
        left = np.flatnonzero(same & (b[:-j] >= j))  # center i, context i + j
        right = np.flatnonzero(same & (b[j:] >= j))  # center i + j, context i
        centers += [left, right + j]
        contexts += [left + j, right]
    if not centers:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(centers), np.concatenate(contexts)


def skipgram_pairs(
    token_ids: Any, window: int, dynamic: bool = True, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All skip-gram (center, context) pairs: ``(centers (P,), contexts (P,))`` int64 ids.

    ``token_ids``: one sentence (1-D ids) or a list of sentences; pairs never cross sentences.
    Pair ``(w_i, w_{i+j})`` is produced for ``1 <= |j| <= c_i`` (``j != 0``: a word is not its
    own context). ``dynamic=False``: ``c_i = window`` for every word. ``dynamic=True`` (word2vec):
    ``c_i`` is drawn uniformly from ``1..window`` per central word, so a context at distance
    ``j`` is used with probability ``(window - j + 1) / window`` — nearer words weigh more.
    Pairs are in text order of the central word, then by offset ``-c..c``.
    """
    ids, sent = _as_sentences(token_ids)
    b = _reduced_windows(ids.size, window, dynamic, _rng(rng))
    c, o = _pair_positions(sent, b, window)
    order = np.lexsort((o - c, c))
    return ids[c[order]], ids[o[order]]


def _cbow_positions(sent: np.ndarray, b: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the context slots (n, 2 window) (-1 = none) for every center that has one."""
    n = sent.size
    pos = np.arange(n)
    slots = np.full((n, 2 * window), -1, dtype=np.int64)
    offsets = [*range(-window, 0), *range(1, window + 1)]
    for s, j in enumerate(offsets):
        q = pos + j
        ok = (q >= 0) & (q < n) & (np.abs(j) <= b)
        ok[ok] &= sent[q[ok]] == sent[pos[ok]]
        slots[ok, s] = q[ok]
    has = (slots >= 0).any(1)
    return pos[has], slots[has]


def cbow_examples(
    token_ids: Any,
    window: int,
    dynamic: bool = True,
    rng: np.random.Generator | int | None = None,
    *,
    pad: int = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """CBOW examples: ``(contexts (N, 2 window), centers (N,))`` int64 ids.

    Row ``i`` holds the context words of one central word in fixed slots for the offsets
    ``-window..-1, 1..window``; slots beyond the (dynamic, as in :func:`skipgram_pairs`) window or
    outside the sentence hold ``pad``. Centers without any context (one-word sentences) are left
    out. The lecture's example: a 5-word span (``window=2``), the middle word dropped.
    """
    ids, sent = _as_sentences(token_ids)
    b = _reduced_windows(ids.size, window, dynamic, _rng(rng))
    centers, slots = _cbow_positions(sent, b, window)
    ctx = np.where(slots >= 0, ids[np.maximum(slots, 0)] if ids.size else slots, pad)
    return ctx.astype(np.int64), ids[centers]


# ============================================================================================
# losses
# ============================================================================================
def _check_sgns(center: torch.Tensor, context: torch.Tensor, negative: torch.Tensor) -> None:
    if center.dim() != 2:
        raise ValueError(f"center_vecs must be (B, d), got {tuple(center.shape)}")
    if context.shape != center.shape:
        raise ValueError(f"context_vecs must be (B, d) = {tuple(center.shape)}, got {tuple(context.shape)}")
    if negative.dim() != 3 or negative.shape[0] != center.shape[0] or negative.shape[2] != center.shape[1]:
        raise ValueError(
            f"negative_vecs must be (B, k, d) = ({center.shape[0]}, k, {center.shape[1]}), got {tuple(negative.shape)}"
        )


def sgns_loss(center_vecs: torch.Tensor, context_vecs: torch.Tensor, negative_vecs: torch.Tensor) -> torch.Tensor:
    """Negative-sampling loss, averaged over the ``B`` pairs (a scalar):

    ``-mean_b [ log s(<v'_O, v_I>) + sum_{i=1..k} log s(-<v'_i, v_I>) ]``, ``s`` the sigmoid.

    center_vecs ``v_I``: (B, d) central vectors; context_vecs ``v'_O``: (B, d) context vectors of
    the true context words; negative_vecs ``v'_i``: (B, k, d) context vectors of the k noise words.
    """
    _check_sgns(center_vecs, context_vecs, negative_vecs)
    pos = (center_vecs * context_vecs).sum(-1)
    neg = torch.linalg.vecdot(negative_vecs, center_vecs.unsqueeze(1))
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def sgns_grads(
    center_vecs: torch.Tensor, context_vecs: torch.Tensor, negative_vecs: torch.Tensor, *, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of :func:`sgns_loss` and its gradients, by hand:
    ``(loss, d_center (B, d), d_context (B, d), d_negative (B, k, d))``.

    With ``s_O = <v'_O, v_I>`` and ``s_i = <v'_i, v_I>``:
    ``dL/dv_I = (s(s_O) - 1) v'_O + sum_i s(s_i) v'_i``, ``dL/dv'_O = (s(s_O) - 1) v_I``,
    ``dL/dv'_i = s(s_i) v_I``; divided by ``B`` for ``reduction="mean"`` (``"sum"``: per-pair
    gradients, what word2vec's SGD step uses).
    """
    _check_sgns(center_vecs, context_vecs, negative_vecs)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    pos = (center_vecs * context_vecs).sum(-1)
    neg = torch.linalg.vecdot(negative_vecs, center_vecs.unsqueeze(1))
    loss = (F.softplus(-pos) + F.softplus(neg).sum(-1)).sum()
    g_pos = torch.sigmoid(pos) - 1.0  # (B,)
    g_neg = torch.sigmoid(neg)  # (B, k)
    scale = 1.0 / max(center_vecs.shape[0], 1) if reduction == "mean" else 1.0
    d_center = g_pos.unsqueeze(1) * context_vecs + torch.bmm(g_neg.unsqueeze(1), negative_vecs).squeeze(1)
    d_context = g_pos.unsqueeze(1) * center_vecs
    d_negative = g_neg.unsqueeze(2) * center_vecs.unsqueeze(1)
    return loss * scale, d_center * scale, d_context * scale, d_negative * scale


def full_softmax_loss(
    center_vecs: torch.Tensor, context_ids: torch.Tensor, output_vectors: torch.Tensor
) -> torch.Tensor:
    """Skip-gram's full-softmax loss ``-mean_b log p(w_O | w_I)`` (a scalar), with
    ``p(w_O|w_I) = exp<v'_O, v_I> / sum_{w in W} exp<v'_w, v_I>``.

    center_vecs ``v_I``: (B, d); context_ids ``w_O``: (B,) int64 in ``[0, V)``;
    output_vectors ``v'``: (V, d), the context vector of every word of the vocabulary ``W`` —
    the ``O(V d)`` cost per pair that negative sampling avoids.
    """
    if center_vecs.dim() != 2 or output_vectors.dim() != 2 or center_vecs.shape[1] != output_vectors.shape[1]:
        raise ValueError(
            f"center_vecs (B, d) and output_vectors (V, d) must share d, got {tuple(center_vecs.shape)} "
            f"and {tuple(output_vectors.shape)}"
        )
    if context_ids.shape != (center_vecs.shape[0],):
        raise ValueError(f"context_ids must be ({center_vecs.shape[0]},), got {tuple(context_ids.shape)}")
    return F.cross_entropy(center_vecs @ output_vectors.T, context_ids.long())


# ============================================================================================
# keyed vectors: similarity, analogies, evaluation
# ============================================================================================
class KeyedVectors:
    """Word vectors with look-up, nearest neighbours, analogies and the standard evaluations.

    ``words``: the vocabulary (most frequent first), ``vectors``: (V, d) float tensor,
    ``counts``: (V,) corpus counts. ``history`` (a dict, possibly empty) holds what training
    recorded: ``loss`` per chunk, ``words`` processed, ``seconds``, ``words_per_s``.
    ``context_vectors`` (V, d) or None: the ``v'`` table of word2vec.
    """

    kind = "word2vec"

    def __init__(
        self,
        words: Sequence[str],
        vectors: torch.Tensor,
        counts: Sequence[int] | np.ndarray | None = None,
        *,
        context_vectors: torch.Tensor | None = None,
        history: dict[str, Any] | None = None,
    ) -> None:
        vectors = torch.as_tensor(vectors)
        if vectors.dim() != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"vectors must be ({len(words)}, d), got {tuple(vectors.shape)}")
        self.words = list(words)
        self.key_to_index = {w: i for i, w in enumerate(self.words)}
        self.vectors = vectors.detach().float()
        self.counts = np.zeros(len(words), np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
        self.context_vectors = None if context_vectors is None else context_vectors.detach().float()
        self.history: dict[str, Any] = dict(history or {})
        self._unit: torch.Tensor | None = None
        self._lower: dict[str, int] | None = None

    # ---------------------------------------------------------------- look-up
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> torch.Tensor:
        return self.get_vector(word)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} words, dim={self.dim})"

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def get_vector(self, word: str, *, norm: bool = False) -> torch.Tensor:
        """The (d,) vector of ``word`` (unit length with ``norm=True``); KeyError if unknown."""
        if word not in self.key_to_index:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self)} words")
        v = self.vectors[self.key_to_index[word]]
        return F.normalize(v, dim=0) if norm else v

    @property
    def unit_vectors(self) -> torch.Tensor:
        """(V, d) rows scaled to unit length (zero rows stay zero)."""
        if self._unit is None:
            self._unit = F.normalize(self.vectors, dim=1)
        return self._unit

    def _query(self, word: str | torch.Tensor) -> torch.Tensor:
        if isinstance(word, str):
            return self.get_vector(word, norm=True)
        v = torch.as_tensor(word, dtype=torch.float32)
        if v.shape != (self.dim,):
            raise ValueError(f"a query vector must be ({self.dim},), got {tuple(v.shape)}")
        return F.normalize(v, dim=0)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self._query(a) @ self._query(b))

    def _top(self, query: torch.Tensor, topn: int, exclude: Iterable[int]) -> list[tuple[str, float]]:
        sims = self.unit_vectors @ query
        ex = list(exclude)
        if ex:
            sims[ex] = -math.inf
        k = min(topn, len(self) - len(set(ex)))
        vals, idx = torch.topk(sims, max(k, 0))
        return [(self.words[i], float(v)) for i, v in zip(idx.tolist(), vals.tolist())]

    def most_similar(self, word: str | torch.Tensor, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` nearest words by cosine similarity, ``[(word, cos), ...]``; the query word
        itself (when given as a string) is left out."""
        exclude = [self.key_to_index[word]] if isinstance(word, str) and word in self.key_to_index else []
        return self._top(self._query(word), topn, exclude)

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """The answer to "``a`` is to ``b`` as ``c`` is to ?" by 3CosAdd: the words ``x`` (other than a, b, c) with
        the largest ``cos(x, b̂ - â + ĉ)``, hats = unit vectors (gensim's ``most_similar(positive=[b, c],
        negative=[a])``). E.g. ``analogy("man", "king", "woman")`` -> queen."""
        q = self._query(b) - self._query(a) + self._query(c)
        exclude = [self.key_to_index[w] for w in (a, b, c) if w in self.key_to_index]
        return self._top(F.normalize(q, dim=0), topn, exclude)

    # ---------------------------------------------------------------- evaluation
    def _lookup(self, word: str, case_insensitive: bool, restrict: int) -> int | None:
        if case_insensitive:
            if self._lower is None:
                lower: dict[str, int] = {}
                for i, w in enumerate(self.words):
                    lower.setdefault(w.lower(), i)  # the most frequent spelling wins
                self._lower = lower
            i = self._lower.get(word.lower())
        else:
            i = self.key_to_index.get(word)
        return i if i is not None and i < restrict else None

    def evaluate_analogies(
        self, path: str | Path, *, restrict_vocab: int = 300_000, case_insensitive: bool = True, batch_size: int = 2048
    ) -> dict[str, Any]:
        """Accuracy on an analogy file in the ``questions-words.txt`` format (``: section`` lines,
        then ``a b c d`` meaning a : b = c : d), as gensim's ``evaluate_word_analogies`` computes it:
        3CosAdd over the ``restrict_vocab`` most frequent words, a, b, c excluded; questions with a
        word outside them are skipped and counted in ``oov_rate``.

        Returns ``{"accuracy", "correct", "total" (answered), "oov" (skipped), "oov_rate",
        "sections": {name: accuracy}}``.
        """
        restrict = min(restrict_vocab, len(self))
        sections: dict[str, list[int]] = {}
        questions: list[tuple[int, int, int, int, str]] = []
        section, oov = "", 0
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(":"):
                section = line[1:].strip()
                sections.setdefault(section, [0, 0])
                continue
            parts = line.split()
            if len(parts) != 4:
                continue
            ids = [self._lookup(w, case_insensitive, restrict) for w in parts]
            if any(i is None for i in ids):
                oov += 1
                continue
            questions.append((*ids, section))  # type: ignore[arg-type]
            sections.setdefault(section, [0, 0])
        unit = self.unit_vectors[:restrict]
        correct_total = 0
        for start in range(0, len(questions), batch_size):
            qs = questions[start : start + batch_size]
            a, b, c, d = (torch.tensor([q[k] for q in qs]) for k in range(4))
            query = F.normalize(unit[b] - unit[a] + unit[c], dim=1)
            sims = query @ unit.T
            rows = torch.arange(len(qs))
            for col in (a, b, c):
                sims[rows, col] = -math.inf
            top = torch.topk(sims, min(5, restrict), dim=1).indices.tolist()
            for q, cand in zip(qs, top):
                # like gensim: the first of the top 5 that is no spelling of a, b or c is the answer
                ignore = {self.words[i].lower() if case_insensitive else self.words[i] for i in q[:3]}
                pred = next(
                    (i for i in cand if (self.words[i].lower() if case_insensitive else self.words[i]) not in ignore),
                    None,
                )
                hit = pred is not None and (
                    self.words[pred].lower() == self.words[q[3]].lower() if case_insensitive else pred == q[3]
                )
                sections[q[4]][0] += int(hit)
                sections[q[4]][1] += 1
                correct_total += int(hit)
        total = len(questions)
        return {
            "accuracy": correct_total / total if total else float("nan"),
            "correct": correct_total,
            "total": total,
            "oov": oov,
            "oov_rate": oov / (oov + total) if oov + total else float("nan"),
            "sections": {s: (ok / n if n else float("nan")) for s, (ok, n) in sections.items()},
        }

    def evaluate_word_pairs(
        self,
        path: str | Path,
        *,
        delimiter: str = "\t",
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> dict[str, float]:
        """Correlation of cosine similarities with human scores on a word-pair file
        (``word1<TAB>word2<TAB>score``, ``#`` comments; WordSim353, SimLex-999), as gensim's
        ``evaluate_word_pairs``: pairs with a word outside the ``restrict_vocab`` most frequent
        are skipped. Returns ``{"spearman", "pearson", "pairs" (used), "oov" (skipped),
        "oov_rate"}``.
        """
        from scipy import stats

        restrict = min(restrict_vocab, len(self))
        model, gold, oov = [], [], 0
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split(delimiter)
            if len(parts) < 3:
                continue
            ia, ib = (self._lookup(w.strip(), case_insensitive, restrict) for w in parts[:2])
            if ia is None or ib is None:
                oov += 1
                continue
            model.append(float(self.unit_vectors[ia] @ self.unit_vectors[ib]))
            gold.append(float(parts[2]))
        n = len(gold)
        spearman = float(stats.spearmanr(gold, model)[0]) if n > 1 else float("nan")
        pearson = float(stats.pearsonr(gold, model)[0]) if n > 1 else float("nan")
        return {
            "spearman": spearman,
            "pearson": pearson,
            "pairs": n,
            "oov": oov,
            "oov_rate": oov / (oov + n) if oov + n else float("nan"),
        }

    # ---------------------------------------------------------------- persistence
    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` file (no pickle): words, vectors, counts, context vectors, loss history."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "kind": np.array(self.kind),
            "words": np.array(self.words, dtype=str),
            "vectors": self.vectors.cpu().numpy(),
            "counts": self.counts,
            "loss": np.asarray(self.history.get("loss", []), dtype=np.float64),
        }
        if self.context_vectors is not None:
            arrays["context_vectors"] = self.context_vectors.cpu().numpy()
        arrays.update(self._extra_arrays())
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> KeyedVectors:
        """Read a file written by :meth:`save` (a :class:`FastTextKeyedVectors` comes back as one)."""
        with np.load(Path(path), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        kind = str(data["kind"])
        history = {"loss": data["loss"].tolist()} if data["loss"].size else {}
        ctx = torch.from_numpy(data["context_vectors"]) if "context_vectors" in data else None
        words, vectors = data["words"].tolist(), torch.from_numpy(data["vectors"])
        if kind == FastTextKeyedVectors.kind:
            return FastTextKeyedVectors(
                words,
                vectors,
                data["counts"],
                ngram_vectors=torch.from_numpy(data["ngram_vectors"]),
                n_min=int(data["n_min"]),
                n_max=int(data["n_max"]),
                combine=str(data["combine"]),
                context_vectors=ctx,
                history=history,
            )
        return KeyedVectors(words, vectors, data["counts"], context_vectors=ctx, history=history)


# ============================================================================================
# FastText: character n-grams and their hash
# ============================================================================================
def char_ngrams(word: str, n_min: int = 3, n_max: int = 6, *, include_word: bool = False) -> list[str]:
    """Character n-grams of ``"<" + word + ">"`` for ``n_min <= n <= n_max``, by length then
    position (gensim's ``compute_ngrams`` order); ``include_word=True`` puts the whole
    ``"<word>"`` first (fastText keeps it as the word's own vector). With ``n_min = 1`` the lone
    ``"<"`` and ``">"`` are left out, as in fastText (``Dictionary::computeSubwords``).

    >>> char_ngrams("eating", 3, 3)
    ['<ea', 'eat', 'ati', 'tin', 'ing', 'ng>']
    >>> char_ngrams("руслан", 3, 3, include_word=True)
    ['<руслан>', '<ру', 'рус', 'усл', 'сла', 'лан', 'ан>']
    """
    if not 1 <= n_min <= n_max:
        raise ValueError(f"need 1 <= n_min <= n_max, got n_min={n_min}, n_max={n_max}")
    ext = f"<{word}>"
    grams = [ext[i : i + n] for n in range(n_min, n_max + 1) for i in range(len(ext) - n + 1)]
    if n_min == 1:  # fastText never uses the lone boundary symbols as 1-grams
        grams = [g for g in grams if g not in ("<", ">")]
    return [ext, *grams] if include_word else grams


def fnv1a_32(data: bytes) -> int:
    """32-bit FNV-1a of ``data`` *as fastText computes it*: each byte is sign-extended (C++
    ``int8_t``) before the xor, which differs from textbook FNV-1a for bytes >= 128 (non-ASCII)."""
    h = 2166136261
    for byte in data:
        h ^= byte if byte < 128 else (byte | 0xFFFFFF00)
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def ngram_bucket(ngram: str, buckets: int) -> int:
    """Row of ``ngram`` in the n-gram table: ``fnv1a_32(utf8(ngram)) % buckets`` (fastText's
    ``Dictionary::hash``; gensim's ``ft_hash_bytes``)."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    return fnv1a_32(ngram.encode("utf-8")) % buckets


class FastTextKeyedVectors(KeyedVectors):
    """FastText vectors: ``vectors`` (V, d) are the composed vectors of the vocabulary words;
    ``ngram_vectors`` (buckets, d) give a vector to any word through its n-grams.

    ``get_vector(w)`` for an unknown word: the mean (or sum, ``combine="sum"``) of the rows of its
    distinct n-grams (fastText's ``getWordVector``); zeros if it has none.
    """

    kind = "fasttext"

    def __init__(
        self,
        words: Sequence[str],
        vectors: torch.Tensor,
        counts: Any = None,
        *,
        ngram_vectors: torch.Tensor,
        n_min: int,
        n_max: int,
        combine: str = "mean",
        context_vectors: torch.Tensor | None = None,
        history: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(words, vectors, counts, context_vectors=context_vectors, history=history)
        self.ngram_vectors = torch.as_tensor(ngram_vectors).detach().float()
        self.n_min, self.n_max, self.combine = n_min, n_max, combine

    @property
    def buckets(self) -> int:
        return self.ngram_vectors.shape[0]

    def get_vector(self, word: str, *, norm: bool = False) -> torch.Tensor:
        if word in self.key_to_index:
            return super().get_vector(word, norm=norm)
        rows = sorted({ngram_bucket(g, self.buckets) for g in char_ngrams(word, self.n_min, self.n_max)})
        if not rows:
            return torch.zeros(self.dim)
        v = self.ngram_vectors[rows].sum(0)
        if self.combine == "mean":
            v = v / len(rows)
        return F.normalize(v, dim=0) if norm else v

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {
            "ngram_vectors": self.ngram_vectors.cpu().numpy(),
            "n_min": np.array(self.n_min),
            "n_max": np.array(self.n_max),
            "combine": np.array(self.combine),
        }


# ============================================================================================
# the training engine shared by word2vec, FastText and doc2vec
# ============================================================================================
class _SGNSEngine:
    """Two tables and the batched negative-sampling SGD step.

    ``W_in`` (R, d): input rows (words, or words + n-gram buckets, or words + documents);
    ``W_out`` (V, d): context vectors of the V vocabulary words. An example is a *bag* of input
    rows (padded with -1) whose combination (mean, or sum) ``h`` predicts a target word against
    ``k`` noise words. Skip-gram: bag = [center]; CBOW: bag = context words; FastText: bag =
    the word's subword rows; PV-DM: bag = [document] + context words; PV-DBOW: bag = [document].
    """

    def __init__(self, rows: int, vocab: int, dim: int, noise: np.ndarray, device: torch.device, seed: int) -> None:
        self.device = device
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        init = (torch.rand(rows, dim, generator=self.gen, device=device) - 0.5) / dim  # word2vec's init
        self.W_in = init
        self.W_out = torch.zeros(vocab, dim, device=device)
        self.sampler = AliasSampler(noise, device=device)

    def step(
        self,
        bag: torch.Tensor,
        targets: torch.Tensor,
        negatives: torch.Tensor,
        lr: float,
        *,
        owner: torch.Tensor | None = None,
        shared_negatives: bool = False,
        combine: str = "mean",
        spread: str = "full",
        frozen_below: int = 0,
        update_out: bool = True,
    ) -> float:
        """One SGD step on a mini-batch; returns the summed SGNS loss.

        bag: (B, L) int64 input rows, -1 = padding; targets: (P,) words to predict. ``owner=None``:
        one target per bag (P = B) and negatives (B, k). ``owner`` (P,) in [0, B): the bag each
        target belongs to (skip-gram grouped by central word: the bag's ``h`` is gathered and its
        gradient scattered once for all its context words); negatives are then (P, k), fresh per
        target (word2vec), or, with ``shared_negatives``, (B, k), shared by every target of the bag
        (Ji et al. 2016). Each (target, noise word) pair counts once, except where the noise word
        *is* that target (word2vec skips it); the returned loss is weighted the same way.
        The gradient ``g`` w.r.t. ``h`` is added to *every* row of the bag (``spread="full"``: word2vec's
        CBOW, fastText; with a mean, ``h`` then moves by exactly ``g``), or ``g / |bag|``
        (``spread="mean"``, the exact gradient of the mean). Rows below ``frozen_below`` are not
        updated (inference of new document vectors).
        """
        W_in, W_out = self.W_in, self.W_out
        B, L = bag.shape
        d = W_in.shape[1]
        k = negatives.shape[1]
        if L == 1:
            rows = bag[:, 0]
            h = W_in.index_select(0, rows)
            seg = None
            count = None
        else:
            mask = bag >= 0
            rows = bag[mask]
            seg = torch.arange(B, device=bag.device).unsqueeze(1).expand(B, L)[mask]
            h = torch.zeros(B, d, device=W_in.device).index_add_(0, seg, W_in.index_select(0, rows))
            count = mask.sum(1).clamp_min(1).to(h.dtype).unsqueeze(1)
            if combine == "mean":
                h = h / count
        h_t = h if owner is None else h.index_select(0, owner)  # (P, d)
        shared = shared_negatives and owner is not None
        if negatives.shape[0] != (B if shared else targets.shape[0]):
            raise ValueError(
                f"negatives must be ({B if shared else targets.shape[0]}, k): one row per "
                f"{'bag' if shared else 'target'}, got {tuple(negatives.shape)}"
            )
        if shared:
            # weight of (bag, noise word): the bag's targets that differ from it
            per_bag = torch.bincount(owner, minlength=B).to(h.dtype).unsqueeze(1)
            same = (negatives.index_select(0, owner) == targets.unsqueeze(1)).to(h.dtype)
            weight = per_bag - torch.zeros(B, k, dtype=h.dtype, device=h.device).index_add_(0, owner, same)
            h_n = h
        else:
            weight = (negatives != targets.unsqueeze(1)).to(h.dtype)  # word2vec skips a noise word equal to the target
            h_n = h_t
        u_t = W_out.index_select(0, targets)  # (P, d)
        u_n = W_out.index_select(0, negatives.reshape(-1)).view(-1, k, d)  # (P or B, k, d)
        s_t = torch.linalg.vecdot(u_t, h_t)
        s_n = torch.linalg.vecdot(u_n, h_n.unsqueeze(1))
        loss = float(F.softplus(-s_t).sum() + (F.softplus(s_n) * weight).sum())
        g_t = torch.sigmoid(s_t).sub_(1.0).mul_(-lr)  # gradient *ascent* on the objective = descent on the loss
        g_n = torch.sigmoid(s_n).mul_(weight).mul_(-lr)
        gh_n = torch.bmm(g_n.unsqueeze(1), u_n).squeeze(1)  # (P or B, d)
        gh_t = g_t.unsqueeze(1) * u_t
        if owner is None:
            gh = gh_t.add_(gh_n)
        elif shared:
            gh = gh_n.index_add_(0, owner, gh_t)
        else:
            gh = torch.zeros_like(h).index_add_(0, owner, gh_t.add_(gh_n))
        if update_out:
            W_out.index_add_(0, targets, g_t.unsqueeze(1) * h_t)
            W_out.index_add_(0, negatives.reshape(-1), (g_n.unsqueeze(2) * h_n.unsqueeze(1)).view(-1, d))
        if seg is None:
            upd_rows, upd = rows, gh
        else:
            if spread == "mean":
                gh = gh / count
            upd_rows, upd = rows, gh.index_select(0, seg)
        if frozen_below:
            keep = upd_rows >= frozen_below
            upd_rows, upd = upd_rows[keep], upd[keep]
        W_in.index_add_(0, upd_rows, upd)
        return loss


def _encode_corpus(corpus: Iterable[Sequence[str]], vocab: Vocab) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat ids and sentence index of the in-vocabulary words; also the raw word count."""
    parts, raw = [], 0
    for tokens in corpus:
        raw += len(tokens)
        parts.append(vocab.encode(tokens))
    ids, sent = _as_sentences(parts) if parts else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    return ids, sent, raw


def _check_corpus(corpus: Any) -> list[Sequence[str]]:
    if isinstance(corpus, str):
        raise TypeError("corpus must be a sequence of tokenised sentences (lists of str), not a str")
    corpus = list(corpus)
    if corpus and isinstance(corpus[0], str):
        raise TypeError("corpus must be a sequence of tokenised sentences (lists of str), not of str")
    return corpus


def _chunks(sent: np.ndarray, chunk_tokens: int) -> list[tuple[int, int]]:
    """[start, end) token ranges of about chunk_tokens that end on sentence boundaries."""
    n = sent.size
    if n == 0:
        return []
    bounds = np.flatnonzero(np.diff(sent)) + 1  # first token of each new sentence
    out, start = [], 0
    while start < n:
        target = start + chunk_tokens
        if target >= n:
            out.append((start, n))
            break
        k = np.searchsorted(bounds, target)
        end = int(bounds[k]) if k < bounds.size else n
        out.append((start, end))
        start = end
    return out


class _Progress:
    """Linear learning-rate decay over all words and a tqdm bar with words/s."""

    def __init__(self, total_words: int, lr: float, min_lr: float, progress: bool, desc: str) -> None:
        self.total, self.done = max(total_words, 1), 0
        self.lr0, self.min_lr = lr, min_lr
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_words, unit="word", unit_scale=True, desc=desc, smoothing=0.1)

    def lr(self, extra: float = 0.0) -> float:
        frac = min((self.done + extra) / self.total, 1.0)
        return max(self.lr0 - (self.lr0 - self.min_lr) * frac, self.min_lr)

    def advance(self, words: int, loss: float | None = None) -> None:
        self.done += words
        if self.bar is not None:
            self.bar.update(words)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{self.lr():.4g}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Threads:
    def __init__(self, workers: int | None) -> None:
        self.workers, self.old = workers, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.workers is not None:
            if self.workers < 1:
                raise ValueError(f"workers must be >= 1, got {self.workers}")
            torch.set_num_threads(self.workers)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.old)


def _default_batch(batch_size: int | None, device: torch.device) -> int:
    if batch_size is None:
        return 1024 if device.type == "cpu" else 16384
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size


def _grouped_order(owner: np.ndarray, n_bags: int, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets sorted by bag (``owner`` non-decreasing), bags permuted by ``perm``: the order of
    the targets that keeps each bag's targets together in the new bag order, and the offsets
    (n_bags + 1,) of each new bag's targets."""
    counts = np.bincount(owner, minlength=n_bags)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    new_counts = counts[perm]
    offsets = np.concatenate([[0], np.cumsum(new_counts)])
    order = np.repeat(starts[perm] - offsets[:-1], new_counts) + np.arange(offsets[-1])
    return order, offsets


def _run_epochs(
    engine: _SGNSEngine,
    ids: np.ndarray,
    sent: np.ndarray,
    keep_prob: np.ndarray | None,
    make_examples: Callable[..., tuple[torch.Tensor, ...]],
    *,
    epochs: int,
    negative: int,
    lr: float,
    min_lr: float,
    batch_size: int,
    rng: np.random.Generator,
    progress: bool,
    desc: str,
    chunk_tokens: int = 100_000,
    step_kwargs: dict[str, Any] | None = None,
    extra_ids: np.ndarray | None = None,
    shared_negatives: bool = False,
) -> dict[str, Any]:
    """The epoch loop shared by every model: subsample, build examples per chunk, shuffle, step.

    ``make_examples`` returns ``(bags, targets)`` (one target per bag) or ``(bags, targets, owner)``
    with ``owner`` (P,) numpy, non-decreasing: the bag of each target (skip-gram grouped by central
    word). Grouped bags are shuffled with their targets, and a step takes as many bags as hold about
    ``batch_size`` targets; ``shared_negatives`` then draws k noise words per bag instead of per target.
    """
    step_kwargs = step_kwargs or {}
    bar = _Progress(epochs * ids.size, lr, min_lr, progress, desc)
    losses, words_at = [], []
    start = time.perf_counter()
    dev = engine.device
    try:
        for _ in range(epochs):
            for a, b in _chunks(sent, chunk_tokens):
                cid, csent = ids[a:b], sent[a:b]
                cextra = None if extra_ids is None else extra_ids[a:b]
                if keep_prob is not None:
                    keep = rng.random(cid.size) < keep_prob[cid]
                    cid, csent = cid[keep], csent[keep]
                    cextra = None if cextra is None else cextra[keep]
                bags, targets, *grouping = make_examples(cid, csent, rng, cextra)
                n = bags.shape[0]
                chunk_words = b - a
                if n == 0 or targets.shape[0] == 0:
                    bar.advance(chunk_words)
                    continue
                perm = rng.permutation(n)
                bags = bags[torch.from_numpy(perm).to(dev)]
                if grouping:
                    order, offsets = _grouped_order(grouping[0], n, perm)
                    targets = targets[torch.from_numpy(order).to(dev)]
                    owner = torch.from_numpy(np.repeat(np.arange(n), np.diff(offsets))).to(dev)
                    per_step = max(1, round(batch_size * n / targets.shape[0]))  # bags of ~batch_size targets
                    negs = engine.sampler.sample(
                        (n if shared_negatives else targets.shape[0], negative), generator=engine.gen
                    )
                else:
                    targets = targets[torch.from_numpy(perm).to(dev)]
                    offsets, owner, per_step = None, None, batch_size
                    negs = engine.sampler.sample((n, negative), generator=engine.gen)
                total_loss = 0.0
                for s in range(0, n, per_step):
                    e = min(s + per_step, n)
                    rate = bar.lr(chunk_words * s / n)
                    if offsets is None:
                        total_loss += engine.step(bags[s:e], targets[s:e], negs[s:e], rate, **step_kwargs)
                        continue
                    ts, te = int(offsets[s]), int(offsets[e])
                    total_loss += engine.step(
                        bags[s:e], targets[ts:te], negs[s:e] if shared_negatives else negs[ts:te], rate,
                        owner=owner[ts:te] - s, shared_negatives=shared_negatives, **step_kwargs,
                    )  # fmt: skip
                mean_loss = total_loss / targets.shape[0]
                losses.append(mean_loss)
                bar.advance(chunk_words, mean_loss)
                words_at.append(bar.done)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return {"loss": losses, "words": words_at, "seconds": seconds, "words_per_s": bar.done / max(seconds, 1e-9)}


def _resolve_device(device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def _check_common(dim: int, window: int, negative: int, epochs: int, lr: float) -> None:
    if dim < 1 or window < 1 or negative < 1 or epochs < 1:
        raise ValueError(f"dim, window, negative and epochs must be >= 1, got {dim}, {window}, {negative}, {epochs}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")


def _skipgram_maker(window: int, device: torch.device):
    def make(
        cid: np.ndarray, csent: np.ndarray, rng: np.random.Generator, _: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Bags = the central words that have a context (B, 1), targets = their context words
        (P,) grouped by central word, owner (P,) = the bag of each target."""
        b = rng.integers(1, window + 1, size=cid.size)
        c, o = _pair_positions(csent, b, window)
        order = np.argsort(c, kind="stable")
        c, o = c[order], o[order]
        centers, owner = np.unique(c, return_inverse=True)
        bags = torch.from_numpy(cid[centers]).to(device).unsqueeze(1)
        return bags, torch.from_numpy(cid[o]).to(device), owner.reshape(-1)

    return make


def _cbow_maker(window: int, device: torch.device):
    def make(
        cid: np.ndarray, csent: np.ndarray, rng: np.random.Generator, _: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b = rng.integers(1, window + 1, size=cid.size)
        centers, slots = _cbow_positions(csent, b, window)
        ctx = np.where(slots >= 0, cid[np.maximum(slots, 0)], -1)
        return torch.from_numpy(ctx).to(device), torch.from_numpy(cid[centers]).to(device)

    return make


def train_word2vec(
    corpus: Sequence[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    min_count: int = 5,
    epochs: int = 5,
    lr: float | None = None,
    batch_size: int | None = None,
    mode: str = "skipgram",
    device: torch.device | str | None = None,
    workers: int | None = None,
    *,
    sample: float = 1e-3,
    min_lr: float = 1e-4,
    max_vocab: int | None = None,
    ns_exponent: float = 0.75,
    shared_negatives: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> KeyedVectors:
    """Train word2vec with negative sampling (skip-gram or CBOW) on tokenised sentences.

    corpus: sentences as lists of tokens. The vocabulary keeps words seen ``min_count`` times
    (at most ``max_vocab``); each epoch keeps a word occurrence with probability
    :func:`subsample_keep_prob` ``(t=sample, formula="word2vec")`` (``sample=0`` turns it off),
    then draws a dynamic window per central word (:func:`skipgram_pairs` / :func:`cbow_examples`).
    Skip-gram: each (center, context) pair is one example; CBOW: the mean of the context vectors
    predicts the center, and its gradient is added in full to every context word (word2vec's C
    code). ``negative`` noise words per example from :func:`noise_distribution` ``(ns_exponent)``
    via :class:`AliasSampler`, fresh for every pair as in word2vec's C code. Skip-gram steps group
    the pairs by central word (its vector is read and updated once per step for all its contexts).
    ``shared_negatives=True`` draws the ``negative`` noise words once per central word for all its
    context words instead (Ji et al. 2016, "Parallelizing Word2Vec in Shared and Distributed
    Memory"): every pair still sees ``negative`` noise words, but about 3x fewer rows of ``v'`` are
    read and written per pair: about twice the speed on a CPU, at some cost in analogy accuracy
    (``benchmarks/word2vec_gensim.py``). ``lr`` (default 0.025 skip-gram, 0.05 CBOW, as word2vec) decays
    linearly to ``min_lr``. ``batch_size`` examples per step (default 1024 on a CPU, 16384 on an
    accelerator); ``workers`` = torch threads during training (restored afterwards); ``device``
    default CPU. Returns :class:`KeyedVectors` (central vectors ``v``; ``context_vectors`` = ``v'``;
    ``history`` with the loss per chunk and words/s). ``progress=False`` hides the tqdm bar.
    """
    if mode not in ("skipgram", "cbow"):
        raise ValueError(f"mode must be 'skipgram' or 'cbow', got {mode!r}")
    lr = (0.025 if mode == "skipgram" else 0.05) if lr is None else lr
    _check_common(dim, window, negative, epochs, lr)
    corpus = _check_corpus(corpus)
    vocab = Vocab.build(corpus, min_count=min_count, max_size=max_vocab)
    if len(vocab) == 0:
        raise ValueError(f"no word occurs min_count={min_count} times in the corpus")
    ids, sent, _ = _encode_corpus(corpus, vocab)
    dev = _resolve_device(device)
    bs = _default_batch(batch_size, dev)
    rng = np.random.default_rng(seed)
    keep = subsample_keep_prob(vocab.counts, sample) if sample > 0 else None
    with _Threads(workers):
        engine = _SGNSEngine(len(vocab), len(vocab), dim, noise_distribution(vocab.counts, ns_exponent), dev, seed)
        maker = _skipgram_maker(window, dev) if mode == "skipgram" else _cbow_maker(window, dev)
        history = _run_epochs(
            engine, ids, sent, keep, maker, epochs=epochs, negative=negative, lr=lr, min_lr=min_lr,
            batch_size=bs, rng=rng, progress=progress, desc=f"word2vec {mode}", shared_negatives=shared_negatives,
        )  # fmt: skip
    history.update(
        mode=mode, dim=dim, window=window, negative=negative, epochs=epochs, shared_negatives=shared_negatives,
        threads=workers or torch.get_num_threads(),
    )  # fmt: skip
    return KeyedVectors(
        vocab.itos, engine.W_in.cpu(), vocab.counts, context_vectors=engine.W_out.cpu(), history=history
    )


def _subword_table(words: Sequence[str], n_min: int, n_max: int, buckets: int) -> torch.Tensor:
    """(V + 1, G) int64: row w = [w, V + bucket(g) for g in n-grams(w)] padded with -1; the last
    row is all -1 (so a padding id -1 maps to an empty bag)."""
    V = len(words)
    rows = [
        [i] + sorted({V + ngram_bucket(g, buckets) for g in char_ngrams(w, n_min, n_max)}) for i, w in enumerate(words)
    ]
    width = max((len(r) for r in rows), default=1)
    table = torch.full((V + 1, width), -1, dtype=torch.int64)
    for i, r in enumerate(rows):
        table[i, : len(r)] = torch.tensor(r)
    return table


def train_fasttext(
    corpus: Sequence[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    min_count: int = 5,
    epochs: int = 5,
    lr: float | None = None,
    batch_size: int | None = None,
    mode: str = "skipgram",
    device: torch.device | str | None = None,
    workers: int | None = None,
    *,
    n_min: int = 3,
    n_max: int = 6,
    buckets: int = 200_000,
    combine: str = "mean",
    sample: float = 1e-3,
    min_lr: float = 1e-4,
    max_vocab: int | None = None,
    ns_exponent: float = 0.75,
    shared_negatives: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> FastTextKeyedVectors:
    """Train FastText (skip-gram or CBOW with negative sampling over subword vectors).

    A word's input vector combines its own row and the rows of its distinct character n-grams
    (``n_min..n_max``, :func:`char_ngrams`, hashed into ``buckets`` rows by :func:`ngram_bucket`):
    the mean (``combine="mean"``, the fastText library and gensim) or the sum (``"sum"``, the paper's
    ``z_w = sum_i v_{t_i}``). The gradient of that vector is added to each of its rows (fastText).
    CBOW's bag is the union of its context words' subwords. Skip-gram steps group the pairs by
    central word, so its n-gram rows are combined and updated once per step, and
    ``shared_negatives`` is as in :func:`train_word2vec`. fastText uses 2,000,000 buckets;
    the default 200,000 keeps the table at 80 MB for d = 100. Everything else as
    :func:`train_word2vec`. Returns :class:`FastTextKeyedVectors` (vectors for unseen words too).
    """
    if mode not in ("skipgram", "cbow"):
        raise ValueError(f"mode must be 'skipgram' or 'cbow', got {mode!r}")
    if combine not in ("mean", "sum"):
        raise ValueError(f"combine must be 'mean' or 'sum', got {combine!r}")
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    lr = (0.025 if mode == "skipgram" else 0.05) if lr is None else lr
    _check_common(dim, window, negative, epochs, lr)
    corpus = _check_corpus(corpus)
    vocab = Vocab.build(corpus, min_count=min_count, max_size=max_vocab)
    if len(vocab) == 0:
        raise ValueError(f"no word occurs min_count={min_count} times in the corpus")
    ids, sent, _ = _encode_corpus(corpus, vocab)
    dev = _resolve_device(device)
    bs = _default_batch(batch_size, dev)
    rng = np.random.default_rng(seed)
    keep = subsample_keep_prob(vocab.counts, sample) if sample > 0 else None
    V = len(vocab)
    table = _subword_table(vocab.itos, n_min, n_max, buckets).to(dev)
    sizes = (table >= 0).sum(1)

    def expand(words_bag: torch.Tensor) -> torch.Tensor:
        """(B, L) word ids (-1 pad) -> (B, L') subword rows (-1 pad), trimmed to the widest row."""
        sub = table[words_bag].reshape(words_bag.shape[0], -1)
        width = int((sub >= 0).sum(1).max()) if sub.numel() else 1
        order = torch.argsort((sub < 0).to(torch.int8), dim=1, stable=True)
        return torch.gather(sub, 1, order)[:, : max(width, 1)]

    make = _skipgram_maker(window, dev) if mode == "skipgram" else _cbow_maker(window, dev)

    with _Threads(workers):
        engine = _SGNSEngine(V + buckets, V, dim, noise_distribution(vocab.counts, ns_exponent), dev, seed)
        if mode == "skipgram":
            # the bag of a center word is its table row: expand per batch inside the step
            step = engine.step

            def step_sub(bag: torch.Tensor, targets: torch.Tensor, negs: torch.Tensor, rate: float, **kw: Any) -> float:
                rows = table[bag[:, 0]]
                width = int(sizes[bag[:, 0]].max())
                return step(rows[:, :width], targets, negs, rate, combine=combine, **kw)

        else:
            step = engine.step

            def step_sub(bag: torch.Tensor, targets: torch.Tensor, negs: torch.Tensor, rate: float, **kw: Any) -> float:
                return step(expand(bag), targets, negs, rate, combine=combine)

        engine.step = step_sub  # type: ignore[method-assign]
        history = _run_epochs(
            engine, ids, sent, keep, make, epochs=epochs, negative=negative, lr=lr, min_lr=min_lr,
            batch_size=bs, rng=rng, progress=progress, desc=f"fasttext {mode}", shared_negatives=shared_negatives,
        )  # fmt: skip
    history.update(
        mode=mode, dim=dim, window=window, negative=negative, epochs=epochs, buckets=buckets,
        shared_negatives=shared_negatives,
    )  # fmt: skip
    W_in = engine.W_in.cpu()
    table_cpu = table[:V].cpu()
    mask = table_cpu >= 0
    composed = torch.zeros(V, dim).index_add_(
        0, torch.arange(V).unsqueeze(1).expand_as(table_cpu)[mask], W_in[table_cpu[mask]]
    )
    if combine == "mean":
        composed /= mask.sum(1, keepdim=True).float()
    return FastTextKeyedVectors(
        vocab.itos,
        composed,
        vocab.counts,
        ngram_vectors=W_in[V:].clone(),
        n_min=n_min,
        n_max=n_max,
        combine=combine,
        context_vectors=engine.W_out.cpu(),
        history=history,
    )


# ============================================================================================
# doc2vec
# ============================================================================================
class Doc2Vec:
    """Paragraph vectors (Le & Mikolov 2014) with negative sampling.

    ``mode="dm"`` (PV-DM): the mean of the document's vector and the context words' vectors
    predicts the central word. ``mode="dbow"`` (PV-DBOW): the document vector alone predicts
    each of its words (``dbow_words=True`` also trains skip-gram word vectors alongside, like
    gensim's ``dbow_words=1``). After :meth:`fit`: ``dv`` (N, d) document vectors, ``wv``
    :class:`KeyedVectors` of the words (those of PV-DBOW stay random unless ``dbow_words``).
    :meth:`infer_vector` trains a vector for a new document with the word and context tables
    frozen. Both remain bags of words within the window: word order beyond it is lost.
    """

    def __init__(
        self,
        dim: int = 100,
        mode: str = "dm",
        window: int = 5,
        negative: int = 5,
        min_count: int = 2,
        epochs: int = 20,
        lr: float = 0.025,
        *,
        min_lr: float = 1e-4,
        sample: float = 1e-3,
        batch_size: int | None = None,
        dbow_words: bool = False,
        ns_exponent: float = 0.75,
        seed: int = 0,
        device: torch.device | str | None = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> None:
        if mode not in ("dm", "dbow"):
            raise ValueError(f"mode must be 'dm' or 'dbow', got {mode!r}")
        _check_common(dim, window, negative, epochs, lr)
        self.dim, self.mode, self.window, self.negative = dim, mode, window, negative
        self.min_count, self.epochs, self.lr, self.min_lr, self.sample = min_count, epochs, lr, min_lr, sample
        self.dbow_words, self.ns_exponent, self.seed = dbow_words, ns_exponent, seed
        self.device = _resolve_device(device)
        self.batch_size = _default_batch(batch_size, self.device)
        self.workers, self.progress = workers, progress
        self.vocab: Vocab | None = None
        self.dv: torch.Tensor | None = None
        self.wv: KeyedVectors | None = None
        self.history: dict[str, Any] = {}
        self._engine: _SGNSEngine | None = None
        self._keep: np.ndarray | None = None

    def _maker(self, V: int, doc_offset: int):
        """Examples of a chunk whose tokens carry their document id (sentence index = document)."""
        window, dev, mode, dbow_words = self.window, self.device, self.mode, self.dbow_words

        def make(cid: np.ndarray, csent: np.ndarray, rng: np.random.Generator, doc: np.ndarray):
            if mode == "dbow":
                bags = [doc_offset + doc]
                targets = [cid]
                if dbow_words:
                    b = rng.integers(1, window + 1, size=cid.size)
                    c, o = _pair_positions(csent, b, window)
                    bags.append(cid[c])
                    targets.append(cid[o])
                bag = torch.from_numpy(np.concatenate(bags)).to(dev).unsqueeze(1)
                return bag, torch.from_numpy(np.concatenate(targets)).to(dev)
            b = rng.integers(1, window + 1, size=cid.size)
            pos = np.arange(cid.size)
            # every word is a center: its bag is [document] + its context words (maybe none)
            slots = np.full((cid.size, 2 * window), -1, dtype=np.int64)
            for s, j in enumerate([*range(-window, 0), *range(1, window + 1)]):
                q = pos + j
                ok = (q >= 0) & (q < cid.size) & (abs(j) <= b)
                ok[ok] &= csent[q[ok]] == csent[ok]
                slots[ok, s] = q[ok]
            ctx = np.where(slots >= 0, cid[np.maximum(slots, 0)], -1)
            bag = np.concatenate([(doc_offset + doc)[:, None], ctx], 1)
            return torch.from_numpy(bag).to(dev), torch.from_numpy(cid).to(dev)

        return make

    def fit(self, documents: Sequence[Sequence[str]]) -> Doc2Vec:
        """Learn word and document vectors from tokenised documents (document ``i`` -> ``dv[i]``)."""
        documents = _check_corpus(documents)
        vocab = Vocab.build(documents, min_count=self.min_count)
        if len(vocab) == 0:
            raise ValueError(f"no word occurs min_count={self.min_count} times in the documents")
        ids, doc, _ = _encode_corpus(documents, vocab)
        V, N = len(vocab), len(documents)
        rng = np.random.default_rng(self.seed)
        keep = subsample_keep_prob(vocab.counts, self.sample) if self.sample > 0 else None
        with _Threads(self.workers):
            engine = _SGNSEngine(
                V + N, V, self.dim, noise_distribution(vocab.counts, self.ns_exponent), self.device, self.seed
            )
            self.history = _run_epochs(
                engine, ids, doc, keep, self._maker(V, V), epochs=self.epochs, negative=self.negative, lr=self.lr,
                min_lr=self.min_lr, batch_size=self.batch_size, rng=rng, progress=self.progress,
                desc=f"doc2vec {self.mode}", extra_ids=doc,
            )  # fmt: skip
        self.vocab, self._engine, self._keep = vocab, engine, keep
        self.dv = engine.W_in[V:].cpu().clone()
        self.wv = KeyedVectors(
            vocab.itos, engine.W_in[:V].cpu().clone(), vocab.counts, context_vectors=engine.W_out.cpu()
        )
        return self

    def infer_vector(
        self, tokens: Sequence[str], epochs: int | None = None, lr: float | None = None, seed: int = 0
    ) -> torch.Tensor:
        """A (d,) vector for a new document: a fresh row trained on ``tokens`` (unknown words
        dropped, frequent words subsampled as in training) for ``epochs`` (default: the training
        epochs), learning rate decaying from ``lr`` (default: the training one), every other weight frozen."""
        if self._engine is None or self.vocab is None:
            raise RuntimeError("call fit() before infer_vector()")
        eng, V = self._engine, len(self.vocab)
        ids = self.vocab.encode(tokens)
        gen = torch.Generator(device=eng.device)
        gen.manual_seed(seed)
        new = (torch.rand(1, self.dim, generator=gen, device=eng.device) - 0.5) / self.dim
        if ids.size == 0:
            return new[0].cpu()
        # a small engine view: the word rows (frozen), one new document row, the frozen context table
        view = _SGNSEngine.__new__(_SGNSEngine)
        view.device, view.gen, view.sampler = eng.device, gen, eng.sampler
        view.W_in = torch.cat([eng.W_in[:V], new])
        view.W_out = eng.W_out
        rng = np.random.default_rng(seed)
        epochs = epochs or self.epochs
        lr0 = lr or self.lr
        make = self._maker(V, V)
        sent = np.zeros(ids.size, np.int64)
        for ep in range(epochs):
            rate = lr0 - (lr0 - self.min_lr) * ep / epochs
            kept = ids if self._keep is None else ids[rng.random(ids.size) < self._keep[ids]]  # as in training
            if kept.size == 0:
                continue
            zeros = sent[: kept.size]
            bag, targets = make(kept, zeros, rng, zeros)
            if self.mode == "dbow" and self.dbow_words:
                bag, targets = bag[: kept.size], targets[: kept.size]
            negs = view.sampler.sample((targets.shape[0], self.negative), generator=gen)
            for s in range(0, targets.shape[0], self.batch_size):
                e = s + self.batch_size
                view.step(bag[s:e], targets[s:e], negs[s:e], rate, frozen_below=V, update_out=False)
        return view.W_in[V].cpu().clone()

    def most_similar(self, vector: torch.Tensor | int, topn: int = 10) -> list[tuple[int, float]]:
        """Training documents nearest (cosine) to a vector or to document ``i``: ``[(i, cos), ...]``."""
        if self.dv is None:
            raise RuntimeError("call fit() before most_similar()")
        unit = F.normalize(self.dv, dim=1)
        if isinstance(vector, int):
            q, exclude = unit[vector], vector
        else:
            q, exclude = F.normalize(torch.as_tensor(vector, dtype=torch.float32), dim=0), None
        sims = unit @ q
        if exclude is not None:
            sims[exclude] = -math.inf
        vals, idx = torch.topk(sims, min(topn, sims.numel() - (exclude is not None)))
        return list(zip(idx.tolist(), vals.tolist()))


# ============================================================================================
# text features
# ============================================================================================
def average_embeddings(
    token_lists: Sequence[Sequence[str]],
    vectors: KeyedVectors,
    weights: Mapping[str, float] | None = None,
    *,
    normalize: bool = False,
) -> torch.Tensor:
    """Text features: the (weighted) mean of each text's word vectors, ``(N, d)`` float32.

    ``feature(text) = sum_w a_w v_w / sum_w a_w`` over the text's known words (``a_w = 1``, or
    ``weights[w]``, e.g. IDF or SIF weights; words missing from ``weights`` weigh 1). Unknown words
    are skipped — except with :class:`FastTextKeyedVectors`, which give them n-gram vectors.
    A text with no usable word gives zeros. ``normalize=True`` uses unit word vectors.
    """
    fast = isinstance(vectors, FastTextKeyedVectors)
    table = vectors.unit_vectors if normalize else vectors.vectors
    out = torch.zeros(len(token_lists), vectors.dim)
    for i, tokens in enumerate(token_lists):
        if isinstance(tokens, str):
            raise TypeError("token_lists must hold token sequences, not strings (tokenize them first)")
        known = [t for t in tokens if t in vectors.key_to_index]
        rows: list[torch.Tensor] = []
        ws: list[float] = []
        if known:
            rows.append(table[[vectors.key_to_index[t] for t in known]])
            ws += [1.0 if weights is None else float(weights.get(t, 1.0)) for t in known]
        if fast:
            unknown = [t for t in tokens if t not in vectors.key_to_index]
            if unknown:
                rows.append(torch.stack([vectors.get_vector(t, norm=normalize) for t in unknown]))
                ws += [1.0 if weights is None else float(weights.get(t, 1.0)) for t in unknown]
        if not rows:
            continue
        w = torch.tensor(ws)
        if w.sum() > 0:
            out[i] = (w.unsqueeze(1) * torch.cat(rows)).sum(0) / w.sum()
    return out


# ============================================================================================
# Kim's sentence CNN
# ============================================================================================
class TextCNN(nn.Module):
    """Kim (2014): embeddings -> 1-D convolutions of widths ``kernel_sizes`` (``num_filters``
    each, ReLU) -> max over time -> dropout -> linear layer to ``num_classes`` logits.

    ``mode``: ``"rand"`` (embeddings ``U(-0.25, 0.25)``, trained), ``"static"`` (``pretrained``,
    frozen), ``"non-static"`` (``pretrained``, fine-tuned), ``"multichannel"`` (two copies of
    ``pretrained``, one frozen and one fine-tuned; each filter is applied to both channels and the
    results added). ``pretrained``: (vocab_size, embed_dim). Row ``padding_idx`` is zero and never
    updated. Input ``tokens`` (B, L) int64 -> logits (B, num_classes); sentences shorter than the
    widest filter are padded.
    """

    MODES = ("rand", "static", "non-static", "multichannel")

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_classes: int,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        num_filters: int = 100,
        dropout: float = 0.5,
        mode: str = "rand",
        pretrained: torch.Tensor | None = None,
        *,
        padding_idx: int | None = 0,
    ) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if vocab_size < 1 or embed_dim < 1 or num_classes < 1 or num_filters < 1:
            raise ValueError("vocab_size, embed_dim, num_classes and num_filters must be >= 1")
        if not kernel_sizes or any(k < 1 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive ints, got {kernel_sizes}")
        if mode != "rand":
            if pretrained is None:
                raise ValueError(f"mode {mode!r} needs pretrained embeddings of shape ({vocab_size}, {embed_dim})")
            pretrained = torch.as_tensor(pretrained, dtype=torch.float32)
            if pretrained.shape != (vocab_size, embed_dim):
                raise ValueError(f"pretrained must be ({vocab_size}, {embed_dim}), got {tuple(pretrained.shape)}")
        self.mode, self.padding_idx = mode, padding_idx
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if mode == "rand":
            weight = torch.empty(vocab_size, embed_dim).uniform_(-0.25, 0.25)
        else:
            weight = pretrained.clone()  # type: ignore[union-attr]
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx, _weight=weight.clone())
        self.embedding.weight.requires_grad_(mode in ("rand", "non-static", "multichannel"))
        self.static_embedding: nn.Embedding | None = None
        if mode == "multichannel":
            self.static_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx, _weight=weight.clone())
            self.static_embedding.weight.requires_grad_(False)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters * len(self.kernel_sizes), num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, L) int64, got shape {tuple(tokens.shape)}")
        width = max(self.kernel_sizes)
        if tokens.shape[1] < width:
            pad = 0 if self.padding_idx is None else self.padding_idx
            tokens = F.pad(tokens, (0, width - tokens.shape[1]), value=pad)
        channels = [self.embedding(tokens).transpose(1, 2)]  # (B, d, L)
        if self.static_embedding is not None:
            channels.append(self.static_embedding(tokens).transpose(1, 2))
        pooled = []
        for conv in self.convs:
            z = conv(channels[0])
            for extra in channels[1:]:
                z = z + F.conv1d(extra, conv.weight)  # same filter on the second channel, bias once
            pooled.append(F.relu(z).amax(dim=2))
        return self.fc(self.dropout(torch.cat(pooled, 1)))

    @torch.no_grad()
    def constrain_norm_(self, max_norm: float = 3.0) -> None:
        """Kim's l2 constraint: rescale each output unit's weight row to norm <= ``max_norm``."""
        self.fc.weight.copy_(torch.renorm(self.fc.weight, 2, 0, max_norm))
