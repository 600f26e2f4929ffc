"""Every test, and every process a test starts, uses a private user cache (image caches, probe
timings), never the user's: it is set before any test module reads the environment."""

import os
import shutil
import tempfile

import pytest

PRIVATE_CACHE = tempfile.mkdtemp(prefix="cnnlab-test-cache-")
os.environ["CNNLAB_DATA"] = PRIVATE_CACHE


@pytest.fixture(autouse=True, scope="session")
def _remove_private_cache():
    yield
    shutil.rmtree(PRIVATE_CACHE, ignore_errors=True)
