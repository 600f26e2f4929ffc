"""The learning-rate range test (Smith, 2017): a few hundred training steps while the rate grows
exponentially, and the smoothed loss read against it.

The loss stays flat while the rate is too small, falls once it is large enough, and blows up
when it is too large. The suggestion is a tenth of the rate where the smoothed loss is lowest:
there the loss still falls steadily, well clear of the blow-up. The model's weights and buffers,
its training mode, an optimiser passed in and the random-number states are all restored.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.train.checkpoint import rng_state, set_rng_state
from cnnlab.train.config import TrainConfig
from cnnlab.train.device import resolve_device
from cnnlab.train.optim import make_optimizer
from cnnlab.train.runs import build_model, make_data
from cnnlab.train.runtime import Runtime, decide_runtime, forward


@dataclass(frozen=True)
class LRFinderResult:
    """The range test's curve: each step's rate, smoothed and raw loss, and its reading."""

    lrs: list[float]
    losses: list[float]
    """The loss smoothed by an exponential moving average (bias-corrected)."""
    raw_losses: list[float]
    lowest: float
    """The rate at which the smoothed loss is lowest."""
    blowup: float | None
    """The rate at which the loss became non-finite or grew past `diverge` times its minimum
    (None: it never did within the range)."""

    @property
    def suggestion(self) -> float:
        """The suggested rate: a tenth of the rate with the lowest smoothed loss."""
        return self.lowest / 10

    def __str__(self) -> str:
        blowup = (f"the loss blew up at lr {self.blowup:.3g}" if self.blowup is not None else
                  f"the loss never blew up up to lr {self.lrs[-1]:.3g}")
        return (f"suggested lr {self.suggestion:.3g} (a tenth of {self.lowest:.3g}, where the "
                f"smoothed loss is lowest); {blowup}")

    def plot(self):
        """Smoothed (and raw) loss against the rate on a log axis, the two rates marked."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.5, 4))
        ax = fig.subplots()
        ax.plot(self.lrs, self.raw_losses, color="0.75", linewidth=0.8, label="loss")
        ax.plot(self.lrs, self.losses, color="C0", label="smoothed loss")
        ax.axvline(self.suggestion, color="C2", linestyle="--",
                   label=f"suggested {self.suggestion:.3g}")
        if self.blowup is not None:
            ax.axvline(self.blowup, color="C3", linestyle=":", label=f"blow-up {self.blowup:.3g}")
        finite = [v for v in self.raw_losses if math.isfinite(v)]
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 2.5 * self.losses[0]) * 1.05)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig


def _batches(loader):
    """The loader's batches, epoch after epoch, for as long as they are asked for."""
    epoch = 0
    while True:
        yield from loader.iterate(epoch)
        epoch += 1


def lr_find(model: nn.Module, data, start_lr: float = 1e-5, end_lr: float = 10.0,
            steps: int = 200, optimizer: torch.optim.Optimizer | str = "sgd",
            momentum: float = 0.0, weight_decay: float = 0.0, smoothing: float = 0.95,
            diverge: float = 4.0, runtime: Runtime | None = None) -> LRFinderResult:
    """Run the range test on `model` with `data`'s training batches; see the module docstring.

    `optimizer` is an optimiser over the model's parameters (its state is restored) or the name
    of one to make (``sgd``, ``adam``, ``adamw``) with `momentum` and `weight_decay`. Steps run
    as `runtime` says (mixed precision, memory format; default plain fp32), as training's do.
    """
    if not 0 < start_lr < end_lr or steps < 10:
        raise UsageError(f"lr-find needs 0 < start < end and at least 10 steps, got start "
                         f"{start_lr:g}, end {end_lr:g}, steps {steps}")
    device = next(model.parameters()).device
    saved_model = copy.deepcopy(model.state_dict())
    saved_rng, was_training = rng_state(), model.training
    if isinstance(optimizer, str):
        optimizer, saved_optimizer = make_optimizer(model, optimizer, start_lr, momentum,
                                                    weight_decay), None
    else:
        saved_optimizer = copy.deepcopy(optimizer.state_dict())
    try:
        model.train()
        lrs, raw, smoothed = _range_test(model, optimizer, _batches(data.train_dataloader()),
                                         device, runtime or Runtime(), start_lr, end_lr, steps,
                                         smoothing, diverge)
    finally:
        model.load_state_dict(saved_model)
        model.train(was_training)
        if saved_optimizer is not None:
            optimizer.load_state_dict(saved_optimizer)
        set_rng_state(saved_rng)
    blowup = lrs[-1] if len(lrs) < steps else None
    return LRFinderResult(lrs, smoothed, raw, lrs[int(np.nanargmin(smoothed))], blowup)


def _range_test(model, optimizer, batches, device, runtime, start_lr, end_lr, steps, smoothing,
                diverge) -> tuple[list[float], list[float], list[float]]:
    """Train one batch per rate; stop at a non-finite loss or one past `diverge` x the minimum."""
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs, raw, smoothed = [], [], []
    average, lowest = 0.0, math.inf
    scaler = runtime.scaler(device)
    for step in range(steps):
        lr = start_lr * growth ** step
        for group in optimizer.param_groups:
            group["lr"] = lr
        X, y = next(batches)
        loss = F.cross_entropy(forward(model, X.to(device), device, runtime).float(), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = loss.item()
        lrs.append(lr)
        raw.append(value)
        if not math.isfinite(value):
            smoothed.append(smoothed[-1] if smoothed else value)
            break
        average = smoothing * average + (1 - smoothing) * value
        smoothed.append(average / (1 - smoothing ** (step + 1)))
        if smoothed[-1] > diverge * lowest:
            break
        lowest = min(lowest, smoothed[-1])
    return lrs, raw, smoothed


def lr_find_run(config: TrainConfig, start_lr: float = 1e-5, end_lr: float = 10.0,
                steps: int = 200) -> LRFinderResult:
    """The range test of the configuration's model on its data, device and optimiser, its steps
    run on the threads, in the precision and the memory format that training would decide."""
    device = resolve_device(config.device)
    data = make_data(config)
    model = build_model(config, data)
    _, runtime = decide_runtime(config, model, data, device)
    data, model = data.to(device), model.to(device, memory_format=runtime.memory_format)
    return lr_find(model, data, start_lr, end_lr, steps, config.optimizer, config.momentum,
                   config.weight_decay, runtime=runtime)
