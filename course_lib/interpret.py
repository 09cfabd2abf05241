"""What a CNN sees: top-activating patches, class-score maximisation, saliency, occlusion, Grad-CAM, t-SNE (lecture 07).

Models take images ``x: (N, C, H, W)`` and return unnormalised class scores ``a(x): (N, K)``.
Every function puts the model in eval mode for its forward passes (dropout off, batch norm on its
running statistics) and restores the previous mode; none of them touches the parameters'
``.grad``.

* :func:`top_activating_patches` — for each filter (channel) of a layer, the ``k`` images whose
  activation maximum is largest, and the input patch that produced it: the unit's receptive field,
  located with :func:`course_lib.conv.receptive_field`'s arithmetic (Zeiler & Fergus 2014 show
  such patches for AlexNet's layers 1-5).
* :func:`maximize_class` — Simonyan, Vedaldi & Zisserman (2014): ``x* = argmax_x a_y(x) - l2 ||x||^2``
  by gradient *ascent* from small random noise, on the unnormalised score ``a_y``.
* :func:`saliency_map` — the same paper: ``|d a_y / d x|``, maximised over colour channels.
* :func:`occlusion_map` — Zeiler & Fergus: the drop of ``a_y`` when a ``patch x patch`` square of
  the image is replaced by a constant, for every position of the square.
* :func:`grad_cam` — Selvaraju et al. (2017): ``ReLU(sum_k alpha_k A^k)`` with
  ``alpha_k = mean_{ij} d a_y / d A^k_{ij}``, ``A`` the maps of a convolutional layer.
* :func:`tsne_embed` — a 2-D t-SNE (van der Maaten & Hinton 2008, scikit-learn) of feature vectors
  such as the penultimate layer's, to see whether classes form clusters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.conv import conv_output_size, receptive_field

__all__ = [
    "ClassImage",
    "LayerGeometry",
    "TopPatches",
    "grad_cam",
    "layer_geometry",
    "layer_output",
    "maximize_class",
    "occlusion_map",
    "saliency_map",
    "top_activating_patches",
    "tsne_embed",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError as err:
            raise ValueError(f"model has no submodule named {layer!r}") from err
    if not any(m is layer for m in model.modules()):
        raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
    return layer


def _check_images(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be images (N, C, H, W); got {shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")


def _class_index(class_idx: int | torch.Tensor | Sequence[int], n: int, device: torch.device) -> torch.Tensor:
    """class_idx as a (N,) long tensor on ``device``."""
    if isinstance(class_idx, int) and not isinstance(class_idx, bool):
        return torch.full((n,), class_idx, dtype=torch.long, device=device)
    idx = torch.as_tensor(class_idx, device=device)
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.shape != (n,):
        raise ValueError(f"class_idx must be an int or N={n} integer labels; got {class_idx!r}")
    return idx.long()


def _scores(model: nn.Module, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """a_y(x) for each row: (N,)."""
    out = model(x)
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(f"the model must return class scores (N, K); got {tuple(out.shape)}")
    if idx.numel() and (idx.min() < 0 or idx.max() >= out.shape[1]):
        raise ValueError(f"class_idx must lie in [0, {out.shape[1]}); got {idx.tolist()}")
    return out.gather(1, idx[:, None]).squeeze(1)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints; got {value!r}")
    return value  # type: ignore[return-value]


def layer_output(model: nn.Module, layer: nn.Module | str, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """The output of ``layer`` when ``model`` runs on ``x`` (eval mode, no gradients), batch by batch.

    ``x: (N, ...)`` -> ``(N, ...)`` (the layer's output shape). ``layer``: the submodule itself or
    its name (``"features.3"``). Useful for penultimate-layer features (t-SNE, linear probes).
    """
    layer = _resolve_layer(model, layer)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        captured.append(out.detach())

    handle = layer.register_forward_hook(hook)
    outputs = []
    try:
        with _eval_mode(model), torch.no_grad():
            for start in range(0, len(x), batch_size):
                captured.clear()
                model(x[start : start + batch_size])
                if len(captured) != 1:
                    raise ValueError(f"the layer ran {len(captured)} times in one forward pass; expected once")
                outputs.append(captured[0])
    finally:
        handle.remove()
    if not outputs:
        raise ValueError("x is an empty batch")
    return torch.cat(outputs)


# --------------------------------------------------------------------------------------------
# receptive-field geometry and top-activating patches
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerGeometry:
    """Where a unit of a layer looks in the input, per axis (rows, columns).

    Unit ``(i, j)`` of the layer's maps sees input rows ``offset[0] + i jump[0]`` up to (excluding)
    that plus ``size[0]``, and likewise for columns; positions outside the image are padding.
    ``layers`` lists the ``(kernel, stride, dilation, padding)`` per axis of the convolutions and
    pools on the way, in order.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    offset: tuple[int, int]
    layers: tuple[tuple[tuple[int, int, int, int], tuple[int, int, int, int]], ...]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The layer's map size for an ``height x width`` input (conv_output_size along the chain)."""
        sizes = [height, width]
        for spec in self.layers:
            for axis in (0, 1):
                k, s, d, p = spec[axis]
                sizes[axis] = conv_output_size(sizes[axis], k, s, p, d)
        return sizes[0], sizes[1]


_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def _spatial_params(m: nn.Module) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    def two(v: int | Sequence[int]) -> tuple[int, int]:
        return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))

    k = two(m.kernel_size)
    s = two(m.stride if m.stride is not None else m.kernel_size)
    d = two(getattr(m, "dilation", 1))
    if isinstance(m, nn.Conv2d) and isinstance(m.padding, str):
        if m.padding == "valid":
            p = (0, 0)
        elif all(dd * (kk - 1) % 2 == 0 for kk, dd in zip(k, d)):  # "same" with stride 1, symmetric
            p = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        else:
            raise ValueError(f"{m}: asymmetric 'same' padding is not supported")
    else:
        p = two(m.padding)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) and m.ceil_mode:
        raise ValueError(f"{m}: ceil_mode pooling is not supported")
    return (k[0], s[0], d[0], p[0]), (k[1], s[1], d[1], p[1])


def layer_geometry(model: nn.Module, layer: nn.Module | str) -> LayerGeometry:
    """Receptive field, jump and offset of ``layer``'s units, for a model that is a chain of layers.

    The convolutions and pools (Conv2d, MaxPool2d, AvgPool2d) are taken in registration order up
    to and including ``layer`` (all of them inside it, if it is a container), which is the order
    of computation for Sequential-style networks (LeNet5, AlexNetSmall, VGG). Per axis, with
    ``r_0 = 1``, ``j_0 = 1``, ``o_0 = 0``:

    ``r_l = r_{l-1} + d_l (k_l - 1) j_{l-1}`` (:func:`course_lib.conv.receptive_field`),
    ``o_l = o_{l-1} - p_l j_{l-1}``, ``j_l = j_{l-1} s_l``.

    Element-wise layers (activations, batch norm) do not change the geometry. Adaptive pools
    (whose kernel depends on the input) raise ``ValueError``.
    """
    layer = _resolve_layer(model, layer)
    inside = {id(m) for m in layer.modules()}
    modules = list(model.modules())
    at = next(i for i, m in enumerate(modules) if m is layer)
    # pre-order: what precedes the layer, the layer, then its own descendants
    path = modules[: at + 1] + [m for m in modules[at + 1 :] if id(m) in inside]
    chain = []
    for m in path:
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            raise ValueError(f"{m} before the layer: an adaptive pool's receptive field depends on the input size")
        if isinstance(m, _SPATIAL):
            chain.append(_spatial_params(m))
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    for axis in (0, 1):
        fields = receptive_field([(k, s, d) for (k, s, d, _p) in (spec[axis] for spec in chain)])
        size[axis] = fields[-1] if fields else 1
        for _k, s, _d, p in (spec[axis] for spec in chain):
            offset[axis] -= p * jump[axis]
            jump[axis] *= s
    return LayerGeometry(tuple(size), tuple(jump), tuple(offset), tuple(chain))  # type: ignore[arg-type]


@dataclass
class TopPatches:
    """Result of :func:`top_activating_patches` for ``C`` channels and ``k`` images each.

    ``values: (C, k)`` the activation maxima, largest first; ``image: (C, k)`` the image indices;
    ``position: (C, k, 2)`` the (row, column) of the maximum in the layer's map; ``boxes: (C, k,
    4)`` its receptive field in input pixels as (top, left, bottom, right), bottom/right exclusive,
    possibly reaching into the padding; ``patches: (C, k, C_in, r_h, r_w)`` the input cut out at
    the boxes (zeros outside the image); ``geometry`` the layer's :class:`LayerGeometry`.
    """

    values: torch.Tensor
    image: torch.Tensor
    position: torch.Tensor
    boxes: torch.Tensor
    patches: torch.Tensor
    geometry: LayerGeometry


def top_activating_patches(
    model: nn.Module,
    layer: nn.Module | str,
    images: torch.Tensor,
    k: int,
    *,
    channels: Sequence[int] | None = None,
    batch_size: int = 256,
) -> TopPatches:
    """For every channel of ``layer``, the ``k`` images that excite it most and the patch each responded to.

    ``images: (N, C_in, H, W)``, ``1 <= k <= N``. The score of image ``n`` for channel ``c`` is the
    maximum of ``layer``'s output map ``A[n, c]``; the ``k`` best images (distinct) are kept, and
    for each the receptive field (:func:`layer_geometry`) of the maximising unit is cut out of the
    image. The layer must produce maps ``(N, C, h, w)``; ``channels`` picks a subset (default:
    all). The model must be a chain of layers (see :func:`layer_geometry`).
    """
    _check_images(images, "images")
    n = images.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k must be an int in [1, N={n}]; got {k!r}")
    geometry = layer_geometry(model, layer)
    maps = layer_output(model, layer, images, batch_size=batch_size)
    if maps.ndim != 4:
        raise ValueError(f"the layer must output maps (N, C, h, w); got {tuple(maps.shape)}")
    if tuple(maps.shape[2:]) != geometry.output_size(images.shape[2], images.shape[3]):
        raise ValueError(
            f"the layer's maps are {tuple(maps.shape[2:])} but the chain of convolutions and pools before it gives "
            f"{geometry.output_size(images.shape[2], images.shape[3])}: the model is not a chain of layers"
        )
    if channels is not None:
        channels = list(channels)
        if not channels or any(not 0 <= c < maps.shape[1] for c in channels):
            raise ValueError(f"channels must be indices in [0, {maps.shape[1]}); got {channels!r}")
        maps = maps[:, channels]
    c_out, w = maps.shape[1], maps.shape[3]
    flat = maps.flatten(2)  # (N, C, h*w)
    per_image, where = flat.max(dim=2)  # (N, C)
    values, image = per_image.t().topk(k, dim=1)  # (C, k)
    pos = where.t().gather(1, image)  # (C, k) flat position
    position = torch.stack([pos // w, pos % w], dim=-1)
    (rh, rw), (jh, jw), (oh, ow) = geometry.size, geometry.jump, geometry.offset
    top = oh + position[..., 0] * jh
    left = ow + position[..., 1] * jw
    boxes = torch.stack([top, left, top + rh, left + rw], dim=-1)
    # cut the patches out of a zero-padded copy of the chosen images
    pad_t, pad_l = max(0, -int(top.min())), max(0, -int(left.min()))
    pad_b = max(0, int((top + rh).max()) - images.shape[2])
    pad_r = max(0, int((left + rw).max()) - images.shape[3])
    padded = F.pad(images.detach(), (pad_l, pad_r, pad_t, pad_b))
    rows = (top + pad_t).reshape(-1, 1) + torch.arange(rh, device=top.device)  # (C*k, rh)
    cols = (left + pad_l).reshape(-1, 1) + torch.arange(rw, device=top.device)  # (C*k, rw)
    chosen = padded[image.reshape(-1).to(images.device)]  # (C*k, C_in, Hp, Wp)
    idx = torch.arange(chosen.shape[0], device=images.device)
    patches = chosen[idx[:, None, None], :, rows.to(images.device)[:, :, None], cols.to(images.device)[:, None, :]]
    patches = patches.permute(0, 3, 1, 2).reshape(c_out, k, images.shape[1], rh, rw)
    return TopPatches(values, image, position, boxes, patches, geometry)


# --------------------------------------------------------------------------------------------
# class-score maximisation
# --------------------------------------------------------------------------------------------
@dataclass
class ClassImage:
    """Result of :func:`maximize_class`: ``image: (C, H, W)`` and the objective after each step."""

    image: torch.Tensor
    objective: list[float]
    score: float


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return p.device, p.dtype


def maximize_class(
    model: nn.Module,
    class_idx: int,
    *,
    l2: float = 1e-3,
    steps: int = 200,
    lr: float = 1.0,
    input_shape: Sequence[int] | None = None,
    init_std: float = 1e-2,
    seed: int = 0,
) -> ClassImage:
    """The image a class model "sees": ``x* = argmax_x a_y(x) - l2 ||x||_2^2`` (Simonyan et al. 2014).

    Starts from Gaussian noise ``x_0 ~ N(0, init_std^2)`` (seeded by ``seed``) and takes ``steps``
    plain gradient-*ascent* steps ``x <- x + lr * grad_x (a_y(x) - l2 ||x||^2)`` on the
    unnormalised score ``a_y`` (the logit, not the softmax probability, which could also grow by
    lowering the other classes). ``input_shape = (C, H, W)`` defaults to the model's
    ``in_channels`` and ``input_size`` attributes (the course's models have them). The model runs
    in eval mode; its parameters are not changed and get no gradients.

    For a linear score ``a_y(x) = w.x + b`` the maximiser is ``x* = w / (2 l2)``.
    """
    if input_shape is None:
        c, s = getattr(model, "in_channels", None), getattr(model, "input_size", None)
        if c is None or s is None:
            raise ValueError("pass input_shape=(C, H, W): the model has no in_channels/input_size attributes")
        input_shape = (c, s, s)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in input_shape):
        raise ValueError(f"input_shape must be (C, H, W) positive ints; got {input_shape!r}")
    if not l2 >= 0:
        raise ValueError(f"l2 must be >= 0; got {l2!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0; got {steps!r}")
    device, dtype = _model_device_dtype(model)
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn((1, *input_shape), generator=g, dtype=dtype) * init_std).to(device)
    idx = torch.tensor([class_idx], device=device)
    history = []
    with _eval_mode(model):
        for _ in range(steps):
            x.requires_grad_(True)
            objective = _scores(model, x, idx).sum() - l2 * x.pow(2).sum()
            (grad,) = torch.autograd.grad(objective, x)
            x = (x.detach() + lr * grad).detach()
            history.append(objective.item())
        with torch.no_grad():
            score = _scores(model, x, idx).item()
    return ClassImage(x[0], history, score)


# --------------------------------------------------------------------------------------------
# saliency, occlusion, Grad-CAM
# --------------------------------------------------------------------------------------------
def saliency_map(
    model: nn.Module, x: torch.Tensor, class_idx: int | torch.Tensor | Sequence[int], *, reduce: str = "max"
) -> torch.Tensor:
    """Image-specific class saliency (Simonyan et al. 2014): the gradient of the score with respect to the pixels.

    ``x: (N, C, H, W)``, ``class_idx``: one class for all images or ``(N,)`` labels. With
    ``G = d a_y(x_n) / d x_n: (N, C, H, W)`` (the model in eval mode, so images do not interact):
    ``reduce="max"`` returns ``max_c |G|: (N, H, W)`` (the paper's map), ``"abs"`` returns
    ``|G|``, ``"none"`` returns ``G`` itself.
    """
    _check_images(x)
    if reduce not in ("max", "abs", "none"):
        raise ValueError(f"reduce must be 'max', 'abs' or 'none'; got {reduce!r}")
    idx = _class_index(class_idx, x.shape[0], x.device)
    inp = x.detach().clone().requires_grad_(True)
    with _eval_mode(model):
        (grad,) = torch.autograd.grad(_scores(model, inp, idx).sum(), inp)
    if reduce == "none":
        return grad
    return grad.abs() if reduce == "abs" else grad.abs().amax(dim=1)


def occlusion_map(
    model: nn.Module,
    x: torch.Tensor,
    class_idx: int | torch.Tensor | Sequence[int],
    patch: int | Sequence[int],
    stride: int | Sequence[int],
    *,
    fill: float = 0.0,
    batch_size: int = 128,
) -> torch.Tensor:
    """Occlusion sensitivity (Zeiler & Fergus 2014): how much the score drops when a square is covered.

    ``x: (N, C, H, W)``; for the square of size ``patch`` (int or (ph, pw)) at every position
    ``(i s_h, j s_w)``, ``0 <= i < (H - ph) // s_h + 1`` (likewise j), the pixels of all channels
    under it are set to ``fill`` and ``M[n, i, j] = a_y(x_n) - a_y(x_n occluded)`` is recorded.
    Returns ``M: (N, H_out, W_out)``; large values mark evidence for the class. The occluded
    copies are scored ``batch_size`` at a time.
    """
    _check_images(x)
    ph, pw = _pair(patch, "patch")
    sh, sw = _pair(stride, "stride")
    n, _c, h, w = x.shape
    if ph > h or pw > w:
        raise ValueError(f"patch {ph}x{pw} is larger than the {h}x{w} image")
    idx = _class_index(class_idx, n, x.device)
    h_out, w_out = (h - ph) // sh + 1, (w - pw) // sw + 1
    tops = torch.arange(h_out, device=x.device) * sh
    lefts = torch.arange(w_out, device=x.device) * sw
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows[None, :] >= tops[:, None]) & (rows[None, :] < tops[:, None] + ph)  # (h_out, H)
    in_cols = (cols[None, :] >= lefts[:, None]) & (cols[None, :] < lefts[:, None] + pw)  # (w_out, W)
    masks = (in_rows[:, None, :, None] & in_cols[None, :, None, :]).reshape(h_out * w_out, 1, h, w)
    drops = torch.empty(n, h_out * w_out, dtype=x.dtype, device=x.device)
    with _eval_mode(model), torch.no_grad():
        base = _scores(model, x, idx)
        for i in range(n):
            for start in range(0, masks.shape[0], batch_size):
                m = masks[start : start + batch_size]
                occluded = torch.where(m, torch.as_tensor(fill, dtype=x.dtype, device=x.device), x[i : i + 1])
                scores = _scores(model, occluded, idx[i].expand(len(m)))
                drops[i, start : start + len(m)] = base[i] - scores
    return drops.reshape(n, h_out, w_out)


def grad_cam(
    model: nn.Module,
    layer: nn.Module | str,
    x: torch.Tensor,
    class_idx: int | torch.Tensor | Sequence[int],
    *,
    upsample: bool = True,
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): where in ``layer``'s maps the evidence for class ``y`` lies.

    With ``A: (N, K, h, w)`` the output of ``layer`` (a convolutional layer, typically the last)
    and ``alpha_k = (1 / hw) sum_ij d a_y / d A^k_ij``, the map is ``ReLU(sum_k alpha_k A^k): (N, h, w)``;
    ``upsample=True`` resizes it bilinearly to the input's ``(N, H, W)``. For a network that ends
    in global average pooling and one linear layer on ``A``, this is CAM (Zhou et al. 2016):
    ``ReLU(sum_k w_yk A^k) / (hw)``.
    """
    _check_images(x)
    layer = _resolve_layer(model, layer)
    idx = _class_index(class_idx, x.shape[0], x.device)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        captured.append(out)

    handle = layer.register_forward_hook(hook)
    try:
        with _eval_mode(model), torch.enable_grad():
            inp = x.detach().requires_grad_(True)  # makes the layer's output part of a graph
            scores = _scores(model, inp, idx)
            if len(captured) != 1:
                raise ValueError(f"the layer ran {len(captured)} times in one forward pass; expected once")
            maps = captured[0]
            if maps.ndim != 4:
                raise ValueError(f"the layer must output maps (N, K, h, w); got {tuple(maps.shape)}")
            (grads,) = torch.autograd.grad(scores.sum(), maps)
    finally:
        handle.remove()
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * maps.detach()).sum(dim=1))
    if upsample:
        cam = F.interpolate(cam[:, None], size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return cam


# --------------------------------------------------------------------------------------------
# t-SNE
# --------------------------------------------------------------------------------------------
def tsne_embed(
    features: torch.Tensor | np.ndarray,
    *,
    n_components: int = 2,
    perplexity: float | None = None,
    seed: int = 0,
    max_iter: int = 1000,
) -> np.ndarray:
    """t-SNE of feature vectors (scikit-learn's ``TSNE``, PCA initialisation, automatic learning rate).

    ``features: (N, D)`` (a tensor is detached and moved to the CPU) -> ``(N, n_components)``
    float64 array. ``perplexity`` defaults to ``min(30, (N - 1) / 3)`` so that small sets work;
    scikit-learn needs it below ``N``. Deterministic for a given ``seed``.
    """
    from sklearn.manifold import TSNE

    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D); got shape {features.shape}")
    n = features.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points; got {n}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity")
    if perplexity is None:
        perplexity = min(30.0, (n - 1) / 3)
    if not 0 < perplexity < n:
        raise ValueError(f"perplexity must be in (0, N={n}); got {perplexity!r}")
    tsne = TSNE(
        n_components=n_components,
        perplexity=perplexity,
        init="pca",
        learning_rate="auto",
        random_state=seed,
        max_iter=max_iter,
    )
    return tsne.fit_transform(features).astype(np.float64)
