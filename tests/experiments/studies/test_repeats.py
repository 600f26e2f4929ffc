"""A study repeated over seeds ranks its variants by their intervals: variants whose paired
difference is not told apart share a group, and a single seed still ranks by its one value."""

from cnnlab.experiments.studies.records import StudyResults


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
