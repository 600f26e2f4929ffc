"""Each study's conclusion on made-up results over seeds: a difference is stated only when its
paired interval excludes zero, and otherwise called not told apart, with the seeds it needs."""

import pytest
from scipy import stats

from cnnlab.experiments.studies.architectures import (
    MEMORY,
    ONE_BY_ONE,
    conclude_memory,
    conclude_nin,
    conclude_overfit,
    conclude_resolution,
)
from cnnlab.experiments.studies.batchnorm import (
    BN,
    LITE,
    PLACEMENT,
    REGULARISERS,
    WITH_AND_WITHOUT,
    conclude_bn_batch_size,
    conclude_bn_lr,
    conclude_bn_vs_dropout,
    conclude_lite,
    conclude_placement,
)
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.training import (
    conclude_augmentation,
    conclude_label_smoothing,
    conclude_lenet_modern,
)

APART = (0.0, 0.004, 0.002)
"""Per-seed offsets that keep a variant's paired differences close: told apart when the gap
is a point or more."""
NOISY = (0.0, 0.04, -0.03)
"""Per-seed offsets that make a variant's differences vary by several points."""


def seeded(variants: dict, keys=(), names=None, **columns) -> StudyResults:
    """Results with one row per seed: `variants` maps each variant's columns (a tuple of
    pairs) to its accuracies by seed."""
    rows = [{"model": "lenet", **dict(match), "seed": seed, "test_acc": acc,
             "status": "completed", **columns}
            for match, accuracies in variants.items() for seed, acc in enumerate(accuracies)]
    return StudyResults("quick", tuple(keys), rows, names=names or {})


def shifted(base: float, offsets=APART) -> list[float]:
    return [base + offset for offset in offsets]


def test_a_told_apart_difference_quotes_scipys_paired_interval():
    seed, relu = [0.70, 0.72, 0.71], [0.80, 0.83, 0.805]
    results = seeded({(("model.activation", "sigmoid"), ("model.pool", "avg")): seed,
                      (("model.activation", "relu"), ("model.pool", "avg")): relu,
                      (("model.activation", "relu"), ("model.pool", "max")): shifted(0.71),
                      (("model.activation", "sigmoid"), ("model.pool", "max")):
                          shifted(0.71, NOISY)},
                     keys=("model.activation", "model.pool"))
    text = conclude_lenet_modern(results)
    bounds = stats.ttest_rel(relu, seed).confidence_interval()
    assert (f"ReLU alone (average pooling) is better than the seed's sigmoid with average "
            f"pooling by +10.2 points [{100 * bounds.low:.1f}, {100 * bounds.high:.1f}], n=3 "
            f"(paired t)") in text
    assert ("max pooling alone (sigmoid) and the seed's sigmoid with average pooling are not "
            "told apart at this budget") in text
    told = {(f.name_a, f.name_b): f.told_apart for f in results.findings}
    assert told[("ReLU alone (average pooling)", "the seed's sigmoid with average pooling")]
    assert not told[("max pooling alone (sigmoid)", "the seed's sigmoid with average pooling")]


def test_one_seed_is_never_a_finding():
    results = seeded({(("model.activation", a), ("model.pool", p)): [acc]
                      for (a, p), acc in {("sigmoid", "avg"): 0.5, ("relu", "avg"): 0.8,
                                          ("relu", "max"): 0.85, ("sigmoid", "max"): 0.6}.items()},
                     keys=("model.activation", "model.pool"))
    text = conclude_lenet_modern(results)
    assert "is better than" not in text and text.count("one seed measures no spread") == 3
    assert results.findings and not any(f.told_apart for f in results.findings)


@pytest.mark.parametrize("smoothed, verdict", [
    (shifted(0.89), "Label smoothing helped: at the best smoothing tried, smoothing 0.1 is "
                    "better than no smoothing by +1.0 points"),
    (shifted(0.86), "Label smoothing hurt: at the best smoothing tried, no smoothing is better "
                    "than smoothing 0.1 by +2.0 points"),
    (shifted(0.881, NOISY), "Label smoothing did not make a difference told apart at this "
                            "budget: at the best smoothing tried, smoothing 0.1 and no "
                            "smoothing are not told apart"),
])
def test_label_smoothing_helped_hurt_or_not_told_apart(smoothed, verdict):
    results = seeded({(("label_smoothing", 0.0),): shifted(0.88),
                      (("label_smoothing", 0.1),): smoothed}, keys=("label_smoothing",),
                     test_loss=0.3)
    text = conclude_label_smoothing(results)
    assert text.startswith(verdict)
    assert text.endswith("Test cross-entropy by smoothing: 0: 0.300 [0.300, 0.300], n=3; "
                         "0.1: 0.300 [0.300, 0.300], n=3.")


def test_label_smoothing_with_only_the_plain_trial_finished():
    results = StudyResults("quick", ("label_smoothing",), [
        {"model": "m", "label_smoothing": 0.0, "test_acc": 0.88, "test_loss": 0.32,
         "status": "completed"},
        {"model": "m", "label_smoothing": 0.1, "test_acc": None, "test_loss": None,
         "status": "diverged"}])
    assert conclude_label_smoothing(results).startswith(
        "Only some trials finished: test accuracy label_smoothing=0 88.0%, label_smoothing=0.1 "
        "diverged.")
    assert conclude_label_smoothing(StudyResults("quick", (), [])) == "No trial finished."


def test_augmentation_sorts_what_helped_hurt_and_was_not_told_apart():
    results = seeded({(("augment", "none"),): shifted(0.80),
                      (("augment", "flip"),): shifted(0.82),
                      (("augment", "erase"),): shifted(0.78),
                      (("augment", "crop"),): shifted(0.805, NOISY)}, keys=("augment",))
    text = conclude_augmentation(results)
    assert text.endswith("Helped: flip; hurt: erase; not told apart from none: crop.")
    assert "flip is better than none by +2.0 points" in text


def _lr_rows(spec, seed, *trials):
    return [{"model": spec, "lr": lr, "seed": seed, "test_acc": acc, "status": status}
            for lr, acc, status in trials]


def test_bn_lr_gives_the_largest_rate_per_seed_and_compares_them():
    rows = []
    for seed in range(3):
        top = 3.0 if seed < 2 else 1.0  # seed 2 trains without batch norm only up to 1
        rows += _lr_rows("lenet", seed, (1.0, 0.6, "completed"), (3.0, 0.5 if seed < 2 else 0.1,
                                                                   "completed"),
                         (30.0, 0.1, "diverged"))
        rows += _lr_rows(BN, seed, (1.0, 0.8, "completed"), (3.0, 0.8, "completed"),
                         (30.0, 0.7 + 0.01 * seed, "completed"))
        assert top
    text = conclude_bn_lr(StudyResults("quick", ("lr",), rows, names=WITH_AND_WITHOUT))
    assert ("without batch norm: 3 (diverged from 30) on seeds 0, 1; 1 (at chance from 3, "
            "diverged from 30) on seed 2; with batch norm: 30 (the largest rate tried) on all "
            "3 seeds.") in text
    assert ("The largest rate with batch norm trained at, against without batch norm's: "
            "14.4x [2.98x, 69.7x], n=3 (geometric mean ratio, paired t on log10 rates, at the "
            "grid's resolution): larger.") in text
    assert text.endswith("Best test accuracy 60.0% [60.0, 60.0], n=3 at lr 1 without batch "
                         "norm; 80.0% [80.0, 80.0], n=3 at lr 1 with batch norm.")


def test_bn_lr_with_one_seed_counts_a_rate_that_stays_at_chance_as_not_trained():
    rows = (_lr_rows("lenet", 0, (0.1, 0.100, "completed"), (1.0, 0.628, "completed"),
                     (3.0, 0.390, "completed"), (10.0, 0.100, "completed"),
                     (30.0, 0.100, "diverged"), (100.0, 0.100, "diverged"))
            + _lr_rows(BN, 0, (0.1, 0.765, "completed"), (30.0, 0.540, "completed"),
                       (100.0, 0.100, "diverged"))
            + _lr_rows("lenet:dropout=0.5", 0, (0.1, 0.150, "completed")))
    names = {"lenet": "without", BN: "with", "lenet:dropout=0.5": "slow"}
    text = conclude_bn_lr(StudyResults("quick", ("lr",), rows, names=names))
    assert ("without: 3 (at chance from 10, diverged from 30); with: 30 (diverged from 100); "
            "slow: none (no rate reached 20.0%).") in text
    assert ("10x, n=1 (geometric mean ratio, paired t on log10 rates, at the grid's "
            "resolution): not told apart (one seed: not a finding).") in text
    assert text.endswith("Best test accuracy 62.8%, n=1 at lr 1 without; 76.5%, n=1 at lr 0.1 "
                         "with; 15.0%, n=1 at lr 0.1 slow.")


def test_bn_placement_compares_each_placement_with_none():
    results = seeded({(("model", "lenet"),): shifted(0.65),
                      (("model", "lenet:norm=batch,norm_at=conv"),): shifted(0.73),
                      (("model", "lenet:norm=batch,norm_at=fc"),): shifted(0.60),
                      (("model", BN),): shifted(0.79)}, names=PLACEMENT)
    text = conclude_placement(results)
    assert text.startswith("Test accuracy: all layers 79.2% [78.7, 79.7], n=3; then "
                           "convolutions only 73.2% [72.7, 73.7], n=3; then none")
    assert "dense layers only and none" not in text
    assert "none is better than dense layers only by +5.0 points" in text
    assert ("keeps 57% of the mean gain of batch norm everywhere, on the dense layers alone "
            "none of it (its mean is 5.0 points below no batch norm).") in text


def test_bn_lite_compares_fixed_with_learned_gamma_and_beta():
    variants = {}
    for spec in LITE:
        variants[(("model", spec), ("model.norm_affine", "true"))] = shifted(0.80)
        variants[(("model", spec), ("model.norm_affine", "false"))] = shifted(
            0.75 if spec == BN else 0.80, NOISY if spec != BN else APART)
    text = conclude_lite(seeded(variants, keys=("model.norm_affine",), names=LITE))
    assert "full learned is better than full fixed by +5.0 points" in text
    assert "mean-only fixed and mean-only learned are not told apart" in text


def test_bn_vs_dropout_reports_both_evaluations_and_what_recomputing_changed():
    precise = {"lenet": 0.65, "lenet:dropout=0.5": 0.21, "lenet:norm=batch,norm_at=fc": 0.84,
               "lenet:norm=batch,norm_at=fc,dropout=0.5": 0.80}
    rows = [{"model": spec, "seed": seed, "test_acc": acc + APART[seed],
             "plain_test_acc": acc + APART[seed] - (0.24 if "norm" in spec else 0),
             "train_acc": 0.9, "status": "completed"}
            for spec, acc in precise.items() for seed in range(3)]
    text = conclude_bn_vs_dropout(StudyResults("quick", (), rows, names=REGULARISERS))
    assert "Batch norm instead of dropout: batch norm is better than dropout by +63.0" in text
    assert "Dropout on top of batch norm: batch norm is better than both by +4.0" in text
    assert "the two evaluations disagree: with the moving averages neither leads, with " \
           "recomputed statistics batch norm." in text
    assert ("batch norm recomputed is better than batch norm as trained by +24.0 points [24.0, "
            "24.0], n=3 (paired t)") in text
    assert "neither recomputed" not in text  # no batch norm: both evaluations are the same
    assert ("Training minus test accuracy in the last epoch: neither +24.8 points [24.3, 25.3], "
            "n=3; dropout +68.8 points") in text


def test_bn_batch_size_compares_with_and_without_at_the_extreme_sizes():
    variants = {}
    for size in (16, 1024):
        variants[(("model", "lenet"), ("batch_size", size))] = shifted(0.80 if size == 16
                                                                      else 0.30)
        variants[(("model", BN), ("batch_size", size))] = shifted(0.85 if size == 16 else 0.30,
                                                                 APART if size == 16 else NOISY)
    text = conclude_bn_batch_size(seeded(variants, keys=("batch_size",),
                                         names=WITH_AND_WITHOUT))
    assert "batch 16: with batch norm is better than without by +5.0 points" in text
    assert "batch 1024: with batch norm and without are not told apart" in text
    assert "with batch norm 30.3% [21.6, 39.1], n=3 (batch 1024) to 85.2%" in text


def test_nin_counts_the_seeds_at_chance():
    variants = {(("model", "nin"),): shifted(0.82), (("model", "nin:num_1x1=3"),): [0.1, 0.1,
                                                                                    0.5]}
    text = conclude_nin(seeded(variants, names=ONE_BY_ONE, epochs=4, parameters=1000))
    assert "Still at chance after 4 epochs: three 1x1 convs (on 2 of 3 seeds)." in text
    assert text.startswith("Test accuracy: two 1x1 convs (the chapter's) 82.2% [")


def test_overfit_says_whether_the_gap_excludes_zero():
    rows = [{"model": "alexnet", "model.dropout": dropout, "seed": seed, "epochs": 50,
             "train_acc": 0.99, "test_acc": acc + APART[seed], "status": "completed",
             "trial": i}
            for i, (dropout, acc, seed) in enumerate(
                (d, a, s) for d, a in ((0.0, 0.70), (0.5, 0.75)) for s in range(3))]
    curves = {row["trial"]: [{"epoch": 1, "train_acc": 0.99, "val_acc": row["test_acc"]}]
              for row in rows}
    text = conclude_overfit(StudyResults("quick", ("model.dropout",), rows, curves))
    assert text.startswith("With dropout 0 the training accuracy reached 99.0% [99.0, 99.0], "
                           "n=3 and the test accuracy 70.2%")
    assert ": it overfits (the interval excludes zero)" in text
    assert "no dropout is better than dropout 0.5 by +5.0 points" in text


def test_resolution_compares_the_largest_with_the_smallest_input():
    noise = {56: NOISY, 112: (0.03, -0.02, 0.0)}
    rows = [{"model": "vgg-small", "resize": side, "seed": seed,
             "test_acc": acc + noise[side][seed], "status": "completed",
             "seconds_per_epoch": side / 10, "parameters": 10 ** 6, "mflops": side * 10.0}
            for side, acc in ((56, 0.80), (112, 0.81)) for seed in range(3)]
    text = conclude_resolution(StudyResults("quick", ("resize",), rows))
    assert "112 px and 56 px are not told apart at this budget" in text
    assert "112 px takes 2.0x the time per epoch of 56 px" in text


def test_memory_study_tells_step_times_apart_only_when_their_intervals_miss():
    def row(spec, size, ms, low, high):
        return {"model": spec, "batch_size": size, "added_mib": 100.0 if "true" not in spec
                else 60.0, "bench_images_per_s": 1000 * size / ms, "ms_per_step": ms,
                "ms_per_step_low": low, "ms_per_step_high": high}

    plain, saving = MEMORY
    rows = [row(plain, 16, 10.0, 9.8, 10.2), row(saving, 16, 12.0, 11.8, 12.2),
            row(plain, 32, 20.0, 19.0, 21.0), row(saving, 32, 20.5, 20.2, 20.8)]
    text = conclude_memory(StudyResults("quick", ("batch_size",), rows))
    assert ("batch 16: memory a batch adds 100 -> 60 MiB (-40%), speed 0.83x (1,600 -> 1,333 "
            "images/s; a step 10.0 ms [9.8, 10.2] -> 12.0 ms [11.8, 12.2], told apart") in text
    assert "20.5 ms [20.2, 20.8], not told apart at this many timed steps" in text
