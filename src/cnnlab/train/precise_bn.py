"""Precise batch norm (fvcore's PreciseBN): with the weights frozen, each batch-norm layer's running
mean and variance become the exact statistics of its inputs over a set of training images."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from cnnlab.data.loader import BatchLoader, generator
from cnnlab.scratch.batchnorm import BatchNorm
from cnnlab.train.distributed import all_reduce_sum, global_sums
from cnnlab.train.runtime import Runtime, forward


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of `model` with running statistics: torch's batch norms (subclasses included)
    that track them, and `cnnlab.scratch.BatchNorm`."""
    return [m for m in model.modules() if isinstance(m, BatchNorm)
            or isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None]


def _running_stats(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch-norm layer's running mean and running variance buffers."""
    if isinstance(layer, BatchNorm):
        return layer.moving_mean, layer.moving_var
    return layer.running_mean, layer.running_var


class _Moments:
    """A forward pre-hook summing a layer's inputs per channel: count, sum and sum of squares,
    each value less the first batch's mean (so the variance loses nothing to cancellation)."""

    def __init__(self):
        self.count = 0
        self.shift = self.sum = self.squares = None

    def __call__(self, module: nn.Module, args: tuple) -> None:
        x = args[0].float()
        dims = [0, *range(2, x.ndim)]
        if self.shift is None:
            self.shift = x.mean(dims)
            self.sum, self.squares = torch.zeros_like(self.shift), torch.zeros_like(self.shift)
        centred = x - self.shift.view(-1, *[1] * (x.ndim - 2))
        self.sum += centred.sum(dims)
        self.squares += centred.square().sum(dims)
        self.count += x.numel() // x.shape[1]

    def mean_and_variance(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The mean and unbiased variance of every rank's inputs together (Chan's merge of the
        ranks' counts, means and squared deviations); None when no rank saw an input."""
        count = global_sums([self.count], like.device)[0]
        if count == 0:
            return None
        mean = spread = torch.zeros_like(like, dtype=torch.float32)
        if self.count:
            mean = self.shift + self.sum / self.count
            spread = self.squares - self.sum.square() / self.count
        overall = all_reduce_sum(mean * self.count) / count
        spread = all_reduce_sum(spread + self.count * (mean - overall).square())
        return overall, spread / (count - 1)


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: Iterable, runtime: Runtime | None = None
                        ) -> None:
    """Each batch-norm layer's running mean and variance set to the exact mean and unbiased
    variance of its inputs over the (X, y) `batches`, run with only batch norms in train mode."""
    layers = batchnorm_layers(model)
    if not layers:
        return
    runtime = runtime or Runtime()
    modes = {module: module.training for module in model.modules()}
    saved = [{name: buffer.clone() for name, buffer in layer.named_buffers(recurse=False)}
             for layer in layers]
    moments = [_Moments() for _ in layers]
    hooks = [layer.register_forward_pre_hook(m) for layer, m in zip(layers, moments, strict=True)]
    try:
        model.eval()
        for layer in layers:
            layer.train()
        for X, _ in batches:
            forward(model, X, X.device, runtime)
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training
        for layer, buffers in zip(layers, saved, strict=True):  # undo the layers' own updates
            for name, buffer in layer.named_buffers(recurse=False):
                buffer.copy_(buffers[name])
    for layer, m in zip(layers, moments, strict=True):
        running_mean, running_var = _running_stats(layer)
        stats = m.mean_and_variance(running_mean)
        if stats is not None:
            running_mean.copy_(stats[0])
            running_var.copy_(stats[1])


def training_sample(data, count: int) -> BatchLoader:
    """The first `count` training images (all, when there are fewer) in an order drawn from the
    data's seed alone, unaugmented, in batches of the training batch size (this rank's share)."""
    images, labels = data.train
    order = torch.randperm(len(labels), generator=generator("precise-bn", data.seed))[:count]
    order = order.to(images.device)
    return BatchLoader(images.index_select(0, order), labels.index_select(0, order),
                       data.pipeline, data.batch_size, shuffle=False, augment=False,
                       seed=data.seed, rank=data.rank, world_size=data.world_size)


class RunEvaluations:
    """A run's evaluations: each epoch's on the validation split (else the test split), then the
    test split's; with `count` > 0, precise batch norm over that many images before each."""

    def __init__(self, model: nn.Module, data, count: int,
                 evaluate: Callable[[nn.Module, BatchLoader], tuple[float, float]],
                 runtime: Runtime):
        self.model, self.runtime, self._evaluate = model, runtime, evaluate
        self.batches = training_sample(data, count) if count else None
        self.val_loader, self.test_loader = data.val_dataloader(), data.test_dataloader()
        self.split = "test" if self.val_loader is None else "val"
        self.epoch_loader = self.test_loader if self.val_loader is None else self.val_loader
        self.plain: dict = {}
        """The final model's plain test loss and accuracy, measured before its recomputation."""

    def epoch(self, last: bool) -> tuple[float, float]:
        """Loss and accuracy on `split` after the recomputation; on the `last` epoch the plain
        model is first measured on the test split."""
        if self.batches is not None:
            if last:
                loss, acc = self._evaluate(self.model, self.test_loader)
                self.plain = {"plain_test_loss": loss, "plain_test_acc": acc}
            recompute_batchnorm(self.model, self.batches, self.runtime)
        return self._evaluate(self.model, self.epoch_loader)

    def test(self, last_row: dict) -> tuple[float, float]:
        """The final test loss and accuracy: the last epoch's when it measured the test split
        (the weights and statistics are as they were then)."""
        if self.val_loader is None:
            return last_row["val_loss"], last_row["val_acc"]
        return self._evaluate(self.model, self.test_loader)
