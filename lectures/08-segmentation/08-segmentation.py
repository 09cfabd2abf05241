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
# # Lecture 08 · Semantic segmentation
#
# Classification gives one label per image. **Semantic segmentation** gives one label per
# *pixel*: "this pixel is a cat, that one is the road". **Instance segmentation** goes further
# and separates the objects of one class ("cat 1", "cat 2"). This lecture builds semantic
# segmentation from the layers of lecture 03: a network that keeps (or restores) the spatial
# resolution and outputs $K$ class scores at every pixel.
#
# **Learning goals**
# 1. the task, its data (PASCAL VOC 2012's table) and a synthetic data set with exact masks:
#    *digit scenes*, real MNIST digits placed on a canvas;
# 2. the metrics — **pixel accuracy**, the per-class **Jaccard index** (IoU), its mean, Dice —
#    computed by hand on tiny masks, and the loss — the **per-pixel cross-entropy** (with its
#    minus sign);
# 3. three architectures and their **receptive fields**: the **Fully Convolutional Network**
#    (1×1 convolution to $K$ channels, then upsampling), **U-Net** (contracting path,
#    up-convolutions, copy-and-crop skips) and the **dilated context network**;
# 4. the three trained on digit scenes: masks overlaid on the images, mean IoU per model, and the
#    quality of the boundaries (IoU on a band around the object edges).
#
# Metrics, loss and models come from `course_lib.segmentation` (tested against brute-force
# loops, `torch.nn.functional.cross_entropy` and the U-Net paper's sizes), the data from
# `course_lib.data.make_digit_scenes`.

# %% tags=["parameters"]
SMOKE = False

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from course_lib import segmentation as S
from course_lib.conv import receptive_field
from course_lib.data import make_digit_scenes
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots

SMOKE = setup_notebook(SMOKE, seed=0)
CANVAS = 32 if SMOKE else 64  # canvas side, pixels
SCALE = (0.6, 1.0) if SMOKE else (0.6, 1.2)  # digit size = 28 x scale pixels
N_TRAIN = 64 if SMOKE else 4000  # training scenes
N_TEST = 32 if SMOKE else 500
# Optimisation steps per model on the CPU. FCN and U-Net get the same number; the dilated network,
# whose every layer works at full resolution, costs about 3x a U-Net step and gets fewer.
STEPS = {"FCN": 6, "U-Net": 6, "dilated": 6} if SMOKE else {"FCN": 1400, "U-Net": 1400, "dilated": 300}
BATCH = 16
K = 11  # background + 10 digit classes
print(f"smoke mode: {SMOKE}; {N_TRAIN} training scenes of {CANVAS}x{CANVAS} px, steps of {BATCH}: {STEPS}")

# %% [markdown]
# ## 1. Segmentation as per-pixel classification
#
# The classic benchmark is PASCAL VOC 2012: 20 object classes plus background, with a mask drawn
# by hand for every object. The lecture's table (the segmentation image sets) is small — a
# couple of thousand images — and the notes argue that this suffices because each image carries
# far more supervision than in classification: not one label but one per pixel. The cell checks
# the table's arithmetic: train + val = trainval in every row, and the object columns add up to
# the totals (the image columns do not: an image holds objects of several classes).

# %%
VOC = {  # class: (train img, train obj, val img, val obj, trainval img, trainval obj)
    "aeroplane": (88, 108, 90, 110, 178, 218), "bicycle": (65, 94, 79, 103, 144, 197),
    "bird": (105, 137, 103, 140, 208, 277), "boat": (78, 124, 72, 108, 150, 232),
    "bottle": (87, 195, 96, 162, 183, 357), "bus": (78, 121, 74, 116, 152, 237),
    "car": (128, 209, 127, 249, 255, 458), "cat": (131, 154, 119, 132, 250, 286),
    "chair": (148, 303, 123, 245, 271, 548), "cow": (64, 152, 71, 132, 135, 284),
    "diningtable": (82, 86, 75, 82, 157, 168), "dog": (121, 149, 128, 150, 249, 299),
    "horse": (68, 100, 79, 104, 147, 204), "motorbike": (81, 101, 76, 103, 157, 204),
    "person": (442, 868, 445, 865, 887, 1733), "pottedplant": (82, 151, 85, 171, 167, 322),
    "sheep": (63, 155, 57, 153, 120, 308), "sofa": (93, 103, 90, 106, 183, 209),
    "train": (83, 96, 84, 93, 167, 189), "tvmonitor": (84, 101, 74, 98, 158, 199),
}
VOC_TOTAL = (1464, 3507, 1449, 3422, 2913, 6929)
table = np.array(list(VOC.values()))
rows_add_up = bool((table[:, 0] + table[:, 2] == table[:, 4]).all() and (table[:, 1] + table[:, 3] == table[:, 5]).all())
objects_sum = table[:, [1, 3, 5]].sum(0)
print(f"{len(VOC)} classes; train + val = trainval in every row: {rows_add_up}")
print(f"objects summed over classes: {objects_sum.tolist()} vs the totals {[VOC_TOTAL[i] for i in (1, 3, 5)]}")
print(f"images summed over classes: {table[:, [0, 2, 4]].sum(0).tolist()} vs the totals "
      f"{[VOC_TOTAL[i] for i in (0, 2, 4)]} (an image counts once per class it contains)")
claim(rows_add_up and objects_sum.tolist() == [3507, 3422, 6929] and len(VOC) == 20,
      "VOC 2012's segmentation table is consistent: 20 classes, train + val = trainval, object columns sum to the totals")

# %% [markdown]
# ### Digit scenes
#
# To train on a CPU with *exact* ground truth, this lecture uses `make_digit_scenes`: real MNIST
# digits, rescaled and placed on a canvas, possibly overlapping. The mask is 0 for background and
# $c + 1$ for a pixel of digit $c$ (so $K = 11$ classes); the generator also gives instance masks
# (which digit a pixel belongs to — instance segmentation) and boxes (lecture 09). Training
# scenes use MNIST's training digits, test scenes its test digits.

# %%
t0 = time.perf_counter()
train = make_digit_scenes(N_TRAIN, CANVAS, (1, 3), scale=SCALE, split="train", seed=0)
test = make_digit_scenes(N_TEST, CANVAS, (1, 3), scale=SCALE, split="test", seed=1)
print(f"generated {N_TRAIN} + {N_TEST} scenes in {time.perf_counter() - t0:.1f} s")
X_train, Y_train = torch.from_numpy(train.images[:, None]), torch.from_numpy(train.masks)
X_test, Y_test = torch.from_numpy(test.images[:, None]), torch.from_numpy(test.masks)
fg = (Y_train > 0).double().mean().item()
print(f"labelled pixels per scene: {CANVAS * CANVAS} (one label per image in classification); "
      f"digit pixels: {100 * fg:.1f} % of all pixels")

CMAP = plt.get_cmap("tab10")


def overlay(ax, image, mask, title):
    """The grey image with the class mask drawn on top (one colour per digit class)."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    colours = np.zeros((*mask.shape, 4))
    on = mask > 0
    colours[on] = CMAP((mask[on] - 1) % 10)
    colours[on, 3] = 0.55
    ax.imshow(colours)
    ax.set_title(title)
    ax.axis("off")


fig, axes = subplots(3, 4, figsize=(9, 7))
for j in range(4):
    axes[0, j].imshow(train.images[j], cmap="gray")
    axes[0, j].set_title(f"digits {train.labels[j].tolist()}")
    axes[0, j].axis("off")
    overlay(axes[1, j], train.images[j], train.masks[j], "class mask")
    axes[2, j].imshow(train.instance_masks[j], cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[2, j].set_title("instance mask")
    axes[2, j].axis("off")
show(fig, "Four training scenes: the image, the semantic mask (colour = digit class) and the instance mask (colour = which digit).")

# %% [markdown]
# ## 2. Metrics and loss, by hand
#
# With $y_i$ the true and $a_i$ the predicted class of pixel $i$, $n$ pixels:
#
# * **pixel accuracy** $\;\frac1n \sum_i [y_i = a_i]$ (one set of notes writes $\neq$: that is
#   the error rate);
# * the **Jaccard index** of class $k$ (its IoU)
#   $$J_k = \frac{\sum_i [y_i = k]\,[a_i = k]}{\sum_i \max\big([y_i = k], [a_i = k]\big)}
#   = \frac{|P_k \cap G_k|}{|P_k \cup G_k|} = \frac{TP}{TP + FP + FN},$$
#   averaged over classes: **mean IoU** (a class absent from both maps has an empty union and
#   is skipped);
# * **Dice** $\;D_k = \frac{2|P_k \cap G_k|}{|P_k| + |G_k|} = \frac{2 J_k}{1 + J_k}$.
#
# Pixel accuracy is dominated by the background: a network that predicts "background"
# everywhere scores the background share of the pixels. The Jaccard index weighs each class
# equally. Below, a 4×6 target with two classes and a prediction that gets one object too fat
# and misses another; each number is first counted by hand, then computed by the library.

# %%
target = torch.tensor([[0, 0, 1, 1, 0, 0],
                       [0, 0, 1, 1, 0, 0],
                       [0, 0, 0, 0, 2, 2],
                       [0, 0, 0, 0, 2, 2]])
pred = torch.tensor([[0, 1, 1, 1, 0, 0],
                     [0, 1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0, 2],
                     [0, 0, 0, 0, 0, 0]])
# by hand: class 1 has 4 true pixels, 6 predicted, 4 in common -> J = 4 / 6; class 2: 4 true, 1 predicted,
# 1 in common -> J = 1 / 4; background: 16 true, 17 predicted, 14 in common -> J = 14 / 19
hand = {"accuracy": 19 / 24, "J": [14 / 19, 4 / 6, 1 / 4]}
acc = S.pixel_accuracy(pred, target).item()
jac = S.jaccard_per_class(pred, target, 3)
dice = S.dice_per_class(pred, target, 3)
loop_j = [sum(int(t == k and p == k) for t, p in zip(target.flatten(), pred.flatten()))
          / sum(max(int(t == k), int(p == k)) for t, p in zip(target.flatten(), pred.flatten())) for k in range(3)]
print(f"pixel accuracy {acc:.4f} (by hand 19/24 = {hand['accuracy']:.4f}); the '≠' version gives {1 - acc:.4f}")
print("Jaccard per class", np.round(jac.numpy(), 4), "by hand", np.round(hand["J"], 4), "by the max() formula", np.round(loop_j, 4))
print(f"mean IoU {S.mean_iou(pred, target, 3).item():.4f}; Dice per class {np.round(dice.numpy(), 4)}; "
      f"2J/(1+J) = {np.round((2 * jac / (1 + jac)).numpy(), 4)}")
print("a class absent from both maps:", S.jaccard_per_class(pred, target, 4).numpy().round(4), "(NaN, skipped by the mean)")
all_background = torch.zeros_like(target)
print(f"predicting background everywhere: pixel accuracy {S.pixel_accuracy(all_background, target).item():.3f}, "
      f"mean IoU {S.mean_iou(all_background, target, 3).item():.3f}")
claim(abs(acc - hand["accuracy"]) < 1e-12 and np.allclose(jac.numpy(), hand["J"]) and np.allclose(loop_j, hand["J"]),
      "the library's pixel accuracy and Jaccard indices equal the counts by hand and the max() formula")
claim(torch.allclose(dice, 2 * jac / (1 + jac)), "Dice = 2J / (1 + J) for every class")

# %% [markdown]
# ### The per-pixel cross-entropy
#
# The network outputs scores $b_{ik}$, turned into probabilities by a softmax over the classes,
# $a_{ik} = \mathrm{softmax}(b_i)_k$, and is trained by the cross-entropy summed (averaged) over
# the pixels:
#
# $$L = -\frac1n \sum_{i=1}^{n} \sum_{k=1}^{K} [y_i = k] \log a_{ik} .$$
#
# The lecture notes write it without the minus sign; then $L \le 0$ and minimising it would
# push the probability of the true class *down*. With the minus, $L \ge 0$ and it is 0 only for
# a perfect, confident prediction. `pixel_cross_entropy` equals `F.cross_entropy` on
# $(N, K, H, W)$ logits:

# %%
gen = torch.Generator().manual_seed(0)
logits = torch.randn(2, K, 5, 7, generator=gen, dtype=torch.float64)
labels = torch.randint(0, K, (2, 5, 7), generator=gen)
ours = S.pixel_cross_entropy(logits, labels)
by_hand = -(torch.log_softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)).mean()
without_minus = -by_hand
print(f"pixel_cross_entropy {ours.item():.6f}, by hand {by_hand.item():.6f}, F.cross_entropy "
      f"{F.cross_entropy(logits, labels).item():.6f}; the notes' sign gives {without_minus.item():.6f}")
claim(torch.allclose(ours, F.cross_entropy(logits, labels)) and ours.item() > 0 > without_minus.item(),
      "the per-pixel cross-entropy with its minus sign equals F.cross_entropy and is positive; without it, negative")

# %% [markdown]
# ## 3. Three architectures and their receptive fields
#
# **FCN** (Long et al., 2015). Take a classification network, drop its fully connected layers,
# and put a **1×1 convolution to $K$ channels** on the last feature map: every position of the
# small map now gets $K$ class scores. The map is $2^p$ times smaller than the image ($p$
# poolings), so it is upsampled back — by **repeating** each score over a $2^p \times 2^p$ block, or
# by something smarter: a **transposed convolution** ("up-convolution", which inserts zeros
# between the values and convolves; lecture 03) initialised to bilinear interpolation and
# learned. Its drawback: the last tensor is small, so the boundaries are coarse; with fewer
# poolings the map is finer but the receptive field too small to see a whole object.
#
# **U-Net** (Ronneberger et al., 2015) adds a decoder that climbs back up: at every level an
# up-convolution doubles the resolution, the encoder's feature map of the same level is
# **copied** (and cropped, when the paper's unpadded convolutions made it larger) and
# concatenated, and two 3×3 convolutions mix both. The copies bring back the fine detail that
# pooling threw away; they are the main difference from FCN, and the decoder's convolutions
# give a large receptive field at full resolution.
#
# **Dilated convolutions** (Yu & Koltun, 2016) take the third way: no pooling at all, so the
# resolution never drops, and a 3×3 kernel with dilation $l$ (taps $l$ pixels apart) grows the
# receptive field by $2l$ per layer. Their **context network** stacks dilations 1, 1, 2, 4, 8,
# 16, 1 and a final 1×1 layer: receptive fields 3, 5, 9, 17, 33, 65, 67, 67 (lecture 03, §5),
# exponential growth at a linear cost. Its "basic" variant has $C$ channels in every layer, the
# "large" one 2C, 2C, 4C, 8C, 16C, 32C, 32C and then $C$; every layer but the last is followed by
# a ReLU ("truncation").
#
# The receptive field of each model is computed in two ways: by the arithmetic of lecture 03,
# $r_l = r_{l-1} + d_l (k_l - 1) j_{l-1}$, and by measuring which input pixels have a non-zero
# gradient on the central output pixel (with all weights positive, so no ReLU is silent).

# %%
def make_models():
    torch.manual_seed(0)
    return {
        "FCN": S.FCN(K, in_ch=1, base_ch=16, n_pools=3, upsample="learned", batch_norm=True),
        "U-Net": S.UNet(1, K, depth=3, base_ch=16, batch_norm=True),
        "dilated": S.ContextNetwork(1, K, width=24),
    }


def measured_receptive_field(model, size=201):
    """Side of the input region whose pixels influence the centre output pixel (weights made positive, max-pools made average pools)."""
    m = copy.deepcopy(model).double().eval()

    def no_max(module):  # a max-pool passes the gradient to one pixel only; an average pool has the same field
        for name, child in module.named_children():
            if isinstance(child, torch.nn.MaxPool2d):
                setattr(module, name, torch.nn.AvgPool2d(child.kernel_size, child.stride, ceil_mode=child.ceil_mode))
            else:
                no_max(child)

    no_max(m)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.abs() + 1e-3)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    m(x)[0, 0, size // 2, size // 2].backward()
    rows = (x.grad[0, 0].abs() > 0).any(1).nonzero()
    return int(rows.max() - rows.min() + 1)


models = make_models()
unet_encoder = [(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 3 + [(3, 1, 1), (3, 1, 1)]  # down path and bottom block
rf_arith = {"FCN": models["FCN"].receptive_field(), "U-Net (encoder)": receptive_field(unet_encoder)[-1],
            "dilated": models["dilated"].receptive_field()}
rf_measured = {name: measured_receptive_field(m) for name, m in models.items()}
n_params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
for name in models:
    arith = rf_arith.get(name, rf_arith.get("U-Net (encoder)"))
    print(f"{name:<8} {n_params[name]:>8,} parameters; receptive field measured {rf_measured[name]} px, "
          f"arithmetic {arith} px{' (encoder path only)' if name == 'U-Net' else ''}")
ctx_fields = models["dilated"].receptive_fields()
print("context network, receptive field after each layer:", ctx_fields)
large = S.ContextNetwork(1, K, width=4, variant="large")
print("large context network with C = 4, channels per layer:", large.channels)
claim(ctx_fields == [3, 5, 9, 17, 33, 65, 67, 67], "the context network's receptive fields are 3, 5, 9, 17, 33, 65, 67, 67")
claim(large.channels == [8, 8, 16, 32, 64, 128, 128, K], "the large variant has 2C, 2C, 4C, 8C, 16C, 32C, 32C channels, then the classes")
claim(rf_measured["dilated"] == 67 and rf_measured["FCN"] >= rf_arith["FCN"],
      "the measured receptive fields agree with the arithmetic (the FCN's up-convolution widens it a little)")
claim(rf_measured["U-Net"] > rf_arith["U-Net (encoder)"], "U-Net's decoder grows the receptive field beyond the encoder's")

# %%
x = torch.zeros(2, 1, CANVAS, CANVAS)
for name, m in models.items():
    print(f"{name:<8} input {tuple(x.shape)} -> output {tuple(m(x).shape)}")
paper = S.UNet(1, 2, depth=4, base_ch=64, padding=0)
print(f"the paper's U-Net (unpadded 3x3 convolutions, copy and crop): a 572x572 tile gives {paper.output_size(572)}x{paper.output_size(572)} "
      "(Ronneberger et al., Fig. 1)")
claim(paper.output_size(572) == 388, "with valid convolutions a 572x572 input gives U-Net's 388x388 output")

# %% [markdown]
# ## 4. Training the three on digit scenes
#
# Each model is trained with Adam on the per-pixel cross-entropy (FCN and U-Net for the same
# number of steps, the costlier dilated network for fewer on the CPU) and evaluated on scenes made
# of MNIST *test* digits. The full-size run (more scenes, more
# steps) is in the `gpu` cell further down; the CPU run below is what this page shows.

# %%
def run_experiment(X, Y, steps, batch, device):
    """Train each model (``steps``: {model name: steps}) with ``S.train_segmentation`` (Adam, one-cycle schedule, per-pixel
    cross-entropy) and score it on the test scenes with ``S.evaluate_segmentation``."""
    results = {}
    for name, model in make_models().items():
        start = time.perf_counter()
        losses = S.train_segmentation(model, X, Y, steps[name], batch, device=device, desc=name)
        seconds = time.perf_counter() - start
        r = S.evaluate_segmentation(model, X_test, Y_test, K, device=device)
        results[name] = {**r, "model": model.cpu(), "losses": losses, "seconds": seconds,
                         "per_class": r["per_class"].numpy()}
        print(f"{name:<8} {seconds:6.1f} s training; test: pixel accuracy {100 * r['acc']:.2f} %, "
              f"mean IoU {r['miou']:.3f}, boundary IoU {r['boundary']:.3f}")
    return results


device = torch.device("cpu")
results = run_experiment(X_train, Y_train, STEPS, BATCH, device)

# %%
fig, axes = subplots(1, 2, figsize=(10, 3.8))
for name, r in results.items():
    smooth = np.convolve(r["losses"], np.ones(min(20, len(r["losses"]))) / min(20, len(r["losses"])), mode="valid")
    axes[0].plot(smooth, label=name, marker="o" if SMOKE else None)
axes[0].set_yscale("log")
axes[0].set_xlabel("step")
axes[0].set_ylabel("training loss (running mean)")
axes[0].legend()
pos = np.arange(K)
for j, (name, r) in enumerate(results.items()):
    axes[1].bar(pos + (j - 1) * 0.27, np.nan_to_num(r["per_class"]), 0.27, label=name)
axes[1].set_xticks(pos, ["bg"] + [str(d) for d in range(10)])
axes[1].set_xlabel("class")
axes[1].set_ylabel("test IoU")
axes[1].legend(loc="lower left")
show(fig, "Left: training loss of the three models. Right: Jaccard index of every class on the test scenes.")

# %%
fig, axes = subplots(4, 5, figsize=(11, 9))
for j in range(5):
    overlay(axes[0, j], test.images[j], test.masks[j], "ground truth")
    for row, name in enumerate(results, start=1):
        overlay(axes[row, j], test.images[j], results[name]["pred"][j].numpy(), name)
show(fig, "Test scenes with the true mask (top) and the masks predicted by the FCN, the U-Net and the dilated network.")

# %%
band_demo = S.boundary_band(Y_test[0] > 0, 2)
fig, axes = subplots(1, 4, figsize=(11, 3))
overlay(axes[0], test.images[0], test.masks[0], "truth")
axes[1].imshow(band_demo, cmap="gray")
axes[1].set_title("its boundary band, 2 px")
axes[1].axis("off")
for ax, name in zip(axes[2:], ["FCN", "U-Net"], strict=True):
    p = results[name]["pred"][0]
    err = (p != Y_test[0]).numpy()
    ax.imshow(test.images[0], cmap="gray")
    ax.imshow(np.ma.masked_where(~err, err), cmap="autumn", alpha=0.8)
    ax.set_title(f"{name}: wrong pixels")
    ax.axis("off")
show(fig, "Where the errors are: the boundary band used by boundary IoU, and the misclassified pixels of the FCN and the U-Net on one scene.")

# %% [markdown]
# The **boundary IoU** (Cheng et al., 2021) computes the IoU only on the pixels within 2 px of each
# object's contour, in the prediction and in the truth; unlike the mask IoU it does not
# saturate for large objects, so a coarse, blocky edge lowers it clearly. The numbers of this run:

# %%
fcn, unet, dil = results["FCN"], results["U-Net"], results["dilated"]
md("| model | parameters | receptive field, px | training, s | pixel accuracy | mean IoU | boundary IoU |\n"
   "| --- | --- | --- | --- | --- | --- | --- |\n"
   + "\n".join(f"| {name} | {n_params[name]:,} | {rf_measured[name]} | {r['seconds']:.0f} | {100 * r['acc']:.2f} % | "
               f"{r['miou']:.3f} | {r['boundary']:.3f} |" for name, r in results.items()))

# %%
claim(unet["miou"] > fcn["miou"], "U-Net reaches a higher mean IoU than the FCN trained for the same steps")
claim(unet["boundary"] > fcn["boundary"] + 0.05, "U-Net's boundaries are clearly better than the FCN's (boundary IoU higher by more than 0.05)")
claim(fcn["boundary"] < fcn["miou"], "the FCN's boundary IoU is below its mask IoU: its errors sit on the edges")
claim(unet["miou"] > 0.6, "the U-Net trained on a few thousand synthetic scenes already segments the digits (mean IoU above 0.6)")
claim(min(r["acc"] for r in results.values()) > 0.9, "every model has a pixel accuracy above 90 %, mostly from the background")
md(f"In this run U-Net reached a mean IoU of **{unet['miou']:.3f}** against the FCN's **{fcn['miou']:.3f}** and the "
   f"dilated network's **{dil['miou']:.3f}**; on the boundary band the gap is wider: **{unet['boundary']:.3f}** vs "
   f"**{fcn['boundary']:.3f}** for the FCN. The lowest pixel accuracy of the three is {100 * min(r['acc'] for r in results.values()):.1f} %: "
   "most pixels are background, so the Jaccard index is the informative number.")

# %% [markdown]
# <!-- narrative -->
# Why: the FCN sees the whole digit (large receptive field) but decides on an 8× coarser grid,
# so its edges are interpolated; U-Net's copied encoder maps bring the full-resolution detail
# back. The dilated network decides at full resolution too, but its few channels and plain
# stack make it slower to train and more expensive per pixel than the two encoder–decoders (on
# the CPU it also gets fewer steps, so its row here is not a like-for-like comparison).
#
# ### The full-size run (GPU)
#
# With a GPU the same three models train on 20,000 scenes for 4,000 steps each; this is the run
# that aims at the target of a U-Net mean IoU of at least 0.90. Without a GPU the cell is
# skipped and says so.

# %% tags=["gpu"]
big = make_digit_scenes(20000, 64, (1, 3), scale=(0.6, 1.2), split="train", seed=0)
results_gpu = run_experiment(torch.from_numpy(big.images[:, None]), torch.from_numpy(big.masks),
                             {name: 4000 for name in ("FCN", "U-Net", "dilated")}, 64, get_device())
claim(results_gpu["U-Net"]["miou"] >= 0.90, "on the GPU run U-Net reaches a mean IoU of at least 0.90 on the test scenes")
claim(results_gpu["U-Net"]["boundary"] > results_gpu["FCN"]["boundary"], "U-Net's boundaries beat the FCN's on the GPU run too")

# %% [markdown]
# ## Summary
#
# - Semantic segmentation is classification of every pixel; the loss is the cross-entropy
#   averaged over pixels, **with** its minus sign.
# - Pixel accuracy is dominated by the background; the per-class Jaccard index (IoU) and its
#   mean weigh every class equally; Dice is a monotone function of it.
# - FCN: 1×1 convolution to $K$ channels, then upsampling — right labels, coarse boundaries.
#   U-Net: the decoder and the copied encoder maps restore the boundaries. Dilated
#   convolutions keep the resolution while the receptive field grows exponentially.
#
# ### Seed statements
#
# | # | statement of the notes | where it is checked or corrected |
# | --- | --- | --- |
# | 8.1 | semantic vs instance segmentation | introduction; §1 shows both masks |
# | 8.2 | PASCAL VOC 2012 table | §1, asserted (rows and object columns add up) |
# | 8.3 | each object carries more information, small samples suffice | §1 (a label per pixel), §4 claim on a few thousand scenes |
# | 8.4 | pixel accuracy | §2 by hand; the notes' "≠" corrected (it is the error rate); `tests/test_segmentation.py` |
# | 8.5 | Jaccard index per class, averaged | §2 by hand and by the max() formula; `tests/test_segmentation.py` |
# | 8.6 | per-pixel cross-entropy | §2: the missing minus sign corrected, equal to `F.cross_entropy` |
# | 8.7 | $a_{ik}$ = softmax | §2; `tests/test_layers.py` (softmax) |
# | 8.8 | FCN: 1×1 convolutions to K channels, upsampling by repetition or learned | §3, `course_lib.segmentation.FCN`, §4 |
# | 8.9 | FCN's coarse boundaries, receptive-field trade-off | §4: boundary IoU claims; §3 receptive fields |
# | 8.10 | U-Net: up-convolutions, copy and crop | §3 (572 → 388 asserted), §4 |
# | 8.11 | up-convolution inserts zeros | lecture 03; `tests/test_conv.py` (transposed convolution) |
# | 8.12 | dilations 1, 2, 4 | lecture 03 §5; §3 here |
# | 8.13 | context network receptive fields 3 … 67 | §3, asserted; `tests/test_conv.py`, `tests/test_segmentation.py` |
# | 8.14 | basic / large channels, truncation | §3, asserted (large variant); `course_lib.segmentation.ContextNetwork` |
# | 8.15 | dilated convolutions keep the size while the receptive field grows | §3 (output shapes, receptive fields) |
#
# ## Where to go next
#
# - **Assignment:** [`assignments/08-segmentation-detection/`](../../assignments/08-segmentation-detection/08-segmentation-detection.ipynb)
#   (shared with lecture 09): the Jaccard metric and a U-Net forward pass with skip connections,
#   with IoU, NMS, AP and YOLO targets from lecture 09.
# - **Library:** `course_lib.segmentation` — the metrics, `pixel_cross_entropy`, `boundary_iou`,
#   `FCN`, `UNet`, `ContextNetwork`, `train_segmentation`, `evaluate_segmentation`;
#   `course_lib.data.make_digit_scenes` for the data (see the API reference).
# - **Benchmark:** `benchmarks/segmentation_detection.py` trains the three models (and lecture 09's
#   detectors) for longer than this page can, towards the target of a U-Net mean IoU of 0.90;
#   its numbers are in `benchmarks/RESULTS.md`.
# - **Next lecture:** boxes instead of masks — object detection (lecture 09).
