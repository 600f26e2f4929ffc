"""What `cnnlab models`, `cnnlab summary` and `cnnlab compare` print.

Models are built on PyTorch's meta device (shapes only, no weights in memory), so even VGG-19 is
listed, summarised and compared in well under a second. A model is built for the input asked for:
the input channels come from `--input`, and models whose classifier is sized for the input (LeNet,
AlexNet, VGG, NiN) are built for its side, as the chapters do when they shrink VGG to 96 pixels.
"""

from __future__ import annotations

import sys

import torch
from rich import box
from rich.console import Console
from rich.table import Table
from torch import nn

from cnnlab.analysis.summary import (
    format_bytes,
    format_shape,
    forward_flops,
    plain_text,
    summary,
)
from cnnlab.models import create_model, list_models, min_input_size, model_info, output_shape
from cnnlab.models.inputs import infer_in_channels, smallest_working_side


def _show(renderable) -> None:
    """Print a table at the terminal's width, or as plain text when the output is not a terminal
    (a file or a pipe), where no table is squeezed or wrapped."""
    if sys.stdout.isatty():
        Console(highlight=False).print(renderable)
    else:
        sys.stdout.write(plain_text(renderable))


def _sizes(name: str, input_size) -> tuple[int, ...]:
    """`input_size` (None, (side,), (C, H, W) or (N, C, H, W)); None means the model's default."""
    return (model_info(name).input_size,) if input_size is None else tuple(input_size)


def _height_width(sizes: tuple[int, ...]) -> tuple[int, int]:
    return (sizes[0], sizes[0]) if len(sizes) == 1 else sizes[-2:]


def _build(name: str, input_size=None) -> nn.Module:
    """The registered model, on the meta device, built for the channels and side of the input."""
    info = model_info(name)
    sizes = _sizes(name, input_size)
    kwargs = {}
    if len(sizes) >= 3:
        kwargs["in_channels"] = sizes[-3]
    height, width = _height_width(sizes)
    if info.sized and height == width:
        kwargs["input_size"] = height
    with torch.device("meta"):
        return create_model(name, **kwargs)


def build_for_input(name: str, input_size=None) -> nn.Module:
    """`_build`, with a too-small input for a sized classifier explained by the smallest side."""
    try:
        return _build(name, input_size)
    except ValueError:
        height, width = _height_width(_sizes(name, input_size))
        smallest = min_side(name)
        if min(height, width) >= smallest:
            raise
        raise ValueError(f"model {name!r} needs inputs of at least {smallest}x{smallest} pixels, "
                         f"got {height}x{width}; use a larger --input") from None


def _built_and_works(name: str, side: int) -> bool:
    """Whether the named model, built for `side`, runs on a side x side image."""
    try:
        model = _build(name, (side,))
        output_shape(model, (1, infer_in_channels(model), side, side))
    except (ValueError, RuntimeError):
        return False
    return True


def min_side(name: str) -> int:
    """The smallest square input side the named model works on. A model whose classifier is
    sized for its input is rebuilt for each side tried, bisecting below its default input."""
    info = model_info(name)
    if not info.sized:
        return min_input_size(_build(name))
    return smallest_working_side(lambda side: _built_and_works(name, side), 0, info.input_size)


def print_models_table() -> None:
    """Every registered name with its parameters and forward MFLOPs at its default input."""
    table = Table(title="registered models (1 input channel, 10 classes)", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for header in ("name", "family", "params", "input", "MFLOPs", "description"):
        table.add_column(header, justify="right" if header in ("params", "input", "MFLOPs")
                         else "left", no_wrap=header != "description")
    for name in list_models():
        info = model_info(name)
        model = build_for_input(name)
        params = sum(p.numel() for p in model.parameters())
        flops = forward_flops(model, info.input_size, name=name)
        table.add_row(name, info.family, f"{params:,}", f"{info.input_size}",
                      f"{flops / 1e6:,.1f}", info.description)
    _show(table)


def print_summary(name: str, input_size=None, depth: int = 1, batch_size: int = 1) -> None:
    """`cnnlab summary`: the layer table, totals and conv/fc split of one registered model.

    The batch size is `batch_size` or the N of an (N, C, H, W) input, whichever is not 1.
    """
    sizes = _sizes(name, input_size)
    if len(sizes) == 4 and batch_size == 1:
        batch_size = None  # the batch given in the input
    elif len(sizes) == 4 and sizes[0] == 1:
        sizes = sizes[1:]  # a 1x... input with --batch-size B: the batch is B
    model = build_for_input(name, sizes)
    _show(summary(model, sizes, depth=depth, batch_size=batch_size, name=name))


def print_comparison(names, input_size=None) -> None:
    """`cnnlab compare`: parameters, FLOPs, conv/fc shares and memory of models side by side,
    each at `input_size` or else at its own default input (one image unless the input gives N)."""
    batch = input_size[0] if input_size is not None and len(input_size) == 4 else 1
    table = Table(title=f"models side by side (batch of {batch}, float32)", title_justify="left",
                  box=box.SIMPLE_HEAD)
    for header in ("model", "input", "params", "MFLOPs", "conv params", "fc params",
                   "conv FLOPs", "weights", "activations inference", "activations training",
                   "min input"):
        table.add_column(header, justify="left" if header == "model" else "right", no_wrap=True)
    for name in names:
        sizes = _sizes(name, input_size)
        model = build_for_input(name, sizes)
        result = summary(model, sizes, name=name)
        smallest = min_side(name)
        table.add_row(name, format_shape(result.input_shape[1:]), f"{result.params:,}",
                      f"{result.mflops:,.1f}", f"{result.conv.param_share:.1%}",
                      f"{result.fc.param_share:.1%}", f"{result.conv.flop_share:.1%}",
                      format_bytes(result.weight_bytes), format_bytes(result.inference_bytes),
                      format_bytes(result.training_bytes), f"{smallest}x{smallest}")
    _show(table)
