"""How many CPU threads a run uses: the `threads` setting, else OMP_NUM_THREADS, else the cores
this process may use."""

from __future__ import annotations

import contextlib
import os

import torch

import cnnlab.train.autotune as autotune
from cnnlab.errors import UsageError


def default_threads(leave_busy: bool = False) -> int:
    """The cores this process may run on (its CPU affinity), which `--threads` defaults to.

    `leave_busy` leaves out the cores other processes keep busy now (`busy_cores`, 0.2 s):
    threads that wait for each other beside a busy process lose to fewer threads.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    busy = autotune.busy_cores() if leave_busy else None
    return max(1, cores - round(busy or 0))


def apply_threads(n: int) -> None:
    """Use `n` threads inside each operation, and between operations where torch still allows."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UsageError(f"threads={n!r} is not allowed; use a positive integer (this process "
                         f"may use {default_threads()} cores)")
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # fixed once inter-op work has started
        torch.set_num_interop_threads(n)


def use_threads(asked: int | None, device: torch.device) -> tuple[int, str]:
    """Set the CPU threads: `asked` (the `threads` setting) if given, else OMP_NUM_THREADS if
    set, else the cores this process may use; returns the number and where it came from."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if asked:
        threads, why = asked, "asked for with threads"
    elif omp.isdigit() and int(omp):
        threads, why = int(omp), "OMP_NUM_THREADS"
    else:
        threads, why = default_threads(), "the cores this process may use"
    if torch.device(device).type == "cpu":
        apply_threads(threads)
    return threads, why
