"""Compact ResNets made for 28x28 inputs: the speed recipes' models (`cnnlab recipes`).

The ImageNet ResNet's stem (7x7 stride-2 conv, then a stride-2 max pool) shrinks a 28x28 image
to 7x7 before the first block. These nets instead keep the full resolution for
one cheap 3x3 conv and then halve the side with a 2x2 max pool before each later stage, so the
work sits at 14x14 and 7x7 where the channels are wide. Each stage is a 3x3 conv, batch norm and
ReLU that changes the width, followed by basic residual blocks (`Residual`) at that width.

The default head flattens the last 7x7 maps into one linear layer. Fashion-MNIST's items are
centred and upright, so where a feature fires carries class information; global average pooling
throws that away and learned more slowly in short runs (exploration notes in
benchmarks/RESULTS.md).
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten
from cnnlab.models.registry import register
from cnnlab.models.resnet import Residual

HEADS = ("flatten", "avg")


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3x3 same-padding convolution (no bias: batch norm follows), batch norm and ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class CompactResNet(nn.Sequential):
    """Stages of widths `widths`, each with `blocks[i]` residual blocks, then the head.

    Stage 0 runs at the input's resolution; every later stage starts with a 2x2 max pool.
    `head="flatten"` (sized for square inputs of `input_size`) or "avg" (global average pool).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: tuple[int, ...] = (32, 64, 128), blocks: tuple[int, ...] = (0, 1, 1),
                 head: str = "flatten", input_size: int = 28):
        if len(widths) != len(blocks) or not widths:
            raise UsageError(f"CompactResNet needs one block count per width, got widths={widths} "
                             f"and blocks={blocks}")
        if min(widths) < 1 or min(blocks) < 0:
            raise UsageError(f"CompactResNet widths must be positive and block counts >= 0, got "
                             f"widths={widths} and blocks={blocks}")
        if head not in HEADS:
            raise UsageError(f"unknown CompactResNet head {head!r}; use 'flatten' or 'avg'")
        stages = []
        previous = in_channels
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            pool = [nn.MaxPool2d(2)] if index > 0 else []
            residuals = [Residual(width, bias=False) for _ in range(count)]
            stages.append(nn.Sequential(*pool, *conv_bn_relu(previous, width), *residuals))
            previous = width
        if head == "avg":
            classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                       nn.Linear(previous, num_classes))
        else:
            features = flat_features(nn.Sequential(*stages), in_channels, input_size,
                                     "CompactResNet")
            classifier = nn.Sequential(Flatten(), nn.Linear(features, num_classes))
        super().__init__(*stages, classifier)
        self.input_size = input_size


COMPACT_RESNETS = {
    "compact-resnet-s": ({"widths": (24, 48, 96), "blocks": (0, 0, 0)},
                         "three conv-BN-ReLU stages 24-48-96, no residual block (fast: 16-32-64)"),
    "compact-resnet-m": ({"widths": (32, 64, 128), "blocks": (0, 1, 1)},
                         "32-64-128, a residual block at 14x14 and at 7x7 (cpu-best: 24-48-96)"),
    "compact-resnet-l": ({"widths": (64, 128, 256), "blocks": (1, 2, 2)},
                         "64-128-256 with 1, 2, 2 residual blocks (recipe gpu-best)"),
}
"""Each name's configuration of `CompactResNet` and its description."""


for _name, (_preset, _description) in COMPACT_RESNETS.items():
    register(_name, CompactResNet, preset=_preset, family="compact-resnet", input_size=28,
             lr=0.1, sized=True, description=_description)
