"""The batch-normalisation exercises (d2l 8.5) as studies, on LeNet: the learning rate it allows,
where it goes, lite versions, against dropout, and its sensitivity to the batch size.

Each comparison changes only the normalisation: ``lenet:norm=batch`` keeps LeNet's padding (the
seed's ``lenet-bn`` drops it, which is why d2l's own comparison mixed two changes).
"""

from __future__ import annotations

from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import Setup, Study
from cnnlab.experiments.studies.records import LEARNED, StudyResults, percent, points

BN = "lenet:norm=batch"
LENET_QUICK = {"epochs": 3}
"""LeNet is cheap: its quick budget keeps the whole training set and trains 3 of 10 epochs
(fewer steps leave the sigmoid LeNet at chance at the seed's lr 0.1 and large batches)."""

PRECISE = {"precise_bn": 10_000}
"""Batch-norm statistics recomputed over 10,000 training images before each evaluation: in a
short run the moving averages lag the weights (batch norm in LeNet's dense layers measured 59.8%
with them and 83.8% recomputed, same weights), so the studies that rank placements report both."""
BOTH_EVALUATIONS = ("test_acc", "plain_test_acc", "train_acc", "status", "seconds_per_epoch",
                    "parameters")


def _evaluations(results: StudyResults) -> str:
    """The ranking with the moving averages as trained, and whether it picks the same best."""
    best, plain = results.best(), results.best("plain_test_acc")
    if best is None or any(r.get("plain_test_acc") is None for r in results.finished()):
        return ""
    verdict = ("the two evaluations agree on the best" if best is plain else
               f"the two evaluations disagree: with the moving averages {results.label(plain)} "
               f"leads, with recomputed statistics {results.label(best)}")
    if max(len(seeds) for seeds in results.by_seed(results.finished()).values()) < 2:
        verdict += " (one seed each: a single measurement, not a finding)"
    return (f" With the moving averages as trained (no recomputation): "
            f"{results.ranked(column='plain_test_acc')}; {verdict}.")


def _largest_trained(results: StudyResults, spec: str) -> str:
    """The largest lr at which `spec` learned, and what the rates above it did."""
    rows = results.where(model=spec)
    stuck = results.at_chance(rows)
    learned = [r["lr"] for r in results.finished(rows) if r not in stuck]
    if not learned:
        return f"none (no rate reached {percent(LEARNED)})"
    above = [r for r in rows if r["lr"] > max(learned)]
    stalled = [r["lr"] for r in above if r["status"] == "completed"]
    diverged = [r["lr"] for r in above if r["status"] == "diverged"]
    what = ([f"at chance from {min(stalled):g}"] if stalled else []) + (
        [f"diverged from {min(diverged):g}"] if diverged else [])
    return f"{max(learned):g} ({', '.join(what) or 'the largest rate tried'})"


def conclude_bn_lr(results: StudyResults) -> str:
    specs = list(dict.fromkeys(r["model"] for r in results.rows))
    trained = "; ".join(f"{results.names.get(s, s)}: {_largest_trained(results, s)}"
                        for s in specs)
    best = []
    for spec in specs:
        done = results.finished(results.where(model=spec))
        if done:
            top = max(done, key=lambda r: r["test_acc"])
            best.append(f"{percent(top['test_acc'])} at lr {top['lr']:g} "
                        f"{results.names.get(spec, spec)}")
    return (f"Largest learning rate that trained (no divergence, test accuracy at least "
            f"{percent(LEARNED)}, twice chance) {trained}. Best test accuracy "
            f"{', '.join(best) or 'none'}.")


BN_LR = Study(
    name="bn-lr",
    question="How large can the learning rate be with and without batch norm? LeNet with and "
             "without batch norm (nothing else differs) over a log grid of learning rates.",
    specs=("lenet", BN),
    grid={"lr": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)},
    names={"lenet": "without batch norm", BN: "with batch norm"},
    budgets={"quick": Setup(LENET_QUICK), "full": Setup()},
    table=("test_acc", "train_loss", "status", "seconds_per_epoch"),
    figures=(figures.curves,),
    conclude=conclude_bn_lr,
)


def _gain_share(results: StudyResults, part: str, whole: str, none: str) -> str:
    """How much of the gain of `whole` over `none` the `part` placement keeps."""
    rows = {name: results.finished(results.where(model=spec))
            for name, spec in (("part", part), ("whole", whole), ("none", none))}
    if not all(rows.values()):
        return "n/a (a trial did not finish)"
    gain = rows["whole"][0]["test_acc"] - rows["none"][0]["test_acc"]
    if gain <= 0:
        return "n/a (batch norm everywhere did not beat none)"
    change = rows["part"][0]["test_acc"] - rows["none"][0]["test_acc"]
    if change < 0:
        return f"none of it (it is {points(change).lstrip('-')} below no batch norm)"
    return f"{change / gain:.0%}"


PLACEMENT = {"lenet": "none", "lenet:norm=batch,norm_at=conv": "convolutions only",
             "lenet:norm=batch,norm_at=fc": "dense layers only", BN: "all layers"}


def conclude_placement(results: StudyResults) -> str:
    conv, fc = "lenet:norm=batch,norm_at=conv", "lenet:norm=batch,norm_at=fc"
    return (f"Test accuracy: {results.ranked()}. Batch norm on the convolutions alone keeps "
            f"{_gain_share(results, conv, BN, 'lenet')} of the gain of batch norm everywhere, on "
            f"the dense layers alone {_gain_share(results, fc, BN, 'lenet')}."
            + _evaluations(results))


BN_PLACEMENT = Study(
    name="bn-placement",
    question="Where does batch norm help: after the convolutions only, the dense layers only, "
             "or all layers (LeNet, against none)?",
    names=PLACEMENT,
    budgets={"quick": Setup({**LENET_QUICK, **PRECISE}), "full": Setup(PRECISE)},
    table=BOTH_EVALUATIONS,
    figures=(figures.accuracy_bars, figures.curves),
    conclude=conclude_placement,
)


LITE = {BN: "full", "lenet:norm=mean-only": "mean-only", "lenet:norm=var-only": "variance-only"}


def conclude_lite(results: StudyResults) -> str:
    learned = results.where(**{"model.norm_affine": "true"})
    changes = []
    for spec, name in LITE.items():
        pair = [results.finished(results.where(model=spec, **{"model.norm_affine": value}))
                for value in ("true", "false")]
        if all(pair):
            changes.append(f"{name} {points(pair[1][0]['test_acc'] - pair[0][0]['test_acc'])}")
    finished = results.finished()
    best = max(finished, key=lambda r: r["test_acc"]) if finished else None
    return (f"With learned gamma and beta: {results.ranked(learned)}. Fixing gamma=1 and "
            f"beta=0 changes the test accuracy by: {', '.join(changes) or 'n/a'}. Best: "
            + (f"{results.label(best)} ({percent(best['test_acc'])})." if best else "none."))


BN_LITE = Study(
    name="bn-lite",
    question="Is all of batch norm needed? Full, mean-only and variance-only normalisation, "
             "each with learned and with fixed gamma and beta (LeNet).",
    specs=tuple(LITE),
    grid={"model.norm_affine": ("true", "false")},
    names=LITE,
    budgets={"quick": Setup(LENET_QUICK), "full": Setup()},
    figures=(figures.accuracy_bars,),
    conclude=conclude_lite,
)


REGULARISERS = {"lenet": "neither", "lenet:dropout=0.5": "dropout",
                "lenet:norm=batch,norm_at=fc": "batch norm",
                "lenet:norm=batch,norm_at=fc,dropout=0.5": "both"}


def _final_gap(row: dict) -> float:
    return row["train_acc"] - row["test_acc"]


def conclude_bn_vs_dropout(results: StudyResults) -> str:
    rows = {name: results.finished(results.where(model=spec))
            for spec, name in REGULARISERS.items()}
    text = f"Test accuracy: {results.ranked()}."
    if rows["batch norm"] and rows["dropout"]:
        text += (f" Batch norm instead of dropout: "
                 f"{points(rows['batch norm'][0]['test_acc'] - rows['dropout'][0]['test_acc'])}.")
    if rows["both"] and rows["batch norm"]:
        text += (f" Dropout on top of batch norm: "
                 f"{points(rows['both'][0]['test_acc'] - rows['batch norm'][0]['test_acc'])}.")
    gaps = [f"{name} {points(_final_gap(found[0]))}" for name, found in rows.items() if found]
    return (text + f" Training minus test accuracy in the last epoch: {', '.join(gaps)}."
            + _evaluations(results))


BN_VS_DROPOUT = Study(
    name="bn-vs-dropout",
    question="Can batch norm replace dropout? LeNet with dropout (0.5), batch norm, both or "
             "neither in its dense layers.",
    names=REGULARISERS,
    budgets={"quick": Setup({**LENET_QUICK, **PRECISE}), "full": Setup(PRECISE)},
    table=BOTH_EVALUATIONS,
    figures=(figures.accuracy_bars, figures.curves),
    conclude=conclude_bn_vs_dropout,
)


def _spread(results: StudyResults, spec: str) -> str:
    done = results.finished(results.where(model=spec))
    if not done:
        return f"{results.names.get(spec, spec)}: no trial finished"
    best = max(done, key=lambda r: r["test_acc"])
    worst = min(done, key=lambda r: r["test_acc"])
    return (f"{results.names.get(spec, spec)} {percent(worst['test_acc'])} (batch "
            f"{worst['batch_size']}) to {percent(best['test_acc'])} (batch {best['batch_size']}), "
            f"a spread of {points(best['test_acc'] - worst['test_acc']).lstrip('+')}")


def conclude_bn_batch_size(results: StudyResults) -> str:
    sizes = sorted({r["batch_size"] for r in results.rows})
    gains = []
    for size in (sizes[0], sizes[-1]):
        pair = [results.finished(results.where(model=spec, batch_size=size))
                for spec in ("lenet", BN)]
        if all(pair):
            gains.append(f"batch {size} {points(pair[1][0]['test_acc'] - pair[0][0]['test_acc'])}")
    return (f"Over batch sizes {sizes[0]} to {sizes[-1]} (same lr and epochs) the test accuracy "
            f"ranges {_spread(results, BN)}; {_spread(results, 'lenet')}. Batch norm's gain: "
            f"{', '.join(gains) or 'n/a'}.")


BN_BATCH_SIZE = Study(
    name="bn-batch-size",
    question="How sensitive is batch norm to the batch size? LeNet with and without batch norm "
             "over batch sizes from 16 to 1024 (learning rate and epochs fixed).",
    specs=("lenet", BN),
    grid={"batch_size": (16, 32, 64, 128, 256, 512, 1024)},
    names={"lenet": "without batch norm", BN: "with batch norm"},
    budgets={"quick": Setup(LENET_QUICK), "full": Setup()},
    table=("test_acc", "train_acc", "status", "seconds_per_epoch", "images_per_s"),
    figures=(figures.against("batch_size", ("test_acc", "seconds_per_epoch")),),
    conclude=conclude_bn_batch_size,
)

STUDIES = (BN_LR, BN_PLACEMENT, BN_LITE, BN_VS_DROPOUT, BN_BATCH_SIZE)
