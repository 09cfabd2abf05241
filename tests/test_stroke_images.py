"""Tests of course_lib.data.make_stroke_images (the anomaly images of lecture 11) against a brute-force renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import make_stroke_images


def _render_brute_force(segments: np.ndarray, half_widths: np.ndarray, size: int) -> np.ndarray:
    """Pixel by pixel: max over strokes of clip(h + 0.5 - distance(pixel centre, segment), 0, 1)."""
    out = np.zeros((size, size))
    for r in range(size):
        for c in range(size):
            px, py = c + 0.5, r + 0.5
            best = 0.0
            for (x0, y0, x1, y1), h in zip(segments.astype(float), half_widths.astype(float)):
                # distance to the segment: project, clamp to the segment, measure
                length2 = (x1 - x0) ** 2 + (y1 - y0) ** 2
                u = 0.0 if length2 == 0 else min(1.0, max(0.0, ((px - x0) * (x1 - x0) + (py - y0) * (y1 - y0)) / length2))
                dist = math.dist((px, py), (x0 + u * (x1 - x0), y0 + u * (y1 - y0)))
                best = max(best, min(1.0, max(0.0, h + 0.5 - dist)))
            out[r, c] = best
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(10, 20))
def test_images_match_a_brute_force_renderer(seed, size):
    data = make_stroke_images(3, size=size, margin=2.0, seed=seed)
    assert data.images.shape == (3, size, size) and data.images.dtype == np.float32
    for img, seg, half in zip(data.images, data.segments, data.half_widths):
        assert seg.shape[1] == 4 and 1 <= len(seg) <= 3 and half.shape == (len(seg),)
        assert ((seg >= 2.0) & (seg <= size - 2.0)).all()
        assert ((half >= 0.8) & (half <= 1.6)).all()
        np.testing.assert_allclose(img, _render_brute_force(seg, half, size), atol=1e-5)


def test_seeded_ranges_and_counts():
    a, b = make_stroke_images(40, seed=3), make_stroke_images(40, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, make_stroke_images(40, seed=4).images)
    assert a.images.min() == 0.0 and a.images.max() == 1.0
    counts = {len(s) for s in a.segments}
    assert counts == {1, 2, 3}, counts  # 40 images draw every count in 1..3
    fixed = make_stroke_images(5, strokes=2, half_width=1.0, seed=0)
    assert all(len(s) == 2 for s in fixed.segments) and all((h == 1.0).all() for h in fixed.half_widths)
    # ink: every image has lit pixels, a stroke is thin (mostly background, like an MNIST digit)
    ink = (a.images > 0.5).mean(axis=(1, 2))
    assert (ink > 0).all() and (ink < 0.4).all()
    assert make_stroke_images(0).images.shape == (0, 28, 28)


@pytest.mark.parametrize(
    "kwargs",
    [{"n": -1}, {"n": 2, "size": 0}, {"n": 2, "strokes": (0, 2)}, {"n": 2, "strokes": (3, 1)},
     {"n": 2, "half_width": -1.0}, {"n": 2, "margin": 14.0}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        make_stroke_images(**kwargs)
