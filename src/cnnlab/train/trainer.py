"""The training loop: minibatch SGD (or Adam/AdamW) on a model and a data module.

Each epoch makes one pass over the training batches, then measures loss and accuracy on the
validation split (or the test split when there is none). The loop keeps losses and counts on the
device and reads them back only every few steps, so the accelerator never waits for Python.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import TrainingDiverged, UsageError
from cnnlab.models.spec import ModelSpec
from cnnlab.train import distributed
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.checkpoint import (
    load_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnlab.train.config import TrainConfig, seed_recipe_layer, setting_names
from cnnlab.train.history import History
from cnnlab.train.progress import EpochProgress
from cnnlab.train.rundir import BEST, LAST, RunDir

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
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
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, fused=fused or None,
                            **extra)


@dataclass
class _Position:
    """Where training stands: completed epochs, steps into the current one, and its running sums."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0
    best_acc: float = -1.0


class _Diverged(Exception):
    """The first non-finite loss: its epoch and step (1-based), global step and learning rate."""

    def __init__(self, epoch: int, step: int, global_step: int, lr: float):
        super().__init__(f"diverged at epoch {epoch}, step {step} (lr {lr:g})")
        self.epoch, self.step, self.global_step, self.lr = epoch, step, global_step, lr


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this rank's GPU), then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {name!r} asked for but MPS is not available; use --device cpu")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def _versions() -> dict:
    from cnnlab import __version__

    return {"cnnlab": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


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


def _convenience(settings: dict) -> dict:
    """Keyword spellings of the Python API: ``max_epochs`` for epochs, booleans for switches."""
    settings = dict(settings)
    if "max_epochs" in settings:
        settings["epochs"] = settings.pop("max_epochs")
    for switch in ("amp", "channels_last"):
        if isinstance(settings.get(switch), bool):
            settings[switch] = "on" if settings[switch] else "off"
    if settings.get("schedule") is None and "schedule" in settings:
        settings["schedule"] = "none"
    if "augment" in settings and settings["augment"] is None:
        settings["augment"] = "none"
    unknown = sorted(set(settings) - set(setting_names()))
    if unknown:
        raise UsageError(f"Trainer got unknown settings {', '.join(unknown)}; known: "
                         f"max_epochs, {', '.join(setting_names())}")
    return settings


class Trainer:
    """Fits a model made by ``create_model`` to a data module and evaluates it.

    Takes a :class:`TrainConfig`, or its settings as keyword arguments (``max_epochs`` is
    ``epochs``). Settings left at None (``lr``, ``epochs``) come from the model's seed recipe
    (SPEC §4). ``schedule`` is "none", "cosine" or "onecycle", stepped per batch after
    ``warmup`` epochs of linear warm-up. ``tta_flip`` evaluates on each image and its mirror
    image and averages the two outputs. ``live`` draws the curves under a notebook cell as
    training goes (None: when running in a Jupyter kernel).
    """

    def __init__(self, config: TrainConfig | None = None, *, progress: bool = True,
                 live: bool | None = None,
                 on_epoch_end: Callable[[dict], None] | None = None, **settings):
        base = config if config is not None else TrainConfig()
        self.config = base.replace(**_convenience(settings)) if settings else base
        self.progress = progress
        self.live = live
        self.on_epoch_end = on_epoch_end
        """Called on rank 0 with each epoch's row once its checkpoint is written; an exception
        it raises (a pruned trial, say) ends the run there, the run left resumable."""
        self.runtime: Runtime | None = None

    @property
    def max_epochs(self) -> int | None:
        return self.config.epochs

    def resolved(self, model: nn.Module, data) -> TrainConfig:
        """The configuration of fitting `model` to `data`: its spec, the data's settings, and
        the model's seed recipe for the settings left at None."""
        spec = getattr(model, "cnnlab_spec", None)
        c = self.config
        changes = {"model": str(ModelSpec.parse(spec).design) if spec else c.model}
        if c.lr is None or c.epochs is None:
            if spec is None:
                raise UsageError("lr=None takes the model's recipe, but this model was not made "
                                 "by cnnlab.create_model; pass lr=<a learning rate>")
            seed = seed_recipe_layer(spec)
            changes.update({key: seed[key] for key in ("lr", "epochs")
                            if getattr(c, key) is None})
        described = data.describe()
        changes.update({key: described[key] for key in ("batch_size", "subset", "val_fraction")
                        if key in described})
        changes["augment"] = described.get("augment") or "none"
        changes["resize"] = data.image_size
        return c.replace(**changes)

    # --- fit -------------------------------------------------------------------------------------

    def fit(self, model: nn.Module, data, out=None, resume: bool = False) -> History:
        """Train ``model`` on ``data`` for the configured epochs; return the per-epoch history.

        With ``out`` (a folder) the run's files are written there; ``resume=True`` continues the
        run in ``out`` from its ``last.pt``. Raises :class:`TrainingDiverged` on a non-finite loss.
        """
        if resume and out is None:
            raise UsageError("resume=True needs out=<the run directory to continue>")
        config = self.resolved(model, data)
        device = resolve_device(config.device, distributed.local_rank())
        if device.type == "cpu":
            retain_freed_memory()
        ctx = distributed.init_from_env(device)
        run = s = None
        try:
            if ctx.is_main and out is not None:
                run = RunDir.resume(out) if resume else RunDir.create(out)
            if resume and config.decisions:  # as the run began, so it ends the same
                self.runtime = Runtime.recorded(config, device)
                apply_threads(config, device)
            else:
                config, self.runtime = decide_runtime(config, model, data, device)
                if ctx.is_main and self.progress:
                    for name, decision in config.decisions.items():
                        print(f"{name.replace('_', '-')}: {decision['reason']}")
            s = _Session(self, config, model, data, device, ctx, run)
            if resume:
                s.resume_from(Path(out) / LAST)
            history = s.run()
            distributed.barrier()  # rank 0 writes the last files; leave the group together
            return history
        finally:
            if s is not None:
                s.progress.close()
            if run is not None:
                run.close()
            distributed.shutdown(ctx)

    # --- evaluate --------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader) -> tuple[float, float]:
        """Mean cross-entropy loss and accuracy of ``model`` over ``loader`` (all ranks)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        runtime = self.runtime or Runtime.from_config(self.config, device)
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
        loss_sum, correct, count = _global_sums([loss_sum.item(), correct.item(), count], device)
        if count == 0:
            raise UsageError("cannot evaluate on an empty loader")
        return loss_sum / count, correct / count


def forward(model: nn.Module, X: torch.Tensor, device: torch.device,
            runtime: Runtime) -> torch.Tensor:
    """The model's output on a batch, in the runtime's memory format and precision."""
    if runtime.channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=runtime.amp_dtype, enabled=runtime.amp):
        return model(X)


def apply_threads(config: TrainConfig, device: torch.device) -> tuple[int, str]:
    """Set the CPU threads: ``threads`` if given, else OMP_NUM_THREADS if set, else the cores
    this process may use; returns the number and where it came from."""
    from cnnlab.train import autotune

    if config.threads:
        threads, why = config.threads, "asked for with threads"
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]):
        threads, why = int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    else:
        threads, why = autotune.default_threads(), "the cores this process may use"
    if device.type == "cpu":
        autotune.apply_threads(threads)
    return threads, why


def decide_runtime(config: TrainConfig, model: nn.Module, data, device: torch.device
                   ) -> tuple[TrainConfig, Runtime]:
    """Threads, then mixed precision and memory format: ``auto`` becomes what this machine
    computes natively and measures faster for this model (a few probe steps, cached), and each
    decision is recorded in the configuration with its reason."""
    threads, why = apply_threads(config, device)
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
    from cnnlab.train import autotune

    probe = autotune.TrainingStepProbe(model, input_shape, device, batch_size, spec=spec)
    precision = autotune.decide_amp(amp, device, probe, workload=probe.workload,
                                    planned_images=planned_images)
    layout = autotune.decide_channels_last(channels_last, probe, probe.workload, device,
                                           amp_dtype=precision.torch_dtype,
                                           planned_images=planned_images)
    return precision, layout


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


def _global_sums(values: list[float], device: torch.device) -> list[float]:
    """Sum a few numbers over all ranks (one collective call; a no-op in a single process)."""
    if not distributed.is_distributed():
        return values
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    return distributed.all_reduce_sum(totals).tolist()


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
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


class _Session:
    """One call of ``fit``: the model, optimiser, schedule, loaders, position and output."""

    SYNC_STEPS = 50

    def __init__(self, trainer: Trainer, config: TrainConfig, model, data, device, ctx, run):
        self.t, self.c, self.runtime = trainer, config, trainer.runtime
        self.device, self.ctx, self.lr, self.rundir = device, ctx, config.lr, run
        torch.manual_seed(config.seed)
        if ctx.enabled:
            data.shard(ctx.rank, ctx.world_size)
        self.data = data.to(device)
        memory_format = torch.channels_last if self.runtime.channels_last else torch.preserve_format
        self.model = model.to(device, memory_format=memory_format)
        self.train_model = self.model
        if ctx.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if config.compile:
            self.train_model = torch.compile(self.train_model)
        self.train_loader = data.train_dataloader()
        self.val_loader = data.val_dataloader()
        has_val = self.val_loader is not None
        self.eval_loader = self.val_loader if has_val else data.test_dataloader()
        self.steps_per_epoch = len(self.train_loader)
        self.sync_every = max(1, min(self.SYNC_STEPS, self.steps_per_epoch // 20))
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        use_scaler = self.runtime.amp and self.runtime.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.auxiliary_loss = getattr(self.model, "auxiliary_loss", None)
        self.pos = _Position()
        self.history = History()
        self.config = self._run_config(data)
        self.progress = EpochProgress(config.epochs, enabled=trainer.progress and ctx.is_main,
                                      live=trainer.live)
        if run is not None:
            run.write_config(self.config)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.c
        return make_optimizer(self.model, c.optimizer, self.lr, c.momentum, c.weight_decay)

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        total = self.c.epochs * self.steps_per_epoch
        warmup = round(self.c.warmup * self.steps_per_epoch)
        schedule = self.c.schedule
        return torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _lr_factor(step, total, warmup, schedule))

    def _run_config(self, data) -> dict:
        """Everything needed to repeat the run or rebuild its model and input conversion."""
        return {
            "model": model_record(self.model, data),
            "data": {"args": data.describe(), "classes": list(data.classes),
                     "image_size": data.image_size, "in_channels": data.in_channels,
                     "mean": list(data.mean), "std": list(data.std)},
            "train": self.c.to_dict(),
            "world_size": self.ctx.world_size,
            "versions": _versions(),
        }

    # --- checkpoints -----------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "format": 1,
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "position": asdict(self.pos),
            "history": self.history.rows,
        }

    def resume_from(self, checkpoint: Path) -> None:
        """Continue from ``checkpoint``; a run killed before its first one starts afresh."""
        if checkpoint.is_file():
            self.restore(load_checkpoint(checkpoint, map_location=self.device), checkpoint)
        elif self.ctx.is_main:
            print(f"no checkpoint {checkpoint} yet: starting the run from the beginning")

    def restore(self, state: dict, source: Path) -> None:
        load_weights(self.model, state["model"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.pos = _Position(**state["position"])
        self.history = History(state["history"])
        set_rng_state(state["rng"])

    def save(self, *names: str) -> None:
        if self.rundir is not None:
            state = self.state()
            for name in names:
                save_checkpoint(state, self.rundir.file(name))

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> History:
        for epoch in range(self.pos.epoch, self.c.epochs):
            try:
                self.train_epoch(epoch)
            except _Diverged as exc:
                self._write_result({"status": "diverged", "epoch": exc.epoch, "step": exc.step,
                                    "global_step": exc.global_step, "lr": exc.lr})
                raise TrainingDiverged(str(exc)) from None
            self.end_epoch(epoch)
        self._finish()
        return self.history

    def train_epoch(self, epoch: int) -> None:
        self.train_model.train()
        self.progress.start(epoch, self.steps_per_epoch, self.pos.step)
        started = time.perf_counter() - self.pos.seconds
        losses, sizes, lrs = [], [], []
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        for X, y in self.train_loader.iterate(epoch, start=self.pos.step):
            lrs.append(self.optimizer.param_groups[0]["lr"])
            loss, logits = self.step(X, y)
            losses.append(loss.detach())
            sizes.append(y.shape[0])
            correct += (logits.argmax(dim=1) == y).sum()
            self.pos.step += 1
            self.pos.global_step += 1
            every = self.c.checkpoint_every
            due = every and self.pos.global_step % every == 0
            if due or self.pos.step % self.sync_every == 0 or self.pos.step == self.steps_per_epoch:
                self._sync(epoch, losses, sizes, lrs, correct)
                self.pos.seconds = time.perf_counter() - started
                losses, sizes, lrs = [], [], []
                correct.zero_()
                self.progress.update(self.pos.step, self.pos.loss_sum / self.pos.count,
                                     self.pos.count * self.ctx.world_size / self.pos.seconds,
                                     self.pos.correct / self.pos.count)
                if due and self.pos.step < self.steps_per_epoch:
                    self.save(LAST)
        self.progress.close()

    def step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One minibatch: forward, loss, backward, (clip), optimiser and schedule step."""
        logits = forward(self.train_model, X, self.device, self.runtime)
        loss = self.loss_fn(logits.float(), y)
        if self.auxiliary_loss is not None:  # side classifiers (GoogLeNet's aux_logits)
            loss = loss + self.auxiliary_loss(y, self.loss_fn)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.c.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss, logits

    def _sync(self, epoch, losses, sizes, lrs, correct) -> None:
        """Read the window's losses back once; stop at the first non-finite one on any rank."""
        window = torch.stack(losses)
        checked = distributed.all_reduce_sum(window.clone())
        finite = torch.isfinite(checked).cpu()
        if not finite.all():
            back = len(losses) - int((~finite).nonzero()[0])  # steps since the bad one, plus 1
            raise _Diverged(epoch + 1, self.pos.step - back + 1, self.pos.global_step - back + 1,
                            lrs[-back])
        self.pos.loss_sum += float((window * torch.tensor(sizes, device=self.device)).sum())
        self.pos.correct += int(correct)
        self.pos.count += sum(sizes)

    def end_epoch(self, epoch: int) -> None:
        train_seconds = self.pos.seconds
        loss_sum, correct, count = _global_sums(
            [self.pos.loss_sum, self.pos.correct, self.pos.count], self.device)
        eval_started = time.perf_counter()
        val_loss, val_acc = self.t.evaluate(self.model, self.eval_loader)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / count,
            "train_acc": correct / count,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": train_seconds + time.perf_counter() - eval_started,
            "images_per_s": count / train_seconds,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        self.history.append(row)
        is_best = val_acc > self.pos.best_acc
        self.pos = _Position(epoch=epoch + 1, global_step=self.pos.global_step,
                             best_acc=max(val_acc, self.pos.best_acc))
        self.save(*((LAST, BEST) if is_best else (LAST,)))
        if self.rundir is not None:
            eval_split = "test" if self.val_loader is None else "val"
            self.rundir.write_history(self.history.rows, eval_split)
        self.progress.end(row)
        if self.t.on_epoch_end is not None and self.ctx.is_main:
            self.t.on_epoch_end(row)

    def _finish(self) -> None:
        """Measure the final model on the test split and record the result."""
        if self.val_loader is not None:
            test_loss, test_acc = self.t.evaluate(self.model, self.data.test_dataloader())
        else:
            test_loss, test_acc = self.history[-1]["val_loss"], self.history[-1]["val_acc"]
        seconds = self.history.column("seconds")
        self._write_result({
            "status": "completed",
            "test_loss": test_loss,
            "test_acc": test_acc,
            "best_val_acc": self.pos.best_acc,
            "epochs": len(self.history),
            "seconds_per_epoch": sum(seconds) / len(seconds),
        })

    def _write_result(self, result: dict) -> None:
        record = self.config["model"]
        result = {"model": record.get("spec", record["name"]), **result}
        self.history.result = result
        if self.rundir is not None:
            self.rundir.write_result({**result, "run": str(self.rundir.path)})
