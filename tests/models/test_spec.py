"""Model specs: ``name:key=value,...`` parsed by the builders' own parameters."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import UsageError
from cnnlab.models import create_model, list_models
from cnnlab.models.spec import ModelSpec, format_value, model_options


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("text", "options"), [
    ("lenet", ()),
    ("lenet:activation=relu,pool=max", (("activation", "relu"), ("pool", "max"))),
    ("resnet50:config=imagenet", (("config", "imagenet"),)),
    ("vgg11:arch=((1,64),(1,128),(2,256))", (("arch", ((1, 64), (1, 128), (2, 256))),)),
    ("alexnet:dropout=0", (("dropout", 0.0),)),
    ("nin:num_1x1=1,head=fc", (("num_1x1", 1), ("head", "fc"))),
    (" lenet : pool = max ", (("pool", "max"),)),
    ("lenet:pool=avg", ()),  # a default is no option
])
def test_specs_parse_into_typed_options(text, options):
    spec = ModelSpec.parse(text)
    assert spec.options == options
    assert ModelSpec.parse(str(spec)) == spec  # the text form reads back the same


def test_keyword_options_and_spec_options_build_the_same_model():
    a = create_model("lenet:activation=relu,pool=max")
    b = create_model("lenet", activation="relu", pool="max")
    assert a.cnnlab_spec == b.cnnlab_spec == "lenet:activation=relu,pool=max"
    assert str(a) == str(b)


def test_imagenet_configuration_from_a_spec():
    assert n_params(create_model("resnet50:config=imagenet")) == 25_557_032
    model = create_model("resnet18:config=imagenet,num_classes=10")
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert n_params(create_model("resnet18:config=imagenet")) == 11_689_512


@pytest.mark.parametrize(("text", "message"), [
    ("lenet:foo=1", r"no option 'foo'; its options \(with defaults\) are: .*activation=sigmoid"),
    ("lenet:activation=tanh", r"activation=tanh is not allowed; use one of sigmoid\|relu"),
    ("alexnet:dropout=lots", "dropout=lots is not valid"),
    ("lenet:padding=1.5", "padding=1.5 is not valid"),
    ("lenet:pool", "expected key=value"),
    ("vgg11:arch=((1,64)", "unclosed bracket"),
    ("lenet:config=cifar", "config=cifar is not allowed"),
    ("lenett", "unknown model 'lenett'; did you mean lenet"),
    ("", "a model spec is a name"),
])
def test_bad_specs_are_one_line_usage_errors(text, message):
    with pytest.raises(UsageError, match=message) as info:
        ModelSpec.parse(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list_models())
def test_every_model_lists_its_options_with_defaults(name):
    options = model_options(name)
    assert {"config", "init", "num_classes", "in_channels"} <= set(options)
    for option in options.values():
        if option.choices is not None:
            assert option.default in option.choices, option
        # every default written as spec text reads back as itself
        assert ModelSpec.parse(f"{name}:{option.name}={format_value(option.default)}").options \
            in ((), ((option.name, option.default),))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_spec_or_one_usage_error(text):
    try:
        ModelSpec.parse(f"lenet:{text}")
    except UsageError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("spec", ["lenet:dropout=-1", "alexnet:dropout=1", "nin:dropout=1.5",
                                  "vgg-small:dropout=-0.1"])
def test_a_dropout_outside_0_to_1_is_one_line(spec):
    """Found by the slow argument fuzzing: torch's own ValueError escaped as a traceback."""
    with pytest.raises(UsageError, match="not a dropout probability"):
        create_model(spec)


@pytest.mark.parametrize(("name", "options", "text"), [
    ("googlenet", {"stem": 28}, "googlenet:stem=28"),  # a text option named by a number
    ("googlenet", {"stem": "28", "aux_logits": True}, "googlenet:stem=28,aux_logits=true"),
    ("alexnet", {"dropout": 0}, "alexnet:dropout=0"),  # an int for a float option
    ("alexnet", {"width": np.float64(0.25)}, "alexnet:width=0.25"),
    ("lenet", {"padding": np.int64(0), "norm": "batch"}, "lenet:padding=0,norm=batch"),
    ("vgg11", {"arch": [[1, 64], [1, 128]]}, "vgg11:arch=((1,64),(1,128))"),
])
def test_options_take_their_natural_python_type_as_well_as_text(name, options, text):
    assert ModelSpec.parse(name, **options) == ModelSpec.parse(text)
    with torch.device("meta"):
        assert create_model(name, **options).cnnlab_spec == create_model(text).cnnlab_spec


@pytest.mark.parametrize(("options", "message"), [
    ({"stem": 32}, r"stem=32 is not allowed; use one of 7x7\|28"),
    ({"stem": True}, "expected text"),
    ({"wide_kernel": 3.5}, "expected an integer"),
    ({"aux_logits": 1}, "expected true or false"),
    ({"dropout": "much"}, "dropout=much is not valid"),
])
def test_python_values_of_the_wrong_type_are_one_line_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        create_model("googlenet", **options)
