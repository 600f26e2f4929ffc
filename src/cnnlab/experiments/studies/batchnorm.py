"""The batch-normalisation exercises (d2l 8.5) as studies, on LeNet: the learning rate it allows,
where it goes, lite versions, against dropout, and its sensitivity to the batch size.

Each comparison changes only the normalisation: ``lenet:norm=batch`` keeps LeNet's padding (the
seed's ``lenet-bn`` drops it, which is why d2l's own comparison mixed two changes).
"""

from __future__ import annotations

import math

from cnnlab.analysis.statistics import Comparison, interval, paired_difference, seeds_needed
from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import QUICK_SEEDS, Setup, Study
from cnnlab.experiments.studies.records import LEARNED, StudyResults, percent, points, verdict

BN = "lenet:norm=batch"
LENET_QUICK = {"epochs": 3}
"""LeNet is cheap: its quick budget keeps the whole training set and trains 3 of 10 epochs
(fewer steps leave the sigmoid LeNet at chance at the seed's lr 0.1 and large batches)."""

WITH_AND_WITHOUT = {"lenet": "without batch norm", BN: "with batch norm"}
LENET_BUDGETS = {"quick": Setup(LENET_QUICK, seeds=QUICK_SEEDS), "full": Setup()}

PRECISE = {"precise_bn": 10_000}
"""Batch-norm statistics recomputed over 10,000 training images before each evaluation: in a
short run the moving averages lag the weights (batch norm in LeNet's dense layers measured 59.8%
with them and 83.8% recomputed, same weights), so the studies that rank placements report both."""
PRECISE_STUDY = {
    "budgets": {"quick": Setup({**LENET_QUICK, **PRECISE}, seeds=QUICK_SEEDS),
                "full": Setup(PRECISE)},
    "table": ("test_acc", "plain_test_acc", "train_acc", "status", "seconds_per_epoch",
              "parameters"),
    "figures": (figures.accuracy_bars, figures.curves)}
"""What the studies that compare placements share: precise batch norm at every budget, a
table with both evaluations, accuracy bars and curves."""


def _evaluations(results: StudyResults) -> str:
    """The ranking with the moving averages as trained, whether it picks the same best, and
    what recomputing the statistics changed for each model with batch norm."""
    if not results.finished() or any(r.get("plain_test_acc") is None
                                     for r in results.finished()):
        return ""
    best, plain = (_best_variant(results, column) for column in ("test_acc", "plain_test_acc"))
    verdict_text = ("the two evaluations agree on the best" if best == plain else
                    f"the two evaluations disagree: with the moving averages {plain} leads, "
                    f"with recomputed statistics {best}")
    if results.seeds() < 2:
        verdict_text += " (one seed each: a single measurement, not a finding)"
    changed = []
    for spec in dict.fromkeys(r["model"] for r in results.rows):
        if results.runs(model=spec) != results.runs("plain_test_acc", model=spec):
            name = results.names.get(spec, spec)
            changed.append(results.compared(f"{name} recomputed", {"model": spec},
                                            f"{name} as trained", {"model": spec},
                                            other="plain_test_acc"))
    return (f" With the moving averages as trained (no recomputation): "
            f"{results.ranked(column='plain_test_acc')}; {verdict_text}."
            + (f" Recomputed statistics against the moving averages, same weights: "
               f"{'; '.join(changed)}." if changed else ""))


def _best_variant(results: StudyResults, column: str) -> str:
    """The label of the variant with the highest mean `column`."""
    runs = results.by_seed(results.finished(), column)
    return max(runs, key=lambda label: sum(runs[label].values()) / len(runs[label]))


def _largest_trained(results: StudyResults, rows: list[dict]) -> tuple[float | None, str]:
    """The largest lr at which one seed's `rows` learned, and that with what the rates above
    it did, in words."""
    stuck = results.at_chance(rows)
    learned = [r["lr"] for r in results.finished(rows) if r not in stuck]
    if not learned:
        return None, f"none (no rate reached {percent(LEARNED)})"
    above = [r for r in rows if r["lr"] > max(learned)]
    stalled = [r["lr"] for r in above if r["status"] == "completed"]
    diverged = [r["lr"] for r in above if r["status"] == "diverged"]
    what = ([f"at chance from {min(stalled):g}"] if stalled else []) + (
        [f"diverged from {min(diverged):g}"] if diverged else [])
    return max(learned), f"{max(learned):g} ({', '.join(what) or 'the largest rate tried'})"


def largest_by_seed(results: StudyResults, spec: str) -> dict[int, tuple[float | None, str]]:
    """Per seed, the largest lr at which `spec` learned, with its description."""
    rows = results.where(model=spec)
    return {seed: _largest_trained(results, [r for r in rows if r.get("seed", 0) == seed])
            for seed in dict.fromkeys(r.get("seed", 0) for r in rows)}


def _summarise_largest(found: dict[int, tuple[float | None, str]]) -> str:
    """``3 (diverged from 10)`` for one seed; by seed, grouped, for several."""
    seeds: dict[str, list[int]] = {}
    for seed, (_, text) in found.items():
        seeds.setdefault(text, []).append(seed)
    if len(found) == 1:
        return next(iter(seeds))
    if len(seeds) == 1:
        return f"{next(iter(seeds))} on all {len(found)} seeds"
    return "; ".join(f"{text} on seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}"
                     for text, s in seeds.items())


def _larger_rate(results: StudyResults, specs: list[str]) -> str:
    """Whether the second spec's largest trained lr is larger than the first's, as a paired
    comparison of log10 rates over the seeds on which both learned."""
    first, second = ({seed: math.log10(lr) for seed, (lr, _) in largest_by_seed(results, s).items()
                      if lr is not None} for s in specs)
    shared = set(first) & set(second)
    if not shared:
        return ""
    a, b = (results.names.get(s, s) for s in specs)
    difference = paired_difference(second, first)
    found = Comparison(f"the largest rate {b} trained at", f"{a}'s", difference,
                       seeds_needed(difference), ratio=True)
    results.findings.append(found)
    told = ("larger" if difference.low > 0 else "smaller" if difference.high < 0 else
            "not told apart")
    return (f" The largest rate {b} trained at, against {a}'s: {found.amount()} (geometric mean "
            f"ratio, paired t on log10 rates, at the grid's resolution): {told}"
            + (" (one seed: not a finding)" if difference.n < 2 else "") + ".")


def conclude_bn_lr(results: StudyResults) -> str:
    specs = list(dict.fromkeys(r["model"] for r in results.rows))
    trained = "; ".join(f"{results.names.get(s, s)}: "
                        f"{_summarise_largest(largest_by_seed(results, s))}" for s in specs)
    best = []
    for spec in specs:
        rates = {r["lr"] for r in results.finished(results.where(model=spec))}
        if rates:
            top = max(rates, key=lambda lr: results.estimate(model=spec, lr=lr).mean)
            best.append(f"{results.estimate(model=spec, lr=top).percent()} at lr {top:g} "
                        f"{results.names.get(spec, spec)}")
    return (f"Largest learning rate that trained (no divergence, test accuracy at least "
            f"{percent(LEARNED)}, twice chance) {trained}."
            + (_larger_rate(results, specs[:2]) if len(specs) >= 2 else "")
            + f" Best test accuracy {'; '.join(best) or 'none'}.")


BN_LR = Study(
    name="bn-lr",
    question="How large can the learning rate be with and without batch norm? LeNet with and "
             "without batch norm (nothing else differs) over a log grid of learning rates.",
    grid={"lr": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)},
    names=WITH_AND_WITHOUT,
    budgets={"quick": Setup(LENET_QUICK, grid={"lr": (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)},
                            seeds=QUICK_SEEDS),
             "full": Setup()},
    table=("test_acc", "train_loss", "status", "seconds_per_epoch"),
    figures=(figures.curves,),
    conclude=conclude_bn_lr,
)


def _gain_share(results: StudyResults, part: str, whole: str, none: str) -> str:
    """How much of the mean gain of `whole` over `none` the `part` placement keeps."""
    means = {spec: results.estimate(model=spec) for spec in (part, whole, none)}
    if not all(means.values()):
        return "n/a (a trial did not finish)"
    gain = means[whole].mean - means[none].mean
    if gain <= 0:
        return "n/a (batch norm everywhere did not beat none)"
    change = means[part].mean - means[none].mean
    if change < 0:
        return f"none of it (its mean is {points(change).lstrip('-')} below no batch norm)"
    return f"{change / gain:.0%}"


PLACEMENT = {"lenet": "none", "lenet:norm=batch,norm_at=conv": "convolutions only",
             "lenet:norm=batch,norm_at=fc": "dense layers only", BN: "all layers"}


def conclude_placement(results: StudyResults) -> str:
    conv, fc = "lenet:norm=batch,norm_at=conv", "lenet:norm=batch,norm_at=fc"
    against = "; ".join(results.compared(PLACEMENT[spec], {"model": spec}, "none",
                                         {"model": "lenet"}) for spec in (conv, fc, BN))
    return (f"Test accuracy: {results.ranked()}. Against no batch norm: {against}. Batch norm "
            f"on the convolutions alone keeps {_gain_share(results, conv, BN, 'lenet')} of the "
            f"mean gain of batch norm everywhere, on the dense layers alone "
            f"{_gain_share(results, fc, BN, 'lenet')}." + _evaluations(results))


BN_PLACEMENT = Study(
    name="bn-placement",
    question="Where does batch norm help: after the convolutions only, the dense layers only, "
             "or all layers (LeNet, against none)?",
    names=PLACEMENT,
    **PRECISE_STUDY,
    conclude=conclude_placement,
)


LITE = {BN: "full", "lenet:norm=mean-only": "mean-only", "lenet:norm=var-only": "variance-only"}


def conclude_lite(results: StudyResults) -> str:
    learned = results.where(**{"model.norm_affine": "true"})
    fixed = "; ".join(
        results.compared(f"{name} fixed", {"model": spec, "model.norm_affine": "false"},
                         f"{name} learned", {"model": spec, "model.norm_affine": "true"})
        for spec, name in LITE.items())
    return (f"With learned gamma and beta: {results.ranked(learned)}. Fixing gamma=1 and "
            f"beta=0 against learning them: {fixed}. All variants: {results.ranked()}.")


BN_LITE = Study(
    name="bn-lite",
    question="Is all of batch norm needed? Full, mean-only and variance-only normalisation, "
             "each with learned and with fixed gamma and beta (LeNet).",
    specs=tuple(LITE),
    grid={"model.norm_affine": ("true", "false")},
    names=LITE,
    budgets=LENET_BUDGETS,
    figures=(figures.accuracy_bars,),
    conclude=conclude_lite,
)


REGULARISERS = {"lenet": "neither", "lenet:dropout=0.5": "dropout",
                "lenet:norm=batch,norm_at=fc": "batch norm",
                "lenet:norm=batch,norm_at=fc,dropout=0.5": "both"}


def conclude_bn_vs_dropout(results: StudyResults) -> str:
    spec = {name: {"model": spec} for spec, name in REGULARISERS.items()}
    text = (f"Test accuracy: {results.ranked()}. Batch norm instead of dropout: "
            f"{results.compared('batch norm', spec['batch norm'], 'dropout', spec['dropout'])}."
            f" Dropout on top of batch norm: "
            f"{results.compared('both', spec['both'], 'batch norm', spec['batch norm'])}.")
    gaps = []
    for name, match in spec.items():
        rows = results.finished(results.where(**match))
        if rows:
            gap = interval([r["train_acc"] - r["test_acc"] for r in rows])
            gaps.append(f"{name} {gap.points()}")
    return (text + f" Training minus test accuracy in the last epoch: {'; '.join(gaps)}."
            + _evaluations(results))


BN_VS_DROPOUT = Study(
    name="bn-vs-dropout",
    question="Can batch norm replace dropout? LeNet with dropout (0.5), batch norm, both or "
             "neither in its dense layers.",
    names=REGULARISERS,
    **PRECISE_STUDY,
    conclude=conclude_bn_vs_dropout,
)


def _spread(results: StudyResults, spec: str) -> str:
    """The worst and best batch size of `spec` by mean accuracy, and their paired difference."""
    sizes = {r["batch_size"] for r in results.finished(results.where(model=spec))}
    name = results.names.get(spec, spec)
    if not sizes:
        return f"{name}: no trial finished"
    means = {size: results.estimate(model=spec, batch_size=size) for size in sizes}
    best, worst = max(sizes, key=lambda s: means[s].mean), min(sizes, key=lambda s: means[s].mean)
    found = results.versus(f"batch {best}", {"model": spec, "batch_size": best},
                           f"batch {worst}", {"model": spec, "batch_size": worst})
    return (f"{name} {means[worst].percent()} (batch {worst}) to {means[best].percent()} (batch "
            f"{best}): {verdict(found)}")


def conclude_bn_batch_size(results: StudyResults) -> str:
    sizes = sorted({r["batch_size"] for r in results.rows})
    gains = "; ".join(
        f"batch {size}: " + results.compared(
            "with batch norm", {"model": BN, "batch_size": size},
            "without", {"model": "lenet", "batch_size": size})
        for size in (sizes[0], sizes[-1]))
    return (f"Over batch sizes {sizes[0]} to {sizes[-1]} (same lr and epochs) the mean test "
            f"accuracy ranges {_spread(results, BN)}; {_spread(results, 'lenet')}. Batch norm "
            f"against none: {gains}.")


BN_BATCH_SIZE = Study(
    name="bn-batch-size",
    question="How sensitive is batch norm to the batch size? LeNet with and without batch norm "
             "over batch sizes from 16 to 1024 (learning rate and epochs fixed).",
    grid={"batch_size": (16, 32, 64, 128, 256, 512, 1024)},
    names=WITH_AND_WITHOUT,
    budgets={"quick": Setup({**LENET_QUICK, "subset": 30_000}, seeds=QUICK_SEEDS),
             "full": Setup()},
    table=("test_acc", "train_acc", "status", "seconds_per_epoch", "images_per_s"),
    figures=(figures.against("batch_size", ("test_acc", "seconds_per_epoch")),),
    conclude=conclude_bn_batch_size,
)

STUDIES = (BN_LR, BN_PLACEMENT, BN_LITE, BN_VS_DROPOUT, BN_BATCH_SIZE)
