"""`cnnlab sweep` over a grid: every trial once, diverged ones marked, the table and its files;
re-running continues (here: runs nothing), `--show` redraws, and every trial is a run."""

import csv
import json

import pytest
from experiment_helpers import TINY, cnnlab_process, finish

from cnnlab.cli import main
from cnnlab.train.runs import load_trained

SPECS = ["lenet", "lenet:norm=batch"]
GRID = ["--grid", "lr=0.3,1000"]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """2 specs x 2 learning rates in two worker processes; lr 1000 diverges for both."""
    out = tmp_path_factory.mktemp("sweeps") / "lr-bn"
    printed = finish(cnnlab_process("sweep", *SPECS, *GRID, *TINY, "--out", out,
                                    "--workers", "2"))
    return out, printed


def _table(printed: str) -> str:
    """The results table and what follows it."""
    return printed[printed.rfind("\n", 0, printed.index(" trials finished")) + 1:]


def test_every_trial_runs_once_and_the_diverged_ones_are_marked(grid_sweep):
    out, printed = grid_sweep
    started = [line for line in printed.splitlines() if " -> " in line]
    assert len(started) == 4 and len({line.split("] ")[1] for line in started}) == 4
    rows = list(csv.DictReader((out / "sweep.csv").read_text().splitlines()))
    assert [(r["model"], float(r["lr"]), r["status"]) for r in rows] == [
        ("lenet", 0.3, "completed"), ("lenet", 1000.0, "diverged"),
        ("lenet:norm=batch", 0.3, "completed"), ("lenet:norm=batch", 1000.0, "diverged")]
    assert all(r["note"] == "epoch 1" for r in rows if r["status"] == "diverged")
    assert all(0 < float(r["test_acc"]) < 1 and int(r["parameters"]) > 40_000 for r in rows)
    assert (out / "sweep.png").stat().st_size > 10_000
    table = _table(printed)
    assert "4 of 4 trials finished" in table and table.count("diverged (epoch 1)") == 2
    assert "lenet: 0.3 (diverged from 1000)" in table
    assert "lenet:norm=batch: 0.3 (diverged from 1000)" in table


def test_rerunning_the_command_runs_nothing_and_show_redraws(grid_sweep, capsys):
    out, printed = grid_sweep
    assert main(["sweep", *SPECS, *GRID, *TINY, "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert " -> " not in again and _table(again) == _table(printed)
    (out / "sweep.png").unlink()
    assert main(["sweep", "--show", str(out)]) == 0
    assert _table(capsys.readouterr().out) == _table(printed)
    assert (out / "sweep.png").is_file()


def test_a_changed_definition_under_the_same_name_is_refused(grid_sweep, capsys):
    out, _ = grid_sweep
    name = json.loads((out / "sweep.json").read_text())["name"]
    assert main(["sweep", "lenet", "--grid", "lr=0.1,2", *TINY, "--out", str(out),
                 "--name", name]) == 2
    assert "already exists with another definition" in capsys.readouterr().err


def test_trials_are_runs_to_list_compare_and_rebuild(grid_sweep, capsys):
    out, _ = grid_sweep
    assert main(["runs", str(out)]) == 0
    listing = capsys.readouterr().out
    assert "4 runs in" in listing and "subset=256" in listing
    assert listing.count("completed") == 2 and listing.count("diverged") == 2
    trials = sorted(p for p in out.iterdir() if (p / "config.json").is_file())
    assert main(["runs", "compare", str(trials[0]), str(trials[2])]) == 0  # lr 0.3, both specs
    compared = capsys.readouterr().out
    body = compared.split("─\n", 1)[1]
    labels = [line.split()[0] for line in body.splitlines() if line.strip()]
    assert labels[:2] == ["model", "test"], compared  # only the spec differs
    assert (out / "compare.png").is_file()
    trained = load_trained(trials[0])  # what `cnnlab eval` and `predict` rebuild
    assert trained.config.model == "lenet" and trained.config.lr == 0.3
