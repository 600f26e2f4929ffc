"""retain_freed_memory: a step's activations come back from the heap, not from fresh pages."""

import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, torch
from cnnlab.train.allocator import retain_freed_memory

def page_faults_of_steps(first_mib):
    # each step allocates 8 blocks, a little larger each time, and frees them all; blocks above
    # glibc's current mmap threshold are fresh pages from the kernel
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for step in range(8):
        blocks = [torch.ones((first_mib * 2**20 + step * 2**16) // 4) for _ in range(8)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = page_faults_of_steps(4)
applied = retain_freed_memory()
page_faults_of_steps(6)  # the heap grows to the largest step once
print(applied, default, page_faults_of_steps(5), retain_freed_memory())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_freed_activations_are_reused_without_page_faults():
    result = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True,
                            check=True)
    applied, default, retained, again = result.stdout.split()
    assert applied == "True" and again == "True"
    assert int(default) > 8 * 8 * 1024  # every block of every step faulted in afresh
    assert int(retained) < int(default) / 10
