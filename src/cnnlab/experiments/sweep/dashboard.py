"""A sweep's study in optuna-dashboard (the optional extra ``cnnlab[dashboard]``).

Every trial carries what the dashboard shows beside its parameters: its spec, run directory,
seed, status, seconds and accuracies as user attributes, and its validation accuracy per epoch
as intermediate values. The server listens on 127.0.0.1 only, and runs until Ctrl-C.
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.errors import UsageError
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT
from cnnlab.experiments.sweep.storage import SWEEP_FILE, hidden_password, open_storage

HOST = "127.0.0.1"
PORT = 8080
INSTALL = "pip install 'cnnlab[dashboard]'"


def dashboard_storage(sweep: str, storage: str | None = None) -> tuple[str, str]:
    """The study's name and storage URL for sweep `sweep`.

    `sweep` is a sweep's folder (holding its sweep.json), or a sweep's name: with `storage`,
    the study of that name there; without, the sweep in ``runs/<name>``.
    """
    folder = Path(sweep)
    if not (folder / SWEEP_FILE).is_file():
        if storage:
            return sweep, storage
        folder = SWEEPS_ROOT / sweep
    record_file = folder / SWEEP_FILE
    if not record_file.is_file():
        raise UsageError(f"--dashboard {sweep}: no sweep there (expected {Path(sweep) / SWEEP_FILE}"
                         f" or {record_file}); pass a sweep's folder or name, or the study's "
                         "name with --storage URL")
    record = json.loads(record_file.read_text())
    url = storage or record["storage"]
    if "***" in url:
        raise UsageError(f"{record_file} hides the storage's password; pass --storage URL")
    return record["name"], url


def study_url(storage, name: str, port: int = PORT) -> str:
    """The address of study `name`'s page in the dashboard (KeyError if `storage` lacks it)."""
    return f"http://{HOST}:{port}/dashboard/studies/{storage.get_study_id_from_name(name)}"


def serve_dashboard(sweep: str, storage: str | None = None, port: int | None = None) -> None:
    """Serve optuna-dashboard for sweep `sweep` (see `dashboard_storage`) on 127.0.0.1:`port`
    (default 8080), printing the study's address first; returns when Ctrl-C stops it."""
    port = port or PORT
    try:
        # deferred: optuna-dashboard is an optional extra, needed by this function alone
        import optuna_dashboard
    except ImportError:
        raise UsageError(f"--dashboard needs optuna-dashboard, an optional extra: {INSTALL}"
                         ) from None
    name, url = dashboard_storage(sweep, storage)
    opened = open_storage(url)
    try:
        address = study_url(opened, name, port)
    except KeyError:
        raise UsageError(f"no sweep {name!r} in {hidden_password(url)}") from None
    print(f"optuna-dashboard for sweep {name}: {address} (Ctrl-C stops it)", flush=True)
    try:
        optuna_dashboard.run_server(opened, host=HOST, port=port)
    except OSError as exc:
        raise UsageError(f"cannot serve the dashboard on {HOST}:{port} ({exc.strerror or exc}); "
                         "choose another --port") from None
