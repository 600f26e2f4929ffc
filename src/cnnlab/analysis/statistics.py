"""Results over several seeds: means with 95% intervals, paired differences, and plain verdicts.

Every variant of a study is trained with the same seeds, and seed s gives every variant the same
data order, so two variants are compared by their paired difference over the seeds both have.
A verdict says "A is better than B" only when the interval of that difference excludes zero, and
otherwise "not told apart", with about how many seeds the measured spread would need. Intervals
and tests come from `scipy.stats`: Student t intervals, the paired t test, the two-sample
Kolmogorov-Smirnov test, Spearman's rho and the bootstrap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from cnnlab.display import percent as percent_text

MAX_SEEDS = 1000
"""`seeds_needed` looks no further than this many seeds."""

SAME = 1e-12
"""Values that agree to this relative precision have no spread (differences of equal accuracies
carry rounding noise of about 1e-16)."""

Runs = Mapping[Hashable, float]
"""One variant's results, by seed."""


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval, the number of measurements and how it was made.

    With one measurement there is no spread, so `low` and `high` are NaN.
    """

    mean: float
    low: float
    high: float
    n: int
    values: tuple[float, ...]
    method: str
    confidence: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below zero (told apart from zero)."""
        return self.low > 0 or self.high < 0

    def percent(self, n: bool = True) -> str:
        """An accuracy as ``84.1% [82.0, 86.2], n=3`` (``84.1%, n=1`` without an interval;
        without ``, n=3`` where `n` is false). An accuracy lies in [0, 100%], so the interval
        is cut to it."""
        clipped = replace(self, low=min(max(self.low, 0.0), 1.0),
                          high=min(max(self.high, 0.0), 1.0))
        return clipped._text(percent_text(self.mean), 100, 1, n)

    def error_bar(self) -> tuple[float, float]:
        """The distances from the mean down to `low` and up to `high`, as matplotlib's
        ``yerr`` takes them (none without an interval)."""
        if math.isnan(self.low):
            return 0.0, 0.0
        return self.mean - self.low, self.high - self.mean

    def points(self) -> str:
        """A difference of accuracies in percentage points: ``+2.3 points [0.4, 4.2], n=3``."""
        return self._text(f"{100 * self.mean:+.1f} points", 100, 1)

    def number(self, digits: int = 2) -> str:
        """A plain number such as a correlation: ``0.83 [0.41, 0.97], n=12``."""
        return self._text(f"{self.mean:.{digits}f}", 1, digits)

    def _text(self, head: str, scale: float, digits: int, n: bool = True) -> str:
        count = f", n={self.n}" if n else ""
        if math.isnan(self.low):
            return head + count
        return f"{head} [{scale * self.low:.{digits}f}, {scale * self.high:.{digits}f}]{count}"


def interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Estimate:
    """The mean with its Student t interval (n - 1 degrees of freedom).

    Values that do not vary give an interval collapsed to the mean; one value gives none.
    """
    sample = _sample(values)
    return _t_estimate(sample, confidence, "t", lambda: stats.ttest_1samp(sample, 0.0))


def paired_difference(a: Runs, b: Runs, confidence: float = 0.95) -> Estimate:
    """The mean of a - b over the seeds both have, with the paired t interval.

    Seeds only one side has are left out; no shared seed is a ValueError.
    """
    seeds = [seed for seed in a if seed in b]
    if not seeds:
        raise ValueError(f"no seed in common: the first has seeds {sorted(map(str, a))}, "
                         f"the second {sorted(map(str, b))}")
    first = _sample([a[seed] for seed in seeds])
    second = _sample([b[seed] for seed in seeds])
    return _t_estimate(first - second, confidence, "paired t",
                       lambda: stats.ttest_rel(first, second))


def seeds_needed(difference: Estimate) -> int | None:
    """The fewest seeds at which the measured mean and spread of the paired differences would
    give an interval excluding zero; None for a zero mean, one seed, or over `MAX_SEEDS`."""
    if len(difference.values) < 2 or difference.mean == 0:
        return None
    spread = float(np.std(difference.values, ddof=1))
    n = np.arange(2, MAX_SEEDS + 1)
    half_width = stats.t.ppf(0.5 + difference.confidence / 2, n - 1) * spread / np.sqrt(n)
    enough = half_width < abs(difference.mean)
    return int(n[np.argmax(enough)]) if enough.any() else None


@dataclass(frozen=True)
class Comparison:
    """Two variants' paired difference of accuracy, the one with the higher mean named first."""

    name_a: str
    name_b: str
    difference: Estimate
    seeds_needed: int | None
    ratio: bool = False
    """Whether `difference` is of log10 values, so that it is a ratio (``10x [3.0x, 33x]``)
    rather than accuracy points."""

    def amount(self) -> str:
        """The difference in words: ``+2.3 points [0.4, 4.2], n=3`` or ``10x [3x, 33x], n=3``."""
        d = self.difference
        if not self.ratio:
            return d.points()
        bounds = "" if math.isnan(d.low) else f" [{10 ** d.low:.3g}x, {10 ** d.high:.3g}x]"
        return f"{10 ** d.mean:.3g}x{bounds}, n={d.n}"

    @property
    def told_apart(self) -> bool:
        """Whether the interval of the difference excludes zero."""
        return self.difference.excludes_zero

    @property
    def sentence(self) -> str:
        """The verdict in one sentence."""
        a, b, d = self.name_a, self.name_b, self.difference
        if self.told_apart:
            verb = "is larger than" if self.ratio else "is better than"
            return f"{a} {verb} {b} by {self.amount()} ({d.method})"
        head = (f"{a} and {b} are not told apart at this budget: "
                + (f"{a} / {b} {self.amount()}" if self.ratio else f"{a} - {b} {d.points()}"))
        if d.n < 2:
            return f"{head}; one seed measures no spread, so the seeds needed are not known"
        if d.mean == 0:
            return f"{head}; the measured difference is zero"
        if self.seeds_needed is None:
            return f"{head}; more than {MAX_SEEDS} seeds would be needed to tell a difference " \
                   f"this size apart"
        return f"{head}; about {self.seeds_needed} seeds would tell a difference this size apart"


def compare(name_a: str, a: Runs, name_b: str, b: Runs, confidence: float = 0.95) -> Comparison:
    """Compare two variants' accuracies by seed (higher is better), the higher mean first."""
    difference = paired_difference(a, b, confidence)
    if difference.mean < 0:
        name_a, a, name_b, b = name_b, b, name_a, a
        difference = paired_difference(a, b, confidence)
    return Comparison(name_a, name_b, difference, seeds_needed(difference))


def rank_groups(variants: Mapping[str, Runs], confidence: float = 0.95) -> list[list[str]]:
    """Variants by mean accuracy, best first, in groups: a variant joins the current group when
    its paired difference with that group's best is not told apart, else it starts a new one."""
    order = sorted(variants, key=lambda name: -interval(list(variants[name].values())).mean)
    groups: list[list[str]] = []
    for name in order:
        best = groups[-1][0] if groups else None
        if best is not None and not paired_difference(
                variants[best], variants[name], confidence).excludes_zero:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def ranking_sentence(variants: Mapping[str, Runs], confidence: float = 0.95) -> str:
    """The ranking of `rank_groups` in one sentence, each variant with its accuracy interval."""
    parts = []
    for group in rank_groups(variants, confidence):
        shown = [f"{name} {interval(list(variants[name].values()), confidence).percent()}"
                 for name in group]
        parts.append(shown[0] if len(shown) == 1
                     else f"{', '.join(shown[:-1])} and {shown[-1]} not told apart")
    return "; then ".join(parts)


def variant_intervals(rows: Sequence[Mapping], variant: Callable[[Mapping], Hashable],
                      column: str, confidence: float = 0.95,
                      counts: Callable[[Mapping], bool] = lambda row: True
                      ) -> dict[Hashable, Estimate]:
    """Each variant's `column` over its rows (one per seed) as a mean with its interval.

    `variant(row)` names a row's variant; rows without a value, or that `counts` leaves out
    (a diverged trial, say), do not count.
    """
    values: dict[Hashable, list[float]] = {}
    for row in rows:
        if row.get(column) is not None and counts(row):
            values.setdefault(variant(row), []).append(row[column])
    return {name: interval(found, confidence) for name, found in values.items()}


def with_intervals(rows: Sequence[Mapping], variant: Callable[[Mapping], Hashable],
                   column: str, confidence: float = 0.95,
                   counts: Callable[[Mapping], bool] = lambda row: True) -> list[dict]:
    """The rows, each with its variant's mean, interval bounds and n of `column` beside its own
    value (``test_acc_mean``, ``test_acc_low``, ``test_acc_high``, ``test_acc_n``), so a CSV
    keeps every seed's value and shows the interval; no interval (one seed) is left empty."""
    found = variant_intervals(rows, variant, column, confidence, counts)
    widened = []
    for row in rows:
        estimate = found.get(variant(row))
        bounds = (None, None) if estimate is None or math.isnan(estimate.low) else (
            estimate.low, estimate.high)
        widened.append({**row, f"{column}_mean": estimate and estimate.mean,
                        f"{column}_low": bounds[0], f"{column}_high": bounds[1],
                        f"{column}_n": estimate.n if estimate else 0})
    return widened


class KSTest(NamedTuple):
    """A two-sample Kolmogorov-Smirnov test: the largest gap D between the two empirical
    distribution functions and the p-value of no difference."""

    statistic: float
    pvalue: float

    def told_apart(self, confidence: float = 0.95) -> bool:
        """Whether the p-value is below 1 - `confidence`."""
        return self.pvalue < 1 - confidence

    def sentence(self, confidence: float = 0.95) -> str:
        """``told apart by a two-sample Kolmogorov-Smirnov test, D=0.41, p=0.01``."""
        verdict = "told apart" if self.told_apart(confidence) else "not told apart"
        p = "p<0.001" if self.pvalue < 0.001 else f"p={self.pvalue:.2g}"
        return f"{verdict} by a two-sample Kolmogorov-Smirnov test, D={self.statistic:.2f}, {p}"


def ks_two_sample(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> KSTest:
    """Whether two samples come from one distribution, by the two-sample KS test (two-sided)."""
    result = stats.ks_2samp(_sample(a), _sample(b))
    return KSTest(float(result.statistic), float(result.pvalue))


def edf_band(values: Sequence[float] | np.ndarray, grid: Sequence[float] | np.ndarray,
             confidence: float = 0.95, resamples: int = 2000,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical distribution function (share of values <= x) at each grid point, with a
    pointwise percentile bootstrap band; the same seed gives the same band."""
    sample, points = _sample(values), np.asarray(grid, dtype=float)

    def edf(resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        below = np.moveaxis(resampled, axis, -1)[..., None] <= points
        return np.moveaxis(below.mean(axis=-2), -1, 0)

    result = stats.bootstrap((sample,), edf, n_resamples=resamples, batch=100,
                             confidence_level=confidence, method="percentile",
                             rng=np.random.default_rng(seed))
    band = result.confidence_interval
    return edf(sample), np.asarray(band.low), np.asarray(band.high)


def rank_correlation(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                     confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Spearman's rho with a percentile bootstrap interval over resampled (x, y) pairs.

    Resamples in which x or y takes a single value have no rank correlation and are left out.
    """
    xs, ys = _sample(x), _sample(y)
    if len(xs) != len(ys) or len(xs) < 3:
        raise ValueError(f"a rank correlation needs at least 3 (x, y) pairs, got {len(xs)} x "
                         f"and {len(ys)} y values")
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        raise ValueError("a rank correlation needs x and y that vary; one of them is constant")

    def rho(first: np.ndarray, second: np.ndarray) -> float:
        if np.ptp(first) == 0 or np.ptp(second) == 0:
            return math.nan
        return float(stats.spearmanr(first, second).statistic)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # the NaNs left out below
        result = stats.bootstrap((xs, ys), rho, paired=True, vectorized=False,
                                 n_resamples=resamples, method="percentile",
                                 rng=np.random.default_rng(seed))
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(result.bootstrap_distribution, [tail, 1 - tail])
    return Estimate(rho(xs, ys), float(low), float(high), len(xs), (),
                    "Spearman rho, percentile bootstrap", confidence)


def _sample(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Measurements as a 1-D float array; empty or non-finite input is a ValueError."""
    sample = np.asarray(values, dtype=float).ravel()
    if sample.size == 0:
        raise ValueError("no values to estimate from")
    if not np.isfinite(sample).all():
        raise ValueError(f"values must be finite numbers, got {sample.tolist()}")
    return sample


def _t_estimate(sample: np.ndarray, confidence: float, method: str,
                test: Callable[[], Any]) -> Estimate:
    """A t interval from `test()`, collapsed to the mean when the sample does not vary."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    mean = float(np.mean(sample))
    if sample.size == 1:
        low = high = math.nan
    elif np.allclose(sample, sample[0], rtol=SAME, atol=0):
        low = high = mean
    else:
        bounds = test().confidence_interval(confidence_level=confidence)
        low, high = float(bounds.low), float(bounds.high)
    return Estimate(mean, low, high, int(sample.size), tuple(sample.tolist()), method, confidence)
