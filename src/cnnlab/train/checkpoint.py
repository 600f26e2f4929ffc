"""Checkpoints that lose nothing: atomic writes, random-number states, and safe loading.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the old one, so a crash at any moment leaves either the old or the new file, never half of one.
Loading uses ``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import atomic_write


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, flush, fsync, rename)."""
    with atomic_write(path) as f:
        torch.save(state, f)
    return Path(path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; refuse pickled code, name corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no checkpoint file at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if "unsupported" in line.lower()]
        reason = (lines or ["not a plain tensor/number/string container"])[0][:160]
        raise UsageError(
            f"refused to load {path}: it needs arbitrary unpickling, which could run code, "
            f"so it was not executed ({reason}); load only checkpoints written by cnnlab"
        ) from None
    except Exception as exc:  # torch raises OSError, KeyError, EOFError or RuntimeError here
        raise UsageError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc}); "
            "use an earlier checkpoint such as best.pt or retrain"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise UsageError(f"{path} is not a cnnlab checkpoint (no 'model' entry)")
    return state


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
