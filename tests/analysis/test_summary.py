"""`summary`: each chapter model's figures (`spec_facts.SPEC_TABLE`) through the table,
per-module attribution, memory, input forms."""

import pytest
import torch
from spec_facts import SPEC_TABLE
from torch import nn

from cnnlab.analysis import summary
from cnnlab.analysis.tables import compare
from cnnlab.models import create_model


def meta_model(name, **kwargs):
    """A registered model built on the meta device: the summary only needs shapes."""
    with torch.device("meta"):
        return create_model(name, **kwargs)


@pytest.mark.parametrize("name", SPEC_TABLE)
def test_spec_table_through_summary(name):
    side, params, mflops, expected = SPEC_TABLE[name]
    result = summary(meta_model(name), side, depth=1, name=name)
    shapes = ["x".join(map(str, row["output_shape"][1:])) for row in result.rows]
    assert result.params == params
    assert sum(row["params"] for row in result.rows) == params
    assert round(result.mflops, 1) == mflops
    assert sum(row["flops"] for row in result.rows) == result.flops
    assert all(row["output_shape"][0] == 1 for row in result.rows)
    assert " ".join(shapes) == expected


def test_lenet_rows_in_detail():
    result = summary(meta_model("lenet"), 28)
    assert len(result.rows) == 12
    first = result.rows[0]
    assert set(first) >= {"name", "type", "depth", "output_shape", "params", "flops",
                          "activation_bytes", "receptive_field"}
    assert first["type"] == "Conv2d" and first["depth"] == 1
    assert first["params"] == 6 * 25 + 6
    assert first["flops"] == 2 * 6 * 28 * 28 * 25  # 2 FLOPs per multiply-add
    assert first["activation_bytes"] == 6 * 28 * 28 * 4


def test_alexnet_fully_connected_layers_hold_the_parameters_convolutions_the_flops():
    result = summary(meta_model("alexnet"), 224, name="alexnet")
    fc_params = 6400 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10
    assert result.fc.params == fc_params
    assert result.conv.params + result.fc.params == result.params
    assert result.fc.param_share == pytest.approx(0.920, abs=0.001)
    assert result.conv.flop_share > 0.9 and result.conv.flops > result.fc.flops
    assert result.fc.weight_bytes == 4 * fc_params


class Twice(nn.Module):
    """Runs one convolution twice and keeps a head it never calls."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.conv(self.conv(x))


def test_nested_modules_called_twice_and_never():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), Twice())
    rows = {row["name"]: row for row in summary(model, 8, depth=2).rows}
    assert [name for name in rows] == ["0", "1", "1.conv", "1.unused"]
    assert rows["1.conv"]["calls"] == 2
    per_call = 2 * (2 * 8 * 8) * (2 * 3 * 3)  # 2 x outputs x multiply-adds per output
    assert rows["1.conv"]["flops"] == 2 * per_call
    assert rows["1"]["flops"] == rows["1.conv"]["flops"]
    assert rows["1.unused"]["calls"] == 0 and rows["1.unused"]["output_shape"] is None
    assert rows["1"]["params"] == 2 * 2 * 9 + 2 + 12
    assert rows["1.conv"]["depth"] == 2


def test_summary_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 2))
    model[2].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model, 8)
    assert model.training and not model[2].training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(model.parameters()).device.type == "cpu"


def test_memory_estimates_of_a_chain():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    image, wide, narrow = 1 * 8 * 8 * 4, 4 * 8 * 8 * 4, 2 * 8 * 8 * 4
    result = summary(model, 8)
    # Inference: the batch stays alive; the largest input + output pair is conv -> ReLU.
    assert result.inference_bytes == image + wide + wide
    # Training: each conv keeps its input and ReLU its output (the second conv's input).
    assert result.training_bytes == image + wide
    assert result.rows[-1]["activation_bytes"] == narrow
    with torch.no_grad():
        assert summary(model, 8).training_bytes == result.training_bytes
    batched = summary(model, 8, batch_size=4)
    assert batched.inference_bytes == 4 * result.inference_bytes
    assert batched.training_bytes == 4 * result.training_bytes
    assert batched.flops == 4 * result.flops


class TwoPaths(nn.Module):
    """A 1x1 path and a 1x1 -> 3x3 path concatenated, as in an Inception block."""

    def __init__(self):
        super().__init__()
        self.short = nn.Conv2d(4, 2, 1)
        self.long = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Conv2d(2, 2, 3, padding=1))

    def forward(self, x):
        return torch.cat([self.short(x), self.long(x)], dim=1)


def test_inference_memory_counts_branches_waiting_to_be_joined():
    image, two = 4 * 8 * 8 * 4, 2 * 8 * 8 * 4
    result = summary(TwoPaths(), (4, 8, 8))
    # While concatenating: the input, both path outputs and the result (4 channels).
    assert result.inference_bytes == image + two + two + 2 * two
    # Saved for backward: the input (by three convs) and the long path's 1x1 output.
    assert result.training_bytes == image + two


@pytest.mark.parametrize("input_size, shape", [
    (28, (1, 1, 28, 28)), ((28,), (1, 1, 28, 28)), ((1, 28, 28), (1, 1, 28, 28)),
    ((3, 1, 28, 28), (3, 1, 28, 28)),
])
def test_input_forms(input_size, shape):
    assert summary(meta_model("lenet"), input_size).input_shape == shape


def test_channels_come_from_the_first_convolution():
    model = meta_model("resnet18", in_channels=3)
    assert summary(model, 64).input_shape == (1, 3, 64, 64)
    assert summary(model, 64, batch_size=8).input_shape == (8, 3, 64, 64)


@pytest.mark.parametrize("input_size, batch_size, message", [
    ((3, 28, 28), None, "takes 1 input channels"),
    ((2, 28), None, "input size must be"),
    ((0,), None, "input size must be"),
    (28.0, None, "input size must be"),
    ("28", None, "input size must be"),
    ((2, 1, 28, 28), 4, "batch size is given twice"),
    (28, 0, "batch size must be"),
])
def test_bad_inputs(input_size, batch_size, message):
    with pytest.raises(ValueError, match=message):
        summary(meta_model("lenet"), input_size, batch_size=batch_size)


def test_too_small_names_model_input_and_minimum():
    with pytest.raises(ValueError) as error:
        summary(meta_model("nin"), 32, name="nin")
    text = str(error.value)
    assert "'nin'" in text and "32x32" in text and "67x67" in text
    tiny = nn.Sequential(nn.Conv2d(1, 1, 5), nn.Conv2d(1, 1, 5))
    with pytest.raises(ValueError, match="at least 9x9 pixels, got 8x8"):
        summary(tiny, 8)


def test_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        summary(meta_model("lenet"), 28, depth=0)


def test_printable_as_plain_text():
    result = summary(meta_model("alexnet"), 224, name="alexnet")
    text = str(result)
    assert text.startswith("alexnet on 1x1x224x224")
    assert "46,764,746" in text and "1,876.3" in text and "92.0%" in text
    assert "\x1b[" not in text  # no colour codes


def test_models_without_a_convolution_need_the_channels():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    result = summary(mlp, (3, 4, 4))
    assert result.fc.params == result.params == 48 * 5 + 5
    assert result.flops == 2 * 48 * 5
    with pytest.raises(ValueError, match="give the input size as"):
        summary(mlp, 4)
    with pytest.raises(ValueError, match="fails on input 1x1x4x4"):
        summary(mlp, (1, 4, 4))


def test_top_level_export():
    import cnnlab

    assert cnnlab.summary is summary


def test_compare_takes_each_specs_own_input_side():
    # GoogLeNet's 28 stem is made for 28x28 images; the plain stem for the name's 96
    compared = compare(["googlenet", "googlenet:stem=28", "lenet:input_size=32"])
    assert [m.summary.input_shape for m in compared.models] == [
        (1, 1, 96, 96), (1, 1, 28, 28), (1, 1, 32, 32)]
    at_96 = compare("googlenet:stem=28", 96).models[0].summary
    assert compared.models[1].summary.flops < at_96.flops / 10  # (96/28)^2 fewer
