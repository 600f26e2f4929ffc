"""Exporting a model to a file another program can run, checked against PyTorch before it is kept.

The model is captured once by `torch.export` (an ATen graph with the weights, and for a dynamic
batch a symbolic batch size). That program is either written as it is (``.pt2``) or handed to
PyTorch's ONNX exporter (``.onnx``). The file's contents are loaded back from memory, run on
the check batches (ONNX Runtime for ONNX, the reloaded program for ``.pt2``) and written (with
`cnnlab.files`' atomic write) only when their logits equal the eager model's within `atol`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.export.metadata import ExportMetadata
from cnnlab.export.onnx import onnx_bytes
from cnnlab.export.pt2 import load_program, pt2_bytes, save_pt2
from cnnlab.export.runtime import inference_session, session_runner
from cnnlab.files import write_bytes

FORMATS = ("onnx", "pt2")
ATOL = 1e-4
"""Largest absolute difference allowed between the exported model's logits and PyTorch's."""


class ExportMismatch(RuntimeError):
    """The exported file computes other logits than the model it came from (nothing is kept)."""


@dataclass(frozen=True)
class ExportResult:
    """A checked export: the file (None while in memory), its format, batch (an int or
    "dynamic"), ONNX opset (None for ``.pt2``), the batch sizes it was run at, its largest logit
    difference from PyTorch and the tolerance that difference was held to."""

    path: Path | None
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


def _target(path: str | Path, format: str) -> Path:
    """Where an export goes: a new file named for its format (its folder is made if need be)."""
    check_format(format)
    path = Path(path)
    if path.suffix != f".{format}":
        raise UsageError(f"{path} does not end in .{format}; name the {format} file FILE.{format}")
    if path.exists():
        raise UsageError(f"{path} exists and is kept; remove it or choose another output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_format(format: str) -> None:
    if format not in FORMATS:
        raise UsageError(f"export format {format!r} is unknown; use onnx or pt2")


def checked_export(model: nn.Module, example_input: torch.Tensor, *, format: str = "onnx",
                   metadata: ExportMetadata | None = None, batch: int | str = "dynamic",
                   opset: int | None = None, atol: float = ATOL) -> tuple[bytes, ExportResult]:
    """The exported file's contents, run (from memory) and compared with `model`, and the result
    of that check (its `path` is None); ExportMismatch if the logits differ by more than `atol`."""
    check_format(format)
    if format == "pt2" and opset is not None:
        raise UsageError("--opset applies to ONNX files only; drop it for --format pt2")
    program = trace_program(model, example_input, batch)
    batches = check_batches(example_input, batch)
    with torch.no_grad():
        expected = [model(images) for images in batches]
    if format == "onnx":
        data, opset = onnx_bytes(program, metadata, opset)
        run = session_runner(inference_session(data))
    else:
        data = pt2_bytes(program)
        run = load_program(data)
    error = max_difference(run, batches, expected)
    sizes = tuple(len(images) for images in batches)
    if not error <= atol:  # NaN fails too
        raise ExportMismatch(
            f"the exported {format} model's logits differ from PyTorch's by up to {error:.2g} "
            f"(tolerance {atol:g}) on batches of {', '.join(map(str, sizes))}; no file was "
            "written")
    return data, ExportResult(None, format, batch, opset, sizes, error, atol)


def export_model(model: nn.Module, path: str | Path, *, example_input: torch.Tensor,
                 metadata: ExportMetadata | None = None, format: str = "onnx",
                 batch: int | str = "dynamic", opset: int | None = None,
                 atol: float = ATOL) -> ExportResult:
    """Export `model` (set to evaluation mode) to `path`, checked against it before it is kept.

    `example_input` is a batch of real, normalised (N, C, H, W) inputs: the program is traced on
    it and must reproduce the model's logits on it (and on one image, for a dynamic batch) within
    `atol`, else ExportMismatch is raised and nothing is written. `opset` picks the ONNX operator
    set (default: the exporter's). A ``.pt2`` program gets its metadata in a sidecar JSON.
    """
    path = _target(path, format)
    data, result = checked_export(model, example_input, format=format, metadata=metadata,
                                  batch=batch, opset=opset, atol=atol)
    if format == "onnx":
        write_bytes(path, data)
    else:
        save_pt2(data, path, metadata)
    return replace(result, path=path)


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
