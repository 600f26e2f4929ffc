"""What a study recorded: one row per trial (or per measurement) in ``results.csv``, and every
trial's epochs in ``curves.csv``.

A study's conclusion and figures are computed from these two files as they are read back, so
the same files always give the same conclusion, and anyone can recompute it from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.analysis.statistics import (
    Comparison,
    Estimate,
    compare,
    interval,
    rank_groups,
    ranking_sentence,
)
from cnnlab.display import format_value, percent
from cnnlab.files import read_csv

RESULTS_FILE, CURVES_FILE = "results.csv", "curves.csv"
CURVE_COLUMNS = ("trial", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds",
                 "images_per_s")
LEARNED = 0.2
"""Test accuracy a trial must reach to count as having learned: twice chance on Fashion-MNIST's
ten classes (a trial can finish without diverging yet stay at chance)."""


@dataclass
class StudyResults:
    """A study's rows and curves as read back from its folder."""

    budget: str
    keys: tuple[str, ...]
    """The swept keys (grid axes), besides the model."""
    rows: list[dict]
    curves: dict[int, list[dict]] = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    """Short names of the specs."""
    folder: Path | None = None
    """The study's folder, where each row's ``run`` lies."""
    findings: list[Comparison] = field(default_factory=list)
    """Every paired comparison a conclusion made from these results, told apart or not (what
    `benchmarks/study_stability.py` compares between runs)."""

    @classmethod
    def read(cls, folder: str | Path, budget: str, keys=(), names=None) -> StudyResults:
        folder = Path(folder)
        curves: dict[int, list[dict]] = {}
        if (folder / CURVES_FILE).is_file():
            for row in read_csv(folder / CURVES_FILE):
                curves.setdefault(row["trial"], []).append(row)
        return cls(budget, tuple(keys), read_csv(folder / RESULTS_FILE), curves,
                   dict(names or {}), folder)

    def where(self, **match) -> list[dict]:
        """The rows whose columns equal `match` (``model=`` included)."""
        return [row for row in self.rows if all(row.get(k) == v for k, v in match.items())]

    def one(self, **match) -> dict:
        found = self.where(**match)
        if len(found) != 1:
            raise KeyError(f"{len(found)} rows match {match}")
        return found[0]

    def finished(self, rows: list[dict] | None = None) -> list[dict]:
        """The rows of trials that trained to the end without diverging."""
        return [row for row in (self.rows if rows is None else rows)
                if row.get("status") == "completed"]

    def at_chance(self, rows: list[dict] | None = None) -> list[dict]:
        """The finished trials that did not learn (test accuracy below `LEARNED`)."""
        return [row for row in self.finished(rows) if row["test_acc"] < LEARNED]

    def label(self, row: dict) -> str:
        """The row's short name: its spec's name, then the swept values that vary."""
        varying = [key for key in self.keys if len({r.get(key) for r in self.rows}) > 1]
        parts = [self.names.get(row["model"], row["model"])] if (
            len({r["model"] for r in self.rows}) > 1 or not varying) else []
        parts += [f"{key.removeprefix('model.')}={format_value(row[key])}" for key in varying]
        return " ".join(parts)

    def name(self, row: dict) -> str:
        """The short name of the row's spec."""
        return self.names.get(row["model"], row["model"])

    def ranked(self, rows: list[dict] | None = None, column: str = "test_acc") -> str:
        """Rows by test accuracy (or `column`), best first: ``all layers 84.1%, none 76.0%``;
        with several seeds, in groups not told apart, each with its interval (trials that
        diverged last, marked)."""
        rows = self.rows if rows is None else rows
        done = sorted(self.finished(rows), key=lambda r: -r[column])
        failed = [r for r in rows if r not in done]
        runs = self.by_seed(done, column)
        if any(len(seeds) > 1 for seeds in runs.values()):
            self._record_groups(runs)
            ranking = [ranking_sentence(runs)]
        else:
            ranking = [f"{self.label(r)} {percent(r[column])}" for r in done]
        return ", ".join(ranking + [f"{self.label(r)}{self._seed(r)} {r.get('status')}"
                                    for r in failed])

    def _record_groups(self, runs: dict[str, dict]) -> None:
        """The comparisons behind a grouped ranking: each group's best against the next's."""
        heads = [group[0] for group in rank_groups(runs)]
        for better, worse in zip(heads, heads[1:], strict=False):
            self.findings.append(compare(better, runs[better], worse, runs[worse]))

    def runs(self, column: str = "test_acc", **match) -> dict:
        """The finished rows' `column` by seed, among the rows that match."""
        return {row.get("seed", 0): row[column] for row in self.finished(self.where(**match))
                if row.get(column) is not None}

    def versus(self, name_a: str, a: dict, name_b: str, b: dict, column: str = "test_acc",
               other: str | None = None) -> Comparison | None:
        """The paired comparison of the rows matching `a` with those matching `b` over their
        shared seeds, by `column` (`b`'s by `other` where given: two evaluations of the same
        runs); None when no seed has both finished. Recorded among the findings."""
        first, second = self.runs(column, **a), self.runs(other or column, **b)
        if not set(first) & set(second):
            return None
        found = compare(name_a, first, name_b, second)
        self.findings.append(found)
        return found

    def compared(self, name_a: str, a: dict, name_b: str, b: dict, **columns) -> str:
        """The sentence of `versus`, or why there is none."""
        return verdict(self.versus(name_a, a, name_b, b, **columns))

    def estimate(self, column: str = "test_acc", **match) -> Estimate | None:
        """The mean of `column` over the matching finished rows (one per seed), with its
        interval; None when none finished."""
        values = list(self.runs(column, **match).values())
        return interval(values) if values else None

    def seeds(self) -> int:
        """How many seeds the study's variants were trained with (the most any has)."""
        return max((len(v) for v in self.by_seed(self.rows, "status").values()), default=0)

    def by_seed(self, rows: list[dict], column: str = "test_acc") -> dict[str, dict]:
        """Each variant's (label's) `column` by seed, in the rows' order: the repeats a paired
        comparison needs."""
        runs: dict[str, dict] = {}
        for row in rows:
            runs.setdefault(self.label(row), {})[row.get("seed", 0)] = row[column]
        return runs

    def _seed(self, row: dict) -> str:
        return f" (seed {row['seed']})" if len({r.get("seed") for r in self.rows}) > 1 else ""

    def best(self, column: str = "test_acc") -> dict | None:
        """The finished row with the highest `column` (None: no finished row records it)."""
        return max((r for r in self.finished() if r.get(column) is not None),
                   key=lambda r: r[column], default=None)

    def curve(self, row: dict) -> list[dict]:
        """The row's epochs (train and validation loss and accuracy)."""
        return self.curves.get(row.get("trial"), [])


def step_time(row: dict) -> str:
    """A measured row's step time with its 95% interval over the timed steps:
    ``12.3 ms [12.1, 12.5]``."""
    if row.get("ms_per_step_low") is None:
        return f"{row['ms_per_step']:,.1f} ms"
    return (f"{row['ms_per_step']:,.1f} ms [{row['ms_per_step_low']:,.1f}, "
            f"{row['ms_per_step_high']:,.1f}]")


def step_times_apart(a: dict, b: dict) -> bool:
    """Whether two rows' step-time intervals do not overlap (a conservative test: two 95%
    intervals that miss each other differ at well under the 5% level)."""
    if a.get("ms_per_step_low") is None or b.get("ms_per_step_low") is None:
        return False
    return a["ms_per_step_high"] < b["ms_per_step_low"] or b["ms_per_step_high"] < a[
        "ms_per_step_low"]


def verdict(comparison: Comparison | None) -> str:
    """A comparison's sentence, or why there is none."""
    return comparison.sentence if comparison else "n/a (no seed on which both finished)"


def points(difference: float) -> str:
    """A difference of accuracies in percentage points, signed: ``+2.3 points``."""
    return f"{100 * difference:+.1f} points"
