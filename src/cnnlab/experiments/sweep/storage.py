"""Where a sweep lives: its Optuna study in SQLite (the default, in the sweep's folder) or in any
database several machines share, and the work queued in it.

A grid enqueues each of its points once; a search lets the TPE sampler propose ``trials``
points, and the median pruner stops trials whose per-epoch validation accuracy falls behind.
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT, Sweep
from cnnlab.experiments.sweep.space import params_key
from cnnlab.experiments.sweep.trials import is_void, trial_point
from cnnlab.files import write_text

optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials log nothing: sweeps print their own

HEARTBEAT = 10
"""Seconds between a worker's heartbeats; its trials are retried after twice that of silence."""
DATABASE, SWEEP_FILE = "sweep.db", "sweep.json"
@contextmanager
def _experimental():
    """Optuna marks its heartbeat and retries experimental; its warning is not for our users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _retry_callback():
    """Queue a copy of a failed trial, with its reported epochs, to continue its run."""
    with _experimental():
        return optuna.storages.RetryHeartbeatStaleTrialCallback(
            inherit_intermediate_values=True)


def sqlite_url(out: Path) -> str:
    """The default storage: an SQLite file in the sweep's folder."""
    return f"sqlite:///{(Path(out) / DATABASE).resolve()}"


def open_storage(url: str, heartbeat: int = HEARTBEAT):
    """Optuna's database storage at `url`, with heartbeats and retries of silent trials."""
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
    @event.listens_for(engine, "connect")
    def _connect(connection, _record):
        connection.isolation_level = None  # pysqlite's own BEGIN off: ours is emitted below

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are replaced


def hidden_password(url: str) -> str:
    """The storage URL with its password, if any, replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _strategy(sweep: Sweep, seed: int | None):
    """The sampler and pruner: TPE for a search (a grid's points are enqueued, so the sampler
    never chooses them), and for a search the median rule on each epoch's validation accuracy,
    once half the trials (at most 5) have finished."""
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
    study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat),
                                   direction="maximize", sampler=sampler, pruner=pruner,
                                   load_if_exists=True)
    recorded = study.user_attrs.get("sweep")
    if recorded is None:
        study.set_user_attr("sweep", sweep.to_dict())
        study.set_user_attr("out", str(out.resolve()))
    elif Sweep.from_dict(recorded).identity() != sweep.identity():
        raise UsageError(f"sweep {name!r} already exists with another definition "
                         f"({describe_sweep(Sweep.from_dict(recorded))}); choose another --name")
    else:
        _add_seeds(study, Sweep.from_dict(recorded), sweep)
    write_text(out / SWEEP_FILE, json.dumps({"name": name, "storage": hidden_password(url)},
                                            indent=2) + "\n")
    queue_unfinished(study, sweep)
    return study, out


def _add_seeds(study, recorded: Sweep, sweep: Sweep) -> None:
    """Record the seeds `sweep` repeats that the study's definition lacks, after its own."""
    seeds = (*recorded.seeds, *(s for s in sweep.seeds if s not in recorded.seeds))
    if seeds != recorded.seeds:
        study.set_user_attr("sweep", recorded.with_seeds(seeds).to_dict())


def load_study(name: str, storage: str, heartbeat: int = HEARTBEAT, seed: int | None = None):
    """An existing sweep's study and its recorded definition (for ``--join`` and ``--show``)."""
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


def open_sweep(folder: str | Path, storage: str | None = None):
    """The study of the sweep in `folder` (its sweep.json names the study and storage)."""
    folder = Path(folder)
    record_file = folder / SWEEP_FILE
    if not record_file.is_file():
        raise MissingFileError(f"no sweep at {folder} (expected {record_file}); pass the "
                               "folder a `cnnlab sweep` wrote")
    record = json.loads(record_file.read_text())
    url = storage or record["storage"]
    if "***" in url:
        raise UsageError(f"{record_file} hides the storage's password; pass --storage URL")
    study, _ = load_study(record["name"], url)
    return study
