"""Which input sizes a model accepts, found by forward passes that only look at shapes."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from cnnlab.errors import UsageError

_PROBE_SIZES = (28, 32, 64, 96, 128, 224, 256, 512, 1024)
"""Sides tried, with the model's own `input_size`, to find one size that works."""

_REAL_PIXELS = 64 * 64
"""Inputs up to this many pixels run for real: quicker than the meta device's shape functions."""


def infer_in_channels(model: nn.Module) -> int:
    """The number of input channels: that of the first convolution (or linear layer)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
        if isinstance(module, nn.Linear):
            return module.in_features
    raise UsageError("cannot tell the model's input channels; pass in_channels=")


@contextmanager
def _evaluation(model: nn.Module):
    """Evaluation mode without gradients for the block, then each module's own mode back."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def output_shape(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Size:
    """The output shape of `model` on an input of `input_shape`; the model is left as it was.

    It runs in evaluation mode without gradients: for real on zeros when the input is small (up to
    64x64 pixels, where that is quicker), otherwise on PyTorch's meta device, which computes shapes
    only, with meta stand-ins for the parameters and buffers.
    """
    reference = next(iter(model.parameters()), torch.empty(0))
    with _evaluation(model):
        if math.prod(input_shape[2:]) <= _REAL_PIXELS:
            x = torch.zeros(input_shape, device=reference.device, dtype=reference.dtype)
            return model(x).shape
        tensors = {name: torch.empty_like(t, device="meta")
                   for name, t in (*model.named_parameters(), *model.named_buffers())}
        x = torch.empty(input_shape, device="meta", dtype=reference.dtype)
        return functional_call(model, tensors, (x,)).shape


def _works(model: nn.Module, size: int, in_channels: int) -> bool:
    """Whether a batch of size x size images gets through the model."""
    try:
        output_shape(model, (1, in_channels, size, size))
    except (RuntimeError, ValueError):
        return False
    return True


def min_input_size(model: nn.Module, in_channels: int | None = None) -> int:
    """The smallest square side (pixels) that a forward pass of `model` works on: the first
    probe size that works, then a bisection below it."""
    in_channels = in_channels or infer_in_channels(model)
    own = getattr(model, "input_size", None)
    low, high = 0, None  # sides <= low fail, `high` works
    for size in sorted({*_PROBE_SIZES, *((own,) if isinstance(own, int) else ())}):
        if _works(model, size, in_channels):
            high = size
            break
        low = size
    if high is None:
        raise UsageError(f"the model accepts no square input up to {_PROBE_SIZES[-1]} pixels")
    return smallest_working_side(lambda side: _works(model, side, in_channels), low, high)


def smallest_working_side(works: Callable[[int], bool], low: int, high: int) -> int:
    """Bisect for the smallest side that `works`, given that `low` fails and `high` works (the
    sides that work form one interval: every layer's output grows with its input)."""
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    return high


def check_input_size(model: nn.Module, size, name: str | None = None) -> None:
    """Raise a one-line ValueError when `model` cannot run on `size` (a side or (height, width))."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    label = f"model {name!r}" if name else "the model"
    if min(height, width) <= 0:
        raise UsageError(f"input sizes must be positive, got {height}x{width}")
    in_channels = infer_in_channels(model)
    try:
        output_shape(model, (1, in_channels, height, width))
    except (RuntimeError, ValueError):
        smallest = min_input_size(model, in_channels)
        if min(height, width) < smallest:
            raise UsageError(
                f"{label} needs inputs of at least {smallest}x{smallest} pixels, got "
                f"{height}x{width}; use a larger --resize/--input") from None
        built = getattr(model, "input_size", smallest)
        raise UsageError(
            f"{label} has a fully connected layer sized for {built}x{built} inputs, got "
            f"{height}x{width}; use --resize/--input {built} or build it with "
            f"input_size={max(height, width)}") from None


def flat_features(features: nn.Module, in_channels: int, input_size: int, family: str) -> int:
    """How many numbers `features` hands to the classifier for square inputs of `input_size`."""
    try:
        return output_shape(features, (1, in_channels, input_size, input_size)).numel()
    except RuntimeError:
        smallest = min_input_size(features, in_channels)
        raise UsageError(f"{family} needs inputs of at least {smallest}x{smallest} pixels, got "
                         f"{input_size}x{input_size}; use a larger --resize/--input "
                         "(input_size=)") from None
