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
# # Assignment 03 · Convolutions by hand
#
# In this assignment you implement, on PyTorch tensors, the operations of lecture 03:
#
# 1. the three **padding modes** — zeros, reflection, replication (3 points);
# 2. the **convolution** with stride, padding and dilation, written with loops (4 points);
# 3. its **backward pass**: the gradients with respect to the input, the filters and the bias,
#    derived by hand (4 points);
# 4. **max pooling**, forward and backward (4 points).
#
# Layouts are PyTorch's: images `x` of shape $(N, C, H, W)$, filters `w` of shape
# $(T, C, k_H, k_W)$ ($T$ output channels), bias `b` of shape $(T,)$. Use `float64` tensors.
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# random shapes, strides and paddings you have not seen, against `torch.nn.functional`.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: inside your functions use tensor indexing, slicing and arithmetic (`+`, `*`, `.sum()`,
# `torch.einsum`, `.argmax()`, ...). **Do not call** `torch.nn.functional` (no `F.pad`,
# `F.conv2d`, `F.unfold`, `F.max_pool2d`), `torch.nn` layers, `Tensor.unfold` or autograd.
# Python loops over output positions are fine: clarity first.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import torch
import torch.nn.functional as F  # only the tests use it, as the reference

from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape

SMOKE = setup_notebook(SMOKE, seed=0)
torch.set_default_dtype(torch.float64)
SPEED_SIZE = 12 if SMOKE else 28  # image side for the speed comparison at the end

# %% [markdown] nbgrader={"grade": false, "grade_id": "pad_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. Padding (3 points)
#
# Without padding a $k \times k$ filter cannot be centred on the border pixels, and the output
# loses $k - 1$ rows and columns ("valid" mode). Padding adds $p$ pixels on every side of each
# image, so `(N, C, H, W)` becomes `(N, C, H + 2p, W + 2p)`. For a row `a b c d`, $p = 2$:
#
# | mode | padded row | rule |
# | --- | --- | --- |
# | `"zeros"` | `0 0 a b c d 0 0` | the border is zero |
# | `"reflect"` | `c b a b c d c b` | mirror about the edge pixel, which is **not** repeated; needs $p < H$ and $p < W$ |
# | `"replicate"` | `a a a b c d d d` | repeat the edge pixel |
#
# The same rule applies to the columns and then the rows (corners follow). Raise a `ValueError`
# for an unknown mode or for reflection padding with $p \ge H$ or $p \ge W$.
#
# Hint: for `reflect` and `replicate`, build for every padded position the index of the input
# pixel it copies (a tensor of length $H + 2p$ for the rows, $W + 2p$ for the columns) and index
# `x` with them.

# %% nbgrader={"grade": false, "grade_id": "pad2d", "locked": false, "solution": true, "schema_version": 3}
def pad2d(x, p, mode="zeros"):
    """Pad x: (N, C, H, W) by p >= 0 pixels on every side -> (N, C, H + 2p, W + 2p).

    mode: "zeros", "reflect" or "replicate".
    """
    ### BEGIN SOLUTION
    if mode not in ("zeros", "reflect", "replicate"):
        raise ValueError(f"unknown padding mode {mode!r}; use 'zeros', 'reflect' or 'replicate'")
    n, c, h, w = x.shape
    if mode == "zeros":
        out = x.new_zeros((n, c, h + 2 * p, w + 2 * p))
        out[:, :, p : p + h, p : p + w] = x
        return out
    if mode == "reflect" and (p >= h or p >= w):
        raise ValueError(f"reflect padding {p} must be smaller than the image {h}x{w}")

    def source(size):
        idx = torch.arange(-p, size + p)
        if mode == "replicate":
            return idx.clamp(0, size - 1)
        idx = idx.abs()
        return torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)

    return x[:, :, source(h)][:, :, :, source(w)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pad2d_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).view(1, 1, 2, 3)
assert_shape(pad2d(_x, 1, "zeros"), (1, 1, 4, 5), "pad2d(x of shape (1, 1, 2, 3), p=1)")
assert_close(pad2d(_x, 1, "zeros")[0, 0],
             [[0, 0, 0, 0, 0], [0, 1, 2, 3, 0], [0, 4, 5, 6, 0], [0, 0, 0, 0, 0]], "zero padding by 1")
assert_close(pad2d(_x, 1, "replicate")[0, 0],
             [[1, 1, 2, 3, 3], [1, 1, 2, 3, 3], [4, 4, 5, 6, 6], [4, 4, 5, 6, 6]], "replicate padding by 1")
assert_close(pad2d(_x, 1, "reflect")[0, 0],
             [[5, 4, 5, 6, 5], [2, 1, 2, 3, 2], [5, 4, 5, 6, 5], [2, 1, 2, 3, 2]],
             "reflect padding by 1 (the edge pixel is not repeated)")
assert_close(pad2d(torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]]).expand(1, 1, 3, 4), 2, "reflect")[0, 0, 2],
             [3, 2, 1, 2, 3, 4, 3, 2], "reflect padding by 2 of the row 1 2 3 4")
assert_close(pad2d(_x, 0, "reflect"), _x, "padding by 0 changes nothing")
for _bad in [lambda: pad2d(_x, 2, "reflect"), lambda: pad2d(_x, 1, "circular")]:
    try:
        _bad()
    except ValueError:
        pass
    else:
        raise AssertionError("pad2d must raise ValueError for reflect padding >= the image size and for unknown modes")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(303)
for _trial in range(12):
    _mode = ["zeros", "reflect", "replicate"][_trial % 3]
    _shape = tuple(int(v) for v in torch.randint(1, 4, (2,), generator=_g)) + tuple(
        int(v) for v in torch.randint(2, 8, (2,), generator=_g))
    _p = int(torch.randint(0, min(_shape[2:]) if _mode == "reflect" else 5, (1,), generator=_g))
    _xr = torch.randn(_shape, generator=_g)
    _torch_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}[_mode]
    assert_close(pad2d(_xr, _p, _mode), F.pad(_xr, (_p, _p, _p, _p), mode=_torch_mode),
                 f"pad2d(x of shape {_shape}, p={_p}, mode={_mode!r}) vs F.pad")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "conv_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. Convolution with stride, padding and dilation (4 points)
#
# With $x_p$ the zero-padded input, stride $s$ and dilation $l$, output pixel $(i, j)$ of output
# channel $t$ is
#
# $$\mathrm{out}[n, t, i, j] = b_t + \sum_{c=1}^{C} \sum_{u=0}^{k_H - 1} \sum_{v=0}^{k_W - 1}
#   w[t, c, u, v]\; x_p[n, c,\; i s + u l,\; j s + v l],$$
#
# the lecture's $\sum_{i,j} K(i, j)\,\mathrm{Im}(x + i, y + j)$ with the filter's taps $l$ pixels
# apart and its position moved $s$ pixels at a time. The output has
#
# $$H_{out} = \left\lfloor \frac{H + 2p - l (k_H - 1) - 1}{s} \right\rfloor + 1$$
#
# rows (and the same formula for the columns). `stride`, `padding` and `dilation` are ints here,
# used along both axes. Raise a `ValueError` when the channels of `x` and `w` differ or when the
# (dilated) kernel is larger than the padded input.
#
# Hint: loop over the output positions $(i, j)$; the receptive field of all images at once is the
# slice `xp[:, :, i*s : i*s + l*(kH-1) + 1 : l, j*s : j*s + l*(kW-1) + 1 : l]` of shape
# $(N, C, k_H, k_W)$, and `torch.einsum("nchw,tchw->nt", field, w)` gives all $N \times T$ values.

# %% nbgrader={"grade": false, "grade_id": "conv2d_naive", "locked": false, "solution": true, "schema_version": 3}
def conv2d_naive(x, w, b=None, stride=1, padding=0, dilation=1):
    """x: (N, C, H, W), w: (T, C, kH, kW), b: (T,) or None -> (N, T, H_out, W_out).

    Zero padding; stride, padding and dilation are ints.
    """
    ### BEGIN SOLUTION
    n, c, h, wd = x.shape
    t, c_w, kh, kw = w.shape
    if c != c_w:
        raise ValueError(f"x has {c} channels but w expects {c_w}")
    s, p, dil = stride, padding, dilation
    span_h, span_w = dil * (kh - 1) + 1, dil * (kw - 1) + 1
    if span_h > h + 2 * p or span_w > wd + 2 * p:
        raise ValueError(f"the dilated kernel {span_h}x{span_w} does not fit the padded input {h + 2 * p}x{wd + 2 * p}")
    h_out = (h + 2 * p - span_h) // s + 1
    w_out = (wd + 2 * p - span_w) // s + 1
    xp = pad2d(x, p, "zeros")
    out = x.new_zeros((n, t, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            field = xp[:, :, i * s : i * s + span_h : dil, j * s : j * s + span_w : dil]
            out[:, :, i, j] = torch.einsum("nchw,tchw->nt", field, w)
    if b is not None:
        out += b.view(1, t, 1, 1)
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv2d_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
# the lecture's examples: the diagonal filter [[1, 0], [0, 1]] fires on diagonal patches
_diag = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)
for _patch, _expected in [([[1, 1], [0, 1]], 2), ([[3, 0], [0, 3]], 6), ([[1, 2], [3, 0]], 1), ([[0, 2], [3, 0]], 0)]:
    _out = conv2d_naive(torch.tensor(_patch, dtype=torch.float64).view(1, 1, 2, 2), _diag)
    assert_shape(_out, (1, 1, 1, 1), "conv2d_naive of a 2x2 patch with a 2x2 filter")
    assert_close(_out.flatten(), [_expected], f"{_patch} * [[1, 0], [0, 1]]")
# Sobel on a vertical step edge: 4 on the two columns next to the edge, 0 elsewhere
_step = torch.zeros(1, 1, 5, 6)
_step[..., 3:] = 1.0
_sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
assert_close(conv2d_naive(_step, _sobel)[0, 0], [[0, 4, 4, 0]] * 3, "Sobel-x on a vertical edge (no padding)")
# one small random case per option, against torch
_g = torch.Generator().manual_seed(0)
_x, _w, _b = torch.randn(2, 3, 7, 6, generator=_g), torch.randn(4, 3, 3, 2, generator=_g), torch.randn(4, generator=_g)
assert_close(conv2d_naive(_x, _w, _b), F.conv2d(_x, _w, _b), "conv2d_naive with a bias, no padding")
assert_close(conv2d_naive(_x, _w, padding=1), F.conv2d(_x, _w, padding=1), "conv2d_naive with padding=1")
assert_close(conv2d_naive(_x, _w, stride=2), F.conv2d(_x, _w, stride=2), "conv2d_naive with stride=2")
assert_close(conv2d_naive(_x, _w, dilation=2), F.conv2d(_x, _w, dilation=2), "conv2d_naive with dilation=2")
try:
    conv2d_naive(_x, torch.randn(4, 2, 3, 3))
except ValueError:
    pass
else:
    raise AssertionError("conv2d_naive must raise ValueError when x and w have different channel counts")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(404)
_done = 0
while _done < 12:
    _n, _c, _t = [int(v) for v in torch.randint(1, 4, (3,), generator=_g)]
    _h, _wd, _k1, _k2 = [int(v) for v in torch.randint(1, 7, (4,), generator=_g)]
    _s, _d = [int(v) for v in torch.randint(1, 4, (2,), generator=_g)]
    _p = int(torch.randint(0, 3, (1,), generator=_g))
    if _d * (_k1 - 1) + 1 > _h + 2 * _p or _d * (_k2 - 1) + 1 > _wd + 2 * _p:
        continue
    _xr, _wr = torch.randn(_n, _c, _h, _wd, generator=_g), torch.randn(_t, _c, _k1, _k2, generator=_g)
    _br = torch.randn(_t, generator=_g) if _done % 2 else None
    assert_close(conv2d_naive(_xr, _wr, _br, stride=_s, padding=_p, dilation=_d),
                 F.conv2d(_xr, _wr, _br, stride=_s, padding=_p, dilation=_d),
                 f"conv2d_naive(x {tuple(_xr.shape)}, w {tuple(_wr.shape)}, stride={_s}, padding={_p}, dilation={_d})")
    _done += 1
# a kernel larger than the unpadded input, batch of one
_xr, _wr = torch.randn(1, 2, 2, 3, generator=_g), torch.randn(3, 2, 5, 5, generator=_g)
assert_close(conv2d_naive(_xr, _wr, padding=2), F.conv2d(_xr, _wr, padding=2), "a 5x5 kernel on a 2x3 image, padding 2")
try:
    conv2d_naive(torch.randn(1, 1, 3, 3), torch.randn(1, 1, 3, 3), dilation=2)
except ValueError:
    pass
else:
    raise AssertionError("conv2d_naive must raise ValueError when the dilated kernel does not fit")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "backward_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. The backward pass (4 points)
#
# Given $\delta = \partial L / \partial\, \mathrm{out}$ of shape $(N, T, H_{out}, W_{out})$, each
# output value $\mathrm{out}[n, t, i, j]$ depended on $b_t$, on the filter $w[t]$ and on its
# receptive field in $x_p$, so by the chain rule
#
# $$\frac{\partial L}{\partial b_t} = \sum_{n, i, j} \delta[n, t, i, j], \qquad
#   \frac{\partial L}{\partial w[t, c, u, v]} = \sum_{n, i, j} \delta[n, t, i, j]\; x_p[n, c, i s + u l, j s + v l],$$
#
# $$\frac{\partial L}{\partial x_p[n, c, i s + u l, j s + v l]} \mathrel{+}= \sum_t \delta[n, t, i, j]\; w[t, c, u, v].$$
#
# The last line is an *accumulation*: where receptive fields overlap, a pixel collects gradient
# from every output that saw it. Finally cut the padding off $\partial L / \partial x_p$ (zero
# padding: the padded pixels are constants). Return `(dx, dw, db)` with the shapes of `x`, `w`
# and `(T,)`. No autograd.
#
# Hint: the same loop over $(i, j)$ as the forward pass; at each position the field has shape
# $(N, C, k_H, k_W)$ and $\delta[:, :, i, j]$ has shape $(N, T)$.

# %% nbgrader={"grade": false, "grade_id": "conv2d_backward", "locked": false, "solution": true, "schema_version": 3}
def conv2d_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients of conv2d_naive(x, w, b, stride, padding, dilation) given dout = dL/dout.

    dout: (N, T, H_out, W_out) -> (dx: (N, C, H, W), dw: (T, C, kH, kW), db: (T,)).
    """
    ### BEGIN SOLUTION
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    s, p, dil = stride, padding, dilation
    span_h, span_w = dil * (kh - 1) + 1, dil * (kw - 1) + 1
    h_out, w_out = dout.shape[2:]
    xp = pad2d(x, p, "zeros")
    dxp = torch.zeros_like(xp)
    dw = torch.zeros_like(w)
    for i in range(h_out):
        for j in range(w_out):
            rows = slice(i * s, i * s + span_h, dil)
            cols = slice(j * s, j * s + span_w, dil)
            g = dout[:, :, i, j]  # (N, T)
            dw += torch.einsum("nt,nchw->tchw", g, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += torch.einsum("nt,tchw->nchw", g, w)
    db = dout.sum(dim=(0, 2, 3))
    dx = dxp[:, :, p : p + h, p : p + wd]
    return dx, dw, db
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv2d_backward_tests", "locked": true, "points": 4, "solution": false, "schema_version": 3}
def _autograd_conv(dout, x, w, b, **kw):
    x, w, b = x.clone().requires_grad_(True), w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    return torch.autograd.grad(F.conv2d(x, w, b, **kw), (x, w, b), dout)


# a 1x1 filter: dx = w * dout, dw = sum(x * dout), db = sum(dout)
_x1, _d1 = torch.arange(4.0).view(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
_dx, _dw, _db = conv2d_backward(_d1, _x1, torch.full((1, 1, 1, 1), 3.0))
assert_close(_dx, torch.full((1, 1, 2, 2), 3.0), "dx of a 1x1 filter of weight 3 with dout = 1")
assert_close(_dw.flatten(), [6.0], "dw of a 1x1 filter is the sum of x * dout = 0 + 1 + 2 + 3")
assert_close(_db, [4.0], "db is the sum of dout over the batch and all positions")
_g = torch.Generator().manual_seed(1)
_x, _w, _b = torch.randn(2, 3, 6, 5, generator=_g), torch.randn(4, 3, 3, 3, generator=_g), torch.randn(4, generator=_g)
for _kw in [{}, {"padding": 1}, {"stride": 2}, {"dilation": 2}]:
    _out = F.conv2d(_x, _w, _b, **_kw)
    _dout = torch.randn(_out.shape, generator=_g)
    _expected = _autograd_conv(_dout, _x, _w, _b, **_kw)
    _got = conv2d_backward(_dout, _x, _w, **_kw)
    assert isinstance(_got, tuple) and len(_got) == 3, "conv2d_backward must return a tuple (dx, dw, db)"
    for _name, _a, _e in zip(("dx", "dw", "db"), _got, _expected):
        assert_close(_a, _e, f"{_name} with {_kw or 'no options'}, vs autograd", rtol=1e-9, atol=1e-10)
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(505)
_done = 0
while _done < 10:
    _n, _c, _t = [int(v) for v in torch.randint(1, 4, (3,), generator=_g)]
    _h, _wd, _k1, _k2 = [int(v) for v in torch.randint(1, 7, (4,), generator=_g)]
    _s, _d = [int(v) for v in torch.randint(1, 4, (2,), generator=_g)]
    _p = int(torch.randint(0, 3, (1,), generator=_g))
    if _d * (_k1 - 1) + 1 > _h + 2 * _p or _d * (_k2 - 1) + 1 > _wd + 2 * _p:
        continue
    _xr, _wr, _br = (torch.randn(_n, _c, _h, _wd, generator=_g), torch.randn(_t, _c, _k1, _k2, generator=_g),
                     torch.randn(_t, generator=_g))
    _kw = {"stride": _s, "padding": _p, "dilation": _d}
    _dout = torch.randn(F.conv2d(_xr, _wr, _br, **_kw).shape, generator=_g)
    for _name, _a, _e in zip(("dx", "dw", "db"), conv2d_backward(_dout, _xr, _wr, **_kw),
                             _autograd_conv(_dout, _xr, _wr, _br, **_kw)):
        assert_close(_a, _e, f"{_name} for x {tuple(_xr.shape)}, w {tuple(_wr.shape)}, {_kw}", rtol=1e-9, atol=1e-10)
    _done += 1
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "pool_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. Max pooling, forward and backward (4 points)
#
# Max pooling has no parameters: output pixel $(i, j)$ is the maximum of the $k \times k$ window
# whose top-left corner is $(i s, j s)$, separately for every image and channel:
#
# $$\mathrm{out}[n, c, i, j] = \max_{0 \le u, v < k} x[n, c, i s + u, j s + v], \qquad
#   H_{out} = \left\lfloor \frac{H - k}{s} \right\rfloor + 1.$$
#
# `stride=None` means $s = k$ (non-overlapping windows). The derivative of a maximum is 1 for the
# element that attained it and 0 for the others, so in the backward pass each
# $\delta[n, c, i, j]$ goes to the position of its window's maximum; when windows overlap
# ($s < k$), a pixel that is the maximum of several windows collects the sum. If a window has
# several equal maxima, give the gradient to the first one in row-major order (what
# `argmax` of the flattened window returns, and what PyTorch does).

# %% nbgrader={"grade": false, "grade_id": "max_pool", "locked": false, "solution": true, "schema_version": 3}
def max_pool2d(x, k, stride=None):
    """x: (N, C, H, W) -> (N, C, H_out, W_out), the maximum of each k x k window."""
    ### BEGIN SOLUTION
    s = k if stride is None else stride
    n, c, h, w = x.shape
    h_out, w_out = (h - k) // s + 1, (w - k) // s + 1
    out = x.new_empty((n, c, h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            out[:, :, i, j] = x[:, :, i * s : i * s + k, j * s : j * s + k].amax(dim=(2, 3))
    return out
    ### END SOLUTION


def max_pool2d_backward(dout, x, k, stride=None):
    """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W), the gradient of max_pool2d w.r.t. x."""
    ### BEGIN SOLUTION
    s = k if stride is None else stride
    n, c = x.shape[:2]
    dx = torch.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s : i * s + k, j * s : j * s + k].reshape(n, c, k * k)
            first_max = torch.zeros_like(window)
            first_max.scatter_(2, window.argmax(dim=2, keepdim=True), 1.0)
            dx[:, :, i * s : i * s + k, j * s : j * s + k] += (first_max * dout[:, :, i, j, None]).view(n, c, k, k)
    return dx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "max_pool_forward_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_x4 = torch.tensor([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 1.0], [0.0, 0.0, 5.0, 6.0], [1.0, 2.0, 7.0, 0.0]]).view(1, 1, 4, 4)
assert_shape(max_pool2d(_x4, 2), (1, 1, 2, 2), "max_pool2d(x of shape (1, 1, 4, 4), k=2)")
assert_close(max_pool2d(_x4, 2)[0, 0], [[4, 2], [2, 7]], "2x2 max pooling of the 4x4 example")
assert_close(max_pool2d(_x4, 3, stride=1)[0, 0], [[5, 6], [7, 7]], "3x3 max pooling with stride 1")
_g = torch.Generator().manual_seed(2)
_x = torch.randn(2, 3, 7, 6, generator=_g)
assert_close(max_pool2d(_x, 2), F.max_pool2d(_x, 2), "2x2 max pooling of a (2, 3, 7, 6) tensor (odd size: last row dropped)")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(606)
for _trial in range(12):
    _shape = tuple(int(v) for v in torch.randint(1, 4, (2,), generator=_g)) + tuple(
        int(v) for v in torch.randint(3, 10, (2,), generator=_g))
    _k = int(torch.randint(1, 4, (1,), generator=_g))
    _s = None if _trial % 3 == 0 else int(torch.randint(1, 4, (1,), generator=_g))
    _xr = torch.randn(_shape, generator=_g)
    assert_close(max_pool2d(_xr, _k, _s), F.max_pool2d(_xr, _k, _s), f"max_pool2d(x {_shape}, k={_k}, stride={_s})")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "max_pool_backward_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_dx = max_pool2d_backward(torch.ones(1, 1, 2, 2), _x4, 2)
assert_shape(_dx, (1, 1, 4, 4), "max_pool2d_backward(dout of shape (1, 1, 2, 2), x of shape (1, 1, 4, 4), k=2)")
assert_close(_dx[0, 0], [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0]],
             "the gradient goes to the maximum of each window (4, 2, 2, 7)")
assert_close(max_pool2d_backward(torch.ones(1, 1, 2, 2), _x4, 3, stride=1)[0, 0],
             [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 2, 0]],
             "overlapping 3x3 windows: the 7 is the maximum of two windows and collects both gradients")
_xg = torch.randn(2, 3, 7, 6, generator=_g, requires_grad=True)
_out = F.max_pool2d(_xg, 3, 2)
_dout = torch.randn(_out.shape, generator=_g)
(_expected,) = torch.autograd.grad(_out, _xg, _dout)
assert_close(max_pool2d_backward(_dout, _xg.detach(), 3, 2), _expected, "3x3 max pooling with stride 2, vs autograd")
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(707)
for _trial in range(12):
    _shape = tuple(int(v) for v in torch.randint(1, 4, (2,), generator=_g)) + tuple(
        int(v) for v in torch.randint(3, 10, (2,), generator=_g))
    _k = int(torch.randint(1, 4, (1,), generator=_g))
    _s = None if _trial % 3 == 0 else int(torch.randint(1, 4, (1,), generator=_g))
    _xr = torch.randn(_shape, generator=_g, requires_grad=True)
    _out = F.max_pool2d(_xr, _k, _s)
    _dout = torch.randn(_out.shape, generator=_g)
    (_expected,) = torch.autograd.grad(_out, _xr, _dout)
    assert_close(max_pool2d_backward(_dout, _xr.detach(), _k, _s), _expected,
                 f"max_pool2d_backward for x {_shape}, k={_k}, stride={_s}, vs autograd")
# ties: the first maximum of each window gets the gradient
_xr = torch.randint(0, 2, (2, 2, 6, 6), generator=_g).double().requires_grad_(True)
_out = F.max_pool2d(_xr, 2)
_dout = torch.randn(_out.shape, generator=_g)
(_expected,) = torch.autograd.grad(_out, _xr, _dout)
assert_close(max_pool2d_backward(_dout, _xr.detach(), 2), _expected, "max_pool2d_backward with tied maxima")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "speed_md", "locked": true, "solution": false, "schema_version": 3}
# ## 5. Why libraries do not use loops (not graded)
#
# `course_lib.conv.conv2d_im2col` computes the same convolution as one matrix product: every
# receptive field becomes a column of a matrix (im2col), and $W_{(T, C k^2)} X_{col}$ does all the
# multiply-adds at once. Compare it with your loops (and PyTorch's own convolution):

# %%
from course_lib.conv import conv2d_im2col

_g = torch.Generator().manual_seed(3)
x_speed = torch.randn(4, 16, SPEED_SIZE, SPEED_SIZE, generator=_g)
w_speed = torch.randn(32, 16, 3, 3, generator=_g)
timings = {}
for name, fn in [("your conv2d_naive", conv2d_naive), ("course_lib conv2d_im2col", conv2d_im2col), ("F.conv2d", F.conv2d)]:
    try:
        for _ in range(2):  # the second call is timed: the first one pays for warming up
            start = time.perf_counter()
            fn(x_speed, w_speed, None, 1, 1)
            timings[name] = time.perf_counter() - start
    except NotImplementedError:
        print(f"{name}: not implemented yet")
for name, seconds in timings.items():
    print(f"{name:>26}: {1e3 * seconds:8.2f} ms")
