"""Tests of course_lib.autoencoders: linear AE = PCA (scikit-learn), noise statistics, PSNR, perceptual loss.

* A linear autoencoder trained to convergence (L-BFGS, float64) on synthetic data with a clear
  spectrum gap spans scikit-learn's PCA subspace: principal angles (scipy) below 1e-4 rad, and its
  reconstruction error equals PCA's.
* ``add_noise``: empirical noise statistics against their distributions (tolerances of ~6
  binomial / normal standard errors), untouched entries unchanged, reproducible with a generator.
* ``perceptual_loss`` against feature maps computed by slicing the ``nn.Sequential`` by hand
  (no hooks), values and gradients.
* ``psnr`` against ``10 log10(R^2 / MSE)`` computed in numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import sklearn.decomposition
import sklearn.metrics
import torch
from torch import nn

from course_lib.autoencoders import (
    ConvAutoencoder,
    DenseAutoencoder,
    add_noise,
    interpolate_latents,
    perceptual_loss,
    psnr,
    reconstruction_error,
)

F64 = torch.float64


# --------------------------------------------------------------------------------------------
# linear autoencoder = PCA
# --------------------------------------------------------------------------------------------
def spectrum_gap_data(seed: int, n: int = 300, d: int = 8, k: int = 3) -> np.ndarray:
    """n points in R^d: k strong directions (std 3, 2.5, 2), d - k weak ones (std <= 0.2), random rotation, offset."""
    rng = np.random.default_rng(seed)
    stds = np.r_[np.linspace(3.0, 2.0, k), np.linspace(0.2, 0.05, d - k)]
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    offset = rng.standard_normal(d)
    return (rng.standard_normal((n, d)) * stds) @ rotation.T + offset


def train_linear_autoencoder(X: torch.Tensor, k: int, seed: int) -> DenseAutoencoder:
    torch.manual_seed(seed)
    model = DenseAutoencoder(X.shape[1], k, hidden_dims=()).to(F64)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = ((model(X) - X) ** 2).sum(1).mean()  # (1/n) sum_i L(x_i, f(g(x_i))), seed 11.1
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    return model


@pytest.mark.parametrize("seed", range(2))
def test_linear_autoencoder_spans_the_pca_subspace(seed):
    """seed 11.2: an autoencoder is a (nonlinear) PCA; the linear one is exactly PCA's subspace."""
    k = 3
    data = spectrum_gap_data(seed, n=350, k=k)
    X_np, held_out = data[:300], data[300:]
    X = torch.from_numpy(X_np)
    model = train_linear_autoencoder(X, k, seed)
    decoder_w = model.decoder[0].weight.detach().numpy()  # (d, k): reconstructions lie in its span + bias
    pca = sklearn.decomposition.PCA(k).fit(X_np)
    angles = scipy.linalg.subspace_angles(decoder_w, pca.components_.T)
    assert angles.max() < 1e-4, f"principal angles {angles}"
    # the encoder reads the same subspace (at the optimum it is the decoder's pseudo-inverse); the loss
    # is flat along its off-subspace directions (they only see the weak variances), hence the looser 1e-2
    assert scipy.linalg.subspace_angles(model.encoder[0].weight.detach().numpy().T, pca.components_.T).max() < 1e-2
    with torch.no_grad():
        ae_error = ((model(X) - X) ** 2).sum(1).mean().item()
    pca_error = ((pca.inverse_transform(pca.transform(X_np)) - X_np) ** 2).sum(1).mean()
    assert ae_error == pytest.approx(pca_error, rel=1e-6)
    # anomaly scores: unseen points off the principal subspace reconstruct worse than unseen inliers (seed 11.7)
    rng = np.random.default_rng(seed + 10)
    inliers = torch.from_numpy(held_out)
    outliers = inliers + torch.from_numpy(rng.standard_normal((50, 8)) * 2.0)
    scores = reconstruction_error(model, torch.cat([inliers, outliers])).numpy()
    assert sklearn.metrics.roc_auc_score(np.r_[np.zeros(50), np.ones(50)], scores) > 0.95


def test_dense_autoencoder_shapes_and_errors():
    model = DenseAutoencoder(784, 16, hidden_dims=(64, 32), output_activation=nn.Sigmoid())
    x = torch.rand(5, 1, 28, 28)
    assert model.encode(x).shape == (5, 16) and model.decode(torch.zeros(5, 16)).shape == (5, 784)
    out = model(x)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert [type(m) for m in model.encoder] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [32, 64, 784]
    with pytest.raises(ValueError, match="784 features"):
        model(torch.rand(5, 100))
    with pytest.raises(ValueError, match="codes"):
        model.decode(torch.zeros(5, 15))


# --------------------------------------------------------------------------------------------
# convolutional autoencoder
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [
        ((4, 1, 28, 28), {}),
        ((3, 28, 28), {}),
        ((2, 1, 64, 64), {"image_size": 64, "widths": (8, 16, 16)}),
        ((2, 3, 32, 32), {"image_size": 32, "in_channels": 3}),
    ],
)
def test_conv_autoencoder_shapes(shape, kwargs):
    model = ConvAutoencoder(10, **kwargs)
    x = torch.rand(shape)
    assert model.encode(x).shape == (shape[0], 10)
    out = model(x)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1


def test_conv_autoencoder_fits_a_few_images():
    """The decoder really inverts the encoder's resolution: 8 digits-like images are fitted in 60 steps."""
    torch.manual_seed(0)
    x = (torch.rand(8, 1, 28, 28) > 0.8).float()
    model = ConvAutoencoder(8, widths=(8, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy(model(x), x)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.6 * first


def test_conv_autoencoder_errors():
    with pytest.raises(ValueError, match="multiple"):
        ConvAutoencoder(4, image_size=30)
    with pytest.raises(ValueError, match="expected images"):
        ConvAutoencoder(4)(torch.rand(2, 1, 32, 32))


# --------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------
N_NOISE = 200_000


def clean(seed: int) -> torch.Tensor:
    """Values in (0.1, 0.9): never equal to the 0 / 1 the masking and salt-and-pepper noises write."""
    return 0.1 + 0.8 * torch.rand(N_NOISE, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("level", [0.05, 0.3, 1.0])
def test_gaussian_noise_has_the_requested_standard_deviation(level):
    """seed 11.5: denoising autoencoders corrupt the input."""
    x = clean(1)
    noise = add_noise(x, "gaussian", level, torch.Generator().manual_seed(2)) - x
    se = level / math.sqrt(N_NOISE)
    assert abs(noise.mean().item()) < 6 * se
    assert abs(noise.std().item() - level) < 6 * level / math.sqrt(2 * N_NOISE)
    assert abs(((noise / level) ** 4).mean().item() - 3) < 0.1  # Gaussian kurtosis


@pytest.mark.parametrize("level", [0.0, 0.1, 0.5, 1.0])
def test_masking_noise_zeroes_the_requested_fraction(level):
    x = clean(3)
    noisy = add_noise(x, "masking", level, torch.Generator().manual_seed(4))
    hit = noisy != x
    assert torch.equal(noisy[hit], torch.zeros(int(hit.sum()), dtype=F64))
    assert abs(hit.double().mean().item() - level) <= 6 * math.sqrt(level * (1 - level) / N_NOISE)


@pytest.mark.parametrize("level", [0.0, 0.2, 0.7, 1.0])
def test_salt_and_pepper_noise_writes_low_and_high_equally_often(level):
    x = clean(5)
    noisy = add_noise(x, "salt_pepper", level, torch.Generator().manual_seed(6), low=0.0, high=1.0)
    hit = noisy != x
    assert set(noisy[hit].unique().tolist()) <= {0.0, 1.0}
    assert abs(hit.double().mean().item() - level) <= 6 * math.sqrt(level * (1 - level) / N_NOISE)
    if level > 0:
        salt = (noisy[hit] == 1.0).double().mean().item()
        assert abs(salt - 0.5) < 6 * math.sqrt(0.25 / hit.sum().item())


def test_add_noise_is_reproducible_leaves_x_alone_and_checks_arguments():
    x = torch.rand(3, 28, 28)
    before = x.clone()
    for kind in ("gaussian", "masking", "salt_pepper"):
        a = add_noise(x, kind, 0.3, torch.Generator().manual_seed(7))
        b = add_noise(x, kind, 0.3, torch.Generator().manual_seed(7))
        assert torch.equal(a, b) and a.shape == x.shape and a.dtype == x.dtype and not torch.equal(a, x)
    assert torch.equal(x, before)
    with pytest.raises(ValueError, match="kind"):
        add_noise(x, "speckle", 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        add_noise(x, "masking", 1.5)
    with pytest.raises(ValueError, match=">= 0"):
        add_noise(x, "gaussian", -0.1)


# --------------------------------------------------------------------------------------------
# perceptual loss
# --------------------------------------------------------------------------------------------
def feature_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),  # 0, 1: early layer (texture, "style")
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2), nn.ReLU()),  # 2.0, 2.1
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 10),  # 3, 4: deep layer (content)
    ).to(F64)


def test_perceptual_loss_equals_the_mse_of_hand_computed_feature_maps():
    """seed 11.4: distances between the feature maps of a (trained) network at early and deep layers."""
    net = feature_net()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 14, 14, generator=g, dtype=F64, requires_grad=True)
    y = torch.rand(3, 1, 14, 14, generator=g, dtype=F64)
    weights = [0.5, 2.0, 1.5]
    ours = perceptual_loss(net, ["4", "1", "2.1"], x, y, weights=weights)  # not in execution order
    ours.backward()
    grad = x.grad.clone()
    x.grad = None

    def upto(i, inp):
        return net[: i + 1](inp)

    expected = (
        0.5 * ((upto(4, x) - upto(4, y)) ** 2).mean()
        + 2.0 * ((upto(1, x) - upto(1, y)) ** 2).mean()
        + 1.5 * ((upto(2, x) - upto(2, y)) ** 2).mean()
    )
    expected.backward()
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, x.grad, rtol=1e-10, atol=1e-14)
    # modules instead of names; the hooks are gone afterwards
    same = perceptual_loss(net, [net[4], net[1], net[2][1]], x, y, weights=weights)
    torch.testing.assert_close(same, expected)
    assert all(not m._forward_hooks for m in net.modules())
    assert perceptual_loss(net, ["1"], y, y).item() == 0.0


def test_perceptual_loss_errors_remove_the_hooks():
    net = feature_net()
    x = torch.rand(2, 1, 14, 14, dtype=F64)
    with pytest.raises(ValueError, match="no submodule 'conv9'"):
        perceptual_loss(net, ["conv9"], x, x)
    with pytest.raises(ValueError, match="2 weights for 1 layers"):
        perceptual_loss(net, ["1"], x, x, weights=[1, 2])
    with pytest.raises(RuntimeError):
        perceptual_loss(net, ["1"], torch.rand(2, 1, 20, 20, dtype=F64), torch.rand(2, 1, 20, 20, dtype=F64))
    assert all(not m._forward_hooks for m in net.modules())


# --------------------------------------------------------------------------------------------
# psnr, interpolation, reconstruction error
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_psnr_matches_the_formula(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 3, 8, 8, generator=g, dtype=F64)
    y = (x + 0.05 * (seed + 1) * torch.randn(x.shape, generator=g, dtype=F64)).clamp(0, 1)
    mse = ((x.numpy() - y.numpy()) ** 2).reshape(4, -1).mean(1)
    np.testing.assert_allclose(psnr(x, y, reduction="none").numpy(), 10 * np.log10(1 / mse), rtol=1e-12)
    assert psnr(x, y).item() == pytest.approx(np.mean(10 * np.log10(1 / mse)))
    np.testing.assert_allclose(
        psnr(255 * x, 255 * y, data_range=255, reduction="none").numpy(), 10 * np.log10(1 / mse), rtol=1e-12
    )


def test_psnr_reference_values():
    x = torch.zeros(1, 100)
    assert psnr(x, x + 0.1).item() == pytest.approx(20.0)  # MSE 0.01 -> 20 dB
    assert psnr(x, x + 0.05).item() - psnr(x, x + 0.1).item() == pytest.approx(20 * math.log10(2))  # ~6 dB
    assert psnr(x, x).item() == math.inf
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.zeros(1, 99))


def test_interpolate_latents_linear():
    """seed 11.6: morphing by averaging two codes."""
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 5, generator=g, dtype=F64), torch.randn(2, 5, generator=g, dtype=F64)
    path = interpolate_latents(z0, z1, 5)
    assert path.shape == (5, 2, 5)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path[2], (z0 + z1) / 2)
    torch.testing.assert_close(path[1:] - path[:-1], ((z1 - z0) / 4).expand(4, 2, 5))
    with pytest.raises(ValueError, match="steps"):
        interpolate_latents(z0, z1, 1)


def test_interpolate_latents_spherical():
    g = torch.Generator().manual_seed(1)
    z0 = nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=F64), dim=1)
    z1 = nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=F64), dim=1)
    path = interpolate_latents(z0, 2 * z1, 6, spherical=True)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], 2 * z1)
    torch.testing.assert_close(path.norm(dim=-1), torch.linspace(1, 2, 6, dtype=F64)[:, None].expand(6, 3))
    angles = torch.arccos((nn.functional.normalize(path, dim=-1) * z0).sum(-1).clamp(-1, 1))  # (6, 3)
    torch.testing.assert_close(angles, angles[-1] * torch.linspace(0, 1, 6, dtype=F64)[:, None])
    # parallel codes fall back to the straight line
    torch.testing.assert_close(interpolate_latents(z0, 3 * z0, 3, spherical=True)[1], 2 * z0)


def test_reconstruction_error_per_example_batched_and_mode_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.Dropout(0.5), nn.Unflatten(1, (1, 4, 4)))
    x = torch.rand(10, 1, 4, 4)
    model.train()
    scores = reconstruction_error(model, x, batch_size=3)
    assert model.training
    with torch.no_grad():
        model.eval()
        expected = ((model(x) - x) ** 2).reshape(10, -1).mean(1)
    torch.testing.assert_close(scores, expected)
    torch.testing.assert_close(reconstruction_error(model, x), expected)
    with pytest.raises(ValueError, match="does not match"):
        reconstruction_error(nn.Flatten(), x)


@pytest.mark.parametrize("seed", range(4))
def test_relative_reconstruction_error_divides_by_each_inputs_energy(seed):
    gen = torch.Generator().manual_seed(seed)
    n, shape = int(torch.randint(2, 40, (1,), generator=gen)), tuple(torch.randint(1, 7, (3,), generator=gen).tolist())
    d = int(np.prod(shape))
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, d), nn.Unflatten(1, shape))
    x = torch.rand((n, *shape), generator=gen) * torch.rand((n,) + (1,) * len(shape), generator=gen)
    with torch.no_grad():
        out = model(x).numpy().reshape(n, -1)
    flat = x.numpy().reshape(n, -1)
    expected = np.array([np.sum((o - v) ** 2) / np.sum(v**2) for o, v in zip(out, flat)])
    got = reconstruction_error(model, x, relative=True, batch_size=int(torch.randint(1, n + 1, (1,), generator=gen)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    # the plain score times d / energy is the relative one
    plain = reconstruction_error(model, x).numpy()
    np.testing.assert_allclose(plain * d / (flat**2).sum(1), expected, rtol=1e-5)
    x[n // 2] = 0
    with pytest.raises(ValueError, match=rf"energy.*\[{n // 2}\].*relative=False"):
        reconstruction_error(model, x, relative=True)
