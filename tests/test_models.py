"""Tests of course_lib.models: shapes, parameter counts against the papers, forward passes against
hand-written functional code, and the residual-versus-plain experiment of the ResNet paper.

The full-size networks are built on the meta device (no memory); their counts are compared with the
papers' figures and with closed-form sums over the layer configurations.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.conv import conv_output_size
from course_lib.models import (
    PAPER_PARAMETERS,
    VGG_CONFIGS,
    AlexNetSmall,
    Bottleneck,
    InceptionModule,
    LeNet5,
    ResidualBlock,
    ResNet,
    VGGBlock,
    alexnet,
    count_parameters,
    format_layer_table,
    layer_table,
    make_vgg,
    resnet18,
    resnet34,
    resnet50,
    vgg,
)

F64 = torch.float64


# --------------------------------------------------------------------------------------------
# LeNet-5
# --------------------------------------------------------------------------------------------
def test_lenet5_is_the_classic_configuration():
    """Seeds 6.1-6.4: 32x32 input, conv 6@5x5, pool, conv 16@5x5, pool, three FC layers; ~60k parameters."""
    model = LeNet5()
    rows = layer_table(model, (1, 32, 32))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(6, (5, 5)), (16, (5, 5)), (120, (5, 5))]
    assert [r.output_shape for r in rows if r.kind == "Conv2d"] == [(6, 28, 28), (16, 10, 10), (120, 1, 1)]
    assert [r.output_shape for r in rows if r.kind.endswith("Pool2d")] == [(6, 14, 14), (16, 5, 5)]
    # C5 (a 5x5 convolution on 5x5 maps = a fully connected layer), F6 and the output: three FC layers
    assert [r.parameters for r in rows if r.parameters] == [156, 2416, 48120, 10164, 850]
    assert count_parameters(model) == 61_706
    # the paper's 60,000: partial C3 table (6x3 + 6x4 + 3x4 + 1x6 = 60 input maps of 25 weights, 16 biases),
    # trainable subsampling (2 per map) and a fixed RBF output instead of our C3 and output layer
    c3_paper = 25 * (6 * 3 + 6 * 4 + 3 * 4 + 1 * 6) + 16
    assert count_parameters(model) - 2416 + c3_paper + 2 * 6 + 2 * 16 - 850 == 60_000
    assert round(count_parameters(model), -4) == 1e6 * PAPER_PARAMETERS["LeNet-5"]


@pytest.mark.parametrize("activation, pool", [("tanh", "avg"), ("relu", "max")])
def test_lenet5_forward_and_input_checks(activation, pool):
    torch.manual_seed(0)
    model = LeNet5(activation=activation, pool=pool)
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)
    with pytest.raises(ValueError, match="32x32"):
        model(torch.randn(3, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.randn(3, 3, 32, 32))
    mnist = LeNet5(activation=activation, pool=pool, input_size=28)
    assert mnist(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(mnist) == count_parameters(model)
    with pytest.raises(ValueError, match="activation"):
        LeNet5(activation="sigmoid")


# --------------------------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------------------------
def test_full_alexnet_matches_the_paper():
    """Seeds 6.5, 6.6 (corrected), 6.8: conv1 11x11/4 with 96 filters (48 per GPU), conv2 5x5,
    conv2/4/5 within one GPU's half (groups=2), FC 4096; 60,965,224 ~ 61M parameters."""
    model = alexnet()
    assert all(p.is_meta for p in model.parameters())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.groups) for c in convs] == [
        (96, 11, 4, 1),
        (256, 5, 1, 2),
        (384, 3, 1, 1),
        (384, 3, 1, 2),
        (256, 3, 1, 2),
    ]
    assert [c.out_channels // 2 for c in convs] == [48, 128, 192, 192, 128]  # per GPU
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [4096, 4096, 1000]
    # closed form: sum of (k*k*cin/groups*cout + cout) and (fan_in*fan_out + fan_out)
    expected = sum(
        k * k * cin // g * cout + cout
        for cin, cout, k, g in [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2), (384, 256, 3, 2)]
    )
    expected += sum(i * o + o for i, o in [(9216, 4096), (4096, 4096), (4096, 1000)])
    assert count_parameters(model) == expected == 60_965_224
    assert round(count_parameters(model) / 1e6) == 61
    assert count_parameters(alexnet(two_gpus=False)) == 62_378_344
    # spatial sizes 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 6 from the convolution arithmetic
    sizes = [r.output_shape[1] for r in layer_table(model, (3, 227, 227)) if r.kind in ("Conv2d", "MaxPool2d")]
    s = 227
    expect = []
    for k, st, p in [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)]:
        s = conv_output_size(s, k, st, p)
        expect.append(s)
    assert sizes == expect and expect[-1] == 6


@pytest.mark.parametrize("input_size, in_channels", [(28, 1), (32, 3)])
def test_alexnet_small_has_the_alexnet_pattern(input_size, in_channels):
    """Seed 6.7: ReLU and dropout, five convolutions, three pools, three FC layers."""
    torch.manual_seed(0)
    model = AlexNetSmall(in_channels=in_channels, input_size=input_size, width=0.25)
    kinds = [type(m).__name__ for m in model.modules() if next(m.children(), None) is None]
    assert kinds.count("Conv2d") == 5 and kinds.count("MaxPool2d") == 3 and kinds.count("Linear") == 3
    assert kinds.count("Dropout") == 2 and kinds.count("ReLU") == 7
    out = model(torch.randn(2, in_channels, input_size, input_size))
    assert out.shape == (2, 10)
    # dropout: train mode is random, eval mode deterministic
    x = torch.randn(4, in_channels, input_size, input_size)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    with pytest.raises(ValueError, match=f"{input_size}x{input_size}"):
        model(torch.randn(1, in_channels, input_size + 4, input_size + 4))


# --------------------------------------------------------------------------------------------
# VGG
# --------------------------------------------------------------------------------------------
def _vgg_closed_form(cfg, num_classes=1000, hidden=4096, side=7, c_in=3):
    total, c = 0, c_in
    for item in cfg:
        if item in ("M", "LRN"):
            continue
        out, k = item if isinstance(item, tuple) else (item, 3)
        total += k * k * c * out + out
        c = out
    return (
        total + (c * side * side * hidden + hidden) + (hidden * hidden + hidden) + (hidden * num_classes + num_classes)
    )


@pytest.mark.parametrize("config", list(VGG_CONFIGS))
def test_vgg_configurations_match_the_paper(config):
    """Seeds 6.9 (corrected: six configurations A, A-LRN, B, C, D, E) and 6.10 (3x3 everywhere
    but C's 1x1, channels doubling from 64 and stopping at 512); Table 2's parameter counts."""
    assert len(VGG_CONFIGS) == 6
    model = vgg(config)
    assert all(p.is_meta for p in model.parameters())
    n = count_parameters(model)
    assert n == _vgg_closed_form(VGG_CONFIGS[config])
    assert round(n / 1e6) == PAPER_PARAMETERS[f"VGG-{config}"]
    blocks = list(model.features)
    assert all(isinstance(b, VGGBlock) for b in blocks)
    assert [b.out_ch for b in blocks] == [64, 128, 256, 512, 512]
    kernels = {m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)}
    assert kernels == ({(3, 3), (1, 1)} if config == "C" else {(3, 3)})
    depth = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert depth == {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}[config]
    if config == "D":
        assert n == 138_357_544


def test_make_vgg_small_and_vgg_block():
    torch.manual_seed(0)
    block = VGGBlock(3, 8, 3, batch_norm=True)
    x = torch.randn(2, 3, 10, 14)
    assert block(x).shape == (2, 8, 5, 7)
    assert sum(isinstance(m, nn.Conv2d) for m in block.modules()) == 3
    model = make_vgg([8, 8, "M", 16, 16, "M"], in_channels=1, num_classes=10, input_size=28, hidden=32)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(model) == _vgg_closed_form([8, 8, "M", 16, 16, "M"], 10, 32, 7, 1)
    for bad in ([8, 16, "M"], [8, 8], ["M"], [8, "X", "M"]):
        with pytest.raises(ValueError):
            make_vgg(bad)
    with pytest.raises(ValueError, match="too small"):
        make_vgg("D", input_size=16)
    with pytest.raises(ValueError, match="unknown"):
        vgg("F")


# --------------------------------------------------------------------------------------------
# Inception
# --------------------------------------------------------------------------------------------
def test_inception_module_against_functional_branches():
    """Seed 6.12: 1x1 projections before 3x3/5x5, parallel branches concatenated along channels."""
    torch.manual_seed(0)
    module = InceptionModule(12, 4, 6, 8, 2, 3, 5).double()
    x = torch.randn(2, 12, 9, 7, dtype=F64)
    out = module(x)
    assert out.shape == (2, 4 + 8 + 3 + 5, 9, 7) and module.out_ch == 20
    b1, b3, b5, bp = module.branches

    def c(seq, z, pad):
        conv = seq[0]
        return F.relu(F.conv2d(z, conv.weight, conv.bias, padding=pad))

    y1 = c(b1, x, 0)
    y3 = c(b3[1], c(b3[0], x, 0), 1)
    y5 = c(b5[1], c(b5[0], x, 0), 2)
    yp = c(bp[1], F.max_pool2d(x, 3, 1, 1), 0)
    torch.testing.assert_close(out, torch.cat([y1, y3, y5, yp], 1))


def test_inception_3a_parameters_and_reduction():
    m = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # GoogLeNet's inception (3a)
    assert m.out_ch == 256
    expected = (192 * 64 + 64) + (192 * 96 + 96) + (96 * 128 * 9 + 128) + (192 * 16 + 16) + (16 * 32 * 25 + 32)
    expected += 192 * 32 + 32
    assert count_parameters(m) == expected == 163_696
    rows = layer_table(m, (192, 28, 28))
    assert sum(r.parameters for r in rows) == expected
    assert all(r.output_shape[1:] == (28, 28) for r in rows)
    # without the 1x1 reductions the 5x5 branch alone would cost 192*32*25 weights
    naive_5x5 = 192 * 32 * 25
    assert naive_5x5 > 9 * (192 * 16 + 16 * 32 * 25)
    no_pool = InceptionModule(8, 2, 2, 2, 2, 2, 0)
    assert no_pool(torch.randn(1, 8, 5, 5)).shape == (1, 6, 5, 5)
    with pytest.raises(ValueError):
        InceptionModule(8, 0, 2, 0, 2, 0, 0)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        no_pool(torch.randn(1, 7, 5, 5))


# --------------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "in_ch, out_ch, stride, projection", [(4, 4, 1, False), (4, 8, 1, True), (4, 4, 2, True), (3, 6, 2, True)]
)
def test_residual_block_against_functional_code(in_ch, out_ch, stride, projection):
    """Seed 6.14: output = transformation + input (through a projection where the shape changes)."""
    torch.manual_seed(in_ch * 10 + out_ch + stride)
    block = ResidualBlock(in_ch, out_ch, stride).double()
    block.eval()
    for bn in (block.bn1, block.bn2):  # non-trivial BN statistics
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    assert isinstance(block.shortcut, nn.Sequential) == projection
    assert isinstance(block.shortcut, nn.Identity) == (not projection)
    x = torch.randn(2, in_ch, 9, 8, dtype=F64)

    def bn(m, z):
        return F.batch_norm(z, m.running_mean, m.running_var, m.weight, m.bias, training=False, eps=m.eps)

    h = F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight, stride=stride, padding=1)))
    f = bn(block.bn2, F.conv2d(h, block.conv2.weight, padding=1))
    if projection:
        conv, norm = block.shortcut
        s = bn(norm, F.conv2d(x, conv.weight, stride=stride))
    else:
        s = x
    y = block(x)
    assert y.shape == (2, out_ch, -(-9 // stride), -(-8 // stride))
    torch.testing.assert_close(y, F.relu(f + s))


def test_residual_block_skip_gives_an_identity_gradient_path():
    """Seed 6.14: with the residual branch switched off (last BN scale 0) the block is relu(x) and the
    gradient reaches the input unchanged through the skip connection; the plain block passes nothing."""
    torch.manual_seed(1)
    x = torch.randn(3, 5, 6, 6, dtype=F64, requires_grad=True)
    for skip in (True, False):
        block = ResidualBlock(5, 5, 1, skip=skip).double()
        nn.init.zeros_(block.bn2.weight)
        nn.init.zeros_(block.bn2.bias)
        y = block(x)
        (g,) = torch.autograd.grad(y.sum(), x)
        if skip:
            torch.testing.assert_close(y, F.relu(x))
            torch.testing.assert_close(g, (x > 0).to(F64))
        else:
            assert torch.count_nonzero(y) == 0 and torch.count_nonzero(g) == 0


def test_bottleneck_and_resnet_shapes():
    torch.manual_seed(0)
    b = Bottleneck(16, 4, 2)
    assert b(torch.randn(2, 16, 7, 7)).shape == (2, 16, 4, 4) and isinstance(b.shortcut, nn.Sequential)
    assert isinstance(Bottleneck(16, 4, 1).shortcut, nn.Identity)
    net = ResNet((1, 1, 1), (4, 8, 16), stem="small", in_channels=1, num_classes=10)
    x = torch.randn(3, 1, 28, 28)
    assert net(x).shape == (3, 10) and net.forward_features(x).shape == (3, 16)
    stage_starts = [stage[0] for stage in net.stages]
    assert [s.stride for s in stage_starts] == [1, 2, 2]
    plain = ResNet((1, 1, 1), (4, 8, 16), stem="small", in_channels=1, num_classes=10, skip=False)
    projections = sum(count_parameters(s[0].shortcut) for s in net.stages if isinstance(s[0].shortcut, nn.Sequential))
    assert count_parameters(net) - count_parameters(plain) == projections > 0
    with pytest.raises(ValueError):
        ResNet((1, 1), (4,))
    with pytest.raises(ValueError, match="block"):
        ResNet(block="wide")


@pytest.mark.parametrize(
    "builder, paper_name, exact",
    [(resnet18, "ResNet-18", 11_689_512), (resnet34, "ResNet-34", 21_797_672), (resnet50, "ResNet-50", 25_557_032)],
)
def test_full_resnets_match_the_paper(builder, paper_name, exact):
    model = builder()
    assert all(p.is_meta for p in model.parameters())
    n = count_parameters(model)
    assert n == exact
    assert round(n / 1e6, 1) == PAPER_PARAMETERS[paper_name]
    rows = layer_table(model, (3, 224, 224))
    assert rows[-1].output_shape == (1000,)
    assert sum(r.parameters for r in rows) == n
    assert [r.output_shape for r in rows if r.kind == "AdaptiveAvgPool2d"] == [(model.out_features, 1, 1)]


# --------------------------------------------------------------------------------------------
# the residual claim: 50 blocks, plain versus residual
# --------------------------------------------------------------------------------------------
def _deep(skip: bool, batch_norm: bool, width: int = 4) -> ResNet:
    torch.manual_seed(0)
    return ResNet((50,), (width,), stem="small", in_channels=1, num_classes=4, skip=skip, batch_norm=batch_norm)


def _fixed_batch(n=16, side=4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, side, side, generator=g), torch.randint(0, 4, (n,), generator=g)


def _first_and_last_grad(model, X, y):
    F.cross_entropy(model(X), y).backward()
    return model.stem[0].weight.grad.norm().item(), model.fc.weight.grad.norm().item()


def test_residual_net_keeps_the_gradient_at_the_first_layer():
    """Seeds 6.13-6.14. 50 blocks (101 convolutions, width 8) without normalisation, PyTorch's default
    init, float64: the plain net's gradient at the first layer vanishes (~1e-50 of the last layer's),
    the residual net's does not.

    With batch norm (which the paper used) the plain net's first-layer gradient is *not* small
    (it even explodes); the paper rejects vanishing gradients as the cause of degradation."""
    X, y = _fixed_batch()
    X = X.double()
    plain_first, plain_last = _first_and_last_grad(_deep(False, False, width=8).double(), X, y)
    res_first, res_last = _first_and_last_grad(_deep(True, False, width=8).double(), X, y)
    assert plain_first / plain_last < 1e-8
    assert res_first / res_last > 1e-2
    assert res_first > 1e6 * plain_first
    bn_first, bn_last = _first_and_last_grad(_deep(False, True, width=8).double(), X, y)
    assert bn_first / bn_last > 1.0


def test_residual_net_trains_where_the_plain_net_does_not():
    """Seeds 6.13-6.14: with BN and the same optimiser, 100 Adam steps on one fixed batch: the
    50-block residual net fits it, the plain twin (healthy, even large gradients) stays far behind."""
    X, y = _fixed_batch()
    losses = {}
    for skip in (False, True):
        model = _deep(skip, True)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        history = []
        for _ in range(100):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            opt.step()
            history.append(loss.item())
        losses[skip] = sum(history[-10:]) / 10
    assert losses[True] < 0.05
    assert losses[False] > 0.5
    assert losses[True] < 0.1 * losses[False]


# --------------------------------------------------------------------------------------------
# count_parameters and layer_table
# --------------------------------------------------------------------------------------------
def test_count_parameters_counts_shared_tensors_once_and_trainable_only():
    lin = nn.Linear(3, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(4, 2))
    assert count_parameters(model) == 16 + 10
    model[3].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 16 + 2
    rows = layer_table(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), model[0]).double(), (3,))
    assert [r.parameters for r in rows] == [12, 0, 16] and sum(r.parameters for r in rows) == 28


def test_layer_table_rows_add_up_and_leave_the_model_untouched():
    torch.manual_seed(0)
    model = ResNet((1, 1), (4, 8), stem="small", in_channels=1, num_classes=3)
    model.train()
    rows = layer_table(model, (1, 12, 12))
    assert sum(r.parameters for r in rows) == count_parameters(model)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert rows[0].name == "stem.0" and rows[0].output_shape == (4, 12, 12)
    assert rows[-1].name == "fc" and rows[-1].output_shape == (3,)
    text = format_layer_table(rows)
    assert text.splitlines()[0].split() == ["layer", "type", "output", "shape", "parameters"]
    assert f"{count_parameters(model):,}" in text.splitlines()[-1]
    with pytest.raises(ValueError, match="input_shape"):
        layer_table(model, (1, 0, 12))
