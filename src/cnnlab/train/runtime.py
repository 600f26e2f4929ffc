"""How training steps run on this machine: in mixed precision or not, channels-last or not, each
``auto`` setting decided by what the device computes natively and by a few timed probe steps."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.train.autotune import TrainingStepProbe, decide_amp, decide_channels_last
from cnnlab.train.distributed import global_sums
from cnnlab.train.settings import TrainConfig
from cnnlab.train.threads import use_threads


@dataclass(frozen=True)
class Runtime:
    """How steps run on this machine, once the ``auto`` settings are decided."""

    amp: bool = False
    amp_dtype: torch.dtype = torch.bfloat16
    channels_last: bool = False
    tta_flip: bool = False

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device) -> Runtime:
        """The explicit switches of `config`; ``auto`` counts as off (see `decide_runtime`)."""
        dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
        return cls(config.amp == "on", dtype, config.channels_last == "on", config.tta_flip)

    @classmethod
    def recorded(cls, config: TrainConfig, device: torch.device) -> Runtime:
        """The runtime a run trained with: its switches and the decisions it recorded."""
        runtime = cls.from_config(config, device)
        decided = {key: value.get("enabled") for key, value in config.decisions.items()}
        if config.decisions.get("amp", {}).get("amp_dtype"):
            runtime = dataclasses.replace(
                runtime, amp_dtype=getattr(torch, config.decisions["amp"]["amp_dtype"]))
        return dataclasses.replace(runtime, amp=decided.get("amp", runtime.amp),
                                   channels_last=decided.get("channels_last",
                                                             runtime.channels_last))

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format the model's weights take on the device."""
        return torch.channels_last if self.channels_last else torch.preserve_format

    def scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for float16 autocast (whose small gradients underflow)."""
        return torch.amp.GradScaler(device.type,
                                    enabled=self.amp and self.amp_dtype == torch.float16)


def forward(model: nn.Module, X: torch.Tensor, device: torch.device,
            runtime: Runtime) -> torch.Tensor:
    """The model's output on a batch, in the runtime's memory format and precision."""
    if runtime.channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=runtime.amp_dtype, enabled=runtime.amp):
        return model(X)


def training_module(model: nn.Module, device: torch.device, data_parallel: bool,
                    compiled: bool) -> nn.Module:
    """What the training steps call: `model`, wrapped to average the gradients of several
    processes when `data_parallel`, then compiled by torch.compile when `compiled`."""
    if data_parallel:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return torch.compile(model) if compiled else model


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, loader, device: torch.device,
                      runtime: Runtime) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` over `loader`, summed over all ranks;
    with `runtime.tta_flip` each image's output is averaged with its mirror image's."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    count = 0
    for X, y in loader:
        logits = forward(model, X, device, runtime).float()
        if runtime.tta_flip:
            logits = (logits + forward(model, X.flip(-1), device, runtime).float()) / 2
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
        count += y.shape[0]
    model.train(was_training)
    loss_sum, correct, count = global_sums([loss_sum.item(), correct.item(), count], device)
    if count == 0:
        raise UsageError("cannot evaluate on an empty loader")
    return loss_sum / count, correct / count


def start_runtime(config: TrainConfig, model: nn.Module, data, device: torch.device,
                  recorded: bool) -> tuple[TrainConfig, Runtime]:
    """The runtime a run starts with: the one it `recorded` (a resumed run ends as it began,
    on the same threads), else decided now by `decide_runtime`."""
    if recorded:
        use_threads(config.threads, device)
        return config, Runtime.recorded(config, device)
    return decide_runtime(config, model, data, device)


def decide_runtime(config: TrainConfig, model: nn.Module, data, device: torch.device
                   ) -> tuple[TrainConfig, Runtime]:
    """Threads, then mixed precision and memory format: ``auto`` becomes what this machine
    computes natively and measures faster for this model (a few probe steps, cached), and each
    decision is recorded in the configuration with its reason."""
    threads, why = use_threads(config.threads, device)
    side = data.image_size
    amp, layout = decide_step(model, (data.in_channels, side, side), device, config.batch_size,
                              config.model, config.amp, config.channels_last,
                              planned_images=config.epochs * len(data.train[1]))
    decisions = {
        "threads": {"threads": threads, "reason": f"{threads} ({why})"},
        "amp": {**dataclasses.asdict(amp), "amp_dtype": amp.dtype},
        "channels_last": dataclasses.asdict(layout),
    }
    runtime = Runtime(amp.enabled, amp.torch_dtype or Runtime.amp_dtype, layout.enabled,
                      config.tta_flip)
    return config.replace(decisions=decisions), runtime


def decide_step(model: nn.Module, input_shape: tuple[int, ...], device: torch.device,
                batch_size: int, spec: str, amp="auto", channels_last="auto",
                planned_images: int | None = None):
    """How a training step of `model` runs on `device`: mixed precision, then memory format,
    each ``auto`` decided by probe steps (cached per spec, input and machine)."""
    probe = TrainingStepProbe(model, input_shape, device, batch_size, spec=spec)
    precision = decide_amp(amp, device, probe, workload=probe.workload,
                           planned_images=planned_images)
    layout = decide_channels_last(channels_last, probe, probe.workload, device,
                                  amp_dtype=precision.torch_dtype,
                                  planned_images=planned_images)
    return precision, layout
