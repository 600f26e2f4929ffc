"""``.pt2`` files: `torch.export` programs saved by PyTorch, with cnnlab's metadata beside them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.export.metadata import ExportMetadata, read_sidecar, sidecar_path


def write_pt2(program: torch.export.ExportedProgram, path: str | Path,
              metadata: ExportMetadata | None = None, sidecar: str | Path | None = None) -> None:
    """Save `program` to `path` and `metadata` as JSON to `sidecar` (default: `sidecar_path`)."""
    torch.export.save(program, path)
    if metadata is not None:
        text = json.dumps(metadata.to_dict(), indent=2) + "\n"
        Path(sidecar or sidecar_path(path)).write_text(text)


def load_program(path: str | Path) -> nn.Module:
    """The program in a ``.pt2`` file as a callable module; other files are a UsageError."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no .pt2 file at {path}")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not a torch.export program (.pt2 files are zip archives)")
    try:
        return torch.export.load(path).module()
    except (RuntimeError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(f"{path} is not a torch.export program PyTorch can load ({reason})"
                         ) from None


def load_pt2(path: str | Path) -> tuple[nn.Module, ExportMetadata]:
    """A ``.pt2`` export: its program as a module and the metadata in its sidecar JSON."""
    return load_program(path), read_sidecar(path)
