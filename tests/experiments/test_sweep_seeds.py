"""Repeats: ``--seeds`` adds a seed axis to a grid; a sweep run again with more seeds is the same
sweep and continues with the new repeats; a study's budget repeats its trials the same way."""

import optuna
import pytest

from cnnlab.errors import UsageError
from cnnlab.experiments import Sweep
from cnnlab.experiments.studies import get_study
from cnnlab.experiments.studies.chapter import chapter_study
from cnnlab.experiments.studies.definition import deviations
from cnnlab.experiments.sweep.space import parse_seeds
from cnnlab.experiments.sweep.storage import create_study


def test_seeds_are_a_count_or_a_list():
    assert parse_seeds("3") == (0, 1, 2)
    assert parse_seeds("4,0,7") == (4, 0, 7)
    assert parse_seeds("5,") == (5,)  # one seed other than 0
    for bad in ("0", "-1", "a", "1,1", "1,-2", ",", "101"):
        with pytest.raises(UsageError, match="--seeds"):
            parse_seeds(bad)


def test_each_point_is_repeated_with_every_seed():
    sweep = Sweep.parse(["lenet"], ["lr=0.1,1"], seeds="2")
    assert [(p["lr"], p["seed"]) for p in sweep.points()] == [(0.1, 0), (0.1, 1), (1.0, 0),
                                                              (1.0, 1)]
    assert sweep.seeds == (0, 1) and sweep.config(sweep.points()[1]).seed == 1
    with pytest.raises(UsageError, match="both swept and set"):
        Sweep.parse(["lenet"], ["lr=0.1,1"], settings={"seed": 3}, seeds="2")
    with pytest.raises(UsageError, match="--seeds repeats the points of a grid"):
        Sweep.parse(["lenet"], search=["lr=0.01..1"], trials=3, seeds="2")


def test_more_seeds_continue_the_same_sweep(tmp_path):
    three, five = (Sweep.parse(["lenet"], ["lr=0.1,1"], seeds=n) for n in ("3", "5"))
    assert three.default_name() == five.default_name()
    assert three.identity() == five.identity() != Sweep.parse(["lenet"], ["lr=0.1,1"]).identity()
    study, _ = create_study(three, tmp_path, "s")
    assert len(study.get_trials(states=[optuna.trial.TrialState.WAITING])) == 6
    study, _ = create_study(five, tmp_path, "s")
    assert Sweep.from_dict(study.user_attrs["sweep"]).seeds == (0, 1, 2, 3, 4)
    assert len(study.get_trials(states=[optuna.trial.TrialState.WAITING])) == 10


def test_a_study_repeats_its_trials_with_the_seeds_asked_for():
    study = get_study("bn-placement")
    plan = study.plan("quick", seeds=(0, 1, 2))
    sweep = plan.sweep()
    assert sweep.seeds == (0, 1, 2) and len(sweep.points()) == 3 * len(plan.specs)
    assert "3 seeds (0, 1, 2) instead of 1 seed (0)" in deviations(plan, study.plan("full"))


def test_the_chapter_report_gives_each_model_its_own_settings():
    plan = chapter_study(["lenet", "alexnet"]).plan("quick")
    lenet, alexnet = plan.config("lenet"), plan.config("alexnet")
    assert (lenet.subset, alexnet.subset, alexnet.resize) == (None, 20_000, 68)
    assert plan.sweep().config({"model": "alexnet", "seed": 0}) == alexnet
    found = deviations(plan, chapter_study(["lenet", "alexnet"]).plan("full"))
    assert any(line.startswith("alexnet: 68 px input instead of") for line in found)
    assert not any(line.startswith("lenet:") for line in found)
    with pytest.raises(UsageError, match="lists a model twice"):
        chapter_study(["lenet", "lenet"])
