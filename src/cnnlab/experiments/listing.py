"""Run directories side by side: `cnnlab runs` lists them, `cnnlab runs compare` contrasts them.

The listing reads each run's ``config.json``, ``metrics.csv`` and ``result.json``: its spec, key
settings, test accuracy, epochs, time and status. A comparison prints the settings that differ
between runs and overlays their curves in one figure.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from cnnlab.display import LEFT, RIGHT, TableData, plain_text
from cnnlab.errors import MissingFileError
from cnnlab.experiments.sweep.results import percent
from cnnlab.files import save_figure
from cnnlab.models.spec import format_value
from cnnlab.train.config import TrainConfig, resolve_config
from cnnlab.train.rundir import CONFIG, METRICS, RESULT, RunDir
from cnnlab.train.runs import recorded_config

SHOWN = ("lr", "batch_size", "epochs", "optimizer")
"""Settings every listing shows; the others appear when they differ from the defaults."""
UNLISTED = ("model", "decisions", "device", "threads", "data_dir", *SHOWN)


def read_result(run: Path) -> dict:
    """A run's ``result.json`` ({} while it has none)."""
    path = Path(run) / RESULT
    return json.loads(path.read_text()) if path.is_file() else {}


def run_history(run: Path) -> list[dict]:
    """A run's epochs from ``metrics.csv`` (numbers as numbers; [] before its first epoch)."""
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{key: float(value) if key != "epoch" else int(value)
                 for key, value in row.items()} for row in csv.DictReader(f)]


LOSS_LIMIT = 2.0
"""A run whose training loss ends an epoch above this many times the loss of guessing uniformly
(ln of the number of classes) is counted as diverged: its loss grew instead of falling, even
where it stayed finite."""


def blew_up(history: list[dict], num_classes: int) -> dict | None:
    """Where a finished run's loss grew past the limit (or its validation loss is not finite)."""
    limit = LOSS_LIMIT * math.log(num_classes)
    for row in history:
        if not row["train_loss"] <= limit or not math.isfinite(row["val_loss"]):
            return {"epoch": row["epoch"], "step": None, "lr": row["lr"],
                    "loss": row["train_loss"]}
    return None


@dataclass
class RunInfo:
    """One run directory as the listing sees it."""

    path: Path
    config: TrainConfig
    result: dict
    history: list[dict]
    num_classes: int

    @classmethod
    def read(cls, path: str | Path) -> RunInfo:
        path = Path(path)
        record = RunDir.open(path).read_config()
        return cls(path, recorded_config(record, path / CONFIG), read_result(path),
                   run_history(path), len(record["data"]["classes"]))

    @property
    def status(self) -> str:
        """completed, diverged (a non-finite loss, or one that grew past the limit), or
        unfinished (k/n epochs: resumable with --resume)."""
        status = self.result.get("status")
        if status == "completed" and blew_up(self.history, self.num_classes):
            return "diverged"
        return status or f"unfinished ({len(self.history)}/{self.config.epochs} epochs)"

    def extra_settings(self) -> str:
        """The settings besides the listed ones that differ from the spec's defaults (the
        library's, with its seed recipe)."""
        default = resolve_config({"model": self.config.model}).to_dict()
        mine = self.config.to_dict()
        return " ".join(f"{key}={format_value(value)}" for key, value in mine.items()
                        if key not in UNLISTED and value != default[key])

    @property
    def seconds(self) -> float:
        return sum(row["seconds"] for row in self.history)


def find_runs(folder: str | Path = "runs") -> list[RunInfo]:
    """Every run directory under `folder` (sweep trials included), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"no folder {folder}; runs are written to runs/ by cnnlab train "
                               "(or name the folder: cnnlab runs DIR)")
    paths = sorted((p.parent for p in folder.rglob(CONFIG)),
                   key=lambda p: (p / CONFIG).stat().st_mtime)
    return [RunInfo.read(path) for path in paths]


def runs_table(runs: list[RunInfo], root: Path) -> TableData:
    headers = ("run", "model", "lr", "batch", "optimizer", "other settings", "test acc",
               "epochs", "time", "status")
    rows = []
    for run in runs:
        c = run.config
        rows.append((str(_relative(run.path, root)), c.model, f"{c.lr:g}", str(c.batch_size),
                     c.optimizer, run.extra_settings(), percent(run.result.get("test_acc")),
                     str(len(run.history)), f"{run.seconds:.0f} s", run.status))
    justify = (LEFT, LEFT, RIGHT, RIGHT, LEFT, LEFT, RIGHT, RIGHT, RIGHT, LEFT)
    return TableData(f"{len(runs)} runs in {root}", headers, rows, justify)


def list_runs(folder: str | Path = "runs") -> str:
    """The listing `cnnlab runs` prints."""
    runs = find_runs(folder)
    if not runs:
        return f"no runs in {folder}\n"
    return plain_text(runs_table(runs, Path(folder)).to_rich())


def differing_settings(runs: list[RunInfo]) -> dict[str, list]:
    """The settings (model spec included) whose values are not the same in every run."""
    records = [run.config.to_dict() for run in runs]
    return {key: [r[key] for r in records] for key in records[0]
            if key != "decisions" and len({json.dumps(r[key]) for r in records}) > 1}


@dataclass
class Comparison:
    """Runs side by side: the settings that differ, their results, and their curves."""

    runs: list[RunInfo]
    figure: Path | None = None
    """Where the overlaid curves were written."""

    def table(self) -> TableData:
        names = [run.path.name for run in self.runs]
        differ = differing_settings(self.runs)
        rows = [(key, *(format_value(v) for v in values)) for key, values in differ.items()]
        results = [("test acc", *(percent(run.result.get("test_acc")) for run in self.runs)),
                   ("epochs", *(str(len(run.history)) for run in self.runs)),
                   ("status", *(run.status for run in self.runs))]
        title = "settings that differ, and results" if differ else \
            "the runs share every setting; results"
        return TableData(title, ("", *names), rows + results, (LEFT, *(RIGHT,) * len(names)))

    def plot(self):
        """Validation accuracy and training loss per epoch of every run, overlaid."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.8))
        axes = fig.subplots(1, 2)
        for run in self.runs:
            epochs = [row["epoch"] for row in run.history]
            axes[0].plot(epochs, [row["val_acc"] for row in run.history], "o-",
                         label=run.path.name, markersize=3)
            axes[1].plot(epochs, [row["train_loss"] for row in run.history], "o-",
                         label=run.path.name, markersize=3)
        for ax, name in zip(axes, ("validation accuracy", "training loss"), strict=True):
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def __str__(self) -> str:
        return plain_text(self.table().to_rich())


def compare_runs(paths: list[str | Path], figure: str | Path | None = None) -> Comparison:
    """Compare run directories; write the overlaid curves to `figure` (default
    ``compare.png`` beside the runs)."""
    comparison = Comparison([RunInfo.read(path) for path in paths])
    if figure is None:
        figure = _common_parent([run.path for run in comparison.runs]) / "compare.png"
    comparison.figure = save_figure(comparison.plot(), figure)
    return comparison


def _common_parent(paths: list[Path]) -> Path:
    parents = [p.resolve().parent for p in paths]
    common = parents[0]
    while not all(common == p or common in p.parents for p in parents):
        common = common.parent
    return common


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path

