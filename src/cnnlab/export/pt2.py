"""``.pt2`` files: `torch.export` programs saved by PyTorch, with cnnlab's metadata beside them."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.export.metadata import ExportMetadata, read_sidecar, sidecar_path
from cnnlab.files import write_bytes, write_text


def pt2_bytes(program: torch.export.ExportedProgram) -> bytes:
    """`program` serialised as the contents of a ``.pt2`` file."""
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def save_pt2(data: bytes, path: str | Path, metadata: ExportMetadata | None = None) -> None:
    """Write a serialised program and its metadata sidecar atomically; a failed write of the
    program removes the sidecar it had written, so neither is left alone."""
    path = Path(path)
    if metadata is not None:
        write_text(sidecar_path(path), json.dumps(metadata.to_dict(), indent=2) + "\n")
    try:
        write_bytes(path, data)
    except BaseException:
        sidecar_path(path).unlink(missing_ok=True)
        raise


def write_pt2(program: torch.export.ExportedProgram, path: str | Path,
              metadata: ExportMetadata | None = None) -> None:
    """Save `program` to `path` and `metadata` next to it (`sidecar_path`)."""
    save_pt2(pt2_bytes(program), path, metadata)


def load_program(source: str | Path | bytes) -> nn.Module:
    """The program in a ``.pt2`` file (or its bytes) as a callable module; other files are a
    UsageError."""
    if isinstance(source, bytes):
        name, opened = "the exported program", io.BytesIO(source)
    else:
        name = opened = Path(source)
        if not opened.is_file():
            raise MissingFileError(f"no .pt2 file at {opened}")
    if not zipfile.is_zipfile(opened):
        raise UsageError(f"{name} is not a torch.export program (.pt2 files are zip archives)")
    if isinstance(opened, io.BytesIO):
        opened.seek(0)  # is_zipfile has read it
    try:
        return torch.export.load(opened).module()
    except (RuntimeError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(f"{name} is not a torch.export program PyTorch can load ({reason})"
                         ) from None


def load_pt2(path: str | Path) -> tuple[nn.Module, ExportMetadata]:
    """A ``.pt2`` export: its program as a module and the metadata in its sidecar JSON."""
    return load_program(path), read_sidecar(path)
