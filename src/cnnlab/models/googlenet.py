"""GoogLeNet (Szegedy et al., 2014): a stem and stacks of four-branch Inception blocks."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.layers import check_choices
from cnnlab.models.norms import NO_NORM, NORMS, Norm
from cnnlab.models.registry import register

POOLINGS = ("pad", "ceil")

INCEPTIONS = ("v1", "factorised", "residual")
"""Inception block variants: the paper's, Inception v3's factorised convs, Inception-ResNet."""

STEMS = ("7x7", "28")
"""The paper's stem (7x7 stride 2 and pooling: a quarter of the side) or one that keeps 28x28."""

INCEPTION_CHANNELS = {
    "b3": [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)],
    "b4": [(192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
           (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
           (256, (160, 320), (32, 128), 128)],
    "b5": [(256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)],
}
"""Channels (c1, c2, c3, c4) of each Inception block, stage by stage (paper Table 1)."""


def conv_unit(in_channels: int, out_channels: int, kernel_size, stride: int = 1, padding=0, *,
              norm: Norm = NO_NORM, bias: bool = True, relu: bool = True) -> nn.Sequential:
    """Conv, its norm (if any), ReLU (unless `relu=False`: a linear projection)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return nn.Sequential(conv, *norm.layers(out_channels),
                         *([nn.ReLU(inplace=True)] if relu else []))


def _spatial(in_channels: int, out_channels: int, kernel: int, factorised: bool,
             **unit) -> list[nn.Sequential]:
    """A same-size kernel x kernel conv unit, or (factorised, Inception v3) a 1 x kernel unit
    followed by a kernel x 1 unit."""
    if not factorised:
        return [conv_unit(in_channels, out_channels, kernel, padding=kernel // 2, **unit)]
    return [conv_unit(in_channels, out_channels, (1, kernel), padding=(0, kernel // 2), **unit),
            conv_unit(out_channels, out_channels, (kernel, 1), padding=(kernel // 2, 0), **unit)]


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: 1x1; 1x1 then 3x3; 1x1 then a wide
    (5x5) conv; 3x3 max pool then 1x1. c2 and c3 are (reduction, output) channel pairs.

    `wide_kernel=3` reproduces torchvision's GoogLeNet, whose "5x5" path uses a 3x3 kernel.
    `variant="factorised"` splits each n x n conv into 1 x n and n x 1 (Inception v3);
    `variant="residual"` projects the concatenation with a linear 1x1 conv and adds it to the
    input (or to its 1x1 projection when the widths differ), then applies ReLU
    (Inception-ResNet).
    """

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, *,
                 in_channels: int, norm: Norm = NO_NORM, bias: bool = True,
                 wide_kernel: int = 5, variant: str = "v1"):
        super().__init__()
        if variant not in INCEPTIONS:
            raise UsageError(f"unknown Inception variant {variant!r}; use one of "
                             f"{', '.join(INCEPTIONS)}")
        unit = {"norm": norm, "bias": bias}
        factorised = variant == "factorised"
        self.p1 = conv_unit(in_channels, c1, 1, **unit)
        self.p2 = nn.Sequential(conv_unit(in_channels, c2[0], 1, **unit),
                                *_spatial(c2[0], c2[1], 3, factorised, **unit))
        self.p3 = nn.Sequential(conv_unit(in_channels, c3[0], 1, **unit),
                                *_spatial(c3[0], c3[1], wide_kernel, factorised, **unit))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                conv_unit(in_channels, c4, 1, **unit))
        self.out_channels = c1 + c2[1] + c3[1] + c4
        self.residual = variant == "residual"
        if self.residual:
            width = self.out_channels
            self.project = conv_unit(width, width, 1, relu=False, **unit)
            self.shortcut = (nn.Identity() if in_channels == width
                             else conv_unit(in_channels, width, 1, relu=False, **unit))

    def forward(self, x):
        branches = torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)
        if not self.residual:
            return branches
        return torch.relu(self.project(branches) + self.shortcut(x))


class AuxiliaryClassifier(nn.Module):
    """The paper's side classifier on an intermediate stage: 4x4 average pool, 1x1 conv to 128
    channels, dense 1024 with dropout 0.7, then the classes.

    It passes its input through unchanged; in training mode it also keeps its logits as
    `.logits`, for `auxiliary_loss` to add to the main loss (evaluation ignores it).
    """

    def __init__(self, in_channels: int, num_classes: int, *, norm: Norm = NO_NORM,
                 bias: bool = True):
        super().__init__()
        self.conv = conv_unit(in_channels, 128, 1, norm=norm, bias=bias)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(0.7)
        self.logits: torch.Tensor | None = None

    def __getstate__(self):
        """Copies and pickles leave out the last batch's logits (and their graph)."""
        return {**super().__getstate__(), "logits": None}

    def forward(self, x):
        self.logits = None
        if self.training:
            features = self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
            self.logits = self.fc2(self.dropout(torch.relu(self.fc1(features))))
        return x


def auxiliary_loss(model: nn.Module, targets: torch.Tensor, loss_fn, weight: float = 0.3):
    """`weight` (the paper's 0.3) times the sum of `loss_fn` over the side classifiers' logits
    from the model's last training-mode forward pass; 0 for a model without them."""
    losses = [loss_fn(module.logits, targets) for module in model.modules()
              if isinstance(module, AuxiliaryClassifier) and module.logits is not None]
    return weight * sum(losses) if losses else 0.0


def _downsample(pooling: str, last: bool = False) -> nn.MaxPool2d:
    """The stride-2 max pool closing a stage: 3x3 padded (the chapter) or ceil-mode (torchvision,
    whose last one is 2x2)."""
    if pooling == "pad":
        return nn.MaxPool2d(3, stride=2, padding=1)
    return nn.MaxPool2d(2 if last else 3, stride=2, ceil_mode=True)


def _stem(stem: str, in_channels: int, pooling: str, **unit) -> list[tuple[str, nn.Sequential]]:
    """Stages b1 and b2: the paper's 7x7 stride-2 conv and 1x1, 3x3 convs, each stage closed by
    a stride-2 pool (a quarter of the side), or for stem "28" a 3x3 conv and the same 1x1, 3x3
    convs without pooling, so 28x28 images reach the Inception blocks at full resolution."""
    if stem == "28":
        first, pools = conv_unit(in_channels, 64, 3, padding=1, **unit), []
    else:
        first = conv_unit(in_channels, 64, 7, stride=2, padding=3, **unit)
        pools = [_downsample(pooling)]
    return [("b1", nn.Sequential(first, *pools)),
            ("b2", nn.Sequential(conv_unit(64, 64, 1, **unit),
                                 conv_unit(64, 192, 3, padding=1, **unit), *pools))]


AUXILIARY_AFTER = {"b4": (0, 3)}
"""Where the paper's side classifiers sit: after Inception blocks 4a and 4d."""


class GoogLeNet(nn.Sequential):
    """Stages b1 (7x7 stem), b2 (1x1 and 3x3 convs), b3-b5 (Inception stacks), then the head.

    The chapter's layout is the default; `norm` follows every conv (`norm="batch"` with
    `bias=False` is Inception v2 style), `inception` picks the block variant, `stem="28"` keeps
    28x28 inputs at full resolution, and `aux_logits` adds the paper's two side classifiers
    (training only, see `auxiliary_loss`). torchvision's layout: norm="batch", bias=False,
    norm_eps=1e-3, wide_kernel=3, pooling="ceil", dropout=0.2.
    """

    OPTION_CHOICES = {"norm": NORMS, "pooling": POOLINGS, "inception": INCEPTIONS,
                      "stem": STEMS}
    INPUT_SIZES = {"stem": {"28": 28}}
    """Option values that make the model for another input side than its name's: the "28" stem
    is made for Fashion-MNIST's 28x28 images, so they are not upsampled to 96 (see
    `ModelSpec.input_size`)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, norm: str = "none",
                 norm_affine: bool = True, norm_eps: float = 1e-5, bias: bool = True,
                 inception: str = "v1", stem: str = "7x7", aux_logits: bool = False,
                 wide_kernel: int = 5, pooling: str = "pad", dropout: float = 0.0):
        check_choices(GoogLeNet, norm=norm, pooling=pooling, inception=inception, stem=stem)
        unit = {"norm": Norm(norm, norm_affine, norm_eps), "bias": bias}
        stages = _stem(stem, in_channels, pooling, **unit)
        channels = 192
        for stage, blocks in INCEPTION_CHANNELS.items():
            layers = []
            for index, (c1, c2, c3, c4) in enumerate(blocks):
                layers.append(Inception(c1, c2, c3, c4, in_channels=channels,
                                        wide_kernel=wide_kernel, variant=inception, **unit))
                channels = layers[-1].out_channels
                if aux_logits and index in AUXILIARY_AFTER.get(stage, ()):
                    layers.append(AuxiliaryClassifier(channels, num_classes, **unit))
            if stage == "b5":
                layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
            else:
                layers.append(_downsample(pooling, last=stage == "b4"))
            stages.append((stage, nn.Sequential(*layers)))
        stages.append(("head", nn.Sequential(*([nn.Dropout(dropout)] if dropout else []),
                                             nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(stages))

    def auxiliary_loss(self, targets: torch.Tensor, loss_fn) -> torch.Tensor | float:
        """The side classifiers' weighted loss from the last training step (0 without them):
        the trainer adds it to the main loss."""
        return auxiliary_loss(self, targets, loss_fn)


TORCHVISION_LAYOUT = {"norm": "batch", "bias": False, "norm_eps": 1e-3, "wide_kernel": 3,
                      "pooling": "ceil", "dropout": 0.2}

_GOOGLENET = {"family": "googlenet", "input_size": 96, "imagenet_layout": TORCHVISION_LAYOUT}
register("googlenet", GoogLeNet, lr=0.01, **_GOOGLENET,
         description="GoogLeNet: nine Inception blocks, global average pooling")
register("googlenet-bn", GoogLeNet, preset={"norm": "batch", "bias": False}, lr=0.05,
         **_GOOGLENET,
         description="GoogLeNet with batch norm after every convolution (Inception v2 style)")
