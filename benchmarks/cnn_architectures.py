"""CNN architectures and transfer learning on MNIST (lecture 06), with course_lib.models and course_lib.training.

Two experiments, the ones the lecture runs in full mode:

1. **Architectures.** LeNet-5 (the classic layer sizes, ReLU and max-pooling, 28x28 digits padded
   to 32x32 by its first convolution), AlexNetSmall, a small VGG with batch norm and a small ResNet
   trained on the 60,000 training digits (12 epochs for LeNet-5, 5 for the three larger nets) with Adam, a cosine learning-rate schedule and small
   random affine augmentation (``course_lib.regularization.random_augment``), through
   ``course_lib.training.fit``. Reported: parameters, test accuracy on the 10,000 test digits,
   seconds per epoch and training images per second. Targets: LeNet-5 >= 99.0 % (the paper:
   99.05 %), the best course CNN >= 99.4 %.
2. **Transfer.** A LeNet-5 is pretrained on the digits 0-4; the target task is the digits 5-9 with
   10, 100 or 1000 labelled images per class, evaluated on all test images of 5-9. Four ways to
   use the pretrained net (the last layer is always replaced by a new 84 -> 5 layer):
   *linear probe* (everything frozen but the new layer: a linear model on fixed features, seed 6.16),
   *fine-tune last layers* (C5, F6 and the new layer trained, the rest frozen),
   *full fine-tune* with layer-wise learning rates (``param_groups_by_depth``, each layer nearer the
   input 0.3 times the step of the next, seed 6.17), and *from scratch* (a new, randomly
   initialised LeNet-5 trained on the same labels). Every configuration takes the same number of
   Adam steps; the table gives its test accuracy and the seconds it took.

``--smoke`` uses 1,024 training and 512 test digits, one epoch, two architectures and 10/100 labels
per class: it checks that the script runs, not the numbers.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_lib.data import load_mnist
from course_lib.models import AlexNetSmall, LeNet5, ResNet, count_parameters, make_vgg
from course_lib.regularization import random_augment
from course_lib.training import accuracy, fit, freeze, param_groups_by_depth, trainable_parameters
from course_tools.benchmarking import BenchmarkReport, benchmark_main

MEAN, STD = 0.1307, 0.3081


def _images(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).float().div(255).sub(MEAN).div(STD)[:, None]


def _architectures(smoke: bool) -> dict[str, Callable[[], nn.Module]]:
    archs = {
        "LeNet-5 (ReLU, max-pool)": lambda: LeNet5(activation="relu", pool="max", input_size=28),
        "ResNet (3 stages x 2 blocks, 16-32-64)": lambda: ResNet(
            (2, 2, 2), (16, 32, 64), stem="small", in_channels=1, num_classes=10
        ),
    }
    if not smoke:
        archs["VGG (32-32-M-64-64-M-128-128-M, BN)"] = lambda: make_vgg(
            [32, 32, "M", 64, 64, "M", 128, 128, "M"],
            in_channels=1,
            num_classes=10,
            input_size=28,
            hidden=256,
            batch_norm=True,
        )
        archs["AlexNetSmall"] = lambda: AlexNetSmall(input_size=28)
    return archs


def _train(model: nn.Module, X, y, *, epochs: int, lr: float, batch: int, augment: bool, seed: int) -> float:
    """Adam with a per-epoch cosine schedule; returns seconds of training (augmentation included)."""
    opt = torch.optim.Adam(trainable_parameters(model), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        Xe = random_augment(X, g, max_angle=10.0, max_shift=2.0, scale_range=(0.92, 1.08)) if augment else X
        fit(
            model,
            nn.functional.cross_entropy,
            opt,
            Xe,
            y,
            epochs=1,
            batch_size=batch,
            seed=seed + epoch,
            progress=False,
        )
        sched.step()
    return time.perf_counter() - start


@torch.no_grad()
def _test_accuracy(model: nn.Module, X, y) -> float:
    model.eval()
    return 100 * accuracy(torch.cat([model(X[i : i + 1000]) for i in range(0, len(X), 1000)]), y)


# Full-size epochs: LeNet-5 is cheap (~10 s per epoch on one core) and trains for 12; the three larger nets
# (~3-5 min per epoch on one core) for 5, which keeps the whole script near an hour on a 2-core CPU.
FULL_EPOCHS_LENET, FULL_EPOCHS_LARGER = 12, 5


def _architecture_rows(report: BenchmarkReport, smoke: bool, X, y, X_test, y_test) -> None:
    accs = {}
    for name, build in _architectures(smoke).items():
        epochs = 1 if smoke else FULL_EPOCHS_LENET if name.startswith("LeNet") else FULL_EPOCHS_LARGER
        torch.manual_seed(0)
        model = build()
        seconds = _train(model, X, y, epochs=epochs, lr=2e-3, batch=128, augment=True, seed=0)
        acc = _test_accuracy(model, X_test, y_test)
        accs[name] = acc
        print(f"{name}: {acc:.2f} % after {epochs} epoch(s), {seconds:.0f} s", file=sys.stderr, flush=True)
        report.add_row(
            "architectures",
            name,
            count_parameters(model),
            f"{epochs} epoch(s)",
            acc,
            round(seconds / epochs, 2),
            round(len(X) * epochs / seconds),
        )
    lenet = next(k for k in accs if k.startswith("LeNet"))
    best = max((k for k in accs if k != lenet), key=accs.get)
    report.figures["LeNet-5 test accuracy (%)"] = accs[lenet]
    report.figures["best course CNN test accuracy (%)"] = accs[best]
    report.notes.append(f"best course CNN: {best}")


def _transfer_rows(report: BenchmarkReport, smoke: bool, X, y, X_test, y_test) -> None:
    src = y < 5
    tgt_test = y_test >= 5
    Xt_test, yt_test = X_test[tgt_test], y_test[tgt_test] - 5
    torch.manual_seed(1)
    pretrained = LeNet5(num_classes=5, activation="relu", pool="max", input_size=28)
    pre_epochs = 1 if smoke else 4
    pre_seconds = _train(pretrained, X[src], y[src], epochs=pre_epochs, lr=2e-3, batch=128, augment=False, seed=1)
    report.add_row(
        "transfer: pretraining",
        "LeNet-5 on digits 0-4",
        count_parameters(pretrained),
        f"{int(src.sum())} images, {pre_epochs} epoch(s)",
        _test_accuracy(pretrained, X_test[y_test < 5], y_test[y_test < 5]),
        round(pre_seconds, 2),
        "",
    )
    steps = 30 if smoke else 400
    labels_per_class = [10, 100] if smoke else [10, 100, 1000]
    g = torch.Generator().manual_seed(2)
    target_idx = torch.nonzero(y >= 5).squeeze(1)
    order = target_idx[torch.randperm(len(target_idx), generator=g)]
    for n in labels_per_class:
        picked = torch.cat([order[y[order] == c][:n] for c in range(5, 10)])
        Xs, ys = X[picked], y[picked] - 5
        for method in ("linear probe", "fine-tune last layers", "full fine-tune, layer-wise lr", "from scratch"):
            torch.manual_seed(3)
            if method == "from scratch":
                model = LeNet5(num_classes=5, activation="relu", pool="max", input_size=28)
            else:
                model = LeNet5(num_classes=5, activation="relu", pool="max", input_size=28)
                model.load_state_dict(pretrained.state_dict())
                model.classifier[3] = nn.Linear(84, 5)  # the new last layer
            if method == "linear probe":
                freeze(model.features)
                freeze(model.classifier[1])
            elif method == "fine-tune last layers":
                freeze(model.features[:6])  # C1, C3 frozen; C5, F6 and the new layer train
            lr = 2e-3
            groups = (
                param_groups_by_depth(model, lr, 0.3)
                if method.startswith("full")
                else [{"params": trainable_parameters(model), "lr": lr}]
            )
            opt = torch.optim.Adam(groups)
            batch = min(64, len(Xs))
            epochs = max(1, round(steps * batch / len(Xs)))
            start = time.perf_counter()
            fit(
                model, nn.functional.cross_entropy, opt, Xs, ys, epochs=epochs, batch_size=batch, seed=4, progress=False
            )
            seconds = time.perf_counter() - start
            acc = _test_accuracy(model, Xt_test, yt_test)
            report.add_row(
                f"transfer 0-4 -> 5-9, {n} labels/class",
                method,
                count_parameters(model, trainable_only=True),
                f"{epochs} epoch(s) x {-(-len(Xs) // batch)} batches",
                acc,
                round(seconds, 2),
                "",
            )
            report.figures[f"transfer {n}/class, {method}: test accuracy (%)"] = acc


def run(smoke: bool) -> BenchmarkReport:
    n_train = 1024 if smoke else 60000
    n_test = 512 if smoke else 10000
    X_u8, y_np = load_mnist("train")
    Xt_u8, yt_np = load_mnist("test")
    X, y = _images(X_u8[:n_train]), torch.from_numpy(y_np[:n_train])
    X_test, y_test = _images(Xt_u8[:n_test]), torch.from_numpy(yt_np[:n_test])
    report = BenchmarkReport(
        title="CNN architectures and transfer learning on MNIST (course_lib.models, course_lib.training)",
        columns=[
            "experiment",
            "model / method",
            "trainable parameters",
            "training",
            "test accuracy, %",
            "seconds (per epoch for architectures)",
            "training images/s",
        ],
    )
    _architecture_rows(report, smoke, X, y, X_test, y_test)
    _transfer_rows(report, smoke, X, y, X_test, y_test)
    report.notes.append(
        f"{n_train} training and {n_test} test digits; Adam; architectures: batch 128, cosine schedule, random affine "
        "augmentation; transfer: the same number of Adam steps for every method, lr 2e-3 (layer-wise: x0.3 per layer "
        "towards the input)"
    )
    return report


if __name__ == "__main__":
    benchmark_main("cnn_architectures", run)
