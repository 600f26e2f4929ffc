"""Kill anywhere: SIGKILL `cnnlab train` at random moments and while it writes a checkpoint;
`--resume` then finishes with the weights of a run never interrupted, bit for bit on the CPU."""

import random
import signal
import time

import pytest
import torch
from fault_tools import cnnlab, popen_cnnlab

from cnnlab.train.checkpoint import load_checkpoint

SETTINGS = ["--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--checkpoint-every", "3",
            "--device", "cpu"]

KILL_IN_WRITE = """
import os, signal
_fsync, _calls = os.fsync, [0]
def _dying_fsync(fd):
    # the k-th file flushed to disk: its temporary copy is written but not yet renamed
    _calls[0] += 1
    if _calls[0] == {k}:
        os.kill(os.getpid(), signal.SIGKILL)
    return _fsync(fd)
os.fsync = _dying_fsync
"""


@pytest.fixture(scope="module")
def reference(picture_folder, tmp_path_factory):
    """An uninterrupted run: its final weights and how long it took."""
    out = tmp_path_factory.mktemp("reference") / "run"
    started = time.monotonic()
    result = cnnlab("train", "lenet-modern", "--data", picture_folder, *SETTINGS, "--out", out)
    assert result.returncode == 0, result.stderr
    return load_checkpoint(out / "last.pt")["model"], time.monotonic() - started


def finish(run, command, faults) -> None:
    """Recover as a user would: --resume a run that has its record, else start it again."""
    for name in ("last.pt", "best.pt"):
        if (run / name).exists():
            load_checkpoint(run / name)  # a checkpoint left behind is never half-written
    if (run / "config.json").exists():
        result = cnnlab("train", "--resume", run)
    else:
        result = cnnlab(*command)
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 0, result.stderr
    assert not list(run.glob(".*.tmp")), "a temporary file was left behind"


def same_weights(run, reference, faults) -> None:
    final = load_checkpoint(run / "last.pt")["model"]
    if final.keys() != reference.keys() or not all(torch.equal(final[k], reference[k])
                                                   for k in final):
        faults.lost(f"{run}: resumed weights differ from the uninterrupted run's")
    faults.survived()


def moments(count: int, seed: int) -> list[tuple[str, float]]:
    """`count` kill moments: fractions of the run's time, and the k-th checkpoint write."""
    rng = random.Random(seed)
    timed = [("time", rng.uniform(0.05, 1.0)) for _ in range(count - count // 2)]
    writes = [("write", rng.randint(1, 16)) for _ in range(count // 2)]
    return timed + writes


def kill_and_resume(kind, when, picture_folder, tmp_path, reference, faults):
    weights, seconds = reference
    run = tmp_path / f"{kind}-{when:.3f}"
    command = ("train", "lenet-modern", "--data", picture_folder, *SETTINGS, "--out", run)
    if kind == "write":
        result = cnnlab(*command, prelude=KILL_IN_WRITE.format(k=int(when)))
        assert result.returncode == -signal.SIGKILL, result.stderr
    else:
        process = popen_cnnlab(*command)
        time.sleep(when * seconds)
        process.send_signal(signal.SIGKILL)
        process.communicate()
    faults.injected()
    finish(run, command, faults)
    same_weights(run, weights, faults)


@pytest.mark.parametrize(("kind", "when"), moments(4, seed=0))
def test_killed_training_resumes_to_the_same_weights(kind, when, picture_folder, tmp_path,
                                                     reference, faults):
    kill_and_resume(kind, when, picture_folder, tmp_path, reference, faults)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "when"), moments(24, seed=1))
def test_killed_training_resumes_to_the_same_weights_many_times(kind, when, picture_folder,
                                                                tmp_path, reference, faults):
    kill_and_resume(kind, when, picture_folder, tmp_path, reference, faults)
