"""Run directories side by side: `cnnlab runs` lists them, `cnnlab runs compare` contrasts them.

The listing reads each run through `RunState` (``config.json``, ``metrics.csv`` and
``result.json``): its spec, key settings, test accuracy, epochs, time and status, the status by
the rule of `cnnlab.train.rundir`, so it always agrees with the run's ``result.json``. A run with
a damaged file is listed as damaged, with the reason. A comparison prints the settings that
differ between runs and overlays their curves in one figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cnnlab.display import LEFT, RIGHT, TableData, format_value, percent, plain_text
from cnnlab.errors import MissingFileError, UsageError
from cnnlab.files import RUNS_ROOT, save_figure
from cnnlab.train.config import resolve_config
from cnnlab.train.rundir import CONFIG, DAMAGED, STOPPED, RunState

SHOWN = ("lr", "batch_size", "epochs", "optimizer")
"""Settings every listing shows; the others appear when they differ from the defaults."""
UNLISTED = ("model", "decisions", "device", "threads", "data_dir", *SHOWN)


class RunInfo(RunState):
    """One run directory as the listing sees it (`RunInfo.read(path)`)."""

    @property
    def shown_status(self) -> str:
        """The status, a stopped run's as ``unfinished (k/n epochs)`` (resumable with --resume)."""
        if self.status == STOPPED:
            return f"unfinished ({len(self.history)}/{self.config.epochs} epochs)"
        return self.status

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


def find_runs(folder: str | Path = RUNS_ROOT) -> list[RunInfo]:
    """Every run directory under `folder` (sweep trials included), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"no folder {folder}; runs are written to runs/ by cnnlab train "
                               "(or name the folder: cnnlab runs DIR)")
    paths = sorted((p.parent for p in folder.rglob(CONFIG)), key=_written)
    return [RunInfo.read(path) for path in paths]


def _written(run: Path) -> float:
    """When a run's config.json was written (0 where it cannot be read: a dangling link)."""
    try:
        return (run / CONFIG).stat().st_mtime
    except OSError:
        return 0.0


def runs_table(runs: list[RunInfo], root: Path) -> TableData:
    headers = ("run", "model", "lr", "batch", "optimizer", "other settings", "test acc",
               "epochs", "time", "status")
    rows = [(str(_relative(run.path, root)), *_settings_cells(run),
             percent(run.result.get("test_acc"), ""), str(len(run.history)),
             f"{run.seconds:.0f} s", run.shown_status) for run in runs]
    justify = (LEFT, LEFT, RIGHT, RIGHT, LEFT, LEFT, RIGHT, RIGHT, RIGHT, LEFT)
    return TableData(f"{len(runs)} runs in {root}", headers, rows, justify)


def _settings_cells(run: RunInfo) -> tuple[str, ...]:
    """The model, lr, batch, optimizer and other settings of a run (blank for a damaged one)."""
    c = run.config
    if c is None:
        return ("",) * 5
    lr = "" if c.lr is None else f"{c.lr:g}"
    return c.model, lr, format_value(c.batch_size), c.optimizer, run.extra_settings()


def list_runs(folder: str | Path = RUNS_ROOT) -> str:
    """The listing `cnnlab runs` prints, and below it why each damaged run is damaged."""
    runs = find_runs(folder)
    if not runs:
        return f"no runs in {folder}\n"
    damaged = "".join(f"{DAMAGED}: {run.problem}\n" for run in runs if run.status == DAMAGED)
    return plain_text(runs_table(runs, Path(folder))) + damaged


def differing_settings(runs: list[RunInfo]) -> dict[str, list]:
    """The settings (model spec included) whose values are not the same in every run."""
    records = [run.config.to_dict() for run in runs]
    return {key: [r[key] for r in records] for key in records[0]
            if key != "decisions" and len({json.dumps(r[key]) for r in records}) > 1}


@dataclass
class RunComparison:
    """Runs side by side: the settings that differ, their results, and their curves."""

    runs: list[RunInfo]
    figure: Path | None = None
    """Where the overlaid curves were written."""

    def table(self) -> TableData:
        names = [run.path.name for run in self.runs]
        differ = differing_settings(self.runs)
        rows = [(key, *(format_value(v) for v in values)) for key, values in differ.items()]
        results = [("test acc", *(percent(run.result.get("test_acc"), "") for run in self.runs)),
                   ("epochs", *(str(len(run.history)) for run in self.runs)),
                   ("status", *(run.shown_status for run in self.runs))]
        title = "settings that differ, and results" if differ else \
            "the runs share every setting; results"
        return TableData(title, ("", *names), rows + results, (LEFT, *(RIGHT,) * len(names)))

    def plot(self):
        """Validation accuracy and training loss per epoch of every run, overlaid."""
        # deferred: matplotlib is slow to import and only the figure needs it
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
        return plain_text(self.table())


def compare_runs(paths: list[str | Path], figure: str | Path | None = None) -> RunComparison:
    """Compare run directories; write the overlaid curves to `figure` (default
    ``compare.png`` beside the runs)."""
    runs = [RunInfo.read(path) for path in paths]
    damaged = [run.problem for run in runs if run.status == DAMAGED]
    if damaged:
        raise UsageError(damaged[0])
    comparison = RunComparison(runs)
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

