"""Building a model for an input: the one place every command turns a spec and a shape into a model.

An input is a side (``96``), ``CxHxW`` or ``NxCxHxW``. The model takes its channels from the
input, and the families whose classifier is sized for the input (LeNet, AlexNet, VGG, NiN) are
built for its side, as the chapters do when they shrink VGG to 96 pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.inputs import (
    check_input_size,
    min_input_size,
    output_shape,
    smallest_working_side,
)
from cnnlab.models.registry import CONFIGS, create_model, model_info
from cnnlab.models.spec import ModelSpec

MAX_SIZE = 16_384
"""The largest size of one input dimension: beyond it a layer's size overflows torch's storage
arithmetic (found by the argument fuzzing: ``compare lenet --input 138619484``)."""


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``'96'``, ``'1x96x96'`` (CHW) or ``'8x1x96x96'`` (NCHW) as a tuple of positive sizes."""
    try:
        dims = tuple(int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise UsageError(f"input {text!r} is not sizes joined by 'x'; use a side such as 96, "
                         "CxHxW such as 1x96x96 or NxCxHxW such as 8x1x96x96") from None
    if len(dims) not in (1, 3, 4) or min(dims) <= 0:
        raise UsageError(f"input {text!r} needs 1, 3 or 4 positive sizes, such as 96, 1x96x96 "
                         "or 8x1x96x96")
    if max(dims) > MAX_SIZE:
        raise UsageError(f"input {text!r} has a size above {MAX_SIZE:,}; use a side such as 96 "
                         "or 224")
    return dims


def default_input(spec: str | ModelSpec) -> tuple[int, int, int]:
    """The (C, H, W) a spec is built for by default: its channels and its own input side
    (`ModelSpec.input_size`: ``googlenet:stem=28`` is 1x28x28, ``googlenet`` 1x96x96)."""
    spec = ModelSpec.parse(spec)
    options = spec.kwargs
    config = options.get("config", "fashion-mnist")
    channels = options.get("in_channels", CONFIGS[config]["in_channels"])
    return channels, spec.input_size, spec.input_size


def input_chw(spec: str | ModelSpec, input_shape=None) -> tuple[int, int, int]:
    """(C, H, W) of `input_shape` (None, a side, (C, H, W) or (N, C, H, W)) for this spec."""
    channels, height, width = default_input(spec)
    if input_shape is None:
        return channels, height, width
    dims = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if len(dims) == 1:
        return channels, dims[0], dims[0]
    if len(dims) in (3, 4):
        return tuple(dims[-3:])
    raise UsageError(f"input {input_shape!r} is not a side, CxHxW or NxCxHxW (e.g. 96 or 1x96x96)")


def _construct(spec: ModelSpec, chw: tuple[int, int, int], num_classes, device) -> nn.Module:
    options = {"in_channels": chw[0]}
    if num_classes is not None:
        options["num_classes"] = num_classes
    if model_info(spec.name).sized:
        if chw[1] != chw[2]:
            raise UsageError(f"model {spec.name!r} sizes its classifier for square inputs, got "
                             f"{chw[1]}x{chw[2]}; give the input as a side or CxSxS")
        options["input_size"] = chw[1]
    with torch.device(device):
        return create_model(spec, **options)


def build_for_input(spec: str | ModelSpec, input_shape=None, *, num_classes: int | None = None,
                    device: str | torch.device = "cpu") -> nn.Module:
    """The model of `spec`, built for `input_shape` and checked to accept it.

    ``device="meta"`` builds it without memory (shapes only), as the measuring commands do.
    A too-small input is one UsageError naming the smallest side that works.
    """
    spec = ModelSpec.parse(spec)
    chw = input_chw(spec, input_shape)
    try:
        model = _construct(spec, chw, num_classes, device)
    except UsageError:
        smallest = min_side(spec, chw[0])
        if min(chw[1:]) >= smallest:
            raise
        raise UsageError(f"model {str(spec)!r} needs inputs of at least {smallest}x{smallest} "
                         f"pixels, got {chw[1]}x{chw[2]}; use a larger --input/--resize") from None
    check_input_size(model, chw[1:], name=str(spec))
    return model


def _works_at(spec: ModelSpec, channels: int, side: int) -> bool:
    """Whether the spec, built for `side`, runs on a side x side image."""
    try:
        model = _construct(spec, (channels, side, side), None, "meta")
        output_shape(model, (1, channels, side, side))
    except (UsageError, RuntimeError):
        return False
    return True


def min_side(spec: str | ModelSpec, channels: int | None = None) -> int:
    """The smallest square input side the spec works on. A model whose classifier is sized for
    its input is rebuilt for each side tried, bisecting below its default input."""
    spec = ModelSpec.parse(spec)
    default_channels, side, _ = default_input(spec)
    channels = channels or default_channels
    if not model_info(spec.name).sized:
        return min_input_size(_construct(spec, (channels, side, side), None, "meta"),
                              channels)
    if not _works_at(spec, channels, side):
        _construct(spec, (channels, side, side), None, "meta")  # a bad option says so itself
        raise UsageError(f"model {str(spec)!r} does not run at its own input side {side}")
    return smallest_working_side(lambda s: _works_at(spec, channels, s), 0, side)
