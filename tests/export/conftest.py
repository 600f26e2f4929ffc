"""A small trained run to export: lenet-modern on a folder of 24 colour images, two classes.

The image folder's decoded-image cache goes to a temporary `$CNNLAB_DATA`, never the user's.
"""

import pytest
import torch
from PIL import Image

from cnnlab.cli import main


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache_in_tmp(data_cache, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(data_cache))


def _colour_images(root, generator):
    """12 noisy images per class, 20x24 pixels, one colour channel bright: red or blue."""
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = torch.randint(0, 60, (20, 24, 3), generator=generator, dtype=torch.uint8)
            pixels[..., channel] = 200
            Image.fromarray(pixels.numpy()).save(root / name / f"{i}.png")


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory, data_cache):
    """A run directory (lenet-modern, 3 channels, 28 px) and the folder of its images."""
    folder = tmp_path_factory.mktemp("colour")
    photos = folder / "photos"
    _colour_images(photos, torch.Generator().manual_seed(0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_DATA", str(data_cache))
        assert main(["train", "lenet-modern", "--data", str(photos), "--resize", "28",
                     "--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--device", "cpu",
                     "--out", str(folder / "run")]) == 0
    return folder / "run", photos


@pytest.fixture(scope="session")
def colour_onnx(colour_run, tmp_path_factory, data_cache):
    """The colour run exported to ONNX with a dynamic batch."""
    from cnnlab.export import export_run

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_DATA", str(data_cache))
        return export_run(colour_run[0], tmp_path_factory.mktemp("exported") / "run.onnx").path
