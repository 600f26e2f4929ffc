"""DenseNet (Huang et al., 2017): each layer's output is concatenated onto its input."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.registry import register
from cnnlab.models.resnet import stem


def conv_block(num_channels: int, *, in_channels: int, bn_size: int = 0,
               bias: bool = True) -> nn.Sequential:
    """BN, ReLU, 3x3 conv to `num_channels` (the growth rate); with `bn_size` > 0, a 1x1
    bottleneck conv to `bn_size * num_channels` channels (with its BN, ReLU) comes first."""
    layers = [nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True)]
    if bn_size:
        width = bn_size * num_channels
        layers += [nn.Conv2d(in_channels, width, 1, bias=bias), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True)]
        in_channels = width
    layers.append(nn.Conv2d(in_channels, num_channels, 3, padding=1, bias=bias))
    return nn.Sequential(*layers)


class DenseBlock(nn.Module):
    """`num_convs` conv blocks, each fed everything before it: adds `num_convs * num_channels`
    channels to the input."""

    def __init__(self, num_convs: int, num_channels: int, *, in_channels: int,
                 bn_size: int = 0, bias: bool = True):
        super().__init__()
        self.net = nn.ModuleList(
            conv_block(num_channels, in_channels=in_channels + i * num_channels,
                       bn_size=bn_size, bias=bias)
            for i in range(num_convs))
        self.out_channels = in_channels + num_convs * num_channels

    def forward(self, x):
        for block in self.net:
            x = torch.cat((x, block(x)), dim=1)
        return x


def transition_block(num_channels: int, *, in_channels: int, bias: bool = True) -> nn.Sequential:
    """BN, ReLU, 1x1 conv to `num_channels`, 2x2 average pool: fewer channels, half the side."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, num_channels, 1, bias=bias),
                         nn.AvgPool2d(2, stride=2))


class DenseNet(nn.Sequential):
    """ResNet's stem, dense blocks of `arch[i]` layers with transition blocks between them
    (keeping `compression` of the channels), and a BN-ReLU-pool head.

    The chapter's model has no bottleneck (`bn_size=0`); DenseNet-BC (121 and up) has bn_size=4.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_channels: int = 64,
                 growth_rate: int = 32, arch=(4, 4, 4, 4), bn_size: int = 0,
                 compression: float = 0.5, bias: bool = True):
        if not arch or min(arch) <= 0 or growth_rate <= 0 or not 0 < compression <= 1:
            raise ValueError(f"DenseNet needs positive arch entries and growth_rate and "
                             f"0 < compression <= 1, got arch={tuple(arch)}, "
                             f"growth_rate={growth_rate}, compression={compression}")
        parts = [("stem", stem(in_channels, num_channels, bias))]
        channels = num_channels
        for index, num_convs in enumerate(arch):
            block = DenseBlock(num_convs, growth_rate, in_channels=channels, bn_size=bn_size,
                               bias=bias)
            parts.append((f"dense{index + 1}", block))
            channels = block.out_channels
            if index < len(arch) - 1:
                reduced = int(channels * compression)
                parts.append((f"transition{index + 1}",
                              transition_block(reduced, in_channels=channels, bias=bias)))
                channels = reduced
        parts.append(("head", nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                            nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(parts))


DENSENETS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32),
             264: (6, 12, 64, 48)}
"""Dense-block depths of DenseNet-BC (paper Table 1), growth rate 32."""

TORCHVISION_LAYOUT = {"bias": False}

register("densenet", DenseNet, family="densenet", input_size=96, lr=0.01,
         imagenet_layout=TORCHVISION_LAYOUT,
         description="the chapter's DenseNet: growth 32, four blocks of 4 convs")
for _depth, _arch in DENSENETS.items():
    register(f"densenet{_depth}", DenseNet, preset={"arch": _arch, "bn_size": 4},
             family="densenet", input_size=96, lr=0.01, imagenet_layout=TORCHVISION_LAYOUT,
             description=f"DenseNet-BC-{_depth}: bottleneck layers, compression 0.5")
