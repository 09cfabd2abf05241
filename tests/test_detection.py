"""Tests of course_lib.detection against plain-Python references, autograd and pycocotools.

- IoU, NMS (ties of scores and IoU exactly at the threshold included), anchor matching, RoI
  pooling, RoIAlign, YOLO targets and loss: against loops written here from the papers'
  definitions (and torchvision's documented semantics for RoI pooling/align), on random inputs.
- The Faster R-CNN parametrisation: decode(encode(b)) == b; the box correction applied by hand.
- AP/mAP: VOC all-point interpolation against a loop; COCO-style AP@[.5:.95], AP@.5, AP@.75,
  small/medium/large and maxDets against pycocotools' own evaluation on random detections.
- hypothesis: degenerate boxes (zero area, identical boxes, no boxes, one box).
"""

from __future__ import annotations

import contextlib
import io
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import detection as D

F64 = torch.float64


# ----------------------------------------------------------------------------- references
def iou_ref(a, b) -> float:
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def nms_ref(boxes, scores, thr, labels=None) -> list[int]:
    """The lecture's NMS: walk by decreasing score (ties: lower index first), drop boxes with IoU > thr."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept = []
    for i in order:
        if all(iou_ref(boxes[i], boxes[j]) <= thr or (labels is not None and labels[i] != labels[j]) for j in kept):
            kept.append(i)
    return kept


def random_boxes(g: torch.Generator, n: int, size: float = 50.0, min_wh: float = 0.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g, dtype=F64) * size
    wh = torch.rand(n, 2, generator=g, dtype=F64) * size / 2 + min_wh
    return torch.cat([xy, xy + wh], 1)


# ------------------------------------------------------------------------------ IoU and NMS
@pytest.mark.parametrize("seed", range(5))
def test_box_iou_matches_loops(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a, b = random_boxes(g, 7), random_boxes(g, 5)
    a[0, 2] = a[0, 0]  # zero width
    b[1] = a[1]  # identical
    got = D.box_iou(a, b)
    ref = torch.tensor([[iou_ref(x.tolist(), y.tolist()) for y in b] for x in a], dtype=F64)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert got[1, 1] == 1.0 and (got[0] == 0).all()
    assert D.box_iou(a[:0], b).shape == (0, 5) and D.box_iou(a, b[:0]).shape == (7, 0)
    torch.testing.assert_close(D.box_area(a), (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))


@pytest.mark.parametrize("seed", range(8))
def test_nms_matches_the_python_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(100 + seed)
    n = [0, 1, 5, 40, 300, 700, 257, 513][seed]  # also across the 256-box blocks
    boxes = random_boxes(g, n, size=60.0 if n < 100 else 200.0)
    scores = torch.rand(n, generator=g, dtype=F64)
    if seed % 2:
        scores = (scores * 5).round() / 5  # many ties
    thr = [0.5, 0.3, 0.7, 0.5, 0.5, 0.1, 0.6, 0.4][seed]
    kept = D.nms(boxes, scores, thr)
    assert kept.dtype == torch.long
    assert kept.tolist() == nms_ref(boxes.tolist(), scores.tolist(), thr)
    assert (scores[kept][1:] <= scores[kept][:-1]).all(), "kept indices must be sorted by score"


def test_nms_threshold_is_strict_and_ties_keep_the_lower_index() -> None:
    """seed 9.2: boxes with IoU > 0.5 are removed; IoU exactly 0.5 survives; equal scores -> lower index first."""
    boxes = torch.tensor([[0, 0, 2, 1], [0, 0, 1, 1], [0, 0, 2, 1], [5, 5, 6, 6]], dtype=F64)
    scores = torch.tensor([0.9, 0.8, 0.9, 0.1], dtype=F64)
    assert D.box_iou(boxes[:1], boxes[1:2]).item() == 0.5
    assert D.nms(boxes, scores, 0.5).tolist() == [0, 1, 3]
    assert D.nms(boxes, scores, 0.49).tolist() == [0, 3]
    labels = torch.tensor([0, 1, 1, 0])
    assert D.batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 2, 1, 3]
    assert D.batched_nms(boxes, scores, labels, 0.4).tolist() == [0, 2, 3]


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_matches_the_python_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(200 + seed)
    n = 60 + 150 * seed
    boxes = random_boxes(g, n, size=80.0)
    scores = (torch.rand(n, generator=g, dtype=F64) * 10).round()
    labels = torch.randint(0, 3, (n,), generator=g)
    kept = D.batched_nms(boxes, scores, labels, 0.45)
    assert kept.tolist() == nms_ref(boxes.tolist(), scores.tolist(), 0.45, labels.tolist())


box_strategy = st.lists(
    st.tuples(*[st.integers(0, 6)] * 4).map(
        lambda t: (min(t[0], t[2]), min(t[1], t[3]), max(t[0], t[2]), max(t[1], t[3]))
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(box_strategy, st.data(), st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_nms_on_degenerate_boxes(boxes, data, thr) -> None:
    """Zero-area boxes, identical boxes, no boxes, one box, tied scores, on a 7x7 integer grid."""
    scores = data.draw(st.lists(st.sampled_from([0.1, 0.5, 0.9]), min_size=len(boxes), max_size=len(boxes)))
    b = torch.tensor(boxes, dtype=F64).reshape(-1, 4)
    s = torch.tensor(scores, dtype=F64)
    kept = D.nms(b, s, thr).tolist()
    assert kept == nms_ref(b.tolist(), scores, thr)
    iou = D.box_iou(b, b)
    assert ((iou >= 0) & (iou <= 1)).all() and torch.equal(iou, iou.T)
    area = D.box_area(b)
    assert (iou.diagonal()[area > 0] == 1).all() and (iou.diagonal()[area == 0] == 0).all()
    assert set(kept) >= set(torch.nonzero(area == 0).flatten().tolist()), "empty boxes overlap nothing"
    if len(boxes) == 1:
        assert kept == [0]
    if len(boxes) > 1 and len(set(boxes)) == 1 and area[0] > 0 and thr < 1:
        assert kept == [int(np.argmax(scores))], "identical boxes: only the first best-scoring one stays"


def test_nms_validates() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        D.nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores must have shape"):
        D.nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="floating"):
        D.box_iou(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="iou_threshold"):
        D.nms(torch.zeros(3, 4), torch.zeros(3), 1.5)


# -------------------------------------------------------------------- anchors and deltas
def test_make_anchors_nine_per_position() -> None:
    """seed 9.8: 9 anchors = 3 sizes x 3 ratios at every position of the feature map."""
    a = D.make_anchors((3, 4), stride=16, sizes=(32, 64, 128), ratios=(0.5, 1, 2), dtype=F64)
    assert a.shape == (3 * 4 * 9, 4)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    row = (1 * 4 + 2) * 9  # position (i=1, j=2)
    torch.testing.assert_close(
        (a[row : row + 9, :2] + a[row : row + 9, 2:]) / 2, torch.tensor([[40.0, 24.0]] * 9, dtype=F64)
    )
    for k, (s, r) in enumerate([(s, r) for s in (32, 64, 128) for r in (0.5, 1, 2)]):
        torch.testing.assert_close(w[row + k], torch.tensor(s / math.sqrt(r), dtype=F64))
        torch.testing.assert_close(h[row + k] / w[row + k], torch.tensor(float(r), dtype=F64))
    torch.testing.assert_close(
        w * h, torch.tensor([32.0**2, 32**2, 32**2, 64**2, 64**2, 64**2, 128**2, 128**2, 128**2], dtype=F64).repeat(12)
    )
    assert D.make_anchors(5, 8).shape == (225, 4)
    with pytest.raises(ValueError, match="positive"):
        D.make_anchors(2, 8, sizes=(0,))


@pytest.mark.parametrize("seed", range(4))
def test_encode_decode_are_inverses(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    anchors, gt = random_boxes(g, 50, min_wh=0.5), random_boxes(g, 50, min_wh=0.5)
    weights = [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)][seed % 2]
    deltas = D.encode_boxes(gt, anchors, weights)
    torch.testing.assert_close(D.decode_boxes(deltas, anchors, weights), gt, rtol=0, atol=1e-10)
    d = torch.randn(50, 4, generator=g, dtype=F64)
    torch.testing.assert_close(
        D.encode_boxes(D.decode_boxes(d, anchors, weights), anchors, weights), d, rtol=0, atol=1e-10
    )
    # the correction by hand for one box: centre shifted by t * anchor size, size scaled by exp(t)
    a, t = anchors[0], d[0] / torch.tensor(weights, dtype=F64)
    wa, ha = a[2] - a[0], a[3] - a[1]
    cx, cy = (a[0] + a[2]) / 2 + t[0] * wa, (a[1] + a[3]) / 2 + t[1] * ha
    w, h = wa * torch.exp(t[2]), ha * torch.exp(t[3])
    torch.testing.assert_close(
        D.decode_boxes(d[:1], anchors[:1], weights)[0], torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    )
    with pytest.raises(ValueError, match="positive width"):
        D.encode_boxes(torch.tensor([[0.0, 0, 0, 1]]), torch.tensor([[0.0, 0, 1, 1]]))


def match_ref(anchors, gt, fg, bg, low_quality):
    labels, matched = [], []
    ious = [[iou_ref(a, g) for g in gt] for a in anchors]
    for row in ious:
        if not gt:
            labels.append(0)
            matched.append(-1)
            continue
        best = max(row)
        matched.append(row.index(best))
        labels.append(1 if best >= fg else 0 if best < bg else -1)
    if low_quality:
        for j in range(len(gt)):
            col = [row[j] for row in ious]
            if max(col, default=0) > 0:
                for i, v in enumerate(col):
                    if v == max(col):
                        labels[i] = 1
    return labels, matched


@pytest.mark.parametrize("seed", range(6))
def test_match_anchors_matches_loops(seed: int) -> None:
    g = torch.Generator().manual_seed(300 + seed)
    anchors = D.make_anchors((4, 4), 8, sizes=(8, 16), ratios=(0.5, 1.0, 2.0), dtype=F64)
    gt = random_boxes(g, seed, size=30.0, min_wh=2.0)  # 0..5 objects
    if seed == 5:
        gt[1] = anchors[7]  # an exact anchor
    low = seed % 2 == 0
    labels, matched = D.match_anchors(anchors, gt, 0.6, 0.3, allow_low_quality=low)
    ref_labels, ref_matched = match_ref(anchors.tolist(), gt.tolist(), 0.6, 0.3, low)
    assert labels.tolist() == ref_labels and matched.tolist() == ref_matched
    if gt.shape[0] and low:
        assert (labels == 1).sum() >= 1


# ------------------------------------------------------------------------------- RoI pooling
def c_round(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def roi_pool_ref(features, rois, oh, ow, scale):
    n, c, h, w = features.shape
    out = torch.zeros(len(rois), c, oh, ow, dtype=features.dtype)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sx, sy, ex, ey = c_round(x1 * scale), c_round(y1 * scale), c_round(x2 * scale), c_round(y2 * scale)
        rw, rh = max(ex - sx + 1, 1), max(ey - sy + 1, 1)
        for ph in range(oh):
            for pw in range(ow):
                hs = min(max(math.floor(ph * rh / oh) + sy, 0), h)
                he = min(max(math.ceil((ph + 1) * rh / oh) + sy, 0), h)
                ws = min(max(math.floor(pw * rw / ow) + sx, 0), w)
                we = min(max(math.ceil((pw + 1) * rw / ow) + sx, 0), w)
                for ch in range(c):
                    vals = [features[int(b), ch, i, j].item() for i in range(hs, he) for j in range(ws, we)]
                    out[r, ch, ph, pw] = max(vals) if vals else 0.0
    return out


def bilinear_ref(fmap, y, x):
    h, w = fmap.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yl = yh = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xl = xh = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    f = fmap.tolist()
    return (1 - ly) * (1 - lx) * f[yl][xl] + (1 - ly) * lx * f[yl][xh] + ly * (1 - lx) * f[yh][xl] + ly * lx * f[yh][xh]


def roi_align_ref(features, rois, oh, ow, scale, sr, aligned):
    n, c, h, w = features.shape
    out = torch.zeros(len(rois), c, oh, ow, dtype=features.dtype)
    off = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        for ch in range(c):
            for ph in range(oh):
                for pw in range(ow):
                    total = 0.0
                    for iy in range(sr):
                        for ix in range(sr):
                            y = y1 + ph * bh + (iy + 0.5) * bh / sr
                            x = x1 + pw * bw + (ix + 0.5) * bw / sr
                            total += bilinear_ref(features[int(b), ch], y, x)
                    out[r, ch, ph, pw] = total / (sr * sr)
    return out


def random_rois(g: torch.Generator, r: int, n: int, extent: float) -> torch.Tensor:
    xy = torch.rand(r, 2, generator=g, dtype=F64) * extent * 1.1 - extent * 0.1  # some start outside
    wh = torch.rand(r, 2, generator=g, dtype=F64) * extent * 0.7
    return torch.cat([torch.randint(0, n, (r, 1), generator=g).double(), xy, xy + wh], 1)


@pytest.mark.parametrize("seed", range(4))
def test_roi_pool_matches_loops(seed: int) -> None:
    g = torch.Generator().manual_seed(400 + seed)
    n, c, h, w = 2, 2, 5 + seed, 7
    scale = [1.0, 0.5, 0.25, 1 / 3][seed]
    features = torch.randn(n, c, h, w, generator=g, dtype=F64)
    rois = random_rois(g, 6, n, w / scale)
    rois[0, 1:] = torch.tensor([-50.0, -50.0, -40.0, -40.0])  # wholly outside: empty bins give 0
    oh, ow = [(2, 2), (3, 2), (1, 4), (4, 3)][seed]
    got = D.roi_pool(features, rois, (oh, ow), scale)
    torch.testing.assert_close(got, roi_pool_ref(features, rois, oh, ow, scale), rtol=0, atol=0)
    as_list = [rois[rois[:, 0] == i, 1:] for i in range(n)]
    order = torch.cat([torch.nonzero(rois[:, 0] == i).flatten() for i in range(n)])
    torch.testing.assert_close(D.roi_pool(features, as_list, (oh, ow), scale), got[order])


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_roi_align_matches_loops_and_gradcheck(seed: int, aligned: bool) -> None:
    g = torch.Generator().manual_seed(500 + seed)
    n, c, h, w = 2, 2, 6, 5 + seed
    scale, sr = [1.0, 0.5, 0.25][seed], [1, 2, 3][seed]
    features = torch.randn(n, c, h, w, generator=g, dtype=F64)
    rois = random_rois(g, 5, n, w / scale)
    oh, ow = [(2, 2), (3, 2), (2, 3)][seed]
    got = D.roi_align(features, rois, (oh, ow), scale, sr, aligned)
    torch.testing.assert_close(got, roi_align_ref(features, rois, oh, ow, scale, sr, aligned), rtol=1e-12, atol=1e-12)
    x = features.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: D.roi_align(f, rois, (oh, ow), scale, sr, aligned), (x,))


def test_roi_ops_validate_and_handle_no_rois() -> None:
    f = torch.randn(1, 2, 4, 4)
    assert D.roi_pool(f, torch.zeros(0, 5), 2).shape == (0, 2, 2, 2)
    assert D.roi_align(f, [torch.zeros(0, 4)], 3).shape == (0, 2, 3, 3)
    with pytest.raises(ValueError, match="batch indices"):
        D.roi_pool(f, torch.tensor([[1.0, 0, 0, 2, 2]]), 2)
    with pytest.raises(ValueError, match=r"\(R, 5\)"):
        D.roi_align(f, torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="sampling_ratio"):
        D.roi_align(f, torch.zeros(0, 5), 2, sampling_ratio=0)


# -------------------------------------------------------------------------------- heads
def test_rpn_and_fast_rcnn_heads_shapes_and_anchor_order() -> None:
    torch.manual_seed(0)
    head = D.RPNHead(in_channels=8, num_anchors=9)
    feats = torch.randn(2, 8, 3, 5)
    obj, deltas = head(feats)
    assert obj.shape == (2, 3 * 5 * 9) and deltas.shape == (2, 3 * 5 * 9, 4)
    t = torch.relu(head.conv(feats))
    raw_obj, raw_d = head.objectness(t), head.deltas(t)  # (N, A, H, W), (N, 4A, H, W)
    i, j, a = 2, 3, 7
    row = (i * 5 + j) * 9 + a  # the make_anchors order
    torch.testing.assert_close(obj[1, row], raw_obj[1, a, i, j])
    torch.testing.assert_close(deltas[1, row], raw_d[1, 4 * a : 4 * a + 4, i, j])
    anchors = D.make_anchors((3, 5), 16, sizes=(16, 32, 64))
    props = D.generate_proposals(obj, deltas, anchors, (48, 80), pre_nms_top_n=50, post_nms_top_n=10)
    assert len(props) == 2 and all(b.shape[0] <= 10 and b.shape[0] == s.shape[0] for b, s in props)
    for b, s in props:
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= 80).all() and (s[1:] <= s[:-1]).all()
        assert (D.box_iou(b, b).triu(1) <= 0.7).all()
    roi_head = D.FastRCNNHead(in_channels=8, num_classes=10, output_size=4, hidden=32)
    pooled = D.roi_align(feats, [props[0][0], props[1][0]], 4, spatial_scale=1 / 16)
    logits, box_deltas = roi_head(pooled)
    assert logits.shape == (pooled.shape[0], 11) and box_deltas.shape == (pooled.shape[0], 11, 4)
    with pytest.raises(ValueError, match="FastRCNNHead expects"):
        roi_head(torch.randn(3, 8, 5, 5))


# --------------------------------------------------------------------------------- YOLO
def yolo_targets_ref(boxes, labels, S, B, C):
    t = torch.zeros(S, S, 5 * B + C, dtype=F64)
    best = {}
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if (row, col) not in best or w * h > best[(row, col)][0]:
            best[(row, col)] = (w * h, k, cx * S - col, cy * S - row, math.sqrt(w), math.sqrt(h))
    for (row, col), (_, k, x, y, sw, sh) in best.items():
        for b in range(B):
            t[row, col, 5 * b : 5 * b + 5] = torch.tensor([x, y, sw, sh, 1.0], dtype=F64)
        t[row, col, 5 * B + labels[k]] = 1.0
    return t


def yolo_loss_ref(pred, target, B, lc=5.0, ln=0.5):
    n, S = pred.shape[:2]
    total = 0.0
    for i in range(n):
        for r in range(S):
            for c in range(S):
                p, t = pred[i, r, c].tolist(), target[i, r, c].tolist()
                has = t[4] == 1.0
                gt_box = [
                    (c + t[0]) / S - t[2] ** 2 / 2,
                    (r + t[1]) / S - t[3] ** 2 / 2,
                    (c + t[0]) / S + t[2] ** 2 / 2,
                    (r + t[1]) / S + t[3] ** 2 / 2,
                ]
                ious = []
                for b in range(B):
                    x, y, sw, sh = p[5 * b : 5 * b + 4]
                    box = [
                        (c + x) / S - sw**2 / 2,
                        (r + y) / S - sh**2 / 2,
                        (c + x) / S + sw**2 / 2,
                        (r + y) / S + sh**2 / 2,
                    ]
                    ious.append(iou_ref(box, gt_box))
                resp = ious.index(max(ious)) if has else -1
                for b in range(B):
                    conf = p[5 * b + 4]
                    if b == resp:
                        total += lc * sum((p[5 * b + q] - t[5 * b + q]) ** 2 for q in range(4))
                        total += (conf - ious[b]) ** 2
                    else:
                        total += ln * conf**2
                if has:
                    total += sum((p[q] - t[q]) ** 2 for q in range(5 * B, len(p)))
    return total / n


@pytest.mark.parametrize("seed", range(5))
def test_yolo_targets_and_loss_match_loops(seed: int) -> None:
    """seed 9.9: an S x S grid, B boxes per cell with (x, y, sqrt w, sqrt h, confidence), C classes per cell."""
    g = torch.Generator().manual_seed(600 + seed)
    S, B, C = [(4, 2, 3), (7, 2, 20), (3, 1, 2), (5, 3, 4), (2, 2, 1)][seed]
    n = 2
    boxes, labels = [], []
    for _ in range(n):
        k = int(torch.randint(0, 6, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g, dtype=F64) * 0.7
        wh = torch.rand(k, 2, generator=g, dtype=F64) * 0.3 + 0.01
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.randint(0, C, (k,), generator=g))
    target = D.yolo_targets(boxes, labels, S, B, C)
    assert target.shape == (n, S, S, 5 * B + C)
    for i in range(n):
        torch.testing.assert_close(target[i], yolo_targets_ref(boxes[i].tolist(), labels[i].tolist(), S, B, C))
    pred = torch.randn(n, S, S, 5 * B + C, generator=g, dtype=F64) * 0.5 + 0.5
    pred[..., : 5 * B] = target[..., : 5 * B] + 0.1 * torch.randn(
        n, S, S, 5 * B, generator=g, dtype=F64
    )  # near the truth
    pred.requires_grad_(True)
    loss = D.yolo_loss(pred, target, B=B)
    assert loss.item() == pytest.approx(yolo_loss_ref(pred.detach(), target, B), rel=1e-10)
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_yolo_decode_recovers_the_targets() -> None:
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.4], [0.55, 0.5, 0.95, 0.9]], dtype=F64)
    labels = torch.tensor([2, 0])
    target = D.yolo_targets([boxes], [labels], 4, 2, 3)
    [out] = D.yolo_decode(target, B=2, score_threshold=0.5)
    assert out["labels"].tolist() == [2, 0]
    torch.testing.assert_close(out["boxes"], boxes)
    torch.testing.assert_close(out["scores"], torch.ones(2, dtype=F64))
    assert D.yolo_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 3, 2, 2).abs().sum() == 0
    with pytest.raises(ValueError, match="B mismatch"):
        D.yolo_loss(target, target, B=1)
    with pytest.raises(ValueError, match="fractions"):
        D.yolo_targets(boxes * 10, labels, 4, 2, 3)
    head = D.YOLOHead(7, 2, 20, in_channels=16)
    assert head(torch.randn(2, 16, 28, 28)).shape == (2, 7, 7, 30)


# ----------------------------------------------------------------------------- AP and mAP
def voc_ap_ref(scores, tps, num_gt) -> float:
    """All-point interpolated AP as a loop: for each recall step, the best precision at that recall or beyond."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = fp = 0
    points = []
    for i in order:
        tp, fp = tp + tps[i], fp + (not tps[i])
        points.append((tp / num_gt, tp / (tp + fp)))
    ap, prev = 0.0, 0.0
    for r, _ in points:
        if r > prev:
            ap += (r - prev) * max(p for rr, p in points if rr >= r)
            prev = r
    return ap


@pytest.mark.parametrize("seed", range(8))
def test_average_precision_voc_matches_loop(seed: int) -> None:
    rng = random.Random(seed)
    d = rng.randint(0, 30)
    scores = [round(rng.random(), 1) for _ in range(d)]  # ties
    tps = [rng.random() < 0.5 for _ in range(d)]
    num_gt = sum(tps) + rng.randint(0, 4)
    if num_gt == 0:
        num_gt = 1
    got = D.average_precision(torch.tensor(scores), torch.tensor(tps, dtype=torch.bool), num_gt)
    assert got == pytest.approx(voc_ap_ref(scores, tps, num_gt), abs=1e-12)


def test_average_precision_by_hand_and_edge_cases() -> None:
    """seed 9.4: the PR curve's area. TP, FP, TP of 3 objects: P = 1, 1/2, 2/3 at R = 1/3, 1/3, 2/3 -> AP = 1/3 + 1/3 * 2/3."""
    s, tp = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True])
    assert D.average_precision(s, tp, 3) == pytest.approx(1 / 3 + 2 / 9)
    coco = D.average_precision(s, tp, 3, method="coco")  # recall thresholds 0..0.33 -> 1, 0.34..0.66 -> 2/3, beyond 0
    assert coco == pytest.approx((34 * 1.0 + 33 * 2 / 3) / 101)
    assert D.average_precision(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 2) == 0.0
    assert math.isnan(D.average_precision(s, torch.zeros(3, dtype=torch.bool), 0))
    assert D.average_precision(torch.tensor([0.5]), torch.tensor([True]), 1) == 1.0
    with pytest.raises(ValueError, match="true positives"):
        D.average_precision(s, torch.ones(3, dtype=torch.bool), 2)


def random_dataset(seed: int, n_images: int = 12, n_classes: int = 3, extent: float = 300.0):
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 6))
        xy = rng.uniform(0, extent, (g, 2))
        wh = np.exp(rng.uniform(np.log(4), np.log(180), (g, 2)))  # small, medium and large objects
        gb = np.concatenate([xy, xy + wh], 1)
        gl = rng.integers(0, n_classes, g)
        keep = rng.random(g) < 0.8
        jitter = rng.normal(0, 0.12, (g, 4)) * np.concatenate([wh, wh], 1)
        db = (gb + jitter)[keep]
        dl = np.where(rng.random(g) < 0.9, gl, rng.integers(0, n_classes, g))[keep]
        k = int(rng.integers(0, 5))  # false alarms
        fxy = rng.uniform(0, extent, (k, 2))
        db = np.concatenate([db, np.concatenate([fxy, fxy + rng.uniform(5, 100, (k, 2))], 1)])
        dl = np.concatenate([dl, rng.integers(0, n_classes, k)])
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 0.5)
        ds = np.round(rng.random(len(db)), 2)  # ties across images
        dets.append({"boxes": torch.tensor(db), "scores": torch.tensor(ds), "labels": torch.tensor(dl)})
        gts.append({"boxes": torch.tensor(gb), "labels": torch.tensor(gl)})
    return dets, gts


def coco_eval(dets, gts, n_classes: int, max_dets=(1, 10, 100)):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        x1, y1, x2, y2 = (float(v) for v in b)
        return [x1, y1, x2 - x1, y2 - y1]

    anns = []
    for i, gt in enumerate(gts):
        for b, lab in zip(gt["boxes"], gt["labels"], strict=True):
            bb = xywh(b)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": int(lab) + 1,
                    "bbox": bb,
                    "area": bb[2] * bb[3],
                    "iscrowd": 0,
                }
            )
    results = [
        {"image_id": i, "category_id": int(lab) + 1, "bbox": xywh(b), "score": float(s)}
        for i, det in enumerate(dets)
        for b, s, lab in zip(det["boxes"], det["scores"], det["labels"], strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in range(len(gts))],
            "annotations": anns,
            "categories": [{"id": c + 1} for c in range(n_classes)],
        }
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"]  # (T, R, K, A, M)


def coco_number(precision, t=None, area=0, m=-1) -> float:
    p = precision[:, :, :, area, m] if t is None else precision[[t], :, :, area, m]
    return float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")


@pytest.mark.parametrize("seed", range(4))
def test_coco_style_map_matches_pycocotools(seed: int) -> None:
    dets, gts = random_dataset(seed)
    precision = coco_eval(dets, gts, 3, max_dets=(1, 3, 100))
    thr = D.COCO_IOU_THRESHOLDS
    ours = lambda **kw: D.mean_average_precision(dets, gts, kw.pop("iou", thr), style="coco", **kw)  # noqa: E731
    assert ours() == pytest.approx(coco_number(precision), abs=1e-12)  # AP@[.5:.95]
    assert ours(iou=0.5) == pytest.approx(coco_number(precision, t=0), abs=1e-12)  # AP@.5
    assert ours(iou=0.75) == pytest.approx(coco_number(precision, t=5), abs=1e-12)  # AP@.75
    for a, rng in enumerate([(0, 32**2), (32**2, 96**2), (96**2, 1e10)], start=1):  # small, medium, large
        expected = coco_number(precision, area=a)
        got = ours(area_range=rng)
        assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected, abs=1e-12)
    for m, k in enumerate((1, 3)):  # maxDets
        assert ours(max_detections=k) == pytest.approx(coco_number(precision, m=m), abs=1e-12)


def voc_map_ref(dets, gts, thr):
    """VOC devkit matching as loops: global ranking, each detection takes its max-IoU ground truth if > thr and free."""
    classes = sorted({int(c) for g in gts for c in g["labels"]})
    aps = []
    for c in classes:
        rows = [
            (float(s), i, b.tolist())
            for i, d in enumerate(dets)
            for b, s, lab in zip(d["boxes"], d["scores"], d["labels"])
            if lab == c
        ]
        rows.sort(key=lambda r: -r[0])  # stable: image order, then input order
        gt_c = {i: [b.tolist() for b, lab in zip(g["boxes"], g["labels"]) if lab == c] for i, g in enumerate(gts)}
        taken = {i: [False] * len(v) for i, v in gt_c.items()}
        tps = []
        for _, i, b in rows:
            ious = [iou_ref(b, g) for g in gt_c[i]]
            j = int(np.argmax(ious)) if ious else -1
            ok = j >= 0 and ious[j] > thr and not taken[i][j]
            if ok:
                taken[i][j] = True
            tps.append(ok)
        aps.append(voc_ap_ref([r[0] for r in rows], tps, sum(len(v) for v in gt_c.values())))
    return float(np.mean(aps))


@pytest.mark.parametrize("seed", range(4))
def test_voc_map_matches_loops(seed: int) -> None:
    dets, gts = random_dataset(10 + seed)
    for thr in (0.5, 0.7):
        assert D.mean_average_precision(dets, gts, thr) == pytest.approx(voc_map_ref(dets, gts, thr), abs=1e-12)


def test_map_is_averaged_over_classes_and_handles_empty_images() -> None:
    """seed 9.4 corrected: mAP averages AP over classes, not over objects."""
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    gts = [
        {"boxes": box.repeat(3, 1) + torch.tensor([[0.0], [20.0], [40.0]]), "labels": torch.tensor([0, 0, 0])},
        {"boxes": box, "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    dets = [
        {"boxes": gts[0]["boxes"], "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 0, 0])},
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)},
        {"boxes": box, "scores": torch.tensor([0.5]), "labels": torch.tensor([2])},
    ]
    assert D.mean_average_precision(dets, gts) == pytest.approx(
        0.5
    )  # class 0: AP 1, class 1: AP 0; class 2 has no truth
    per_class = D.average_precision_per_class(dets, gts)
    assert per_class[0][0] == 1.0 and per_class[1][0] == 0.0 and math.isnan(per_class[2][0])
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    assert math.isnan(
        D.mean_average_precision(
            [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}], empty
        )
    )
    one = [{"boxes": box, "labels": torch.tensor([0])}]
    assert (
        D.mean_average_precision([{"boxes": box, "scores": torch.tensor([1.0]), "labels": torch.tensor([0])}], one)
        == 1.0
    )
    # IoU exactly 0.5: not correct under VOC's "> t" (seed 9.3), correct under COCO's ">= t"
    half = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 5.0]]), "scores": torch.tensor([1.0]), "labels": torch.tensor([0])}
    assert D.mean_average_precision([half], one, 0.5) == 0.0
    assert D.mean_average_precision([half], one, 0.5, style="coco") == pytest.approx(
        1.0
    )  # COCO divides by tp + fp + eps
    with pytest.raises(ValueError, match="one per image"):
        D.mean_average_precision(dets[:2], gts)


# ----------------------------------------------------------------------------- two-stage training
def smooth_l1_ref(x: float, beta: float) -> float:
    return 0.5 * x * x / beta if abs(x) < beta else abs(x) - 0.5 * beta


@pytest.mark.parametrize("beta", [1.0, 1.0 / 9, 0.5])
def test_smooth_l1_matches_the_formula_and_torch(beta):
    x = torch.randn(50, generator=torch.Generator().manual_seed(3), dtype=F64) * 2
    got = D.smooth_l1(x, beta)
    assert torch.allclose(got, torch.tensor([smooth_l1_ref(v, beta) for v in x.tolist()], dtype=F64))
    assert torch.allclose(got, torch.nn.functional.smooth_l1_loss(x, torch.zeros_like(x), beta=beta, reduction="none"))
    assert torch.equal(D.smooth_l1(x, 0.0), x.abs())


@pytest.mark.parametrize("seed", range(4))
def test_sample_labels_is_balanced_and_draws_only_allowed_items(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(-1, 3, (300,), generator=g)  # -1 ignored, 0 background, 1..2 objects
    n_obj, n_bg = int((labels > 0).sum()), int((labels == 0).sum())
    for batch, frac in [(64, 0.25), (256, 0.5), (1000, 0.5), (0, 0.5)]:
        pos, neg = D.sample_labels(labels, batch, frac, g)
        assert not (pos & neg).any()
        assert (labels[pos] > 0).all() and (labels[neg] == 0).all()
        want_pos = min(n_obj, round(batch * frac))
        assert int(pos.sum()) == want_pos
        assert int(neg.sum()) == min(n_bg, batch - want_pos)
    # reproducible with the same generator state, and not always the same subset
    a = D.sample_labels(labels, 32, 0.5, torch.Generator().manual_seed(1))[0]
    b = D.sample_labels(labels, 32, 0.5, torch.Generator().manual_seed(1))[0]
    c = D.sample_labels(labels, 32, 0.5, torch.Generator().manual_seed(2))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def _random_gt(g, n, size=64.0):
    xy = torch.rand(n, 2, generator=g, dtype=F64) * size * 0.7
    wh = torch.rand(n, 2, generator=g, dtype=F64) * size * 0.3 + 6
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("seed", range(3))
def test_rpn_loss_matches_a_loop_over_the_sampled_anchors(seed):
    g = torch.Generator().manual_seed(seed)
    anchors = D.make_anchors((4, 4), 16, sizes=(16.0, 32.0), ratios=(0.5, 1.0, 2.0), dtype=F64)
    n, a = 2, anchors.shape[0]
    obj = torch.randn(n, a, generator=g, dtype=F64, requires_grad=True)
    deltas = (0.3 * torch.randn(n, a, 4, generator=g, dtype=F64)).requires_grad_()
    gts = [_random_gt(g, 3), _random_gt(g, 1)]
    lo, lb = D.rpn_loss(obj, deltas, anchors, gts, batch_size_per_image=40, generator=torch.Generator().manual_seed(9))
    # the same draw, then the losses term by term
    g2 = torch.Generator().manual_seed(9)
    bce, box, count = 0.0, 0.0, 0
    for i in range(n):
        labels, matched = D.match_anchors(anchors, gts[i], 0.7, 0.3)
        pos, neg = D.sample_labels(labels, 40, 0.5, g2)
        for j in range(a):
            if not (pos[j] or neg[j]):
                continue
            count += 1
            p = 1 / (1 + math.exp(-obj[i, j].item()))
            bce += -math.log(p) if pos[j] else -math.log(1 - p)
            if pos[j]:
                gx1, gy1, gx2, gy2 = gts[i][matched[j]].tolist()
                ax1, ay1, ax2, ay2 = anchors[j].tolist()
                wa, ha = ax2 - ax1, ay2 - ay1
                t = [((gx1 + gx2) / 2 - (ax1 + ax2) / 2) / wa, ((gy1 + gy2) / 2 - (ay1 + ay2) / 2) / ha,
                     math.log((gx2 - gx1) / wa), math.log((gy2 - gy1) / ha)]
                box += sum(smooth_l1_ref(deltas[i, j, k].item() - t[k], 1 / 9) for k in range(4))
    assert count > 0
    assert lo.item() == pytest.approx(bce / count, rel=1e-10)
    assert lb.item() == pytest.approx(box / count, rel=1e-10, abs=1e-12)
    (lo + lb).backward()
    assert obj.grad is not None and deltas.grad is not None


def test_rpn_loss_without_objects_is_pure_background_and_differentiable():
    anchors = D.make_anchors(2, 8, sizes=(8.0,), ratios=(1.0,), dtype=F64)
    obj = torch.zeros(1, anchors.shape[0], dtype=F64, requires_grad=True)
    deltas = torch.zeros(1, anchors.shape[0], 4, dtype=F64, requires_grad=True)
    lo, lb = D.rpn_loss(obj, deltas, anchors, [torch.zeros(0, 4, dtype=F64)])
    assert lo.item() == pytest.approx(math.log(2)) and lb.item() == 0.0
    (lo + lb).backward()
    with pytest.raises(ValueError):
        D.rpn_loss(obj, deltas, anchors, [])


@pytest.mark.parametrize("seed", range(3))
def test_assign_proposals_labels_and_targets_follow_the_rules(seed):
    g = torch.Generator().manual_seed(seed)
    gts = [_random_gt(g, 2), _random_gt(g, 3)]
    labels_in = [torch.tensor([0, 4]), torch.tensor([1, 2, 3])]
    props = [torch.cat([gt + torch.randn(gt.shape, generator=g, dtype=F64) * 3 for _ in range(5)] + [_random_gt(g, 20)])
             for gt in gts]
    props = [torch.cat([p[:, :2], torch.maximum(p[:, 2:], p[:, :2] + 1)], 1) for p in props]
    rois, labels, targets = D.assign_proposals(props, gts, labels_in, batch_size_per_image=16,
                                               generator=torch.Generator().manual_seed(0))
    assert rois.shape[1] == 5 and labels.shape == (rois.shape[0],) and targets.shape == (rois.shape[0], 4)
    for r in range(rois.shape[0]):
        i = int(rois[r, 0])
        ious = [iou_ref(rois[r, 1:].tolist(), b) for b in gts[i].tolist()]
        best = max(range(len(ious)), key=lambda j: (ious[j], -j))
        if labels[r] > 0:
            assert ious[best] >= 0.5 and labels[r] == labels_in[i][best] + 1
            back = D.decode_boxes(targets[r : r + 1], rois[r : r + 1, 1:], (10.0, 10.0, 5.0, 5.0))
            assert torch.allclose(back[0], gts[i][best], atol=1e-9)
        else:
            assert ious[best] < 0.5 and (targets[r] == 0).all()
    per_image = torch.bincount(rois[:, 0].long(), minlength=2)
    assert (per_image <= 16).all()
    for i in range(2):  # at most 25 % objects per image, and each gt (added as a proposal) can be drawn
        assert int((labels[rois[:, 0] == i] > 0).sum()) <= 4


def test_fast_rcnn_loss_matches_cross_entropy_and_smooth_l1_by_hand():
    g = torch.Generator().manual_seed(5)
    r, k = 12, 3
    logits = torch.randn(r, k + 1, generator=g, dtype=F64, requires_grad=True)
    deltas = torch.randn(r, k + 1, 4, generator=g, dtype=F64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 0, 1, 3, 2, 0, 1, 0])
    targets = torch.randn(r, 4, generator=g, dtype=F64) * (labels > 0)[:, None]
    lc, lb = D.fast_rcnn_loss(logits, deltas, labels, targets)
    ce = sum(-torch.log_softmax(logits[i], 0)[labels[i]].item() for i in range(r)) / r
    assert lc.item() == pytest.approx(ce, rel=1e-12)
    assert lc.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-12)
    box = sum(smooth_l1_ref(deltas[i, labels[i], c].item() - targets[i, c].item(), 1.0)
              for i in range(r) if labels[i] > 0 for c in range(4)) / r
    assert lb.item() == pytest.approx(box, rel=1e-12)
    (lc + lb).backward()
    assert (deltas.grad[labels == 0] == 0).all(), "background RoIs train no box deltas"
    assert (deltas.grad[torch.arange(r), 0] == 0).all()
    e = D.fast_rcnn_loss(logits[:0], deltas[:0], labels[:0], targets[:0])
    assert e[0].item() == 0 and e[1].item() == 0
    with pytest.raises(ValueError):
        D.fast_rcnn_loss(logits, deltas, labels[:3], targets)


def test_fast_rcnn_detections_decode_score_and_suppress():
    rois = torch.tensor([[0, 10, 10, 30, 30], [0, 11, 11, 31, 31], [1, 0, 0, 20, 40.0]], dtype=F64)
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 6.0]], dtype=F64)
    deltas = torch.zeros(3, 3, 4, dtype=F64)
    deltas[2, 2] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # shift by w / 10 = 2 px in x
    out = D.fast_rcnn_detections(logits, deltas, rois, (64, 64), 2, score_threshold=0.5)
    assert len(out) == 2
    assert out[0]["labels"].tolist() == [0] and torch.allclose(out[0]["boxes"], rois[:1, 1:]), "the overlapping RoI is suppressed"
    p = torch.softmax(logits[0], 0)[1].item()
    assert out[0]["scores"].item() == pytest.approx(p)
    assert out[1]["labels"].tolist() == [1]
    assert torch.allclose(out[1]["boxes"][0], torch.tensor([2.0, 0, 22, 40], dtype=F64))


# ============================================================================================
# complete detectors
# ============================================================================================
@pytest.fixture(scope="module")
def tiny_scenes():
    from course_lib.data import make_digit_scenes

    return D.scene_tensors(make_digit_scenes(24, 32, (1, 2), scale=(0.6, 1.0), split="train", seed=3))


def test_small_backbone_shape_and_receptive_field():
    from course_lib.conv import receptive_field

    net = D.small_backbone(1, 16).eval()
    assert net(torch.zeros(2, 1, 64, 48)).shape == (2, 16, 16, 12)
    # measured: the input pixels with a gradient on one output position (positive weights, max-pools
    # made average pools so that every pixel of a window passes gradient) = the lecture-03 arithmetic
    for i, m in enumerate(net):
        if isinstance(m, torch.nn.MaxPool2d):
            net[i] = torch.nn.AvgPool2d(2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(0.01)
    x = torch.ones(1, 1, 160, 160, requires_grad=True)
    net(x)[0, :, 20, 20].sum().backward()
    rows = (x.grad[0, 0].abs() > 0).any(1).nonzero()
    arithmetic = receptive_field([(3, 1, 1), (2, 2, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1), (3, 1, 2), (3, 1, 4)])[-1]
    assert arithmetic == 66 and int(rows.max() - rows.min() + 1) == arithmetic
    with pytest.raises(ValueError, match="width"):
        D.small_backbone(1, 1)


@pytest.mark.parametrize("kind", ["two-stage", "yolo"])
def test_detectors_train_decode_and_evaluate(kind, tiny_scenes):
    """The loss is a finite scalar that reaches every parameter, a few dozen steps lower it, and the
    detections come back in pixels inside the image; evaluate_detector's mAP is the library's."""
    torch.manual_seed(0)
    model = (D.TwoStageDetector(10, 32, width=16, hidden=32) if kind == "two-stage"
             else D.YOLODetector(10, 32, S=4, width=16, hidden=32))
    images, boxes, labels = tiny_scenes
    loss = model.loss(images[:4], boxes[:4], labels[:4], torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reaches {missing}"
    losses = D.train_detector(model, tiny_scenes, 40, 8, lr=3e-3, progress=False)
    assert losses.shape == (40,) and np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.8 * losses[:5].mean()
    result = D.evaluate_detector(model, tiny_scenes, batch=10)
    assert len(result["dets"]) == len(images) and result["ips"] > 0
    for d in result["dets"]:
        assert d["boxes"].shape[1:] == (4,) and len(d["boxes"]) == len(d["scores"]) == len(d["labels"])
        assert (d["boxes"] >= -1e-4).all() and (d["boxes"] <= 32 + 1e-4).all()
        assert ((d["labels"] >= 0) & (d["labels"] < 10)).all()
    gts = [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    assert result["map50"] == D.mean_average_precision(result["dets"], gts, 0.5)
    assert 0 <= result["coco"] <= result["map50"] <= 1


def test_detector_errors(tiny_scenes):
    with pytest.raises(ValueError, match="multiple of 4"):
        D.TwoStageDetector(10, 30)
    with pytest.raises(ValueError, match="multiple of 4"):
        D.YOLODetector(10, 2)
    with pytest.raises(ValueError, match=">= 1"):
        D.TwoStageDetector(10, 32, rois_per_image=0)
    with pytest.raises(ValueError, match="steps and batch"):
        D.train_detector(D.YOLODetector(10, 32, S=4, width=8, hidden=8), tiny_scenes, 0, 4)
    images, boxes, labels = tiny_scenes
    with pytest.raises(ValueError, match="as many"):
        D.train_detector(D.YOLODetector(10, 32, S=4, width=8, hidden=8), (images, boxes[:3], labels), 2, 4)
