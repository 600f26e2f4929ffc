"""Fixtures of the experiment tests (helpers are in experiment_helpers.py)."""

import shutil

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


@pytest.fixture(scope="session")
def chromium():
    """The headless Chromium binary (Debian's chromium or chromium-headless-shell)."""
    found = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if found is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run "
                    "installs it)")
    return found
