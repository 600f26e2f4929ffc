"""Activation memory of a forward pass, measured on the tensors PyTorch actually creates.

- Training: the bytes of every tensor autograd saves for the backward pass (each storage counted
  once, parameters excluded), found with `torch.autograd.graph.saved_tensors_hooks`. The gradients
  flowing back during backward add about one more layer's worth on top; they are not counted.
- Inference: the peak of the bytes alive at once during a forward pass without gradients: the
  input, the output of the running layer and whatever the model still holds (branch outputs
  waiting to be concatenated, a residual block's input). For a plain chain of layers this is the
  largest input-plus-output pair (plus the batch itself).
"""

from __future__ import annotations

import weakref
from collections import Counter
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def _storage(tensor: torch.Tensor):
    storage = tensor.untyped_storage()
    return storage._cdata, storage.nbytes()


class SavedTensors:
    """Collects the storages autograd saves for backward; `nbytes` is their total size."""

    def __init__(self, exclude=()):
        self._excluded = {_storage(t)[0] for t in exclude}
        self._saved: dict[int, int] = {}

    @property
    def nbytes(self) -> int:
        return sum(self._saved.values())

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        key, nbytes = _storage(tensor)
        if key not in self._excluded:
            self._saved[key] = nbytes
        return tensor

    @contextmanager
    def recording(self):
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor):
            yield self


class PeakMemoryMode(TorchDispatchMode):
    """Dispatch mode tracking the bytes of tensors alive at once; `peak` is the largest total.

    A storage counts from the first tensor created on it until the last tensor viewing it dies.
    Tensors that exist before the mode (the input batch) are passed as `resident`; storages of
    `exclude` (the parameters, which views such as a transposed weight share) are never counted.
    """

    def __init__(self, resident=(), exclude=()):
        super().__init__()
        self._excluded = {_storage(t)[0] for t in exclude}
        self._users: Counter[int] = Counter()
        self._sizes: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        for tensor in resident:
            self._track(tensor)

    def _track(self, tensor: torch.Tensor) -> None:
        key, nbytes = _storage(tensor)
        if key in self._excluded:
            return
        if key not in self._sizes:
            self._sizes[key] = nbytes
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        self._users[key] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        self._users[key] -= 1
        if self._users[key] == 0:
            del self._users[key]
            self.current -= self._sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor)
        return out
