"""A study repeated over seeds ranks its variants by their intervals: variants whose paired
difference is not told apart share a group, and a single seed still ranks by its one value."""

import pytest
from scipy import stats

from cnnlab.experiments.studies.batchnorm import BN_VS_DROPOUT, REGULARISERS
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.runner import interval_columns, results_table

FC = "lenet:norm=batch,norm_at=fc"


def _rows(accuracies: dict[str, list[float]]) -> list[dict]:
    return [{"model": model, "seed": seed, "status": "completed", "test_acc": acc}
            for model, values in accuracies.items() for seed, acc in enumerate(values)]


def test_repeats_rank_by_interval_and_group_what_is_not_told_apart():
    results = StudyResults("quick", (), _rows({"a": [0.80, 0.82, 0.81], "b": [0.79, 0.83, 0.80],
                                               "c": [0.60, 0.61, 0.62]}))
    text = results.ranked()
    assert text.startswith("a 81.0% [") and "n=3 and b 80.7% [" in text
    assert "not told apart; then c 61.0% [" in text
    assert results.by_seed(results.rows)["b"] == {0: 0.79, 1: 0.83, 2: 0.80}


def test_one_seed_ranks_by_its_value_and_failures_come_last():
    rows = _rows({"a": [0.7], "b": [0.9]}) + [{"model": "c", "seed": 0, "status": "diverged",
                                               "test_acc": None}]
    assert StudyResults("quick", (), rows).ranked() == "b 90.0%, a 70.0%, c diverged"


def test_the_table_shows_one_row_per_variant_with_its_interval():
    rows = _rows({"lenet": [0.80, 0.82, 0.81], FC: [0.85, 0.86, 0.90]})
    rows[2] = {**rows[2], "status": "diverged", "test_acc": None}
    table = results_table(BN_VS_DROPOUT, StudyResults("quick", (), rows, names=REGULARISERS))
    assert "2 variants, up to 3 seeds each (6 trials)" in table.title
    assert "95% Student t interval" in table.title
    assert table.headers[-1] == "n" and table.headers[1] == "test acc"
    neither, norm = table.rows
    expected = stats.t.interval(0.95, 1, loc=0.81, scale=stats.sem([0.80, 0.82]))
    assert neither[:2] == ("neither", f"81.0% [{100 * expected[0]:.1f}, {100 * expected[1]:.1f}]")
    assert neither[-1] == "2" and "2 completed, 1 diverged" in neither
    assert norm[0] == "batch norm" and norm[-1] == "3"


def test_results_csv_keeps_each_seed_and_adds_the_variants_interval():
    plan = BN_VS_DROPOUT.plan("quick")
    rows = interval_columns(_rows({"lenet": [0.80, 0.82, 0.81]}), plan)
    assert [row["test_acc"] for row in rows] == [0.80, 0.82, 0.81]
    assert {row["test_acc_n"] for row in rows} == {3}
    assert rows[0]["test_acc_mean"] == pytest.approx(0.81)
    assert "plain_test_acc_mean" not in rows[0]  # no such column recorded
