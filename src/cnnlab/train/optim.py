"""The optimiser and the learning-rate schedule: minibatch SGD (d2l 12.4), Adam or AdamW, with a
linear warm-up and then a constant, cosine or one-cycle rate (d2l 12.11)."""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnlab.train.settings import OPTIMIZERS

OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
"""The optimiser of each name in `OPTIMIZERS`."""
if tuple(OPTIMIZER_CLASSES) != OPTIMIZERS:
    raise ImportError(f"the optimiser table names {', '.join(OPTIMIZER_CLASSES)}, but the "
                      f"settings allow {', '.join(OPTIMIZERS)}")
FUSED_DEVICES = ("cpu", "cuda")


def make_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                   weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Optimizer:
    """The named optimiser over the model's parameters, fused where PyTorch has the kernel.

    The fused update reads and writes each parameter once per step instead of once per
    operation (same arithmetic); it needs floating-point parameters on the CPU or a GPU.
    `fused=False` gives PyTorch's default implementation.
    """
    params = list(model.parameters())
    fused = fused and bool(params) and all(
        p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)
    extra = {"momentum": momentum} if name == "sgd" else {}
    return OPTIMIZER_CLASSES[name](params, lr=lr, weight_decay=weight_decay,
                                   fused=fused or None, **extra)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base lr at ``step``: linear warm-up, then constant, cosine or one-cycle."""
    if schedule == "onecycle" and warmup == 0:
        warmup = max(1, int(0.3 * total))
    floor = 1 / 25 if schedule == "onecycle" else 0.0
    if step < warmup:
        return floor + (1 - floor) * (step + 1) / warmup
    if schedule == "none":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_schedule(optimizer: torch.optim.Optimizer, schedule: str, epochs: int, warmup: float,
                  steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The `schedule` over `epochs`, stepped once per batch after `warmup` epochs of linear
    warm-up."""
    total = epochs * steps_per_epoch
    warmup_steps = round(warmup * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup_steps, schedule))
