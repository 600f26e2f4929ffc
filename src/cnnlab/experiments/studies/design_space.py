"""The RegNet paper's design-space method (Radosavovic et al., 2020) on AnyNet, as a study.

A design space is a set of networks. AnyNetX-A leaves every stage free: its depth d, width w,
bottleneck ratio b (the block's inner width is w/b) and group width g. Each next space adds one
constraint: B shares b across stages, C also shares g, D makes the widths never shrink from one
stage to the next, E the depths too. The method samples models from each space, trains each
briefly, and compares the spaces by their error empirical distribution functions (EDFs): a
space whose EDF lies to the left holds more good models.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from cnnlab.experiments.studies import figures
from cnnlab.experiments.studies.definition import Setup, Study, canonical
from cnnlab.experiments.studies.records import StudyResults, percent, points

SPACES = ("AnyNetX-A", "AnyNetX-B", "AnyNetX-C", "AnyNetX-D", "AnyNetX-E")
SEED = 0


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


def sample_stages(space: str, bounds: Bounds, rng: random.Random) -> list[tuple]:
    """One network of `space`: (depth, width, group width, bottleneck multiplier) per stage,
    drawn uniformly from the configurations that meet the space's constraints (by rejection)."""
    level = SPACES.index(space)
    n = bounds.stages
    while True:
        depths = _choices(rng, bounds.depths, n, False)
        widths = _choices(rng, bounds.widths, n, False)
        ratios = _choices(rng, bounds.ratios, n, level >= 1)
        groups = _choices(rng, bounds.group_widths, n, level >= 2)
        if level >= 3 and widths != sorted(widths):
            continue
        if level >= 4 and depths != sorted(depths):
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


def describe_bounds(bounds: Bounds, per_space: int) -> str:
    plural = "s" if per_space > 1 else ""
    return (f"{per_space} network{plural} per space with {bounds.stages} stages, depths "
            f"{min(bounds.depths)}-{max(bounds.depths)} and widths {min(bounds.widths)}-"
            f"{max(bounds.widths)} per stage")


def sample_spaces(bounds: Bounds, per_space: int, settings: dict, seed: int = SEED) -> Setup:
    """`per_space` distinct models from each space, as the specs and space labels of a setup
    that trains them with `settings`."""
    rng = random.Random(seed)
    labels: dict[str, dict] = {}
    for space in SPACES:
        taken = 0
        while taken < per_space:
            spec = anynet_spec(sample_stages(space, bounds, rng))
            if spec not in labels:
                labels[spec] = {"space": space}
                taken += 1
    return Setup(settings, tuple(labels), labels=labels,
                 notes=(describe_bounds(bounds, per_space),))


def _quartile_range(errors: list[float]) -> float:
    """The interquartile range of a space's errors."""
    low, _, high = statistics.quantiles(errors, n=4, method="inclusive")
    return high - low


def _told_apart(errors: dict[str, list[float]], medians: dict[str, float]) -> str:
    """Each space's interquartile range, and whether the medians differ by more than the typical
    one (said only when every space has at least four finished networks)."""
    if min(len(errors[space]) for space in medians) < 4:
        return ""
    spreads = {space: _quartile_range(errors[space]) for space in medians}
    gap = max(medians.values()) - min(medians.values())
    typical = statistics.median(spreads.values())
    apart = gap > typical
    listed = ", ".join(f"{space.removeprefix('AnyNetX-')} {100 * spread:.1f}"
                       for space, spread in spreads.items())
    return (f". Interquartile range of the errors within each space: {listed} points. The "
            f"medians differ by at most {points(gap).lstrip('+')}, {'more' if apart else 'less'}"
            f" than the typical interquartile range ({points(typical).lstrip('+')})"
            + ("" if apart else ": at this budget the medians do not tell the spaces apart"))


def conclude_design_space(results: StudyResults) -> str:
    errors = {space: [1 - r["test_acc"] for r in results.finished(results.where(space=space))]
              for space in SPACES}
    medians = {space: statistics.median(found) for space, found in errors.items() if found}
    if not medians:
        return "No trial finished."
    listed = ", ".join(f"{space} {percent(m)} (n={len(errors[space])})"
                       for space, m in medians.items())
    lowest = min(medians, key=medians.get)
    text = f"Median test error by design space: {listed}. Lowest median: {lowest}"
    if "AnyNetX-A" in medians and lowest != "AnyNetX-A":
        text += f", {points(medians['AnyNetX-A'] - medians[lowest]).lstrip('+')} below A's"
    text += _told_apart(errors, medians)
    best = max(results.finished(), key=lambda r: r["test_acc"])
    return text + (f". Best model: {percent(1 - best['test_acc'])} error ({best['space']}, "
                   f"{best['model']}).")


QUICK_BOUNDS = Bounds(depths=(1, 2, 3), widths=tuple(range(8, 97, 8)))
FULL_BOUNDS = Bounds(depths=tuple(range(1, 9)), widths=tuple(range(8, 257, 8)))

DESIGN_SPACE = Study(
    name="design-space",
    question="Which AnyNet design space holds better networks? Random networks sampled from "
             "AnyNetX-A (every stage free), then B (shared bottleneck ratio), C (and shared "
             "group width), D (widths never shrink) and E (depths never shrink), each trained "
             "briefly; the spaces compared by their error EDFs, as in the RegNet paper.",
    budgets={"tiny": sample_spaces(QUICK_BOUNDS, 1, {"resize": 28, "subset": 256, "epochs": 1,
                                                     "batch_size": 64}),
             "quick": sample_spaces(QUICK_BOUNDS, 8, {"resize": 28, "subset": 20_000,
                                                     "epochs": 1}),
             "full": sample_spaces(FULL_BOUNDS, 32, {})},
    table=("space", "parameters", "mflops", "test_acc", "status", "seconds_per_epoch"),
    figures=(figures.error_edfs("space"),),
    conclude=conclude_design_space,
)

STUDIES = (DESIGN_SPACE,)
