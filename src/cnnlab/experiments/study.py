"""Running a sweep on Optuna: the study and its storage, the workers, and one trial's run.

A grid enqueues each of its points once; a search lets the TPE sampler propose ``trials``
points, and the median pruner stops trials whose per-epoch validation accuracy falls behind.
Workers (processes here, or ``--join`` on other machines) take trials from the study until
none is left. Each worker sends a heartbeat: a trial whose worker fell silent is marked failed
and queued again with the same parameters, so it continues from its run's last checkpoint. A
trial that diverges is a finished trial with status ``diverged``, not an error.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import TrainingDiverged, UsageError
from cnnlab.experiments.results import write_summary
from cnnlab.experiments.runs import blew_up, read_result, run_history
from cnnlab.experiments.space import describe, params_key, run_name
from cnnlab.experiments.sweep import RUNTIME_SETTINGS, SWEEPS_ROOT, Sweep
from cnnlab.experiments.trials import (
    divergence,
    is_fresh,
    is_void,
    slot,
    trial_point,
    used_slots,
)
from cnnlab.files import write_text
from cnnlab.train.config import TrainConfig
from cnnlab.train.rundir import CONFIG
from cnnlab.train.runs import build_model, make_data
from cnnlab.train.trainer import Trainer

HEARTBEAT = 10
"""Seconds between a worker's heartbeats; its trials are retried after twice that of silence."""
DATABASE, SWEEP_FILE = "sweep.db", "sweep.json"
DATA_SETTINGS = ("data", "data_dir", "resize", "batch_size", "subset", "val_fraction",
                 "augment", "seed")
"""The settings `make_data` reads: trials that agree on them share one loaded data module."""


class _Surplus(Exception):
    """A trial the study did not need: another worker took the last piece of work first."""


def _optuna():
    """Optuna, with its per-trial log lines off: the sweep prints its own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


@contextmanager
def _experimental():
    """Optuna marks its heartbeat and retries experimental; its warning is not for our users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _optuna().exceptions.ExperimentalWarning)
        yield


def _retry_callback():
    """Queue a copy of a failed trial, with its reported epochs, to continue its run."""
    with _experimental():
        return _optuna().storages.RetryHeartbeatStaleTrialCallback(
            inherit_intermediate_values=True)


def sqlite_url(out: Path) -> str:
    """The default storage: an SQLite file in the sweep's folder."""
    return f"sqlite:///{(Path(out) / DATABASE).resolve()}"


def open_storage(url: str, heartbeat: int = HEARTBEAT):
    """Optuna's database storage at `url`, with heartbeats and retries of silent trials."""
    optuna = _optuna()
    from sqlalchemy.exc import SQLAlchemyError

    sqlite = url.startswith("sqlite")
    try:
        with _experimental():
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else {},
                heartbeat_interval=heartbeat, heartbeat_stale_trial_callback=_retry_callback())
    except ImportError as exc:
        raise UsageError(f"--storage {hidden_password(url)}: its database driver is not "
                         f"installed ({exc.__cause__ or exc}); e.g. pip install "
                         "psycopg2-binary for PostgreSQL") from None
    except (SQLAlchemyError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200]
        raise UsageError(f"cannot open --storage {hidden_password(url)}: {reason}") from None
    if sqlite:
        _write_locked_transactions(storage.engine)
    return storage


def _write_locked_transactions(engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE).

    SQLite otherwise lets two processes read a queued trial in their own transactions and both
    mark it running; with the lock taken first, the second waits and then sees it taken.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(connection, _record):
        connection.isolation_level = None  # pysqlite's own BEGIN off: ours is emitted below

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are replaced


def hidden_password(url: str) -> str:
    """The storage URL with its password, if any, replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _strategy(sweep: Sweep, seed: int | None):
    """The sampler and pruner: TPE for a search (a grid's points are enqueued, so the sampler
    never chooses them), and for a search the median rule on each epoch's validation accuracy,
    once half the trials (at most 5) have finished."""
    optuna = _optuna()
    if sweep.search:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, sweep.trials // 2)))
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.samplers.TPESampler(seed=seed), pruner


def create_study(sweep: Sweep, out: str | Path | None = None, name: str | None = None,
                 storage: str | None = None, heartbeat: int = HEARTBEAT, seed: int | None = 0):
    """Create the sweep's study (or open it again: re-running continues it) and queue its work.

    Returns the study and the sweep's folder (default ``runs/<name>``). The name defaults to
    one derived from the definition, so the same command always finds the same study.
    """
    name = name or sweep.default_name()
    out = Path(out) if out is not None else SWEEPS_ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    url = storage or sqlite_url(out)
    sampler, pruner = _strategy(sweep, seed)
    study = _optuna().create_study(study_name=name, storage=open_storage(url, heartbeat),
                                   direction="maximize", sampler=sampler, pruner=pruner,
                                   load_if_exists=True)
    recorded = study.user_attrs.get("sweep")
    if recorded is None:
        study.set_user_attr("sweep", sweep.to_dict())
        study.set_user_attr("out", str(out.resolve()))
    elif Sweep.from_dict(recorded).identity() != sweep.identity():
        raise UsageError(f"sweep {name!r} already exists with another definition "
                         f"({describe_sweep(Sweep.from_dict(recorded))}); choose another --name")
    write_text(out / SWEEP_FILE, json.dumps({"name": name, "storage": hidden_password(url)},
                                            indent=2) + "\n")
    queue_unfinished(study, sweep)
    return study, out


def load_study(name: str, storage: str, heartbeat: int = HEARTBEAT, seed: int | None = None):
    """An existing sweep's study and its recorded definition (for ``--join`` and ``--show``)."""
    optuna = _optuna()
    opened = open_storage(storage, heartbeat)
    try:
        study = optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        raise UsageError(f"no sweep {name!r} in {hidden_password(storage)}; start it with "
                         f"cnnlab sweep SPEC ... --storage URL --name {name}") from None
    if "sweep" not in study.user_attrs:
        raise UsageError(f"study {name!r} was not made by cnnlab sweep (it has no definition)")
    sweep = Sweep.from_dict(study.user_attrs["sweep"])
    study.sampler, study.pruner = _strategy(sweep, seed)
    return study, sweep


def describe_sweep(sweep: Sweep) -> str:
    parts = [" ".join(sweep.specs), *(f"--grid {a}" for a in sweep.grid),
             *(f"--search {r}" for r in sweep.search)]
    return " ".join(parts + ([f"--trials {sweep.trials}"] if sweep.trials else []))


# --- what is left to do ------------------------------------------------------------------------

def queue_unfinished(study, sweep: Sweep) -> None:
    """Queue every grid point, and every failed trial (stopped by Ctrl-C or a crash), that has
    no finished, running or queued trial; run by the sweep's own command, never by joiners."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    live = (states.COMPLETE, states.PRUNED, states.RUNNING, states.WAITING)
    groups: dict[str, list] = {}
    for trial in study.get_trials(deepcopy=False):
        if not is_void(trial):
            groups.setdefault(params_key(trial_point(trial)), []).append(trial)
    retry = _retry_callback()
    points = {params_key(point): point for point in sweep.points()}
    for key in points or groups:
        trials = groups.get(key, [])
        if any(t.state in live for t in trials):
            continue
        if trials:
            retry(study, max(trials, key=lambda t: t.number))
        else:
            study.enqueue_trial(points[key])


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
        """What the study records about the trial (user attributes)."""
        curve = [row["val_acc"] for row in self.history]
        attrs = {"status": self.status, "curve": curve}
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


def train_trial(config: TrainConfig, model, data, run: Path, progress: bool = True,
                on_epoch_end=None) -> TrialOutcome:
    """Train (or continue, or just read) the run of one trial in `run`."""
    recorded = read_result(run)
    if recorded.get("status") == "diverged":
        return TrialOutcome(recorded, run_history(run), _where(recorded))
    if recorded.get("status") == "completed":
        history = run_history(run)
        return TrialOutcome(recorded, history, blew_up(history, data.num_classes))
    resume = (run / CONFIG).is_file()
    trainer = Trainer(config, progress=progress, on_epoch_end=on_epoch_end)
    try:
        history = trainer.fit(model, data, out=run, resume=resume)
    except TrainingDiverged:
        recorded = read_result(run)
        return TrialOutcome(recorded, run_history(run), _where(recorded))
    return TrialOutcome(history.result, history.rows, blew_up(history.rows, data.num_classes))


def _where(result: dict) -> dict:
    return {key: result.get(key) for key in ("epoch", "step", "lr")}


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
        optuna = _optuna()
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
        trial.set_user_attr("run", run.name)
        trial.set_user_attr("spec", config.model)
        self.say(f"trial {trial.number}: {describe(params)} -> {run}")

        key = tuple(getattr(config, name) for name in DATA_SETTINGS)
        if key not in self.data:
            self.data[key] = make_data(config)
        model = build_model(config, self.data[key])
        trial.set_user_attr("parameters", sum(p.numel() for p in model.parameters()))
        outcome = train_trial(config, model, self.data[key], run, self.progress,
                              self._reporter(trial, config))
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

    def _reporter(self, trial, config: TrainConfig):
        """Report each epoch's validation accuracy; stop a hopeless trial before its last epoch."""
        optuna = _optuna()

        def report(row: dict) -> None:
            trial.report(row["val_acc"], row["epoch"])
            if row["epoch"] < config.epochs and trial.should_prune():
                trial.set_user_attr("status", "pruned")
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


def open_sweep(folder: str | Path, storage: str | None = None):
    """The study of the sweep in `folder` (its sweep.json names the study and storage)."""
    folder = Path(folder)
    record_file = folder / SWEEP_FILE
    if not record_file.is_file():
        from cnnlab.errors import MissingFileError

        raise MissingFileError(f"no sweep at {folder} (expected {record_file}); pass the "
                               "folder a `cnnlab sweep` wrote")
    record = json.loads(record_file.read_text())
    url = storage or record["storage"]
    if "***" in url:
        raise UsageError(f"{record_file} hides the storage's password; pass --storage URL")
    study, _ = load_study(record["name"], url)
    return study

