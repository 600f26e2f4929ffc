"""The study's storage hands each queued trial to exactly one worker, and a worker whose trial
was given to another (its heartbeats late) carries on without training anything twice."""

import subprocess
import sys
from collections import Counter

from experiment_helpers import SUBPROCESS_ENV

from cnnlab.experiments import Sweep
from cnnlab.experiments.sweep import worker as engine
from cnnlab.experiments.sweep.storage import _retry_callback, create_study, open_storage, sqlite_url
from cnnlab.experiments.sweep.worker import Worker

CLAIMER = """
import sys
import optuna
from cnnlab.experiments.sweep.storage import open_storage
study = optuna.load_study(study_name="claims", storage=open_storage(sys.argv[1]))
while any(t.state.name == "WAITING" for t in study.get_trials(deepcopy=False)):
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
"""


def test_sqlite_gives_each_queued_trial_to_one_of_three_processes(tmp_path):
    import optuna

    url = sqlite_url(tmp_path)
    study = optuna.create_study(study_name="claims", storage=open_storage(url))
    queued = [i / 64 for i in range(64)]
    for x in queued:
        study.enqueue_trial({"x": x})
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, url], env=SUBPROCESS_ENV,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [process.communicate(timeout=240)[1] for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    done = Counter(t.params["x"] for t in study.get_trials() if t.state.name == "COMPLETE")
    assert all(done[x] == 1 for x in queued)  # none twice (a racing fresh trial may add one)


def test_a_trial_retried_behind_its_live_worker_is_trained_once(tmp_path, monkeypatch):
    from optuna.trial import TrialState

    sweep = Sweep.parse(["lenet-modern"], ["lr=0.1"], settings={
        "epochs": 1, "subset": 128, "batch_size": 64, "val_fraction": 0.01, "device": "cpu"})
    study, out = create_study(sweep, tmp_path / "sweep")
    calls, real = [], engine.train_trial

    def train_while_declared_dead(*args):
        outcome = real(*args)
        calls.append((args[3] / "last.pt").stat().st_mtime_ns)
        if len(calls) == 1:  # meanwhile another worker found this one's heartbeats late
            trial = study.get_trials()[0]
            study.tell(trial.number, state=TrialState.FAIL)
            _retry_callback()(study, study.get_trials()[0])
        return outcome

    monkeypatch.setattr(engine, "train_trial", train_while_declared_dead)
    Worker(study, sweep, out, progress=False).run()
    assert [(t.number, t.state.name) for t in study.get_trials()] == [(0, "FAIL"), (1, "COMPLETE")]
    assert study.get_trials()[1].user_attrs["status"] == "completed"
    assert len(calls) == 2 and calls[0] == calls[1]  # the retry read the run, trained nothing
