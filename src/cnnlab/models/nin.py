"""Network in Network (Lin et al., 2013): convs followed by 1x1 convs, a global pooling head."""

from __future__ import annotations

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten, check_choices
from cnnlab.models.norms import NO_NORM, NORMS, Norm
from cnnlab.models.registry import register

HEADS = ("gap", "fc", "gradual")

ARCH = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
"""(channels, kernel, stride, padding) of the blocks before the class block: AlexNet's sizes."""


def _conv_stack(widths, kernel_size: int, strides: int, padding: int, *, in_channels: int,
                inner_kernel: int, norm: Norm, bias: bool) -> nn.Sequential:
    """A convolution to `widths[0]` channels, then one inner convolution per further width
    (`inner_kernel` square, size-preserving), each with its norm and ReLU."""
    layers = []
    for index, width in enumerate(widths):
        kernel, stride, pad = ((kernel_size, strides, padding) if index == 0
                               else (inner_kernel, 1, inner_kernel // 2))
        layers += [nn.Conv2d(in_channels, width, kernel, stride, pad, bias=bias),
                   *norm.layers(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


def nin_block(out_channels: int, kernel_size: int, strides: int, padding: int, *,
              in_channels: int, num_1x1: int = 2, inner_kernel: int = 1,
              norm: Norm = NO_NORM, bias: bool = True) -> nn.Sequential:
    """A convolution and `num_1x1` 1x1 convolutions (per-pixel dense layers; `inner_kernel=3`
    makes them 3x3), each with its norm (if any) and ReLU."""
    return _conv_stack((out_channels,) * (1 + num_1x1), kernel_size, strides, padding,
                       in_channels=in_channels, inner_kernel=inner_kernel, norm=norm, bias=bias)


def _check_arch(arch) -> tuple[tuple[int, int, int, int], ...]:
    """The blocks as (channels, kernel, stride, padding); padding defaults to kernel // 2."""
    blocks = []
    for entry in arch:
        if (len(entry) not in (3, 4) or min(entry[:3]) <= 0 or min(entry) < 0
                or not all(isinstance(v, int) for v in entry)):
            raise UsageError(f"NiN arch must be (channels, kernel, stride) or (channels, kernel, "
                             f"stride, padding) blocks of positive integers such as "
                             f"((64, 3, 1), (128, 3, 1)), got {arch!r}")
        blocks.append((*entry[:3], entry[3] if len(entry) == 4 else entry[1] // 2))
    if not blocks:
        raise UsageError("NiN arch needs at least one block, such as ((96, 11, 4, 0),)")
    return tuple(blocks)


class NiN(nn.Sequential):
    """NiN blocks given by `arch` (AlexNet's sizes by default), each followed by a 3x3 stride-2
    max pool, dropout, then a class block with one channel per class.

    `head="gap"` averages each class map (the paper) and takes any input from 67x67 pixels up;
    `head="gradual"` halves the channels conv by conv in the class block (384, 192, 96, classes)
    instead of jumping to the classes at once; `head="fc"` flattens the class maps into a dense
    layer, sized for square inputs of `input_size` pixels (kept as `.input_size`).
    """

    OPTION_CHOICES = {"head": HEADS, "norm": NORMS}

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_1x1: int = 2,
                 inner_kernel: int = 1, head: str = "gap", arch: tuple = ARCH,
                 dropout: float = 0.5, norm: str = "none", norm_affine: bool = True,
                 bias: bool = True, input_size: int = 224):
        check_choices(NiN, head=head, norm=norm)
        if num_1x1 < 0 or inner_kernel <= 0 or inner_kernel % 2 == 0:
            raise UsageError(f"NiN needs num_1x1 >= 0 and an odd inner_kernel (1 or 3), got "
                             f"num_1x1={num_1x1} and inner_kernel={inner_kernel}")
        convs = {"num_1x1": num_1x1, "inner_kernel": inner_kernel,
                 "norm": Norm(norm, norm_affine), "bias": bias}
        body, channels = [], in_channels
        for width, kernel, stride, padding in _check_arch(arch):
            body += [nin_block(width, kernel, stride, padding, in_channels=channels, **convs),
                     nn.MaxPool2d(3, stride=2)]
            channels = width
        widths = (num_classes,) * (1 + num_1x1)
        if head == "gradual":  # each conv halves the channels, the last one gives the classes
            halved = (max(1, channels // 2**step) for step in range(1, 1 + num_1x1))
            widths = (*halved, num_classes)
        body += [nn.Dropout(dropout),
                 _conv_stack(widths, 3, 1, 1, in_channels=channels, inner_kernel=inner_kernel,
                             norm=convs["norm"], bias=bias)]
        if head == "fc":
            body.append(Flatten())
            flat = flat_features(nn.Sequential(*body), in_channels, input_size, "NiN")
            super().__init__(*body, nn.Linear(flat, num_classes))
        else:
            super().__init__(*body, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        self.input_size = input_size


register("nin", NiN, family="nin", input_size=224, lr=0.05, sized=True,
         description="Network in Network: NiN blocks and global average pooling")
