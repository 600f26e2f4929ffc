"""Reading one image file as the chapters' models see it: grey or RGB, 8 bits, upright.

Every mode Pillow reads is converted the same way: palette and alpha images through RGB(A),
CMYK to RGB, 16- and 32-bit grey scaled down to 8 bits (not clipped), and JPEGs turned upright
by their EXIF orientation. A file with more pixels than Pillow's decompression-bomb limit is
refused before it is decoded.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cnnlab.errors import UsageError
from cnnlab.files import display_path

GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
WIDE_GREY = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class UnreadableImage(UsageError):
    """A file that is not an image Pillow can decode, or one too large to decode safely."""


def _opened(path: Path) -> Image.Image:
    """The decoded image, upright; a decompression bomb or non-image is UnreadableImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage(f"{display_path(path)} has more pixels than Pillow's limit of "
                              f"{Image.MAX_IMAGE_PIXELS:,} (a decompression bomb?); refused "
                              "without decoding it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"cannot read {display_path(path)} as an image "
                              f"({type(exc).__name__}: {exc})") from None


def is_grey_mode(mode: str) -> bool:
    return mode in GREY_MODES


def _to_mode(image: Image.Image, grayscale: bool) -> Image.Image:
    """Grey ('L') or 'RGB' in 8 bits, wide grey values scaled rather than clipped."""
    if image.mode in WIDE_GREY:
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")
    return image.convert("L" if grayscale else "RGB")


def load_pixels(path: str | Path, grayscale: bool, size: int | None = None) -> np.ndarray:
    """The image at `path` as uint8 (H, W, C), C = 1 grey or 3 RGB, optionally resized to
    `size` x `size` (bilinear)."""
    image = _to_mode(_opened(Path(path)), grayscale)
    if size is not None:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return pixels.reshape(*pixels.shape[:2], -1)


def image_is_grey(path: str | Path) -> bool | None:
    """Whether the file is single-band; None when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return is_grey_mode(image.mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            SyntaxError, ValueError):
        return None
