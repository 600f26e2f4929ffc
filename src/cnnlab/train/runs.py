"""Runs as the command line sees them: start one from a TrainConfig, resume one, rebuild one.

A run records its model spec and its whole TrainConfig in ``config.json`` and in every
checkpoint; `eval`, `predict` and ``--resume`` rebuild the model from that record, never from the
name alone. Runs written before specs existed record only the model's name: they read as its
default spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.data import FashionMNIST, ImageFolder, from_description
from cnnlab.errors import MissingFileError, UsageError
from cnnlab.models import create_model
from cnnlab.models.build import build_for_input
from cnnlab.train.checkpoint import load_checkpoint, load_weights
from cnnlab.train.config import TrainConfig
from cnnlab.train.history import History
from cnnlab.train.rundir import CONFIG, LAST, RunDir, default_run_path, model_spec, recorded_config
from cnnlab.train.trainer import Trainer

RESUMABLE = ("epochs", "device")
"""Training settings that may change when a run is resumed; the rest come from its record."""


def make_data(config: TrainConfig):
    """The data module a configuration trains on (Fashion-MNIST or an image folder)."""
    common = {"batch_size": config.batch_size, "val_fraction": config.val_fraction,
              "augment": None if config.augment == "none" else config.augment,
              "seed": config.seed, "subset": config.subset}
    if config.data == "fashion-mnist":
        return FashionMNIST(resize=config.resize, root=config.data_dir, **common)
    return ImageFolder(config.data, size=config.resize, **common)


def build_model(config: TrainConfig, data) -> nn.Module:
    """The configuration's model, fitted to the data's classes, channels and side."""
    torch.manual_seed(config.seed)
    return build_for_input(config.model, (data.in_channels, data.image_size, data.image_size),
                           num_classes=data.num_classes)


def start_run(config: TrainConfig, out: str | Path | None = None,
              progress: bool = True) -> tuple[History, Path]:
    """Train a new run of `config` into `out` (default ``runs/<model>-<time>``)."""
    data = make_data(config)
    model = build_model(config, data)
    out = Path(out) if out is not None else default_run_path(model.cnnlab_name)
    history = Trainer(config, progress=progress).fit(model, data, out=out)
    return history, out


def resume_run(run: str | Path, progress: bool = True, data_dir: str | None = None,
               **changes) -> History:
    """Continue the run in `run` from its ``last.pt``; only `epochs` and `device` may change."""
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        raise UsageError(f"--resume continues a run with its own settings; "
                         f"{', '.join(fixed)} cannot change on a live run (only "
                         f"{', '.join(RESUMABLE)} can)")
    record = RunDir.open(run).read_config()
    config = recorded_config(record, Path(run) / CONFIG)
    config = config.replace(**{k: v for k, v in changes.items() if v is not None})
    data = data_from_record(record["data"], data_dir)
    model = build_model(config, data)  # as the run began: a run killed before its first
    # checkpoint starts again from the same initial weights
    return Trainer(config, progress=progress).fit(model, data, out=run, resume=True)


def data_from_record(record: dict, data_dir: str | None = None):
    """The data module a run trained on, rebuilt from its record (Fashion-MNIST may move)."""
    description = dict(record["args"])
    if data_dir is not None and description["kind"] == FashionMNIST.kind:
        description["root"] = data_dir
    return from_description(description)


def model_from_record(record: dict, source: Path | str = "config.json") -> nn.Module:
    """A fresh model with a run's architecture: its spec, fitted to the recorded data shape."""
    if "name" not in record:
        raise UsageError(f"{source} names no model; was it written by `cnnlab train`?")
    shape = {key: record[key] for key in ("num_classes", "in_channels", "input_size")
             if key in record}
    return create_model(model_spec(record), **shape)


def checkpoint_path(run: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``last.pt``."""
    path = Path(run)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise MissingFileError(f"no run or checkpoint at {run} (expected a run directory "
                               f"with {LAST}, or a .pt file)")
    return path


@dataclass
class TrainedRun:
    """A trained model rebuilt from its run: the model, its run record and checkpoint file."""

    model: nn.Module
    record: dict
    path: Path

    @property
    def config(self) -> TrainConfig:
        return recorded_config(self.record, self.path)

    def __iter__(self):
        """Unpacks as ``model, record, path``."""
        return iter((self.model, self.record, self.path))


def load_trained(run: str | Path, device: torch.device | str = "cpu") -> TrainedRun:
    """The trained model of a run directory or checkpoint, in evaluation mode on `device`."""
    path = checkpoint_path(run)
    state = load_checkpoint(path)
    record = state.get("config")
    if not record:
        raise UsageError(f"{path} holds no run config; was it written by `cnnlab train`?")
    model = model_from_record(record["model"], path)
    load_weights(model, state["model"], path)
    return TrainedRun(model.to(device).eval(), record, path)
