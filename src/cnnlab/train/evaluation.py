"""Looking at a trained model: confusion matrix, per-class accuracy, predictions for files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def confusion_matrix(model: nn.Module, loader, num_classes: int, tta_flip: bool = False
                     ) -> torch.Tensor:
    """Counts C[i, j] of examples of true class i that ``model`` labels j (CPU int64).

    ``tta_flip`` averages the outputs for each image and its mirror image, as training did.
    """
    model.eval()
    counts = None
    for X, y in loader:
        logits = model(X)
        if tta_flip:
            logits = (logits + model(X.flip(-1))) / 2
        pairs = y * num_classes + logits.argmax(dim=1)
        batch = torch.bincount(pairs, minlength=num_classes * num_classes)
        counts = batch if counts is None else counts + batch
    return counts.view(num_classes, num_classes).cpu()


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """The fraction of each true class that is labelled correctly (the diagonal over row sums)."""
    return confusion.diag().double() / confusion.sum(dim=1).clamp(min=1).double()


def print_report(confusion: torch.Tensor, classes: list[str], title: str) -> None:
    """Print the overall and per-class accuracy and the confusion matrix as rich tables."""
    from rich.console import Console
    from rich.table import Table

    total = int(confusion.sum())
    accuracy = float(confusion.diag().sum()) / total
    console = Console()
    console.print(f"[bold]{title}[/bold]: test accuracy {accuracy:.2%} on {total:,} images")
    per_class = Table(title="per-class accuracy")
    per_class.add_column("class")
    per_class.add_column("accuracy", justify="right")
    per_class.add_column("images", justify="right")
    for name, acc, count in zip(classes, per_class_accuracy(confusion).tolist(),
                                confusion.sum(dim=1).tolist(), strict=True):
        per_class.add_row(name, f"{acc:.1%}", f"{count:,}")
    console.print(per_class)
    matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("true \\ predicted")
    for i in range(len(classes)):
        matrix.add_column(str(i), justify="right")
    for i, row in enumerate(confusion.tolist()):
        cells = [f"[bold]{n}[/bold]" if j == i else str(n) for j, n in enumerate(row)]
        matrix.add_row(f"{i} {classes[i]}", *cells)
    console.print(matrix)


def save_confusion_png(confusion: torch.Tensor, classes: list[str], path: str | Path) -> Path:
    """Draw the confusion matrix as a heat map with the counts written in the cells."""
    from matplotlib.figure import Figure

    n = len(classes)
    fig = Figure(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax = fig.subplots()
    ax.imshow(confusion.numpy(), cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    high = float(confusion.max())
    for (i, j), count in np.ndenumerate(confusion.numpy()):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > high / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def load_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as a uint8 (1, C, H, W) tensor, grey (C=1) or RGB (C=3)."""
    from cnnlab.data import read_image

    try:
        return read_image(path, grayscale=channels == 1)
    except OSError as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise ValueError(f"cannot read {path} as an image ({exc})") from None


@torch.no_grad()
def predict_images(model: nn.Module, data_config: dict, paths: list[str], top_k: int
                   ) -> Iterator[tuple[list[float], list[int]]]:
    """Top-k probabilities and class indices for each image, converted as in training."""
    from cnnlab.data.transforms import BatchTransform

    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"no image file at {missing[0]}")
    transform = BatchTransform(data_config["image_size"], data_config["mean"], data_config["std"])
    device = next(model.parameters()).device
    model.eval()
    for path in paths:
        images = load_image(path, data_config["in_channels"]).to(device)
        probs = model(transform(images)).softmax(dim=1)[0]
        top = probs.topk(top_k)
        yield top.values.tolist(), top.indices.tolist()
