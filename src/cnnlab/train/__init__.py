"""Training: the Trainer, run directories, checkpoints, and the train/eval/predict commands."""

from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.train.trainer import History, Trainer, resolve_device

__all__ = ["History", "Trainer", "load_checkpoint", "resolve_device", "save_checkpoint"]
