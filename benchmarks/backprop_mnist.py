"""Lecture 02: the fully connected MNIST network, trained with the numpy layers and with torch.

Real size: 784-512-10 ReLU networks on all 60,000 training images, tested on the 10,000 test
images. The numpy network (``course_lib.layers`` + plain SGD, float32) must reach >= 97.5 %
test accuracy, the torch network (SGD with momentum and a cosine schedule) >= 98.0 %. Both are
then evaluated on test digits shifted by 0..4 pixels (mean over up/down/left/right, zeros
entering at the border): the table is the motivation for convolutions.

``--smoke``: 2,000 training / 500 test images, 64 hidden units, one epoch (seconds).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.data import load_mnist
from course_lib.layers import Linear, ReLU, Sequential, SoftmaxCrossEntropy, sgd_step
from course_lib.regularization import shift
from course_tools.benchmarking import BenchmarkReport, benchmark_main

NUMPY_TARGET = 0.975
TORCH_TARGET = 0.980
SHIFTS = [0, 1, 2, 3, 4]
DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """images (N, H, W) -> same shape, content moved dx px right and dy px down; zeros fill the gap.

    A numpy view of course_lib.regularization.shift (tested there against exact pixel moves).
    """
    moved = shift(torch.from_numpy(np.asarray(images, dtype=np.float64))[:, None], int(dx), int(dy))
    return moved[:, 0].numpy().astype(images.dtype)


def train_numpy(X, y, hidden, epochs, rng, lr=0.1, batch=64) -> Sequential:
    """784-hidden-10 ReLU MLP from course_lib.layers, plain mini-batch SGD; lr/10 in the last two epochs."""
    model = Sequential(
        Linear(X.shape[1], hidden, rng=rng, dtype=np.float32), ReLU(), Linear(hidden, 10, rng=rng, dtype=np.float32)
    )
    loss_fn = SoftmaxCrossEntropy()
    for epoch in range(epochs):
        step = lr / 10 if epochs >= 3 and epoch >= epochs - 2 else lr
        order = rng.permutation(len(X))
        for i in range(0, len(X), batch):
            idx = order[i : i + batch]
            loss_fn.forward(model.forward(X[idx]), y[idx])
            model.backward(loss_fn.backward())
            sgd_step(model.params, model.grads, step)
    return model


def train_torch(X, y, hidden, epochs, lr=0.05, batch=128) -> torch.nn.Module:
    """The same architecture in torch: SGD with momentum 0.9 and a cosine learning-rate schedule."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * -(-len(X) // batch))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for i in range(0, len(X), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


def run(smoke: bool) -> BenchmarkReport:
    rng = np.random.default_rng(0)
    n_train, n_test = (2_000, 500) if smoke else (60_000, 10_000)
    hidden = 64 if smoke else 512
    np_epochs, torch_epochs = (1, 1) if smoke else (8, 6)

    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    pick = rng.permutation(len(train_images))[:n_train]
    train_images, train_labels = train_images[pick], train_labels[pick]
    pick = rng.permutation(len(test_images))[:n_test]
    test_images, test_labels = test_images[pick], test_labels[pick]
    mean, std = float(train_images.mean()) / 255.0, float(train_images.std()) / 255.0

    def vec(images: np.ndarray) -> np.ndarray:
        return ((images.reshape(len(images), -1).astype(np.float32) / 255.0) - mean) / std

    X_train = vec(train_images)

    start = time.perf_counter()
    np_model = train_numpy(X_train, train_labels, hidden, np_epochs, rng)
    np_seconds = time.perf_counter() - start
    start = time.perf_counter()
    t_model = train_torch(X_train, train_labels, hidden, torch_epochs)
    t_seconds = time.perf_counter() - start

    def acc_numpy(X: np.ndarray) -> float:
        pred = np.concatenate([np_model.forward(X[i : i + 2000]).argmax(1) for i in range(0, len(X), 2000)])
        return float((pred == test_labels).mean())

    @torch.no_grad()
    def acc_torch(X: np.ndarray) -> float:
        return float((t_model(torch.from_numpy(X)).argmax(1).numpy() == test_labels).mean())

    report = BenchmarkReport(
        title="Backprop: fully connected MNIST network (numpy layers vs torch) and shifted digits",
        columns=["shift (px)", "numpy MLP test accuracy (%)", "torch MLP test accuracy (%)"],
    )
    accs = {}
    for s in SHIFTS:
        moved = [vec(shift_images(test_images, s * ux, s * uy)) for ux, uy in DIRECTIONS]
        a_np = float(np.mean([acc_numpy(m) for m in moved]))
        a_t = float(np.mean([acc_torch(m) for m in moved]))
        accs[s] = (a_np, a_t)
        report.add_row(s, round(100 * a_np, 2), round(100 * a_t, 2))

    report.figures = {
        "numpy MLP test accuracy (%)": round(100 * accs[0][0], 2),
        "torch MLP test accuracy (%)": round(100 * accs[0][1], 2),
        "numpy training time (s)": round(np_seconds, 1),
        "torch training time (s)": round(t_seconds, 1),
    }
    report.notes = [
        f"784-{hidden}-10 ReLU networks, {n_train} training / {n_test} test images; numpy: {np_epochs} epochs "
        f"of plain SGD (lr 0.1, batch 64, lr/10 for the last two epochs), float32; torch: {torch_epochs} epochs "
        "of SGD momentum 0.9 (lr 0.05, batch 128, cosine schedule), float32, "
        f"{torch.get_num_threads()} threads.",
        "Shifted rows: the mean accuracy over shifts up, down, left and right, background entering at the border.",
    ]
    if not smoke:
        report.notes.append(
            f"targets: numpy >= {100 * NUMPY_TARGET:.1f} % "
            f"({'met' if accs[0][0] >= NUMPY_TARGET else 'NOT met'}), torch >= {100 * TORCH_TARGET:.1f} % "
            f"({'met' if accs[0][1] >= TORCH_TARGET else 'NOT met'})"
        )
    return report


if __name__ == "__main__":
    benchmark_main("backprop_mnist", run)
