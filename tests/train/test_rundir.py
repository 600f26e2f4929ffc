"""Run directories: one writer at a time, and refused writes that lose nothing."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cnnlab.errors import UsageError
from cnnlab.files import write_text
from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.train.rundir import RunDir


def test_two_writers_of_one_run_are_refused(tmp_path):
    first = RunDir.create(tmp_path / "run")
    with pytest.raises(UsageError, match=f"being written by process {os.getpid()}"):
        RunDir.create(tmp_path / "run")
    first.write_config({"model": {"name": "lenet"}})
    with pytest.raises(UsageError, match="being written by"):
        RunDir.resume(tmp_path / "run")
    first.close()
    with pytest.raises(UsageError, match="already exists and is not empty"):
        RunDir.create(tmp_path / "run")
    RunDir.resume(tmp_path / "run").close()


HOLD_LOCK = """
import sys, time
from cnnlab.train.rundir import RunDir
run = RunDir.create(sys.argv[1])
run.write_config({"model": {"name": "lenet"}})
print("locked", flush=True)
time.sleep(60)
"""


def test_a_dead_writer_does_not_block_the_run(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "run")],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "locked"
    with pytest.raises(UsageError, match=f"process {writer.pid}"):
        RunDir.resume(tmp_path / "run")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            RunDir.resume(tmp_path / "run").close()
            break
        except UsageError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_temporary(tmp_path,
                                                                          monkeypatch):
    save_checkpoint({"model": {"w": torch.ones(2)}}, tmp_path / "last.pt")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UsageError, match=r"cannot write .*last\.pt: the disk is full") as info:
        save_checkpoint({"model": {"w": torch.zeros(2)}}, tmp_path / "last.pt")
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["model"]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_read_only_filesystem_is_one_line_naming_the_path(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def read_only(path, mode="r", *args, **kwargs):
        if "w" in mode or "a" in mode:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only)
    with pytest.raises(UsageError, match=r"cannot write .*config\.json: the filesystem is read"):
        write_text(tmp_path / "config.json", "{}")
    with pytest.raises(UsageError, match=r"cannot write .*\.lock: the filesystem is read-only"):
        RunDir.create(tmp_path / "run")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_writer_killed_during_its_first_file_leaves_a_folder_that_starts_again(tmp_path):
    """Found by the slow kill suite: a temporary left by a SIGKILL during the first write made
    the next start refuse the folder as "not empty" although it held no run yet."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.json.4242.tmp").write_text("{\"half")
    RunDir.create(run).close()
    assert [p.name for p in run.iterdir() if p.name != ".lock"] == []
    write_text(run / "notes.txt", "mine")
    with pytest.raises(UsageError, match="not empty"):
        RunDir.create(run)


CLASSES = [f"class {i}" for i in range(10)]
EPOCH = {"epoch": 1, "train_loss": 0.6, "train_acc": 0.8, "val_loss": 0.7, "val_acc": 0.75,
         "seconds": 1.0, "images_per_s": 2000.0, "lr": 0.1}


def made_up_run(path, history: list[dict]) -> RunDir:
    """A run folder written by hand through RunDir, as the trainer writes one: its config, its
    epochs, then a result whose status is the writer's (`RunDir.finished`)."""
    from cnnlab.train.config import resolve_config

    run = RunDir.create(path)
    run.write_config({"model": {"name": "lenet", "spec": "lenet"},
                      "data": {"classes": CLASSES, "train_images": 2000},
                      "train": resolve_config({"model": "lenet", "epochs": 1}).to_dict()})
    run.write_history(history, "test")
    run.write_result({"model": "lenet", **RunDir.finished(history, len(CLASSES)),
                      "test_loss": history[-1]["val_loss"], "test_acc": history[-1]["val_acc"],
                      "epochs": len(history), "seconds_per_epoch": 1.0})
    run.close()
    return run


@pytest.mark.parametrize(("changes", "status"), [
    ({}, "completed"),
    ({"train_loss": 9.0}, "diverged"),           # the loss grew past 2 ln 10, finite
    ({"val_loss": float("nan")}, "diverged"),
    ({"train_loss": 4.6}, "completed"),          # just below the limit, 4.605
])
def test_result_json_and_the_listing_give_a_run_the_status_of_one_rule(changes, status,
                                                                       tmp_path, capsys):
    from cnnlab.cli import main
    from cnnlab.train.rundir import RunState, run_status

    history = [dict(EPOCH, epoch=1), dict(EPOCH, epoch=2, **changes)]
    run = made_up_run(tmp_path / "runs" / "made-up", history)
    recorded = json.loads(run.file("result.json").read_text())["status"]
    state = RunState.read(run.path)
    assert recorded == state.status == status
    assert run_status(state.result, state.history, len(CLASSES)) == status
    assert main(["runs", str(tmp_path / "runs")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.split()[:1] == ["made-up"])
    assert row.split()[-1] == status
