"""The training loop: minibatch SGD (or Adam/AdamW) on a model and a data module.

Each epoch makes one pass over the training batches, then measures loss and accuracy on the
validation split (or the test split when there is none). The loop keeps losses and counts on the
device and reads them back only every few steps, so the accelerator never waits for Python.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import TrainingDiverged
from cnnlab.train import distributed
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cnnlab.train.progress import EpochProgress
from cnnlab.train.rundir import BEST, LAST, RunDir

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SCHEDULES = ("none", "cosine", "onecycle")
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


class History:
    """One row per epoch: train and validation loss and accuracy, seconds, images per second."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows = list(rows or [])
        self.result: dict = {}  # after fit: status and final test loss/accuracy

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def column(self, name: str) -> list:
        """All epochs' values of one metric, e.g. ``history.column("val_acc")``."""
        return [row[name] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        last = self.rows[-1] if self.rows else {}
        return f"History(epochs={len(self.rows)}, last={last})"


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
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but no CUDA GPU is visible; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for but MPS is not available; use --device cpu")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def _versions() -> dict:
    from cnnlab import __version__

    return {"cnnlab": __version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


class Trainer:
    """Fits a model made by ``create_model`` to a data module and evaluates it.

    ``lr=None`` takes the model's seed recipe (SPEC §4). ``schedule`` is None, "cosine" or
    "onecycle", stepped per batch after ``warmup`` epochs of linear warm-up. ``tta_flip``
    evaluates on each image and its mirror image and averages the two outputs.
    """

    def __init__(self, max_epochs=10, optimizer="sgd", lr=None, momentum=0.0, weight_decay=0.0,
                 schedule=None, warmup=0.0, label_smoothing=0.0, grad_clip=None, device="auto",
                 amp=False, channels_last=False, compile=False, seed=0, checkpoint_every=None,
                 tta_flip=False, progress=True):
        schedule = "none" if schedule is None else schedule
        _check(isinstance(max_epochs, int) and max_epochs > 0, "max_epochs", max_epochs,
               "a positive integer")
        _check(optimizer in OPTIMIZERS, "optimizer", optimizer, f"one of {sorted(OPTIMIZERS)}")
        _check(lr is None or lr > 0, "lr", lr, "a positive number or None for the model's recipe")
        _check(momentum >= 0 and weight_decay >= 0, "momentum/weight_decay",
               (momentum, weight_decay), "zero or more")
        _check(schedule in SCHEDULES, "schedule", schedule, f"one of {SCHEDULES} or None")
        _check(0 <= warmup < max_epochs, "warmup", warmup, f"0 <= warmup < max_epochs={max_epochs}")
        _check(0 <= label_smoothing < 1, "label_smoothing", label_smoothing, "in [0, 1)")
        _check(grad_clip is None or grad_clip > 0, "grad_clip", grad_clip, "positive or None")
        _check(checkpoint_every is None or checkpoint_every > 0, "checkpoint_every",
               checkpoint_every, "a positive number of steps or None")
        self.max_epochs, self.optimizer, self.lr = max_epochs, optimizer, lr
        self.momentum, self.weight_decay = momentum, weight_decay
        self.schedule, self.warmup, self.label_smoothing = schedule, warmup, label_smoothing
        self.grad_clip, self.device, self.amp = grad_clip, device, amp
        self.channels_last, self.compile, self.seed = channels_last, compile, seed
        self.checkpoint_every, self.tta_flip, self.progress = checkpoint_every, tta_flip, progress

    def config(self) -> dict:
        """The constructor arguments, JSON-able, so ``Trainer(**config)`` repeats the run."""
        keys = ("max_epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup",
                "label_smoothing", "grad_clip", "device", "amp", "channels_last", "compile",
                "seed", "checkpoint_every", "tta_flip")
        return {key: getattr(self, key) for key in keys}

    # --- fit -------------------------------------------------------------------------------------

    def fit(self, model: nn.Module, data, out=None, resume: bool = False) -> History:
        """Train ``model`` on ``data`` for ``max_epochs``; return the per-epoch history.

        With ``out`` (a folder) the run's files are written there; ``resume=True`` continues the
        run in ``out`` from its ``last.pt``. Raises :class:`TrainingDiverged` on a non-finite loss.
        """
        if resume and out is None:
            raise ValueError("resume=True needs out=<the run directory to continue>")
        lr = self.lr if self.lr is not None else _recipe_lr(model)
        device = resolve_device(self.device, distributed.local_rank())
        if device.type == "cpu":
            retain_freed_memory()
        ctx = distributed.init_from_env(device)
        run = s = None
        try:
            if ctx.is_main and out is not None:
                run = RunDir.open(out) if resume else RunDir.create(out)
            s = _Session(self, model, data, device, ctx, lr, run)
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
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        count = 0
        for X, y in loader:
            logits = self._forward(model, X, device).float()
            if self.tta_flip:
                logits = (logits + self._forward(model, X.flip(-1), device).float()) / 2
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
            count += y.shape[0]
        model.train(was_training)
        loss_sum, correct, count = _global_sums([loss_sum.item(), correct.item(), count], device)
        if count == 0:
            raise ValueError("cannot evaluate on an empty loader")
        return loss_sum / count, correct / count

    def _forward(self, model: nn.Module, X: torch.Tensor, device: torch.device) -> torch.Tensor:
        if self.channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
        with torch.autocast(device.type, dtype=dtype, enabled=self.amp):
            return model(X)


def _check(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f"Trainer {name}={value!r} is not allowed; use {allowed}")


def _recipe_lr(model: nn.Module) -> float:
    """The learning rate of the model's seed recipe (needs a model made by ``create_model``)."""
    name = getattr(model, "cnnlab_name", None)
    if name is None:
        raise ValueError("lr=None takes the model's recipe, but this model was not made by "
                         "cnnlab.create_model; pass lr=<a learning rate>")
    from cnnlab.models import model_info

    return model_info(name).recipe.lr


def _model_config(model: nn.Module, data) -> dict:
    """The ``create_model`` arguments that rebuild ``model`` (name, shape, input size if sized)."""
    name = getattr(model, "cnnlab_name", None)
    if name is None:
        return {"name": type(model).__name__}
    from cnnlab.models import model_info

    config = {"name": name, "num_classes": data.num_classes, "in_channels": data.in_channels}
    if model_info(name).sized:
        config["input_size"] = model.input_size
    return config


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

    def __init__(self, trainer: Trainer, model, data, device, ctx, lr, run):
        self.t, self.device, self.ctx, self.lr, self.rundir = trainer, device, ctx, lr, run
        torch.manual_seed(trainer.seed)
        if ctx.enabled:
            data.shard(ctx.rank, ctx.world_size)
        self.data = data.to(device)
        memory_format = torch.channels_last if trainer.channels_last else torch.preserve_format
        self.model = model.to(device, memory_format=memory_format)
        self.train_model = self.model
        if ctx.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if trainer.compile:
            self.train_model = torch.compile(self.train_model)
        self.train_loader = data.train_dataloader()
        self.val_loader = data.val_dataloader()
        has_val = self.val_loader is not None
        self.eval_loader = self.val_loader if has_val else data.test_dataloader()
        self.steps_per_epoch = len(self.train_loader)
        self.sync_every = max(1, min(self.SYNC_STEPS, self.steps_per_epoch // 20))
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        use_scaler = trainer.amp and device.type == "cuda"  # float16 needs loss scaling
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=trainer.label_smoothing)
        self.pos = _Position()
        self.history = History()
        self.config = self._run_config(data)
        self.progress = EpochProgress(trainer.max_epochs, enabled=trainer.progress and ctx.is_main)
        if run is not None:
            run.write_config(self.config)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        t = self.t
        return make_optimizer(self.model, t.optimizer, self.lr, t.momentum, t.weight_decay)

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        total = self.t.max_epochs * self.steps_per_epoch
        warmup = round(self.t.warmup * self.steps_per_epoch)
        schedule = self.t.schedule
        return torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _lr_factor(step, total, warmup, schedule))

    def _run_config(self, data) -> dict:
        """Everything needed to repeat the run or rebuild its model and input conversion."""
        return {
            "model": _model_config(self.model, data),
            "data": {"args": data.describe(), "classes": list(data.classes),
                     "image_size": data.image_size, "in_channels": data.in_channels,
                     "mean": list(data.mean), "std": list(data.std)},
            "trainer": {**self.t.config(), "lr": self.lr},
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
            self.restore(load_checkpoint(checkpoint, map_location=self.device))
        elif self.ctx.is_main:
            print(f"no checkpoint {checkpoint} yet: starting the run from the beginning")

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
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
        for epoch in range(self.pos.epoch, self.t.max_epochs):
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
            due = self.t.checkpoint_every and self.pos.global_step % self.t.checkpoint_every == 0
            if due or self.pos.step % self.sync_every == 0 or self.pos.step == self.steps_per_epoch:
                self._sync(epoch, losses, sizes, lrs, correct)
                self.pos.seconds = time.perf_counter() - started
                losses, sizes, lrs = [], [], []
                correct.zero_()
                self.progress.update(self.pos.step, self.pos.loss_sum / self.pos.count,
                                     self.pos.count * self.ctx.world_size / self.pos.seconds)
                if due and self.pos.step < self.steps_per_epoch:
                    self.save(LAST)
        self.progress.close()

    def step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One minibatch: forward, loss, backward, (clip), optimiser and schedule step."""
        logits = self.t._forward(self.train_model, X, self.device)
        loss = self.loss_fn(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.t.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.t.grad_clip)
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
        result = {"model": self.config["model"]["name"], **result}
        self.history.result = result
        if self.rundir is not None:
            self.rundir.write_result({**result, "run": str(self.rundir.path)})
