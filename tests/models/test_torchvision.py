"""The ImageNet configuration equals torchvision's architectures: weights load across and give
torchvision's logits at any input side torchvision accepts."""

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.models import create_model, load_torchvision

TORCHVISION_NAMES = {"resnext50": "resnext50_32x4d", "regnetx-400mf": "regnet_x_400mf"}
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50": 25_028_904,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
    "googlenet": 6_624_904, "regnetx-400mf": 5_495_976, "alexnet": 61_100_840,
}
"""Parameter counts of the ImageNet configurations: those of torchvision's models of the same
names (its GoogLeNet without the auxiliary heads, its AlexNet rather than the chapter's)."""


def torchvision_model(name):
    builder = getattr(torchvision.models, TORCHVISION_NAMES.get(name, name))
    if name == "googlenet":
        return builder(aux_logits=False, transform_input=False, init_weights=True)
    return builder()


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", TORCHVISION_PARAMS)
def test_imagenet_parameter_counts_equal_torchvision(name):
    with torch.device("meta"):
        ours = create_model(name, config="imagenet", init=None)
        theirs = torchvision_model(name) if name != "regnetx-400mf" else None
    assert count(ours) == TORCHVISION_PARAMS[name]
    if theirs is not None:
        assert count(theirs) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", [name for name in TORCHVISION_PARAMS if name != "regnetx-400mf"])
def test_every_torchvision_state_dict_pairs_up_entry_by_entry(name):
    with torch.device("meta"):  # kinds and shapes only
        ours = create_model(name, config="imagenet", init=None)
        load_torchvision(ours, torchvision_model(name))


def randomise_norm_statistics(model):
    """Give every batch norm distinct statistics and affine parameters, so that a mix-up of
    layers cannot hide behind the defaults (mean 0, variance 1, weight 1, bias 0)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)


SIDES = {"vgg11": (160, 224, 256), "alexnet": (160, 224, 256)}
"""Sides whose feature maps are smaller and larger than the 7x7 (VGG) and 6x6 (AlexNet) that
torchvision's adaptive pooling makes of them; the others run at an odd side (ceil-mode pooling,
padding) and two even ones, small enough to keep the test quick."""


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50", "vgg11", "densenet121",
                                  "googlenet", "alexnet"])
def test_torchvision_weights_give_torchvision_logits_at_several_sides(name):
    torch.manual_seed(0)
    theirs = torchvision_model(name).eval()
    randomise_norm_statistics(theirs)
    ours = load_torchvision(create_model(name, config="imagenet", init=None), theirs).eval()
    for side in SIDES.get(name, (97, 160, 224)):
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            expected, got = theirs(x), ours(x)
        assert got.shape == (1, 1000)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0, msg=f"at {side}x{side}")


def test_batch_norm_vgg_is_torchvisions_vgg_bn():
    with torch.device("meta"):
        ours = create_model("vgg11", config="imagenet", norm="batch", bias=True, init=None)
        theirs = torchvision.models.vgg11_bn()
    assert count(ours) == count(theirs) == 132_868_840
    load_torchvision(ours, theirs)


def test_squeeze_excitation_regnet_is_torchvisions_regnety():
    with torch.device("meta"):  # RegNetY-400MF: the width rule plus se_ratio 0.25
        ours = create_model("regnetx-400mf", config="imagenet", init=None, w0=48.0, wa=27.89,
                            wm=2.09, depth=16, group_width=8, se_ratio=0.25)
    theirs = torchvision.models.regnet_y_400mf()  # its width rule needs real tensors
    assert count(ours) == count(theirs) == 4_344_144


def test_auxiliary_classifiers_load_and_give_torchvisions_side_logits():
    torch.manual_seed(0)
    theirs = torchvision.models.googlenet(aux_logits=True, init_weights=True,
                                          transform_input=False).train()
    ours = load_torchvision(create_model("googlenet", config="imagenet", aux_logits=True,
                                         init=None), theirs).train()
    features = torch.randn(2, 512, 14, 14)  # what inception 4a hands to the first head
    torch.manual_seed(1)  # the same dropout mask
    expected = theirs.aux1(features)
    torch.manual_seed(1)
    ours.b4[1](features)
    torch.testing.assert_close(ours.b4[1].logits, expected)


def test_state_dict_source_and_auxiliary_heads_are_accepted():
    torch.manual_seed(0)
    theirs = torchvision.models.googlenet(aux_logits=True, init_weights=True)
    ours = load_torchvision(create_model("googlenet", config="imagenet", init=None),
                            theirs.state_dict())
    torch.testing.assert_close(ours.head[-1].weight, theirs.fc.weight)


def test_mismatched_models_raise_a_clear_error():
    with torch.device("meta"):
        resnet34 = torchvision.models.resnet34()
        grey = create_model("resnet18", config="imagenet", in_channels=1, init=None)
        imagenet = create_model("resnet18", config="imagenet", init=None)
    entries = f"has {len(resnet34.state_dict())} entries but the cnnlab model has 122"
    with pytest.raises(ValueError, match=entries):
        load_torchvision(imagenet, resnet34)
    with pytest.raises(ValueError, match=r"torchvision's conv1.weight \(64, 3, 7, 7\) does not "
                                         r"match cnnlab's stem.0.weight \(64, 1, 7, 7\)"):
        load_torchvision(grey, torchvision.models.resnet18().state_dict())
