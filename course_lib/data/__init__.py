"""Dataset loaders of the course, with a local mirror, sha256 checks and a download cache.

Loaders (each verifies its files; see :mod:`course_lib.data.store` for where files are found):

=============================  ==================================================================
``load_mnist(split)``          images (N, 28, 28) uint8, labels (N,) int64; 60,000 / 10,000
``load_fashion_mnist(split)``  same shapes; download only (not in the offline mirror)
``load_olivetti_faces()``      images (400, 64, 64) float32 in [0, 1], targets (400,) int64
``load_tiny_shakespeare()``    ``str`` of 1,115,394 characters
``load_cora()``                :class:`PlanetoidData` (features (2708, 1433), edge_index, splits)
``load_movielens_100k(split)`` :class:`MovieLens100K` (ratings (100000, 4), titles, genres)
``load_ud_english(split)``     sentences of ``(form, upos)`` pairs
``load_mr_polarity()``         (10,662 sentences, labels (10662,) int64)
``load_brown(tagged=...)``     sentences of words or of ``(word, tag)`` pairs
``load_digits()``              scikit-learn's 8x8 digits: (1797, 8, 8) float32, (1797,) int64
``gensim_test_file(name)``     path of a file bundled with gensim (questions-words.txt, wordsim353.tsv)
``load_lee_corpus(which)``     gensim's Lee news corpus: 300 (or 50 test) raw documents
=============================  ==================================================================

Where files come from: ``$COURSE_DATA_DIR`` (default ``~/.cache/deep-learning-course``), then the
local mirror (``$COURSE_DATA_MIRROR``, default ``<repo>/../shared/data``), then the canonical URL
(unless ``download=False`` or ``COURSE_DATA_OFFLINE=1``). Errors: :class:`DataNotFoundError`
(a ``FileNotFoundError``) and :class:`ChecksumError` (a ``ValueError``), both :class:`DataError`.

Pure parsers (``parse_idx``, ``parse_conllu``, ``parse_planetoid``, ...) read the raw formats;
:func:`make_digit_canvas` builds a seeded detection/segmentation set from digits, and
:func:`make_digit_scenes` a harder one (scaled, overlapping MNIST digits; clutter and strokes);
:func:`make_date_pairs` (human-written dates -> ISO) and :func:`make_number_pairs` (numbers in
words -> digits) build seeded translation tasks, :func:`encode_char_pairs` their character ids.
"""

from course_lib.data.gensim_data import gensim_test_data_dir, gensim_test_file, load_lee_corpus
from course_lib.data.loaders import (
    MOVIELENS_SPLITS,
    UD_SPLITS,
    MovieLens100K,
    load_brown,
    load_cora,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_movielens_100k,
    load_mr_polarity,
    load_olivetti_faces,
    load_tiny_shakespeare,
    load_ud_english,
)
from course_lib.data.parsers import (
    PlanetoidData,
    load_pickle_restricted,
    parse_brown_categories,
    parse_brown_text,
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
from course_lib.data.registry import REGISTRY, Resource, Source
from course_lib.data.store import (
    CACHE_ENV_VAR,
    MIRROR_ENV_VAR,
    OFFLINE_ENV_VAR,
    ChecksumError,
    DataError,
    DataNotFoundError,
    cache_dir,
    clear_checksum_cache,
    downloads_allowed,
    fetch,
    mirror_dir,
    read_bytes,
    sha256_file,
)
from course_lib.data.synthetic import DigitCanvases, DigitScenes, make_digit_canvas, make_digit_scenes
from course_lib.data.synthetic_text import (
    DATE_FORMATS,
    CharPairs,
    encode_char_pairs,
    format_date,
    make_date_pairs,
    make_number_pairs,
    number_to_words,
)

__all__ = [
    "CACHE_ENV_VAR",
    "DATE_FORMATS",
    "MIRROR_ENV_VAR",
    "MOVIELENS_SPLITS",
    "OFFLINE_ENV_VAR",
    "REGISTRY",
    "UD_SPLITS",
    "CharPairs",
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "DigitCanvases",
    "DigitScenes",
    "MovieLens100K",
    "PlanetoidData",
    "Resource",
    "Source",
    "cache_dir",
    "clear_checksum_cache",
    "downloads_allowed",
    "encode_char_pairs",
    "fetch",
    "gensim_test_data_dir",
    "gensim_test_file",
    "format_date",
    "load_brown",
    "load_cora",
    "load_digits",
    "load_fashion_mnist",
    "load_lee_corpus",
    "load_mnist",
    "load_movielens_100k",
    "load_mr_polarity",
    "load_olivetti_faces",
    "load_pickle_restricted",
    "load_tiny_shakespeare",
    "load_ud_english",
    "make_date_pairs",
    "make_digit_canvas",
    "make_digit_scenes",
    "make_number_pairs",
    "mirror_dir",
    "number_to_words",
    "parse_brown_categories",
    "parse_brown_text",
    "parse_brown_zip",
    "parse_conllu",
    "parse_idx",
    "parse_movielens_genres",
    "parse_movielens_items",
    "parse_movielens_ratings",
    "parse_mr_polarity",
    "parse_olivetti_mat",
    "parse_planetoid",
    "read_bytes",
    "sha256_file",
]
