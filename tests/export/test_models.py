"""Every registered model exported with a dynamic batch computes PyTorch's logits: in ONNX Runtime
from the ONNX file and as the reloaded ``.pt2`` program, at batch sizes 1 and 5 (traced at 2).

The chapters' models and the fast recipe's run in the quick suite. Exporting takes time in
proportion to the layers (DenseNet-264 alone about a minute on two cores), so the deeper and wider
members of the same families, built from the same blocks, run with ``-m slow``.
"""

import pytest
import torch

from cnnlab import list_models
from cnnlab.export import ATOL, load_program, trace_program, write_onnx, write_pt2
from cnnlab.export.runtime import inference_session, session_runner
from cnnlab.models.build import build_for_input, default_input

LARGEST_SIDE = 96
"""The 224-pixel models (AlexNet, VGG, NiN) are exported at 96 pixels: the same graph, with
classifiers sized for 96 pixels holding half the weights (AlexNet: 86 MB, not 187 MB)."""

DEEPER = frozenset({
    "vgg11", "vgg13", "vgg16", "vgg19", "googlenet-bn", "resnet34", "resnet50", "resnet101",
    "resnet152", "preact-resnet50", "resnext50", "densenet121", "densenet169", "densenet201",
    "densenet264", "regnetx-400mf", "compact-resnet-m", "compact-resnet-l",
})


def model_with_statistics(name: str) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """The model at its default input (at most LARGEST_SIDE), with its normalisation statistics
    moved off their initial 0 and 1 so that an export which dropped them would show."""
    channels, side, _ = default_input(name)
    shape = (channels, min(side, LARGEST_SIDE), min(side, LARGEST_SIDE))
    torch.manual_seed(0)
    model = build_for_input(name, shape).eval()
    for key, buffer in model.named_buffers():
        if key.endswith("_mean"):
            buffer.uniform_(-0.1, 0.1)
        elif key.endswith("_var"):
            buffer.uniform_(0.8, 1.25)
    return model, shape


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in DEEPER else name for name in list_models()
])
def test_exported_model_computes_pytorch_logits_at_batch_1_and_5(name, tmp_path):
    model, shape = model_with_statistics(name)
    program = trace_program(model, torch.randn(2, *shape), batch="dynamic")
    write_onnx(program, tmp_path / "model.onnx")
    write_pt2(program, tmp_path / "model.pt2")
    runtimes = {"onnxruntime": session_runner(inference_session(tmp_path / "model.onnx")),
                "pt2": load_program(tmp_path / "model.pt2")}
    for batch in (1, 5):
        images = torch.randn(batch, *shape)
        with torch.no_grad():
            expected = model(images)
            for runtime, run in runtimes.items():
                torch.testing.assert_close(run(images), expected, atol=ATOL, rtol=0,
                                           msg=lambda m, r=runtime, b=batch: f"{r} {b}: {m}")
