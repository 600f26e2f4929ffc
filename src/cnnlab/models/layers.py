"""Small layer groups several families share, and the check of their enumerated options."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.norms import NO_NORM, Norm


def check_choices(builder: type, **values) -> None:
    """Raise a one-line UsageError for the first value not among `builder.OPTION_CHOICES`."""
    for option, value in values.items():
        allowed = builder.OPTION_CHOICES[option]
        if value not in allowed:
            raise UsageError(f"unknown {builder.__name__} {option} {value!r}; use one of "
                             f"{', '.join(map(str, allowed))}")


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


def adaptive_pool(side: int) -> list[nn.Module]:
    """Average pooling to `side` x `side` maps whatever the input (torchvision's AlexNet and VGG
    put one before their classifier), as a list: empty for side 0."""
    if side < 0:
        raise UsageError(f"pooled_size must be 0 (no pooling: a classifier sized for the input) "
                         f"or a positive side such as 7, got {side}")
    return [nn.AdaptiveAvgPool2d((side, side))] if side else []


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0, *, norm: Norm = NO_NORM, bias: bool = True) -> nn.Sequential:
    """A convolution (then its norm, if any) followed by ReLU: one stage of AlexNet."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                   bias=bias),
                         *norm.layers(out_channels), nn.ReLU(inplace=True))


def fc_block(in_features: int, out_features: int, dropout: float, *, norm: Norm = NO_NORM,
             bias: bool = True, dropout_first: bool = False) -> nn.Sequential:
    """A fully connected hidden layer of AlexNet/VGG: linear, (norm), ReLU, dropout; or, with
    `dropout_first` (torchvision's AlexNet), dropout on the layer's input instead."""
    layers = [nn.Linear(in_features, out_features, bias=bias), *norm.layers(out_features, 2),
              nn.ReLU(inplace=True)]
    if dropout_first:
        return nn.Sequential(nn.Dropout(dropout), *layers)
    return nn.Sequential(*layers, nn.Dropout(dropout))


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): global-average-pool each channel, two 1x1 convs
    (ReLU, sigmoid) give per-channel weights in (0, 1) that rescale the input."""

    def __init__(self, channels: int, squeeze_channels: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(weights)
