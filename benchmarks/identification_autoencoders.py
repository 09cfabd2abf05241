"""Face verification on unseen people, denoising, anomaly detection and triplet-loss speed (lectures 10-11).

Four experiments with ``course_lib.identification`` and ``course_lib.autoencoders``:

1. **Verification on unseen Olivetti identities.** Identity 4-fold cross-validation
   (``identity_folds``): the 40 people in 4 folds of 10; in each fold those 10 are the test
   people, 5 of the others validation people and 25 training people (one split of 10 people is not
   enough: trained with flips and shifts alone, the same network verified 94 % of one such split and
   85-90 % of others). Embeddings
   compared: ``EmbeddingNet`` trained with the triplet loss -- FaceNet's formulation (squared
   distances of unit vectors, alpha = 0.2) with batch-all, semi-hard and batch-hard mining, and
   batch-hard as Hermans et al. (2017) recommend it (plain Euclidean distances, margin 1.0; on
   squared distances the hardest triplets pull every embedding together and the loss sticks at
   alpha) -- on P x K batches of 15 people x 4 images, augmented by flips, small random affines and
   brightness/contrast jitter (``_augment``); the
   DeepFace-style baseline (the same network with a 25-way classifier on top, cross-entropy; its
   L2-normalised penultimate layer as descriptor), the classical Fisherfaces (whitened PCA to N - c
   dimensions, then LDA, with scikit-learn: what a linear method learns from the same 25 people)
   and raw pixels (centred, normalised); and two ensembles made without retraining, by
   concatenating unit descriptors (``VERIFICATION_ENSEMBLES``): the three triplet embeddings that
   train well, and those three with Fisherfaces. Every
   descriptor is the normalised mean of the image's and its mirror image's (flip test-time
   augmentation). Pairs: LFW-style balanced pairs (all same-person pairs, as many different-person
   pairs). The threshold is chosen on the validation people and applied to the test people;
   reported: that accuracy (mean over the folds and fold by fold), the best-threshold accuracy on
   the test people and the ROC-AUC. Sizes depend on the device (``VERIFICATION_SIZES``): on a CPU
   the faces are average-pooled to 32x32 and the network is narrow (16-32-64 channels), on a GPU
   64x64 faces and 32-64-128 channels.
2. **Denoising (MNIST).** One ``ConvAutoencoder`` per noise kind, trained on (noisy, clean) pairs
   with the level drawn per batch from the table's levels; PSNR of the noisy input and of the
   output against the clean test image, per level.
3. **Anomaly detection (MNIST).** A ``ConvAutoencoder`` with a tight (k = 8) and a wide (k = 32)
   code, trained on every digit but one; the reconstruction error (plain MSE, and relative to the
   image's energy) scores the test set; ROC-AUC of held-out digit vs the other digits, and of
   random stroke images vs digits.
4. **Speed.** ``batch_hard_triplet_loss`` (vectorised, O(N^2)) vs a Python loop over all valid
   triplets computing the same value, at batch sizes 32-512 (P x K batches with K = 4).

``--only verification`` (or any of ``PARTS``) re-runs some experiments and merges them into the
committed record. ``--smoke`` shrinks every experiment to seconds (a few training steps: its accuracies are not
meaningful).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.autoencoders import ConvAutoencoder, add_noise, psnr, reconstruction_error
from course_lib.data import load_mnist, load_olivetti_faces, make_stroke_images
from course_lib.identification import (
    EmbeddingNet,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    best_threshold_accuracy,
    count_triplets,
    identity_folds,
    pairwise_distances,
    roc_auc,
    semi_hard_triplets,
    triplet_loss,
    verification_accuracy,
    verification_pairs,
)
from course_lib.regularization import random_augment
from course_tools.benchmarking import BenchmarkReport, benchmark_main, time_call

MARGIN = 0.2  # FaceNet's alpha, on squared distances between unit vectors (which lie in [0, 4])
#: Hermans et al.'s batch-hard margin, on plain Euclidean distances between unit vectors ([0, 2])
EUCLIDEAN_MARGIN = 1.0
#: name -> (mining, squared distances?, margin); "classifier" is the DeepFace-style baseline
VERIFICATION_METHODS = {
    "triplet loss, batch-hard (Euclidean, margin 1.0)": ("batch-hard", False, EUCLIDEAN_MARGIN),
    "triplet loss, batch-hard (squared, alpha 0.2)": ("batch-hard", True, MARGIN),
    "triplet loss, semi-hard (squared, alpha 0.2)": ("semi-hard", True, MARGIN),
    "triplet loss, batch-all (squared, alpha 0.2)": ("batch-all", True, MARGIN),
    "DeepFace-style classifier features": ("classifier", True, 0.0),
    "Fisherfaces (PCA + LDA, scikit-learn; no network)": ("fisherfaces", True, 0.0),
    "raw pixels": (None, True, 0.0),
}
#: descriptors made by concatenating the members' unit descriptors (each member weighs the same; no
#: retraining): the three triplet embeddings that train well (FaceNet's batch-hard on squared
#: distances collapses, see above), and the same with the linear Fisherfaces beside them
VERIFICATION_ENSEMBLES = {
    "ensemble of the triplet embeddings (batch-hard Euclidean + semi-hard + batch-all)": (
        "triplet loss, batch-hard (Euclidean, margin 1.0)",
        "triplet loss, semi-hard (squared, alpha 0.2)",
        "triplet loss, batch-all (squared, alpha 0.2)",
    ),
    "ensemble of the triplet embeddings + Fisherfaces": (
        "triplet loss, batch-hard (Euclidean, margin 1.0)",
        "triplet loss, semi-hard (squared, alpha 0.2)",
        "triplet loss, batch-all (squared, alpha 0.2)",
        "Fisherfaces (PCA + LDA, scikit-learn; no network)",
    ),
}
#: verification sizes: face side (pixels), EmbeddingNet widths, training steps
VERIFICATION_SIZES = {
    "smoke": {"side": 32, "widths": (8, 16, 32), "steps": 12},
    "cpu": {"side": 32, "widths": (16, 32, 64), "steps": 1500},
    "cuda": {"side": 64, "widths": (32, 64, 128), "steps": 1500},
}
NOISE_LEVELS = {"gaussian": [0.1, 0.3, 0.5], "masking": [0.25, 0.5, 0.75], "salt_pepper": [0.1, 0.2, 0.4]}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------------------------
# 1. verification on unseen people
# --------------------------------------------------------------------------------------------
def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips; one random affine per image (``random_augment``: rotation up to
    10 degrees, zoom 0.9-1.1, shifts up to 1/16 of the side, mean-grey fill); contrast and
    brightness jitter of +-0.2 (the faces are standardised). x: (N, 1, H, W) -> same shape."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    x = random_augment(x, gen, max_angle=10.0, max_shift=x.shape[-1] / 16, scale_range=(0.9, 1.1))
    contrast, brightness = (0.2 * (2 * torch.rand(2, n, 1, 1, 1, generator=gen) - 1)).to(x.device)
    return x * (1 + contrast) + brightness


def _pk_batch(labels: np.ndarray, p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    people = rng.choice(np.unique(labels), size=p, replace=False)
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in people])


def _triplet_step_loss(
    mining: str, emb: torch.Tensor, labels: torch.Tensor, squared: bool = True, margin: float = MARGIN
) -> torch.Tensor:
    if mining == "batch-hard":
        return batch_hard_triplet_loss(emb, labels, margin, squared=squared)
    if mining == "batch-all":
        return batch_all_triplet_loss(emb, labels, margin, squared=squared)
    if not squared:
        raise ValueError("semi-hard mining is trained with FaceNet's squared distances here")
    a, p, n = semi_hard_triplets(emb, labels, margin)
    return triplet_loss(emb[a], emb[p], emb[n], margin)


def _train_embedding(
    x, y, mining: str, steps: int, device, widths, seed: int = 0, squared: bool = True, margin: float = MARGIN
) -> EmbeddingNet:
    """mining: 'batch-hard' | 'semi-hard' | 'batch-all' (triplet loss) or 'classifier' (DeepFace baseline)."""
    torch.manual_seed(seed)
    net = EmbeddingNet(64, widths=widths, dropout=0.2, normalize=mining != "classifier").to(device)
    people = np.unique(y)
    head = nn.Linear(64, len(people)).to(device) if mining == "classifier" else None
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    class_of = {c: i for i, c in enumerate(people)}
    net.train()
    for _ in range(steps):
        idx = _pk_batch(y, min(15, len(people)), 4, rng)
        xb = _augment(x[idx], gen).to(device)
        yb = torch.tensor([class_of[c] for c in y[idx]], device=device)
        out = net(xb)
        loss = (
            F.cross_entropy(head(out), yb) if head is not None else _triplet_step_loss(mining, out, yb, squared, margin)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


class _Fisherfaces:
    """The classical reference (Belhumeur, Hespanha & Kriegman, 1997): PCA to N - c dimensions
    (N training photos, c people; whitened), then LDA to c - 1, fitted with scikit-learn on the
    training photos and their mirror images. ``features`` maps (N, 1, H, W) -> (N, c - 1)."""

    def __init__(self, x: torch.Tensor, y: np.ndarray) -> None:
        from sklearn.decomposition import PCA
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        flat = torch.cat([x, x.flip(-1)]).flatten(1).double().numpy()
        yy = np.concatenate([y, y])
        self.pca = PCA(len(x) - len(np.unique(y)), whiten=True, svd_solver="full").fit(flat)
        self.lda = LinearDiscriminantAnalysis().fit(self.pca.transform(flat), yy)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.lda.transform(self.pca.transform(x.flatten(1).double().numpy())))


@torch.no_grad()
def _descriptors(net: EmbeddingNet | _Fisherfaces | None, x: torch.Tensor, device) -> torch.Tensor:
    """Unit descriptors (N, D): the normalised mean of the image's and its mirror image's."""

    def one(z: torch.Tensor) -> torch.Tensor:
        if isinstance(net, _Fisherfaces):
            return F.normalize(net.features(z).float(), dim=1)
        if net is None:  # raw pixels, centred per image
            flat = z.flatten(1)
            return F.normalize(flat - flat.mean(1, keepdim=True), dim=1)
        return F.normalize(net.features(z.to(device)), dim=1).cpu()

    return F.normalize(one(x) + one(x.flip(-1)), dim=1)


def _concatenate(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, test) unit descriptors of several methods -> their normalised concatenation."""
    return tuple(F.normalize(torch.cat([p[i] for p in parts], dim=1), dim=1) for i in range(2))


def _pair_distances(desc: torch.Tensor, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_same = int(sum(c * (c - 1) // 2 for c in np.unique(labels, return_counts=True)[1]))
    i, j, same = verification_pairs(labels, 2 * n_same, seed=seed)
    d = pairwise_distances(desc.double(), squared=False).numpy()
    return d[i, j], same


#: identity cross-validation: the 40 people in 4 folds of 10; each fold is the test set once
VERIFICATION_FOLDS = 4
VERIFICATION_GOAL = 95.0  # %, the triplet embedding at the validation threshold, mean over the folds


def _verification(report: BenchmarkReport, smoke: bool, device) -> None:
    images, labels = load_olivetti_faces()
    x = torch.from_numpy(images)[:, None]
    x = (x - x.mean()) / x.std()
    folds = identity_folds(labels, VERIFICATION_FOLDS, 5)[: 1 if smoke else None]
    size = VERIFICATION_SIZES["smoke" if smoke else device.type]
    steps, widths, side = size["steps"], size["widths"], size["side"]
    if side < x.shape[-1]:
        x = F.avg_pool2d(x, x.shape[-1] // side)
    names = list(VERIFICATION_METHODS)
    scope = "fold 1 only" if smoke else "mean over the folds"
    exp = f"verification, unseen Olivetti people (identity {VERIFICATION_FOLDS}-fold cross-validation)"
    descs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # name -> per fold (validation, test)

    def add_rows(name: str, seconds: list[float]) -> None:
        accs, bests, aucs = [], [], []
        for (d_val_desc, d_test_desc), (_, val, test) in zip(descs[name], folds):
            d_val, s_val = _pair_distances(d_val_desc, labels[val], seed=2)
            d_test, s_test = _pair_distances(d_test_desc, labels[test], seed=3)
            _, threshold = best_threshold_accuracy(d_val, s_val)
            accs.append(100 * verification_accuracy(d_test, s_test, threshold))
            bests.append(100 * best_threshold_accuracy(d_test, s_test)[0])
            aucs.append(roc_auc(d_test, s_test))
        mean_s = round(float(np.mean(seconds)), 1) if seconds else math.nan
        per_fold = " / ".join(f"{a:.1f}" for a in accs)
        print(f"verification {name}: {per_fold} %", file=sys.stderr, flush=True)
        report.add_row(
            exp, name, "accuracy at the validation threshold, mean over the folds, %", float(np.mean(accs)), mean_s
        )
        report.add_row(exp, name, "accuracy at the validation threshold, fold by fold, %", per_fold, math.nan)
        report.add_row(
            exp, name, "best-threshold accuracy on the test people, mean, %", float(np.mean(bests)), math.nan
        )
        report.add_row(exp, name, "ROC-AUC, mean over the folds", float(np.mean(aucs)), math.nan)
        report.figures[f"verification accuracy on unseen people, {name} (%)"] = float(np.mean(accs))

    for name in names:
        mining, squared, margin = VERIFICATION_METHODS[name]
        descs[name], seconds = [], []
        for k, (train, val, test) in enumerate(folds):
            start = time.perf_counter()
            net = (
                None
                if mining is None
                else _Fisherfaces(x[train], labels[train])
                if mining == "fisherfaces"
                else _train_embedding(
                    x[train], labels[train], mining, steps, device, widths, squared=squared, margin=margin
                )
            )
            seconds.append(time.perf_counter() - start)
            descs[name].append((_descriptors(net, x[val], device), _descriptors(net, x[test], device)))
            print(f"verification {name}, fold {k + 1}/{len(folds)} ({seconds[-1]:.0f} s)", file=sys.stderr, flush=True)
        add_rows(name, seconds)
    for name, members in VERIFICATION_ENSEMBLES.items():
        if all(m in descs for m in members):
            descs[name] = [_concatenate([descs[m][k] for m in members]) for k in range(len(folds))]
            add_rows(name, [])
    main = names[0]
    got = report.figures[f"verification accuracy on unseen people, {main} (%)"]
    report.notes += [
        f"verification: identity {VERIFICATION_FOLDS}-fold cross-validation (identity_folds; {scope}): each fold's 10 people are "
        f"the test people, 5 of the other 30 the validation people and 25 the training people; {side}x{side} faces, "
        f"EmbeddingNet widths {widths}, {steps} steps of 15x4 images per fold; flip test-time augmentation; the "
        f"threshold is chosen on the validation people (balanced pairs) and applied to the test people's "
        f"{len(folds)} x 900 balanced pairs; {count_triplets(labels[folds[0][0]]):,} valid triplets among the "
        f"{len(folds[0][0])} training images of a fold",
        f"target: {main} >= {VERIFICATION_GOAL:.0f} % at the validation threshold, {scope} "
        f"({got:.2f} %, {'met' if got >= VERIFICATION_GOAL else 'NOT met'})",
    ]


# --------------------------------------------------------------------------------------------
# 2. denoising and 3. anomaly detection
# --------------------------------------------------------------------------------------------
def _mnist(split: str, n: int) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = load_mnist(split)
    return torch.from_numpy(images[:n]).float().div(255)[:, None], labels[:n]


def _train_autoencoder(
    x: torch.Tensor, epochs: int, device, corrupt=None, seed: int = 0, latent_dim: int = 32
) -> ConvAutoencoder:
    """Train on (corrupt(x_batch), x_batch) with binary cross-entropy (pixels in [0, 1]); Adam, batch 128."""
    torch.manual_seed(seed)
    model = ConvAutoencoder(latent_dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator(device=device).manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, len(x), 128):
            clean = x[order[start : start + 128]].to(device)
            noisy = corrupt(clean, gen) if corrupt else clean
            loss = F.binary_cross_entropy(model(noisy), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def _denoising(report: BenchmarkReport, smoke: bool, device) -> None:
    x_train, _ = _mnist("train", 512 if smoke else 60000)
    x_test, _ = _mnist("test", 256 if smoke else 10000)
    epochs = 1 if smoke else 5
    kinds = ["gaussian", "masking"] if smoke else list(NOISE_LEVELS)
    for kind in kinds:
        levels = NOISE_LEVELS[kind]

        def corrupt(batch, gen, kind=kind, levels=levels):
            level = levels[int(torch.randint(len(levels), (1,), generator=gen, device=gen.device))]
            return add_noise(batch, kind, level, gen).clamp(0, 1)

        start = time.perf_counter()
        model = _train_autoencoder(x_train, epochs, device, corrupt)
        seconds = time.perf_counter() - start
        gen = torch.Generator(device=device).manual_seed(123)
        for level in levels:
            clean = x_test.to(device)
            noisy = add_noise(clean, kind, level, gen).clamp(0, 1)
            with torch.no_grad():
                denoised = torch.cat([model(noisy[s : s + 1000]) for s in range(0, len(noisy), 1000)])
            setting = f"{kind}, level {level:g}"
            report.add_row(
                "denoising, MNIST test", setting, "PSNR of the noisy input, dB", psnr(noisy, clean).item(), math.nan
            )
            report.add_row(
                "denoising, MNIST test",
                setting,
                "PSNR of the denoised output, dB",
                psnr(denoised, clean).item(),
                round(seconds, 1) if level == levels[0] else math.nan,
            )
            report.figures[f"denoised PSNR, {kind} {level:g} (dB)"] = psnr(denoised, clean).item()
    report.notes.append(
        f"denoising: ConvAutoencoder(32), {epochs} epoch(s), level drawn per batch from the "
        "kind's levels, noisy inputs clipped to [0, 1]; PSNR against the clean test image"
    )


#: the anomaly detector's bottleneck sizes: a tight code (the lecture's detector) and a wide one
ANOMALY_LATENTS = (8, 32)


def _anomaly(report: BenchmarkReport, smoke: bool, device) -> None:
    x_train, y_train = _mnist("train", 1024 if smoke else 60000)
    x_test, y_test = _mnist("test", 512 if smoke else 10000)
    epochs = 1 if smoke else 5
    from sklearn.metrics import roc_auc_score

    strokes = torch.from_numpy(make_stroke_images(200 if not smoke else 50, seed=0).images)[:, None].to(device)
    for held_out in [8] if smoke else [2, 5, 8]:
        normal = x_test[y_test != held_out].to(device)
        is_stroke = np.r_[np.zeros(len(normal)), np.ones(len(strokes))]
        for k in ANOMALY_LATENTS:
            start = time.perf_counter()
            model = _train_autoencoder(x_train[y_train != held_out], epochs, device, latent_dim=k)
            seconds = time.perf_counter() - start
            for score, relative in (("MSE", False), ("relative", True)):
                digit_auc = roc_auc_score(
                    y_test == held_out, reconstruction_error(model, x_test.to(device), relative=relative).cpu().numpy()
                )
                stroke_auc = roc_auc_score(
                    is_stroke,
                    reconstruction_error(model, torch.cat([normal, strokes]), relative=relative).cpu().numpy(),
                )
                report.add_row(
                    "anomaly detection, MNIST test",
                    f"digit {held_out} held out of training, k = {k}, {score}",
                    f"ROC-AUC ({int((y_test == held_out).sum())} anomalies)",
                    digit_auc,
                    round(seconds, 1),
                )
                report.add_row(
                    "anomaly detection, MNIST test",
                    f"stroke images among digits (model without {held_out}), k = {k}, {score}",
                    f"ROC-AUC ({len(strokes)} anomalies)",
                    stroke_auc,
                    math.nan,
                )
                report.figures[f"anomaly ROC-AUC, digit {held_out} held out, k = {k}, {score} score"] = digit_auc
                report.figures[f"anomaly ROC-AUC, strokes (model without {held_out}), k = {k}, {score} score"] = (
                    stroke_auc
                )
    report.notes.append(
        f"anomaly: ConvAutoencoder(k) for k in {ANOMALY_LATENTS}, trained {epochs} epoch(s) on the other digits; "
        "score = per-image reconstruction MSE, or the squared error relative to the image's energy "
        "(reconstruction_error(..., relative=True))"
    )


# --------------------------------------------------------------------------------------------
# 4. speed of batch-hard vs a loop over all triplets
# --------------------------------------------------------------------------------------------
def _loop_batch_hard(emb: torch.Tensor, labels: list[int], margin: float) -> float:
    """The batch-hard loss by enumerating every valid triplet: per anchor, the max over (p, n) of the hinge."""
    d = pairwise_distances(emb).tolist()
    n = len(labels)
    total, anchors = 0.0, 0
    for a in range(n):
        worst = None
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            for q in range(n):
                if labels[q] != labels[a]:
                    value = max(d[a][p] - d[a][q] + margin, 0.0)
                    worst = value if worst is None or value > worst else worst
        if worst is not None:
            total += worst
            anchors += 1
    return total / anchors


def _speed(report: BenchmarkReport, smoke: bool) -> None:
    for n in [32, 64] if smoke else [32, 64, 128, 256, 512]:
        g = torch.Generator().manual_seed(n)
        emb = F.normalize(torch.randn(n, 64, generator=g), dim=1)
        labels = torch.arange(n) // 4
        vec = time_call(lambda emb=emb, labels=labels: batch_hard_triplet_loss(emb, labels, MARGIN), repeat=5)
        lab = labels.tolist()
        start = time.perf_counter()
        looped = _loop_batch_hard(emb, lab, MARGIN)
        loop = time.perf_counter() - start
        ours = batch_hard_triplet_loss(emb, labels, MARGIN).item()
        if not math.isclose(looped, ours, rel_tol=1e-4, abs_tol=1e-6):
            raise AssertionError(f"batch_hard_triplet_loss {ours} != loop over all triplets {looped} at N={n}")
        setting = f"N = {n} ({n // 4} people x 4, {count_triplets(lab):,} triplets)"
        report.add_row("speed: batch-hard loss, one batch", setting, "batch_hard_triplet_loss, ms", 1e3 * vec, math.nan)
        report.add_row(
            "speed: batch-hard loss, one batch", setting, "Python loop over all triplets, ms", 1e3 * loop, math.nan
        )
        report.add_row("speed: batch-hard loss, one batch", setting, "speed-up, x", loop / vec, math.nan)
        report.figures[f"batch-hard speed-up over the triplet loop at N={n} (x)"] = loop / vec
    report.notes.append(
        "speed: batch_hard_triplet_loss median of 5 calls vs one run of a Python loop over all valid triplets "
        "computing the same value (checked); CPU, forward only"
    )


#: the parts ``--only`` can re-run on their own (e.g. verification at GPU size)
PARTS = ("verification", "denoising", "anomaly", "speed")


def run(smoke: bool, parts: tuple[str, ...] = PARTS) -> BenchmarkReport:
    device = _device()
    report = BenchmarkReport(
        title="Identification and autoencoders (course_lib.identification, course_lib.autoencoders)",
        columns=["experiment", "setting", "metric", "value", "training seconds"],
    )
    experiments = {
        "verification": lambda: _verification(report, smoke, device),
        "denoising": lambda: _denoising(report, smoke, device),
        "anomaly": lambda: _anomaly(report, smoke, device),
        "speed": lambda: _speed(report, smoke),
    }
    for part in parts:
        with report.part(part):
            experiments[part]()
            report.notes.append(f"{part}: device {device if part != 'speed' else 'cpu'}")
    return report


if __name__ == "__main__":
    benchmark_main("identification_autoencoders", run, parts=PARTS)
