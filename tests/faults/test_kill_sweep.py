"""Kill a sweep anywhere: after SIGKILLs at random moments, re-running the same command ends with
every trial done exactly once."""

import json
import random
import signal
import time

import pytest
from fault_tools import cnnlab, popen_cnnlab

from cnnlab.experiments.sweep.storage import load_study, sqlite_url

SETTINGS = ["--epochs", "2", "--batch-size", "8", "--checkpoint-every", "3", "--device", "cpu",
            "--heartbeat", "1"]
LRS = ("0.02", "0.05", "0.1")


def kill_and_rerun(kills: int, seed: int, picture_folder, tmp_path, faults) -> None:
    out = tmp_path / "sweep"
    command = ["sweep", "lenet", "--grid", f"lr={','.join(LRS)}", "--data", picture_folder,
               *SETTINGS, "--out", out]
    rng = random.Random(seed)
    for _ in range(kills):
        process = popen_cnnlab(*command)
        time.sleep(rng.uniform(1.0, 12.0))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        faults.injected()
    result = cnnlab(*command, timeout=600)
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    name = json.loads((out / "sweep.json").read_text())["name"]
    study, _ = load_study(name, sqlite_url(out))
    done = sorted(str(t.params["lr"]) for t in study.get_trials() if t.state.name == "COMPLETE")
    if sorted(float(lr) for lr in done) != sorted(float(lr) for lr in LRS):
        faults.lost(f"trials completed {done}, expected each of {LRS} once")
    for run in out.glob("lenet-*"):
        assert json.loads((run / "result.json").read_text())["status"] in ("completed",
                                                                           "diverged")
    faults.survived(kills)


def test_a_sweep_killed_twice_finishes_every_trial_once(picture_folder, tmp_path, faults):
    kill_and_rerun(2, 0, picture_folder, tmp_path, faults)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_a_sweep_killed_many_times_finishes_every_trial_once(seed, picture_folder, tmp_path,
                                                             faults):
    kill_and_rerun(5, seed, picture_folder, tmp_path, faults)
