"""How fast are course_lib.detection's NMS and mAP? (lecture 09, issue "segmentation and detection")

1. Non-maximum suppression of 10,000 float32 boxes (IoU threshold 0.5), in two layouts:
   "clustered" (200 objects with 50 jittered boxes each: heavy suppression, the detector case)
   and "uniform" (independent random boxes: most survive, so the kept set is large):

   * ``course_lib.detection.nms`` (one vectorised round per kept box: its IoU with every remaining
     candidate in a few array operations, the suppressed ones dropped, so the candidates shrink);
   * the plain-Python reference (the lecture's loop: walk by score, compare with every kept box);
   * the C++ peer: OpenCV's ``cv2.dnn.NMSBoxes`` (opencv-python-headless, from
     ``requirements/benchmark-peers.txt``, one OpenCV thread); torchvision's C++ ``nms`` is not
     allowed in this course's environment.

   All must return the same indices; the script checks it.
2. ``mean_average_precision`` in COCO style (AP@[.5:.95], 101 recall points, maxDets 100) against
   pycocotools 2.0.11 (``COCOeval.evaluate`` + ``accumulate``; its IoU is C, its matching Python) on
   1,000 random images with 3 classes; both numbers are reported and must agree to 1e-12.

``--smoke``: 1,000 boxes and 100 images (seconds).
"""

from __future__ import annotations

import contextlib
import io
import os
import time

import numpy as np
import torch

from course_lib.detection import COCO_IOU_THRESHOLDS, mean_average_precision, nms
from course_tools.benchmarking import BenchmarkReport, benchmark_main


def _iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_python(boxes: list, scores: list, thr: float) -> list[int]:
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(_iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def _boxes(n: int, layout: str, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if layout == "clustered":
        objects = max(1, n // 50)
        xy = torch.rand(objects, 2, generator=g) * 1000
        wh = torch.rand(objects, 2, generator=g) * 80 + 20
        base = torch.cat([xy, xy + wh], 1).repeat_interleave(n // objects, 0)
        jitter = torch.randn(base.shape, generator=g) * 0.1 * wh.repeat_interleave(n // objects, 0).repeat(1, 2)
        boxes = base + jitter
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    else:
        xy = torch.rand(n, 2, generator=g) * 1000
        boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 80 + 5], 1)
    return boxes, torch.rand(boxes.shape[0], generator=g)


def _dataset(n_images: int, seed: int = 0, n_classes: int = 3):
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n_images):
        k = int(rng.integers(1, 8))
        xy = rng.uniform(0, 500, (k, 2))
        wh = np.exp(rng.uniform(np.log(8), np.log(150), (k, 2)))
        gb = np.concatenate([xy, xy + wh], 1)
        gl = rng.integers(0, n_classes, k)
        db = np.concatenate([gb + rng.normal(0, 0.1, (k, 4)) * np.concatenate([wh, wh], 1), gb[: k // 2] + 20])
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 1)
        dl = np.concatenate([gl, gl[: k // 2]])
        dets.append(
            {"boxes": torch.tensor(db), "scores": torch.tensor(rng.random(len(db))), "labels": torch.tensor(dl)}
        )
        gts.append({"boxes": torch.tensor(gb), "labels": torch.tensor(gl)})
    return dets, gts


def _pycocotools(dets, gts, n_classes: int = 3) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns, results = [], []
    for i, (d, g) in enumerate(zip(dets, gts, strict=True)):
        for b, lab in zip(g["boxes"].tolist(), g["labels"].tolist(), strict=True):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": lab + 1,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for b, s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist(), strict=True):
            results.append(
                {"image_id": i, "category_id": lab + 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": s}
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in range(len(gts))],
            "annotations": anns,
            "categories": [{"id": c + 1} for c in range(n_classes)],
        }
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]
    return float(np.mean(p[p > -1]))


def _import_cv2(smoke: bool):
    """OpenCV, or None in a smoke run where it is not installed (a real-size run needs it)."""
    try:
        import cv2
    except ImportError as exc:
        if smoke:
            return None
        raise SystemExit(
            f"OpenCV is not importable ({exc}): run `make bench` (it installs requirements/benchmark-peers.txt "
            "into build/bench-peers) or `pip install --no-deps --target build/bench-peers -r "
            "requirements/benchmark-peers.txt` and put build/bench-peers on PYTHONPATH"
        ) from exc
    cv2.setNumThreads(1)
    return cv2


def _nms_opencv(cv2, boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    """cv2.dnn.NMSBoxes on (x, y, w, h) rectangles; score threshold 0 (every score here is >= 0)."""
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).double().tolist()
    return np.asarray(cv2.dnn.NMSBoxes(xywh, scores.double().tolist(), 0.0, thr)).reshape(-1).tolist()


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def run(smoke: bool) -> BenchmarkReport:
    load_before = os.getloadavg()[0]
    n_boxes = 1000 if smoke else 10000
    n_images = 100 if smoke else 1000
    repeats = 3 if smoke else 5
    g = torch.Generator().manual_seed(0)
    report = BenchmarkReport(
        title=f"NMS of {n_boxes} boxes and COCO-style mAP of {n_images} images ({torch.get_num_threads()} torch threads)",
        columns=["task", "implementation", "seconds", "x course_lib", "result"],
    )
    figures: dict[str, float] = {}
    cv2 = _import_cv2(smoke)
    for layout in ("clustered", "uniform"):
        boxes, scores = _boxes(n_boxes, layout, g)
        nms(boxes, scores, 0.5)  # warm-up
        times = []
        for _ in range(repeats):
            kept, seconds = _timed(nms, boxes, scores, 0.5)
            times.append(seconds)
        ours = float(np.median(times))
        ref, ref_s = _timed(nms_python, boxes.tolist(), scores.tolist(), 0.5)
        if kept.tolist() != ref:
            raise AssertionError(f"{layout}: course_lib nms and the Python reference disagree")
        report.add_row(f"NMS {layout}", "course_lib.detection.nms", ours, 1.0, f"{len(kept)} kept")
        report.add_row(
            f"NMS {layout}", "plain Python reference", ref_s, ref_s / ours, f"{len(ref)} kept (same indices)"
        )
        figures[f"NMS {layout}: Python / course_lib (x)"] = ref_s / ours
        if cv2 is not None:
            _nms_opencv(cv2, boxes, scores, 0.5)  # warm-up
            cv_times, cv_kept = [], []
            for _ in range(repeats):
                cv_kept, seconds = _timed(_nms_opencv, cv2, boxes, scores, 0.5)
                cv_times.append(seconds)
            if cv_kept != ref:
                raise AssertionError(f"{layout}: OpenCV's NMSBoxes and the Python reference disagree")
            cv_s = float(np.median(cv_times))
            report.add_row(
                f"NMS {layout}", f"OpenCV {cv2.__version__} cv2.dnn.NMSBoxes (C++)", cv_s, cv_s / ours,
                f"{len(cv_kept)} kept (same indices)",
            )
            figures[f"NMS {layout}: OpenCV / course_lib (x)"] = cv_s / ours
        figures[f"NMS {layout}: course_lib ms"] = 1e3 * ours

    dets, gts = _dataset(n_images)
    ours_map, ours_s = _timed(lambda: mean_average_precision(dets, gts, COCO_IOU_THRESHOLDS, style="coco"))
    coco_map, coco_s = _timed(lambda: _pycocotools(dets, gts))
    if abs(ours_map - coco_map) > 1e-12:
        raise AssertionError(f"mAP differs from pycocotools: {ours_map} vs {coco_map}")
    report.add_row("AP@[.5:.95]", "course_lib mean_average_precision(style='coco')", ours_s, 1.0, round(ours_map, 6))
    report.add_row(
        "AP@[.5:.95]",
        "pycocotools 2.0.11 COCOeval (evaluate + accumulate)",
        coco_s,
        coco_s / ours_s,
        round(coco_map, 6),
    )
    figures["mAP: pycocotools / course_lib (x)"] = coco_s / ours_s
    figures["AP@[.5:.95]"] = ours_map
    report.figures = figures
    report.notes = [
        f"NMS: median of {repeats} runs for course_lib, one run for the Python reference; IoU threshold 0.5, float32",
        "C++ NMS peer: OpenCV's cv2.dnn.NMSBoxes (median of as many runs, one OpenCV thread; its input "
        "conversion to (x, y, w, h) lists is inside the timing); torchvision is not part of this environment"
        if cv2 is not None
        else "C++ NMS peer: OpenCV is not installed in this (smoke) run",
        f"1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} cores)",
    ]
    return report


if __name__ == "__main__":
    benchmark_main("detection_speed", run)
