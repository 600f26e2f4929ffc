"""A sweep repeated over seeds is summarised per variant: sweep.csv keeps every trial and adds the
variant's mean, 95% t interval and n; the table, the notebook display and the figure show one
entry per variant; the largest stable learning rate is given per seed. One seed changes nothing.
Built from made-up rows, so nothing trains."""

import csv

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from scipy import stats

from cnnlab.experiments import Sweep, SweepResults

# (model, lr, seed) -> (val_acc, test_acc, status); lenet's lr 1 diverges on seed 1 only
TRIALS = {
    ("lenet", 0.3, 0): (0.81, 0.80, "completed"), ("lenet", 0.3, 1): (0.84, 0.82, "completed"),
    ("lenet", 0.3, 2): (0.86, 0.85, "completed"), ("lenet", 1.0, 0): (0.70, 0.69, "completed"),
    ("lenet", 1.0, 1): (0.10, 0.10, "diverged"), ("lenet", 1.0, 2): (0.76, 0.74, "completed"),
    ("alexnet", 0.3, 0): (0.88, 0.87, "completed"), ("alexnet", 0.3, 1): (0.89, 0.87, "completed"),
    ("alexnet", 0.3, 2): (0.91, 0.90, "completed"), ("alexnet", 1.0, 0): (None, None, "diverged"),
    ("alexnet", 1.0, 1): (0.10, 0.10, "diverged"), ("alexnet", 1.0, 2): (0.10, 0.10, "diverged"),
}


def _results(sweep: Sweep, trials=None, folder=None) -> SweepResults:
    rows = []
    for i, point in enumerate(sweep.points()):
        key = (point["model"], point.get("lr"), point.get("seed", 0))
        val, test, status = (trials or TRIALS).get(key, (0.8, 0.79, "completed"))
        rows.append({"trial": i, **point, "val_acc": val, "test_acc": test, "best_epoch": 2,
                     "status": status, "note": "epoch 1" if status == "diverged" else "",
                     "seconds_per_epoch": 1.5, "parameters": 61_706, "run": None})
    return SweepResults("s", sweep, rows, [[0.5, r["val_acc"] or 0.1] for r in rows], folder)


def _seeded(**kwargs) -> SweepResults:
    return _results(Sweep.parse(["lenet", "alexnet"], ["lr=0.3,1"], seeds="3"), **kwargs)


def _t_interval(values):
    """The 95% Student t interval of the mean, straight from scipy."""
    sample = np.asarray(values)
    return stats.t.interval(0.95, len(sample) - 1, loc=sample.mean(), scale=stats.sem(sample))


def _percent_cell(values):
    """The table's cell: the mean and its t interval, cut to [0, 100%] as an accuracy is."""
    low, high = (min(max(bound, 0.0), 1.0) for bound in _t_interval(values))
    return f"{np.mean(values):.1%} [{100 * low:.1f}, {100 * high:.1f}]"


def test_sweep_csv_keeps_every_seed_and_adds_the_variant_interval(tmp_path):
    results = _seeded(folder=tmp_path).write()
    with open(results.csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and [r["seed"] for r in rows[:3]] == ["0", "1", "2"]
    for column in ("val_acc", "test_acc"):
        assert {f"{column}_mean", f"{column}_low", f"{column}_high", f"{column}_n"} <= set(rows[0])
    for model, lr in (("lenet", 0.3), ("lenet", 1.0), ("alexnet", 0.3)):
        members = [r for r in rows if r["model"] == model and float(r["lr"]) == lr]
        for column, at in (("val_acc", 0), ("test_acc", 1)):
            counted = [TRIALS[(model, lr, s)][at] for s in range(3)
                       if TRIALS[(model, lr, s)][2] == "completed"]
            low, high = _t_interval(counted)
            for row in members:  # the diverged trial carries its variant's values too
                assert int(row[f"{column}_n"]) == len(counted)
                assert float(row[f"{column}_mean"]) == pytest.approx(np.mean(counted))
                assert float(row[f"{column}_low"]) == pytest.approx(low)
                assert float(row[f"{column}_high"]) == pytest.approx(high)
    assert [float(r["val_acc"]) for r in rows if r["model"] == "lenet"][3:] == [0.7, 0.1, 0.76]
    nothing = [r for r in rows if r["model"] == "alexnet" and r["lr"] == "1.0"]
    assert all(r["val_acc_n"] == "0" and r["val_acc_mean"] == r["val_acc_low"] == ""
               for r in nothing)
    assert results.figure_path.stat().st_size > 10_000


def test_one_seed_counted_gives_a_mean_without_bounds():
    trials = {**TRIALS, ("lenet", 1.0, 0): (0.7, 0.69, "diverged")}
    rows = [r for r in _seeded(trials=trials).csv_rows() if r["model"] == "lenet"
            and r["lr"] == 1.0]
    assert all(r["val_acc_mean"] == 0.76 and r["val_acc_low"] is None and r["val_acc_n"] == 1
               for r in rows)


def test_the_table_shows_one_row_per_variant_and_names_the_method():
    text = _seeded().report()
    assert "4 variants over seeds 0, 1, 2" in text and "12 of 12 trials finished" in text
    lines = text.splitlines()
    header = next(line for line in lines if "val acc" in line)
    assert "trial" not in header and header.split()[-4:] == ["n", "not", "counted",
                                                             "parameters"]
    lenet_one = next(line for line in lines if line.split()[:2] == ["lenet", "1"])
    assert _percent_cell([0.70, 0.76]) in lenet_one and _percent_cell([0.69, 0.74]) in lenet_one
    assert lenet_one.split()[-4:] == ["2", "1", "diverged", "61,706"]
    alexnet = next(line for line in lines if line.split()[:2] == ["alexnet", "0.3"])
    assert _percent_cell([0.88, 0.89, 0.91]) in alexnet and _percent_cell([0.87, 0.87, 0.90]) \
        in alexnet
    assert next(line for line in lines if line.split()[:2] == ["alexnet", "1"]).split()[-4:] == [
        "0", "3", "diverged", "61,706"]
    assert "95% Student t interval" in text and "every trial is a row of sweep.csv" in text


def test_the_largest_stable_lr_is_given_per_seed_then_summarised():
    found = {line.group: str(line) for line in _seeded().stable_lrs()}
    assert found == {
        "lenet": "lenet: 1 on seeds 0, 2; 0.3 on seed 1 (diverged from 1 on seed 1; none "
                 "diverged on seeds 0, 2)",
        "alexnet": "alexnet: 0.3 on all 3 seeds (diverged from 1 on 3 of 3)"}
    lenet = _seeded().stable_lrs()[0]
    assert (lenet.stable, lenet.diverged) == (0.3, 1.0)
    assert lenet.by_seed == ((0, 1.0, None), (1, 0.3, 1.0), (2, 1.0, None))
    same = {key: (0.8, 0.8, "completed") for key in TRIALS}
    assert [str(line) for line in _seeded(trials=same).stable_lrs()] == [
        "lenet: 1 on all 3 seeds (none diverged)", "alexnet: 1 on all 3 seeds (none diverged)"]
    broken = {key: (None, None, "diverged") for key in TRIALS}
    assert str(_seeded(trials=broken).stable_lrs()[0]) == (
        "lenet: diverged at every lr tried on all 3 seeds (diverged from 0.3 on 3 of 3)")
    assert "alexnet: 0.3 on all 3 seeds" in _seeded().report()


def test_the_notebook_display_shows_the_variant_table():
    html = _seeded()._repr_html_()
    assert _percent_cell([0.88, 0.89, 0.91]) in html
    assert "95% Student t interval" in html and "0.3 on all 3 seeds" in html
    assert ">trial<" not in html


def test_the_figure_draws_each_variant_mean_with_its_interval():
    results = _seeded()
    figure = results.plot()
    metric, curves = figure.axes  # no panel for the seed axis
    assert metric.get_xlabel().startswith("lr") and curves.get_title() == "every trial"
    bars = [c for c in metric.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == ["lenet", "alexnet"]
    means = bars[0].lines[0].get_ydata()
    assert list(means) == pytest.approx([np.mean([0.81, 0.84, 0.86]), np.mean([0.70, 0.76])])
    lows = bars[0].lines[2][0].get_segments()[0][:, 1]  # the first variant's bar, low to high
    assert sorted(lows) == pytest.approx(sorted(_t_interval([0.81, 0.84, 0.86])))


@pytest.mark.parametrize("seeds", [None, "1"])
def test_one_seed_sweeps_are_unchanged(seeds, tmp_path):
    results = _results(Sweep.parse(["lenet", "alexnet"], ["lr=0.3,1"], seeds=seeds),
                       folder=tmp_path).write()
    assert not results.repeated and results.csv_rows() == results.rows
    with open(results.csv_path, newline="") as f:
        assert next(csv.reader(f)) == list(results.rows[0])
    text = results.report()
    assert text.splitlines()[2].split()[:3] == ["trial", "model", "lr"]
    assert "Student t" not in text and "variants" not in text
    assert "lenet: 1 (none diverged)" in text or "lenet seed=0: 1 (none diverged)" in text
    assert not [c for c in results.plot().axes[0].containers
                if isinstance(c, ErrorbarContainer)]
    assert results.method() is None
