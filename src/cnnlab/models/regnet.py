"""AnyNet and RegNetX (Radosavovic et al., 2020): a stem, stages of ResNeXt blocks and a head,
with stage widths and depths from the RegNet rule."""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.layers import check_choices
from cnnlab.models.norms import BATCH_NORM, NORMS, Norm
from cnnlab.models.registry import register
from cnnlab.models.resnet import Residual, ResNeXtBlock

BLOCKS = ("bottleneck", "basic")

REGNETX32_ARCH = ((4, 32, 16, 1.0), (6, 80, 16, 1.0))
"""The chapter's RegNetX-32: (depth, channels, group width, bottleneck multiplier) per stage."""


def anynet_stage(depth: int, num_channels: int, group_width: int, bot_mul: float, *,
                 in_channels: int, bias: bool = True, block: str = "bottleneck",
                 norm: Norm = BATCH_NORM, se_ratio: float = 0.0) -> nn.Sequential:
    """`depth` ResNeXt blocks (or basic residual blocks, which ignore group width and bot_mul);
    the first halves the side and changes the channels."""
    def unit(channels_in: int | None, first: bool) -> nn.Module:
        shape = {"use_1x1conv": first, "strides": 2 if first else 1, "in_channels": channels_in}
        common = {"bias": bias, "norm": norm, "se_ratio": se_ratio}
        if block == "basic":
            return Residual(num_channels, shortcut_norm=True, **shape, **common)
        return ResNeXtBlock(num_channels, group_width, bot_mul, **shape, **common)

    return nn.Sequential(unit(in_channels, True), *(unit(None, False) for _ in range(depth - 1)))


def _group_width(channels: int, bot_mul: float, group_width: int, groups: int) -> int:
    """A stage's group width: its own, or every stage's `group_width`, or the width that splits
    its bottleneck into `groups` groups (groups=1: ungrouped convs)."""
    if not groups:
        return group_width
    bottleneck = int(round(channels * bot_mul))
    if bottleneck % groups:
        raise UsageError(f"AnyNet groups={groups} must divide each stage's {bottleneck} "
                         f"bottleneck channels; use groups=1 for ungrouped convolutions")
    return bottleneck // groups


class AnyNet(nn.Sequential):
    """Stem (3x3 stride-2 conv, BN, ReLU), one stage per `arch` entry
    (depth, channels, group width, bottleneck multiplier), global-average-pool head.

    The design-space variants: `block="basic"` (two 3x3 convs, no bottleneck), `group_width`
    (every stage's, instead of the arch's) or `groups` (groups per 3x3 conv: 1 "de-ResNeXt-ifies"
    the net), `se_ratio` (RegNetY's squeeze-and-excitation, 0.25), `norm` for every batch norm.
    """

    OPTION_CHOICES = {"block": BLOCKS, "norm": NORMS}

    def __init__(self, arch: tuple = REGNETX32_ARCH, stem_channels: int = 32,
                 in_channels: int = 1, num_classes: int = 10, bias: bool = True,
                 block: str = "bottleneck", group_width: int = 0, groups: int = 0,
                 se_ratio: float = 0.0, norm: str = "batch", norm_affine: bool = True):
        check_choices(AnyNet, block=block, norm=norm)
        if group_width < 0 or groups < 0 or (group_width and groups):
            raise UsageError(f"AnyNet takes group_width or groups (each 0 for the arch's own, "
                             f"else positive), not both; got group_width={group_width} and "
                             f"groups={groups}")
        if block == "basic" and (group_width or groups):
            raise UsageError("AnyNet's basic blocks have ungrouped convolutions; group_width "
                             "and groups need block=bottleneck")
        normalise = Norm(norm, norm_affine)
        parts = [("stem", nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, stride=2, padding=1, bias=bias),
            *normalise.layers(stem_channels), nn.ReLU(inplace=True)))]
        channels = stem_channels
        for index, (depth, num_channels, stage_group, bot_mul) in enumerate(arch):
            width = _group_width(num_channels, bot_mul, group_width or stage_group, groups)
            parts.append((f"stage{index + 1}",
                          anynet_stage(depth, num_channels, width, bot_mul, in_channels=channels,
                                       bias=bias, block=block, norm=normalise,
                                       se_ratio=se_ratio)))
            channels = num_channels
        parts.append(("head", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                            nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(parts))


def regnet_stages(w0: float, wa: float, wm: float, depth: int, group_width: int,
                  bot_mul: float = 1.0, quantum: int = 8) -> list[tuple[int, int, int, float]]:
    """The RegNet width rule: AnyNet stages (depth, width, group width, bot_mul).

    Block j gets the linear width w0 + wa*j, snapped to w0 * wm**k for the nearest integer k and
    rounded to a multiple of `quantum`; consecutive blocks of equal width form a stage. Each
    stage's bottleneck width is then rounded to a multiple of its group width (at most the width).
    For RegNetX-400MF (24, 24.48, 2.54, 22, 16) this gives widths 32, 64, 160, 400.
    """
    if not (w0 > 0 and wa >= 0 and wm > 1 and depth > 0 and group_width > 0):
        raise UsageError(f"the RegNet rule needs w0 > 0, wa >= 0, wm > 1, depth > 0 and "
                         f"group_width > 0, got w0={w0}, wa={wa}, wm={wm}, depth={depth}, "
                         f"group_width={group_width}")
    widths = []
    for j in range(depth):
        k = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        widths.append(int(round(w0 * wm**k / quantum) * quantum))
    stages: list[list[int]] = []  # [width, depth] runs
    for width in widths:
        if stages and stages[-1][0] == width:
            stages[-1][1] += 1
        else:
            stages.append([width, 1])
    arch = []
    for width, stage_depth in stages:
        bot = width * bot_mul
        group = min(group_width, int(bot))
        arch.append((stage_depth, int(round(_to_multiple(bot, group) / bot_mul)), group, bot_mul))
    return arch


def _to_multiple(value: float, divisor: int) -> int:
    """The nearest multiple of `divisor` (halves round up), raised by one step if that loses more
    than a tenth of `value`."""
    multiple = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return multiple + divisor if multiple < 0.9 * value else multiple


class RegNetX(AnyNet):
    """An AnyNet whose stages follow `regnet_stages(w0, wa, wm, depth, group_width, bot_mul)`
    (RegNetX-400MF by default), with AnyNet's variants."""

    def __init__(self, w0: float = 24.0, wa: float = 24.48, wm: float = 2.54, depth: int = 22,
                 group_width: int = 16, bot_mul: float = 1.0, stem_channels: int = 32,
                 in_channels: int = 1, num_classes: int = 10, bias: bool = True,
                 block: str = "bottleneck", groups: int = 0, se_ratio: float = 0.0,
                 norm: str = "batch", norm_affine: bool = True):
        super().__init__(regnet_stages(w0, wa, wm, depth, group_width, bot_mul), stem_channels,
                         in_channels, num_classes, bias, block=block, groups=groups,
                         se_ratio=se_ratio, norm=norm, norm_affine=norm_affine)


TORCHVISION_LAYOUT = {"bias": False}


_REGNET = {"family": "regnet", "input_size": 96, "lr": 0.05, "imagenet_layout": TORCHVISION_LAYOUT}
register("regnetx32", AnyNet, preset={"arch": REGNETX32_ARCH, "stem_channels": 32}, **_REGNET,
         description="the chapter's RegNetX-32: stages (4, 32) and (6, 80), group width 16")
register("regnetx-400mf", RegNetX, preset={"w0": 24.0, "wa": 24.48, "wm": 2.54, "depth": 22,
                                           "group_width": 16}, **_REGNET,
         description="RegNetX-400MF from the width rule (w0 24, wa 24.48, wm 2.54, depth 22)")
