"""The in-memory pipeline shared by every dataset: a DataModule holds uint8 tensors, a
BatchLoader turns them into float batches by indexing whole batches at once.

Order depends only on (seed, epoch) and augmentation only on (seed, epoch, batch index), so a
resumed epoch reproduces its batches bit for bit. For DistributedDataParallel the batch size is
global and rank r takes `global_batch[r::world_size]`: ranks are disjoint and together cover
the split, and two ranks reproduce one rank's batches.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import torch

from cnnlab.data.transforms import BatchTransform, parse_augment
from cnnlab.errors import UsageError


def generator(*keys: int | str) -> torch.Generator:
    """A CPU generator seeded from a hash of `keys` (independent streams for different keys)."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little"))


def split_indices(labels: torch.Tensor, fraction: float, seed: int | str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified split: sorted (kept, held-out) indices; round(fraction·n_c) of class c held."""
    labels = labels.cpu()
    order = torch.randperm(len(labels), generator=generator("split", seed))
    order = order[torch.sort(labels[order], stable=True).indices]  # each class, shuffled
    counts = torch.bincount(labels)
    starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(len(labels)) - starts[labels[order]]
    held = rank_in_class < torch.round(counts.double() * fraction).long()[labels[order]]
    return order[~held].sort().values, order[held].sort().values


def check_fraction(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name} must be in [0, 1), got {value}; e.g. {name}=0.1 holds out 10%")
    return float(value)


def check_shard(rank: int, world_size: int, batch_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank must be in [0, world_size) with world_size >= 1, got rank={rank}, "
                         f"world_size={world_size}")
    if batch_size < world_size:
        raise UsageError(f"batch_size {batch_size} is the global batch and must be at least "
                         f"world_size {world_size}")


class BatchLoader:
    """Batches `(X, y)` of one split: X float32 NCHW and y int64, on the images' device."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: BatchTransform,
                 batch_size: int, *, shuffle: bool, augment: bool, seed: int, rank: int = 0,
                 world_size: int = 1):
        self.images, self.labels, self.transform = images, labels, transform
        self.batch_size, self.shuffle, self.augment, self.seed = batch_size, shuffle, augment, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    @property
    def num_examples(self) -> int:
        """Examples this rank sees per epoch."""
        total, full = len(self.labels), len(self.labels) // self.batch_size
        last = total - full * self.batch_size
        per_batch = len(range(self.rank, self.batch_size, self.world_size))
        return full * per_batch + len(range(self.rank, last, self.world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The global order of the split in `epoch` (CPU indices)."""
        if not self.shuffle:
            return torch.arange(len(self.labels))
        return torch.randperm(len(self.labels), generator=generator("order", self.seed, epoch))

    def iterate(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of `epoch` from batch `start` on (earlier ones are not computed)."""
        order = self.order(epoch).to(self.images.device)
        mine = slice(self.rank, None, self.world_size)
        for i in range(start, len(self)):
            batch = order[i * self.batch_size:(i + 1) * self.batch_size]
            params = {}
            if self.augment and self.transform.augment:
                params = self.transform.sample(len(batch),
                                               generator("augment", self.seed, epoch, i))
            index = batch[mine]
            images = self.images.index_select(0, index)  # a row copy: faster than images[index]
            yield (self.transform(images, {k: v[mine] for k, v in params.items()}),
                   self.labels.index_select(0, index))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate(self.epoch)


def check_split(split: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                kind: str) -> None:
    """Refuse, before any training, images that are not finite pixels or labels out of range."""
    where = f"{kind or 'the data'} {split} split"
    if images.ndim != 4 or len(images) != len(labels):
        raise UsageError(f"{where}: expected N images (N, C, H, W) and N labels, got "
                         f"{tuple(images.shape)} and {tuple(labels.shape)}")
    if images.is_floating_point() and not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
        raise UsageError(f"{where}: {bad} image(s) hold NaN or infinite pixels; rebuild the data "
                         "(for an image folder, delete its cache)")
    if not len(labels):
        return
    if labels.is_floating_point() or int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise UsageError(f"{where}: labels must be class indices 0..{num_classes - 1}, found "
                         f"{labels.min().item()}..{labels.max().item()}")


class DataModule:
    """uint8 train/val/test tensors in memory plus the conversion to model inputs.

    Subclasses load their images and call `_setup`; see `FashionMNIST` and `ImageFolder`.
    """

    kind = ""

    def __init__(self, *, batch_size: int, val_fraction: float, augment, seed: int,
                 subset: int | None, normalize: bool, rank: int, world_size: int, config: dict):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
        if subset is not None and (not isinstance(subset, int) or subset < 1):
            raise UsageError(f"subset must be a positive number of images or None, got {subset!r}")
        check_shard(rank, world_size, batch_size)
        self.batch_size, self.seed, self.subset = batch_size, seed, subset
        self.normalize = normalize
        self.val_fraction = check_fraction("val_fraction", val_fraction)
        self.augment = parse_augment(augment)
        self.rank, self.world_size = rank, world_size
        self.device = torch.device("cpu")
        self.config = config

    def _setup(self, train: tuple[torch.Tensor, torch.Tensor],
               test: tuple[torch.Tensor, torch.Tensor], classes: list[str], image_size: int,
               mean: list[float], std: list[float]) -> None:
        """Hold out the validation part, apply `subset`, and build the batch transform."""
        for split, pair in (("training", train), ("test", test)):
            check_split(split, *pair, len(classes), self.kind)
        images, labels = train
        kept, held = split_indices(labels, self.val_fraction, self.seed)
        self.val = (images[held], labels[held]) if len(held) else None
        if self.subset is not None:
            if self.subset > len(kept):
                raise UsageError(f"subset={self.subset} exceeds the {len(kept)} training images "
                                 "available; choose a smaller subset")
            kept = kept[:self.subset]
        self.train = (images[kept], labels[kept])
        self.test = test
        self.classes, self.image_size = list(classes), image_size
        self.num_classes, self.in_channels = len(classes), images.shape[1]
        if not self.normalize:
            mean, std = [0.0] * self.in_channels, [1.0] * self.in_channels
        self.mean, self.std = list(mean), list(std)
        self.pipeline = BatchTransform(image_size, mean, std, self.augment)

    def describe(self) -> dict:
        """JSON-able constructor arguments, so `from_description` rebuilds the same data."""
        return {"kind": self.kind, **self.config}

    def to(self, device: str | torch.device) -> DataModule:
        """Move the uint8 tensors to `device` once; batches are then made there."""
        self.device = torch.device(device)
        self.train, self.val, self.test = (
            None if pair is None else tuple(t.to(self.device) for t in pair)
            for pair in (self.train, self.val, self.test)
        )
        return self

    def shard(self, rank: int, world_size: int) -> DataModule:
        """Make loaders yield this rank's part of each global batch."""
        check_shard(rank, world_size, self.batch_size)
        self.rank, self.world_size = rank, world_size
        return self

    def _loader(self, split, train: bool) -> BatchLoader:
        return BatchLoader(*split, self.pipeline, self.batch_size, shuffle=train, augment=train,
                           seed=self.seed, rank=self.rank, world_size=self.world_size)

    def train_dataloader(self) -> BatchLoader:
        return self._loader(self.train, train=True)

    def val_dataloader(self) -> BatchLoader | None:
        return self._loader(self.val, train=False) if self.val is not None else None

    def test_dataloader(self) -> BatchLoader:
        return self._loader(self.test, train=False)

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """The evaluation-time conversion of uint8 (N, C, H, W) images of any size."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != self.in_channels:
            raise UsageError(f"expected uint8 images of shape (N, {self.in_channels}, H, W), found "
                             f"{images.dtype} {tuple(images.shape)}")
        return self.pipeline(images.to(self.device))

    def save_grid(self, path: str | Path, n: int = 32, split: str = "train",
                  augmented: bool = False) -> Path:
        """Write a PNG grid of the first `n` images of `split` with their class names.

        `augmented=True` shows the first training batch of epoch 0 as the model sees it.
        """
        # deferred: matplotlib loads in half a second; only this method draws
        from cnnlab.data.grid import save_image_grid

        splits = {"train": self.train, "val": self.val, "test": self.test}
        if split not in splits or splits[split] is None:
            raise UsageError(f"split must be one of {[k for k, v in splits.items() if v]}, "
                             f"got {split!r}")
        if augmented:
            images, labels = next(iter(self.train_dataloader().iterate(0)))
            std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
            mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
            images = (images * std + mean).mul(255).clamp(0, 255).round().to(torch.uint8)
        else:
            images, labels = splits[split]
        return save_image_grid(images[:n].cpu(), labels[:n].cpu(), self.classes, path)
