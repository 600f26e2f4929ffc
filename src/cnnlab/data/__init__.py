"""Fashion-MNIST and image folders through an in-memory, batch-level pipeline."""

from cnnlab.data.fashion_mnist import CLASSES, FashionMNIST
from cnnlab.data.folder import ImageFolder, read_image
from cnnlab.data.loader import BatchLoader, DataModule
from cnnlab.data.sources import locate_fashion_mnist
from cnnlab.errors import UsageError

KINDS = {FashionMNIST.kind: FashionMNIST, ImageFolder.kind: ImageFolder}


def from_description(description: dict, **overrides) -> DataModule:
    """Rebuild a DataModule from `describe()`; `overrides` (e.g. device, rank) are added."""
    arguments = dict(description)
    kind = arguments.pop("kind", None)
    if kind not in KINDS:
        raise UsageError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind](**arguments, **overrides)


__all__ = ["CLASSES", "BatchLoader", "DataModule", "FashionMNIST", "ImageFolder",
           "from_description", "locate_fashion_mnist", "read_image"]
