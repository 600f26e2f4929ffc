"""The design-space study without training: each space's sampling keeps its constraints (VioNet
breaks D's), the quick budget samples enough networks to compare EDFs, the conclusion says only
what its tests support on made-up results, and the EDF figure draws its bootstrap bands."""

import random

import pytest

from cnnlab.experiments.studies import get_study
from cnnlab.experiments.studies.definition import deviations
from cnnlab.experiments.studies.design_space import (
    FACTORS,
    QUICK_BOUNDS,
    RULE,
    SPACES,
    Bounds,
    conclude_design_space,
    factors,
    sample_stages,
)
from cnnlab.experiments.studies.figures import error_edfs
from cnnlab.experiments.studies.records import StudyResults


@pytest.mark.parametrize("bounds", [Bounds(), QUICK_BOUNDS], ids=["full-bounds", "quick-bounds"])
@pytest.mark.parametrize("space", SPACES)
def test_each_space_keeps_its_constraints(space, bounds):
    rng, rule = random.Random(1), RULE[space]
    for _ in range(30):
        stages = sample_stages(space, bounds, rng)
        depths, widths, groups, multipliers = zip(*stages, strict=True)
        assert len(stages) == bounds.stages
        assert set(depths) <= set(bounds.depths) and set(widths) <= set(bounds.widths)
        assert all(int(w * m) % g == 0 for _, w, g, m in stages)
        assert not rule.shared_ratio or len(set(multipliers)) == 1
        assert not rule.shared_group or len(set(groups)) == 1
        assert rule.widths != "up" or list(widths) == sorted(widths)
        assert rule.depths != "up" or list(depths) == sorted(depths)
        if space == "VioNet":  # every stage strictly narrower than the one before: never in D
            assert all(a > b for a, b in zip(widths, widths[1:], strict=False))


def test_the_spaces_refine_one_another_and_vionet_breaks_d():
    assert SPACES == ("AnyNetX-A", "AnyNetX-B", "AnyNetX-C", "AnyNetX-D", "AnyNetX-E", "VioNet")
    vio, c, d = RULE["VioNet"], RULE["AnyNetX-C"], RULE["AnyNetX-D"]
    assert (vio.shared_ratio, vio.shared_group, vio.depths) == (c.shared_ratio, c.shared_group,
                                                                c.depths)
    assert d.widths == "up" and vio.widths == "down"


def test_factors_of_a_network():
    stages = [(1, 16, 4, 0.5), (2, 32, 8, 0.25), (3, 64, 8, 1.0)]
    assert factors(stages) == {"depth": 6, "width": pytest.approx(112 / 3),
                               "group_width": pytest.approx(20 / 3),
                               "bottleneck_ratio": pytest.approx(7 / 3)}


def test_quick_samples_at_least_16_distinct_networks_per_space_with_their_factors():
    study = get_study("design-space")
    plan = study.plan("quick")
    assert plan.specs == study.plan("quick").specs  # the same sample every time
    assert len(set(plan.specs)) == len(plan.specs)
    counts = {space: sum(label["space"] == space for label in plan.labels.values())
              for space in SPACES}
    assert min(counts.values()) >= 16, counts
    assert all(set(FACTORS) <= set(label) for label in plan.labels.values())
    stated = deviations(plan, study.plan("full"))
    assert any("per space" in line for line in stated), stated


def _results(errors_by_space, factor=None):
    """Made-up finished networks: `factor(space, i)` gives each one's factors (default: the
    same spread of factors in every space, unrelated to the error)."""
    def spread(space, i):
        return {"depth": 4 + i % 5, "width": 8.0 * (1 + (i * 7) % 11),
                "group_width": float(2 ** (i % 4)), "bottleneck_ratio": float(1 + (i * 3) % 4)}

    factor = factor or spread
    return StudyResults("quick", (), [
        {"model": f"regnetx32:{space}-{i}", "space": space, "test_acc": 1 - error,
         "status": "completed", **factor(space, i)}
        for space, errors in errors_by_space.items() for i, error in enumerate(errors)])


def _same(n=16):
    """Errors of one distribution in every space (a small shift per space, well inside the
    spread)."""
    return {space: [0.20 + 0.01 * ((i * 7 + k) % n) for i in range(n)]
            for k, space in enumerate(SPACES)}


def test_spaces_drawn_alike_are_not_told_apart_and_no_ranking_is_stated():
    text = conclude_design_space(_results(_same()))
    assert text.startswith("Median test error by design space: AnyNetX-A ")
    assert all(f"{space} " in text and "(n=16)" in text for space in SPACES)
    assert "each at the 0.00833 level (0.05 over 6 comparisons, Bonferroni)" in text
    assert "B against A: not told apart by a two-sample Kolmogorov-Smirnov test" in text
    assert " told apart by" not in text.replace("not told apart by", "")
    assert ("No refinement is told apart from the space it refines: at this budget the EDFs "
            "do not rank the AnyNetX spaces.") in text
    assert "VioNet is not told apart from D: at this budget widths that shrink are not " \
           "shown to hurt." in text
    assert "median error" not in text and "hurts" not in text


def test_spaces_far_apart_are_told_apart_with_the_direction():
    errors = _same()
    errors["AnyNetX-E"] = [0.05 + 0.001 * i for i in range(16)]
    errors["VioNet"] = [0.50 + 0.001 * i for i in range(16)]
    text = conclude_design_space(_results(errors))
    assert "E against D: told apart by a two-sample Kolmogorov-Smirnov test, D=1.00, p<0.001" \
        in text
    assert "E's median error" in text and "below D's" in text
    assert "E against A: told apart" in text
    assert "VioNet against D: told apart" in text and "VioNet's median error" in text
    assert "Breaking D's constraint hurts: VioNet's networks are worse than D's." in text
    assert "No refinement is told apart" not in text
    assert "C against B: not told apart" in text


def test_too_few_networks_are_not_tested():
    text = conclude_design_space(_results({space: [0.3, 0.31] for space in SPACES[:3]}
                                          | {space: [0.32] for space in SPACES[3:]}))
    assert "Too few finished networks to test the EDFs against each other" in text
    assert "Kolmogorov" not in text
    assert "Too few finished networks (9) to correlate the error with depth" in text
    assert "Spearman" not in text
    assert conclude_design_space(StudyResults("quick", (), [])) == "No trial finished."


def test_the_factor_the_error_depends_on_is_named_only_when_its_interval_supports_it():
    errors = _same()
    by_depth = conclude_design_space(_results(errors, lambda space, i: {
        "depth": 4 + i, "width": 8.0 * (1 + (i * 7) % 11), "group_width": float(2 ** (i % 4)),
        "bottleneck_ratio": float(1 + (i * 3) % 4)}))
    assert "Rank correlation of the test error with each factor over the 96 finished " \
           "networks of all spaces" in by_depth
    assert "total depth " in by_depth and "mean bottleneck ratio " in by_depth

    # the error rises with the depth alone: errors sorted with i in every space
    rising = {space: sorted(values) for space, values in errors.items()}
    text = conclude_design_space(_results(rising, lambda space, i: {
        "depth": 4 + i, "width": 8.0 * (1 + (i * 7) % 11), "group_width": float(2 ** (i % 4)),
        "bottleneck_ratio": float(1 + (i * 3) % 4)}))
    assert ("The error depends most on total depth: its |rho| is the largest and its interval "
            "lies clear of the other factors'.") in text

    rng = random.Random(0)  # factors drawn at random, whatever the error
    unrelated = conclude_design_space(_results(errors, lambda space, i: {
        "depth": rng.randint(4, 12), "width": float(rng.randrange(8, 97, 8)),
        "group_width": float(rng.choice((1, 2, 4, 8))), "bottleneck_ratio": rng.choice((1, 2, 4))}))
    assert ("No factor's correlation is told apart from zero: at this budget the error is not "
            "shown to depend on any one of them.") in unrelated
    assert "depends most" not in unrelated


def test_a_factor_that_does_not_vary_is_said_so():
    text = conclude_design_space(_results(_same(), lambda space, i: {
        "depth": 4 + i % 5, "width": 8.0 * (1 + i), "group_width": 4.0,
        "bottleneck_ratio": 1.0}))
    assert "mean group width and mean bottleneck ratio did not vary" in text


def test_the_edf_figure_draws_a_band_per_space():
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    errors = _same()
    errors["VioNet"] = [0.4]  # one network: a curve without a band
    stem, caption, figure = error_edfs("space")(_results(errors))
    assert stem == "edf" and "bootstrap band" in caption and isinstance(figure, Figure)
    ax = figure.axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(ax.lines) == len(SPACES) and len(bands) == len(SPACES) - 1
    labels = ax.get_legend_handles_labels()[1]
    assert "AnyNetX-A (n=16)" in labels and "VioNet (n=1)" in labels
