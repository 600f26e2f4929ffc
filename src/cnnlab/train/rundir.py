"""A run directory: everything needed to repeat, inspect and continue one training run.

``config.json`` (settings and versions), ``metrics.csv`` (a row per epoch), ``curves.png``
(loss and accuracy against epochs, like d2l's board), ``last.pt``/``best.pt`` checkpoints,
``result.json`` (final test accuracy or where training diverged) and TensorBoard event files
when ``tensorboard`` is installed.

`RunDir` writes and reads every one of them, and `run_status` is the one rule for what a run's
files say about it: completed, diverged, stopped (started, no result yet) or damaged.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import (
    RUNS_ROOT,
    cannot_write,
    display_path,
    remove_stale_temporaries,
    save_figure,
    write_text,
)
from cnnlab.models.spec import ModelSpec
from cnnlab.train.config import TrainConfig
from cnnlab.train.history import History
from cnnlab.train.settings import switch_word

CONFIG, METRICS, CURVES, RESULT = "config.json", "metrics.csv", "curves.png", "result.json"
LAST, BEST, LOCK = "last.pt", "best.pt", ".lock"

COMPLETED, DIVERGED, STOPPED, DAMAGED = "completed", "diverged", "stopped", "damaged"
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_acc", "seconds", "lr")
"""The columns of ``metrics.csv`` that every reader relies on."""
WHERE = ("epoch", "step", "lr", "loss")
"""What a diverged result records about where it diverged (``loss``: a loss that grew)."""

LOSS_LIMIT = 2.0
"""A run whose training loss ends an epoch above this many times the loss of guessing uniformly
(ln of the number of classes) is counted as diverged: its loss grew instead of falling, even
where it stayed finite."""


def default_run_path(model_name: str, root: str | Path = RUNS_ROOT) -> Path:
    """``runs/<model>-<YYYYmmdd-HHMMSS>``, with a suffix if that name is already taken."""
    base = Path(root) / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def blew_up(history: list[dict], num_classes: int) -> dict | None:
    """Where a run's loss grew past the limit (or its validation loss is not finite)."""
    limit = LOSS_LIMIT * math.log(num_classes)
    for row in history:
        if not row["train_loss"] <= limit or not math.isfinite(row["val_loss"]):
            return {"epoch": row["epoch"], "step": None, "lr": row["lr"],
                    "loss": row["train_loss"]}
    return None


def diverged_at(result: dict, history: list[dict], num_classes: int) -> dict | None:
    """Where a run with a result diverged: as its result records it, or where its loss blew up
    (a run recorded ``completed`` before finished runs were checked); None if it did not."""
    if result.get("status") == DIVERGED:
        return {key: result[key] for key in WHERE if key in result}
    return blew_up(history, num_classes) if result else None


def why_diverged(where: dict, num_classes: int) -> str:
    """Why a run diverged, in words, from where it diverged (`diverged_at`)."""
    epoch, loss = where.get("epoch"), where.get("loss")
    if loss is None:  # training stopped at its first non-finite loss
        step = f", step {where['step']}" if where.get("step") is not None else ""
        lr = f" (lr {where['lr']:g})" if where.get("lr") is not None else ""
        return f"the training loss was not finite at epoch {epoch}{step}{lr}"
    limit = LOSS_LIMIT * math.log(num_classes)
    if not loss <= limit:
        return (f"the training loss went above the limit at epoch {epoch}: {loss:.4g}, limit "
                f"{limit:.4g} ({LOSS_LIMIT:g} times the loss of guessing uniformly among "
                f"{num_classes} classes)")
    return f"the validation loss was not finite at epoch {epoch}"


def run_status(result: dict, history: list[dict], num_classes: int) -> str:
    """The status of a readable run: stopped before it has a result (killed, interrupted or
    still training), else diverged (`diverged_at`) or completed."""
    if not result:
        return STOPPED
    return DIVERGED if diverged_at(result, history, num_classes) else COMPLETED


def record_problem(record) -> str | None:
    """What a ``config.json`` record lacks that a reader relies on (None: nothing): a model
    with its spec or name, and the data's class names."""
    if not isinstance(record, dict):
        return "it needs 'model' and 'data' entries"
    model, data = record.get("model"), record.get("data")
    if not (isinstance(model, dict) and isinstance(model.get("spec") or model.get("name"), str)):
        return "its 'model' entry needs the model's spec or name"
    if not (isinstance(data, dict) and isinstance(data.get("classes"), list) and data["classes"]):
        return "its 'data' entry needs the list of class names"
    return None


def class_count(record: dict) -> int:
    """How many classes the run of a ``config.json`` record learns."""
    return len(record["data"]["classes"])


def model_spec(record: dict) -> str:
    """The spec a run recorded; older runs recorded only the name, which is its default spec."""
    return record.get("spec") or record["name"]


def check_spec(spec: str, source: Path) -> None:
    """A UsageError naming `source` when the recorded model spec is not one cnnlab can build
    (an unknown model or option, a bad value: a hand edit, or a model since removed)."""
    try:
        ModelSpec.parse(spec)
    except UsageError as exc:
        raise UsageError(f"{display_path(source)}: model spec {spec!r}: {exc}") from None


def recorded_config(record: dict, source: Path) -> TrainConfig:
    """The TrainConfig a run recorded (``train``), or rebuilt from an older ``trainer`` entry."""
    if "train" in record:
        return TrainConfig.from_dict(record["train"], source=str(source))
    old = dict(record.get("trainer", {}))
    old.pop("progress", None)
    changes = {"epochs": old.pop("max_epochs", None)}
    for switch in ("amp", "channels_last"):
        if switch in old:
            changes[switch] = switch_word(old.pop(switch))
    changes["schedule"] = old.pop("schedule", None) or "none"
    description = record.get("data", {}).get("args", {})
    changes.update({key: description[key] for key in ("batch_size", "subset", "val_fraction")
                    if description.get(key) is not None})
    changes["augment"] = description.get("augment") or "none"
    changes["resize"] = record.get("data", {}).get("image_size")
    changes["model"] = model_spec(record["model"])
    return TrainConfig.from_dict({**old, **changes}, source=str(source))


class RunDir:
    """The files of one run; creating one never overwrites an earlier run's content.

    A process that writes a run holds ``.lock`` (an advisory ``flock``, released by the system
    when the process dies, so a dead writer never blocks the run), so two processes never write
    one run at once. Reading takes no lock: every file is replaced atomically, so a reader sees
    a run that is training as it was after some epoch.
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

    # --- reading ---------------------------------------------------------------------------------

    def read_config(self) -> dict:
        """The run's record; a damaged or hand-edited file is one line naming it."""
        record = self._read_json(CONFIG, "undo the edit, or copy the record back from the run's "
                                         "checkpoint")
        problem = record_problem(record)
        if problem:
            raise UsageError(f"{display_path(self.path / CONFIG)} is not a cnnlab run record "
                             f"({problem})")
        return record

    def read_result(self) -> dict:
        """The run's ``result.json`` ({} while it has none: the run has not ended)."""
        if not (self.path / RESULT).is_file():
            return {}
        result = self._read_json(RESULT, "delete it and --resume the run to measure it again")
        if not isinstance(result, dict) or result.get("status") not in (COMPLETED, DIVERGED):
            raise UsageError(f"{display_path(self.path / RESULT)} is not a cnnlab result (it "
                             f"needs a status, {COMPLETED} or {DIVERGED})")
        return result

    def read_history(self) -> list[dict]:
        """The run's epochs from ``metrics.csv``, numbers as numbers ([] before its first)."""
        path = self.path / METRICS
        if not path.is_file():
            return []
        try:
            with open(path, newline="") as f:
                rows = [{key: int(value) if key == "epoch" else float(value)
                         for key, value in row.items()} for row in csv.DictReader(f)]
        except (OSError, UnicodeDecodeError, csv.Error, TypeError, ValueError) as exc:
            raise UsageError(f"{display_path(path)} is not a table of numbers ({exc}); "
                             "--resume the run to write it again") from None
        missing = [key for key in HISTORY_COLUMNS if rows and key not in rows[0]]
        if missing:
            raise UsageError(f"{display_path(path)} lacks the columns {', '.join(missing)}")
        return rows

    def _read_json(self, name: str, advice: str):
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except OSError as exc:
            raise UsageError(f"cannot read {display_path(path)}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{display_path(path)} is not valid JSON ({exc}); {advice}") from None

    # --- writing ---------------------------------------------------------------------------------

    @staticmethod
    def finished(history: list[dict], num_classes: int) -> dict:
        """The status entries of a finished run's result: completed, or diverged and where,
        when its loss blew up (`blew_up`) although it stayed finite."""
        where = blew_up(history, num_classes)
        return {"status": DIVERGED, **where} if where else {"status": COMPLETED}

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
                # deferred: tensorboard is optional and slow to import
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


@dataclass
class RunState:
    """A run's files as they are now, and its status by `run_status`; a run with a file that
    cannot be read is ``damaged``, with the reason in `problem` (and no config)."""

    path: Path
    config: TrainConfig | None
    result: dict
    history: list[dict]
    status: str
    problem: str = ""
    """Why the run is damaged: the file that cannot be read, and what is wrong with it."""
    why: str = ""
    """Why the run diverged, in words (`why_diverged`); empty for any other status."""

    @classmethod
    def read(cls, path: str | Path) -> RunState:
        """Read a run without its lock (it may be training); no ``config.json`` is no run, and
        one that is there but cannot be read, or names a model spec that does not build, makes
        the run damaged."""
        run = RunDir(path)
        if not (run.file(CONFIG).exists() or run.file(CONFIG).is_symlink()):
            RunDir.open(path)  # the one-line error for a folder that holds no run
        try:
            record = run.read_config()
            config = recorded_config(record, run.file(CONFIG))
            check_spec(config.model, run.file(CONFIG))
            result, history = run.read_result(), run.read_history()
        except UsageError as exc:
            return cls(run.path, None, {}, [], DAMAGED, str(exc))
        classes = class_count(record)
        where = diverged_at(result, history, classes)
        status = run_status(result, history, classes)
        why = why_diverged(where, classes) if status == DIVERGED else ""
        return cls(run.path, config, result, history, status, why=why)


def plot_curves(rows: list[dict], path: str | Path, eval_split: str = "val") -> None:
    """Loss and accuracy against epochs, train and validation (or test), side by side."""
    save_figure(History(rows).plot(eval_split), path)
