"""AnyNet and RegNetX (Radosavovic et al., 2020): a stem, stages of ResNeXt blocks and a head,
with stage widths and depths from the RegNet rule."""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from cnnlab.models.registry import register
from cnnlab.models.resnet import ResNeXtBlock


def anynet_stage(depth: int, num_channels: int, group_width: int, bot_mul: float, *,
                 in_channels: int, bias: bool = True) -> nn.Sequential:
    """`depth` ResNeXt blocks; the first halves the side and changes the channels."""
    blocks = [ResNeXtBlock(num_channels, group_width, bot_mul, use_1x1conv=True, strides=2,
                           in_channels=in_channels, bias=bias)]
    blocks += [ResNeXtBlock(num_channels, group_width, bot_mul, bias=bias)
               for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


class AnyNet(nn.Sequential):
    """Stem (3x3 stride-2 conv, BN, ReLU), one stage per `arch` entry
    (depth, channels, group width, bottleneck multiplier), global-average-pool head."""

    def __init__(self, arch, stem_channels: int = 32, in_channels: int = 1,
                 num_classes: int = 10, bias: bool = True):
        parts = [("stem", nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, stride=2, padding=1, bias=bias),
            nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True)))]
        channels = stem_channels
        for index, (depth, num_channels, group_width, bot_mul) in enumerate(arch):
            parts.append((f"stage{index + 1}",
                          anynet_stage(depth, num_channels, group_width, bot_mul,
                                       in_channels=channels, bias=bias)))
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
        raise ValueError(f"the RegNet rule needs w0 > 0, wa >= 0, wm > 1, depth > 0 and "
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
    """An AnyNet whose stages follow `regnet_stages(w0, wa, wm, depth, group_width, bot_mul)`."""

    def __init__(self, w0: float, wa: float, wm: float, depth: int, group_width: int,
                 bot_mul: float = 1.0, stem_channels: int = 32, in_channels: int = 1,
                 num_classes: int = 10, bias: bool = True):
        super().__init__(regnet_stages(w0, wa, wm, depth, group_width, bot_mul), stem_channels,
                         in_channels, num_classes, bias)


TORCHVISION_LAYOUT = {"bias": False}


_REGNET = {"family": "regnet", "input_size": 96, "lr": 0.05, "imagenet_layout": TORCHVISION_LAYOUT}
register("regnetx32", AnyNet, preset={"arch": [(4, 32, 16, 1.0), (6, 80, 16, 1.0)],
                                      "stem_channels": 32}, **_REGNET,
         description="the chapter's RegNetX-32: stages (4, 32) and (6, 80), group width 16")
register("regnetx-400mf", RegNetX, preset={"w0": 24, "wa": 24.48, "wm": 2.54, "depth": 22,
                                           "group_width": 16}, **_REGNET,
         description="RegNetX-400MF from the width rule (w0 24, wa 24.48, wm 2.54, depth 22)")
