"""Receptive fields traced through the operators a forward pass runs.

Every tensor derived from the input carries, per spatial axis, its receptive field `r` (input
pixels one output pixel sees) and its jump `j` (input pixels between neighbouring output pixels).
A window of size k, stride s and dilation d maps (r, j) to (r + (k - 1) d j, j s); operators that
merge tensors (addition, concatenation, elementwise layers) take the largest field of their
inputs; an output without spatial axes (flattened, fully connected) sees the whole input.
Padding does not change the field; reported sizes are clipped to the input, as a pixel cannot see
beyond the image. Because it follows the operators, it works for any module tree: Inception
branches, residual shortcuts and dense concatenations included.
"""

from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

aten = torch.ops.aten

Field = tuple[tuple[int, int], ...]
"""(receptive field, jump) for each spatial axis of the input."""

_CONVOLUTIONS = {aten.convolution}
_MAX_POOLS = {aten.max_pool1d, aten.max_pool2d, aten.max_pool1d_with_indices,
              aten.max_pool2d_with_indices, aten.max_pool3d_with_indices}
_AVG_POOLS = {aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d}


def storage_key(tensor: torch.Tensor) -> tuple:
    """Identity of a tensor's values: the same storage, offset, shape and strides."""
    return (tensor.untyped_storage()._cdata, tensor.storage_offset(), tuple(tensor.shape),
            tensor.stride())


def _per_axis(value, axes: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return values * axes if len(values) == 1 else values


def _window(func, args, axes: int):
    """(kernel, stride, dilation) per axis of a convolution or pooling call, else None."""
    packet = func.overloadpacket
    if packet in _CONVOLUTIONS and not args[6]:  # args[6]: transposed
        return tuple(args[1].shape[2:]), _per_axis(args[3], axes), _per_axis(args[5], axes)
    if packet in _MAX_POOLS or packet in _AVG_POOLS:
        kernel = _per_axis(args[1], axes)
        stride = _per_axis(args[2], axes) if len(args) > 2 and args[2] else kernel
        dilated = packet in _MAX_POOLS and len(args) > 4
        return kernel, stride, _per_axis(args[4] if dilated else 1, axes)
    return None


def _grow(field: Field, kernel, stride, dilation) -> Field:
    return tuple((size + (k - 1) * d * jump, jump * s)
                 for (size, jump), k, s, d in zip(field, kernel, stride, dilation, strict=True))


def _pooled_window(source: torch.Tensor, out: torch.Tensor):
    """The window of an operator that shrinks the map without saying how (adaptive pooling,
    a mean over the spatial axes): kernel ceil(n_in / n_out), stride floor(n_in / n_out)."""
    sizes = list(zip(source.shape[2:], out.shape[2:], strict=True))
    kernel = tuple(math.ceil(n_in / n_out) for n_in, n_out in sizes)
    stride = tuple(n_in // n_out for n_in, n_out in sizes)
    return kernel, stride, (1,) * len(sizes)


class ReceptiveFieldMode(TorchDispatchMode):
    """Dispatch mode that records the receptive field of every tensor computed from `image`."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.sides = tuple(image.shape[2:])
        self._fields: dict[tuple, Field] = {}
        self._alive: list[torch.Tensor] = []  # keeps storages (and so the keys) from being reused
        self._remember(image, tuple((1, 1) for _ in self.sides))

    def _remember(self, tensor: torch.Tensor, field: Field) -> None:
        self._fields[storage_key(tensor)] = field
        self._alive.append(tensor)

    def field_of(self, tensor: torch.Tensor) -> int | None:
        """Side (input pixels) of the window one output pixel of `tensor` sees; None when the
        tensor does not depend on the input."""
        field = self._fields.get(storage_key(tensor))
        if field is None:
            return None
        return max(min(size, side) for (size, _), side in zip(field, self.sides, strict=True))

    def _output_field(self, func, args, source, merged: Field, out: torch.Tensor) -> Field:
        axes = len(self.sides)
        if out.dim() < 3:
            return tuple((side, side) for side in self.sides)
        if out.dim() != source.dim() or out.dim() - 2 != axes:
            return merged
        window = _window(func, args, axes)
        if window is None:
            shrinks = all(o <= i for i, o in zip(source.shape[2:], out.shape[2:], strict=True))
            if not shrinks or out.shape[2:] == source.shape[2:]:
                return merged
            window = _pooled_window(source, out)
        return _grow(merged, *window)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        traced = [(t, self._fields[storage_key(t)]) for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and storage_key(t) in self._fields]
        if traced:
            source = traced[0][0]
            merged = tuple((max(size for size, _ in axis), max(jump for _, jump in axis))
                           for axis in zip(*(field for _, field in traced), strict=True))
            for tensor in tree_leaves(out):
                if isinstance(tensor, torch.Tensor):
                    self._remember(tensor, self._output_field(func, args, source, merged, tensor))
        return out
