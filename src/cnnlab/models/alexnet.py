"""AlexNet (Krizhevsky et al., 2012) in the chapter's single-GPU form."""

from __future__ import annotations

from torch import nn

from cnnlab.models.inputs import flat_features
from cnnlab.models.layers import Flatten, conv_relu, fc_block
from cnnlab.models.registry import register


class AlexNet(nn.Sequential):
    """Five convolutions (11x11 stride 4, 5x5, three 3x3), three max pools, three dense layers.

    Each top-level child is one stage: a conv+ReLU, a pool, the flatten or a dense layer.
    The first dense layer is sized for square inputs of `input_size` pixels.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5,
                 input_size: int = 224):
        features = [
            conv_relu(in_channels, 96, 11, stride=4, padding=1), nn.MaxPool2d(3, stride=2),
            conv_relu(96, 256, 5, padding=2), nn.MaxPool2d(3, stride=2),
            conv_relu(256, 384, 3, padding=1), conv_relu(384, 384, 3, padding=1),
            conv_relu(384, 256, 3, padding=1), nn.MaxPool2d(3, stride=2), Flatten(),
        ]
        flat = flat_features(nn.Sequential(*features), in_channels, input_size, "AlexNet")
        super().__init__(*features, fc_block(flat, 4096, dropout), fc_block(4096, 4096, dropout),
                         nn.Linear(4096, num_classes))
        self.input_size = input_size


register("alexnet", AlexNet, family="alexnet", input_size=224, lr=0.01, sized=True,
         description="AlexNet: 5 convs and 3 dense layers with dropout, ReLU, max pooling")
