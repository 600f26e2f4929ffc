"""`cnnlab export RUN`: a trained run's model as an ONNX file or a ``.pt2`` program."""

from __future__ import annotations

from pathlib import Path

from cnnlab.export.exporter import FORMATS, ExportResult, export_model
from cnnlab.export.metadata import ExportMetadata
from cnnlab.train.runs import data_from_record, load_trained

CHECK_IMAGES = 8
"""Test images the exported file must classify with PyTorch's logits before it is kept."""


def export_run(run: str | Path, out: str | Path | None = None, *, format: str | None = None,
               batch: int | str = "dynamic", opset: int | None = None,
               data_dir: str | None = None) -> ExportResult:
    """Export the model of a run directory or checkpoint, checked on its first test images.

    The format defaults to the one `out` is named for, else ONNX; the file goes to `out`, by
    default next to the checkpoint (``last.pt`` -> ``last.onnx``).
    `data_dir` is where the run's Fashion-MNIST files are now, if they moved.
    """
    if format is None:
        suffix = Path(out).suffix[1:] if out is not None else ""
        format = suffix if suffix in FORMATS else "onnx"
    model, record, checkpoint = load_trained(run, "cpu")
    data = data_from_record(record["data"], data_dir)
    images = data.transform(data.test[0][:CHECK_IMAGES])
    path = Path(out) if out is not None else checkpoint.with_suffix(f".{format}")
    return export_model(model, path, example_input=images, metadata=ExportMetadata.from_record(
        record), format=format, batch=batch, opset=opset)
