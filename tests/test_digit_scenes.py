"""Tests of ``course_lib.data.make_digit_scenes`` (lectures 08-09).

Small random "digits" are injected through ``digits=`` and every output is recomputed
independently: each digit is resized again with ``torch.nn.functional.interpolate`` (bilinear,
half-pixel centres) at its recorded scale, and its mask size, box size, visibility, overlap and
class are checked against the scene. When the local mirror holds MNIST, the real digits are used too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib import data


def random_digits(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Blob-like uint8 images (smoothed noise) and labels; image 0 is blank and must never be used."""
    noise = rng.random((n, h + 2, w + 2))
    smooth = (noise[:, :-2, :-2] + noise[:, 1:-1, 1:-1] + noise[:, 2:, 2:] + noise[:, 2:, :-2]) / 4
    images = (np.clip((smooth - 0.45) * 4, 0, 1) * 255).astype(np.uint8)
    images[0] = 0
    images[1, h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1] = 255
    return images, rng.integers(0, 10, size=n)


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor))
    x = torch.from_numpy(image.astype(np.float32) / 255.0)[None, None]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union


def check_scenes(
    out: data.DigitScenes,
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    size: int,
    *,
    hi: int,
    thr: float,
    max_overlap: float,
    min_visible: float,
    clean: bool,
) -> None:
    assert out.images.shape == out.masks.shape == out.instance_masks.shape == (n, size, size)
    assert out.images.dtype == np.float32 and out.masks.dtype == out.instance_masks.dtype == np.int64
    assert out.images.min() >= 0.0 and out.images.max() <= 1.0
    assert len(out.boxes) == len(out.labels) == len(out.source_indices) == len(out.scales) == n
    for c in range(n):
        boxes, sources, scales = out.boxes[c], out.source_indices[c], out.scales[c]
        k = len(sources)
        assert boxes.dtype == np.float32 and boxes.shape == (k, 4) and 1 <= k <= hi
        assert out.labels[c].dtype == np.int64 and scales.dtype == np.float32
        np.testing.assert_array_equal(out.labels[c], labels[sources])
        assert set(np.unique(out.instance_masks[c])) <= set(range(k + 1))
        for j, (box, src, factor) in enumerate(zip(boxes, sources, scales, strict=True)):
            x1, y1, x2, y2 = box.astype(int)
            assert np.array_equal(box, box.round()) and 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size
            on = resized(images[src], float(factor)) >= thr
            rows, cols = np.nonzero(on)
            assert (x2 - x1, y2 - y1) == (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1), "box is not tight"
            mine = out.instance_masks[c] == j + 1
            r, q = np.nonzero(mine)
            assert x1 <= q.min() and q.max() < x2 and y1 <= r.min() and r.max() < y2, "instance pixels outside the box"
            assert mine.sum() >= min_visible * on.sum() - 1e-9, "a digit is hidden more than min_visible allows"
            assert (out.masks[c][mine] == labels[src] + 1).all()
            if j == k - 1:  # the top digit is wholly visible: its mask is the resized digit's, moved into its box
                np.testing.assert_array_equal(
                    mine[y1:y2, x1:x2], on[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
                )
            for i in range(j):
                assert iou(boxes[i], box) <= max_overlap + 1e-9
        np.testing.assert_array_equal(out.masks[c] != 0, out.instance_masks[c] != 0)
        if clean:  # no clutter or noise: the masks are exactly the pixels whose ink reaches the threshold
            np.testing.assert_array_equal(out.images[c] >= thr, out.instance_masks[c] != 0)


@pytest.mark.parametrize("seed", range(6))
def test_digit_scenes_masks_boxes_and_visibility(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    h, w = int(rng.integers(5, 14)), int(rng.integers(5, 14))
    images, labels = random_digits(rng, int(rng.integers(3, 10)), h, w)
    s_lo = float(rng.uniform(0.6, 1.2))
    s_hi = s_lo + float(rng.uniform(0.0, 0.8))
    size = int(rng.integers(round(max(h, w) * s_hi) + 1, 50))
    lo = int(rng.integers(1, 4))
    hi = lo + int(rng.integers(0, 3))
    n = int(rng.integers(1, 6))
    kwargs = dict(
        canvas_size=size,
        digits_per_scene=(lo, hi),
        scale=(s_lo, s_hi),
        max_overlap=float(rng.uniform(0, 0.5)),
        min_visible=float(rng.uniform(0.3, 0.9)),
        mask_threshold=float(rng.uniform(0.3, 0.7)),
        digits=(images, labels),
        seed=seed,
    )
    out = data.make_digit_scenes(n, **kwargs)
    check_scenes(
        out,
        images,
        labels,
        n,
        size,
        hi=hi,
        thr=kwargs["mask_threshold"],
        max_overlap=kwargs["max_overlap"],
        min_visible=kwargs["min_visible"],
        clean=True,
    )
    again = data.make_digit_scenes(n, **kwargs)
    for name in ("images", "masks", "instance_masks"):
        np.testing.assert_array_equal(getattr(again, name), getattr(out, name))
    for name in ("boxes", "labels", "source_indices", "scales"):
        for a, b in zip(getattr(again, name), getattr(out, name), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(3))
def test_hard_variant_adds_background_only(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    images, labels = random_digits(rng, 8, 12, 12)
    kwargs = dict(canvas_size=40, digits_per_scene=(1, 3), digits=(images, labels), seed=seed)
    hard = data.make_digit_scenes(4, hard=True, **kwargs)
    check_scenes(hard, images, labels, 4, 40, hi=3, thr=0.5, max_overlap=0.3, min_visible=0.6, clean=False)
    assert ((hard.images > 0) & (hard.masks == 0)).mean() > 0.3, "clutter, strokes and noise are missing"
    # the hard variant with its extras switched off is the easy one, draw for draw
    plain = data.make_digit_scenes(4, hard=True, clutter=0, strokes=0, noise=0.0, **kwargs)
    easy = data.make_digit_scenes(4, **kwargs)
    np.testing.assert_array_equal(plain.images, easy.images)
    np.testing.assert_array_equal(plain.masks, easy.masks)
    strokes_only = data.make_digit_scenes(4, strokes=(3, 3), **kwargs)
    assert not np.array_equal(strokes_only.images, easy.images)
    check_scenes(strokes_only, images, labels, 4, 40, hi=3, thr=0.5, max_overlap=0.3, min_visible=0.6, clean=False)


def test_digit_scenes_seed_overlap_and_edge_cases() -> None:
    rng = np.random.default_rng(1)
    images, labels = random_digits(rng, 20, 10, 10)
    a = data.make_digit_scenes(5, canvas_size=40, digits=(images, labels), seed=1)
    b = data.make_digit_scenes(5, canvas_size=40, digits=(images, labels), seed=2)
    assert not np.array_equal(a.images, b.images)
    empty = data.make_digit_scenes(0, canvas_size=40, digits=(images, labels))
    assert empty.images.shape == (0, 40, 40) and empty.boxes == [] and empty.scales == []
    single = data.make_digit_scenes(3, canvas_size=12, digits_per_scene=1, scale=1.0, digits=(images[1:2], labels[1:2]))
    assert [len(x) for x in single.boxes] == [1, 1, 1]
    apart = data.make_digit_scenes(6, canvas_size=48, digits_per_scene=(3, 4), max_overlap=0.0, digits=(images, labels))
    for boxes in apart.boxes:
        assert all(iou(boxes[i], boxes[j]) == 0.0 for i in range(len(boxes)) for j in range(i))
    crowded = data.make_digit_scenes(
        4, canvas_size=12, digits_per_scene=(5, 5), scale=1.0, max_overlap=0.0, digits=(images, labels)
    )
    assert all(1 <= len(x) < 5 for x in crowded.boxes), "digits that cannot be placed are dropped"
    overlapping = data.make_digit_scenes(
        20, canvas_size=24, digits_per_scene=(3, 3), max_overlap=0.5, min_visible=0.2, digits=(images, labels), seed=3
    )
    assert any(iou(bx[i], bx[j]) > 0 for bx in overlapping.boxes for i in range(len(bx)) for j in range(i)), (
        "overlapping digits were never produced"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digits": (np.zeros((2, 5)), np.array([1, 2]))}, "images must have shape"),
        ({"digits": (np.ones((2, 5, 5), np.uint8), np.zeros(3, dtype=int))}, "labels must have shape"),
        ({"digits": (np.ones((2, 5, 5), np.uint8), np.array([0.5, 1.0]))}, "non-negative integers"),
        ({"digits": (np.full((2, 5, 5), 20, np.uint8), np.array([1, 2]))}, "no source image"),
        ({"digits_per_scene": (0, 2)}, "digits_per_scene"),
        ({"digits_per_scene": (3, 2)}, "digits_per_scene"),
        ({"canvas_size": 5}, "smaller than the largest"),
        ({"n_scenes": -1}, "n_scenes"),
        ({"max_overlap": 1.5}, "max_overlap"),
        ({"min_visible": -0.1}, "min_visible"),
        ({"mask_threshold": 0.0}, "mask_threshold"),
        ({"scale": (1.0, 0.5)}, "scale"),
        ({"noise": -1.0}, "noise"),
        ({"strokes": (3, 1)}, "strokes"),
    ],
)
def test_digit_scenes_validate(kwargs: dict, message: str) -> None:
    args = {"n_scenes": 2, "canvas_size": 16, "digits": (np.full((2, 5, 5), 255, np.uint8), np.array([1, 2]))} | kwargs
    with pytest.raises(ValueError, match=message):
        data.make_digit_scenes(**args)


def test_digit_scenes_from_real_mnist() -> None:
    try:
        images, labels = data.load_mnist("test", download=False)
    except data.DataNotFoundError:
        pytest.skip("MNIST is not in the local mirror or the cache")
    out = data.make_digit_scenes(12, canvas_size=64, split="test", seed=0, hard=True)
    check_scenes(out, images, labels, 12, 64, hi=4, thr=0.5, max_overlap=0.3, min_visible=0.6, clean=False)
    easy = data.make_digit_scenes(12, canvas_size=64, digits=(images, labels), seed=0)
    check_scenes(easy, images, labels, 12, 64, hi=4, thr=0.5, max_overlap=0.3, min_visible=0.6, clean=True)
    heights = np.concatenate([b[:, 3] - b[:, 1] for b in easy.boxes])
    assert 8 <= heights.min() and heights.max() <= 28, "MNIST digits (about 20 px tall) scaled by 0.6-1.2"
