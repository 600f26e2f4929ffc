"""Studies of the architectures' own exercises: AlexNet overfitting a small subset, VGG at
lower resolutions, NiN's 1x1 convolutions and head, DenseNet's memory-efficient mode."""

from __future__ import annotations

from cnnlab.analysis.statistics import compare, interval
from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import QUICK_SEEDS, Measure, Setup, Study
from cnnlab.experiments.studies.records import (
    StudyResults,
    points,
    step_time,
    step_times_apart,
)


def largest_gap(results: StudyResults, row: dict) -> tuple[float, int] | None:
    """The largest training-minus-test accuracy over a trial's epochs, and its epoch."""
    epochs = results.curve(row)
    if not epochs:
        return None
    widest = max(epochs, key=lambda e: e["train_acc"] - e["val_acc"])
    return widest["train_acc"] - widest["val_acc"], widest["epoch"]


def conclude_overfit(results: StudyResults) -> str:
    parts = []
    for dropout in sorted({r["model.dropout"] for r in results.rows}):
        rows = results.where(**{"model.dropout": dropout})
        done = [r for r in results.finished(rows) if largest_gap(results, r) is not None]
        if not done:
            parts.append(f"with dropout {dropout:g} no trial finished "
                         f"({', '.join(r['status'] for r in rows)})")
            continue
        gap = interval([r["train_acc"] - r["test_acc"] for r in done])
        widest = max(largest_gap(results, r)[0] for r in done)
        overfits = ("it overfits (the interval excludes zero)" if gap.low > 0 else
                    "no gap told apart from zero" if gap.n > 1 else "one seed: not a finding")
        parts.append(f"with dropout {dropout:g} the training accuracy reached "
                     f"{results.estimate('train_acc', **{'model.dropout': dropout}).percent()} "
                     f"and the test accuracy "
                     f"{results.estimate(**{'model.dropout': dropout}).percent()} after "
                     f"{done[0]['epochs']} epochs, a gap of {gap.points()}: {overfits} (widest "
                     f"{points(widest).lstrip('+')} at one epoch)")
    text = "; ".join(parts)
    gaps = {dropout: {r.get("seed", 0): r["train_acc"] - r["test_acc"]
                      for r in results.finished(results.where(**{"model.dropout": dropout}))}
            for dropout in (0.0, 0.5)}
    if set(gaps[0.0]) & set(gaps[0.5]):
        found = compare("no dropout", gaps[0.0], "dropout 0.5", gaps[0.5])
        results.findings.append(found)
        text += (f". The gap between training and test accuracy, larger first: "
                 f"{found.sentence}")
    return text[:1].upper() + text[1:] + ". (Training accuracy as measured during each epoch.)"


ALEXNET_OVERFIT = Study(
    name="alexnet-overfit",
    question="Can AlexNet be made to overfit? A small training subset without weight decay, "
             "trained without dropout (and with the chapter's 0.5 for contrast): training "
             "against test accuracy per epoch, and the gap that opens.",
    specs=("alexnet",),
    grid={"model.dropout": (0.0, 0.5)},
    budgets={"quick": Setup({"subset": 1_000, "epochs": 50, "batch_size": 32, "resize": 68,
                             "lr": 0.05}, specs=("alexnet:width=0.25",), seeds=QUICK_SEEDS),
             "full": Setup({"subset": 1_000, "epochs": 50, "batch_size": 32})},
    table=("train_acc", "test_acc", "status", "seconds_per_epoch", "parameters"),
    figures=(figures.train_and_test,),
    conclude=conclude_overfit,
)


def conclude_resolution(results: StudyResults) -> str:
    sides = sorted({r["resize"] for r in results.finished()})
    if not sides:
        return "No trial finished."

    def mean(column: str, side: int) -> float:
        return results.estimate(column, resize=side).mean

    listed = "; ".join(f"{side} px {results.estimate(resize=side).percent()} "
                       f"({mean('seconds_per_epoch', side):.1f} s/epoch, "
                       f"{mean('parameters', side) / 1e6:.1f}M parameters, "
                       f"{mean('mflops', side):,.0f} MFLOPs)" for side in sides)
    small, large = sides[0], sides[-1]
    found = results.compared(f"{large} px", {"resize": large}, f"{small} px", {"resize": small})
    slower = mean("seconds_per_epoch", large) / mean("seconds_per_epoch", small)
    return (f"Test accuracy by input side: {listed}. {found[:1].upper()}{found[1:]}; "
            f"{large} px takes {slower:.1f}x the time per epoch of {small} px. Ranked: "
            f"{results.ranked()}.")


VGG_RESOLUTION = Study(
    name="vgg-resolution",
    question="What does VGG lose at lower resolution? The chapter's VGG at 56, 84 and 224 "
             "pixels: accuracy, time and parameters (its classifier is sized for each input).",
    specs=("vgg-small",),
    grid={"resize": (56, 84, 224)},
    budgets={"quick": Setup({"subset": 7_500, "epochs": 2, "batch_size": 32, "lr": 0.05},
                            grid={"resize": (56, 84, 112)}, seeds=QUICK_SEEDS),
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
    sizes = ", ".join(f"{results.name(r)} {r['parameters']:,}"
                      for r in {r["model"]: r for r in results.rows}.values())
    stuck = results.at_chance()
    chance = ""
    if stuck:
        specs = list(dict.fromkeys(r["model"] for r in stuck))
        chance = f" Still at chance after {stuck[0]['epochs']} epochs: " + ", ".join(
            results.names.get(spec, spec) + _seed_share(stuck, results.where(model=spec), spec)
            for spec in specs) + "."
    return f"Test accuracy: {results.ranked()}.{chance} Parameters: {sizes}."


def _seed_share(stuck: list[dict], rows: list[dict], spec: str) -> str:
    """`` (on 2 of 3 seeds)`` where the spec was trained with several seeds."""
    count = sum(r["model"] == spec for r in stuck)
    return f" (on {count} of {len(rows)} seeds)" if len(rows) > 1 else ""


NIN_1X1 = Study(
    name="nin-1x1",
    question="How many 1x1 convolutions does a NiN block need, and what does a dense head "
             "instead of global average pooling change? NiN with 1, 2 or 3 of them, and with a "
             "dense head.",
    names=ONE_BY_ONE,
    budgets={"quick": Setup({"resize": 68, "subset": 10_000, "epochs": 3, "batch_size": 32,
                             "lr": 0.1}, seeds=QUICK_SEEDS),
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
        speed = ("told apart: the 95% intervals of the step times do not overlap"
                 if step_times_apart(a, b) else "not told apart at this many timed steps")
        parts.append(f"batch {size}: memory a batch adds {memory}, speed "
                     f"{b['bench_images_per_s'] / a['bench_images_per_s']:.2f}x "
                     f"({a['bench_images_per_s']:,.0f} -> {b['bench_images_per_s']:,.0f} "
                     f"images/s; a step {step_time(a)} -> {step_time(b)}, {speed})")
    return ("The memory-efficient mode (recomputing each dense layer's concatenation and "
            "bottleneck in the backward pass) against the standard DenseNet: "
            + "; ".join(parts) + ". Memory is the process's peak resident size, read once per "
            "batch size (it does not vary from step to step); times are over the timed steps.")


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
