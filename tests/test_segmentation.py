"""Tests of course_lib.segmentation against scikit-learn, torch.nn.functional and brute-force loops.

Metrics: random label maps (parametrised seeds, random shapes and class counts, classes that are
absent on purpose) against ``sklearn.metrics`` (``confusion_matrix``, ``accuracy_score``,
``jaccard_score``, ``f1_score``) and against the lecture's formulas written as loops. The loss
against ``F.cross_entropy``. Models: output shapes on odd sizes, the paper's U-Net sizes, the
receptive fields of the context network measured by back-propagation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
import torch.nn.functional as F

from course_lib import segmentation as S
from course_lib.conv import receptive_field

SEEDS = range(10)


def random_maps(seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """pred and target label maps (N, H, W) with K classes, some of them absent from one or both."""
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(2, 7, (1,), generator=g))
    shape = tuple(int(v) for v in torch.randint(1, 9, (3,), generator=g))
    target = torch.randint(0, k, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target, torch.randint(0, k, shape, generator=g))
    if seed % 3 == 0:  # class k-1 absent from both maps, class 0 absent from the prediction
        target[target == k - 1] = 0
        pred[pred == k - 1] = 1 % k
        pred[pred == 0] = 1 % k
    return pred, target, k


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_accuracy_jaccard_dice_match_sklearn(seed: int) -> None:
    pred, target, k = random_maps(seed)
    p, t = pred.flatten().numpy(), target.flatten().numpy()
    labels = list(range(k))
    np.testing.assert_array_equal(
        S.confusion_matrix(pred, target, k).numpy(), skm.confusion_matrix(t, p, labels=labels)
    )
    assert S.pixel_accuracy(pred, target).item() == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
    present = np.isin(labels, np.union1d(p, t))
    jac = skm.jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    ours = S.jaccard_per_class(pred, target, k).numpy()
    np.testing.assert_allclose(ours[present], jac[present], atol=1e-12)
    assert np.isnan(ours[~present]).all(), "a class absent from both maps must give NaN"
    assert S.mean_iou(pred, target, k).item() == pytest.approx(jac[present].mean(), abs=1e-12)
    f1 = skm.f1_score(t, p, labels=labels, average=None, zero_division=0)
    dice = S.dice_per_class(pred, target, k).numpy()
    np.testing.assert_allclose(dice[present], f1[present], atol=1e-12)
    np.testing.assert_allclose(dice[present], 2 * ours[present] / (1 + ours[present]), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_metrics_match_the_lecture_formulas_as_loops(seed: int) -> None:
    """seeds 8.4 and 8.5: accuracy (1/n) sum [y_i = a_i] (not !=), J_k = sum [y=k][a=k] / sum max([y=k], [a=k])."""
    pred, target, k = random_maps(seed)
    ys, as_ = target.flatten().tolist(), pred.flatten().tolist()
    n = len(ys)
    assert S.pixel_accuracy(pred, target).item() == pytest.approx(sum(y == a for y, a in zip(ys, as_)) / n, abs=1e-12)
    for c in range(k):
        num = sum((y == c) * (a == c) for y, a in zip(ys, as_))
        den = sum(max(y == c, a == c) for y, a in zip(ys, as_))
        got = S.jaccard_per_class(pred, target, k)[c].item()
        assert math.isnan(got) if den == 0 else got == pytest.approx(num / den, abs=1e-12)


def test_ignore_index_and_edge_cases() -> None:
    target = torch.tensor([[0, 1, 255], [2, 255, 1]])
    pred = torch.tensor([[0, 2, 1], [2, 0, 1]])
    keep = target != 255
    assert S.pixel_accuracy(pred, target, ignore_index=255).item() == pytest.approx(3 / 4)
    np.testing.assert_array_equal(
        S.confusion_matrix(pred, target, 3, ignore_index=255).numpy(),
        skm.confusion_matrix(target[keep].numpy(), pred[keep].numpy(), labels=[0, 1, 2]),
    )
    np.testing.assert_allclose(S.jaccard_per_class(pred, target, 3, ignore_index=255).numpy(), [1.0, 0.5, 0.5])
    # one pixel, a perfect map, a map of one class only
    one = torch.tensor([[3]])
    assert S.pixel_accuracy(one, one).item() == 1.0
    assert S.mean_iou(one, one, 5).item() == 1.0 and torch.isnan(S.jaccard_per_class(one, one, 5)[:3]).all()
    assert S.mean_iou(torch.zeros(4, 4, dtype=torch.long), torch.ones(4, 4, dtype=torch.long), 2).item() == 0.0
    assert torch.isnan(S.pixel_accuracy(target, torch.full_like(target, 255), ignore_index=255))
    with pytest.raises(ValueError, match="same shape"):
        S.mean_iou(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer class labels"):
        S.pixel_accuracy(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="outside 0..1"):
        S.jaccard_per_class(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        S.dice_per_class(one, one, 0)


# ------------------------------------------------------------------------------ boundary IoU
def band_by_loops(mask: np.ndarray, d: int) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    for i in range(h):
        for j in range(w):
            if not mask[i, j]:
                continue
            for di in range(-d, d + 1):
                for dj in range(-d, d + 1):
                    y, x = i + di, j + dj
                    if not (0 <= y < h and 0 <= x < w) or not mask[y, x]:
                        out[i, j] = True
    return out


@pytest.mark.parametrize("seed", range(6))
def test_boundary_band_and_boundary_iou_against_loops(seed: int) -> None:
    pred, target, k = random_maps(seed + 20)
    d = 1 + seed % 3
    for img in range(target.shape[0]):
        for c in range(k):
            m = (target[img] == c).numpy()
            np.testing.assert_array_equal(S.boundary_band(torch.from_numpy(m), d).numpy(), band_by_loops(m, d))
    expected = []
    for c in range(k):
        inter = union = 0
        for img in range(target.shape[0]):
            pb = band_by_loops((pred[img] == c).numpy(), d)
            gb = band_by_loops((target[img] == c).numpy(), d)
            inter, union = inter + (pb & gb).sum(), union + (pb | gb).sum()
        expected.append(inter / union if union else math.nan)
    got = S.boundary_iou(pred, target, k, d, per_class=True, ignore_background=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    fg = np.array(expected[1:], dtype=float)
    want = np.nanmean(fg) if np.isfinite(fg).any() else math.nan
    got_mean = S.boundary_iou(pred, target, k, d).item()
    assert (math.isnan(got_mean) and math.isnan(want)) or got_mean == pytest.approx(want, abs=1e-12)


def test_boundary_iou_punishes_coarse_edges_more_than_mask_iou() -> None:
    """seed 8.9: replicated coarse predictions (FCN) have blocky edges; boundary IoU shows it, mask IoU hardly does."""
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    target = (((yy - 63.5) ** 2 + (xx - 60.5) ** 2) < 50**2).long()
    coarse = target[4::8, 4::8].repeat_interleave(8, 0).repeat_interleave(8, 1)  # nearest down/up by 8
    miou = S.jaccard_per_class(coarse, target, 2)[1].item()
    biou = S.boundary_iou(coarse, target, 2, width=2).item()
    assert miou > 0.9 and biou < 0.6, (miou, biou)
    assert S.boundary_iou(target, target, 2).item() == 1.0


# ------------------------------------------------------------------------------------- loss
@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_cross_entropy_matches_torch_and_has_its_minus_sign(seed: int) -> None:
    """seed 8.6: L = -(1/n) sum_i sum_k [y_i=k] log a_ik; the notes' version without the minus is <= 0."""
    g = torch.Generator().manual_seed(seed)
    n, k, h, w = (int(v) for v in torch.randint(1, 5, (4,), generator=g))
    k += 1
    logits = torch.randn(n, k, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, k, (n, h, w), generator=g)
    weight = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    if seed % 2:
        target[0, 0, 0] = -100
    ours = S.pixel_cross_entropy(logits, target, weight=weight, ignore_index=-100)
    ref = F.cross_entropy(logits, target, weight=weight, ignore_index=-100)
    torch.testing.assert_close(ours, ref)
    (ga,) = torch.autograd.grad(ours, logits)
    (gb,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(ga, gb)
    for red in ("sum", "none"):
        torch.testing.assert_close(
            S.pixel_cross_entropy(logits, target, ignore_index=-100, reduction=red),
            F.cross_entropy(logits, target, ignore_index=-100, reduction=red),
        )
    plain = S.pixel_cross_entropy(logits, target.clamp_min(0))
    a = torch.softmax(logits, 1)
    onehot = F.one_hot(target.clamp_min(0), k).permute(0, 3, 1, 2).double()
    notes = (onehot * a.log()).sum(1).mean()  # the formula as the notes print it
    assert notes.item() <= 0 <= plain.item()
    torch.testing.assert_close(plain, -notes)


def test_pixel_cross_entropy_validates() -> None:
    with pytest.raises(ValueError, match="spatial shape"):
        S.pixel_cross_entropy(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        S.pixel_cross_entropy(torch.zeros(1, 3, 2, 2), torch.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match="reduction"):
        S.pixel_cross_entropy(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), reduction="avg")


# ------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("upsample", ["repeat", "learned"])
@pytest.mark.parametrize("seed", range(3))
def test_fcn_shapes_and_coarse_repetition(upsample: str, seed: int) -> None:
    """seed 8.8: 1x1 convolution to K channels, then upsampling by repetition or learned."""
    g = torch.Generator().manual_seed(seed)
    h, w = (int(v) for v in torch.randint(5, 30, (2,), generator=g))
    p = 1 + seed % 3
    torch.manual_seed(seed)
    model = S.FCN(num_classes=4, in_ch=2, base_ch=3, n_pools=p, upsample=upsample)
    out = model(torch.randn(2, 2, h, w, generator=g))
    assert out.shape == (2, 4, h, w)
    assert model.classifier.kernel_size == (1, 1) and model.classifier.out_channels == 4
    if upsample == "repeat":  # seed 8.9: every 2^p x 2^p block holds one value
        f = 2**p
        pad = out[..., : (h // f) * f, : (w // f) * f]
        blocks = pad.unflatten(2, (-1, f)).unflatten(4, (-1, f))
        assert (blocks == blocks[:, :, :, :1, :, :1]).all()
    assert model.receptive_field() == receptive_field(model.layer_specs())[-1]


def test_fcn_receptive_field_arithmetic() -> None:
    """Three 2x2 pools: 5, 6 | +4, +4, +2 | +8, +8, +4 | +16, +16 -> 68 input pixels per coarse score."""
    assert S.FCN(3, n_pools=3).receptive_field() == 68
    assert S.FCN(3, n_pools=0).receptive_field() == 5


def test_fcn_learned_upsampling_starts_bilinear() -> None:
    torch.manual_seed(0)
    model = S.FCN(num_classes=3, n_pools=2, upsample="learned")
    scores = torch.randn(1, 3, 6, 5, dtype=torch.float64)
    up = F.conv_transpose2d(scores, model.up.weight.double(), stride=4, padding=2)
    ref = F.interpolate(scores, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 4:-4, 4:-4], ref[..., 4:-4, 4:-4])  # equal away from the border


@pytest.mark.parametrize("seed", range(4))
def test_unet_same_padding_keeps_any_size(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    h, w = (int(v) for v in torch.randint(1, 40, (2,), generator=g))
    depth = seed % 4
    h, w = max(h, 2**depth), max(w, 2**depth)
    model = S.UNet(in_ch=3, num_classes=5, depth=depth, base_ch=2, batch_norm=bool(seed % 2))
    out = model(torch.randn(2, 3, h, w, generator=g))
    assert out.shape == (2, 5, h, w) and model.output_size(h) == h


def test_unet_valid_padding_gives_the_papers_sizes() -> None:
    """seed 8.10: the paper's U-Net, 572x572 -> 388x388 with copy-and-crop skips."""
    model = S.UNet(in_ch=1, num_classes=2, depth=4, base_ch=1, padding=0)
    assert model.output_size(572) == 388
    with torch.no_grad():
        assert model(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    for size in (178, 185, 199, 213):
        with torch.no_grad():
            assert model(torch.randn(1, 1, size, 192)).shape[-2:] == (model.output_size(size), model.output_size(192))
    with pytest.raises(ValueError, match="too small"):
        model(torch.randn(1, 1, 171, 192))


def test_unet_forward_matches_a_manual_copy_and_crop() -> None:
    """The forward pass recomputed from the modules with explicit centre-crop indices (valid convolutions)."""
    torch.manual_seed(0)
    model = S.UNet(in_ch=2, num_classes=3, depth=2, base_ch=2, padding=0).double()
    x = torch.randn(1, 2, 45, 44, dtype=torch.float64)
    e0 = model.down[0](x)
    e1 = model.down[1](F.max_pool2d(e0, 2, ceil_mode=True))
    b = model.bottom(F.max_pool2d(e1, 2, ceil_mode=True))
    u1 = model.up[0](b)
    dh, dw = e1.shape[-2] - u1.shape[-2], e1.shape[-1] - u1.shape[-1]
    d1 = model.up_blocks[0](
        torch.cat([e1[..., dh // 2 : dh // 2 + u1.shape[-2], dw // 2 : dw // 2 + u1.shape[-1]], u1], 1)
    )
    u0 = model.up[1](d1)
    dh, dw = e0.shape[-2] - u0.shape[-2], e0.shape[-1] - u0.shape[-1]
    d0 = model.up_blocks[1](
        torch.cat([e0[..., dh // 2 : dh // 2 + u0.shape[-2], dw // 2 : dw // 2 + u0.shape[-1]], u0], 1)
    )
    torch.testing.assert_close(model(x), model.head(d0))
    np.testing.assert_array_equal(
        S.center_crop(torch.arange(30).view(1, 1, 5, 6), 2, 3).flatten().numpy(), [7, 8, 9, 13, 14, 15]
    )


def test_context_network_sizes_channels_and_receptive_fields() -> None:
    """seeds 8.13-8.15: dilations 1,1,2,4,8,16,1,1 keep H x W; RF 3..67; channels of Basic and Large."""
    model = S.ContextNetwork(in_ch=1, num_classes=3, width=2)
    assert model.receptive_fields() == receptive_field(model.layer_specs()) == [3, 5, 9, 17, 33, 65, 67, 67]
    for h, w in ((1, 1), (7, 12), (33, 20)):
        assert model(torch.randn(2, 1, h, w)).shape == (2, 3, h, w)
    assert S.ContextNetwork(3, 3).channels == [3] * 8
    assert S.ContextNetwork(3, 3, variant="large").channels == [6, 6, 12, 24, 48, 96, 96, 3]
    relus = [type(m).__name__ for m in model.layers]
    assert relus.count("ReLU") == 7 and relus[-1] == "Conv2d"  # truncation yes x 7, no on the last layer
    with pytest.raises(ValueError, match="variant"):
        S.ContextNetwork(1, 2, variant="huge")


def test_context_network_receptive_fields_by_backpropagation() -> None:
    """seed 8.13 measured: the gradient of the centre output w.r.t. the input is non-zero on exactly r x r pixels."""
    torch.manual_seed(0)
    model = S.ContextNetwork(in_ch=1, num_classes=1, width=2).double()
    with torch.no_grad():  # positive weights and inputs keep every ReLU open, so no path is cut
        for m in model.layers:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.uniform_(0.1, 1.0)
                m.bias.fill_(0.1)
    size = 75
    measured = []
    for depth in range(1, 9):
        x = torch.rand(1, 1, size, size, dtype=torch.float64) + 0.5
        x.requires_grad_(True)
        layers = list(model.layers)[: 2 * depth] if depth < 8 else list(model.layers)
        out = torch.nn.Sequential(*layers)(x)
        out[0, 0, size // 2, size // 2].backward()
        rows = (x.grad[0, 0] != 0).any(1).nonzero()
        measured.append(int(rows.max() - rows.min() + 1))
    assert measured == [3, 5, 9, 17, 33, 65, 67, 67]


# ============================================================================================
# training and evaluation helpers
# ============================================================================================
def test_train_and_evaluate_segmentation():
    """A few dozen steps lower the loss; the evaluation's numbers are the metric functions' on its own
    predictions, and the predictions are the model's arg-max."""
    from course_lib.data import make_digit_scenes

    scenes = make_digit_scenes(32, 32, (1, 2), scale=(0.6, 1.0), split="train", seed=5)
    X, Y = torch.from_numpy(scenes.images[:, None]), torch.from_numpy(scenes.masks)
    torch.manual_seed(0)
    model = S.UNet(1, 11, depth=2, base_ch=8, batch_norm=True)
    losses = S.train_segmentation(model, X, Y, 40, 8, lr=5e-3, progress=False)
    assert isinstance(losses, np.ndarray) and losses.shape == (40,) and np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.75 * losses[:5].mean()
    r = S.evaluate_segmentation(model, X, Y, 11, batch=10)
    with torch.no_grad():
        assert torch.equal(r["pred"], model.eval()(X).argmax(1))
    assert r["miou"] == S.mean_iou(r["pred"], Y, 11).item()
    assert r["acc"] == S.pixel_accuracy(r["pred"], Y).item()
    assert r["boundary"] == S.boundary_iou(r["pred"], Y, 11, width=2).item()
    assert r["per_class"].shape == (11,) and r["ips"] > 0
    with pytest.raises(ValueError, match="steps and batch"):
        S.train_segmentation(model, X, Y, 0, 8)
    with pytest.raises(ValueError, match="masks"):
        S.train_segmentation(model, X, Y[:, :5], 2, 8)
