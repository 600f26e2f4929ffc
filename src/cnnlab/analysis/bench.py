"""Throughput and peak memory against batch size: the chapter's "change the batch size" exercise.

Each batch size runs `warmup` untimed steps (compilation, allocator and oneDNN warm-up) and then
`steps` timed ones on random inputs. A training step is forward, cross-entropy, backward and an
SGD-with-momentum update; an inference step is a forward pass under `torch.inference_mode`.
`cnnlab bench` and the studies time the step as training would run it on this machine
(`training_step_options`: the trainer's cached ``auto`` decisions on mixed precision and memory
format, on its threads); flags given explicitly override them.

Peak memory is measured, not estimated:
- CUDA: `torch.cuda.max_memory_allocated` (the tensors: weights, gradients, optimizer state,
  activations), reset before each batch size.
- CPU: the process's peak resident memory (`VmHWM` in /proc/self/status, or `ru_maxrss`). That
  peak never goes down within a process, so each batch size runs in a fresh process.
"Added" is the peak minus the memory in use after one step on a two-image batch (weights,
gradients, optimizer state and the libraries' one-off buffers are then in place), so it is what
the batch's activations and workspaces cost; it grows about linearly with the batch size.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis.statistics import interval
from cnnlab.errors import UsageError
from cnnlab.models.build import build_for_input, input_chw
from cnnlab.models.spec import ModelSpec
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.autotune import PROBE_BATCH, synchronize
from cnnlab.train.optim import make_optimizer
from cnnlab.train.runtime import decide_step
from cnnlab.train.settings import switch_word
from cnnlab.train.threads import apply_threads, use_threads

MODES = ("train", "infer")
RUNTIMES = ("torch", "onnxruntime")
NUM_CLASSES = 10
MIB = 2**20


@dataclass(frozen=True)
class BenchOptions:
    """How each step runs: training or inference, device, memory format, compile, mixed precision.

    `amp` autocasts to bfloat16 (on CPUs and GPUs alike, so no gradient scaler is needed).
    Training steps use the trainer's optimiser (fused SGD with momentum), or with
    `plain_optimizer` PyTorch's default SGD, as code written without cnnlab would.
    `runtime="onnxruntime"` times inference of the model exported to ONNX, in ONNX Runtime.
    """

    mode: str = "train"
    device: str = "cpu"
    channels_last: bool = False
    compile: bool = False
    amp: bool = False
    plain_optimizer: bool = False
    warmup: int = 3
    steps: int = 10
    runtime: str = "torch"
    threads: int | None = None
    """CPU threads of the timed steps (None: torch's default)."""
    reasons: tuple[str, ...] = field(default=(), compare=False)
    """Why the steps run in this precision and memory format, where the trainer's decisions
    chose them (`training_step_options`)."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise UsageError(f"bench mode {self.mode!r} is unknown; use 'train' or 'infer'")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"bench runtime {self.runtime!r} is unknown; use torch or onnxruntime")
        if self.runtime == "onnxruntime":
            eager_only = [flag for flag, on in (("--channels-last", self.channels_last),
                                                ("--compile", self.compile), ("--amp", self.amp),
                                                (f"--device {self.device}", self.device != "cpu"))
                          if on]
            if self.mode != "infer" or eager_only:
                without = f" and without {', '.join(eager_only)}" if eager_only else ""
                raise UsageError("--runtime onnxruntime times float32 inference on the CPU; use "
                                 f"it with --mode infer{without}")
        if self.warmup < 0 or self.steps < 1:
            raise UsageError(f"bench needs warmup >= 0 and steps >= 1, got warmup={self.warmup}, "
                             f"steps={self.steps}")

    def label(self) -> str:
        """A short description such as 'train, cpu, channels_last, bf16, 2 threads' (always
        naming the memory format and precision: 'NCHW, fp32' when neither is changed)."""
        threads = [f"{self.threads} threads"] if self.threads else []
        if self.runtime == "onnxruntime":
            return ", ".join([self.mode, self.device, "onnxruntime", *threads])
        flags = ["channels_last" if self.channels_last else "NCHW",
                 "bf16" if self.amp else "fp32", *(["compile"] if self.compile else [])]
        return ", ".join([self.mode, self.device, *flags, *threads])


@dataclass(frozen=True)
class BenchRow:
    """One batch size: throughput, time per step and memory (bytes; None where not measurable)."""

    batch_size: int
    images_per_s: float
    ms_per_step: float
    peak_bytes: int | None
    added_bytes: int | None
    ms_low: float | None = None
    ms_high: float | None = None
    """The 95% Student t interval of the mean step time over the timed steps (None: one step)."""


def prepare(model: nn.Module, options: BenchOptions) -> nn.Module:
    """Move the model to the device and memory format, set train/eval mode, compile if asked."""
    memory_format = torch.channels_last if options.channels_last else torch.preserve_format
    model = model.to(options.device, memory_format=memory_format)
    model.train(options.mode == "train")
    return torch.compile(model, dynamic=False) if options.compile else model


def make_step(model: nn.Module, options: BenchOptions, input_shape: tuple[int, ...] = ()):
    """A function `step(X, y)` running one training or inference step of `model`.

    The ONNX Runtime step exports the model first, for inputs of `input_shape` (C, H, W).
    """
    if options.runtime == "onnxruntime":
        # deferred: ONNX Runtime is an optional dependency (the export extra)
        from cnnlab.export.runtime import onnxruntime_step

        return onnxruntime_step(model, input_shape)
    autocast = torch.autocast(torch.device(options.device).type, dtype=torch.bfloat16,
                              enabled=options.amp)
    if options.mode == "infer":
        def step(X, y):
            with torch.inference_mode(), autocast:
                model(X)
        return step

    optimizer = make_optimizer(model, "sgd", lr=0.01, momentum=0.9,
                               fused=not options.plain_optimizer)

    def step(X, y):
        with autocast:
            loss = F.cross_entropy(model(X).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def random_batch(batch_shape: tuple[int, ...], num_classes: int, options: BenchOptions):
    """Random images of `batch_shape` (NCHW, in the asked memory format) and random labels."""
    X = torch.randn(batch_shape, device=options.device)
    if options.channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    return X, torch.randint(0, num_classes, (batch_shape[0],), device=options.device)


def time_steps(step, batch, options: BenchOptions) -> float:
    """Seconds per step on `batch`: `options.warmup` untimed steps, then the mean of `steps`."""
    times = step_times(step, batch, options)
    return sum(times) / len(times)


def step_times(step, batch, options: BenchOptions) -> list[float]:
    """Seconds of each of `options.steps` steps on `batch`, after `options.warmup` untimed ones
    (on a GPU by CUDA events, so the steps still queue back to back)."""
    device = torch.device(options.device)
    for _ in range(options.warmup):
        step(*batch)
    synchronize(device)
    if device.type == "cuda":
        marks = [torch.cuda.Event(enable_timing=True) for _ in range(options.steps + 1)]
        marks[0].record()
        for mark in marks[1:]:
            step(*batch)
            mark.record()
        synchronize(device)
        return [start.elapsed_time(end) / 1000 for start, end in zip(marks, marks[1:],
                                                                      strict=False)]
    times = []
    for _ in range(options.steps):
        started = time.perf_counter()
        step(*batch)
        times.append(time.perf_counter() - started)
    return times


def resident_bytes(field: str = "VmRSS") -> int | None:
    """This process's resident memory (`VmRSS`) or its peak (`VmHWM`) from /proc, else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _peak_resident_bytes() -> int:
    """The process's peak resident memory; ru_maxrss is KiB on Linux and bytes on macOS."""
    peak = resident_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def measure(model: nn.Module, batch_shape: tuple[int, ...], num_classes: int,
            options: BenchOptions) -> BenchRow:
    """Time one batch size on a prepared model and read the memory high-water mark.

    A first step on a two-image batch puts the gradients, the optimizer state and the libraries'
    one-off buffers in place, so "added" is what the batch's activations and workspaces need.
    """
    device = torch.device(options.device)
    if device.type == "cpu":
        retain_freed_memory()
    step = make_step(model, options, batch_shape[1:])
    step(*random_batch((2, *batch_shape[1:]), num_classes, options))
    batch = random_batch(batch_shape, num_classes, options)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    else:
        start_bytes = resident_bytes()
    times = step_times(step, batch, options)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = _peak_resident_bytes()
    added = None if start_bytes is None else max(0, peak - start_bytes)
    spread = interval([1000 * t for t in times])
    low, high = (None, None) if math.isnan(spread.low) else (spread.low, spread.high)
    return BenchRow(batch_shape[0], 1000 * batch_shape[0] / spread.mean, spread.mean, peak, added,
                    low, high)


def training_step_options(spec: str, shape: tuple[int, int, int], device, *, amp="auto",
                          channels_last="auto", threads: int | None = None,
                          **fields) -> BenchOptions:
    """Bench options that time the step as the trainer would run it here, on its threads.

    `amp` and `channels_last` are auto, on or off (True and False mean on and off), as training
    takes them: each ``auto`` becomes the trainer's own decision (`decide_step`, from the same
    cached probes, at the probe batch of every training batch size from PROBE_BATCH up), and
    the decisions' reasons go with the options. `threads` is the training setting (None: what
    training takes, OMP_NUM_THREADS or the cores this process may use). `fields` are the other
    BenchOptions (mode, steps, warmup, compile, runtime). ONNX Runtime times plain float32:
    there ``auto`` is off.
    """
    device = torch.device(device)
    asked = BenchOptions(device=str(device), amp=switch_word(amp) == "on",
                         channels_last=switch_word(channels_last) == "on", **fields)
    if asked.runtime != "torch":
        return asked
    spec = str(ModelSpec.parse(spec))  # the trainer's spelling, which keys its probe cache
    threads, _ = use_threads(threads, device)
    model = build_for_input(spec, shape, num_classes=NUM_CLASSES)
    precision, layout = decide_step(model, shape, device, PROBE_BATCH, spec, amp, channels_last)
    return dataclasses.replace(asked, channels_last=layout.enabled, amp=precision.enabled,
                               threads=threads if device.type == "cpu" else None,
                               reasons=(precision.reason, layout.reason))


def _bench_registered(name: str, batch_size: int, shape: tuple[int, int, int],
                      options: BenchOptions) -> BenchRow:
    """Build the registered model and measure one batch size (the body of each worker process)."""
    if options.threads and torch.device(options.device).type == "cpu":
        apply_threads(options.threads)
    torch.manual_seed(0)
    model = build_for_input(name, shape, num_classes=NUM_CLASSES)
    return measure(prepare(model, options), (batch_size, *shape), NUM_CLASSES, options)


def bench_input(name: str, input_size=None) -> tuple[int, int, int]:
    """The (C, H, W) a bench of `name` times (`input_chw`), checked on a shape-only twin: a bad
    spec or too small an input is a UsageError at no cost in memory or arithmetic."""
    shape = input_chw(name, input_size)
    build_for_input(name, shape, num_classes=NUM_CLASSES, device="meta")
    return shape


def bench(name: str, batch_sizes: list[int], input_size=None,
          options: BenchOptions | None = None) -> list[BenchRow]:
    """Throughput and memory of a registered model for each batch size.

    On the CPU each batch size runs in a fresh process (see the module note on peak memory);
    on a GPU they run here, one after another, with the peak counter reset in between.
    """
    options = options or BenchOptions()
    if not batch_sizes or min(batch_sizes) < 1:
        raise UsageError(f"batch sizes must be positive integers, got {batch_sizes}")

    shape = bench_input(name, input_size)
    if torch.device(options.device).type == "cuda":
        return [_bench_registered(name, size, shape, options) for size in batch_sizes]
    context = multiprocessing.get_context("spawn")
    rows = []
    for size in batch_sizes:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            rows.append(pool.submit(_bench_registered, name, size, shape, options).result())
    return rows


def _mib(nbytes: int | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / MIB:,.1f}"


def _step_ms(row: BenchRow) -> str:
    """``12.3 [12.1, 12.5]``: the mean step time and its 95% interval over the timed steps."""
    spread = "" if row.ms_low is None else f" [{row.ms_low:,.1f}, {row.ms_high:,.1f}]"
    return f"{row.ms_per_step:,.1f}{spread}"


def _kib_per_image(row: BenchRow) -> str:
    return "n/a" if row.added_bytes is None else f"{row.added_bytes / 1024 / row.batch_size:,.0f}"


def print_table(name: str, shape: tuple[int, int, int], options: BenchOptions,
                rows: list[BenchRow]) -> None:
    """The rows as a rich table titled with the model, input and options."""
    from rich.console import Console
    from rich.table import Table

    where = "CUDA max allocated" if options.device.startswith("cuda") else "peak resident (VmHWM)"
    caption = "\n".join([*options.reasons,
                         f"memory: {where}; added = peak minus memory after a 2-image step"])
    table = Table(title=f"{name} {'x'.join(map(str, shape))} ({options.label()})",
                  caption=caption)
    for column in ("batch", "images/s", "ms/step [95% interval]", "peak MiB", "added MiB",
                   "added KiB/image"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row.batch_size), f"{row.images_per_s:,.0f}", _step_ms(row),
                      _mib(row.peak_bytes), _mib(row.added_bytes), _kib_per_image(row))
    Console().print(table)


def plot(name: str, shape: tuple[int, int, int], options: BenchOptions, rows: list[BenchRow],
         path: str | Path) -> Path:
    """Images/s and added memory against batch size (log-2 axis), side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [row.batch_size for row in rows]
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(9, 3.5))
    speed.plot(sizes, [row.images_per_s for row in rows], "o-")
    speed.set_ylabel("images/s")
    memory.plot(sizes, [(row.added_bytes or 0) / MIB for row in rows], "o-", color="C1")
    memory.set_ylabel("memory added by the steps (MiB)")
    for axes in (speed, memory):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sizes, [str(s) for s in sizes])
        axes.set_xlabel("batch size")
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    fig.suptitle(f"{name} {'x'.join(map(str, shape))} ({options.label()})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
