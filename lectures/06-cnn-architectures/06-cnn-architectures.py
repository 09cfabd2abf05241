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
# # Lecture 06 · CNN architectures and transfer learning
#
# From LeNet-5 (1998) to ResNet (2015) the recipe stayed the same - convolutions, nonlinearities,
# pooling, a classifier on top, everything trained end to end - while the networks grew a
# thousand times larger and fifty times deeper. This lecture builds each classic network, counts
# its parameters against the paper, trains small versions on MNIST, and then reuses a trained
# network for a new task (**transfer learning**).
#
# **Learning goals**
# 1. the layer patterns of **LeNet-5, AlexNet, VGG, GoogLeNet (Inception) and ResNet**, and where
#    their parameters sit;
# 2. why the **1×1 projection** of the Inception module and the **skip connection** of ResNet
#    matter, and what the ResNet paper really says about very deep plain networks;
# 3. **transfer learning**: a linear probe on frozen features, fine-tuning the last layers,
#    fine-tuning everything with layer-wise learning rates, against training from scratch, as the
#    number of labels grows.
#
# The networks are `course_lib.models`; freezing and layer-wise learning rates are
# `course_lib.training` (`freeze`, `param_groups_by_depth`). Full-size networks are built on
# PyTorch's *meta* device: their parameters have shapes but no storage, so counting them costs no
# memory.

# %% tags=["parameters"]
SMOKE = False

# %%
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib import models as M
from course_lib.data import load_mnist, load_olivetti_faces
from course_lib.notebook import claim, get_device, md, setup_notebook, show, subplots
from course_lib.training import accuracy, fit, freeze, param_groups_by_depth, trainable_parameters

SMOKE = setup_notebook(SMOKE, seed=0)
DEVICE = get_device()
ARCH_TRAIN = 128 if SMOKE else 12000  # MNIST training digits for the architecture comparison (CPU)
ARCH_EPOCHS = 1 if SMOKE else 3
TEST_SIZE = 200 if SMOKE else 10000
DEEP_STEPS = 5 if SMOKE else 100  # Adam steps of the 50-block plain/residual nets on a fixed batch
PRETRAIN_SIZE = 1500 if SMOKE else 60000  # digits (of which 0-4 are used) for pretraining
PRETRAIN_EPOCHS = 1 if SMOKE else 2
LABELS = [10, 30] if SMOKE else [10, 100, 1000]  # labels per class of the target digits 5-9
FACE_LABELS = [1, 3] if SMOKE else [1, 3, 5]  # labelled photos per person (of 10; the other 5 are the test set)
TRANSFER_STEPS = 10 if SMOKE else 200  # Adam steps per transfer configuration
print(f"smoke mode: {SMOKE}; device: {DEVICE}")

MEAN, STD = 0.1307, 0.3081
X_train_u8, y_train_np = load_mnist("train")
X_test_u8, y_test_np = load_mnist("test")


def images(u8):
    """uint8 (N, 28, 28) -> standardised float (N, 1, 28, 28)."""
    return torch.from_numpy(u8).float().div(255).sub(MEAN).div(STD)[:, None]


X_test, y_test = images(X_test_u8[:TEST_SIZE]), torch.from_numpy(y_test_np[:TEST_SIZE])


def millions(n):
    return f"{n / 1e6:.2f} M"


# %% [markdown]
# ## 1. LeNet-5 (1998)
#
# LeCun, Bottou, Bengio and Haffner's network reads a **32×32** image (MNIST's 28×28 digits were
# padded), applies a convolution with **6 channels** of 5×5 filters, subsampling (pooling), a
# second convolution with **16 filters 5×5**, pooling again, and then **three fully connected
# layers** (C5 with 120 units - a 5×5 convolution over 5×5 maps, which is the same thing - F6 with
# 84, and the output). All of it is trained **end to end** by backpropagation: the features are
# learned, not designed. `course_lib.models.LeNet5` builds the classic configuration;
# `layer_table` runs a forward pass and records each layer's output shape and parameters
# ($k^2 C_\text{in} C_\text{out} + C_\text{out}$ for a convolution, $nm + m$ for a linear layer):

# %%
lenet = M.LeNet5()
print(M.format_layer_table(M.layer_table(lenet, (1, 32, 32))))
lenet_params = M.count_parameters(lenet)
claim(lenet_params == 61_706, "LeNet-5 in its classic layer sizes has exactly 61,706 parameters")
claim(abs(lenet_params - 60_000) / 60_000 < 0.03, "that is the paper's 'about 60,000' within 3 %")

# %% [markdown]
# The paper's figure is 60,000 exactly because of details that a modern re-implementation drops:
# its C3 connects each of the 16 maps to only some of the 6 maps below (1,516 parameters instead of
# 2,416), its subsampling layers have a trainable coefficient and bias per map, and its output layer
# is a fixed RBF layer (see the `LeNet5` docstring for the sum). Almost all parameters sit in C5
# and F6, the fully connected part. <!-- narrative -->
#
# ## 2. AlexNet (2012)
#
# Krizhevsky, Sutskever and Hinton won ImageNet 2012 with the same pattern made much larger: five
# convolutions and three fully connected layers, with **ReLU** instead of tanh (trains several
# times faster), **dropout** in the fully connected layers, **data augmentation** (crops, flips,
# colour changes) and SGD with **momentum** 0.9. The network was split into **two identical halves,
# one per GPU** (3 GB each), which exchange activations only at some layers; `course_lib.models.alexnet`
# expresses the split as grouped convolutions (`groups=2`).
#
# **The notes' layer list is wrong.** They give the per-half stack as 5×5/48, pool, 3×3/128, ...
# The paper's first layer is **11×11 with stride 4 and 96 filters** (48 per GPU), the second is
# 5×5 (256 = 2×128), and the fully connected layers have **4096** units (2×2048). Checked on the
# full-size network:

# %%
alex = M.alexnet()  # on the meta device: shapes, no memory
conv1 = alex.features[0]
print(f"conv1: {conv1.out_channels} filters {conv1.kernel_size[0]}x{conv1.kernel_size[1]}, stride {conv1.stride[0]}")
convs = [m for m in alex.modules() if isinstance(m, nn.Conv2d)]
fcs = [m for m in alex.modules() if isinstance(m, nn.Linear)]
print("convolutions (out channels, kernel, groups):", [(c.out_channels, c.kernel_size[0], c.groups) for c in convs])
print("fully connected widths:", [f.out_features for f in fcs])
alex_params = M.count_parameters(alex)
print(f"AlexNet: {alex_params:,} parameters ({millions(alex_params)})")
claim(conv1.kernel_size == (11, 11) and conv1.stride == (4, 4) and conv1.out_channels == 96,
      "AlexNet's first layer is 11x11 with stride 4 and 96 filters (the notes' 5x5/48 is wrong)")
claim(convs[1].kernel_size == (5, 5) and [f.out_features for f in fcs[:2]] == [4096, 4096],
      "its second convolution is 5x5 and its hidden fully connected layers have 4096 units")
claim(any(c.groups == 2 for c in convs), "the two-GPU split shows as grouped convolutions")
claim(58e6 < alex_params < 62e6, "AlexNet has about 60 million parameters (the paper's figure)")
types = {type(m).__name__ for m in M.AlexNetSmall().modules()}
claim({"ReLU", "Dropout", "MaxPool2d"} <= types, "AlexNetSmall keeps AlexNet's ReLU, dropout and max-pooling")

# %% [markdown]
# `AlexNetSmall` keeps the pattern (five convolutions, pooling after the 1st, 2nd and 5th, ReLU,
# dropout, three linear layers) at a size that fits a 28×28 digit: an 11×11 stride-4 first layer
# would leave almost nothing of it.

# %%
print(M.format_layer_table(M.layer_table(M.AlexNetSmall(input_size=28), (1, 28, 28))))

# %% [markdown]
# ## 3. VGG (2014)
#
# Simonyan and Zisserman used only **3×3 convolutions** (stride 1, padding 1) and 2×2 max-pools,
# and went deeper: several convolutions between pools, the number of channels **doubling** after
# each pool from 64 up to 512 (where it stops). Two 3×3 layers see a 5×5 window and three see
# 7×7, with fewer parameters ($2\cdot 9C^2$ or $3 \cdot 9 C^2$ against $25C^2$ or $49C^2$) and more
# nonlinearities. They trained with dropout in the classifier and a careful initialisation (the
# deep configurations started from the weights of the shallow one A).
#
# The notes say "5 variants"; the paper's Table 1 has **six configurations**: A, A-LRN, B, C, D
# (VGG-16) and E (VGG-19); C is the one with 1×1 convolutions.

# %%
vgg_rows = []
for cfg in M.VGG_CONFIGS:
    net = M.vgg(cfg)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    n = M.count_parameters(net)
    vgg_rows.append((cfg, len(convs), sorted({c.kernel_size[0] for c in convs}), max(c.out_channels for c in convs), n))
md("| configuration | conv layers | kernel sizes | widest | parameters | paper |\n| --- | --- | --- | --- | --- | --- |\n"
   + "\n".join(f"| {c} | {k} | {', '.join(map(str, ks))} | {w} | {millions(n)} | {M.PAPER_PARAMETERS['VGG-' + c]:g} M |"
               for c, k, ks, w, n in vgg_rows))

# %%
vgg_counts = {c: n for c, *_, n in vgg_rows}
claim(len(M.VGG_CONFIGS) == 6, "VGG has six configurations, not five")
claim(all(abs(vgg_counts[c] / 1e6 - M.PAPER_PARAMETERS["VGG-" + c]) < 0.5 for c in M.VGG_CONFIGS),
      "each configuration's parameter count matches the paper's Table 2 to the rounding (133-144 M)")
claim(all(ks == [3] for c, _, ks, _, _ in vgg_rows if c != "C") and vgg_rows[[r[0] for r in vgg_rows].index("C")][2] == [1, 3],
      "every configuration uses only 3x3 filters, except C which adds 1x1")
claim(all(w == 512 for *_, w, _ in vgg_rows), "the channels double after each pool and stop at 512")

# %% [markdown]
# ## 4. GoogLeNet and the Inception module (2014)
#
# Szegedy et al. computed **parallel branches** - a 1×1, a 3×3 and a 5×5 convolution and a 3×3
# max-pool - on the same input and **concatenated** their maps along the channels. Run naively,
# the 5×5 branch on many channels is expensive; a **1×1 convolution** first projects the input to
# fewer channels ("reduce"). GoogLeNet stacks nine such modules, and during training attaches two
# **auxiliary classifiers** to intermediate modules (their losses, weighted 0.3, add gradient to the
# middle of the network; they are discarded at test time). Module 3a of the paper:
# 192 input channels, branches 64, 96→128, 16→32 and pool→32:

# %%
inc = M.InceptionModule(192, 64, 96, 128, 16, 32, 32)
x = torch.randn(2, 192, 28, 28)
out = inc(x)
inc_params = M.count_parameters(inc)
naive_5x5 = 192 * 32 * 25
reduced_5x5 = 192 * 16 + 16 * 32 * 25
print(f"input {tuple(x.shape)} -> output {tuple(out.shape)}; {inc_params:,} parameters")
print(f"5x5 branch weights: {naive_5x5:,} on all 192 channels vs {reduced_5x5:,} after the 1x1 reduction "
      f"({naive_5x5 / reduced_5x5:.1f}x fewer)")
claim(out.shape[1] == 64 + 128 + 32 + 32 and out.shape[2:] == x.shape[2:],
      "the module concatenates its four branches: 256 channels, same spatial size")
claim(inc_params == 163_696 and naive_5x5 > 9 * reduced_5x5,
      "module 3a has 163,696 parameters and the 1x1 projection cuts the 5x5 branch nearly tenfold")

# %% [markdown]
# ## 5. ResNet (2015): output = transformation + input
#
# He et al. observed **degradation**: a deeper *plain* network had a *higher training* error than
# a shallower one (their Figure 1: 56 against 20 layers on CIFAR-10). It is not overfitting - the
# training error is higher too. A residual block computes $y = \mathrm{ReLU}(F(x) + x)$: the layers
# learn the *residual* $F$, and the input passes through the **skip connection** unchanged (a 1×1
# projection when the shape changes). A deep residual net can then always fall back to the
# identity.
#
# **What the paper does not say.** The notes blame degradation on vanishing gradients. The paper
# rejects that explanation: its plain networks use batch norm, and the authors "verify that the
# backward propagated gradients exhibit healthy norms"; they conjecture that deep plain nets are
# hard to *optimise* (exponentially low convergence rates). Both halves of this can be measured on
# a 50-block network (101 convolutions, width 8) at initialisation: the gradient norm of the first
# layer against that of the last, **without** and **with** batch norm.


# %%
def deep_net(skip, batch_norm, width=8):
    torch.manual_seed(0)
    return M.ResNet((50,), (width,), stem="small", in_channels=1, num_classes=4, skip=skip, batch_norm=batch_norm)


g = torch.Generator().manual_seed(1)
X_fixed, y_fixed = torch.randn(16, 1, 4, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
grad_ratio = {}
for batch_norm in (False, True):
    for skip in (False, True):
        net = deep_net(skip, batch_norm).double()
        F.cross_entropy(net(X_fixed.double()), y_fixed).backward()
        first, last = net.stem[0].weight.grad.norm().item(), net.fc.weight.grad.norm().item()
        grad_ratio[skip, batch_norm] = first / last
        print(f"{'residual' if skip else 'plain   '}, {'with' if batch_norm else 'no  '} BN: "
              f"|grad first layer| / |grad last layer| = {first / last:.2e}")

# %%
claim(grad_ratio[False, False] < 1e-8 < grad_ratio[True, False],
      "without batch norm the plain net's first-layer gradient vanishes, the residual net's does not")
claim(grad_ratio[False, True] > 1.0, "with batch norm the plain net's first-layer gradient does not vanish (it is larger than the last layer's)")

# %% [markdown]
# So without normalisation the plain net's gradient does vanish at the bottom - but the paper's
# plain nets had batch norm, and with it the gradient is large, not small. Yet the plain net still
# trains badly. Both 50-block nets, with batch norm and the same Adam steps on one fixed batch:

# %%
deep_losses = {}
for skip in (False, True):
    net = deep_net(skip, True, width=4)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    hist = []
    for _ in tqdm(range(DEEP_STEPS), desc="residual" if skip else "plain", leave=False):
        opt.zero_grad()
        loss = F.cross_entropy(net(X_fixed), y_fixed)
        loss.backward()
        opt.step()
        hist.append(loss.item())
    deep_losses[skip] = np.array(hist)

fig, ax = subplots(figsize=(7, 4))
for skip, hist in deep_losses.items():
    ax.semilogy(np.arange(1, len(hist) + 1), hist, "o-" if SMOKE else "-", label="residual" if skip else "plain")
ax.set_xlabel("Adam step")
ax.set_ylabel("training loss (one fixed batch)")
ax.set_title("50 blocks with batch norm")
ax.legend()
show(fig, "Training loss of the 50-block plain and residual networks (both with batch norm) on one fixed batch of 16 images.")
plain_end, res_end = deep_losses[False][-10:].mean(), deep_losses[True][-10:].mean()
print(f"mean loss over the last 10 steps: plain {plain_end:.3f}, residual {res_end:.4f}")
claim(res_end < 0.1 * plain_end, "with healthy gradients the plain net still fits the batch far worse than the residual net")

# %% [markdown]
# Degradation is an optimisation difficulty, and the skip connection removes it - not by rescuing
# a vanishing gradient (batch norm already does that) but by making the identity easy to represent.
# <!-- narrative: restates the claims above -->
#
# **"Low error even with 1000 layers"** is imprecise: on CIFAR-10 the paper's ResNet-1202 trains
# fine (training error below 0.1 %) but its test error, **7.93 %**, is *worse* than ResNet-110's
# **6.43 %** (Table 6) - the authors attribute it to overfitting a 19.4 M-parameter network on a
# small data set. (Not reproduced here: it takes days of GPU time.) <!-- narrative: quotes the paper -->
#
# The ImageNet ResNets, counted:

# %%
resnet_counts = {name: M.count_parameters(build()) for name, build in
                 [("ResNet-18", M.resnet18), ("ResNet-34", M.resnet34), ("ResNet-50", M.resnet50)]}
md("| network | parameters | paper |\n| --- | --- | --- |\n"
   + "\n".join(f"| {k} | {v:,} | {M.PAPER_PARAMETERS[k]:g} M |" for k, v in resnet_counts.items()))

# %%
claim(all(round(v / 1e6, 1) == M.PAPER_PARAMETERS[k] for k, v in resnet_counts.items()),
      "ResNet-18/34/50 have 11.7 M, 21.8 M and 25.6 M parameters, as published")

# %% [markdown]
# ## 6. The architectures on MNIST
#
# Small versions of each family, trained with Adam (learning rate $2\cdot10^{-3}$, cosine
# schedule) through `course_lib.training.fit`: LeNet-5 (ReLU and max-pooling, the 28×28 digit
# padded inside), AlexNetSmall, a small VGG with batch norm, and a small ResNet (three stages of two
# blocks). On the CPU the lecture trains on `ARCH_TRAIN` digits for `ARCH_EPOCHS` epochs; the cell
# tagged `gpu` (and `benchmarks/cnn_architectures.py`) trains on all 60,000 with augmentation.

# %%
ARCHS = {
    "LeNet-5": lambda: M.LeNet5(activation="relu", pool="max", input_size=28),
    "AlexNetSmall": lambda: M.AlexNetSmall(input_size=28),
    "VGG (BN)": lambda: M.make_vgg([32, 32, "M", 64, 64, "M", 128, 128, "M"], in_channels=1, num_classes=10,
                                   input_size=28, hidden=256, batch_norm=True),
    "ResNet 3x2": lambda: M.ResNet((2, 2, 2), (16, 32, 64), stem="small", in_channels=1, num_classes=10),
}
for name, build in ARCHS.items():
    print(f"{name}: {M.count_parameters(build()):,} parameters")
print()
print(M.format_layer_table(M.layer_table(ARCHS["ResNet 3x2"](), (1, 28, 28))))


@torch.no_grad()
def test_accuracy(model, X, y, batch=1000):
    model.eval()
    return accuracy(torch.cat([model(X[i : i + batch]) for i in range(0, len(X), batch)]), y)


def train_architectures(n_train, epochs, device, augment=False):
    from course_lib.regularization import random_augment

    X, y = images(X_train_u8[:n_train]).to(device), torch.from_numpy(y_train_np[:n_train]).to(device)
    Xt, yt = X_test.to(device), y_test.to(device)
    results = {}
    for name, build in tqdm(ARCHS.items(), desc="architectures"):
        torch.manual_seed(0)
        model = build().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        g = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for epoch in range(epochs):
            Xe = random_augment(X.cpu(), g, max_angle=10.0, max_shift=2.0, scale_range=(0.92, 1.08)).to(device) if augment else X
            fit(model, F.cross_entropy, opt, Xe, y, epochs=1, batch_size=128, seed=epoch, desc=name)
            sched.step()
        seconds = time.perf_counter() - start
        results[name] = {"params": M.count_parameters(model), "acc": test_accuracy(model, Xt, yt),
                         "epoch_s": seconds / epochs, "img_s": n_train * epochs / seconds}
    return results


def architecture_table(results, where):
    return md(f"Trained on {where}.\n\n| network | parameters | test accuracy | seconds per epoch | training images/s |\n"
              "| --- | --- | --- | --- | --- |\n"
              + "\n".join(f"| {k} | {r['params']:,} | {100 * r['acc']:.2f} % | {r['epoch_s']:.1f} | {r['img_s']:,.0f} |"
                          for k, r in results.items()))


arch_results = train_architectures(ARCH_TRAIN, ARCH_EPOCHS, torch.device("cpu"))
architecture_table(arch_results, f"{ARCH_TRAIN} digits, {ARCH_EPOCHS} epoch(s), CPU, {torch.get_num_threads()} thread(s)")

# %%
claim(all(r["acc"] > 0.90 for r in arch_results.values()), "on the CPU run every architecture exceeds 90 % test accuracy")
fastest = max(arch_results, key=lambda k: arch_results[k]["img_s"])
claim(fastest == "LeNet-5", "LeNet-5, the smallest network, trains the most images per second")
md(f"Fastest to train: **{fastest}** ({arch_results[fastest]['img_s']:,.0f} images/s); "
   f"most accurate in this run: **{max(arch_results, key=lambda k: arch_results[k]['acc'])}**.")

# %% tags=["gpu"]
# full size on a GPU: all 60,000 digits, 12 epochs with augmentation (the benchmark's setting)
gpu_results = train_architectures(60000, 12, DEVICE, augment=True)
architecture_table(gpu_results, f"60,000 digits, 12 epochs with augmentation, {torch.cuda.get_device_name(0)}")
claim(gpu_results["LeNet-5"]["acc"] >= 0.990, "LeNet-5 reaches 99.0 % (the paper: 99.05 %)")
claim(max(r["acc"] for r in gpu_results.values()) >= 0.994, "the best course CNN reaches 99.4 %")

# %% [markdown]
# ## 7. Transfer learning
#
# A network trained on one task has learned features - edge and stroke detectors in the first
# layer, parts of objects further up - that may serve another. The notes' recipe:
#
# * **few data**: replace the last layer and train only it. With everything below frozen, the
#   network is a fixed feature map $\varphi(x)$ followed by a **linear model** $W\varphi(x) + b$
#   (a *linear probe*);
# * **more data**: also train several of the last layers, with **smaller steps nearer the input**:
#   layer $i$ of $L$ gets $\eta_i = \eta\, d^{\,L-1-i}$ (`param_groups_by_depth`, decay $d = 0.5$);
# * **the more the new task differs, the more layers to retrain** - the first layers (edges) are
#   similar across tasks, the last ones are specific.
#
# Source task: LeNet-5 trained on the digits **0-4**. Targets: the digits **5-9** (a close task)
# with `LABELS` labelled images per class, tested on all test images of 5-9; and the **Olivetti
# faces** (40 people, 10 photos each, shrunk to 28×28: a distant task) with `FACE_LABELS` photos
# per person, tested on 5 others. Five ways to train, each with the same number of Adam steps and a
# new last layer: a *linear probe on random features* (a frozen, untrained LeNet - the baseline of
# seed 6.19), a *linear probe* on the pretrained features, *fine-tuning the last layers* (C5, F6
# and the new layer), *full fine-tuning with layer-wise learning rates*, and *from scratch*.

# %%
def lenet(k):
    return M.LeNet5(num_classes=k, activation="relu", pool="max", input_size=28)


X_pre, y_pre = images(X_train_u8[:PRETRAIN_SIZE]), torch.from_numpy(y_train_np[:PRETRAIN_SIZE])
source = y_pre < 5
torch.manual_seed(1)
pretrained = lenet(5)
pre_hist = fit(pretrained, F.cross_entropy, torch.optim.Adam(pretrained.parameters(), lr=2e-3), X_pre[source], y_pre[source],
               epochs=PRETRAIN_EPOCHS, batch_size=128, desc="pretraining on 0-4")
pre_acc = test_accuracy(pretrained, X_test[y_test < 5], y_test[y_test < 5])
print(f"pretrained on {int(source.sum())} digits 0-4 in {pre_hist.seconds:.1f} s: test accuracy on 0-4 {100 * pre_acc:.2f} %")

faces_np, person_np = load_olivetti_faces()
faces = F.interpolate(torch.from_numpy(faces_np)[:, None], size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
faces = (faces - faces.mean()) / faces.std()
person = torch.from_numpy(person_np)

METHODS = ["random features, linear probe", "linear probe", "fine-tune last layers", "full fine-tune, layer-wise lr",
           "from scratch"]


def transfer(method, X, y, k):
    """Train one configuration on (X, y) with k classes; returns the model and the seconds it took."""
    torch.manual_seed(3)
    model = lenet(5)
    if method not in ("from scratch", "random features, linear probe"):
        model.load_state_dict(pretrained.state_dict())
    model.classifier[3] = nn.Linear(84, k)  # the new last layer
    if method.endswith("linear probe"):
        freeze(model.features)
        freeze(model.classifier[1])
    elif method == "fine-tune last layers":
        freeze(model.features[:6])  # C1 and C3 frozen
    lr = 5e-3
    groups = (param_groups_by_depth(model, lr, 0.5) if method.startswith("full")
              else [{"params": trainable_parameters(model), "lr": lr}])
    batch = min(64, len(X))
    epochs = max(1, round(TRANSFER_STEPS * batch / len(X)))
    hist = fit(model, F.cross_entropy, torch.optim.Adam(groups), X, y, epochs=epochs, batch_size=batch, seed=4, progress=False)
    return model, hist.seconds


for group in param_groups_by_depth(lenet(5), 5e-3, 0.5):
    print(f"layer-wise rates: {group['name']:<14} lr = {group['lr']:.2e}")

order = torch.randperm(len(y_pre), generator=torch.Generator().manual_seed(2))
target_test = y_test >= 5
perm = torch.randperm(400, generator=torch.Generator().manual_seed(5))
face_test = torch.cat([perm[person[perm] == p][5:] for p in range(40)])
tasks = {}
for n in LABELS:
    picked = torch.cat([order[y_pre[order] == c][:n] for c in range(5, 10)])
    tasks["digits 5-9", n] = (X_pre[picked], y_pre[picked] - 5, X_test[target_test], y_test[target_test] - 5, 5)
for n in FACE_LABELS:
    picked = torch.cat([perm[person[perm] == p][:n] for p in range(40)])
    tasks["faces", n] = (faces[picked], person[picked], faces[face_test], person[face_test], 40)

transfer_results = {}
for (task, n), (Xs, ys, Xq, yq, k) in tqdm(tasks.items(), desc="transfer"):
    for method in METHODS:
        model, seconds = transfer(method, Xs, ys, k)
        transfer_results[task, n, method] = (test_accuracy(model, Xq, yq), seconds)

rows = []
for task, n in tasks:
    cells = " | ".join(f"{100 * transfer_results[task, n, m][0]:.1f} % ({transfer_results[task, n, m][1]:.1f} s)" for m in METHODS)
    rows.append(f"| {task} | {n} | {cells} |")
md(f"Test accuracy (and training seconds, CPU) after {TRANSFER_STEPS} Adam steps.\n\n"
   "| target | labels per class | " + " | ".join(METHODS) + " |\n|" + " --- |" * (len(METHODS) + 2) + "\n" + "\n".join(rows))

# %%
fig, axes = subplots(1, 2, figsize=(12, 4.2))
for ax, (task, counts) in zip(axes, [("digits 5-9", LABELS), ("faces", FACE_LABELS)]):
    for i, method in enumerate(METHODS):
        ax.semilogx(counts, [100 * transfer_results[task, n, method][0] for n in counts], "o-", color=f"C{i}", label=method)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy, %")
    ax.set_title(f"pretrained on digits 0-4 -> {task}")
axes[0].legend(fontsize=8)
show(fig, "Test accuracy on the target task against the number of labels per class, for each way of using the pretrained LeNet-5.")

# %%
R = {key: acc for key, (acc, _) in transfer_results.items()}
few, many = LABELS[0], LABELS[-1]
claim(all(R["digits 5-9", n, "linear probe"] > R["digits 5-9", n, "random features, linear probe"] for n in LABELS),
      "seed 6.19: pretrained features beat random features under a linear probe at every label count")
claim(R["digits 5-9", few, "fine-tune last layers"] > R["digits 5-9", few, "from scratch"],
      "with the fewest labels, fine-tuning the pretrained net's last layers beats training from scratch")
claim(R["digits 5-9", many, "full fine-tune, layer-wise lr"] > R["digits 5-9", many, "linear probe"],
      "with more labels, training more layers (layer-wise rates) beats the linear probe")
gap_digits = max(R["digits 5-9", n, m] for n in LABELS for m in METHODS[2:]) - max(R["digits 5-9", n, "linear probe"] for n in LABELS)
gap_faces = max(R["faces", n, m] for n in FACE_LABELS for m in METHODS[2:]) - max(R["faces", n, "linear probe"] for n in FACE_LABELS)
claim(gap_faces > 0 and gap_digits > 0, "on both targets retraining layers below the last one beats the linear probe")
claim(R["faces", FACE_LABELS[-1], "linear probe"] < R["faces", FACE_LABELS[-1], "random features, linear probe"],
      "seed 6.18: for the faces the frozen digit features are worse than random ones under a linear probe")
best_pre = {n: max(R["digits 5-9", n, m] for m in METHODS[1:4]) for n in LABELS}
head_start = {n: best_pre[n] - R["digits 5-9", n, "from scratch"] for n in LABELS}
claim(head_start[many] < head_start[few], "the pretrained start's lead over training from scratch shrinks as labels grow")
md(f"The best pretrained configuration leads training from scratch by **{100 * head_start[few]:.1f}** points with "
   f"{few} labels per class and by **{100 * head_start[many]:.1f}** points with {many}.")
md(f"Retraining more than the last layer gains up to **{100 * gap_digits:.1f}** points on the digits 5-9 and "
   f"**{100 * gap_faces:.1f}** points on the faces over the best linear probe.")

# %% [markdown]
# What this run says about the notes' recipe (each line is checked by a `claim` above):
#
# * A **linear probe** is a linear model on frozen features, and pretrained features are better
#   than random ones under it (seed 6.19) - but the features of a network trained on five digit
#   classes are narrow: its 84 penultimate ReLU units were shaped to separate 0-4, and a linear
#   model on them leaves a lot on the table even for the close task 5-9. Pretraining on ImageNet's
#   1000 classes gives far more general features, which is why the recipe works so well there.
#   For the faces the digit features are even *worse* than random ones.
# * **Fine-tuning** the last layers of the pretrained network is the best use of very few labels;
#   retraining more layers pays off as labels grow, and training **from scratch** closes most of
#   the gap - the pretrained start matters less the more data there is.
# * For the **faces**, a task far from digits, the frozen digit features are poor and everything
#   that retrains layers does much better: the more different the task, the more layers to
#   retrain (seed 6.18). <!-- narrative: restates the claims above -->
#
# ## Summary
#
# - LeNet-5 (61,706 parameters, the paper's ~60k), AlexNet (~61 M; 11×11/4 first layer, two GPU
#   halves, ReLU, dropout, augmentation, momentum), VGG (six configurations, 3×3 everywhere,
#   133-144 M), Inception (1×1 projections, parallel branches concatenated, auxiliary
#   classifiers), ResNet (output = $F(x) + x$; 11.7 M / 25.6 M for ResNet-18/50).
# - Deep plain networks degrade even with batch norm and healthy gradients; the skip connection
#   makes them trainable. The ResNet paper does not blame vanishing gradients, and its 1202-layer
#   net is worse on CIFAR-10 than the 110-layer one.
# - Transfer learning: a linear probe with few labels, fine-tuning more layers (smaller steps nearer
#   the input) with more labels or a more different task; from scratch catches up with enough data.
#
# ### Seed statements (topic 06 of the lecture notes)
#
# | # | statement | where |
# | --- | --- | --- |
# | 6.1-6.3 | LeNet: 32×32, 6@5×5, pool, 16@5×5, pool, 3 FC, end to end | §1 layer table; `tests/test_models.py::test_lenet5_is_the_classic_configuration` |
# | 6.4 | LeNet ≈ 60k parameters | §1 claim (61,706; why the paper says 60,000) |
# | 6.5 | AlexNet: two halves, one per GPU | §2 claim (grouped convolutions); `test_full_alexnet_matches_the_paper` |
# | 6.6 | AlexNet per-half stack | **corrected** in §2: conv1 11×11/4, 96 filters; conv2 5×5; FC 4096 |
# | 6.7 | ReLU, dropout, augmentation, momentum | §2 claim (AlexNetSmall's layers); §6 trains with augmentation |
# | 6.8 | AlexNet ≈ 60M parameters | §2 claim (60,965,224) |
# | 6.9 | VGG "5 variants" | **corrected** in §3: six configurations, claim |
# | 6.10 | 3×3 everywhere, channels ×2 | §3 claims (C adds 1×1; doubling stops at 512) |
# | 6.11 | VGG: dropout, clever init | §3 text (the classifier's dropout is in `make_vgg`) |
# | 6.12 | Inception: 1×1 projection, concatenation, auxiliary outputs | §4 claims; `test_inception_module_against_functional_branches` |
# | 6.13 | degradation blamed on vanishing gradients | **corrected** in §5: gradient ratios with and without BN, training-loss claim; `test_residual_net_*` |
# | 6.14 | output = transformation + input | §5; `test_residual_block_skip_gives_an_identity_gradient_path` |
# | 6.15 | low error with 1000 layers | **corrected** in §5: ResNet-1202 7.93 % vs ResNet-110 6.43 % (paper's Table 6, not rerun) |
# | 6.16 | few data: train only the last layer = linear model | §7 linear probe |
# | 6.17 | more data: more layers, smaller steps near the input | §7 claims (layer-wise rates) |
# | 6.18 | the more different the task, the more layers to retrain | §7 faces vs digits claim |
# | 6.19 | pretrained outputs beat random features | §7 claim |
# | 6.20 | sometimes fine-tune part of the extractor | §7 "fine-tune last layers" |
#
# ## Where to go next
#
# - **Assignment:** [`assignments/06-cnn-architectures/`](../../assignments/06-cnn-architectures/06-cnn-architectures.ipynb)
#   - a residual block with a projection shortcut, an Inception module, fine-tuning a frozen
#   backbone, a saliency map.
# - **Library:** `course_lib.models` (the architectures, `count_parameters`, `layer_table`) and
#   `course_lib.training` (`freeze`, `param_groups_by_depth`), see the API reference.
# - **Benchmark:** `benchmarks/cnn_architectures.py` trains the architectures to convergence and
#   times the transfer table.
# - **Next lecture:** 07 looks inside these networks - what their filters respond to and which
#   pixels their decisions depend on.
