"""Helpers for the experiment tests: tiny trials and the CLI in fresh processes."""

import os
import subprocess
import sys

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
"""One thread per process, so runs are reproducible bit for bit."""

TINY = ["--epochs", "1", "--subset", "256", "--batch-size", "64", "--device", "cpu"]
"""One epoch on 256 images: 4 steps, then the 10,000 test images."""


def cnnlab_process(*args) -> subprocess.Popen:
    """`python -m cnnlab ARGS` started in a fresh single-threaded process, output captured."""
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *map(str, args)],
                            env=SUBPROCESS_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for a `cnnlab_process`; its output, once it has exited with code 0."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output
