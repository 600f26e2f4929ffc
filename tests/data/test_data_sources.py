import gzip
import hashlib

import numpy as np
import pytest
from data_helpers import idx_bytes

from cnnlab.data import sources
from cnnlab.data.sources import FILES, load_split, locate_fashion_mnist

CONTENT = {
    "train-images-idx3-ubyte": idx_bytes(np.full((3, 28, 28), 7, np.uint8)),
    "train-labels-idx1-ubyte": idx_bytes(np.array([9, 0, 1], np.uint8)),
    "t10k-images-idx3-ubyte": idx_bytes(np.zeros((2, 28, 28), np.uint8)),
    "t10k-labels-idx1-ubyte": idx_bytes(np.array([2, 3], np.uint8)),
}


@pytest.fixture
def fake_files(monkeypatch):
    """Make tiny synthetic files count as genuine by publishing their checksums."""
    monkeypatch.setattr(sources, "FILES", {k: hashlib.sha256(v).hexdigest()
                                           for k, v in CONTENT.items()})


def put(folder, names=tuple(CONTENT), compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(CONTENT[name]))
        else:
            (folder / name).write_bytes(CONTENT[name])
    return folder


def no_network(url):
    raise AssertionError(f"unexpected download of {url}")


class FakeMirror:
    """A downloader that serves `CONTENT` (or garbage) and records the URLs asked for."""

    def __init__(self, good=True, offline=False):
        self.urls, self.good, self.offline = [], good, offline

    def __call__(self, url):
        self.urls.append(url)
        if self.offline:
            raise OSError("Name or service not known")
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        return gzip.compress(CONTENT[name] if self.good else b"not the dataset")


def test_user_folder_comes_first(tmp_path, fake_files):
    user, cache, system = tmp_path / "user", tmp_path / "cache", tmp_path / "system"
    put(user), put(cache / "fashion-mnist"), put(system)
    paths = locate_fashion_mnist(user, cache=cache, system_dir=system, fetch=no_network)
    assert {p.parent for p in paths.values()} == {user}


def test_cache_before_system_package(tmp_path, fake_files):
    cache, system = tmp_path / "cache", tmp_path / "system"
    put(cache / "fashion-mnist"), put(system)
    paths = locate_fashion_mnist(None, cache=cache, system_dir=system, fetch=no_network)
    assert {p.parent for p in paths.values()} == {cache / "fashion-mnist"}


def test_system_package_then_per_file_fallback(tmp_path, fake_files):
    user, cache, system = tmp_path / "user", tmp_path / "cache", tmp_path / "system"
    put(user, ["t10k-labels-idx1-ubyte"], compress=False)  # uncompressed copies count too
    put(system)
    paths = locate_fashion_mnist(user, cache=cache, system_dir=system, fetch=no_network)
    assert paths["t10k-labels-idx1-ubyte"] == user / "t10k-labels-idx1-ubyte"
    assert paths["train-images-idx3-ubyte"] == system / "train-images-idx3-ubyte.gz"


def test_torchvision_layout_in_user_folder(tmp_path, fake_files):
    user = tmp_path / "user"
    put(user / "FashionMNIST" / "raw", compress=False)
    paths = locate_fashion_mnist(user, cache=tmp_path / "c", system_dir=tmp_path / "s",
                                 fetch=no_network)
    images, labels = load_split(paths, train=True)
    assert images.shape == (3, 28, 28) and labels.tolist() == [9, 0, 1]


def test_downloads_missing_files_into_cache(tmp_path, fake_files):
    cache, system = tmp_path / "cache", tmp_path / "system"
    put(system, ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"])
    mirror = FakeMirror()
    paths = locate_fashion_mnist(None, cache=cache, system_dir=system, fetch=mirror,
                                 mirrors=["https://one/", "https://two/"])
    assert mirror.urls == ["https://one/t10k-images-idx3-ubyte.gz",
                           "https://one/t10k-labels-idx1-ubyte.gz"]
    assert paths["t10k-images-idx3-ubyte"] == cache / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    assert sorted(p.name for p in (cache / "fashion-mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temp files left
    images, labels = load_split(paths, train=False)
    assert images.shape == (2, 28, 28) and labels.tolist() == [2, 3]


def test_bad_download_is_rejected_and_not_written(tmp_path, fake_files):
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="SHA-256"):
        locate_fashion_mnist(None, cache=cache, system_dir=tmp_path / "s",
                             fetch=FakeMirror(good=False), mirrors=["https://one/"])
    assert not (cache / "fashion-mnist").exists() or not any((cache / "fashion-mnist").iterdir())


def test_offline_message_lists_three_ways(tmp_path, fake_files):
    for fetch in (None, FakeMirror(offline=True)):
        with pytest.raises(FileNotFoundError) as info:
            locate_fashion_mnist(tmp_path, cache=tmp_path / "c",
                                 system_dir=tmp_path / "s", fetch=fetch)
        message = str(info.value)
        assert "\n" not in message
        for way in ("internet", "apt-get install dataset-fashion-mnist", "--data-dir"):
            assert way in message


def test_a_missing_user_folder_is_an_error_not_skipped(tmp_path, fake_files):
    with pytest.raises(FileNotFoundError, match="typo"):
        locate_fashion_mnist(tmp_path / "typo", cache=tmp_path / "c", system_dir=tmp_path / "s",
                             fetch=no_network)


def test_wrong_checksum_names_the_file(tmp_path, fake_files):
    user = put(tmp_path / "user")
    bad = user / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(np.array([1, 0, 1], np.uint8))))
    paths = locate_fashion_mnist(user, cache=tmp_path / "c", system_dir=tmp_path / "s",
                                 fetch=no_network)
    with pytest.raises(ValueError, match=rf"{bad}: SHA-256 .* expected"):
        load_split(paths, train=True)
    assert bad.exists()  # a user's file is reported, never replaced


def test_published_checksums_are_the_spec_values():
    assert FILES["train-images-idx3-ubyte"].startswith("c59f468a")
    assert FILES["t10k-labels-idx1-ubyte"].endswith("dec38c34")
    assert all(len(h) == 64 for h in FILES.values())
