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

from cnnlab.analysis.bench import BenchOptions, make_step, prepare, random_batch, time_steps
from cnnlab.models.build import build_for_input
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.autotune import (
    TrainingStepProbe,
    apply_threads,
    busy_cores,
    decide_amp,
    decide_channels_last,
    default_threads,
    detect_capabilities,
)


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


def grid(spec: str, shape, batch: int, rounds: int, steps: int) -> dict[tuple[bool, bool], float]:
    """Milliseconds per full training step for each (bfloat16, channels-last), median of rounds."""
    variants = {}
    for amp, channels_last in itertools.product((False, True), repeat=2):
        options = BenchOptions(amp=amp, channels_last=channels_last, warmup=2, steps=steps)
        torch.manual_seed(0)
        model = prepare(build_for_input(spec, shape), options)
        variants[amp, channels_last] = (make_step(model, options),
                                        random_batch((batch, *shape), 10, options), options)
    times = {key: [] for key in variants}
    for round_ in range(rounds):
        for key in variants if round_ % 2 == 0 else reversed(variants):
            times[key].append(1000 * time_steps(*variants[key]))
    return {key: statistics.median(t) for key, t in times.items()}


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
    for text in args.models.split(","):
        spec, shape = parse_model(text)
        with tempfile.TemporaryDirectory() as cache_dir:
            cold, amp, layout = decide(spec, shape, cache_dir, args.probe_batch)
            warm, _, _ = decide(spec, shape, cache_dir, args.probe_batch)
        print(f"\n{text}: probes {cold:.2f} s with an empty cache, {warm:.3f} s from it\n"
              f"  {amp}\n  {layout}")
    if args.grid:
        for text in args.grid_models.split(","):
            spec, shape = parse_model(text)
            ms = grid(spec, shape, args.batch, args.rounds, args.steps)
            print(f"\n{text}, training step at batch {args.batch} (ms, median of {args.rounds} "
                  f"rounds of {args.steps} steps):")
            print(f"  {'':9} {'NCHW':>8} {'channels-last':>14}")
            for amp in (False, True):
                print(f"  {'bfloat16' if amp else 'fp32':9} {ms[amp, False]:8.1f} "
                      f"{ms[amp, True]:14.1f}")


if __name__ == "__main__":
    main()
