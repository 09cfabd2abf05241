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
# # Lecture 07 · Interpreting networks
#
# A trained CNN classifies well, but *what* has it learned, and *which pixels* does a decision rest
# on? This lecture opens a small MNIST CNN with the standard tools, each a few lines of autograd.
#
# **Learning goals**
# 1. read a network's **first-layer filters** and the **image patches that excite each filter**
#    most (the unit's receptive field, from lecture 03's arithmetic);
# 2. **class-score maximisation**: the input $x^* = \arg\max_x a_y(x) - \lambda\lVert x\rVert_2^2$
#    found by gradient *ascent* from noise;
# 3. three ways to ask which pixels a prediction depends on - **saliency** (the input gradient),
#    **occlusion** (cover a square, watch the score) and **Grad-CAM** (gradient-weighted feature
#    maps) - and a test that tells a faithful map from a pretty one;
# 4. **penultimate-layer features** as descriptors of an image, seen through **t-SNE**.
#
# Everything comes from `course_lib.interpret`, whose tests compare each function with autograd, a
# brute-force loop or a model whose evidence location is known by construction.

# %% tags=["parameters"]
SMOKE = False

# %%
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import interpret as I
from course_lib.data import load_mnist
from course_lib.models import count_parameters
from course_lib.notebook import claim, md, setup_notebook, show, subplots
from course_lib.training import accuracy, fit

SMOKE = setup_notebook(SMOKE, seed=0)
N_TRAIN = 2000 if SMOKE else 60000
EPOCHS = 1 if SMOKE else 3
TEST_SIZE = 500 if SMOKE else 10000
MAX_STEPS = 30 if SMOKE else 300  # gradient-ascent steps of class maximisation
N_TSNE = 300 if SMOKE else 2000
print(f"smoke mode: {SMOKE}")

MEAN, STD = 0.1307, 0.3081
BACKGROUND = -MEAN / STD  # a black pixel after standardisation
X_train_u8, y_train_np = load_mnist("train")
X_test_u8, y_test_np = load_mnist("test")


def images(u8):
    return torch.from_numpy(u8).float().div(255).sub(MEAN).div(STD)[:, None]


X, y = images(X_train_u8[:N_TRAIN]), torch.from_numpy(y_train_np[:N_TRAIN])
X_test, y_test = images(X_test_u8[:TEST_SIZE]), torch.from_numpy(y_test_np[:TEST_SIZE])

# %% [markdown]
# ## 1. The network under study
#
# A chain of three 5×5 / 3×3 convolutions with max-pooling and two linear layers; a chain, so that
# every unit's receptive field follows from the kernel sizes, strides and paddings
# (`course_lib.interpret.layer_geometry`).

# %%
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 16 x 14 x 14
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 7 x 7
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),  # 64 x 7 x 7: the last convolutional maps
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
)
conv1, conv2, conv3, penultimate = model[0], model[3], model[6], model[11]
hist = fit(model, F.cross_entropy, torch.optim.Adam(model.parameters(), lr=2e-3), X, y, epochs=EPOCHS, batch_size=128,
           desc="training the CNN")
model.eval()
with torch.no_grad():
    test_acc = accuracy(model(X_test), y_test)
print(f"{count_parameters(model):,} parameters, trained on {N_TRAIN} digits for {EPOCHS} epoch(s) in {hist.seconds:.1f} s: "
      f"test accuracy {100 * test_acc:.2f} %")
claim(test_acc > 0.98, "the CNN classifies more than 98 % of the test digits correctly")
for name, layer in [("conv1", conv1), ("conv2", conv2), ("conv3", conv3)]:
    geo = I.layer_geometry(model, layer)
    print(f"{name}: receptive field {geo.size[0]}x{geo.size[1]} pixels, jump {geo.jump[0]}, offset {geo.offset[0]}")

# %% [markdown]
# ## 2. First-layer filters
#
# The first layer's weights live in pixel space, so they can be looked at directly: 16 filters of
# 5×5. Trained networks learn oriented edge and stroke detectors here - on digits as on ImageNet,
# which is why the first layers transfer between tasks (lecture 06). <!-- narrative -->

# %%
w = conv1.weight.detach()[:, 0]
fig, axes = subplots(2, 8, figsize=(12, 3.4))
for ax, f, i in zip(axes.flat, w, range(16)):
    lim = f.abs().max().item()
    ax.imshow(f.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"filter {i}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
show(fig, "The 16 first-layer filters (5x5) of the trained CNN; red positive, blue negative weights.")

# %% [markdown]
# ## 3. The patches that excite each filter most
#
# For a filter $c$ of a layer, score every image by the maximum of its map $A_c$, keep the $k$
# best images, and cut out the **receptive field** of the maximising unit (Zeiler & Fergus 2014
# do this for AlexNet's layers 1-5). A unit at position $(i, j)$ of a layer with receptive field
# $r$, jump $J$ and offset $o$ sees the input rows $o + iJ, \dots, o + iJ + r - 1$ (padding
# included). First layer (5×5 patches) and third layer (larger patches: parts of digits):

# %%
def patch_grid(layer, n_filters, k, title):
    top = I.top_activating_patches(model, layer, X_test, k, channels=list(range(n_filters)))
    fig, axes = subplots(n_filters, k, figsize=(1.2 * k, 1.25 * n_filters))
    for c in range(n_filters):
        for j in range(k):
            ax = axes[c, j]
            ax.imshow(top.patches[c, j, 0].numpy(), cmap="gray", vmin=BACKGROUND, vmax=(1 - MEAN) / STD)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        axes[c, 0].set_ylabel(f"filter {c}", fontsize=8)
    show(fig, title)
    return top


top1 = patch_grid(conv1, 6, 8, "Conv1: the 8 test patches (5x5 pixels) that excite each of 6 filters most.")

# %%
top3 = patch_grid(conv3, 6, 8, f"Conv3: the 8 test patches ({I.layer_geometry(model, conv3).size[0]}x"
                               f"{I.layer_geometry(model, conv3).size[0]} pixels) that excite each of 6 filters most.")

# %%
# the patch is really what the unit saw: the first layer applied to a patch alone gives the recorded maximum
with torch.no_grad():
    recomputed = torch.stack([F.relu(F.conv2d(top1.patches[c, :, :, :, :], conv1.weight[c : c + 1], conv1.bias[c : c + 1]))
                              [:, 0, 0, 0] for c in range(6)])
err = (recomputed - top1.values).abs().max().item()
print(f"conv1: max |filter(patch) - recorded activation| = {err:.1e}")
claim(err < 1e-4, "each first-layer patch reproduces its recorded activation: the receptive-field arithmetic is right")
mean_max = I.layer_output(model, conv3, X_test).amax(dim=(2, 3))[:, :6].mean(0)
claim(bool((top3.values[:, -1] > mean_max).all()), "even the 8th-best image excites each conv3 filter more than the average image")

# %% [markdown]
# ## 4. Class-score maximisation
#
# Simonyan, Vedaldi & Zisserman (2014) ask for the image the network finds most typical of class
# $y$: with $a_y(x)$ the **unnormalised score** (the logit, not the softmax probability, which can
# also grow by lowering the other classes),
#
# $$x^* = \arg\max_x\; a_y(x) - \lambda \lVert x \rVert_2^2 ,$$
#
# found from small random noise by gradient **ascent** $x \leftarrow x + \eta\,\nabla_x\bigl(a_y(x)
# - \lambda\lVert x\rVert^2\bigr)$. (One of the notes calls it descent - it is descent on the
# negated objective.) The penalty keeps the pixels bounded; for a linear score $w^\top x + b$ the
# answer is $x^* = w / 2\lambda$.

# %%
L2, LR = 0.05, 0.5
class_images = [I.maximize_class(model, c, l2=L2, steps=MAX_STEPS, lr=LR, input_shape=(1, 28, 28), seed=c) for c in range(10)]
fig, axes = subplots(1, 10, figsize=(14, 2.2))
for c, (ax, r) in enumerate(zip(axes, class_images)):
    ax.imshow(r.image[0].numpy(), cmap="gray")
    ax.set_title(f"class {c}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
show(fig, f"Images maximising each class score minus {L2} times the squared norm, after {MAX_STEPS} ascent steps from noise.")

with torch.no_grad():
    predicted = model(torch.stack([r.image for r in class_images])).argmax(1)
print("objective start -> end:", ", ".join(f"{r.objective[0]:.1f} -> {r.objective[-1]:.1f}" for r in class_images))
print("predicted class of each image:", predicted.tolist())
claim(all(r.objective[-1] > r.objective[0] for r in class_images), "gradient ascent raises the regularised class score for every class")
claim(predicted.tolist() == list(range(10)), "each maximising image is classified as the class it was made for")

# %% [markdown]
# The images are not digits a person would draw: the network responds to strokes in the right
# places and to little else, and without stronger priors (blur, jitter) the ascent produces high
# frequencies. The notes' examples (dumbbell, cup, dalmatian, bell pepper, lemon, husky) come from
# an ImageNet network, which this offline course does not have. <!-- narrative -->
#
# ## 5. Which pixels does a prediction depend on?
#
# * **Saliency** (Simonyan et al. 2014): $M_{ij} = \max_c \bigl|\partial a_y / \partial x_{cij}\bigr|$,
#   one backward pass;
# * **occlusion** (Zeiler & Fergus 2014): cover a $p \times p$ square with a constant at every
#   position and record the drop $a_y(x) - a_y(x_\text{occluded})$;
# * **Grad-CAM** (Selvaraju et al. 2017): with $A^k$ the maps of the last convolution and
#   $\alpha_k = \frac{1}{hw}\sum_{ij} \partial a_y / \partial A^k_{ij}$, the map
#   $\mathrm{ReLU}(\sum_k \alpha_k A^k)$, upsampled to the image.
#
# First, saliency is nothing but autograd's input gradient:

# %%
x6, y6 = X_test[:6], y_test[:6]
sal = I.saliency_map(model, x6, y6)
inp = x6.clone().requires_grad_(True)
model(inp).gather(1, y6[:, None]).sum().backward()
sal_err = (sal - inp.grad.abs().amax(1)).abs().max().item()
print(f"max |saliency_map - |autograd input gradient|| = {sal_err:.1e}")
claim(sal_err < 1e-6, "the saliency map equals the absolute input gradient from autograd")

occ = I.occlusion_map(model, x6, y6, patch=6, stride=2, fill=BACKGROUND)
cam = I.grad_cam(model, conv3, x6, y6)
occ_up = F.interpolate(occ[:, None], size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
fig, axes = subplots(4, 6, figsize=(11, 7.6))
for j in range(6):
    for row, (m, title, cmap) in enumerate([(x6[j, 0], "digit", "gray"), (sal[j], "saliency", "magma"),
                                            (occ[j], "occlusion", "magma"), (cam[j], "Grad-CAM", "magma")]):
        ax = axes[row, j]
        ax.imshow(m.detach().numpy(), cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if j == 0:
            ax.set_ylabel(title)
    axes[0, j].set_title(f"label {y6[j].item()}", fontsize=9)
show(fig, "Six test digits and, for their true class, the saliency map, the occlusion map (6x6 square, stride 2) and Grad-CAM on conv3.")

# %% [markdown]
# A map is only useful if it is **faithful**: the pixels it ranks highest should be the ones the
# score depends on. The *deletion* test: set the 10 % of pixels a map ranks highest to the
# background and measure the drop of the class score, against 10 % chosen at random.

# %%
def deletion_drop(x, labels, maps, fraction=0.1):
    n_pix = int(fraction * x[0].numel())
    flat = maps.reshape(len(x), -1)
    idx = flat.topk(n_pix, dim=1).indices
    erased = x.reshape(len(x), -1).clone()
    erased.scatter_(1, idx, BACKGROUND)
    with torch.no_grad():
        before = model(x).gather(1, labels[:, None])[:, 0]
        after = model(erased.reshape(x.shape)).gather(1, labels[:, None])[:, 0]
    return (before - after).mean().item()


xd, yd = X_test[:64], y_test[:64]
rand_maps = torch.rand(64, 28, 28, generator=torch.Generator().manual_seed(3))
occ_d = F.interpolate(I.occlusion_map(model, xd, yd, patch=6, stride=2, fill=BACKGROUND)[:, None], size=(28, 28),
                      mode="bilinear", align_corners=False)[:, 0]
drops = {"saliency": deletion_drop(xd, yd, I.saliency_map(model, xd, yd)),
         "occlusion": deletion_drop(xd, yd, occ_d),
         "Grad-CAM": deletion_drop(xd, yd, I.grad_cam(model, conv3, xd, yd)),
         "random pixels": deletion_drop(xd, yd, rand_maps)}
md("| map | mean drop of the class score when its top 10 % pixels are erased |\n| --- | --- |\n"
   + "\n".join(f"| {k} | {v:.2f} |" for k, v in drops.items()))

# %%
claim(all(drops[k] > 2 * drops["random pixels"] for k in ("saliency", "occlusion")),
      "erasing the pixels saliency or occlusion ranks highest lowers the score more than twice as much as erasing random pixels")
claim(drops["random pixels"] < drops["Grad-CAM"] < min(drops["saliency"], drops["occlusion"]),
      "Grad-CAM's top pixels matter more than random ones, but less than saliency's or occlusion's")
md(f"The most faithful map in this test is **{max((k for k in drops if k != 'random pixels'), key=drops.get)}**.")

# %% [markdown]
# Saliency costs one backward pass and is noisy (it measures the *local* slope); occlusion needs
# one forward pass per square position but measures the effect of removing evidence directly;
# Grad-CAM is as cheap as saliency, smooth, but only as sharp as the last convolution's 7×7 maps:
# upsampled, its top 10 % is a blob around the evidence rather than the strokes themselves, which is
# why it does worst of the three in a pixel-level deletion test while still localising the digit.
# <!-- narrative -->
#
# ## 6. Penultimate features and t-SNE
#
# The 128 activations before the last layer are a **descriptor** of the image: the last layer is
# a linear classifier on them, so the classes must be (nearly) linearly separable there - which is
# also why they serve as features for other tasks (lectures 06 and 10). **t-SNE** (van der Maaten &
# Hinton 2008) maps them to 2-D while keeping near neighbours near; if the classes form clusters, a
# 5-nearest-neighbour vote in the 2-D map recovers the labels.

# %%
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

feats = I.layer_output(model, penultimate, X_test[:N_TSNE])
emb = I.tsne_embed(feats, seed=0)
raw = X_test[:N_TSNE].reshape(N_TSNE, -1)
emb_raw = I.tsne_embed(raw, seed=0)
labels = y_test[:N_TSNE].numpy()
knn = {name: cross_val_score(KNeighborsClassifier(5), e, labels, cv=5).mean() for name, e in [("features", emb), ("pixels", emb_raw)]}
fig, axes = subplots(1, 2, figsize=(12, 5))
for ax, e, title in [(axes[0], emb_raw, "t-SNE of the raw pixels"), (axes[1], emb, "t-SNE of the penultimate features")]:
    sc = ax.scatter(e[:, 0], e[:, 1], c=labels, cmap="tab10", s=8)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
fig.colorbar(sc, ax=axes, label="digit", ticks=range(10))
show(fig, f"t-SNE of {N_TSNE} test digits: raw pixels (left) and the CNN's 128 penultimate features (right), coloured by class.")
print(f"5-NN accuracy in the 2-D map (5-fold): penultimate features {100 * knn['features']:.1f} %, raw pixels {100 * knn['pixels']:.1f} %")

# %%
claim(knn["features"] > 0.95, "in the t-SNE map of the penultimate features the classes form clusters (5-NN accuracy above 95 %)")
claim(knn["features"] > knn["pixels"], "the penultimate features separate the classes better than the raw pixels")

# %% [markdown]
# ## 7. From classification to localisation
#
# Grad-CAM and occlusion turn a classifier into a crude **localiser**: the map says where the
# evidence for a class sits, with no box labels at all. The notes make the broader point that
# segmentation, localisation, detection and instance segmentation all reduce to classification -
# of pixels, of box coordinates' bins, of candidate regions - which is where lectures 08 and 09
# start. <!-- narrative -->
#
# ## Summary
#
# - First-layer filters are edge and stroke detectors; deeper filters respond to larger parts,
#   found as the top-activating patches inside each unit's receptive field.
# - Class-score maximisation (gradient ascent on $a_y(x) - \lambda\lVert x\rVert^2$ from noise)
#   shows what raises a class's logit.
# - Saliency, occlusion and Grad-CAM say which pixels a decision depends on; the deletion test
#   checks that they do better than chance.
# - Penultimate features cluster by class (t-SNE), which makes them good descriptors.
#
# ### Seed statements (topic 07 of the lecture notes)
#
# | # | statement | where |
# | --- | --- | --- |
# | 7.1 | for each filter, the patches with the strongest response | §3 (claims: the receptive-field arithmetic; top patches beat the average); `tests/test_interpret.py` |
# | 7.2 | class visualisation $a_y(x) - \lambda\lVert x\rVert^2 \to \max$ | §4 claims; `tests/test_interpret.py` (linear model: $x^* = w/2\lambda$) |
# | 7.3 | start from noise, gradient steps ("descent" in one note) | §4, **corrected**: ascent on the unnormalised score |
# | 7.4 | ImageNet example classes | not reproducible offline (needs an ImageNet network); §4 shows the digit classes instead |
# | 7.5 | segmentation, detection, ... reduced to classification | §7 text; lectures 08-09 |
#
# The syllabus' saliency, occlusion and Grad-CAM (§5) are not in the notes; they follow the papers cited there.
#
# ## Where to go next
#
# - **Assignment:** [`assignments/06-cnn-architectures/`](../../assignments/06-cnn-architectures/06-cnn-architectures.ipynb)
#   (shared with lecture 06) ends with a saliency map you write yourself.
# - **Library:** `course_lib.interpret` - `top_activating_patches`, `maximize_class`, `saliency_map`,
#   `occlusion_map`, `grad_cam`, `tsne_embed` (see the API reference).
# - **Benchmark:** none for this lecture; `benchmarks/cnn_architectures.py` trains the networks of lecture 06.
