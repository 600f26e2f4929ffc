"""Conclusions on made-up results: each branch of a sentence, without training anything."""


from cnnlab.experiments.studies.batchnorm import REGULARISERS, conclude_bn_vs_dropout
from cnnlab.experiments.studies.records import StudyResults


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
