"""Object detection: boxes, IoU, NMS, anchors, RoI pooling, the RPN and Fast R-CNN heads, YOLO, AP and mAP (lecture 09).

Conventions:

- a box is ``(x1, y1, x2, y2)`` in a float tensor, ``boxes: (N, 4)``, pixels (or image fractions
  for YOLO); width ``x2 - x1``, area ``max(0, x2 - x1) * max(0, y2 - y1)`` (a box with ``x2 < x1``
  counts as empty);
- ``IoU(a, b) = |a & b| / |a | b|`` (:func:`box_iou`), 0 when the union is empty; a detection is
  correct when its IoU with a ground-truth box exceeds a threshold ``t`` (seed 9.3);
- NMS walks the boxes by decreasing score and removes every later box whose IoU with a kept box
  is ``> iou_threshold`` (seed 9.2); equal scores are taken in index order (lower index first);
- classes of the two-stage heads: 0 is background, object class ``c`` is ``c + 1``;
- training the two-stage detector: :func:`sample_labels` (balanced batches), :func:`rpn_loss`,
  :func:`assign_proposals` and :func:`fast_rcnn_loss` (smooth L1, :func:`smooth_l1`), and
  :func:`fast_rcnn_detections` for inference;
- region proposals come as ``rois: (R, 5)`` rows ``(batch_index, x1, y1, x2, y2)`` or as a list of
  per-image ``(K_i, 4)`` tensors.

The Faster R-CNN box parametrisation (:func:`encode_boxes`, :func:`decode_boxes`): with the anchor's
centre ``(x_a, y_a)`` and size ``(w_a, h_a)``, ``t_x = (x - x_a) / w_a``, ``t_y = (y - y_a) / h_a``,
``t_w = log(w / w_a)``, ``t_h = log(h / h_a)``.

Average precision (:func:`average_precision`) comes in the two usual flavours: ``"voc"`` (PASCAL
VOC 2010+, all-point interpolation: the area under the precision-recall curve after making
precision non-increasing) and ``"coco"`` (101 recall thresholds 0, 0.01, ..., 1). mAP is the mean
of AP over *classes* (seed 9.4 says "over all objects"); :func:`mean_average_precision` with
``style="coco"`` and ``iou_threshold=COCO_IOU_THRESHOLDS`` is COCO's AP@[.5:.95], the same number
as ``pycocotools``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "DetectionData",
    "FastRCNNHead",
    "RPNHead",
    "TwoStageDetector",
    "YOLODetector",
    "YOLOHead",
    "assign_proposals",
    "average_precision",
    "average_precision_per_class",
    "batched_nms",
    "box_area",
    "box_iou",
    "clip_boxes",
    "decode_boxes",
    "encode_boxes",
    "evaluate_detector",
    "fast_rcnn_detections",
    "fast_rcnn_loss",
    "generate_proposals",
    "make_anchors",
    "match_anchors",
    "mean_average_precision",
    "nms",
    "roi_align",
    "roi_pool",
    "rpn_loss",
    "sample_labels",
    "scene_tensors",
    "small_backbone",
    "smooth_l1",
    "train_detector",
    "yolo_decode",
    "yolo_loss",
    "yolo_targets",
]

# exactly the arrays pycocotools builds (np.linspace), so thresholds compare bit for bit
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
_DEFAULT_BOX_CLIP = math.log(1000.0 / 16)


# --------------------------------------------------------------------------------------------
# boxes and IoU
# --------------------------------------------------------------------------------------------
def _check_boxes(boxes: torch.Tensor, name: str = "boxes") -> None:
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a (N, 4) tensor of (x1, y1, x2, y2), got {shape}")
    if not boxes.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {boxes.dtype}")


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """``max(0, x2 - x1) * max(0, y2 - y1)`` per box: (N, 4) -> (N,)."""
    _check_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (Jaccard index of the two rectangles; seed 9.3): ``(N, 4), (M, 4) -> (N, M)``.

    ``inter = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1))``,
    ``IoU = inter / (area_a + area_b - inter)``, and 0 where that union is 0 (two empty boxes).
    """
    _check_boxes(a, "a")
    _check_boxes(b, "b")
    area_a, area_b = box_area(a), box_area(b)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(
        union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union)
    )


def clip_boxes(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Boxes clipped to an image of ``(height, width)``: x to [0, width], y to [0, height]."""
    _check_boxes(boxes)
    h, w = image_size
    x = boxes[:, 0::2].clamp(0, w)
    y = boxes[:, 1::2].clamp(0, h)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


# --------------------------------------------------------------------------------------------
# non-maximum suppression
# --------------------------------------------------------------------------------------------
def _nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor | None, iou_threshold: float) -> torch.Tensor:
    _check_boxes(boxes)
    n = boxes.shape[0]
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) to match boxes, got {tuple(scores.shape)}")
    if labels is not None and labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match boxes, got {tuple(labels.shape)}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    order = torch.sort(scores, descending=True, stable=True).indices  # ties: lower index first
    # numpy on the host: each round is ~10 small array ops, and numpy's per-op cost is a few times
    # lower than torch's; the arithmetic is box_iou's, op for op, so the IoUs are the same floats
    b = boxes.detach()[order].cpu().numpy()
    lab = labels.detach()[order].cpu().numpy() if labels is not None else None
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    zero = np.zeros((), dtype=b.dtype)
    cand = np.arange(n)
    kept = []
    while cand.size:  # one round per kept box: keep the best candidate, drop what it suppresses
        i, rest = cand[0], cand[1:]
        kept.append(i)
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), zero)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), zero)
        inter = w * h
        union = area[i] + area[rest] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1), zero)
        survive = iou <= iou_threshold
        if lab is not None:
            survive |= lab[rest] != lab[i]
        cand = rest[survive]
    return order[torch.as_tensor(np.asarray(kept, dtype=np.int64), device=order.device)]


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (seed 9.2): indices of the kept boxes, by decreasing score.

    Walk the boxes by decreasing score; keep a box unless its IoU with an already kept box is
    ``> iou_threshold`` (IoU exactly at the threshold survives). Tie rule: equal scores are
    visited in increasing index order (a stable sort), so of two identical boxes with the same
    score the lower index is kept. ``boxes: (N, 4)``, ``scores: (N,)`` -> int64 ``(K,)``.

    Vectorised over the candidates: one round per *kept* box computes its IoU with every remaining
    candidate in a few array operations and drops those above the threshold, so the candidate
    set shrinks as the walk goes (K rounds for K kept boxes, not N; the IoUs are
    :func:`box_iou`'s floats).
    """
    return _nms(boxes, scores, None, iou_threshold)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each class: a box only suppresses boxes of its own label. Same order and tie rule as :func:`nms`."""
    return _nms(boxes, scores, labels, iou_threshold)


# --------------------------------------------------------------------------------------------
# anchors and the box parametrisation
# --------------------------------------------------------------------------------------------
def make_anchors(
    feature_size: int | tuple[int, int],
    stride: int | float,
    sizes: Sequence[float] = (32.0, 64.0, 128.0),
    ratios: Sequence[float] = (0.5, 1.0, 2.0),
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Faster R-CNN anchors (seed 9.8): ``len(sizes) * len(ratios)`` boxes at every feature-map position.

    Position ``(i, j)`` of an ``H x W`` map is centred at ``((j + 0.5) stride, (i + 0.5) stride)``;
    an anchor of size ``s`` and ratio ``r = h / w`` has ``w = s / sqrt(r)``, ``h = s sqrt(r)`` (area
    ``s^2``). Returns ``(H * W * A, 4)``, ordered by row, column, size, ratio: anchor ``a = i_size *
    len(ratios) + i_ratio`` of position ``(i, j)`` is row ``(i W + j) A + a`` (the order in which
    :class:`RPNHead` flattens its outputs). The default 3 sizes x 3 ratios give the paper's 9 anchors.
    """
    h, w = (feature_size, feature_size) if isinstance(feature_size, int) else tuple(feature_size)
    if h < 1 or w < 1 or stride <= 0 or not sizes or not ratios:
        raise ValueError(
            f"bad anchor grid: feature_size={feature_size}, stride={stride}, sizes={sizes}, ratios={ratios}"
        )
    s = torch.as_tensor(sizes, dtype=torch.float64)
    r = torch.as_tensor(ratios, dtype=torch.float64)
    if (s <= 0).any() or (r <= 0).any():
        raise ValueError(f"sizes and ratios must be positive, got {sizes} and {ratios}")
    ws = (s[:, None] / r.sqrt()[None, :]).flatten()  # (A,)
    hs = (s[:, None] * r.sqrt()[None, :]).flatten()
    base = torch.stack([-ws / 2, -hs / 2, ws / 2, hs / 2], dim=1)  # (A, 4) around the origin
    cy = (torch.arange(h, dtype=torch.float64) + 0.5) * stride
    cx = (torch.arange(w, dtype=torch.float64) + 0.5) * stride
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    centres = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)  # (HW, 1, 4)
    return (centres + base[None]).reshape(-1, 4).to(device=device, dtype=dtype)


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(
    gt: torch.Tensor, anchors: torch.Tensor, weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
) -> torch.Tensor:
    """Regression targets of Faster R-CNN: ``(N, 4)`` boxes relative to ``(N, 4)`` anchors -> ``(N, 4)`` deltas.

    ``t = (w_x (x - x_a) / w_a, w_y (y - y_a) / h_a, w_w log(w / w_a), w_h log(h / h_a))`` with centres
    ``(x, y)`` and sizes ``(w, h)``; ``weights`` (1, 1, 1, 1) in the paper, (10, 10, 5, 5) in Fast R-CNN code.
    Both boxes must have positive width and height.
    """
    _check_boxes(gt, "gt")
    _check_boxes(anchors, "anchors")
    if gt.shape != anchors.shape:
        raise ValueError(f"gt and anchors must have the same shape, got {tuple(gt.shape)} and {tuple(anchors.shape)}")
    x, y, w, h = _centre_size(gt)
    xa, ya, wa, ha = _centre_size(anchors)
    if (w <= 0).any() or (h <= 0).any() or (wa <= 0).any() or (ha <= 0).any():
        raise ValueError("encode_boxes needs boxes and anchors of positive width and height (log of the size ratio)")
    wx, wy, ww, wh = weights
    return torch.stack([wx * (x - xa) / wa, wy * (y - ya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)], dim=1)


def decode_boxes(
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    clip: float = _DEFAULT_BOX_CLIP,
) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`: ``x = x_a + w_a t_x / w_x``, ``w = w_a exp(t_w / w_w)``, ...

    ``deltas``, ``anchors``: ``(N, 4)`` -> boxes ``(N, 4)``. ``t_w / w_w`` and ``t_h / w_h`` are clamped
    to ``<= clip`` (default ``log(1000/16)``) so an untrained head cannot overflow ``exp``; within that
    range ``decode_boxes(encode_boxes(b, a), a) == b`` up to rounding.
    """
    _check_boxes(deltas, "deltas")
    _check_boxes(anchors, "anchors")
    if deltas.shape != anchors.shape:
        raise ValueError(
            f"deltas and anchors must have the same shape, got {tuple(deltas.shape)} and {tuple(anchors.shape)}"
        )
    xa, ya, wa, ha = _centre_size(anchors)
    wx, wy, ww, wh = weights
    x = xa + wa * deltas[:, 0] / wx
    y = ya + ha * deltas[:, 1] / wy
    w = wa * torch.exp((deltas[:, 2] / ww).clamp(max=clip))
    h = ha * torch.exp((deltas[:, 3] / wh).clamp(max=clip))
    return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], dim=1)


def match_anchors(
    anchors: torch.Tensor, gt: torch.Tensor, fg_iou: float = 0.7, bg_iou: float = 0.3, allow_low_quality: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Faster R-CNN's anchor labels: ``(A, 4)`` anchors, ``(G, 4)`` ground truth -> ``(labels (A,), matched (A,))``.

    ``matched[a]`` = the ground truth of highest IoU with anchor ``a`` (first on ties; -1 when
    ``G = 0``). ``labels``: 1 (object) when that IoU is ``>= fg_iou``; 0 (background) when it is
    ``< bg_iou``; -1 (ignored by the loss) in between. With ``allow_low_quality`` an anchor that
    has the highest IoU of all anchors with some ground truth (all tied anchors, and only when that
    IoU is > 0) is also labelled 1, so that every object gets an anchor. No ground truth: all 0.
    """
    _check_boxes(anchors, "anchors")
    _check_boxes(gt, "gt")
    if not 0.0 <= bg_iou <= fg_iou <= 1.0:
        raise ValueError(f"need 0 <= bg_iou <= fg_iou <= 1, got bg_iou={bg_iou}, fg_iou={fg_iou}")
    a = anchors.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(a, dtype=torch.long, device=anchors.device), torch.full(
            (a,), -1, dtype=torch.long, device=anchors.device
        )
    iou = box_iou(gt, anchors)  # (G, A)
    matched = iou.argmax(0)
    best = iou.gather(0, matched[None]).squeeze(0)
    labels = torch.full((a,), -1, dtype=torch.long, device=anchors.device)
    labels[best < bg_iou] = 0
    labels[best >= fg_iou] = 1
    if allow_low_quality:
        gt_best = iou.max(1).values[:, None]
        labels[((iou == gt_best) & (gt_best > 0)).any(0)] = 1
    return labels, matched


# --------------------------------------------------------------------------------------------
# RoI pooling
# --------------------------------------------------------------------------------------------
def _rois(rois: torch.Tensor | Sequence[torch.Tensor], n_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(rois, torch.Tensor):
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(
                f"rois must be (R, 5) rows of (batch_index, x1, y1, x2, y2) or a list of (K_i, 4), got {tuple(rois.shape)}"
            )
        bidx, boxes = rois[:, 0].long(), rois[:, 1:]
    else:
        if len(rois) != n_images:
            raise ValueError(
                f"a list of rois needs one (K_i, 4) tensor per image: {n_images} images, {len(rois)} tensors"
            )
        for r in rois:
            _check_boxes(r, "rois[i]")
        boxes = torch.cat(list(rois)) if rois else torch.empty(0, 4)
        bidx = (
            torch.cat([torch.full((len(r),), i, dtype=torch.long) for i, r in enumerate(rois)])
            if rois
            else torch.empty(0, dtype=torch.long)
        )
    if bidx.numel() and (bidx.min() < 0 or bidx.max() >= n_images):
        raise ValueError(f"roi batch indices must lie in 0..{n_images - 1}")
    return bidx.to(boxes.device), boxes


def _output_size(output_size: int | tuple[int, int]) -> tuple[int, int]:
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size must be positive, got {output_size}")
    return int(oh), int(ow)


def _check_features(features: torch.Tensor) -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W), got {getattr(features, 'shape', type(features).__name__)}")


def roi_pool(
    features: torch.Tensor,
    rois: torch.Tensor | Sequence[torch.Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> torch.Tensor:
    """Fast R-CNN's RoI max-pooling (seed 9.7): crop each proposal from the feature map into a fixed grid.

    ``features: (N, C, H, W)``; ``rois`` in image coordinates, scaled by ``spatial_scale`` (1 / the
    backbone's stride) and rounded to whole cells (half away from zero); the ``(h + 1) x (w + 1)``
    cells of a RoI are split into ``oh x ow`` bins ``[floor(p h / oh), ceil((p + 1) h / oh))`` (clipped
    to the map) and each output is the maximum over its bin, 0 for an empty bin — the semantics of
    the original Caffe layer (and of torchvision). Returns ``(R, C, oh, ow)``.
    """
    _check_features(features)
    n, c, h, w = features.shape
    bidx, boxes = _rois(rois, n)
    oh, ow = _output_size(output_size)
    dev = features.device
    rounded = boxes.to(torch.float64) * spatial_scale
    rounded = torch.sign(rounded) * torch.floor(rounded.abs() + 0.5)
    x1, y1, x2, y2 = rounded.unbind(1)
    roi_w = (x2 - x1 + 1).clamp_min(1)
    roi_h = (y2 - y1 + 1).clamp_min(1)

    def bins(start: torch.Tensor, length: torch.Tensor, n_bins: int, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.arange(n_bins, dtype=torch.float64, device=dev)
        size = length[:, None] / n_bins
        lo = (torch.floor(p * size) + start[:, None]).clamp(0, limit)
        hi = (torch.ceil((p + 1) * size) + start[:, None]).clamp(0, limit)
        return lo, hi

    hs, he = bins(y1, roi_h, oh, h)
    ws, we = bins(x1, roi_w, ow, w)
    rows = torch.arange(h, device=dev, dtype=torch.float64)
    cols = torch.arange(w, device=dev, dtype=torch.float64)
    in_h = (rows >= hs[..., None]) & (rows < he[..., None])  # (R, oh, H)
    in_w = (cols >= ws[..., None]) & (cols < we[..., None])  # (R, ow, W)
    f = features[bidx]  # (R, C, H, W)
    neg = torch.tensor(-math.inf, dtype=features.dtype, device=dev)
    t = torch.where(in_w[:, None, None], f[:, :, :, None, :], neg).amax(-1)  # (R, C, H, ow)
    t = torch.where(in_h[:, None, :, :, None], t[:, :, None], neg).amax(3)  # (R, C, oh, ow)
    empty = (he <= hs)[:, :, None] | (we <= ws)[:, None, :]
    return torch.where(empty[:, None], torch.zeros((), dtype=features.dtype, device=dev), t)


def _bilinear_weights(v: torch.Tensor, limit: int, sr: int) -> torch.Tensor:
    """Bilinear interpolation along one axis as a matrix: ``v (R, B * sr)`` sample coordinates ->
    ``(R, B, limit)`` weights averaged over each bin's ``sr`` samples, torchvision's edge rules
    (a sample more than one pixel outside the map weighs 0; one beyond the last row/column takes
    that row's value)."""
    valid = ((v >= -1.0) & (v <= limit)).to(v.dtype)
    v = v.clamp_min(0)
    low = torch.floor(v).long()
    at_edge = low >= limit - 1
    low = torch.where(at_edge, torch.full_like(low, limit - 1), low)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(v), v - low.to(v.dtype))
    w = v.new_zeros(*v.shape, limit)
    w.scatter_add_(2, low[..., None], ((1 - frac) * valid)[..., None])
    w.scatter_add_(2, high[..., None], (frac * valid)[..., None])
    return w.reshape(v.shape[0], -1, sr, limit).mean(2)


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor | Sequence[torch.Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
) -> torch.Tensor:
    """RoIAlign (Mask R-CNN): like :func:`roi_pool` but without rounding; each bin averages bilinear samples.

    The RoI (scaled by ``spatial_scale``, shifted by -0.5 pixel when ``aligned``, so that a pixel's
    centre sits at integer + 0.5) is split into ``oh x ow`` equal bins; each bin averages a
    ``sampling_ratio x sampling_ratio`` grid of points at ``start + (i + 0.5) bin / sampling_ratio``,
    each bilinearly interpolated (points more than one pixel outside the map count as 0, points
    beyond the last row/column take its value). With ``aligned=False`` the RoI is at least 1 x 1.
    The same numbers as torchvision's ``roi_align`` with a fixed ``sampling_ratio`` (the adaptive
    ``sampling_ratio <= 0`` is not supported). Differentiable in ``features``. Returns ``(R, C, oh, ow)``.
    """
    _check_features(features)
    n, c, _, _ = features.shape
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 1:
        raise ValueError(
            f"sampling_ratio must be an int >= 1 (the adaptive mode is not supported), got {sampling_ratio!r}"
        )
    bidx, boxes = _rois(rois, n)
    oh, ow = _output_size(output_size)
    sr = sampling_ratio
    offset = 0.5 if aligned else 0.0
    b = boxes.to(features.dtype) * spatial_scale - offset
    x1, y1, x2, y2 = b.unbind(1)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp_min(1), roi_h.clamp_min(1)
    frac_y = (torch.arange(oh * sr, dtype=features.dtype, device=features.device) + 0.5) / sr  # in bins
    frac_x = (torch.arange(ow * sr, dtype=features.dtype, device=features.device) + 0.5) / sr
    y = y1[:, None] + frac_y[None] * (roi_h / oh)[:, None]
    x = x1[:, None] + frac_x[None] * (roi_w / ow)[:, None]
    # A bilinear sample's weight on pixel (v, u) is a product wy(v) * wx(u), its validity too, and a
    # bin's mean over an sr x sr grid of samples is (mean of wy) x (mean of wx): each RoI's output is
    # Wy (oh, H) @ F (H, W) @ Wx^T (W, ow) per channel. Two matrix products per image (all its RoIs
    # at once) replace R * C * oh * ow * sr^2 * 4 gathers and their scatter-add in the backward pass.
    h, w = features.shape[-2:]
    if bidx.numel() == 0:
        return features.new_zeros(0, c, oh, ow)
    wy = _bilinear_weights(y, h, sr)  # (R, oh, H)
    wx = _bilinear_weights(x, w, sr)  # (R, ow, W)
    order = torch.argsort(bidx, stable=True)
    counts = torch.bincount(bidx, minlength=n).tolist()
    parts, start = [], 0
    for image, count in enumerate(counts):
        if count == 0:
            continue
        idx = order[start : start + count]
        start += count
        f_img = features[image].transpose(0, 1).reshape(h, c * w)  # (H, C * W)
        t = (wy[idx].reshape(count * oh, h) @ f_img).reshape(count, oh, c, w)  # rows: (RoI, output row)
        t = t.transpose(1, 2).reshape(count, c * oh, w)
        parts.append(torch.bmm(t, wx[idx].transpose(1, 2)).reshape(count, c, oh, ow))
    out = torch.cat(parts)  # in the order of ``order``
    return out[torch.argsort(order)]


# --------------------------------------------------------------------------------------------
# two-stage heads
# --------------------------------------------------------------------------------------------
class RPNHead(nn.Module):
    """Region Proposal Network head (Faster R-CNN; seed 9.8): objectness and box corrections per anchor.

    A 3x3 convolution (``mid_channels``, default ``in_channels``; 256 for ZF, 512 for VGG in the
    paper) with ReLU slides over the feature map, then two sibling 1x1 convolutions give, at each
    position, ``A`` objectness logits and ``4 A`` deltas (:func:`encode_boxes` parametrisation).
    ``features (N, C, H, W) -> objectness (N, H W A), deltas (N, H W A, 4)`` in the order of
    :func:`make_anchors`. Weights start as N(0, 0.01^2), biases 0, as in the paper.
    """

    def __init__(self, in_channels: int, num_anchors: int = 9, mid_channels: int | None = None) -> None:
        super().__init__()
        mid = in_channels if mid_channels is None else mid_channels
        self.num_anchors = num_anchors
        self.conv = nn.Conv2d(in_channels, mid, 3, padding=1)
        self.objectness = nn.Conv2d(mid, num_anchors, 1)
        self.deltas = nn.Conv2d(mid, 4 * num_anchors, 1)
        for m in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_features(features)
        n, _, h, w = features.shape
        t = torch.relu(self.conv(features))
        obj = self.objectness(t).permute(0, 2, 3, 1).reshape(n, h * w * self.num_anchors)
        deltas = self.deltas(t).reshape(n, self.num_anchors, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
        return obj, deltas


def generate_proposals(
    objectness: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    pre_nms_top_n: int = 1000,
    post_nms_top_n: int = 100,
    nms_threshold: float = 0.7,
    min_size: float = 1e-3,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """RPN outputs -> proposals per image: decode, clip, drop tiny boxes, top-N, NMS, top-N (seed 9.8).

    ``objectness (N, A_total)``, ``deltas (N, A_total, 4)``, ``anchors (A_total, 4)``; returns, per image,
    ``(boxes (P, 4), objectness logits (P,))`` by decreasing score, detached.
    """
    if objectness.ndim != 2 or deltas.shape != (*objectness.shape, 4) or anchors.shape != (objectness.shape[1], 4):
        raise ValueError(
            f"need objectness (N, A), deltas (N, A, 4), anchors (A, 4); got {tuple(objectness.shape)}, "
            f"{tuple(deltas.shape)}, {tuple(anchors.shape)}"
        )
    out = []
    for obj, d in zip(objectness.detach(), deltas.detach(), strict=True):
        top = obj.topk(min(pre_nms_top_n, obj.numel())).indices
        boxes = clip_boxes(decode_boxes(d[top], anchors[top]), image_size)
        scores = obj[top]
        big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
        boxes, scores = boxes[big], scores[big]
        keep = nms(boxes, scores, nms_threshold)[:post_nms_top_n]
        out.append((boxes[keep], scores[keep]))
    return out


class FastRCNNHead(nn.Module):
    """Fast R-CNN's RoI head (seed 9.7): pooled RoI features -> class scores and per-class box corrections.

    Two fully connected layers (``hidden`` units, ReLU) on the flattened ``(C, s, s)`` RoI features,
    then siblings: ``num_classes + 1`` logits (0 = background) and ``(num_classes + 1) x 4`` deltas
    (:func:`encode_boxes` relative to the proposal). ``(R, C, s, s) -> ((R, K + 1), (R, K + 1, 4))``.
    (Fast R-CNN takes external Selective Search proposals; the RPN that makes them is Faster R-CNN's.)
    """

    def __init__(self, in_channels: int, num_classes: int, output_size: int = 7, hidden: int = 256) -> None:
        super().__init__()
        self.in_channels, self.output_size, self.num_classes = in_channels, output_size, num_classes
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * output_size**2, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.cls = nn.Linear(hidden, num_classes + 1)
        self.bbox = nn.Linear(hidden, 4 * (num_classes + 1))
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.bbox.weight, std=0.001)
        nn.init.zeros_(self.cls.bias)
        nn.init.zeros_(self.bbox.bias)

    def forward(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        expected = (self.in_channels, self.output_size, self.output_size)
        if roi_features.ndim != 4 or tuple(roi_features.shape[1:]) != expected:
            raise ValueError(
                f"FastRCNNHead expects (R, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(roi_features.shape)}"
            )
        t = self.fc(roi_features)
        return self.cls(t), self.bbox(t).reshape(-1, self.num_classes + 1, 4)


# --------------------------------------------------------------------------------------------
# two-stage training: samplers, targets, losses, post-processing
# --------------------------------------------------------------------------------------------
def smooth_l1(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Element-wise smooth L1 (Huber) of Fast R-CNN: ``0.5 x^2 / beta`` where ``|x| < beta``, else ``|x| - 0.5 beta``.

    ``beta = 1`` in Fast R-CNN; Faster R-CNN's RPN uses ``sigma = 3``, i.e. ``beta = 1 / sigma^2 = 1/9``.
    ``beta = 0`` is the plain L1. Same shape as ``x``.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    a = x.abs()
    if beta == 0:
        return a
    return torch.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)


def sample_labels(
    labels: torch.Tensor,
    batch_size: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced mini-batch of one image's anchors or proposals: ``labels (A,)`` -> ``(positive (A,), negative (A,))`` bools.

    ``labels``: ``> 0`` object (any class), ``0`` background, ``-1`` ignored. At most
    ``round(batch_size * positive_fraction)`` positives are drawn uniformly without replacement
    (all of them if fewer), then negatives fill the batch up to ``batch_size`` (all if fewer).
    Faster R-CNN's RPN: 256 anchors, fraction 0.5; Fast R-CNN's head: 128 RoIs, fraction 0.25.
    ``generator`` (a CPU ``torch.Generator``) makes the draw reproducible.
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-d, got {tuple(labels.shape)}")
    if batch_size < 0 or not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"need batch_size >= 0 and 0 <= positive_fraction <= 1, got {batch_size}, {positive_fraction}")
    pos_idx = (labels > 0).nonzero().squeeze(1)
    neg_idx = (labels == 0).nonzero().squeeze(1)
    n_pos = min(pos_idx.numel(), int(round(batch_size * positive_fraction)))
    n_neg = min(neg_idx.numel(), batch_size - n_pos)

    def draw(idx: torch.Tensor, k: int) -> torch.Tensor:
        perm = torch.randperm(idx.numel(), generator=generator).to(idx.device)
        return idx[perm[:k]]

    pos = torch.zeros_like(labels, dtype=torch.bool)
    neg = torch.zeros_like(labels, dtype=torch.bool)
    pos[draw(pos_idx, n_pos)] = True
    neg[draw(neg_idx, n_neg)] = True
    return pos, neg


def rpn_loss(
    objectness: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    gt_boxes: Sequence[torch.Tensor],
    *,
    fg_iou: float = 0.7,
    bg_iou: float = 0.3,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
    beta: float = 1.0 / 9,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RPN's two losses (Faster R-CNN, seed 9.8): ``(objectness loss, box loss)``, 0-d tensors.

    Per image, :func:`match_anchors` labels the anchors (object ``IoU >= fg_iou``, background
    ``< bg_iou``, plus each ground truth's best anchor), :func:`sample_labels` draws a balanced batch
    of ``batch_size_per_image`` of them, and over the ``S`` sampled anchors of all images

    - objectness: ``(1/S) sum_sampled BCE(sigmoid(o_a), p*_a)`` with ``p* = 1`` for objects, 0 for background;
    - boxes: ``(1/S) sum_positive sum_coords smooth_l1(t_a - t*_a, beta)``, ``t* = encode_boxes(matched gt, anchor)``

    (the normalisation of the torchvision implementation; the paper's ``lambda = 10``, ``N_reg ~ 2400``
    weighting is about the same). ``objectness (N, A)``, ``deltas (N, A, 4)`` from :class:`RPNHead`,
    ``anchors (A, 4)`` from :func:`make_anchors`, ``gt_boxes``: N tensors ``(G_i, 4)``.
    """
    if objectness.ndim != 2 or deltas.shape != (*objectness.shape, 4) or anchors.shape != (objectness.shape[1], 4):
        raise ValueError(
            f"need objectness (N, A), deltas (N, A, 4), anchors (A, 4); got {tuple(objectness.shape)}, "
            f"{tuple(deltas.shape)}, {tuple(anchors.shape)}"
        )
    if len(gt_boxes) != objectness.shape[0]:
        raise ValueError(f"{objectness.shape[0]} images but {len(gt_boxes)} ground-truth tensors")
    obj_terms, box_terms, n_sampled = [], [], 0
    for obj, d, gt in zip(objectness, deltas, gt_boxes, strict=True):
        gt = gt.to(anchors)
        labels, matched = match_anchors(anchors, gt, fg_iou, bg_iou)
        pos, neg = sample_labels(labels, batch_size_per_image, positive_fraction, generator)
        sampled = pos | neg
        n_sampled += int(sampled.sum())
        obj_terms.append(
            torch.nn.functional.binary_cross_entropy_with_logits(obj[sampled], pos[sampled].to(obj.dtype), reduction="sum")
        )
        if pos.any():
            target = encode_boxes(gt[matched[pos]], anchors[pos])
            box_terms.append(smooth_l1(d[pos] - target, beta).sum())
    denom = max(n_sampled, 1)
    zero = objectness.sum() * 0 + deltas.sum() * 0  # keeps the graph when nothing was sampled
    return zero + sum(obj_terms) / denom, zero + sum(box_terms) / denom


def assign_proposals(
    proposals: Sequence[torch.Tensor],
    gt_boxes: Sequence[torch.Tensor],
    gt_labels: Sequence[torch.Tensor],
    *,
    fg_iou: float = 0.5,
    bg_iou: tuple[float, float] = (0.0, 0.5),
    batch_size_per_image: int = 128,
    positive_fraction: float = 0.25,
    add_gt: bool = True,
    weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training RoIs of Fast R-CNN's head: ``(rois (R, 5), labels (R,), regression targets (R, 4))``.

    Per image the ground-truth boxes are appended to the proposals (``add_gt``), each proposal gets
    the ground truth of highest IoU: label ``c + 1`` (its class, 0 being background) when
    ``IoU >= fg_iou``, background 0 when ``bg_iou[0] <= IoU < bg_iou[1]``, ignored otherwise; then a
    balanced sample (:func:`sample_labels`, 128 RoIs with 25 % objects in the paper). Targets are
    :func:`encode_boxes` of the matched box relative to the RoI with ``weights`` (zeros for
    background). ``rois`` rows are ``(image index, x1, y1, x2, y2)``, the input of :func:`roi_pool`.
    """
    if not len(proposals) == len(gt_boxes) == len(gt_labels):
        raise ValueError(f"{len(proposals)} proposal, {len(gt_boxes)} box and {len(gt_labels)} label tensors")
    lo, hi = bg_iou
    if not 0.0 <= lo <= hi <= fg_iou <= 1.0:
        raise ValueError(f"need 0 <= bg_iou[0] <= bg_iou[1] <= fg_iou <= 1, got bg_iou={bg_iou}, fg_iou={fg_iou}")
    rois, labels_out, targets = [], [], []
    for i, (props, gt, gl) in enumerate(zip(proposals, gt_boxes, gt_labels, strict=True)):
        _check_boxes(props, "proposals[i]")
        gt = gt.to(props)
        if gl.shape != (gt.shape[0],):
            raise ValueError(f"image {i}: gt_labels must have shape ({gt.shape[0]},), got {tuple(gl.shape)}")
        boxes = torch.cat([props, gt]) if add_gt else props
        if gt.shape[0]:
            iou = box_iou(boxes, gt)
            best, matched = iou.max(1)
            labels = torch.full((boxes.shape[0],), -1, dtype=torch.long, device=boxes.device)
            labels[(best >= lo) & (best < hi)] = 0
            fg = best >= fg_iou
            labels[fg] = gl.to(labels.device)[matched[fg]].long() + 1
        else:
            matched = torch.zeros(boxes.shape[0], dtype=torch.long, device=boxes.device)
            labels = torch.zeros(boxes.shape[0], dtype=torch.long, device=boxes.device)
        pos, neg = sample_labels(labels, batch_size_per_image, positive_fraction, generator)
        keep = (pos | neg).nonzero().squeeze(1)
        b, lab = boxes[keep], torch.where(pos[keep], labels[keep], torch.zeros_like(labels[keep]))
        t = torch.zeros_like(b)
        fg_k = lab > 0
        if fg_k.any():
            t[fg_k] = encode_boxes(gt[matched[keep][fg_k]], b[fg_k], weights)
        rois.append(torch.cat([torch.full((b.shape[0], 1), float(i), dtype=b.dtype, device=b.device), b], 1))
        labels_out.append(lab)
        targets.append(t)
    return torch.cat(rois), torch.cat(labels_out), torch.cat(targets)


def fast_rcnn_loss(
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    labels: torch.Tensor,
    regression_targets: torch.Tensor,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast R-CNN's multi-task loss (seed 9.7): ``(classification loss, box loss)``, 0-d tensors.

    ``L_cls = (1/R) sum_r -log softmax(s_r)[u_r]`` over the ``R`` RoIs of true class ``u_r`` (0 = background);
    ``L_box = (1/R) sum_{r: u_r > 0} sum_coords smooth_l1(t_r^{u_r} - v_r, beta)``: only the deltas of the
    RoI's own class are trained, and background RoIs have none. ``class_logits (R, K + 1)``,
    ``box_deltas (R, K + 1, 4)`` from :class:`FastRCNNHead`, ``labels (R,)``, ``regression_targets (R, 4)``
    from :func:`assign_proposals`.
    """
    r = class_logits.shape[0]
    if class_logits.ndim != 2 or box_deltas.shape != (*class_logits.shape, 4):
        raise ValueError(
            f"need class_logits (R, K+1) and box_deltas (R, K+1, 4), got {tuple(class_logits.shape)}, {tuple(box_deltas.shape)}"
        )
    if labels.shape != (r,) or regression_targets.shape != (r, 4):
        raise ValueError(
            f"labels must be ({r},) and regression_targets ({r}, 4), got {tuple(labels.shape)}, {tuple(regression_targets.shape)}"
        )
    if r == 0:
        zero = class_logits.sum() * 0 + box_deltas.sum() * 0
        return zero, zero
    labels = labels.long()
    cls_loss = torch.nn.functional.cross_entropy(class_logits, labels)
    fg = (labels > 0).nonzero().squeeze(1)
    own = box_deltas[fg, labels[fg]]  # (F, 4)
    box_loss = smooth_l1(own - regression_targets[fg].to(own), beta).sum() / r + box_deltas.sum() * 0
    return cls_loss, box_loss


def fast_rcnn_detections(
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    rois: torch.Tensor,
    image_size: tuple[int, int],
    n_images: int,
    *,
    weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
    score_threshold: float = 0.05,
    nms_threshold: float = 0.5,
    max_detections: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Fast R-CNN outputs -> per image ``{"boxes" (D, 4), "scores" (D,), "labels" (D,)}`` (labels 0..K-1).

    For every RoI and object class ``c`` (not background): the score ``softmax(s)[c + 1]`` and the
    box ``decode_boxes(t^{c+1}, RoI, weights)`` clipped to the image; scores below
    ``score_threshold`` are dropped, then per-class NMS (:func:`batched_nms`) and the best
    ``max_detections``. ``rois (R, 5)`` rows ``(image index, x1, y1, x2, y2)``.
    """
    r, k1 = class_logits.shape
    if box_deltas.shape != (r, k1, 4) or rois.shape != (r, 5):
        raise ValueError(
            f"need class_logits (R, K+1), box_deltas (R, K+1, 4), rois (R, 5); got {tuple(class_logits.shape)}, "
            f"{tuple(box_deltas.shape)}, {tuple(rois.shape)}"
        )
    probs = torch.softmax(class_logits.detach(), 1)[:, 1:]  # (R, K)
    k = k1 - 1
    boxes = decode_boxes(
        box_deltas.detach()[:, 1:].reshape(-1, 4), rois[:, 1:].repeat_interleave(k, 0).to(box_deltas), weights
    )
    boxes = clip_boxes(boxes, image_size).reshape(r, k, 4)
    classes = torch.arange(k, device=class_logits.device).expand(r, k)
    image = rois[:, 0].long()
    out = []
    for i in range(n_images):
        sel = image == i
        bx, sc, lab = boxes[sel].reshape(-1, 4), probs[sel].reshape(-1), classes[sel].reshape(-1)
        keep = sc >= score_threshold
        bx, sc, lab = bx[keep], sc[keep], lab[keep]
        kept = batched_nms(bx, sc, lab, nms_threshold)[:max_detections]
        out.append({"boxes": bx[kept], "scores": sc[kept], "labels": lab[kept]})
    return out


# --------------------------------------------------------------------------------------------
# YOLO (v1)
# --------------------------------------------------------------------------------------------
class YOLOHead(nn.Module):
    """YOLOv1's output layer (seed 9.9): an ``S x S`` grid, ``B`` boxes per cell, ``C`` class scores per cell.

    The feature map is average-pooled to ``S x S``; a 1x1 convolution (``hidden`` channels, leaky
    ReLU 0.1 as in the paper) and a linear 1x1 convolution give, per cell, ``B`` blocks
    ``(x, y, sqrt(w), sqrt(h), confidence)`` — ``x, y`` the centre's offset inside the cell in
    [0, 1], ``w, h`` fractions of the image — followed by ``C`` class scores.
    ``(N, in_channels, H, W) -> (N, S, S, 5 B + C)``; no activation on the outputs (the paper's
    linear last layer). YOLOv1 has no anchors; they arrive in YOLOv2. ``in_channels=None`` infers it.
    """

    def __init__(self, S: int, B: int, C: int, in_channels: int | None = None, hidden: int = 128) -> None:
        super().__init__()
        if S < 1 or B < 1 or C < 1:
            raise ValueError(f"S, B and C must be >= 1, got {S}, {B}, {C}")
        self.S, self.B, self.C = S, B, C
        first = nn.LazyConv2d(hidden, 1) if in_channels is None else nn.Conv2d(in_channels, hidden, 1)
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(S), first, nn.LeakyReLU(0.1), nn.Conv2d(hidden, 5 * B + C, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _check_features(features)
        return self.net(features).permute(0, 2, 3, 1)


def _yolo_target_one(boxes: torch.Tensor, labels: torch.Tensor, S: int, B: int, C: int) -> torch.Tensor:
    _check_boxes(boxes)
    if labels.shape != (boxes.shape[0],):
        raise ValueError(f"labels must have shape ({boxes.shape[0]},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"labels must lie in 0..{C - 1}")
    if boxes.numel() and ((boxes < 0).any() or (boxes > 1).any() or (boxes[:, 2:] <= boxes[:, :2]).any()):
        raise ValueError("YOLO boxes must be image fractions in [0, 1] with x2 > x1 and y2 > y1")
    target = torch.zeros(S, S, 5 * B + C, dtype=boxes.dtype, device=boxes.device)
    if boxes.shape[0] == 0:
        return target
    cx, cy, w, h = _centre_size(boxes)
    col = (cx * S).floor().long().clamp(0, S - 1)
    row = (cy * S).floor().long().clamp(0, S - 1)
    cell = row * S + col
    # one object per cell: the largest (then the first listed) of those whose centre falls in it
    order = torch.sort(-(w * h), stable=True).indices
    order = order[torch.sort(cell[order], stable=True).indices]
    first = torch.ones_like(order, dtype=torch.bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    k = order[first]
    block = torch.stack(
        [cx[k] * S - col[k], cy[k] * S - row[k], w[k].sqrt(), h[k].sqrt(), torch.ones_like(w[k])], dim=1
    )
    target[row[k], col[k], : 5 * B] = block.repeat(1, B)
    target[row[k], col[k], 5 * B + labels[k].long()] = 1.0
    return target


def yolo_targets(
    boxes: torch.Tensor | Sequence[torch.Tensor], labels: torch.Tensor | Sequence[torch.Tensor], S: int, B: int, C: int
) -> torch.Tensor:
    """YOLOv1 training targets in :class:`YOLOHead`'s layout: ``(S, S, 5 B + C)``, or ``(N, S, S, 5 B + C)`` for lists.

    ``boxes: (K, 4)`` as fractions of the image (divide pixel boxes by the image width/height),
    ``labels: (K,)`` in ``0..C-1``. The cell containing a box's centre is responsible for it; its B
    blocks all hold ``(x - col, y - row, sqrt(w), sqrt(h), 1)`` in cell units (the loss picks the
    predictor with the highest IoU) and its class entry is 1. YOLOv1 predicts one class per cell, so
    a cell holds one object (seed 9.9's "up to b objects per cell" is not v1): when several centres
    share a cell the largest box is kept. Cells without an object are all zeros.
    """
    if isinstance(boxes, torch.Tensor):
        return _yolo_target_one(boxes, labels, S, B, C)
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} box tensors but {len(labels)} label tensors")
    return torch.stack([_yolo_target_one(b, lab, S, B, C) for b, lab in zip(boxes, labels, strict=True)])


def _cell_boxes(blocks: torch.Tensor, S: int) -> torch.Tensor:
    """(..., S, S, B, >=4) blocks of (x, y, sqrt w, sqrt h) -> (..., S, S, B, 4) image-fraction boxes."""
    idx = torch.arange(S, dtype=blocks.dtype, device=blocks.device)
    cx = (blocks[..., 0] + idx[None, :, None]) / S  # column offset
    cy = (blocks[..., 1] + idx[:, None, None]) / S  # row offset
    w, h = blocks[..., 2] ** 2, blocks[..., 3] ** 2
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of two (..., 4) box tensors."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda t: (t[..., 2] - t[..., 0]).clamp_min(0) * (t[..., 3] - t[..., 1]).clamp_min(0)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def _check_yolo(pred: torch.Tensor, target: torch.Tensor, B: int) -> tuple[int, int]:
    if pred.ndim != 4 or pred.shape != target.shape or pred.shape[1] != pred.shape[2]:
        raise ValueError(
            f"pred and target must both be (N, S, S, 5B + C), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    c = pred.shape[-1] - 5 * B
    if c < 1:
        raise ValueError(f"last axis {pred.shape[-1]} is too short for B={B} boxes and at least one class")
    conf = target[..., 4 : 5 * B : 5]
    cls = target[..., 5 * B :]
    obj = conf[..., 0] == 1
    one_hot = ((cls == 0) | (cls == 1)).all(-1) & (cls.sum(-1) == obj.to(cls.dtype))
    if not ((conf == conf[..., :1]).all() and ((conf == 0) | (conf == 1)).all() and one_hot.all()):
        raise ValueError(f"target does not look like yolo_targets(..., B={B}, C={c}) (B mismatch?)")
    return pred.shape[1], c


def yolo_loss(
    pred: torch.Tensor, target: torch.Tensor, B: int = 2, lambda_coord: float = 5.0, lambda_noobj: float = 0.5
) -> torch.Tensor:
    """YOLOv1's sum-squared loss, averaged over the batch: ``pred``, ``target``: ``(N, S, S, 5 B + C)``.

    With ``1_ij`` marking predictor ``j`` of cell ``i`` as responsible (the cell holds an object
    and ``j`` has the highest IoU with it among the ``B``; first on ties) and ``1_i`` an object cell:
    ``lambda_coord sum 1_ij [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
    + sum 1_ij (C_ij - IoU_ij)^2 + lambda_noobj sum (1 - 1_ij) C_ij^2 + sum_i 1_i sum_c (p_i(c) - p^_i(c))^2``,
    the confidence target being the (detached) IoU of the predicted and true boxes, as in the paper.
    """
    s, c = _check_yolo(pred, target, B)
    n = pred.shape[0]
    p = pred[..., : 5 * B].reshape(n, s, s, B, 5)
    t = target[..., : 5 * B].reshape(n, s, s, B, 5)
    obj = t[..., 0, 4] > 0  # (N, S, S)
    with torch.no_grad():
        iou = _pairwise_iou(_cell_boxes(p, s), _cell_boxes(t, s))  # (N, S, S, B)
        best = iou.argmax(-1)
        resp = torch.nn.functional.one_hot(best, B).bool() & obj[..., None]
    r = resp.to(pred.dtype)
    coord = (((p[..., :4] - t[..., :4]) ** 2).sum(-1) * r).sum()
    conf_obj = (((p[..., 4] - iou) ** 2) * r).sum()
    conf_noobj = ((p[..., 4] ** 2) * (1 - r)).sum()
    cls = (((pred[..., 5 * B :] - target[..., 5 * B :]) ** 2).sum(-1) * obj.to(pred.dtype)).sum()
    return (lambda_coord * coord + conf_obj + lambda_noobj * conf_noobj + cls) / n


def yolo_decode(
    pred: torch.Tensor, B: int = 2, score_threshold: float = 0.1, iou_threshold: float = 0.5, max_detections: int = 100
) -> list[dict[str, torch.Tensor]]:
    """YOLOv1 outputs ``(N, S, S, 5 B + C)`` -> per image ``{"boxes" (D, 4) image fractions, "scores", "labels"}``.

    Each of the ``S S B`` predicted boxes gets the class of its cell's highest class score and the
    class-specific confidence ``score = confidence x class score``; boxes scoring below
    ``score_threshold`` are dropped, then per-class NMS, then the best ``max_detections``.
    """
    if pred.ndim != 4 or pred.shape[1] != pred.shape[2] or pred.shape[-1] <= 5 * B:
        raise ValueError(f"pred must be (N, S, S, 5B + C) with B={B}, got {tuple(pred.shape)}")
    n, s = pred.shape[:2]
    p = pred[..., : 5 * B].reshape(n, s, s, B, 5)
    boxes = _cell_boxes(p, s).clamp(0, 1).reshape(n, -1, 4)
    cls_score, cls = pred[..., 5 * B :].max(-1)  # (N, S, S)
    scores = (p[..., 4] * cls_score[..., None]).reshape(n, -1)
    labels = cls[..., None].expand(n, s, s, B).reshape(n, -1)
    out = []
    for bx, sc, lab in zip(boxes, scores, labels, strict=True):
        keep = sc >= score_threshold
        bx, sc, lab = bx[keep], sc[keep], lab[keep]
        k = batched_nms(bx, sc, lab, iou_threshold)[:max_detections]
        out.append({"boxes": bx[k], "scores": sc[k], "labels": lab[k]})
    return out


# --------------------------------------------------------------------------------------------
# average precision
# --------------------------------------------------------------------------------------------
def average_precision(scores: torch.Tensor, is_true_positive: torch.Tensor, num_gt: int, method: str = "voc") -> float:
    """Area under the precision-recall curve of one class (seed 9.4).

    ``scores (D,)``, ``is_true_positive (D,)`` bool (already matched to the ``num_gt`` ground-truth
    objects). Detections are ranked by decreasing score (ties in input order); at rank ``r``,
    ``precision = TP_r / r`` and ``recall = TP_r / num_gt``. Precision is made non-increasing,
    ``p_interp(r) = max_{r' >= r} p(r')``, then

    - ``"voc"``: all-point interpolation, ``AP = sum_k (r_k - r_{k-1}) p_interp(r_k)`` over the recall
      levels (PASCAL VOC 2010+);
    - ``"coco"``: ``AP = mean over R = 0, 0.01, ..., 1`` of ``p_interp`` at the first rank reaching
      recall ``R`` (0 when it is never reached), as pycocotools computes it.

    No detections gives 0; ``num_gt = 0`` gives NaN (the class does not count in a mean).
    """
    if method not in ("voc", "coco"):
        raise ValueError(f"method must be 'voc' or 'coco', got {method!r}")
    scores = torch.as_tensor(scores)
    tp = torch.as_tensor(is_true_positive)
    if scores.ndim != 1 or tp.shape != scores.shape:
        raise ValueError(
            f"scores and is_true_positive must be 1-d of the same length, got {tuple(scores.shape)} and {tuple(tp.shape)}"
        )
    if int(num_gt) < 0:
        raise ValueError(f"num_gt must be >= 0, got {num_gt}")
    if num_gt == 0:
        return math.nan
    if tp.sum() > num_gt:
        raise ValueError(f"{int(tp.sum())} true positives but only {num_gt} ground-truth objects")
    if scores.numel() == 0:
        return 0.0
    order = torch.sort(scores.double().cpu(), descending=True, stable=True).indices
    hits = tp.cpu()[order].bool().numpy()
    return _ap_from_ranked(hits[None], int(num_gt), method)[0]


def _ap_from_ranked(hits: np.ndarray, num_gt: int, method: str, ignore: np.ndarray | None = None) -> np.ndarray:
    """AP per row of ranked TP flags ``(T, D)`` (optionally with ignored detections); numpy float64."""
    if ignore is None:
        ignore = np.zeros_like(hits)
    tps = np.cumsum(hits & ~ignore, axis=1).astype(float)
    fps = np.cumsum(~hits & ~ignore, axis=1).astype(float)
    out = np.zeros(hits.shape[0])
    for t in range(hits.shape[0]):
        tp, fp = tps[t], fps[t]
        if method == "coco":
            rc = tp / num_gt
            pr = tp / (fp + tp + np.spacing(1))
            pr = np.maximum.accumulate(pr[::-1])[::-1] if pr.size else pr
            inds = np.searchsorted(rc, COCO_RECALL_THRESHOLDS, side="left")
            q = np.where(inds < pr.size, pr[np.minimum(inds, max(pr.size - 1, 0))] if pr.size else 0.0, 0.0)
            out[t] = q.mean()
        else:
            keep = ~ignore[t]
            tp, fp = tp[keep], fp[keep]
            rc = tp / num_gt
            pr = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            mrec = np.concatenate([[0.0], rc, [1.0]])
            mpre = np.concatenate([[0.0], pr, [0.0]])
            mpre = np.maximum.accumulate(mpre[::-1])[::-1]
            i = np.flatnonzero(mrec[1:] != mrec[:-1])
            out[t] = float(((mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum())
    return out


def _as_numpy(x: torch.Tensor | np.ndarray | Sequence, dtype) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """box_iou on numpy float64 arrays (the same formula and operation order)."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision_per_class(
    detections: Sequence[Mapping[str, torch.Tensor]],
    ground_truths: Sequence[Mapping[str, torch.Tensor]],
    iou_threshold: float | Sequence[float] = 0.5,
    *,
    style: str = "voc",
    max_detections: int | None = None,
    area_range: tuple[float, float] | None = None,
) -> dict[int, np.ndarray]:
    """AP of every class, at every IoU threshold: ``{class: (T,) float64}`` (NaN for a class without ground truth).

    ``detections[i]``: ``{"boxes" (D, 4), "scores" (D,), "labels" (D,)}`` of image ``i``;
    ``ground_truths[i]``: ``{"boxes" (G, 4), "labels" (G,)}``. Per image and class, detections are
    taken by decreasing score (ties in input order; at most ``max_detections`` of them) and matched
    greedily:

    - ``style="voc"`` (the PASCAL devkit): a detection is a true positive when the ground truth it
      overlaps most (first on ties) has IoU ``> t`` and is not yet taken; otherwise false positive;
    - ``style="coco"`` (pycocotools): it takes the free ground truth of highest IoU ``>= t`` (the
      later one on ties); with ``area_range = (lo, hi)`` ground truths of area outside it are
      "ignored": a detection matched to one, or unmatched with an area outside the range, counts
      neither way, and they are not in ``num_gt`` (COCO's small/medium/large). Default range: all.

    Then :func:`average_precision` (``method=style``) over the detections of all images, in image order.
    """
    if style not in ("voc", "coco"):
        raise ValueError(f"style must be 'voc' or 'coco', got {style!r}")
    if len(detections) != len(ground_truths):
        raise ValueError(
            f"{len(detections)} detection entries but {len(ground_truths)} ground-truth entries (one per image)"
        )
    thresholds = np.atleast_1d(np.asarray(iou_threshold, dtype=np.float64))
    if thresholds.ndim != 1 or thresholds.size == 0 or (thresholds < 0).any() or (thresholds > 1).any():
        raise ValueError(f"iou_threshold must be a number or a sequence of numbers in [0, 1], got {iou_threshold}")
    if area_range is not None and style != "coco":
        raise ValueError("area_range is a COCO rule: use style='coco'")
    lo_area, hi_area = area_range if area_range is not None else (0.0, 1e10)
    coco_thr = np.minimum(thresholds, 1 - 1e-10)
    per_image = []
    classes: set[int] = set()
    for i, (det, gt) in enumerate(zip(detections, ground_truths, strict=True)):
        db = _as_numpy(det["boxes"], np.float64).reshape(-1, 4)
        ds = _as_numpy(det["scores"], np.float64).reshape(-1)
        dl = _as_numpy(det["labels"], np.int64).reshape(-1)
        gb = _as_numpy(gt["boxes"], np.float64).reshape(-1, 4)
        gl = _as_numpy(gt["labels"], np.int64).reshape(-1)
        if not len(db) == len(ds) == len(dl) or len(gb) != len(gl):
            raise ValueError(f"image {i}: boxes, scores and labels must have matching lengths")
        per_image.append((db, ds, dl, gb, gl))
        classes.update(dl.tolist())
        classes.update(gl.tolist())
    result = {}
    t_count = thresholds.size
    for c in sorted(classes):
        all_scores, all_hits, all_ignore = [], [], []
        num_gt = 0
        for db, ds, dl, gb, gl in per_image:
            d_idx = np.flatnonzero(dl == c)
            d_idx = d_idx[np.argsort(-ds[d_idx], kind="mergesort")]
            if max_detections is not None:
                d_idx = d_idx[:max_detections]
            g = gb[gl == c]
            g_area = np.clip(g[:, 2] - g[:, 0], 0, None) * np.clip(g[:, 3] - g[:, 1], 0, None)
            g_ignore = (g_area < lo_area) | (g_area > hi_area) if style == "coco" else np.zeros(len(g), bool)
            num_gt += int((~g_ignore).sum())
            d = db[d_idx]
            hits = np.zeros((t_count, len(d)), dtype=bool)
            ignore = np.zeros((t_count, len(d)), dtype=bool)
            if len(d) and len(g):
                iou = _iou_np(d, g)
                taken = np.zeros((t_count, len(g)), dtype=bool)
                if style == "voc":
                    best_g = iou.argmax(1)
                    for k in range(len(d)):
                        j = best_g[k]
                        ok = (iou[k, j] > thresholds) & ~taken[:, j]
                        hits[:, k] = ok
                        taken[:, j] |= ok
                else:
                    g_order = np.argsort(g_ignore, kind="mergesort")  # COCO visits ignored ground truth last
                    iou, g_ign = iou[:, g_order], g_ignore[g_order]
                    rev = slice(None, None, -1)
                    for k in range(len(d)):
                        cand = ~taken & (iou[k][None, :] >= coco_thr[:, None])  # (T, G)
                        real = cand & ~g_ign[None, :]
                        use = np.where(real.any(1, keepdims=True), real, cand)
                        vals = np.where(use, iou[k][None, :], -np.inf)
                        j = len(g) - 1 - vals[:, rev].argmax(1)  # highest IoU, the later one on ties
                        ok = use[np.arange(t_count), j]
                        hits[:, k] = ok
                        ignore[:, k] = ok & g_ign[j]
                        taken[np.arange(t_count)[ok], j[ok]] = True
            if style == "coco" and len(d):
                d_area = np.clip(d[:, 2] - d[:, 0], 0, None) * np.clip(d[:, 3] - d[:, 1], 0, None)
                outside = (d_area < lo_area) | (d_area > hi_area)
                ignore |= ~hits & outside[None, :]
            all_scores.append(ds[d_idx])
            all_hits.append(hits)
            all_ignore.append(ignore)
        if num_gt == 0:
            result[c] = np.full(t_count, np.nan)
            continue
        scores = np.concatenate(all_scores)
        order = np.argsort(-scores, kind="mergesort")
        hits = np.concatenate(all_hits, axis=1)[:, order]
        ignore = np.concatenate(all_ignore, axis=1)[:, order]
        result[c] = _ap_from_ranked(hits, num_gt, style, ignore)
    return result


def mean_average_precision(
    detections: Sequence[Mapping[str, torch.Tensor]],
    ground_truths: Sequence[Mapping[str, torch.Tensor]],
    iou_threshold: float | Sequence[float] = 0.5,
    *,
    style: str = "voc",
    max_detections: int | None = None,
    area_range: tuple[float, float] | None = None,
) -> float:
    """mAP: the mean over classes (with ground truth) of AP, averaged over the IoU thresholds given (seed 9.4).

    ``mean_average_precision(dets, gts)`` is VOC's mAP@0.5. COCO's AP@[.5:.95] is
    ``mean_average_precision(dets, gts, COCO_IOU_THRESHOLDS, style="coco", max_detections=100)``
    (``max_detections`` defaults to 100 for ``style="coco"``); ``area_range=(0, 32**2)`` etc. give
    AP_small / medium / large. NaN when no class has ground truth. See :func:`average_precision_per_class`.
    """
    if style == "coco" and max_detections is None:
        max_detections = 100
    per_class = average_precision_per_class(
        detections, ground_truths, iou_threshold, style=style, max_detections=max_detections, area_range=area_range
    )
    values = [v for v in per_class.values() if not np.isnan(v).all()]
    if not values:
        return math.nan
    return float(np.mean(np.stack(values)))


# --------------------------------------------------------------------------------------------
# complete detectors for small single-channel scenes (lecture 09 §5, benchmarks/segmentation_detection.py)
# --------------------------------------------------------------------------------------------
def small_backbone(in_channels: int = 1, width: int = 64) -> nn.Sequential:
    """A stride-4 feature extractor for small scenes: 3x3 conv (``width // 2``), max-pool, 3x3 conv
    (``width``), max-pool, then three 3x3 convs of ``width`` channels with dilations 1, 2 and 4, so
    that one position of the output map sees 66 x 66 input pixels (a whole digit on a 64x64 scene)
    without a further loss of resolution. Every conv is followed by batch norm and ReLU.
    ``(N, in_channels, H, W) -> (N, width, H // 4, W // 4)``."""
    if in_channels < 1 or width < 2:
        raise ValueError(f"in_channels must be >= 1 and width >= 2, got {in_channels} and {width}")

    def block(i: int, o: int, d: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    half = width // 2
    return nn.Sequential(
        *block(in_channels, half), nn.MaxPool2d(2), *block(half, width), nn.MaxPool2d(2),
        *block(width, width), *block(width, width, 2), *block(width, width, 4),
    )


def _check_image_size(image_size: int, stride: int) -> None:
    if image_size < stride or image_size % stride:
        raise ValueError(f"image_size must be a positive multiple of {stride}, got {image_size}")


class TwoStageDetector(nn.Module):
    """Faster R-CNN in miniature (seeds 9.7-9.8): :func:`small_backbone` -> :class:`RPNHead` on
    :func:`make_anchors` -> :func:`generate_proposals` -> :func:`roi_align` -> :class:`FastRCNNHead`.

    Training (:meth:`loss`) is Faster R-CNN's *approximate joint training*: the four losses (RPN
    objectness and box corrections, :func:`rpn_loss`; RoI-head classes and boxes,
    :func:`fast_rcnn_loss`) are summed, and the proposals that feed the second stage are treated
    as constants. The second stage samples ``rois_per_image`` RoIs per image from the
    ``train_proposals`` best proposals plus the true boxes (:func:`assign_proposals`).
    ``image_size``: the side of the square input, a multiple of 4.
    """

    stride = 4

    def __init__(self, num_classes: int, image_size: int, *, in_channels: int = 1, width: int = 64,
                 anchor_sizes: Sequence[float] = (16.0, 24.0, 32.0), anchor_ratios: Sequence[float] = (1.0, 1.5, 2.5),
                 rois_per_image: int = 32, train_proposals: int = 64, test_proposals: int = 50,
                 roi_size: int = 7, hidden: int = 256) -> None:
        super().__init__()
        _check_image_size(image_size, self.stride)
        if num_classes < 1 or rois_per_image < 1 or train_proposals < 1 or test_proposals < 1:
            raise ValueError("num_classes, rois_per_image, train_proposals and test_proposals must be >= 1, got "
                             f"{num_classes}, {rois_per_image}, {train_proposals}, {test_proposals}")
        self.num_classes, self.image_size = num_classes, image_size
        self.rois_per_image, self.train_proposals, self.test_proposals = rois_per_image, train_proposals, test_proposals
        self.roi_size = roi_size
        self.backbone = small_backbone(in_channels, width)
        self.register_buffer("anchors", make_anchors(image_size // self.stride, self.stride, anchor_sizes, anchor_ratios))
        self.rpn = RPNHead(width, len(anchor_sizes) * len(anchor_ratios))
        self.head = FastRCNNHead(width, num_classes, output_size=roi_size, hidden=hidden)

    def _proposals(self, objectness: torch.Tensor, deltas: torch.Tensor, top: int) -> list[torch.Tensor]:
        size = (self.image_size, self.image_size)
        return [p for p, _ in generate_proposals(objectness, deltas, self.anchors, size, 300, top, 0.7)]

    def loss(self, images: torch.Tensor, boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor],
             generator: torch.Generator | None = None) -> torch.Tensor:
        """The sum of the four losses on a batch: ``images (N, C, S, S)``, per image ``boxes (K_i, 4)``
        in pixels and ``labels (K_i,)`` in ``0 .. num_classes - 1``."""
        features = self.backbone(images)
        objectness, deltas = self.rpn(features)
        l_obj, l_rpn = rpn_loss(objectness, deltas, self.anchors, boxes, generator=generator)
        rois, roi_labels, targets = assign_proposals(
            self._proposals(objectness, deltas, self.train_proposals), boxes, labels,
            batch_size_per_image=self.rois_per_image, generator=generator,
        )
        cls, box = self.head(roi_align(features, rois, self.roi_size, spatial_scale=1 / self.stride))
        l_cls, l_box = fast_rcnn_loss(cls, box, roi_labels, targets)
        return l_obj + l_rpn + l_cls + l_box

    @torch.no_grad()
    def detect(self, images: torch.Tensor, score_threshold: float = 0.05) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"boxes" (D, 4) pixels, "scores" (D,), "labels" (D,)}`` (:func:`fast_rcnn_detections`)."""
        features = self.backbone(images)
        objectness, deltas = self.rpn(features)
        props = self._proposals(objectness, deltas, self.test_proposals)
        rois = torch.cat([torch.cat([torch.full((len(p), 1), float(i), device=p.device, dtype=p.dtype), p], 1)
                          for i, p in enumerate(props)])
        cls, box = self.head(roi_align(features, rois, self.roi_size, spatial_scale=1 / self.stride))
        size = (self.image_size, self.image_size)
        return fast_rcnn_detections(cls, box, rois, size, len(images), score_threshold=score_threshold)


class YOLODetector(nn.Module):
    """YOLOv1 (seed 9.9) on :func:`small_backbone`: a :class:`YOLOHead` predicts, for each cell of an
    ``S x S`` grid, ``B`` boxes and one set of class scores; trained with :func:`yolo_loss` on
    :func:`yolo_targets`, decoded by :func:`yolo_decode`. Boxes in and out are in pixels."""

    def __init__(self, num_classes: int, image_size: int, *, S: int = 8, B: int = 2, in_channels: int = 1,
                 width: int = 64, hidden: int = 256) -> None:
        super().__init__()
        _check_image_size(image_size, 4)
        if num_classes < 1 or S < 1 or B < 1:
            raise ValueError(f"num_classes, S and B must be >= 1, got {num_classes}, {S}, {B}")
        self.num_classes, self.image_size, self.S, self.B = num_classes, image_size, S, B
        self.backbone = small_backbone(in_channels, width)
        self.head = YOLOHead(S, B, num_classes, in_channels=width, hidden=hidden)

    def loss(self, images: torch.Tensor, boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor],
             generator: torch.Generator | None = None) -> torch.Tensor:
        """YOLO's weighted sum of squares on a batch (``generator`` is unused: nothing is sampled)."""
        target = yolo_targets([b / self.image_size for b in boxes], labels, self.S, self.B, self.num_classes)
        return yolo_loss(self.head(self.backbone(images)), target.to(images), B=self.B)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, score_threshold: float = 0.05) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"boxes" (D, 4) pixels, "scores" (D,), "labels" (D,)}``."""
        out = yolo_decode(self.head(self.backbone(images)), B=self.B, score_threshold=score_threshold)
        return [{**d, "boxes": d["boxes"] * self.image_size} for d in out]


DetectionData = tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]


def scene_tensors(scenes) -> DetectionData:
    """``course_lib.data.make_digit_scenes`` output -> ``(images (N, 1, S, S), boxes, labels)`` tensors."""
    return (torch.from_numpy(scenes.images[:, None]), [torch.from_numpy(b) for b in scenes.boxes],
            [torch.from_numpy(lab) for lab in scenes.labels])


def train_detector(model: nn.Module, data: DetectionData, steps: int, batch: int, *, lr: float = 1e-3,
                   device: torch.device | str | None = None, seed: int = 0, progress: bool = True,
                   desc: str = "training") -> np.ndarray:
    """Adam with a one-cycle schedule (10 % warm-up) on ``model.loss`` for ``steps`` mini-batches of
    ``batch`` images drawn with replacement from ``data``; returns the loss of every step, a numpy array ``(steps,)``.
    Works for :class:`TwoStageDetector` and :class:`YOLODetector` (anything with ``loss(images,
    boxes, labels, generator)``)."""
    from course_lib.training import train_steps

    images, boxes, labels = data
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps} and {batch}")
    if not len(images) == len(boxes) == len(labels) or len(images) == 0:
        raise ValueError(f"data must hold as many images, box sets and label sets (and some), got "
                         f"{len(images)}, {len(boxes)}, {len(labels)}")
    device = torch.device(device) if device is not None else images.device
    model.to(device)
    sampler = torch.Generator().manual_seed(seed + 1)  # the detector's own sampling (anchors, RoIs)

    def batch_loss(pick: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(images), (batch,), generator=pick).tolist()
        return model.loss(images[idx].to(device), [boxes[i].to(device) for i in idx],
                          [labels[i].to(device) for i in idx], sampler)

    return train_steps(model, batch_loss, steps, lr=lr, warmup=0.1, seed=seed, progress=progress, desc=desc).numpy()


def evaluate_detector(model: nn.Module, data: DetectionData, *, device: torch.device | str | None = None,
                      batch: int = 50) -> dict:
    """Detections on ``data`` and their quality: ``{"dets": per-image dicts on the CPU, "map50": VOC
    mAP@0.5, "coco": COCO AP@[.5:.95], "ips": images per second of inference (batches of ``batch``)}``."""
    import time

    images, boxes, labels = data
    device = torch.device(device) if device is not None else images.device
    model.to(device).eval()
    dets: list[dict[str, torch.Tensor]] = []
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        dets += [{k: v.cpu() for k, v in d.items()} for d in model.detect(images[i : i + batch].to(device))]
    seconds = time.perf_counter() - start
    gts = [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    return {"dets": dets, "map50": mean_average_precision(dets, gts, 0.5),
            "coco": mean_average_precision(dets, gts, COCO_IOU_THRESHOLDS, style="coco"),
            "ips": len(images) / seconds}
