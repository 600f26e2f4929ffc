"""What a sweep found: one row per trial, as a table, ``sweep.csv`` and ``sweep.png``.

The figure shows the final validation accuracy against each swept value, one line per model spec
(and per combination of the other swept values), on a log axis for learning rates, beside the
validation-accuracy curve of every trial. When ``lr`` is swept, the results end with the largest
learning rate each spec trained at without diverging.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from cnnlab.display import LEFT, RIGHT, TableData, percent, plain_text
from cnnlab.experiments.sweep.definition import Sweep
from cnnlab.experiments.sweep.space import MODEL, describe, params_key
from cnnlab.experiments.sweep.trials import is_void, slot, trial_point
from cnnlab.files import save_figure, write_text
from cnnlab.models.spec import format_value

CSV_FILE, FIGURE_FILE = "sweep.csv", "sweep.png"
LOG_KEYS = ("lr", "weight_decay")
"""Keys drawn on a log axis (so is any key searched on a log scale)."""
_STATE_RANK = {"FAIL": 0, "WAITING": 1, "RUNNING": 2, "PRUNED": 3, "COMPLETE": 3}


@dataclass(frozen=True)
class StableLR:
    """The largest lr a group of trials trained at, and the smallest it diverged at."""

    group: str
    stable: float | None
    diverged: float | None

    def __str__(self) -> str:
        if self.stable is None:
            return f"{self.group}: diverged at every lr tried (smallest {self.diverged:g})"
        beyond = (f"diverged from {self.diverged:g}" if self.diverged is not None
                  else "none diverged")
        return f"{self.group}: {self.stable:g} ({beyond})"


@dataclass
class SweepResults:
    """The trials of one sweep, one row each, with their validation curves."""

    name: str
    sweep: Sweep
    rows: list[dict]
    curves: list[list[float]]
    folder: Path | None = None
    """The sweep's folder, where `write` puts sweep.csv and sweep.png."""

    @property
    def keys(self) -> tuple[str, ...]:
        return self.sweep.keys

    def group(self, row: dict, without: str | None = None) -> str:
        """The row's model spec and swept values other than `without`, as one label."""
        return describe({MODEL: row[MODEL], **{k: row[k] for k in self.keys if k != without}})

    def stable_lrs(self) -> list[StableLR]:
        """Per spec (and other swept values): the largest lr that trained without diverging."""
        if "lr" not in self.keys:
            return []
        groups: dict[str, list[dict]] = {}
        for row in self.rows:
            groups.setdefault(self.group(row, without="lr"), []).append(row)
        found = []
        for label, rows in groups.items():
            stable = [r["lr"] for r in rows if r["status"] == "completed"]
            diverged = [r["lr"] for r in rows if r["status"] == "diverged"]
            if stable or diverged:
                found.append(StableLR(label, max(stable, default=None),
                                      min(diverged, default=None)))
        return found

    def table(self) -> TableData:
        headers = ("trial", "model", *self.keys, "val acc", "test acc", "best epoch", "status",
                   "s/epoch", "parameters")
        rows = [(str(r["trial"]), r[MODEL], *(_cell(r[k]) for k in self.keys),
                 percent(r["val_acc"], ""), percent(r["test_acc"], ""), _cell(r["best_epoch"]),
                 r["status"] + (f" ({r['note']})" if r["note"] else ""),
                 "" if r["seconds_per_epoch"] is None else f"{r['seconds_per_epoch']:.1f}",
                 "" if r["parameters"] is None else f"{r['parameters']:,}") for r in self.rows]
        justify = (RIGHT, LEFT, *(RIGHT,) * len(self.keys), RIGHT, RIGHT, RIGHT, LEFT, RIGHT,
                   RIGHT)
        done = sum(r["status"] in ("completed", "diverged", "pruned") for r in self.rows)
        return TableData(f"sweep {self.name}: {done} of {len(self.rows)} trials finished",
                         headers, rows, justify)

    def report(self) -> str:
        """The table, then the largest stable learning rate of each spec when lr was swept."""
        text = plain_text(self.table().to_rich())
        stable = self.stable_lrs()
        if stable:
            text += "largest learning rate that trained without diverging:\n"
            text += "".join(f"  {line}\n" for line in stable)
        return text

    def write_csv(self, path: str | Path) -> Path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[0]) if self.rows else ["trial"])
        writer.writeheader()
        writer.writerows(self.rows)
        return write_text(path, buffer.getvalue())

    def plot(self):
        """The figure of ``sweep.png`` (a matplotlib Figure)."""
        from matplotlib.figure import Figure

        panels = self.keys or (MODEL,)
        fig = Figure(figsize=(4.6 * (len(panels) + 1), 3.8))
        axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
        for ax, key in zip(axes, panels, strict=False):
            self._draw_metric(ax, key)
        self._draw_curves(axes[-1])
        fig.tight_layout()
        return fig

    def _draw_metric(self, ax, key: str) -> None:
        """Final validation accuracy against `key`; diverged trials crossed out in red (at 0
        when they have no accuracy)."""
        lines: dict[str, list[dict]] = {}
        for row in self.rows:
            lines.setdefault(self.group(row, without=key) if key != MODEL else "trials",
                             []).append(row)
        style = "o" if self.sweep.search else "o-"
        numeric = all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool)
                      for r in self.rows)
        for label, rows in lines.items():
            if numeric:
                rows = sorted(rows, key=lambda r: r[key])
            shown = [r for r in rows if r["val_acc"] is not None]
            xs = [r[key] if numeric else format_value(r[key]) for r in shown]
            ax.plot(xs, [r["val_acc"] for r in shown], style, label=label)
            failed = [r for r in rows if r["status"] == "diverged"]
            if failed:
                ax.plot([r[key] if numeric else format_value(r[key]) for r in failed],
                        [r["val_acc"] or 0.0 for r in failed], "x", color="tab:red",
                        markersize=10, markeredgewidth=2)
        searched_log = any(r.key == key and r.log for r in self.sweep.search)
        if numeric and (key in LOG_KEYS or searched_log) and all(r[key] > 0 for r in self.rows):
            ax.set_xscale("log")
        ax.set_xlabel(key + ("  (x: diverged)" if any(r["status"] == "diverged"
                                                     for r in self.rows) else ""))
        ax.set_ylabel("final validation accuracy")
        ax.set_ylim(bottom=-0.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")

    def _draw_curves(self, ax) -> None:
        """Every trial's validation accuracy per epoch, one colour per model spec."""
        colours = {spec: f"C{i % 10}" for i, spec in enumerate(self.sweep.specs)}
        labelled = set()
        for row, curve in zip(self.rows, self.curves, strict=True):
            if not curve:
                continue
            label = None if row[MODEL] in labelled else row[MODEL]
            labelled.add(row[MODEL])
            ax.plot(range(1, len(curve) + 1), curve, "o-", color=colours.get(row[MODEL]),
                    alpha=0.7, markersize=3, label=label)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        longest = max(map(len, self.curves), default=0)
        ax.set_xlim(0.5, longest + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.set_title("every trial", fontsize="medium")
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize="small")

    @property
    def csv_path(self) -> Path:
        return Path(self.folder) / CSV_FILE

    @property
    def figure_path(self) -> Path:
        return Path(self.folder) / FIGURE_FILE

    def write(self) -> SweepResults:
        """Write ``sweep.csv`` and ``sweep.png`` into the sweep's folder."""
        self.write_csv(self.csv_path)
        save_figure(self.plot(), self.figure_path)
        return self

    def __str__(self) -> str:
        return self.report()


def _cell(value) -> str:
    return "" if value is None else format_value(value) if not isinstance(value, float) \
        else f"{value:g}"


def _status(trial) -> str:
    state = trial.state.name
    if state == "COMPLETE":
        return trial.user_attrs.get("status", "completed")
    return {"PRUNED": "pruned", "RUNNING": "running", "WAITING": "waiting"}.get(state, "failed")


def _curve(trial) -> list[float]:
    if "curve" in trial.user_attrs:
        return list(trial.user_attrs["curve"])
    return [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]


def _row(trial, sweep: Sweep) -> dict:
    point, attrs = trial_point(trial), trial.user_attrs
    curve = _curve(trial)
    diverged = attrs.get("diverged")
    note = ""
    if diverged:
        note = f"epoch {diverged['epoch']}" + (f" step {diverged['step']}"
                                               if diverged.get("step") is not None else "")
    return {"trial": trial.number, MODEL: point.get(MODEL),
            **{key: point.get(key) for key in sweep.keys},
            "val_acc": attrs.get("val_acc", curve[-1] if curve and not diverged else None),
            "test_acc": attrs.get("test_acc"), "best_epoch": attrs.get("best_epoch"),
            "status": _status(trial), "note": note,
            "seconds_per_epoch": attrs.get("seconds_per_epoch"),
            "parameters": attrs.get("parameters"), "run": attrs.get("run")}


def collect(study, folder: str | Path | None = None) -> SweepResults:
    """The sweep's rows: per trial slot, its finished (else running, queued, failed) trial."""
    sweep = Sweep.from_dict(study.user_attrs["sweep"])
    chosen: dict[int, object] = {}
    for trial in study.get_trials(deepcopy=False):
        if is_void(trial):
            continue
        key = slot(trial)
        rank = (_STATE_RANK[trial.state.name], trial.number)
        if key not in chosen or rank > (_STATE_RANK[chosen[key].state.name], chosen[key].number):
            chosen[key] = trial
    order = {params_key(point): i for i, point in enumerate(sweep.points())}
    trials = sorted(chosen.values(), key=lambda t: (order.get(params_key(trial_point(t)),
                                                              len(order)), slot(t)))
    return SweepResults(study.study_name, sweep, [_row(t, sweep) for t in trials],
                        [_curve(t) for t in trials], None if folder is None else Path(folder))


def write_summary(study, folder: str | Path) -> SweepResults:
    """Collect the study's results and write ``sweep.csv`` and ``sweep.png`` into `folder`."""
    return collect(study, folder).write()
