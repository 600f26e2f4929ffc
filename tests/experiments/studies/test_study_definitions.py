"""The study definitions without training: every budget's trials build, the tiny budget shrinks
the quick one, deviations are stated against the chapter's setting, the design spaces keep their
constraints, and the command line lists and refuses as it should."""

import pytest

from cnnlab.cli import main
from cnnlab.errors import UsageError
from cnnlab.experiments.studies import BUDGETS, STUDIES, get_study
from cnnlab.experiments.studies.definition import Setup, Study, deviations
from cnnlab.models.build import build_for_input

REQUIRED = {"bn-lr", "bn-placement", "bn-lite", "bn-vs-dropout", "bn-batch-size",
            "lenet-modern", "label-smoothing", "augmentation", "alexnet-overfit",
            "vgg-resolution", "nin-1x1", "densenet-memory", "batch-size", "design-space"}


def test_the_exercises_are_all_studies():
    assert set(STUDIES) >= REQUIRED


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_budget_builds_every_trial_and_states_its_deviations(name):
    study = get_study(name)
    chapter = study.plan("full")
    assert deviations(chapter, chapter) == []
    for budget in BUDGETS:
        plan = study.plan(budget)
        if plan.trains:
            sweep = plan.sweep()
            sweep.check()  # every trial's configuration: a bad value is an error
            points = sweep.points()
            for point in points[::max(1, len(points) // 10)]:  # models: ten across the plan
                config = sweep.config(point)
                build_for_input(config.model, config.resize, device="meta")
        for spec in plan.specs if plan.measure else ():
            build_for_input(spec, plan.measure.side, device="meta")
        if budget != "full":
            assert deviations(plan, chapter), f"{name} {budget} states no deviation"


def test_tiny_keeps_the_ends_of_every_axis_and_shrinks_the_data():
    study = Study("example", "?", conclude=str, specs=("lenet", "lenet-modern", "lenet-bn"),
                  grid={"lr": (0.01, 0.1, 1.0)},
                  budgets={"quick": Setup({"epochs": 3, "batch_size": 256}), "full": Setup()})
    tiny = study.plan("tiny")
    assert tiny.specs == ("lenet", "lenet-bn") and tiny.grid == {"lr": (0.01, 1.0)}
    assert tiny.settings == {"epochs": 1, "batch_size": 64, "subset": 256}
    assert "256 training images instead of the whole training set" in deviations(
        tiny, study.plan("full"))


def test_study_list_names_every_study(capsys):
    assert main(["study", "list"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in STUDIES)


def _budget_lines(printed: str, study: str) -> dict[str, str]:
    """The lines `study list` prints under `study`: budget -> what it runs."""
    lines = [line.split() for line in printed.splitlines()]
    start = next(i for i, words in enumerate(lines) if words[:1] == [f"{study}:"])
    found = {}
    for words in lines[start + 1:]:
        if not words:
            break
        if words[0] in BUDGETS:
            found[words[0]] = " ".join(words[1:])
    return found


def test_study_list_says_per_budget_the_models_input_images_epochs_and_seeds(capsys):
    assert main(["study", "list"]) == 0
    printed = capsys.readouterr().out
    assert _budget_lines(printed, "label-smoothing") == {
        "quick": "compact-resnet-s at 28 px, 60,000 images, 3 epochs, 3 seeds (12 trials)",
        "full": "googlenet at 96 px, 60,000 images, 10 epochs, 1 seed (4 trials)"}
    assert _budget_lines(printed, "augmentation")["quick"] == (
        "compact-resnet-s at 28 px, 20,000 images, 4 epochs, 3 seeds (18 trials)")
    assert _budget_lines(printed, "vgg-resolution")["quick"].startswith(
        "vgg-small at 56, 84, 112 px, 7,500 images, 2 epochs, 3 seeds")
    assert _budget_lines(printed, "densenet-memory")["quick"].endswith(
        "times training steps at batch sizes 16, 32, 64")
    for name in STUDIES:  # every study: one line for each budget it is run at
        assert set(_budget_lines(printed, name)) == {"quick", "full"}, name


@pytest.mark.parametrize("argv, message", [
    (["study", "run", "bn-everything"], "unknown study 'bn-everything'; known: bn-lr"),
    (["study", "run", "bn-lr", "--budget", "huge"], "invalid choice: 'huge'"),
    (["report", "--models", "lenet", "lenet"], "lists a model twice"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_get_study_names_the_known_ones():
    with pytest.raises(UsageError, match="cnnlab study list"):
        get_study("nope")
