"""The building blocks keep or change shapes as their chapters say (residual, dense,
transition, inception, VGG and NiN blocks), and each family's options (VGG arch, NiN, GoogLeNet,
ResNet, ...) build what they name."""

import pytest
import torch
from torch import nn
from torchvision.models.regnet import BlockParams

from cnnlab.models import (
    AnyNet,
    DenseBlock,
    Inception,
    Residual,
    ResNeXtBlock,
    create_model,
    nin_block,
    regnet_stages,
    transition_block,
    vgg_block,
)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_residual_keeps_the_shape_and_the_1x1_variant_halves_it():
    x = torch.randn(4, 3, 6, 6)
    assert Residual(3)(x).shape == (4, 3, 6, 6)
    assert Residual(6, use_1x1conv=True, strides=2, in_channels=3)(x).shape == (4, 6, 3, 3)


def test_residual_without_projection_refuses_a_shape_change():
    with pytest.raises(ValueError, match="from 3 to 6 channels with stride 2 needs use_1x1conv"):
        Residual(6, strides=2, in_channels=3)


def test_resnext_block_argument_is_the_group_width():
    block = ResNeXtBlock(32, group_width=16, bot_mul=1)
    assert block(torch.randn(4, 32, 96, 96)).shape == (4, 32, 96, 96)
    grouped = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [conv.groups for conv in grouped] == [2]  # 32 bottleneck channels / width 16
    with pytest.raises(ValueError, match="must split into groups of group_width=5"):
        ResNeXtBlock(32, group_width=5, bot_mul=1)


def test_dense_block_and_transition_block():
    x = torch.randn(4, 3, 8, 8)
    y = DenseBlock(2, 10, in_channels=3)(x)
    assert y.shape == (4, 23, 8, 8)
    assert transition_block(10, in_channels=23)(y).shape == (4, 10, 4, 4)


def test_inception_concatenates_its_four_paths():
    block = Inception(64, (96, 128), (16, 32), 32, in_channels=192)
    assert block(torch.randn(2, 192, 12, 12)).shape == (2, 256, 12, 12)
    wide = [m.kernel_size for m in block.p3.modules() if isinstance(m, nn.Conv2d)]
    assert wide == [(1, 1), (5, 5)]


def test_vgg_block_and_any_arch():
    block = vgg_block(2, 16, in_channels=1)
    assert block(torch.randn(2, 1, 32, 32)).shape == (2, 16, 16, 16)
    model = create_model("vgg11", arch=((1, 8), (2, 16)), input_size=56)
    assert model(torch.randn(2, 1, 56, 56)).shape == (2, 10)
    assert model[3][0].in_features == 16 * 14 * 14  # after two halvings of 56
    with pytest.raises(ValueError, match="VGG arch must be"):
        create_model("vgg11", arch=((1,),))


def test_vgg_with_batch_norm():
    model = create_model("vgg-small", norm="batch")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8


@pytest.mark.parametrize("num_1x1", [0, 1, 2, 3])
def test_nin_number_of_1x1_convs(num_1x1):
    assert len(nin_block(8, 3, 1, 1, in_channels=1, num_1x1=num_1x1)) == 2 * (1 + num_1x1)
    model = create_model("nin", num_1x1=num_1x1)
    assert sum(m.kernel_size == (1, 1) for m in model.modules() if isinstance(m, nn.Conv2d)) \
        == 4 * num_1x1


def test_nin_fully_connected_head():
    model = create_model("nin", head="fc", input_size=128)
    assert isinstance(model[-1], nn.Linear) and model[-1].in_features == 10 * 2 * 2
    assert model(torch.randn(2, 1, 128, 128)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"head\W+max\W.*gap"):
        create_model("nin", head="max")


def test_googlenet_with_batch_norm():
    plain, normed = create_model("googlenet"), create_model("googlenet-bn")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    convs = [m for m in normed.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in normed.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms) == 57 and all(conv.bias is None for conv in convs)


def test_bottleneck_resnets_and_resnext_widths():
    resnet50, resnext50 = create_model("resnet50"), create_model("resnext50")
    first = resnet50.stage1[0].branch
    assert [first[i].out_channels for i in (0, 3, 6)] == [64, 64, 256]
    grouped = resnext50.stage1[0].branch[3]
    assert (grouped.out_channels, grouped.groups) == (128, 32)  # 32 groups x 4 channels


def test_preactivation_blocks_start_with_batch_norm():
    model = create_model("preact-resnet18")
    for block in (model.stage1[0], model.stage3[0]):
        assert isinstance(block.branch[0], nn.BatchNorm2d) and isinstance(block.branch[1], nn.ReLU)
        assert isinstance(block.activation, nn.Identity)
    assert isinstance(model.head[0], nn.BatchNorm2d)
    assert isinstance(create_model("preact-resnet50").stage2[0].branch[0], nn.BatchNorm2d)


def test_resnet_options_are_checked():
    with pytest.raises(ValueError, match=r"block\W+wide\W.*basic"):
        create_model("resnet18", block="wide")
    with pytest.raises(ValueError, match="one positive block count per width"):
        create_model("resnet18", layers=(2, 2))


def test_densenet_options():
    model = create_model("densenet", growth_rate=12, arch=(2, 2), compression=0.25)
    assert model.dense1.out_channels == 64 + 2 * 12
    assert model.transition1[2].out_channels == int(88 * 0.25)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    bottleneck = create_model("densenet121").dense1.net[0]
    assert [m.out_channels for m in bottleneck if isinstance(m, nn.Conv2d)] == [128, 32]
    with pytest.raises(ValueError, match="0 < compression <= 1"):
        create_model("densenet", compression=0)


def test_anynet_stem_has_stride_two():
    model = AnyNet([(1, 16, 8, 1.0)], stem_channels=8)
    assert model.stem[0].stride == (2, 2)
    assert model.stem(torch.randn(2, 1, 32, 32)).shape == (2, 8, 16, 16)


@pytest.mark.parametrize(("w0", "wa", "wm", "depth", "group_width"),
                         [(24, 36.44, 2.49, 13, 8), (24, 24.48, 2.54, 22, 16),
                          (48, 36.97, 2.24, 16, 24), (80, 49.56, 2.88, 23, 40)])
def test_regnet_width_rule_matches_torchvision(w0, wa, wm, depth, group_width):
    theirs = BlockParams.from_init_params(depth=depth, w_0=w0, w_a=wa, w_m=wm,
                                          group_width=group_width)
    stages = regnet_stages(w0, wa, wm, depth, group_width)
    assert [width for _, width, _, _ in stages] == theirs.widths
    assert [d for d, _, _, _ in stages] == theirs.depths
    assert [g for _, _, g, _ in stages] == theirs.group_widths


def test_regnet_width_rule_published_regnetx_200mf():
    stages = regnet_stages(24, 36.44, 2.49, 13, 8)
    assert [(d, w) for d, w, _, _ in stages] == [(1, 24), (1, 56), (4, 152), (7, 368)]
    with pytest.raises(ValueError, match="wm > 1"):
        regnet_stages(24, 36.44, 1.0, 13, 8)


def test_regnetx_from_the_width_rule_runs():
    model = create_model("regnetx-400mf", w0=16, wa=16.0, wm=2.0, depth=4, group_width=8)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
