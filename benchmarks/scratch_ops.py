"""Time the scratch operators against torch.nn.functional: forward, and forward + backward.

    python benchmarks/scratch_ops.py [--repeats 7] [--threads N]

For conv2d and pool2d at a few sizes it prints the loop version (small sizes only: it runs one
Python step per output position, so it is hundreds of times slower), the vectorised version and
torch.nn.functional, each as milliseconds (best of the repeats) and as a ratio to torch. On a
shared machine run it a few times and read the best.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from cnnlab.scratch import conv2d, conv2d_loop, pool2d, pool2d_loop

# (label, X shape, K shape, stride, padding, include the loop version)
CONV_CASES = [
    ("2x3x16x16 -> 4, 3x3", (2, 3, 16, 16), (4, 3, 3, 3), 1, 0, True),
    ("32x16x28x28 -> 32, 3x3 pad 1", (32, 16, 28, 28), (32, 16, 3, 3), 1, 1, False),
    ("128x16x28x28 -> 32, 3x3", (128, 16, 28, 28), (32, 16, 3, 3), 1, 0, False),
    ("64x32x28x28 -> 64, 3x3 stride 2 pad 1", (64, 32, 28, 28), (64, 32, 3, 3), 2, 1, False),
]
# (label, X shape, mode, window, stride, padding, include the loop version)
POOL_CASES = [
    ("2x3x16x16 max 2x2", (2, 3, 16, 16), "max", 2, None, 0, True),
    ("128x16x28x28 max 2x2", (128, 16, 28, 28), "max", 2, None, 0, False),
    ("128x32x26x26 max 3x3 stride 2 pad 1", (128, 32, 26, 26), "max", 3, 2, 1, False),
    ("128x16x28x28 avg 2x2", (128, 16, 28, 28), "avg", 2, None, 0, False),
]
GOAL_CASE, GOAL_RATIO = "128x16x28x28 -> 32, 3x3", 3.0


def calibrated(fn):
    """fn wrapped to run enough times per call (>= 20 ms) to time reliably, and that count."""
    fn()
    single = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        single.append(time.perf_counter() - start)
    number = max(1, int(0.02 / max(min(single), 1e-9)))

    def run():
        for _ in range(number):
            fn()

    return run, number


def best_seconds(fns: dict, repeats: int) -> dict:
    """Best time per call of each fn; the rounds interleave the fns so that all of them see the
    same load on a shared machine."""
    runs = {name: calibrated(fn) for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, (run, number) in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def report(kind: str, label: str, versions: dict, inputs, repeats: int) -> dict:
    """Time each version, forward (no autograd) and forward + backward, and print one row per
    version with its ratios to torch; return {version: (forward s, forward+backward s)}."""
    leaves = [x.clone().requires_grad_() for x in inputs]
    G = torch.randn(versions["torch"](*inputs).shape)
    with torch.no_grad():
        forward = best_seconds(
            {n: lambda op=op: op(*inputs) for n, op in versions.items()}, repeats
        )
    both = best_seconds(
        {n: lambda op=op: op(*leaves).backward(G) for n, op in versions.items()}, repeats
    )
    for name in versions:
        print(
            f"{kind:7} {label:40} {name:10} {forward[name] * 1e3:10.3f}"
            f" {forward[name] / forward['torch']:8.2f}x {both[name] * 1e3:12.3f}"
            f" {both[name] / both['torch']:8.2f}x"
        )
    return {name: (forward[name], both[name]) for name in versions}


def conv_versions(stride, padding, with_loop: bool) -> dict:
    versions = {
        "loop": lambda X, K: conv2d_loop(X, K, stride=stride, padding=padding),
        "vectorised": lambda X, K: conv2d(X, K, stride=stride, padding=padding),
        "torch": lambda X, K: F.conv2d(X, K, stride=stride, padding=padding),
    }
    return versions if with_loop else {k: v for k, v in versions.items() if k != "loop"}


def pool_versions(mode, window, stride, padding, with_loop: bool) -> dict:
    reference = F.max_pool2d if mode == "max" else F.avg_pool2d
    versions = {
        "loop": lambda X: pool2d_loop(X, window, mode, stride, padding),
        "vectorised": lambda X: pool2d(X, window, mode, stride, padding),
        "torch": lambda X: reference(X, window, stride, padding),
    }
    return versions if with_loop else {k: v for k, v in versions.items() if k != "loop"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timing rounds; the best is kept")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--only", default="", help="run only the sizes whose label contains this")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU")
    print(
        f"{'op':7} {'size':40} {'version':10} {'fwd ms':>10} {'/torch':>9}"
        f" {'fwd+bwd ms':>12} {'/torch':>9}"
    )
    for label, x_shape, k_shape, stride, padding, with_loop in CONV_CASES:
        if args.only in label:
            inputs = [torch.randn(x_shape), torch.randn(k_shape)]
            versions = conv_versions(stride, padding, with_loop)
            times = report("conv2d", label, versions, inputs, args.repeats)
            if label == GOAL_CASE:
                ratio = times["vectorised"][0] / times["torch"][0]
                verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
                goal = (
                    f"vectorised conv2d forward at {GOAL_CASE} within {GOAL_RATIO:g}x of F.conv2d"
                )
                print(f"  goal: {goal}: {ratio:.2f}x ({verdict})")
    for label, x_shape, mode, window, stride, padding, with_loop in POOL_CASES:
        if args.only in label:
            versions = pool_versions(mode, window, stride, padding, with_loop)
            report("pool2d", label, versions, [torch.randn(x_shape)], args.repeats)


if __name__ == "__main__":
    main()
