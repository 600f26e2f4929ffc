"""A sweep in the Optuna dashboard: every trial records its spec, run directory, seed, status,
seconds and accuracies as user attributes and its validation accuracy per epoch as
intermediate values; `cnnlab sweep --dashboard NAME` serves the study on 127.0.0.1, and the
study's page and its trial list, rendered by headless Chromium, show every trial with its
accuracies."""

import html
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from experiment_helpers import SUBPROCESS_ENV

from cnnlab.cli import main
from cnnlab.experiments import Sweep, run_sweep
from cnnlab.experiments.sweep.storage import open_storage, sqlite_url
from cnnlab.train.rundir import RunDir

NAME = "dash"
SETTINGS = {"epochs": 2, "subset": 256, "batch_size": 64, "device": "cpu", "threads": 1,
            "seed": 3}


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """Two trials of lenet-modern, 2 epochs on 256 images each, in ROOT/runs/dash; (ROOT, its
    study)."""
    import optuna

    root = tmp_path_factory.mktemp("dashboard")
    sweep = Sweep.parse(["lenet-modern"], ["lr=0.05,0.3"], settings=SETTINGS)
    run_sweep(sweep, root / "runs" / NAME, name=NAME, progress=False)
    url = sqlite_url(root / "runs" / NAME)
    return root, optuna.load_study(study_name=NAME, storage=open_storage(url))


def test_every_trial_records_what_the_dashboard_shows(small_sweep):
    _, study = small_sweep
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        attrs = trial.user_attrs
        run = Path(attrs["run_dir"])
        history = RunDir(run).read_history()
        assert run.name == attrs["run"] and run.parent.name == NAME
        assert (attrs["spec"], attrs["seed"], attrs["status"]) == ("lenet-modern", 3, "completed")
        assert attrs["test_acc"] == RunDir(run).read_result()["test_acc"]
        assert attrs["seconds"] == pytest.approx(sum(row["seconds"] for row in history))
        assert trial.intermediate_values == {row["epoch"]: row["val_acc"] for row in history}
        assert trial.value == attrs["val_acc"] == history[-1]["val_acc"]


def test_a_trial_that_reads_a_finished_run_reports_its_epochs(small_sweep, tmp_path):
    """A second study over the same folder finds every run finished: it trains nothing, and
    still records each epoch's validation accuracy."""
    root, study = small_sweep
    again = Sweep.parse(["lenet-modern"], ["lr=0.05,0.3"], settings=SETTINGS)
    out = root / "runs" / NAME
    record = (out / "sweep.json").read_text()
    try:
        done = run_sweep(again, out, name="again", storage=sqlite_url(tmp_path), progress=False)
    finally:
        (out / "sweep.json").write_text(record)  # the folder's own study again
    import optuna

    reread = optuna.load_study(study_name="again", storage=open_storage(sqlite_url(tmp_path)))
    assert [t.intermediate_values for t in reread.get_trials()] == \
        [t.intermediate_values for t in study.get_trials()]
    assert [row["run"] for row in done.rows] == [t.user_attrs["run"] for t in study.get_trials()]


def test_the_dashboard_without_its_extra_names_the_install(small_sweep, monkeypatch, capsys):
    root, _ = small_sweep
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as if missing
    assert main(["sweep", "--dashboard", str(root / "runs" / NAME)]) == 2
    error = capsys.readouterr().err
    assert "pip install 'cnnlab[dashboard]'" in error and len(error.splitlines()) == 1


def test_the_dashboard_of_no_sweep_is_refused(tmp_path, monkeypatch, capsys):
    pytest.importorskip("optuna_dashboard")
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--dashboard", "nothing"]) == 2
    assert "no sweep there" in capsys.readouterr().err
    assert main(["sweep", "--dashboard", "nothing", "--storage", sqlite_url(tmp_path)]) == 2
    assert "no sweep 'nothing' in sqlite:///" in capsys.readouterr().err
    assert main(["sweep", "lenet", "--port", "8081"]) == 2
    assert main(["sweep", "--dashboard", NAME, "--show", "x"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_served(process: subprocess.Popen, url: str, seconds: float = 60) -> str:
    """The line the command printed first (the study's address), once `url` answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard stopped: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return process.stdout.readline()  # printed before the server started
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the dashboard did not answer at {url} in {seconds} s")


def _page_text(chromium: str, url: str, tmp_path: Path, screenshot: str) -> str:
    """The text of the page at `url` once its scripts have rendered it, and a screenshot of it
    (tmp_path/`screenshot`)."""
    browse = [chromium, "--headless", "--disable-gpu", "--no-sandbox",
              "--virtual-time-budget=20000",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
              "--window-size=1400,900", f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run([*browse, "--dump-dom", url], capture_output=True, text=True,
                          timeout=120)
    subprocess.run([*browse, f"--screenshot={tmp_path / screenshot}", url],
                   capture_output=True, timeout=120)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", done.stdout, flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    assert text, done.stderr[-2000:]
    return text


def test_the_dashboard_shows_every_trial_and_its_accuracies(small_sweep, chromium, tmp_path):
    """The study's page shows the best trial, its accuracy and the per-epoch curves; its trial
    list, with every trial selected, shows each trial's accuracy, its accuracy after each epoch
    and what the sweep recorded (test accuracy, run directory, spec, seed)."""
    root, study = small_sweep
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "sweep", "--dashboard", NAME, "--port", str(port)],
        cwd=root, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    trials = study.get_trials()
    try:
        printed = _wait_until_served(process, f"http://127.0.0.1:{port}/api/studies")
        address = re.search(r"http://127\.0\.0\.1:\d+/dashboard/studies/\d+", printed)
        assert address, printed
        page = _page_text(chromium, address.group(0), tmp_path, "study.png")
        numbers = ",".join(str(t.number) for t in trials)
        listed = _page_text(chromium, f"{address.group(0)}/trials?numbers={numbers}", tmp_path,
                            "trials.png")
    finally:
        process.terminate()
        process.wait(timeout=30)
    best = study.best_trial
    assert f"Best Trial (number={best.number}) {best.value!r}" in page, page[:3000]
    assert "Intermediate values" in page and f"{len(trials)} Trials" in listed, listed[:3000]
    for trial in trials:
        attrs = trial.user_attrs
        epochs = " ".join(f"{step} {value!r}" for step, value in
                          sorted(trial.intermediate_values.items()))
        shown = [f"Trial {trial.number} (trial_id=", f"Value {trial.value!r}",
                 f"Intermediate Values {epochs}", f"test_acc {attrs['test_acc']!r}",
                 f"run {attrs['run']}", f"spec {attrs['spec']}", f"seed {attrs['seed']}",
                 f"status {attrs['status']}"]
        assert [item for item in shown if item not in listed] == [], listed[:3000]
    assert all((tmp_path / name).stat().st_size > 10_000 for name in ("study.png", "trials.png"))
