"""A run directory: everything needed to repeat, inspect and continue one training run.

``config.json`` (settings and versions), ``metrics.csv`` (a row per epoch), ``curves.png``
(loss and accuracy against epochs, like d2l's board), ``last.pt``/``best.pt`` checkpoints,
``result.json`` (final test accuracy or where training diverged) and TensorBoard event files
when ``tensorboard`` is installed.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import time
from pathlib import Path

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import (
    cannot_write,
    display_path,
    remove_stale_temporaries,
    save_figure,
    write_text,
)

CONFIG, METRICS, CURVES, RESULT = "config.json", "metrics.csv", "curves.png", "result.json"
LAST, BEST, LOCK = "last.pt", "best.pt", ".lock"


def default_run_path(model_name: str, root: str | Path = "runs") -> Path:
    """``runs/<model>-<YYYYmmdd-HHMMSS>``, with a suffix if that name is already taken."""
    base = Path(root) / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunDir:
    """The files of one run; creating one never overwrites an earlier run's content.

    A process that writes a run holds ``.lock`` (an advisory ``flock``, released by the system
    when the process dies, so a dead writer never blocks the run), so two processes never write
    one run at once.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tensorboard = None
        self._lock = None

    @classmethod
    def create(cls, path: str | Path) -> RunDir:
        """A new run directory, locked; an existing non-empty folder is refused (use --resume)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path} is a file, not a folder; choose another --out")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_write(path, exc) from None
        run = cls(path)._locked()
        remove_stale_temporaries(path)  # a writer killed before its first file was complete
        if any(p.name != LOCK for p in path.iterdir()):
            run.close()
            raise UsageError(f"run directory {path} already exists and is not empty; "
                             f"pass --resume {path} to continue it or choose another --out")
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory, to read."""
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise MissingFileError(f"no run at {path} (expected {path / CONFIG}); see `runs/`")
        return cls(path)

    @classmethod
    def resume(cls, path: str | Path) -> RunDir:
        """An existing run directory to continue: locked, its dead writer's temporaries removed."""
        run = cls.open(path)._locked()
        remove_stale_temporaries(run.path)
        return run

    def _locked(self) -> RunDir:
        """Hold the run's lock, or refuse in one line if another live process holds it."""
        try:
            handle = open(self.path / LOCK, "a+")  # noqa: SIM115 (held until close)
        except OSError as exc:
            raise cannot_write(self.path / LOCK, exc) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UsageError(f"run directory {self.path} is being written by {owner}; wait for "
                             "it to finish, or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._lock = handle
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def read_config(self) -> dict:
        """The run's record; a damaged or hand-edited file is one line naming it."""
        path = self.path / CONFIG
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{display_path(path)} is not valid JSON ({exc}); undo the edit, or "
                             "copy the record back from the run's checkpoint") from None
        if not isinstance(record, dict) or "model" not in record or "data" not in record:
            raise UsageError(f"{display_path(path)} is not a cnnlab run record (it needs "
                             "'model' and 'data' entries)")
        return record

    def write_config(self, config: dict) -> None:
        self._write_text(CONFIG, json.dumps(config, indent=2) + "\n")

    def write_result(self, result: dict) -> None:
        self._write_text(RESULT, json.dumps(result, indent=2) + "\n")

    def write_history(self, rows: list[dict], eval_split: str = "val") -> None:
        """Rewrite metrics.csv and curves.png from the whole history (resume-safe).

        ``eval_split`` names the split behind the ``val_*`` columns in the plot ("val" or "test").
        """
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        self._write_text(METRICS, buffer.getvalue())
        plot_curves(rows, self.path / CURVES, eval_split)
        self._log_tensorboard(rows[-1])

    def _log_tensorboard(self, row: dict) -> None:
        """Add one epoch's scalars to TensorBoard event files, when tensorboard is installed."""
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tensorboard = False
                return
            self._tensorboard = SummaryWriter(log_dir=str(self.path / "tensorboard"))
        if self._tensorboard:
            for key, value in row.items():
                split, _, metric = key.partition("_")
                tag = f"{metric}/{split}" if split in ("train", "val") else key  # loss/train
                if key != "epoch":
                    self._tensorboard.add_scalar(tag, value, row["epoch"])
            self._tensorboard.flush()

    def close(self) -> None:
        if self._tensorboard:
            self._tensorboard.close()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _write_text(self, name: str, text: str) -> None:
        write_text(self.path / name, text)


def plot_curves(rows: list[dict], path: str | Path, eval_split: str = "val") -> None:
    """Loss and accuracy against epochs, train and validation (or test), side by side."""
    from cnnlab.train.history import History

    save_figure(History(rows).plot(eval_split), path)
