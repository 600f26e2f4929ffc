"""Building a model for an input: the one input-shape parser and builder every command uses."""

import pytest
import torch

from cnnlab.errors import UsageError
from cnnlab.models.build import (
    build_for_input,
    default_input,
    input_chw,
    min_side,
    parse_input_shape,
)


@pytest.mark.parametrize(("text", "shape"), [
    ("96", (96,)), ("1x96x96", (1, 96, 96)), ("8X3x32x40", (8, 3, 32, 40)),
])
def test_input_shapes_parse(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("text", ["", "x", "1x2", "0", "1x-3x4", "a96", "1x2x3x4x5",
                                  "138619484", "1x20000x28"])  # the last two: fuzzing
def test_bad_input_shapes_are_one_usage_error(text):
    with pytest.raises(UsageError, match="input") as info:
        parse_input_shape(text)
    assert "\n" not in str(info.value)


def test_input_forms_become_channels_height_width():
    assert input_chw("lenet") == (1, 28, 28)
    assert input_chw("lenet", (32,)) == (1, 32, 32)
    assert input_chw("lenet", 32) == (1, 32, 32)
    assert input_chw("lenet", (3, 40, 40)) == (3, 40, 40)
    assert input_chw("lenet", (8, 1, 28, 28)) == (1, 28, 28)
    assert default_input("resnet50:config=imagenet") == (3, 224, 224)
    assert default_input("resnet18:in_channels=3") == (3, 96, 96)


def test_sized_models_are_built_for_the_asked_side_and_channels():
    model = build_for_input("lenet", (3, 32, 32))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UsageError, match="square"):
        build_for_input("lenet", (1, 32, 40))


def test_meta_builds_cost_nothing_and_keep_the_spec():
    model = build_for_input("vgg19:dropout=0.25", 224, device="meta", num_classes=7)
    assert next(model.parameters()).is_meta
    assert model.cnnlab_spec.startswith("vgg19:dropout=0.25")


def test_too_small_inputs_name_the_smallest_side():
    with pytest.raises(UsageError, match="at least 65x65"):
        build_for_input("alexnet", 32)
    assert min_side("alexnet") == 65
    assert min_side("lenet") < 28


def test_a_bad_option_of_a_sized_model_names_itself_not_the_input():
    with pytest.raises(UsageError, match="one block count per width"):
        build_for_input("compact-resnet-s:widths=(32,64,128,256)", 28)


@pytest.mark.parametrize(("spec", "side"), [
    ("googlenet", 96),
    ("googlenet:stem=28", 28),          # the stem made for 28x28 images
    ("googlenet-bn:stem=28", 28),
    ("googlenet:stem=28,norm=batch", 28),
    ("lenet:input_size=32", 32),        # a sized classifier's own side
    ("compact-resnet-s:input_size=32,head=avg", 32),
    ("resnet18:config=imagenet", 224),
])
def test_the_default_input_comes_from_the_spec_not_the_name(spec, side):
    assert default_input(spec)[1:] == (side, side)
    assert input_chw(spec) == default_input(spec)
    model = build_for_input(spec, device="meta")  # checked to run at that side
    assert getattr(model, "input_size", side) == side  # a sized classifier is sized for it
