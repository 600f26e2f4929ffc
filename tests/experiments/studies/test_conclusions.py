"""Conclusions on made-up results: each branch of a sentence, without training anything."""

import pytest

from cnnlab.experiments.studies.architectures import ONE_BY_ONE, conclude_nin
from cnnlab.experiments.studies.batchnorm import (
    BN,
    PLACEMENT,
    REGULARISERS,
    conclude_bn_lr,
    conclude_bn_vs_dropout,
    conclude_placement,
)
from cnnlab.experiments.studies.design_space import SPACES, conclude_design_space
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.training import conclude_label_smoothing


def _smoothing(*trials):
    rows = [{"model": "compact-resnet-s", "label_smoothing": s, "test_acc": acc,
             "test_loss": loss, "status": status} for s, acc, loss, status in trials]
    return StudyResults("quick", ("label_smoothing",), rows)


@pytest.mark.parametrize("trials, start", [
    ([(0.0, 0.894, 0.311, "completed"), (0.1, 0.889, 0.393, "completed"),
      (0.05, 0.891, 0.335, "completed")],
     "Label smoothing did not help: 89.4% test accuracy without it, 89.1% at the best "
     "smoothing tried (0.05, -0.3 points)."),
    ([(0.0, 0.880, 0.320, "completed"), (0.1, 0.891, 0.401, "completed")],
     "Best label smoothing 0.1: test accuracy 89.1% against 88.0% without (+1.1 points)."),
    ([(0.0, 0.880, 0.320, "completed"), (0.1, None, None, "diverged")],
     "Only the trial without smoothing finished (88.0% test accuracy)."),
])
def test_label_smoothing_says_whether_smoothing_helped(trials, start):
    text = conclude_label_smoothing(_smoothing(*trials))
    assert text.startswith(start)
    finished = sorted((s, loss) for s, _, loss, status in trials if status == "completed")
    assert text.endswith("Test cross-entropy by smoothing: "
                         + ", ".join(f"{s:g}: {loss:.3f}" for s, loss in finished) + ".")


def test_label_smoothing_without_a_finished_trial():
    assert conclude_label_smoothing(_smoothing((0.0, None, None, "diverged"))) == \
        "No trial finished."


def _lr_sweep(spec, *trials):
    return [{"model": spec, "lr": lr, "test_acc": acc, "status": status}
            for lr, acc, status in trials]


def test_bn_lr_counts_a_rate_that_stays_at_chance_as_not_trained():
    rows = (_lr_sweep("lenet", (0.1, 0.100, "completed"), (1.0, 0.628, "completed"),
                      (3.0, 0.390, "completed"), (10.0, 0.100, "completed"),
                      (30.0, 0.100, "diverged"), (100.0, 0.100, "diverged"))
            + _lr_sweep(BN, (0.1, 0.765, "completed"), (30.0, 0.540, "completed"),
                        (100.0, 0.100, "diverged"))
            + _lr_sweep("lenet:dropout=0.5", (0.1, 0.150, "completed")))
    names = {"lenet": "without", BN: "with", "lenet:dropout=0.5": "slow"}
    text = conclude_bn_lr(StudyResults("quick", ("lr",), rows, names=names))
    assert ("without: 3 (at chance from 10, diverged from 30); with: 30 (diverged from 100); "
            "slow: none (no rate reached 20.0%).") in text
    assert text.endswith("Best test accuracy 62.8% at lr 1 without, 76.5% at lr 0.1 with, "
                         "15.0% at lr 0.1 slow.")


def test_nin_names_the_variants_that_stayed_at_chance():
    rows = [{"model": spec, "test_acc": acc, "status": "completed", "epochs": 4,
             "parameters": size}
            for spec, acc, size in (("nin", 0.82, 1_992_166), ("nin:num_1x1=3", 0.1, 2_000_100),
                                    ("nin:num_1x1=1", 0.19, 1_984_232))]
    text = conclude_nin(StudyResults("quick", (), rows, names=ONE_BY_ONE))
    assert ("Best: two 1x1 convs (the chapter's). Still at chance after 4 epochs: three 1x1 "
            "convs, one 1x1 conv. Parameters: two 1x1 convs (the chapter's) 1,992,166") in text
    rows[1]["test_acc"] = rows[2]["test_acc"] = 0.5
    assert "chance" not in conclude_nin(StudyResults("quick", (), rows, names=ONE_BY_ONE))


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


def test_bn_placement_says_when_a_placement_is_worse_than_none():
    accuracies = {"lenet": 0.648, "lenet:norm=batch,norm_at=conv": 0.733,
                  "lenet:norm=batch,norm_at=fc": 0.598, BN: 0.789}
    rows = [{"model": spec, "test_acc": acc, "status": "completed"}
            for spec, acc in accuracies.items()]
    text = conclude_placement(StudyResults("quick", (), rows, names=PLACEMENT))
    assert text == ("Test accuracy: all layers 78.9%, convolutions only 73.3%, none 64.8%, dense "
                    "layers only 59.8%. Batch norm on the convolutions alone keeps 60% of the "
                    "gain of batch norm everywhere, on the dense layers alone none of it (it is "
                    "5.0 points below no batch norm).")


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
