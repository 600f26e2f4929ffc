"""Shared helpers for the training tests: running the CLI in a fresh process, small data."""

import os
import subprocess
import sys

import pytest
import torch

from cnnlab.data import FashionMNIST

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _run_cnnlab(*args, check=True, **kwargs) -> subprocess.CompletedProcess:
    """`python -m cnnlab ARGS` in a fresh process with one thread (so runs are reproducible)."""
    result = subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)], env=SUBPROCESS_ENV,
                            capture_output=True, text=True, timeout=300, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _assert_same_tensors(a: dict, b: dict, atol: float = 0.0) -> None:
    """Every tensor of two state dicts is equal (bit for bit when atol is 0)."""
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


@pytest.fixture
def run_cnnlab():
    """`run_cnnlab(*args)`: the command line in a fresh single-threaded process."""
    return _run_cnnlab


@pytest.fixture
def assert_same_tensors():
    """`assert_same_tensors(a, b, atol=0)`: equal state dicts (bit for bit by default)."""
    return _assert_same_tensors


@pytest.fixture(scope="session")
def small_data():
    """512 training images and the full test set, batches of 64."""
    return FashionMNIST(batch_size=64, subset=512)
