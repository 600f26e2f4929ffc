"""Every test uses its own user cache (image caches, probe timings), never the user's."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("user-cache")
    old = os.environ.get("CNNLAB_DATA")
    os.environ["CNNLAB_DATA"] = str(cache)
    yield
    if old is None:
        os.environ.pop("CNNLAB_DATA", None)
    else:
        os.environ["CNNLAB_DATA"] = old
