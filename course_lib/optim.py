"""Gradient-descent optimisers of lecture 04, written from the lecture's formulas.

Two views of the same six update rules:

* ``torch.optim.Optimizer`` subclasses (:class:`SGD`, :class:`Momentum`, :class:`Nesterov`,
  :class:`Adagrad`, :class:`RMSProp`, :class:`Adam`) that train any ``nn.Module``;
* pure functions (:func:`sgd_update`, :func:`momentum_update`, ...) that take the current point
  ``w``, a gradient function and a state dict and return the next point and state. They use only
  arithmetic operators, so ``w`` may be a numpy array or a torch tensor; :func:`optimize` runs
  one of them for a number of steps and returns the whole trajectory (the notebooks plot it).

The lecture's notation (``eta`` = step size, ``alpha`` = decay, ``G`` = accumulated squares):

* SGD: ``w_t = w_{t-1} - eta * g_t``
* momentum: ``h_0 = 0``, ``h_t = alpha h_{t-1} + eta * grad Q(w_{t-1})``, ``w_t = w_{t-1} - h_t``
* Nesterov: ``h_t = alpha h_{t-1} + eta * grad Q(w_{t-1} - alpha h_{t-1})``, ``w_t = w_{t-1} - h_t``
* Adagrad: ``G_t = G_{t-1} + g_t^2``, ``w_t = w_{t-1} - eta / sqrt(G_t + eps) * g_t``
* RMSProp: ``G_t = alpha G_{t-1} + (1 - alpha) g_t^2``, ``w_t = w_{t-1} - eta / sqrt(G_t + eps) * g_t``
* Adam (Kingma & Ba, 2015; "momentum + RMSProp"): ``m_t = b1 m_{t-1} + (1 - b1) g_t``,
  ``v_t = b2 v_{t-1} + (1 - b2) g_t^2``, ``m^_t = m_t / (1 - b1^t)``, ``v^_t = v_t / (1 - b2^t)``,
  ``w_t = w_{t-1} - eta * m^_t / (sqrt(v^_t) + eps)``.

How these relate to ``torch.optim`` (checked step by step in ``tests/test_optim.py``):

* ``Momentum(lr, a)`` keeps ``h = lr * b`` where ``b`` is the momentum buffer of
  ``torch.optim.SGD(lr, momentum=a, dampening=0)``; with a constant ``lr`` the parameters agree.
  (torch multiplies by ``lr`` *after* averaging, so when a schedule changes ``lr`` torch rescales
  the whole history while the lecture's ``h`` keeps the old steps.)
* ``Nesterov``: a parameter can only receive the gradient *at its own value*, so, as in
  ``torch.optim.SGD(nesterov=True)``, the stored parameter is the look-ahead point
  ``w~_t = w_t - alpha h_t`` (equal to ``w_0`` at the start). Substituting into the lecture's rule
  gives ``w~_t = w~_{t-1} + alpha h_{t-1} - (1 + alpha) h_t``, which is what :class:`Nesterov`
  computes; the lecture's iterate is ``w_t = w~_t + alpha h_t``.
* ``Adagrad(lr, eps)`` puts ``eps`` under the square root; torch adds it after the root. The exact
  correspondence: ``torch.optim.Adagrad(lr, eps=0, initial_accumulator_value=eps)``.
* ``RMSProp(lr, alpha, eps)`` also puts ``eps`` under the root; it equals
  ``torch.optim.RMSprop(lr, alpha, eps=0)`` when ``eps = 0`` (for ``eps > 0`` torch has no
  setting with the lecture's placement).
* ``Adam`` is exactly ``torch.optim.Adam`` (torch folds the bias corrections into the step size
  ``lr / (1 - b1^t)`` and the denominator ``sqrt(v_t) / sqrt(1 - b2^t) + eps``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer

Array = Any  # a numpy array or a torch tensor
GradFn = Callable[[Array], Array]
Schedule = Callable[[int], float]


# ----------------------------------------------------------------------------------------------
# argument checks shared by the classes and the pure functions


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _check_lr(lr: float) -> float:
    if not _is_real(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    return float(lr)


def _check_unit(name: str, value: float, *, closed_low: bool = True) -> float:
    ok = _is_real(value) and ((0.0 <= value < 1.0) if closed_low else (0.0 < value < 1.0))
    if not ok:
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return float(value)


def _check_eps(eps: float) -> float:
    if not _is_real(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_betas(betas: tuple[float, float]) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return _check_unit("beta1", betas[0]), _check_unit("beta2", betas[1])


# ----------------------------------------------------------------------------------------------
# torch.optim.Optimizer subclasses


class _LectureOptimizer(Optimizer):
    """Shared ``step`` skeleton: evaluate the closure, then update every parameter with a grad."""

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a ``.grad``; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError(f"{type(self).__name__} does not support sparse gradients")
                self._update(p, p.grad, self.state[p], group)
        return loss


class SGD(_LectureOptimizer):
    """Plain (stochastic) gradient descent: ``w <- w - lr * g``.

    ``params``: an iterable of tensors or of param-group dicts, as for any torch optimiser.
    """

    def __init__(self, params: Iterable, lr: float) -> None:
        super().__init__(params, {"lr": _check_lr(lr)})

    def _update(self, p, grad, state, group):
        p.add_(grad, alpha=-group["lr"])


class Momentum(_LectureOptimizer):
    """Heavy-ball momentum in the lecture's form.

    ``h_0 = 0``, ``h_t = momentum * h_{t-1} + lr * g_t``, ``w_t = w_{t-1} - h_t``; the velocity is
    ``self.state[p]["h"]``. Equal to ``torch.optim.SGD(lr, momentum, dampening=0)`` for a constant
    ``lr`` (there ``h = lr * momentum_buffer``).
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": _check_lr(lr), "momentum": _check_unit("momentum", momentum)})

    def _update(self, p, grad, state, group):
        if "h" not in state:
            state["h"] = torch.zeros_like(p)
        h = state["h"]
        h.mul_(group["momentum"]).add_(grad, alpha=group["lr"])
        p.sub_(h)


class Nesterov(_LectureOptimizer):
    """Nesterov momentum: the gradient is taken at the look-ahead point ``w_{t-1} - alpha h_{t-1}``.

    The parameter tensor holds the look-ahead point ``w~ = w - alpha h`` (that is where
    ``loss.backward()`` must evaluate the gradient), so one step is
    ``h_t = alpha h_{t-1} + lr * g(w~_{t-1})`` and ``w~_t = w~_{t-1} + alpha h_{t-1} - (1 + alpha) h_t``.
    The lecture's iterate is ``w_t = w~_t + alpha h_t``; ``self.state[p]["h"]`` holds ``h_t``.
    Equal to ``torch.optim.SGD(lr, momentum=alpha, dampening=0, nesterov=True)`` for constant ``lr``.
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9) -> None:
        super().__init__(params, {"lr": _check_lr(lr), "momentum": _check_unit("momentum", momentum)})

    def _update(self, p, grad, state, group):
        alpha = group["momentum"]
        if "h" not in state:
            state["h"] = torch.zeros_like(p)
        h = state["h"]
        p.add_(h, alpha=alpha)  # back from the look-ahead point to w_{t-1}
        h.mul_(alpha).add_(grad, alpha=group["lr"])  # h_t
        p.sub_(h, alpha=1.0 + alpha)  # w_t - alpha h_t: the next look-ahead point


class Adagrad(_LectureOptimizer):
    """Adagrad: ``G_t = G_{t-1} + g_t^2``, ``w_t = w_{t-1} - lr * g_t / sqrt(G_t + eps)`` (per coordinate).

    ``eps`` sits under the square root as in the lecture (torch adds it after the root);
    ``self.state[p]["G"]`` holds the sum of squared gradients.
    """

    def __init__(self, params: Iterable, lr: float, eps: float = 1e-10) -> None:
        super().__init__(params, {"lr": _check_lr(lr), "eps": _check_eps(eps)})

    def _update(self, p, grad, state, group):
        if "G" not in state:
            state["G"] = torch.zeros_like(p)
        G = state["G"]
        G.addcmul_(grad, grad)
        p.addcdiv_(grad, (G + group["eps"]).sqrt_(), value=-group["lr"])


class RMSProp(_LectureOptimizer):
    """RMSProp: ``G_t = alpha G_{t-1} + (1 - alpha) g_t^2``, ``w_t = w_{t-1} - lr * g_t / sqrt(G_t + eps)``.

    A running average instead of Adagrad's sum, so the step depends on recent gradients only.
    ``eps`` sits under the square root as in the lecture; ``self.state[p]["G"]`` holds ``G_t``.
    """

    def __init__(self, params: Iterable, lr: float, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": _check_lr(lr), "alpha": _check_unit("alpha", alpha), "eps": _check_eps(eps)})

    def _update(self, p, grad, state, group):
        alpha = group["alpha"]
        if "G" not in state:
            state["G"] = torch.zeros_like(p)
        G = state["G"]
        G.mul_(alpha).addcmul_(grad, grad, value=1.0 - alpha)
        p.addcdiv_(grad, (G + group["eps"]).sqrt_(), value=-group["lr"])


class Adam(_LectureOptimizer):
    """Adam = momentum on the gradient + RMSProp on its square, with bias correction.

    ``m_t = b1 m_{t-1} + (1 - b1) g_t``, ``v_t = b2 v_{t-1} + (1 - b2) g_t^2``,
    ``m^_t = m_t / (1 - b1^t)``, ``v^_t = v_t / (1 - b2^t)``, ``w_t = w_{t-1} - lr * m^_t / (sqrt(v^_t) + eps)``.
    Without the corrections the first steps would be too short (``m_1 = (1 - b1) g_1``).
    State: ``t``, ``m``, ``v``.
    """

    def __init__(self, params: Iterable, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": _check_lr(lr), "betas": _check_betas(betas), "eps": _check_eps(eps)})

    def _update(self, p, grad, state, group):
        b1, b2 = group["betas"]
        if "t" not in state:
            state["t"] = 0
            state["m"] = torch.zeros_like(p)
            state["v"] = torch.zeros_like(p)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m.mul_(b1).add_(grad, alpha=1.0 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        p.addcdiv_(m_hat, v_hat.sqrt_().add_(group["eps"]), value=-group["lr"])


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "SGD": SGD,
    "Momentum": Momentum,
    "Nesterov": Nesterov,
    "Adagrad": Adagrad,
    "RMSProp": RMSProp,
    "Adam": Adam,
}


# ----------------------------------------------------------------------------------------------
# pure update rules: (w, grad_fn, state) -> (w_next, state_next); numpy arrays or torch tensors


def _sqrt(x: Array) -> Array:
    return x**0.5


def sgd_update(w: Array, grad_fn: GradFn, state: dict | None = None, *, lr: float) -> tuple[Array, dict]:
    """``w_t = w_{t-1} - lr * grad_fn(w_{t-1})``. ``w``: any shape; state is unused (``{}``)."""
    _check_lr(lr)
    return w - lr * grad_fn(w), {}


def momentum_update(
    w: Array, grad_fn: GradFn, state: dict | None = None, *, lr: float, momentum: float = 0.9
) -> tuple[Array, dict]:
    """``h_t = momentum * h_{t-1} + lr * grad_fn(w_{t-1})``, ``w_t = w_{t-1} - h_t``; state ``{"h"}``."""
    _check_lr(lr)
    _check_unit("momentum", momentum)
    h = state["h"] if state else w * 0
    h = momentum * h + lr * grad_fn(w)
    return w - h, {"h": h}


def nesterov_update(
    w: Array, grad_fn: GradFn, state: dict | None = None, *, lr: float, momentum: float = 0.9
) -> tuple[Array, dict]:
    """``h_t = momentum * h_{t-1} + lr * grad_fn(w_{t-1} - momentum * h_{t-1})``, ``w_t = w_{t-1} - h_t``.

    ``w`` is the lecture's iterate (not the look-ahead point); state ``{"h"}``.
    """
    _check_lr(lr)
    _check_unit("momentum", momentum)
    h = state["h"] if state else w * 0
    h = momentum * h + lr * grad_fn(w - momentum * h)
    return w - h, {"h": h}


def adagrad_update(
    w: Array, grad_fn: GradFn, state: dict | None = None, *, lr: float, eps: float = 1e-10
) -> tuple[Array, dict]:
    """``G_t = G_{t-1} + g^2``, ``w_t = w_{t-1} - lr * g / sqrt(G_t + eps)``; state ``{"G"}``."""
    _check_lr(lr)
    _check_eps(eps)
    g = grad_fn(w)
    G = (state["G"] if state else w * 0) + g * g
    return w - lr * g / _sqrt(G + eps), {"G": G}


def rmsprop_update(
    w: Array, grad_fn: GradFn, state: dict | None = None, *, lr: float, alpha: float = 0.99, eps: float = 1e-8
) -> tuple[Array, dict]:
    """``G_t = alpha G_{t-1} + (1 - alpha) g^2``, ``w_t = w_{t-1} - lr * g / sqrt(G_t + eps)``; state ``{"G"}``."""
    _check_lr(lr)
    _check_unit("alpha", alpha)
    _check_eps(eps)
    g = grad_fn(w)
    G = alpha * (state["G"] if state else w * 0) + (1.0 - alpha) * g * g
    return w - lr * g / _sqrt(G + eps), {"G": G}


def adam_update(
    w: Array,
    grad_fn: GradFn,
    state: dict | None = None,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> tuple[Array, dict]:
    """Adam with bias correction (see :class:`Adam`); state ``{"t", "m", "v"}``."""
    _check_lr(lr)
    b1, b2 = _check_betas(betas)
    _check_eps(eps)
    g = grad_fn(w)
    t = (state["t"] if state else 0) + 1
    m = b1 * (state["m"] if state else w * 0) + (1.0 - b1) * g
    v = b2 * (state["v"] if state else w * 0) + (1.0 - b2) * g * g
    m_hat = m / (1.0 - b1**t)
    v_hat = v / (1.0 - b2**t)
    return w - lr * m_hat / (_sqrt(v_hat) + eps), {"t": t, "m": m, "v": v}


UPDATE_RULES: dict[str, Callable[..., tuple[Array, dict]]] = {
    "SGD": sgd_update,
    "Momentum": momentum_update,
    "Nesterov": nesterov_update,
    "Adagrad": adagrad_update,
    "RMSProp": rmsprop_update,
    "Adam": adam_update,
}


def optimize(
    update: Callable[..., tuple[Array, dict]],
    grad_fn: GradFn,
    w0: Array,
    n_steps: int,
    *,
    lr: float,
    lr_schedule: Schedule | None = None,
    **hparams: Any,
) -> Array:
    """Run a pure update rule ``n_steps`` times from ``w0``; return the trajectory ``(n_steps + 1, *w0.shape)``.

    ``lr_schedule(t)`` (``t = 0, 1, ...``) replaces ``lr`` at step ``t`` when given. The result is a
    numpy array for numpy input and a tensor for tensor input.
    """
    if not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
    w, state = w0, None
    path = [w0]
    for t in range(n_steps):
        step_lr = lr_schedule(t) if lr_schedule is not None else lr
        w, state = update(w, grad_fn, state, lr=step_lr, **hparams)
        path.append(w)
    if isinstance(w0, torch.Tensor):
        return torch.stack(path)
    return np.stack([np.asarray(p) for p in path])


# ----------------------------------------------------------------------------------------------
# learning-rate schedules: functions t -> eta_t (t = 0 is the first step)


class lr_schedules:
    """Step-size schedules ``eta_t``; each factory returns a function ``t -> eta_t`` for ``t = 0, 1, ...``.

    SGD converges only if ``eta_t -> 0`` (the lecture); ``sum eta_t = inf`` and ``sum eta_t^2 < inf``
    hold for the 1/t schedule. Use :func:`to_torch_scheduler` to drive a torch optimiser.
    """

    @staticmethod
    def step(lr0: float, step_size: int, gamma: float = 0.1) -> Schedule:
        """``eta_t = lr0 * gamma ** (t // step_size)`` (piecewise constant, like ``StepLR``)."""
        _check_lr(lr0)
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive int, got {step_size!r}")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        return lambda t: lr0 * gamma ** (t // step_size)

    @staticmethod
    def exponential(lr0: float, gamma: float) -> Schedule:
        """``eta_t = lr0 * gamma ** t`` (like ``ExponentialLR``)."""
        _check_lr(lr0)
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        return lambda t: lr0 * gamma**t

    @staticmethod
    def inverse_time(lr0: float, decay: float, power: float = 1.0) -> Schedule:
        """``eta_t = lr0 / (1 + decay * t) ** power``: the classic ``1/t`` decay for ``power = 1``."""
        _check_lr(lr0)
        if decay < 0 or power < 0:
            raise ValueError(f"decay and power must be >= 0, got decay={decay!r}, power={power!r}")
        return lambda t: lr0 / (1.0 + decay * t) ** power

    @staticmethod
    def cosine(lr0: float, total_steps: int, lr_min: float = 0.0) -> Schedule:
        """``eta_t = lr_min + (lr0 - lr_min) * (1 + cos(pi * t / T)) / 2`` for ``t <= T``, then ``lr_min``."""
        _check_lr(lr0)
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
        return lambda t: lr_min + (lr0 - lr_min) * (1.0 + math.cos(math.pi * min(t, total_steps) / total_steps)) / 2


def to_torch_scheduler(optimizer: Optimizer, schedule: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """Wrap a schedule as a torch ``LambdaLR``: each group's lr becomes ``lr_group * schedule(t) / schedule(0)``.

    Call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    eta0 = schedule(0)
    if eta0 <= 0:
        raise ValueError(f"the schedule must start with a positive step size, got schedule(0) = {eta0!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: schedule(t) / eta0)


__all__ = [
    "OPTIMIZERS",
    "SGD",
    "UPDATE_RULES",
    "Adagrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "RMSProp",
    "adagrad_update",
    "adam_update",
    "lr_schedules",
    "momentum_update",
    "nesterov_update",
    "optimize",
    "rmsprop_update",
    "sgd_update",
    "to_torch_scheduler",
]
