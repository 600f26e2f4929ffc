"""AlexNet (Krizhevsky et al., 2012) in the chapter's single-GPU form, and torchvision's."""

from __future__ import annotations

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten, adaptive_pool, check_choices, conv_relu, fc_block
from cnnlab.models.norms import NORMS, Norm
from cnnlab.models.registry import register

CHANNELS = (96, 256, 384, 384, 256)
"""The five convolutions' channels in the chapter's AlexNet."""


class AlexNet(nn.Sequential):
    """Five convolutions (11x11 stride 4, 5x5, three 3x3), three max pools, three dense layers.

    Each top-level child is one stage: a conv+ReLU, a pool, (the adaptive pool,) the flatten or a
    dense layer. `width` multiplies every layer's channels (the exercise's simpler AlexNet);
    `norm` follows each convolution, `fc_norm` each hidden dense layer. The first dense layer is
    sized for square inputs of `input_size` pixels, or with `pooled_size` for the feature maps
    average-pooled to that side (torchvision: 6), whatever the input. torchvision's layout is
    CHANNELS_TORCHVISION with padding 2, pooled_size 6 and `dropout_first`.
    """

    OPTION_CHOICES = {"norm": NORMS, "fc_norm": NORMS}

    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5,
                 width: float = 1.0, channels: tuple = CHANNELS, padding: int = 1,
                 pooled_size: int = 0, norm: str = "none", fc_norm: str = "none",
                 norm_affine: bool = True, bias: bool = True, dropout_first: bool = False,
                 input_size: int = 224):
        check_choices(AlexNet, norm=norm, fc_norm=fc_norm)
        if width <= 0 or len(channels) != 5 or min(channels) <= 0:
            raise UsageError(f"AlexNet needs width > 0 and five positive conv channels, got "
                             f"width={width} and channels={tuple(channels)}")
        c1, c2, c3, c4, c5, hidden = (max(1, round(c * width)) for c in (*channels, 4096))
        conv = {"norm": Norm(norm, norm_affine), "bias": bias}
        features = [
            conv_relu(in_channels, c1, 11, stride=4, padding=padding, **conv),
            nn.MaxPool2d(3, stride=2),
            conv_relu(c1, c2, 5, padding=2, **conv), nn.MaxPool2d(3, stride=2),
            conv_relu(c2, c3, 3, padding=1, **conv), conv_relu(c3, c4, 3, padding=1, **conv),
            conv_relu(c4, c5, 3, padding=1, **conv), nn.MaxPool2d(3, stride=2),
            *adaptive_pool(pooled_size), Flatten(),
        ]
        flat = flat_features(nn.Sequential(*features), in_channels, input_size, "AlexNet")
        dense = {"norm": Norm(fc_norm, norm_affine), "bias": bias, "dropout_first": dropout_first}
        super().__init__(*features, fc_block(flat, hidden, dropout, **dense),
                         fc_block(hidden, hidden, dropout, **dense),
                         nn.Linear(hidden, num_classes))
        self.input_size = input_size


CHANNELS_TORCHVISION = (64, 192, 384, 256, 256)

TORCHVISION_LAYOUT = {"channels": CHANNELS_TORCHVISION, "padding": 2, "pooled_size": 6,
                      "dropout_first": True}

register("alexnet", AlexNet, family="alexnet", input_size=224, lr=0.01, sized=True,
         imagenet_layout=TORCHVISION_LAYOUT,
         description="AlexNet: 5 convs and 3 dense layers with dropout, ReLU, max pooling")
