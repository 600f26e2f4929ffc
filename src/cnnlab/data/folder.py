"""Image folders `root/<class>/<image>` (PNG/JPEG, any size, grey or colour) in memory.

Images are decoded once with Pillow, converted to grey or RGB, resized to `size`×`size`
(bilinear, as torchvision's `Resize((size, size))`) and kept as one uint8 tensor. That tensor is
saved in the user cache under a key made from the file list, sizes, modification times and
settings, so a second run starts at once and any change to the folder rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.images import UnreadableImage, image_is_grey, load_pixels
from cnnlab.data.loader import DataModule, check_fraction, split_indices
from cnnlab.data.sources import cache_dir
from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import display_path, write_torch

SUFFIXES = {".png", ".jpg", ".jpeg"}
TEST_SPLIT_SEED = "test"  # the held-out test set does not change with the training seed


def read_image(path: str | Path, grayscale: bool) -> torch.Tensor:
    """One image file as a uint8 (1, C, H, W) tensor, C = 1 for grey and 3 for colour."""
    pixels = load_pixels(path, grayscale)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None]


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, links followed, lies inside `root` (a link out of the folder does not)."""
    return path.resolve().is_relative_to(root.resolve())


def scan(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted sub-folders) and (file, class index) pairs; empty classes are errors."""
    if not root.is_dir():
        raise MissingFileError(f"{root} is not a folder; expected root/<class>/<image> files")
    classes = sorted(p.name for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and _inside(p, root))
    if not classes:
        raise UsageError(f"{root} has no class sub-folders; expected root/<class>/<image>.png|jpg")
    files = []
    outside = [p for p in root.iterdir() if p.is_dir() and not _inside(p, root)]
    for index, name in enumerate(classes):
        candidates = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in SUFFIXES)
        outside += [p for p in candidates if not _inside(p, root)]
        found = [p for p in candidates if _inside(p, root)]
        if not found:
            raise UsageError(f"class folder {root / name} has no PNG or JPEG images; add some "
                             "or remove the folder")
        files += [(p, index) for p in found]
    if outside:
        warnings.warn(f"skipped {len(outside)} link(s) that point out of {display_path(root)}: "
                      f"{', '.join(display_path(p) for p in outside[:5])}", stacklevel=3)
    return classes, files


def cache_key(files: list[tuple[Path, int]], size: int, grayscale: bool | None) -> str:
    """A hash of every file's path, size and modification time plus the settings."""
    entries = [(str(p), st.st_size, st.st_mtime_ns) for p, _ in files for st in [p.stat()]]
    blob = json.dumps([entries, size, grayscale]).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def decode(files: list[tuple[Path, int]], size: int, grayscale: bool | None) -> dict:
    """Decode and resize all images; unreadable ones are listed in a warning and skipped."""
    modes = [image_is_grey(p) for p, _ in files]
    if grayscale is None:
        grayscale = all(m for m in modes if m is not None)
    images, labels = [], []
    skipped = [display_path(p) for (p, _), m in zip(files, modes, strict=True) if m is None]
    for (path, label), mode in zip(files, modes, strict=True):
        if mode is None:
            continue
        try:
            images.append(load_pixels(path, grayscale, size))
        except UnreadableImage:
            skipped.append(display_path(path))
            continue
        labels.append(label)
    if not images:
        raise UsageError(f"none of the {len(files)} image files could be read by Pillow, "
                         f"e.g. {skipped[0]}; check that they are PNG or JPEG images")
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return {"images": pixels, "labels": torch.tensor(labels), "skipped": sorted(skipped),
            "grayscale": grayscale}


CACHE_FORMAT = 1
"""The version of the cached tensors' layout; a cache of any other version is rebuilt."""


def read_cache(path: Path) -> dict | None:
    """The cached tree at `path`, or None (with a warning) when it is absent, unreadable,
    of another cache format or holds anything but tensors, lists and numbers."""
    if not path.is_file():
        return None
    try:
        tree = torch.load(path, weights_only=True)
    except Exception as exc:  # truncated, corrupt or pickled code: never trusted, rebuilt
        reason = f"unreadable ({type(exc).__name__})"
    else:
        if isinstance(tree, dict) and tree.get("format") == CACHE_FORMAT:
            if _well_formed(tree):
                return tree
            reason = "damaged (not uint8 images with one class index each)"
        else:
            found = tree.get("format") if isinstance(tree, dict) else type(tree).__name__
            reason = f"of another cache format ({found})"
    warnings.warn(f"image cache {path} is {reason}; decoding the images again", stacklevel=3)
    return None


def _well_formed(tree: dict) -> bool:
    """Whether a cached tree holds uint8 images and in-range integer labels, one per image."""
    images, labels, classes = tree.get("images"), tree.get("labels"), tree.get("classes")
    if not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor)
            and isinstance(classes, list) and isinstance(tree.get("skipped"), list)):
        return False
    return (images.dtype == torch.uint8 and images.ndim == 4 and labels.dtype == torch.int64
            and labels.shape == (len(images),) and bool(len(labels))
            and int(labels.min()) >= 0 and int(labels.max()) < len(classes))


def load_tree(root: Path, size: int, grayscale: bool | None, cache: Path) -> dict:
    """The decoded tree, from the cache when nothing changed, else decoded and saved there."""
    classes, files = scan(root)
    path = cache / "image-folders" / f"{root.name}-{cache_key(files, size, grayscale)}.pt"
    tree = read_cache(path)
    if tree is None:
        tree = {**decode(files, size, grayscale), "classes": classes, "format": CACHE_FORMAT}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_torch(tree, path)
    if tree["skipped"]:
        warnings.warn(f"skipped {len(tree['skipped'])} unreadable image(s): "
                      f"{', '.join(tree['skipped'])}", stacklevel=3)
    return tree


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 images on the [0, 1] scale."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(1024):
        values = chunk.transpose(0, 1).reshape(images.shape[1], -1).double() / 255
        total += values.sum(1)
        squares += (values * values).sum(1)
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    return mean.tolist(), [s if s > 1e-6 else 1.0 for s in std.tolist()]


class ImageFolder(DataModule):
    """Images in `root/<class>/<image>` as a DataModule, resized to `size` once when decoded.

    With `root/train/<class>/...` and `root/test/<class>/...` those splits are used; otherwise a
    stratified `test_fraction` of each class is held out (the same for every seed). Normalising
    uses the training images' per-channel mean and standard deviation.
    """

    kind = "image-folder"

    def __init__(self, root: str | Path, size: int, grayscale: bool | None = None,
                 batch_size: int = 128, val_fraction: float = 0.0, test_fraction: float = 0.2,
                 augment=None, seed: int = 0, subset: int | None = None, normalize: bool = True,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if not isinstance(size, int) or size < 1:
            raise UsageError(f"size must be a positive number of pixels, got {size!r}")
        root = Path(root).expanduser().resolve()
        config = {"root": str(root), "size": size, "grayscale": grayscale,
                  "batch_size": batch_size, "val_fraction": val_fraction,
                  "test_fraction": test_fraction, "augment": None, "seed": seed,
                  "subset": subset, "normalize": normalize}
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, augment=augment,
                         seed=seed, subset=subset, normalize=normalize, rank=rank,
                         world_size=world_size, config=config)
        config["augment"] = ",".join(sorted(self.augment)) or None
        train, test, classes = self._load(root, size, grayscale, test_fraction)
        self._setup(train, test, classes, size, *channel_stats(train[0]))
        self.to(device)

    def _load(self, root: Path, size: int, grayscale: bool | None, test_fraction: float):
        cache = cache_dir()
        if (root / "train").is_dir() and (root / "test").is_dir():
            tree = load_tree(root / "train", size, grayscale, cache)
            test = load_tree(root / "test", size, tree["grayscale"], cache)
            unknown = sorted(set(test["classes"]) - set(tree["classes"]))
            if unknown:
                raise UsageError(f"{root / 'test'} has classes missing from {root / 'train'}: "
                                 f"{', '.join(unknown)}")
            remap = torch.tensor([tree["classes"].index(c) for c in test["classes"]])
            self.grayscale = tree["grayscale"]
            return ((tree["images"], tree["labels"]), (test["images"], remap[test["labels"]]),
                    tree["classes"])
        check_fraction("test_fraction", test_fraction)
        tree = load_tree(root, size, grayscale, cache)
        kept, held = split_indices(tree["labels"], test_fraction, TEST_SPLIT_SEED)
        self.grayscale = tree["grayscale"]
        images, labels = tree["images"], tree["labels"]
        return (images[kept], labels[kept]), (images[held], labels[held]), tree["classes"]
