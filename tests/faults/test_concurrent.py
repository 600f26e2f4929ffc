"""Two at once: of two `cnnlab train --out SAME` started together one refuses and the other runs
undisturbed; resuming a run that another process is still writing refuses."""

import time

import torch
from fault_tools import cnnlab, popen_cnnlab

from cnnlab.train.checkpoint import load_checkpoint

SETTINGS = ["--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--device", "cpu"]


def test_two_trainings_into_one_folder(picture_folder, tmp_path, faults):
    alone = tmp_path / "alone"
    assert cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out",
                  alone).returncode == 0
    run = tmp_path / "shared"
    both = [popen_cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out", run)
            for _ in range(2)]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in both]
    faults.injected()
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    (refusal,) = [err for code, _, err in outcomes if code == 2]
    faults.check_output(refusal, 2)
    assert "being written by" in refusal or "already exists and is not empty" in refusal
    final, reference = load_checkpoint(run / "last.pt"), load_checkpoint(alone / "last.pt")
    if not all(torch.equal(final["model"][k], reference["model"][k]) for k in reference["model"]):
        faults.lost("the run that went on was disturbed by the one that refused")
    faults.survived()


def test_resuming_a_run_that_is_being_written_refuses(picture_folder, tmp_path, faults):
    run = tmp_path / "run"
    writer = popen_cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--epochs", "40",
                          "--out", run)
    deadline = time.monotonic() + 120
    while not (run / "config.json").exists():
        assert time.monotonic() < deadline and writer.poll() is None
        time.sleep(0.1)
    result = cnnlab("train", "--resume", run, "--epochs", "41")
    writer.kill()
    writer.communicate()
    faults.injected()
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 2 and "being written by process" in result.stderr
    result = cnnlab("train", "--resume", run, "--epochs", "1")  # the writer is gone now
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    faults.survived()
