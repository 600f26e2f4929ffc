"""DenseNet (Huang et al., 2017): each layer's output is concatenated onto its input."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cnnlab.errors import UsageError
from cnnlab.models.layers import check_choices
from cnnlab.models.norms import BATCH_NORM, NORMS, Norm
from cnnlab.models.registry import register
from cnnlab.models.resnet import stem

MERGES = ("concat", "add")
TRANSITION_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def conv_block(num_channels: int, *, in_channels: int, bn_size: int = 0, bias: bool = True,
               norm: Norm = BATCH_NORM, out_channels: int | None = None) -> nn.Sequential:
    """BN (or `norm`), ReLU, 3x3 conv to `out_channels` (default `num_channels`, the growth rate);
    with `bn_size` > 0, a 1x1 bottleneck conv to `bn_size * num_channels` channels (with its
    norm, ReLU) comes first."""
    layers = [*norm.layers(in_channels), nn.ReLU(inplace=True)]
    if bn_size:
        width = bn_size * num_channels
        layers += [nn.Conv2d(in_channels, width, 1, bias=bias), *norm.layers(width),
                   nn.ReLU(inplace=True)]
        in_channels = width
    layers.append(nn.Conv2d(in_channels, out_channels or num_channels, 3, padding=1, bias=bias))
    return nn.Sequential(*layers)


def _recomputed(layers: nn.Sequential, features: list[torch.Tensor]) -> torch.Tensor:
    """`layers` on the concatenated `features`, keeping nothing in between for the backward
    pass, which runs them again (torch.utils.checkpoint). The rerun puts back the running
    statistics it moves, so each batch counts once, as without recomputation."""
    calls = []

    def run(*tensors):
        calls.append(None)
        if len(calls) == 1:
            return layers(torch.cat(tensors, 1))
        saved = [buffer.clone() for buffer in layers.buffers()]
        try:
            return layers(torch.cat(tensors, 1))
        finally:
            for buffer, value in zip(layers.buffers(), saved, strict=True):
                buffer.copy_(value)

    return checkpoint(run, *features, use_reentrant=False)


class DenseBlock(nn.Module):
    """`num_convs` conv blocks, each fed everything before it: adds `num_convs * num_channels`
    channels to the input.

    `merge="add"` sums each block's output onto its input instead (ResNet-like; the channels stay
    the input's). `memory_efficient` recomputes each layer's concatenation, norm, ReLU and first
    conv (the bottleneck) in the backward pass instead of keeping them: the same gradients for
    less training memory.
    """

    def __init__(self, num_convs: int, num_channels: int, *, in_channels: int,
                 bn_size: int = 0, bias: bool = True, norm: Norm = BATCH_NORM,
                 merge: str = "concat", memory_efficient: bool = False):
        super().__init__()
        if merge not in MERGES:
            raise UsageError(f"unknown DenseBlock merge {merge!r}; use one of {', '.join(MERGES)}")
        grows = merge == "concat"
        self.net = nn.ModuleList(
            conv_block(num_channels, in_channels=in_channels + grows * i * num_channels,
                       bn_size=bn_size, bias=bias, norm=norm,
                       out_channels=None if grows else in_channels)
            for i in range(num_convs))
        self.merge, self.memory_efficient = merge, memory_efficient
        self.out_channels = in_channels + grows * num_convs * num_channels

    def _layer(self, block: nn.Sequential, features: list[torch.Tensor]) -> torch.Tensor:
        """One conv block on the concatenated features (recomputed up to its first conv)."""
        if self.memory_efficient and torch.is_grad_enabled():
            split = 1 + next(index for index, layer in enumerate(block)
                             if isinstance(layer, nn.Conv2d))
            return block[split:](_recomputed(block[:split], features))
        return block(torch.cat(features, 1))

    def forward(self, x):
        if self.merge == "add":
            for block in self.net:
                x = x + self._layer(block, [x])
            return x
        features = [x]
        for block in self.net:
            features.append(self._layer(block, features))
        return torch.cat(features, dim=1)


def transition_block(num_channels: int, *, in_channels: int, bias: bool = True,
                     norm: Norm = BATCH_NORM, pool: str = "avg") -> nn.Sequential:
    """BN (or `norm`), ReLU, 1x1 conv to `num_channels`, 2x2 average (or max) pool: fewer
    channels, half the side."""
    if pool not in TRANSITION_POOLS:
        raise UsageError(f"unknown transition pool {pool!r}; use one of "
                         f"{', '.join(TRANSITION_POOLS)}")
    return nn.Sequential(*norm.layers(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, num_channels, 1, bias=bias),
                         TRANSITION_POOLS[pool](2, stride=2))


class DenseNet(nn.Sequential):
    """ResNet's stem, dense blocks of `arch[i]` layers with transition blocks between them
    (keeping `compression` of the channels), and a BN-ReLU-pool head.

    The chapter's model has no bottleneck (`bn_size=0`); DenseNet-BC (121 and up) has bn_size=4.
    `norm` replaces every batch norm; `transition_pool`, `merge` and `memory_efficient` are the
    exercises' variants (see `DenseBlock`).
    """

    OPTION_CHOICES = {"norm": NORMS, "transition_pool": tuple(TRANSITION_POOLS),
                      "merge": MERGES}

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_channels: int = 64,
                 growth_rate: int = 32, arch: tuple = (4, 4, 4, 4), bn_size: int = 0,
                 compression: float = 0.5, bias: bool = True, norm: str = "batch",
                 norm_affine: bool = True, transition_pool: str = "avg", merge: str = "concat",
                 memory_efficient: bool = False):
        check_choices(DenseNet, norm=norm, transition_pool=transition_pool, merge=merge)
        if not arch or min(arch) <= 0 or growth_rate <= 0 or not 0 < compression <= 1:
            raise UsageError(f"DenseNet needs positive arch entries and growth_rate and "
                             f"0 < compression <= 1, got arch={tuple(arch)}, "
                             f"growth_rate={growth_rate}, compression={compression}")
        normalise = Norm(norm, norm_affine)
        layer = {"bn_size": bn_size, "bias": bias, "norm": normalise, "merge": merge,
                 "memory_efficient": memory_efficient}
        parts = [("stem", stem(in_channels, num_channels, bias, normalise))]
        channels = num_channels
        for index, num_convs in enumerate(arch):
            block = DenseBlock(num_convs, growth_rate, in_channels=channels, **layer)
            parts.append((f"dense{index + 1}", block))
            channels = block.out_channels
            if index < len(arch) - 1:
                reduced = max(1, int(channels * compression))
                parts.append((f"transition{index + 1}",
                              transition_block(reduced, in_channels=channels, bias=bias,
                                               norm=normalise, pool=transition_pool)))
                channels = reduced
        parts.append(("head", nn.Sequential(*normalise.layers(channels), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                            nn.Linear(channels, num_classes))))
        super().__init__(OrderedDict(parts))


DENSENETS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32),
             264: (6, 12, 64, 48)}
"""Dense-block depths of DenseNet-BC (paper Table 1), growth rate 32."""

TORCHVISION_LAYOUT = {"bias": False}

register("densenet", DenseNet, family="densenet", input_size=96, lr=0.01,
         imagenet_layout=TORCHVISION_LAYOUT,
         description="the chapter's DenseNet: growth 32, four blocks of 4 convs")
for _depth, _arch in DENSENETS.items():
    register(f"densenet{_depth}", DenseNet, preset={"arch": _arch, "bn_size": 4},
             family="densenet", input_size=96, lr=0.01, imagenet_layout=TORCHVISION_LAYOUT,
             description=f"DenseNet-BC-{_depth}: bottleneck layers, compression 0.5")
