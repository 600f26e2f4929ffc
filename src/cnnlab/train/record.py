"""The run record: what ``config.json`` keeps, so that a run can be repeated and rebuilt."""

from __future__ import annotations

import platform

import torch
from torch import nn

from cnnlab.models.spec import ModelSpec
from cnnlab.train.settings import TrainConfig
from cnnlab.version import __version__


def model_record(model: nn.Module, data) -> dict:
    """What rebuilds ``model``: its spec and the arguments that fit it to the data."""
    spec = getattr(model, "cnnlab_spec", None)
    if spec is None:
        return {"name": type(model).__name__}
    spec = ModelSpec.parse(spec)
    record = {"name": spec.name, "spec": str(spec.design), "num_classes": data.num_classes,
              "in_channels": data.in_channels}
    if hasattr(model, "input_size"):
        record["input_size"] = model.input_size
    return record


def versions() -> dict:
    """The versions of cnnlab, torch and Python that ran."""
    return {"cnnlab": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def run_record(model: nn.Module, data, config: TrainConfig, world_size: int) -> dict:
    """Everything needed to repeat the run or rebuild its model and input conversion."""
    return {
        "model": model_record(model, data),
        "data": {"args": data.describe(), "classes": list(data.classes),
                 "train_images": len(data.train[1]),
                 "image_size": data.image_size, "in_channels": data.in_channels,
                 "mean": list(data.mean), "std": list(data.std)},
        "train": config.to_dict(),
        "world_size": world_size,
        "versions": versions(),
    }
