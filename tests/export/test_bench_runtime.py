"""`bench --mode infer --runtime onnxruntime`: inference timed in ONNX Runtime.

Nothing about speed is asserted: only that ONNX Runtime runs the model, and what it refuses.
"""

import pytest
from torch import nn

from cnnlab.analysis.bench import BenchOptions, make_step, prepare, random_batch
from cnnlab.cli import main
from cnnlab.errors import UsageError

ONNXRUNTIME = {"mode": "infer", "runtime": "onnxruntime", "warmup": 1, "steps": 2}


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def test_the_onnxruntime_step_runs_the_session_not_the_model(monkeypatch):
    options = BenchOptions(**ONNXRUNTIME)
    model = prepare(tiny_model(), options)
    step = make_step(model, options, (1, 12, 12))
    monkeypatch.setattr(model, "forward", lambda x: pytest.fail("PyTorch ran the model"))
    step(*random_batch((5, 1, 12, 12), 10, options))  # a batch size other than the traced one


@pytest.mark.parametrize("options, message", [
    ({"runtime": "tensorrt"}, "runtime 'tensorrt' is unknown"),
    ({"runtime": "onnxruntime"}, "use it with --mode infer"),
    ({**ONNXRUNTIME, "amp": True}, "without --amp"),
    ({**ONNXRUNTIME, "channels_last": True, "compile": True},
     "without --channels-last, --compile"),
    ({**ONNXRUNTIME, "device": "cuda"}, "without --device cuda"),
])
def test_onnxruntime_takes_float32_cpu_inference_only(options, message):
    with pytest.raises(UsageError, match=message):
        BenchOptions(**options)


def test_bench_command_times_onnxruntime(tmp_path, capsys):
    png = tmp_path / "lenet.png"
    assert main(["bench", "lenet", "--mode", "infer", "--runtime", "onnxruntime", "--device",
                 "cpu", "--batch-sizes", "4", "--warmup", "0", "--steps", "1",
                 "--out", str(png)]) == 0
    assert "infer, cpu, onnxruntime" in capsys.readouterr().out
    assert png.stat().st_size > 0
