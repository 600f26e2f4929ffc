"""Every test, and every process a test starts, uses a private user cache (image caches, probe
timings), never the user's: it is set before any test module reads the environment. Tables are
laid out full width (no ``COLUMNS`` from the shell) unless a test sets a width."""

import os
import shutil
import tempfile

import pytest

PRIVATE_CACHE = tempfile.mkdtemp(prefix="cnnlab-test-cache-")
os.environ["CNNLAB_DATA"] = PRIVATE_CACHE
os.environ.pop("COLUMNS", None)


@pytest.fixture(autouse=True, scope="session")
def _remove_private_cache():
    yield
    shutil.rmtree(PRIVATE_CACHE, ignore_errors=True)
