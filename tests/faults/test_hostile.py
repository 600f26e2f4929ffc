"""Hostile files: decompression bombs, links out of an image folder, awkward paths, every image
mode Pillow reads, EXIF-rotated JPEGs, pickles that would run code in caches."""

import os

import numpy as np
import pytest
import torch
from fault_tools import cnnlab
from PIL import Image

from cnnlab.data import ImageFolder, read_image
from cnnlab.data.images import UnreadableImage, load_pixels

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA"]


def picture(mode: str, size=(12, 10)) -> Image.Image:
    grey = (np.arange(size[0] * size[1]).reshape(size[1], size[0]) * 2).astype(np.uint8)
    image = Image.fromarray(grey, mode="L")
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)  # mode I;16
    return image.convert(mode)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_reads_as_8_bit_grey_and_rgb(mode, tmp_path, faults):
    suffix = ".tiff" if mode in ("I;16", "I", "F", "CMYK") else ".png"
    path = tmp_path / f"image{suffix}"
    picture(mode).save(path)
    faults.tried()
    for grey in (True, False):
        pixels = load_pixels(path, grey)
        assert pixels.dtype == np.uint8 and pixels.shape == (10, 12, 1 if grey else 3)
    if mode in ("L", "I;16", "I", "F", "P", "RGB", "LA"):  # same picture, up to rounding
        assert np.abs(load_pixels(path, True)[..., 0].astype(int)
                      - (np.arange(120).reshape(10, 12) * 2)).max() <= 1, mode


def test_exif_rotated_jpegs_are_read_upright(tmp_path, faults):
    upright = np.zeros((20, 40), dtype=np.uint8)
    upright[:, :20] = 255  # bright left half, landscape
    stored = Image.fromarray(upright).rotate(90, expand=True)  # stored as portrait
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    faults.tried()
    pixels = read_image(tmp_path / "rotated.jpg", grayscale=True)[0, 0]
    assert pixels.shape == (20, 40)
    assert pixels[:, :18].float().mean() > 200 and pixels[:, 22:].float().mean() < 50


def test_a_decompression_bomb_is_refused_without_decoding(tmp_path, monkeypatch, faults):
    Image.new("L", (200, 200)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    faults.injected()
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        load_pixels(tmp_path / "bomb.png", True)
    faults.survived()


def test_a_bomb_in_a_folder_is_skipped_with_a_warning(tmp_path, monkeypatch, faults):
    for label in ("a", "b"):
        (tmp_path / "pics" / label).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (8, 8), 40 + 100 * (label == "b")).save(
                tmp_path / "pics" / label / f"{index}.png")
    Image.new("L", (200, 200)).save(tmp_path / "pics" / "a" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    faults.injected()
    with pytest.warns(UserWarning, match="bomb.png"):
        data = ImageFolder(tmp_path / "pics", size=8, test_fraction=0.0)
    assert len(data.train[1]) == 6
    faults.survived()


def test_links_out_of_an_image_folder_are_not_followed(tmp_path, monkeypatch, faults):
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.new("L", (8, 8), 200).save(secret / "private.png")
    root = tmp_path / "pics"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            Image.new("L", (8, 8), 50 * (label == "b")).save(root / label / f"{index}.png")
    os.symlink(secret / "private.png", root / "a" / "link.png")
    os.symlink(secret, root / "leaked")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    faults.injected()
    with pytest.warns(UserWarning, match="point out of"):
        data = ImageFolder(root, size=8, test_fraction=0.0)
    assert data.classes == ["a", "b"] and len(data.train[1]) == 4
    faults.survived()


def test_paths_with_spaces_and_non_utf8_bytes(tmp_path, monkeypatch, faults):
    root = os.fsencode(tmp_path) + b"/pets \xff folder"
    for label in (b"cat \xe9", b"dog"):
        os.makedirs(root + b"/" + label)
        for index in range(5):
            Image.new("L", (10, 10), 30 + 150 * (label == b"dog")).save(
                os.fsdecode(root + b"/" + label + b"/" + f"{index} x.png".encode()))
    Image.new("L", (4, 4)).save(os.fsdecode(root + b"/dog/ \xfe.png"))
    with open(os.fsdecode(root + b"/dog/broken \xfd.png"), "wb") as f:
        f.write(b"not an image")
    out = tmp_path / "run \xe9"
    faults.tried()
    # the output names files by their bytes, so it is read back the same way
    result = cnnlab("train", "lenet", "--data", os.fsdecode(root), "--epochs", "1",
                    "--batch-size", "4", "--device", "cpu", "--out", out,
                    errors="surrogateescape")
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 0
    result = cnnlab("predict", out, os.fsdecode(root + b"/dog/ \xfe.png"), "--top-k", "1",
                    errors="surrogateescape")
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 0 and ": dog " in result.stdout
    assert os.fsencode(result.stdout).startswith(root + b"/dog/ \xfe.png")


def test_a_cache_that_would_run_code_is_rebuilt_not_run(tmp_path, monkeypatch, faults):
    root = tmp_path / "pics"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            Image.new("L", (8, 8), 50 * (label == "b")).save(root / label / f"{index}.png")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    ImageFolder(root, size=8, test_fraction=0.0)
    (cache,) = (tmp_path / "cache" / "image-folders").glob("*.pt")

    class RunsCode:
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    torch.save({"images": RunsCode()}, cache)
    faults.injected()
    with pytest.warns(UserWarning, match="decoding the images again"):
        ImageFolder(root, size=8, test_fraction=0.0)
    assert not (tmp_path / "ran").exists()
    faults.survived()
