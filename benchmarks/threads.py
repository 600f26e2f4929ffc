"""`--threads` beside a busy process: LeNet's training step with 1 and N threads.

Each phase measures the step (forward, cross-entropy, backward, fused SGD; batch 128,
channels-last, as `cnnlab train lenet` runs it) with each thread count in interleaved rounds,
first with nothing of ours beside it, then beside processes that each spin one core. A spinner
stops by itself after its phase's time limit, and is stopped at the end of the phase anyway.
The "others busy" column is `busy_cores()` just before the phase's timing: what everything
else on the machine (the spinners included) kept busy; "leave_busy picks" is what
`default_threads(leave_busy=True)` chose at that moment.

    python benchmarks/threads.py                   # threads 1 and all cores, 1 spinner
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/threads.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from cnnlab.analysis.bench import BenchOptions, make_step, prepare, random_batch, time_steps
from cnnlab.models.build import build_for_input
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.autotune import busy_cores, detect_capabilities
from cnnlab.train.threads import apply_threads, default_threads

SPIN = ("import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end: pass")
"""A child process that keeps one core busy until its deadline, then exits by itself."""


def spinners(count: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(count)]


def stop(processes: list[subprocess.Popen]) -> None:
    """Stop the spinners; warn when one had already ended (the phase outlived its limit)."""
    if any(process.poll() is not None for process in processes):
        print("warning: a spinner stopped before its phase ended; raise --limit")
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=10)


def step_ms(threads: list[int], rounds: int, steps: int) -> dict[int, float]:
    """Median milliseconds per LeNet training step for each thread count (interleaved rounds)."""
    options = BenchOptions(channels_last=True, warmup=3, steps=steps)
    torch.manual_seed(0)
    model = prepare(build_for_input("lenet", (1, 28, 28)), options)
    step = make_step(model, options)
    batch = random_batch((128, 1, 28, 28), 10, options)
    times = {n: [] for n in threads}
    for round_ in range(rounds):
        for n in threads if round_ % 2 == 0 else reversed(threads):
            apply_threads(n)
            times[n].append(1000 * time_steps(step, batch, options))
    return {n: statistics.median(t) for n, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=f"1,{default_threads()}",
                        help="thread counts to compare (default: 1 and the affinity's cores)")
    parser.add_argument("--busy", type=int, default=1, help="spinning processes beside (1)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--limit", type=float, default=120.0,
                        help="seconds after which a spinner stops by itself")
    args = parser.parse_args()
    threads = sorted({int(n) for n in args.threads.split(",")})
    retain_freed_memory()
    caps = detect_capabilities()
    print(f"CPU: {caps.fingerprint()}; default_threads() = {default_threads()}")

    from rich.console import Console
    from rich.table import Table

    table = Table(title="LeNet training step, batch 128, channels-last (ms, median of rounds)")
    columns = ("beside", "others busy (cores)", *(f"{n} thread(s)" for n in threads), "best",
               "leave_busy picks")
    for column in columns:
        table.add_column(column, justify="right")
    for count in (0, args.busy):
        started = time.monotonic()
        busy = spinners(count, args.limit)
        try:
            time.sleep(0.3 if count else 0)  # let the spinners start
            others = busy_cores(0.5)
            pick = default_threads(leave_busy=True)
            ms = step_ms(threads, args.rounds, args.steps)
        finally:
            stop(busy)
        best = min(ms, key=ms.get)
        label = "nothing of ours" if count == 0 else f"{count} spinning process(es)"
        table.add_row(label, "n/a" if others is None else f"{others:.2f}",
                      *(f"{ms[n]:.2f}" for n in threads), f"{best} thread(s)", str(pick))
        print(f"phase '{label}' took {time.monotonic() - started:.1f} s")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
