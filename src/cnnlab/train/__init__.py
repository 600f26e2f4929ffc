"""Training: the configuration, the Trainer, run directories, checkpoints and rebuilt runs."""

from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.train.config import TrainConfig, resolve_config
from cnnlab.train.trainer import History, Trainer, resolve_device

__all__ = ["History", "TrainConfig", "Trainer", "load_checkpoint", "resolve_config",
           "resolve_device", "save_checkpoint"]
