"""Autoencoders: dense and convolutional, denoising, perceptual loss, morphing, anomaly scores (lecture 11).

An autoencoder is an encoder ``g: x -> z`` (a low-dimensional *bottleneck* code) and a decoder
``f: z -> x'`` trained to reproduce its input,

.. math::

    \\frac{1}{n} \\sum_{i=1}^{n} L\\big(x_i, f(g(x_i))\\big) \\to \\min_{f, g}

(the student notes write ``L(x_i, g(x_i))``, leaving out the decoder). The reconstruction is
lossy; the value is the code ``z``: compression (with linear ``f``, ``g`` and the squared loss the
optimum spans the principal subspace — PCA, Baldi & Hornik 1989; nonlinear layers make it a
nonlinear PCA), similar-image search by distances between codes, morphing by decoding a mix of two
codes (:func:`interpolate_latents`), and anomaly detection: an input unlike the training data is
reconstructed badly (:func:`reconstruction_error`).

* :class:`DenseAutoencoder` — MLP encoder and decoder on flattened inputs (no hidden layers and
  no activation = the linear autoencoder);
* :class:`ConvAutoencoder` — strided convolutions down, transposed convolutions up;
* :func:`add_noise` — the corruptions of denoising autoencoders (Vincent et al., ICML 2008):
  train on ``(add_noise(x), x)`` pairs, i.e. corrupt the input and demand the clean output;
* :func:`perceptual_loss` — distances between feature maps of a fixed trained network instead of
  pixels (Johnson, Alahi & Fei-Fei, 2016, arXiv 1603.08155): early layers compare local texture
  ("style"), deeper layers compare content;
* :func:`psnr` — peak signal-to-noise ratio, the usual denoising metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NOISE_KINDS",
    "ConvAutoencoder",
    "DenseAutoencoder",
    "add_noise",
    "interpolate_latents",
    "perceptual_loss",
    "psnr",
    "reconstruction_error",
]

NOISE_KINDS = ("gaussian", "masking", "salt_pepper")


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
class DenseAutoencoder(nn.Module):
    """Fully connected autoencoder ``x -> g(x) = z -> f(z) = x'`` on flattened inputs.

    ``input_dim`` features in, ``latent_dim`` in the bottleneck, ``hidden_dims`` the encoder's
    hidden widths (mirrored by the decoder). ``activation`` (a module class, e.g. ``nn.ReLU``)
    follows every hidden layer; ``output_activation`` (e.g. ``nn.Sigmoid()`` for images in
    [0, 1]) follows the last decoder layer. ``DenseAutoencoder(d, k, hidden_dims=())`` is the
    linear autoencoder, whose optimum under the squared loss spans PCA's top-``k`` subspace.

    Shapes: ``encode`` ``(N, *S)`` with ``prod(S) = input_dim`` -> ``(N, latent_dim)``; ``decode``
    ``(N, latent_dim)`` -> ``(N, input_dim)``; ``forward`` ``(N, *S)`` -> ``(N, *S)``.
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int,
        *,
        hidden_dims: Sequence[int] = (256,),
        activation: Callable[[], nn.Module] = nn.ReLU,
        output_activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if input_dim < 1 or latent_dim < 1 or any(h < 1 for h in hidden_dims):
            raise ValueError(
                f"invalid sizes: input_dim={input_dim}, latent_dim={latent_dim}, hidden_dims={tuple(hidden_dims)}"
            )
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.encoder = self._mlp([input_dim, *hidden_dims, latent_dim], activation)
        self.decoder = self._mlp([latent_dim, *reversed(hidden_dims), input_dim], activation)
        if output_activation is not None:
            self.decoder.append(output_activation)

    @staticmethod
    def _mlp(sizes: list[int], activation: Callable[[], nn.Module]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation())
        return nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, *S) -> (N, latent_dim)``."""
        if x.ndim < 2 or x[0].numel() != self.input_dim:
            raise ValueError(f"expected (N, ...) inputs with {self.input_dim} features each, got {tuple(x.shape)}")
        return self.encoder(x.reshape(x.shape[0], -1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) -> (N, input_dim)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected codes (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``f(g(x))`` with the shape of ``x``."""
        return self.decode(self.encode(x)).reshape(x.shape)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for small images (28x28 digits by default, 64x64 faces).

    Encoder: for each width, ``conv 3x3 stride 2 -> BatchNorm -> ReLU`` (halving H and W), then a
    linear layer to ``latent_dim``. Decoder: a linear layer back to the last feature map, then
    for each width in reverse ``ConvTranspose 4x4 stride 2`` (doubling H and W) with BatchNorm and
    ReLU between, and a sigmoid when ``sigmoid_output`` (images in [0, 1]). ``image_size`` must
    be divisible by ``2 ** len(widths)``.

    Shapes: ``encode`` (N, C, H, W) or (N, H, W) for one channel -> (N, latent_dim);
    ``decode`` (N, latent_dim) -> (N, C, H, W); ``forward`` keeps the input's shape.
    """

    def __init__(
        self,
        latent_dim: int,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        widths: Sequence[int] = (32, 64),
        sigmoid_output: bool = True,
    ) -> None:
        super().__init__()
        if latent_dim < 1 or in_channels < 1 or not widths or min(widths) < 1:
            raise ValueError(f"invalid sizes: latent_dim={latent_dim}, in_channels={in_channels}, widths={widths}")
        factor = 2 ** len(widths)
        if image_size < factor or image_size % factor:
            raise ValueError(f"image_size must be a multiple of 2 ** len(widths) = {factor}, got {image_size}")
        self.latent_dim, self.in_channels, self.image_size = latent_dim, in_channels, image_size
        self._bottom = (widths[-1], image_size // factor, image_size // factor)
        enc: list[nn.Module] = []
        c = in_channels
        for w in widths:
            enc += [nn.Conv2d(c, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        flat = math.prod(self._bottom)
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, latent_dim))
        dec: list[nn.Module] = [nn.Linear(latent_dim, flat), nn.Unflatten(1, self._bottom), nn.ReLU(inplace=True)]
        outs = [*reversed(widths[:-1]), in_channels]
        for i, (a, b) in enumerate(zip(reversed(widths), outs)):
            last = i == len(widths) - 1
            dec.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=last))
            if not last:
                dec += [nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        if sigmoid_output:
            dec.append(nn.Sigmoid())
        self.decoder = nn.Sequential(*dec)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3 and self.in_channels == 1:
            x = x[:, None]
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected images (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) or (N, H, W) -> (N, latent_dim)."""
        return self.encoder(self._check(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) -> (N, C, H, W)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected codes (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction with the shape of ``x``."""
        return self.decode(self.encode(x)).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# corruption (denoising autoencoders)
# --------------------------------------------------------------------------------------------
def add_noise(
    x: torch.Tensor,
    kind: str = "gaussian",
    level: float = 0.1,
    generator: torch.Generator | None = None,
    *,
    low: float = 0.0,
    high: float = 1.0,
) -> torch.Tensor:
    """A corrupted copy of ``x`` (any shape, floating point) for training denoising autoencoders.

    * ``"gaussian"``: ``x + level * eps``, ``eps ~ N(0, 1)`` i.i.d. (``level`` = the standard
      deviation; no clipping);
    * ``"masking"``: each entry independently set to 0 with probability ``level`` (Vincent et
      al.'s masking noise);
    * ``"salt_pepper"``: each entry independently, with probability ``level``, replaced by
      ``low`` or ``high`` (each with probability 1/2), the image's range.

    ``generator`` (on ``x``'s device) makes the noise reproducible; ``x`` is not modified.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    level = float(level)
    if kind == "gaussian":
        if not level >= 0:
            raise ValueError(f"the gaussian noise level (a standard deviation) must be >= 0, got {level}")
        return x + level * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if not 0 <= level <= 1:
        raise ValueError(f"the {kind} noise level (a probability) must be in [0, 1], got {level}")
    hit = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < level
    if kind == "masking":
        return x.masked_fill(hit, 0.0)
    salt = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 0.5
    return torch.where(hit, torch.where(salt, high, low).to(x.dtype), x)


# --------------------------------------------------------------------------------------------
# losses and metrics
# --------------------------------------------------------------------------------------------
def _resolve_layers(net: nn.Module, layers: Sequence[str | nn.Module]) -> list[nn.Module]:
    named = dict(net.named_modules())
    modules = set(map(id, named.values()))
    out = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in named or layer == "":
                raise ValueError(f"feature_net has no submodule {layer!r}; its submodules are {list(named)[1:]}")
            out.append(named[layer])
        elif isinstance(layer, nn.Module) and id(layer) in modules:
            out.append(layer)
        else:
            raise ValueError(f"layers must be names or submodules of feature_net, got {layer!r}")
    return out


def perceptual_loss(
    feature_net: nn.Module,
    layers: Sequence[str | nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Feature-reconstruction ("perceptual") loss of Johnson et al. (2016) over several layers.

    ``feature_net``: a fixed, trained network (put it in eval mode and freeze it yourself);
    ``layers``: names (as in ``feature_net.named_modules()``) or submodules whose outputs are
    compared; x, y: inputs of the same shape (N, ...). With ``phi_j`` the output of layer ``j``
    (C_j H_j W_j values per example):

        L = sum_j w_j * (1 / (N C_j H_j W_j)) * ||phi_j(x) - phi_j(y)||_2^2,

    the mean squared difference of each layer's feature maps, weighted (``weights`` default 1).
    Feature maps are captured with forward hooks, removed afterwards even on error. The gradient
    flows to ``x`` (and to ``y`` if it requires one).
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    modules = _resolve_layers(feature_net, layers)
    if not modules:
        raise ValueError("layers is empty: name at least one layer of feature_net")
    weights = [1.0] * len(modules) if weights is None else [float(w) for w in weights]
    if len(weights) != len(modules):
        raise ValueError(f"got {len(weights)} weights for {len(modules)} layers")
    feats_x = _features(feature_net, modules, x)
    feats_y = _features(feature_net, modules, y)
    return sum(w * F.mse_loss(fx, fy) for w, fx, fy in zip(weights, feats_x, feats_y))


def _features(net: nn.Module, modules: list[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of ``modules`` (in the order given) during one forward pass of ``net`` on ``x``."""
    captured: list[list[torch.Tensor]] = [[] for _ in modules]

    def hook(i: int):
        return lambda _module, _inputs, output: captured[i].append(output)

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    if any(len(c) != 1 for c in captured):
        counts = [len(c) for c in captured]
        raise ValueError(f"each layer must run exactly once per forward pass of feature_net; ran {counts} times")
    return [c[0] for c in captured]


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in decibels, per image: ``10 log10(data_range^2 / MSE)``.

    x, y: (N, ...) images of the same shape (a batch; the MSE of image ``i`` is the mean over all
    its values); ``data_range``: the peak value (1 for images in [0, 1], 255 for bytes). Returns
    the per-image PSNRs (N,) for ``reduction="none"`` or their mean for ``"mean"``. Identical
    images give ``inf``. Higher is better: +6 dB = half the RMS error.
    """
    if x.shape != y.shape or x.ndim < 2:
        raise ValueError(
            f"x and y must be batches (N, ...) of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    mse = (x - y).pow(2).flatten(1).mean(1)
    values = 10 * torch.log10(data_range**2 / mse)
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int, *, spherical: bool = False) -> torch.Tensor:
    """Codes on the path from ``z0`` to ``z1`` for morphing (decode them to get the frames).

    z0, z1: codes of the same shape ``S`` (e.g. (latent_dim,) or (N, latent_dim)); ``steps >= 2``.
    Returns ``(steps, *S)`` with ``out[k] = (1 - t_k) z0 + t_k z1`` at ``t_k = k / (steps - 1)``, so
    ``out[0] = z0``, ``out[-1] = z1`` and the middle of an odd path is the average of the two codes
    (the lecture's "average two codes and decode"). ``spherical=True`` interpolates along the
    great circle instead (slerp over the last dimension; for codes on a sphere or from a Gaussian
    prior): ``(sin((1 - t) w) z0 + sin(t w) z1) / sin w`` with ``w`` the angle between them, norms
    interpolated linearly.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (both endpoints), got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).reshape(steps, *([1] * z0.ndim))
    if not spherical:
        return (1 - t) * z0 + t * z1
    if z0.ndim == 0:
        raise ValueError("spherical interpolation needs codes with at least one dimension")
    n0, n1 = z0.norm(dim=-1, keepdim=True), z1.norm(dim=-1, keepdim=True)
    u0, u1 = z0 / n0.clamp_min(1e-12), z1 / n1.clamp_min(1e-12)
    omega = torch.arccos((u0 * u1).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    small = so.abs() < 1e-6  # (anti)parallel codes: fall back to the straight line between the unit vectors
    w0 = torch.where(small, 1 - t, torch.sin((1 - t) * omega) / so.where(~small, 1.0))
    w1 = torch.where(small, t, torch.sin(t * omega) / so.where(~small, 1.0))
    direction = w0 * u0 + w1 * u1
    return direction * ((1 - t) * n0 + t * n1)


@torch.no_grad()
def reconstruction_error(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, relative: bool = False
) -> torch.Tensor:
    """Per-example reconstruction error, the anomaly score of an autoencoder.

    x: (N, ...) inputs; ``model(x)`` must return a tensor of the same shape. Returns (N,) with
    ``score_i = mean((model(x_i) - x_i)^2)`` over the values of example ``i`` or, with
    ``relative=True``, the error relative to the example's own energy,
    ``score_i = sum((model(x_i) - x_i)^2) / sum(x_i^2)`` — which removes the plain score's bias
    towards inputs with little ink (a thin "1" has few pixels to get wrong). Computed in eval mode
    (the model's mode is restored), without gradients, ``batch_size`` examples at a time. Inputs
    unlike the training data (a held-out class, strokes among digits) reconstruct badly and score
    high: rank by score, or threshold it, and measure with ROC-AUC.
    """
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got {tuple(x.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if relative:
        energy = x.reshape(len(x), -1).pow(2).sum(1)
        empty = torch.nonzero(energy == 0).flatten()
        if len(empty):
            raise ValueError(
                f"relative=True divides by each input's energy sum(x_i^2), which is 0 for the examples "
                f"at {empty[:10].tolist()}{' ...' if len(empty) > 10 else ''}: drop them, or use the "
                "plain score (relative=False)"
            )
    was_training = model.training
    model.eval()
    try:
        scores = []
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            out = model(xb)
            if out.shape != xb.shape:
                raise ValueError(f"model output {tuple(out.shape)} does not match its input {tuple(xb.shape)}")
            err = (out - xb).pow(2).reshape(len(xb), -1)
            scores.append(err.sum(1) / xb.reshape(len(xb), -1).pow(2).sum(1) if relative else err.mean(1))
    finally:
        model.train(was_training)
    return torch.cat(scores)
