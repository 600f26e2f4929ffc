"""The chapters in one report: every architecture from LeNet to RegNetX-32 trained side by side.

The report is one more study (`chapter_study`): each model is a spec of its sweep with settings
of its own, so `cnnlab report` resumes, runs ``--workers`` processes and shares ``--storage``
like any study. It writes one table (parameters, MFLOPs, input, epochs, test accuracy, seconds
per epoch, training images per second, and the reference figures the project knows), a grid of
training curves and the confusion matrix of the best model. ``full`` trains each model with its
seed recipe; ``quick`` keeps LeNet's recipe (it is cheap) and trains the others on 20,000 images
for 3 epochs in batches of 32 at small inputs; ``tiny`` is a smoke run.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.display import percent
from cnnlab.errors import UsageError
from cnnlab.experiments.studies.definition import (
    BUDGETS,
    CHAPTER,
    Setup,
    Study,
    canonical,
    check_budget,
    describe_setting,
)
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.runner import StudyReport, run_study
from cnnlab.experiments.sweep.definition import SWEEPS_ROOT
from cnnlab.models.spec import ModelSpec
from cnnlab.train.config import TrainConfig, resolve_config
from cnnlab.train.device import resolve_device
from cnnlab.train.evaluation import confusion_figure, test_confusion

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
BENCHMARK = "github.com/zalandoresearch/fashion-mnist#benchmark"
"""The Fashion-MNIST benchmark table of Zalando Research, the dataset's authors."""
REFERENCES = {
    "lenet": "73.8%, 9.7 s/epoch: d2l 1.0.3's own Trainer, FashionMNIST and LeNet, 10 epochs on "
             "a 2-core CPU, measured by benchmarks/peers.py (benchmarks/RESULTS.md)",
    "lenet-bn": "84.9%: the output of d2l's batch-norm section (BN-LeNet, 10 epochs), quoted in "
                "github.com/d2l-ai/d2l-en/pull/1660",
    "resnet18": f"94.9%: ResNet18 with flips, shifts and rotations, {BENCHMARK}",
    "densenet": f"95.4%: DenseNet-BC (768K parameters) with crops and flips, {BENCHMARK}",
}
"""Figures from elsewhere for the chapter's models, each naming its public source, shown beside
the report's own."""
SEED_PATH = {"test_acc": 0.7383, "seconds_per_epoch": 9.69}
"""LeNet trained by d2l 1.0.3's own Trainer and FashionMNIST on a 2-core CPU: 10 epochs of
the chapter's recipe (`benchmarks/peers.py`; the native row of benchmarks/RESULTS.md)."""
SUMMARY = ("Every architecture of the two chapters, from LeNet to RegNetX-32, trained on "
           "Fashion-MNIST side by side.")
SHOWN = ("input", "parameters", "mflops", "train_images", "epochs", "test_acc",
         "seconds_per_epoch", "images_per_s", "status")


def report_folder(budget: str) -> Path:
    return SWEEPS_ROOT / f"report-{budget}"


def shrunk_settings(spec: str, budget: str) -> dict:
    """What `budget` changes in `spec`'s seed recipe: nothing at full; for quick the data,
    input side and (where it barely moves) rate of the larger models; tiny shrinks it all."""
    check_budget(budget)
    name = ModelSpec.parse(spec).name
    shrunk = {}
    if budget != CHAPTER and name in QUICK_INPUT:
        shrunk = {**QUICK_DATA, "resize": QUICK_INPUT[name]}
        if name in QUICK_LR:
            shrunk["lr"] = QUICK_LR[name]
    if budget == "tiny":
        shrunk.update(TINY)
    return shrunk


def model_config(spec: str, budget: str) -> TrainConfig:
    """How `budget` trains `spec`: the seed recipe (full), shrunk for quick and tiny."""
    return resolve_config({"model": spec, **shrunk_settings(spec, budget)})


def chapter_study(models=None) -> Study:
    """The report as a study: every model of `models` (default: the chapter's ten), each with
    its seed recipe shrunk by the budget's settings for it."""
    specs = tuple(canonical(spec) for spec in (models or CHAPTER_MODELS))
    if len(set(specs)) != len(specs):
        raise UsageError(f"--models lists a model twice: {' '.join(specs)}")
    labels = {spec: {"reference": REFERENCES.get(spec, "")} for spec in specs}

    def setup(budget: str) -> Setup:
        return Setup(labels=labels, spec_settings={spec: shrunk_settings(spec, budget)
                                                   for spec in specs})

    return Study("chapter", SUMMARY, conclude_results, {b: setup(b) for b in BUDGETS},
                 specs=specs, table=(*SHOWN, "reference"), figures=(curves_grid, confusion),
                 title="The chapters' models, side by side")


def chapter_report(budget: str = "quick", models=None, out: str | Path | None = None,
                   workers: int = 1, storage: str | None = None, progress: bool = True,
                   seeds: tuple[int, ...] | None = None) -> StudyReport:
    """Train (or continue, or read) every model of `models` at `budget`, each with `seeds`, on
    the study engine, and write the report into `out` (default ``runs/report-BUDGET``)."""
    return run_study(chapter_study(models), budget,
                     out if out is not None else report_folder(budget), workers, storage,
                     progress, seeds)


def conclude_results(results: StudyResults) -> str:
    """The conclusion from the report's recorded rows (see `conclude`)."""
    as_recipe = [row["model"] for row in results.rows
                 if not shrunk_settings(row["model"], results.budget)]
    return conclude(results, as_recipe)


def conclude(results: StudyResults, as_recipe=()) -> str:
    """The best, fastest and smallest model; LeNet against the d2l seed path when it trained
    with the seed's own recipe (`as_recipe` lists the specs that did)."""
    done = results.finished()
    if not done:
        return "No model finished training."
    fastest = max(done, key=lambda r: r["images_per_s"])
    smallest = min(done, key=lambda r: r["parameters"])
    text = (f"Best test accuracy ({results.budget} budget): {best_of_each_setting(results)}. "
            f"Most training images per second: {fastest['model']} "
            f"({fastest['images_per_s']:,.0f}). Fewest parameters: {smallest['model']} "
            f"({smallest['parameters']:,}, {results.estimate(model=smallest['model']).percent()}).")
    if "lenet" in as_recipe and results.runs(model="lenet"):
        accuracy = results.estimate(model="lenet")
        seconds = results.estimate("seconds_per_epoch", model="lenet").mean
        text += (f" LeNet with the seed's recipe: {accuracy.percent()} and {seconds:.1f} "
                 f"s/epoch, against the d2l seed path's {percent(SEED_PATH['test_acc'])} and "
                 f"{SEED_PATH['seconds_per_epoch']} s/epoch "
                 f"({SEED_PATH['seconds_per_epoch'] / seconds:.1f}x faster).")
    return text


def best_of_each_setting(results: StudyResults) -> str:
    """The best model of each group that trained on as many images for as many epochs, best
    group first: models compared only with the ones that saw the same data (ranked with their
    intervals when they have several seeds)."""
    groups: dict[tuple, list[dict]] = {}
    for row in results.finished():
        groups.setdefault((row["train_images"], row["epochs"]), []).append(row)
    ranked = sorted(groups.items(), key=lambda item: -max(r["test_acc"] for r in item[1]))
    parts = []
    for (images, epochs), group in ranked:
        models = list(dict.fromkeys(r["model"] for r in group))
        setting = f"trained for {describe_setting('epochs', epochs)} on {images:,} images"
        if results.seeds() > 1:
            parts.append(f"{results.ranked(group)} ({setting})")
            continue
        best = max(group, key=lambda r: r["test_acc"])
        among = f"the {len(models)} models" if len(models) > 1 else "the one model"
        parts.append(f"{best['model']} {percent(best['test_acc'])} ({among} {setting})")
    return "; ".join(parts)


def curves_grid(results: StudyResults):
    """One panel per model: training and test accuracy per epoch."""
    # deferred: matplotlib is slow to import and only the figures need it
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    rows = results.rows
    columns = min(5, len(rows))
    lines = -(-len(rows) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * lines))
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, row in zip(axes, rows, strict=False):
        epochs = results.curve(row)
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
    return "curves", "training and test accuracy per epoch of every model", figure


def confusion(results: StudyResults):
    """The confusion matrix of the best finished model on the test set (None: none finished)."""
    best = max(results.finished(), key=lambda r: r["test_acc"], default=None)
    if best is None:
        return None
    matrix, classes, _ = test_confusion(results.folder / best["run"], resolve_device("auto"))
    caption = f"confusion matrix of the best model, {best['model']}, on the test set"
    return "confusion", caption, confusion_figure(matrix, classes)
