"""A 4-trial LeNet sweep with `--workers 2` against the same 4 runs one after another.

Both sides start from nothing, as a user would: the sweep is one `cnnlab sweep lenet --grid
lr=...` command (its two workers each load the data once and train with cores/2 threads); the
other side is four `cnnlab train lenet --lr ...` commands run in turn (each with all cores).
Each trial trains 1 epoch on 10,000 images and evaluates on the 10,000 test images. Rounds
alternate the order (sweep first, then train first) so the machine's drift hits both sides.

    python benchmarks/sweep_workers.py              # 2 rounds
    python benchmarks/sweep_workers.py --rounds 4 --workers 2
    python benchmarks/sweep_workers.py --train-threads 1   # the train runs with one thread each

On a machine where other work holds a core, a run with all cores' threads waits on the busy
one; `--train-threads 1` separates that effect from the overlap of the sweep's workers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnlab.train.autotune import busy_cores, detect_capabilities

RATES = ("0.03", "0.1", "0.3", "1")
COMMON = ["--epochs", "1", "--subset", "10000"]


def timed(commands: list[list[str]]) -> float:
    """Seconds to run `commands` one after another (each `python -m cnnlab ...`)."""
    started = time.perf_counter()
    for command in commands:
        subprocess.run([sys.executable, "-m", "cnnlab", *command], check=True,
                       stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-threads", type=int,
                        help="--threads for the sequential cnnlab train runs (default: theirs)")
    args = parser.parse_args()
    threads = [] if args.train_threads is None else ["--threads", str(args.train_threads)]
    print(f"CPU: {detect_capabilities().fingerprint()}")
    others = busy_cores(1.0)
    print(f"cores busy with other work before the benchmark: "
          f"{'n/a' if others is None else f'{others:.2f}'}")

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"4 LeNet runs (1 epoch, 10k images): sweep --workers {args.workers} "
                  f"vs cnnlab train {' '.join(threads)} one after another (s)")
    for column in ("round", "order", "sequential train", "sweep", "sweep / sequential"):
        table.add_column(column, justify="right")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-sweep-bench-") as folder:
        for round_ in range(args.rounds):
            out = Path(folder) / f"round{round_}"
            sweep = [["sweep", "lenet", "--grid", f"lr={','.join(RATES)}", *COMMON,
                      "--workers", str(args.workers), "--out", str(out / "sweep")]]
            train = [["train", "lenet", "--lr", lr, *COMMON, *threads,
                      "--out", str(out / f"lr{lr}")] for lr in RATES]
            first_sweep = round_ % 2 == 0
            if first_sweep:
                sweep_s, train_s = timed(sweep), timed(train)
            else:
                train_s, sweep_s = timed(train), timed(sweep)
            ratios.append(sweep_s / train_s)
            table.add_row(str(round_ + 1), "sweep first" if first_sweep else "train first",
                          f"{train_s:.1f}", f"{sweep_s:.1f}", f"{sweep_s / train_s:.2f}x")
    Console().print(table)
    median = statistics.median(ratios)
    print(f"median sweep / sequential: {median:.2f}x (target <= 0.80x: "
          f"{'met' if median <= 0.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
