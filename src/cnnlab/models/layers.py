"""Small layer groups several families share."""

from __future__ import annotations

from torch import nn


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0) -> nn.Sequential:
    """A convolution followed by ReLU: one stage of AlexNet."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
                         nn.ReLU(inplace=True))


def fc_block(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    """A fully connected hidden layer of AlexNet/VGG: linear, ReLU, dropout."""
    return nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU(inplace=True),
                         nn.Dropout(dropout))
