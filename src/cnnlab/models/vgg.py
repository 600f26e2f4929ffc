"""VGG (Simonyan & Zisserman, 2014): repeated blocks of 3x3 convolutions and a 2x2 max pool."""

from __future__ import annotations

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten, adaptive_pool, check_choices, fc_block
from cnnlab.models.norms import NO_NORM, NORMS, Norm
from cnnlab.models.registry import register

VGG_ARCHS = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
    "vgg-small": ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)),
}
"""(number of convs, output channels) per block: paper Table 1 and the chapter's narrow VGG-11."""


def vgg_block(num_convs: int, out_channels: int, *, in_channels: int,
              norm: Norm = NO_NORM, bias: bool = True) -> nn.Sequential:
    """`num_convs` 3x3 convolutions (padding 1), each with its norm (if any) and ReLU, then a 2x2
    max pool halving the size."""
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias),
                   *norm.layers(out_channels), nn.ReLU(inplace=True)]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Sequential):
    """VGG blocks given by `arch`, then two 4096-wide dense layers with dropout and the output.

    `norm` follows every convolution (torchvision's vgg*_bn with "batch"), `fc_norm` each hidden
    dense layer. The first dense layer is sized for square inputs of `input_size` pixels (224 in
    the paper), or with `pooled_size` (torchvision: 7) for the feature maps average-pooled to that
    side, whatever the input.
    """

    OPTION_CHOICES = {"norm": NORMS, "fc_norm": NORMS}

    def __init__(self, arch: tuple = VGG_ARCHS["vgg11"], in_channels: int = 1,
                 num_classes: int = 10, norm: str = "none", fc_norm: str = "none",
                 norm_affine: bool = True, bias: bool = True, dropout: float = 0.5,
                 pooled_size: int = 0, input_size: int = 224):
        check_choices(VGG, norm=norm, fc_norm=fc_norm)
        if not arch or any(len(pair) != 2 or min(pair) <= 0 for pair in arch):
            raise UsageError(f"VGG arch must be (num_convs, channels) pairs of positive "
                             f"integers such as ((1, 64), (2, 128)), got {arch!r}")
        blocks, channels = [], in_channels
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, out_channels, in_channels=channels,
                                    norm=Norm(norm, norm_affine), bias=bias))
            channels = out_channels
        blocks += [*adaptive_pool(pooled_size), Flatten()]
        flat = flat_features(nn.Sequential(*blocks), in_channels, input_size, "VGG")
        dense = {"norm": Norm(fc_norm, norm_affine), "bias": bias}
        super().__init__(*blocks, fc_block(flat, 4096, dropout, **dense),
                         fc_block(4096, 4096, dropout, **dense), nn.Linear(4096, num_classes))
        self.input_size = input_size


TORCHVISION_LAYOUT = {"pooled_size": 7}

DESCRIPTIONS = {**{f"vgg{depth}": f"VGG-{depth} (paper Table 1)" for depth in (11, 13, 16, 19)},
                "vgg-small": "the chapter's VGG-11 with a quarter of the channels"}

for _name, _arch in VGG_ARCHS.items():
    register(_name, VGG, preset={"arch": _arch}, family="vgg", input_size=224, lr=0.01,
             sized=True, imagenet_layout=TORCHVISION_LAYOUT, description=DESCRIPTIONS[_name])
