"""Tests of course_lib.conv against torch.nn.functional, autograd and scipy.ndimage.

Random cases come from parametrised seeds: shapes, strides, dilations, paddings and padding
modes are drawn per seed, including batches of one and kernels wider than the unpadded input.
Gradients are compared in float64.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from course_lib import conv
from course_lib.conv import (
    avg_pool2d,
    avg_pool2d_backward,
    col2im,
    conv2d_backward,
    conv2d_im2col,
    conv2d_naive,
    conv_output_size,
    conv_transpose2d,
    im2col,
    max_pool2d,
    max_pool2d_backward,
    pad2d,
    receptive_field,
)

F64 = torch.float64
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}
CONV_FUNCS = [conv2d_naive, conv2d_im2col]


def conv_case(seed: int) -> dict:
    """A random valid convolution: shapes, stride, dilation, padding and padding mode."""
    rng = random.Random(seed)
    while True:
        mode = rng.choice(["zeros", "zeros", "reflect", "replicate"])
        n, c, t = rng.choice([1, 1, 2, 3]), rng.randint(1, 3), rng.randint(1, 4)
        h, w = rng.randint(1, 7), rng.randint(1, 7)
        kh, kw = rng.randint(1, 5), rng.randint(1, 5)
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        dh, dw = rng.randint(1, 3), rng.randint(1, 3)
        ph, pw = rng.randint(0, 3), rng.randint(0, 3)
        if mode == "reflect" and (ph >= h or pw >= w):
            continue
        if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
            continue
        return {
            "x": (n, c, h, w),
            "w": (t, c, kh, kw),
            "stride": (sh, sw),
            "dilation": (dh, dw),
            "padding": (ph, pw),
            "mode": mode,
            "bias": rng.random() < 0.7,
        }


def tensors(case: dict, seed: int, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(case["x"], generator=g, dtype=dtype)
    w = torch.randn(case["w"], generator=g, dtype=dtype)
    b = torch.randn(case["w"][0], generator=g, dtype=dtype) if case["bias"] else None
    return x, w, b


def torch_conv(x, w, b, case):
    """The oracle: F.pad for the padding mode, then F.conv2d with no padding."""
    ph, pw = case["padding"]
    xp = F.pad(x, (pw, pw, ph, ph), mode=TORCH_MODE[case["mode"]])
    return F.conv2d(xp, w, b, stride=case["stride"], dilation=case["dilation"])


# ------------------------------------------------------------------------------------------
# the lecture's examples
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "patch, expected",
    [
        ([[1, 1], [0, 1]], 2),
        ([[3, 0], [0, 3]], 6),
        ([[1, 1], [1, 1]], 2),
        ([[5, 0], [0, 5]], 10),
        ([[1, 2], [3, 0]], 1),
        ([[0, 2], [3, 0]], 0),
    ],
)
@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_lecture_2x2_examples(fn, patch, expected):
    """The diagonal filter [[1, 0], [0, 1]] fires on diagonal patterns (lecture 03)."""
    image = torch.tensor(patch, dtype=F64).view(1, 1, 2, 2)
    diagonal = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64).view(1, 1, 2, 2)
    out = fn(image, diagonal)
    assert out.shape == (1, 1, 1, 1)
    assert out.item() == expected


@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_pattern_detection_does_not_depend_on_position(fn):
    """The same pattern anywhere in the image gives the same peak response."""
    diagonal = torch.eye(2, dtype=F64).view(1, 1, 2, 2)
    for top, left in [(0, 0), (3, 1), (4, 4)]:
        image = torch.zeros(1, 1, 6, 6, dtype=F64)
        image[0, 0, top : top + 2, left : left + 2] = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
        out = fn(image, diagonal)
        assert out.max().item() == 6
        assert tuple(int(i) for i in (out[0, 0] == 6).nonzero()[0]) == (top, left)


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=F64)


@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_sobel_finds_a_vertical_edge(fn):
    """A step from 0 to 1 between columns 3 and 4: Sobel-x answers 4 on the two edge columns only,
    Sobel-y (its transpose) answers 0 everywhere."""
    image = torch.zeros(1, 1, 8, 8, dtype=F64)
    image[..., 4:] = 1.0
    gx = fn(image, SOBEL_X.view(1, 1, 3, 3), padding=1, padding_mode="replicate")[0, 0]
    gy = fn(image, SOBEL_X.t().reshape(1, 1, 3, 3), padding=1, padding_mode="replicate")[0, 0]
    expected = torch.zeros(8, 8, dtype=F64)
    expected[:, 3:5] = 4.0
    torch.testing.assert_close(gx, expected)
    torch.testing.assert_close(gy, torch.zeros(8, 8, dtype=F64))


@pytest.mark.parametrize("mode, scipy_mode", [("zeros", "constant"), ("reflect", "mirror"), ("replicate", "nearest")])
def test_sobel_matches_scipy_correlate(mode, scipy_mode):
    """Sobel on a random image with each padding mode equals scipy.ndimage.correlate (an independent oracle)."""
    rng = np.random.default_rng(3)
    image = rng.random((13, 17))
    expected = scipy.ndimage.correlate(image, SOBEL_X.numpy(), mode=scipy_mode, cval=0.0)
    out = conv2d_im2col(torch.from_numpy(image).view(1, 1, 13, 17), SOBEL_X.view(1, 1, 3, 3), padding=1, padding_mode=mode)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, rtol=1e-12, atol=1e-12)
    padded = pad2d(torch.from_numpy(image), 2, mode).numpy()
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    np.testing.assert_array_equal(padded, np.pad(image, 2, mode=numpy_mode))


# ------------------------------------------------------------------------------------------
# padding
# ------------------------------------------------------------------------------------------
def test_pad2d_hand_examples():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert pad2d(x, (0, 2), "zeros").tolist() == [[0, 0, 1, 2, 3, 0, 0], [0, 0, 4, 5, 6, 0, 0]]
    assert pad2d(x, (0, 2), "reflect").tolist() == [[3, 2, 1, 2, 3, 2, 1], [6, 5, 4, 5, 6, 5, 4]]
    assert pad2d(x, (0, 2), "replicate").tolist() == [[1, 1, 1, 2, 3, 3, 3], [4, 4, 4, 5, 6, 6, 6]]
    assert pad2d(x, (1, 0), "reflect").tolist() == [[4, 5, 6], [1, 2, 3], [4, 5, 6], [1, 2, 3]]


@pytest.mark.parametrize("seed", range(12))
def test_pad2d_matches_torch(seed):
    rng = random.Random(seed)
    mode = ["zeros", "reflect", "replicate"][seed % 3]
    shape = [rng.randint(1, 3) for _ in range(rng.choice([1, 2]))] + [rng.randint(1, 6), rng.randint(1, 6)]
    h, w = shape[-2:]
    limit_h, limit_w = (h - 1, w - 1) if mode == "reflect" else (4, 4)
    pad = (rng.randint(0, limit_w), rng.randint(0, limit_w), rng.randint(0, limit_h), rng.randint(0, limit_h))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    expected = F.pad(x, pad, mode=TORCH_MODE[mode])
    torch.testing.assert_close(pad2d(x, pad, mode), expected, rtol=0, atol=0)
    # the int and (ph, pw) forms mean symmetric padding
    p = min(limit_h, limit_w)
    torch.testing.assert_close(pad2d(x, p, mode), F.pad(x, (p, p, p, p), mode=TORCH_MODE[mode]), rtol=0, atol=0)
    torch.testing.assert_close(
        pad2d(x, (limit_h, limit_w), mode), F.pad(x, (limit_w, limit_w, limit_h, limit_h), mode=TORCH_MODE[mode])
    )


def test_pad2d_returns_a_new_tensor():
    x = torch.ones(1, 1, 2, 2)
    y = pad2d(x, 0)
    y += 1
    assert x.sum().item() == 4


# ------------------------------------------------------------------------------------------
# convolution forward
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_conv2d_matches_torch(fn, seed):
    case = conv_case(seed)
    x, w, b = tensors(case, seed)
    out = fn(x, w, b, stride=case["stride"], padding=case["padding"], dilation=case["dilation"], padding_mode=case["mode"])
    torch.testing.assert_close(out, torch_conv(x, w, b, case), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "x_shape, w_shape, padding, stride, dilation",
    [
        ((1, 2, 2, 3), (3, 2, 5, 5), 2, 1, 1),  # kernel wider than the input, batch of one
        ((1, 1, 1, 1), (2, 1, 3, 3), 1, 1, 1),  # a single pixel
        ((2, 3, 3, 2), (1, 3, 3, 3), (1, 2), 2, 2),  # dilated kernel spanning 5 > 3 and 2 pixels
        ((1, 1, 4, 4), (1, 1, 4, 4), 0, 1, 1),  # kernel exactly the input: one output pixel
        ((3, 2, 9, 1), (2, 2, 2, 1), 0, (3, 1), (2, 1)),  # rectangular everything
    ],
)
@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_conv2d_edge_cases(fn, x_shape, w_shape, padding, stride, dilation):
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(x_shape, generator=g, dtype=F64), torch.randn(w_shape, generator=g, dtype=F64)
    expected = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    torch.testing.assert_close(fn(x, w, stride=stride, padding=padding, dilation=dilation), expected)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel, dilation", [((3, 3), 1), ((2, 4), 1), ((3, 2), (2, 3)), ((1, 5), 2)])
@pytest.mark.parametrize("fn", CONV_FUNCS)
def test_conv2d_same_and_valid(fn, padding, kernel, dilation):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 2, 9, 10, generator=g, dtype=F64)
    w = torch.randn(3, 2, *kernel, generator=g, dtype=F64)
    expected = F.conv2d(x, w, padding=padding, dilation=dilation)
    torch.testing.assert_close(fn(x, w, padding=padding, dilation=dilation), expected)


def test_conv2d_im2col_float32_and_batch_chunks(monkeypatch):
    """float32 at a realistic size, and with a chunk budget so small that every image is its own chunk."""
    g = torch.Generator().manual_seed(4)
    x, w, b = torch.randn(5, 8, 12, 11, generator=g), torch.randn(6, 8, 3, 3, generator=g), torch.randn(6, generator=g)
    expected = F.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(conv2d_im2col(x, w, b, padding=1), expected, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(conv, "_CPU_CHUNK_BYTES", 1)
    torch.testing.assert_close(conv2d_im2col(x, w, b, padding=1), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_im2col_is_differentiable_by_autograd():
    case = conv_case(7)
    x, w, b = tensors(case, 7)
    for t in (x, w, b):
        if t is not None:
            t.requires_grad_(True)
    args = {"stride": case["stride"], "padding": case["padding"], "dilation": case["dilation"]}
    ours = torch.autograd.grad(conv2d_im2col(x, w, None, padding_mode=case["mode"], **args).square().sum(), (x, w))
    theirs = torch.autograd.grad(torch_conv(x, w, None, case).square().sum(), (x, w))
    for a, e in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, e)


def test_translation_equivariance():
    """Shift the input, the feature map shifts by the same amount (away from the border)."""
    g = torch.Generator().manual_seed(5)
    x = torch.zeros(1, 1, 20, 20, dtype=F64)
    x[..., 4:10, 5:9] = torch.randn(6, 4, generator=g, dtype=F64)
    w = torch.randn(3, 1, 3, 3, generator=g, dtype=F64)
    shifted = torch.roll(x, shifts=(5, 7), dims=(2, 3))
    out, out_shifted = conv2d_im2col(x, w, padding=1), conv2d_im2col(shifted, w, padding=1)
    torch.testing.assert_close(out_shifted, torch.roll(out, shifts=(5, 7), dims=(2, 3)))


# ------------------------------------------------------------------------------------------
# im2col / col2im
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(15))
def test_im2col_and_col2im_match_unfold_and_fold(seed):
    case = conv_case(100 + seed)
    x, _, _ = tensors(case, seed)
    k = case["w"][2:]
    args = {"stride": case["stride"], "padding": case["padding"], "dilation": case["dilation"]}
    cols = im2col(x, k, **args)
    torch.testing.assert_close(cols, F.unfold(x, k, **args), rtol=0, atol=0)
    g = torch.randn(cols.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    torch.testing.assert_close(col2im(g, case["x"][2:], k, **args), F.fold(g, case["x"][2:], k, **args))
    # padding modes: im2col pads first, like F.pad followed by F.unfold
    ph, pw = case["padding"]
    if case["mode"] != "zeros":
        xp = F.pad(x, (pw, pw, ph, ph), mode=TORCH_MODE[case["mode"]])
        expected = F.unfold(xp, k, stride=case["stride"], dilation=case["dilation"])
        torch.testing.assert_close(im2col(x, k, padding_mode=case["mode"], **args), expected, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------
# convolution backward and transposed convolution
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
def test_conv2d_backward_matches_autograd(seed):
    case = conv_case(1000 + seed)
    case["bias"] = True
    x, w, b = tensors(case, seed)
    x.requires_grad_(True)
    w.requires_grad_(True)
    b.requires_grad_(True)
    out = torch_conv(x, w, b, case)
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    expected = torch.autograd.grad(out, (x, w, b), dout)
    with torch.no_grad():
        got = conv2d_backward(
            dout,
            x,
            w,
            stride=case["stride"],
            padding=case["padding"],
            dilation=case["dilation"],
            padding_mode=case["mode"],
        )
    for name, a, e in zip(("dx", "dw", "db"), got, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10, msg=lambda m, name=name: f"{name}: {m}")


def test_conv2d_backward_same_padding():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 6, 7, generator=g, dtype=F64, requires_grad=True)
    w = torch.randn(4, 3, 2, 4, generator=g, dtype=F64, requires_grad=True)
    out = F.conv2d(x, w, padding="same", dilation=(1, 2))
    dout = torch.randn(out.shape, generator=g, dtype=F64)
    dx, dw = torch.autograd.grad(out, (x, w), dout)
    got = conv2d_backward(dout, x.detach(), w.detach(), padding="same", dilation=(1, 2))
    torch.testing.assert_close(got[0], dx)
    torch.testing.assert_close(got[1], dw)


@pytest.mark.parametrize("seed", range(20))
def test_conv_transpose2d_matches_torch(seed):
    rng = random.Random(seed)
    n, t_in, c_out = rng.choice([1, 2]), rng.randint(1, 3), rng.randint(1, 3)
    h, w_ = rng.randint(1, 5), rng.randint(1, 5)
    k = (rng.randint(1, 4), rng.randint(1, 4))
    s, d = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(1, 2), rng.randint(1, 2))
    op = (rng.randint(0, max(s[0], d[0]) - 1), rng.randint(0, max(s[1], d[1]) - 1))
    canvas = ((h - 1) * s[0] + d[0] * (k[0] - 1) + 1 + op[0], (w_ - 1) * s[1] + d[1] * (k[1] - 1) + 1 + op[1])
    p = (rng.randint(0, (canvas[0] - 1) // 2), rng.randint(0, (canvas[1] - 1) // 2))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t_in, h, w_, generator=g, dtype=F64)
    w = torch.randn(t_in, c_out, *k, generator=g, dtype=F64)
    b = torch.randn(c_out, generator=g, dtype=F64) if seed % 2 else None
    expected = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, dilation=d)
    got = conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d, b=b)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(seed):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> whenever the sizes line up."""
    case = conv_case(2000 + seed)
    case["mode"], case["bias"] = "zeros", False
    x, w, _ = tensors(case, seed)
    out = conv2d_im2col(x, w, stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
    y = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    extra = [
        x.shape[2 + a] + 2 * case["padding"][a] - case["dilation"][a] * (w.shape[2 + a] - 1) - 1 - (out.shape[2 + a] - 1) * case["stride"][a]
        for a in range(2)
    ]
    if any(e >= max(case["stride"][a], case["dilation"][a]) for a, e in enumerate(extra)):
        pytest.skip("these sizes cannot be matched by output_padding")
    back = conv_transpose2d(y, w, case["stride"], case["padding"], output_padding=tuple(extra), dilation=case["dilation"])
    assert back.shape == x.shape
    torch.testing.assert_close((out * y).sum(), (x * back).sum())


# ------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------
def pool_case(seed: int):
    rng = random.Random(seed)
    while True:
        n, c, h, w = rng.choice([1, 2]), rng.randint(1, 3), rng.randint(1, 8), rng.randint(1, 8)
        k = (rng.randint(1, 4), rng.randint(1, 4))
        stride = None if rng.random() < 0.3 else (rng.randint(1, 3), rng.randint(1, 3))
        pad = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
        if k[0] <= h + 2 * pad[0] and k[1] <= w + 2 * pad[1]:
            return (n, c, h, w), k, stride, pad


@pytest.mark.parametrize("seed", range(30))
def test_pooling_forward_and_backward_match_torch(seed):
    shape, k, stride, pad = pool_case(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=F64, requires_grad=True)
    for ours, ours_backward, theirs in (
        (max_pool2d, max_pool2d_backward, F.max_pool2d),
        (avg_pool2d, avg_pool2d_backward, F.avg_pool2d),
    ):
        expected = theirs(x, k, stride, pad)
        got = ours(x.detach(), k, stride, pad)
        torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-12)
        dout = torch.randn(expected.shape, generator=g, dtype=F64)
        (dx,) = torch.autograd.grad(expected, x, dout)
        torch.testing.assert_close(ours_backward(dout, x.detach(), k, stride, pad), dx, rtol=1e-12, atol=1e-12)


def test_max_pool_ties_go_to_the_first_maximum_like_torch():
    g = torch.Generator().manual_seed(8)
    x = torch.randint(0, 3, (2, 2, 7, 7), generator=g).to(F64).requires_grad_(True)
    for k, stride in [(2, None), (3, 1), (3, 2)]:
        out = F.max_pool2d(x, k, stride)
        dout = torch.randn(out.shape, generator=g, dtype=F64)
        (dx,) = torch.autograd.grad(out, x, dout)
        torch.testing.assert_close(max_pool2d_backward(dout, x.detach(), k, stride), dx)


def test_max_pool_hand_example():
    x = torch.tensor([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 1.0], [0.0, 0.0, 5.0, 6.0], [1.0, 2.0, 7.0, 0.0]]).view(1, 1, 4, 4)
    assert max_pool2d(x, 2).view(2, 2).tolist() == [[4.0, 2.0], [2.0, 7.0]]
    assert avg_pool2d(x, 2).view(2, 2).tolist() == [[2.5, 1.0], [0.75, 4.5]]
    dx = max_pool2d_backward(torch.ones(1, 1, 2, 2), x, 2)
    assert dx.view(4, 4).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]]


# ------------------------------------------------------------------------------------------
# sizes and receptive fields
# ------------------------------------------------------------------------------------------
def test_context_network_receptive_fields():
    """Yu & Koltun's context network: 3x3 with dilations 1, 1, 2, 4, 8, 16, 1, then a 1x1."""
    layers = [(3, 1, d) for d in (1, 1, 2, 4, 8, 16, 1)] + [(1, 1, 1)]
    assert receptive_field(layers) == [3, 5, 9, 17, 33, 65, 67, 67]


def test_receptive_field_simple_stacks():
    assert receptive_field([(3, 1, 1)] * 3) == [3, 5, 7]
    assert receptive_field([(2, 2, 1)] * 3) == [2, 4, 8]  # 2x2 pooling doubles it
    assert receptive_field([(5,), (2, 2), (5,)]) == [5, 6, 14]
    assert receptive_field([]) == []


def _gradient_extent(layers, width):
    """Receptive field measured with autograd: span of input pixels that reach output pixel 0."""
    x = torch.ones(1, 1, 1, width, dtype=F64, requires_grad=True)
    h = x
    extents = []
    for k, s, d in layers:
        h = F.conv2d(h, torch.ones(1, 1, 1, k, dtype=F64), stride=(1, s), dilation=(1, d))
        (g,) = torch.autograd.grad(h[0, 0, 0, 0], x, retain_graph=True)
        nonzero = g[0, 0, 0].nonzero()
        extents.append(int(nonzero.max() - nonzero.min()) + 1)
    return extents


@pytest.mark.parametrize("seed", range(15))
def test_receptive_field_matches_autograd(seed):
    rng = random.Random(seed)
    layers = [(rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 3)) for _ in range(rng.randint(1, 5))]
    expected = receptive_field(layers)
    assert _gradient_extent(layers, expected[-1] + rng.randint(0, 5)) == expected


@pytest.mark.parametrize("seed", range(25))
def test_conv_output_size_matches_torch(seed):
    rng = random.Random(seed)
    size, k, s, p, d = rng.randint(1, 12), rng.randint(1, 6), rng.randint(1, 4), rng.randint(0, 3), rng.randint(1, 3)
    x, w = torch.zeros(1, 1, size, 1), torch.zeros(1, 1, k, 1)
    try:
        expected = F.conv2d(x, w, stride=(s, 1), padding=(p, 0), dilation=(d, 1)).shape[2]
    except RuntimeError:
        with pytest.raises(ValueError, match="kernel spans"):
            conv_output_size(size, k, s, p, d)
        return
    assert conv_output_size(size, k, s, p, d) == expected


# ------------------------------------------------------------------------------------------
# wrong arguments
# ------------------------------------------------------------------------------------------
def test_wrong_shapes_and_arguments_raise_value_errors():
    x, w = torch.zeros(2, 3, 5, 5), torch.zeros(4, 3, 3, 3)
    for fn in CONV_FUNCS:
        with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
            fn(torch.zeros(3, 5, 5), w)
        with pytest.raises(ValueError, match="channels"):
            fn(torch.zeros(2, 2, 5, 5), w)
        with pytest.raises(ValueError, match="b must have shape"):
            fn(x, w, torch.zeros(3))
        with pytest.raises(ValueError, match="kernel spans"):
            fn(x, torch.zeros(4, 3, 7, 3))
        with pytest.raises(ValueError, match="padding mode"):
            fn(x, w, padding=1, padding_mode="circular")
        with pytest.raises(ValueError, match="stride must be >= 1"):
            fn(x, w, stride=0)
        with pytest.raises(ValueError, match="same"):
            fn(x, w, padding="same", stride=2)
        with pytest.raises(ValueError, match="dtype"):
            fn(x.double(), w)
    with pytest.raises(ValueError, match="reflect padding"):
        pad2d(x, 5, "reflect")
    with pytest.raises(ValueError, match="pad must be"):
        pad2d(x, (1, 2, 3))
    with pytest.raises(ValueError, match=">= 0"):
        pad2d(x, -1)
    with pytest.raises(ValueError, match="dout must have"):
        conv2d_backward(torch.zeros(2, 4, 5, 5), x, w)
    with pytest.raises(ValueError, match="dout must have"):
        max_pool2d_backward(torch.zeros(2, 3, 3, 3), x, 2)
    with pytest.raises(ValueError, match="dout must have"):
        avg_pool2d_backward(torch.zeros(2, 3, 3, 3), x, 2)
    with pytest.raises(ValueError, match="at most half"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="kernel spans"):
        avg_pool2d(x, 6)
    with pytest.raises(ValueError, match="channels"):
        conv_transpose2d(torch.zeros(1, 3, 4, 4), torch.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d(torch.zeros(1, 4, 4, 4), torch.zeros(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="crops the whole"):
        conv_transpose2d(torch.zeros(1, 4, 1, 1), torch.zeros(4, 2, 1, 1), padding=1)
    with pytest.raises(ValueError, match="cols"):
        col2im(torch.zeros(1, 10, 9), (5, 5), 3)
    with pytest.raises(ValueError, match="layer 1"):
        receptive_field([(3, 1, 1), (3, 0, 1)])
    with pytest.raises(ValueError, match="kernel_size"):
        conv_output_size(5, 0)
    with pytest.raises(ValueError, match="kernel spans"):
        conv_output_size(5, 3, dilation=3)
