"""Fixtures of the experiment tests (helpers are in experiment_helpers.py)."""

import pytest


@pytest.fixture(autouse=True)
def one_thread():
    """In-process trials use one thread too, like the subprocesses: a busy machine's other
    work then never leaves a thread of ours waiting for a core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
