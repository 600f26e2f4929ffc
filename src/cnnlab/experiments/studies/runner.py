"""Running a study: its sweep on the sweep engine, its measurements, then its files and report.

The training part is an ordinary sweep (an Optuna study named ``study-NAME-BUDGET`` in the
study's folder, or in ``--storage``), so a study resumes where it stopped, runs trials in
``--workers`` processes and grows to other machines with ``cnnlab sweep --join``. Measurements
(``cnnlab bench``) run after it, one at a time, since timing needs the machine to itself. Then
the study writes ``results.csv`` and ``curves.csv``, reads them back, and computes its conclusion,
table and figures from what it read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cnnlab.analysis.bench import bench, training_step_options
from cnnlab.analysis.statistics import interval, with_intervals
from cnnlab.analysis.summary import forward_flops
from cnnlab.display import LEFT, RIGHT, TableData, percent
from cnnlab.errors import UsageError
from cnnlab.experiments.studies.definition import CHAPTER, Plan, Study, deviations, study_settings
from cnnlab.experiments.studies.page import FigureFile, ReportPage, WrittenReport
from cnnlab.experiments.studies.records import (
    CURVE_COLUMNS,
    CURVES_FILE,
    RESULTS_FILE,
    StudyResults,
    step_time,
)
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT, Sweep
from cnnlab.experiments.sweep.space import SEED
from cnnlab.experiments.sweep.storage import SWEEP_FILE, open_sweep
from cnnlab.experiments.sweep.worker import run_sweep
from cnnlab.files import save_figure, write_csv
from cnnlab.models.build import build_for_input, input_chw
from cnnlab.models.spec import format_value
from cnnlab.train.device import resolve_device
from cnnlab.train.rundir import CONFIG, RunDir

MIB = 2**20
COLUMNS = {
    "model": ("model", str),
    "batch_size": ("batch size", str),
    "input": ("input", "{} px".format),
    "mflops": ("MFLOPs", "{:,.1f}".format),
    "parameters": ("parameters", "{:,}".format),
    "train_images": ("training images", "{:,}".format),
    "epochs": ("epochs", str),
    "status": ("status", str),
    "val_acc": ("val acc", percent),
    "test_acc": ("test acc", percent),
    "test_loss": ("test loss", "{:.4f}".format),
    "plain_test_acc": ("test acc, moving averages", percent),
    "train_acc": ("train acc", percent),
    "train_loss": ("train loss", "{:.4f}".format),
    "best_epoch": ("best epoch", str),
    "seconds_per_epoch": ("s/epoch", "{:.1f}".format),
    "images_per_s": ("images/s", "{:,.0f}".format),
    "bench_images_per_s": ("images/s (timed steps)", "{:,.0f}".format),
    "ms_per_step": ("ms/step [95% interval]", "{:,.1f}".format),
    "peak_mib": ("peak MiB", "{:,.1f}".format),
    "added_mib": ("added MiB", "{:,.1f}".format),
}
"""Each result column's header and format."""
TRIAL_COLUMNS = ("trial", "model")
RESULT_COLUMNS = ("input", "mflops", "parameters", "train_images", "epochs", "status", "note",
                  "val_acc", "test_acc", "plain_test_acc", "test_loss", "train_acc", "train_loss",
                  "best_epoch", "seconds_per_epoch", "images_per_s", "run")
MEASURED_COLUMNS = ("batch_size", "bench_images_per_s", "ms_per_step", "ms_per_step_low",
                    "ms_per_step_high", "peak_mib", "added_mib")


def study_folder(name: str, budget: str) -> Path:
    """A study's default folder: ``runs/study-NAME-BUDGET``."""
    return SWEEPS_ROOT / f"study-{name}-{budget}"


@dataclass
class StudyReport(WrittenReport):
    """A finished study: its plan, the results read back, the conclusion and its files."""

    study: Study | None = None
    plan: Plan | None = None
    results: StudyResults | None = None

    @property
    def rows(self) -> list[dict]:
        """The rows of ``results.csv`` as read back."""
        return self.results.rows if self.results else []


def run_study(study: Study, budget: str = "quick", out: str | Path | None = None,
              workers: int = 1, storage: str | None = None, progress: bool = True,
              seeds: tuple[int, ...] | None = None) -> StudyReport:
    """Run (or continue) `study` at `budget`, each trial repeated with `seeds` (default: the
    budget's), and write its folder; return its report."""
    plan = study.plan(budget, seeds)
    out = Path(out) if out is not None else study_folder(study.name, budget)
    started = time.perf_counter()
    rows, curves = [], []
    if plan.trains:
        rows, curves = train(plan, out, workers, storage, progress)
    if plan.measure is not None:
        rows = merge(rows, measure_plan(plan, progress)) if rows else measure_plan(plan, progress)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / RESULTS_FILE, interval_columns(rows, plan) if len(plan.seeds) > 1 else rows)
    if plan.trains:
        write_csv(out / CURVES_FILE, curves, list(CURVE_COLUMNS))
    results = StudyResults.read(out, budget, result_keys(plan), study.names)
    conclusion = study.conclude(results)
    figures = [FigureFile("sweep.png", "the sweep engine's figure: final validation accuracy "
                          "against each swept value, and every trial's validation curve")
               ] if plan.trains else []
    for make in study.figures:
        drawn = make(results)
        if drawn is None:  # nothing to draw from these results
            continue
        stem, caption, figure = drawn
        figures.append(FigureFile(f"{stem}.png", caption))
        save_figure(figure, out / f"{stem}.png")
    page = ReportPage(
        title=study.title or f"Study {study.name}",
        summary=study.question + " " + describe_plan(plan),
        budget=budget, conclusion=conclusion, tables=[results_table(study, results)],
        figures=figures, settings=settings_record(plan),
        deviations=deviations(plan, study.plan(CHAPTER)) if budget != CHAPTER else [],
        study_settings=study_settings(study.plan(CHAPTER)),
        files=[RESULTS_FILE, *([CURVES_FILE, "sweep.csv", "sweep.json"] if plan.trains else []),
               *(f.file for f in figures)],
        wall_seconds=time.perf_counter() - started, trained_seconds=trained_seconds(results.rows))
    page.write(out)
    return StudyReport(conclusion, out, page, study=study, plan=plan, results=results)


def trained_seconds(rows: list[dict]) -> float:
    """The training time the rows' runs recorded (seconds per epoch times epochs)."""
    return sum(row["seconds_per_epoch"] * row["epochs"] for row in rows
               if row.get("seconds_per_epoch") is not None and row.get("epochs"))


def result_keys(plan: Plan) -> tuple[str, ...]:
    """The keys that tell a study's rows apart besides the model: the grid's, and for a study
    that only measures, the batch size."""
    return plan.keys if plan.trains else ("batch_size",)


def describe_plan(plan: Plan) -> str:
    """What the plan runs, in one sentence."""
    what = []
    if plan.trains:
        trials = len(plan.specs)
        for values in plan.grid.values():
            trials *= len(values)
        repeats = len(plan.seeds)
        what.append(f"trains {trials} trial{'s' if trials != 1 else ''}" if repeats == 1 else
                    f"trains {trials} variant{'s' if trials != 1 else ''} with {repeats} seeds "
                    f"each ({trials * repeats} trials)")
    if plan.measure is not None:
        what.append("times training steps at batch sizes "
                    + ", ".join(map(str, plan.measure.batch_sizes)))
    return f"This run {' and '.join(what)}."


def settings_record(plan: Plan) -> dict:
    """The plan and the full configuration of its first trial (of each spec's, where specs have
    settings of their own), for the report's settings."""
    record = plan.to_dict()
    if plan.trains:
        for spec in plan.specs if plan.spec_settings else plan.specs[:1]:
            config = plan.config(spec).to_dict()
            config.pop("decisions", None)
            record[f"first trial of {spec}" if plan.spec_settings else "first trial"] = config
    return record


# --- training ------------------------------------------------------------------------------------

def train(plan: Plan, out: Path, workers: int, storage: str | None, progress: bool):
    """Run the plan's sweep; its rows with what each run recorded, and every run's epochs."""
    sweep = plan.sweep()
    check_same_definition(out, sweep, storage)
    done = run_sweep(sweep, out, name=f"study-{plan.study}-{plan.budget}", storage=storage,
                     workers=workers, progress=progress)
    rows, curves = [], []
    for row in done.rows:
        if row[SEED] not in plan.seeds:  # a repeat an earlier run of the study asked for
            continue
        params = {"model": row["model"], **{key: row[key] for key in (*plan.keys, SEED)}}
        config = sweep.config(params)
        run = RunDir(out / row["run"]) if row["run"] else None
        history = run.read_history() if run else []
        result = run.read_result() if run else {}
        recorded = run.read_config() if run and run.file(CONFIG).is_file() else {}
        last = history[-1] if history else {}
        record = {key: row[key] for key in (*TRIAL_COLUMNS, *plan.keys, SEED)}
        record.update(plan.labels.get(row["model"], {}))
        record.update({
            "input": config.resize, "mflops": mflops(config.model, config.resize),
            "parameters": row["parameters"],
            "train_images": recorded.get("data", {}).get("train_images"),
            "epochs": len(history), "status": row["status"],
            "note": row["note"], "val_acc": row["val_acc"], "test_acc": row["test_acc"],
            "test_loss": result.get("test_loss"), "plain_test_acc": result.get("plain_test_acc"),
            "train_acc": last.get("train_acc"),
            "train_loss": last.get("train_loss"), "best_epoch": row["best_epoch"],
            "seconds_per_epoch": row["seconds_per_epoch"],
            "images_per_s": (sum(e["images_per_s"] for e in history) / len(history)
                             if history else None),
            "run": row["run"]})
        rows.append(record)
        curves += [{"trial": row["trial"], **{key: epoch[key] for key in CURVE_COLUMNS[1:]}}
                   for epoch in history]
    return rows, curves


def check_same_definition(out: Path, sweep, storage: str | None) -> None:
    """A folder holds one study: refuse to continue it with another definition."""
    if not (out / SWEEP_FILE).is_file():
        return
    recorded = Sweep.from_dict(open_sweep(out, storage).user_attrs["sweep"])
    if recorded.identity() != sweep.identity():
        raise UsageError(f"{out} holds a study trained with other settings (another study, "
                         "budget, models or cnnlab version); choose another --out")


@cache
def mflops(spec: str, side: int) -> float:
    """Forward MFLOPs per image of `spec` at `side` pixels (one grey channel), counted on the
    meta device."""
    model = build_for_input(spec, (1, side, side), device="meta")
    return forward_flops(model, (1, side, side)) / 1e6


# --- measuring -----------------------------------------------------------------------------------

def measure_plan(plan: Plan, progress: bool = True) -> list[dict]:
    """Throughput and peak memory of each spec at each batch size (``cnnlab bench``), each step
    in the precision and memory format that training decides for the spec on this machine."""
    spec_measure = plan.measure
    device = resolve_device("auto")
    rows = []
    for spec in plan.specs:
        side = spec_measure.side or plan.settings.get("resize")
        shape = input_chw(spec, side)
        options = training_step_options(spec, shape, device,
                                        threads=plan.settings.get("threads"),
                                        steps=spec_measure.steps, warmup=spec_measure.warmup)
        if progress:
            print(f"timing {spec} at {shape[1]} px, batch sizes "
                  f"{', '.join(map(str, spec_measure.batch_sizes))} ({options.label()})",
                  flush=True)
        for bench_row in bench(spec, list(spec_measure.batch_sizes), side, options):
            rows.append({"model": spec, **plan.labels.get(spec, {}),
                         "batch_size": bench_row.batch_size, "input": shape[1],
                         "mflops": mflops(spec, shape[1]),
                         "bench_images_per_s": bench_row.images_per_s,
                         "ms_per_step": bench_row.ms_per_step,
                         "ms_per_step_low": bench_row.ms_low,
                         "ms_per_step_high": bench_row.ms_high,
                         "peak_mib": mebibytes(bench_row.peak_bytes),
                         "added_mib": mebibytes(bench_row.added_bytes)})
    return rows


def mebibytes(nbytes: int | None) -> float | None:
    return None if nbytes is None else nbytes / MIB


def merge(trained: list[dict], measured: list[dict]) -> list[dict]:
    """Each trial's row with the measurement of its spec at its batch size."""
    found = {(row["model"], row["batch_size"]): row for row in measured}
    return [{**row, **{key: found.get((row["model"], row.get("batch_size")), {}).get(key)
                       for key in MEASURED_COLUMNS[1:]}} for row in trained]


# --- the table -----------------------------------------------------------------------------------

def format_cell(key: str, value) -> str:
    if value is None:
        return ""
    header_format = COLUMNS.get(key)
    return header_format[1](value) if header_format else format_value(value)


def results_table(study: Study, results: StudyResults) -> TableData:
    """The report's table: each row's model (by its short name), swept values and the study's
    columns; with several seeds, one row per variant, accuracies as mean and interval."""
    columns = (*results.keys, *study.table)
    headers = ("model", *(COLUMNS.get(c, (c.removeprefix("model."),))[0] for c in columns))
    justify = (LEFT, *(LEFT if c == "status" else RIGHT for c in columns))
    what = "trials" if study.trains else "measurements"
    title = f"{study.name} ({results.budget} budget)"
    if study.trains and results.seeds() > 1:
        variants = variant_rows(results)
        return TableData(f"{title}: {len(variants)} variants, up to {results.seeds()} seeds each "
                         f"({len(results.rows)} trials); accuracies are means with their 95% "
                         "Student t interval over the seeds that finished (n)",
                         (*headers, "n"), [variant_row(study, results, rows, columns)
                                           for rows in variants.values()], (*justify, RIGHT))
    rows = [(study.name_of(row["model"]), *(row_cell(row, c) for c in columns))
            for row in results.rows]
    return TableData(f"{title}: {len(rows)} {what}", headers, rows, justify)


def row_cell(row: dict, column: str) -> str:
    """One row's cell; a timed step with its 95% interval over the timed steps."""
    if column == "ms_per_step" and row.get(column) is not None:
        return step_time(row).removesuffix(" ms").replace(" ms ", " ")
    return format_cell(column, row.get(column))


def variant_rows(results: StudyResults) -> dict[tuple, list[dict]]:
    """The rows of each variant (its spec and swept values), in the order they first come."""
    found: dict[tuple, list[dict]] = {}
    for row in results.rows:
        found.setdefault((row["model"], *(row.get(k) for k in results.keys)), []).append(row)
    return found


def variant_row(study: Study, results: StudyResults, rows: list[dict],
                columns: tuple[str, ...]) -> tuple[str, ...]:
    """One variant's cells: swept values as they are, accuracies as ``84.1% [82.0, 86.2]``,
    other numbers as the mean over its finished seeds, and how its trials ended."""
    done = results.finished(rows)

    def cell(column: str) -> str:
        if column in results.keys:
            return format_cell(column, rows[0].get(column))
        if column == "status":
            counts = {status: sum(r["status"] == status for r in rows)
                      for status in dict.fromkeys(r["status"] for r in rows)}
            return ", ".join(f"{count} {status}" for status, count in counts.items())
        values = [r[column] for r in done if r.get(column) is not None]
        if not values:
            return ""
        if COLUMNS.get(column, (None, None))[1] is percent:
            return interval(values).percent(n=False)
        mean = sum(values) / len(values)
        return format_cell(column, round(mean) if isinstance(values[0], int) else mean)

    return (study.name_of(rows[0]["model"]), *map(cell, columns), str(len(done)))


INTERVAL_COLUMNS = ("test_acc", "plain_test_acc")
"""The accuracies whose mean, interval and n over seeds ``results.csv`` keeps beside each seed's
value."""


def interval_columns(rows: list[dict], plan: Plan) -> list[dict]:
    """The rows with each variant's mean, 95% interval and n of the `INTERVAL_COLUMNS` added
    (completed trials count)."""
    def variant(row: dict) -> tuple:
        return (row["model"], *(row.get(key) for key in plan.keys))

    for column in INTERVAL_COLUMNS:
        if any(row.get(column) is not None for row in rows):
            rows = with_intervals(rows, variant, column,
                                  counts=lambda row: row.get("status") == "completed")
    return rows
