"""Studies of how a model is trained: LeNet's activation and pooling, label smoothing, data
augmentation, and the batch size's effect on throughput, memory and accuracy."""

from __future__ import annotations

from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import Measure, Setup, Study
from cnnlab.experiments.studies.records import StudyResults, percent, points

COMPACT = "compact-resnet-s"
"""A small ResNet-like model made for 28x28 inputs (the fast recipe's): the quick budget's
stand-in where the chapter trains a 96-pixel model."""
COMPACT_LR = 0.05
"""Plain SGD at its recipe's 0.1 (which the fast recipe reaches after a warm-up) blows up in
the first steps; half of it trains from the start."""


def _acc(results: StudyResults, **match) -> float | None:
    done = results.finished(results.where(**match))
    return done[0]["test_acc"] if done else None


def _difference(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else points(a - b)


def conclude_lenet_modern(results: StudyResults) -> str:
    def acc(activation, pool):
        return _acc(results, **{"model.activation": activation, "model.pool": pool})

    modern, seed = acc("relu", "max"), acc("sigmoid", "avg")
    return (f"ReLU with max pooling reached {percent(modern)} test accuracy against "
            f"{percent(seed)} for the seed's sigmoid with average pooling "
            f"({_difference(modern, seed)}). ReLU alone (average pooling): "
            f"{_difference(acc('relu', 'avg'), seed)}; max pooling alone (sigmoid): "
            f"{_difference(acc('sigmoid', 'max'), seed)}.")


LENET_MODERN = Study(
    name="lenet-modern",
    question="What do ReLU and max pooling do for LeNet? The seed's sigmoid and average pooling "
             "against ReLU and max pooling, and each change alone, curves overlaid.",
    specs=("lenet",),
    grid={"model.activation": ("sigmoid", "relu"), "model.pool": ("avg", "max")},
    budgets={"quick": Setup({"epochs": 3}), "full": Setup()},
    figures=(figures.curves, figures.accuracy_bars),
    conclude=conclude_lenet_modern,
)


def conclude_label_smoothing(results: StudyResults) -> str:
    done = results.finished()
    if not done:
        return "No trial finished."
    plain = _acc(results, label_smoothing=0.0)
    best = max((r for r in done if r["label_smoothing"] > 0), key=lambda r: r["test_acc"],
               default=None)
    losses = ", ".join(f"{r['label_smoothing']:g}: {r['test_loss']:.3f}"
                       for r in sorted(done, key=lambda r: r["label_smoothing"]))
    if best is None:
        text = f"Only the trial without smoothing finished ({percent(plain)} test accuracy)."
    elif plain is not None and plain >= best["test_acc"]:
        text = (f"Label smoothing did not help: {percent(plain)} test accuracy without it, "
                f"{percent(best['test_acc'])} at the best smoothing tried "
                f"({best['label_smoothing']:g}, {_difference(best['test_acc'], plain)}).")
    else:
        text = (f"Best label smoothing {best['label_smoothing']:g}: test accuracy "
                f"{percent(best['test_acc'])} against {percent(plain)} without "
                f"({_difference(best['test_acc'], plain)}).")
    return text + f" Test cross-entropy by smoothing: {losses}."


LABEL_SMOOTHING = Study(
    name="label-smoothing",
    question="Does label smoothing regularise GoogLeNet (its chapter's exercise)? The same model "
             "trained with smoothing 0 to 0.2.",
    specs=("googlenet",),
    grid={"label_smoothing": (0.0, 0.05, 0.1, 0.2)},
    budgets={"quick": Setup({"epochs": 3, "lr": COMPACT_LR}, specs=(COMPACT,)), "full": Setup()},
    table=("test_acc", "test_loss", "train_acc", "status", "seconds_per_epoch"),
    figures=(figures.against("label_smoothing", ("test_acc",)), figures.curves),
    conclude=conclude_label_smoothing,
)


AUGMENTATIONS = ("none", "flip", "crop", "erase", "crop,flip", "crop,flip,erase")


def conclude_augmentation(results: StudyResults) -> str:
    plain = _acc(results, augment="none")
    done = results.finished()
    if plain is None or not done:
        return "The trial without augmentation did not finish: nothing to compare against."
    effects = {r["augment"]: r["test_acc"] - plain for r in done if r["augment"] != "none"}
    best = max(done, key=lambda r: r["test_acc"])
    helped = [name for name, effect in effects.items() if effect > 0]
    rest = [name for name, effect in effects.items() if effect <= 0]
    return (f"Best: {best['augment']} ({percent(best['test_acc'])}; no augmentation "
            f"{percent(plain)}). Against no augmentation: "
            + ", ".join(f"{name} {points(effect)}" for name, effect in effects.items())
            + f". Helped: {', '.join(helped) or 'none'}; did not help: "
            f"{', '.join(rest) or 'none'}.")


AUGMENTATION = Study(
    name="augmentation",
    question="Which of Fashion-MNIST's invariances does augmentation exploit? Horizontal flips, "
             "random crops (shifts), random erasing (occlusion) and their combinations.",
    specs=("resnet18",),
    grid={"augment": AUGMENTATIONS},
    budgets={"quick": Setup({"subset": 20_000, "epochs": 4, "lr": COMPACT_LR},
                            specs=(COMPACT,)),
             "full": Setup()},
    figures=(figures.accuracy_bars, figures.curves),
    conclude=conclude_augmentation,
)


def conclude_batch_size(results: StudyResults) -> str:
    rows = sorted(results.rows, key=lambda r: r["batch_size"])
    small, large = rows[0], rows[-1]
    speedup = large["bench_images_per_s"] / small["bench_images_per_s"]
    text = (f"Training throughput goes from {small['bench_images_per_s']:,.0f} images/s at batch "
            f"{small['batch_size']} to {large['bench_images_per_s']:,.0f} at batch "
            f"{large['batch_size']} ({speedup:.1f}x).")
    if small["added_mib"] is not None and large["added_mib"] is not None:
        per_image = (large["added_mib"] - small["added_mib"]) * 1024 / (
            large["batch_size"] - small["batch_size"])
        text += (f" The memory a batch adds grows from {small['added_mib']:,.1f} MiB to "
                 f"{large['added_mib']:,.1f} MiB, about {per_image:,.0f} KiB per image.")
    done = results.finished(rows)
    if done:
        best = max(done, key=lambda r: r["test_acc"])
        listed = ", ".join(f"{percent(r['test_acc'])} at {r['batch_size']}" for r in done)
        text += (f" Test accuracy after {done[0]['epochs']} epochs at a fixed learning rate: "
                 f"{listed} (best at batch {best['batch_size']}; larger batches take fewer "
                 "steps).")
    return text


BATCH_SIZE = Study(
    name="batch-size",
    question="What does the batch size change? Training throughput, the memory a batch needs, "
             "and the accuracy after the same epochs at the same learning rate.",
    specs=("resnet18",),
    grid={"batch_size": (16, 32, 64, 128, 256, 512)},
    budgets={"quick": Setup({"subset": 20_000, "epochs": 2}, specs=("lenet-modern",),
                            grid={"batch_size": (16, 32, 64, 128, 256, 512, 1024)},
                            measure=Measure((16, 32, 64, 128, 256, 512, 1024))),
             "full": Setup(measure=Measure((16, 32, 64, 128, 256, 512)))},
    table=("test_acc", "seconds_per_epoch", "bench_images_per_s", "peak_mib", "added_mib"),
    figures=(figures.throughput_and_memory,),
    conclude=conclude_batch_size,
)

STUDIES = (LENET_MODERN, LABEL_SMOOTHING, AUGMENTATION, BATCH_SIZE)
