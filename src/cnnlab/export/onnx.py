"""ONNX files from `torch.export` programs, through PyTorch's ONNX exporter (onnxscript)."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.errors import UsageError
from cnnlab.export.extra import require
from cnnlab.export.metadata import ExportMetadata
from cnnlab.files import write_bytes

INPUT, OUTPUT = "images", "logits"
"""The names of the graph's input (N, C, H, W normalised images) and output (N, classes)."""

MIN_OPSET = 18
"""The oldest operator set the exporter writes natively (older ones need a lossy conversion)."""


def opset_range() -> tuple[int, int]:
    """The operator sets an export may ask for: the exporter's oldest to the newest onnx knows."""
    onnx = require("onnx", "exporting to ONNX")
    return MIN_OPSET, onnx.defs.onnx_opset_version()


def check_opset(opset: int | None) -> None:
    """A UsageError unless `opset` is None (the exporter's default) or in `opset_range`."""
    if opset is None:
        return
    low, high = opset_range()
    if not low <= opset <= high:
        raise UsageError(f"opset {opset} is not available; choose one from {low} to {high} "
                         "(or leave --opset out for the exporter's default)")


def onnx_bytes(program: torch.export.ExportedProgram, metadata: ExportMetadata | None = None,
               opset: int | None = None) -> tuple[bytes, int]:
    """`program` as a serialised ONNX model with `metadata` as its properties, and its opset."""
    require("onnxscript", "exporting to ONNX")
    check_opset(opset)
    onnx_program = torch.onnx.export(program, dynamo=True, opset_version=opset,
                                     input_names=[INPUT], output_names=[OUTPUT], verbose=False)
    written = onnx_program.model.opset_imports[""]
    if opset is not None and written != opset:
        raise UsageError(f"the exporter could not convert the model to opset {opset} (it wrote "
                         f"{written}); choose an opset from {MIN_OPSET} up")
    if metadata is not None:
        onnx_program.model.metadata_props.update(metadata.to_properties())
    return onnx_program.model_proto.SerializeToString(), written


def write_onnx(program: torch.export.ExportedProgram, path: str | Path,
               metadata: ExportMetadata | None = None, opset: int | None = None) -> int:
    """Write `program` as one ONNX file (atomically) with `metadata`; return its opset."""
    data, written = onnx_bytes(program, metadata, opset)
    write_bytes(path, data)
    return written
