"""Running a sweep: the workers that take its trials, and one trial's run.

Workers (processes here, or ``--join`` on other machines) take trials from the study until
none is left. Each worker sends a heartbeat: a trial whose worker fell silent is marked failed
and queued again with the same parameters, so it continues from its run's last checkpoint. A
trial that diverges is a finished trial with status ``diverged``, not an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from cnnlab.errors import TrainingDiverged, UsageError
from cnnlab.experiments.sweep.definition import RUNTIME_SETTINGS, Sweep
from cnnlab.experiments.sweep.results import write_summary
from cnnlab.experiments.sweep.space import describe, run_name
from cnnlab.experiments.sweep.storage import (
    HEARTBEAT,
    _experimental,
    create_study,
    hidden_password,
    load_study,
    sqlite_url,
)
from cnnlab.experiments.sweep.trials import divergence, is_fresh, slot, used_slots
from cnnlab.train.config import TrainConfig
from cnnlab.train.rundir import CONFIG, RunDir, diverged_at
from cnnlab.train.runs import build_model, make_data
from cnnlab.train.trainer import Trainer

DATA_SETTINGS = ("data", "data_dir", "resize", "batch_size", "subset", "val_fraction",
                 "augment", "seed")
"""The settings `make_data` reads: trials that agree on them share one loaded data module."""


class _Surplus(Exception):
    """A trial the study did not need: another worker took the last piece of work first."""



def _work_left(trials, sweep: Sweep) -> tuple[bool, int]:
    """(whether a trial can start now, how many are running elsewhere)."""
    waiting = any(t.state.name == "WAITING" for t in trials)
    running = sum(1 for t in trials if t.state.name == "RUNNING")
    open_slots = bool(sweep.search) and used_slots(trials) < sweep.trials
    return waiting or open_slots, running


# --- one trial ---------------------------------------------------------------------------------

@dataclass
class TrialOutcome:
    """How a trial's run ended: its result, epoch rows, and where it diverged (if it did)."""

    result: dict
    history: list[dict]
    diverged: dict | None = None

    @property
    def status(self) -> str:
        return "diverged" if self.diverged else "completed"

    @property
    def value(self) -> float:
        """The objective: the final validation accuracy; 0 for a diverged run."""
        return 0.0 if self.diverged else self.history[-1]["val_acc"]

    def attrs(self) -> dict:
        """What the study records about the trial's end (user attributes, beside `run_attrs`):
        its status, the validation curve, the seconds its epochs took and, once it has a
        result, its accuracies."""
        curve = [row["val_acc"] for row in self.history]
        attrs = {"status": self.status, "curve": curve,
                 "seconds": sum(row.get("seconds", 0.0) for row in self.history)}
        if self.diverged:
            attrs["diverged"] = self.diverged
        if "test_acc" in self.result:
            attrs.update(val_acc=curve[-1], test_acc=self.result["test_acc"],
                         best_epoch=curve.index(max(curve)) + 1,
                         seconds_per_epoch=self.result["seconds_per_epoch"])
        return attrs

    def summary(self) -> str:
        """The outcome in a few words, for the line a worker prints."""
        if self.diverged:
            return divergence(self.diverged)
        return f"val acc {self.value:.1%}, test acc {self.result['test_acc']:.1%}"


def run_attrs(config: TrainConfig, run: Path) -> dict:
    """What the study records about a trial as it starts (user attributes, so a dashboard shows
    them beside its parameters): the model spec, its run directory (the folder's name, and its
    full path on the worker's machine) and the seed."""
    return {"spec": config.model, "run": run.name, "run_dir": str(run.resolve()),
            "seed": config.seed}


def train_trial(config: TrainConfig, model, data, run: Path, progress: bool = True,
                on_epoch_end=None) -> TrialOutcome:
    """Train (or continue, or just read) the run of one trial in `run`."""
    rundir = RunDir(run)
    if not rundir.read_result():
        trainer = Trainer(config, progress=progress, on_epoch_end=on_epoch_end)
        with contextlib.suppress(TrainingDiverged):  # recorded in result.json like the rest
            trainer.fit(model, data, out=run, resume=rundir.file(CONFIG).is_file())
    result, history = rundir.read_result(), rundir.read_history()
    return TrialOutcome(result, history, diverged_at(result, history, data.num_classes))


class Worker:
    """Takes trials from a study and trains them until the sweep has nothing left to start."""

    def __init__(self, study, sweep: Sweep, out: Path, runtime: dict | None = None,
                 progress: bool = True, label: str = "", heartbeat: int = HEARTBEAT):
        self.study, self.sweep, self.out = study, sweep, Path(out)
        self.heartbeat = heartbeat
        self.runtime = runtime or {}
        """Settings for this worker's trials only: its threads and device."""
        self.progress, self.label = progress, label
        self.data: dict[tuple, object] = {}
        self.current: int | None = None
        """The number of the trial this worker is running."""

    def say(self, text: str) -> None:
        print(f"{self.label}{text}", flush=True)

    def run(self) -> None:
        """Run trials until none is left; wait for trials running elsewhere (and take over any
        whose worker stops sending heartbeats)."""
        told = False
        while True:
            with _experimental():
                optuna.storages.fail_stale_trials(self.study)
            can_start, running = _work_left(self.study.get_trials(deepcopy=False), self.sweep)
            if can_start:
                self.current = None
                try:
                    self.study.optimize(self.objective, n_trials=1, catch=(_Surplus,))
                except Exception:
                    if not self._taken_over():
                        raise
                    self.say(f"trial {self.current}: retried by another worker after this one "
                             "missed its heartbeats; the retry continues from this run")
                write_summary(self.study, self.out)
            elif running:
                if not told:
                    self.say(f"waiting for {running} trial(s) running elsewhere (a trial whose "
                             f"worker is silent for {2 * self.heartbeat} s is retried here)")
                    told = True
                time.sleep(1)
            else:
                return

    def _taken_over(self) -> bool:
        """Whether this worker's trial was declared dead (its heartbeats late) and queued again,
        so that finishing it failed; anything else that fails is an error."""
        return self.current is not None and any(
            t.system_attrs.get("retry_history", [None])[-1] == self.current
            for t in self.study.get_trials(deepcopy=False))

    def objective(self, trial) -> float:
        self.current = trial.number
        trials = self.study.get_trials(deepcopy=False)
        me = next(t for t in trials if t.number == trial.number)
        if is_fresh(me) and (not self.sweep.search
                             or used_slots(trials, before=me.number) >= self.sweep.trials):
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"trial {trial.number} is not needed")
        params = self.suggest(trial)
        config = self.sweep.config(params).replace(**self.runtime)
        run = self.out / run_name(params, slot(me) if self.sweep.search else None)
        for name, value in run_attrs(config, run).items():
            trial.set_user_attr(name, value)
        self.say(f"trial {trial.number}: {describe(params)} -> {run}")

        key = tuple(getattr(config, name) for name in DATA_SETTINGS)
        if key not in self.data:
            self.data[key] = make_data(config)
        model = build_model(config, self.data[key])
        trial.set_user_attr("parameters", sum(p.numel() for p in model.parameters()))
        reported = set(me.intermediate_values)  # a retried trial inherits its epochs
        outcome = train_trial(config, model, self.data[key], run, self.progress,
                              self._reporter(trial, config, run, reported))
        for row in outcome.history:  # epochs trained before this trial (a finished run read)
            if row["epoch"] not in reported:
                trial.report(row["val_acc"], row["epoch"])
        for name, value in outcome.attrs().items():
            trial.set_user_attr(name, value)
        self.say(f"trial {trial.number}: {outcome.summary()}")
        return outcome.value

    def suggest(self, trial) -> dict:
        """The trial's parameters: the model spec, grid values, searched values."""
        params = {"model": trial.suggest_categorical("model", list(self.sweep.specs))}
        for axis in self.sweep.grid:
            params[axis.key] = trial.suggest_categorical(axis.key, list(axis.values))
        for r in self.sweep.search:
            suggest = trial.suggest_int if r.integer else trial.suggest_float
            params[r.key] = suggest(r.key, r.low, r.high, log=r.log)
        return params

    def _reporter(self, trial, config: TrainConfig, run: Path, reported: set[int]):
        """Report each epoch's validation accuracy (the trial's intermediate value at step
        `epoch`, noted in `reported`); stop a hopeless trial before its last epoch."""

        def report(row: dict) -> None:
            if row["epoch"] not in reported:
                trial.report(row["val_acc"], row["epoch"])
                reported.add(row["epoch"])
            if row["epoch"] < config.epochs and trial.should_prune():
                trial.set_user_attr("status", "pruned")
                trial.set_user_attr("seconds", sum(
                    epoch.get("seconds", 0.0) for epoch in RunDir(run).read_history()))
                self.say(f"trial {trial.number}: pruned after epoch {row['epoch']} (val acc "
                         f"{row['val_acc']:.1%}, below the median of earlier trials)")
                raise optuna.TrialPruned()

        return report


# --- workers -----------------------------------------------------------------------------------

def cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def worker_runtime(settings: dict, index: int, workers: int) -> dict:
    """Worker `index` of `workers`: cores/N threads (unless --threads), and on a machine with
    GPUs the workers spread over them (unless --device names one)."""
    runtime = {}
    if workers > 1 and "threads" not in settings:
        runtime["threads"] = max(1, cores() // workers)
    if workers > 1 and settings.get("device", "auto") in ("auto", "cuda") and \
            torch.cuda.is_available():
        runtime["device"] = f"cuda:{index % torch.cuda.device_count()}"
    return runtime


def _worker_process(storage: str, name: str, out: str, record: dict, runtime: dict,
                    seed: int | None, heartbeat: int, label: str) -> None:
    """The body of one worker process: open the study, then take trials."""
    try:
        study, _ = load_study(name, storage, heartbeat, seed)
        Worker(study, Sweep.from_dict(record), Path(out), runtime, progress=False,
               label=label, heartbeat=heartbeat).run()
    except UsageError as exc:
        print(f"cnnlab: error: {label}{exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def work(study, sweep: Sweep, out: Path, storage: str, workers: int = 1,
         heartbeat: int = HEARTBEAT, progress: bool = True, seed: int | None = 0) -> None:
    """Run the study's trials here: in this process, or in `workers` processes at once."""
    if workers == 1:
        Worker(study, sweep, out, worker_runtime(sweep.settings, 0, 1), progress,
               heartbeat=heartbeat).run()
        return
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=(
        storage, study.study_name, str(out), sweep.to_dict(),
        worker_runtime(sweep.settings, i, workers), None if seed is None else seed + i,
        heartbeat, f"[worker {i + 1}] ")) for i in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    codes = [p.exitcode for p in processes]
    if any(code == UsageError.exit_code for code in codes):
        raise UsageError(f"a sweep worker stopped on bad input (exit codes {codes}); its "
                         "message is above")
    if any(codes):
        raise RuntimeError(f"sweep workers exited with codes {codes}; see their tracebacks above")


def run_sweep(sweep: Sweep, out: str | Path | None = None, name: str | None = None,
              storage: str | None = None, workers: int = 1, heartbeat: int = HEARTBEAT,
              progress: bool = True):
    """Run (or continue) a sweep to the end and return its results (also in sweep.csv/.png)."""
    seed = sweep.settings.get("seed", 0)
    study, out = create_study(sweep, out, name, storage, heartbeat, seed)
    url = storage or sqlite_url(out)
    print(f"sweep {study.study_name} in {out}; more workers: cnnlab sweep --join "
          f"{study.study_name} --storage {hidden_password(url)}", flush=True)
    work(study, sweep, out, url, workers, heartbeat, progress, seed)
    return write_summary(study, out)


def join_sweep(name: str, storage: str, out: str | Path | None = None, workers: int = 1,
               heartbeat: int = HEARTBEAT, progress: bool = True, runtime: dict | None = None):
    """Add workers to a sweep started elsewhere; return its results once nothing is left.

    `runtime` may set this machine's device, threads and data folder (`RUNTIME_SETTINGS`);
    every other setting is the sweep's.
    """
    other = sorted(set(runtime or {}) - set(RUNTIME_SETTINGS))
    if other:
        raise UsageError(f"--join runs the sweep's own settings; only "
                         f"{', '.join(RUNTIME_SETTINGS)} may be given here, not "
                         f"{', '.join(other)}")
    study, sweep = load_study(name, storage, heartbeat)
    sweep = dataclasses.replace(sweep, settings={**sweep.settings, **(runtime or {})})
    out = Path(out) if out is not None else Path(study.user_attrs["out"])
    out.mkdir(parents=True, exist_ok=True)
    work(study, sweep, out, storage, workers, heartbeat, progress, seed=None)
    return write_summary(study, out)
