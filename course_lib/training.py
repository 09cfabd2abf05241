"""A small, explicit training loop for the lectures: mini-batches, a tqdm bar and a history.

It is deliberately plain PyTorch (no callbacks, no magic) so that a student can read it in one
sitting; lectures that are *about* the loop (optimisers, backprop) write theirs out instead.
For transfer learning it also has :func:`freeze` / :func:`unfreeze`, :func:`trainable_parameters`
and :func:`param_groups_by_depth` (layer-wise learning rates for ``torch.optim``).
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
        raise ValueError(
            f"accuracy expects logits (N, K) and labels (N,); got {tuple(logits.shape)} and {tuple(y.shape)}"
        )
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


# --------------------------------------------------------------------------------------------
# transfer learning: freezing and layer-wise learning rates (lecture 06)
# --------------------------------------------------------------------------------------------
_NORMS = (
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.GroupNorm,
    torch.nn.LayerNorm,
    torch.nn.modules.instancenorm._InstanceNorm,
)


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Stop training ``module``: ``requires_grad = False`` on all its parameters; returns it.

    Frozen parameters get no gradient and are left out of :func:`trainable_parameters` and
    :func:`param_groups_by_depth`. Batch-norm running statistics still update in train mode; call
    ``module.eval()`` as well to keep them fixed.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: torch.nn.Module) -> torch.nn.Module:
    """Undo :func:`freeze`: ``requires_grad = True`` on all parameters of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` with ``requires_grad``, each once, in registration order (for an optimiser)."""
    return [p for p in model.parameters() if p.requires_grad]


def param_groups_by_depth(
    model: torch.nn.Module,
    base_lr: float,
    decay: float,
    *,
    units: list[torch.nn.Module] | None = None,
) -> list[dict]:
    """``torch.optim`` parameter groups whose learning rate shrinks towards the input (layer-wise rates).

    Fine-tuning with more data trains several of the last layers, with smaller steps nearer the
    input (lecture 06). The trainable layers are numbered from the input, ``0 .. L-1``, and unit
    ``i`` gets ``lr_i = base_lr * decay ** (L - 1 - i)``: the last layer ``base_lr``, the one before
    ``base_lr * decay``, and so on. By default a unit is a module that owns parameters directly
    (Conv2d, Linear, ...), in registration order, with normalisation layers (batch, layer, group,
    instance norm) joined to the unit before them; ``units`` gives the units explicitly (e.g.
    ``[model.stem, *model.stages, model.fc]``) and must then cover every trainable parameter.
    Frozen parameters (see :func:`freeze`) are left out and units without trainable parameters are
    not counted. Returns ``[{"params": [...], "lr": lr_i, "name": ...}, ...]`` from input to output;
    the extra ``"name"`` key is kept by ``torch.optim`` optimisers.
    """
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive; got {base_lr!r}")
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1]; got {decay!r}")
    names = {id(m): n for n, m in model.named_modules()}
    groups: list[tuple[str, list[torch.nn.Parameter]]] = []
    if units is None:
        for name, module in model.named_modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            if isinstance(module, _NORMS) and groups:
                groups[-1][1].extend(own)
            else:
                groups.append((name or type(module).__name__, own))
    else:
        owner: dict[int, str] = {}
        for unit in units:
            if id(unit) not in names:
                raise ValueError(f"unit {type(unit).__name__} is not a submodule of the model")
            own = []
            for p in unit.parameters():
                if not p.requires_grad:
                    continue
                if id(p) in owner:
                    raise ValueError(f"a parameter of {names[id(unit)]!r} is already in unit {owner[id(p)]!r}")
                owner[id(p)] = names[id(unit)]
                own.append(p)
            if own:
                groups.append((names[id(unit)] or type(unit).__name__, own))
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
        if missing:
            raise ValueError(f"trainable parameters outside every unit: {missing}")
    seen: set[int] = set()
    result = []
    n = len(groups)
    for i, (name, params) in enumerate(groups):
        unique = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in unique)
        if unique:
            result.append({"params": unique, "lr": base_lr * decay ** (n - 1 - i), "name": name})
    return result


def train_steps(
    model: torch.nn.Module,
    batch_loss: Callable[[torch.Generator], torch.Tensor],
    steps: int,
    *,
    lr: float,
    warmup: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> torch.Tensor:
    """``steps`` Adam steps with a one-cycle schedule (``warmup``: share of the steps spent rising to
    ``lr``) on ``batch_loss(generator)``, which draws its own mini-batch with the generator it is
    given (seeded ``seed``) and returns the loss. Returns the loss of every step ``(steps,)``.
    The step-count loop of the segmentation and detection lectures (``train_segmentation``,
    ``train_detector``), where an epoch over scenes drawn at random has no special meaning."""
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=warmup)
    gen = torch.Generator().manual_seed(seed)
    losses = torch.empty(steps)
    bar = tqdm(range(steps), desc=desc, leave=False, disable=not progress)
    for step in bar:
        loss = batch_loss(gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = loss.item()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[step].item():.3f}")
    return losses
