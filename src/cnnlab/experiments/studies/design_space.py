"""The RegNet paper's design-space method (Radosavovic et al., 2020) on AnyNet, as a study.

A design space is a set of networks. AnyNetX-A leaves every stage free: its depth d, width w,
bottleneck ratio b (the block's inner width is w/b) and group width g. Each next space adds one
constraint: B shares b across stages, C also shares g, D makes the widths never shrink from one
stage to the next, E the depths too. VioNet (the d2l exercise) breaks D's constraint on purpose:
C's shared b and g, but widths that strictly shrink from stage to stage.

The method samples models from each space, trains each briefly, and compares the spaces by their
error empirical distribution functions (EDFs): a space whose EDF lies to the left holds more good
models. Here each EDF is drawn with a pointwise bootstrap band, two spaces are told apart by a
two-sample Kolmogorov-Smirnov test, and the error's dependence on each factor (depth, width,
group width, bottleneck ratio) is measured by Spearman's rank correlation with an interval.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from cnnlab.analysis.statistics import Estimate, ks_two_sample, rank_correlation
from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import Setup, Study, canonical
from cnnlab.experiments.studies.records import StudyResults, percent, points

SEED = 0


@dataclass(frozen=True)
class Space:
    """The constraints of one design space: which parameters every stage shares, and how the
    widths and depths may change from one stage to the next (``free``, ``up``: never shrink,
    ``down``: strictly shrink)."""

    name: str
    shared_ratio: bool = False
    shared_group: bool = False
    widths: str = "free"
    depths: str = "free"
    summary: str = ""


RULES = (
    Space("AnyNetX-A", summary="every stage free"),
    Space("AnyNetX-B", shared_ratio=True, summary="one bottleneck ratio"),
    Space("AnyNetX-C", shared_ratio=True, shared_group=True, summary="and one group width"),
    Space("AnyNetX-D", shared_ratio=True, shared_group=True, widths="up",
          summary="and widths that never shrink"),
    Space("AnyNetX-E", shared_ratio=True, shared_group=True, widths="up", depths="up",
          summary="and depths that never shrink"),
    Space("VioNet", shared_ratio=True, shared_group=True, widths="down",
          summary="C with widths that strictly shrink, breaking D's constraint"),
)
SPACES = tuple(space.name for space in RULES)
RULE = {space.name: space for space in RULES}

COMPARED = (("AnyNetX-B", "AnyNetX-A"), ("AnyNetX-C", "AnyNetX-B"), ("AnyNetX-D", "AnyNetX-C"),
            ("AnyNetX-E", "AnyNetX-D"), ("AnyNetX-E", "AnyNetX-A"), ("VioNet", "AnyNetX-D"))
"""The pairs of spaces the conclusion tests: each refinement against the space it refines, the
whole refinement (E against A), and VioNet against the space whose constraint it breaks."""
CONFIDENCE = 0.95
"""The family-wise confidence of the KS tests (Bonferroni over the pairs compared)."""
MIN_TESTED = 4
"""Finished networks each space needs before its EDF is tested against another's."""

MIN_CORRELATED = 10
"""Finished networks the rank correlations need (a percentile bootstrap of fewer pairs gives
intervals that cannot be trusted)."""

FACTORS = {"depth": "total depth", "width": "mean width", "group_width": "mean group width",
           "bottleneck_ratio": "mean bottleneck ratio"}
"""Each sampled network's factors (result columns), in words."""


@dataclass(frozen=True)
class Bounds:
    """Where AnyNetX's free parameters are drawn from, per stage."""

    stages: int = 4
    depths: tuple[int, ...] = (1, 2, 3, 4)
    widths: tuple[int, ...] = tuple(range(8, 129, 8))
    ratios: tuple[int, ...] = (1, 2, 4)
    group_widths: tuple[int, ...] = (1, 2, 4, 8, 16, 32)


def _choices(rng: random.Random, values: tuple, count: int, shared: bool) -> list:
    return [rng.choice(values)] * count if shared else [rng.choice(values) for _ in range(count)]


def _ordered(values: list[int], order: str) -> bool:
    """Whether `values` change from stage to stage as `order` asks."""
    pairs = list(zip(values, values[1:], strict=False))
    if order == "up":
        return all(a <= b for a, b in pairs)
    if order == "down":
        return all(a > b for a, b in pairs)
    return True


def sample_stages(space: str, bounds: Bounds, rng: random.Random) -> list[tuple]:
    """One network of `space`: (depth, width, group width, bottleneck multiplier) per stage,
    drawn uniformly from the configurations that meet the space's constraints (by rejection)."""
    rule, n = RULE[space], bounds.stages
    if rule.widths == "down" and len(set(bounds.widths)) < n:
        raise ValueError(f"{space} needs {n} distinct widths to shrink over {n} stages")
    while True:
        depths = _choices(rng, bounds.depths, n, False)
        widths = _choices(rng, bounds.widths, n, False)
        ratios = _choices(rng, bounds.ratios, n, rule.shared_ratio)
        groups = _choices(rng, bounds.group_widths, n, rule.shared_group)
        if not (_ordered(widths, rule.widths) and _ordered(depths, rule.depths)):
            continue
        inner = [w // b for w, b in zip(widths, ratios, strict=True)]
        if all(w % b == 0 and i % g == 0 for w, b, i, g in zip(widths, ratios, inner, groups,
                                                              strict=True)):
            return [(d, w, g, 1 / b) for d, w, g, b in zip(depths, widths, groups, ratios,
                                                           strict=True)]


def anynet_spec(stages: list[tuple]) -> str:
    """The model spec of an AnyNet with these stages (on the chapter's RegNetX-32 stem)."""
    arch = ",".join(f"({d},{w},{g},{m:g})" for d, w, g, m in stages)
    return canonical(f"regnetx32:arch=({arch})")


def factors(stages: list[tuple]) -> dict:
    """A network's factors: total depth, and the mean over its stages of the width, the group
    width and the bottleneck ratio b."""
    depths, widths, groups, multipliers = zip(*stages, strict=True)
    return {"depth": sum(depths), "width": statistics.fmean(widths),
            "group_width": statistics.fmean(groups),
            "bottleneck_ratio": statistics.fmean(1 / m for m in multipliers)}


def describe_bounds(bounds: Bounds, per_space: int) -> str:
    plural = "s" if per_space > 1 else ""
    return (f"{per_space} network{plural} per space with {bounds.stages} stages, depths "
            f"{min(bounds.depths)}-{max(bounds.depths)} and widths {min(bounds.widths)}-"
            f"{max(bounds.widths)} per stage")


def sample_spaces(bounds: Bounds, per_space: int, settings: dict, seed: int = SEED,
                  notes: tuple[str, ...] = ()) -> Setup:
    """`per_space` distinct models from each space, as the specs and labels (space and factors)
    of a setup that trains them with `settings`."""
    rng = random.Random(seed)
    labels: dict[str, dict] = {}
    for space in SPACES:
        taken = 0
        while taken < per_space:
            stages = sample_stages(space, bounds, rng)
            spec = anynet_spec(stages)
            if spec not in labels:
                labels[spec] = {"space": space, **factors(stages)}
                taken += 1
    return Setup(settings, tuple(labels), labels=labels,
                 notes=(describe_bounds(bounds, per_space), *notes))


# --- the conclusion ------------------------------------------------------------------------------

def _errors(results: StudyResults) -> dict[str, list[float]]:
    return {space: [1 - r["test_acc"] for r in results.finished(results.where(space=space))]
            for space in SPACES}


def _short(space: str) -> str:
    return space.removeprefix("AnyNetX-")


def _comparisons(errors: dict[str, list[float]], medians: dict[str, float]) -> str:
    """The KS test of each compared pair, at the Bonferroni-corrected level, and what it shows."""
    pairs = [pair for pair in COMPARED if all(space in medians for space in pair)]
    if not pairs:
        return ""
    if any(len(errors[space]) < MIN_TESTED for pair in pairs for space in pair):
        return (f" Too few finished networks to test the EDFs against each other (a test needs "
                f"at least {MIN_TESTED} in each space).")
    level = 1 - (1 - CONFIDENCE) / len(pairs)
    parts, apart = [], {}
    for later, earlier in pairs:
        test = ks_two_sample(errors[later], errors[earlier])
        apart[later, earlier] = test.told_apart(level)
        text = f"{_short(later)} against {_short(earlier)}: {test.sentence(level)}"
        if apart[later, earlier]:
            gap = medians[later] - medians[earlier]
            text += (f", {_short(later)}'s median error {points(abs(gap)).lstrip('+')} "
                     f"{'below' if gap < 0 else 'above'} {_short(earlier)}'s")
        parts.append(text)
    alpha = (1 - CONFIDENCE) / len(pairs)
    text = (f" Error EDFs compared by two-sample Kolmogorov-Smirnov tests, each at the "
            f"{alpha:.3g} level ({1 - CONFIDENCE:g} over {len(pairs)} comparisons, Bonferroni): "
            + "; ".join(parts) + ".")
    refinements = [pair for pair in pairs if pair[0] != "VioNet"]
    if refinements and not any(apart[pair] for pair in refinements):
        text += (" No refinement is told apart from the space it refines: at this budget the "
                 "EDFs do not rank the AnyNetX spaces.")
    if ("VioNet", "AnyNetX-D") in apart:
        if not apart["VioNet", "AnyNetX-D"]:
            text += (" VioNet is not told apart from D: at this budget widths that shrink are "
                     "not shown to hurt.")
        elif medians["VioNet"] > medians["AnyNetX-D"]:
            text += " Breaking D's constraint hurts: VioNet's networks are worse than D's."
        else:
            text += (" VioNet's networks are better than D's: widths that shrink did not hurt "
                     "at this budget.")
    return text


def _magnitude(estimate: Estimate) -> tuple[float, float]:
    """The interval of |rho|."""
    low, high = sorted((abs(estimate.low), abs(estimate.high)))
    return (0.0 if not estimate.excludes_zero else low), high


def _dependence(results: StudyResults) -> str:
    """Spearman's rho of the error with each factor over every finished network, and which
    factor the error depends on most, said only where the intervals support it."""
    done = [row for row in results.finished() if row.get("test_acc") is not None
            and all(row.get(key) is not None for key in FACTORS)]
    if len(done) < MIN_CORRELATED:
        return (f" Too few finished networks ({len(done)}) to correlate the error with depth, "
                f"width, group width and bottleneck ratio (at least {MIN_CORRELATED} needed).")
    errors = [1 - row["test_acc"] for row in done]
    found, constant = {}, []
    for key, name in FACTORS.items():
        try:
            found[name] = rank_correlation([row[key] for row in done], errors)
        except ValueError:
            constant.append(name)
    if not found:
        return ""
    listed = "; ".join(f"{name} {rho.number()}" for name, rho in found.items())
    text = (f" Rank correlation of the test error with each factor over the {len(done)} "
            f"finished networks of all spaces (Spearman rho, 95% bootstrap interval; negative: "
            f"more of it, lower error): {listed}"
            + (f"; {' and '.join(constant)} did not vary" if constant else "") + ".")
    clear = [name for name, rho in found.items() if rho.excludes_zero]
    if not clear:
        return text + (" No factor's correlation is told apart from zero: at this budget the "
                       "error is not shown to depend on any one of them.")
    top = max(found, key=lambda name: abs(found[name].mean))
    if top not in clear:
        return text + (f" Told apart from zero: {_joined(clear)}; {top} has the largest "
                       f"|rho| but its interval includes zero, so no factor is shown to "
                       f"matter most.")
    low = _magnitude(found[top])[0]
    overlapping = [name for name in found if name != top and _magnitude(found[name])[1] >= low]
    if not overlapping:
        return text + (f" The error depends most on {top}: its |rho| is the largest and its "
                       f"interval lies clear of the other factors'.")
    return text + (f" {top.capitalize()} has the largest |rho| and its interval excludes zero, "
                   f"but it overlaps the interval of {_joined(overlapping)}, so which factor "
                   f"the error depends on most is not settled at this budget.")


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def conclude_design_space(results: StudyResults) -> str:
    errors = _errors(results)
    medians = {space: statistics.median(found) for space, found in errors.items() if found}
    if not medians:
        return "No trial finished."
    listed = ", ".join(f"{space} {percent(m)} (n={len(errors[space])})"
                       for space, m in medians.items())
    text = f"Median test error by design space: {listed}."
    text += _comparisons(errors, medians)
    text += _dependence(results)
    best = max(results.finished(), key=lambda r: r["test_acc"])
    return text + (f" Best model: {percent(1 - best['test_acc'])} error ({best['space']}, "
                   f"{best['model']}).")


QUICK_BOUNDS = Bounds(depths=(1, 2, 3), widths=tuple(range(8, 65, 8)))
QUICK_SETTINGS = {"resize": 28, "subset": 4_000, "epochs": 1, "batch_size": 32}
"""96 networks (16 per space) of 125 steps each: 5.4 s a network through the study runner (its
test evaluation included) on two cores of an AMD EPYC with avx512_bf16, about 9 minutes in all.
Batches of 32 take the networks clear of chance (50-73% test accuracy) in so few images."""
FULL_BOUNDS = Bounds(depths=tuple(range(1, 9)), widths=tuple(range(8, 257, 8)))

DESIGN_SPACE = Study(
    name="design-space",
    question="Which AnyNet design space holds better networks? Random networks sampled from "
             "AnyNetX-A (every stage free), then B (shared bottleneck ratio), C (and shared "
             "group width), D (widths never shrink) and E (depths never shrink), and from "
             "VioNet (C with widths that strictly shrink, breaking D's constraint), each trained "
             "briefly; the spaces compared by their error EDFs as in the RegNet paper (bootstrap "
             "bands, Kolmogorov-Smirnov tests), and the error's rank correlation with depth, "
             "width, group width and bottleneck ratio.",
    budgets={"tiny": sample_spaces(QUICK_BOUNDS, 1, {"resize": 28, "subset": 256, "epochs": 1,
                                                     "batch_size": 64}),
             "quick": sample_spaces(QUICK_BOUNDS, 16, QUICK_SETTINGS),
             "full": sample_spaces(FULL_BOUNDS, 32, {})},
    table=("space", *FACTORS, "parameters", "mflops", "test_acc", "status",
           "seconds_per_epoch"),
    figures=(figures.error_edfs("space"),),
    conclude=conclude_design_space,
)

STUDIES = (DESIGN_SPACE,)
