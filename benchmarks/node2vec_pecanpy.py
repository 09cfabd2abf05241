"""node2vec of course_lib side by side with pecanpy + gensim on Cora (lecture 16).

Same graph (Cora: 2,708 nodes, 5,278 undirected citations), same walks settings and the same
classifier for both: ``num_walks`` = 10 walks per node of length 80, dimension 128, window 10, one
skip-gram epoch with 5 negatives and gensim's defaults otherwise (sample 1e-3, lr 0.025 -> 1e-4),
then logistic regression (scikit-learn, lbfgs, max_iter 2000) on the embeddings with a 50/50
stratified split of the 2,708 labelled nodes. (p, q) = (1, 1) is DeepWalk; (1, 0.5) and (4, 1) are
DFS- and BFS-leaning node2vec settings.

Three pipelines per setting and seed:

* ``pecanpy``: pecanpy 2.0.9's ``SparseOTF`` (numba, on-the-fly second-order probabilities,
  ``workers=2``) walks + gensim ``Word2Vec`` (``workers=2``) — what ``pecanpy.embed`` does;
* ``course_lib``: ``course_lib.graphs.Node2Vec`` — the vectorised walk sampler (every walk
  advances at once; alias tables + rejection sampling) + ``course_lib.text.train_word2vec``
  (2 torch threads);
* ``course_lib walks + gensim``: our walks, gensim's trainer — separates the walks' quality
  from the trainer's.

Walks/s is measured on the walk generation alone (pecanpy after a warm-up call that JIT-compiles
it; its one-off compile time is reported separately). ``--smoke``: 2 walks of length 20 per node,
dimension 32, window 5, DeepWalk only, one seed.

pecanpy 2.0.9 imports ``nptyping`` 2.5, which needs numpy < 2 (``np.bool8`` and friends);
with the course's numpy 2.4 this script restores those aliases before importing pecanpy (they
only feed type annotations). Because its declared ``numpy < 2`` would downgrade the course's numpy,
pecanpy is not a dependency of the course environment: ``make bench`` installs the pins of
``requirements/benchmark-peers.txt`` with ``--no-deps`` into ``build/bench-peers`` and puts that
folder on ``PYTHONPATH`` (the environment variable ``COURSE_BENCH_PEERS`` names it). Where pecanpy
is missing, a smoke run measures course_lib alone and says so; a real-size run stops with the command.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from course_lib.data import load_cora
from course_lib.graphs import Node2Vec, node2vec_walks
from course_tools.benchmarking import BenchmarkReport, benchmark_main

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))  # pecanpy's parallel walks; read when numba loads


def _numpy_aliases_for_nptyping() -> None:
    """nptyping 2.5 (a pecanpy dependency) reads aliases that numpy 2 removed."""
    aliases = {
        "bool8": np.bool_, "object0": np.object_, "int0": np.intp, "uint0": np.uintp, "void0": np.void,
        "bytes0": np.bytes_, "str0": np.str_, "float_": np.float64, "complex_": np.complex128,
        "unicode_": np.str_, "longfloat": np.longdouble, "singlecomplex": np.complex64, "cfloat": np.complex128,
        "longcomplex": np.clongdouble, "clongfloat": np.clongdouble, "string_": np.bytes_,
    }  # fmt: skip
    for name, value in aliases.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def _import_pecanpy(smoke: bool):
    """pecanpy's module, or None in a smoke run where it is not installed (a real-size run needs it)."""
    _numpy_aliases_for_nptyping()
    try:
        from pecanpy import pecanpy as pp
    except ImportError as exc:
        if smoke:
            return None
        raise SystemExit(
            f"pecanpy is not importable ({exc}): run `make bench` (it installs requirements/benchmark-peers.txt "
            "into build/bench-peers) or `pip install --no-deps --target build/bench-peers -r "
            "requirements/benchmark-peers.txt` and put build/bench-peers on PYTHONPATH"
        ) from exc
    return pp


def _accuracy(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
    return float(LogisticRegression(max_iter=2000).fit(Xtr, ytr).score(Xte, yte))


def _gensim_embed(walks: list[list[str]], cfg: dict, seed: int, n: int) -> tuple[np.ndarray, float]:
    from gensim.models import Word2Vec

    start = time.perf_counter()
    w2v = Word2Vec(walks, vector_size=cfg["dim"], window=cfg["window"], sg=1, min_count=0, workers=THREADS,
                   epochs=1, seed=seed)  # fmt: skip
    seconds = time.perf_counter() - start
    return np.stack([w2v.wv[str(i)] for i in range(n)]), seconds


def run(smoke: bool) -> BenchmarkReport:
    cora = load_cora()
    A = cora.adjacency()
    n = cora.num_nodes
    y = cora.labels
    cfg = {
        "num_walks": 2 if smoke else 10,
        "walk_length": 20 if smoke else 80,
        "dim": 32 if smoke else 128,
        "window": 5 if smoke else 10,
    }
    settings = [(1.0, 1.0)] if smoke else [(1.0, 1.0), (1.0, 0.5), (4.0, 1.0)]
    seeds = [0] if smoke else [0, 1, 2]

    pp = _import_pecanpy(smoke)

    report = BenchmarkReport(
        "node2vec on Cora: course_lib vs pecanpy + gensim",
        ["p", "q", "pipeline", "seed", "accuracy", "walks/s", "walk s", "train s"],
    )
    dense = A.toarray()
    ids = [str(i) for i in range(n)]
    acc: dict[tuple, list[float]] = {}
    wps: dict[tuple, list[float]] = {}
    jit_seconds = None
    for p, q in settings:
        for seed in seeds:
            rows = []
            if pp is not None:  # pecanpy: SparseOTF walks (after a JIT warm-up) + gensim
                g = pp.SparseOTF.from_mat(dense, ids, p=p, q=q, workers=THREADS, verbose=False, random_state=seed)
                start = time.perf_counter()
                g.simulate_walks(1, 5)
                if jit_seconds is None:
                    jit_seconds = time.perf_counter() - start
                start = time.perf_counter()
                walks = g.simulate_walks(cfg["num_walks"], cfg["walk_length"])
                walk_s = time.perf_counter() - start
                emb, train_s = _gensim_embed(walks, cfg, seed, n)
                rows.append(("pecanpy + gensim", _accuracy(emb, y, seed), len(walks) / walk_s, walk_s, train_s))

            # course_lib: vectorised walks + course_lib.text's skip-gram
            model = Node2Vec(dim=cfg["dim"], walk_length=cfg["walk_length"], num_walks=cfg["num_walks"], p=p, q=q,
                             window=cfg["window"], workers=THREADS, seed=seed).fit(A)  # fmt: skip
            h = model.history
            rows.append(("course_lib", _accuracy(model.embeddings.numpy(), y, seed), h["walks_per_s"],
                         h["walk_seconds"], h["train_seconds"]))  # fmt: skip

            # course_lib walks + gensim: the walks' quality alone
            start = time.perf_counter()
            ours = node2vec_walks(A, cfg["num_walks"], cfg["walk_length"], p, q, seed=seed, return_indices=True)
            walk_s = time.perf_counter() - start
            emb, train_s = _gensim_embed([[str(i) for i in w] for w in ours.tolist()], cfg, seed, n)
            rows.append(("course_lib walks + gensim", _accuracy(emb, y, seed), len(ours) / walk_s, walk_s, train_s))

            for name, a, rate, ws, ts in rows:
                report.add_row(p, q, name, seed, a, round(rate), round(ws, 2), round(ts, 2))
                acc.setdefault((p, q, name), []).append(a)
                wps.setdefault((p, q, name), []).append(rate)
    for (p, q, name), values in acc.items():
        report.figures[f"p={p:g} q={q:g} {name}: accuracy (mean)"] = statistics.fmean(values)
        report.figures[f"p={p:g} q={q:g} {name}: walks/s (mean)"] = statistics.fmean(wps[(p, q, name)])
    if pp is None:
        report.notes.append("pecanpy is not installed here: only course_lib was measured (make bench installs the "
                            "peers of requirements/benchmark-peers.txt)")
        return report
    for p, q in settings:
        ours, theirs = acc[(p, q, "course_lib")], acc[(p, q, "pecanpy + gensim")]
        report.figures[f"p={p:g} q={q:g}: accuracy course_lib - pecanpy (points)"] = 100 * (
            statistics.fmean(ours) - statistics.fmean(theirs)
        )
        report.figures[f"p={p:g} q={q:g}: walk throughput course_lib / pecanpy (x)"] = statistics.fmean(
            wps[(p, q, "course_lib")]
        ) / statistics.fmean(wps[(p, q, "pecanpy + gensim")])
    report.figures["pecanpy JIT warm-up (s)"] = jit_seconds or 0.0
    report.notes += [
        f"pecanpy {getattr(pp, '__version__', '2.0.9')} SparseOTF, "
        f"workers={THREADS} (NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}); gensim Word2Vec workers="
        f"{THREADS}; course_lib torch threads={THREADS} (walks are numpy, single-threaded)",
        f"Cora {n} nodes; {cfg['num_walks']} walks/node x {cfg['walk_length']} nodes, d={cfg['dim']}, window "
        f"{cfg['window']}, 1 epoch, 5 negatives, sample 1e-3; logistic regression, 50/50 stratified split "
        "(random_state = seed)",
    ]
    return report


if __name__ == "__main__":
    benchmark_main("node2vec_pecanpy", run)
