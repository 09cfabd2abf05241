"""Regularisation, normalisation, initialisation and augmentation (lectures 04-05).

* :func:`dropout` - inverted and classic dropout;
* :func:`batchnorm_forward` / :func:`batchnorm_backward` - batch normalisation with the backward
  pass written by hand; :class:`BatchNorm` wraps them as a module (its autograd backward *is*
  :func:`batchnorm_backward`); :class:`Dropout` wraps :func:`dropout`;
* :func:`xavier_uniform_`, :func:`he_normal_` - variance-preserving initialisers;
* image augmentations as plain torch ops on batches ``x: (N, C, H, W)``: :func:`shift`,
  :func:`rotate`, :func:`stretch` / :func:`scale`, :func:`affine`, :func:`blur`, :func:`brightness`,
  :func:`glare`, :func:`random_augment`, plus test-time augmentation :func:`tta_predict`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ----------------------------------------------------------------------------------------------
# dropout


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p is the probability of dropping a unit and must lie in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float, training: bool, inverted: bool = True) -> Tensor:
    """Dropout of lecture 04. ``x``: any shape -> same shape.

    ``p`` is the probability of **dropping** a unit (torch's convention). The lecture writes the
    *keep* probability as ``p``; here that is ``q = 1 - p``. With a mask ``m ~ Bernoulli(q)``
    (independent per element):

    * inverted dropout (``inverted=True``, what everybody uses): training ``m * x / q``,
      test time ``x`` - the expectation ``E[m * x / q] = x`` matches the test-time output;
    * classic dropout (``inverted=False``): training ``m * x``, test time ``q * x``.

    ``p = 1`` drops everything (the output is zero in training). Randomness comes from torch's
    global generator (seed it with ``torch.manual_seed``).
    """
    p = _check_p(p)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    keep = 1.0 - p
    if not training:
        return x if inverted else x * keep
    if p == 0.0:
        return x.clone()
    if p == 1.0:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape, device=x.device) < keep).to(x.dtype)
    return x * mask / keep if inverted else x * mask


class Dropout(nn.Module):
    """:func:`dropout` as a module (``p`` = drop probability; train/eval from ``self.training``)."""

    def __init__(self, p: float = 0.5, inverted: bool = True) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.inverted = inverted

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.inverted)

    def extra_repr(self) -> str:
        return f"p={self.p}, inverted={self.inverted}"


# ----------------------------------------------------------------------------------------------
# batch normalisation


def _bn_shapes(x: Tensor, gamma: Tensor) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Reduction dims, the broadcast shape of per-channel vectors and the count per channel."""
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor (N, C) or (N, C, *spatial), got shape {getattr(x, 'shape', None)}")
    C = x.shape[1]
    if gamma.shape != (C,):
        raise ValueError(f"gamma/beta/running stats must have shape ({C},) for x of shape {tuple(x.shape)}, "
                         f"got {tuple(gamma.shape)}")
    dims = (0, *range(2, x.dim()))
    view = (1, C) + (1,) * (x.dim() - 2)
    count = x.numel() // C
    return dims, view, count


def batchnorm_forward(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Tensor, dict[str, Any]]:
    """Batch normalisation (lecture 04); returns ``(out, cache)`` for :func:`batchnorm_backward`.

    ``x``: ``(N, C)`` or ``(N, C, *spatial)``; statistics are per channel ``C`` over all other
    dims (``n = N * prod(spatial)`` values). ``gamma, beta, running_mean, running_var``: ``(C,)``.

    Training: ``mu_B = mean(x)``, ``sigma_B^2 = mean((x - mu_B)^2)`` (biased),
    ``x^ = (x - mu_B) / sqrt(sigma_B^2 + eps)``, ``out = gamma * x^ + beta``; the running
    statistics are updated **in place** as torch does: ``running_mean <- (1 - momentum) *
    running_mean + momentum * mu_B`` and the same for ``running_var`` with the *unbiased* batch
    variance ``sigma_B^2 * n / (n - 1)``. Evaluation: ``x^ = (x - running_mean) / sqrt(running_var
    + eps)``. Running statistics may be ``None`` in training (nothing is tracked).
    """
    dims, view, n = _bn_shapes(x, gamma)
    if beta.shape != gamma.shape:
        raise ValueError(f"beta must have shape {tuple(gamma.shape)}, got {tuple(beta.shape)}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
        if stat is not None and stat.shape != gamma.shape:
            raise ValueError(f"{name} must have shape {tuple(gamma.shape)}, got {tuple(stat.shape)}")
    if training:
        if n < 2:
            raise ValueError(f"batch norm in training needs more than one value per channel, got x of shape "
                             f"{tuple(x.shape)}")
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, correction=0)
        if running_mean is not None or running_var is not None:
            with torch.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1.0 - momentum).add_(mean.detach(), alpha=momentum)
                if running_var is not None:
                    running_var.mul_(1.0 - momentum).add_(var.detach() * (n / (n - 1)), alpha=momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm in evaluation mode needs running_mean and running_var")
        mean, var = running_mean, running_var
    inv_std = 1.0 / torch.sqrt(var + eps)
    x_hat = (x - mean.reshape(view)) * inv_std.reshape(view)
    out = gamma.reshape(view) * x_hat + beta.reshape(view)
    cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "training": training, "dims": dims,
             "view": view, "n": n}
    return out, cache


def batchnorm_backward(dout: Tensor, cache: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`batchnorm_forward` by hand: ``dout`` (shape of ``x``) -> ``(dx, dgamma, dbeta)``.

    ``dbeta = sum(dout)``, ``dgamma = sum(dout * x^)`` (sums over every dim but the channel).
    Training (the batch statistics depend on ``x``), with ``g = gamma * dout``:
    ``dx = inv_std / n * (n * g - sum(g) - x^ * sum(g * x^))``.
    Evaluation (fixed running statistics): ``dx = gamma * inv_std * dout``.
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dims, view, n = cache["dims"], cache["view"], cache["n"]
    if dout.shape != x_hat.shape:
        raise ValueError(f"dout must have the shape of x, {tuple(x_hat.shape)}, got {tuple(dout.shape)}")
    dbeta = dout.sum(dim=dims)
    dgamma = (dout * x_hat).sum(dim=dims)
    g = dout * gamma.reshape(view)
    if cache["training"]:
        dx = (inv_std / n).reshape(view) * (
            n * g - g.sum(dim=dims).reshape(view) - x_hat * (g * x_hat).sum(dim=dims).reshape(view)
        )
    else:
        dx = g * inv_std.reshape(view)
    return dx, dgamma, dbeta


class _BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        out, cache = batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        ctx.cache = cache
        return out

    @staticmethod
    def backward(ctx, dout):
        dx, dgamma, dbeta = batchnorm_backward(dout, ctx.cache)
        return dx, dgamma, dbeta, None, None, None, None, None


class BatchNorm(nn.Module):
    """Batch norm over channel dim 1 for ``(N, C)`` or ``(N, C, *spatial)`` inputs.

    Drop-in for ``nn.BatchNorm1d/2d`` (``weight`` = gamma, ``bias`` = beta, buffers
    ``running_mean``/``running_var``); forward is :func:`batchnorm_forward`, and the gradient is
    computed by :func:`batchnorm_backward`, not by autograd.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        return _BatchNormFunction.apply(
            x, self.weight, self.bias, self.running_mean, self.running_var, self.training, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, momentum={self.momentum}, eps={self.eps}"


# ----------------------------------------------------------------------------------------------
# initialisation


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Fans of a weight ``(out, in)`` or conv weight ``(out, in, *kernel)``: ``in * k``, ``out * k``."""
    if tensor.dim() < 2:
        raise ValueError(f"fan-in/fan-out need a weight with at least 2 dims (out, in, ...), got shape "
                         f"{tuple(tensor.shape)}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(tensor: Tensor) -> Tensor:
    """Xavier/Glorot init in place: ``w ~ U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``.

    So ``Var(w) = a^2 / 3 = 2 / (fan_in + fan_out)``: the compromise between keeping the forward
    variance (``fan_in * Var(w) = 1``) and the backward one (``fan_out * Var(w) = 1``) for
    tanh-like activations. ``tensor``: ``(out, in, *kernel)``; returns ``tensor``.
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-a, a)


def he_normal_(tensor: Tensor) -> Tensor:
    """He (Kaiming) init in place: ``w ~ N(0, 2 / fan_in)``, i.e. ``w = sqrt(2 / n) * N(0, 1)``.

    ReLU zeroes half of its inputs, halving the second moment; the factor 2 restores
    ``Var(output) = Var(input)`` layer after layer. (The lecture notes write ``2 / sqrt(n)``; the
    standard deviation is ``sqrt(2 / n)``.) ``tensor``: ``(out, in, *kernel)``; returns ``tensor``.
    """
    fan_in, _ = fan_in_and_fan_out(tensor)
    with torch.no_grad():
        return tensor.normal_(0.0, math.sqrt(2.0 / fan_in))


# ----------------------------------------------------------------------------------------------
# augmentations: x (N, C, H, W) float -> same shape


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, C, H, W), got "
                         f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")


def _per_sample(value: float | Tensor, n: int, ref: Tensor, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    if t.dim() == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a number or a tensor of shape ({n},), got shape {tuple(t.shape)}")
    return t


def shift(x: Tensor, dx: int, dy: int, fill: float = 0.0) -> Tensor:
    """Translate by whole pixels: content moves ``dx`` right and ``dy`` down; vacated pixels get ``fill``.

    ``x``: (N, C, H, W) -> same shape; ``out[..., i + dy, j + dx] = x[..., i, j]``.
    """
    _check_images(x)
    if not isinstance(dx, int) or not isinstance(dy, int):
        raise TypeError(f"dx and dy must be ints (use affine() for sub-pixel shifts), got {dx!r}, {dy!r}")
    H, W = x.shape[-2:]
    out = torch.full_like(x, fill)
    if abs(dx) >= W or abs(dy) >= H:
        return out
    src_y = slice(max(0, -dy), H - max(0, dy))
    dst_y = slice(max(0, dy), H - max(0, -dy))
    src_x = slice(max(0, -dx), W - max(0, dx))
    dst_x = slice(max(0, dx), W - max(0, -dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def affine(
    x: Tensor,
    angle: float | Tensor = 0.0,
    scale_x: float | Tensor = 1.0,
    scale_y: float | Tensor = 1.0,
    tx: float | Tensor = 0.0,
    ty: float | Tensor = 0.0,
    fill: float = 0.0,
) -> Tensor:
    """Rotate, stretch and translate about the image centre with bilinear interpolation.

    Content at pixel offset ``q`` from the centre (x right, y down) moves to
    ``p = S R q + t``: ``R`` rotates **counter-clockwise on screen** by ``angle`` degrees,
    ``S = diag(scale_x, scale_y)``, ``t = (tx, ty)`` pixels. Each parameter is a number or a
    tensor ``(N,)`` (one value per image). Pixels that come from outside get ``fill``.
    ``x``: (N, C, H, W) -> same shape. Implemented with ``affine_grid`` + ``grid_sample``
    (``align_corners=False``, so normalised coordinates address pixel centres).
    """
    _check_images(x)
    N, _, H, W = x.shape
    a = torch.deg2rad(_per_sample(angle, N, x, "angle"))
    sx, sy = _per_sample(scale_x, N, x, "scale_x"), _per_sample(scale_y, N, x, "scale_y")
    if (sx == 0).any() or (sy == 0).any():
        raise ValueError("scale factors must be non-zero")
    txs, tys = _per_sample(tx, N, x, "tx"), _per_sample(ty, N, x, "ty")
    cos, sin = torch.cos(a), torch.sin(a)
    # inverse map in pixels: q = R^T S^{-1} (p - t)
    m00, m01 = cos / sx, -sin / sy
    m10, m11 = sin / sx, cos / sy
    # to normalised coordinates: x_n = x_px / (W / 2), y_n = y_px / (H / 2)
    theta = torch.stack(
        [
            torch.stack([m00, m01 * H / W, -(m00 * txs + m01 * tys) * 2 / W], dim=-1),
            torch.stack([m10 * W / H, m11, -(m10 * txs + m11 * tys) * 2 / H], dim=-1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if fill == 0.0:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # sample (x - fill) with zero padding, then add fill back: outside pixels become fill
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def rotate(x: Tensor, angle: float | Tensor, fill: float = 0.0) -> Tensor:
    """Rotate counter-clockwise (on screen) by ``angle`` degrees about the centre; (N, C, H, W) -> same."""
    return affine(x, angle=angle, fill=fill)


def stretch(x: Tensor, sx: float | Tensor, sy: float | Tensor | None = None, fill: float = 0.0) -> Tensor:
    """Stretch about the centre: ``sx`` horizontally, ``sy`` vertically (``None``: ``sx``); > 1 enlarges."""
    return affine(x, scale_x=sx, scale_y=sx if sy is None else sy, fill=fill)


def scale(x: Tensor, factor: float | Tensor, fill: float = 0.0) -> Tensor:
    """Zoom about the centre by ``factor`` (same in both directions); (N, C, H, W) -> same."""
    return stretch(x, factor, factor, fill=fill)


def gaussian_kernel1d(sigma: float, dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
    """Normalised samples of ``exp(-k^2 / (2 sigma^2))`` for ``k = -r..r``, ``r = int(3 sigma + 0.5)``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    r = int(3.0 * sigma + 0.5)
    k = torch.arange(-r, r + 1, dtype=dtype, device=device)
    w = torch.exp(-(k**2) / (2.0 * sigma**2))
    return w / w.sum()


def blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (separable, edge pixels replicated).

    ``x``: (N, C, H, W) -> same shape; ``sigma = 0`` returns a copy. The kernel is
    :func:`gaussian_kernel1d` (radius ``int(3 sigma + 0.5)``, may be wider than the image).
    """
    _check_images(x)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if sigma == 0:
        return x.clone()
    N, C, H, W = x.shape
    k = gaussian_kernel1d(sigma, x.dtype, x.device)
    r = (k.numel() - 1) // 2
    y = x.reshape(N * C, 1, H, W)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.reshape(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.reshape(1, 1, -1, 1))
    return y.reshape(N, C, H, W)


def brightness(x: Tensor, factor: float | Tensor) -> Tensor:
    """Multiply intensities by ``factor`` (a number or one per image, shape (N,)); (N, C, H, W) -> same."""
    _check_images(x)
    return x * _per_sample(factor, x.shape[0], x, "factor").reshape(-1, 1, 1, 1)


def glare(
    x: Tensor, strength: float | Tensor, center: tuple[float, float] | None = None, radius: float | None = None
) -> Tensor:
    """A bright spot: screen-blend ``out = x + s * spot * (1 - x)`` with a Gaussian ``spot`` of height 1.

    For images in [0, 1] the result stays in [0, 1] (glare saturates towards white);
    ``strength = 0`` is the identity. ``center = (row, col)`` in pixels (default: the upper-left
    third), ``radius`` = the Gaussian's standard deviation in pixels (default ``min(H, W) / 4``).
    ``x``: (N, C, H, W) -> same shape; ``strength``: a number or a tensor (N,).
    """
    _check_images(x)
    N, _, H, W = x.shape
    cy, cx = center if center is not None else (H / 3, W / 3)
    radius = radius if radius is not None else min(H, W) / 4
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    rows = torch.arange(H, dtype=x.dtype, device=x.device).reshape(H, 1)
    cols = torch.arange(W, dtype=x.dtype, device=x.device).reshape(1, W)
    spot = torch.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * radius**2))
    s = _per_sample(strength, N, x, "strength").reshape(-1, 1, 1, 1)
    return x + s * spot * (1 - x)


def random_augment(
    x: Tensor,
    generator: torch.Generator | None = None,
    *,
    max_angle: float = 15.0,
    max_shift: float = 2.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_blur: float = 0.0,
) -> Tensor:
    """One random affine per image: angle ~ U(-max_angle, max_angle) degrees, shifts ~ U(-max_shift,
    max_shift) pixels, zoom ~ U(scale_range); then, if ``max_blur > 0``, a blur with a random
    ``sigma ~ U(0, max_blur)`` shared by the batch. ``x``: (N, C, H, W) -> same shape.
    Deterministic for a given ``generator``.
    """
    _check_images(x)
    N = x.shape[0]

    def uniform(lo: float, hi: float) -> Tensor:
        u = torch.rand(N, generator=generator, dtype=x.dtype)
        return (lo + (hi - lo) * u).to(x.device)

    angle = uniform(-max_angle, max_angle)
    zoom = uniform(*scale_range)
    tx, ty = uniform(-max_shift, max_shift), uniform(-max_shift, max_shift)
    out = affine(x, angle=angle, scale_x=zoom, scale_y=zoom, tx=tx, ty=ty)
    if max_blur > 0:
        sigma = float(torch.rand((), generator=generator)) * max_blur
        if sigma > 0.05:
            out = blur(out, sigma)
    return out


def tta_predict(model: Callable[[Tensor], Tensor], x: Tensor, transforms: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Test-time augmentation: ``mean_k softmax(model(T_k(x)))`` over the given transforms.

    ``x``: (N, C, H, W); ``model`` returns logits (N, K); include ``lambda x: x`` among the
    ``transforms`` to keep the original image. Returns class probabilities (N, K).
    """
    if len(transforms) == 0:
        raise ValueError("tta_predict needs at least one transform (e.g. the identity lambda x: x)")
    total = None
    for transform in transforms:
        probs = torch.softmax(model(transform(x)), dim=-1)
        total = probs if total is None else total + probs
    return total / len(transforms)


__all__ = [
    "BatchNorm",
    "Dropout",
    "affine",
    "batchnorm_backward",
    "batchnorm_forward",
    "blur",
    "brightness",
    "dropout",
    "fan_in_and_fan_out",
    "gaussian_kernel1d",
    "glare",
    "he_normal_",
    "random_augment",
    "rotate",
    "scale",
    "shift",
    "stretch",
    "tta_predict",
    "xavier_uniform_",
]
