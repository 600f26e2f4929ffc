"""`statistics`: t intervals and paired differences against scipy, verdict sentences, seeds needed,
rank groups, the KS test, EDF bands and rank correlation."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from cnnlab.analysis.statistics import (
    MAX_SEEDS,
    Comparison,
    KSTest,
    compare,
    edf_band,
    interval,
    ks_two_sample,
    paired_difference,
    rank_correlation,
    rank_groups,
    ranking_sentence,
    seeds_needed,
    variant_intervals,
    with_intervals,
)

BATCH_NORM = {0: 0.841, 1: 0.862, 2: 0.833, 3: 0.855}
DROPOUT = {0: 0.822, 1: 0.831, 2: 0.824, 3: 0.820}
WIDE = {0: 0.80, 1: 0.83, 2: 0.81}
DEEP = {0: 0.79, 1: 0.835, 2: 0.80}
accuracies = st.integers(0, 10_000).map(lambda correct: correct / 10_000)
"""Test accuracies as Fashion-MNIST gives them: a count of the 10,000 test images."""


def textbook_t(values, confidence=0.95):
    """mean ± t(1 - alpha/2, n - 1) s / sqrt(n), from the t quantile."""
    values = np.asarray(values)
    n = len(values)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return values.mean() - half, values.mean() + half


def test_interval_is_the_textbook_t_interval():
    values = list(BATCH_NORM.values())
    estimate = interval(values)
    assert (estimate.low, estimate.high) == pytest.approx(textbook_t(values), abs=1e-12)
    ci = stats.ttest_1samp(values, 0.0).confidence_interval(confidence_level=0.95)
    assert (estimate.low, estimate.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert estimate.mean == pytest.approx(np.mean(values))
    assert (estimate.n, estimate.values, estimate.method) == (4, tuple(values), "t")
    assert estimate.percent() == "84.8% [82.7, 86.9], n=4"


def test_interval_at_another_confidence_is_narrower():
    values = list(BATCH_NORM.values())
    wide, narrow = interval(values, 0.99), interval(values, 0.8)
    assert (narrow.low, narrow.high) == pytest.approx(textbook_t(values, 0.8), abs=1e-12)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_one_value_has_no_interval():
    estimate = interval([0.841])
    assert estimate.mean == 0.841 and math.isnan(estimate.low) and math.isnan(estimate.high)
    assert not estimate.excludes_zero
    assert estimate.percent() == "84.1%, n=1"


def test_values_that_do_not_vary_collapse_the_interval_to_the_mean():
    estimate = interval([0.8, 0.8, 0.8])
    assert estimate.low == estimate.high == estimate.mean == pytest.approx(0.8)
    assert estimate.percent() == "80.0% [80.0, 80.0], n=3"


@pytest.mark.parametrize("values", [[], [0.8, math.nan], [0.8, math.inf]])
def test_no_or_non_finite_values_are_refused(values):
    with pytest.raises(ValueError, match="no values|finite"):
        interval(values)


def test_confidence_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        interval([0.8, 0.81], confidence=95)


def test_paired_difference_is_scipys_paired_t():
    d = paired_difference(BATCH_NORM, DROPOUT)
    a, b = list(BATCH_NORM.values()), list(DROPOUT.values())
    ci = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert (d.low, d.high) == pytest.approx(textbook_t(np.subtract(a, b)), abs=1e-12)
    assert d.mean == pytest.approx(0.0235)
    assert (d.n, d.method) == (4, "paired t")
    assert d.values == pytest.approx((0.019, 0.031, 0.009, 0.035))
    assert d.excludes_zero
    assert d.points() == "+2.4 points [0.5, 4.2], n=4"


def test_paired_difference_uses_only_shared_seeds():
    a = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.85}
    b = {4: 0.50, 3: 0.83, 2: 0.80, 1: 0.80}
    d = paired_difference(a, b)
    assert d.n == 3 and d.values == pytest.approx((0.02, 0.01, 0.02))
    shared = paired_difference({s: a[s] for s in (1, 2, 3)}, {s: b[s] for s in (1, 2, 3)})
    assert (d.mean, d.low, d.high) == (shared.mean, shared.low, shared.high)


def test_no_shared_seed_is_a_clear_error():
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference({0: 0.8, 1: 0.81}, {2: 0.8, 3: 0.82})


def test_told_apart_sentence():
    comparison = compare("batch norm", BATCH_NORM, "dropout", DROPOUT)
    assert comparison.told_apart and comparison.seeds_needed <= 4
    assert comparison.sentence == (
        "batch norm is better than dropout by +2.4 points [0.5, 4.2], n=4 (paired t)")


def test_the_better_variant_is_named_first():
    forward = compare("batch norm", BATCH_NORM, "dropout", DROPOUT)
    backward = compare("dropout", DROPOUT, "batch norm", BATCH_NORM)
    assert backward == forward


def test_not_told_apart_sentence():
    comparison = compare("deep", DEEP, "wide", WIDE)
    assert not comparison.told_apart
    assert comparison.sentence == (
        "wide and deep are not told apart at this budget: wide - deep +0.5 points [-1.7, 2.7], "
        "n=3; about 15 seeds would tell a difference this size apart")


def test_not_told_apart_with_one_seed_or_no_difference():
    assert compare("a", {0: 0.8}, "b", {0: 0.7}).sentence == (
        "a and b are not told apart at this budget: a - b +10.0 points, n=1; one seed measures no "
        "spread, so the seeds needed are not known")
    assert compare("a", WIDE, "b", dict(WIDE)).sentence == (
        "a and b are not told apart at this budget: a - b +0.0 points [0.0, 0.0], n=3; the "
        "measured difference is zero")


def test_seeds_needed_is_the_first_count_whose_interval_excludes_zero():
    d = paired_difference(WIDE, DEEP)
    needed = seeds_needed(d)
    spread = np.std(d.values, ddof=1)

    def excludes_zero(n):
        low, high = stats.t.interval(0.95, n - 1, loc=d.mean, scale=spread / math.sqrt(n))
        return low > 0 or high < 0

    assert needed == 15
    assert excludes_zero(needed) and not excludes_zero(needed - 1)


def test_seeds_needed_follows_the_estimates_confidence():
    assert seeds_needed(paired_difference(WIDE, DEEP, 0.8)) < seeds_needed(
        paired_difference(WIDE, DEEP, 0.99))


def test_seeds_needed_is_none_beyond_the_cap_without_spread_or_difference():
    tiny = paired_difference({0: 0.8100, 1: 0.7901, 2: 0.8000}, {0: 0.8, 1: 0.8, 2: 0.8})
    assert seeds_needed(tiny) is None
    assert f"more than {MAX_SEEDS} seeds" in compare("a", {0: 0.8100, 1: 0.7901, 2: 0.8000},
                                                     "b", {0: 0.8, 1: 0.8, 2: 0.8}).sentence
    assert seeds_needed(paired_difference({0: 0.8}, {0: 0.7})) is None
    assert seeds_needed(paired_difference(WIDE, WIDE)) is None


def test_a_constant_difference_is_told_apart_from_two_seeds():
    d = paired_difference({0: 0.81, 1: 0.83}, {0: 0.80, 1: 0.82})
    assert d.low == d.high == d.mean and d.excludes_zero
    assert seeds_needed(d) == 2


@given(st.lists(accuracies, min_size=2, max_size=20))
def test_interval_contains_the_mean_and_a_variant_is_not_told_apart_from_itself(values):
    estimate = interval(values)
    assert estimate.low <= estimate.mean <= estimate.high
    runs = dict(enumerate(values))
    same = paired_difference(runs, dict(runs))
    assert same.mean == 0 and not same.excludes_zero
    assert not compare("a", runs, "b", dict(runs)).told_apart


VARIANTS = {
    "dropout": {0: 0.137, 1: 0.150, 2: 0.120},
    "batch norm": {0: 0.745, 1: 0.730, 2: 0.725},
    "neither": {0: 0.640, 1: 0.645, 2: 0.635},
    "both": {0: 0.740, 1: 0.750, 2: 0.735},
}


def test_rank_groups_joins_what_is_not_told_apart():
    assert rank_groups(VARIANTS) == [["both", "batch norm"], ["neither"], ["dropout"]]
    assert ranking_sentence(VARIANTS) == (
        "both 74.2% [72.3, 76.1], n=3 and batch norm 73.3% [70.7, 75.9], n=3 not told apart; "
        "then neither 64.0% [62.8, 65.2], n=3; then dropout 13.6% [9.8, 17.3], n=3")


def test_rank_groups_separates_what_is_told_apart():
    separate = dict(VARIANTS, **{"batch norm": {0: 0.700, 1: 0.710, 2: 0.690}})
    assert rank_groups(separate) == [["both"], ["batch norm"], ["neither"], ["dropout"]]
    assert ranking_sentence(separate).startswith("both 74.2% [72.3, 76.1], n=3; then batch norm")


def test_a_variant_joins_by_its_difference_with_the_groups_best():
    best = {0: 0.80, 1: 0.81, 2: 0.79}
    middle = {0: 0.79, 1: 0.815, 2: 0.77}
    last = {0: 0.77, 1: 0.78, 2: 0.761}
    assert not compare("middle", middle, "last", last).told_apart
    assert compare("best", best, "last", last).told_apart
    assert rank_groups({"last": last, "best": best, "middle": middle}) == [
        ["best", "middle"], ["last"]]


def test_one_seed_each_puts_every_variant_in_one_group():
    assert rank_groups({"a": {0: 0.9}, "b": {0: 0.5}, "c": {0: 0.1}}) == [["a", "b", "c"]]
    assert ranking_sentence({"a": {0: 0.9}, "b": {0: 0.5}}) == (
        "a 90.0%, n=1 and b 50.0%, n=1 not told apart")


def test_ks_tells_different_samples_apart_and_equal_ones_not():
    rng = np.random.default_rng(1)
    low, high = rng.normal(0, 1, 200), rng.normal(1, 1, 200)
    different = ks_two_sample(low, high)
    expected = stats.ks_2samp(low, high)
    assert different == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert different.told_apart() and different.sentence().startswith(
        "told apart by a two-sample Kolmogorov-Smirnov test, D=")
    statistic, pvalue = ks_two_sample([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4])
    assert (statistic, pvalue) == (0.0, 1.0)
    assert ks_two_sample([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]).sentence() == (
        "not told apart by a two-sample Kolmogorov-Smirnov test, D=0.00, p=1")


def test_ks_sentence_shows_the_p_value():
    assert KSTest(0.41, 0.0123).sentence() == (
        "told apart by a two-sample Kolmogorov-Smirnov test, D=0.41, p=0.012")
    assert KSTest(0.2, 0.4).sentence() == (
        "not told apart by a two-sample Kolmogorov-Smirnov test, D=0.20, p=0.4")


def test_edf_band_is_monotone_contains_the_edf_and_repeats_for_a_seed():
    values = np.random.default_rng(2).normal(0.15, 0.03, 40)
    grid = np.linspace(0.0, 0.3, 31)
    edf, low, high = edf_band(values, grid, resamples=500)
    assert edf == pytest.approx(stats.ecdf(values).cdf.evaluate(grid))
    for curve in (edf, low, high):
        assert np.all(np.diff(curve) >= 0) and np.all((curve >= 0) & (curve <= 1))
    assert np.all(low <= edf) and np.all(edf <= high) and np.any(low < high)
    assert (edf[0], low[0], high[0], edf[-1], low[-1], high[-1]) == (0, 0, 0, 1, 1, 1)
    again = edf_band(values, grid, resamples=500)
    other = edf_band(values, grid, resamples=500, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(again, (edf, low, high), strict=True))
    assert not np.array_equal(other[1], low)


def test_rank_correlation_of_a_monotone_relation_is_one():
    depth = [2, 4, 6, 8, 10, 12]
    error = [0.10, 0.12, 0.13, 0.17, 0.20, 0.31]
    rho = rank_correlation(depth, error, resamples=500)
    assert rho.mean == pytest.approx(1.0) and rho.excludes_zero and rho.n == 6
    assert rho.number() == "1.00 [1.00, 1.00], n=6"


def test_rank_correlation_of_a_random_relation_is_not_told_apart_from_zero():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=40), rng.normal(size=40)
    rho = rank_correlation(x, y, resamples=1000)
    assert rho.mean == pytest.approx(stats.spearmanr(x, y).statistic)
    assert rho.low < rho.mean < rho.high and not rho.excludes_zero
    assert rank_correlation(x, y, resamples=1000) == rho


def test_rank_correlation_with_repeated_factor_levels_leaves_degenerate_resamples_out():
    depth = [2, 2, 4, 4, 8, 8]
    error = [0.20, 0.22, 0.15, 0.16, 0.10, 0.12]
    rho = rank_correlation(depth, error, resamples=2000)
    assert rho.mean == pytest.approx(stats.spearmanr(depth, error).statistic)
    assert -1 <= rho.low <= rho.high <= 1 and rho.high < 0


@pytest.mark.parametrize("x, y", [([1, 2], [0.1, 0.2]), ([1, 2, 3], [0.1, 0.2]),
                                  ([1, 1, 1], [0.1, 0.2, 0.3])])
def test_rank_correlation_needs_three_varying_pairs(x, y):
    with pytest.raises(ValueError, match="rank correlation needs"):
        rank_correlation(x, y)


def test_with_intervals_adds_each_variants_interval_to_its_rows():
    rows = [{"model": "a", "seed": s, "acc": v} for s, v in enumerate((0.80, 0.82, 0.84))]
    rows += [{"model": "b", "seed": 0, "acc": 0.7}, {"model": "b", "seed": 1, "acc": None}]
    widened = with_intervals(rows, lambda r: r["model"], "acc")
    expected = stats.ttest_1samp([0.80, 0.82, 0.84], 0).confidence_interval()
    first = widened[0]
    assert first["acc"] == 0.80 and first["acc_n"] == 3
    assert first["acc_mean"] == pytest.approx(0.82)
    assert (first["acc_low"], first["acc_high"]) == pytest.approx((expected.low, expected.high))
    assert widened[3]["acc_n"] == 1 and widened[3]["acc_low"] is None  # one value: no interval
    assert widened[4]["acc"] is None and widened[4]["acc_n"] == 1  # b's value counts for b


def test_variant_intervals_leave_out_what_does_not_count():
    rows = [{"v": "a", "acc": 0.9, "ok": True}, {"v": "a", "acc": 0.1, "ok": False}]
    found = variant_intervals(rows, lambda r: r["v"], "acc", counts=lambda r: r["ok"])
    assert found["a"].n == 1 and found["a"].mean == 0.9


def test_an_accuracy_interval_is_cut_to_zero_and_one_hundred_percent():
    estimate = interval([0.10, 0.10, 0.40])
    assert estimate.low < 0  # the t interval itself is symmetric
    assert estimate.percent().startswith("20.0% [0.0, ")
    assert interval([0.99, 0.999, 1.0]).percent().endswith(", 100.0], n=3")


def test_a_ratio_comparison_speaks_of_factors_not_points():
    difference = paired_difference({0: 1.5, 1: 1.0, 2: 1.0}, {0: 0.5, 1: 0.0, 2: 0.0})
    found = Comparison("with", "without", difference, None, ratio=True)
    assert found.told_apart and found.amount() == "10x [10x, 10x], n=3"
    assert found.sentence == "with is larger than without by 10x [10x, 10x], n=3 (paired t)"


def test_error_bar_is_the_distance_to_each_bound():
    estimate = interval([0.80, 0.82, 0.84])
    below, above = estimate.error_bar()
    assert below == pytest.approx(estimate.mean - estimate.low) and below == pytest.approx(above)
    assert interval([0.5]).error_bar() == (0.0, 0.0)
