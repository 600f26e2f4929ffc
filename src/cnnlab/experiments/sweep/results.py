"""What a sweep found: one row per trial, as a table, ``sweep.csv`` and ``sweep.png``.

The figure shows the final validation accuracy against each swept value, one line per model spec
(and per combination of the other swept values), on a log axis for learning rates, beside the
validation-accuracy curve of every trial. When ``lr`` is swept, the results end with the largest
learning rate each spec trained at without diverging.

A sweep repeated over several seeds (``--seeds 3``) is summarised per variant: a variant is a
trial's model spec and swept values other than the seed, and its accuracy is the mean over its
completed trials (one per seed; diverged, pruned, failed and unfinished trials do not count)
with a 95% Student t interval and n. ``sweep.csv`` keeps one row per trial and adds, for
``val_acc`` and ``test_acc``, the variant's ``_mean``, ``_low``, ``_high`` and ``_n`` to each
row; the printed table and the notebook display show one row per variant, the figure each
variant's mean with its interval as an error bar, and the largest stable learning rate is given
per seed, then summarised. A sweep with one seed (none asked, or ``--seeds 1``) and a search
(each of its trials samples its own point) keep the per-trial forms, ``sweep.csv`` without the
added columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cnnlab.analysis.statistics import Estimate, variant_intervals, with_intervals
from cnnlab.display import LEFT, RIGHT, TableData, percent, plain_text, render_html
from cnnlab.experiments.sweep.definition import Sweep
from cnnlab.experiments.sweep.space import MODEL, SEED, describe, params_key
from cnnlab.experiments.sweep.trials import is_void, slot, trial_point
from cnnlab.files import save_figure, write_text
from cnnlab.models.spec import format_value

CSV_FILE, FIGURE_FILE = "sweep.csv", "sweep.png"
LOG_KEYS = ("lr", "weight_decay")
"""Keys drawn on a log axis (so is any key searched on a log scale)."""
_STATE_RANK = {"FAIL": 0, "WAITING": 1, "RUNNING": 2, "PRUNED": 3, "COMPLETE": 3}
SUMMARISED = ("val_acc", "test_acc")
"""The columns a repeated sweep summarises per variant (mean, 95% interval and n)."""
METHOD = ("val acc, test acc: mean [95% Student t interval, n - 1 degrees of freedom] over the "
          "seeds whose trial completed (n)")
"""How a repeated sweep's table summarises each variant, printed under it."""
STABLE_TITLE = "largest learning rate that trained without diverging"


@dataclass(frozen=True)
class StableLR:
    """The largest lr a group of trials trained at, and the smallest it diverged at.

    With several seeds, `by_seed` holds each seed's ``(seed, stable, diverged)``; then `stable`
    is the largest lr that trained on every one of those seeds (None when none did) and
    `diverged` the smallest lr that diverged on any.
    """

    group: str
    stable: float | None
    diverged: float | None
    by_seed: tuple[tuple[int, float | None, float | None], ...] = ()

    def __str__(self) -> str:
        if self.by_seed:
            return f"{self.group}: {self._per_seed()}"
        if self.stable is None:
            return f"{self.group}: diverged at every lr tried (smallest {self.diverged:g})"
        beyond = (f"diverged from {self.diverged:g}" if self.diverged is not None
                  else "none diverged")
        return f"{self.group}: {self.stable:g} ({beyond})"

    def _per_seed(self) -> str:
        """``0.3 on all 3 seeds (diverged from 1 on 3 of 3)``, or per value of the seeds:
        ``1 on seeds 0, 2; 0.3 on seed 1 (diverged from 3 on seeds 0, 2; from 1 on seed 1)``."""
        n = len(self.by_seed)
        stable = _by_value([(seed, lr) for seed, lr, _ in self.by_seed], reverse=True)
        if len(stable) == 1:
            ((value, _),) = stable.items()
            head = (f"{value:g} on all {n} seeds" if value is not None
                    else f"diverged at every lr tried on all {n} seeds")
        else:
            head = "; ".join(f"{value:g} on {_seeds(seeds)}" if value is not None
                             else f"none on {_seeds(seeds)} (diverged at every lr tried)"
                             for value, seeds in stable.items())
        diverged = _by_value([(seed, lr) for seed, _, lr in self.by_seed])
        found = {value: seeds for value, seeds in diverged.items() if value is not None}
        if not found:
            return f"{head} (none diverged)"
        shown = [f"from {value:g} on {len(seeds)} of {n}" if len(stable) == 1
                 else f"from {value:g} on {_seeds(seeds)}" for value, seeds in found.items()]
        if None in diverged:
            shown.append(f"none diverged on {_seeds(diverged[None])}")
        return f"{head} (diverged {'; '.join(shown)})"


def _by_value(pairs: list[tuple[int, float | None]], reverse: bool = False
              ) -> dict[float | None, list[int]]:
    """Seeds grouped by their value, values in order (None last), seeds in order."""
    grouped: dict[float | None, list[int]] = {}
    for seed, value in sorted(pairs, key=lambda pair: pair[0]):
        grouped.setdefault(value, []).append(seed)
    order = sorted((v for v in grouped if v is not None), reverse=reverse)
    return {value: grouped[value] for value in [*order, *([None] if None in grouped else [])]}


def _seeds(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


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

    @property
    def repeated(self) -> bool:
        """Whether the sweep repeats each grid point over several seeds, so that results are
        summarised per variant with intervals (see the module's docstring)."""
        return SEED in self.keys and len(self.sweep.seeds) > 1 and not self.sweep.search

    @property
    def variant_keys(self) -> tuple[str, ...]:
        """The swept keys that tell variants apart: all of them but the seed."""
        return tuple(key for key in self.keys if key != SEED)

    def group(self, row: dict, without: str | Iterable[str] = ()) -> str:
        """The row's model spec and swept values other than `without`, as one label."""
        left_out = {without} if isinstance(without, str) else set(without)
        return describe({MODEL: row[MODEL], **{k: row[k] for k in self.keys
                                               if k not in left_out}})

    def variant(self, row: dict) -> str:
        """The row's variant: its model spec and swept values other than the seed."""
        return self.group(row, without=SEED)

    def intervals(self, column: str = "val_acc") -> dict[str, Estimate]:
        """Each variant's `column` over its completed trials: mean, 95% t interval and n."""
        return variant_intervals(self.rows, self.variant, column, counts=_counts)

    def csv_rows(self) -> list[dict]:
        """The rows of ``sweep.csv``: one per trial, and for a repeated sweep each row also
        carries its variant's ``val_acc`` and ``test_acc`` mean, 95% interval bounds and n
        (``val_acc_mean``, ``val_acc_low``, ``val_acc_high``, ``val_acc_n``, ...; bounds empty
        where one seed counts, n 0 where none does)."""
        rows = [dict(row) for row in self.rows]
        if self.repeated:
            for column in SUMMARISED:
                rows = with_intervals(rows, self.variant, column, counts=_counts)
        return rows

    def stable_lrs(self) -> list[StableLR]:
        """Per spec (and other swept values): the largest lr that trained without diverging;
        in a repeated sweep per seed, then summarised."""
        if "lr" not in self.keys:
            return []
        groups: dict[str, list[dict]] = {}
        for row in self.rows:
            groups.setdefault(self.group(row, without=("lr", SEED) if self.repeated else "lr"),
                              []).append(row)
        found = []
        for label, rows in groups.items():
            if not self.repeated:
                stable, diverged = _stable(rows)
                if stable is not None or diverged is not None:
                    found.append(StableLR(label, stable, diverged))
                continue
            by_seed = []
            for seed in dict.fromkeys(r[SEED] for r in rows):
                stable, diverged = _stable([r for r in rows if r[SEED] == seed])
                if stable is not None or diverged is not None:
                    by_seed.append((seed, stable, diverged))
            if by_seed:
                everywhere = [lr for _, lr, _ in by_seed]
                found.append(StableLR(
                    label, None if None in everywhere else min(everywhere),
                    min((lr for _, _, lr in by_seed if lr is not None), default=None),
                    tuple(sorted(by_seed))))
        return found

    def title(self) -> str:
        done = sum(r["status"] in ("completed", "diverged", "pruned") for r in self.rows)
        return f"sweep {self.name}: {done} of {len(self.rows)} trials finished"

    def table(self) -> TableData:
        """One row per trial; for a repeated sweep one row per variant (`variant_table`)."""
        return self.variant_table() if self.repeated else self.trial_table()

    def variant_table(self) -> TableData:
        """One row per variant: val and test accuracy as mean [95% interval] over the seeds
        whose trial completed, n, and the trials that did not count."""
        val, test = self.intervals("val_acc"), self.intervals("test_acc")
        variants: dict[str, list[dict]] = {}
        for row in self.rows:
            variants.setdefault(self.variant(row), []).append(row)
        rows = []
        for label, members in variants.items():
            first = members[0]
            counted = [val[label].n if label in val else 0,
                       test[label].n if label in test else 0]
            n = str(counted[0]) if counted[0] == counted[1] or counted[1] == 0 else \
                f"{counted[0]} (test {counted[1]})"
            statuses = [r["status"] for r in members if not _counts(r)]
            others = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
            parameters = {r["parameters"] for r in members if r["parameters"] is not None}
            rows.append((first[MODEL], *(_cell(first[k]) for k in self.variant_keys),
                         _estimate(val.get(label)), _estimate(test.get(label)), n, others,
                         f"{parameters.pop():,}" if len(parameters) == 1 else ""))
        headers = ("model", *self.variant_keys, "val acc", "test acc", "n", "not counted",
                   "parameters")
        justify = (LEFT, *(RIGHT,) * len(self.variant_keys), RIGHT, RIGHT, RIGHT, LEFT, RIGHT)
        seeds = ", ".join(map(str, self.sweep.seeds))
        return TableData(f"{self.title()}; {len(rows)} variants over seeds {seeds}", headers,
                         rows, justify)

    def trial_table(self) -> TableData:
        """One row per trial (sweep.csv's rows)."""
        headers = ("trial", "model", *self.keys, "val acc", "test acc", "best epoch", "status",
                   "s/epoch", "parameters")
        rows = [(str(r["trial"]), r[MODEL], *(_cell(r[k]) for k in self.keys),
                 percent(r["val_acc"], ""), percent(r["test_acc"], ""), _cell(r["best_epoch"]),
                 r["status"] + (f" ({r['note']})" if r["note"] else ""),
                 "" if r["seconds_per_epoch"] is None else f"{r['seconds_per_epoch']:.1f}",
                 "" if r["parameters"] is None else f"{r['parameters']:,}") for r in self.rows]
        justify = (RIGHT, LEFT, *(RIGHT,) * len(self.keys), RIGHT, RIGHT, RIGHT, LEFT, RIGHT,
                   RIGHT)
        return TableData(self.title(), headers, rows, justify)

    def method(self) -> str | None:
        """The line that says how a repeated sweep's table summarises the seeds (else None)."""
        if not self.repeated:
            return None
        return f"{METHOD}; every trial is a row of {CSV_FILE}"

    def report(self) -> str:
        """The table (and how it summarises the seeds), then the largest stable learning rate
        of each spec when lr was swept."""
        text = plain_text(self.table())
        if self.method():
            text += self.method() + "\n"
        stable = self.stable_lrs()
        if stable:
            text += f"{STABLE_TITLE}:\n"
            text += "".join(f"  {line}\n" for line in stable)
        return text

    def tables(self) -> list[TableData]:
        """What a notebook shows: the table, then the largest stable learning rates."""
        stable = self.stable_lrs()
        return [self.table(), *([TableData(STABLE_TITLE, ("",), [(str(line),) for line in stable],
                                           (LEFT,), show_header=False)] if stable else [])]

    def _repr_html_(self) -> str:
        return render_html(self.tables(), note=self.method())

    def write_csv(self, path: str | Path) -> Path:
        rows = self.csv_rows()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
        return write_text(path, buffer.getvalue())

    def plot(self):
        """The figure of ``sweep.png`` (a matplotlib Figure)."""
        from matplotlib.figure import Figure

        panels = (self.variant_keys if self.repeated else self.keys) or (MODEL,)
        fig = Figure(figsize=(4.6 * (len(panels) + 1), 3.8))
        axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
        for ax, key in zip(axes, panels, strict=False):
            self._draw_metric(ax, key)
        self._draw_curves(axes[-1])
        fig.tight_layout()
        return fig

    def _draw_metric(self, ax, key: str) -> None:
        """Final validation accuracy against `key`; diverged trials crossed out in red (at 0
        when they have no accuracy). A repeated sweep draws each variant's mean over its
        completed trials with its 95% interval as an error bar, and every seed's point faintly."""
        lines: dict[str, list[dict]] = {}
        for row in self.rows:
            without = (key, SEED) if self.repeated else key
            lines.setdefault(self.group(row, without=without) if key != MODEL
                             else "variants" if self.repeated else "trials",
                             []).append(row)
        style = "o" if self.sweep.search else "o-"
        numeric = all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool)
                      for r in self.rows)
        for i, (label, rows) in enumerate(lines.items()):
            if numeric:
                rows = sorted(rows, key=lambda r: r[key])
            if self.repeated:
                self._draw_means(ax, key, rows, numeric, label, f"C{i % 10}")
            else:
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
        ax.set_ylabel("final validation accuracy" + (f"\n(mean, 95% t interval over "
                                                      f"{len(self.sweep.seeds)} seeds)"
                                                      if self.repeated else ""))
        ax.set_ylim(bottom=-0.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")

    def _draw_means(self, ax, key: str, rows: list[dict], numeric: bool, label: str,
                    colour: str) -> None:
        """One line's variants (its rows, in order of `key`): the mean of each with its
        interval as an error bar (none with one seed), and each completed trial faintly."""
        at = (lambda r: r[key]) if numeric else (lambda r: format_value(r[key]))
        found = variant_intervals(rows, at, "val_acc", counts=_counts)
        xs = [x for x in dict.fromkeys(map(at, rows)) if x in found]
        means = [found[x].mean for x in xs]
        errors = [list(side) for side in zip(*(found[x].error_bar() for x in xs), strict=True)]
        ax.errorbar(xs, means, yerr=errors or [[], []], fmt="o-", color=colour, capsize=4,
                    label=label)
        seeds = [r for r in rows if _counts(r) and r["val_acc"] is not None]
        ax.plot([at(r) for r in seeds], [r["val_acc"] for r in seeds], ".", color=colour,
                alpha=0.35, markersize=6)

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


def _counts(row: dict) -> bool:
    """Whether a trial counts towards its variant's interval: only completed ones do."""
    return row["status"] == "completed"


def _stable(rows: list[dict]) -> tuple[float | None, float | None]:
    """The largest lr among the rows that completed and the smallest that diverged."""
    return (max((r["lr"] for r in rows if r["status"] == "completed"), default=None),
            min((r["lr"] for r in rows if r["status"] == "diverged"), default=None))


def _estimate(estimate: Estimate | None) -> str:
    """An accuracy as ``84.1% [82.0, 86.2]`` (``84.1%`` from one seed, empty from none)."""
    return "" if estimate is None else estimate.percent(n=False)


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
