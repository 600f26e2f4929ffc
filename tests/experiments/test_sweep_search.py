"""`--search` samples points with TPE and prunes a trial whose validation accuracy after an
epoch is below the median of the trials before it."""

import csv

from cnnlab.cli import main
from cnnlab.experiments import Sweep
from cnnlab.experiments.sweep.storage import create_study

SETTINGS = {"epochs": 2, "subset": 256, "batch_size": 32, "val_fraction": 0.01, "device": "cpu"}
ARGS = ["--epochs", "2", "--subset", "256", "--batch-size", "32", "--val-fraction", "0.01",
        "--device", "cpu"]
"""Two epochs of 8 steps, each followed by validation on 600 held-out images."""


def test_a_hopeless_trial_is_pruned_after_its_first_epoch(tmp_path, capsys):
    """The case: a trial that learns (lr 0.1) finishes first, then one at lr 1e-6 that cannot
    learn in an epoch; with one sampled trial, pruning starts after the first finished one."""
    out = tmp_path / "search"
    sweep = Sweep.parse(["lenet-modern"], search=["lr=1e-6..1:log"], trials=1,
                        settings=SETTINGS)
    study, _ = create_study(sweep, out)
    study.enqueue_trial({"model": "lenet-modern", "lr": 0.1})
    study.enqueue_trial({"model": "lenet-modern", "lr": 1e-6})

    assert main(["sweep", "lenet-modern", "--search", "lr=1e-6..1:log", "--trials", "1",
                 *ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trial 1: pruned after epoch 1" in printed
    table = csv.DictReader((out / "sweep.csv").read_text().splitlines())
    rows = {row["trial"]: row for row in table}
    assert rows.keys() == {"0", "1", "2"}  # the two cases and the one sampled point
    assert rows["0"]["status"] == "completed" and rows["1"]["status"] == "pruned"
    assert float(rows["1"]["val_acc"]) < float(rows["0"]["val_acc"])
    assert 1e-6 <= float(rows["2"]["lr"]) <= 1 and rows["2"]["status"] in ("completed", "pruned")
    assert not list(out.glob("lenet-modern-lr=1e-06-*/result.json"))  # stopped, resumable
