"""A PNG grid of images with their class names (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure

from cnnlab.errors import UsageError


def save_image_grid(images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                    path: str | Path, columns: int = 8) -> Path:
    """Save uint8 (N, C, H, W) images in a grid, each titled with its class name."""
    if len(images) == 0:
        raise UsageError("no images to show; choose n >= 1 and a non-empty split")
    rows = math.ceil(len(images) / columns)
    columns = min(columns, len(images))
    figure = Figure(figsize=(1.5 * columns, 1.7 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        pixels = image.permute(1, 2, 0).numpy()
        ax.imshow(pixels[..., 0] if pixels.shape[2] == 1 else pixels, cmap="gray", vmin=0, vmax=255)
        ax.set_title(classes[int(label)], fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png", dpi=100)
    return path
