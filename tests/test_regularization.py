"""course_lib.regularization: dropout, batch norm, initialisers and augmentations.

Oracles: torch.nn.functional.batch_norm + autograd (float64), nn.BatchNorm1d/2d, gradcheck,
torch.nn.init (same RNG calls), the sampling distributions of the mean and variance, scipy's
Gaussian filter, torch.rot90 / flips, exact pixel bookkeeping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats

from course_lib import regularization as R

# ----------------------------------------------------------------------------------------------
# dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_preserves_the_expectation(p, inverted):
    """E[train output] equals the test-time output, checked element by element.

    Derivation of the tolerance. For one element x and keep probability q = 1 - p, the training
    output is Y = c * m * x with m ~ Bernoulli(q) and c = 1/q (inverted) or c = 1 (classic), so
    E[Y] = c q x (= x, resp. q x: exactly the test-time output) and Var[Y] = c^2 x^2 q (1 - q).
    The mean of n independent draws has standard deviation s = c |x| sqrt(q (1 - q) / n), and by
    the CLT z = (mean - E[Y]) / s is close to N(0, 1) (n q (1 - q) >= 360 here). With M elements a
    union bound gives P(max |z| > k) <= M * 2 * Phi(-k); for M = 600 and k = 5.5 that is 2.3e-5,
    so |mean - E[Y]| <= 5.5 s is a tolerance that a correct implementation passes (the seed is
    fixed anyway) and that a wrong scaling violates by hundreds of standard deviations.
    """
    torch.manual_seed(0)
    n = 4000
    x = torch.randn(20, 30, dtype=torch.float64) + 0.5
    draws = torch.stack([R.dropout(x, p, training=True, inverted=inverted) for _ in range(n)])
    q = 1.0 - p
    c = 1.0 / q if inverted else 1.0
    expected = R.dropout(x, p, training=False, inverted=inverted)
    torch.testing.assert_close(expected, x if inverted else q * x)
    sd = c * x.abs() * math.sqrt(q * (1 - q) / n)
    z = (draws.mean(0) - expected) / sd
    k = 5.5
    assert 600 * 2 * stats.norm.sf(k) < 1e-4
    assert z.abs().max() < k, f"max |z| = {z.abs().max():.2f}"
    # the values are exactly 0 or c * x, and the dropped fraction is Binomial(n M, p)
    zero = draws == 0
    assert torch.all(zero | torch.isclose(draws, c * x.expand_as(draws), rtol=1e-12, atol=0))
    frac, total = zero.double().mean().item(), zero.numel()
    assert abs(frac - p) < 5.5 * math.sqrt(p * (1 - p) / total)


def test_dropout_edge_cases_and_errors():
    x = torch.randn(3, 4)
    assert R.dropout(x, 0.5, training=False) is x  # inverted: test time is the identity
    torch.testing.assert_close(R.dropout(x, 0.0, training=True), x)
    torch.testing.assert_close(R.dropout(x, 1.0, training=True), torch.zeros_like(x))
    torch.testing.assert_close(R.dropout(x, 1.0, training=False, inverted=False), torch.zeros_like(x))
    one = R.dropout(torch.ones(1), 0.3, training=True)
    assert one.shape == (1,) and one.item() in (0.0, pytest.approx(1 / 0.7))
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="probability"):
            R.dropout(x, bad, training=True)
    with pytest.raises(TypeError):
        R.dropout(np.ones(3), 0.5, training=True)


def test_dropout_module_follows_train_and_eval():
    torch.manual_seed(1)
    layer = R.Dropout(0.5)
    x = torch.ones(1000)
    out = layer(x)
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    layer.eval()
    assert torch.equal(layer(x), x)
    classic = R.Dropout(0.25, inverted=False).eval()
    torch.testing.assert_close(classic(x), 0.75 * x)


# ----------------------------------------------------------------------------------------------
# batch norm


def _bn_case(rng: np.random.Generator, shape: tuple[int, ...]):
    C = shape[1]
    x = torch.from_numpy(rng.normal(size=shape) * rng.uniform(0.5, 3) + rng.normal()).requires_grad_()
    gamma = torch.from_numpy(rng.normal(size=C)).requires_grad_()
    beta = torch.from_numpy(rng.normal(size=C)).requires_grad_()
    rm, rv = torch.from_numpy(rng.normal(size=C)), torch.from_numpy(rng.uniform(0.5, 2, size=C))
    dout = torch.from_numpy(rng.normal(size=shape))
    return x, gamma, beta, rm, rv, dout


shapes = st.one_of(
    st.tuples(st.integers(2, 9), st.integers(1, 6)),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 6)),
)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1), training=st.booleans(),
       momentum=st.floats(0.0, 1.0), eps=st.sampled_from([1e-5, 1e-3, 0.1]))
def test_batchnorm_matches_torch(shape, seed, training, momentum, eps):
    if training and math.prod(shape) // shape[1] < 2:
        shape = (shape[0] + 1, *shape[1:])  # training needs two values per channel
    rng = np.random.default_rng(seed)
    x, gamma, beta, rm, rv, dout = _bn_case(rng, shape)
    rm_ref, rv_ref = rm.clone(), rv.clone()

    out, cache = R.batchnorm_forward(x.detach(), gamma.detach(), beta.detach(), rm, rv, training, momentum, eps)
    ref = F.batch_norm(x, rm_ref, rv_ref, gamma, beta, training=training, momentum=momentum, eps=eps)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rm, rm_ref, rtol=1e-12, atol=1e-12)  # running stats updated like torch's
    torch.testing.assert_close(rv, rv_ref, rtol=1e-12, atol=1e-12)

    dx, dgamma, dbeta = R.batchnorm_backward(dout, cache)
    ref_dx, ref_dgamma, ref_dbeta = torch.autograd.grad(ref, (x, gamma, beta), dout)
    torch.testing.assert_close(dx, ref_dx, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(dgamma, ref_dgamma, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dbeta, ref_dbeta, rtol=1e-10, atol=1e-10)


def test_batchnorm_batch_of_one_and_errors():
    rng = np.random.default_rng(0)
    x, gamma, beta, rm, rv, dout = _bn_case(rng, (1, 3))
    # evaluation works on a single example (running statistics), training does not
    out, cache = R.batchnorm_forward(x.detach(), gamma.detach(), beta.detach(), rm, rv, training=False)
    ref = F.batch_norm(x, rm, rv, gamma, beta, training=False)
    torch.testing.assert_close(out, ref)
    dx, _, _ = R.batchnorm_backward(dout, cache)
    torch.testing.assert_close(dx, torch.autograd.grad(ref, x, dout)[0])
    with pytest.raises(ValueError, match="more than one value"):
        R.batchnorm_forward(x, gamma, beta, rm, rv, training=True)
    with pytest.raises(ValueError, match="shape"):
        R.batchnorm_forward(torch.randn(4, 3), torch.ones(2), torch.zeros(2), None, None, training=True)
    with pytest.raises(ValueError, match="running"):
        R.batchnorm_forward(torch.randn(4, 3), torch.ones(3), torch.zeros(3), None, None, training=False)
    with pytest.raises(ValueError, match="dout"):
        _, cache = R.batchnorm_forward(torch.randn(4, 3), torch.ones(3), torch.zeros(3), None, None, training=True)
        R.batchnorm_backward(torch.randn(4, 2), cache)


def test_batchnorm_training_without_running_stats():
    x = torch.randn(6, 4, dtype=torch.float64)
    out, _ = R.batchnorm_forward(x, torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64),
                                 None, None, training=True)
    torch.testing.assert_close(out, F.batch_norm(x, None, None, training=True))


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batchnorm_module_matches_nn_batchnorm(shape):
    torch.manual_seed(0)
    ours = R.BatchNorm(shape[1], momentum=0.2).double()
    ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(shape[1], momentum=0.2).double()
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(torch.linspace(0.5, 2, shape[1]))
            m.bias.copy_(torch.linspace(-1, 1, shape[1]))
    for step in range(3):
        x = (torch.randn(shape, dtype=torch.float64) * 2 + step).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        a, b = ours(x), ref(x2)
        torch.testing.assert_close(a, b)
        w = torch.randn(shape, dtype=torch.float64)
        (a * w).sum().backward()
        (b * w).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval()
    ref.eval()
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x))


def test_batchnorm_function_passes_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 2, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(3, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(3, dtype=torch.float64, requires_grad=True)
    for training in (True, False):
        rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        assert torch.autograd.gradcheck(
            lambda x, g, b, rm=rm, rv=rv, training=training: R._BatchNormFunction.apply(x, g, b, rm, rv, training, 0.0, 1e-5),
            (x, gamma, beta),
        )


# ----------------------------------------------------------------------------------------------
# initialisers


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3), (7, 1000), (2000, 3)])
def test_initialisers_variance_matches_formula(shape):
    """Empirical mean and variance against the formula, with tolerances from the sampling distribution.

    For n iid values with variance s2 and excess kurtosis kappa, the sample mean has sd
    sqrt(s2 / n) and the sample variance has sd s2 * sqrt(2 / (n - 1) + kappa / n)
    (kappa = 0 for the normal, -6/5 for the uniform). We accept 5 sds (two-sided probability
    5.7e-7 under the CLT); a wrong fan (fan_out for fan_in) or a missing factor 2 changes the
    variance by far more for these shapes. A KS test checks the distribution's shape.
    """
    torch.manual_seed(0)
    w = torch.empty(shape, dtype=torch.float64)
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    n = w.numel()
    for init, var, kappa, dist in (
        (R.xavier_uniform_, 2.0 / (fan_in + fan_out), -1.2, "uniform"),
        (R.he_normal_, 2.0 / fan_in, 0.0, "normal"),
    ):
        assert init(w) is w
        sample_var = w.var().item()
        assert abs(w.mean().item()) < 5 * math.sqrt(var / n)
        assert abs(sample_var - var) < 5 * var * math.sqrt(2 / (n - 1) + kappa / n), (init.__name__, sample_var, var)
        values = w.flatten().numpy()
        if dist == "uniform":
            a = math.sqrt(3 * var)
            assert np.abs(values).max() <= a
            assert stats.kstest(values, stats.uniform(-a, 2 * a).cdf).pvalue > 1e-4
        else:
            assert stats.kstest(values, stats.norm(0, math.sqrt(var)).cdf).pvalue > 1e-4


def test_initialisers_are_torch_nn_init_with_the_same_generator_calls():
    for shape in [(5, 4), (8, 3, 5, 5)]:
        a, b = torch.empty(shape), torch.empty(shape)
        torch.manual_seed(3)
        R.xavier_uniform_(a)
        torch.manual_seed(3)
        torch.nn.init.xavier_uniform_(b)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)
        torch.manual_seed(4)
        R.he_normal_(a)
        torch.manual_seed(4)
        torch.nn.init.kaiming_normal_(b, mode="fan_in", nonlinearity="relu")
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_initialisers_reject_vectors_and_work_on_parameters():
    with pytest.raises(ValueError, match="at least 2 dims"):
        R.he_normal_(torch.empty(5))
    layer = torch.nn.Linear(10, 4)
    R.xavier_uniform_(layer.weight)
    assert layer.weight.requires_grad and layer.weight.abs().max() <= math.sqrt(6 / 14)


# ----------------------------------------------------------------------------------------------
# augmentations


image_shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))


@settings(max_examples=30, deadline=None)
@given(shape=image_shapes, seed=st.integers(0, 2**31 - 1))
def test_augmentations_keep_shape_and_are_identity_at_zero_strength(shape, seed):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ops = {
        "shift": lambda s: R.shift(x, 0, 0),
        "rotate": lambda s: R.rotate(x, 30.0 * s),
        "stretch": lambda s: R.stretch(x, 1 + 0.3 * s, 1 - 0.2 * s),
        "scale": lambda s: R.scale(x, 1 + 0.5 * s),
        "affine": lambda s: R.affine(x, 10 * s, 1 + 0.1 * s, 1.0, 1.5 * s, -0.5 * s),
        "blur": lambda s: R.blur(x, 1.2 * s),
        "brightness": lambda s: R.brightness(x, 1 + 0.5 * s),
        "glare": lambda s: R.glare(x, 0.8 * s),
    }
    for name, op in ops.items():
        strong = op(1.0)
        assert strong.shape == x.shape and strong.dtype == x.dtype, name
        torch.testing.assert_close(op(0.0), x, rtol=0, atol=1e-12, msg=name)
    assert R.random_augment(x, torch.Generator().manual_seed(0), max_blur=1.0).shape == x.shape


@pytest.mark.parametrize("k", [1, 3, 7])
def test_shift_moves_content_by_k_pixels(k):
    torch.manual_seed(k)
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    right = R.shift(x, k, 0)
    torch.testing.assert_close(right[..., k:], x[..., :-k], rtol=0, atol=0)
    assert (right[..., :k] == 0).all()
    up = R.shift(x, 0, -k, fill=0.5)
    torch.testing.assert_close(up[..., :-k, :], x[..., k:, :], rtol=0, atol=0)
    assert (up[..., -k:, :] == 0.5).all()
    diag = R.shift(x, -k, k)
    torch.testing.assert_close(diag[..., k:, :-k], x[..., :-k, k:], rtol=0, atol=0)
    # the interpolating affine translation agrees with the exact shift at integer offsets
    torch.testing.assert_close(R.affine(x, tx=k, ty=-k), R.shift(x, k, -k), rtol=0, atol=1e-12)
    # a bright pixel moves by exactly k
    dot = torch.zeros(1, 1, 9, 11, dtype=torch.float64)
    dot[0, 0, 4, 2] = 1
    assert R.shift(dot, k, 0)[0, 0].argmax().item() == 4 * 11 + 2 + k


def test_shift_larger_than_the_image_and_bad_args():
    x = torch.rand(1, 1, 4, 4)
    assert (R.shift(x, 4, 0) == 0).all() and (R.shift(x, 0, -10, fill=1.0) == 1).all()
    with pytest.raises(TypeError):
        R.shift(x, 1.5, 0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        R.shift(torch.rand(4, 4), 1, 0)
    with pytest.raises(ValueError, match="shape"):
        R.rotate(x.expand(3, 1, 4, 4), torch.zeros(2))


@pytest.mark.parametrize("size", [(6, 6), (7, 7)])
def test_rotate_by_right_angles_matches_rot90(size):
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(R.rotate(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)), rtol=0, atol=1e-12)
    torch.testing.assert_close(R.rotate(x, -90.0), torch.rot90(x, -1, dims=(-2, -1)), rtol=0, atol=1e-12)
    torch.testing.assert_close(R.rotate(x, 180.0), torch.flip(x, dims=(-2, -1)), rtol=0, atol=1e-12)
    # one angle per image
    both = R.rotate(x, torch.tensor([90.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(both[1], x[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(both[0], torch.rot90(x[0], 1, dims=(-2, -1)), rtol=0, atol=1e-12)


def test_rotation_of_a_non_square_image_is_a_true_rotation():
    """On a 5x9 image, rotating by 90 degrees maps pixel offsets (dx, dy) from the centre to (dy, -dx)."""
    x = torch.zeros(1, 1, 5, 9, dtype=torch.float64)
    x[0, 0, 2, 5] = 1.0  # one pixel right of the centre (row 2, col 4)
    out = R.rotate(x, 90.0)
    assert out[0, 0, 1, 4] == pytest.approx(1.0)  # now one pixel above the centre
    assert out.sum().item() == pytest.approx(1.0)


def test_stretch_of_a_linear_ramp():
    """Bilinear sampling is exact on a linear ramp: stretching by s maps value v at offset d to offset s d."""
    H, W, s = 9, 21, 1.6
    c = (W - 1) / 2
    ramp = torch.arange(W, dtype=torch.float64).expand(1, 1, H, W).clone()
    out = R.stretch(ramp, s, 1.0)
    cols = torch.arange(W, dtype=torch.float64)
    expected = c + (cols - c) / s  # output column j shows input column c + (j - c) / s
    inside = (expected >= 0) & (expected <= W - 1)
    torch.testing.assert_close(out[0, 0, :, inside], expected[inside].expand(H, -1), rtol=0, atol=1e-9)
    torch.testing.assert_close(R.scale(ramp, 2.0), R.stretch(ramp, 2.0, 2.0))


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5, 6.0])
def test_blur_matches_scipy_gaussian_filter(sigma):
    """Same kernel (radius int(3 sigma + 0.5), normalised) and edge rule (replicate = scipy 'nearest'),
    including kernels wider than the 5x7 image."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 5, 7))
    ours = R.blur(torch.from_numpy(x), sigma).numpy()
    ref = ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    const = torch.full((1, 1, 4, 4), 0.3, dtype=torch.float64)
    torch.testing.assert_close(R.blur(const, sigma), const)


def test_brightness_glare_and_tta():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 10, 10, dtype=torch.float64)
    torch.testing.assert_close(R.brightness(x, 0.5), 0.5 * x)
    g = R.glare(x, 1.0, center=(2, 3), radius=2.0)
    assert (g >= x).all() and (g <= 1).all()
    assert g[0, 0, 2, 3] == pytest.approx(1.0)  # full strength saturates the spot's centre
    assert (g - x)[0, 0, 9, 9] < 1e-3  # and fades far away

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(100, 5)).double()
    transforms = [lambda t: t, lambda t: R.shift(t, 1, 0), lambda t: R.rotate(t, 10.0)]
    probs = R.tta_predict(model, x, transforms)
    manual = sum(torch.softmax(model(T(x)), dim=-1) for T in transforms) / 3
    torch.testing.assert_close(probs, manual)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least one"):
        R.tta_predict(model, x, [])


def test_random_augment_is_deterministic_per_generator():
    x = torch.rand(5, 1, 12, 12)
    a = R.random_augment(x, torch.Generator().manual_seed(7))
    b = R.random_augment(x, torch.Generator().manual_seed(7))
    c = R.random_augment(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    tiny = R.random_augment(x, torch.Generator().manual_seed(7), max_angle=0, max_shift=0, scale_range=(1, 1))
    torch.testing.assert_close(tiny, x, rtol=0, atol=1e-6)
