"""Studies of how a model is trained: LeNet's activation and pooling, label smoothing, data
augmentation, and the batch size's effect on throughput, memory and accuracy."""

from __future__ import annotations

from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import QUICK_SEEDS, Measure, Setup, Study
from cnnlab.experiments.studies.records import StudyResults, step_time, verdict

COMPACT = "compact-resnet-s"
"""A small ResNet-like model made for 28x28 inputs (the fast recipe's): the quick budget's
stand-in where the chapter trains a 96-pixel model."""
COMPACT_LR = 0.05
"""Plain SGD at its recipe's 0.1 (which the fast recipe reaches after a warm-up) blows up in
the first steps; half of it trains from the start."""


def conclude_lenet_modern(results: StudyResults) -> str:
    def variant(activation: str, pool: str) -> dict:
        return {"model.activation": activation, "model.pool": pool}

    seed = variant("sigmoid", "avg")
    changes = (("ReLU with max pooling", variant("relu", "max")),
               ("ReLU alone (average pooling)", variant("relu", "avg")),
               ("max pooling alone (sigmoid)", variant("sigmoid", "max")))
    return "; ".join(results.compared(name, match, "the seed's sigmoid with average pooling",
                                      seed) for name, match in changes) + "."


LENET_MODERN = Study(
    name="lenet-modern",
    question="What do ReLU and max pooling do for LeNet? The seed's sigmoid and average pooling "
             "against ReLU and max pooling, and each change alone, curves overlaid.",
    specs=("lenet",),
    grid={"model.activation": ("sigmoid", "relu"), "model.pool": ("avg", "max")},
    budgets={"quick": Setup({"epochs": 3}, seeds=QUICK_SEEDS), "full": Setup()},
    figures=(figures.curves, figures.accuracy_bars),
    conclude=conclude_lenet_modern,
)


def conclude_label_smoothing(results: StudyResults) -> str:
    done = results.finished()
    if not done:
        return "No trial finished."
    values = sorted({r["label_smoothing"] for r in done})
    losses = "; ".join(
        f"{value:g}: {results.estimate('test_loss', label_smoothing=value).number(3)}"
        for value in values)
    tried = [value for value in values if value > 0]
    if 0.0 not in values or not tried:
        return (f"Only some trials finished: test accuracy {results.ranked()}. Test "
                f"cross-entropy by smoothing: {losses}.")
    best = max(tried, key=lambda v: results.estimate(label_smoothing=v).mean)
    found = results.versus(f"smoothing {best:g}", {"label_smoothing": best}, "no smoothing",
                           {"label_smoothing": 0.0})
    helped = ("Label smoothing helped" if found.told_apart and found.name_a != "no smoothing"
              else "Label smoothing hurt" if found.told_apart else
              "Label smoothing did not make a difference told apart at this budget")
    return (f"{helped}: at the best smoothing tried, {found.sentence}. Test accuracy: "
            f"{results.ranked()}. Test cross-entropy by smoothing: {losses}.")


LABEL_SMOOTHING = Study(
    name="label-smoothing",
    question="Does label smoothing regularise GoogLeNet (its chapter's exercise)? The same model "
             "trained with smoothing 0 to 0.2.",
    specs=("googlenet",),
    grid={"label_smoothing": (0.0, 0.05, 0.1, 0.2)},
    budgets={"quick": Setup({"epochs": 3, "lr": COMPACT_LR}, specs=(COMPACT,), seeds=QUICK_SEEDS),
             "full": Setup()},
    table=("test_acc", "test_loss", "train_acc", "status", "seconds_per_epoch"),
    figures=(figures.against("label_smoothing", ("test_acc",)), figures.curves),
    conclude=conclude_label_smoothing,
)


AUGMENTATIONS = ("none", "flip", "crop", "erase", "crop,flip", "crop,flip,erase")


def conclude_augmentation(results: StudyResults) -> str:
    if not results.runs(augment="none"):
        return "The trial without augmentation did not finish: nothing to compare against."
    found = {name: results.versus(name, {"augment": name}, "none", {"augment": "none"})
             for name in dict.fromkeys(r["augment"] for r in results.rows) if name != "none"}
    helped = [n for n, c in found.items() if c and c.told_apart and c.name_a == n]
    hurt = [n for n, c in found.items() if c and c.told_apart and c.name_a != n]
    unclear = [n for n in found if n not in helped + hurt]
    return (f"Test accuracy: {results.ranked()}. Against no augmentation: "
            + "; ".join(f"{name}: {verdict(c)}" for name, c in found.items())
            + f". Helped: {', '.join(helped) or 'none'}; hurt: {', '.join(hurt) or 'none'}; "
            f"not told apart from none: {', '.join(unclear) or 'none'}.")


AUGMENTATION = Study(
    name="augmentation",
    question="Which of Fashion-MNIST's invariances does augmentation exploit? Horizontal flips, "
             "random crops (shifts), random erasing (occlusion) and their combinations.",
    specs=("resnet18",),
    grid={"augment": AUGMENTATIONS},
    budgets={"quick": Setup({"subset": 20_000, "epochs": 4, "lr": COMPACT_LR},
                            specs=(COMPACT,), seeds=QUICK_SEEDS),
             "full": Setup()},
    figures=(figures.accuracy_bars, figures.curves),
    conclude=conclude_augmentation,
)


def conclude_batch_size(results: StudyResults) -> str:
    rows = sorted(results.rows, key=lambda r: r["batch_size"])
    small, large = rows[0], rows[-1]
    speedup = large["bench_images_per_s"] / small["bench_images_per_s"]
    text = (f"Training throughput goes from {small['bench_images_per_s']:,.0f} images/s at batch "
            f"{small['batch_size']} (a step {step_time(small)}) to "
            f"{large['bench_images_per_s']:,.0f} at batch {large['batch_size']} (a step "
            f"{step_time(large)}), {speedup:.1f}x.")
    if small["added_mib"] is not None and large["added_mib"] is not None:
        per_image = (large["added_mib"] - small["added_mib"]) * 1024 / (
            large["batch_size"] - small["batch_size"])
        text += (f" The memory a batch adds grows from {small['added_mib']:,.1f} MiB to "
                 f"{large['added_mib']:,.1f} MiB, about {per_image:,.0f} KiB per image.")
    done = results.finished(rows)
    if done:
        text += (f" Test accuracy after {done[0]['epochs']} epochs at a fixed learning rate "
                 f"(larger batches take fewer steps): {results.ranked()}.")
    return text


BATCH_SIZE = Study(
    name="batch-size",
    question="What does the batch size change? Training throughput, the memory a batch needs, "
             "and the accuracy after the same epochs at the same learning rate.",
    specs=("resnet18",),
    grid={"batch_size": (16, 32, 64, 128, 256, 512)},
    budgets={"quick": Setup({"subset": 20_000, "epochs": 2}, specs=("lenet-modern",),
                            grid={"batch_size": (16, 32, 64, 128, 256, 512, 1024)},
                            measure=Measure((16, 32, 64, 128, 256, 512, 1024)),
                            seeds=QUICK_SEEDS),
             "full": Setup(measure=Measure((16, 32, 64, 128, 256, 512)))},
    table=("test_acc", "seconds_per_epoch", "bench_images_per_s", "peak_mib", "added_mib"),
    figures=(figures.throughput_and_memory,),
    conclude=conclude_batch_size,
)

STUDIES = (LENET_MODERN, LABEL_SMOOTHING, AUGMENTATION, BATCH_SIZE)
