"""Network in Network (Lin et al., 2013): convs followed by 1x1 convs, a global pooling head."""

from __future__ import annotations

from torch import nn

from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten
from cnnlab.models.registry import register

HEADS = ("gap", "fc")


def nin_block(out_channels: int, kernel_size: int, strides: int, padding: int, *,
              in_channels: int, num_1x1: int = 2) -> nn.Sequential:
    """A convolution and `num_1x1` 1x1 convolutions (per-pixel dense layers), each with ReLU."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding),
              nn.ReLU(inplace=True)]
    for _ in range(num_1x1):
        layers += [nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class NiN(nn.Sequential):
    """AlexNet's convolution sizes as NiN blocks; the last block has one channel per class.

    `head="gap"` averages each class map (the paper) and takes any input from 67x67 pixels up;
    `head="fc"` flattens the class maps into a dense layer instead, sized for square inputs of
    `input_size` pixels (the side the model is built for, kept as `.input_size`).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_1x1: int = 2,
                 head: str = "gap", dropout: float = 0.5, input_size: int = 224):
        if head not in HEADS:
            raise ValueError(f"unknown NiN head {head!r}; use 'gap' or 'fc'")
        if num_1x1 < 0:
            raise ValueError(f"num_1x1 must be 0 or more, got {num_1x1}")
        body = [
            nin_block(96, 11, 4, 0, in_channels=in_channels, num_1x1=num_1x1),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, 5, 1, 2, in_channels=96, num_1x1=num_1x1), nn.MaxPool2d(3, stride=2),
            nin_block(384, 3, 1, 1, in_channels=256, num_1x1=num_1x1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            nin_block(num_classes, 3, 1, 1, in_channels=384, num_1x1=num_1x1),
        ]
        if head == "gap":
            super().__init__(*body, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        else:
            body.append(Flatten())
            flat = flat_features(nn.Sequential(*body), in_channels, input_size, "NiN")
            super().__init__(*body, nn.Linear(flat, num_classes))
        self.input_size = input_size


register("nin", NiN, family="nin", input_size=224, lr=0.05, sized=True,
         description="Network in Network: NiN blocks and global average pooling")
