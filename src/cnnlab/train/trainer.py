"""The training loop: minibatch SGD (or Adam/AdamW) on a model and a data module.

Each epoch makes one pass over the training batches, then measures loss and accuracy on the
validation split (or the test split when there is none). The loop keeps losses and counts on the
device and reads them back only every few steps, so the accelerator never waits for Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import TrainingDiverged, UsageError
from cnnlab.models.spec import ModelSpec
from cnnlab.train.allocator import retain_freed_memory
from cnnlab.train.checkpoint import (
    load_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnlab.train.config import keyword_settings, resolve_config
from cnnlab.train.device import resolve_device
from cnnlab.train.distributed import (
    all_reduce_sum,
    barrier,
    global_sums,
    init_from_env,
    local_rank,
    shutdown,
)
from cnnlab.train.history import History
from cnnlab.train.optim import make_optimizer, make_schedule
from cnnlab.train.precise_bn import RunEvaluations
from cnnlab.train.progress import EpochProgress
from cnnlab.train.record import run_record
from cnnlab.train.rundir import BEST, LAST, RunDir
from cnnlab.train.runtime import Runtime, forward, loss_and_accuracy, start_runtime, training_module
from cnnlab.train.settings import TrainConfig


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


class Trainer:
    """Fits a model made by ``create_model`` to a data module and evaluates it.

    Takes a :class:`TrainConfig`, or its settings as keyword arguments (``max_epochs`` is
    ``epochs``, see `keyword_settings`); `fit` resolves them in the layers of
    `cnnlab.train.config`, so settings left at None (``lr``, ``epochs``) come from the model's
    seed recipe and the batch size, subset and augmentation from the data module. ``schedule``
    is "none", "cosine" or "onecycle", stepped per batch after ``warmup`` epochs of linear
    warm-up. ``tta_flip`` evaluates on each image and its mirror image and averages the two
    outputs. ``live`` draws the curves under a notebook cell as training goes (None: when
    running in a Jupyter kernel).
    """

    def __init__(self, config: TrainConfig | None = None, *, progress: bool = True,
                 live: bool | None = None,
                 on_epoch_end: Callable[[dict], None] | None = None, **settings):
        base = config if config is not None else TrainConfig()
        self.config = base.replace(**keyword_settings(settings))
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
        """The configuration of fitting `model` to `data` (`resolve_config`): the settings given
        here over the model's seed recipe, under what the data module says."""
        spec = getattr(model, "cnnlab_spec", None)
        c = self.config
        if spec is None and (c.lr is None or c.epochs is None):
            raise UsageError("lr=None takes the model's recipe, but this model was not made "
                             "by cnnlab.create_model; pass lr=<a learning rate>")
        given = {key: value for key, value in c.to_dict().items()
                 if value is not None and key != "decisions"}
        given["model"] = str(ModelSpec.parse(spec).design) if spec else c.model
        return resolve_config(given, data=data).replace(decisions=c.decisions)

    # --- fit -------------------------------------------------------------------------------------

    def fit(self, model: nn.Module, data, out=None, resume: bool = False) -> History:
        """Train ``model`` on ``data`` for the configured epochs; return the per-epoch history.

        With ``out`` (a folder) the run's files are written there; ``resume=True`` continues the
        run in ``out`` from its ``last.pt``. Raises :class:`TrainingDiverged` on a non-finite loss.
        """
        if resume and out is None:
            raise UsageError("resume=True needs out=<the run directory to continue>")
        config = self.resolved(model, data)
        device = resolve_device(config.device, local_rank())
        if device.type == "cpu":
            retain_freed_memory()
        ctx = init_from_env(device)
        run = s = None
        try:
            if ctx.is_main and out is not None:
                run = RunDir.resume(out) if resume else RunDir.create(out)
            recorded = resume and bool(config.decisions)
            config, self.runtime = start_runtime(config, model, data, device, recorded)
            if ctx.is_main and self.progress and not recorded:
                for name, decision in config.decisions.items():
                    print(f"{name.replace('_', '-')}: {decision['reason']}")
            s = _Session(self, config, model, data, device, ctx, run)
            if resume:
                s.resume_from(Path(out) / LAST)
            history = s.run()
            barrier()  # rank 0 writes the last files; leave the group together
            return history
        finally:
            if s is not None:
                s.progress.close()
            if run is not None:
                run.close()
            shutdown(ctx)

    # --- evaluate --------------------------------------------------------------------------------

    def evaluate(self, model: nn.Module, loader) -> tuple[float, float]:
        """Mean cross-entropy loss and accuracy of ``model`` over ``loader`` (all ranks)."""
        device = next(model.parameters()).device
        runtime = self.runtime or Runtime.from_config(self.config, device)
        return loss_and_accuracy(model, loader, device, runtime)


class _Session:
    """One call of ``fit``: the model, optimiser, schedule, loaders, position and output."""

    SYNC_STEPS = 50

    def __init__(self, trainer: Trainer, config: TrainConfig, model, data, device, ctx, run):
        self.t, self.c, self.runtime = trainer, config, trainer.runtime
        self.device, self.ctx, self.rundir = device, ctx, run
        torch.manual_seed(config.seed)
        if ctx.enabled:
            data.shard(ctx.rank, ctx.world_size)
        data = data.to(device)
        self.model = model.to(device, memory_format=self.runtime.memory_format)
        self.train_model = training_module(self.model, device, ctx.enabled, config.compile)
        self.train_loader = data.train_dataloader()
        self.evals = RunEvaluations(self.model, data, config.precise_bn, trainer.evaluate,
                                    self.runtime)
        self.steps_per_epoch = len(self.train_loader)
        self.sync_every = max(1, min(self.SYNC_STEPS, self.steps_per_epoch // 20))
        self.optimizer = make_optimizer(self.model, config.optimizer, config.lr, config.momentum,
                                        config.weight_decay)
        self.scheduler = make_schedule(self.optimizer, config.schedule, config.epochs,
                                       config.warmup, self.steps_per_epoch)
        self.scaler = self.runtime.scaler(device)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.auxiliary_loss = getattr(self.model, "auxiliary_loss", None)
        self.pos = _Position()
        self.history = History(split=self.evals.split)
        self.config = run_record(self.model, data, config, ctx.world_size)
        self.progress = EpochProgress(config.epochs, enabled=trainer.progress and ctx.is_main,
                                      live=trainer.live, split=self.evals.split)
        if run is not None:
            run.write_config(self.config)

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
        self.history = History(state["history"], split=self.evals.split)
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
        checked = all_reduce_sum(window.clone())
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
        loss_sum, correct, count = global_sums(
            [self.pos.loss_sum, self.pos.correct, self.pos.count], self.device)
        eval_started = time.perf_counter()
        val_loss, val_acc = self.evals.epoch(last=epoch + 1 == self.c.epochs)
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
            self.rundir.write_history(self.history.rows, self.evals.split)
        self.progress.end(row)
        if self.t.on_epoch_end is not None and self.ctx.is_main:
            self.t.on_epoch_end(row)

    def _finish(self) -> None:
        """Measure the final model on the test split and record the result."""
        test_loss, test_acc = self.evals.test(self.history[-1])
        seconds = self.history.column("seconds")
        self._write_result({
            **RunDir.finished(self.history.rows, len(self.config["data"]["classes"])),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "best_val_acc": self.pos.best_acc,
            "epochs": len(self.history),
            "seconds_per_epoch": sum(seconds) / len(seconds),
            **self.evals.plain,
        })

    def _write_result(self, result: dict) -> None:
        record = self.config["model"]
        result = {"model": record.get("spec", record["name"]), **result}
        self.history.result = result
        if self.rundir is not None:
            self.rundir.write_result({**result, "run": str(self.rundir.path)})
