"""Keep freed tensor memory inside the process, so each training step reuses the last one's.

PyTorch takes CPU tensors from malloc. glibc hands blocks above its mmap threshold (128 KiB at
first) out as fresh pages from the kernel and gives the top of the heap back once more than the
trim threshold is free. A training step frees most of its activations at once, so the next step
can fault every 4 KiB page in again: up to 2,000 page faults per LeNet step at batch 128 in a
loop over one fixed batch, a third of its time. Raising both thresholds makes malloc serve the
same memory step after step, whatever the process allocated before.
"""

from __future__ import annotations

import ctypes
import functools
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc malloc.h)
MMAP_THRESHOLD = 32 * 2**20
"""Largest block served from the heap: glibc's ceiling for this setting on 64-bit systems."""
TRIM_THRESHOLD = 2**30
"""Free memory the heap may keep before giving any back; never more than the peak in use."""


@functools.cache
def retain_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse freed blocks up to 32 MiB; False where it cannot.

    It changes the whole process, once (later calls do nothing). Peak memory stays the same:
    the heap only keeps what the process already held at once.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
