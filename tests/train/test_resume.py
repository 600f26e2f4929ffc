"""A run killed with SIGKILL mid-epoch, then resumed, ends bit for bit like an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

from cnnlab.train.checkpoint import load_checkpoint

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# 40 steps per epoch, 2 epochs; momentum gives the optimiser state that must survive too.
ARGS = ["train", "lenet-modern", "--subset", "800", "--batch-size", "20", "--epochs", "2",
        "--momentum", "0.9", "--checkpoint-every", "7", "--device", "cpu"]


def _kill_after_first_checkpoint(out) -> None:
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", *ARGS, "--out", str(out)],
                               env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (out / "last.pt").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, run_cnnlab,
                                                                   assert_same_tensors):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    uninterrupted = subprocess.Popen([sys.executable, "-m", "cnnlab", *ARGS, "--out", str(clean)],
                                     env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL)
    _kill_after_first_checkpoint(killed)
    position = load_checkpoint(killed / "last.pt")["position"]
    assert position["epoch"] == 0 and 0 < position["step"] < 40  # killed mid-epoch

    run_cnnlab("train", "--resume", killed)
    assert uninterrupted.wait(timeout=300) == 0

    expected, resumed = load_checkpoint(clean / "last.pt"), load_checkpoint(killed / "last.pt")
    assert_same_tensors(expected["model"], resumed["model"])
    for a, b in zip(expected["optimizer"]["state"].values(), resumed["optimizer"]["state"].values(),
                    strict=True):
        assert_same_tensors(a, b)
    assert expected["history"] == [
        {**row, "seconds": e["seconds"], "images_per_s": e["images_per_s"]}
        for row, e in zip(resumed["history"], expected["history"], strict=True)
    ]
