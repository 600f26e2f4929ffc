"""`cnnlab runs`: the listing and a run's result.json always agree; a damaged run is listed."""

import json
import math
import shutil

import pytest
from experiment_helpers import TINY

from cnnlab.cli import main
from cnnlab.experiments import find_runs
from cnnlab.train import rundir
from cnnlab.train.rundir import RunDir, RunState, run_status


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder with a normal run and one whose loss stayed finite but ended its epoch above
    the limit (here a limit lowered for it: every real loss is above it)."""
    folder = tmp_path_factory.mktemp("runs")
    assert main(["train", "lenet", *TINY, "--out", str(folder / "normal")]) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rundir, "LOSS_LIMIT", 1e-3)
        assert main(["train", "lenet", *TINY, "--out", str(folder / "grew")]) == 0
    return folder


def _recorded(run) -> str:
    return json.loads((run / "result.json").read_text())["status"]


def test_a_run_whose_loss_grew_records_diverged_and_where(runs):
    result = RunDir(runs / "grew").read_result()
    assert result["status"] == "diverged" and result["epoch"] == 1 and result["lr"] == 0.1
    assert math.isfinite(result["loss"]) and "test_acc" in result
    assert RunDir(runs / "normal").read_result()["status"] == "completed"


def test_the_listing_says_what_result_json_says(runs, capsys):
    listed = {run.path.name: run.status for run in find_runs(runs)}
    assert listed == {"normal": _recorded(runs / "normal"), "grew": _recorded(runs / "grew")}
    assert listed == {"normal": "completed", "grew": "diverged"}
    assert main(["runs", str(runs)]) == 0
    listing = capsys.readouterr().out
    assert "2 runs in" in listing and listing.count("completed") == listing.count("diverged") == 1


def test_history_reads_back_as_numbers(runs):
    history = RunDir(runs / "normal").read_history()
    assert len(history) == 1 and history[0]["epoch"] == 1
    assert all(isinstance(value, float) for key, value in history[0].items() if key != "epoch")


def test_a_damaged_run_is_listed_with_the_reason_beside_the_others(runs, tmp_path, capsys):
    folder = tmp_path / "runs"
    shutil.copytree(runs, folder)
    shutil.copytree(runs / "normal", folder / "broken")
    config = folder / "broken" / "config.json"
    config.write_text(config.read_text()[:40])
    shutil.copytree(runs / "normal", folder / "killed")
    (folder / "killed" / "result.json").unlink()
    assert main(["runs", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert "4 runs in" in listing and "unfinished (1/1 epochs)" in listing
    assert listing.count("completed") == listing.count("diverged") == 1
    assert "damaged: " in listing and "config.json is not valid JSON" in listing
    broken = RunState.read(folder / "broken")
    assert broken.status == "damaged" and broken.config is None and "config.json" in broken.problem


@pytest.mark.parametrize(("result", "rows", "status"), [
    ({}, [], "stopped"),
    ({}, [{"epoch": 1, "train_loss": math.inf, "val_loss": 1.0, "lr": 0.1}], "stopped"),
    ({"status": "completed"}, [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "lr": 0.1}],
     "completed"),
    ({"status": "completed"}, [{"epoch": 1, "train_loss": 5.0, "val_loss": 0.6, "lr": 0.1}],
     "diverged"),
    ({"status": "completed"}, [{"epoch": 1, "train_loss": 0.5, "val_loss": math.nan, "lr": 1}],
     "diverged"),
    ({"status": "diverged", "epoch": 1, "step": 3, "lr": 10.0}, [], "diverged"),
])
def test_one_rule_gives_a_run_its_status(result, rows, status):
    assert run_status(result, rows, num_classes=10) == status  # limit 2 ln 10 = 4.6


def _edit_record(run, change) -> None:
    path = run / "config.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _edit_train(run, **values) -> None:
    _edit_record(run, lambda record: {**record, "train": {**record["train"], **values}})


def _config_folder(run) -> None:
    (run / "config.json").unlink()
    (run / "config.json").mkdir()


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda run: (run / "config.json").write_text("[1, 2]"), "is not a cnnlab run record"),
    (lambda run: _edit_record(run, lambda r: {**r, "model": "lenet"}), "'model' entry needs"),
    (lambda run: _edit_record(run, lambda r: {**r, "data": {**r["data"], "classes": 10}}),
     "'data' entry needs the list of class names"),
    (lambda run: _edit_train(run, model="lenet:colour=red"), "model spec 'lenet:colour=red'"),
    (lambda run: _edit_train(run, epochs="ten"), "epochs='ten' is not allowed"),
    (_config_folder, "cannot read"),
    (lambda run: (run / "metrics.csv").write_text("epoch,train_loss\n1,x\n"),
     "metrics.csv is not a table of numbers"),
    (lambda run: (run / "result.json").write_text('{"status": "done"}'),
     "result.json is not a cnnlab result"),
], ids=["not-a-record", "model-not-a-mapping", "classes-not-a-list", "unknown-option",
        "bad-setting", "config-is-a-folder", "bad-metrics", "bad-result"])
def test_one_damaged_run_is_listed_as_damaged_and_the_others_as_usual(damage, reason, runs,
                                                                       tmp_path, capsys):
    folder = tmp_path / "runs"
    shutil.copytree(runs, folder)
    shutil.copytree(runs / "normal", folder / "broken")
    damage(folder / "broken")
    assert main(["runs", str(folder)]) == 0
    listing = capsys.readouterr().out
    statuses = sorted(line.split()[-1] for line in listing.splitlines()
                      if line.startswith("  ") and line.split()[0] != "run")
    assert "3 runs in" in listing and statuses == ["completed", "damaged", "diverged"], listing
    problem = next(line for line in listing.splitlines() if line.startswith("damaged: "))
    assert reason in problem and "broken" in problem, listing
    assert RunState.read(folder / "broken").status == "damaged"


def test_a_hand_edited_setting_that_is_still_valid_lists_as_usual(runs, tmp_path, capsys):
    folder = tmp_path / "runs"
    shutil.copytree(runs / "normal", folder / "edited")
    _edit_train(folder / "edited", lr=None)  # valid: the recipe's rate
    assert main(["runs", str(folder)]) == 0
    assert "completed" in capsys.readouterr().out
