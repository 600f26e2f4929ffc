"""autotune: amp=auto on every kind of device, the channels-last probe and its cache, threads."""

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

import pytest
import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.train import autotune
from cnnlab.train.autotune import (
    AmpDecision,
    Capabilities,
    TrainingStepProbe,
    busy_cores,
    cache_path,
    decide_amp,
    decide_channels_last,
    detect_capabilities,
    time_alternatives,
)
from cnnlab.train.threads import apply_threads, default_threads

SAPPHIRE_RAPIDS = Capabilities(
    cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}),
    mkldnn_bf16=True, aten_capability="AVX512", cpu_model="Intel Xeon (Sapphire Rapids)")
EPYC_AVX2 = Capabilities(cpu_flags=frozenset({"avx2", "fma"}), mkldnn_bf16=False,
                         aten_capability="AVX2", cpu_model="AMD EPYC (AVX2 only)")
HELD_TO_AVX2 = Capabilities(cpu_flags=SAPPHIRE_RAPIDS.cpu_flags, mkldnn_bf16=False,
                            aten_capability="AVX2", onednn_max_isa="AVX2")
GPU_BF16 = Capabilities(cuda_bf16=True)
GPU_FP16 = Capabilities(cuda_bf16=False)
WORKLOAD = "tiny-net 1x8x8 batch 4"


def refuse(**_):
    raise AssertionError("this decision must not run the model")


class Load:
    """A stand-in for OtherLoad: `Load.others` cores of other work during every probe."""

    others = 0.0

    def read(self):
        return self.others


@pytest.fixture
def load(monkeypatch):
    monkeypatch.setattr(autotune, "OtherLoad", Load)
    monkeypatch.setattr(Load, "others", 0.0)
    return Load


@pytest.fixture
def timings(monkeypatch, load):
    """Fake probe results: `timings.ms = {...}` is what every probe measures; counts the probes."""

    class Fake:
        ms: dict = {}
        probes = 0

        def __call__(self, steps, device, budget_s=None):
            self.probes += 1
            return {name: self.ms[name] for name in steps}

    fake = Fake()
    monkeypatch.setattr(autotune, "time_alternatives", fake)
    return fake


def test_capabilities_name_why_bfloat16_is_not_native():
    assert SAPPHIRE_RAPIDS.native_bf16 and SAPPHIRE_RAPIDS.cpu_bf16_absence() is None
    assert "avx512_bf16/amx_bf16 absent" in EPYC_AVX2.cpu_bf16_absence()
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in HELD_TO_AVX2.cpu_bf16_absence()
    aten_only = Capabilities(SAPPHIRE_RAPIDS.cpu_flags, mkldnn_bf16=True, aten_capability="AVX2")
    assert "AVX2 kernels" in aten_only.cpu_bf16_absence()
    no_onednn = Capabilities(SAPPHIRE_RAPIDS.cpu_flags, mkldnn_bf16=False, aten_capability="AVX512")
    assert "oneDNN reports no bfloat16" in no_onednn.cpu_bf16_absence()
    for isa in ("AVX512_CORE_AMX", "AVX512_CORE_BF16", "ALL"):
        capped = Capabilities(SAPPHIRE_RAPIDS.cpu_flags, True, "AVX512", onednn_max_isa=isa)
        assert capped.native_bf16, isa
    avx512_core = Capabilities(SAPPHIRE_RAPIDS.cpu_flags, True, "AVX512", "AVX512_CORE")
    assert not avx512_core.native_bf16
    arm = Capabilities(frozenset({"asimd", "bf16"}), True, "DEFAULT", machine="aarch64")
    assert arm.native_bf16


def test_amp_auto_off_on_a_cpu_without_native_bfloat16():
    for capabilities in (EPYC_AVX2, HELD_TO_AVX2):
        decision = decide_amp("auto", "cpu", refuse, capabilities)
        assert (decision.enabled, decision.dtype, decision.scaler) == (False, None, False)
        assert decision.reason == f"bfloat16 autocast off: {capabilities.cpu_bf16_absence()}"


def test_amp_auto_on_a_native_cpu_follows_the_probe(timings):
    timings.ms = {"fp32": 10.0, "bfloat16": 6.0}
    decision = decide_amp("auto", "cpu", refuse, SAPPHIRE_RAPIDS)
    assert decision == AmpDecision(True, "bfloat16", False, decision.reason, 10.0, 6.0)
    assert decision.torch_dtype is torch.bfloat16
    assert decision.reason.startswith("bfloat16 autocast on: native on this CPU and measured "
                                      "faster (6.0 ms a step against 10.0 ms in fp32)")
    timings.ms = {"fp32": 10.0, "bfloat16": 9.9}  # within MIN_SPEEDUP: not worth the precision
    decision = decide_amp("auto", "cpu", refuse, SAPPHIRE_RAPIDS)
    assert not decision.enabled and decision.dtype is None and decision.torch_dtype is None
    assert "but measured no faster (9.9 ms a step against 10.0 ms in fp32)" in decision.reason
    json.dumps(asdict(decision))  # recordable in config.json as it is


def test_amp_auto_on_a_native_cpu_without_a_probe_or_for_a_short_run(timings):
    decision = decide_amp("auto", "cpu", None, SAPPHIRE_RAPIDS)
    assert decision.enabled and decision.reason.endswith("(not measured)")
    short = decide_amp("auto", "cpu", refuse, SAPPHIRE_RAPIDS, planned_images=512)
    assert not short.enabled and "run of 512 images is too short" in short.reason
    assert timings.probes == 0


def test_amp_auto_on_cuda_takes_the_gpu_precision_without_probing():
    bf16 = decide_amp("auto", "cuda", refuse, GPU_BF16)
    assert (bf16.enabled, bf16.dtype, bf16.scaler) == (True, "bfloat16", False)
    assert bf16.reason == "bfloat16 autocast on: this GPU computes bfloat16"
    fp16 = decide_amp("auto", "cuda:0", refuse, GPU_FP16)
    assert (fp16.enabled, fp16.dtype, fp16.scaler) == (True, "float16", True)
    assert fp16.reason == "float16 autocast with loss scaling on: this GPU has no bfloat16"


def test_amp_auto_on_mps_is_measured(timings):
    timings.ms = {"fp32": 8.0, "float16": 5.0}
    decision = decide_amp("auto", "mps", refuse, Capabilities())
    assert (decision.enabled, decision.dtype, decision.scaler) == (True, "float16", True)
    assert "supported on MPS and measured faster" in decision.reason
    timings.ms = {"fp32": 8.0, "float16": 8.0}
    assert not decide_amp("auto", "mps", refuse, Capabilities()).enabled
    assert not decide_amp("auto", "mps", None, Capabilities()).enabled


def test_amp_on_and_off_are_obeyed_and_bad_values_refused():
    forced = decide_amp("on", "cpu", refuse, EPYC_AVX2)
    assert forced.enabled and forced.dtype == "bfloat16" and "expect it slower" in forced.reason
    assert decide_amp(True, "cpu", refuse, SAPPHIRE_RAPIDS).reason == \
        "bfloat16 autocast on: asked for (amp=on)"
    off = decide_amp("off", "cuda", refuse, GPU_BF16)
    assert (off.enabled, off.dtype) == (False, None)
    assert off.reason == "autocast off: asked for (amp=off)"
    assert not decide_amp(False, "cpu", refuse, SAPPHIRE_RAPIDS).enabled
    with pytest.raises(UsageError, match="amp='yes' is not allowed; use auto, on or off"):
        decide_amp("yes", "cpu", refuse, SAPPHIRE_RAPIDS)


def test_detected_capabilities_honour_torch_held_to_avx2():
    detected = detect_capabilities()
    assert detected.mkldnn_bf16 == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert detected.aten_capability == torch.backends.cpu.get_cpu_capability()
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    code = ("from cnnlab.train.autotune import detect_capabilities as d; c = d(); "
            "print(c.native_bf16, c.aten_capability, c.onednn_max_isa)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "AVX2", "AVX2"]


def test_time_alternatives_reports_the_median_of_interleaved_rounds():
    calls = []

    def worker(name, seconds):  # busy, not asleep: on the CPU the probe counts CPU time
        def step():
            calls.append(name)
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
        return step

    ms = time_alternatives({"slow": worker("slow", 0.012), "fast": worker("fast", 0.002)},
                           torch.device("cpu"), budget_s=0)
    assert ms["slow"] > 3 * ms["fast"] and ms["fast"] >= 2.0
    rounds = calls[2 * autotune.WARMUP_STEPS:]
    assert len(rounds) == 2 * autotune.MIN_ROUNDS
    assert rounds[:4] == ["slow", "fast", "fast", "slow"]  # the order alternates each round


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


def test_training_step_probe_changes_nothing_in_the_model_or_the_random_stream():
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe = TrainingStepProbe(model, (1, 8, 8), "cpu", batch_size=4, spec="tiny-net")
    assert probe.batch.shape == (4, 1, 8, 8) and probe.workload == WORKLOAD
    rng = torch.get_rng_state()
    for channels_last in (False, True):
        for amp_dtype in (None, torch.bfloat16):
            probe(channels_last=channels_last, amp_dtype=amp_dtype)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    twin = probe._copy(True)
    assert twin[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_probe_is_cached_per_workload_and_precision(tmp_path, timings):
    timings.ms = {"channels_last": 4.0, "contiguous": 6.0}
    first = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                 capabilities=SAPPHIRE_RAPIDS)
    assert (first.enabled, first.ms_contiguous, first.ms_channels_last, first.cached) == \
        (True, 6.0, 4.0, False)
    assert first.reason == ("channels-last on: measured faster (4.0 ms a step against 6.0 ms in "
                            "NCHW)")
    timings.ms = {"channels_last": 9.0, "contiguous": 6.0}  # a new probe would say no
    again = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                 capabilities=SAPPHIRE_RAPIDS)
    assert again.enabled and again.cached
    assert again.reason.endswith("against 6.0 ms in NCHW, from the probe cache)")
    assert timings.probes == 1
    in_bf16 = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                   amp_dtype=torch.bfloat16, capabilities=SAPPHIRE_RAPIDS)
    other_cpu = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                     capabilities=EPYC_AVX2)
    assert timings.probes == 3 and not in_bf16.enabled and not other_cpu.enabled
    entries = json.loads((tmp_path / "probes.json").read_text())
    assert len(entries) == 3
    key = next(k for k in entries if "channels_last fp32" in k and "Sapphire" in k)
    assert WORKLOAD in key and f"torch {torch.__version__}" in key and "amx_bf16" in key
    assert entries[key]["ms"] == {"channels_last": 4.0, "contiguous": 6.0}


def test_a_corrupt_probe_cache_is_set_aside_and_rebuilt(tmp_path, timings):
    timings.ms = {"channels_last": 4.0, "contiguous": 6.0}
    path = tmp_path / "probes.json"
    path.write_text('{"half a file": ')
    with pytest.warns(RuntimeWarning, match="is unreadable"):
        decision = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                        capabilities=SAPPHIRE_RAPIDS)
    assert decision.enabled and not decision.cached
    aside = list(tmp_path.glob("probes.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"half a file": '
    assert len(json.loads(path.read_text())) == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_malformed_entry_is_a_miss_and_an_unwritable_cache_only_warns(tmp_path, timings):
    timings.ms = {"channels_last": 4.0, "contiguous": 6.0}
    decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                         capabilities=SAPPHIRE_RAPIDS)
    path = tmp_path / "probes.json"
    entries = json.loads(path.read_text())
    entries[next(iter(entries))]["ms"] = {"channels_last": -1.0, "contiguous": "fast"}
    path.write_text(json.dumps(entries))
    decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                         capabilities=SAPPHIRE_RAPIDS)
    assert timings.probes == 2
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning) as caught:
        decision = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=blocker,
                                        capabilities=SAPPHIRE_RAPIDS)
    assert decision.enabled and blocker.read_text() == "not a folder"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "cannot be read" in messages[0] and "not written" in messages[1]


def test_channels_last_on_off_and_short_runs_need_no_probe(tmp_path, timings):
    assert decide_channels_last("on", refuse, WORKLOAD, cache_dir=tmp_path).enabled
    assert not decide_channels_last(False, refuse, WORKLOAD, cache_dir=tmp_path).enabled
    short = decide_channels_last("auto", refuse, WORKLOAD, planned_images=1000,
                                 cache_dir=tmp_path, capabilities=SAPPHIRE_RAPIDS)
    assert not short.enabled and "too short to pay for a probe" in short.reason
    assert timings.probes == 0 and not (tmp_path / "probes.json").exists()
    with pytest.raises(UsageError, match="channels_last='fast' is not allowed"):
        decide_channels_last("fast", refuse, WORKLOAD)


def test_a_probe_beside_other_work_is_used_but_not_cached(tmp_path, timings, load):
    timings.ms = {"channels_last": 4.0, "contiguous": 6.0}
    load.others = 1.2
    busy = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                capabilities=SAPPHIRE_RAPIDS)
    assert busy.enabled and not busy.cached
    assert busy.reason.endswith("in NCHW, beside 1.2 cores of other work, so not cached)")
    assert not (tmp_path / "probes.json").exists()
    load.others = 0.3
    decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path, capabilities=SAPPHIRE_RAPIDS)
    assert (tmp_path / "probes.json").exists()


def test_a_real_probe_decides_and_caches(tmp_path, load):
    probe = TrainingStepProbe(tiny_net(), (1, 8, 8), "cpu", batch_size=4)
    decision = decide_channels_last("auto", probe, WORKLOAD, cache_dir=tmp_path)
    assert decision.ms_contiguous > 0 and decision.ms_channels_last > 0
    assert decision.enabled == (decision.ms_contiguous >= 1.05 * decision.ms_channels_last)
    assert decide_channels_last("auto", probe, WORKLOAD, cache_dir=tmp_path).cached


def test_the_cache_lives_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    assert cache_path() == tmp_path / "probes.json"
    monkeypatch.delenv("CNNLAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_path() == tmp_path / "home" / ".cache" / "cnnlab" / "probes.json"


def test_threads_default_to_the_affinity_and_apply():
    assert default_threads() == len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        apply_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(UsageError, match="threads=.* is not allowed; use a positive integer"):
            apply_threads(bad)
    busy = busy_cores(0.1)
    assert busy is None or 0 <= busy <= default_threads() + 0.5


def test_threads_can_leave_the_busy_cores_out(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    for busy, expected in ((None, cores), (0.3, cores), (0.7, cores - 1), (cores + 2.0, 1)):
        monkeypatch.setattr(autotune, "busy_cores", lambda busy=busy: busy)
        assert default_threads(leave_busy=True) == max(1, expected)
    assert default_threads() == cores


def test_other_load_sees_a_spinning_process():
    spin = "import time\nend = time.monotonic() + 5\nwhile time.monotonic() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.2)
        load = autotune.OtherLoad()
        time.sleep(0.3)
        others = load.read()
    finally:
        spinner.terminate()
        spinner.wait(timeout=10)
    assert others is None or others >= 0.5
    assert autotune.OtherLoad().read() is None  # too short to tell


def test_a_full_disk_only_costs_a_new_probe(tmp_path, timings, monkeypatch):
    def refused(path, text):
        raise UsageError(f"cannot write {path}: the disk is full; free some space")

    monkeypatch.setattr(autotune, "write_text", refused)
    timings.ms = {"channels_last": 4.0, "contiguous": 6.0}
    with pytest.warns(RuntimeWarning, match="not written .*the disk is full"):
        decision = decide_channels_last("auto", refuse, WORKLOAD, cache_dir=tmp_path,
                                        capabilities=SAPPHIRE_RAPIDS)
    assert decision.enabled and not (tmp_path / "probes.json").exists()


@pytest.mark.parametrize(("capabilities", "enabled", "reason"), [
    (Capabilities(cpu_flags=frozenset({"avx2"}), aten_capability="AVX2"), False,
     "no native bfloat16"),
    (Capabilities(cpu_flags=frozenset({"avx512f", "avx512_bf16", "amx_bf16"}),
                  mkldnn_bf16=True, aten_capability="AVX512", onednn_max_isa="AVX2"), False,
     "ONEDNN_MAX_CPU_ISA=AVX2"),
    # native: a probe decides, so either outcome, but measured and said so
    (Capabilities(cpu_flags=frozenset({"avx512f", "avx512_bf16", "amx_bf16"}),
                  mkldnn_bf16=True, aten_capability="AVX512"), None, "native on this CPU"),
])
def test_the_trainer_records_the_amp_decision_and_its_reason(capabilities, enabled, reason,
                                                             monkeypatch, small_data):
    import cnnlab.train.autotune as autotune
    from cnnlab.models import create_model
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.runtime import decide_runtime

    monkeypatch.setattr(autotune, "detect_capabilities", lambda: capabilities)
    config = TrainConfig(model="lenet", epochs=50, batch_size=64, lr=0.1)
    decided, runtime = decide_runtime(config, create_model("lenet"), small_data,
                                      torch.device("cpu"))
    recorded = decided.decisions["amp"]
    assert runtime.amp is recorded["enabled"] and (enabled is None or enabled is runtime.amp)
    assert reason in recorded["reason"]
    assert (recorded["ms_fp32"] is not None) is (enabled is None)  # only native CPUs probe
