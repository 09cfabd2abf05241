"""A small, explicit training loop for the lectures: mini-batches, a tqdm bar and a history.

It is deliberately plain PyTorch (no callbacks, no magic) so that a student can read it in one
sitting; lectures that are *about* the loop (optimisers, backprop) write theirs out instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class History:
    """Per-epoch training loss, validation loss and validation metric, every batch's loss, and the wall time."""

    train_loss: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    seconds: float = 0.0


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label. logits: (N, K), y: (N,) -> float in [0, 1]."""
    if logits.ndim != 2 or y.ndim != 1 or logits.shape[0] != y.shape[0]:
        raise ValueError(f"accuracy expects logits (N, K) and labels (N,); got {tuple(logits.shape)} and {tuple(y.shape)}")
    if y.numel() == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return (logits.argmax(dim=1) == y).double().mean().item()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    X: torch.Tensor,
    y: torch.Tensor,
    metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    batch_size: int = 4096,
) -> tuple[float, float | None]:
    """Mean loss (weighted by batch size) and ``metric`` on the whole of (X, y), model in eval mode."""
    was_training = model.training
    model.eval()
    outputs, total = [], 0.0
    for start in range(0, len(X), batch_size):
        out = model(X[start : start + batch_size])
        total += loss_fn(out, y[start : start + batch_size]).item() * len(out)
        outputs.append(out)
    model.train(was_training)
    all_out = torch.cat(outputs)
    return total / len(X), (metric(all_out, y) if metric else None)


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int | None = None,
    X_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` on (X, y) with shuffled mini-batches (full batch when ``batch_size`` is None).

    X: (N, ...), y: (N, ...). Each epoch visits every example once in an order drawn from a
    generator seeded with ``seed + epoch``; the recorded training loss is the size-weighted mean of
    the batch losses. Validation (if given) runs after every epoch in eval mode.
    """
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of examples; got {len(X)} and {len(y)}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0; got {epochs}")
    from tqdm.auto import tqdm

    n = len(X)
    batch_size = batch_size or n
    history = History()
    start_time = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).to(X.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            optimizer.step()
            history.batch_loss.append(loss.item())
            total += loss.item() * len(idx)
        history.train_loss.append(total / n)
        postfix = {"loss": f"{history.train_loss[-1]:.4f}"}
        if X_val is not None and y_val is not None:
            val_loss, val_metric = evaluate(model, loss_fn, X_val, y_val, metric)
            history.val_loss.append(val_loss)
            if val_metric is not None:
                history.val_metric.append(val_metric)
                postfix["val"] = f"{val_metric:.4f}"
        bar.set_postfix(postfix)
    history.seconds = time.perf_counter() - start_time
    return history
