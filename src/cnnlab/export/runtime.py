"""Exported ONNX files in ONNX Runtime: sessions, predictions for image files, bench steps.

The model runs in ONNX Runtime alone. Images are read and normalised by cnnlab's own pipeline
(`read_image`, `BatchTransform`), with the sizes and statistics stored in the file's metadata,
so a prediction is the one `cnnlab predict RUN` makes with the run's PyTorch model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.data.transforms import BatchTransform
from cnnlab.errors import MissingFileError, UsageError
from cnnlab.export.extra import require
from cnnlab.export.metadata import ExportMetadata
from cnnlab.train.evaluation import load_image


def inference_session(model: str | Path | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for an ONNX file (or its bytes); anything that is not an ONNX
    model is a UsageError. `threads` sets the intra-op threads (default: one per core)."""
    ort = require("onnxruntime", "running an ONNX model")
    if isinstance(model, bytes):
        name, source = "the exported model", model
    else:
        name, source = model, str(model)
        if not Path(model).is_file():
            raise MissingFileError(f"no ONNX file at {model}")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{name} is not an ONNX model ONNX Runtime can run ({reason})") from None


def session_runner(session):
    """A function from an (N, C, H, W) float tensor to the session's logits as a tensor."""
    name = session.get_inputs()[0].name

    def run(images: torch.Tensor) -> torch.Tensor:
        inputs = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {name: inputs})[0])

    return run


class OnnxPredictor:
    """An exported classifier: its metadata and top-k (class, probability) for image files."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        self.session = inference_session(path, threads)
        properties = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ExportMetadata.from_properties(properties, self.path)
        batch = self.session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) else None  # None: any batch size
        self.transform = BatchTransform(self.metadata.image_size, self.metadata.mean,
                                        self.metadata.std)
        self._run = session_runner(self.session)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits for uint8 (1, C, H, W) images of any size, converted as in training.

        A file exported for a fixed batch of B runs the image B times and keeps the first row.
        """
        inputs = self.transform(images)
        if self.batch is not None:
            inputs = inputs.expand(self.batch, *inputs.shape[1:])
        return self._run(inputs)[:1]

    def predict(self, images: list[str | Path], top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-k (class name, probability) for each image file, most likely first."""
        missing = [path for path in images if not Path(path).is_file()]
        if missing:
            raise MissingFileError(f"no image file at {missing[0]}")
        classes = self.metadata.classes
        top_k = min(top_k, len(classes))
        rankings = []
        for path in images:
            probs = self.logits(load_image(path, self.metadata.channels)).softmax(dim=1)[0]
            top = probs.topk(top_k)
            rankings.append([(classes[i], p) for p, i in zip(top.values.tolist(),
                                                             top.indices.tolist(), strict=True)])
        return rankings


def predict_onnx(path: str | Path, images: list[str | Path], top_k: int = 3
                 ) -> list[list[tuple[str, float]]]:
    """`cnnlab predict FILE.onnx IMAGE...`: top-k (class, probability) for each image."""
    return OnnxPredictor(path).predict(images, top_k)


def onnxruntime_step(model: torch.nn.Module, input_shape: tuple[int, int, int]):
    """A bench step running `model`, exported to ONNX with a dynamic batch, in ONNX Runtime.

    The export is checked against PyTorch on random inputs as `export_model` checks files; the
    session uses as many threads as PyTorch does, so the two runtimes are timed alike.
    """
    # deferred: the exporter checks its files with this module (a circle)
    from cnnlab.export.exporter import checked_export

    data, _ = checked_export(model, torch.randn(2, *input_shape), format="onnx")
    run = session_runner(inference_session(data, threads=torch.get_num_threads()))

    def step(X, y):
        run(X)

    return step
