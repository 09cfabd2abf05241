"""Convolutions from loops to im2col, padding modes, pooling, transposed convolution (lecture 03).

Everything works on torch tensors in the layout PyTorch uses: images ``x: (N, C, H, W)``, filters
``w: (T, C, kH, kW)`` (``T`` output channels), biases ``b: (T,)``. The convolution of the lecture is

.. math::

    \\mathrm{Im}^{out}(x, y, t) = b_t + \\sum_{c=1}^{C} \\sum_{i=-d}^{d} \\sum_{j=-d}^{d}
        K_t(i, j, c)\\, \\mathrm{Im}^{in}(x + i, y + j, c),

which is a *cross-correlation* (the filter is not flipped), exactly what deep-learning libraries call
a convolution. With stride ``s``, dilation ``l`` and padding ``p`` the output has
``floor((H + 2p - l (k - 1) - 1) / s) + 1`` rows (:func:`conv_output_size`).

Two forward implementations compute the same thing:

* :func:`conv2d_naive` — explicit Python loops over every output value, the formula as written;
* :func:`conv2d_im2col` — :func:`im2col` lays every receptive field out as a column (a strided
  *view* of the padded input, copied once), and one matrix product with the ``(T, C kH kW)``
  filter matrix does all the multiply-adds (on a CPU, one product per chunk of a few images).

The backward passes (:func:`conv2d_backward`, :func:`max_pool2d_backward`,
:func:`avg_pool2d_backward`) are written by hand with :func:`im2col` and its adjoint
:func:`col2im`; no autograd is involved. ``torch.nn.functional`` is used only by the tests, as the
oracle.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "conv2d_backward",
    "conv2d_im2col",
    "conv2d_naive",
    "conv_output_size",
    "conv_transpose2d",
    "im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "pad2d",
    "receptive_field",
]

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | str

PADDING_MODES = ("zeros", "reflect", "replicate")

# conv2d_im2col builds the patch matrix for a few images at a time so that its memory is reused
# between chunks and stays mostly in cache (a fresh 75 MB buffer for N=32, C=64, 32x32 costs more
# in page faults than the whole matrix product). Each chunk is still one matrix product.
_CPU_CHUNK_BYTES = 10 * 2**20
_ACCELERATOR_CHUNK_BYTES = 512 * 2**20


# --------------------------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------------------------
def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    """``k`` or ``(kh, kw)`` -> ``(kh, kw)``, each an int >= ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _check_4d(x: torch.Tensor, name: str, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape {layout}, got a {x.ndim}-d tensor of shape {tuple(x.shape)}")


def _check_conv_args(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> None:
    _check_4d(x, "x", "(N, C, H, W)")
    _check_4d(w, "w", "(T, C, kH, kW)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} channels but w of shape {tuple(w.shape)} expects C = {w.shape[1]} "
            "(w is (T, C, kH, kW))"
        )
    if x.dtype != w.dtype or x.device != w.device:
        raise ValueError(f"x ({x.dtype}, {x.device}) and w ({w.dtype}, {w.device}) must share dtype and device")
    if min(w.shape[2:]) < 1 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"empty input or filter: x {tuple(x.shape)}, w {tuple(w.shape)}")
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (w.shape[0],)):
        shape = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
        raise ValueError(f"b must have shape (T,) = ({w.shape[0]},), got {shape}")


def _check_mode(mode: str) -> None:
    if mode not in PADDING_MODES:
        raise ValueError(f"padding mode must be one of {PADDING_MODES}, got {mode!r}")


def _conv_padding(
    padding: Padding, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Convolution padding argument -> ``(left, right, top, bottom)``.

    ``int`` or ``(ph, pw)``: symmetric; ``"valid"``: none; ``"same"``: output as large as the input
    (stride 1 only; an odd total goes to the right/bottom, as in PyTorch).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
            th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = _pair(padding, "padding", 0)
    return (pw, pw, ph, ph)


def _out_size(size: int, kernel: int, stride: int, before: int, after: int, dilation: int, what: str) -> int:
    span = dilation * (kernel - 1) + 1
    padded = size + before + after
    if span > padded:
        raise ValueError(
            f"the {what} kernel spans {span} pixels (kernel {kernel}, dilation {dilation}) but the padded input "
            f"has only {padded} ({size} + padding {before} + {after}): the output would be empty"
        )
    return (padded - span) // stride + 1


# --------------------------------------------------------------------------------------------
# sizes and receptive fields
# --------------------------------------------------------------------------------------------
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution (or pooling) along one axis.

    ``floor((size + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1``. Raises
    ``ValueError`` when the (dilated) kernel does not fit into the padded input.
    """
    for name, value, minimum in (
        ("size", size, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return _out_size(size, kernel_size, stride, padding, padding, dilation, "")


def receptive_field(layers: Sequence[tuple[int, ...]]) -> list[int]:
    """Receptive field (in input pixels, along one axis) after each layer of a stack.

    ``layers``: a list of ``(kernel_size, stride, dilation)`` (stride and dilation may be left
    out and default to 1); a pooling layer is ``(k, s, 1)``. With ``r_0 = 1`` and jump ``j_0 = 1``
    (the distance, in input pixels, between neighbouring positions of the current feature map):

    ``r_l = r_{l-1} + dilation_l (kernel_l - 1) j_{l-1}``, ``j_l = j_{l-1} stride_l``.

    The context network of Yu & Koltun (3x3 with dilations 1, 1, 2, 4, 8, 16, 1, then 1x1) gives
    3, 5, 9, 17, 33, 65, 67, 67.
    """
    fields = []
    r, jump = 1, 1
    for i, layer in enumerate(layers):
        layer = tuple(layer)
        if not 1 <= len(layer) <= 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in layer):
            raise ValueError(f"layer {i} must be (kernel_size, stride, dilation) ints, got {layer!r}")
        k, s, d = (*layer, 1, 1)[:3]
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"layer {i}: kernel_size, stride and dilation must be >= 1, got {layer!r}")
        r += d * (k - 1) * jump
        jump *= s
        fields.append(r)
    return fields


# --------------------------------------------------------------------------------------------
# padding
# --------------------------------------------------------------------------------------------
def _pad4(pad: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(pad, bool):
        raise TypeError(f"pad must be an int, (ph, pw) or (left, right, top, bottom), got {pad!r}")
    if isinstance(pad, int):
        pad = (pad, pad, pad, pad)
    elif isinstance(pad, Sequence) and len(pad) == 2 and all(isinstance(p, int) for p in pad):
        pad = (pad[1], pad[1], pad[0], pad[0])
    elif isinstance(pad, Sequence) and len(pad) == 4 and all(isinstance(p, int) for p in pad):
        pad = tuple(pad)
    else:
        raise ValueError(f"pad must be an int, (ph, pw) or (left, right, top, bottom), got {pad!r}")
    if min(pad) < 0:
        raise ValueError(f"padding must be >= 0, got {pad!r}")
    return pad  # type: ignore[return-value]


def _source_index(size: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """For each padded position ``-before .. size + after - 1``, the input index it copies."""
    idx = torch.arange(-before, size + after, device=device)
    if mode == "replicate":
        return idx.clamp(0, size - 1)
    # reflect about the first and last pixel without repeating them: -1 -> 1, size -> size - 2
    idx = idx.abs()
    return torch.where(idx > size - 1, 2 * (size - 1) - idx, idx)


def _pad(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str, value: float = 0.0) -> torch.Tensor:
    """``pad2d`` without argument parsing; returns ``x`` itself when there is nothing to pad."""
    left, right, top, bottom = pad
    if pad == (0, 0, 0, 0):
        return x
    h, w = x.shape[-2:]
    if mode == "zeros":
        out = x.new_full((*x.shape[:-2], h + top + bottom, w + left + right), value)
        out[..., top : top + h, left : left + w] = x
        return out
    if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise ValueError(f"reflect padding {pad} (left, right, top, bottom) must be smaller than the input {h}x{w}")
    if h == 0 or w == 0:
        raise ValueError(f"cannot {mode}-pad an empty input of size {h}x{w}")
    rows = _source_index(h, top, bottom, mode, x.device)
    cols = _source_index(w, left, right, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _pad_backward(
    dxp: torch.Tensor, size: tuple[int, int], pad: tuple[int, int, int, int], mode: str
) -> torch.Tensor:
    """Adjoint of :func:`_pad`: gradient w.r.t. the unpadded input (sums the copies of a pixel)."""
    left, right, top, bottom = pad
    h, w = size
    if mode == "zeros":
        return dxp[..., top : top + h, left : left + w]
    rows = _source_index(h, top, bottom, mode, dxp.device)
    cols = _source_index(w, left, right, mode, dxp.device)
    d_rows = dxp.new_zeros((*dxp.shape[:-2], h, dxp.shape[-1])).index_add_(-2, rows, dxp)
    return dxp.new_zeros((*dxp.shape[:-2], h, w)).index_add_(-1, cols, d_rows)


def pad2d(x: torch.Tensor, pad: int | Sequence[int], mode: str = "zeros") -> torch.Tensor:
    """Pad the last two axes of ``x: (..., H, W)`` -> ``(..., H + top + bottom, W + left + right)``.

    ``pad``: ``p`` (all sides), ``(ph, pw)`` (rows above and below, columns left and right) or
    ``(left, right, top, bottom)`` (the order of ``torch.nn.functional.pad``). Modes (lecture 03):

    * ``"zeros"`` — the border is zero;
    * ``"reflect"`` — mirror image about the edge pixel, which is not repeated (``c b | a b c``);
      each pad must be smaller than the image side;
    * ``"replicate"`` — the edge pixel is repeated (``a a | a b c``).

    Always returns a new tensor.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise ValueError(f"x must be a tensor of shape (..., H, W), got {getattr(x, 'shape', type(x).__name__)}")
    _check_mode(mode)
    pad4 = _pad4(pad)
    out = _pad(x, pad4, mode)
    return out.clone() if out is x else out


# --------------------------------------------------------------------------------------------
# im2col and its adjoint
# --------------------------------------------------------------------------------------------
def _windows(
    xp: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """Strided view ``(N, C, kH, kW, Ho, Wo)`` of a padded ``xp: (N, C, Hp, Wp)``; no copy.

    ``view[n, c, i, j, y, x] = xp[n, c, y s_h + i l_h, x s_w + j l_w]``.
    """
    sn, sc, sh, sw = xp.stride()
    return xp.as_strided(
        (xp.shape[0], xp.shape[1], kernel[0], kernel[1], out_hw[0], out_hw[1]),
        (sn, sc, dilation[0] * sh, dilation[1] * sw, stride[0] * sh, stride[1] * sw),
        xp.storage_offset(),
    )


def _geometry(
    hw: tuple[int, int], kernel_size: IntPair, stride: IntPair, padding: Padding, dilation: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, int]]:
    k = _pair(kernel_size, "kernel_size", 1)
    s = _pair(stride, "stride", 1)
    d = _pair(dilation, "dilation", 1)
    pad = _conv_padding(padding, k, s, d)
    out_hw = (
        _out_size(hw[0], k[0], s[0], pad[2], pad[3], d[0], "vertical"),
        _out_size(hw[1], k[1], s[1], pad[0], pad[1], d[1], "horizontal"),
    )
    return k, s, d, pad, out_hw


def im2col(
    x: torch.Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Unfold every receptive field of ``x: (N, C, H, W)`` into a column -> ``(N, C kH kW, Ho Wo)``.

    Row ``c kH kW + i kW + j`` of column ``y Wo + x`` holds ``x_pad[n, c, y s + i l, x s + j l]``
    (the layout of ``torch.nn.functional.unfold``), so a convolution is
    ``w.reshape(T, C kH kW) @ im2col(x)``. Built as an ``as_strided`` view of the padded input
    (no Python loop over positions) and copied once into a contiguous matrix.
    """
    _check_4d(x, "x", "(N, C, H, W)")
    _check_mode(padding_mode)
    k, s, d, pad, out_hw = _geometry(tuple(x.shape[2:]), kernel_size, stride, padding, dilation)
    xp = _pad(x, pad, padding_mode).contiguous()
    n, c = x.shape[:2]
    return _windows(xp, k, s, d, out_hw).reshape(n, c * k[0] * k[1], out_hw[0] * out_hw[1])


def _fold_windows(
    dwin: torch.Tensor, padded_hw: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> torch.Tensor:
    """Adjoint of :func:`_windows`: ``dwin: (N, C, kH, kW, Ho, Wo)`` summed into ``(N, C, Hp, Wp)``."""
    n, c, kh, kw, ho, wo = dwin.shape
    out = dwin.new_zeros((n, c, *padded_hw))
    for i in range(kh):  # one strided add per kernel offset: kH kW vectorised steps
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            out[:, :, r0 : r0 + stride[0] * (ho - 1) + 1 : stride[0], c0 : c0 + stride[1] * (wo - 1) + 1 : stride[1]] += (
                dwin[:, :, i, j]
            )
    return out


def col2im(
    cols: torch.Tensor,
    output_size: IntPair,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
) -> torch.Tensor:
    """Adjoint of :func:`im2col` (zero padding): ``cols: (N, C kH kW, L)`` -> ``(N, C, H, W)``.

    Every column entry is added back to the input pixel it was copied from; pixels covered by
    several receptive fields receive the sum (``torch.nn.functional.fold``). ``output_size`` is
    ``(H, W)`` of the unpadded image.
    """
    if not isinstance(cols, torch.Tensor) or cols.ndim != 3:
        raise ValueError(f"cols must have shape (N, C*kH*kW, L), got {getattr(cols, 'shape', type(cols).__name__)}")
    hw = _pair(output_size, "output_size", 1)
    k, s, d, pad, out_hw = _geometry(hw, kernel_size, stride, padding, dilation)
    n, rows, length = cols.shape
    if rows % (k[0] * k[1]) != 0 or length != out_hw[0] * out_hw[1]:
        raise ValueError(
            f"cols of shape {tuple(cols.shape)} do not fit kernel {k} on a {hw} image: expected "
            f"(N, C*{k[0] * k[1]}, {out_hw[0] * out_hw[1]})"
        )
    c = rows // (k[0] * k[1])
    dwin = cols.reshape(n, c, k[0], k[1], out_hw[0], out_hw[1])
    padded = _fold_windows(dwin, (hw[0] + pad[2] + pad[3], hw[1] + pad[0] + pad[1]), s, d)
    return _pad_backward(padded, hw, pad, "zeros")


# --------------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------------
def conv2d_naive(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Convolution with explicit loops, for teaching: ``x: (N, C, H, W)``, ``w: (T, C, kH, kW)`` -> ``(N, T, Ho, Wo)``.

    ``out[n, t, y, x] = b[t] + sum_{c, i, j} w[t, c, i, j] x_pad[n, c, y s + i l, x s + j l]``: one
    Python iteration per output value, each a dot product of the filter with its receptive field.
    Slow on purpose — compare with :func:`conv2d_im2col`.
    """
    _check_conv_args(x, w, b)
    _check_mode(padding_mode)
    k, s, d, pad, (ho, wo) = _geometry(tuple(x.shape[2:]), tuple(w.shape[2:]), stride, padding, dilation)
    xp = _pad(x, pad, padding_mode)
    n_batch, n_filters = x.shape[0], w.shape[0]
    out = x.new_zeros((n_batch, n_filters, ho, wo))
    for n in range(n_batch):
        for t in range(n_filters):
            for y in range(ho):
                for x_ in range(wo):
                    top, left = y * s[0], x_ * s[1]
                    field = xp[n, :, top : top + d[0] * (k[0] - 1) + 1 : d[0], left : left + d[1] * (k[1] - 1) + 1 : d[1]]
                    out[n, t, y, x_] = (field * w[t]).sum()
    if b is not None:
        out += b.view(1, -1, 1, 1)
    return out


def conv2d_im2col(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Convolution as a matrix product: ``x: (N, C, H, W)``, ``w: (T, C, kH, kW)`` -> ``(N, T, Ho, Wo)``.

    ``out[n] = w.reshape(T, C kH kW) @ im2col(x)[n] + b``: the patch matrix is an ``as_strided``
    view of the padded input copied once, and all multiply-adds happen in one matrix product.
    On a CPU the batch is processed a few images at a time (at most 10 MiB of patches per chunk,
    one matrix product each) so that the allocator reuses the patch memory instead of
    page-faulting a fresh buffer of the whole batch. Differentiable by autograd.
    Same arguments as :func:`conv2d_naive`; ``padding`` may also be ``"valid"`` or ``"same"``.
    """
    _check_conv_args(x, w, b)
    _check_mode(padding_mode)
    k, s, d, pad, out_hw = _geometry(tuple(x.shape[2:]), tuple(w.shape[2:]), stride, padding, dilation)
    xp = _pad(x, pad, padding_mode).contiguous()
    n_batch, n_chan = x.shape[:2]
    n_filters = w.shape[0]
    rows, length = n_chan * k[0] * k[1], out_hw[0] * out_hw[1]
    w_mat = w.reshape(n_filters, rows)
    budget = _CPU_CHUNK_BYTES if x.device.type == "cpu" else _ACCELERATOR_CHUNK_BYTES
    chunk = max(1, budget // max(1, rows * length * x.element_size()))
    starts = range(0, n_batch, chunk)
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):  # out= is not differentiable
        parts = [_windows(xp[i : i + chunk], k, s, d, out_hw).reshape(-1, rows, length) for i in starts]
        out = torch.cat([torch.matmul(w_mat, cols) for cols in parts])
    else:  # each chunk's product lands in place in one preallocated output: no concatenation
        out = xp.new_empty((n_batch, n_filters, length))
        for start in starts:
            cols = _windows(xp[start : start + chunk], k, s, d, out_hw).reshape(-1, rows, length)
            torch.matmul(w_mat, cols, out=out[start : start + chunk])  # (T, CkHkW) @ (n, CkHkW, L) -> (n, T, L)
    out = out.view(n_batch, n_filters, *out_hw)
    if b is not None:
        out = out + b.view(1, -1, 1, 1)
    return out


def conv2d_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    w: torch.Tensor,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hand-written gradients of ``out = conv2d(x, w, b, ...)`` given ``dout = dL/dout: (N, T, Ho, Wo)``.

    With ``X = im2col(x): (N, C kH kW, L)``, ``W = w.reshape(T, C kH kW)`` and ``G = dout.reshape(N, T, L)``:

    * ``dw = sum_n G[n] X[n]^T`` (reshaped to ``(T, C, kH, kW)``),
    * ``db = sum_{n, y, x} dout[n, :, y, x]``,
    * ``dx = col2im(W^T G)`` — every column gradient flows back to the pixels it was copied from
      (and, for ``reflect``/``replicate`` padding, from padded copies back to their source pixel).

    Returns ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``(T,)``.
    """
    _check_conv_args(x, w, None)
    _check_mode(padding_mode)
    k, s, d, pad, out_hw = _geometry(tuple(x.shape[2:]), tuple(w.shape[2:]), stride, padding, dilation)
    n_batch, n_chan, h, wd = x.shape
    n_filters = w.shape[0]
    expected = (n_batch, n_filters, *out_hw)
    if not isinstance(dout, torch.Tensor) or tuple(dout.shape) != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {tuple(getattr(dout, 'shape', ()))}")
    rows, length = n_chan * k[0] * k[1], out_hw[0] * out_hw[1]
    xp = _pad(x, pad, padding_mode).contiguous()
    cols = _windows(xp, k, s, d, out_hw).reshape(n_batch, rows, length)
    g = dout.reshape(n_batch, n_filters, length)
    dw = torch.matmul(g, cols.transpose(1, 2)).sum(0).reshape(w.shape)
    db = dout.sum(dim=(0, 2, 3))
    dcols = torch.matmul(w.reshape(n_filters, rows).t(), g)  # (N, C kH kW, L)
    dwin = dcols.reshape(n_batch, n_chan, k[0], k[1], *out_hw)
    dxp = _fold_windows(dwin, tuple(xp.shape[2:]), s, d)
    dx = _pad_backward(dxp, (h, wd), pad, padding_mode)
    return dx.contiguous(), dw, db


def conv_transpose2d(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    b: torch.Tensor | None = None,
) -> torch.Tensor:
    """Transposed ("fractionally strided") convolution: ``x: (N, T, H, W)``, ``w: (T, C, kH, kW)`` -> ``(N, C, Ho, Wo)``.

    The adjoint of ``conv2d(·, w, stride, padding, dilation)``: every input pixel paints a copy
    of its filter, scaled by its value, onto the output with step ``stride``; overlaps add up,
    ``padding`` rows/columns are cut from each border. ``Ho = (H - 1) s - 2 p + l (kH - 1) +
    output_padding + 1``. Weight layout as in ``torch.nn.functional.conv_transpose2d``.
    Used for upsampling (U-Net).
    """
    _check_4d(x, "x", "(N, T, H, W)")
    _check_4d(w, "w", "(T, C, kH, kW)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"x has {x.shape[1]} channels but the transposed-convolution weight {tuple(w.shape)} expects "
            f"{w.shape[0]} (w is (T_in, C_out, kH, kW))"
        )
    if x.dtype != w.dtype or x.device != w.device:
        raise ValueError(f"x ({x.dtype}, {x.device}) and w ({w.dtype}, {w.device}) must share dtype and device")
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (w.shape[1],)):
        raise ValueError(f"b must have shape (C_out,) = ({w.shape[1]},), got {getattr(b, 'shape', b)}")
    k = (int(w.shape[2]), int(w.shape[3]))
    s = _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    op = _pair(output_padding, "output_padding", 0)
    d = _pair(dilation, "dilation", 1)
    for axis in range(2):
        if op[axis] >= max(s[axis], d[axis]):
            raise ValueError(f"output_padding {op} must be smaller than stride {s} or dilation {d}")
    n, t_in, h, wd = x.shape
    c_out = w.shape[1]
    canvas = tuple((x.shape[2 + a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 + op[a] for a in range(2))
    out_hw = (canvas[0] - 2 * p[0], canvas[1] - 2 * p[1])
    if min(out_hw) < 1:
        raise ValueError(f"padding {p} crops the whole {canvas[0]}x{canvas[1]} output of the transposed convolution")
    cols = torch.matmul(w.reshape(t_in, c_out * k[0] * k[1]).t(), x.reshape(n, t_in, h * wd))
    full = _fold_windows(cols.reshape(n, c_out, k[0], k[1], h, wd), canvas, s, d)
    out = full[:, :, p[0] : p[0] + out_hw[0], p[1] : p[1] + out_hw[1]]
    if b is not None:
        out = out + b.view(1, -1, 1, 1)
    return out.contiguous()


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------
def _pool_geometry(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, int]]:
    _check_4d(x, "x", "(N, C, H, W)")
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    if 2 * ph > k[0] or 2 * pw > k[1]:
        raise ValueError(f"pooling padding {(ph, pw)} must be at most half the kernel size {k}")
    out_hw = (
        _out_size(x.shape[2], k[0], s[0], ph, ph, 1, "vertical pooling"),
        _out_size(x.shape[3], k[1], s[1], pw, pw, 1, "horizontal pooling"),
    )
    return k, s, (pw, pw, ph, ph), out_hw


def _check_dout(dout: torch.Tensor, expected: tuple[int, ...]) -> None:
    if not isinstance(dout, torch.Tensor) or tuple(dout.shape) != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {tuple(getattr(dout, 'shape', ()))}")


def max_pool2d(x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> torch.Tensor:
    """Max pooling: ``x: (N, C, H, W)`` -> ``(N, C, Ho, Wo)``, the maximum of each ``kH x kW`` window.

    ``stride`` defaults to ``kernel_size`` (non-overlapping windows); ``padding`` adds ``-inf``
    borders (at most half the kernel). No parameters; one window per output pixel and channel.
    """
    k, s, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding)
    xp = _pad(x, pad, "zeros", value=float("-inf")).contiguous()
    return _windows(xp, k, s, (1, 1), out_hw).amax(dim=(2, 3))


def max_pool2d_backward(
    dout: torch.Tensor, x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """Gradient of :func:`max_pool2d` w.r.t. ``x``; ``dout: (N, C, Ho, Wo)`` -> ``(N, C, H, W)``.

    Each output's gradient goes to the position of its window's maximum (the first one in
    row-major order on ties, like PyTorch); overlapping windows add up.
    """
    k, s, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding)
    n, c, h, wd = x.shape
    _check_dout(dout, (n, c, *out_hw))
    xp = _pad(x, pad, "zeros", value=float("-inf")).contiguous()
    win = _windows(xp, k, s, (1, 1), out_hw).permute(0, 1, 4, 5, 2, 3).reshape(n, c, *out_hw, k[0] * k[1])
    arg = win.argmax(dim=-1)  # (N, C, Ho, Wo), index into the window
    dev = x.device
    rows = torch.arange(out_hw[0], device=dev).view(-1, 1) * s[0] + torch.div(arg, k[1], rounding_mode="floor") - pad[2]
    cols = torch.arange(out_hw[1], device=dev).view(1, -1) * s[1] + arg % k[1] - pad[0]
    flat = (rows * wd + cols).reshape(n * c, -1)
    dx = dout.new_zeros((n * c, h * wd)).scatter_add_(1, flat, dout.reshape(n * c, -1))
    return dx.view(n, c, h, wd)


def avg_pool2d(x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> torch.Tensor:
    """Average pooling: ``x: (N, C, H, W)`` -> ``(N, C, Ho, Wo)``, the mean of each ``kH x kW`` window.

    ``stride`` defaults to ``kernel_size``; ``padding`` adds zero borders that count in the mean
    (``count_include_pad=True``, PyTorch's default).
    """
    k, s, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding)
    xp = _pad(x, pad, "zeros").contiguous()
    return _windows(xp, k, s, (1, 1), out_hw).mean(dim=(2, 3))


def avg_pool2d_backward(
    dout: torch.Tensor, x: torch.Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> torch.Tensor:
    """Gradient of :func:`avg_pool2d` w.r.t. ``x``: each output spreads ``dout / (kH kW)`` over its window."""
    k, s, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding)
    n, c, h, wd = x.shape
    _check_dout(dout, (n, c, *out_hw))
    share = (dout / (k[0] * k[1])).view(n, c, 1, 1, *out_hw).expand(n, c, k[0], k[1], *out_hw)
    dxp = _fold_windows(share, (h + pad[2] + pad[3], wd + pad[0] + pad[1]), s, (1, 1))
    return _pad_backward(dxp, (h, wd), pad, "zeros").contiguous()
