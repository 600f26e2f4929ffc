"""A sweep killed with SIGKILL mid-trial, then re-run: every trial finishes exactly once, and the
killed trial continues from its checkpoint to the weights of a run never interrupted."""

import signal
import time

import torch
from experiment_helpers import cnnlab_process, finish

from cnnlab.experiments.sweep.storage import load_study, sqlite_url
from cnnlab.train.checkpoint import load_checkpoint

# 20 steps per epoch, 2 epochs, a checkpoint every 7 steps; momentum adds optimiser state; each
# epoch is validated on 600 held-out images.
SETTINGS = ["--subset", "400", "--batch-size", "20", "--epochs", "2", "--momentum", "0.9",
            "--checkpoint-every", "7", "--val-fraction", "0.01", "--device", "cpu"]
SWEEP = ["sweep", "lenet-modern", "--grid", "lr=0.05,0.1", *SETTINGS, "--heartbeat", "1"]


def _kill_in_second_trial(out) -> None:
    process = cnnlab_process(*SWEEP, "--out", out)
    deadline = time.monotonic() + 240
    while not list(out.glob("lenet-modern-lr=0.1-*/last.pt")) and process.poll() is None:
        assert time.monotonic() < deadline, "the second trial wrote no checkpoint"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the sweep finished before it could be killed"


def test_a_killed_sweep_reruns_only_its_unfinished_trial_from_its_checkpoint(tmp_path):
    out, clean = tmp_path / "sweep", tmp_path / "clean"
    uninterrupted = cnnlab_process("train", "lenet-modern", "--lr", "0.1", *SETTINGS,
                                   "--out", clean)
    _kill_in_second_trial(out)
    killed_run = next(out.glob("lenet-modern-lr=0.1-*"))
    assert not (killed_run / "result.json").exists()
    assert load_checkpoint(killed_run / "last.pt")["position"]["epoch"] < 2  # mid-trial

    rerun = finish(cnnlab_process(*SWEEP, "--out", out))
    assert [line.split(" -> ")[0] for line in rerun.splitlines() if " -> " in line] == [
        "trial 2: lenet-modern lr=0.1"]  # the killed trial's retry; lr 0.05 is not rerun
    finish(uninterrupted)

    name = (out / "sweep.json").read_text().split('"name": "')[1].split('"')[0]
    study, _ = load_study(name, sqlite_url(out))
    states = sorted((t.params["lr"], t.state.name) for t in study.get_trials())
    assert states == [(0.05, "COMPLETE"), (0.1, "COMPLETE"), (0.1, "FAIL")]
    expected = load_checkpoint(clean / "last.pt")["model"]
    resumed = load_checkpoint(killed_run / "last.pt")["model"]
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[key], resumed[key]) for key in expected)
