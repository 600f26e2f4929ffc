"""Training: the configuration, the Trainer, run directories, checkpoints and rebuilt runs."""

from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.train.config import TrainConfig, resolve_config
from cnnlab.train.device import resolve_device
from cnnlab.train.history import History
from cnnlab.train.trainer import Trainer

__all__ = ["History", "TrainConfig", "Trainer", "load_checkpoint", "resolve_config",
           "resolve_device", "save_checkpoint"]
