"""`export_model`: checked files with their metadata, or an error and no file at all."""

import json
import sys

import pytest
import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.export import (
    ExportMetadata,
    ExportMismatch,
    export_model,
    inference_session,
    load_pt2,
    predict_onnx,
    trace_program,
    write_pt2,
)
from cnnlab.models import create_model

METADATA = ExportMetadata(classes=("cat", "dog", "fox"), input_shape=(1, 28, 28), mean=(0.3,),
                          std=(0.35,), model="lenet-modern:num_classes=3")


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return create_model("lenet-modern", num_classes=3).eval()


def images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(n))


def test_onnx_export_carries_its_metadata_and_a_dynamic_batch(lenet, tmp_path):
    result = export_model(lenet, tmp_path / "lenet.onnx", example_input=images(), metadata=METADATA)
    assert result.path == tmp_path / "lenet.onnx" and result.format == "onnx"
    assert result.checked_batches == (4, 1) and result.max_error <= result.atol == 1e-4
    assert result.opset >= 18
    session = inference_session(result.path)
    assert session.get_modelmeta().custom_metadata_map == METADATA.to_properties()
    (model_input,) = session.get_inputs()
    assert model_input.name == "images" and model_input.shape[1:] == [1, 28, 28]
    assert isinstance(model_input.shape[0], str)  # a symbolic batch size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.onnx"]


def test_fixed_batch_and_opset_are_what_was_asked(lenet, tmp_path):
    result = export_model(lenet, tmp_path / "lenet.onnx", example_input=images(3), batch=8,
                          opset=21)
    assert result.checked_batches == (8,) and result.opset == 21
    assert inference_session(result.path).get_inputs()[0].shape == [8, 1, 28, 28]


def test_pt2_export_writes_the_program_and_its_sidecar(lenet, tmp_path):
    result = export_model(lenet, tmp_path / "lenet.pt2", example_input=images(), metadata=METADATA,
                          format="pt2")
    assert result.opset is None and result.max_error <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.pt2", "lenet.pt2.json"]
    program, metadata = load_pt2(result.path)
    assert metadata == METADATA
    assert json.loads((tmp_path / "lenet.pt2.json").read_text())["channels"] == 1
    with torch.no_grad():
        torch.testing.assert_close(program(images(7)), lenet(images(7)), atol=1e-4, rtol=0)


def test_a_pt2_that_is_not_a_program_or_lacks_its_sidecar_is_a_usage_error(lenet, tmp_path):
    (tmp_path / "notes.pt2").write_text("not a program")
    with pytest.raises(UsageError, match="notes.pt2 is not a torch.export program"):
        load_pt2(tmp_path / "notes.pt2")
    write_pt2(trace_program(lenet, images()), tmp_path / "bare.pt2")
    with pytest.raises(UsageError, match="bare.pt2 has no cnnlab metadata: bare.pt2.json is "
                                         "missing"):
        load_pt2(tmp_path / "bare.pt2")


class Drifting(nn.Module):
    """A model whose output changes with every call: an export freezes the count it traced."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x.flatten(1)) + self.calls


@pytest.mark.parametrize("format", ["onnx", "pt2"])
def test_a_file_that_differs_from_pytorch_is_an_error_and_is_not_kept(format, tmp_path):
    with pytest.raises(ExportMismatch, match="tolerance 0.0001.*no file was written"):
        export_model(Drifting(), tmp_path / f"drift.{format}",
                     example_input=torch.randn(2, 1, 2, 2), metadata=METADATA, format=format)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept(lenet, tmp_path):
    (tmp_path / "lenet.onnx").write_text("precious")
    with pytest.raises(UsageError, match="exists and is kept"):
        export_model(lenet, tmp_path / "lenet.onnx", example_input=images())
    assert (tmp_path / "lenet.onnx").read_text() == "precious"


@pytest.mark.parametrize("name, options, message", [
    ("lenet.tflite", {"format": "tflite"}, "format 'tflite' is unknown; use onnx or pt2"),
    ("lenet.pt2", {}, "does not end in .onnx"),
    ("lenet.onnx", {"batch": 0}, "batch 0 is not valid"),
    ("lenet.onnx", {"batch": "static"}, "batch 'static' is not valid"),
    ("lenet.onnx", {"opset": 9}, "opset 9 is not available; choose one from 18 to"),
    ("lenet.pt2", {"format": "pt2", "opset": 18}, "--opset applies to ONNX files only"),
])
def test_bad_requests_are_one_line_usage_errors(lenet, tmp_path, name, options, message):
    with pytest.raises(UsageError, match=message) as error:
        export_model(lenet, tmp_path / name, example_input=images(), **options)
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_without_the_export_extra_the_error_names_it(lenet, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(UsageError, match=r"pip install 'cnnlab\[export\]'"):
        export_model(lenet, tmp_path / "lenet.onnx", example_input=images())
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UsageError, match=r"needs the onnxruntime package.*cnnlab\[export\]"):
        predict_onnx(tmp_path / "lenet.onnx", [tmp_path / "x.png"])
    assert list(tmp_path.iterdir()) == []


def test_metadata_reads_back_and_names_what_is_missing():
    assert ExportMetadata.from_properties(METADATA.to_properties(), "m.onnx") == METADATA
    assert METADATA.channels == 1 and METADATA.image_size == 28
    assert METADATA.cnnlab_version  # the version that wrote it
    with pytest.raises(UsageError, match="m.onnx has no cnnlab metadata"):
        ExportMetadata.from_properties({"producer": "someone"}, "m.onnx")
    partial = {k: v for k, v in METADATA.to_properties().items() if k != "std"}
    with pytest.raises(UsageError, match=r"incomplete cnnlab metadata \(no std\)"):
        ExportMetadata.from_properties(partial, "m.onnx")
    wrong = {**METADATA.to_properties(), "mean": "[0.1, 0.2]"}  # two means for one channel
    with pytest.raises(UsageError, match="malformed cnnlab metadata"):
        ExportMetadata.from_properties(wrong, "m.onnx")
