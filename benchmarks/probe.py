"""What `amp=auto` and `channels_last=auto` decide here, what their probes cost, and the grid.

For each model: the seconds the two decisions take with an empty probe cache (building the
probe's model copies included) and again from the cache, and what they chose. With `--grid`
the full training step (forward, cross-entropy, backward, fused SGD) at `--batch` is timed
in all four combinations of fp32/bfloat16 autocast and NCHW/channels-last, in interleaved
rounds, to check the probe's choice against the run's own batch size.

    python benchmarks/probe.py --grid
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/probe.py --grid
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time

import torch

from cnnlab.analysis.bench import BenchOptions, make_step, prepare, random_batch
from cnnlab.models.build import build_for_input
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.autotune import (
    OtherLoad,
    TrainingStepProbe,
    busy_cores,
    decide_amp,
    decide_channels_last,
    detect_capabilities,
)
from cnnlab.train.threads import apply_threads, default_threads


def parse_model(text: str) -> tuple[str, tuple[int, int, int]]:
    """'resnet18@96' as ('resnet18', (1, 96, 96)); a bare name takes its family's input side."""
    from cnnlab.models.build import input_chw

    spec, _, side = text.partition("@")
    return spec, input_chw(spec, int(side) if side else None)


def decide(spec: str, shape, cache_dir: str, batch: int) -> tuple[float, str, str]:
    """Seconds both decisions take for a freshly built model, and their reasons."""
    torch.manual_seed(0)
    model = build_for_input(spec, shape)
    started = time.perf_counter()
    probe = TrainingStepProbe(model, shape, "cpu", batch_size=batch, spec=spec)
    amp = decide_amp("auto", "cpu", probe, workload=probe.workload, cache_dir=cache_dir)
    layout = decide_channels_last("auto", probe, probe.workload, "cpu",
                                  amp_dtype=amp.torch_dtype, cache_dir=cache_dir)
    return time.perf_counter() - started, amp.reason, layout.reason


def timed(step, batch, steps: int) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds (this process, all threads) per step over `steps` steps."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step(*batch)
    return (1000 * (time.perf_counter() - wall) / steps,
            1000 * (time.process_time() - cpu) / steps)


def grid(spec: str, shape, batch: int, rounds: int, steps: int) -> dict:
    """Median (wall, CPU) milliseconds per full training step for each (bfloat16, channels-last).

    With one thread the CPU time is the step's arithmetic even on a busy machine (time spent
    waiting for a core is not counted); the wall time is what a user waits.
    """
    variants = {}
    for amp, channels_last in itertools.product((False, True), repeat=2):
        options = BenchOptions(amp=amp, channels_last=channels_last)
        torch.manual_seed(0)
        model = prepare(build_for_input(spec, shape), options)
        variants[amp, channels_last] = (make_step(model, options),
                                        random_batch((batch, *shape), 10, options))
        timed(*variants[amp, channels_last], steps=2)  # warm-up
    times = {key: [] for key in variants}
    for round_ in range(rounds):
        for key in variants if round_ % 2 == 0 else reversed(variants):
            times[key].append(timed(*variants[key], steps))
    return {key: tuple(statistics.median(t[i] for t in runs) for i in (0, 1))
            for key, runs in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet,resnet18@96,compact-resnet-s")
    parser.add_argument("--probe-batch", type=int, default=256,
                        help="the run's batch handed to the probe (which caps it at 32)")
    parser.add_argument("--grid", action="store_true", help="also time the four-way grid")
    parser.add_argument("--grid-models", default="compact-resnet-s")
    parser.add_argument("--batch", type=int, default=256, help="the grid's batch size")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per grid round")
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    apply_threads(args.threads)
    retain_freed_memory()
    print(f"CPU: {detect_capabilities().fingerprint()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; others busy: {busy_cores(0.5):.2f} cores")
    for text in filter(None, args.models.split(",")):
        spec, shape = parse_model(text)
        with tempfile.TemporaryDirectory() as cache_dir:
            cold, amp, layout = decide(spec, shape, cache_dir, args.probe_batch)
            warm, _, _ = decide(spec, shape, cache_dir, args.probe_batch)
        print(f"\n{text}: probes {cold:.2f} s with an empty cache, {warm:.3f} s from it\n"
              f"  {amp}\n  {layout}")
    if args.grid:
        for text in args.grid_models.split(","):
            spec, shape = parse_model(text)
            load = OtherLoad()
            ms = grid(spec, shape, args.batch, args.rounds, args.steps)
            print(f"\n{text}, training step at batch {args.batch}: wall (CPU) ms, median of "
                  f"{args.rounds} rounds of {args.steps} steps; others kept {load.read():.2f} "
                  "cores busy")
            print(f"  {'wall (CPU)':10} {'NCHW':>16} {'channels-last':>16}")
            for amp in (False, True):
                cells = [f"{ms[amp, cl][0]:.1f} ({ms[amp, cl][1]:.1f})" for cl in (False, True)]
                print(f"  {'bfloat16' if amp else 'fp32':10} {cells[0]:>16} {cells[1]:>16}")


if __name__ == "__main__":
    main()
