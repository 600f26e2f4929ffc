"""Trained models out of Python: ONNX files and `torch.export` programs, checked against PyTorch.

ONNX export and ONNX Runtime need the optional extra (``pip install 'cnnlab[export]'``); ``.pt2``
programs need PyTorch alone.
"""

from cnnlab.export.exporter import (
    ATOL,
    FORMATS,
    ExportMismatch,
    ExportResult,
    checked_export,
    export_model,
    trace_program,
)
from cnnlab.export.metadata import ExportMetadata
from cnnlab.export.onnx import write_onnx
from cnnlab.export.pt2 import load_program, load_pt2, write_pt2
from cnnlab.export.run import export_run
from cnnlab.export.runtime import OnnxPredictor, inference_session, predict_onnx

__all__ = ["ATOL", "FORMATS", "ExportMetadata", "ExportMismatch", "ExportResult",
           "OnnxPredictor", "checked_export", "export_model", "export_run", "inference_session",
           "load_program", "load_pt2", "predict_onnx", "trace_program", "write_onnx", "write_pt2"]
