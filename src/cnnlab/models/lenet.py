"""LeNet-5 (LeCun et al., 1998) as the chapter writes it, plus ReLU/max-pool and BN variants."""

from __future__ import annotations

from functools import partial

from torch import nn

from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten
from cnnlab.models.registry import register

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": partial(nn.ReLU, inplace=True)}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def _norm(kind: str | None, num_features: int, num_dims: int) -> list[nn.Module]:
    """The normalisation layer after a conv (num_dims=4) or linear (num_dims=2) layer, if any."""
    if kind is None:
        return []
    if kind == "batch":
        return [nn.BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)]
    if kind == "scratch":
        from cnnlab.scratch.batchnorm import BatchNorm

        return [BatchNorm(num_features, num_dims)]
    raise ValueError(f"unknown norm {kind!r}; use None, 'batch' or 'scratch'")


class LeNet(nn.Sequential):
    """Two 5x5 conv + pool stages and three fully connected layers, as one flat Sequential.

    `norm="batch"` (or "scratch", the chapter's own BatchNorm) puts batch normalisation between
    every conv/linear layer and its activation.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid",
                 pool: str = "avg", norm: str | None = None, padding: int = 2,
                 input_size: int = 28):
        if activation not in ACTIVATIONS or pool not in POOLS:
            raise ValueError(f"LeNet takes activation in {list(ACTIVATIONS)} and pool in "
                             f"{list(POOLS)}, got {activation!r} and {pool!r}")
        act, pooling = ACTIVATIONS[activation], POOLS[pool]
        convs = [nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding), *_norm(norm, 6, 4),
                 act(), pooling(kernel_size=2, stride=2),
                 nn.Conv2d(6, 16, kernel_size=5), *_norm(norm, 16, 4),
                 act(), pooling(kernel_size=2, stride=2), Flatten()]
        flat = flat_features(nn.Sequential(*convs), in_channels, input_size, "LeNet")
        super().__init__(*convs,
                         nn.Linear(flat, 120), *_norm(norm, 120, 2), act(),
                         nn.Linear(120, 84), *_norm(norm, 84, 2), act(),
                         nn.Linear(84, num_classes))
        self.input_size = input_size


_LENET = {"family": "lenet", "input_size": 28, "lr": 0.1, "sized": True}
register("lenet", LeNet, description="the chapter's LeNet-5: sigmoid, average pooling", **_LENET)
register("lenet-modern", LeNet, preset={"activation": "relu", "pool": "max"},
         description="LeNet-5 with ReLU and max pooling", **_LENET)
register("lenet-bn", LeNet, preset={"norm": "batch", "padding": 0},
         description="LeNet-5 with nn.BatchNorm after every conv and linear layer", **_LENET)
register("lenet-bn-scratch", LeNet, preset={"norm": "scratch", "padding": 0},
         description="LeNet-5 with the from-scratch BatchNorm of cnnlab.scratch", **_LENET)
