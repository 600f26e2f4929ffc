"""Defaults chosen on the user's machine: mixed precision and memory format.

A setting that wins on one processor can lose several times over on another: bfloat16 autocast
is emulated, and slow, on CPUs without AVX-512 BF16 or AMX. So `auto` looks at what this machine
computes natively and times a few training steps of the actual model each way. Timings are
cached in the user cache, keyed by the workload, the device, the CPU and the torch version.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from cnnlab.data.sources import cache_dir as user_cache
from cnnlab.errors import UsageError
from cnnlab.files import write_text
from cnnlab.train.settings import SWITCHES, switch_word

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
"""/proc/cpuinfo flags of a CPU that computes bfloat16 natively (x86 AVX-512 BF16, AMX; Arm)."""
TORCH_FLAGS = ("avx2", "fma", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
               "amx_tile", "amx_bf16", "asimd", "sve", "bf16")
"""The CPU flags that decide which of torch's and oneDNN's kernels run (part of a probe's key)."""
BF16_ISA_MARKS = ("BF16", "FP16", "AMX", "AVX10", "ALL", "DEFAULT")
"""A ONEDNN_MAX_CPU_ISA value with one of these in its name still lets oneDNN use bfloat16."""
MIN_SPEEDUP = 1.05
"""The option that departs from plain fp32/NCHW must measure at least this much faster."""
WARMUP_STEPS = 1
"""Untimed steps of each alternative before timing (oneDNN primitives, first allocations)."""
MIN_ROUNDS, MAX_ROUNDS = 3, 15
PROBE_BUDGET_S = 0.25
"""Timed rounds stop once they have taken this long (after MIN_ROUNDS)."""
PROBE_BATCH = 32
"""The probe's batch: the planned batch size, at most this."""
MIN_PLANNED_IMAGES = 50 * 2 * (WARMUP_STEPS + MIN_ROUNDS) * PROBE_BATCH
"""A run planned to train fewer images than 50 times a probe's (12,800, a fifth of a
Fashion-MNIST epoch) keeps the plain default unless the cache knows: the probes would cost a
noticeable share of a run that short."""
FROM_CACHE = ", from the probe cache"
BUSY_LIMIT = 0.5
"""Cores of other work during a probe from which its timings are not cached."""
CACHE_FILE = "probes.json"


class ProbeStep(Protocol):
    """One training step of the workload in a given memory format and autocast dtype."""

    def __call__(self, *, channels_last: bool, amp_dtype: torch.dtype | None) -> None: ...


# --- what this machine computes natively -----------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What the processor and torch report about low-precision arithmetic on this machine.

    Tests build one by hand to force each branch of `decide_amp`; `detect_capabilities` reads
    the real one.
    """

    cpu_flags: frozenset[str] = frozenset()
    mkldnn_bf16: bool = False
    aten_capability: str = "DEFAULT"
    onednn_max_isa: str = ""
    machine: str = "x86_64"
    cpu_model: str = ""
    cuda_bf16: bool = False

    def cpu_bf16_absence(self) -> str | None:
        """Why this CPU cannot compute bfloat16 natively, as a clause; None when it can."""
        if not self.cpu_flags & set(BF16_FLAGS):
            return "this CPU has no native bfloat16 (avx512_bf16/amx_bf16 absent)"
        isa = self.onednn_max_isa.upper()
        if isa and not any(mark in isa for mark in BF16_ISA_MARKS):
            return (f"ONEDNN_MAX_CPU_ISA={self.onednn_max_isa} holds oneDNN below its bfloat16 "
                    "kernels")
        is_x86 = self.machine.lower() in ("x86_64", "amd64")
        if is_x86 and not self.aten_capability.upper().startswith("AVX512"):
            return (f"torch runs its {self.aten_capability} kernels here (ATEN_CPU_CAPABILITY), "
                    "without native bfloat16")
        if not self.mkldnn_bf16:
            return "torch's oneDNN reports no bfloat16 support on this CPU"
        return None

    @property
    def native_bf16(self) -> bool:
        return self.cpu_bf16_absence() is None

    def fingerprint(self) -> str:
        """The CPU facts that change torch's kernels and speed, for a probe's cache key."""
        flags = " ".join(flag for flag in TORCH_FLAGS if flag in self.cpu_flags) or "none"
        return (f"{self.cpu_model or self.machine}; flags {flags}; aten {self.aten_capability}; "
                f"onednn {self.onednn_max_isa or 'default'}")


def _cpuinfo() -> tuple[frozenset[str], str]:
    """The flags (x86 `flags`, Arm `Features`) and model name of the first CPU in /proc/cpuinfo."""
    flags, model = frozenset(), ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                elif key == "model name" and not model:
                    model = value.strip()
    except OSError:
        pass
    return flags, model


def detect_capabilities() -> Capabilities:
    """This machine's report: /proc/cpuinfo, the ISA environment variables and torch's own view."""
    flags, model = _cpuinfo()
    mkldnn = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return Capabilities(cpu_flags=flags, mkldnn_bf16=bool(mkldnn),
                        aten_capability=torch.backends.cpu.get_cpu_capability(),
                        onednn_max_isa=isa, machine=platform.machine(),
                        cpu_model=model or platform.processor(), cuda_bf16=cuda_bf16)


# --- timing ----------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device` (a GPU runs asynchronously; the CPU needs no wait)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_alternatives(steps: dict[str, Callable[[], None]], device: torch.device,
                      budget_s: float = PROBE_BUDGET_S) -> dict[str, float]:
    """Median milliseconds per step of each alternative, timed in interleaved rounds.

    The order reverses every round (A B, B A, ...) so a machine speeding up or slowing down
    during the probe favours neither. On the CPU the clock is this process's CPU time, which
    other processes inflate far less than the wall clock (waiting for a core is not counted).
    """
    device = torch.device(device)
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    for step in steps.values():
        for _ in range(WARMUP_STEPS):
            step()
    synchronize(device)
    seconds = {name: [] for name in steps}
    names = list(steps)
    started = time.perf_counter()
    for round_ in range(MAX_ROUNDS):
        for name in names if round_ % 2 == 0 else reversed(names):
            begin = clock()
            steps[name]()
            synchronize(device)
            seconds[name].append(clock() - begin)
        if round_ + 1 >= MIN_ROUNDS and time.perf_counter() - started > budget_s:
            break
    return {name: 1000 * statistics.median(times) for name, times in seconds.items()}


class TrainingStepProbe:
    """Forward, loss and backward of a private copy of `model` on a random batch.

    The copies (one per memory format) keep the model's weights, batch-norm statistics and
    gradients untouched, and the global random-number state is restored after each step, so
    probing changes nothing in the run that follows. `workload` (the spec, `input_shape` and
    probe batch) is the key under which the deciders cache its timings.
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], device,
                 batch_size: int = PROBE_BATCH, spec: str | None = None):
        self.model, self.device = model, torch.device(device)
        batch = (min(batch_size, PROBE_BATCH), *input_shape)
        self.batch = torch.randn(batch, generator=torch.Generator().manual_seed(0)).to(self.device)
        self.workload = (f"{spec or type(model).__name__} "
                         f"{'x'.join(map(str, input_shape))} batch {batch[0]}")
        self._copies: dict[bool, nn.Module] = {}

    def _copy(self, channels_last: bool) -> nn.Module:
        if channels_last not in self._copies:
            memory_format = torch.channels_last if channels_last else torch.contiguous_format
            twin = copy.deepcopy(self.model).to(self.device, memory_format=memory_format)
            self._copies[channels_last] = twin.train()
        return self._copies[channels_last]

    def __call__(self, *, channels_last: bool, amp_dtype: torch.dtype | None) -> None:
        model = self._copy(channels_last)
        X = self.batch.contiguous(memory_format=torch.channels_last) if channels_last \
            else self.batch
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            with torch.autocast(self.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = model(X).float().logsumexp(dim=1).mean()
            loss.backward()
        model.zero_grad(set_to_none=True)


# --- the probe cache -------------------------------------------------------------------------


def cache_path(cache_dir: str | Path | None = None) -> Path:
    """The probe cache: `cache_dir`, else the user cache (`$CNNLAB_DATA`, else ~/.cache/cnnlab),
    + probes.json."""
    return Path(cache_dir or user_cache()).expanduser() / CACHE_FILE


class ProbeCache:
    """Measured milliseconds per step by key, in one JSON file written atomically.

    An unreadable file is renamed aside (never deleted) with a warning and a new one started;
    a cache that cannot be written only costs a new probe next time.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _load(self) -> dict:
        """The entries on disk ({} when there is no file); an unparsable file is set aside."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            entries = json.loads(data)  # raises JSONDecodeError or UnicodeDecodeError
            if not isinstance(entries, dict):
                raise ValueError(f"a JSON {type(entries).__name__}, not an object")
            return entries
        except ValueError as exc:
            stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            os.replace(self.path, aside)
            warnings.warn(f"probe cache {self.path} is unreadable ({exc}); kept it as {aside.name} "
                          "and started a new one", RuntimeWarning, stacklevel=4)
            return {}

    def get(self, key: str, names: tuple[str, ...]) -> dict[str, float] | None:
        """The cached milliseconds of each of `names` under `key`, or None (a miss)."""
        try:
            entry = self._load().get(key)
        except OSError as exc:
            warnings.warn(f"probe cache {self.path} cannot be read ({exc}); probing without it",
                          RuntimeWarning, stacklevel=3)
            return None
        ms = entry.get("ms") if isinstance(entry, dict) else None
        if not isinstance(ms, dict) or set(ms) != set(names):
            return None
        if not all(isinstance(v, (int, float)) and v > 0 for v in ms.values()):
            return None
        return {name: float(ms[name]) for name in names}

    def put(self, key: str, ms: dict[str, float]) -> None:
        """Record `ms` under `key`, keeping every other entry (re-read just before writing)."""
        try:
            entries = self._load()
            entries[key] = {"ms": ms, "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
        except (OSError, UsageError) as exc:  # UsageError: a write the filesystem refused
            warnings.warn(f"probe cache {self.path} not written ({exc}); the next run probes "
                          "again", RuntimeWarning, stacklevel=3)


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return device.type


def probe_key(kind: str, workload: str, device: torch.device, capabilities: Capabilities) -> str:
    """The cache key: what was probed, the workload, the device, the CPU, threads and torch."""
    return (f"{kind} | {workload} | {_device_label(device)} | {capabilities.fingerprint()} | "
            f"threads {torch.get_num_threads()} | torch {torch.__version__}")


def _measure(steps: dict[str, Callable[[], None]], device: torch.device, key: str | None,
             cache_dir, planned_images: int | None) -> tuple[dict[str, float] | None, str]:
    """Milliseconds per step of each alternative, from the cache or a fresh probe, and a note
    on where they came from; None when the cache misses and the run is too short for a probe.

    A probe during which other processes kept BUSY_LIMIT cores or more busy is used once but
    not cached: threads that wait for each other beside other work time nothing reliably.
    """
    cache = None if key is None else ProbeCache(cache_path(cache_dir))
    ms = None if cache is None else cache.get(key, tuple(steps))
    if ms is not None:
        return ms, FROM_CACHE
    if planned_images is not None and planned_images < MIN_PLANNED_IMAGES:
        return None, ""
    load = OtherLoad()
    ms = time_alternatives(steps, device)
    others = load.read()
    if others is not None and others >= BUSY_LIMIT:
        return ms, f", beside {others:.1f} cores of other work, so not cached"
    if cache is not None:
        cache.put(key, ms)
    return ms, ""


def _too_short(planned_images: int) -> str:
    return f"a run of {planned_images:,} images is too short to pay for a probe"


def _choice(name: str, requested) -> str:
    """`requested` as auto/on/off (True and False mean on and off)."""
    requested = switch_word(requested)
    if requested not in SWITCHES:
        raise UsageError(f"{name}={requested!r} is not allowed; use auto, on or off")
    return requested


def _timing(chosen_ms: float, plain_ms: float, plain: str, note: str) -> str:
    """'4.1 ms a step against 6.3 ms in fp32, from the probe cache'."""
    return f"{chosen_ms:.1f} ms a step against {plain_ms:.1f} ms in {plain}{note}"


# --- mixed precision -------------------------------------------------------------------------


@dataclass(frozen=True)
class AmpDecision:
    """Whether to autocast, to which dtype, with a gradient scaler or not, and why (one sentence).

    `ms_fp32` and `ms_amp` are the probe's milliseconds per step, where one ran.
    """

    enabled: bool
    dtype: str | None
    scaler: bool
    reason: str
    ms_fp32: float | None = None
    ms_amp: float | None = None

    @property
    def torch_dtype(self) -> torch.dtype | None:
        return getattr(torch, self.dtype) if self.enabled else None


def _low_precision(device: torch.device, capabilities: Capabilities) -> tuple[str, bool]:
    """The autocast dtype the device computes best, and whether it needs loss scaling."""
    if device.type == "mps" or (device.type == "cuda" and not capabilities.cuda_bf16):
        return "float16", True
    return "bfloat16", False


def decide_amp(requested="auto", device="cpu", model_step: ProbeStep | None = None,
               capabilities: Capabilities | None = None, *, channels_last: bool = False,
               workload: str | None = None, planned_images: int | None = None,
               cache_dir=None) -> AmpDecision:
    """Autocast or not: `on`/`off` as asked; `auto` by what the device computes natively.

    On the CPU, bfloat16 only where it is native and `model_step` (timed in `channels_last`
    format) measures it at least MIN_SPEEDUP faster; on CUDA, bfloat16 where the GPU has it,
    else float16 with loss scaling; on MPS, float16 where it measures faster. With `workload`
    (the model spec and input) the timings are cached; a run planned for fewer than
    MIN_PLANNED_IMAGES images is not probed.
    """
    requested = _choice("amp", requested)
    device = torch.device(device)
    capabilities = capabilities or detect_capabilities()
    dtype, scaler = _low_precision(device, capabilities)
    name = f"{dtype} autocast{' with loss scaling' if scaler else ''}"
    absence = capabilities.cpu_bf16_absence() if device.type == "cpu" else None
    if requested == "off":
        return AmpDecision(False, None, False, "autocast off: asked for (amp=off)")
    if requested == "on":
        warning = f", although {absence}, so expect it slower" if absence else ""
        return AmpDecision(True, dtype, scaler, f"{name} on: asked for (amp=on){warning}")
    if device.type == "cuda":
        why = "this GPU has no bfloat16" if scaler else "this GPU computes bfloat16"
        return AmpDecision(True, dtype, scaler, f"{name} on: {why}")
    if device.type not in ("cpu", "mps"):
        return AmpDecision(False, None, False, f"autocast off: no rule for {device.type} devices")
    if absence:
        return AmpDecision(False, None, False, f"{name} off: {absence}")
    native = "native on this CPU" if device.type == "cpu" else "supported on MPS"
    if model_step is None:
        if device.type == "mps":
            return AmpDecision(False, None, False, f"{name} off: MPS needs a probe to choose it "
                                                   "and no model step was given")
        return AmpDecision(True, dtype, scaler, f"{name} on: {native} (not measured)")
    low = getattr(torch, dtype)
    steps = {"fp32": lambda: model_step(channels_last=channels_last, amp_dtype=None),
             dtype: lambda: model_step(channels_last=channels_last, amp_dtype=low)}
    key = None if workload is None else probe_key(f"amp {dtype}", workload, device, capabilities)
    ms, note = _measure(steps, device, key, cache_dir, planned_images)
    if ms is None:
        return AmpDecision(False, None, False, f"{name} off: {_too_short(planned_images)}")
    on = ms["fp32"] >= MIN_SPEEDUP * ms[dtype]
    verdict = "on: {} and measured faster" if on else "off: {} but measured no faster"
    return AmpDecision(on, dtype if on else None, scaler and on,
                       f"{name} {verdict.format(native)} "
                       f"({_timing(ms[dtype], ms['fp32'], 'fp32', note)})", ms["fp32"], ms[dtype])


# --- memory format ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FormatDecision:
    """Channels-last or not, why, and the milliseconds per step measured each way (if probed)."""

    enabled: bool
    reason: str
    ms_contiguous: float | None = None
    ms_channels_last: float | None = None
    cached: bool = False


def decide_channels_last(requested, step: ProbeStep, workload: str, device="cpu", *,
                         amp_dtype: torch.dtype | None = None, planned_images: int | None = None,
                         cache_dir=None, capabilities: Capabilities | None = None
                         ) -> FormatDecision:
    """Channels-last memory format or not: `on`/`off` as asked; `auto` by a cached probe.

    `auto` times `step` both ways (under `amp_dtype` autocast) and takes channels-last when it
    is at least MIN_SPEEDUP faster. `workload` names the model spec and input shape; the device,
    CPU, threads and torch version complete the cache key. A run planned for fewer than
    MIN_PLANNED_IMAGES images stays in the plain format unless the cache already knows.
    """
    requested = _choice("channels_last", requested)
    if requested != "auto":
        return FormatDecision(requested == "on", f"channels-last {requested}: asked for "
                                                 f"(channels_last={requested})")
    device = torch.device(device)
    capabilities = capabilities or detect_capabilities()
    precision = "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch.")
    key = probe_key(f"channels_last {precision}", workload, device, capabilities)
    steps = {"channels_last": lambda: step(channels_last=True, amp_dtype=amp_dtype),
             "contiguous": lambda: step(channels_last=False, amp_dtype=amp_dtype)}
    ms, note = _measure(steps, device, key, cache_dir, planned_images)
    if ms is None:
        return FormatDecision(False, f"channels-last off: {_too_short(planned_images)}")
    faster = ms["contiguous"] >= MIN_SPEEDUP * ms["channels_last"]
    verdict = "on: measured faster" if faster else "off: measured no faster"
    return FormatDecision(faster, f"channels-last {verdict} "
                          f"({_timing(ms['channels_last'], ms['contiguous'], 'NCHW', note)})",
                          ms["contiguous"], ms["channels_last"], note == FROM_CACHE)


# --- how busy the cores are ------------------------------------------------------------------


def _load_sample() -> tuple[float, float, float] | None:
    """CPU-seconds spent on this process's cores by everyone (/proc/stat) and by this process,
    and the time; None where /proc/stat or the affinity cannot be read (not Linux)."""
    try:
        cpus = os.sched_getaffinity(0)
        with open("/proc/stat") as stat:
            lines = [line.split() for line in stat if line.startswith("cpu")]
    except (AttributeError, OSError):
        return None
    ticks = sum(sum(map(int, (*fields[1:4], *fields[6:8]))) for fields in lines
                if fields[0][3:].isdigit() and int(fields[0][3:]) in cpus)  # user..system, irqs
    return ticks / os.sysconf("SC_CLK_TCK"), sum(os.times()[:2]), time.monotonic()


class OtherLoad:
    """How many of this process's cores other processes keep busy from now until `read()`;
    None under 0.1 s (/proc/stat counts in hundredths of a second) or where it cannot tell."""

    def __init__(self):
        self._start = _load_sample()

    def read(self) -> float | None:
        end = _load_sample()
        if self._start is None or end is None or end[2] - self._start[2] < 0.1:
            return None
        (busy, own, began), (busy_now, own_now, now) = self._start, end
        return max(0.0, ((busy_now - busy) - (own_now - own)) / (now - began))


def busy_cores(interval: float = 0.2) -> float | None:
    """How many of this process's cores other processes kept busy over `interval` seconds
    (at least 0.1); None where it cannot be measured (not Linux)."""
    load = OtherLoad()
    time.sleep(max(interval, 0.1))
    return load.read()
