"""GoogLeNet (Szegedy et al., 2014): a stem and stacks of four-branch Inception blocks."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.registry import register

POOLINGS = ("pad", "ceil")

INCEPTIONS = {
    "b3": [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)],
    "b4": [(192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64),
           (128, (128, 256), (24, 64), 64), (112, (144, 288), (32, 64), 64),
           (256, (160, 320), (32, 128), 128)],
    "b5": [(256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)],
}
"""Channels (c1, c2, c3, c4) of each Inception block, stage by stage (paper Table 1)."""


def conv_unit(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0, batch_norm: bool = False, bn_eps: float = 1e-5) -> nn.Sequential:
    """Conv then ReLU, or conv (no bias: the norm has one), batch norm, ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                     bias=not batch_norm)
    norm = [nn.BatchNorm2d(out_channels, eps=bn_eps)] if batch_norm else []
    return nn.Sequential(conv, *norm, nn.ReLU(inplace=True))


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: 1x1; 1x1 then 3x3; 1x1 then a wide
    (5x5) conv; 3x3 max pool then 1x1. c2 and c3 are (reduction, output) channel pairs.

    `wide_kernel=3` reproduces torchvision's GoogLeNet, whose "5x5" path uses a 3x3 kernel.
    """

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, *,
                 in_channels: int, batch_norm: bool = False, bn_eps: float = 1e-5,
                 wide_kernel: int = 5):
        super().__init__()
        norm = {"batch_norm": batch_norm, "bn_eps": bn_eps}
        self.p1 = conv_unit(in_channels, c1, 1, **norm)
        self.p2 = nn.Sequential(conv_unit(in_channels, c2[0], 1, **norm),
                                conv_unit(c2[0], c2[1], 3, padding=1, **norm))
        self.p3 = nn.Sequential(conv_unit(in_channels, c3[0], 1, **norm),
                                conv_unit(c3[0], c3[1], wide_kernel, padding=wide_kernel // 2,
                                          **norm))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                conv_unit(in_channels, c4, 1, **norm))
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x):
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)


def _downsample(pooling: str, last: bool = False) -> nn.MaxPool2d:
    """The stride-2 max pool closing a stage: 3x3 padded (the chapter) or ceil-mode (torchvision,
    whose last one is 2x2)."""
    if pooling == "pad":
        return nn.MaxPool2d(3, stride=2, padding=1)
    return nn.MaxPool2d(2 if last else 3, stride=2, ceil_mode=True)


class GoogLeNet(nn.Sequential):
    """Stages b1 (7x7 stem), b2 (1x1 and 3x3 convs), b3-b5 (Inception stacks), then the head.

    The chapter's layout is the default; `batch_norm=True` adds batch norm after every conv.
    torchvision's layout: batch_norm=True, bn_eps=1e-3, wide_kernel=3, pooling="ceil",
    dropout=0.2.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, batch_norm: bool = False,
                 bn_eps: float = 1e-5, wide_kernel: int = 5, pooling: str = "pad",
                 dropout: float = 0.0):
        if pooling not in POOLINGS:
            raise ValueError(f"unknown GoogLeNet pooling {pooling!r}; use 'pad' or 'ceil'")
        norm = {"batch_norm": batch_norm, "bn_eps": bn_eps}
        stages = [
            ("b1", nn.Sequential(conv_unit(in_channels, 64, 7, stride=2, padding=3, **norm),
                                 _downsample(pooling))),
            ("b2", nn.Sequential(conv_unit(64, 64, 1, **norm),
                                 conv_unit(64, 192, 3, padding=1, **norm), _downsample(pooling))),
        ]
        channels = 192
        for stage, blocks in INCEPTIONS.items():
            layers = []
            for c1, c2, c3, c4 in blocks:
                layers.append(Inception(c1, c2, c3, c4, in_channels=channels,
                                        wide_kernel=wide_kernel, **norm))
                channels = layers[-1].out_channels
            if stage == "b5":
                layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
            else:
                layers.append(_downsample(pooling, last=stage == "b4"))
            stages.append((stage, nn.Sequential(*layers)))
        stages.append(("head", nn.Sequential(*([nn.Dropout(dropout)] if dropout else []),
                                             nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(stages))


TORCHVISION_LAYOUT = {"batch_norm": True, "bn_eps": 1e-3, "wide_kernel": 3, "pooling": "ceil",
                      "dropout": 0.2}

_GOOGLENET = {"family": "googlenet", "input_size": 96, "imagenet_layout": TORCHVISION_LAYOUT}
register("googlenet", GoogLeNet, lr=0.01, **_GOOGLENET,
         description="GoogLeNet: nine Inception blocks, global average pooling")
register("googlenet-bn", GoogLeNet, preset={"batch_norm": True}, lr=0.05, **_GOOGLENET,
         description="GoogLeNet with batch norm after every convolution (Inception v2 style)")
