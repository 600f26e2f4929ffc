"""Argument fuzzing: any argument list for any command ends with exit 0, 2 or 3 and no
traceback, and exit 2 always prints one line. Training and benchmark runs are replaced by a
stand-in that checks what it was given, so each example costs milliseconds."""

import argparse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.cli import build_parser, main
from cnnlab.models import list_models

WORDS = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "1", "2", "3", "nan", "inf", "-inf", "1e999", "0.5",
                     "none", "true", "auto", "x", "1x28x28", "28", "1x1x28x28", "0x3", "99999999",
                     "-99999999", "3,4", "((1,64),)", "lenet:pool=max", "a=b", ":", ",", "--"]),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
SPECS = st.one_of(st.sampled_from(list_models()),
                  st.builds(lambda m, k, v: f"{m}:{k}={v}", st.sampled_from(list_models()),
                            st.sampled_from(["norm", "pool", "dropout", "arch", "config",
                                             "num_1x1", "growth_rate", "init", "depth"]), WORDS),
                  WORDS)


def commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[0] for a in parser._actions
            if a.option_strings and a.option_strings[0] not in ("-h", "--help", "--nproc")]


@st.composite
def argument_lists(draw):
    name, parser = draw(st.sampled_from(sorted(commands().items())))
    argv = [name]
    positionals = [a for a in parser._actions if not a.option_strings]
    for action in positionals:
        if action.dest in ("model", "models"):
            argv.append(draw(SPECS))
        elif draw(st.booleans()):
            argv.append(draw(WORDS))
    flags = options(parser)
    for flag in draw(st.lists(st.sampled_from(flags), max_size=4)) if flags else []:
        argv.append(flag)
        if draw(st.booleans()):
            argv.append(draw(WORDS))
    return argv


class ReachedTheWork(Exception):
    """Raised by a stand-in: the arguments were accepted and the real work would start."""


@pytest.fixture
def stand_ins(monkeypatch, tmp_path, picture_folder):
    """Training, sweeps (a study's and the chapter report's too), lr-find, exports and
    benchmarks replaced by stand-ins that raise ReachedTheWork once their arguments are
    checked."""
    import cnnlab.analysis.bench as bench
    import cnnlab.experiments as experiments
    import cnnlab.experiments.studies.runner as study_runner
    import cnnlab.export as export
    import cnnlab.train.trainer as trainer

    def fit(self, model, data, out=None, resume=False):
        self.resolved(model, data)  # the whole configuration is checked
        raise ReachedTheWork

    def reached(*args, **kwargs):
        raise ReachedTheWork

    monkeypatch.setattr(trainer.Trainer, "fit", fit)
    for module, name in ((bench, "bench"), (bench, "training_step_options"),
                         (experiments, "run_sweep"),
                         (experiments, "join_sweep"), (experiments, "lr_find_run"),
                         (study_runner, "run_sweep"), (study_runner, "measure_plan"),
                         (export, "export_run")):
        monkeypatch.setattr(module, name, reached)
    monkeypatch.chdir(tmp_path)
    return picture_folder


def outcome(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except ReachedTheWork:
        code = 0
    return code, capsys.readouterr().err


def check(argv, capsys, faults) -> None:
    faults.tried()
    try:
        code, err = outcome(argv, capsys)
    except Exception:
        faults.check_output("Traceback (most recent call last)", 1)
        raise
    if code not in (0, 2, 3):
        faults.check_output(err, code)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("cnnlab: error: "), (argv, err)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_lists())
def test_any_arguments_exit_0_2_or_3_without_a_traceback(argv, stand_ins, capsys, faults):
    if argv[0] == "train" and "--data" not in argv and "--resume" not in argv:
        argv = [*argv, "--data", str(stand_ins)]  # no Fashion-MNIST load per example
    check(argv, capsys, faults)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_lists())
def test_any_arguments_many_times(argv, stand_ins, capsys, faults):
    if argv[0] == "train" and "--data" not in argv and "--resume" not in argv:
        argv = [*argv, "--data", str(stand_ins)]
    check(argv, capsys, faults)
