"""Small layer groups several families share."""

from __future__ import annotations

import torch
from torch import nn


class _FlattenKeepingFormat(torch.autograd.Function):
    """`flatten` whose gradient goes back in channels-last order, like the features it came from."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, start_dim: int, end_dim: int) -> torch.Tensor:
        ctx.shape = x.shape
        return x.flatten(start_dim, end_dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last), None, None


class Flatten(nn.Flatten):
    """`nn.Flatten` (same output, same gradient values) that keeps channels-last training fast.

    Flattening channels-last features copies them into (C, H, W) order, so plain autograd hands
    the pooling layer below a contiguous gradient next to its channels-last input, and PyTorch's
    CPU pooling backward then takes a slow mixed-format path: 7x slower for LeNet's last pool,
    6x for AlexNet's. This layer returns the gradient in the input's channels-last order instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = (x.dim() == 4 and not x.is_contiguous()
                         and x.is_contiguous(memory_format=torch.channels_last))
        if channels_last and x.requires_grad and torch.is_grad_enabled():
            return _FlattenKeepingFormat.apply(x, self.start_dim, self.end_dim)
        return super().forward(x)


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0) -> nn.Sequential:
    """A convolution followed by ReLU: one stage of AlexNet."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
                         nn.ReLU(inplace=True))


def fc_block(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    """A fully connected hidden layer of AlexNet/VGG: linear, ReLU, dropout."""
    return nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU(inplace=True),
                         nn.Dropout(dropout))
