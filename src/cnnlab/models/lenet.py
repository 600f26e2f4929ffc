"""LeNet-5 (LeCun et al., 1998) as the chapter writes it, plus ReLU/max-pool and norm variants."""

from __future__ import annotations

from functools import partial

from torch import nn

from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten, check_choices
from cnnlab.models.norms import NORMS, Norm
from cnnlab.models.registry import register

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": partial(nn.ReLU, inplace=True)}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet(nn.Sequential):
    """Two 5x5 conv + pool stages and three fully connected layers, as one flat Sequential.

    `norm` (one of `cnnlab.models.norms.NORMS`) puts a normalisation layer between the layers
    chosen by `norm_at` (the convolutions, the hidden dense layers or all) and their activation;
    `norm_affine=False` fixes its scale and shift. `bias=False` drops the biases of every layer
    but the output, and `dropout` follows each hidden dense layer's activation.
    """

    OPTION_CHOICES = {"activation": tuple(ACTIVATIONS), "pool": tuple(POOLS), "norm": NORMS,
                      "norm_at": ("conv", "fc", "all")}

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid",
                 pool: str = "avg", norm: str = "none", norm_at: str = "all",
                 norm_affine: bool = True, bias: bool = True, dropout: float = 0.0,
                 padding: int = 2, input_size: int = 28):
        check_choices(LeNet, activation=activation, pool=pool, norm=norm, norm_at=norm_at)
        act, pooling = ACTIVATIONS[activation], POOLS[pool]
        conv_norm = Norm(norm if norm_at != "fc" else "none", norm_affine)
        fc_norm = Norm(norm if norm_at != "conv" else "none", norm_affine)
        convs = [nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding, bias=bias),
                 *conv_norm.layers(6), act(), pooling(kernel_size=2, stride=2),
                 nn.Conv2d(6, 16, kernel_size=5, bias=bias), *conv_norm.layers(16),
                 act(), pooling(kernel_size=2, stride=2), Flatten()]
        flat = flat_features(nn.Sequential(*convs), in_channels, input_size, "LeNet")
        dense = []
        for width in (120, 84):
            dense += [nn.Linear(flat, width, bias=bias), *fc_norm.layers(width, 2), act(),
                      *([nn.Dropout(dropout)] if dropout else [])]
            flat = width
        super().__init__(*convs, *dense, nn.Linear(flat, num_classes))
        self.input_size = input_size


_LENET = {"family": "lenet", "input_size": 28, "lr": 0.1, "sized": True}
register("lenet", LeNet, description="the chapter's LeNet-5: sigmoid, average pooling", **_LENET)
register("lenet-modern", LeNet, preset={"activation": "relu", "pool": "max"},
         description="LeNet-5 with ReLU and max pooling", **_LENET)
register("lenet-bn", LeNet, preset={"norm": "batch", "padding": 0},
         description="LeNet-5 with nn.BatchNorm after every conv and linear layer", **_LENET)
register("lenet-bn-scratch", LeNet, preset={"norm": "scratch", "padding": 0},
         description="LeNet-5 with the from-scratch BatchNorm of cnnlab.scratch", **_LENET)
