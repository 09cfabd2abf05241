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
# # Assignment 06 · CNN architectures, transfer learning and saliency
#
# In this assignment you build the two blocks of lectures 06 that made networks deep and wide, use a
# pretrained network for a new task, and ask it which pixels its decision depends on:
#
# 1. a **residual block** with a projection shortcut (3 points);
# 2. an **Inception module** (3 points);
# 3. **fine-tuning** a pretrained LeNet-5 with a frozen backbone (3 points);
# 4. a **saliency map** (2 points).
#
# Replace every `raise NotImplementedError()` with your code. The cells marked as tests check
# your answers; some also contain hidden tests that run only when your notebook is graded, on
# shapes and inputs you have not seen, against the course's reference implementation and autograd.
# Run **Kernel → Restart & Run All** before you submit.
#
# Rules: build your modules from `torch.nn` layers (`nn.Conv2d`, `nn.BatchNorm2d`, `nn.ReLU`,
# `nn.MaxPool2d`, `nn.Linear`, ...) and tensor operations, and use `torch.autograd` for the
# saliency map. **Do not use** `course_lib.models.ResidualBlock`, `course_lib.models.Bottleneck`,
# `course_lib.models.ResNet` (nor `resnet18`/`resnet34`/`resnet50`),
# `course_lib.models.InceptionModule`, anything from `course_lib.interpret`, or `torch.func`.
# `course_lib.models.LeNet5`, `course_lib.training` and the rest of PyTorch are allowed.

# %% tags=["parameters"]
SMOKE = False

# %%
import copy
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import load_mnist
from course_lib.models import LeNet5, count_parameters
from course_lib.notebook import setup_notebook
from course_lib.testing import assert_close, assert_shape
from course_lib.training import accuracy, fit

SMOKE = setup_notebook(SMOKE, seed=0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "residual_md", "locked": true, "solution": false, "schema_version": 3}
# ## 1. A residual block (3 points)
#
# The basic block of ResNet-18/34 (He et al. 2015):
#
# $$F(x) = \mathrm{BN}_2\bigl(\mathrm{conv}_2\bigl(\mathrm{ReLU}(\mathrm{BN}_1(\mathrm{conv}_1(x)))\bigr)\bigr),\qquad
# y = \mathrm{ReLU}\bigl(F(x) + \mathrm{shortcut}(x)\bigr)$$
#
# * `conv1`: 3×3, `in_ch -> out_ch`, stride `stride`, padding 1; `conv2`: 3×3, `out_ch -> out_ch`,
#   stride 1, padding 1; both **without bias** (the batch norm after them has its own shift);
# * `shortcut`: `nn.Identity()` when `in_ch == out_ch` and `stride == 1`; otherwise the
#   **projection** `nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))`.
#
# Register the submodules under the names `conv1`, `bn1`, `conv2`, `bn2`, `shortcut`, **in this
# order** (the tests use the names). Input `(N, in_ch, H, W)`, output `(N, out_ch, ⌈H/stride⌉, ⌈W/stride⌉)`.

# %% nbgrader={"grade": false, "grade_id": "residual", "locked": false, "solution": true, "schema_version": 3}
class ResidualBlock(nn.Module):
    """y = ReLU(F(x) + shortcut(x)); x: (N, in_ch, H, W) -> (N, out_ch, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if in_ch != out_ch or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
        else:
            self.shortcut = nn.Identity()
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "residual_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_x = torch.randn(2, 8, 12, 12)
_same, _down = ResidualBlock(8, 8), ResidualBlock(8, 16, stride=2)
assert_shape(_same(_x), (2, 8, 12, 12), "ResidualBlock(8, 8) keeps the shape")
assert_shape(_down(_x), (2, 16, 6, 6), "ResidualBlock(8, 16, stride=2) doubles the channels and halves the maps")
assert isinstance(_same.shortcut, nn.Identity), "with equal shapes the shortcut is the identity"
assert count_parameters(_same) == 2 * 9 * 8 * 8 + 2 * 2 * 8, "ResidualBlock(8, 8): two 3x3 convolutions without bias + two BNs"
assert count_parameters(_down) == 9 * 8 * 16 + 9 * 16 * 16 + 2 * 2 * 16 + 8 * 16 + 2 * 16, (
    "ResidualBlock(8, 16, 2): the two convolutions, two BNs and the 1x1 projection with its BN"
)
# the skip connection: with conv2 zeroed, F(x) = BN(0) = 0 and y = ReLU(x), so the gradient still reaches x
_b = ResidualBlock(4, 4)
with torch.no_grad():
    _b.conv2.weight.zero_()
_xi = torch.randn(3, 4, 5, 5, requires_grad=True)
_b(_xi).sum().backward()
assert_close(_xi.grad, (_xi > 0).to(_xi.dtype), "with the residual branch silenced the gradient flows through the identity shortcut")
### BEGIN HIDDEN TESTS
from course_lib.models import ResidualBlock as _RefBlock

_g = torch.Generator().manual_seed(606)
for _ci, _co, _s, _hw in [(3, 3, 1, 7), (5, 9, 2, 9), (6, 6, 2, 8), (4, 12, 1, 6), (2, 7, 3, 10)]:
    _mine, _ref = ResidualBlock(_ci, _co, _s).double(), _RefBlock(_ci, _co, _s).double()
    assert count_parameters(_mine) == count_parameters(_ref), f"parameter count of ResidualBlock({_ci}, {_co}, {_s})"
    _mp, _rp = list(_mine.parameters()), list(_ref.parameters())
    assert [p.shape for p in _mp] == [p.shape for p in _rp], f"parameters of ResidualBlock({_ci}, {_co}, {_s}), in order"
    with torch.no_grad():
        for _a, _r in zip(_mp, _rp):
            _r.copy_(torch.randn(_r.shape, generator=_g, dtype=_r.dtype) * 0.5 + (1.0 if _r.ndim == 1 else 0.0))
            _a.copy_(_r)
    _xx = torch.randn(3, _ci, _hw, _hw, generator=_g, dtype=torch.float64)
    _xa, _xr = _xx.clone().requires_grad_(True), _xx.clone().requires_grad_(True)
    _ya, _yr = _mine(_xa), _ref(_xr)
    assert_close(_ya, _yr, f"train-mode output of ResidualBlock({_ci}, {_co}, {_s})")
    _gy = torch.randn(_yr.shape, generator=_g, dtype=torch.float64)
    _ya.backward(_gy)
    _yr.backward(_gy)
    assert_close(_xa.grad, _xr.grad, f"input gradient of ResidualBlock({_ci}, {_co}, {_s})")
    _mine.eval()
    _ref.eval()
    assert_close(_mine(_xx), _ref(_xx), f"eval-mode output of ResidualBlock({_ci}, {_co}, {_s})")
# the gradient path through a projection shortcut: with conv2 zeroed the input still gets a gradient
_pb = ResidualBlock(3, 6, 2).double()
with torch.no_grad():
    _pb.conv2.weight.zero_()
_xp = torch.randn(2, 3, 6, 6, generator=_g, dtype=torch.float64, requires_grad=True)
_pb(_xp).sum().backward()
assert _xp.grad.abs().sum() > 0 and _pb.shortcut[0].weight.grad.abs().sum() > 0, "the projection shortcut carries the gradient"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "inception_md", "locked": true, "solution": false, "schema_version": 3}
# ## 2. An Inception module (3 points)
#
# GoogLeNet's module (Szegedy et al. 2014, Figure 2b): four branches on the same input, their maps
# **concatenated along the channels** in this order; every convolution is followed by a ReLU, and
# convolutions of size $k$ are padded by $k // 2$ so that all branches keep the spatial size:
#
# 1. 1×1 convolution, `ch1x1` channels;
# 2. 1×1 convolution to `ch3x3red` channels ("reduce"), then 3×3 convolution to `ch3x3`;
# 3. 1×1 convolution to `ch5x5red`, then 5×5 convolution to `ch5x5`;
# 4. 3×3 max-pool with stride 1 and padding 1, then 1×1 convolution to `pool_proj`.
#
# Convolutions here have biases. Create the layers in the order listed (branch 1 first, each
# branch's layers from input to output). Output: `(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)`.

# %% nbgrader={"grade": false, "grade_id": "inception", "locked": false, "solution": true, "schema_version": 3}
class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels; x: (N, in_ch, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""

    def __init__(self, in_ch, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        ### BEGIN SOLUTION
        def conv(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU())

        self.branch1 = conv(in_ch, ch1x1, 1)
        self.branch2 = nn.Sequential(conv(in_ch, ch3x3red, 1), conv(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(conv(in_ch, ch5x5red, 1), conv(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(in_ch, pool_proj, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "inception_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_inc = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # GoogLeNet's inception (3a)
assert_shape(_inc(torch.randn(1, 192, 14, 14)), (1, 256, 14, 14), "inception (3a): 64 + 128 + 32 + 32 = 256 channels, same size")
assert count_parameters(_inc) == 163_696, f"inception (3a) has 163,696 parameters; yours has {count_parameters(_inc):,}"
_small = InceptionModule(3, 2, 2, 4, 1, 2, 1)
_out = _small(torch.randn(2, 3, 5, 5))
assert_shape(_out, (2, 9, 5, 5), "InceptionModule(3, 2, 2, 4, 1, 2, 1) outputs 2 + 4 + 2 + 1 channels")
assert (_out >= 0).all(), "every branch ends in a ReLU"
### BEGIN HIDDEN TESTS
from course_lib.models import InceptionModule as _RefInception

_g = torch.Generator().manual_seed(707)
for _cfg, _hw in [((5, 3, 4, 6, 2, 3, 2), 7), ((8, 1, 2, 2, 3, 5, 4), 6), ((2, 4, 1, 3, 1, 1, 3), 9)]:
    _mine, _ref = InceptionModule(*_cfg).double(), _RefInception(*_cfg).double()
    assert count_parameters(_mine) == count_parameters(_ref), f"parameter count of InceptionModule{_cfg}"
    _mp, _rp = list(_mine.parameters()), list(_ref.parameters())
    assert [p.shape for p in _mp] == [p.shape for p in _rp], f"layers of InceptionModule{_cfg} in the order of the task"
    with torch.no_grad():
        for _a, _r in zip(_mp, _rp):
            _r.copy_(torch.randn(_r.shape, generator=_g, dtype=_r.dtype) * 0.4)
            _a.copy_(_r)
    _xx = torch.randn(2, _cfg[0], _hw, _hw, generator=_g, dtype=torch.float64)
    assert_close(_mine(_xx), _ref(_xx), f"output of InceptionModule{_cfg} (branch order 1x1, 3x3, 5x5, pool)")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "transfer_md", "locked": true, "solution": false, "schema_version": 3}
# ## 3. Fine-tuning a pretrained network with a frozen backbone (3 points)
#
# The next cell trains a LeNet-5 (ReLU, max-pooling) on the MNIST digits **0-4** and caches it in
# your temporary folder, so that re-running the notebook loads it instead. Your target task is
# the digits **5-9** (relabelled 0-4) with only 100 labelled images per class.
#
# Write `fine_tune(pretrained, X, y, num_classes, steps=200, lr=5e-3)`, which must
#
# * leave `pretrained` untouched (work on `copy.deepcopy(pretrained)`);
# * **freeze the backbone** `model.features` (the convolutions: `requires_grad = False`);
# * replace the last layer `model.classifier[3]` by a new `nn.Linear(84, num_classes)`;
# * train the remaining trainable parameters (F6 and the new layer) with Adam for `steps`
#   mini-batches of 64 (`course_lib.training.fit` with `progress=False` is fine) and return the
#   model in eval mode.
#
# The test requires at least **80 %** accuracy on the test digits 5-9 and an unchanged backbone.

# %%
PRETRAIN_DIGITS = 12000  # training images, of which the digits 0-4 are used
MEAN, STD = 0.1307, 0.3081
X_u8, y_np = load_mnist("train")
Xt_u8, yt_np = load_mnist("test")


def to_images(u8):
    return torch.from_numpy(u8).float().div(255).sub(MEAN).div(STD)[:, None]


X_all, y_all = to_images(X_u8[:PRETRAIN_DIGITS]), torch.from_numpy(y_np[:PRETRAIN_DIGITS])
X_test, y_test = to_images(Xt_u8[:2000]), torch.from_numpy(yt_np[:2000])
CACHE = Path(tempfile.gettempdir()) / f"course-06-lenet5-digits04-{PRETRAIN_DIGITS}.pt"
pretrained = LeNet5(num_classes=5, activation="relu", pool="max", input_size=28)
if CACHE.exists():
    pretrained.load_state_dict(torch.load(CACHE, weights_only=True))
    print(f"loaded the pretrained network from {CACHE}")
else:
    torch.manual_seed(1)
    source = y_all < 5
    fit(pretrained, F.cross_entropy, torch.optim.Adam(pretrained.parameters(), lr=2e-3), X_all[source], y_all[source],
        epochs=1, batch_size=128, progress=False)
    torch.save(pretrained.state_dict(), CACHE)
    print(f"pretrained on {int(source.sum())} digits 0-4 and cached in {CACHE}")
pretrained.eval()
with torch.no_grad():
    print(f"accuracy on the test digits 0-4: {100 * accuracy(pretrained(X_test[y_test < 5]), y_test[y_test < 5]):.2f} %")

# the target task: 100 labelled images of each digit 5-9
_order = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(2))
_picked = torch.cat([_order[y_all[_order] == c][:100] for c in range(5, 10)])
X_target, y_target = X_all[_picked], y_all[_picked] - 5
X_target_test, y_target_test = X_test[y_test >= 5], y_test[y_test >= 5] - 5
print(f"target task: {len(y_target)} labelled images, {len(y_target_test)} test images")


# %% nbgrader={"grade": false, "grade_id": "fine_tune", "locked": false, "solution": true, "schema_version": 3}
def fine_tune(pretrained, X, y, num_classes, steps=200, lr=5e-3):
    """A copy of `pretrained` with a frozen backbone and a new last layer, trained on (X, y); returned in eval mode."""
    ### BEGIN SOLUTION
    model = copy.deepcopy(pretrained)
    for p in model.features.parameters():
        p.requires_grad_(False)
    model.classifier[3] = nn.Linear(model.classifier[3].in_features, num_classes)
    params = [p for p in model.parameters() if p.requires_grad]
    batch = min(64, len(X))
    epochs = max(1, round(steps * batch / len(X)))
    fit(model, F.cross_entropy, torch.optim.Adam(params, lr=lr), X, y, epochs=epochs, batch_size=batch, progress=False)
    return model.eval()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "fine_tune_tests", "locked": true, "points": 3, "solution": false, "schema_version": 3}
_before = copy.deepcopy(pretrained.state_dict())
torch.manual_seed(3)
_tuned = fine_tune(pretrained, X_target, y_target, 5)
assert all(torch.equal(v, pretrained.state_dict()[k]) for k, v in _before.items()), "fine_tune must not modify `pretrained`"
assert not any(p.requires_grad for p in _tuned.features.parameters()), "the backbone (model.features) must be frozen"
assert all(torch.equal(a, b) for a, b in zip(_tuned.features.parameters(), pretrained.features.parameters())), (
    "the frozen backbone's weights must not change"
)
assert _tuned.classifier[3].out_features == 5 and not _tuned.training, "a new 5-way last layer, model returned in eval mode"
with torch.no_grad():
    _acc = accuracy(_tuned(X_target_test), y_target_test)
assert _acc >= 0.80, f"accuracy on the test digits 5-9 is {100 * _acc:.1f} %; at least 80 % is expected"
print(f"fine-tuned with a frozen backbone: {100 * _acc:.1f} % on the test digits 5-9")
### BEGIN HIDDEN TESTS
_t3 = fine_tune(pretrained, X_target[::2], y_target[::2], 3 + 2, steps=20)
assert _t3.classifier[3].out_features == 5 and not any(p.requires_grad for p in _t3.features.parameters())
_t7 = fine_tune(pretrained, X_target, y_target % 3, 3, steps=10)
assert _t7.classifier[3].out_features == 3, "num_classes sets the size of the new last layer"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "saliency_md", "locked": true, "solution": false, "schema_version": 3}
# ## 4. A saliency map (2 points)
#
# Simonyan, Vedaldi & Zisserman (2014): the image-specific class saliency is the magnitude of the
# gradient of the **unnormalised** class score $a_y$ (the logit) with respect to the pixels,
# maximised over the colour channels:
#
# $$M_{n,ij} = \max_c \left| \frac{\partial a_{y_n}(x_n)}{\partial x_{n,cij}} \right| .$$
#
# Write `saliency_map(model, x, labels)`: `x` of shape `(N, C, H, W)`, `labels` of shape `(N,)`,
# returns `(N, H, W)`. Run the model in **eval mode** (so that images do not interact through batch
# norm) and put it back in the mode it was in; do not leave gradients in the model's parameters.

# %% nbgrader={"grade": false, "grade_id": "saliency", "locked": false, "solution": true, "schema_version": 3}
def saliency_map(model, x, labels):
    """max over channels of |d a_y / d x|; x: (N, C, H, W), labels: (N,) -> (N, H, W)."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    inp = x.detach().clone().requires_grad_(True)
    scores = model(inp).gather(1, labels.reshape(-1, 1)).sum()
    (grad,) = torch.autograd.grad(scores, inp)
    model.train(was_training)
    return grad.abs().amax(dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "saliency_tests", "locked": true, "points": 2, "solution": false, "schema_version": 3}
_lin = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
_xs = torch.randn(5, 2, 3, 3)
_ys = torch.tensor([0, 1, 2, 3, 1])
_w = _lin[1].weight.detach().reshape(4, 2, 3, 3)
assert_close(saliency_map(_lin, _xs, _ys), _w[_ys].abs().amax(dim=1), "for a linear model the saliency is max_c |w_y|")
_tuned.zero_grad(set_to_none=True)
_sal = saliency_map(_tuned, X_target_test[:4], y_target_test[:4])
assert_shape(_sal, (4, 28, 28), "one map per image, channels reduced")
assert all(p.grad is None for p in _tuned.parameters()), "saliency_map must not leave gradients in the parameters"
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(808)
torch.manual_seed(9)
_net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 5, 6)).double()
_net.train()
_net(torch.randn(8, 3, 6, 5, generator=_g, dtype=torch.float64))  # give the BN running statistics
_xh = torch.randn(7, 3, 6, 5, generator=_g, dtype=torch.float64)
_yh = torch.randint(0, 6, (7,), generator=_g)
_got = saliency_map(_net, _xh, _yh)
assert _net.training, "saliency_map must restore the model's training mode"
_net.eval()
_expected = []
for _n in range(7):  # one image at a time: no interaction between images
    _xi = _xh[_n : _n + 1].clone().requires_grad_(True)
    (_gi,) = torch.autograd.grad(_net(_xi)[0, _yh[_n]], _xi)
    _expected.append(_gi[0].abs().amax(dim=0))
assert_close(_got, torch.stack(_expected), "saliency against autograd, image by image, on an unseen model with batch norm")
_xl = X_target_test[10:13].double()
_tl = copy.deepcopy(_tuned).double()
_exp_l = []
for _n in range(3):
    _xi = _xl[_n : _n + 1].clone().requires_grad_(True)
    (_gi,) = torch.autograd.grad(_tl(_xi)[0, y_target_test[10 + _n]], _xi)
    _exp_l.append(_gi[0, 0].abs())
assert_close(saliency_map(_tl, _xl, y_target_test[10:13]), torch.stack(_exp_l), "saliency of the fine-tuned LeNet-5 against autograd")
### END HIDDEN TESTS
