# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lecture 03 · Convolutions
#
# A fully connected network reads a 28×28 digit as 784 unrelated numbers: one hidden layer of
# 1000 neurons already has 785,000 weights, and a neuron that learned a stroke in one place does
# not react when the digit moves. Images have structure that a better layer can exploit: a
# pattern (an edge, a corner, a loop) means the same thing wherever it appears, and it is
# detected from a small neighbourhood of pixels. The **convolution** builds exactly these two
# facts in.
#
# **Learning goals** — this lecture covers
# 1. the convolution formula and filters that fire on a pattern (the lecture's 2×2 examples);
# 2. the **Sobel filter** for edges, on a real photo;
# 3. multi-channel filters, **local connectivity** and **shared weights**: parameter counts of a
#    convolution vs a fully connected layer;
# 4. two implementations, explicit loops and **im2col** (one matrix product), and their speed;
# 5. the **receptive field** and three ways to grow it: stacking, strides and **dilated
#    convolutions** (the context network of Yu & Koltun);
# 6. **pooling**, and **padding**: valid, zero, reflection and replication, on an image border;
# 7. **translation equivariance**: shift the input, the feature map shifts;
# 8. the Conv → Pool → … → Flatten → FC architecture: a small CNN against a fully connected
#    network on shifted MNIST digits, and the filters it learns next to hand-made ones.
#
# Every convolution, padding and pooling below comes from `course_lib.conv`, whose tests compare
# each function with `torch.nn.functional` and autograd.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_image
from torch import nn
from tqdm.auto import tqdm

from course_lib.conv import (
    avg_pool2d,
    conv2d_im2col,
    conv2d_naive,
    conv_output_size,
    im2col,
    max_pool2d,
    pad2d,
    receptive_field,
)
from course_lib.data import load_mnist
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots
from course_lib.training import accuracy, evaluate, fit

SMOKE = setup_notebook(SMOKE, seed=0)
DEVICE = get_device()
N_TRAIN = 1000 if SMOKE else 60_000  # MNIST training digits
N_TEST = 500 if SMOKE else 10_000  # MNIST test digits
N_EPOCHS = 1 if SMOKE else 3
SHIFTS = [0, 2, 4, 8] if SMOKE else [0, 1, 2, 3, 4, 5, 6, 8]  # pixels, for the shifted test sets
NAIVE_SIZE = 16 if SMOKE else 32  # side of the image in the loops-vs-im2col timing
print(f"smoke mode: {SMOKE}; device: {DEVICE}; {N_TRAIN} training digits, {N_EPOCHS} epoch(s)")

# %% [markdown]
# ## 1. A filter that fires on a pattern
#
# Slide a small square of weights $K$ (the **filter**, or kernel) over the image; at every
# position multiply it elementwise with the pixels underneath and add up:
#
# $$\mathrm{Im}^{out}(x, y) = \sum_{i=-d}^{d} \sum_{j=-d}^{d} K(i, j)\, \mathrm{Im}^{in}(x + i, y + j).$$
#
# The filter's coordinates run from $-d$ to $d$, so it is $(2d+1) \times (2d+1)$. (Strictly this
# is a cross-correlation — a mathematician's convolution flips $K$ — but every deep-learning
# library calls it a convolution, and since $K$ is learned the flip does not matter.)
#
# The sum is large when the patch looks like the filter. The lecture's examples, with the diagonal
# filter $\begin{smallmatrix}1&0\\0&1\end{smallmatrix}$, computed by `conv2d_naive` (explicit loops):

# %%
diagonal = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)  # (T=1, C=1, 2, 2)
patches = [[[1, 1], [0, 1]], [[3, 0], [0, 3]], [[1, 1], [1, 1]], [[5, 0], [0, 5]], [[1, 2], [3, 0]], [[0, 2], [3, 0]]]
for patch in patches:
    image = torch.tensor(patch, dtype=torch.float32).view(1, 1, 2, 2)  # (N=1, C=1, 2, 2)
    response = conv2d_naive(image, diagonal).item()
    print(f"{patch} * [[1, 0], [0, 1]] = {response:g}")

# %% [markdown]
# A bright diagonal gives a big answer (6, 10), a patch with no diagonal gives 0. Because the
# same filter slides over the whole image, **where** the pattern sits does not matter: the
# response simply peaks at that position.

# %%
canvas = torch.zeros(1, 1, 8, 8)
canvas[0, 0, 1:3, 1:3] = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
canvas[0, 0, 5:7, 4:6] = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
canvas[0, 0, 4, 0:3] = 2.0  # a horizontal bar: not a diagonal
response = conv2d_naive(canvas, diagonal)
fig, axes = subplots(1, 2, figsize=(8, 3.6))
for ax, img, title in [(axes[0], canvas, "input (two diagonals, one bar)"), (axes[1], response, "response of [[1,0],[0,1]]")]:
    shown = ax.imshow(img[0, 0], cmap="viridis")
    ax.set_title(title)
    ax.grid(False)
    fig.colorbar(shown, ax=ax)
show(fig, 'A toy input with two diagonals and a bar (left) and its response to the diagonal filter (right): the response peaks on the diagonals.')
print("peak response:", response.max().item(), "at", [tuple(p.tolist()) for p in (response[0, 0] == 6).nonzero()])

# %% [markdown]
# ## 2. The Sobel filter: edges in a photo
#
# The Sobel filters estimate the horizontal and vertical intensity derivative:
#
# $$K_x = \begin{pmatrix} -1 & 0 & 1 \\ -2 & 0 & 2 \\ -1 & 0 & 1 \end{pmatrix}, \qquad
#   K_y = K_x^\top, \qquad |\nabla I| \approx \sqrt{(K_x * I)^2 + (K_y * I)^2}.$$
#
# Flat regions give 0, an edge across the filter gives a large positive or negative value.
# Here on a photo that ships with scikit-learn (Summer Palace, China), with `conv2d_im2col`.

# %%
photo = load_sample_image("china.jpg").copy()  # (427, 640, 3) uint8
gray = torch.from_numpy(photo).float().mean(dim=2) / 255.0  # (H, W) in [0, 1]
sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
sobel = torch.stack([sobel_x, sobel_x.t()]).unsqueeze(1)  # (T=2, C=1, 3, 3)
start = time.perf_counter()
grads = conv2d_im2col(gray.view(1, 1, *gray.shape), sobel, padding=1, padding_mode="replicate")[0]
print(f"Sobel on a {gray.shape[0]}x{gray.shape[1]} photo: {1e3 * (time.perf_counter() - start):.1f} ms")
magnitude = grads.square().sum(0).sqrt()

fig, axes = subplots(2, 2, figsize=(11, 7.5))
panels = [(photo, "photo", None), (grads[0], "K_x * I (vertical edges)", "RdBu_r"),
          (grads[1], "K_y * I (horizontal edges)", "RdBu_r"), (magnitude, "|∇I| (edge strength)", "gray_r")]
for ax, (img, title, cmap) in zip(axes.flat, panels):
    if cmap == "RdBu_r":
        ax.imshow(img, cmap=cmap, vmin=-1.5, vmax=1.5)
    else:
        ax.imshow(img, cmap=cmap)
    ax.set_title(title)
    ax.axis("off")
show(fig, 'The photo, its two Sobel derivatives (red positive, blue negative) and the edge strength.')

# %% [markdown]
# ## 3. Channels, local connectivity and shared weights
#
# A colour image has $C = 3$ channels, and a layer usually looks for $T$ patterns at once. Each
# filter then spans all input channels, and there is one filter per output channel $t$:
#
# $$\mathrm{Im}^{out}(x, y, t) = \sum_{i=-d}^{d} \sum_{j=-d}^{d} \sum_{c=1}^{C} K_t(i, j, c)\, \mathrm{Im}^{in}(x + i, y + j, c).$$
#
# Two properties make this layer cheap:
# 1. **local connectivity** — an output pixel depends on a $(2d+1) \times (2d+1)$ neighbourhood only;
# 2. **shared weights** — the same $K_t$ is used at every position.
#
# Only the filters are learned: $(2d+1)^2 \cdot C \cdot T$ weights (plus $T$ biases), no matter how
# large the image. A fully connected layer from the same input to the same output size needs
# $(HWC)\cdot(HWT)$. The fully connected network of lecture 02 (784 → 1000 → 10 on MNIST) next
# to convolutions:

# %%
def conv_params(k: int, c: int, t: int) -> int:
    return k * k * c * t + t


def fc_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


rows = [
    ("FC 784 -> 1000 (lecture 02, MNIST)", fc_params(784, 1000), nn.Linear(784, 1000)),
    ("FC 1000 -> 10 (its output layer)", fc_params(1000, 10), nn.Linear(1000, 10)),
    ("conv 5x5, 1 -> 16 channels, 28x28", conv_params(5, 1, 16), nn.Conv2d(1, 16, 5)),
    ("FC with the same in/out sizes: 784 -> 16*784", fc_params(784, 16 * 784), None),
    ("conv 3x3, 3 -> 64 channels, 224x224 RGB", conv_params(3, 3, 64), nn.Conv2d(3, 64, 3)),
    ("FC 224*224*3 -> 1000", fc_params(224 * 224 * 3, 1000), None),
]
print(f"{'layer':48s} {'parameters':>14s}")
for name, count, module in rows:
    if module is not None:  # the formula agrees with PyTorch's own count
        assert count == sum(p.numel() for p in module.parameters())
    print(f"{name:48s} {count:>14,}")

# %% [markdown]
# ## 4. From loops to one matrix product: im2col
#
# `conv2d_naive` computes the formula literally, one output value at a time. `conv2d_im2col`
# rearranges the input instead: every receptive field (a $C \times k \times k$ block) becomes one
# **column** of a matrix $X_{col}$ of shape $(C k^2, H_{out} W_{out})$, and the whole convolution is
# a single product with the filter matrix $W$ of shape $(T, C k^2)$:
#
# $$\mathrm{out} = W \, X_{col} + b.$$
#
# The columns are a strided *view* of the (padded) input — no Python loop over positions. Here
# is $X_{col}$ of a 4×4 image with a 3×3 kernel and padding 1: 16 columns (one per output pixel),
# 9 rows (one per kernel position); each row is the image shifted by one kernel offset.

# %%
tiny = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
cols = im2col(tiny, 3, padding=1)[0]  # (C*9, 16)
fig, axes = subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 3.5]})
axes[0].imshow(tiny[0, 0], cmap="viridis")
axes[0].set_title("4x4 image")
axes[1].imshow(cols, cmap="viridis")
axes[1].set_title("im2col: 9 rows x 16 columns (zeros = padding)")
for ax in axes:
    ax.grid(False)
for (r, c), v in np.ndenumerate(cols.numpy()):
    axes[1].text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w")
show(fig, "A 4×4 image (left) and its im2col matrix with 'same' padding (right): each column is one 3×3 patch, zeros are padding.")

# %% [markdown]
# Both give the same numbers; the speed is another matter. (The benchmark
# `benchmarks/conv_speed.py` compares im2col with PyTorch's own convolution at a realistic size.)

# %%
g = torch.Generator().manual_seed(0)
x_small = torch.randn(1, 16, NAIVE_SIZE, NAIVE_SIZE, generator=g)
w_small = torch.randn(16, 16, 3, 3, generator=g)
start = time.perf_counter()
out_naive = conv2d_naive(x_small, w_small, padding=1)
naive_s = time.perf_counter() - start
out_im2col = conv2d_im2col(x_small, w_small, padding=1)
im2col_s = float("inf")
for _ in range(5):  # best of 5: a single call of a few microseconds is mostly noise
    start = time.perf_counter()
    conv2d_im2col(x_small, w_small, padding=1)
    im2col_s = min(im2col_s, time.perf_counter() - start)
torch.testing.assert_close(out_naive, out_im2col)
torch.testing.assert_close(out_im2col, F.conv2d(x_small, w_small, padding=1))
n_values = out_naive.numel()
print(f"{n_values} output values: loops {1e3 * naive_s:.1f} ms ({1e6 * naive_s / n_values:.1f} µs per value), "
      f"im2col {1e3 * im2col_s:.2f} ms -> {naive_s / im2col_s:.0f}x faster")

# %% [markdown]
# ## 5. Receptive field: stacking, strides, dilation
#
# The **receptive field** of an output pixel is the part of the input it can see. One 3×3
# convolution sees 3×3 pixels; the last layers of a network should see (almost) the whole
# image. Three ways to grow it:
#
# 1. **stacking** convolutions: each 3×3 layer adds 2 pixels — slow growth, many layers; <!-- narrative: definitions -->
# 2. **strides**: skip $s-1$ positions between filter centres; every later layer's step is
#    multiplied by $s$ (and the map shrinks);
# 3. **dilated convolutions**: spread the filter's taps $l$ pixels apart; a $k \times k$ filter
#    then covers $l(k-1)+1$ pixels with the same $k^2$ weights, and the map keeps its size.
#
# With jump $j$ (the distance in input pixels between neighbouring positions of the current
# map), layer $\ell$ with kernel $k_\ell$, stride $s_\ell$ and dilation $l_\ell$ gives
#
# $$r_\ell = r_{\ell-1} + l_\ell (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1} s_\ell, \qquad r_0 = j_0 = 1.$$
#
# First, what a dilated 3×3 filter looks like for $l = 1, 2, 4$:

# %%
fig, axes = subplots(1, 3, figsize=(9, 3.6))
for ax, dil in zip(axes, [1, 2, 4]):
    span = dil * 2 + 1
    taps = np.zeros((9, 9))
    offset = (9 - span) // 2
    taps[offset : offset + span : dil, offset : offset + span : dil] = 1
    ax.imshow(taps, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_xticks(np.arange(-0.5, 9, 1), labels=[])
    ax.set_yticks(np.arange(-0.5, 9, 1), labels=[])
    ax.grid(True, color="k", alpha=0.3)
    ax.set_title(f"dilation l = {dil}\ncovers {span}x{span}")
show(fig, 'A 3×3 filter with dilation 1, 2 and 4: the same nine weights cover a growing window.')

# %% [markdown]
# The **context network** of Yu & Koltun (2016) stacks 3×3 convolutions with dilations 1, 1, 2,
# 4, 8, 16, 1 and a final 1×1: the receptive field grows exponentially while the resolution stays
# the same. `receptive_field` reproduces its table:

# %%
context = [(3, 1, d) for d in (1, 1, 2, 4, 8, 16, 1)] + [(1, 1, 1)]
context_rf = receptive_field(context)
print(f"{'layer':>5} {'convolution':>11} {'dilation':>8} {'receptive field':>15}")
for i, ((k, _, d), r) in enumerate(zip(context, context_rf), start=1):
    print(f"{i:>5} {f'{k}x{k}':>11} {d:>8} {f'{r}x{r}':>15}")
assert context_rf == [3, 5, 9, 17, 33, 65, 67, 67]

plain = receptive_field([(3, 1, 1)] * 7)
strided = receptive_field([(3, 2, 1)] * 7)
fig, ax = subplots(figsize=(7, 4))
layers_axis = np.arange(1, 8)
ax.plot(layers_axis, plain, "o-", label="3x3, stride 1 (stacking)")
ax.plot(layers_axis, strided, "s-", label="3x3, stride 2 (map halves each layer)")
ax.plot(layers_axis, context_rf[:7], "^-", label="3x3, dilations 1,1,2,4,8,16,1 (context network)")
ax.set_yscale("log", base=2)
ax.set_xlabel("layer")
ax.set_ylabel("receptive field (pixels)")
ax.set_title("Three ways to grow the receptive field")
ax.legend()
show(fig, 'Receptive field against the number of layers for stacking, strides and dilation.')

# %% [markdown]
# The formula can be checked against autograd: the receptive field of an output pixel is the set
# of input pixels with a non-zero gradient. Below, the gradient of the centre pixel of the plain
# stack and of the context network (all weights 1, padding chosen so that the size stays the
# same). The dilated stack reaches 67×67 with the same number of weights as the plain one, and
# its gradient has a grid-like texture: not every pixel in the field is used equally.

# %%
def field_map(layers, size=99):
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    h = x
    for k, _, d in layers:
        h = conv2d_im2col(h, torch.ones(1, 1, k, k), padding=d * (k - 1) // 2, dilation=d)
    (grad,) = torch.autograd.grad(h[0, 0, size // 2, size // 2], x)
    return grad[0, 0]


fields = {}
fig, axes = subplots(1, 2, figsize=(10, 4.6))
for ax, (name, layers) in zip(axes, [("7 plain 3x3 layers", [(3, 1, 1)] * 7), ("context network", context)]):
    grad = field_map(layers)
    nz = grad.nonzero()
    extent = int(nz[:, 0].max() - nz[:, 0].min()) + 1
    ax.imshow(torch.log1p(grad), cmap="magma")
    ax.set_title(f"{name}: {extent}x{extent} (formula: {receptive_field(layers)[-1]})")
    ax.grid(False)
    fields[name] = (extent, receptive_field(layers)[-1])
show(fig, 'Gradient of one output pixel with respect to the input: its non-zero support is the receptive field the formula predicts.')
claim(all(extent == formula for extent, formula in fields.values()),
      "the non-zero gradient covers exactly the receptive field the formula gives, for both stacks")
claim(fields["context network"][0] == 67, "the dilated context network reaches 67×67")

# %% [markdown]
# ## 6. Pooling and padding
#
# **Pooling** has no parameters: it replaces each $k \times k$ window by its maximum <!-- narrative: definition -->
# (**max pooling**) or mean (average pooling), usually with stride $k$, so the map shrinks $k$
# times along each side and the receptive field of later layers grows. The window size is a
# hyperparameter. A 2×2 example and the photo after three rounds of 2×2 max pooling:

# %%
x4 = torch.tensor([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 1.0], [0.0, 0.0, 5.0, 6.0], [1.0, 2.0, 7.0, 0.0]]).view(1, 1, 4, 4)
print("input:\n", x4[0, 0].numpy())
print("2x2 max pooling:\n", max_pool2d(x4, 2)[0, 0].numpy())
print("2x2 average pooling:\n", avg_pool2d(x4, 2)[0, 0].numpy())

pooled = gray.view(1, 1, *gray.shape)
sizes = [tuple(pooled.shape[2:])]
for _ in range(3):
    pooled = max_pool2d(pooled, 2)
    sizes.append(tuple(pooled.shape[2:]))
fig, axes = subplots(1, 2, figsize=(10, 3.5))
axes[0].imshow(magnitude, cmap="gray_r")
axes[0].set_title(f"edge strength, {sizes[0][0]}x{sizes[0][1]}")
axes[1].imshow(max_pool2d(magnitude.view(1, 1, *magnitude.shape), 8)[0, 0], cmap="gray_r")
axes[1].set_title("after 8x8 max pooling: edges survive, 53x80")
for ax in axes:
    ax.axis("off")
show(fig, 'Edge strength of the photo before (left) and after 8×8 max pooling (right).')
print("sizes after each 2x2 max pooling:", " -> ".join(f"{h}x{w}" for h, w in sizes))

# %% [markdown]
# **Padding.** Without it (**valid** mode) the filter centre cannot sit on the border, so a
# $k \times k$ convolution loses $k-1$ rows and columns and objects at the border are seen less.
# Padding adds $p$ pixels on each side — the output has
# $\lfloor (H + 2p - l(k-1) - 1)/s \rfloor + 1$ rows (`conv_output_size`) — filled with
#
# * **zeros** — simple, but the network can learn where the border is ("overfit on the edges");
# * **reflection** — the image mirrored about the edge pixel: `c b | a b c`;
# * **replication** — the edge pixel repeated: `a a | a b c`.
#
# Here the bottom-left corner of the photo (trees and a roof) padded by 40 pixels each way:

# %%
corner = torch.from_numpy(photo[-120:, :160]).permute(2, 0, 1).float() / 255  # (3, 120, 160)
fig, axes = subplots(1, 4, figsize=(14, 3.4))
unpadded = torch.ones(3, 200, 240)  # white: nothing there
unpadded[:, 40:160, 40:200] = corner
axes[0].imshow(unpadded.permute(1, 2, 0))
axes[0].set_title("valid: no padding")
for ax, mode in zip(axes[1:], ["zeros", "reflect", "replicate"]):
    ax.imshow(pad2d(corner, 40, mode).permute(1, 2, 0))
    ax.add_patch(plt.Rectangle((39.5, 39.5), 160, 120, fill=False, ec="yellow", lw=1.5))
    ax.set_title(f"{mode} padding")
for ax in axes:
    ax.axis("off")
show(fig, "The photo's border under the padding modes.")

# %% [markdown]
# What a filter sees at the border depends on the mode. Take the top-left corner of the photo,
# almost flat sky, where any strong edge is an artefact, and compute the Sobel edge strength
# with each mode, with its mean on the outermost rows and columns: zero padding invents a strong
# edge where the photo meets the black frame, reflection and replication do not. Valid mode has
# no border row at all — the output is 2 pixels smaller.

# %%
img = gray[:120, :160].reshape(1, 1, 120, 160)  # the top-left corner: sky
fig, axes = subplots(1, 4, figsize=(14, 4))
for ax, mode in zip(axes, ["valid", "zeros", "reflect", "replicate"]):
    if mode == "valid":
        g_xy = conv2d_im2col(img, sobel, padding="valid")
    else:
        g_xy = conv2d_im2col(img, sobel, padding=1, padding_mode=mode)
    edge = g_xy[0].square().sum(0).sqrt()
    border = torch.cat([edge[0], edge[-1], edge[:, 0], edge[:, -1]]).mean().item()
    ax.imshow(edge, cmap="gray_r", vmin=0, vmax=2)
    ax.set_title(f"{mode}: {edge.shape[0]}x{edge.shape[1]}\nmean on the border {border:.2f}")
    ax.axis("off")
    print(f"{mode:>9}: output {edge.shape[0]}x{edge.shape[1]}, mean edge strength on the border {border:.3f}, "
          f"inside {edge[1:-1, 1:-1].mean().item():.3f}")
show(fig, 'Sobel edges of the photo under each padding mode, with the mean edge strength on the border.')

# %% [markdown]
# ## 7. Translation equivariance
#
# Shared weights mean that the convolution commutes with shifts: shift the input by $(\Delta y,
# \Delta x)$ and the feature map shifts by the same amount,
# $\mathrm{conv}(\mathrm{shift}(I)) = \mathrm{shift}(\mathrm{conv}(I))$, up to what happens at the
# border. Below the photo is shifted by (40, 90) pixels (cyclically) and passed through the Sobel
# filters; the difference between "shift then filter" and "filter then shift" is zero everywhere
# except along the border and the seam where the image wraps around.

# %%
shift = (40, 90)
image = gray.view(1, 1, *gray.shape)
filter_then_shift = torch.roll(conv2d_im2col(image, sobel, padding=1), shifts=shift, dims=(2, 3))
shift_then_filter = conv2d_im2col(torch.roll(image, shifts=shift, dims=(2, 3)), sobel, padding=1)
diff = (filter_then_shift - shift_then_filter).abs().amax(dim=(0, 1))
seam = torch.zeros_like(diff, dtype=torch.bool)
for r in (0, shift[0] - 1, shift[0], gray.shape[0] - 1):
    seam[r] = True
for c in (0, shift[1] - 1, shift[1], gray.shape[1] - 1):
    seam[:, c] = True
print(f"max |difference| off the border and seam: {diff[~seam].max().item():.2e}; on them: {diff[seam].max().item():.2f}")
fig, axes = subplots(1, 3, figsize=(14, 3.4))
axes[0].imshow(shift_then_filter[0].square().sum(0).sqrt(), cmap="gray_r")
axes[0].set_title("Sobel of the shifted photo")
axes[1].imshow(filter_then_shift[0].square().sum(0).sqrt(), cmap="gray_r")
axes[1].set_title("shifted Sobel of the photo")
thick = max_pool2d(diff.view(1, 1, *diff.shape), 7, stride=1, padding=3)[0, 0]  # thicken 1-pixel lines
axes[2].imshow(thick, cmap="gray_r")
axes[2].set_title("|difference| (lines thickened): border and seam")
for ax in axes:
    ax.axis("off")
show(fig, 'Convolution commutes with shifts except at the border and the wrap-around seam.')

# %% [markdown]
# ## 8. A small CNN against a fully connected network on shifted digits
#
# A convolutional network alternates convolutions (with a nonlinearity) and pooling, then
# flattens the last map and classifies it with fully connected layers:
#
# Conv → Pool → Conv → Pool → … → Flatten → FC → FC.
#
# The last map is a good feature vector of the image (though hard to interpret). Ours: a 5×5 and
# a 3×3 convolution, each followed by 2×2 max pooling, another 3×3 convolution, then a max pooling
# over the whole remaining map (the "pattern present anywhere?" summary), flatten and one FC
# layer. The sizes follow from `conv_output_size`:

# %%
side = 28
trace = [f"input 1x{side}x{side}"]
for what, k, s, p, channels in [("conv 5x5", 5, 1, 2, 16), ("max pool 2", 2, 2, 0, 16), ("conv 3x3", 3, 1, 1, 32),
                                ("max pool 2", 2, 2, 0, 32), ("conv 3x3", 3, 1, 1, 64)]:
    side = conv_output_size(side, k, s, p)
    trace.append(f"{what} -> {channels}x{side}x{side}")
trace += [f"global max pool {side}x{side} -> 64", "flatten + FC -> 10"]
print("\n".join(trace))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Linear(64, 10)

    def forward(self, x):
        h = self.features(x)
        return self.classifier(h.amax(dim=(2, 3)))  # global max pooling, then flatten (N, 64)


def make_mlp():
    """The fully connected network of lecture 02: 784 -> 1000 -> 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 10))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


print(f"small CNN: {n_params(SmallCNN()):,} parameters; MLP 784-1000-10: {n_params(make_mlp()):,} parameters")

# %% [markdown]
# Both are trained on the ordinary, centred MNIST digits (Adam, learning rate $10^{-3}$, batches
# of 128) and then tested on digits moved by $s$ pixels in a random one of the 8 directions (the
# empty part filled with background). A neuron of the MLP is tied to fixed pixel positions;
# the CNN's filters are not, and its global pooling does not care where the pattern is.

# %%
train_images, train_labels = load_mnist("train")
test_images, test_labels = load_mnist("test")
rng = np.random.default_rng(0)
train_idx = rng.permutation(len(train_images))[:N_TRAIN]
test_idx = rng.permutation(len(test_images))[:N_TEST]


def to_tensor(images):
    x = torch.from_numpy(images).float().div(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return ((x - 0.1307) / 0.3081).to(DEVICE)


X_train, y_train = to_tensor(train_images[train_idx]), torch.from_numpy(train_labels[train_idx]).to(DEVICE)
X_test, y_test = to_tensor(test_images[test_idx]), torch.from_numpy(test_labels[test_idx]).to(DEVICE)
background = X_train.min().item()  # the normalised value of a black pixel
directions = torch.from_numpy(rng.integers(0, 8, size=len(X_test))).to(DEVICE)
moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def shifted(images, s):
    """Each image moved by s pixels in its own random direction; uncovered pixels are background."""
    if s == 0:
        return images
    padded = pad2d(images - background, s) + background  # zero padding of (image - background)
    out = torch.empty_like(images)
    for d, (dy, dx) in enumerate(moves):
        mask = directions[: len(images)] == d
        out[mask] = padded[mask, :, s - dy * s : s - dy * s + 28, s - dx * s : s - dx * s + 28]
    return out


fig, axes = subplots(1, 6, figsize=(11, 2.2))
for ax, s in zip(axes, [0, 2, 4, 6, 8, 10]):
    ax.imshow(shifted(X_test[:1], s)[0, 0].cpu(), cmap="gray_r")
    ax.set_title(f"shift {s} px")
    ax.axis("off")
show(fig, 'A test digit shifted by 0 to 10 pixels in its random direction.')

# %%
models = {"MLP 784-1000-10": make_mlp().to(DEVICE), "small CNN": SmallCNN().to(DEVICE)}
loss_fn = nn.CrossEntropyLoss()
for name, model in models.items():
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, loss_fn, optimizer, X_train, y_train, epochs=N_EPOCHS, batch_size=128,
                  X_val=X_test, y_val=y_test, metric=accuracy, desc=name)
    print(f"{name}: test accuracy {100 * history.val_metric[-1]:.2f} % after {N_EPOCHS} epoch(s), "
          f"{history.seconds:.1f} s of training")

# %%
results = {name: [] for name in models}
for s in tqdm(SHIFTS, desc="shifted test sets"):
    X_shift = shifted(X_test, s)
    for name, model in models.items():
        _, acc = evaluate(model, loss_fn, X_shift, y_test, accuracy, batch_size=1000)
        results[name].append(100 * acc)

print(f"{'shift (px)':>10} " + " ".join(f"{name:>16s}" for name in models))
for i, s in enumerate(SHIFTS):
    print(f"{s:>10} " + " ".join(f"{results[name][i]:>14.1f} %" for name in models))
fig, ax = subplots(figsize=(7, 4))
for name, accs in results.items():
    ax.plot(SHIFTS, accs, "o-", label=f"{name} ({n_params(models[name]):,} parameters)")
ax.set_xlabel("shift of the test digits (pixels)")
ax.set_ylabel("test accuracy (%)")
ax.set_title("Trained on centred digits, tested on shifted ones")
ax.legend()
show(fig, 'Test accuracy of the MLP and the CNN, both trained on centred digits, against the shift of the test digits.')

# %%
mlp_acc, cnn_acc = results["MLP 784-1000-10"], results["small CNN"]
at4 = SHIFTS.index(4)
ratio = n_params(models["MLP 784-1000-10"]) / n_params(models["small CNN"])
claim(mlp_acc[0] > 95 and cnn_acc[0] > 95, "on centred digits both networks reach more than 95 % test accuracy")
claim(all(c > m for c, m in zip(cnn_acc[1:], mlp_acc[1:])), "the small CNN beats the large MLP at every non-zero shift")
claim(mlp_acc[at4] < 50 and cnn_acc[at4] > 90,
      "at a 4-pixel shift the MLP falls below 50 % while the CNN stays above 90 %")
md(f"On centred digits the MLP reaches **{mlp_acc[0]:.1f} %** and the CNN **{cnn_acc[0]:.1f} %** after {N_EPOCHS} "
   f"epoch(s) on {len(X_train):,} images; at a 4-pixel shift the MLP is at **{mlp_acc[at4]:.1f} %** and the CNN, "
   f"with {ratio:.0f} times fewer parameters, at **{cnn_acc[at4]:.1f} %**.")

# %% [markdown]
# A neuron of the fully connected network is tied to fixed pixel positions, so once the digits
# move it no longer sees the pattern it learned; the CNN's shared filters and global pooling see
# it anywhere (the claims above check this on the run you are reading). Pooling on a 2×2 grid and
# the image border still make the CNN only approximately shift-invariant: at 8 pixels part of
# the digit leaves the frame.
#
# ## 9. Learned filters next to hand-made ones
#
# The first layer of the CNN learned sixteen 5×5 filters from data. Next to them, filters people
# designed by hand: the Sobel pair, a Laplacian (spots and thin lines), a box blur and the
# lecture's diagonal detector. Several learned filters are recognisably oriented — positive on
# one side, negative on the other, like a larger and noisier Sobel filter — but nobody designed
# them: they are whatever made the loss small on this data. (In smoke mode the network has barely
# trained, so its filters are still close to their random initialisation.)

# %%
cnn = models["small CNN"]
learned = cnn.features[0].weight.detach().cpu()  # (16, 1, 5, 5)
hand_made = {
    "Sobel x": sobel_x,
    "Sobel y": sobel_x.t(),
    "Laplacian": torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "box blur": torch.full((3, 3), 1 / 9),
    "diagonal": torch.eye(3),
}
fig, axes = subplots(3, 8, figsize=(12, 5))
for ax, filt in zip(axes[:2].flat, learned[:, 0]):
    lim = filt.abs().max().item()
    ax.imshow(filt, cmap="RdBu_r", vmin=-lim, vmax=lim)
for ax, (name, filt) in zip(axes[2], hand_made.items()):
    lim = filt.abs().max().item()
    ax.imshow(filt, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(name, fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
for ax in axes[2, len(hand_made):]:
    ax.axis("off")
axes[0, 0].set_ylabel("learned")
axes[2, 0].set_ylabel("hand-made")
fig.suptitle("First-layer filters of the CNN (rows 1-2) and hand-made filters (row 3); red > 0, blue < 0")
show(fig, 'First-layer filters of the CNN (rows 1-2) and hand-made filters (row 3); red is positive, blue negative.')

# %% [markdown]
# What they respond to on one test digit — and a check that `course_lib`'s convolution computes
# the same feature maps as the trained `nn.Conv2d`:

# %%
digit = X_test[:1]
bias = cnn.features[0].bias.detach()
maps = conv2d_im2col(digit, cnn.features[0].weight.detach(), bias, padding=2)
with torch.no_grad():
    print(f"max |course_lib - nn.Conv2d| on the first layer: {(maps - cnn.features[0](digit)).abs().max().item():.2e}")
digit, maps = digit.cpu(), maps.cpu()
hand_maps = conv2d_im2col(digit, torch.stack([f for f in hand_made.values()]).unsqueeze(1), padding=1,
                          padding_mode="replicate")
fig, axes = subplots(2, 6, figsize=(12, 4.4))
axes[0, 0].imshow(digit[0, 0], cmap="gray_r")
axes[0, 0].set_title("digit")
for ax, fmap, t in zip(axes[0, 1:], maps[0, :5], range(5)):
    ax.imshow(torch.relu(fmap), cmap="magma")
    ax.set_title(f"learned {t} (ReLU)", fontsize=9)
axes[1, 0].axis("off")
for ax, fmap, name in zip(axes[1, 1:], hand_maps[0], hand_made):
    ax.imshow(fmap, cmap="RdBu_r")
    ax.set_title(name, fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
show(fig, 'A digit (left) and the feature maps of learned (top) and hand-made (bottom) filters.')

# %% [markdown]
# ## Summary
#
# * A convolution slides one small filter over the image: local connectivity and shared weights
#   give $(2d+1)^2 C T$ parameters however large the image, and translation equivariance for free.
# * im2col turns it into one matrix product; Python loops over output values are orders of
#   magnitude slower (the timing above, and `benchmarks/conv_speed.py` at a realistic size).
# * The receptive field grows by stacking, by strides and — without losing resolution — by
#   dilation (3 → 67 pixels in eight layers of the context network).
# * Pooling shrinks the map and adds a little shift tolerance; padding keeps the size and treats
#   the border, and each padding mode leaves its own trace there.
# * On digits that move, a small CNN beats a much larger fully connected network (checked in §8).
#   <!-- narrative: restates the claims of §8 -->
#
# ## Where to go next
#
# - **Assignment:** [`assignments/03-convolutions/`](../../assignments/03-convolutions/03-convolutions.ipynb)
#   asks you to implement the convolution, im2col and pooling yourself.
# - **Library:** `course_lib.conv` (naive and im2col convolution, padding modes, pooling,
#   receptive fields); see the API reference.
# - **Benchmark:** `benchmarks/conv_speed.py` times the implementations at a realistic size.
