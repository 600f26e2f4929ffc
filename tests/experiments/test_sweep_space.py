"""What a sweep varies, read from the command line; every bad value is one line before training."""

import pytest

from cnnlab.cli import main
from cnnlab.errors import UsageError
from cnnlab.experiments import Sweep
from cnnlab.experiments.sweep.space import parse_grid, parse_search, run_name


def test_grid_values_take_the_type_of_their_setting():
    assert parse_grid("lr=0.03,3").values == (0.03, 3.0)
    assert parse_grid("batch-size=64,128").values == (64, 128)
    assert parse_grid("tta_flip=on,off").values == (True, False)
    assert parse_grid("augment=none,flip").values == ("none", "flip")
    assert parse_grid("model.arch=((1,64),(2,128)),((1,32),)").values == (
        "((1,64),(2,128))", "((1,32),)")


def test_a_grid_value_can_combine_augmentations():
    assert parse_grid("augment=none,crop+flip").values == ("none", "crop+flip")
    assert parse_grid("augment=none,(crop,flip)").values == ("none", "crop+flip")
    assert parse_grid("augment=flip,(crop, flip, erase)").values == ("flip", "crop+flip+erase")
    sweep = Sweep.parse(["lenet"], ["augment=none,(crop,flip)"], settings={"epochs": 1})
    assert [sweep.config(point).augment for point in sweep.points()] == ["none", "crop+flip"]
    assert "augment=crop+flip" in run_name(sweep.points()[1])


def test_search_ranges_are_integer_or_float_by_setting():
    lr = parse_search("lr=1e-4..1:log")
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1.0, True, False)
    batch = parse_search("batch_size=32..256")
    assert batch.integer and not batch.log


def test_a_grid_point_is_a_model_spec_and_settings():
    sweep = Sweep.parse(["lenet", "lenet-modern"], ["model.norm=none,batch", "lr=0.1,1"],
                        settings={"epochs": 2})
    points = sweep.points()
    assert len(points) == 8 and points[0] == {"model": "lenet", "model.norm": "none", "lr": 0.1}
    config = sweep.config(points[3])
    assert (config.model, config.lr, config.epochs) == ("lenet:norm=batch", 1.0, 2)


def test_run_names_are_deterministic_and_distinct():
    a, b = {"model": "lenet:norm=batch", "lr": 0.3}, {"model": "lenet:norm=batch", "lr": 3.0}
    assert run_name(a) == run_name(dict(a)) != run_name(b)
    assert run_name(a).startswith("lenet_norm=batch-lr=0.3-")
    assert run_name(a, slot=1) != run_name(a, slot=2)


def test_the_same_definition_gives_the_same_name_whatever_the_threads():
    one = Sweep.parse(["lenet"], ["lr=0.1,1"], settings={"epochs": 1, "threads": 1})
    two = Sweep.parse(["lenet"], ["lr=0.1,1"], settings={"epochs": 1, "threads": 2})
    other = Sweep.parse(["lenet"], ["lr=0.1,2"], settings={"epochs": 1})
    assert one.default_name() == two.default_name() != other.default_name()
    assert Sweep.from_dict(one.to_dict()).identity() == one.identity()


@pytest.mark.parametrize(("argv", "expected"), [
    (["lenet", "--grid", "speed=1,2"], "unknown key 'speed'"),
    (["lenet", "--grid", "lr=0.1,fast"], "lr takes float values"),
    (["lenet", "--grid", "lr=-1,1"], "lr=-1.0 is not allowed"),
    (["lenet", "--grid", "model.norm=sometimes,batch"], "norm=sometimes is not allowed"),
    (["lenet", "--grid", "model=lenet,vgg11"], "list the model specs as arguments"),
    (["lenet", "--grid", "lr=0.1,0.1"], "listed twice"),
    (["lenet", "--grid", "augment=crop+flip,(flip,crop)"], "listed twice"),
    (["lenet", "--grid", "augment=none,crop+rotate"], "unknown augmentation rotate"),
    (["lenet", "--grid", "augment=none+flip,crop"], "augment='none+flip' is not allowed"),
    (["lenet", "--grid", "lr=0.1,1", "--lr", "0.5"], "both swept and set"),
    (["lenet", "--search", "lr=1..0.1", "--trials", "3"], "LOW must be below HIGH"),
    (["lenet", "--search", "lr=0..1:log", "--trials", "3"], "needs LOW > 0"),
    (["lenet", "--search", "augment=1..2", "--trials", "3"], "list its values with --grid"),
    (["lenet", "--search", "lr=0.1..1"], "--search needs --trials"),
    (["lenet"], "nothing to sweep"),
    ([], "at least one model spec"),
    (["--join", "x"], "needs --storage"),
    (["--join", "x", "--storage", "sqlite://", "--lr", "0.1"], "only device, threads"),
    (["--show", "/no/such/sweep"], "no sweep at /no/such/sweep"),
    (["lenet", "--grid", "lr=0.1,1", "--storage", "nosuchdb://x"], "cannot open --storage"),
])
def test_bad_sweeps_are_one_line_errors(argv, expected, capsys, tmp_path):
    assert main(["sweep", *argv, "--out", str(tmp_path / "s")]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize(("argv", "expected"), [
    (["/no/such/runs"], "no folder /no/such/runs"),
    (["compare", "/no/such/run"], "needs two or more run directories"),
    (["compare", "/no/run/a", "/no/run/b"], "no run at /no/run/a"),
    (["a", "b"], "takes one folder"),
])
def test_bad_runs_commands_are_one_line_errors(argv, expected, capsys):
    assert main(["runs", *argv]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
