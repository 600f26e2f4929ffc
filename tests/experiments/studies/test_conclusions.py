"""Conclusions on made-up results: each branch of a sentence, without training anything."""


from cnnlab.experiments.studies.batchnorm import REGULARISERS, conclude_bn_vs_dropout
from cnnlab.experiments.studies.design_space import SPACES, conclude_design_space
from cnnlab.experiments.studies.records import StudyResults


def _spaces(errors_by_space):
    return StudyResults("quick", (), [
        {"model": f"regnetx32:{space}-{i}", "space": space, "test_acc": 1 - error,
         "status": "completed"}
        for space, errors in errors_by_space.items() for i, error in enumerate(errors)])


def test_design_space_says_when_the_spread_hides_the_spaces_differences():
    close = {space: [0.20 + 0.01 * i, 0.24, 0.26 + 0.01 * i, 0.30] for i, space in
             enumerate(SPACES)}  # medians 25-27%, quartile ranges of 4-6 points
    text = conclude_design_space(_spaces(close))
    assert "Median test error by design space: AnyNetX-A 25.0% (n=4), AnyNetX-B 25.5%" in text
    assert ("Interquartile range of the errors within each space: A 4.0, B 4.5, C 5.0, D 5.5, "
            "E 6.0 points. The medians differ by at most 2.0 points, less than the typical "
            "interquartile range (5.0 points): at this budget the medians do not tell the "
            "spaces apart.") in text
    apart = {**close, "AnyNetX-E": [0.10, 0.11, 0.12, 0.13]}
    text = conclude_design_space(_spaces(apart))
    assert "Lowest median: AnyNetX-E, 13.5 points below A's" in text
    assert ("E 1.5 points. The medians differ by at most 15.0 points, more than the typical "
            "interquartile range (4.5 points). Best model") in text
    few = conclude_design_space(_spaces({space: [0.3] for space in SPACES}))
    assert "interquartile" not in few and few.startswith("Median test error by design space")


def test_bn_vs_dropout_says_when_the_two_evaluations_disagree():
    precise = {"lenet": 0.648, "lenet:dropout=0.5": 0.21, "lenet:norm=batch,norm_at=fc": 0.838,
               "lenet:norm=batch,norm_at=fc,dropout=0.5": 0.80}
    plain = {**precise, "lenet:norm=batch,norm_at=fc": 0.598}
    rows = [{"model": spec, "test_acc": acc, "plain_test_acc": plain[spec], "train_acc": 0.9,
             "status": "completed"} for spec, acc in precise.items()]
    text = conclude_bn_vs_dropout(StudyResults("quick", (), rows, names=REGULARISERS))
    assert ("With the moving averages as trained (no recomputation): both 80.0%, neither 64.8%, "
            "batch norm 59.8%, dropout 21.0%; the two evaluations disagree: with the moving "
            "averages both leads, with recomputed statistics batch norm (one seed each: a single "
            "measurement, not a finding).") in text
    same = [{**row, "plain_test_acc": row["test_acc"]} for row in rows]
    assert "agree on the best" in conclude_bn_vs_dropout(
        StudyResults("quick", (), same, names=REGULARISERS))
