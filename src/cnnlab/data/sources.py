"""Finding Fashion-MNIST: the user's folder, the user cache, the Debian package, then a download.

Every copy is checked against the SHA-256 of its decompressed content (hashing costs ~30 ms per
split next to ~300 ms of decompression, so it runs each time rather than being cached).
Downloads are verified in memory and written into the cache atomically (temp file, then rename),
so a failed or bad download never leaves a partial file or replaces an existing copy.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cnnlab.data.idx import gunzip, parse_idx, read_bytes
from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import write_bytes

FILES = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
Fetch = Callable[[str], bytes]


def cache_dir() -> Path:
    """The user cache: `$CNNLAB_DATA`, else `~/.cache/cnnlab`."""
    return Path(os.environ.get("CNNLAB_DATA") or Path.home() / ".cache" / "cnnlab").expanduser()


def search_dirs(root: str | Path | None = None, cache: Path | None = None,
                system_dir: Path = SYSTEM_DIR) -> list[Path]:
    """Where to look, in order: the user's folder (also its torchvision layout), cache, package."""
    dirs = []
    if root is not None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise MissingFileError(
                f"data dir {root} is not a folder; pass --data-dir (root=) a folder that holds "
                "the four Fashion-MNIST .gz files, or leave it out to use the cache or package"
            )
        dirs += [root, root / "FashionMNIST" / "raw"]
    return [*dirs, (cache or cache_dir()) / "fashion-mnist", system_dir]


def find_file(name: str, dirs: Sequence[Path]) -> Path | None:
    """The first `<name>.gz` or uncompressed `<name>` in `dirs`, or None."""
    for folder in dirs:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def check_sha256(data: bytes, name: str, where: str) -> None:
    """Raise a ValueError naming `where` unless `data` is the genuine decompressed `name`."""
    found = hashlib.sha256(data).hexdigest()
    if found != FILES[name]:
        raise UsageError(
            f"{where}: SHA-256 of the decompressed content is {found}, expected {FILES[name]} "
            f"for Fashion-MNIST {name}; the file is corrupted or a different dataset, "
            "delete or replace it"
        )


def fetch_url(url: str) -> bytes:
    """Download `url` (the real network fetch; tests inject a fake one)."""
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https/http mirrors)
        return response.read()


def download(name: str, target_dir: Path, fetch: Fetch = fetch_url,
             mirrors: Sequence[str] = MIRRORS) -> Path:
    """Fetch `name` from the first mirror that gives a verified copy; write it atomically."""
    failures = []
    for mirror in mirrors:
        url = f"{mirror}{name}.gz"
        try:
            blob = fetch(url)
            check_sha256(gunzip(blob, url), name, url)
        except (OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        target_dir.mkdir(parents=True, exist_ok=True)
        return write_bytes(target_dir / f"{name}.gz", blob)
    raise ConnectionError("; ".join(failures))


def locate_fashion_mnist(root: str | Path | None = None, *, cache: Path | None = None,
                         system_dir: Path = SYSTEM_DIR, fetch: Fetch | None = fetch_url,
                         mirrors: Sequence[str] = MIRRORS) -> dict[str, Path]:
    """Path of each of the four files, downloading the missing ones into the cache.

    `fetch=None` means offline. With no copy and no download, a FileNotFoundError lists the
    three ways to get the data.
    """
    dirs = search_dirs(root, cache, system_dir)
    download_dir = dirs[-2]
    paths, errors = {}, []
    for name in FILES:
        found = find_file(name, dirs)
        if found is None and fetch is not None:
            try:
                found = download(name, download_dir, fetch, mirrors)
            except ConnectionError as exc:
                errors.append(str(exc))
        if found is None:
            reason = f" (download failed: {errors[0]})" if errors else ""
            raise MissingFileError(
                f"Fashion-MNIST file {name}.gz not found in {', '.join(map(str, dirs))}{reason}. "
                "Get it one of three ways: connect to the internet (cnnlab downloads it into "
                f"{download_dir}), `sudo apt-get install dataset-fashion-mnist`, or pass "
                "--data-dir DIR (root=DIR) with the four .gz files"
            )
        paths[name] = found
    return paths


def read_verified(path: Path, name: str) -> np.ndarray:
    """Read one IDX file after checking its SHA-256 against the published value."""
    data = read_bytes(path)
    check_sha256(data, name, str(path))
    return parse_idx(data, str(path))


def load_split(paths: dict[str, Path], train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of the training or test split, verified."""
    prefix = "train" if train else "t10k"
    images = read_verified(paths[f"{prefix}-images-idx3-ubyte"], f"{prefix}-images-idx3-ubyte")
    labels = read_verified(paths[f"{prefix}-labels-idx1-ubyte"], f"{prefix}-labels-idx1-ubyte")
    check_pair(images, labels, str(paths[f"{prefix}-images-idx3-ubyte"]))
    return images, labels


def check_pair(images: np.ndarray, labels: np.ndarray, name: str) -> None:
    """Images must be (N, H, W) uint8 and labels (N,) with the same N."""
    if images.ndim != 3 or labels.ndim != 1 or images.dtype != np.uint8:
        raise UsageError(
            f"{name}: expected uint8 images of shape (N, H, W) and labels of shape (N,), "
            f"found {images.dtype} {images.shape} and {labels.shape}"
        )
    if len(images) != len(labels):
        raise UsageError(
            f"{name}: expected as many labels as images, found {len(images)} images and "
            f"{len(labels)} labels"
        )
