"""Checkpoints that lose nothing: atomic writes, random-number states, and safe loading.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the old one, so a crash at any moment leaves either the old or the new file, never half of one.
Loading uses ``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import display_path, write_torch

DIGEST = "digest"
"""The checkpoint entry holding the SHA-256 of everything else in it (tensors and values)."""


def state_digest(state) -> str:
    """SHA-256 over every key, value and tensor byte of a checkpoint state, in a fixed order:
    a flipped bit anywhere in what was saved changes it."""
    digest = hashlib.sha256()

    def visit(value) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            digest.update(f"D{len(value)}".encode())
            for key in sorted(value, key=repr):
                if key != DIGEST:
                    digest.update(repr(key).encode())
                    visit(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"L{len(value)}".encode())
            for item in value:
                visit(item)
        else:
            digest.update(repr(value).encode())

    visit(state)
    return digest.hexdigest()


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` and its digest to ``path`` atomically (temporary file, fsync, rename)."""
    return write_torch({**state, DIGEST: state_digest(state)}, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``: refuse pickled code, and name a truncated,
    corrupt or altered file (one whose content no longer matches its digest)."""
    path = Path(path)
    shown = display_path(path)
    if not path.is_file():
        raise MissingFileError(f"no checkpoint file at {shown}")
    damaged = (f"checkpoint {shown} is truncated or corrupt ({{}}); use an earlier checkpoint "
               "such as best.pt or retrain")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if "unsupported" in line.lower()]
        if not lines:
            raise UsageError(damaged.format(f"UnpicklingError: {exc}")) from None
        raise UsageError(
            f"refused to load {shown}: it needs arbitrary unpickling, which could run code, "
            f"so it was not executed ({lines[0][:160]}); load only checkpoints written by cnnlab"
        ) from None
    except Exception as exc:  # torch raises OSError, KeyError, EOFError or RuntimeError here
        raise UsageError(damaged.format(f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(state, dict) or "model" not in state:
        raise UsageError(f"{shown} is not a cnnlab checkpoint (no 'model' entry)")
    if DIGEST in state and state.pop(DIGEST) != state_digest(state):
        raise UsageError(damaged.format("its content does not match the digest written with it"))
    return state


def load_weights(model: torch.nn.Module, weights: dict, source: Path) -> None:
    """Load `weights` into `model`; names and shapes that do not fit are one UsageError."""
    own = model.state_dict()
    missing = [key for key in own if key not in weights]
    unexpected = [key for key in weights if key not in own]
    reshaped = [f"{key} {tuple(weights[key].shape)} vs {tuple(own[key].shape)}"
                for key in own if key in weights and weights[key].shape != own[key].shape]
    problems = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []) + \
               ([f"shape {', '.join(reshaped[:3])}"] if reshaped else [])
    if problems:
        raise UsageError(f"the weights in {display_path(source)} do not fit the model its record "
                         f"describes ({'; '.join(problems)}); it is a foreign or edited "
                         "checkpoint")
    model.load_state_dict(weights)


def rng_state() -> dict:
    """Every random-number state a training step can touch: torch (CPU, CUDA), Python, NumPy."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state((
        "MT19937",
        np_state["keys"].numpy().astype(np.uint32),
        np_state["pos"],
        np_state["has_gauss"],
        np_state["cached_gaussian"],
    ))
