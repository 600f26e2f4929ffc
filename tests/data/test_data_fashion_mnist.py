import hashlib

import pytest
import torch
from data_helpers import SYSTEM_DIR, needs_fashion_mnist

from cnnlab.data import CLASSES, FashionMNIST, from_description
from cnnlab.data.idx import read_bytes
from cnnlab.data.sources import FILES

pytestmark = needs_fashion_mnist


@pytest.fixture(scope="module")
def data():
    return FashionMNIST(root=SYSTEM_DIR)


def test_installed_files_match_published_checksums():
    for name, digest in FILES.items():
        assert hashlib.sha256(read_bytes(SYSTEM_DIR / f"{name}.gz")).hexdigest() == digest


def test_split_sizes_classes_and_first_label(data):
    images, labels = data.train
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert data.test[0].shape == (10000, 1, 28, 28)
    assert torch.bincount(labels).tolist() == [6000] * 10
    assert labels[0].item() == 9 and data.classes[9] == "ankle boot"
    assert data.classes == CLASSES and data.num_classes == 10 and data.in_channels == 1


def test_batches_have_the_right_shape_and_range(data):
    loader = data.train_dataloader()
    assert len(loader) == 469 and loader.num_examples == 60000 and loader.batch_size == 128
    X, y = next(iter(loader))
    assert X.shape == (128, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    black, white = (0 - 0.2860) / 0.3530, (1 - 0.2860) / 0.3530
    assert X.min().item() == pytest.approx(black, abs=1e-5)
    assert X.max().item() == pytest.approx(white, abs=1e-5)
    assert abs(data.train[0].float().mean().item() / 255 - 0.2860) < 1e-3


def test_resize_unnormalised_and_validation_split():
    data = FashionMNIST(batch_size=100, resize=96, normalize=False, val_fraction=0.1,
                        subset=1000, seed=3)
    X, _ = next(iter(data.test_dataloader()))
    assert X.shape == (100, 1, 96, 96) and X.min() >= 0.0 and X.max() <= 1.0
    assert torch.bincount(data.val[1]).tolist() == [600] * 10
    assert len(data.train[1]) == 1000 and data.image_size == 96
    rebuilt = from_description(data.describe())
    assert rebuilt.describe() == data.describe()
    assert torch.equal(rebuilt.val[0], data.val[0]) and torch.equal(rebuilt.train[0], data.train[0])


def test_grid_png(data, tmp_path):
    path = data.save_grid(tmp_path / "grid.png", n=10)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="split must be one of"):
        data.save_grid(tmp_path / "val.png", split="val")  # no validation part was held out


def test_bad_arguments_are_one_line_errors():
    for kwargs, pattern in [({"resize": 0}, "resize"), ({"batch_size": 0}, "batch_size"),
                            ({"val_fraction": 1.0}, "val_fraction"),
                            ({"augment": "crop,rotate"}, "rotate"),
                            ({"rank": 2, "world_size": 2}, "rank")]:
        with pytest.raises(ValueError, match=pattern):
            FashionMNIST(**kwargs)
    with pytest.raises(ValueError, match="subset=70000 exceeds"):
        FashionMNIST(subset=70000)
