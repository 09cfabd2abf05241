"""Tests of course_lib.interpret against autograd, brute-force loops, closed forms and scikit-learn.

Receptive-field geometry is checked against the support of autograd's input gradient; saliency
against torch.autograd.functional.jacobian; occlusion against a loop that covers one square at a
time; Grad-CAM against CAM's closed form and on a hand-built model whose evidence sits, by
construction, in one quadrant of the image; class maximisation against the analytic maximiser of a
linear score.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.interpret import (
    grad_cam,
    layer_geometry,
    layer_output,
    maximize_class,
    occlusion_map,
    saliency_map,
    top_activating_patches,
    tsne_embed,
)
from course_lib.models import LeNet5

F64 = torch.float64


def small_cnn(seed: int, positive: bool = False, pool: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Conv2d(3, 4, (3, 5), stride=2, padding=(1, 2), dilation=(1, 2)), nn.ReLU(), nn.Conv2d(4, 5, 3)]
    model = nn.Sequential(*layers).double()
    if positive:
        for p in model.parameters():
            p.data.abs_()
    return model


def layer_activations(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's output in a graph that reaches x (a forward hook, the oracle's own)."""
    acts: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, inp, o: acts.append(o))
    model(x)
    handle.remove()
    return acts[0]


# --------------------------------------------------------------------------------------------
# receptive fields and top-activating patches
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_index", [0, 1, 2, 4])
def test_geometry_matches_the_support_of_the_input_gradient(layer_index):
    """Seed 7.1: the patch a unit sees. Positive weights and inputs, no pooling: every pixel of the
    receptive field inside the image influences the unit, none outside it (autograd is the oracle)."""
    model = small_cnn(0, positive=True, pool=False)
    layer = model[layer_index]
    geom = layer_geometry(model, layer)
    x = torch.rand(1, 2, 23, 29, dtype=F64, requires_grad=True)
    out = layer_output(model, layer, x.detach())
    assert out.shape[2:] == geom.output_size(23, 29)
    g = torch.Generator().manual_seed(layer_index)
    for _ in range(4):
        i = int(torch.randint(out.shape[2], (1,), generator=g))
        j = int(torch.randint(out.shape[3], (1,), generator=g))
        acts = layer_activations(model, layer, x)
        (grad,) = torch.autograd.grad(acts[0, 0, i, j], x)
        rows, cols = torch.nonzero(grad[0].abs().sum(0), as_tuple=True)
        top, left = geom.offset[0] + i * geom.jump[0], geom.offset[1] + j * geom.jump[1]
        bottom, right = top + geom.size[0], left + geom.size[1]
        assert (rows.min().item(), cols.min().item()) == (max(top, 0), max(left, 0))
        assert (rows.max().item() + 1, cols.max().item() + 1) == (min(bottom, 23), min(right, 29))


def test_geometry_with_pooling_contains_the_gradient_support_and_uses_conv_arithmetic():
    model = small_cnn(1, pool=True)
    geom = layer_geometry(model, model[-1])
    # conv3 (r=3) -> pool 2/2 -> conv (3,5) s2 dil (1,2) -> conv 3: rows 3+1*1 ... by hand per axis
    # rows: r = 1+2=3, +1*1=4 (pool), +1*2*2=8, +2*4=16; cols: 3, 4, +2*4*2=20, +2*4=28
    # offset: -1 (conv1 padding), then -padding * jump 2 of the second convolution: rows -1-1*2, cols -1-2*2
    assert geom.size == (16, 28) and geom.jump == (4, 4) and geom.offset == (-1 - 1 * 2, -1 - 2 * 2)
    x = torch.randn(2, 2, 30, 34, dtype=F64, requires_grad=True)
    out = model(x)
    for i, j in [(0, 0), (out.shape[2] - 1, out.shape[3] - 1), (1, 2)]:
        (grad,) = torch.autograd.grad(out[1, 2, i, j], x, retain_graph=True)
        rows, cols = torch.nonzero(grad[1].abs().sum(0), as_tuple=True)
        top, left = geom.offset[0] + i * geom.jump[0], geom.offset[1] + j * geom.jump[1]
        assert rows.min() >= top and rows.max() < top + geom.size[0]
        assert cols.min() >= left and cols.max() < left + geom.size[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_activating_patches_against_brute_force(seed):
    """Seed 7.1: for each filter, the images with the strongest response and the patches behind it."""
    model = small_cnn(seed)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(9, 2, 18 + seed, 20, generator=g, dtype=F64)
    k = 3 + seed
    layer = model[3]  # the strided, dilated convolution (before its ReLU: no ties at zero)
    res = top_activating_patches(model, layer, images, k)
    maps = model[:4](images).detach()
    geom = res.geometry
    assert res.patches.shape == (4, k, 2, *geom.size)
    for c in range(4):
        best = sorted(range(9), key=lambda n: -maps[n, c].max().item())[:k]
        assert res.image[c].tolist() == best
        for r in range(k):
            n = best[r]
            i, j = res.position[c, r].tolist()
            assert maps[n, c, i, j] == maps[n, c].max() == res.values[c, r]
            top, left, bottom, right = res.boxes[c, r].tolist()
            assert (top, left) == (geom.offset[0] + i * geom.jump[0], geom.offset[1] + j * geom.jump[1])
            assert (bottom - top, right - left) == geom.size
            expected = torch.zeros(2, *geom.size, dtype=F64)
            for a in range(top, bottom):
                for b in range(left, right):
                    if 0 <= a < images.shape[2] and 0 <= b < images.shape[3]:
                        expected[:, a - top, b - left] = images[n, :, a, b]
            torch.testing.assert_close(res.patches[c, r], expected)
    sub = top_activating_patches(model, "3", images, 2, channels=[3, 1])
    torch.testing.assert_close(sub.values, res.values[[3, 1], :2])


def test_top_activating_patches_on_lenet_first_layer_and_errors():
    torch.manual_seed(0)
    model = LeNet5(input_size=28)
    images = torch.rand(6, 1, 28, 28)
    res = top_activating_patches(model, model.features[0], images, 2)
    assert res.geometry.size == (5, 5) and res.geometry.offset == (-2, -2) and res.patches.shape == (6, 2, 1, 5, 5)
    # LeNet's C5 sees 32x32 (the whole padded input): 5 -> 6 -> 6+4*2=14 -> 16 -> 16+4*4=32
    assert layer_geometry(model, model.features[6]).size == (32, 32)
    with pytest.raises(ValueError, match="k must"):
        top_activating_patches(model, model.features[0], images, 7)
    with pytest.raises(ValueError, match="maps"):
        top_activating_patches(model, model.classifier[1], images, 2)
    with pytest.raises(ValueError, match="submodule"):
        top_activating_patches(model, nn.Conv2d(1, 1, 1), images, 2)
    branchy = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(4), nn.Conv2d(2, 2, 1))
    with pytest.raises(ValueError, match="adaptive"):
        top_activating_patches(branchy, branchy[2], images, 2)


# --------------------------------------------------------------------------------------------
# class maximisation
# --------------------------------------------------------------------------------------------
def test_maximize_class_reaches_the_analytic_maximiser_of_a_linear_score():
    """Seeds 7.2-7.3: a_y(x) - l2 ||x||^2 -> max from random noise by gradient ascent; for
    a_y(x) = w.x + b the maximiser is w / (2 l2), reached geometrically at rate (1 - 2 l2 lr)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 3, 5)).double()
    l2, lr = 0.5, 0.2
    res = maximize_class(model, 3, l2=l2, steps=120, lr=lr, input_shape=(2, 4, 3), seed=1)
    w, b = model[1].weight[3].detach(), model[1].bias[3].item()
    x_star = (w / (2 * l2)).reshape(2, 4, 3)
    torch.testing.assert_close(res.image, x_star, rtol=1e-9, atol=1e-9)
    assert np.all(np.diff(res.objective) >= -1e-12)  # ascent: the objective never decreases
    assert res.objective[-1] == pytest.approx(b + (w @ w).item() / (4 * l2), rel=1e-9)
    assert res.score == pytest.approx(b + (w @ w).item() / (2 * l2), rel=1e-9)
    # the iterates follow x_t = x* + (1 - 2 l2 lr)^t (x_0 - x*), x_0 ~ N(0, init_std^2)
    x0 = torch.randn((1, 2, 4, 3), generator=torch.Generator().manual_seed(1), dtype=F64)[0] * 1e-2
    three = maximize_class(model, 3, l2=l2, steps=3, lr=lr, input_shape=(2, 4, 3), seed=1)
    torch.testing.assert_close(three.image, x_star + (1 - 2 * l2 * lr) ** 3 * (x0 - x_star))
    assert model[1].weight.grad is None


def test_maximize_class_on_a_cnn_makes_the_class_win():
    """Seeds 7.2-7.3 on LeNet-5 (He-initialised, so that its scores depend on the input)."""
    torch.manual_seed(0)
    model = LeNet5(activation="relu", pool="max")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)
    model.train()
    for cls in (2, 7):
        start = maximize_class(model, cls, steps=0)
        res = maximize_class(model, cls, l2=1e-2, steps=40, lr=0.5)
        assert res.image.shape == (1, 32, 32) and model.training and len(res.objective) == 40
        assert res.score > start.score + 5 and res.objective[-1] > res.objective[0]
        with torch.no_grad():
            assert model.eval()(res.image[None]).argmax().item() == cls
        model.train()
        stronger = maximize_class(model, cls, l2=1.0, steps=40, lr=0.5)
        assert stronger.image.norm() < 0.2 * res.image.norm()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="input_shape"):
        maximize_class(nn.Linear(3, 2), 0)


# --------------------------------------------------------------------------------------------
# saliency and occlusion
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_saliency_equals_the_input_gradient(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 5 * 6, 6))
    model = model.double()
    model.train()
    x = torch.randn(3, 3, 7, 8, dtype=F64)
    labels = torch.tensor([5, 0, 2])
    raw = saliency_map(model, x, labels, reduce="none")
    assert model.training
    model.eval()
    for n in range(3):
        jac = torch.autograd.functional.jacobian(lambda z, n=n: model(z[None])[0, labels[n]], x[n])
        torch.testing.assert_close(raw[n], jac)
    torch.testing.assert_close(saliency_map(model, x, labels), jac_abs_max := raw.abs().amax(1))
    assert jac_abs_max.shape == (3, 7, 8)
    torch.testing.assert_close(saliency_map(model, x, 2, reduce="abs")[2], raw[2].abs())
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="class_idx"):
        saliency_map(model, x, [1, 2])
    with pytest.raises(ValueError, match="class_idx"):
        saliency_map(model, x, 6)


@pytest.mark.parametrize("patch, stride, fill", [(3, 2, 0.0), ((2, 4), (3, 1), 0.5), (5, 5, -1.0)])
def test_occlusion_against_a_brute_force_loop(patch, stride, fill):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 9, 4)).double()
    x = torch.randn(2, 2, 10, 11, dtype=F64)
    labels = torch.tensor([1, 3])
    got = occlusion_map(model, x, labels, patch, stride, fill=fill, batch_size=7)
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    rows, cols = range(0, 10 - ph + 1, sh), range(0, 11 - pw + 1, sw)
    expected = torch.zeros(2, len(rows), len(cols), dtype=F64)
    with torch.no_grad():
        for n in range(2):
            base = model(x[n : n + 1])[0, labels[n]]
            for a, top in enumerate(rows):
                for b, left in enumerate(cols):
                    z = x[n : n + 1].clone()
                    z[:, :, top : top + ph, left : left + pw] = fill
                    expected[n, a, b] = base - model(z)[0, labels[n]]
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="larger"):
        occlusion_map(model, x, 0, 12, 1)


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------
class GapNet(nn.Module):
    """conv features -> ReLU -> global average pooling -> linear: the CAM architecture."""

    def __init__(self, conv: nn.Conv2d, fc: nn.Linear) -> None:
        super().__init__()
        self.conv, self.relu, self.fc = conv, nn.ReLU(), fc

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


def test_grad_cam_equals_cam_for_a_gap_network():
    torch.manual_seed(3)
    model = GapNet(nn.Conv2d(3, 6, 3, padding=1), nn.Linear(6, 4)).double()
    x = torch.randn(2, 3, 9, 7, dtype=F64)
    labels = torch.tensor([2, 0])
    cam = grad_cam(model, model.relu, x, labels, upsample=False)
    A = F.relu(model.conv(x)).detach()
    w = model.fc.weight.detach()[labels]  # (N, K)
    torch.testing.assert_close(cam, F.relu((w[:, :, None, None] * A).sum(1)) / (9 * 7))
    up = grad_cam(model, "relu", x, labels)
    assert up.shape == (2, 9, 7)
    torch.testing.assert_close(up, cam)  # same size: bilinear resizing is the identity
    assert all(p.grad is None for p in model.parameters())


def _quadrant_model() -> GapNet:
    """Channel 0 detects vertical bars, channel 1 horizontal bars; class 0 = vertical, class 1 = horizontal."""
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=True)
    vertical = torch.tensor([[-1.0, 2.0, -1.0]] * 3)
    with torch.no_grad():
        conv.weight.copy_(torch.stack([vertical, vertical.t()])[:, None])
        conv.bias.fill_(-1.0)
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.eye(2))
        fc.bias.zero_()
    return GapNet(conv, fc).double()


def _quadrant_image(quadrant: int, side: int = 16) -> torch.Tensor:
    """A vertical-bar pattern in one quadrant (0 TL, 1 TR, 2 BL, 3 BR) and a horizontal one in the opposite."""
    x = torch.zeros(1, 1, side, side, dtype=F64)
    h = side // 2
    r, c = divmod(quadrant, 2)
    x[0, 0, r * h + 2 : r * h + h - 2, c * h + 2 : c * h + h - 2 : 2] = 1.0  # vertical bars
    r2, c2 = 1 - r, 1 - c
    x[0, 0, r2 * h + 2 : r2 * h + h - 2 : 2, c2 * h + 2 : c2 * h + h - 2] = 1.0  # horizontal bars
    return x


def _mass_in_quadrant(m: torch.Tensor, quadrant: int) -> float:
    h, w = m.shape[0] // 2, m.shape[1] // 2
    r, c = divmod(quadrant, 2)
    return (m[r * h : (r + 1) * h, c * w : (c + 1) * w].sum() / m.sum()).item()


@pytest.mark.parametrize("quadrant", [0, 1, 2, 3])
def test_grad_cam_saliency_and_occlusion_find_the_quadrant_that_carries_the_class(quadrant):
    """By construction, only one quadrant carries class 0 (vertical bars) and only the opposite one class 1."""
    model = _quadrant_model()
    x = _quadrant_image(quadrant)
    for cls, where in ((0, quadrant), (1, 3 - quadrant)):
        cam = grad_cam(model, model.relu, x, cls)[0]
        assert _mass_in_quadrant(cam, where) > 0.9
        occ = occlusion_map(model, x, cls, 4, 4)[0].clamp(min=0)
        assert _mass_in_quadrant(occ, where) > 0.9
        sal = saliency_map(model, x, cls)[0]
        assert _mass_in_quadrant(sal, where) > 0.6


# --------------------------------------------------------------------------------------------
# t-SNE
# --------------------------------------------------------------------------------------------
def test_tsne_embed_separates_clusters_and_matches_sklearn():
    from sklearn.manifold import TSNE

    g = np.random.default_rng(0)
    centers = g.normal(size=(3, 10)) * 10
    labels = np.repeat(np.arange(3), 15)
    feats = centers[labels] + g.normal(size=(45, 10))
    emb = tsne_embed(torch.from_numpy(feats).requires_grad_(True), max_iter=300)
    assert emb.shape == (45, 2)
    ref = TSNE(perplexity=min(30.0, 44 / 3), init="pca", learning_rate="auto", random_state=0, max_iter=300)
    np.testing.assert_allclose(emb, ref.fit_transform(feats), rtol=1e-6, atol=1e-6)
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).all()  # each point's nearest neighbour is of its class
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        tsne_embed(np.zeros(5))
    with pytest.raises(ValueError, match="perplexity"):
        tsne_embed(feats, perplexity=50)
