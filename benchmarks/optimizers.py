"""Optimisers and batch norm on MNIST (lectures 04-05), with the course's own implementations.

Two experiments, the same ones the lectures run in full mode:

1. the same MLP (784-256-128-10, ReLU, seed 0) trained for 8 epochs with each optimiser of
   ``course_lib.optim`` (mini-batches of 128 in the same order for every optimiser);
2. a deeper ReLU MLP (784-256-256-256-10) trained with plain SGD for 2 epochs across learning rates,
   without and with ``course_lib.regularization.BatchNorm`` after each hidden linear layer.

Reported: mean training loss over the last 50 mini-batches, test accuracy on the 10,000 test
images, and wall-clock seconds. ``--smoke`` uses 1,024 training images, one epoch and two
learning rates.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from course_lib import optim as co
from course_lib import regularization as R
from course_lib.data import load_mnist
from course_lib.training import accuracy, fit
from course_tools.benchmarking import BenchmarkReport, benchmark_main

MEAN, STD = 0.1307, 0.3081
OPTIMISER_CFG = {
    "SGD": {"lr": 0.1},
    "Momentum": {"lr": 0.01, "momentum": 0.9},
    "Nesterov": {"lr": 0.01, "momentum": 0.9},
    "Adagrad": {"lr": 0.01},
    "RMSProp": {"lr": 1e-3, "alpha": 0.99},
    "Adam": {"lr": 1e-3},
}


def _flat(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div(255).sub(MEAN).div(STD).reshape(len(images), -1)


def _train(model: nn.Module, opt: torch.optim.Optimizer, X, y, epochs: int, batch: int = 128) -> list[float]:
    """Every mini-batch's loss (course_lib.training.fit: the same shuffled batches for every optimiser)."""
    history = fit(model, nn.functional.cross_entropy, opt, X, y, epochs=epochs, batch_size=batch, seed=1, progress=False)
    model.eval()
    return history.batch_loss


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def _deep_mlp(bn: bool) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    d = 784
    for h in (256, 256, 256):
        layers += [nn.Linear(d, h)] + ([R.BatchNorm(h)] if bn else []) + [nn.ReLU()]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, 10))


def run(smoke: bool) -> BenchmarkReport:
    n_train = 1024 if smoke else 60000
    n_test = 500 if smoke else 10000
    opt_epochs = 1 if smoke else 8
    bn_epochs = 1 if smoke else 2
    lrs = [0.03, 3.0] if smoke else [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]

    X_train_u8, y_train_np = load_mnist("train")
    X_test_u8, y_test_np = load_mnist("test")
    X, y = _flat(X_train_u8[:n_train]), torch.from_numpy(y_train_np[:n_train])
    X_test, y_test = _flat(X_test_u8[:n_test]), torch.from_numpy(y_test_np[:n_test])

    # warm-up: the first backward pass of a process pays one-off costs; keep them out of the timings
    _train(_mlp(), co.SGD(_mlp().parameters(), lr=0.0), X[:256], y[:256], 1)

    report = BenchmarkReport(
        title="Optimisers and batch norm on MNIST (course_lib.optim, course_lib.regularization)",
        columns=["experiment", "setting", "final training loss", "test accuracy, %", "seconds"],
    )
    for name, cfg in OPTIMISER_CFG.items():
        model = _mlp()
        start = time.perf_counter()
        losses = _train(model, co.OPTIMIZERS[name](model.parameters(), **cfg), X, y, opt_epochs)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            acc = 100 * accuracy(model(X_test), y_test)
        setting = f"{name} " + ", ".join(f"{k}={v:g}" for k, v in cfg.items())
        report.add_row(f"784-256-128-10 MLP, {opt_epochs} epoch(s)", setting, float(np.mean(losses[-50:])), acc,
                       round(seconds, 1))
        report.figures[f"{name} test accuracy (%)"] = acc

    for bn in (False, True):
        for lr in lrs:
            model = _deep_mlp(bn)
            start = time.perf_counter()
            losses = _train(model, co.SGD(model.parameters(), lr=lr), X, y, bn_epochs)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                acc = 100 * accuracy(model(X_test), y_test)
            label = "with BN" if bn else "without BN"
            report.add_row(f"784-256x3-10 MLP, SGD, {bn_epochs} epoch(s)", f"{label}, lr={lr:g}",
                           float(np.mean(losses[-50:])), acc, round(seconds, 1))
            report.figures[f"{label}, lr={lr:g}: test accuracy (%)"] = acc

    report.notes.append(
        f"{n_train} training and {n_test} test images; batch 128; final training loss = mean of the last 50 "
        "mini-batch losses (nan = diverged); seconds = training time of one run"
    )
    return report


if __name__ == "__main__":
    benchmark_main("optimizers", run)
