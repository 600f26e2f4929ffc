"""The registry: names, recipes, configurations, initialisation and errors."""

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.models import Recipe, create_model, init_weights, list_models, model_info

ISSUE_NAMES = [
    "lenet", "lenet-modern", "lenet-bn", "lenet-bn-scratch", "alexnet", "vgg11", "vgg13",
    "vgg16", "vgg19", "vgg-small", "nin", "googlenet", "googlenet-bn", "resnet18", "resnet34",
    "resnet50", "resnet101", "resnet152", "preact-resnet18", "preact-resnet50", "resnext50",
    "densenet", "densenet121", "densenet169", "densenet201", "densenet264", "regnetx32",
]

SEED_RECIPES = {  # (input side, lr): what each model's d2l chapter trains it with
    "lenet": (28, 0.1), "lenet-modern": (28, 0.1), "lenet-bn": (28, 0.1),
    "alexnet": (224, 0.01), "vgg-small": (224, 0.01), "nin": (224, 0.05),
    "googlenet": (96, 0.01), "resnet18": (96, 0.01), "densenet": (96, 0.01),
    "regnetx32": (96, 0.05),
}


def test_every_issue_name_is_registered_in_chapter_order():
    names = list_models()
    assert set(ISSUE_NAMES) <= set(names)
    assert names[0] == "lenet" and names.index("alexnet") < names.index("vgg11") \
        < names.index("resnet18") < names.index("densenet") < names.index("regnetx32")


def test_top_level_package_exports_the_registry():
    assert cnnlab.list_models() == list_models()
    model = cnnlab.create_model("lenet")
    assert isinstance(model, nn.Module) and model.cnnlab_name == "lenet"


@pytest.mark.parametrize("name", ["lenet", "alexnet", "vgg-small", "nin"])
def test_sized_models_record_their_input_size(name):
    info = model_info(name)
    assert info.sized
    with torch.device("meta"):
        assert create_model(name, init=None).input_size == info.input_size
        assert create_model(name, config="imagenet", init=None).input_size == 224


@pytest.mark.parametrize("name", SEED_RECIPES)
def test_seed_recipes(name):
    resize, lr = SEED_RECIPES[name]
    info = model_info(name)
    assert info.recipe == Recipe(resize=resize, lr=lr, batch_size=128, epochs=10,
                                 optimizer="sgd")
    assert info.input_size == resize


FAMILY_OF = {"preact-resnet18": "resnet", "preact-resnet50": "resnet", "resnext50": "resnet",
             "regnetx32": "regnet"}


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_every_entry_has_a_family_description_and_sensible_recipe(name):
    info = model_info(name)
    assert info.name == name
    assert info.family == FAMILY_OF.get(name, name.split("-")[0].rstrip("0123456789"))
    assert info.description and info.recipe.resize == info.input_size
    assert info.input_size in (28, 96, 224) and 0.001 <= info.recipe.lr <= 0.1


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'; did you mean resnet18.*"
                                         r"run `cnnlab models`"):
        create_model("resnet19")
    with pytest.raises(ValueError, match="unknown model 'xyz'; run `cnnlab models`"):
        model_info("xyz")


def test_configurations_and_overrides():
    assert create_model("resnet18", config="imagenet", init=None).stem[0].in_channels == 3
    assert create_model("resnet18", config="imagenet", init=None).head[-1].out_features == 1000
    model = create_model("lenet", num_classes=5, in_channels=3)
    assert model(torch.randn(2, 3, 28, 28)).shape == (2, 5)
    with pytest.raises(ValueError, match="config=cifar is not allowed"):
        create_model("lenet", config="cifar")
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        create_model("lenet", num_classes=0)


def test_imagenet_layout_of_the_chapter_models():
    chapter, torchvision_like = create_model("resnet18"), create_model("resnet18",
                                                                       config="imagenet")
    assert chapter.stem[0].bias is not None and torchvision_like.stem[0].bias is None
    assert isinstance(torchvision_like.stage2[0].shortcut[1], nn.BatchNorm2d)
    assert isinstance(chapter.stage2[0].shortcut, nn.Conv2d)


def test_no_lazy_layers_anywhere():
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name, init=None)
        assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules())


def bound_ratio(weight):
    """Largest |w| over the Xavier-uniform bound sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return weight.abs().max().item() / math.sqrt(6 / (fan_in + fan_out))


def test_xavier_is_the_default_and_kaiming_an_option():
    torch.manual_seed(0)
    model = create_model("alexnet")
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(0.95 < bound_ratio(layer.weight) <= 1 + 1e-6 for layer in layers)
    kaiming = create_model("alexnet", init="kaiming")
    fc = kaiming[-3][0]
    assert fc.weight.std().item() == pytest.approx(math.sqrt(2 / fc.in_features), rel=0.02)
    default = create_model("alexnet", init=None)
    assert bound_ratio(default[-3][0].weight) < 0.6  # PyTorch's own, narrower initialisation
    with pytest.raises(ValueError, match="unknown init 'he'"):
        init_weights(model, "he")


def test_the_model_zoo_does_not_need_torchvision():
    code = ("import sys, cnnlab.models as m; m.list_models(); m.create_model('lenet'); "
            "assert 'torchvision' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
