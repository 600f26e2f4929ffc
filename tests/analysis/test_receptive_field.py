"""Receptive fields in the summary against values worked out by hand."""

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import summary


def fields(model, side, depth=1):
    return [row["receptive_field"] for row in summary(model, side, depth=depth).rows]


def test_two_3x3_convolutions_see_5_pixels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    assert fields(model, 32) == [3, 5]


def test_stride_2_doubles_what_the_next_kernel_adds():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    assert fields(model, 32) == [3, 7]


def test_dilation_pooling_and_rectangular_kernels():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, dilation=2, padding=2),  # 1 + 2 * 2 = 5
        nn.MaxPool2d(2),  # 5 + 1 * 1 = 6, jump 2
        nn.AvgPool2d(3, stride=1, padding=1),  # 6 + 2 * 2 = 10
        nn.Conv2d(2, 2, (5, 3), padding=(2, 1)),  # height 10 + 4 * 2 = 18, width 14
    )
    assert fields(model, 64) == [5, 6, 10, 18]


def test_lenet_layers():
    lenet = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    # 5; pool: 5 + 1 = 6 (jump 2); conv: 6 + 4 * 2 = 14; pool: 14 + 1 * 2 = 16; then the
    # flattened and fully connected outputs see the whole 28 x 28 image.
    assert fields(lenet, 28) == [5, 5, 6, 14, 14, 16] + [28] * 6


def test_field_is_clipped_to_the_input():
    model = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(6)])
    assert fields(model, 16)[-1] == 13
    assert fields(model, 8)[-1] == 8


class Branches(nn.Module):
    """Inception-style: parallel paths concatenated on channels."""

    def __init__(self):
        super().__init__()
        self.small = nn.Conv2d(4, 2, 1)
        self.large = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Conv2d(2, 2, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(4, 2, 1))

    def forward(self, x):
        return torch.cat([self.small(x), self.large(x), self.pool(x)], dim=1)


class Shortcut(nn.Module):
    """Residual-style: two 3x3 convolutions added to the input."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + x)


def test_branches_and_shortcuts_take_the_largest_path():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), Branches(), Shortcut(),
                          nn.AdaptiveAvgPool2d(1))
    rows = {row["name"]: row["receptive_field"] for row in summary(model, 64, depth=3).rows}
    assert rows["0"] == 3  # jump 2 from here on
    assert rows["1.small"] == 3
    assert rows["1.large"] == 3 + 4 * 2
    assert rows["1.pool"] == 3 + 2 * 2
    assert rows["1"] == 11
    assert rows["2.conv1"] == 15 and rows["2.conv2"] == 19 and rows["2"] == 19
    assert rows["3"] == 64  # global pooling sees the whole input


def test_alexnet_features():
    from cnnlab.models import create_model

    with torch.device("meta"):
        alexnet = create_model("alexnet")
    # 11x11 stride 4; 3x3 pool stride 2 (+2*4); 5x5 (+4*8); pool (+2*8); three 3x3 (+2*16 each);
    # pool (+2*16); flatten sees everything.
    assert fields(alexnet, 224)[:9] == [11, 19, 51, 67, 99, 131, 163, 195, 224]
