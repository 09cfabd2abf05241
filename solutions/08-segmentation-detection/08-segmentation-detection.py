# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "solution": false, "schema_version": 3}
# # Assignment 08 · Segmentation and detection
#
# In this assignment you implement, on PyTorch tensors, the measures and building blocks of
# lectures 08 and 09:
#
# 1. the **IoU** of two sets of boxes (2 points);
# 2. **non-maximum suppression** (3 points);
# 3. **average precision**, PASCAL VOC's all-point interpolation (3 points);
# 4. the per-class **Jaccard index** of two label maps (2 points);
# 5. the **YOLO target encoding** of one image (3 points);
# 6. the **forward pass of a U-Net** with its skip connections (3 points).
#
# Boxes are `(x1, y1, x2, y2)` float tensors of shape $(N, 4)$; a box with $x_2 \le x_1$ or
# $y_2 \le y_1$ has area 0.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# random boxes and masks you have not seen, against the course's reference implementation and
# `pycocotools`, including degenerate cases (no boxes, empty boxes, identical boxes, absent
# classes). Run **Kernel → Restart & Run All** before you submit.
#
# Rules: use tensor arithmetic, indexing and `torch` functions (`torch.maximum`, `torch.sort`,
# `torch.cat`, ...) and the `torch.nn` layers the U-Net cell creates. **Do not use**
# `course_lib.detection`, `course_lib.segmentation` or `torchvision`. Python loops are fine where
# the task says so (NMS may loop over the kept boxes).

# %% tags=["parameters"]
SMOKE = False

# %%
import math

import torch
from torch import nn

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] nbgrader={"grade": false, "grade_id": "iou_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. IoU (2 points)
#
# For boxes $a$ and $b$: $|a \cap b| = \max(0, \min(x_2^a, x_2^b) - \max(x_1^a, x_1^b)) \cdot
# \max(0, \min(y_2^a, y_2^b) - \max(y_1^a, y_1^b))$, area $\max(0, x_2 - x_1)\max(0, y_2 - y_1)$, and
#
# $$\mathrm{IoU}(a, b) = \frac{|a \cap b|}{|a| + |b| - |a \cap b|},$$
#
# defined as 0 when the union is 0 (two empty boxes). Return the $(N, M)$ matrix of all pairs,
# without Python loops (broadcast `a[:, None, :]` against `b[None, :, :]`).

# %% nbgrader={"grade": false, "grade_id": "box_iou", "locked": false, "solution": true, "schema_version": 3}
def box_iou(a, b):
    """IoU of every pair: a (N, 4), b (M, 4) -> (N, M)."""
    ### BEGIN SOLUTION
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "box_iou_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
_b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
assert_shape(box_iou(_a, _b), (2, 3), "box_iou of 2 and 3 boxes")
assert_close(box_iou(_a, _b), [[1 / 7, 0.0, 1.0], [1.0, 0.0, 1 / 7]],
             "two 2x2 squares overlapping in a 1x1 square have IoU 1/7; disjoint boxes 0; identical boxes 1")
assert_close(box_iou(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([[1.0, 1.0, 1.0, 1.0]])), [[0.0]],
             "two empty (zero-area) boxes: the union is 0 and the IoU is defined as 0, not NaN")
assert_shape(box_iou(torch.zeros(0, 4), _b), (0, 3), "box_iou with no boxes on one side")
### BEGIN HIDDEN TESTS
import numpy as _np
from pycocotools import mask as _mask_utils

import course_lib.detection as _D

_g = torch.Generator().manual_seed(801)
for _n, _m in [(1, 1), (5, 7), (20, 3)]:
    _xy = torch.rand(_n + _m, 2, generator=_g) * 50
    _bx = torch.cat([_xy, _xy + torch.rand(_n + _m, 2, generator=_g) * 30 + 0.5], 1)
    _ba, _bb = _bx[:_n], _bx[_n:]
    assert_close(box_iou(_ba, _bb), _D.box_iou(_ba, _bb), f"box_iou on {_n} x {_m} random boxes vs the reference")
    _xywh = lambda t: _np.ascontiguousarray(torch.cat([t[:, :2], t[:, 2:] - t[:, :2]], 1).numpy())  # noqa: E731
    assert_close(box_iou(_ba, _bb), _mask_utils.iou(_xywh(_ba), _xywh(_bb), [0] * _m), "box_iou vs pycocotools.mask.iou")
_deg = torch.tensor([[0.0, 0.0, 0.0, 5.0], [3.0, 3.0, 1.0, 1.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0]])
assert_close(box_iou(_deg, _deg), _D.box_iou(_deg, _deg), "degenerate boxes (zero width, inverted corners, duplicates)")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "nms_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. Non-maximum suppression (3 points)
#
# Walk the boxes by **decreasing score**; keep a box unless its IoU with an already kept box is
# **greater than** `iou_threshold` (a box at exactly the threshold survives). Equal scores are
# visited in increasing index order (a *stable* sort: `torch.sort(..., stable=True)`). Return
# the kept indices, in the order they were kept, as an `int64` tensor; no boxes give an empty
# tensor. Use your `box_iou`.

# %% nbgrader={"grade": false, "grade_id": "nms", "locked": false, "solution": true, "schema_version": 3}
def nms(boxes, scores, iou_threshold):
    """Greedy NMS: boxes (N, 4), scores (N,) -> kept indices (K,) int64, by decreasing score."""
    ### BEGIN SOLUTION
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    removed = torch.zeros(len(boxes), dtype=torch.bool)
    kept = []
    for i in order.tolist():
        if removed[i]:
            continue
        kept.append(i)
        removed |= iou[i] > iou_threshold
    return torch.tensor(kept, dtype=torch.long)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "nms_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 9.0]])
_scores = torch.tensor([0.9, 0.95, 0.5, 0.3])
_kept = nms(_boxes, _scores, 0.5)
assert _kept.dtype == torch.long, f"nms must return int64 indices, got {_kept.dtype}"
assert _kept.tolist() == [1, 2], (f"box 1 (score 0.95) removes boxes 0 and 3 (IoU 0.68 and 0.61 > 0.5); box 2 is far away: "
                                  f"expected [1, 2], got {_kept.tolist()}")
assert nms(_boxes, _scores, 0.99).tolist() == [1, 0, 2, 3], "with a threshold of 0.99 nothing is removed; order = decreasing score"
assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == [], "no boxes: nothing kept"
_same = torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 3)
assert nms(_same, torch.tensor([0.5, 0.5, 0.5]), 0.5).tolist() == [0], "identical boxes with equal scores: the lowest index is kept"
_half = torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0]])  # IoU exactly 1/3
assert nms(_half, torch.tensor([0.9, 0.8]), 1 / 3).tolist() == [0, 1], "IoU equal to the threshold is not suppressed"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(802)
for _trial in range(10):
    _n = [1, 2, 15, 60, 120][_trial % 5]
    _xy = torch.rand(_n, 2, generator=_g) * 40
    _bx = torch.cat([_xy, _xy + torch.rand(_n, 2, generator=_g) * 20 + 1], 1)
    _sc = torch.randint(0, 5, (_n,), generator=_g).double() if _trial % 2 else torch.rand(_n, generator=_g)  # ties on odd trials
    for _t in (0.3, 0.5, 0.7):
        assert nms(_bx, _sc, _t).tolist() == _D.nms(_bx, _sc, _t).tolist(), f"nms on {_n} random boxes (threshold {_t})"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "ap_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Average precision (3 points)
#
# The detections of one class have `scores` and flags `is_true_positive` (already matched to the
# `num_gt` true objects). Rank them by decreasing score (ties: input order, a stable sort). At
# rank $r$: precision $p_r = TP_r / r$, recall $\rho_r = TP_r / \text{num\_gt}$. Make the precision
# non-increasing, $\hat p_r = \max_{r' \ge r} p_{r'}$, and sum over the ranks
#
# $$\mathrm{AP} = \sum_r (\rho_r - \rho_{r-1})\, \hat p_r, \qquad \rho_0 = 0$$
#
# (PASCAL VOC's all-point interpolation: the area under the interpolated PR curve). Return a
# Python float; 0.0 when there are no detections, `math.nan` when `num_gt == 0`.

# %% nbgrader={"grade": false, "grade_id": "average_precision", "locked": false, "solution": true, "schema_version": 3}
def average_precision(scores, is_true_positive, num_gt):
    """VOC all-point AP of one class: scores (D,), is_true_positive (D,) bool, num_gt int -> float."""
    ### BEGIN SOLUTION
    if num_gt == 0:
        return math.nan
    if len(scores) == 0:
        return 0.0
    order = torch.sort(torch.as_tensor(scores, dtype=torch.float64), descending=True, stable=True).indices
    hits = torch.as_tensor(is_true_positive)[order].double()
    tp = torch.cumsum(hits, 0)
    precision = tp / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    recall = tp / num_gt
    interp = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    previous = torch.cat([torch.zeros(1, dtype=torch.float64), recall[:-1]])
    return float(((recall - previous) * interp).sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "average_precision_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
# ranked: TP, FP, TP, FP, TP with 4 objects: precision 1, 1/2, 2/3, 2/4, 3/5; recall 1/4, 1/4, 2/4, 2/4, 3/4
# interpolated precision at the recall steps: 1, 2/3, 3/5 -> AP = 1/4 * 1 + 1/4 * 2/3 + 1/4 * 3/5
_s = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
_tp = torch.tensor([True, False, True, False, True])
assert_close(average_precision(_s, _tp, 4), 0.25 * (1 + 2 / 3 + 3 / 5), "AP of the ranked list TP FP TP FP TP with 4 objects")
assert_close(average_precision(_s.flip(0), _tp.flip(0), 4), 0.25 * (1 + 2 / 3 + 3 / 5),
             "average_precision must sort the detections by decreasing score itself")
assert_close(average_precision(_s, torch.ones(5, dtype=torch.bool), 5), 1.0, "all detections correct, all objects found: AP = 1")
assert average_precision(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 3) == 0.0, "no detections: AP = 0"
assert math.isnan(average_precision(_s, torch.zeros(5, dtype=torch.bool), 0)), "no true objects: AP is NaN"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(803)
for _trial in range(12):
    _d = [1, 3, 10, 40][_trial % 4]
    _hits = torch.rand(_d, generator=_g) < 0.5
    _sc = torch.randint(0, 4, (_d,), generator=_g).double() if _trial % 3 == 0 else torch.rand(_d, generator=_g)
    _ngt = int(_hits.sum()) + int(torch.randint(0, 4, (1,), generator=_g))
    _want = _D.average_precision(_sc, _hits, _ngt)
    _got = average_precision(_sc, _hits, _ngt)
    assert (math.isnan(_want) and math.isnan(_got)) or abs(_got - _want) < 1e-12, f"AP of {_d} random detections (ties: {_trial % 3 == 0})"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "jaccard_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. The Jaccard index of a segmentation (2 points)
#
# For integer label maps `pred` and `target` of the same shape, with classes $0, \dots, K-1$:
#
# $$J_k = \frac{\sum_i [y_i = k]\,[a_i = k]}{\sum_i \max([y_i = k], [a_i = k])},$$
#
# a `float64` tensor of shape $(K,)$; a class absent from both maps (empty union) gets `NaN`.

# %% nbgrader={"grade": false, "grade_id": "jaccard_per_class", "locked": false, "solution": true, "schema_version": 3}
def jaccard_per_class(pred, target, num_classes):
    """Per-class IoU of two label maps of the same shape -> (num_classes,) float64, NaN for absent classes."""
    ### BEGIN SOLUTION
    classes = torch.arange(num_classes).view(-1, *([1] * pred.ndim))
    p, t = pred.unsqueeze(0) == classes, target.unsqueeze(0) == classes
    inter = (p & t).flatten(1).sum(1).double()
    union = (p | t).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, math.nan))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "jaccard_per_class_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_t = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 1]])
_p = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 0]])
assert_close(jaccard_per_class(_p, _t, 3), [2 / 5, 2 / 4, 1 / 2],
             "background: 2 common pixels of 5 in the union; class 1: 2 of 4; class 2: 1 of 2")
assert_close(jaccard_per_class(_p, _t, 4)[3], math.nan, "a class absent from both maps must give NaN")
assert_close(jaccard_per_class(_t, _t, 3), [1.0, 1.0, 1.0], "a perfect prediction has J = 1 for every class present")
### BEGIN HIDDEN TESTS
import course_lib.segmentation as _S

_g = torch.Generator().manual_seed(804)
for _shape, _k in [((5, 7), 3), ((2, 9, 9), 6), ((1, 4, 4), 8), ((3, 1), 2)]:
    _tt = torch.randint(0, _k, _shape, generator=_g)
    _pp = torch.where(torch.rand(_shape, generator=_g) < 0.7, _tt, torch.randint(0, _k, _shape, generator=_g))
    assert_close(jaccard_per_class(_pp, _tt, _k), _S.jaccard_per_class(_pp, _tt, _k), f"Jaccard on random masks {_shape}, K={_k}")
assert_close(jaccard_per_class(torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long), 2), [1.0, math.nan],
             "all background in both maps")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "yolo_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. YOLO target encoding (3 points)
#
# YOLOv1 divides the image into an $S \times S$ grid. `boxes` are fractions of the image,
# $(x_1, y_1, x_2, y_2) \in [0, 1]$, `labels` in $0..C-1$. For each box, with centre $(c_x, c_y)$,
# width $w$ and height $h$, the responsible cell is column $\lfloor c_x S \rfloor$ and row
# $\lfloor c_y S \rfloor$ (clipped to $S - 1$). The target has shape $(S, S, 5B + C)$: in the
# responsible cell `[row, col]` **each** of the $B$ blocks of 5 holds
# $(c_x S - \text{col},\; c_y S - \text{row},\; \sqrt w,\; \sqrt h,\; 1)$ and the entry $5B + \text{label}$
# is 1; every other cell is all zeros. A cell holds **one** object: when several centres fall in
# one cell, keep the box of largest area (on equal areas, the one listed first).

# %% nbgrader={"grade": false, "grade_id": "yolo_targets", "locked": false, "solution": true, "schema_version": 3}
def yolo_targets(boxes, labels, S, B, C):
    """YOLOv1 target of one image: boxes (K, 4) image fractions, labels (K,) -> (S, S, 5B + C)."""
    ### BEGIN SOLUTION
    target = torch.zeros(S, S, 5 * B + C, dtype=boxes.dtype)
    best = {}
    for k in range(len(boxes)):
        x1, y1, x2, y2 = boxes[k].tolist()
        w, h = x2 - x1, y2 - y1
        cx, cy = x1 + 0.5 * w, y1 + 0.5 * h
        col, row = min(int(math.floor(cx * S)), S - 1), min(int(math.floor(cy * S)), S - 1)
        if (row, col) not in best or w * h > best[(row, col)][0]:
            best[(row, col)] = (w * h, k, cx, cy, w, h)
    for (row, col), (_, k, cx, cy, w, h) in best.items():
        block = torch.tensor([cx * S - col, cy * S - row, math.sqrt(w), math.sqrt(h), 1.0], dtype=boxes.dtype)
        target[row, col, : 5 * B] = block.repeat(B)
        target[row, col, 5 * B + int(labels[k])] = 1.0
    return target
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "yolo_targets_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_bx = torch.tensor([[0.1, 0.1, 0.3, 0.5]])  # centre (0.2, 0.3), w 0.2, h 0.4
_tg = yolo_targets(_bx, torch.tensor([2]), 4, 2, 3)
assert_shape(_tg, (4, 4, 13), "yolo_targets with S=4, B=2, C=3")
assert_close(_tg[1, 0], [0.8, 0.2, math.sqrt(0.2), math.sqrt(0.4), 1.0] * 2 + [0.0, 0.0, 1.0],
             "centre (0.2, 0.3) falls in row 1, column 0 at offsets (0.8, 0.2); both blocks equal; class 2")
assert _tg.abs().sum() == _tg[1, 0].abs().sum(), "cells without an object must be all zeros"
_two = yolo_targets(torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.0, 0.0, 0.4, 0.4]]), torch.tensor([0, 1]), 2, 1, 2)
assert_close(_two[0, 0, 5:], [0.0, 1.0], "two centres in one cell: the larger box (class 1) wins")
assert yolo_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 3, 2, 4).abs().sum() == 0, "no boxes: all zeros"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(805)
for _trial in range(10):
    _k = [1, 2, 5, 12, 30][_trial % 5]
    _S_, _B_, _C_ = [(7, 2, 20), (4, 1, 3), (8, 3, 10), (2, 2, 2), (13, 2, 5)][_trial % 5]
    _xy = torch.rand(_k, 2, generator=_g) * 0.7
    _bx = torch.cat([_xy, _xy + torch.rand(_k, 2, generator=_g) * 0.29 + 0.01], 1)
    if _trial % 2:  # duplicates: equal areas in one cell
        _bx = torch.cat([_bx, _bx[:1]])
    _lab = torch.randint(0, _C_, (len(_bx),), generator=_g)
    assert_close(yolo_targets(_bx, _lab, _S_, _B_, _C_), _D.yolo_targets(_bx, _lab, _S_, _B_, _C_),
                 f"yolo_targets of {len(_bx)} random boxes, S={_S_}, B={_B_}, C={_C_}")
_edge = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
assert_close(yolo_targets(_edge, torch.tensor([0]), 4, 1, 1), _D.yolo_targets(_edge, torch.tensor([0]), 4, 1, 1),
             "a box touching the image corner")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "unet_md", "locked": true, "solution": false, "schema_version": 3}
# ## 6. The U-Net forward pass (3 points)
#
# The layers are built for you in `__init__` (padded 3×3 convolutions, so every level keeps its
# size): `self.down[i]` are the encoder blocks, `self.pool` a 2×2 max-pool (`ceil_mode=True`),
# `self.bottom` the bottom block, `self.up[j]` the 2×2 up-convolutions (transposed, stride 2)
# and `self.up_blocks[j]` the decoder blocks, both listed from the deepest level up, and
# `self.head` the final 1×1 convolution. Write `forward`:
#
# 1. for each encoder block: apply it, **remember its output** (the skip), then pool;
# 2. apply the bottom block;
# 3. for each level, deepest first: up-convolve; where the level's size was odd the result is
#    one row/column larger than the skip — drop its last row/column; concatenate
#    `[skip, upsampled]` along the channel axis (skip first: copy); apply the decoder block;
# 4. apply the head. The output has the input's height and width.

# %% nbgrader={"grade": false, "grade_id": "UNet", "locked": false, "solution": true, "schema_version": 3}
class UNet(nn.Module):
    """U-Net with padded convolutions: (N, in_ch, H, W) -> (N, num_classes, H, W)."""

    def __init__(self, in_ch, num_classes, depth=4, base_ch=64):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True))

        chans = [base_ch * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(block(in_ch if i == 0 else chans[i - 1], chans[i]) for i in range(depth))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.bottom = block(chans[depth - 1] if depth else in_ch, chans[depth])
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth)))
        self.up_blocks = nn.ModuleList(block(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x):
        ### BEGIN SOLUTION
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, block, skip in zip(self.up, self.up_blocks, reversed(skips)):
            x = up(x)[..., : skip.shape[-2], : skip.shape[-1]]
            x = block(torch.cat([skip, x], dim=1))
        return self.head(x)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "UNet_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
torch.manual_seed(0)
_net = UNet(1, 3, depth=2, base_ch=4)
_x = torch.randn(2, 1, 12, 12)
assert_shape(_net(_x), (2, 3, 12, 12), "UNet(1, 3, depth=2) on a 12x12 input")
assert_shape(_net(torch.randn(1, 1, 13, 11)), (1, 3, 13, 11), "UNet on an odd-sized 13x11 input (crop the up-convolution)")
# the skip connection carries the fine detail: with the decoder's up-convolution zeroed, the output
# still depends on the input through the copied encoder map of the top level
with torch.no_grad():
    for _m in _net.up:
        _m.weight.zero_()
        _m.bias.zero_()
_x1 = _x.clone()
_x1[0, 0, 3, 3] += 5.0
assert not torch.allclose(_net(_x1)[0], _net(_x)[0]), "with the up-convolutions zeroed the output must still see the input (the skips)"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(806)
for _depth, _base, _shape in [(1, 3, (1, 2, 8, 8)), (2, 4, (2, 1, 15, 9)), (3, 2, (1, 3, 17, 20)), (0, 4, (1, 1, 5, 5))]:
    torch.manual_seed(_depth)
    _ref = _S.UNet(_shape[1], 4, depth=_depth, base_ch=_base)
    _mine = UNet(_shape[1], 4, depth=_depth, base_ch=_base)
    _mine.load_state_dict(_ref.state_dict())
    _xx = torch.randn(_shape, generator=_g)
    with torch.no_grad():
        assert_close(_mine(_xx), _ref(_xx), f"UNet(depth={_depth}, base_ch={_base}) on {_shape} vs the reference", rtol=1e-9, atol=1e-10)
### END HIDDEN TESTS
