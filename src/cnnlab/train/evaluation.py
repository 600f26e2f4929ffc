"""Looking at a trained model: confusion matrix, per-class accuracy, predictions for files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.data import read_image
from cnnlab.data.transforms import BatchTransform
from cnnlab.display import LEFT, RIGHT, TableData, show
from cnnlab.errors import MissingFileError
from cnnlab.files import display_path, save_figure
from cnnlab.train.runs import data_from_record, load_trained
from cnnlab.train.runtime import Runtime, forward


@torch.no_grad()
def confusion_matrix(model: nn.Module, loader, num_classes: int, tta_flip: bool = False,
                     runtime=None) -> torch.Tensor:
    """Counts C[i, j] of examples of true class i that ``model`` labels j (CPU int64).

    ``tta_flip`` averages the outputs for each image and its mirror image, as training did;
    ``runtime`` (a trainer Runtime) runs the model in the memory format and precision of training.
    """
    runtime = runtime or Runtime(tta_flip=tta_flip)
    model.eval()
    device = next(model.parameters()).device
    counts = None
    for X, y in loader:
        logits = forward(model, X, device, runtime).float()
        if runtime.tta_flip:
            logits = (logits + forward(model, X.flip(-1), device, runtime).float()) / 2
        pairs = y * num_classes + logits.argmax(dim=1)
        batch = torch.bincount(pairs, minlength=num_classes * num_classes)
        counts = batch if counts is None else counts + batch
    return counts.view(num_classes, num_classes).cpu()


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """The fraction of each true class that is labelled correctly (the diagonal over row sums)."""
    return confusion.diag().double() / confusion.sum(dim=1).clamp(min=1).double()


def report_tables(confusion: torch.Tensor, classes: list[str]) -> list[TableData]:
    """The per-class accuracy and the confusion matrix as tables."""
    per_class = [(name, f"{acc:.1%}", f"{count:,}") for name, acc, count in zip(
        classes, per_class_accuracy(confusion).tolist(), confusion.sum(dim=1).tolist(),
        strict=True)]
    matrix = [(f"{i} {classes[i]}", *map(str, row)) for i, row in enumerate(confusion.tolist())]
    return [TableData("per-class accuracy", ("class", "accuracy", "images"), per_class,
                      (LEFT, RIGHT, RIGHT)),
            TableData("confusion matrix (rows: true class, columns: predicted)",
                      ("true \\ predicted", *map(str, range(len(classes)))), matrix,
                      (LEFT, *(RIGHT,) * len(classes)))]


def print_report(confusion: torch.Tensor, classes: list[str], title: str) -> None:
    """Print the overall and per-class accuracy and the confusion matrix, fitted to the
    terminal (full width in a file or a pipe)."""
    total = int(confusion.sum())
    accuracy = float(confusion.diag().sum()) / total
    print(f"{title}: test accuracy {accuracy:.2%} on {total:,} images")
    for table in report_tables(confusion, classes):
        show(table)


def save_confusion_png(confusion: torch.Tensor, classes: list[str], path: str | Path) -> Path:
    """Write the confusion matrix's heat map as a PNG."""
    save_figure(confusion_figure(confusion, classes), path)
    return Path(path)


def confusion_figure(confusion: torch.Tensor, classes: list[str]):
    """The confusion matrix as a heat map with the counts written in the cells."""
    # deferred: matplotlib is slow to import and only the heat map needs it
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
    return fig


def load_image(path: str | Path, channels: int) -> torch.Tensor:
    """An image file as a uint8 (1, C, H, W) tensor, grey (C=1) or RGB (C=3)."""
    return read_image(path, grayscale=channels == 1)


@torch.no_grad()
def predict_images(model: nn.Module, data_config: dict, paths: list[str], top_k: int
                   ) -> Iterator[tuple[list[float], list[int]]]:
    """Top-k probabilities and class indices for each image, converted as in training."""
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise MissingFileError(f"no image file at {display_path(missing[0])}")
    transform = BatchTransform(data_config["image_size"], data_config["mean"], data_config["std"])
    device = next(model.parameters()).device
    model.eval()
    for path in paths:
        images = load_image(path, data_config["in_channels"]).to(device)
        probs = model(transform(images)).softmax(dim=1)[0]
        top = probs.topk(top_k)
        yield top.values.tolist(), top.indices.tolist()


def test_confusion(run: str | Path, device: torch.device, data_dir: str | None = None):
    """The confusion matrix on the test split of a run's model, rebuilt from its record and run
    as training ran it; returns the matrix, the class names and the trained run."""
    trained = load_trained(run, device)
    data = data_from_record(trained.record["data"], data_dir).to(device)
    runtime = Runtime.recorded(trained.config, device)
    trained.model.to(memory_format=torch.channels_last if runtime.channels_last
                     else torch.contiguous_format)
    confusion = confusion_matrix(trained.model, data.test_dataloader(), data.num_classes,
                                 runtime=runtime)
    return confusion, data.classes, trained


def evaluate_run(run: str | Path, device: torch.device, data_dir: str | None = None) -> Path:
    """`cnnlab eval`: the run's model rebuilt from its record, measured on the test split as
    training measured it; prints the report and returns the confusion-matrix PNG."""
    confusion, classes, trained = test_confusion(run, device, data_dir)
    title = f"{trained.config.model} on the test set ({trained.path})"
    print_report(confusion, classes, title=title)
    return save_confusion_png(confusion, classes,
                              trained.path.with_name(f"confusion-{trained.path.stem}.png"))


def predict_run(run: str | Path, images: list[str], top_k: int, device: torch.device
                ) -> list[list[tuple[str, float]]]:
    """Top-k (class name, probability) for each image, with the run's model and conversion."""
    trained = load_trained(run, device)
    classes = trained.record["data"]["classes"]
    top_k = min(top_k, len(classes))
    return [[(classes[i], p) for p, i in zip(probs, indices, strict=True)]
            for probs, indices in predict_images(trained.model, trained.record["data"], images,
                                                 top_k)]
