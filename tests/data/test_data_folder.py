import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import ImageFolder, from_description, read_image
from cnnlab.data import folder as folder_module


def image(path, size, colour=None, grey=True):
    """Write a small PNG or JPEG (by suffix); colour=None draws a random image."""
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    shape = size if grey else (*size, 3)
    pixels = rng.integers(0, 256, shape) if colour is None else np.full(shape, colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def make_tree(root, per_class=5, grey=True):
    for c, name in enumerate(["cat", "dog", "fish"]):
        for i in range(per_class):
            suffix = ".jpg" if i % 2 else ".png"
            image(root / name / f"{i}{suffix}", (20 + 3 * i, 16 + i), 40 * c + 10, grey=grey)
    return root


def test_grey_tree_in_memory_with_held_out_test_split(tmp_path, cache):
    data = ImageFolder(make_tree(tmp_path / "pets", per_class=10), size=12, batch_size=8)
    assert data.classes == ["cat", "dog", "fish"] and data.in_channels == 1
    assert data.train[0].shape == (24, 1, 12, 12) and data.test[0].shape == (6, 1, 12, 12)
    assert torch.bincount(data.test[1]).tolist() == [2, 2, 2]
    X, y = next(iter(data.train_dataloader()))
    assert X.shape == (8, 1, 12, 12) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert data.image_size == 12 and data.describe()["kind"] == "image-folder"


def test_colour_images_and_explicit_grayscale(tmp_path, cache):
    root = make_tree(tmp_path / "pets", grey=False)
    assert ImageFolder(root, size=8).in_channels == 3
    data = ImageFolder(root, size=8, grayscale=True, augment="crop,flip,erase")
    assert data.in_channels == 1
    assert next(iter(data.train_dataloader()))[0].shape[1:] == (1, 8, 8)


def test_second_run_loads_the_cache_without_decoding(tmp_path, cache, monkeypatch):
    root = make_tree(tmp_path / "pets")
    first = ImageFolder(root, size=10)
    assert len(list((cache / "image-folders").glob("*.pt"))) == 1

    def fail(*args):
        raise AssertionError("decoded again although nothing changed")

    monkeypatch.setattr(folder_module, "decode", fail)
    second = ImageFolder(root, size=10)
    assert torch.equal(first.train[0], second.train[0]) and first.mean == second.mean
    image(root / "cat" / "new.png", (9, 9))
    with pytest.raises(AssertionError, match="decoded again"):
        ImageFolder(root, size=10)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path, cache):
    root = make_tree(tmp_path / "pets")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    truncated = (root / "cat" / "0.png").read_bytes()[:40]
    (root / "cat" / "cut.png").write_bytes(truncated)
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\): .*cut\.png.*broken"):
        data = ImageFolder(root, size=8, test_fraction=0.0)
    assert len(data.train[1]) == 15
    with pytest.warns(UserWarning, match="broken.png"):  # also when loaded from the cache
        ImageFolder(root, size=8, test_fraction=0.0)


def test_train_and_test_subfolders(tmp_path, cache):
    make_tree(tmp_path / "set" / "train", per_class=4)
    image(tmp_path / "set" / "test" / "dog" / "a.png", (10, 10), 50)
    image(tmp_path / "set" / "test" / "fish" / "b.png", (10, 10), 90)
    data = ImageFolder(tmp_path / "set", size=6)
    assert len(data.train[1]) == 12 and data.test[1].tolist() == [1, 2]


def test_errors_for_empty_class_and_no_images(tmp_path, cache):
    root = make_tree(tmp_path / "pets")
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="class folder .*empty has no PNG or JPEG images"):
        ImageFolder(root, size=8)
    (tmp_path / "flat").mkdir()
    image(tmp_path / "flat" / "x.png", (5, 5))
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolder(tmp_path / "flat", size=8)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "missing", size=8)
    bad = tmp_path / "bad" / "only"
    bad.mkdir(parents=True)
    (bad / "x.jpg").write_bytes(b"junk")
    with warnings.catch_warnings(), pytest.raises(ValueError, match="none of the 1 image"):
        warnings.simplefilter("ignore")
        ImageFolder(tmp_path / "bad", size=8)


def test_transform_and_read_image_match_training(tmp_path, cache):
    root = make_tree(tmp_path / "pets")
    image(root / "dog" / "0.png", (20, 16))  # noise: the hardest case for resampling
    data = ImageFolder(root, size=8, test_fraction=0.0)
    picture = read_image(root / "dog" / "0.png", grayscale=True)
    assert picture.shape == (1, 1, 20, 16) and picture.dtype == torch.uint8
    X = data.transform(picture)
    assert X.shape == (1, 1, 8, 8)
    stored = data.pipeline(data.train[0][data.train[1] == 1][:1])
    assert (X - stored).abs().max().item() <= 1.01 / 255 / data.std[0]
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, 1, H, W\)"):
        data.transform(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    rebuilt = from_description(data.describe())
    assert torch.equal(rebuilt.train[0], data.train[0])
