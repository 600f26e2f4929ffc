"""Two `cnnlab sweep --join` workers in separate processes share one study in a real PostgreSQL
server: every trial is done exactly once and none is lost."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from experiment_helpers import cnnlab_process, finish

from cnnlab.experiments import Sweep
from cnnlab.experiments.sweep.storage import create_study, load_study

SERVERS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.fixture
def postgres_url():
    """A PostgreSQL server of its own, on a unix socket in a temporary folder, stopped after.

    PostgreSQL refuses to run as root; as root the server runs as the `postgres` user, in a
    folder under /tmp that user can reach (pytest's own folders are closed to other users).
    """
    if not SERVERS:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); "
                    "apt-get install postgresql")
    bin_dir = Path(SERVERS[-1]).parent
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
    if user:
        shutil.chown(folder, user)
    data, log = folder / "data", folder / "server.log"
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run([bin_dir / "initdb", "-D", data, "-U", "cnnlab", "--auth=trust", "-N"],
                   check=True, capture_output=True, user=user, env=env)
    options = f"-k {folder} -c listen_addresses='' -F"
    subprocess.run([bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start"],
                   check=True, capture_output=True, user=user, env=env)
    try:
        yield f"postgresql+psycopg2://cnnlab@/postgres?host={folder}"
    finally:
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, user=user, env=env)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_joined_workers_run_every_trial_once(postgres_url, tmp_path):
    sweep = Sweep.parse(["lenet-modern"], ["lr=0.05,0.1,0.2,0.4"],
                        settings={"epochs": 1, "subset": 256, "batch_size": 64, "device": "cpu"})
    create_study(sweep, tmp_path / "sweep", name="shared", storage=postgres_url)
    workers = [cnnlab_process("sweep", "--join", "shared", "--storage", postgres_url,
                              *runtime) for runtime in ([], ["--threads", "1"])]
    outputs = [finish(worker) for worker in workers]

    started = [line.split(" -> ")[0] for out in outputs for line in out.splitlines()
               if " -> " in line]
    assert sorted(started) == [f"trial {i}: lenet-modern lr={lr}"
                               for i, lr in enumerate(("0.05", "0.1", "0.2", "0.4"))]
    study, _ = load_study("shared", postgres_url)
    assert sorted((t.params["lr"], t.state.name) for t in study.get_trials()) == [
        (0.05, "COMPLETE"), (0.1, "COMPLETE"), (0.2, "COMPLETE"), (0.4, "COMPLETE")]
    assert len(list((tmp_path / "sweep").glob("*/result.json"))) == 4
    assert "4 of 4 trials finished" in outputs[0] and "4 of 4 trials finished" in outputs[1]
