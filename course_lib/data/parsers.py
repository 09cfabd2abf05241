"""Pure parsers of the course's data formats: bytes or text in, numpy arrays / lists out.

Each takes the file's content and touches nothing else, so tests can feed them tiny files written
in the real formats. Binary formats (IDX, .mat, pickles, zip) take ``bytes`` or a path (``str`` or
``os.PathLike``); text formats take the text as ``str``, or ``bytes`` / a ``pathlib.Path`` that is
decoded with the format's encoding (Latin-1 for MovieLens and MR). The loaders in :mod:`course_lib.data.loaders`
combine them with :func:`course_lib.data.store.fetch`.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import gzip
import io
import os
import pickle
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BytesLike = bytes | bytearray | memoryview | str | os.PathLike


def _as_bytes(data: BytesLike) -> bytes:
    """``data`` itself when it is bytes-like, else the content of the file at path ``data``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    with open(data, "rb") as f:
        return f.read()


def _as_text(data: str | bytes | bytearray | memoryview | os.PathLike, encoding: str) -> str:
    """``data`` itself when it is a ``str`` (the text), else bytes (given, or read from a
    ``pathlib.Path``) decoded with ``encoding``."""
    if isinstance(data, str):
        return data
    return _as_bytes(data).decode(encoding)


def _split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only (``str.splitlines`` would also split on U+0085 etc., which
    Latin-1 text contains); a final empty piece after the last newline is dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


# ------------------------------------------------------------------------------------------ IDX
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: BytesLike) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzip-compressed or not (detected by its magic bytes).

    Format: magic ``0x00 0x00 <type> <ndim>`` (type 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), then ``ndim`` big-endian uint32 sizes, then the values big-endian,
    row-major. MNIST images have magic 2051 (uint8, 3 dims), labels 2049 (uint8, 1 dim).
    Returns a writable array of shape ``(d_1, ..., d_ndim)`` in native byte order.
    Raises ``ValueError`` on a bad magic number or a size that does not match the header.
    """
    raw = _as_bytes(data)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"IDX data: corrupt gzip stream ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"IDX data: bad magic number {raw[:4].hex()!r} (expected 0000<type><ndim>, "
                         f"type one of {sorted(hex(t) for t in _IDX_DTYPES)})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX data: {len(raw)} bytes, too short for a {ndim}-dimensional header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"IDX data: header says shape {dims} of {dtype} ({expected} bytes with header), "
                         f"got {len(raw)} bytes")
    values = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


# ------------------------------------------------------------------------------------- Olivetti
def parse_olivetti_mat(data: BytesLike) -> np.ndarray:
    """Parse Roweis' ``olivettifaces.mat``: variable ``faces`` of shape (4096, n), column ``j`` =
    image ``j`` stored column-major. Returns the upright images ``(n, 64, 64)`` in the stored
    dtype (uint8 in the real file), i.e. ``faces.T.reshape(n, 64, 64).transpose(0, 2, 1)``."""
    from scipy.io import loadmat

    mat = loadmat(io.BytesIO(_as_bytes(data)))
    if "faces" not in mat:
        raise ValueError(f"Olivetti .mat: no variable 'faces' (found {sorted(k for k in mat if not k.startswith('__'))})")
    faces = np.asarray(mat["faces"])
    if faces.ndim != 2 or faces.shape[0] != 64 * 64:
        raise ValueError(f"Olivetti .mat: 'faces' has shape {faces.shape}, expected (4096, n)")
    return np.ascontiguousarray(faces.T.reshape(-1, 64, 64).transpose(0, 2, 1))


# -------------------------------------------------------------------------------------- CoNLL-U
def parse_conllu(text: str) -> list[list[tuple[str, str]]]:
    """Parse CoNLL-U text into sentences of ``(form, upos)`` pairs.

    Sentences are separated by blank lines; comment lines (``#``) are skipped, and so are
    multi-word token range lines (id ``1-2``) and empty nodes (id ``8.1``), so each sentence holds
    exactly its syntactic words. Forms may contain spaces (columns are tab-separated).
    Raises ``ValueError`` naming the line when a word line does not have 10 columns.
    """
    sentences: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for lineno, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise ValueError(f"CoNLL-U line {lineno}: expected 10 tab-separated columns, got {len(cols)}: {line!r}")
        if "-" in cols[0] or "." in cols[0]:
            continue
        current.append((cols[1], cols[3]))
    if current:
        sentences.append(current)
    return sentences


# ------------------------------------------------------------------------------------ Planetoid
def _allowed_globals() -> dict[tuple[str, str], object]:
    import scipy.sparse as sp

    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "defaultdict"): collections.defaultdict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): codecs.encode,
        ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
        ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    for module in ("scipy.sparse", "scipy.sparse.csr", "scipy.sparse._csr"):
        allowed[(module, "csr_matrix")] = sp.csr_matrix
    for module in ("__builtin__", "builtins"):
        for name, obj in (("list", list), ("dict", dict), ("set", set), ("frozenset", frozenset),
                          ("tuple", tuple), ("int", int), ("float", float), ("object", object)):
            allowed[(module, name)] = obj
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, scipy CSR matrices and plain containers: a pickle names the
    functions it calls, so refusing every other global keeps a tampered file from running code."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, encoding="latin1")
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global '{module}.{name}': Planetoid files hold only numpy arrays, "
                f"scipy CSR matrices and a defaultdict") from None


def load_pickle_restricted(data: BytesLike) -> object:
    """Unpickle a (Python 2 or 3) Planetoid pickle, allowing only numpy/scipy-CSR/container globals.

    Raises ``pickle.UnpicklingError`` for any other global (e.g. ``os.system``)."""
    return _RestrictedUnpickler(io.BytesIO(_as_bytes(data))).load()


@dataclass
class PlanetoidData:
    """A Planetoid citation graph (Cora) with the public semi-supervised split.

    - ``features``: (N, F) float32, the raw binary bag-of-words (not row-normalised).
    - ``labels``: (N,) int64 class ids in ``[0, num_classes)`` (-1 for a node without a label;
      Cora has none).
    - ``edge_index``: (2, E) int64 directed edges ``source -> target``, symmetric (both directions
      of every citation), self-loops and duplicates removed, sorted by (source, target) — the
      PyTorch Geometric convention. :meth:`adjacency` gives the same graph as a sparse matrix.
    - ``train_idx`` (the first ``len(y)`` nodes), ``val_idx`` (the next 500, clipped to the labelled
      non-test nodes), ``test_idx`` (the ids in ``test.index``, sorted): int64 node ids.
    """

    features: np.ndarray
    labels: np.ndarray
    edge_index: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    num_classes: int

    @property
    def num_nodes(self) -> int:
        return int(self.features.shape[0])

    def adjacency(self):
        """The symmetric 0/1 adjacency matrix, ``scipy.sparse.csr_matrix`` (N, N) float32."""
        import scipy.sparse as sp

        n = self.num_nodes
        values = np.ones(self.edge_index.shape[1], dtype=np.float32)
        return sp.csr_matrix((values, (self.edge_index[0], self.edge_index[1])), shape=(n, n))


PLANETOID_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


def _dense(matrix: object, name: str) -> np.ndarray:
    if hasattr(matrix, "toarray"):
        return np.asarray(matrix.toarray())  # type: ignore[attr-defined]
    if isinstance(matrix, np.ndarray):
        return matrix
    raise ValueError(f"Planetoid part '{name}': expected a sparse matrix or array, got {type(matrix).__name__}")


def _labels_from_onehot(onehot: np.ndarray) -> np.ndarray:
    labels = onehot.argmax(axis=1).astype(np.int64)
    labels[onehot.max(axis=1) <= 0] = -1
    return labels


def parse_planetoid(parts: Mapping[str, BytesLike], *, val_size: int = 500) -> PlanetoidData:
    """Build a :class:`PlanetoidData` from the eight Planetoid files (Yang et al., 2016).

    ``parts`` maps ``"x", "y", "tx", "ty", "allx", "ally", "graph"`` (pickles, restricted loading)
    and ``"test.index"`` (text, one node id per line) to bytes or paths. Semantics (as in GCN and
    PyTorch Geometric): ``allx[i]``/``ally[i]`` describe node ``i`` for ``i < len(allx)``; ``tx[k]``/``ty[k]``
    describe node ``test.index[k]``; ``x``/``y`` are the first ``len(y)`` nodes, the training set;
    validation = the next ``val_size`` nodes; ``graph`` maps node -> neighbour list.
    """
    missing = [p for p in PLANETOID_PARTS if p not in parts]
    if missing:
        raise ValueError(f"Planetoid: missing parts {missing}; expected {list(PLANETOID_PARTS)}")
    x = _dense(load_pickle_restricted(parts["x"]), "x")
    y = _dense(load_pickle_restricted(parts["y"]), "y")
    tx = _dense(load_pickle_restricted(parts["tx"]), "tx")
    ty = _dense(load_pickle_restricted(parts["ty"]), "ty")
    allx = _dense(load_pickle_restricted(parts["allx"]), "allx")
    ally = _dense(load_pickle_restricted(parts["ally"]), "ally")
    graph = load_pickle_restricted(parts["graph"])
    if not isinstance(graph, Mapping):
        raise ValueError(  # noqa: TRY004 - malformed data, not a caller's type error
            f"Planetoid part 'graph': expected a dict node -> neighbours, got {type(graph).__name__}")
    test_index = np.array(_as_bytes(parts["test.index"]).split(), dtype=np.int64)

    if x.shape[0] != y.shape[0] or tx.shape[0] != ty.shape[0] or allx.shape[0] != ally.shape[0]:
        raise ValueError(f"Planetoid: row counts disagree: x {x.shape}, y {y.shape}, tx {tx.shape}, "
                         f"ty {ty.shape}, allx {allx.shape}, ally {ally.shape}")
    if tx.shape[0] != test_index.size:
        raise ValueError(f"Planetoid: tx has {tx.shape[0]} rows but test.index lists {test_index.size} nodes")
    if not (x.shape[1] == tx.shape[1] == allx.shape[1]) or not (y.shape[1] == ty.shape[1] == ally.shape[1]):
        raise ValueError("Planetoid: feature or class dimensions disagree between x/tx/allx or y/ty/ally")

    n_nodes = max(allx.shape[0], int(test_index.max(initial=-1)) + 1)
    features = np.zeros((n_nodes, allx.shape[1]), dtype=np.float32)
    features[: allx.shape[0]] = allx
    features[test_index] = tx
    labels = np.full(n_nodes, -1, dtype=np.int64)
    labels[: ally.shape[0]] = _labels_from_onehot(ally)
    labels[test_index] = _labels_from_onehot(ty)

    sources, targets = [], []
    for node, neighbours in graph.items():
        for other in neighbours:
            sources.append(int(node))
            targets.append(int(other))
    edges = np.array([sources, targets], dtype=np.int64).reshape(2, -1)
    if edges.size and (edges.min() < 0 or edges.max() >= n_nodes):
        raise ValueError(f"Planetoid: graph names node ids outside [0, {n_nodes})")
    edges = edges[:, edges[0] != edges[1]]
    edges = np.concatenate([edges, edges[::-1]], axis=1)
    edges = np.unique(edges, axis=1)  # sorted by (source, target), duplicates removed

    n_train = y.shape[0]
    return PlanetoidData(
        features=features,
        labels=labels,
        edge_index=edges,
        train_idx=np.arange(n_train, dtype=np.int64),
        val_idx=np.arange(n_train, min(n_train + val_size, ally.shape[0]), dtype=np.int64),
        test_idx=np.sort(test_index),
        num_classes=int(y.shape[1]),
    )


# ------------------------------------------------------------------------------------ MovieLens
def parse_movielens_ratings(data: BytesLike) -> np.ndarray:
    """Parse a MovieLens 100K ratings file (``u.data``, ``u1.base``, ...): tab-separated
    ``user item rating timestamp`` lines. Returns (n, 4) int64 with the file's values unchanged
    (1-based user and item ids)."""
    text = _as_text(data, "latin-1")
    lines = [line for line in _split_lines(text) if line.strip()]
    for lineno, line in enumerate(lines, start=1):
        if len(line.split()) != 4:
            raise ValueError(f"MovieLens ratings line {lineno}: expected 4 tab-separated fields, got {line!r}")
    return np.array([int(v) for v in text.split()], dtype=np.int64).reshape(-1, 4)


def parse_movielens_items(data: BytesLike) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Parse ``u.item`` (``|``-separated, **Latin-1**): ``id|title|release date|video release
    date|IMDb URL|<one 0/1 flag per genre>``. Returns ``(item_ids (n,) int64, titles list[str],
    genres (n, G) uint8)``."""
    ids, titles, genres = [], [], []
    width = None
    for lineno, line in enumerate(_split_lines(_as_text(data, "latin-1")), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if width is None:
            width = len(fields)
        if len(fields) != width or width < 6:
            raise ValueError(f"u.item line {lineno}: expected {width} '|'-separated fields, got {len(fields)}")
        ids.append(int(fields[0]))
        titles.append(fields[1])
        genres.append([int(flag) for flag in fields[5:]])
    n_genres = (width or 6) - 5
    return (np.array(ids, dtype=np.int64), titles,
            np.array(genres, dtype=np.uint8).reshape(len(ids), n_genres))


def parse_movielens_genres(data: BytesLike) -> list[str]:
    """Parse ``u.genre`` (``name|index`` lines) into the genre names ordered by index."""
    pairs = []
    for line in _split_lines(_as_text(data, "latin-1")):
        if line.strip():
            name, index = line.rsplit("|", 1)
            pairs.append((int(index), name))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"u.genre: indices {[i for i, _ in pairs]} are not 0..{len(pairs) - 1}")
    return [name for _, name in pairs]


# ------------------------------------------------------------------------------------------- MR
def parse_mr_polarity(data: BytesLike, encoding: str = "latin-1") -> list[str]:
    """Parse one MR polarity file: one snippet per line, decoded as Latin-1 (a few bytes such as
    0x85 or 0x92 are really Windows-1252 punctuation; Latin-1 keeps them as U+0085/U+0092).
    Lines are split on ``\\n`` only and stripped of surrounding spaces."""
    return [line.strip(" \t\r") for line in _split_lines(_as_text(data, encoding))]


# ---------------------------------------------------------------------------------------- Brown
BROWN_FILEID = re.compile(r"c[a-z]\d\d")


def parse_brown_text(text: str, tagged: bool = False) -> list[list[str]] | list[list[tuple[str, str | None]]]:
    """Parse one Brown Corpus file (NLTK's format): every non-blank line is a sentence of
    whitespace-separated ``word/tag`` tokens. The tag is what follows the last ``/``, upper-cased
    as NLTK does (``None`` if there is no ``/``). Returns sentences of words, or of
    ``(word, tag)`` pairs when ``tagged``."""
    sentences: list = []
    for line in _split_lines(text):
        tokens = line.split()
        if not tokens:
            continue
        parts = [token.rpartition("/") for token in tokens]
        if tagged:
            sentences.append([(word, tag.upper()) if sep else (tag, None) for word, sep, tag in parts])
        else:
            sentences.append([word if sep else tag for word, sep, tag in parts])
    return sentences


def parse_brown_categories(text: str) -> dict[str, list[str]]:
    """Parse ``cats.txt`` (``fileid category [category ...]`` lines) into fileid -> categories."""
    result = {}
    for line in _split_lines(text):
        fields = line.split()
        if fields:
            result[fields[0]] = fields[1:]
    return result


def parse_brown_zip(data: BytesLike, *, tagged: bool = False,
                    categories: str | Sequence[str] | None = None) -> list:
    """Read the Brown Corpus straight from NLTK's ``brown.zip`` (members ``brown/ca01`` ...,
    ``brown/cats.txt``), file ids in sorted order as NLTK does. ``categories`` (e.g. ``"news"``)
    keeps only the files of those genres. Returns what :func:`parse_brown_text` returns, over
    all selected files."""
    with zipfile.ZipFile(io.BytesIO(_as_bytes(data))) as zf:
        members = {}
        for name in zf.namelist():
            folder, _, base = name.rpartition("/")
            if folder.rsplit("/", 1)[-1] == "brown" and BROWN_FILEID.fullmatch(base):
                members[base] = name
        if not members:
            raise ValueError("Brown zip: no members named brown/c[a-z][0-9][0-9]")
        fileids = sorted(members)
        if categories is not None:
            wanted = {categories} if isinstance(categories, str) else set(categories)
            cats_name = next((n for n in zf.namelist() if n.endswith("brown/cats.txt")), None)
            if cats_name is None:
                raise ValueError("Brown zip: no brown/cats.txt, cannot select categories")
            cats = parse_brown_categories(zf.read(cats_name).decode("ascii"))
            known = {c for values in cats.values() for c in values}
            if not wanted <= known:
                raise ValueError(f"Brown: unknown categories {sorted(wanted - known)}; known: {sorted(known)}")
            fileids = [f for f in fileids if wanted & set(cats.get(f, ()))]
        sentences: list = []
        for fileid in fileids:
            sentences.extend(parse_brown_text(zf.read(members[fileid]).decode("ascii"), tagged=tagged))
    return sentences

