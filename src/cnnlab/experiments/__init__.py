"""Experiments: sweeps and searches on Optuna, the learning-rate range test, runs side by side.

A sweep crosses model specs with grid values (or searches ranges) of any training setting or
model option; every trial is an ordinary run directory, and the study behind it can live in an
SQLite file in the sweep's folder or in any database several machines share.
"""

from cnnlab.experiments.listing import compare_runs, find_runs, list_runs
from cnnlab.experiments.lr_find import LRFinderResult, lr_find, lr_find_run
from cnnlab.experiments.sweep.definition import Sweep
from cnnlab.experiments.sweep.results import SweepResults, collect
from cnnlab.experiments.sweep.storage import open_sweep
from cnnlab.experiments.sweep.worker import join_sweep, run_sweep

__all__ = ["LRFinderResult", "Sweep", "SweepResults", "collect", "compare_runs", "find_runs",
           "join_sweep", "list_runs", "lr_find", "lr_find_run", "open_sweep", "run_sweep"]
