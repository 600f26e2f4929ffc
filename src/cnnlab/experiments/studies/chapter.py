"""The chapters in one report: every architecture from LeNet to RegNetX-32 trained side by side.

`chapter_report(budget)` trains each model in a run directory of the report's folder (a run that
finished is read again, one that stopped continues from its checkpoint), then writes one table
(parameters, MFLOPs, input, epochs, test accuracy, seconds per epoch, training images per second,
and the reference figures the project knows), a grid of training curves and the confusion matrix
of the best model, as ``report.html``, ``report.md``, ``results.csv`` and PNGs. ``full`` trains
each model with its seed recipe; ``quick`` keeps LeNet's recipe (it is cheap) and
trains the others on 20,000 images for 3 epochs in batches of 32 at small inputs; ``tiny`` is
a smoke run.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.display import LEFT, RIGHT, TableData, percent
from cnnlab.errors import UsageError
from cnnlab.experiments.listing import RunInfo
from cnnlab.experiments.studies.definition import check_budget, describe_setting, setting_changes
from cnnlab.experiments.studies.page import FigureFile, ReportPage, WrittenReport
from cnnlab.experiments.studies.records import CURVES_FILE, RESULTS_FILE
from cnnlab.experiments.studies.runner import COLUMNS, format_cell, mflops, trained_seconds
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT
from cnnlab.experiments.sweep.worker import train_trial
from cnnlab.files import read_csv, save_figure, write_csv
from cnnlab.models.spec import ModelSpec
from cnnlab.train.config import TrainConfig, resolve_config
from cnnlab.train.device import resolve_device
from cnnlab.train.evaluation import save_confusion_png, test_confusion
from cnnlab.train.rundir import CONFIG
from cnnlab.train.runs import build_model, make_data

CHAPTER_MODELS = ("lenet", "lenet-bn", "alexnet", "vgg-small", "nin", "googlenet", "resnet18",
                  "resnext50", "densenet", "regnetx32")
QUICK_DATA = {"subset": 20_000, "epochs": 3, "batch_size": 32}
"""The quick budget of the eight larger models. With 10,000 images the whole report took 15.6
minutes on a 2-core Zen 4, a quarter of its hour, and left NiN at 54.5% and GoogLeNet at 65.9%."""
QUICK_LR = {"vgg-small": 0.05, "nin": 0.1, "googlenet": 0.05}
"""Where the seed's rate barely moves the model in the quick budget's steps (measured: VGG,
NiN and GoogLeNet stay near chance after one epoch of 10,000 images), a larger one."""
QUICK_INPUT = {"alexnet": 68, "vgg-small": 56, "nin": 68, "googlenet": 28, "resnet18": 28,
               "resnext50": 28, "densenet": 32, "regnetx32": 28}
"""The quick budget's input sides: the smallest side near 28 pixels each model accepts (LeNet
keeps its 28 and its whole recipe)."""
TINY = {"subset": 256, "epochs": 1, "batch_size": 64}
REFERENCES = {
    "lenet": "73.5%, 10.3 s/epoch: d2l 1.0.3's own Trainer and loader, 2-core CPU",
    "lenet-bn": "84.9%: d2l pull request #1660, 10 epochs",
    "resnet18": "94.9%: Fashion-MNIST benchmark (zalandoresearch)",
    "densenet": "95.4%: DenseNet-BC (768K parameters), Fashion-MNIST benchmark",
}
"""Published and measured figures for the chapter's models, shown beside the report's own."""
SEED_PATH = {"test_acc": 0.735, "seconds_per_epoch": 10.3}
"""LeNet trained by d2l 1.0.3's own Trainer and FashionMNIST on a 2-core CPU: 10 epochs of
the chapter's recipe."""
SUMMARY = ("Every architecture of the two chapters, from LeNet to RegNetX-32, trained on "
           "Fashion-MNIST side by side.")
SHOWN = ("input", "parameters", "mflops", "train_images", "epochs", "test_acc",
         "seconds_per_epoch", "images_per_s", "status")


def report_folder(budget: str) -> Path:
    return SWEEPS_ROOT / f"report-{budget}"


def model_config(spec: str, budget: str) -> TrainConfig:
    """How `budget` trains `spec`: the seed recipe (full), shrunk for quick and tiny."""
    check_budget(budget)
    name = ModelSpec.parse(spec).name
    shrunk = {}
    if budget != "full" and name in QUICK_INPUT:
        shrunk = {**QUICK_DATA, "resize": QUICK_INPUT[name]}
        if name in QUICK_LR:
            shrunk["lr"] = QUICK_LR[name]
    if budget == "tiny":
        shrunk.update(TINY)
    return resolve_config({"model": spec, **shrunk})


def run_folder_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "_", spec)


@dataclass
class ChapterReport(WrittenReport):
    """The report's rows (one per model), its conclusion, page and folder."""

    rows: list[dict] = field(default_factory=list)


def chapter_report(budget: str = "quick", models=None, out: str | Path | None = None,
                   progress: bool = True) -> ChapterReport:
    """Train (or continue, or read) every model of `models` (default: the chapter's ten) at
    `budget`, and write the report into `out` (default ``runs/report-BUDGET``)."""
    specs = [str(ModelSpec.parse(spec)) for spec in (models or CHAPTER_MODELS)]
    if len(set(specs)) != len(specs):
        raise UsageError(f"--models lists a model twice: {' '.join(specs)}")
    configs = {spec: model_config(spec, budget) for spec in specs}
    out = Path(out) if out is not None else report_folder(budget)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, curves = [], []
    for spec, config in configs.items():
        row, epochs = train_model(spec, config, out / run_folder_name(spec), progress)
        rows.append(row)
        curves += epochs
    write_csv(out / RESULTS_FILE, rows)
    write_csv(out / CURVES_FILE, curves)
    rows, curves = read_csv(out / RESULTS_FILE), read_csv(out / CURVES_FILE)
    figures = [FigureFile("curves.png", "training and test accuracy per epoch of every model")]
    save_figure(curves_grid(rows, curves), out / "curves.png")
    best = max((r for r in rows if r["status"] == "completed"), key=lambda r: r["test_acc"],
               default=None)
    if best is not None:
        confusion_figure(out / best["run"], out / "confusion.png")
        figures.append(FigureFile("confusion.png", f"confusion matrix of the best model, "
                                  f"{best['model']}, on the test set"))
    as_recipe = [spec for spec, config in configs.items()
                 if not setting_changes(config, resolve_config({"model": spec}))]
    conclusion = conclude(rows, budget, as_recipe)
    page = ReportPage(
        title="The chapters' models, side by side", summary=SUMMARY, budget=budget,
        conclusion=conclusion, tables=[report_table(rows, budget)], figures=figures,
        settings={spec: _shown_config(config) for spec, config in configs.items()},
        deviations=[f"{spec}: {', '.join(changes)}" for spec, config in configs.items()
                    if (changes := setting_changes(config, resolve_config({"model": spec})))],
        files=[RESULTS_FILE, CURVES_FILE, *(f.file for f in figures)],
        wall_seconds=time.perf_counter() - started, trained_seconds=trained_seconds(rows))
    page.write(out)
    return ChapterReport(conclusion, out, page, rows=rows)


def _shown_config(config: TrainConfig) -> dict:
    record = config.to_dict()
    record.pop("decisions", None)
    return record


def train_model(spec: str, config: TrainConfig, run: Path, progress: bool):
    """Train (or continue, or read) one model's run; its report row and its epochs."""
    check_same_settings(run, config)
    if progress:
        print(f"{spec}: {describe_setting('resize', config.resize)}, "
              f"{describe_setting('subset', config.subset)}, "
              f"{describe_setting('epochs', config.epochs)} -> {run}", flush=True)
    data = make_data(config)
    model = build_model(config, data)
    outcome = train_trial(config, model, data, run, progress)
    history = outcome.history
    row = {"model": spec, "input": config.resize, "parameters": sum(p.numel()
                                                                    for p in model.parameters()),
           "mflops": mflops(spec, config.resize), "train_images": len(data.train[1]),
           "epochs": len(history),
           "status": outcome.status, "test_acc": outcome.result.get("test_acc"),
           "seconds_per_epoch": outcome.result.get("seconds_per_epoch"),
           "images_per_s": (sum(e["images_per_s"] for e in history) / len(history)
                            if history else None),
           "reference": REFERENCES.get(spec, ""), "run": run.name}
    epochs = [{"model": spec, **{key: e[key] for key in ("epoch", "train_loss", "train_acc",
                                                         "val_loss", "val_acc")}}
              for e in history]
    return row, epochs


def check_same_settings(run: Path, config: TrainConfig) -> None:
    """A run folder that exists must have been trained with the same settings."""
    if not (run / CONFIG).is_file():
        return
    recorded = RunInfo.read(run).config
    changed = setting_changes(config, recorded)
    if changed or str(ModelSpec.parse(recorded.model)) != str(ModelSpec.parse(config.model)):
        what = ", ".join(changed) or "another model"
        raise UsageError(f"{run} was trained with other settings ({what}); choose another --out")


def report_table(rows: list[dict], budget: str) -> TableData:
    headers = ("model", *(COLUMNS[key][0] for key in SHOWN), "reference")
    cells = [(row["model"], *(format_cell(key, row[key]) for key in SHOWN),
              row["reference"] or "") for row in rows]
    justify = (LEFT, *(RIGHT,) * 8, LEFT, LEFT)
    return TableData(f"{len(rows)} models ({budget} budget)", headers, cells, justify)


def conclude(rows: list[dict], budget: str, as_recipe=()) -> str:
    """The best, fastest and smallest model; LeNet against the d2l seed path when it trained
    with the seed's own recipe (`as_recipe` lists the specs that did)."""
    done = [r for r in rows if r["status"] == "completed"]
    if not done:
        return "No model finished training."
    fastest = max(done, key=lambda r: r["images_per_s"])
    smallest = min(done, key=lambda r: r["parameters"])
    text = (f"Best test accuracy ({budget} budget): {best_of_each_setting(done)}. Most training "
            f"images per second: {fastest['model']} ({fastest['images_per_s']:,.0f}). Fewest "
            f"parameters: {smallest['model']} ({smallest['parameters']:,}, "
            f"{percent(smallest['test_acc'])}).")
    lenet = [r for r in done if r["model"] == "lenet" and "lenet" in as_recipe]
    if lenet:
        mine = lenet[0]
        text += (f" LeNet with the seed's recipe: {percent(mine['test_acc'])} and "
                 f"{mine['seconds_per_epoch']:.1f} s/epoch, against the d2l seed path's "
                 f"{percent(SEED_PATH['test_acc'])} and {SEED_PATH['seconds_per_epoch']} s/epoch "
                 f"({SEED_PATH['seconds_per_epoch'] / mine['seconds_per_epoch']:.1f}x faster).")
    return text


def best_of_each_setting(done: list[dict]) -> str:
    """The best model of each group that trained on as many images for as many epochs, best
    group first: models compared only with the ones that saw the same data."""
    groups: dict[tuple, list[dict]] = {}
    for row in done:
        groups.setdefault((row["train_images"], row["epochs"]), []).append(row)
    ranked = sorted(groups.items(), key=lambda item: -max(r["test_acc"] for r in item[1]))
    parts = []
    for (images, epochs), group in ranked:
        best = max(group, key=lambda r: r["test_acc"])
        among = f"the {len(group)} models" if len(group) > 1 else "the one model"
        parts.append(f"{best['model']} {percent(best['test_acc'])} ({among} trained for "
                     f"{describe_setting('epochs', epochs)} on {images:,} images)")
    return "; ".join(parts)


def curves_grid(rows: list[dict], curves: list[dict]):
    """One panel per model: training and test accuracy per epoch."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    columns = min(5, len(rows))
    lines = -(-len(rows) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * lines))
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, row in zip(axes, rows, strict=False):
        epochs = [e for e in curves if e["model"] == row["model"]]
        x = [e["epoch"] for e in epochs]
        ax.plot(x, [e["train_acc"] for e in epochs], "o-", markersize=3, label="train")
        ax.plot(x, [e["val_acc"] for e in epochs], "s--", markersize=3, label="test")
        ax.set_title(f"{row['model']} ({percent(row['test_acc'])})", fontsize="medium")
        ax.set_xlim(0.5, max(x, default=1) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    figure.supxlabel("epoch")
    figure.tight_layout()
    return figure


def confusion_figure(run: Path, path: Path) -> Path:
    """The confusion matrix of a run's model on the test set, as a PNG."""
    confusion, classes, _ = test_confusion(run, resolve_device("auto"))
    return save_confusion_png(confusion, classes, path)
