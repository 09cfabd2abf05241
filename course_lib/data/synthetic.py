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


# ------------------------------------------------------------------------------------ digit scenes
@dataclass
class DigitScenes(DigitCanvases):
    """Scaled, possibly overlapping digits on a canvas, with exact masks and boxes (:func:`make_digit_scenes`).

    The fields of :class:`DigitCanvases`, with these differences:

    - ``images``: (n, S, S) float32 in [0, 1]; digits are composited by the pixel-wise maximum
      (ink on ink), on top of the clutter and distractor strokes of the hard variant.
    - ``boxes``: (k_i, 4) float32 ``(x1, y1, x2, y2)``, max exclusive: the tight box of the digit's
      *whole* mask (its pixels with intensity >= ``mask_threshold`` after scaling), including the
      part a later digit hides (the "amodal" box a detector should predict). Boxes may overlap.
    - ``masks``: (n, S, S) int64: 0 background (clutter and strokes included), ``1 + class`` on the
      visible mask pixels of a digit. Later digits lie on top: where two masks meet, the pixel
      belongs to the one pasted later.
    - ``instance_masks``: (n, S, S) int64: 0 background, ``j + 1`` on the visible mask pixels of digit ``j``;
      every instance's pixels lie inside its box, and each digit keeps at least ``min_visible`` of its mask.
    - ``scales``: n arrays (k_i,) float32, the factor each source digit was resized by.
    """

    scales: list[np.ndarray]


def _as_unit_float(images: np.ndarray) -> np.ndarray:
    """Source digits as float32 in [0, 1]: integer images are divided by 255, float ones clipped."""
    if np.issubdtype(images.dtype, np.integer):
        return images.astype(np.float32) / 255.0
    return np.clip(images.astype(np.float32), 0.0, 1.0)


def _resize_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of a 2-d image with half-pixel centres (``align_corners=False``), edges clamped."""
    h, w = image.shape

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, (pos - low).astype(np.float32)

    r0, r1, fr = axis(h, out_h)
    c0, c1, fc = axis(w, out_w)
    top = image[r0][:, c0] * (1 - fc) + image[r0][:, c1] * fc
    bottom = image[r1][:, c0] * (1 - fc) + image[r1][:, c1] * fc
    return (top * (1 - fr)[:, None] + bottom * fr[:, None]).astype(np.float32)


def _box_iou_xyxy(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _range(value: int | float | tuple, name: str, minimum: float, integer: bool) -> tuple:
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = (value, value)
    lo, hi = value
    if not minimum <= lo <= hi:
        raise ValueError(f"{name} must be a number or (lo, hi) with {minimum} <= lo <= hi, got {value}")
    return (int(lo), int(hi)) if integer else (float(lo), float(hi))


def _draw_stroke(canvas: np.ndarray, rng: np.random.Generator, intensity: float) -> None:
    """A random quadratic Bezier curve (16 segments), anti-aliased, 1-3 px thick, max-composited into ``canvas``."""
    size = canvas.shape[0]
    p = rng.uniform(0, size, size=(3, 2))
    t = np.linspace(0.0, 1.0, 17)[:, None]
    curve = (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]  # (17, 2) as (x, y)
    half = rng.uniform(0.5, 1.5)
    x0, y0 = np.floor(curve.min(axis=0) - half - 1).astype(int).clip(0, size)
    x1, y1 = np.ceil(curve.max(axis=0) + half + 2).astype(int).clip(0, size)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    q = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)[:, None, :]  # pixel centres (P, 1, 2)
    a, d = curve[None, :-1], np.diff(curve, axis=0)[None]  # segments a + u d, u in [0, 1]
    u = np.clip(((q - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0.0, 1.0)
    dist = np.sqrt(((q - a - u[..., None] * d) ** 2).sum(-1)).min(axis=1)
    value = (np.clip(half + 0.5 - dist, 0.0, 1.0) * intensity).reshape(ys.shape).astype(np.float32)
    np.maximum(canvas[y0:y1, x0:x1], value, out=canvas[y0:y1, x0:x1])


def _draw_fragment(canvas: np.ndarray, source: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """A random window of a scaled source digit (a piece of a stroke, not a whole digit), pasted anywhere."""
    size = canvas.shape[0]
    h = max(2, round(source.shape[0] * scale))
    w = max(2, round(source.shape[1] * scale))
    digit = _resize_bilinear(source, h, w)
    fh = int(rng.integers(max(2, h // 5), max(3, h // 3) + 1))
    fw = int(rng.integers(max(2, w // 5), max(3, w // 3) + 1))
    r, c = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
    piece = digit[r : r + fh, c : c + fw]
    y, x = int(rng.integers(0, size - fh + 1)), int(rng.integers(0, size - fw + 1))
    np.maximum(canvas[y : y + fh, x : x + fw], piece, out=canvas[y : y + fh, x : x + fw])


def make_digit_scenes(
    n_scenes: int,
    canvas_size: int = 64,
    digits_per_scene: int | tuple[int, int] = (1, 4),
    *,
    scale: float | tuple[float, float] = (0.6, 1.2),
    max_overlap: float = 0.3,
    min_visible: float = 0.6,
    hard: bool = False,
    clutter: int | tuple[int, int] | None = None,
    strokes: int | tuple[int, int] | None = None,
    noise: float | None = None,
    mask_threshold: float = 0.5,
    split: str = "train",
    digits: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    max_tries: int = 50,
) -> DigitScenes:
    """Seeded "digit scenes" for segmentation and detection: real MNIST digits, rescaled and
    placed on a ``canvas_size`` x ``canvas_size`` canvas, possibly overlapping, with exact per-pixel
    class masks and boxes (lectures 08-09). See :class:`DigitScenes` for the arrays and conventions.

    Per scene: ``k`` uniform in ``digits_per_scene`` (inclusive); per digit a random source image,
    a factor uniform in ``scale`` (``28 * scale`` pixels for MNIST), bilinear resizing, then a
    uniformly random position where the digit fits the canvas, its box has IoU <= ``max_overlap``
    with every earlier box, and every earlier digit keeps at least ``min_visible`` of its mask
    pixels; a digit that finds no such place in ``max_tries`` draws is dropped (the first digit
    always fits). Class masks: background 0, digit class ``c`` is ``c + 1``.

    The hard variant (``hard=True``) adds, beneath the digits and as *background* in the masks:
    ``clutter`` fragments of other digits (pieces of strokes, default 3-6 per scene), ``strokes``
    random anti-aliased curves (default 2-4) and Gaussian pixel ``noise`` (default std 0.05),
    clipped to [0, 1]. Each of these can also be set on its own.

    ``digits``: optional ``(images (N, H, W), labels (N,))`` to use instead of MNIST (tests inject a
    few); otherwise ``load_mnist(split)`` is used. Deterministic given ``seed`` and the source digits.
    """
    if digits is None:
        from course_lib.data.loaders import load_mnist

        digits = load_mnist(split)
    images, labels = (np.asarray(a) for a in digits)
    if images.ndim != 3:
        raise ValueError(f"digits: images must have shape (N, H, W), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"digits: labels must have shape ({images.shape[0]},) to match images, got {labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
        raise ValueError(f"digits: labels must be non-negative integers, got dtype {labels.dtype}")
    if int(n_scenes) < 0:
        raise ValueError(f"n_scenes must be >= 0, got {n_scenes}")
    lo, hi = _range(digits_per_scene, "digits_per_scene", 1, integer=True)
    s_lo, s_hi = _range(scale, "scale", 1e-6, integer=False)
    size = int(canvas_size)
    if size < 1 or max(round(images.shape[1] * s_hi), round(images.shape[2] * s_hi)) > size:
        raise ValueError(f"canvas_size={canvas_size} is smaller than the largest scaled digit "
                         f"({images.shape[1:]} x {s_hi})")
    if not 0.0 <= max_overlap <= 1.0:
        raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap}")
    if not 0.0 <= min_visible <= 1.0:
        raise ValueError(f"min_visible must be in [0, 1], got {min_visible}")
    if not 0.0 < mask_threshold <= 1.0:
        raise ValueError(f"mask_threshold must be in (0, 1], got {mask_threshold}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    c_lo, c_hi = _range((3, 6) if clutter is None and hard else (clutter or 0), "clutter", 0, integer=True)
    k_lo, k_hi = _range((2, 4) if strokes is None and hard else (strokes or 0), "strokes", 0, integer=True)
    noise = (0.05 if hard else 0.0) if noise is None else float(noise)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")

    source = _as_unit_float(images)
    candidates = np.flatnonzero((source >= mask_threshold).any(axis=(1, 2)))
    if candidates.size == 0:
        raise ValueError(f"digits: no source image has a pixel >= mask_threshold={mask_threshold}")

    rng = np.random.default_rng(seed)
    n = int(n_scenes)
    canvases = np.zeros((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    instances = np.zeros((n, size, size), dtype=np.int64)
    all_boxes, all_labels, all_sources, all_scales = [], [], [], []
    for c in range(n):
        background = np.zeros((size, size), dtype=np.float32)
        for _ in range(int(rng.integers(c_lo, c_hi + 1))):
            _draw_fragment(background, source[candidates[rng.integers(candidates.size)]], rng, rng.uniform(s_lo, s_hi))
        for _ in range(int(rng.integers(k_lo, k_hi + 1))):
            _draw_stroke(background, rng, rng.uniform(0.5, 1.0))
        ink = np.zeros((size, size), dtype=np.float32)
        owner = instances[c]  # filled in place
        boxes: list[tuple[int, int, int, int]] = []
        chosen, factors, totals, visible = [], [], [], []
        for _ in range(int(rng.integers(lo, hi + 1))):
            src = int(candidates[rng.integers(candidates.size)])
            factor = float(rng.uniform(s_lo, s_hi))
            h = max(1, round(source.shape[1] * factor))
            w = max(1, round(source.shape[2] * factor))
            digit = _resize_bilinear(source[src], h, w)
            on = digit >= mask_threshold
            if not on.any():
                continue
            (r0, r1, c0, c1), _has = (v[0] for v in _tight_boxes((digit > 0)[None]))
            (m0, m1, n0, n1), _has = (v[0] for v in _tight_boxes(on[None]))
            crop, on_crop = digit[r0:r1, c0:c1], on[r0:r1, c0:c1]
            ch, cw = r1 - r0, c1 - c0
            for _ in range(max_tries):
                y = int(rng.integers(0, size - ch + 1))
                x = int(rng.integers(0, size - cw + 1))
                box = (x + n0 - c0, y + m0 - r0, x + n1 - c0, y + m1 - r0)
                if any(_box_iou_xyxy(box, b) > max_overlap for b in boxes):
                    continue
                hidden = np.bincount(owner[y : y + ch, x : x + cw][on_crop], minlength=len(boxes) + 1)[1:]
                if all(v - d >= min_visible * t for v, d, t in zip(visible, hidden, totals, strict=True)):
                    break
            else:
                continue
            visible = [v - d for v, d in zip(visible, hidden, strict=True)]
            np.maximum(ink[y : y + ch, x : x + cw], crop, out=ink[y : y + ch, x : x + cw])
            owner[y : y + ch, x : x + cw][on_crop] = len(boxes) + 1
            masks[c, y : y + ch, x : x + cw][on_crop] = int(labels[src]) + 1
            boxes.append(box)
            chosen.append(src)
            factors.append(factor)
            totals.append(int(on_crop.sum()))
            visible.append(totals[-1])
        image = np.maximum(background, ink)
        if noise > 0:
            image = np.clip(image + rng.normal(0.0, noise, size=image.shape).astype(np.float32), 0.0, 1.0)
        canvases[c] = image
        all_boxes.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        all_sources.append(np.array(chosen, dtype=np.int64))
        all_labels.append(labels[all_sources[-1]].astype(np.int64))
        all_scales.append(np.array(factors, dtype=np.float32))
    return DigitScenes(images=canvases, boxes=all_boxes, labels=all_labels, masks=masks, instance_masks=instances,
                       source_indices=all_sources, scales=all_scales)
