import pytest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache for the test (`$CNNLAB_DATA`)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    return folder
