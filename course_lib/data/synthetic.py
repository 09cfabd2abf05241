"""Seeded synthetic data sets built from real digits, for detection and segmentation lectures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DigitCanvases:
    """Digits pasted on blank canvases, with detection boxes and segmentation masks.

    - ``images``: (n, S, S) canvases, the dtype of the source images; background 0.
    - ``boxes``: n arrays of shape (k_i, 4) float32, ``(x1, y1, x2, y2)`` in pixels with the max
      exclusive: digit ``j`` occupies columns ``x1 <= x < x2`` and rows ``y1 <= y < y2``. Each box is
      the tight box of the digit's non-zero pixels; boxes of one canvas never overlap.
    - ``labels``: n arrays (k_i,) int64, the class of each boxed digit.
    - ``masks``: (n, S, S) int64 semantic masks: 0 background, ``1 + class`` on a digit's non-zero pixels.
    - ``instance_masks``: (n, S, S) int64: 0 background, ``j + 1`` on the pixels of digit ``j``.
    - ``source_indices``: n arrays (k_i,) int64, the index of each digit in the source images.
    """

    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    masks: np.ndarray
    instance_masks: np.ndarray
    source_indices: list[np.ndarray]


def _tight_boxes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: (row0, row1, col0, col1) of its non-zero pixels (max exclusive), and a flag
    saying whether it has any non-zero pixel."""
    on = images != 0
    rows, cols = on.any(axis=2), on.any(axis=1)
    has = rows.any(axis=1)
    h, w = images.shape[1:]
    r0 = rows.argmax(axis=1)
    r1 = h - rows[:, ::-1].argmax(axis=1)
    c0 = cols.argmax(axis=1)
    c1 = w - cols[:, ::-1].argmax(axis=1)
    return np.stack([r0, r1, c0, c1], axis=1), has


def make_digit_canvas(images: np.ndarray, labels: np.ndarray, n_canvases: int, canvas_size: int = 64,
                      digits_per_canvas: int | tuple[int, int] = (1, 3), seed: int = 0,
                      max_tries: int = 50) -> DigitCanvases:
    """Paste randomly chosen digits at random places on blank ``canvas_size`` x ``canvas_size``
    canvases: a toy data set for object detection (boxes) and segmentation (masks).

    ``images``: (N, H, W) source digits (e.g. MNIST uint8, background 0); ``labels``: (N,).
    Each canvas draws ``k`` uniformly in ``digits_per_canvas = (lo, hi)`` (inclusive), then for each
    digit a random source image (one with a non-zero pixel), crops it to its non-zero pixels and
    pastes the crop at a uniformly random position where its box overlaps no earlier box; a digit
    that finds no free place in ``max_tries`` draws is dropped, so a canvas can hold fewer than
    ``k`` digits (never fewer than one). Deterministic given ``seed``. See :class:`DigitCanvases`.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},) to match images, got {labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
        raise ValueError(f"labels must be non-negative integers, got dtype {labels.dtype}")
    if isinstance(digits_per_canvas, (int, np.integer)):
        digits_per_canvas = (int(digits_per_canvas), int(digits_per_canvas))
    lo, hi = (int(v) for v in digits_per_canvas)
    if not 1 <= lo <= hi:
        raise ValueError(f"digits_per_canvas must be (lo, hi) with 1 <= lo <= hi, got {digits_per_canvas}")
    if int(n_canvases) < 0:
        raise ValueError(f"n_canvases must be >= 0, got {n_canvases}")
    if canvas_size < max(images.shape[1], images.shape[2]):
        raise ValueError(f"canvas_size={canvas_size} is smaller than the source images {images.shape[1:]}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")

    tight, has_pixels = _tight_boxes(images)
    candidates = np.flatnonzero(has_pixels)
    if candidates.size == 0:
        raise ValueError("images: every source image is blank (no non-zero pixel)")

    rng = np.random.default_rng(seed)
    n, size = int(n_canvases), int(canvas_size)
    canvases = np.zeros((n, size, size), dtype=images.dtype)
    masks = np.zeros((n, size, size), dtype=np.int64)
    instances = np.zeros((n, size, size), dtype=np.int64)
    all_boxes, all_labels, all_sources = [], [], []
    for c in range(n):
        k = int(rng.integers(lo, hi + 1))
        boxes: list[tuple[int, int, int, int]] = []
        chosen: list[int] = []
        for _ in range(k):
            src = int(candidates[rng.integers(candidates.size)])
            r0, r1, c0, c1 = (int(v) for v in tight[src])
            h, w = r1 - r0, c1 - c0
            for _ in range(max_tries):
                y = int(rng.integers(0, size - h + 1))
                x = int(rng.integers(0, size - w + 1))
                if all(x >= bx2 or bx1 >= x + w or y >= by2 or by1 >= y + h for bx1, by1, bx2, by2 in boxes):
                    break
            else:
                continue
            crop = images[src, r0:r1, c0:c1]
            on = crop != 0
            canvases[c, y:y + h, x:x + w] = crop
            masks[c, y:y + h, x:x + w][on] = int(labels[src]) + 1
            instances[c, y:y + h, x:x + w][on] = len(boxes) + 1
            boxes.append((x, y, x + w, y + h))
            chosen.append(src)
        all_boxes.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        all_sources.append(np.array(chosen, dtype=np.int64))
        all_labels.append(labels[all_sources[-1]].astype(np.int64))
    return DigitCanvases(images=canvases, boxes=all_boxes, labels=all_labels, masks=masks,
                         instance_masks=instances, source_indices=all_sources)
