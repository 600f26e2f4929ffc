import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from cnnlab.data.transforms import (
    BatchTransform,
    crop_padding,
    parse_augment,
    resize_matrix,
    upsample_rows,
)


def torchvision_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """The common pipeline: PIL image -> Resize -> ToTensor, one image at a time."""
    pipeline = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    return torch.stack([pipeline(Image.fromarray(img[0].numpy())) for img in images])


@pytest.fixture(scope="module")
def images():
    """Smooth and noisy 28x28 grey images (the worst case for resampling differences)."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (4, 1, 28, 28), generator=generator, dtype=torch.uint8)
    ramp = torch.arange(28 * 28).reshape(1, 1, 28, 28) * 255 // (28 * 28 - 1)
    return torch.cat([noise, ramp.to(torch.uint8)])


@pytest.mark.parametrize("size", [20, 28, 56, 96, 224])
def test_resize_matches_torchvision_within_one_level(images, size):
    ours = BatchTransform(size, [0.0], [1.0])(images)
    assert ours.shape == (5, 1, size, size)
    # Pillow rounds to whole grey levels with fixed-point weights: at most one level apart
    assert (ours - torchvision_resize(images, size)).abs().max().item() <= 1 / 255 + 1e-6


def test_resize_non_square_colour_input():
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 40, 30), generator=generator, dtype=torch.uint8)
    pipeline = transforms.Compose([transforms.Resize((24, 24)), transforms.ToTensor()])
    reference = torch.stack([pipeline(Image.fromarray(i.permute(1, 2, 0).numpy())) for i in images])
    ours = BatchTransform(24, [0.0] * 3, [1.0] * 3)(images)
    assert (ours - reference).abs().max().item() <= 1 / 255 + 1e-6


def test_normalisation():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 4, 4)
    out = BatchTransform(4, [0.5], [0.25])(images.contiguous())
    assert out[0].unique().tolist() == [-2.0] and out[1].unique().tolist() == [2.0]


def test_crop_shifts_with_black_padding_and_flip_mirrors():
    images = torch.randint(1, 256, (3, 1, 28, 28), dtype=torch.uint8)
    transform = BatchTransform(28, [0.2], [0.5], {"crop", "flip"})
    params = {"crop": torch.tensor([[4, 4], [0, 8], [8, 1]]),
              "flip": torch.tensor([False, False, True])}
    out = transform(images, params)
    padded = torch.nn.functional.pad(images.float() / 255, (4, 4, 4, 4))
    expected = torch.stack([padded[0, :, 4:32, 4:32], padded[1, :, 0:28, 8:36],
                            padded[2, :, 8:36, 1:29].flip(-1)])
    assert torch.allclose(out, (expected - 0.2) / 0.5, atol=1e-5)
    assert crop_padding(28) == 4 and crop_padding(224) == 32


def test_sampled_augmentations_stay_in_range():
    transform = BatchTransform(96, [0.0], [1.0], {"crop", "flip", "erase"})
    params = transform.sample(500, torch.Generator().manual_seed(0))
    assert params["crop"].min() >= 0 and params["crop"].max() <= 2 * crop_padding(96)
    assert 0.3 < params["flip"].float().mean() < 0.7
    top, left, h, w = params["erase"].T
    assert (top + h <= 96).all() and (left + w <= 96).all()
    assert 0.3 < (h > 0).float().mean() < 0.7


def test_erase_sets_the_box_to_zero():
    images = torch.full((2, 1, 10, 10), 200, dtype=torch.uint8)
    transform = BatchTransform(10, [0.0], [1.0], {"erase"})
    out = transform(images, {"erase": torch.tensor([[2, 3, 4, 5], [0, 0, 0, 0]])})
    assert (out[0, 0, 2:6, 3:8] == 0).all() and out[0].eq(0).sum() == 20
    assert (out[1] > 0).all()


def test_parse_augment():
    assert parse_augment(None) == parse_augment("none") == frozenset()
    assert parse_augment("crop, flip") == {"crop", "flip"}
    assert parse_augment(["erase"]) == {"erase"}
    with pytest.raises(ValueError, match="unknown augmentation rotate; choose from crop"):
        parse_augment("rotate")


def test_a_combination_joined_by_plus_is_the_same_as_by_commas():
    assert parse_augment("crop+flip") == parse_augment("flip, crop") == {"crop", "flip"}
    assert parse_augment("crop+flip,erase") == {"crop", "flip", "erase"}
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        parse_augment("crop+rotate")


def test_identity_when_nothing_to_do():
    images = torch.from_numpy(np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4))
    assert torch.allclose(BatchTransform(4, [0.0], [1.0])(images), images.float() / 255)


@pytest.mark.parametrize(("height", "size"), [(28, 29), (28, 96), (28, 224), (5, 30), (37, 100)])
def test_upsampling_by_phases_equals_the_resize_matrix(height, size):
    rows = torch.rand(3, height, 7, generator=torch.Generator().manual_seed(height))
    expected = torch.matmul(resize_matrix(height, size), rows)
    assert torch.allclose(upsample_rows(rows, size), expected, atol=1e-5)
