"""Studies of the architectures' own exercises: AlexNet overfitting a small subset, VGG at
lower resolutions, NiN's 1x1 convolutions and head, DenseNet's memory-efficient mode."""

from __future__ import annotations

from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import Measure, Setup, Study
from cnnlab.experiments.studies.records import StudyResults, percent, points


def largest_gap(results: StudyResults, row: dict) -> tuple[float, int] | None:
    """The largest training-minus-test accuracy over a trial's epochs, and its epoch."""
    epochs = results.curve(row)
    if not epochs:
        return None
    widest = max(epochs, key=lambda e: e["train_acc"] - e["val_acc"])
    return widest["train_acc"] - widest["val_acc"], widest["epoch"]


def conclude_overfit(results: StudyResults) -> str:
    parts = []
    for row in sorted(results.rows, key=lambda r: r["model.dropout"]):
        found = largest_gap(results, row)
        if found is None or row["status"] != "completed":
            parts.append(f"with dropout {row['model.dropout']:g} the trial {row['status']}")
            continue
        gap, epoch = found
        parts.append(f"with dropout {row['model.dropout']:g} the training accuracy reached "
                     f"{percent(row['train_acc'])} and the test accuracy {percent(row['test_acc'])}"
                     f" after {row['epochs']} epochs, a gap of "
                     f"{points(row['train_acc'] - row['test_acc']).lstrip('+')} (widest "
                     f"{points(gap).lstrip('+')} at epoch {epoch})")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + ". (Training accuracy as measured during each epoch.)"


ALEXNET_OVERFIT = Study(
    name="alexnet-overfit",
    question="Can AlexNet be made to overfit? A small training subset without weight decay, "
             "trained without dropout (and with the chapter's 0.5 for contrast): training "
             "against test accuracy per epoch, and the gap that opens.",
    specs=("alexnet",),
    grid={"model.dropout": (0.0, 0.5)},
    budgets={"quick": Setup({"subset": 1_000, "epochs": 50, "batch_size": 32, "resize": 68,
                             "lr": 0.05}, specs=("alexnet:width=0.25",)),
             "full": Setup({"subset": 1_000, "epochs": 50, "batch_size": 32})},
    table=("train_acc", "test_acc", "status", "seconds_per_epoch", "parameters"),
    figures=(figures.train_and_test,),
    conclude=conclude_overfit,
)


def conclude_resolution(results: StudyResults) -> str:
    done = sorted(results.finished(), key=lambda r: r["resize"])
    if not done:
        return "No trial finished."
    listed = ", ".join(f"{r['resize']} px {percent(r['test_acc'])} ({r['seconds_per_epoch']:.1f} "
                       f"s/epoch, {r['parameters'] / 1e6:.1f}M parameters, "
                       f"{r['mflops']:,.0f} MFLOPs)" for r in done)
    small, large = done[0], done[-1]
    return (f"Test accuracy by input side: {listed}. From {small['resize']} to {large['resize']}"
            f" px: {points(large['test_acc'] - small['test_acc'])} for "
            f"{large['seconds_per_epoch'] / small['seconds_per_epoch']:.1f}x the time per epoch.")


VGG_RESOLUTION = Study(
    name="vgg-resolution",
    question="What does VGG lose at lower resolution? The chapter's VGG at 56, 84 and 224 "
             "pixels: accuracy, time and parameters (its classifier is sized for each input).",
    specs=("vgg-small",),
    grid={"resize": (56, 84, 224)},
    budgets={"quick": Setup({"subset": 10_000, "epochs": 2, "batch_size": 32, "lr": 0.05},
                            grid={"resize": (56, 84, 112)}),
             "tiny": Setup({"subset": 256, "epochs": 1, "batch_size": 64},
                           specs=("vgg-small:arch=((1,4),(1,8),(2,16),(2,32),(2,32))",),
                           grid={"resize": (32, 40)}),
             "full": Setup()},
    table=("test_acc", "seconds_per_epoch", "images_per_s", "parameters", "mflops"),
    figures=(figures.against("resize", ("test_acc", "seconds_per_epoch", "parameters")),),
    conclude=conclude_resolution,
)


NARROW_NIN = "((24,11,4,0),(64,5,1,2),(96,3,1,1))"
"""NiN with a quarter of the channels, for the smoke run."""
ONE_BY_ONE = {"nin:num_1x1=1": "one 1x1 conv", "nin": "two 1x1 convs (the chapter's)",
              "nin:num_1x1=3": "three 1x1 convs", "nin:head=fc": "two 1x1 convs, dense head"}


def conclude_nin(results: StudyResults) -> str:
    done = results.finished()
    best = max(done, key=lambda r: r["test_acc"], default=None)
    sizes = ", ".join(f"{results.name(r)} {r['parameters']:,}" for r in results.rows)
    stuck = results.at_chance()
    chance = (f" Still at chance after {stuck[0]['epochs']} epochs: "
              f"{', '.join(results.name(r) for r in stuck)}." if stuck else "")
    return (f"Test accuracy: {results.ranked()}. Best: "
            f"{results.name(best) if best else 'none'}.{chance} Parameters: {sizes}.")


NIN_1X1 = Study(
    name="nin-1x1",
    question="How many 1x1 convolutions does a NiN block need, and what does a dense head "
             "instead of global average pooling change? NiN with 1, 2 or 3 of them, and with a "
             "dense head.",
    names=ONE_BY_ONE,
    budgets={"quick": Setup({"resize": 68, "subset": 20_000, "epochs": 3, "batch_size": 32,
                             "lr": 0.1}),
             "tiny": Setup({"resize": 68, "subset": 256, "epochs": 1, "batch_size": 64},
                           specs=(f"nin:num_1x1=1,arch={NARROW_NIN}",
                                  f"nin:head=fc,arch={NARROW_NIN}")),
             "full": Setup()},
    table=("test_acc", "train_acc", "status", "seconds_per_epoch", "parameters", "mflops"),
    figures=(figures.accuracy_bars, figures.curves),
    conclude=conclude_nin,
)


MEMORY = {"densenet": "standard", "densenet:memory_efficient=true": "memory-efficient"}


def conclude_memory(results: StudyResults) -> str:
    plain, saving = list(MEMORY)
    parts = []
    for size in sorted({r["batch_size"] for r in results.rows}):
        a, b = results.one(model=plain, batch_size=size), results.one(model=saving,
                                                                          batch_size=size)
        memory = ("n/a" if not a["added_mib"] else
                  f"{a['added_mib']:,.0f} -> {b['added_mib']:,.0f} MiB "
                  f"({b['added_mib'] / a['added_mib'] - 1:+.0%})")
        parts.append(f"batch {size}: memory a batch adds {memory}, speed "
                     f"{b['bench_images_per_s'] / a['bench_images_per_s']:.2f}x "
                     f"({a['bench_images_per_s']:,.0f} -> {b['bench_images_per_s']:,.0f} "
                     "images/s)")
    return ("The memory-efficient mode (recomputing each dense layer's concatenation and "
            "bottleneck in the backward pass) against the standard DenseNet: "
            + "; ".join(parts) + ".")


DENSENET_MEMORY = Study(
    name="densenet-memory",
    question="What does DenseNet's memory-efficient mode save, and what does it cost? Training "
             "memory and speed with and without it (same gradients).",
    names=MEMORY,
    trains=False,
    budgets={"quick": Setup(measure=Measure((16, 32, 64))),
             "tiny": Setup(measure=Measure((8, 16), side=32, steps=2, warmup=1)),
             "full": Setup(measure=Measure((32, 64, 128, 256)))},
    table=("input", "bench_images_per_s", "ms_per_step", "peak_mib", "added_mib"),
    figures=(figures.throughput_and_memory,),
    conclude=conclude_memory,
)

STUDIES = (ALEXNET_OVERFIT, VGG_RESOLUTION, NIN_1X1, DENSENET_MEMORY)
