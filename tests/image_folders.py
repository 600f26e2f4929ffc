"""Small image folders for the tests: two classes of grey pictures, one bright and one dark."""

from pathlib import Path

import numpy as np
from PIL import Image


def two_class_folder(root: Path, per_class: int, side: int = 28, spread: int = 80) -> Path:
    """`root/c0` (dark) and `root/c1` (bright), `per_class` noisy `side` x `side` PNGs each."""
    rng = np.random.default_rng(0)
    for label in range(2):
        (root / f"c{label}").mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, spread, (side, side)) + 150 * label
            Image.fromarray(pixels.astype(np.uint8), mode="L").save(root / f"c{label}/{index}.png")
    return root
