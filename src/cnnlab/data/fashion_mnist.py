"""Fashion-MNIST (Zalando Research): 70,000 grey 28×28 images of 10 kinds of clothing."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.data.loader import DataModule
from cnnlab.data.sources import load_split, locate_fashion_mnist
from cnnlab.errors import UsageError

CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot"]
MEAN, STD = 0.2860, 0.3530


class FashionMNIST(DataModule):
    """Fashion-MNIST in memory, batched by indexing; `resize` sets the side fed to the model.

    `val_fraction` holds out a stratified part of the training set (chosen by `seed`);
    `subset=N` then keeps the first N remaining training images in file order.
    """

    kind = "fashion-mnist"

    def __init__(self, batch_size: int = 128, resize: int | None = None,
                 root: str | Path | None = None, val_fraction: float = 0.0, augment=None,
                 seed: int = 0, subset: int | None = None, normalize: bool = True,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if resize is not None and (not isinstance(resize, int) or resize < 1):
            raise UsageError(f"resize must be a positive number of pixels or None, got {resize!r}")
        config = {"batch_size": batch_size, "resize": resize,
                  "root": None if root is None else str(root), "val_fraction": val_fraction,
                  "augment": None, "seed": seed, "subset": subset, "normalize": normalize}
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, augment=augment,
                         seed=seed, subset=subset, normalize=normalize, rank=rank,
                         world_size=world_size, config=config)
        config["augment"] = ",".join(sorted(self.augment)) or None
        paths = locate_fashion_mnist(root)
        self._setup(as_tensors(*load_split(paths, train=True)),
                    as_tensors(*load_split(paths, train=False)),
                    CLASSES, resize or 28, [MEAN], [STD])
        self.to(device)


def as_tensors(images, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) uint8 and (N,) arrays -> (N, 1, H, W) uint8 and int64 tensors."""
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()
