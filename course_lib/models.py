"""Classic CNN architectures, from LeNet-5 to ResNet (lecture 06).

Every network here is an ordinary ``torch.nn.Module`` taking images ``x: (N, C, H, W)`` and
returning class scores ``(N, num_classes)`` (unnormalised logits).

* :class:`LeNet5` — LeCun et al. (1998): 32x32 input, conv 6@5x5, pool, conv 16@5x5, pool, three
  fully connected layers (120, 84, 10), trained end to end; 61,706 parameters (the paper: 60,000).
* :class:`AlexNetSmall` — AlexNet's pattern (five convolutions, three max-pools, three fully
  connected layers, ReLU, dropout) sized for 28x28 / 32x32 images; :func:`alexnet` is the
  full-size network of Krizhevsky et al. (2012), with the two-GPU split as grouped convolutions.
* :class:`VGGBlock` and :func:`make_vgg` — Simonyan & Zisserman (2014): stacks of 3x3
  convolutions between 2x2 max-pools, channels doubling up to 512; :data:`VGG_CONFIGS` holds the
  paper's six configurations A, A-LRN, B, C, D (VGG-16), E (VGG-19).
* :class:`InceptionModule` — Szegedy et al. (2014): 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1
  branches computed in parallel and concatenated along channels.
* :class:`ResidualBlock`, :class:`Bottleneck` and :class:`ResNet` — He et al. (2015):
  ``y = relu(F(x) + shortcut(x))``, with a 1x1 projection shortcut where the shape changes;
  :func:`resnet18`, :func:`resnet34`, :func:`resnet50` build the ImageNet networks.

The full-size builders take ``device="meta"`` by default: the modules then have parameters with
shapes but no storage, so their parameter counts (and :func:`layer_table`, whose forward pass runs
on meta tensors) cost no memory. Pass ``device="cpu"`` to get a real, randomly initialised network.

:func:`count_parameters` and :func:`layer_table` (with :func:`format_layer_table`) describe any
model: per layer, its output shape and its number of parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "AlexNetSmall",
    "Bottleneck",
    "InceptionModule",
    "LayerRow",
    "LeNet5",
    "PAPER_PARAMETERS",
    "ResNet",
    "ResidualBlock",
    "VGGBlock",
    "VGG_CONFIGS",
    "alexnet",
    "count_parameters",
    "format_layer_table",
    "layer_table",
    "make_vgg",
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg",
]

Device = torch.device | str | None


def _check_images(x: torch.Tensor, channels: int, name: str, sizes: Sequence[int] | None = None) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects images (N, {channels}, H, W); got shape {tuple(x.shape)}")
    if sizes is not None and tuple(x.shape[2:]) not in {(s, s) for s in sizes}:
        allowed = " or ".join(f"{s}x{s}" for s in sizes)
        raise ValueError(f"{name} was built for {allowed} inputs; got {x.shape[2]}x{x.shape[3]}")


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return value


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


# --------------------------------------------------------------------------------------------
# LeNet-5
# --------------------------------------------------------------------------------------------
class LeNet5(nn.Module):
    """LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), the classic 32x32 configuration.

    ``x: (N, in_channels, 32, 32) -> (N, num_classes)``::

        C1 conv 6@5x5      -> 6x28x28     156 parameters
        S2 pool 2x2        -> 6x14x14
        C3 conv 16@5x5     -> 16x10x10    2,416
        S4 pool 2x2        -> 16x5x5
        C5 conv 120@5x5    -> 120x1x1     48,120   (a fully connected layer on the 5x5 maps)
        F6 linear 84       -> 84          10,164
        output linear 10   -> 10          850
                                          61,706 in all (in_channels=1, num_classes=10)

    The paper reports 60,000 trainable parameters. The difference is the paper's details, not the
    layer sizes: its C3 connects each of the 16 maps to only some of the 6 maps of S2 (1,516
    parameters instead of 2,416), its subsampling layers S2/S4 have a trainable coefficient and
    bias per map (12 + 32), and its output layer is a fixed-weight RBF layer; 156 + 12 + 1,516 +
    32 + 48,120 + 10,164 = 60,000 exactly.

    ``activation``: ``"tanh"`` (the paper's squashing function) or ``"relu"``; ``pool``: ``"avg"``
    (closest to the paper's subsampling) or ``"max"``. ``input_size=28`` pads the first
    convolution by 2, which is how the paper fed 28x28 MNIST digits to a 32x32 network; the
    parameter count does not change.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        activation: str = "tanh",
        pool: str = "avg",
        input_size: int = 32,
    ) -> None:
        super().__init__()
        _positive_int(num_classes, "num_classes")
        _positive_int(in_channels, "in_channels")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max'; got {pool!r}")
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5 takes 32x32 inputs (or 28x28, padded by 2); got input_size={input_size!r}")
        self.in_channels, self.input_size = in_channels, input_size
        act = _ACTIVATIONS[activation]
        pool_layer = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0),  # C1
            act(),
            pool_layer(2),  # S2
            nn.Conv2d(6, 16, 5),  # C3
            act(),
            pool_layer(2),  # S4
            nn.Conv2d(16, 120, 5),  # C5
            act(),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, "LeNet5", [self.input_size])
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------------------------
class AlexNetSmall(nn.Module):
    """AlexNet's layer pattern sized for small images (28x28 MNIST, 32x32 CIFAR).

    ``x: (N, in_channels, input_size, input_size) -> (N, num_classes)``. Like AlexNet: five
    convolutions with ReLU, max-pooling after the 1st, 2nd and 5th, then dropout -> linear ->
    ReLU -> dropout -> linear -> ReLU -> linear. Widths are one AlexNet GPU-half's times ``width``
    (``width=1``: 48, 128, 192, 192, 128 channels and 512 hidden units); the first convolution
    is 5x5 (not 11x11 stride 4, which would leave nothing of a 28x28 image).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        input_size: int = 28,
        width: float = 1.0,
        hidden: int | None = None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        _positive_int(num_classes, "num_classes")
        _positive_int(in_channels, "in_channels")
        _positive_int(input_size, "input_size", 8)
        if not width > 0:
            raise ValueError(f"width must be positive; got {width!r}")
        c = [max(1, round(v * width)) for v in (48, 128, 192, 192, 128)]
        hidden = hidden if hidden is not None else max(1, round(512 * width))
        self.in_channels, self.input_size = in_channels, input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c[0], c[1], 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c[1], c[2], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = input_size // 2 // 2 // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c[4] * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, "AlexNetSmall", [self.input_size])
        return self.classifier(self.features(x))


class _AlexNet(nn.Module):
    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, 3, "AlexNet", [227])
        return self.classifier(self.features(x))


def alexnet(num_classes: int = 1000, *, two_gpus: bool = True, device: Device = "meta") -> nn.Module:
    """The full-size AlexNet (Krizhevsky, Sutskever, Hinton 2012), ``x: (N, 3, 227, 227)``.

    conv 96@11x11 stride 4 -> ReLU -> LRN -> max-pool 3/2 -> conv 256@5x5 -> ReLU -> LRN ->
    max-pool 3/2 -> conv 384@3x3 -> conv 384@3x3 -> conv 256@3x3 -> max-pool 3/2 (6x6x256) ->
    dropout -> FC 4096 -> dropout -> FC 4096 -> FC ``num_classes``.

    ``two_gpus=True`` reproduces the paper's split into two identical halves (48, 128, 192, 192,
    128 filters per GPU): conv2, conv4 and conv5 see only their own GPU's maps, which is a
    convolution with ``groups=2``; conv3 and the FC layers connect across the GPUs. That gives
    60,965,224 parameters (the paper: "60 million"); ``two_gpus=False`` (every layer fully
    connected, as single-GPU reimplementations do) gives 62,378,344.
    """
    g = 2 if two_gpus else 1
    with torch.device(device if device is not None else "cpu"):
        features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4),
            nn.ReLU(),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(96, 256, 5, padding=2, groups=g),
            nn.ReLU(),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(256, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=g),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=g),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
        )
        classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )
        return _AlexNet(features, classifier)


# --------------------------------------------------------------------------------------------
# VGG
# --------------------------------------------------------------------------------------------
#: The six configurations of Simonyan & Zisserman (2014), Table 1. An int is a 3x3 convolution
#: with that many channels, ``(c, 1)`` a 1x1 convolution, ``"LRN"`` local response normalisation,
#: ``"M"`` a 2x2 max-pool with stride 2. D is VGG-16, E is VGG-19.
VGG_CONFIGS: dict[str, list[Any]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

#: Parameter counts as the papers state them (millions), for the tests and the lecture's table.
PAPER_PARAMETERS: dict[str, float] = {
    "LeNet-5": 0.06,
    "AlexNet": 60.0,  # "60 million parameters"; the exact count of the two-GPU net is 60.97M
    "VGG-A": 133.0,
    "VGG-A-LRN": 133.0,
    "VGG-B": 133.0,
    "VGG-C": 134.0,
    "VGG-D": 138.0,
    "VGG-E": 144.0,
    "ResNet-18": 11.7,
    "ResNet-34": 21.8,
    "ResNet-50": 25.6,
}


class VGGBlock(nn.Module):
    """``num_convs`` convolutions (each followed by ReLU) at one width, then a 2x2 max-pool.

    ``x: (N, in_ch, H, W) -> (N, out_ch, H // 2, W // 2)`` (``pool=False``: ``(N, out_ch, H, W)``).
    Every convolution is 3x3 with padding 1 (the spatial size is kept) unless ``kernel_sizes``
    says otherwise (VGG-C's last convolution of blocks 3-5 is 1x1); ``batch_norm`` inserts a
    BatchNorm2d after each convolution (not in the paper, which trained the deep configurations
    by initialising them from the shallower ones); ``lrn`` puts a LocalResponseNorm after the
    first ReLU (configuration A-LRN).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        num_convs: int = 2,
        *,
        kernel_sizes: Sequence[int] | None = None,
        batch_norm: bool = False,
        lrn: bool = False,
        pool: bool = True,
    ) -> None:
        super().__init__()
        _positive_int(in_ch, "in_ch")
        _positive_int(out_ch, "out_ch")
        _positive_int(num_convs, "num_convs")
        kernel_sizes = list(kernel_sizes) if kernel_sizes is not None else [3] * num_convs
        if len(kernel_sizes) != num_convs or any(k not in (1, 3, 5, 7) for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must give one odd size (1, 3, 5, 7) per convolution; got {kernel_sizes!r}")
        self.in_ch, self.out_ch = in_ch, out_ch
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU())
            if lrn and i == 0:
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        if pool:
            layers.append(nn.MaxPool2d(2, stride=2))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_ch, "VGGBlock")
        return self.layers(x)


def _vgg_blocks(cfg: Sequence[Any]) -> list[tuple[int, list[int], bool]]:
    """Split a flat configuration at its "M"s: [(width, kernel sizes, lrn), ...]."""
    if isinstance(cfg, str):
        if cfg not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG configuration {cfg!r}; known: {sorted(VGG_CONFIGS)}")
        cfg = VGG_CONFIGS[cfg]
    blocks: list[tuple[int, list[int], bool]] = []
    width, kernels, lrn = None, [], False
    for item in cfg:
        if item == "M":
            if not kernels:
                raise ValueError("a VGG configuration needs at least one convolution before each 'M'")
            blocks.append((width, kernels, lrn))
            width, kernels, lrn = None, [], False
            continue
        if item == "LRN":
            if len(kernels) != 1:
                raise ValueError("'LRN' is supported only right after the first convolution of a block")
            lrn = True
            continue
        if isinstance(item, tuple) and len(item) == 2:
            channels, k = item
        elif isinstance(item, int) and not isinstance(item, bool):
            channels, k = item, 3
        else:
            raise ValueError(f"VGG configuration items are ints, (channels, kernel) pairs, 'LRN' or 'M'; got {item!r}")
        if width is not None and channels != width:
            raise ValueError(f"all convolutions between two pools must have the same width; got {width} and {channels}")
        width = _positive_int(channels, "channels")
        kernels.append(k)
    if kernels:
        raise ValueError("a VGG configuration must end with 'M'")
    if not blocks:
        raise ValueError("a VGG configuration needs at least one block")
    return blocks


class _VGG(nn.Module):
    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, in_channels: int, input_size: int) -> None:
        super().__init__()
        self.features, self.classifier = features, classifier
        self.in_channels, self.input_size = in_channels, input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, "VGG", [self.input_size])
        return self.classifier(self.features(x))


def make_vgg(
    cfg: Sequence[Any] | str,
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    input_size: int = 224,
    hidden: int = 4096,
    dropout: float = 0.5,
    batch_norm: bool = False,
    device: Device = None,
) -> nn.Module:
    """A VGG network from a configuration: :class:`VGGBlock` s, then FC-hidden, FC-hidden, FC-classes.

    ``cfg``: a key of :data:`VGG_CONFIGS` (``"A"`` ... ``"E"``) or a flat list in the same
    notation, e.g. ``[32, 32, "M", 64, 64, "M"]`` for MNIST. ``x: (N, in_channels, input_size,
    input_size) -> (N, num_classes)``; the classifier sees ``width * (input_size / 2^blocks)^2``
    features, with ReLU and dropout after each hidden layer as in the paper. The defaults are
    the ImageNet network (224x224, 4096 hidden units): ``make_vgg("D")`` is VGG-16 with
    138,357,544 parameters.
    """
    blocks = _vgg_blocks(cfg)
    _positive_int(in_channels, "in_channels")
    _positive_int(num_classes, "num_classes")
    _positive_int(hidden, "hidden")
    side = input_size
    for _ in blocks:
        if side < 2:
            raise ValueError(f"input_size={input_size} is too small for {len(blocks)} 2x2 max-pools")
        side //= 2
    with torch.device(device if device is not None else "cpu"):
        layers: list[nn.Module] = []
        c = in_channels
        for width, kernels, lrn in blocks:
            layers.append(VGGBlock(c, width, len(kernels), kernel_sizes=kernels, batch_norm=batch_norm, lrn=lrn))
            c = width
        classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        return _VGG(nn.Sequential(*layers), classifier, in_channels, input_size)


def vgg(config: str = "D", num_classes: int = 1000, *, device: Device = "meta") -> nn.Module:
    """The full-size ImageNet VGG of configuration ``"A"``, ``"A-LRN"``, ``"B"``, ``"C"``, ``"D"`` or ``"E"``."""
    if config not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG configuration {config!r}; known: {sorted(VGG_CONFIGS)}")
    return make_vgg(config, num_classes=num_classes, device=device)


# --------------------------------------------------------------------------------------------
# Inception
# --------------------------------------------------------------------------------------------
class InceptionModule(nn.Module):
    """GoogLeNet's Inception module (Szegedy et al. 2014, Figure 2b), the "naive" module plus 1x1 projections.

    ``x: (N, in_ch, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``, the concatenation
    along channels of four parallel branches (each convolution followed by ReLU)::

        1x1 conv ch1x1
        1x1 conv ch3x3red -> 3x3 conv ch3x3
        1x1 conv ch5x5red -> 5x5 conv ch5x5
        3x3 max-pool stride 1 -> 1x1 conv pool_proj

    The 1x1 "reduce" convolutions cut the channels before the expensive 3x3 and 5x5 filters
    (inception 3a: 192 -> 64, 96/128, 16/32, 32 gives 256 channels with 163,696 parameters;
    5x5 filters on all 192 channels would need 192*32*25 = 153,600 weights for that branch alone
    instead of 192*16 + 16*32*25 = 15,872).
    """

    def __init__(
        self, in_ch: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
    ) -> None:
        super().__init__()
        for name, value in (("in_ch", in_ch), ("ch3x3red", ch3x3red), ("ch5x5red", ch5x5red)):
            _positive_int(value, name)
        for name, value in (("ch1x1", ch1x1), ("ch3x3", ch3x3), ("ch5x5", ch5x5), ("pool_proj", pool_proj)):
            _positive_int(value, name, 0)
        if ch1x1 + ch3x3 + ch5x5 + pool_proj == 0:
            raise ValueError("an Inception module needs at least one output channel")
        self.in_ch = in_ch
        self.out_ch = ch1x1 + ch3x3 + ch5x5 + pool_proj

        def conv(i: int, o: int, k: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU())

        branches = []
        if ch1x1:
            branches.append(conv(in_ch, ch1x1, 1))
        if ch3x3:
            branches.append(nn.Sequential(conv(in_ch, ch3x3red, 1), conv(ch3x3red, ch3x3, 3)))
        if ch5x5:
            branches.append(nn.Sequential(conv(in_ch, ch5x5red, 1), conv(ch5x5red, ch5x5, 5)))
        if pool_proj:
            branches.append(nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(in_ch, pool_proj, 1)))
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_ch, "InceptionModule")
        return torch.cat([branch(x) for branch in self.branches], dim=1)


# --------------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------------
def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class ResidualBlock(nn.Module):
    """The basic residual block of ResNet-18/34 (He et al. 2015, Figure 2).

    ``x: (N, in_ch, H, W) -> (N, out_ch, ceil(H / stride), ceil(W / stride))``::

        F(x) = BN(conv3x3(ReLU(BN(conv3x3_stride(x)))))
        y    = ReLU(F(x) + shortcut(x))

    The shortcut is the identity when the shapes agree and a 1x1 convolution with ``stride``
    followed by BN (the paper's projection shortcut, option B) when ``in_ch != out_ch`` or
    ``stride != 1``. ``skip=False`` drops the addition (``y = ReLU(F(x))``): the "plain" block the
    paper compares against. ``batch_norm=False`` replaces every BN by the identity (and gives the
    convolutions biases).
    """

    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, *, skip: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        _positive_int(in_ch, "in_ch")
        _positive_int(out_ch, "out_ch")
        _positive_int(stride, "stride")
        self.in_ch, self.out_ch, self.stride, self.skip = in_ch, out_ch, stride, skip
        bias = not batch_norm
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = _norm(out_ch, batch_norm)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=bias)
        self.bn2 = _norm(out_ch, batch_norm)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module | None = None
        if skip:
            if in_ch != out_ch or stride != 1:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=bias), _norm(out_ch, batch_norm)
                )
            else:
                self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_ch, "ResidualBlock")
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu2(out)


class Bottleneck(nn.Module):
    """The bottleneck residual block of ResNet-50/101/152 (He et al. 2015, Figure 5 right).

    ``x: (N, in_ch, H, W) -> (N, 4 * mid_ch, ceil(H / stride), ceil(W / stride))``:
    ``F(x) = BN(conv1x1(ReLU(BN(conv3x3_stride(ReLU(BN(conv1x1(x))))))))`` reducing to ``mid_ch``
    channels and expanding back to ``4 mid_ch``; ``y = ReLU(F(x) + shortcut(x))`` with the same
    shortcut rule as :class:`ResidualBlock`. The stride sits on the 3x3 convolution.
    """

    expansion = 4

    def __init__(self, in_ch: int, mid_ch: int, stride: int = 1, *, skip: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        _positive_int(in_ch, "in_ch")
        _positive_int(mid_ch, "mid_ch")
        _positive_int(stride, "stride")
        out_ch = mid_ch * self.expansion
        self.in_ch, self.out_ch, self.stride, self.skip = in_ch, out_ch, stride, skip
        bias = not batch_norm
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=bias)
        self.bn1 = _norm(mid_ch, batch_norm)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = _norm(mid_ch, batch_norm)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=bias)
        self.bn3 = _norm(out_ch, batch_norm)
        self.relu3 = nn.ReLU()
        self.shortcut: nn.Module | None = None
        if skip:
            if in_ch != out_ch or stride != 1:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=bias), _norm(out_ch, batch_norm)
                )
            else:
                self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_ch, "Bottleneck")
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu3(out)


class ResNet(nn.Module):
    """A residual network: stem, stages of residual blocks, global average pooling, one linear layer.

    ``x: (N, in_channels, H, W) -> (N, num_classes)``. Stage ``i`` has ``blocks[i]`` blocks of
    width ``widths[i]`` (times the block's expansion); every stage but the first starts with
    stride 2 (halving the maps while the width doubles, with a projection shortcut).

    ``stem="imagenet"``: 7x7/2 convolution with 64 channels (``widths[0]`` in general), BN, ReLU,
    3x3/2 max-pool, as in the paper. ``stem="small"``: a 3x3 convolution with ``widths[0]``
    channels, BN, ReLU, no pooling (the paper's CIFAR-10 networks; fits 28x28/32x32 inputs).
    ``block="basic"`` uses :class:`ResidualBlock`, ``"bottleneck"`` :class:`Bottleneck`.
    ``skip=False`` builds the plain twin (same layers, no shortcuts); ``batch_norm=False`` drops
    every BN. ``ResNet(blocks=(2, 2, 2, 2))`` is ResNet-18 (11,689,512 parameters).
    """

    def __init__(
        self,
        blocks: Sequence[int] = (2, 2, 2, 2),
        widths: Sequence[int] = (64, 128, 256, 512),
        *,
        block: str = "basic",
        in_channels: int = 3,
        num_classes: int = 1000,
        stem: str = "imagenet",
        skip: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        blocks, widths = list(blocks), list(widths)
        if not blocks or len(blocks) != len(widths):
            raise ValueError(f"blocks and widths must be non-empty and of equal length; got {blocks} and {widths}")
        for i, (b, w) in enumerate(zip(blocks, widths)):
            _positive_int(b, f"blocks[{i}]")
            _positive_int(w, f"widths[{i}]")
        _positive_int(in_channels, "in_channels")
        _positive_int(num_classes, "num_classes")
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck'; got {block!r}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small'; got {stem!r}")
        self.in_channels = in_channels
        bias = not batch_norm
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=bias),
                _norm(widths[0], batch_norm),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=bias), _norm(widths[0], batch_norm), nn.ReLU()
            )
        cls = ResidualBlock if block == "basic" else Bottleneck
        stages = []
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(cls(c, w, stride, skip=skip, batch_norm=batch_norm))
                c = w * cls.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)
        self.out_features = c

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(N, widths[-1] * expansion)`` (after global average pooling)."""
        _check_images(x, self.in_channels, "ResNet")
        return self.flatten(self.pool(self.stages(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _build(device: Device, **kwargs: Any) -> ResNet:
    with torch.device(device if device is not None else "cpu"):
        return ResNet(**kwargs)


def resnet18(num_classes: int = 1000, *, device: Device = "meta") -> ResNet:
    """ResNet-18 (He et al. 2015, Table 1): basic blocks [2, 2, 2, 2]; 11,689,512 parameters ("11.7M")."""
    return _build(device, blocks=(2, 2, 2, 2), num_classes=num_classes)


def resnet34(num_classes: int = 1000, *, device: Device = "meta") -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]; 21,797,672 parameters ("21.8M")."""
    return _build(device, blocks=(3, 4, 6, 3), num_classes=num_classes)


def resnet50(num_classes: int = 1000, *, device: Device = "meta") -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]; 25,557,032 parameters ("25.6M")."""
    return _build(device, blocks=(3, 4, 6, 3), block="bottleneck", num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# describing a model
# --------------------------------------------------------------------------------------------
def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (each shared tensor counted once); works on the meta device."""
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


@dataclass(frozen=True)
class LayerRow:
    """One row of :func:`layer_table`: a module call, its output shape (without the batch axis) and its own parameters."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def layer_table(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """Run ``model`` on one zero input of shape ``(1, *input_shape)`` and record every layer it calls.

    ``input_shape``: one example's shape, e.g. ``(1, 32, 32)``. A "layer" is a module without
    children (Conv2d, ReLU, Linear, ...) or one that owns parameters directly; each call gives a
    row in call order with its output shape (batch axis dropped) and the number of parameters it
    owns (counted at its first call only, so the rows' parameters add up to
    :func:`count_parameters`). The model runs in eval mode on its own device, so a meta-device
    model is described without memory, and is put back in its previous mode afterwards.
    """
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(
            f"input_shape must be a tuple of positive ints (one example, no batch axis); got {input_shape!r}"
        )
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.get_default_dtype()

    rows: list[LayerRow] = []
    seen: set[int] = set()
    handles = []

    def hook(name: str):
        def record(module: nn.Module, _inputs: Any, output: Any) -> None:
            own = 0
            if id(module) not in seen:
                seen.add(id(module))
                own = sum(p.numel() for p in module.parameters(recurse=False))
            out_shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            rows.append(LayerRow(name, type(module).__name__, out_shape, own))

        return record

    for name, module in model.named_modules():
        has_children = next(module.children(), None) is not None
        owns = next(module.parameters(recurse=False), None) is not None
        if not has_children or owns:
            handles.append(module.register_forward_hook(hook(name or type(module).__name__)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows


def format_layer_table(rows: Sequence[LayerRow], *, total: bool = True) -> str:
    """A fixed-width text table of :func:`layer_table`'s rows (layer, type, output shape, parameters)."""
    header = ("layer", "type", "output shape", "parameters")
    body = [(r.name, r.kind, " x ".join(map(str, r.output_shape)) or "-", f"{r.parameters:,}") for r in rows]
    if total:
        body.append(("total", "", "", f"{sum(r.parameters for r in rows):,}"))
    widths = (
        [max(len(header[i]), *(len(line[i]) for line in body)) for i in range(4)] if body else list(map(len, header))
    )

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(cells) for cells in body]
    return "\n".join(lines)
