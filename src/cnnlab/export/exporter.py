"""Exporting a model to a file another program can run, checked against PyTorch before it is kept.

The model is captured once by `torch.export` (an ATen graph with the weights, and for a dynamic
batch a symbolic batch size). That program is either written as it is (``.pt2``) or handed to
PyTorch's ONNX exporter (``.onnx``). The file is written under a temporary name in the target
folder, loaded back, run on the check batches (ONNX Runtime for ONNX, the loaded program for
``.pt2``) and renamed into place only when its logits equal the eager model's within `atol`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.export.metadata import ExportMetadata, sidecar_path
from cnnlab.export.onnx import write_onnx
from cnnlab.export.pt2 import load_program, write_pt2
from cnnlab.export.runtime import inference_session, session_runner

FORMATS = ("onnx", "pt2")
ATOL = 1e-4
"""Largest absolute difference allowed between the exported model's logits and PyTorch's."""


class ExportMismatch(RuntimeError):
    """The exported file computes other logits than the model it came from (nothing is kept)."""


@dataclass(frozen=True)
class ExportResult:
    """A checked export: the file, its format, batch (an int or "dynamic"), ONNX opset (None for
    ``.pt2``), the batch sizes it was run at, its largest logit difference from PyTorch and the
    tolerance that difference was held to."""

    path: Path
    format: str
    batch: int | str
    opset: int | None
    checked_batches: tuple[int, ...]
    max_error: float
    atol: float


def check_batch(batch: int | str) -> int | str:
    """``"dynamic"`` or a positive batch size; anything else is a UsageError."""
    if batch == "dynamic" or (isinstance(batch, int) and not isinstance(batch, bool) and batch > 0):
        return batch
    raise UsageError(f"batch {batch!r} is not valid; use 'dynamic' (any batch size) or a "
                     "positive integer")


def tiled(images: torch.Tensor, n: int) -> torch.Tensor:
    """`n` images: the first `n` of `images`, repeated from the start when there are fewer."""
    repeats = -(-n // len(images))
    return images.repeat(repeats, *([1] * (images.dim() - 1)))[:n]


def trace_program(model: nn.Module, example_input: torch.Tensor,
                  batch: int | str = "dynamic") -> torch.export.ExportedProgram:
    """`model` in evaluation mode captured by `torch.export` on (N, C, H, W) inputs: any N for
    ``"dynamic"`` (traced at two or more images, since a batch of 1 would be specialised)."""
    batch = check_batch(batch)
    if example_input.dim() != 4 or not example_input.is_floating_point():
        raise UsageError(f"the example input must be a float (N, C, H, W) batch, got "
                         f"{example_input.dtype} {tuple(example_input.shape)}")
    model.eval()
    if batch == "dynamic":
        example = tiled(example_input, max(2, len(example_input)))
        shapes = ({0: torch.export.Dim("batch", min=1)},)
    else:
        example, shapes = tiled(example_input, batch), None
    return torch.export.export(model, (example,), dynamic_shapes=shapes)


def check_batches(example_input: torch.Tensor, batch: int | str) -> list[torch.Tensor]:
    """The batches an export is checked on: the example and a single image for a dynamic batch,
    the example tiled to the batch size for a fixed one."""
    if batch == "dynamic":
        return [example_input, example_input[:1]] if len(example_input) > 1 else [example_input]
    return [tiled(example_input, batch)]


@contextmanager
def staged(*paths: Path) -> Iterator[list[Path]]:
    """Temporary files next to `paths`, moved over them (flushed to disk) when the block ends
    normally, and deleted when it raises: a failed export leaves nothing behind."""
    temporaries = [path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
                   for path in paths]  # the suffix kept: loaders go by it
    try:
        yield temporaries
        for temporary, path in zip(temporaries, paths, strict=True):
            with open(temporary, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def _target(path: str | Path, format: str) -> list[Path]:
    """The files an export writes (the model, and the sidecar of a ``.pt2`` with metadata)."""
    if format not in FORMATS:
        raise UsageError(f"export format {format!r} is unknown; use onnx or pt2")
    path = Path(path)
    if path.suffix != f".{format}":
        raise UsageError(f"{path} does not end in .{format}; name the {format} file FILE.{format}")
    if path.exists():
        raise UsageError(f"{path} exists and is kept; remove it or choose another output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return [path]


def export_model(model: nn.Module, path: str | Path, *, example_input: torch.Tensor,
                 metadata: ExportMetadata | None = None, format: str = "onnx",
                 batch: int | str = "dynamic", opset: int | None = None,
                 atol: float = ATOL) -> ExportResult:
    """Export `model` (set to evaluation mode) to `path` and check the file against it.

    `example_input` is a batch of real, normalised (N, C, H, W) inputs: the program is traced on
    it and the file must reproduce the model's logits on it (and on one image, for a dynamic
    batch) within `atol`, else ExportMismatch is raised and no file is left. `opset` picks the
    ONNX operator set (default: the exporter's).
    """
    paths = _target(path, format)
    if format == "pt2" and opset is not None:
        raise UsageError("--opset applies to ONNX files only; drop it for --format pt2")
    if metadata is not None and format == "pt2":
        paths.append(sidecar_path(paths[0]))
    program = trace_program(model, example_input, batch)
    batches = check_batches(example_input, batch)
    with torch.no_grad():
        expected = [model(images) for images in batches]
    with staged(*paths) as temporaries:
        if format == "onnx":
            opset = write_onnx(program, temporaries[0], metadata, opset)
            run = session_runner(inference_session(temporaries[0]))
        else:
            write_pt2(program, temporaries[0], metadata, *temporaries[1:])
            run = load_program(temporaries[0])
        error = max_difference(run, batches, expected)
        if not error <= atol:  # NaN fails too
            raise ExportMismatch(
                f"the exported {format} model's logits differ from PyTorch's by up to {error:.2g} "
                f"(tolerance {atol:g}) on batches of {', '.join(str(len(b)) for b in batches)}; "
                "no file was written")
    return ExportResult(paths[0], format, batch, opset, tuple(len(b) for b in batches), error,
                        atol)


@torch.no_grad()
def max_difference(run, batches: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """The largest absolute difference between `run(batch)` and the expected logits."""
    errors = []
    for images, logits in zip(batches, expected, strict=True):
        got = run(images)
        if got.shape != logits.shape:
            return float("inf")
        errors.append((got.float() - logits.float()).abs().max())
    return float(torch.stack(errors).max())  # NaN if any difference is NaN
