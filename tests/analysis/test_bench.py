"""`cnnlab bench`: throughput and peak memory against batch size (no timing assertions)."""

import pytest
import torch
from torch import nn

from cnnlab.analysis.bench import (
    BenchOptions,
    BenchRow,
    bench,
    make_step,
    measure,
    plot,
    prepare,
    random_batch,
    step_times,
    training_step_options,
)
from cnnlab.cli import main
from cnnlab.train.autotune import (
    PROBE_BATCH,
    ProbeCache,
    cache_path,
    detect_capabilities,
    probe_key,
)
from cnnlab.train.threads import use_threads

FAST = ["--warmup", "1", "--steps", "2"]


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def test_train_step_updates_weights_and_infer_step_does_not():
    torch.manual_seed(0)
    for mode, changes in (("train", True), ("infer", False)):
        options = BenchOptions(mode=mode)
        model = prepare(tiny_model(), options)
        before = [p.detach().clone() for p in model.parameters()]
        make_step(model, options)(*random_batch((8, 1, 12, 12), 10, options))
        moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
        assert moved is changes
        assert model.training is (mode == "train")


def test_measure_reports_throughput_and_memory_on_cpu():
    options = BenchOptions(warmup=1, steps=2)
    row = measure(prepare(tiny_model(), options), (16, 1, 12, 12), 10, options)
    assert row.batch_size == 16
    assert row.images_per_s > 0
    assert row.ms_per_step == pytest.approx(1000 * 16 / row.images_per_s)
    assert row.peak_bytes > 0 and row.added_bytes >= 0


def test_channels_last_and_bf16_options_run():
    options = BenchOptions(channels_last=True, amp=True, warmup=0, steps=1)
    model = prepare(tiny_model(), options)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    X, _ = random_batch((4, 1, 8, 8), 10, options)
    assert X.is_contiguous(memory_format=torch.channels_last)
    assert measure(model, (4, 1, 8, 8), 10, options).images_per_s > 0


@pytest.mark.parametrize("kwargs", [{"mode": "fit"}, {"steps": 0}, {"warmup": -1}])
def test_bad_options_are_one_line_value_errors(kwargs):
    with pytest.raises(ValueError, match="bench"):
        BenchOptions(**kwargs)


def test_too_small_input_is_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="at least"):
        bench("alexnet", [2], 32, BenchOptions(warmup=0, steps=1))


@pytest.mark.slow
def test_memory_grows_with_the_batch_in_fresh_processes():
    rows = bench("lenet", [8, 512], None, BenchOptions(warmup=1, steps=1))
    assert [row.batch_size for row in rows] == [8, 512]
    assert rows[1].added_bytes > rows[0].added_bytes


def test_plot_writes_a_png(tmp_path):
    rows = [BenchRow(8, 100.0, 80.0, 2**20, 2**19), BenchRow(16, 150.0, 106.0, 2**21, 2**20)]
    path = plot("lenet", (1, 28, 28), BenchOptions(), rows, tmp_path / "b.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_the_table_and_writes_the_png(tmp_path, capsys):
    out = tmp_path / "lenet.png"
    code = main(["bench", "lenet", "--batch-sizes", "32,64,128,256", "--device", "cpu",
                 "--out", str(out), *FAST])
    assert code == 0
    text = capsys.readouterr().out
    assert "images/s" in text and "peak MiB" in text
    for size in ("32", "64", "128", "256"):
        assert f" {size} " in text
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli_unknown_model_exits_2(capsys):
    assert main(["bench", "lenett", "--device", "cpu", *FAST]) == 2
    assert "lenet" in capsys.readouterr().err


def test_each_step_is_timed_and_the_mean_has_its_t_interval():
    options = BenchOptions(warmup=1, steps=5)
    model = prepare(tiny_model(), options)
    times = step_times(make_step(model, options), random_batch((8, 1, 12, 12), 10, options),
                       options)
    assert len(times) == 5 and all(t > 0 for t in times)
    row = measure(model, (8, 1, 12, 12), 10, options)
    assert row.ms_low <= row.ms_per_step <= row.ms_high
    assert row.images_per_s == pytest.approx(8000 / row.ms_per_step)
    one = measure(model, (8, 1, 12, 12), 10, BenchOptions(warmup=1, steps=1))
    assert one.ms_low is None and one.ms_high is None  # one step: no spread


def _cached(spec: str, shape: tuple[int, int, int], kind: str, ms: dict) -> None:
    """Probe timings put where the trainer looks them up: its threads, spec and probe batch."""
    device = torch.device("cpu")
    use_threads(None, device)
    workload = f"{spec} {'x'.join(map(str, shape))} batch {PROBE_BATCH}"
    ProbeCache(cache_path()).put(probe_key(kind, workload, device, detect_capabilities()), ms)


def _printed(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())  # the table may wrap its caption


def test_cli_times_the_step_as_training_decides_it_and_flags_override(tmp_path, capsys):
    shape = (1, 28, 28)
    _cached("lenet", shape, "amp bfloat16", {"fp32": 1.0, "bfloat16": 2.0})  # bf16 slower
    _cached("lenet", shape, "channels_last fp32", {"channels_last": 1.0, "contiguous": 3.0})
    argv = ["bench", "lenet", "--batch-sizes", "8", "--device", "cpu", "--out",
            str(tmp_path / "b.png"), *FAST]
    assert main(argv) == 0
    printed = _printed(capsys)
    assert "lenet 1x28x28 (train, cpu, channels_last, fp32, " in printed
    assert "channels-last on: measured faster (1.0 ms a step against 3.0 ms in NCHW, from the " \
        "probe cache)" in printed and "autocast off" in printed
    assert main([*argv, "--no-channels-last"]) == 0
    printed = _printed(capsys)
    assert "(train, cpu, NCHW, fp32, " in printed and "channels-last off: asked for" in printed


def test_training_step_options_take_the_asked_switches_over_the_probes():
    shape = (1, 28, 28)
    _cached("lenet-modern", shape, "amp bfloat16", {"fp32": 1.0, "bfloat16": 2.0})
    _cached("lenet-modern", shape, "channels_last fp32", {"channels_last": 3.0, "contiguous": 1.0})
    assert not training_step_options("lenet-modern", shape, "cpu").channels_last
    asked = training_step_options("lenet-modern", shape, "cpu", channels_last=True, amp="off",
                                  mode="infer", steps=2)
    assert (asked.channels_last, asked.amp, asked.mode, asked.steps) == (True, False, "infer", 2)
    assert asked.reasons == ("autocast off: asked for (amp=off)",
                             "channels-last on: asked for (channels_last=on)")
    onnx = training_step_options("lenet", shape, "cpu", mode="infer", runtime="onnxruntime")
    assert (onnx.channels_last, onnx.amp, onnx.reasons) == (False, False, ())  # nothing probed


def test_the_label_always_names_the_memory_format_and_precision():
    assert BenchOptions().label() == "train, cpu, NCHW, fp32"
    assert BenchOptions(channels_last=True, amp=True, threads=2).label() == \
        "train, cpu, channels_last, bf16, 2 threads"

