"""Tests of ``course_lib.data``.

- Parsers, on tiny files written here in the real formats (IDX gz, CoNLL-U, Planetoid pickles,
  MovieLens tab/pipe files, MR Latin-1 lines, Olivetti .mat, a Brown-format zip), checked value
  for value against the arrays the files were built from, and against networkx / NLTK readers.
- The file store: resolution order (cache > mirror > download), checksum errors, missing-file
  errors, offline mode, and the download path (atomic write, corrupted / truncated / interrupted
  downloads leave nothing behind, archives), with ``urllib`` replaced by a fake that serves local
  files. No test touches the network: ``urllib.request.urlopen`` fails loudly unless a test
  replaces it.
- ``make_digit_canvas``: boxes, masks and crops against an independent recomputation.
- When the local mirror exists (``<repo>/../shared/data``), every real data set: shapes and the
  counts its README states, checksums, and independent readers (scikit-learn, networkx, NLTK).
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import http.client
import io
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import course_lib
from course_lib import data
from course_lib.data import store
from course_lib.data.registry import Resource, Source

DEFAULT_MIRROR = Path(course_lib.__file__).resolve().parents[1].parent / "shared" / "data"


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test: an empty cache in tmp_path, an empty mirror, offline, and no network at all."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("COURSE_DATA_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError(f"a test tried to use the network: urlopen{args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return cache


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return tmp_path / "mirror"


@pytest.fixture
def real_mirror(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real local mirror, found through the default rule (<repo root>/../shared/data)."""
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    if not DEFAULT_MIRROR.is_dir():
        pytest.skip(f"local data mirror {DEFAULT_MIRROR} is absent (fresh clone without ../shared/data)")
    assert data.mirror_dir() == DEFAULT_MIRROR
    return DEFAULT_MIRROR


def register(monkeypatch: pytest.MonkeyPatch, key: str, *contents: bytes,
             sources: tuple[Source, ...] | None = None) -> Resource:
    """Put (or replace) a registry entry whose accepted checksums are those of ``contents``."""
    dataset, path = key.split("/", 1)
    resource = Resource(dataset, path, tuple(sha(c) for c in contents), len(contents[0]),
                        sources or (Source(f"https://example.org/{key}"),), "test file")
    monkeypatch.setitem(store.REGISTRY, key, resource)
    return resource


def put(folder: Path, key: str, content: bytes) -> Path:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------------------------------ IDX
def idx_bytes(array: np.ndarray, type_code: int, big_endian_dtype: str) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_parse_idx_mnist_files(seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    n, rows, cols = (int(v) for v in rng.integers(1, 7, size=3))
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    image_file = struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes()
    label_file = struct.pack(">II", 2049, n) + labels.tobytes()
    gz = gzip.compress(image_file)
    (tmp_path / "images.gz").write_bytes(gz)
    for source in (gz, image_file, tmp_path / "images.gz", str(tmp_path / "images.gz")):
        parsed = data.parse_idx(source)
        assert parsed.dtype == np.uint8 and parsed.shape == (n, rows, cols)
        np.testing.assert_array_equal(parsed, images)
    np.testing.assert_array_equal(data.parse_idx(gzip.compress(label_file)), labels)


@pytest.mark.parametrize(("code", "dtype"), [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_parse_idx_other_types_are_big_endian(code: int, dtype: str) -> None:
    values = np.random.default_rng(code).normal(size=(3, 2, 4)) * 100
    expected = values.astype(dtype).astype(np.dtype(dtype).newbyteorder("="))
    parsed = data.parse_idx(idx_bytes(values, code, dtype))
    assert parsed.dtype == expected.dtype and parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, expected)
    parsed[0, 0, 0] = 1  # writable


def test_parse_idx_rejects_malformed() -> None:
    good = struct.pack(">II", 2049, 3) + bytes([1, 2, 3])
    np.testing.assert_array_equal(data.parse_idx(good), [1, 2, 3])
    with pytest.raises(ValueError, match="magic"):
        data.parse_idx(b"\x01\x00\x08\x01" + good[4:])
    with pytest.raises(ValueError, match="magic"):
        data.parse_idx(b"\x00\x00\x07\x01" + good[4:])
    with pytest.raises(ValueError, match="got 10 bytes"):
        data.parse_idx(good[:-1])
    with pytest.raises(ValueError, match="got 12 bytes"):
        data.parse_idx(good + b"\x00")
    with pytest.raises(ValueError, match="gzip"):
        data.parse_idx(gzip.compress(good)[:-6])


def test_load_mnist_reads_registered_files(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        files = {f"mnist/{prefix}-images-idx3-ubyte.gz": gzip.compress(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()),
                 f"mnist/{prefix}-labels-idx1-ubyte.gz": gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes())}
        for key, content in files.items():
            register(monkeypatch, key, content)
            put(isolated, key, content)
        got_images, got_labels = data.load_mnist("train" if prefix == "train" else "test")
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)
        assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")


# -------------------------------------------------------------------------------------- CoNLL-U
CONLLU = (
    "# newdoc id = weblog-1\n"
    "# sent_id = weblog-1-0001\n"
    "# text = I don't know.\n"
    "1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t4:nsubj\t_\n"
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t4:aux\t_\n"
    "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t4:advmod\t_\n"
    "4\tknow\tknow\tVERB\tVB\t_\t0\troot\t0:root\tSpaceAfter=No\n"
    "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t4:punct\t_\n"
    "\n"
    "# sent_id = weblog-1-0002\n"
    "1\tSue\tSue\tPROPN\tNNP\t_\t2\tnsubj\t2:nsubj\t_\n"
    "2\tlikes\tlike\tVERB\tVBZ\t_\t0\troot\t0:root\t_\n"
    "3\tcoffee\tcoffee\tNOUN\tNN\t_\t2\tobj\t2:obj\t_\n"
    "4\tand\tand\tCCONJ\tCC\t_\t5\tcc\t5.1:cc\t_\n"
    "5\tBill\tBill\tPROPN\tNNP\t_\t2\tconj\t5.1:nsubj\t_\n"
    "5.1\tlikes\tlike\tVERB\tVBZ\t_\t_\t_\t2:conj\tCopyOf=2\n"
    "6\ttea\ttea\tNOUN\tNN\t_\t2\tconj\t5.1:obj\t_\n"
    "7\tin\tin\tADP\tIN\t_\t8\tcase\t8:case\t_\n"
    "8\tNew York\tNew York\tPROPN\tNNP\t_\t2\tobl\t2:obl\t_\n"
    "\n"
    "\n"
    "# sent_id = weblog-1-0003\n"
    "1\tBye\tbye\tINTJ\tUH\t_\t0\troot\t0:root\t_"  # no trailing newline
)
CONLLU_EXPECTED = [
    [("I", "PRON"), ("do", "AUX"), ("n't", "PART"), ("know", "VERB"), (".", "PUNCT")],
    [("Sue", "PROPN"), ("likes", "VERB"), ("coffee", "NOUN"), ("and", "CCONJ"), ("Bill", "PROPN"),
     ("tea", "NOUN"), ("in", "ADP"), ("New York", "PROPN")],
    [("Bye", "INTJ")],
]


def test_parse_conllu_skips_comments_ranges_and_empty_nodes() -> None:
    assert data.parse_conllu(CONLLU) == CONLLU_EXPECTED
    assert data.parse_conllu(CONLLU.replace("\n", "\r\n") + "\r\n\r\n") == CONLLU_EXPECTED
    assert data.parse_conllu("") == []
    with pytest.raises(ValueError, match="line 2"):
        data.parse_conllu("# c\n1\tonly\tfour\tcolumns\n")


def test_load_ud_english_reads_registered_file(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    content = CONLLU.encode("utf-8")
    register(monkeypatch, "ud-english-ewt/en_ewt-ud-dev.conllu", content)
    put(isolated, "ud-english-ewt/en_ewt-ud-dev.conllu", content)
    assert data.load_ud_english("dev") == CONLLU_EXPECTED
    with pytest.raises(ValueError, match="split"):
        data.load_ud_english("validation")


# ------------------------------------------------------------------------------------ Planetoid
def onehot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((labels.size, n_classes), dtype=np.int32)
    out[np.arange(labels.size), labels] = 1
    return out


def planetoid_files(seed: int) -> tuple[dict[str, bytes], dict]:
    """Tiny Planetoid files written the way GCN's data was: pickles (protocol 2) of scipy CSR
    matrices, one-hot numpy arrays and a defaultdict graph, plus test.index text."""
    rng = np.random.default_rng(seed)
    n_classes, n_features = 3, 6
    n_allx, n_test, n_train = 8, 4, 3
    n_nodes = n_allx + n_test
    features = (rng.random((n_nodes, n_features)) < 0.4).astype(np.float32)
    labels = rng.integers(0, n_classes, size=n_nodes)
    test_order = rng.permutation(np.arange(n_allx, n_nodes))
    graph = collections.defaultdict(list)
    for _ in range(20):
        a, b = (int(v) for v in rng.integers(0, n_nodes, size=2))
        graph[a].append(b)  # one direction only, duplicates and self-loops possible
    graph[5].extend([5, 6, 6])
    parts = {
        "x": sp.csr_matrix(features[:n_train]), "y": onehot(labels[:n_train], n_classes),
        "tx": sp.csr_matrix(features[test_order]), "ty": onehot(labels[test_order], n_classes),
        "allx": sp.csr_matrix(features[:n_allx]), "ally": onehot(labels[:n_allx], n_classes),
        "graph": graph,
    }
    files = {name: pickle.dumps(obj, protocol=2) for name, obj in parts.items()}
    files["test.index"] = "".join(f"{i}\n" for i in test_order).encode()
    truth = {"features": features, "labels": labels, "graph": graph, "n_train": n_train, "n_allx": n_allx,
             "test": np.sort(test_order), "n_classes": n_classes}
    return files, truth


def expected_edges(graph: dict, n_nodes: int) -> np.ndarray:
    """Both directions of every undirected edge, without self-loops, sorted (networkx as oracle)."""
    import networkx as nx

    g = nx.from_dict_of_lists(graph)
    g.add_nodes_from(range(n_nodes))
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    pairs = sorted({(u, v) for u, v in g.edges()} | {(v, u) for u, v in g.edges()})
    return np.array(pairs, dtype=np.int64).T.reshape(2, -1)


@pytest.mark.parametrize("seed", range(3))
def test_parse_planetoid_reorders_test_nodes_and_symmetrises_edges(seed: int) -> None:
    files, truth = planetoid_files(seed)
    graph = data.parse_planetoid(files)
    np.testing.assert_array_equal(graph.features, truth["features"])
    assert graph.features.dtype == np.float32 and graph.labels.dtype == np.int64
    np.testing.assert_array_equal(graph.labels, truth["labels"])
    np.testing.assert_array_equal(graph.train_idx, np.arange(truth["n_train"]))
    np.testing.assert_array_equal(graph.val_idx, np.arange(truth["n_train"], truth["n_allx"]))  # clipped
    np.testing.assert_array_equal(graph.test_idx, truth["test"])
    assert graph.num_classes == truth["n_classes"] and graph.num_nodes == len(truth["labels"])
    edges = expected_edges(truth["graph"], graph.num_nodes)
    np.testing.assert_array_equal(graph.edge_index, edges)
    adjacency = graph.adjacency().toarray()
    expected_adjacency = np.zeros_like(adjacency)
    expected_adjacency[edges[0], edges[1]] = 1
    np.testing.assert_array_equal(adjacency, expected_adjacency)
    np.testing.assert_array_equal(adjacency, adjacency.T)


def test_parse_planetoid_reads_python2_names_and_paths(tmp_path: Path) -> None:
    files, truth = planetoid_files(7)
    # GCN's files were pickled by Python 2 with numpy 1 / scipy < 1.8 module names
    old = {name: content.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
           .replace(b"scipy.sparse._csr", b"scipy.sparse.csr") for name, content in files.items()}
    assert b"scipy.sparse.csr\n" in old["x"]
    for name, content in old.items():
        (tmp_path / f"ind.toy.{name}").write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning from scipy.sparse.csr / numpy.core
        graph = data.parse_planetoid({name: tmp_path / f"ind.toy.{name}" for name in old})
    np.testing.assert_array_equal(graph.features, truth["features"])


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_planetoid_unpickler_refuses_other_globals(capsys: pytest.CaptureFixture) -> None:
    files, _ = planetoid_files(0)
    files["graph"] = pickle.dumps(_Evil(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="print"):
        data.parse_planetoid(files)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="missing parts"):
        data.parse_planetoid({"x": files["x"]})


def test_load_cora_reads_registered_files(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    files, truth = planetoid_files(1)
    for name, content in files.items():
        register(monkeypatch, f"cora/ind.cora.{name}", content)
        put(isolated, f"cora/ind.cora.{name}", content)
    graph = data.load_cora()
    np.testing.assert_array_equal(graph.features, truth["features"])
    np.testing.assert_array_equal(graph.labels, truth["labels"])


# ------------------------------------------------------------------------------------ MovieLens
U_DATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n3\t1\t5\t888888888\n"
U_ITEM = ("1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|1\n"
          "2|Caf\xe9 Noir, Le (1995)|01-Jan-1995||http://x|1|0|0\n"
          "3|unknown||||0|0|0\n").encode("latin-1")
U_GENRE = b"unknown|0\nAction|1\nAnimation|2\n\n"


def test_parse_movielens_files() -> None:
    ratings = data.parse_movielens_ratings(U_DATA)
    np.testing.assert_array_equal(ratings, [[196, 242, 3, 881250949], [186, 302, 3, 891717742],
                                            [22, 377, 1, 878887116], [3, 1, 5, 888888888]])
    assert ratings.dtype == np.int64
    ids, titles, genres = data.parse_movielens_items(U_ITEM)
    np.testing.assert_array_equal(ids, [1, 2, 3])
    assert titles == ["Toy Story (1995)", "Café Noir, Le (1995)", "unknown"]  # Latin-1, not UTF-8
    np.testing.assert_array_equal(genres, [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    assert data.parse_movielens_genres(U_GENRE) == ["unknown", "Action", "Animation"]
    with pytest.raises(ValueError, match="line 2"):
        data.parse_movielens_ratings(b"1\t2\t3\t4\n1\t2\t3\n")


def movielens_files() -> dict[str, bytes]:
    return {"u.data": U_DATA, "u.item": U_ITEM, "u.genre": U_GENRE,
            "u1.base": U_DATA.split(b"\n", 2)[2], "u1.test": b"\n".join(U_DATA.split(b"\n")[:2]) + b"\n"}


def test_load_movielens_is_zero_based(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    for name, content in movielens_files().items():
        register(monkeypatch, f"movielens-100k/ml-100k/{name}", content)
        put(isolated, f"movielens-100k/ml-100k/{name}", content)
    ml = data.load_movielens_100k()
    raw = data.parse_movielens_ratings(U_DATA)
    np.testing.assert_array_equal(ml.ratings[:, :2], raw[:, :2] - 1)
    np.testing.assert_array_equal(ml.ratings[:, 2:], raw[:, 2:])
    assert ml.train is None and ml.test is None
    assert ml.item_titles[1] == "Café Noir, Le (1995)" and ml.n_items == 3 and ml.n_users == 196
    assert ml.genre_names == ["unknown", "Action", "Animation"] and ml.item_genres.shape == (3, 3)
    ml1 = data.load_movielens_100k("u1")
    np.testing.assert_array_equal(np.concatenate([ml1.test, ml1.train]), ml.ratings)
    with pytest.raises(ValueError, match="split"):
        data.load_movielens_100k("u6")


# ------------------------------------------------------------------------------------------- MR
def test_parse_mr_polarity_latin1_lines() -> None:
    content = b"it's a caf\xe9 movie . \nsimplistic \x85 silly and tedious . \n\x93quoted\x94 !\n"
    lines = data.parse_mr_polarity(content)
    # 0x85 decodes to U+0085, which str.splitlines() would wrongly treat as a line break
    assert lines == ["it's a café movie .", "simplistic \x85 silly and tedious .", "\x93quoted\x94 !"]


def test_load_mr_polarity_labels(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    neg, pos = b"bad .\nawful \xe9 .\n", b"good .\n"
    for key, content in (("mr-polarity/rt-polarity.neg", neg), ("mr-polarity/rt-polarity.pos", pos)):
        register(monkeypatch, key, content)
        put(isolated, key, content)
    sentences, labels = data.load_mr_polarity()
    assert sentences == ["bad .", "awful é .", "good ."]
    np.testing.assert_array_equal(labels, [0, 0, 1])
    assert labels.dtype == np.int64


# ---------------------------------------------------------------------------------------- Brown
BROWN_FILES = {
    "brown/ca01": "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n\n\n\tIt/pps was/bedz n't/* 1/2/cd ok/jj ./.\n",
    "brown/cb01": "\n\n\tAssembly/nn-tl session/nn ended/vbd ./.\n\n",
    "brown/cr09": "\n\n\tFunny/jj ,/, indeed/rb !/.\n\tSecond/od line/nn\n",
}
BROWN_CATS = "ca01 news\ncb01 editorial\ncr09 humor\n"


def brown_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("brown/", "")
        for name, text in BROWN_FILES.items():
            zf.writestr(name, text)
        zf.writestr("brown/cats.txt", BROWN_CATS)
        zf.writestr("brown/README", "BROWN CORPUS\n")
    return buffer.getvalue()


def test_parse_brown_zip_values() -> None:
    content = brown_zip()
    tagged = data.parse_brown_zip(content, tagged=True)
    assert tagged[0] == [("The", "AT"), ("Fulton", "NP-TL"), ("County", "NN-TL"), ("said", "VBD"), (".", ".")]
    assert tagged[1] == [("It", "PPS"), ("was", "BEDZ"), ("n't", "*"), ("1/2", "CD"), ("ok", "JJ"), (".", ".")]
    assert len(tagged) == 5
    words = data.parse_brown_zip(content)
    assert words == [[w for w, _ in sentence] for sentence in tagged]
    assert data.parse_brown_zip(content, categories="humor") == [["Funny", ",", "indeed", "!"], ["Second", "line"]]
    assert len(data.parse_brown_zip(content, categories=["news", "editorial"])) == 3
    with pytest.raises(ValueError, match="unknown categories"):
        data.parse_brown_zip(content, categories="poetry")
    assert data.parse_brown_text("word-without-tag x/nn", tagged=True) == [[("word-without-tag", None), ("x", "NN")]]


def test_parse_brown_zip_matches_nltk_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # NLTK reads only below its data path

    with zipfile.ZipFile(io.BytesIO(brown_zip())) as zf:
        zf.extractall(tmp_path)
    reader = CategorizedTaggedCorpusReader(str(tmp_path / "brown"), r"c[a-z]\d\d", cat_file="cats.txt",
                                           encoding="ascii")
    assert data.parse_brown_zip(brown_zip(), tagged=True) == [list(s) for s in reader.tagged_sents()]
    assert data.parse_brown_zip(brown_zip(), categories="news") == [list(s) for s in reader.sents(categories="news")]


def test_load_brown_reads_registered_zip(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    content = brown_zip()
    register(monkeypatch, "nltk_data/corpora/brown.zip", content)
    put(isolated, "nltk_data/corpora/brown.zip", content)
    assert data.load_brown(categories="news", tagged=True)[0][0] == ("The", "AT")


# ------------------------------------------------------------------------------ Olivetti, text
def test_parse_and_load_olivetti(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    upright = rng.integers(3, 243, size=(20, 64, 64), dtype=np.uint8)
    faces = np.stack([img.ravel(order="F") for img in upright], axis=1)  # (4096, 20), column-major images
    buffer = io.BytesIO()
    savemat(buffer, {"faces": faces})
    content = buffer.getvalue()
    np.testing.assert_array_equal(data.parse_olivetti_mat(content), upright)
    register(monkeypatch, "olivetti-faces/olivettifaces.mat", content)
    put(isolated, "olivetti-faces/olivettifaces.mat", content)
    images, targets = data.load_olivetti_faces()
    lo, hi = float(upright.min()), float(upright.max())
    np.testing.assert_allclose(images, (upright.astype(np.float64) - lo) / (hi - lo), rtol=0, atol=1e-6)
    assert images.dtype == np.float32 and images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(targets, np.repeat([0, 1], 10))
    with pytest.raises(ValueError, match="faces"):
        buffer = io.BytesIO()
        savemat(buffer, {"faces": np.zeros((100, 3))})
        data.parse_olivetti_mat(buffer.getvalue())


def test_olivetti_accepts_both_documented_checksums() -> None:
    from course_lib.data.registry import OLIVETTI_SHA256_FIGSHARE, OLIVETTI_SHA256_MIRROR

    resource = data.REGISTRY["olivetti-faces/olivettifaces.mat"]
    assert set(resource.sha256) == {OLIVETTI_SHA256_FIGSHARE, OLIVETTI_SHA256_MIRROR}
    assert "figshare" in " ".join(s.url for s in resource.sources)


def test_load_digits_is_sklearn_digits() -> None:
    from sklearn.datasets import load_digits

    images, labels = data.load_digits()
    reference = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(labels, reference.target)


# --------------------------------------------------------------------------------- file store
def test_cache_and_mirror_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "deep-learning-course"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "deep-learning-course"
    monkeypatch.delenv("COURSE_DATA_MIRROR")
    assert data.mirror_dir() == Path(__file__).resolve().parents[1].parent / "shared" / "data"  # <repo>/../shared/data
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "elsewhere"))
    assert data.mirror_dir() == tmp_path / "elsewhere"


def test_downloads_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not data.downloads_allowed(True)  # COURSE_DATA_OFFLINE=1 from the fixture wins
    for value, allowed in (("0", True), ("", True), ("yes", False), ("TRUE", False), ("on", False)):
        monkeypatch.setenv("COURSE_DATA_OFFLINE", value)
        assert data.downloads_allowed(True) is allowed
        assert data.downloads_allowed(False) is False


def test_resolution_order_cache_then_mirror(monkeypatch: pytest.MonkeyPatch, isolated: Path, mirror: Path) -> None:
    cached_content, mirrored_content = b"copy in the cache\n", b"copy in the mirror\n"
    register(monkeypatch, "toy/sub/file.txt", cached_content, mirrored_content)
    cached = put(isolated, "toy/sub/file.txt", cached_content)
    mirrored = put(mirror, "toy/sub/file.txt", mirrored_content)
    assert data.fetch("toy/sub/file.txt") == cached
    assert data.read_bytes("toy/sub/file.txt") == cached_content
    cached.unlink()
    assert data.fetch("toy/sub/file.txt") == mirrored  # used in place, not copied
    assert all_files(isolated) == []
    mirrored.unlink()
    with pytest.raises(data.DataNotFoundError):
        data.fetch("toy/sub/file.txt")


def test_missing_file_error_names_everything(monkeypatch: pytest.MonkeyPatch, isolated: Path, mirror: Path) -> None:
    monkeypatch.setenv("COURSE_DATA_OFFLINE", "0")
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist("test", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, data.DataError)
    for needle in ("mnist/t10k-images-idx3-ubyte.gz", str(isolated / "mnist" / "t10k-images-idx3-ubyte.gz"),
                   str(mirror / "mnist" / "t10k-images-idx3-ubyte.gz"), "http://yann.lecun.com/exdb/mnist/t10k-images",
                   "download=False", "COURSE_DATA_DIR", "COURSE_DATA_MIRROR",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"):
        assert needle in message, needle


def test_offline_env_forbids_download(monkeypatch: pytest.MonkeyPatch) -> None:
    # urlopen raises AssertionError (fixture): reaching the network would fail this test loudly
    with pytest.raises(data.DataNotFoundError, match="offline mode"):
        data.load_fashion_mnist("train", download=True)
    with pytest.raises(data.DataNotFoundError, match=r"extract 'ml-100k/u.data'"):
        data.load_movielens_100k()
    with pytest.raises(ValueError, match="unknown data file"):
        data.fetch("mnist/no-such-file")


def test_corrupted_cache_file_error(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    monkeypatch.setenv("COURSE_DATA_OFFLINE", "0")  # even with downloads allowed: no silent re-download
    good = b"the right bytes\n"
    register(monkeypatch, "toy/file.bin", good)
    bad = b"the wrong bytes, longer\n"
    path = put(isolated, "toy/file.bin", bad)
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("toy/file.bin")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, data.DataError)
    for needle in (str(path), sha(good), sha(bad), "Delete it", "cache", "https://example.org/toy/file.bin"):
        assert needle in message, needle
    path.write_bytes(good)
    data.clear_checksum_cache()
    assert data.fetch("toy/file.bin") == path


def test_corrupted_mirror_file_error(monkeypatch: pytest.MonkeyPatch, mirror: Path) -> None:
    register(monkeypatch, "toy/file.bin", b"good")
    path = put(mirror, "toy/file.bin", b"evil")
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("toy/file.bin")
    message = str(info.value)
    for needle in (str(path), sha(b"good"), sha(b"evil"), "local mirror", "COURSE_DATA_MIRROR"):
        assert needle in message, needle


def test_checksums_are_computed_once_per_file(monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    calls = []
    real = hashlib.file_digest

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    register(monkeypatch, "toy/file.bin", b"abc")
    path = put(isolated, "toy/file.bin", b"abc")
    for _ in range(3):
        data.fetch("toy/file.bin")
    assert len(calls) == 1
    path.write_bytes(b"abcd")  # another size: a changed file is hashed again
    with pytest.raises(data.ChecksumError):
        data.fetch("toy/file.bin")
    assert len(calls) == 2


# --------------------------------------------------------------------------------- downloading
class FakeServer:
    """Stands in for ``urllib.request.urlopen``: serves local files (or failures) by URL."""

    def __init__(self, routes: dict[str, object]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, float | None]] = []

    def __call__(self, request, timeout=None):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.calls.append((url, timeout))
        route = self.routes[url]
        if isinstance(route, BaseException):
            raise route
        if callable(route):
            return route()
        return open(route, "rb")  # the caller closes it, like a urlopen response


class InterruptedStream(io.RawIOBase):
    """A response that yields a few bytes and then fails."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.sent = error, False

    def read(self, size: int = -1) -> bytes:
        if not self.sent:
            self.sent = True
            return b"partial bytes"
        raise self.error


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COURSE_DATA_OFFLINE")

    def install(routes: dict[str, object]) -> FakeServer:
        server = FakeServer(routes)
        monkeypatch.setattr(urllib.request, "urlopen", server)
        return server

    return install


def test_download_verifies_and_writes_atomically(monkeypatch, online, isolated: Path, tmp_path: Path) -> None:
    content = os.urandom(3 * (1 << 20) + 17)  # several chunks
    served = tmp_path / "served.bin"
    served.write_bytes(content)
    register(monkeypatch, "toy/big.bin", content)
    server = online({"https://example.org/toy/big.bin": served})
    path = data.fetch("toy/big.bin")
    assert path == isolated / "toy" / "big.bin" and path.read_bytes() == content
    assert all_files(isolated) == ["toy/big.bin"]
    assert len(server.calls) == 1 and server.calls[0][1] == store.DOWNLOAD_TIMEOUT_S > 0
    data.fetch("toy/big.bin")
    assert len(server.calls) == 1  # now served from the cache


@pytest.mark.parametrize("damage", ["corrupted", "truncated", "empty"])
def test_bad_download_leaves_nothing(damage: str, monkeypatch, online, isolated: Path, tmp_path: Path) -> None:
    content = b"0123456789" * 1000
    bad = {"corrupted": content[:5000] + b"X" + content[5001:], "truncated": content[:4096], "empty": b""}[damage]
    served = tmp_path / "served.bin"
    served.write_bytes(bad)
    register(monkeypatch, "toy/file.bin", content)
    online({"https://example.org/toy/file.bin": served})
    with pytest.raises(data.ChecksumError) as info:
        data.fetch("toy/file.bin")
    message = str(info.value)
    for needle in (sha(content), sha(bad), f"{len(bad):,} bytes", "https://example.org/toy/file.bin", "Nothing was written"):
        assert needle in message, needle
    assert all_files(isolated) == []


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), http.client.IncompleteRead(b"x", 10),
                                   TimeoutError("timed out")])
def test_interrupted_download_leaves_nothing(error, monkeypatch, online, isolated: Path) -> None:
    register(monkeypatch, "toy/file.bin", b"whatever")
    online({"https://example.org/toy/file.bin": lambda: InterruptedStream(error)})
    with pytest.raises(data.DataNotFoundError, match="Download failed") as info:
        data.fetch("toy/file.bin")
    assert type(error).__name__ in str(info.value)
    assert all_files(isolated) == []


def test_keyboard_interrupt_during_download_leaves_nothing(monkeypatch, online, isolated: Path) -> None:
    register(monkeypatch, "toy/file.bin", b"whatever")
    online({"https://example.org/toy/file.bin": lambda: InterruptedStream(KeyboardInterrupt())})
    with pytest.raises(KeyboardInterrupt):
        data.fetch("toy/file.bin")
    assert all_files(isolated) == []


def test_download_tries_sources_in_order(monkeypatch, online, isolated: Path, tmp_path: Path) -> None:
    served = tmp_path / "good.bin"
    served.write_bytes(b"good")
    sources = (Source("https://a.example/f"), Source("https://b.example/f"))
    register(monkeypatch, "toy/f", b"good", sources=sources)
    server = online({"https://a.example/f": urllib.error.URLError("no route to host"), "https://b.example/f": served})
    assert data.fetch("toy/f").read_bytes() == b"good"
    assert [url for url, _ in server.calls] == ["https://a.example/f", "https://b.example/f"]
    (isolated / "toy" / "f").unlink()
    online({"https://a.example/f": urllib.error.URLError("no route to host"),
            "https://b.example/f": urllib.error.HTTPError("https://b.example/f", 404, "Not Found", None, None)})
    with pytest.raises(data.DataNotFoundError) as info:
        data.fetch("toy/f")
    for needle in ("no route to host", "404", "https://a.example/f", "https://b.example/f"):
        assert needle in str(info.value), needle


def test_zip_archive_download_extracts_registered_members(monkeypatch, online, isolated: Path, tmp_path: Path) -> None:
    url = "https://files.example/ml-100k.zip"
    files = movielens_files()
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(f"ml-100k/{name}", content)
        zf.writestr("ml-100k/mku.sh", "#!/bin/sh\n")  # not registered: not extracted
    for name, content in files.items():
        register(monkeypatch, f"movielens-100k/ml-100k/{name}", content,
                 sources=(Source(url, member=f"ml-100k/{name}"),))
    server = online({url: archive})
    ml = data.load_movielens_100k("u1")
    assert ml.item_titles[1] == "Café Noir, Le (1995)" and ml.train.shape == (2, 4)
    assert len(server.calls) == 1  # one download fills the cache with every registered member
    assert all_files(isolated) == sorted(f"movielens-100k/ml-100k/{name}" for name in files)


def test_tar_archive_download_and_corrupt_archive(monkeypatch, online, isolated: Path, tmp_path: Path) -> None:
    url = "http://www.example.edu/rt-polaritydata.tar.gz"
    neg, pos = b"bad .\n", b"good .\n"
    archive = tmp_path / "rt.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, content in (("rt-polarity.neg", neg), ("rt-polarity.pos", pos)):
            info = tarfile.TarInfo(f"other-folder-name/{name}")  # found by file name
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    for name, content in (("rt-polarity.neg", neg), ("rt-polarity.pos", pos)):
        register(monkeypatch, f"mr-polarity/{name}", content, sources=(Source(url, member=f"rt-polaritydata/{name}"),))
    online({url: archive})
    sentences, labels = data.load_mr_polarity()
    assert sentences == ["bad .", "good ."] and labels.tolist() == [0, 1]
    assert all_files(isolated) == ["mr-polarity/rt-polarity.neg", "mr-polarity/rt-polarity.pos"]

    for path in (isolated / "mr-polarity").iterdir():
        path.unlink()
    archive.write_bytes(archive.read_bytes()[:40])  # truncated archive
    with pytest.raises(data.DataNotFoundError, match="unreadable or truncated"):
        data.load_mr_polarity()
    assert all_files(isolated) == []


# ------------------------------------------------------------------------------- digit canvas
def tight_crop(image: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(image)
    return image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def random_digits(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    images = (rng.random((n, h, w)) < rng.uniform(0.05, 0.5)) * rng.integers(1, 256, size=(n, h, w))
    images = images.astype(np.uint8)
    images[0] = 0  # a blank image must never be used
    images[1, h // 2, w // 2] = 200  # at least one non-blank image
    return images, rng.integers(0, 10, size=n)


@pytest.mark.parametrize("seed", range(8))
def test_make_digit_canvas_boxes_masks_and_crops(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n_src, h, w = int(rng.integers(2, 12)), int(rng.integers(3, 15)), int(rng.integers(3, 15))
    images, labels = random_digits(rng, n_src, h, w)
    size = int(rng.integers(max(h, w), 48))
    lo = int(rng.integers(1, 4))
    hi = lo + int(rng.integers(0, 3))
    n = int(rng.integers(1, 6))
    out = data.make_digit_canvas(images, labels, n, canvas_size=size, digits_per_canvas=(lo, hi), seed=seed)
    assert out.images.shape == (n, size, size) and out.images.dtype == images.dtype
    assert out.masks.shape == out.instance_masks.shape == (n, size, size)
    assert len(out.boxes) == len(out.labels) == len(out.source_indices) == n
    for c in range(n):
        boxes, sources = out.boxes[c], out.source_indices[c]
        assert boxes.dtype == np.float32 and boxes.shape == (len(sources), 4) and 1 <= len(sources) <= hi
        np.testing.assert_array_equal(out.labels[c], labels[sources])
        covered = np.zeros((size, size), dtype=bool)
        for j, (box, src) in enumerate(zip(boxes.astype(int), sources, strict=True)):
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            assert images[src].any()
            np.testing.assert_array_equal(out.images[c, y1:y2, x1:x2], tight_crop(images[src]))
            assert not covered[y1:y2, x1:x2].any(), "boxes of one canvas overlap"
            covered[y1:y2, x1:x2] = True
            rows, cols = np.nonzero(out.instance_masks[c] == j + 1)
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x1, y1, x2, y2)  # tight box
            assert (out.masks[c][rows, cols] == labels[src] + 1).all()
        on = out.images[c] != 0
        assert not on[~covered].any(), "a digit pixel lies outside every box"
        np.testing.assert_array_equal(out.masks[c] != 0, on)
        np.testing.assert_array_equal(out.instance_masks[c] != 0, on)
    again = data.make_digit_canvas(images, labels, n, canvas_size=size, digits_per_canvas=(lo, hi), seed=seed)
    np.testing.assert_array_equal(again.images, out.images)
    np.testing.assert_array_equal(again.instance_masks, out.instance_masks)
    for a, b in zip(again.boxes, out.boxes, strict=True):
        np.testing.assert_array_equal(a, b)


def test_make_digit_canvas_seed_changes_output_and_edge_cases() -> None:
    rng = np.random.default_rng(0)
    images, labels = random_digits(rng, 20, 10, 10)
    a = data.make_digit_canvas(images, labels, 6, canvas_size=40, seed=1)
    b = data.make_digit_canvas(images, labels, 6, canvas_size=40, seed=2)
    assert not np.array_equal(a.images, b.images)
    empty = data.make_digit_canvas(images, labels, 0, canvas_size=40)
    assert empty.images.shape == (0, 40, 40) and empty.boxes == []
    single = data.make_digit_canvas(images[1:2], labels[1:2], 3, canvas_size=10, digits_per_canvas=1)
    assert [len(b) for b in single.boxes] == [1, 1, 1]
    crowded = data.make_digit_canvas(images, labels, 5, canvas_size=10, digits_per_canvas=(4, 4))
    assert all(1 <= len(b) <= 4 for b in crowded.boxes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"images": np.zeros((2, 5))}, "images must have shape"),
    ({"labels": np.zeros(3, dtype=int)}, "labels must have shape"),
    ({"labels": np.array([0.5, 1.0])}, "non-negative integers"),
    ({"digits_per_canvas": (0, 2)}, "digits_per_canvas"),
    ({"digits_per_canvas": (3, 2)}, "digits_per_canvas"),
    ({"canvas_size": 4}, "smaller than the source"),
    ({"n_canvases": -1}, "n_canvases"),
    ({"images": np.zeros((2, 5, 5), dtype=np.uint8)}, "blank"),
])
def test_make_digit_canvas_validates(kwargs: dict, message: str) -> None:
    args = {"images": np.ones((2, 5, 5), dtype=np.uint8), "labels": np.array([1, 2]), "n_canvases": 2,
            "canvas_size": 16} | kwargs
    with pytest.raises(ValueError, match=message):
        data.make_digit_canvas(**args)


# ---------------------------------------------------------------------------- the real mirror
def test_real_mirror_checksums(real_mirror: Path) -> None:
    missing = []
    for key, resource in data.REGISTRY.items():
        if (real_mirror / key).is_file():
            assert data.fetch(key, download=False) == real_mirror / key  # verifies its sha256
        else:
            missing.append(resource.dataset)
    assert set(missing) == {"fashion-mnist"}, f"unexpectedly missing from the mirror: {missing}"


def test_real_mnist(real_mirror: Path) -> None:
    images, labels = data.load_mnist("train", download=False)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8 and labels.shape == (60000,)
    np.testing.assert_array_equal(np.bincount(labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    test_images, test_labels = data.load_mnist("test", download=False)
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,) and test_labels.max() == 9
    canvases = data.make_digit_canvas(test_images[:200], test_labels[:200], 16, canvas_size=64, seed=0)
    assert sum(len(b) for b in canvases.boxes) >= 16
    for c, boxes in enumerate(canvases.boxes):
        for j, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            src = canvases.source_indices[c][j]
            np.testing.assert_array_equal(canvases.images[c, y1:y2, x1:x2], tight_crop(test_images[src]))


def test_real_olivetti_matches_scikit_learn(real_mirror: Path) -> None:
    images, targets = data.load_olivetti_faces(download=False)
    assert images.shape == (400, 64, 64) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(targets), np.full(40, 10))
    sklearn_home = real_mirror / "scikit_learn_data"
    if not (sklearn_home / "olivetti_py3.pkz").is_file():
        pytest.skip("scikit-learn's Olivetti cache is absent from the mirror")
    from sklearn.datasets import fetch_olivetti_faces

    reference = fetch_olivetti_faces(data_home=str(sklearn_home), download_if_missing=False)
    np.testing.assert_allclose(images, reference.images, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(targets, reference.target)


def test_real_tiny_shakespeare(real_mirror: Path) -> None:
    text = data.load_tiny_shakespeare(download=False)
    assert len(text) == 1115394 and len(set(text)) == 65 and text.startswith("First Citizen:")


def test_real_cora_matches_gcn_preprocessing(real_mirror: Path) -> None:
    import networkx as nx

    cora = data.load_cora(download=False)
    assert cora.features.shape == (2708, 1433) and cora.features.dtype == np.float32
    assert cora.num_classes == 7 and set(np.unique(cora.labels)) == set(range(7))
    assert (len(cora.train_idx), len(cora.val_idx), len(cora.test_idx)) == (140, 500, 1000)
    np.testing.assert_array_equal(cora.test_idx, np.arange(1708, 2708))
    np.testing.assert_array_equal(np.bincount(cora.labels[cora.train_idx]), np.full(7, 20))
    assert cora.edge_index.shape == (2, 10556) and not (cora.edge_index[0] == cora.edge_index[1]).any()

    # Oracle: GCN's reference preprocessing (Kipf & Welling), with plain pickle and networkx.
    def raw(suffix):
        with warnings.catch_warnings(), open(real_mirror / "cora" / f"ind.cora.{suffix}", "rb") as f:
            warnings.simplefilter("ignore", DeprecationWarning)
            return pickle.load(f, encoding="latin1")

    test_reorder = np.loadtxt(real_mirror / "cora" / "ind.cora.test.index", dtype=np.int64)
    test_range = np.sort(test_reorder)
    features = sp.vstack((raw("allx"), raw("tx"))).tolil()
    features[test_reorder, :] = features[test_range, :]
    labels = np.vstack((raw("ally"), raw("ty")))
    labels[test_reorder, :] = labels[test_range, :]
    np.testing.assert_array_equal(cora.features, features.toarray())
    np.testing.assert_array_equal(cora.labels, labels.argmax(1))
    graph = nx.from_dict_of_lists(raw("graph"))
    assert 2 * graph.number_of_edges() == 10556
    ours = set(zip(*cora.edge_index.tolist(), strict=True))
    assert ours == {(u, v) for u, v in graph.edges()} | {(v, u) for u, v in graph.edges()}
    np.testing.assert_array_equal(cora.adjacency().toarray(), nx.to_numpy_array(graph, nodelist=range(2708)))


def test_real_movielens(real_mirror: Path) -> None:
    ml = data.load_movielens_100k("u1", download=False)
    assert ml.ratings.shape == (100000, 4) and (ml.n_users, ml.n_items) == (943, 1682)
    assert len(np.unique(ml.ratings[:, 0])) == 943 and len(np.unique(ml.ratings[:, 1])) == 1682
    assert ml.ratings[:, :2].min() == 0 and set(np.unique(ml.ratings[:, 2])) == {1, 2, 3, 4, 5}
    assert np.bincount(ml.ratings[:, 0]).min() >= 20
    assert ml.train.shape == (80000, 4) and ml.test.shape == (20000, 4)
    assert len(ml.item_titles) == 1682 and ml.item_titles[0] == "Toy Story (1995)"
    assert "Misérables, Les (1995)" in ml.item_titles  # Latin-1 decoding
    assert ml.item_genres.shape == (1682, 19) and len(ml.genre_names) == 19 and ml.genre_names[0] == "unknown"


TEST_FIRST_SENTENCE = [("What", "PRON"), ("if", "SCONJ"), ("Google", "PROPN"), ("Morphed", "VERB"), ("Into", "ADP"),
                       ("GoogleOS", "PROPN"), ("?", "PUNCT")]


def test_real_ud_english(real_mirror: Path) -> None:
    upos = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
            "PUNCT", "SCONJ", "SYM", "VERB", "X"}
    for split, (n_sentences, n_words) in {"train": (12544, 204577), "dev": (2001, 25147), "test": (2077, 25094)}.items():
        sentences = data.load_ud_english(split, download=False)
        assert len(sentences) == n_sentences, split
        assert sum(len(s) for s in sentences) == n_words, split
        assert {tag for s in sentences for _, tag in s} <= upos
    assert sentences[0] == TEST_FIRST_SENTENCE


def test_real_mr_polarity(real_mirror: Path) -> None:
    sentences, labels = data.load_mr_polarity(download=False)
    assert len(sentences) == 10662 and labels.shape == (10662,)
    np.testing.assert_array_equal(np.bincount(labels), [5331, 5331])
    assert sentences[0] == "simplistic , silly and tedious ."


def test_real_brown_matches_nltk(real_mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk
    from nltk.corpus.reader import CategorizedTaggedCorpusReader

    sentences = data.load_brown(download=False)
    assert len(sentences) == 57340 and sum(len(s) for s in sentences) == 1161192
    humor = data.load_brown(tagged=True, categories="humor", download=False)
    monkeypatch.setattr(nltk.data, "path", [str(real_mirror / "nltk_data")])  # NLTK reads only below its data path
    pointer = nltk.data.ZipFilePathPointer(str(real_mirror / "nltk_data" / "corpora" / "brown.zip"), "brown/")
    reader = CategorizedTaggedCorpusReader(pointer, r"c[a-z]\d\d", cat_file="cats.txt", encoding="ascii")
    assert humor == [list(s) for s in reader.tagged_sents(categories="humor")]
    ca01 = [list(s) for s in reader.sents(fileids="ca01")]
    assert sentences[:len(ca01)] == ca01
