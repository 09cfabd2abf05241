"""Semantic segmentation: metrics, the per-pixel loss, FCN, U-Net and the dilated context network (lecture 08).

Segmentation is classification of every pixel: a label map ``target: (N, H, W)`` (or ``(H, W)``)
with values in ``0..K-1`` and a prediction of the same shape (the arg-max of logits
``(N, K, H, W)``). Formulas of the lecture, written correctly (the notes garble two of them):

- pixel accuracy ``(1/n) sum_i [y_i = a_i]`` (:func:`pixel_accuracy`; seed 8.4 writes ``!=``);
- Jaccard index of class ``k``: ``J_k = sum_i [y_i=k][a_i=k] / sum_i max([y_i=k], [a_i=k])``
  = ``|intersection| / |union|`` (:func:`jaccard_per_class`), averaged over classes (:func:`mean_iou`);
- Dice ``2 |P & T| / (|P| + |T|)`` (:func:`dice_per_class`) and boundary IoU (:func:`boundary_iou`);
- the per-pixel cross-entropy ``L = -(1/n) sum_i sum_k [y_i = k] log a_ik`` with
  ``a_i = softmax(b_i)`` (:func:`pixel_cross_entropy`; the notes drop the minus sign, seed 8.6).

Models (``nn.Module``, input ``(N, C_in, H, W)``, output logits ``(N, K, H, W)`` of the input's size
unless stated): :class:`FCN` (a small convolutional backbone, a 1x1 convolution to ``K`` channels and
upsampling by pixel repetition or a learned transposed convolution), :class:`UNet` (contracting
path, up-convolutions, copy-and-crop skips) and :class:`ContextNetwork` (the dilated stack of Yu &
Koltun, dilations 1, 1, 2, 4, 8, 16, 1, 1). Each model lists its layers as
``(kernel, stride, dilation)`` for :func:`course_lib.conv.receptive_field`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.conv import receptive_field

__all__ = [
    "FCN",
    "ContextNetwork",
    "UNet",
    "boundary_band",
    "boundary_iou",
    "center_crop",
    "confusion_matrix",
    "dice_per_class",
    "evaluate_segmentation",
    "jaccard_per_class",
    "mean_iou",
    "pixel_accuracy",
    "pixel_cross_entropy",
    "train_segmentation",
]


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def _check_labels(pred: torch.Tensor, target: torch.Tensor, num_classes: int | None = None) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"pred and target must be tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must be label maps of the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
            " (take logits.argmax(1) first)"
        )
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError(f"pred and target must hold integer class labels, got {pred.dtype} and {target.dtype}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")


def _valid(target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    return torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> torch.Tensor:
    """Fraction of pixels whose predicted class is right: ``(1/n) sum_i [y_i = a_i]`` (seed 8.4).

    ``pred``, ``target``: integer label maps of the same shape (any shape, e.g. ``(N, H, W)``).
    Pixels whose target equals ``ignore_index`` (e.g. 255, VOC's "void") are left out. Returns a
    0-d float64 tensor; NaN when no pixel is counted.
    """
    _check_labels(pred, target)
    valid = _valid(target, ignore_index)
    n = valid.sum()
    return ((pred == target) & valid).sum().double() / n.double()


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """``M[t, p]`` = number of pixels of true class ``t`` predicted as ``p``; (K, K) int64.

    One ``bincount`` of ``t K + p`` over the counted pixels. Labels outside ``0..K-1`` (other than
    ``ignore_index`` in the target) raise ``ValueError``.
    """
    _check_labels(pred, target, num_classes)
    valid = _valid(target, ignore_index)
    t, p = target[valid].long(), pred[valid].long()
    for name, v in (("target", t), ("pred", p)):
        if v.numel() and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(
                f"{name} holds labels outside 0..{num_classes - 1}: [{v.min().item()}, {v.max().item()}]"
                + (f" (ignore_index={ignore_index} pixels are skipped)" if ignore_index is not None else "")
            )
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def jaccard_per_class(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Per-class Jaccard index (IoU), (K,) float64 (seed 8.5).

    ``J_k = sum_i [y_i = k][a_i = k] / sum_i max([y_i = k], [a_i = k])`` = TP / (TP + FP + FN);
    a class absent from both prediction and target has an empty union and gets NaN (no evidence
    either way), so that :func:`mean_iou` can skip it.
    """
    m = confusion_matrix(pred, target, num_classes, ignore_index).double()
    tp = m.diagonal()
    union = m.sum(0) + m.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))


def mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Mean of :func:`jaccard_per_class` over the classes present in prediction or target (NaN ones skipped)."""
    return torch.nanmean(jaccard_per_class(pred, target, num_classes, ignore_index))


def dice_per_class(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Per-class Dice coefficient (F1 of the pixels), (K,) float64: ``2 TP / (2 TP + FP + FN)``.

    Related to Jaccard by ``D = 2J / (1 + J)``; NaN for a class absent from both maps.
    """
    m = confusion_matrix(pred, target, num_classes, ignore_index).double()
    tp = m.diagonal()
    total = m.sum(0) + m.sum(1)
    return torch.where(total > 0, 2 * tp / total.clamp_min(1), torch.full_like(tp, math.nan))


def boundary_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels of a binary mask within Chebyshev distance ``width`` of its contour, as a bool tensor.

    ``mask``: (..., H, W) bool. A mask pixel is in the band when some pixel within a
    ``(2 width + 1)``-square around it lies outside the mask, where everything beyond the image
    border counts as outside (so objects cut by the border have a band there, as in the Boundary
    IoU paper's reference code). Computed as ``mask & ~erode(mask)``, the erosion being a max-pool
    of the complement.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    if mask.ndim < 2:
        raise ValueError(f"mask must have shape (..., H, W), got {tuple(mask.shape)}")
    mask = mask.bool()
    lead = mask.shape[:-2]
    outside = (~mask).reshape(-1, 1, *mask.shape[-2:]).float()
    outside = F.pad(outside, (width, width, width, width), value=1.0)
    near_outside = F.max_pool2d(outside, 2 * width + 1, stride=1) > 0
    return mask & near_outside.reshape(*lead, *mask.shape[-2:])


def boundary_iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    width: int = 2,
    *,
    ignore_background: bool = True,
    per_class: bool = False,
) -> torch.Tensor:
    """IoU of the boundary bands of each class (Cheng et al., "Boundary IoU", 2021): quality of the edges.

    For class ``k`` with masks ``P = [a = k]`` and ``G = [y = k]`` (per image; ``pred``, ``target``:
    ``(H, W)`` or ``(N, H, W)``) and bands ``P_d``, ``G_d`` of :func:`boundary_band`:
    ``|G_d & P_d| / |G_d | P_d|``, with intersections and unions summed over the images. Unlike the
    mask IoU it does not saturate for large objects: a coarse (e.g. FCN) edge lowers it clearly.
    Returns the mean over classes with a non-empty band union (NaN ones skipped), or the (K,) vector
    with ``per_class=True``. Class 0 (background) is left out when ``ignore_background``.
    """
    _check_labels(pred, target, num_classes)
    if pred.ndim not in (2, 3):
        raise ValueError(f"pred and target must be (H, W) or (N, H, W) label maps, got {tuple(pred.shape)}")
    classes = torch.arange(num_classes, device=pred.device).view(-1, *([1] * pred.ndim))
    p_band = boundary_band(pred.unsqueeze(0) == classes, width)  # (K, [N,] H, W)
    g_band = boundary_band(target.unsqueeze(0) == classes, width)
    inter = (p_band & g_band).flatten(1).sum(1).double()
    union = (p_band | g_band).flatten(1).sum(1).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, math.nan))
    if ignore_background:
        iou[0] = math.nan
    return iou if per_class else torch.nanmean(iou)


def pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Per-pixel categorical cross-entropy with its minus sign (seed 8.6; 8.7 for the softmax).

    ``L = -(1/n) sum_i sum_k [y_i = k] log a_ik``, ``a_i = softmax(b_i)`` over the class axis, for
    ``logits b: (N, K, H, W)`` and ``target y: (N, H, W)`` int64 (any number of spatial axes works).
    The lecture notes write it without the minus, which makes it <= 0 and maximised; with the
    minus it is >= 0 and minimised. ``weight``: optional (K,) class weights ``w_{y_i}`` (the mean is
    then ``sum_i w_{y_i} l_i / sum_i w_{y_i}``, as ``F.cross_entropy``). Pixels whose target is
    ``ignore_index`` do not count. ``reduction``: ``"mean"``, ``"sum"`` or ``"none"`` (per pixel, 0 where ignored).
    """
    if logits.ndim < 2 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"logits must be (N, K, ...) and target (N, ...) with the same spatial shape, got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if target.is_floating_point():
        raise ValueError(f"target must hold integer class labels, got {target.dtype}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    k = logits.shape[1]
    valid = _valid(target, ignore_index)
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    if safe.numel() and (safe.min() < 0 or safe.max() >= k):
        raise ValueError(
            f"target labels must lie in 0..{k - 1} (or equal ignore_index), got {safe.min()}..{safe.max()}"
        )
    log_a = torch.log_softmax(logits, dim=1)
    nll = -log_a.gather(1, safe.unsqueeze(1)).squeeze(1)  # -sum_k [y_i = k] log a_ik
    w = valid.to(logits.dtype)
    if weight is not None:
        if weight.shape != (k,):
            raise ValueError(f"weight must have shape ({k},), got {tuple(weight.shape)}")
        w = w * weight.to(logits.dtype)[safe]
    loss = nll * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------
def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height`` x ``width`` window of ``x: (N, C, H, W)`` (U-Net's "crop"); an odd surplus
    drops its extra row/column at the bottom/right."""
    h, w = x.shape[-2:]
    if height > h or width > w:
        raise ValueError(f"cannot crop a {h}x{w} map to {height}x{width}")
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top : top + height, left : left + width]


def _conv_block(c_in: int, c_out: int, padding: int, batch_norm: bool, n: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """(C, C, size, size) weights of a transposed convolution that upsamples each channel bilinearly."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt = 1 - (og - centre).abs() / factor
    kernel = filt[:, None] * filt[None, :]
    weight = torch.zeros(channels, channels, size, size, dtype=torch.float64)
    weight[range(channels), range(channels)] = kernel
    return weight.float()


class FCN(nn.Module):
    """Fully Convolutional Network (Long et al.; seed 8.8): no FC layers, a 1x1 convolution to ``K`` channels.

    Backbone: ``n_pools`` stages of two 3x3 convolutions (padding 1, ReLU) followed by 2x2
    max-pooling (``ceil_mode``, so odd sizes work), channels ``base_ch * 2**i``, then one more
    block. A 1x1 convolution turns the ``H/2^p x W/2^p`` feature map into class scores, which are
    upsampled by ``2^p``:

    - ``upsample="repeat"``: every score is repeated over a ``2^p x 2^p`` block (pixel replication),
      hence the blocky, coarse boundaries the lecture points at (seed 8.9);
    - ``upsample="learned"``: a transposed convolution (kernel ``2^(p+1)``, stride ``2^p``) initialised
      to bilinear interpolation and trained (FCN-32s).

    The output is cropped to the input's size. ``(N, in_ch, H, W) -> (N, num_classes, H, W)``.
    """

    def __init__(
        self,
        num_classes: int,
        in_ch: int = 1,
        base_ch: int = 16,
        n_pools: int = 3,
        upsample: str = "repeat",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_ch < 1 or base_ch < 1 or n_pools < 0:
            raise ValueError(
                f"bad FCN sizes: num_classes={num_classes}, in_ch={in_ch}, base_ch={base_ch}, n_pools={n_pools}"
            )
        if upsample not in ("repeat", "learned"):
            raise ValueError(f"upsample must be 'repeat' or 'learned', got {upsample!r}")
        self.num_classes, self.n_pools, self.upsample = num_classes, n_pools, upsample
        self.factor = 2**n_pools
        layers: list[nn.Module] = []
        c = in_ch
        for i in range(n_pools):
            layers += [_conv_block(c, base_ch * 2**i, 1, batch_norm), nn.MaxPool2d(2, ceil_mode=True)]
            c = base_ch * 2**i
        layers.append(_conv_block(c, base_ch * 2**n_pools, 1, batch_norm))
        self.backbone = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(base_ch * 2**n_pools, num_classes, 1)
        if upsample == "learned" and n_pools > 0:
            f = self.factor
            self.up = nn.ConvTranspose2d(num_classes, num_classes, 2 * f, stride=f, padding=f // 2, bias=False)
            with torch.no_grad():
                self.up.weight.copy_(_bilinear_kernel(num_classes, 2 * f))
        else:
            self.up = None

    def layer_specs(self) -> list[tuple[int, int, int]]:
        """``(kernel, stride, dilation)`` of the backbone and classifier, for :func:`course_lib.conv.receptive_field`."""
        return [(3, 1, 1), (3, 1, 1), (2, 2, 1)] * self.n_pools + [(3, 1, 1), (3, 1, 1), (1, 1, 1)]

    def receptive_field(self) -> int:
        """Receptive field (input pixels along one axis) of one coarse class score."""
        return receptive_field(self.layer_specs())[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"FCN expects (N, C, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        scores = self.classifier(self.backbone(x))
        if self.up is not None:
            scores = self.up(scores)
        elif self.factor > 1:
            scores = scores.repeat_interleave(self.factor, dim=2).repeat_interleave(self.factor, dim=3)
        return scores[..., :h, :w]


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015; seed 8.10): contracting path, up-convolutions, copy-and-crop skips.

    ``depth`` down steps: two 3x3 convolutions + ReLU (channels ``base_ch * 2**i``), 2x2 max-pool
    (``ceil_mode``); a bottom block of ``base_ch * 2**depth`` channels; then ``depth`` up steps: a 2x2
    up-convolution (transposed, stride 2) halving the channels, the encoder's map of that level
    concatenated (copy) and two 3x3 convolutions; a final 1x1 convolution to ``num_classes``.

    - ``padding=1`` ("same" convolutions, default): the output has the input's size for any
      ``H, W``; where a level's size is odd the up-convolution gives one row/column more than the
      encoder map, and the up-sampled map is cropped to the skip (the last row/column dropped).
    - ``padding=0`` (the paper's "valid" convolutions): the maps shrink, the skip is centre-cropped
      to the up-sampled size (copy and crop); a 572x572 input gives the paper's 388x388 output
      (:meth:`output_size`). Inputs too small raise ``ValueError``.

    ``batch_norm`` inserts ``BatchNorm2d`` after every 3x3 convolution (not in the paper).
    ``(N, in_ch, H, W) -> (N, num_classes, H', W')``.
    """

    def __init__(
        self,
        in_ch: int,
        num_classes: int,
        depth: int = 4,
        base_ch: int = 64,
        padding: int = 1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if in_ch < 1 or num_classes < 1 or depth < 0 or base_ch < 1:
            raise ValueError(
                f"bad UNet sizes: in_ch={in_ch}, num_classes={num_classes}, depth={depth}, base_ch={base_ch}"
            )
        if padding not in (0, 1):
            raise ValueError(f"padding must be 1 ('same') or 0 ('valid', as in the paper), got {padding!r}")
        self.depth, self.padding = depth, padding
        chans = [base_ch * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_ch
        for i in range(depth):
            self.down.append(_conv_block(c, chans[i], padding, batch_norm))
            c = chans[i]
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.bottom = _conv_block(c, chans[depth], padding, batch_norm)
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth)))
        self.up_blocks = nn.ModuleList(
            _conv_block(2 * chans[i], chans[i], padding, batch_norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def output_size(self, size: int) -> int:
        """Output length along one axis for an input of ``size`` pixels (the input's size when ``padding=1``)."""
        shrink = 0 if self.padding else 4
        sizes = []
        for _ in range(self.depth):
            size -= shrink
            if size < 1:
                raise ValueError("input too small for this U-Net")
            sizes.append(size)
            size = math.ceil(size / 2)
        size -= shrink
        if size < 1:
            raise ValueError("input too small for this U-Net")
        for skip in reversed(sizes):
            size = min(2 * size, skip) - shrink
            if size < 1:
                raise ValueError("input too small for this U-Net")
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"UNet expects (N, C, H, W), got {tuple(x.shape)}")
        for axis, n in zip("HW", x.shape[-2:], strict=True):
            try:
                self.output_size(n)
            except ValueError:
                raise ValueError(
                    f"input {axis}={n} is too small for a U-Net of depth {self.depth} with padding={self.padding}"
                ) from None
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, block, skip in zip(self.up, self.up_blocks, reversed(skips), strict=True):
            x = up(x)
            h, w = min(x.shape[-2], skip.shape[-2]), min(x.shape[-1], skip.shape[-1])
            if self.padding:  # odd level: the up-convolution overshoots by one; drop it
                x = x[..., :h, :w]
            x = torch.cat([center_crop(skip, h, w), x], dim=1)  # copy and crop
            x = block(x)
        return self.head(x)


class ContextNetwork(nn.Module):
    """The dilated context network of Yu & Koltun (2016; seeds 8.12-8.15): resolution kept, receptive field grown.

    Seven 3x3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1 (padding = dilation, so every map
    keeps the input's ``H x W``), each followed by ReLU ("truncation: yes"), then a 1x1 convolution
    without ReLU ("no"). Receptive fields after each layer: 3, 5, 9, 17, 33, 65, 67, 67 (seed 8.13).
    Channels (seed 8.14), with ``C = width`` (default ``num_classes``): ``"basic"`` C throughout;
    ``"large"`` 2C, 2C, 4C, 8C, 16C, 32C, 32C; the last layer outputs ``num_classes``.
    ``(N, in_ch, H, W) -> (N, num_classes, H, W)``.
    """

    dilations: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 1, 1)

    def __init__(self, in_ch: int, num_classes: int, width: int | None = None, variant: str = "basic") -> None:
        super().__init__()
        if variant not in ("basic", "large"):
            raise ValueError(f"variant must be 'basic' or 'large', got {variant!r}")
        c = num_classes if width is None else width
        if in_ch < 1 or num_classes < 1 or c < 1:
            raise ValueError(f"bad ContextNetwork sizes: in_ch={in_ch}, num_classes={num_classes}, width={width}")
        mult = (1,) * 7 if variant == "basic" else (2, 2, 4, 8, 16, 32, 32)
        self.channels = [c * m for m in mult] + [num_classes]
        layers: list[nn.Module] = []
        prev = in_ch
        for i, d in enumerate(self.dilations[:7]):
            layers += [nn.Conv2d(prev, self.channels[i], 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            prev = self.channels[i]
        layers.append(nn.Conv2d(prev, num_classes, 1))
        self.layers = nn.Sequential(*layers)

    def layer_specs(self) -> list[tuple[int, int, int]]:
        """``(kernel, stride, dilation)`` per layer, for :func:`course_lib.conv.receptive_field`."""
        return [(3, 1, d) for d in self.dilations[:7]] + [(1, 1, 1)]

    def receptive_fields(self) -> list[int]:
        """Receptive field after each of the 8 layers: [3, 5, 9, 17, 33, 65, 67, 67]."""
        return receptive_field(self.layer_specs())

    def receptive_field(self) -> int:
        return self.receptive_fields()[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"ContextNetwork expects (N, C, H, W), got {tuple(x.shape)}")
        return self.layers(x)


# --------------------------------------------------------------------------------------------
# training and evaluation (lecture 08 §4, benchmarks/segmentation_detection.py)
# --------------------------------------------------------------------------------------------
def train_segmentation(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, steps: int, batch: int, *,
                       lr: float = 2e-3, device: torch.device | str | None = None, seed: int = 0,
                       progress: bool = True, desc: str = "training") -> np.ndarray:
    """Adam with a one-cycle schedule (15 % warm-up) on :func:`pixel_cross_entropy` for ``steps``
    mini-batches of ``batch`` images drawn with replacement; ``images (N, C, H, W)`` float,
    ``masks (N, H, W)`` class labels. Returns the loss of every step, a numpy array ``(steps,)``."""
    from course_lib.training import train_steps

    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps} and {batch}")
    if images.ndim != 4 or masks.shape != (images.shape[0], *images.shape[2:]) or len(images) == 0:
        raise ValueError(f"images must be (N, C, H, W) and masks (N, H, W) with the same N, H, W (N >= 1), got "
                         f"{tuple(images.shape)} and {tuple(masks.shape)}")
    device = torch.device(device) if device is not None else images.device
    model.to(device)

    def batch_loss(gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        return pixel_cross_entropy(model(images[idx].to(device)), masks[idx].to(device))

    return train_steps(model, batch_loss, steps, lr=lr, warmup=0.15, seed=seed, progress=progress, desc=desc).numpy()


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, num_classes: int, *,
                          device: torch.device | str | None = None, batch: int = 64,
                          boundary_width: int = 2) -> dict:
    """Predictions on ``images`` and their quality against ``masks``: ``{"pred" (N, H, W), "miou",
    "acc" (pixel accuracy), "boundary" (:func:`boundary_iou`, band of ``boundary_width``),
    "per_class" (Jaccard per class, a tensor), "ips" (images per second of inference)}``."""
    import time

    device = torch.device(device) if device is not None else images.device
    model.to(device).eval()
    start = time.perf_counter()
    pred = torch.cat([model(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])
    seconds = time.perf_counter() - start
    return {
        "pred": pred,
        "miou": mean_iou(pred, masks, num_classes).item(),
        "acc": pixel_accuracy(pred, masks).item(),
        "boundary": boundary_iou(pred, masks, num_classes, width=boundary_width).item(),
        "per_class": jaccard_per_class(pred, masks, num_classes),
        "ips": len(images) / seconds,
    }
