"""Run directories: one writer at a time, and refused writes that lose nothing."""

import errno
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
