"""Batch-level conversion and augmentation: whole batches at once, no per-image Python.

Resizing is linear and separable, so a bilinear resize from n to s pixels is an (s, n) matrix
`R` and a batch resizes as `R_h @ X @ R_w.T` (two matrix products, about twice as fast as
`F.interpolate` on CPU). The matrices are built by resizing the identity with
`F.interpolate(..., antialias=True)`, which follows Pillow's bilinear filter, so the result matches
torchvision's `Resize` on the same image. Random crops (with padding) and horizontal flips only
shift or reverse the rows of those matrices (per-image products instead of shared ones).
Upsampling whose row pattern repeats with few phases (28 -> 56, 84, 224) skips the row product:
each output row is a `lerp` of two input rows, one call per phase.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import torch
import torch.nn.functional as F

from cnnlab.errors import UsageError

AUGMENTATIONS = ("crop", "flip", "erase")
ERASE_PROBABILITY, ERASE_SCALE, ERASE_RATIO = 0.5, (0.02, 0.33), (0.3, 3.3)
MAX_PHASES = 8  # upsampling by lerp beats a matrix product when its pattern has few phases


AUGMENT_JOINS = ",+"
"""What joins the augmentations of a combination: ``crop,flip`` and ``crop+flip`` are the same
(the plus form stays one value inside a comma list, as in ``--grid augment=none,crop+flip``)."""


def augment_names(text: str) -> list[str]:
    """The names in an augmentation text, in order: ``'crop+flip'`` and ``'crop, flip'`` are
    ``['crop', 'flip']``."""
    for join in AUGMENT_JOINS[1:]:
        text = text.replace(join, AUGMENT_JOINS[0])
    return [name.strip().lower() for name in text.split(AUGMENT_JOINS[0]) if name.strip()]


def parse_augment(augment: str | Iterable[str] | None) -> frozenset[str]:
    """Accept None, 'none', 'crop,flip' (or 'crop+flip') or a set of names from AUGMENTATIONS."""
    if augment is None:
        return frozenset()
    names = augment_names(augment) if isinstance(augment, str) else list(augment)
    chosen = frozenset(n.strip().lower() for n in names if n.strip() and n.strip() != "none")
    unknown = sorted(chosen - set(AUGMENTATIONS))
    if unknown:
        raise UsageError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)} "
            "(joined by commas or +, such as crop+flip) or 'none'"
        )
    return chosen


@lru_cache(maxsize=32)
def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """The (n_out, n_in) matrix of a 1-D antialiased bilinear resize (Pillow's BILINEAR)."""
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, 1, 1, n_in)
    resized = F.interpolate(basis, size=(1, n_out), mode="bilinear", align_corners=False,
                            antialias=True)
    return resized.reshape(n_in, n_out).T.float().contiguous()


def crop_padding(size: int) -> int:
    """Padding of the random crop: 4 pixels at 28, scaled with the image side."""
    return max(1, round(size * 4 / 28))


class BatchTransform:
    """uint8 NCHW batches -> float32 batches of side `size`: scale, normalise, resize, augment.

    Normalising happens before resizing, at the small input size: every row of a resize matrix
    sums to 1, so the two commute. The crop's padding reads a 1-pixel black border added to each
    image, so it is black as in torchvision's `RandomCrop(padding=...)`.
    """

    def __init__(self, size: int, mean: Iterable[float], std: Iterable[float],
                 augment: Iterable[str] = ()):
        self.size = size
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.augment = frozenset(augment)
        self._cache: dict[tuple, torch.Tensor] = {}  # per device, built on first use

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random parameters (CPU tensors) of the augmentations for a batch of `n` images."""
        params = {}
        pad, size = crop_padding(self.size), self.size
        if "crop" in self.augment:
            params["crop"] = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
        if "flip" in self.augment:
            params["flip"] = torch.rand(n, generator=generator) < 0.5
        if "erase" in self.augment:
            area = torch.empty(n).uniform_(*ERASE_SCALE, generator=generator) * size * size
            log_ratio = torch.empty(n).uniform_(*map(math.log, ERASE_RATIO), generator=generator)
            h = (area * log_ratio.exp()).sqrt().round().long().clamp(1, size)
            w = (area / log_ratio.exp()).sqrt().round().long().clamp(1, size)
            top = (torch.rand(n, generator=generator) * (size - h + 1)).long()
            left = (torch.rand(n, generator=generator) * (size - w + 1)).long()
            apply = torch.rand(n, generator=generator) < ERASE_PROBABILITY
            params["erase"] = torch.stack([top, left, h * apply, w * apply], dim=1)
        return params

    def __call__(self, images: torch.Tensor, params: dict[str, torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """Convert a uint8 (N, C, H, W) batch; `params` from `sample` (sliced alike) augments it."""
        params = params or {}
        height, width = images.shape[-2:]
        device = images.device
        scale, offset = self._constants(device)
        x = images.float().mul_(scale)
        if "crop" in params or "flip" in params:
            x = F.pad(x, (1, 1, 1, 1)).add_(offset)  # a black border for the crop's padding
            rows, cols = self._per_image_matrices(height, width, params, device)
            x = resize_each(x, rows, cols)
        else:
            x = x.add_(offset)
            if (height, width) != (self.size, self.size):
                x = self._resize(x)
        if "erase" in params:
            x = erase(x, params["erase"].to(device))
        return x

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """The same resize for every image: one product for the columns, then the rows."""
        n, channels, height, width = x.shape
        half = (x.reshape(-1, width) @ self._matrix(width, x.device).T).view(-1, height, self.size)
        if self.size > height and self.size // math.gcd(self.size, height) <= MAX_PHASES:
            half = upsample_rows(half, self.size)
        else:
            half = torch.matmul(self._matrix(height, x.device), half)
        return half.view(n, channels, self.size, self.size)

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel 1/(255·std) and −mean/std as (1, C, 1, 1) tensors on `device`."""
        key = ("constants", str(device))
        if key not in self._cache:
            scale = [1 / (255 * s) for s in self.std]
            offset = [-m / s for m, s in zip(self.mean, self.std, strict=True)]
            self._cache[key] = torch.tensor([scale, offset], device=device).view(2, 1, -1, 1, 1)
        return self._cache[key][0], self._cache[key][1]

    def _matrix(self, n_in: int, device: torch.device) -> torch.Tensor:
        key = (n_in, str(device))
        if key not in self._cache:
            self._cache[key] = resize_matrix(n_in, self.size).to(device)
        return self._cache[key]

    def _per_image_matrices(self, height: int, width: int, params: dict, device: torch.device):
        """Matrices for images with a 1-pixel black border: rows shifted (crop), reversed (flip)."""
        n = len(next(iter(params.values())))
        pad = crop_padding(self.size) if "crop" in params else 0
        shift = params.get("crop", torch.zeros(n, 2, dtype=torch.long)).to(device)
        out = torch.arange(self.size, device=device)
        row_index = out + shift[:, :1]
        col_index = out.expand(n, -1)
        if "flip" in params:
            col_index = torch.where(params["flip"].to(device)[:, None], out.flip(0), col_index)
        col_index = col_index + shift[:, 1:]
        rows = bordered(self._matrix(height, device), pad)[row_index]
        cols = bordered(self._matrix(width, device), pad)[col_index]
        return rows, cols


def upsample_rows(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of the rows of (M, H, W) to `size` rows without a matrix product.

    Output row i reads rows floor(s), floor(s) + 1 with s = (i + 0.5)·H/size − 0.5 (edges
    replicated, as Pillow does). The pattern repeats every size/g rows (g = gcd(size, H)), so
    each phase of the pattern is one `lerp` over strided slices: size/g calls, not `size`.
    """
    m, height, width = x.shape
    blocks = math.gcd(size, height)
    phases, step = size // blocks, height // blocks
    rows = torch.cat([x[:, :1], x, x[:, -1:]], dim=1)  # row r of x is row r + 1 here
    out = x.new_empty(m, blocks, phases, width)
    for phase in range(phases):
        source = (phase + 0.5) * height / size - 0.5
        first = math.floor(source)
        top = rows[:, first + 1:first + 2 + step * (blocks - 1):step]
        bottom = rows[:, first + 2:first + 3 + step * (blocks - 1):step]
        torch.lerp(top, bottom, source - first, out=out[:, :, phase])
    return out.view(m, size, width)


def bordered(matrix: torch.Tensor, pad: int) -> torch.Tensor:
    """Extend a resize matrix to an input with a 1-pixel border and `pad` extra output rows on
    each side, which read that border (the black padding of a random crop)."""
    size, n_in = matrix.shape
    result = matrix.new_zeros(size + 2 * pad, n_in + 2)
    result[pad:pad + size, 1:n_in + 1] = matrix
    result[:pad, 0] = 1.0
    result[pad + size:, n_in + 1] = 1.0
    return result


def resize_each(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """`rows[i] @ x[i, c] @ cols[i].T` for every image i and channel c (two batched products)."""
    n, channels, height, width = x.shape
    half = torch.bmm(x.reshape(n, channels * height, width), cols.transpose(1, 2))
    if channels > 1:
        rows = rows.repeat_interleave(channels, dim=0)
    return torch.bmm(rows, half.view(n * channels, height, -1)).view(n, channels, rows.shape[1], -1)


def erase(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Random erasing: set each image's box (top, left, height, width) to 0 (the mean)."""
    top, left, h, w = (boxes[:, i].view(-1, 1, 1, 1) for i in range(4))
    ys = torch.arange(x.shape[-2], device=x.device).view(1, 1, -1, 1)
    xs = torch.arange(x.shape[-1], device=x.device).view(1, 1, 1, -1)
    inside = (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)
    return x.masked_fill_(inside, 0.0)
