"""How a sweep reads its study's trials: which point each runs, which are retries or surplus.

A grid queues its points; a search's fresh trials are its sampled points, the first ``trials``
of them (by number, which the storage hands out atomically) being the ones the sweep needs.
Optuna retries a trial by adding a queued copy that names the original (``failed_trial``).
"""

from __future__ import annotations


def trial_point(trial) -> dict:
    """The parameters a trial runs: fixed when it was queued, else what it sampled so far."""
    return trial.system_attrs.get("fixed_params") or trial.params


def is_fresh(trial) -> bool:
    """A trial the sampler started (not queued, not a retry)."""
    return not ({"fixed_params", "failed_trial"} & set(trial.system_attrs))


def is_void(trial) -> bool:
    """A failed trial that never chose parameters (a surplus one, or one killed at its start)."""
    return trial.state.name == "FAIL" and not trial_point(trial)


def slot(trial) -> int:
    """The number of the trial a retry repeats (its own number when it is not a retry)."""
    return trial.system_attrs.get("failed_trial", trial.number)


def used_slots(trials, before: int | None = None) -> int:
    """Fresh, non-void trials (numbered below `before`): the search points already taken."""
    return sum(1 for t in trials if is_fresh(t) and not is_void(t)
               and (before is None or t.number < before))


def divergence(where: dict) -> str:
    """Where a trial diverged, in words: ``diverged at epoch 1, step 3 (lr 30)``."""
    step = f", step {where['step']}" if where.get("step") is not None else ""
    loss = f", training loss {where['loss']:.3g}" if where.get("loss") is not None else ""
    return f"diverged at epoch {where['epoch']}{step} (lr {where['lr']:g}{loss})"
