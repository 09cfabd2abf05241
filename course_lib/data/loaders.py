"""The course's dataset loaders: verified files (:func:`course_lib.data.store.fetch`) + pure parsers.

Every loader takes ``download`` (keyword): ``False`` forbids network access, as does the
environment variable ``COURSE_DATA_OFFLINE=1``. Files are looked up in ``$COURSE_DATA_DIR`` (the
cache), then in the local mirror, then downloaded and verified (see :mod:`course_lib.data.store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from course_lib.data.parsers import (
    PLANETOID_PARTS,
    PlanetoidData,
    parse_brown_zip,
    parse_conllu,
    parse_idx,
    parse_movielens_genres,
    parse_movielens_items,
    parse_movielens_ratings,
    parse_mr_polarity,
    parse_olivetti_mat,
    parse_planetoid,
)
from course_lib.data.store import fetch, read_bytes


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


def _idx_pair(dataset: str, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    _check_choice("split", split, ("train", "test"))
    prefix = "train" if split == "train" else "t10k"
    images = parse_idx(fetch(f"{dataset}/{prefix}-images-idx3-ubyte.gz", download=download))
    labels = parse_idx(fetch(f"{dataset}/{prefix}-labels-idx1-ubyte.gz", download=download))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{dataset} {split}: images {images.shape} and labels {labels.shape} do not match")
    return images.astype(np.uint8, copy=False), labels.astype(np.int64)


def load_mnist(split: str = "train", *, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits (LeCun et al., 1998).

    ``split``: ``"train"`` (60,000 images) or ``"test"`` (10,000).
    Returns ``(images, labels)``: images (N, 28, 28) uint8 in 0..255 (white digit on black),
    labels (N,) int64 in 0..9.
    """
    return _idx_pair("mnist", split, download)


def load_fashion_mnist(split: str = "train", *, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Xiao et al., 2017), same format and shapes as :func:`load_mnist`.

    Not in the offline mirror (its image files are too large): needs the cache or a download.
    Classes 0..9: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.
    """
    return _idx_pair("fashion-mnist", split, download)


def load_olivetti_faces(*, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Olivetti / AT&T faces: 400 images of 40 people (10 each), 64x64, upright.

    Returns ``(images, targets)``: images (400, 64, 64) float32 scaled to [0, 1] by the global
    minimum and maximum, exactly as ``sklearn.datasets.fetch_olivetti_faces`` does; targets (400,)
    int64, the person id ``j // 10`` of image ``j``.

    The file ``olivettifaces.mat`` is accepted with either of two checksums: the copy scikit-learn
    downloads from figshare, or the MATLAB-re-saved copy in the course mirror (other bytes, same
    faces; see the mirror's README).
    """
    raw = parse_olivetti_mat(fetch("olivetti-faces/olivettifaces.mat", download=download))
    images = raw.astype(np.float32)
    images -= images.min()
    images /= images.max()
    targets = np.arange(images.shape[0], dtype=np.int64) // 10
    return images, targets


def load_tiny_shakespeare(*, download: bool = True) -> str:
    """Karpathy's Tiny Shakespeare (char-rnn): one string of 1,115,394 characters (65 distinct)."""
    return read_bytes("tiny-shakespeare/input.txt", download=download).decode("utf-8")


def load_cora(*, download: bool = True) -> PlanetoidData:
    """Cora citation graph with the Planetoid public split (Yang, Cohen & Salakhutdinov, 2016).

    Returns a :class:`PlanetoidData`: ``features`` (2708, 1433) float32 binary bag-of-words,
    ``labels`` (2708,) int64 in 0..6, ``edge_index`` (2, 10556) int64 (both directions of every
    citation, no self-loops; ``.adjacency()`` gives the scipy CSR matrix), ``train_idx`` (140),
    ``val_idx`` (500), ``test_idx`` (1000) node ids, ``num_classes`` 7.
    """
    parts = {part: fetch(f"cora/ind.cora.{part}", download=download) for part in PLANETOID_PARTS}
    return parse_planetoid(parts)


@dataclass
class MovieLens100K:
    """MovieLens 100K (Harper & Konstan, 2015). Ids are **0-based** (the file's id minus one), so
    they index embedding tables directly.

    - ``ratings``: (100000, 4) int64, columns ``user, item, rating (1..5), timestamp (unix s)``,
      from ``u.data``.
    - ``train``, ``test``: the same columns for the chosen official split (``u1``..``u5``: 80/20
      five-fold; ``ua``/``ub``: 10 test ratings per user), ``None`` when no split was asked for.
    - ``item_titles``: 1682 titles (``item_titles[i]`` is item ``i``), decoded from Latin-1.
    - ``item_genres``: (1682, 19) uint8 genre flags; ``genre_names``: the 19 genre names.
    - ``n_users`` (943), ``n_items`` (1682).
    """

    ratings: np.ndarray
    train: np.ndarray | None
    test: np.ndarray | None
    item_titles: list[str]
    item_genres: np.ndarray
    genre_names: list[str]
    n_users: int
    n_items: int


MOVIELENS_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _zero_based(ratings: np.ndarray) -> np.ndarray:
    out = ratings.copy()
    out[:, :2] -= 1
    return out


def load_movielens_100k(split: str | None = None, *, download: bool = True) -> MovieLens100K:
    """MovieLens 100K ratings, item titles and genres (see :class:`MovieLens100K`).

    ``split``: ``None`` (all ratings only) or one of ``"u1"``..``"u5"``, ``"ua"``, ``"ub"`` to also
    fill ``train``/``test`` from ``<split>.base``/``<split>.test``. GroupLens' terms forbid
    redistribution, so the course downloads the official zip (and extracts it into the cache)
    unless a local mirror is present.
    """
    if split is not None:
        _check_choice("split", split, MOVIELENS_SPLITS)

    def get(name: str) -> bytes:
        return read_bytes(f"movielens-100k/ml-100k/{name}", download=download)

    ratings = _zero_based(parse_movielens_ratings(get("u.data")))
    item_ids, titles, genres = parse_movielens_items(get("u.item"))
    if not np.array_equal(item_ids, np.arange(1, len(item_ids) + 1)):
        raise ValueError("u.item: item ids are not 1..n in order")
    genre_names = parse_movielens_genres(get("u.genre"))
    train = test = None
    if split is not None:
        train = _zero_based(parse_movielens_ratings(get(f"{split}.base")))
        test = _zero_based(parse_movielens_ratings(get(f"{split}.test")))
    return MovieLens100K(
        ratings=ratings, train=train, test=test, item_titles=titles, item_genres=genres,
        genre_names=genre_names, n_users=int(ratings[:, 0].max()) + 1, n_items=len(titles),
    )


UD_SPLITS = ("train", "dev", "test")


def load_ud_english(split: str = "train", *, download: bool = True) -> list[list[tuple[str, str]]]:
    """UD English-EWT r2.16 for POS tagging: a list of sentences, each a list of ``(form, upos)``
    pairs (17 universal tags), multi-word-token range lines and empty nodes skipped.

    ``split``: ``"train"`` (12,544 sentences, 204,577 words), ``"dev"`` (2,001 / 25,147) or
    ``"test"`` (2,077 / 25,094).
    """
    _check_choice("split", split, UD_SPLITS)
    text = read_bytes(f"ud-english-ewt/en_ewt-ud-{split}.conllu", download=download).decode("utf-8")
    return parse_conllu(text)


def load_mr_polarity(*, download: bool = True) -> tuple[list[str], np.ndarray]:
    """MR sentence polarity v1.0 (Pang & Lee, 2005): 5,331 negative then 5,331 positive snippets.

    Returns ``(sentences, labels)``: ``sentences`` a list of 10,662 lower-cased, tokenised strings
    (decoded from Latin-1), ``labels`` (10662,) int64, 0 = negative, 1 = positive.
    """
    negative = parse_mr_polarity(read_bytes("mr-polarity/rt-polarity.neg", download=download))
    positive = parse_mr_polarity(read_bytes("mr-polarity/rt-polarity.pos", download=download))
    labels = np.concatenate([np.zeros(len(negative), dtype=np.int64), np.ones(len(positive), dtype=np.int64)])
    return negative + positive, labels


def load_brown(*, tagged: bool = False, categories: str | Sequence[str] | None = None,
               download: bool = True) -> list:
    """The Brown Corpus (57,340 sentences, 1,161,192 tokens), read straight from NLTK's
    ``brown.zip`` with :mod:`zipfile` (no NLTK downloader).

    Returns a list of sentences: lists of words (``str``), or of ``(word, tag)`` pairs when
    ``tagged=True`` (Brown tag set, upper-cased as in NLTK). ``categories`` (e.g. ``"news"`` or
    ``["news", "fiction"]``) keeps only those genres. Same sentences, in the same order, as
    ``nltk.corpus.brown.sents()`` / ``tagged_sents()``.
    """
    return parse_brown_zip(fetch("nltk_data/corpora/brown.zip", download=download),
                           tagged=tagged, categories=categories)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (no download).

    Returns ``(images, labels)``: images (1797, 8, 8) float32 with values 0..16, labels (1797,)
    int64 in 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)
