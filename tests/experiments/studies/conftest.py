"""Fixtures of the study tests: each study and the chapter report run once at the tiny budget
(one thread), shared by the tests that read their folders (headless Chromium for the pages is
tests/experiments/conftest.py's `chromium`)."""

import os

import pytest
import torch
from study_helpers import VIA_CLI


def _one_thread(run):
    """Run with one thread: trainers read OMP_NUM_THREADS (so do the processes they start)."""
    threads, before = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return run()
    finally:
        torch.set_num_threads(threads)
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """`tiny_study(name)`: the StudyReport of `name` at the tiny budget (run on first use)."""
    from experiment_helpers import cnnlab_process, finish

    from cnnlab.experiments.studies import get_study, run_study
    from cnnlab.experiments.studies.runner import StudyReport

    done = {}

    def run(name: str) -> StudyReport:
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            if name == VIA_CLI:
                storage = f"sqlite:///{tmp_path_factory.mktemp('storage') / 'studies.db'}"
                printed = finish(cnnlab_process("study", "run", name, "--budget", "tiny",
                                                "--out", out, "--workers", "2",
                                                "--storage", storage))
                done[name] = (_one_thread(lambda: run_study(get_study(name), "tiny", out,
                                                            storage=storage, progress=False)),
                              printed)
            else:
                done[name] = (_one_thread(lambda: run_study(get_study(name), "tiny", out,
                                                            progress=False)), None)
        return done[name][0]

    run.printed = lambda name: done[name][1]
    return run


@pytest.fixture(scope="session")
def tiny_chapter_report(tmp_path_factory):
    """The chapter report at the tiny budget for two models."""
    from cnnlab.experiments.studies.chapter import chapter_report

    out = tmp_path_factory.mktemp("chapter")
    return _one_thread(lambda: chapter_report("tiny", ["lenet", "lenet-bn"], out,
                                              progress=False))
