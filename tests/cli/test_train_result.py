"""What ``cnnlab train`` prints when a run ends: a run whose loss grew past the divergence limit
(while staying finite, so training went on to the end) says that it diverged, and why, before
its numbers; a completed run prints only its numbers."""

import json

import pytest

from cnnlab.cli import main
from cnnlab.train import rundir
from cnnlab.train.rundir import RunState

TINY = ["--subset", "256", "--batch-size", "64", "--epochs", "1", "--device", "cpu"]


def test_a_run_whose_loss_grew_says_it_diverged_and_why(tmp_path, capsys, monkeypatch):
    # a limit so low that every real loss is above it: the run ends, but as diverged
    monkeypatch.setattr(rundir, "LOSS_LIMIT", 1e-3)
    out = tmp_path / "grew"
    assert main(["train", "lenet", *TINY, "--out", str(out)]) == 0
    first, second = capsys.readouterr().out.splitlines()[-4:-2]
    state = RunState.read(out)
    assert state.status == "diverged"
    assert first == f"status:     diverged: {state.why}"
    assert "the training loss went above the limit at epoch 1" in first
    assert "0.001 times the loss of guessing uniformly among 10 classes" in first
    assert second.startswith("test accuracy ")


def test_a_completed_run_prints_no_status_line(tmp_path, capsys):
    out = tmp_path / "normal"
    assert main(["train", "lenet", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert RunState.read(out).status == "completed"
    assert "status:" not in printed and "test accuracy " in printed


@pytest.mark.parametrize(("where", "words"), [
    ({"epoch": 2, "step": None, "lr": 0.1, "loss": 9.0},
     "the training loss went above the limit at epoch 2: 9, limit 4.605"),
    ({"epoch": 1, "step": None, "lr": 0.1, "loss": 0.5},
     "the validation loss was not finite at epoch 1"),
    ({"epoch": 1, "step": 7, "lr": 10.0},
     "the training loss was not finite at epoch 1, step 7 (lr 10)"),
])
def test_why_a_run_diverged_names_the_epoch_and_the_cause(where, words):
    assert rundir.why_diverged(where, 10).startswith(words)


def test_a_fast_recipe_run_and_the_listing_give_the_same_status(tmp_path, capsys):
    """The issue's run: the fast recipe for one epoch on 2,000 images. result.json's status and
    the status `cnnlab runs` lists are the one rule's (`RunState`), whichever it is."""
    out = tmp_path / "runs" / "fast"
    assert main(["train", "--recipe", "fast", "--epochs", "1", "--subset", "2000",
                 "--device", "cpu", "--out", str(out)]) == 0
    recorded = json.loads((out / "result.json").read_text())["status"]
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.split()[:1] == ["fast"])
    assert row.split()[-1] == recorded == RunState.read(out).status
