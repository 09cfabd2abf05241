"""Kim's (2014) sentence CNN on MR, four embedding modes, with the course's own word2vec (lecture 13).

Kim's table (MR, 10-fold CV, 300-d GoogleNews word2vec): CNN-rand 76.1, CNN-static 81.0,
CNN-non-static 81.5, CNN-multichannel 81.1. No GoogleNews vectors exist on this machine (and
none may be downloaded), so the pretrained embeddings here are the course's own skip-gram
(:func:`course_lib.text.train_word2vec`, d = 100, 5 epochs) trained on Brown (1.16M tokens) plus
the training sentences of MR — about 1/80,000 of GoogleNews' 100 billion words, so the gain of
pretraining is expected to be smaller than Kim's.

Text: both MR and Brown are tokenised by :func:`course_lib.text.tokenize_like_kim`, the cleaning of
Kim's released code (only ASCII letters, digits and ``( ) , ! ? ' ` `` are kept; the clitics
``n't 's 've 're 'd 'll`` and ``( ) , ! ?`` are tokens of their own; lower case). It moved CNN-rand's
10-fold mean from 74.97 % (MR's own whitespace tokens) to 75.50 %.

Protocol. CNN-rand: Kim's 10-fold cross-validation -- ten seeded, stratified folds of the 10,662
sentences, each one the test set once; the model seed is the fold's number and the vocabulary is
built on the fold's training sentences. The pretrained modes (whose word2vec is trained on the
training sentences) and the baseline: one fixed, seeded, stratified 90/10 split, three model seeds.
Model as Kim: widths 3, 4, 5 with 100 filters each, ReLU,
max-over-time, dropout 0.5, l2 max-norm 3 on the output layer, Adadelta (rho 0.95), mini-batches
of 50, ``EPOCHS`` epochs (25 for CNN-rand, as Kim's code; 10 for the pretrained modes, which peak
earlier), every sentence padded with ``EDGE_PAD`` = 4 pad tokens on each side as Kim's
``get_idx_from_sent`` does (so that a width-5 filter sees the first and last words at every offset;
Kim pads every sentence further, to the longest in the corpus; here a mini-batch is cut to its
longest sentence plus the pads, which saves time and differs only in that the batch's longest
sentences get no window made of width-5 padding alone), and
Kim's early stopping: 10 % of the training sentences are held out as a
development set and the reported test accuracy is the one of the epoch with the best development
accuracy (the last epoch's test accuracy swings by several points from epoch to epoch). CNN-rand
embeds in ``RAND_DIM`` = 300 dimensions, as Kim's; the pretrained modes in the word2vec's 100.
Words missing from the word2vec vocabulary start from ``U(-a, a)`` with the pretrained vectors'
variance.
Baseline beside it: logistic regression on the average of the same word2vec vectors
(:func:`course_lib.text.average_embeddings`).

Target: CNN-rand >= 75 % (the mean over the ten folds). Each mode is a part (``--only rand``), and so is the baseline.

``--smoke``: 1,500 training and 500 test sentences, word2vec on 3,000 Brown sentences (d = 32,
one epoch), one CNN epoch, one seed; CNN-rand on two folds of 2,000 sentences.
"""

from __future__ import annotations

import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.data import load_brown, load_mr_polarity
from course_lib.text import TextCNN, Vocab, average_embeddings, tokenize_like_kim, train_word2vec
from course_tools.benchmarking import BenchmarkReport, benchmark_main

KIM_MR = {"rand": 76.1, "static": 81.0, "non-static": 81.5, "multichannel": 81.1}
RAND_DIM = 300  # Kim's k for CNN-rand
EDGE_PAD = 4  # Kim: h_max - 1 pad tokens before and after every sentence
CV_FOLDS = 10  # Kim's protocol for MR


def _folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k stratified folds (sorted index arrays): each class's shuffled examples dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(labels.size, dtype=np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold_of[idx] = np.arange(idx.size) % k
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def _cut(X: torch.Tensor, lengths: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The rows ``idx`` of the edge-padded ids, cut to their longest sentence plus the pads."""
    return X[idx, : max(5, int(lengths[idx].max()) + 2 * EDGE_PAD)]


def _split(labels: np.ndarray, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: int(round(test_frac * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def _pretrained_matrix(vocab: Vocab, kv, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    known = [i for i, w in enumerate(vocab.itos) if w in kv.key_to_index]
    std = float(kv.vectors.std())
    a = math.sqrt(3.0) * std
    mat = (torch.rand(len(vocab), kv.dim, generator=g) * 2 - 1) * a
    mat[known] = kv.vectors[[kv.key_to_index[vocab.itos[i]] for i in known]]
    mat[vocab.pad_id] = 0.0
    return mat


def _train_cnn(
    model: TextCNN, data: tuple, fit: np.ndarray, dev: np.ndarray, test: np.ndarray, epochs: int, seed: int
) -> tuple[float, int]:
    """Adadelta for ``epochs`` on the sentences ``fit`` of ``data = (ids, lengths, labels)``;
    returns the test accuracy at the epoch of best development accuracy, and that epoch."""
    X, lengths, y = data
    fit_t = torch.from_numpy(fit)
    opt = torch.optim.Adadelta([p for p in model.parameters() if p.requires_grad], lr=1.0, rho=0.95, eps=1e-6)
    g = torch.Generator().manual_seed(seed)
    best = (-1.0, 0.0, 0)  # (dev accuracy, test accuracy, epoch)
    for epoch in range(epochs):
        model.train()
        perm = fit_t[torch.randperm(len(fit_t), generator=g)]
        for s in range(0, len(perm), 50):
            idx = perm[s : s + 50]
            opt.zero_grad()
            F.cross_entropy(model(_cut(X, lengths, idx)), y[idx]).backward()
            opt.step()
            model.constrain_norm_(3.0)
        dev_acc = _accuracy(model, data, dev)
        if dev_acc > best[0]:
            best = (dev_acc, _accuracy(model, data, test), epoch + 1)
    return best[1], best[2]


@torch.no_grad()
def _accuracy(model: TextCNN, data: tuple, rows: np.ndarray) -> float:
    X, lengths, y = data
    model.eval()
    idx = torch.from_numpy(rows)
    preds = torch.cat([model(_cut(X, lengths, idx[s : s + 500])).argmax(1) for s in range(0, len(idx), 500)])
    return float((preds == y[idx]).float().mean())


#: one part per embedding mode, plus the word2vec itself and its average-embedding baseline
PARTS = ("rand", "static", "non-static", "multichannel", "baseline")
#: CNN epochs per mode (Kim's code trains 25); the reported epoch is the best development one. The
#: pretrained modes peak within 10 here (best development epochs 6-10); CNN-rand still climbs at 10.
EPOCHS = {"rand": 25, "static": 10, "non-static": 10, "multichannel": 10}
CNN_RAND_GOAL = 75.0


def _cnn_rand_cross_validation(report: BenchmarkReport, tokens: list, labels: np.ndarray, smoke: bool) -> None:
    """CNN-rand by Kim's 10-fold cross-validation: one row per fold, the mean and its standard error."""
    y_all = torch.from_numpy(labels)
    if smoke:  # two folds of 2,000 sentences, one epoch
        keep = np.sort(np.random.default_rng(0).permutation(labels.size)[:2000])
        folds = [keep[f] for f in _folds(labels[keep], 2, seed=0)]
    else:
        folds = _folds(labels, CV_FOLDS, seed=0)
    epochs, dim = (1, 32) if smoke else (EPOCHS["rand"], RAND_DIM)
    accs = []
    for k, test_idx in enumerate(folds):
        train_idx = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k]))
        fit_pos, dev_pos = _split(labels[train_idx], 0.1, seed=1)
        vocab = Vocab.build([tokens[i] for i in train_idx], min_count=1, pad="<pad>", unk="<unk>")
        data = (*vocab.encode_batch(tokens, min_len=5, edge_pad=EDGE_PAD), y_all)
        torch.manual_seed(k)
        model = TextCNN(len(vocab), dim, 2, mode="rand", padding_idx=vocab.pad_id)
        t0 = time.perf_counter()
        acc, epoch = _train_cnn(model, data, train_idx[fit_pos], train_idx[dev_pos], test_idx, epochs, seed=k)
        report.add_row(f"CNN-rand, fold {k + 1} of {len(folds)}", k, 100 * acc, epoch, KIM_MR["rand"],
                       round(time.perf_counter() - t0, 1))
        print(f"CNN-rand fold {k + 1}/{len(folds)}: {100 * acc:.2f} % (epoch {epoch})", file=sys.stderr, flush=True)
        accs.append(100 * acc)
    mean = statistics.fmean(accs)
    sem = statistics.stdev(accs) / math.sqrt(len(accs))
    report.figures["CNN-rand test accuracy % (mean)"] = mean
    report.figures["CNN-rand test accuracy, standard error over the folds (points)"] = sem
    met = "met" if mean >= CNN_RAND_GOAL else "NOT met"
    report.notes += [
        f"CNN-rand: Kim's {len(folds)}-fold cross-validation (stratified folds, seed 0; in each, 10 % of the "
        f"training sentences for early stopping and the vocabulary of the training sentences), at most {epochs} "
        f"epochs, d = {dim} embeddings, model seed = fold number",
        f"target: CNN-rand {len(folds)}-fold accuracy >= {CNN_RAND_GOAL:.0f} % ({mean:.2f} +- {sem:.2f} %, {met})",
    ]


def run(smoke: bool, parts: tuple[str, ...] = PARTS) -> BenchmarkReport:
    from sklearn.linear_model import LogisticRegression

    sentences, labels = load_mr_polarity()
    tokens = [tokenize_like_kim(s) for s in sentences]  # Kim's cleaning of the text
    train_idx, test_idx = _split(labels, 0.1, seed=0)
    if smoke:
        rng = np.random.default_rng(0)
        train_idx, test_idx = np.sort(rng.permutation(train_idx)[:1500]), np.sort(rng.permutation(test_idx)[:500])
    fit_pos, dev_pos = _split(labels[train_idx], 0.1, seed=1)  # Kim: 10 % of the training data for early stopping
    fit_idx, dev_idx = train_idx[fit_pos], train_idx[dev_pos]
    seeds = [0] if smoke else [0, 1, 2]
    kv, w2v_seconds = None, 0.0
    if any(p != "rand" for p in parts):
        brown = load_brown()[: 3000 if smoke else None]
        w2v_corpus = [tokenize_like_kim(" ".join(s)) for s in brown] + [tokens[i] for i in train_idx]
        start = time.perf_counter()
        kv = train_word2vec(
            w2v_corpus, dim=32 if smoke else 100, epochs=1 if smoke else 5, min_count=5, progress=False, seed=0
        )
        w2v_seconds = time.perf_counter() - start

    vocab = Vocab.build([tokens[i] for i in train_idx], min_count=1, pad="<pad>", unk="<unk>")
    y_all = torch.from_numpy(labels)
    data = (*vocab.encode_batch(tokens, min_len=5, edge_pad=EDGE_PAD), y_all)

    report = BenchmarkReport(
        "Kim CNN on MR with the course's own word2vec",
        ["model", "seed", "test accuracy %", "best dev epoch", "Kim (2014) %", "train s"],
    )
    if "rand" in parts:
        with report.part("rand"):
            _cnn_rand_cross_validation(report, tokens, labels, smoke)
    for mode in [p for p in parts if p in EPOCHS and p != "rand"]:
        epochs = 1 if smoke else EPOCHS[mode]
        with report.part(mode):
            accs = []
            for seed in seeds:
                torch.manual_seed(seed)
                pretrained = _pretrained_matrix(vocab, kv, seed)
                model = TextCNN(len(vocab), kv.dim, 2, mode=mode, pretrained=pretrained, padding_idx=vocab.pad_id)
                t0 = time.perf_counter()
                acc, epoch = _train_cnn(model, data, fit_idx, dev_idx, test_idx, epochs, seed)
                acc *= 100
                report.add_row(f"CNN-{mode}", seed, acc, epoch, KIM_MR[mode], round(time.perf_counter() - t0, 1))
                print(f"CNN-{mode} seed {seed}: {acc:.2f} % (epoch {epoch})", file=sys.stderr, flush=True)
                accs.append(acc)
            report.figures[f"CNN-{mode} test accuracy % (mean)"] = statistics.fmean(accs)
            report.notes.append(
                f"CNN-{mode}: the fixed split, at most {epochs} epochs, d = {kv.dim} embeddings, model seeds {seeds}"
            )

    if "baseline" in parts:
        with report.part("baseline"):
            feats = average_embeddings(tokens, kv, normalize=True).numpy()
            t0 = time.perf_counter()
            clf = LogisticRegression(max_iter=2000, C=1.0).fit(feats[fit_idx], labels[fit_idx])
            base = 100 * clf.score(feats[test_idx], labels[test_idx])
            report.add_row(
                "average of word2vec + logistic regression", 0, base, "-", "-", round(time.perf_counter() - t0, 1)
            )
            report.figures["average-embedding baseline test accuracy %"] = base
            coverage = float(np.mean([w in kv.key_to_index for w in vocab.itos[2:]]))
            report.figures["word2vec coverage of the MR training vocabulary"] = coverage
            report.figures["word2vec training s"] = w2v_seconds
            report.notes.append(
                f"embeddings: course_lib skip-gram d={kv.dim} on Brown + the MR training sentences "
                f"({len(kv)} words); no GoogleNews vectors here, so CNN-static/non-static use these"
            )
    report.notes += [
        f"pretrained modes and baseline: the fixed stratified split, {len(fit_idx)} train / {len(dev_idx)} development / "
        f"{len(test_idx)} test sentences (seeds 0 and 1), test accuracy at the best development epoch",
        "text: MR and Brown tokenised by course_lib.text.tokenize_like_kim (Kim's cleaning)",
        f"every sentence is padded with {EDGE_PAD} pad tokens on each side (Kim's get_idx_from_sent); "
        f"CNN-rand embeds in {RAND_DIM if not smoke else 32} dimensions (Kim's k = 300), the word2vec modes in "
        f"{32 if smoke else 100}",
    ]
    return report


if __name__ == "__main__":
    benchmark_main("text_cnn", run, parts=PARTS)
