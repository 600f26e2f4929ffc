"""ResNet (He et al., 2015), pre-activation ResNet (He et al., 2016) and ResNeXt (Xie et al.,
2017): stages of residual blocks that learn a correction added to their input."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.layers import SqueezeExcitation, check_choices
from cnnlab.models.norms import BATCH_NORM, NO_NORM, NORMS, Norm
from cnnlab.models.registry import register

BLOCKS = ("basic", "bottleneck")


def _branch(specs, preact: bool, bias: bool, norm: Norm, se_channels: int = 0) -> nn.Sequential:
    """The residual branch: convs given as (in, out, kernel, stride, groups).

    Post-activation: conv, norm, ReLU per conv, without the last ReLU (it comes after the
    addition). Pre-activation: norm, ReLU, conv per conv. With `se_channels`, a
    squeeze-and-excitation of that many squeezed channels comes before the last conv.
    """
    layers = []
    for index, (cin, cout, kernel, stride, groups) in enumerate(specs):
        last = index == len(specs) - 1
        if last and se_channels:
            layers.append(SqueezeExcitation(cin, se_channels))
        conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups,
                         bias=bias)
        if preact:
            layers += [*norm.layers(cin), nn.ReLU(inplace=True), conv]
        else:
            layers += [conv, *norm.layers(cout), *([] if last else [nn.ReLU(inplace=True)])]
    return nn.Sequential(*layers)


def _squeezed(se_ratio: float, in_channels: int) -> int:
    """Squeeze-and-excitation width: `se_ratio` of the block's input channels (RegNetY: 0.25)."""
    if se_ratio < 0:
        raise UsageError(f"se_ratio must be 0 (no squeeze-and-excitation) or positive, such "
                         f"as 0.25, got {se_ratio}")
    return max(1, round(se_ratio * in_channels)) if se_ratio else 0


def _shortcut(in_channels: int, out_channels: int, strides: int, use_1x1conv: bool, bias: bool,
              norm: Norm) -> nn.Module:
    """The identity, or a strided 1x1 convolution (then its norm, if any) to match shapes."""
    if not use_1x1conv:
        if in_channels != out_channels or strides != 1:
            raise UsageError(f"a residual block from {in_channels} to {out_channels} channels "
                             f"with stride {strides} needs use_1x1conv=True")
        return nn.Identity()
    conv = nn.Conv2d(in_channels, out_channels, 1, stride=strides, bias=bias)
    return nn.Sequential(conv, *norm.layers(out_channels)) if norm else conv


class _ResidualBlock(nn.Module):
    """Adds a branch to a shortcut; post-activation blocks apply ReLU to the sum."""

    def __init__(self, branch: nn.Sequential, shortcut: nn.Module, preact: bool):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut
        self.activation = nn.Identity() if preact else nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.branch(x)
        out += self.shortcut(x)  # in place: the branch's last layer (norm or conv) keeps no output
        return self.activation(out)


class Residual(_ResidualBlock):
    """The basic block: two 3x3 convolutions with batch norm (or `norm`), plus the input.

    `use_1x1conv` projects the input with a 1x1 conv when channels or size (`strides`) change.
    `preact=True` is the pre-activation block (norm, ReLU, conv); `se_ratio` adds a
    squeeze-and-excitation before the second conv.
    """

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1, *,
                 in_channels: int | None = None, preact: bool = False, bias: bool = True,
                 shortcut_norm: bool = False, norm: Norm = BATCH_NORM, se_ratio: float = 0.0):
        in_channels = in_channels or num_channels
        specs = [(in_channels, num_channels, 3, strides, 1),
                 (num_channels, num_channels, 3, 1, 1)]
        shortcut = norm if shortcut_norm else NO_NORM
        super().__init__(_branch(specs, preact, bias, norm, _squeezed(se_ratio, in_channels)),
                         _shortcut(in_channels, num_channels, strides, use_1x1conv, bias,
                                   shortcut), preact)


class ResNeXtBlock(_ResidualBlock):
    """The bottleneck block: 1x1 conv down to `num_channels * bot_mul` channels, a grouped 3x3 conv
    whose groups each hold `group_width` channels, and a 1x1 conv back up; plus the input.

    With one group this is ResNet-50's bottleneck. The projection shortcut is normalised,
    except in the pre-activation form (`preact=True`) unless `shortcut_norm` says otherwise.
    `se_ratio` adds a squeeze-and-excitation after the grouped conv (RegNetY: 0.25).
    """

    def __init__(self, num_channels: int, group_width: int, bot_mul: float,
                 use_1x1conv: bool = False, strides: int = 1, *, in_channels: int | None = None,
                 preact: bool = False, bias: bool = True, shortcut_norm: bool | None = None,
                 norm: Norm = BATCH_NORM, se_ratio: float = 0.0):
        in_channels = in_channels or num_channels
        bot_channels = int(round(num_channels * bot_mul))
        if bot_channels <= 0 or group_width <= 0 or bot_channels % group_width:
            raise UsageError(f"the bottleneck's {bot_channels} channels (num_channels * bot_mul) "
                             f"must split into groups of group_width={group_width}")
        specs = [(in_channels, bot_channels, 1, 1, 1),
                 (bot_channels, bot_channels, 3, strides, bot_channels // group_width),
                 (bot_channels, num_channels, 1, 1, 1)]
        normed = not preact if shortcut_norm is None else shortcut_norm
        super().__init__(_branch(specs, preact, bias, norm, _squeezed(se_ratio, in_channels)),
                         _shortcut(in_channels, num_channels, strides, use_1x1conv, bias,
                                   norm if normed else NO_NORM),
                         preact)


def stem(in_channels: int, out_channels: int = 64, bias: bool = True,
         norm: Norm = BATCH_NORM) -> nn.Sequential:
    """7x7 stride-2 conv, batch norm (or `norm`), ReLU and a 3x3 stride-2 max pool: a quarter of
    the side."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 7, 2, 3, bias=bias),
                         *norm.layers(out_channels), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, stride=2, padding=1))


class ResNet(nn.Sequential):
    """A stem, one stage per entry of `layers` (blocks per stage), and a global-average-pool head.

    Stage i has `widths[i]` channels (basic) or 4x that (bottleneck, whose 3x3 conv has
    `widths[i] * width_per_group / 64 * groups` channels: ResNeXt-50 32x4d is groups=32,
    width_per_group=4). Every stage but the first halves the side. `bias=True` with plain 1x1
    shortcuts is the chapter's layout; torchvision's is bias=False, shortcut_norm=True. `norm`
    replaces every batch norm (`norm_affine=False` fixes their scale and shift).
    """

    OPTION_CHOICES = {"block": BLOCKS, "norm": NORMS}

    def __init__(self, layers: tuple = (2, 2, 2, 2), block: str = "basic", in_channels: int = 1,
                 num_classes: int = 10, widths: tuple = (64, 128, 256, 512), groups: int = 1,
                 width_per_group: int = 64, preact: bool = False, bias: bool = True,
                 shortcut_norm: bool | None = None, norm: str = "batch",
                 norm_affine: bool = True):
        check_choices(ResNet, block=block, norm=norm)
        if len(layers) != len(widths) or min(layers) <= 0:
            raise UsageError(f"ResNet needs one positive block count per width {tuple(widths)}, "
                             f"got layers={tuple(layers)}")
        normalise = Norm(norm, norm_affine)
        options = {"preact": preact, "bias": bias, "norm": normalise}
        if shortcut_norm is not None:
            options["shortcut_norm"] = shortcut_norm
        parts = [("stem", stem(in_channels, 64, bias, normalise))]
        channels = 64
        for index, (depth, width) in enumerate(zip(layers, widths, strict=True)):
            blocks = []
            for position in range(depth):
                strides = 2 if index > 0 and position == 0 else 1
                if block == "basic":
                    out = width
                    unit = Residual(out, channels != out or strides != 1, strides,
                                    in_channels=channels, **options)
                else:
                    out = 4 * width
                    bot = width * width_per_group // 64 * groups
                    unit = ResNeXtBlock(out, bot // groups, bot / out,
                                        channels != out or strides != 1, strides,
                                        in_channels=channels, **options)
                blocks.append(unit)
                channels = out
            parts.append((f"stage{index + 1}", nn.Sequential(*blocks)))
        final_norm = [*normalise.layers(channels), nn.ReLU(inplace=True)] if preact else []
        parts.append(("head", nn.Sequential(*final_norm, nn.AdaptiveAvgPool2d((1, 1)),
                                            nn.Flatten(), nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(parts))


TORCHVISION_LAYOUT = {"bias": False, "shortcut_norm": True}

RESNETS = {
    "resnet18": ({"layers": (2, 2, 2, 2)}, "ResNet-18: basic blocks"),
    "resnet34": ({"layers": (3, 4, 6, 3)}, "ResNet-34: basic blocks"),
    "resnet50": ({"layers": (3, 4, 6, 3), "block": "bottleneck"}, "ResNet-50: bottlenecks"),
    "resnet101": ({"layers": (3, 4, 23, 3), "block": "bottleneck"}, "ResNet-101: bottlenecks"),
    "resnet152": ({"layers": (3, 8, 36, 3), "block": "bottleneck"}, "ResNet-152: bottlenecks"),
    "preact-resnet18": ({"layers": (2, 2, 2, 2), "preact": True},
                        "ResNet-18 with pre-activation blocks (BN, ReLU, conv)"),
    "preact-resnet50": ({"layers": (3, 4, 6, 3), "block": "bottleneck", "preact": True},
                        "ResNet-50 with pre-activation bottlenecks"),
    "resnext50": ({"layers": (3, 4, 6, 3), "block": "bottleneck", "groups": 32,
                   "width_per_group": 4}, "ResNeXt-50 32x4d: grouped bottlenecks"),
}
"""Each name's configuration of `ResNet` and its description."""


for _name, (_preset, _description) in RESNETS.items():
    register(_name, ResNet, preset=_preset, family="resnet", input_size=96, lr=0.01,
             imagenet_layout=TORCHVISION_LAYOUT, description=_description)
