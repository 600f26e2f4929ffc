"""The figures studies draw from their results, each a function of the recorded rows and curves.

A figure maker takes a `StudyResults` and returns ``(file stem, caption, Figure)``; the runner
saves it as a PNG beside the results. The makers here are shared: curves overlaid, accuracy per
configuration, training against test accuracy, a metric against a swept key, throughput and
memory against the batch size, and the error EDFs of design spaces.
"""

from __future__ import annotations

import numpy as np

from cnnlab.analysis.statistics import edf_band, interval
from cnnlab.experiments.studies.records import StudyResults

LOG_AXES = {"lr": 10, "weight_decay": 10, "batch_size": 2}
"""Keys drawn on a log axis, and its base."""


def _figure(width: float, height: float):
    """A matplotlib Figure (imported here: listing or planning a study needs no matplotlib)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _percent(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0))


def _axes(panels: int, width: float = 4.8, height: float = 3.6):
    figure = _figure(width * panels, height)
    return figure, figure.subplots(1, panels, squeeze=False)[0]


def _finish(figure, axes):
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    figure.tight_layout()
    return figure


def _epoch_axis(ax, epochs: int) -> None:
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(1, epochs) + 0.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def curves(results: StudyResults):
    """Training loss (a log axis) and validation accuracy per epoch of every trial, overlaid,
    one legend beside them."""
    figure = _figure(12.5, 3.8)
    *axes, legend = figure.subplots(1, 3, gridspec_kw={"width_ratios": (1, 1, 0.6)})
    colours = {spec: f"C{i % 10}" for i, spec in enumerate(dict.fromkeys(
        row["model"] for row in results.rows))}
    styles = ("-", "--", ":", "-.")
    for i, row in enumerate(results.rows):
        epochs = results.curve(row)
        if not epochs:
            continue
        x = [e["epoch"] for e in epochs]
        same_spec = [r for r in results.rows[:i] if r["model"] == row["model"]]
        look = {"color": colours[row["model"]] if len(colours) > 1 else f"C{i % 10}",
                "linestyle": styles[len(same_spec) // 10 % len(styles)] if len(colours) > 1
                else styles[i // 10 % len(styles)], "marker": "o", "markersize": 3}
        if len(colours) > 1:
            look["alpha"] = 0.35 + 0.65 * (len(same_spec) % 10 + 1) / 10
        axes[0].plot(x, [e["train_loss"] for e in epochs], **look)
        axes[1].plot(x, [e["val_acc"] for e in epochs], label=results.label(row), **look)
    longest = max((len(results.curve(row)) for row in results.rows), default=1)
    for ax, name in zip(axes, ("training loss", "validation accuracy"), strict=True):
        _epoch_axis(ax, longest)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    _percent(axes[1].yaxis)
    legend.axis("off")
    if axes[1].lines:
        legend.legend(*axes[1].get_legend_handles_labels(), loc="center left",
                      fontsize="x-small" if len(results.rows) > 12 else "small")
    figure.tight_layout()
    return "curves", "training loss and validation accuracy per epoch, every trial", figure


def accuracy_bars(results: StudyResults):
    """Test accuracy of every configuration as a bar at its mean over seeds, with its 95%
    interval and each seed's value as a dot (a variant with no finished seed at zero, marked)."""
    variants: dict[str, list[dict]] = {}
    for row in results.rows:
        variants.setdefault(results.label(row), []).append(row)
    figure = _figure(7.5, 0.5 + 0.42 * max(1, len(variants)))
    ax = figure.subplots()
    means = []
    for y, rows in enumerate(variants.values()):
        values = [r["test_acc"] for r in results.finished(rows) if r.get("test_acc") is not None]
        estimate = interval(values) if values else None
        mean = estimate.mean if estimate else 0.0
        means.append(mean)
        spread = None if estimate is None else [[side] for side in estimate.error_bar()]
        ax.barh(y, mean, color="C0", xerr=spread, capsize=3)
        ax.plot(values, [y] * len(values), "o", color="black", markersize=3, alpha=0.6)
        ax.text(max([mean, *values]), y, f" {mean:.1%}" if estimate else
                f" {', '.join(dict.fromkeys(r.get('status', '') for r in rows))}", va="center",
                fontsize="small")
    ax.set_yticks(range(len(variants)), list(variants))
    ax.invert_yaxis()
    seeds = results.seeds()
    ax.set_xlabel("test accuracy" + (f" (mean of {seeds} seeds, 95% interval, dots: seeds)"
                                     if seeds > 1 else ""))
    _percent(ax.xaxis)
    low = min((v for v in means if v > 0), default=0.0)
    ax.set_xlim(max(0.0, low - 0.1), min(1.0, max(means, default=1.0) + 0.08))
    return "accuracy", "test accuracy of each configuration", _finish(figure, [ax])


def _mean_line(ax, rows: list[dict], key: str, metric: str, label: str | None) -> None:
    """`metric` against `key`: the mean over seeds at each value, with its 95% interval as
    error bars where there are several seeds."""
    xs = sorted({r[key] for r in rows if r.get(metric) is not None})
    estimates = [interval([r[metric] for r in rows if r[key] == x and r.get(metric) is not None])
                 for x in xs]
    errors = [list(side) for side in zip(*(e.error_bar() for e in estimates), strict=True)]
    ax.errorbar(xs, [e.mean for e in estimates], yerr=errors or [[], []], fmt="o-", capsize=3,
                label=label)


def train_and_test(results: StudyResults):
    """Training against test (validation) accuracy per epoch, the gap between them shaded."""
    figure, axes = _axes(len(results.rows) or 1)
    for ax, row in zip(axes, results.rows, strict=False):
        epochs = results.curve(row)
        x = [e["epoch"] for e in epochs]
        train, held = [e["train_acc"] for e in epochs], [e["val_acc"] for e in epochs]
        ax.plot(x, train, "o-", markersize=3, label="training accuracy")
        ax.plot(x, held, "s--", markersize=3, label="test accuracy")
        ax.fill_between(x, held, train, alpha=0.15, color="C3", label="gap")
        ax.set_title(results.label(row) + (f" (seed {row['seed']})" if results.seeds() > 1
                                           else ""), fontsize="medium")
        _epoch_axis(ax, len(x))
        _percent(ax.yaxis)
    return "gap", "training and test accuracy per epoch, and the gap between them", \
        _finish(figure, axes)


def against(key: str, metrics: tuple[str, ...] = ("test_acc", "seconds_per_epoch",
                                                   "parameters")):
    """A maker of `metrics` against the swept `key`, one line per model spec."""
    names = {"test_acc": "test accuracy", "seconds_per_epoch": "seconds per epoch",
             "parameters": "parameters", "mflops": "MFLOPs per image"}

    def draw(results: StudyResults):
        figure, axes = _axes(len(metrics), width=4.2)
        specs = list(dict.fromkeys(row["model"] for row in results.rows))
        for ax, metric in zip(axes, metrics, strict=True):
            for spec in specs:
                rows = results.finished(results.where(model=spec)) if metric.endswith(
                    "_acc") else results.where(model=spec)
                _mean_line(ax, rows, key, metric,
                           results.names.get(spec, spec) if len(specs) > 1 else None)
            ax.set_xlabel(key.removeprefix("model."))
            ax.set_ylabel(names.get(metric, metric))
            if key in LOG_AXES:
                ax.set_xscale("log", base=LOG_AXES[key])
            if metric.endswith("_acc"):
                _percent(ax.yaxis)
        return f"against-{key}", f"{', '.join(names.get(m, m) for m in metrics)} against " \
            f"{key}", _finish(figure, axes)

    return draw


def throughput_and_memory(results: StudyResults):
    """Training images/s and the memory a batch adds against the batch size, per spec, and the
    test accuracy where the batch sizes were also trained."""
    trained = any(row.get("test_acc") is not None for row in results.rows)
    figure, axes = _axes(3 if trained else 2)
    specs = list(dict.fromkeys(row["model"] for row in results.rows))
    for spec in specs:
        rows = sorted(results.where(model=spec), key=lambda r: r["batch_size"])
        sizes = [r["batch_size"] for r in rows]
        label = results.names.get(spec, spec)
        axes[0].plot(sizes, [r["bench_images_per_s"] for r in rows], "o-", label=label)
        axes[1].plot(sizes, [(r["added_mib"] or 0) for r in rows], "o-", label=label)
        if trained:
            _mean_line(axes[2], results.finished(rows), "batch_size", "test_acc", label)
    labels = ("training images/s", "memory a batch adds (MiB)", "test accuracy")
    for ax, name in zip(axes, labels, strict=False):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(name)
    if trained:
        _percent(axes[2].yaxis)
    what = "throughput, added memory and test accuracy" if trained else \
        "throughput and added memory"
    return "batch-size", f"{what} against the batch size", _finish(figure, axes)


def error_edfs(column: str, confidence: float = 0.95):
    """A maker of the error EDF of each group of rows (by `column`): the fraction of models
    with a test error at most each value, as the RegNet paper compares design spaces, each with
    its pointwise percentile bootstrap band (groups of at least three models)."""

    def draw(results: StudyResults):
        figure, axes = _axes(1, width=6.4, height=4.4)
        ax = axes[0]
        groups = {group: sorted(1 - row["test_acc"] for row in results.where(**{column: group})
                                if row.get("test_acc") is not None)
                  for group in dict.fromkeys(row.get(column) for row in results.rows)}
        found = [error for errors in groups.values() for error in errors]
        low, high = (min(found), max(found)) if found else (0.0, 1.0)
        margin = max(0.01, 0.05 * (high - low))
        grid = np.linspace(low - margin, high + margin, 200)
        for group, errors in groups.items():
            if not errors:
                continue
            fractions = [(i + 1) / len(errors) for i in range(len(errors))]
            line, = ax.step([grid[0], *errors, grid[-1]], [0.0, *fractions, 1.0], where="post",
                            label=f"{group} (n={len(errors)})")
            if len(errors) >= 3:
                _, below, above = edf_band(errors, grid, confidence=confidence)
                ax.fill_between(grid, below, above, step="post", alpha=0.15,
                                color=line.get_color(), linewidth=0)
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("test error")
        ax.set_ylabel("fraction of models with at most this error")
        _percent(ax.xaxis)
        return "edf", (f"error empirical distribution function of each design space, shaded: "
                       f"its {confidence:.0%} pointwise bootstrap band"), _finish(figure, axes)

    return draw
