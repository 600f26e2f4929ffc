"""Every study's definition runs at the tiny budget and writes its folder; its conclusion follows
from what it recorded: the numbers each conclusion states are recomputed here from sweep.csv
(and, for what a sweep does not record, results.csv and curves.csv), independently of the
study's own code."""

import csv
import statistics

import pytest
from markupsafe import escape
from study_helpers import VIA_CLI

from cnnlab.experiments.studies import STUDIES, get_study
from cnnlab.experiments.studies.records import StudyResults

PNG = b"\x89PNG\r\n\x1a\n"


def _table(folder, name="sweep.csv"):
    with open(folder / name, newline="") as f:
        return list(csv.DictReader(f))


def _num(text):
    return None if text in ("", None) else float(text)


def _pct(value):
    return f"{value:.1%}"


def _points(value):
    return f"{100 * value:+.1f} points"


def _done(rows):
    return [r for r in rows if r["status"] == "completed"]


def _name(study, spec):
    return study.names.get(spec, spec)


def _pair(text, a, acc_a, b, acc_b):
    """The comparison of two variants measured once: not told apart, the difference between
    the higher and the lower (either order when they are equal)."""
    if acc_b > acc_a:
        a, acc_a, b, acc_b = b, acc_b, a, acc_a
    said = [f"{first} and {second} are not told apart at this budget: {first} - {second} "
            f"{_points(acc_a - acc_b)}, n=1" for first, second in ((a, b), (b, a))]
    assert said[0] in text or (acc_a == acc_b and said[1] in text), (said[0], text)


def check_bn_lr(study, folder, text):
    for spec in {r["model"] for r in _table(folder)}:
        learned = [_num(r["lr"]) for r in _done(_table(folder))
                   if r["model"] == spec and _num(r["test_acc"]) >= 0.2]
        expected = f"{max(learned):g} (" if learned else "none (no rate reached 20.0%)"
        assert f"{_name(study, spec)}: {expected}" in text


def check_ranked_accuracies(study, folder, text):
    rows = sorted(_done(_table(folder)), key=lambda r: -_num(r["test_acc"]))
    places = [text.index(f"{_name(study, r['model'])} {_pct(_num(r['test_acc']))}") for r in rows]
    assert places == sorted(places)


def check_bn_lite(study, folder, text):
    rows = _done(_table(folder))
    for spec in {r["model"] for r in rows}:
        acc = {r["model.norm_affine"]: _num(r["test_acc"]) for r in rows if r["model"] == spec}
        name = _name(study, spec)
        _pair(text, f"{name} fixed", acc["false"], f"{name} learned", acc["true"])


def check_bn_vs_dropout(study, folder, text):
    check_ranked_accuracies(study, folder, text)
    results = {r["model"]: r for r in _table(folder, "results.csv")}
    for spec, row in results.items():
        gap = _num(row["train_acc"]) - _num(row["test_acc"])
        assert f"{_name(study, spec)} {_points(gap)}, n=1" in text


def check_bn_batch_size(study, folder, text):
    for spec in {r["model"] for r in _table(folder)}:
        rows = [r for r in _done(_table(folder)) if r["model"] == spec]
        low = min(rows, key=lambda r: _num(r["test_acc"]))
        high = max(rows, key=lambda r: _num(r["test_acc"]))
        assert (f"{_name(study, spec)} {_pct(_num(low['test_acc']))}, n=1 (batch "
                f"{low['batch_size']}) to {_pct(_num(high['test_acc']))}, n=1 (batch "
                f"{high['batch_size']})") in text


def check_lenet_modern(study, folder, text):
    acc = {(r["model.activation"], r["model.pool"]): _num(r["test_acc"])
           for r in _done(_table(folder))}
    seed = "the seed's sigmoid with average pooling"
    for name, variant in (("ReLU with max pooling", ("relu", "max")),
                          ("ReLU alone (average pooling)", ("relu", "avg")),
                          ("max pooling alone (sigmoid)", ("sigmoid", "max"))):
        _pair(text, name, acc[variant], seed, acc["sigmoid", "avg"])


def check_label_smoothing(study, folder, text):
    rows = _done(_table(folder))
    if not rows:
        assert text == "No trial finished."
        return
    acc = {_num(r["label_smoothing"]): _num(r["test_acc"]) for r in rows}
    smoothed = max((s for s in acc if s > 0), key=acc.get, default=None)
    if smoothed is None or 0 not in acc:
        assert text.startswith("Only some trials finished")
    else:
        assert text.startswith("Label smoothing did not make a difference told apart")
        _pair(text, f"smoothing {smoothed:g}", acc[smoothed], "no smoothing", acc[0])
    for row in _done(_table(folder, "results.csv")):
        assert f"{_num(row['label_smoothing']):g}: {_num(row['test_loss']):.3f}, n=1" in text


def check_augmentation(study, folder, text):
    rows = _done(_table(folder))
    if not any(r["augment"] == "none" for r in rows):
        assert text.startswith("The trial without augmentation did not finish")
        return
    plain = next(_num(r["test_acc"]) for r in rows if r["augment"] == "none")
    for row in rows:
        if row["augment"] != "none":
            _pair(text, row["augment"], _num(row["test_acc"]), "none", plain)
    assert "Helped: none; hurt: none; not told apart from none: " in text


def check_batch_size(study, folder, text):
    rows = sorted(_table(folder, "results.csv"), key=lambda r: int(r["batch_size"]))
    for row in (rows[0], rows[-1]):
        assert f"{_num(row['bench_images_per_s']):,.0f}" in text
    accuracies = {int(r["batch_size"]): _num(r["test_acc"]) for r in _done(_table(folder))}
    for size, acc in accuracies.items():
        assert f"batch_size={size} {_pct(acc)}" in text


def check_alexnet_overfit(study, folder, text):
    results = _table(folder, "results.csv")
    epochs = _table(folder, "curves.csv")
    for row in _done(results):
        gap = _num(row["train_acc"]) - _num(row["test_acc"])
        widest = max(_num(e["train_acc"]) - _num(e["val_acc"]) for e in epochs
                     if e["trial"] == row["trial"])
        assert (f"with dropout {_num(row['model.dropout']):g} the training accuracy reached "
                f"{_pct(_num(row['train_acc']))}, n=1") in text.lower()
        assert f"a gap of {_points(gap)}, n=1: one seed: not a finding (widest " \
               f"{_points(widest).lstrip('+')}" in text


def check_vgg_resolution(study, folder, text):
    for row in _done(_table(folder)):
        assert f"{row['resize']} px {_pct(_num(row['test_acc']))}, n=1" in text


def check_nin(study, folder, text):
    rows = _done(_table(folder))
    check_ranked_accuracies(study, folder, text)
    for row in rows:
        assert f"{_pct(_num(row['test_acc']))}" in text and f"{int(row['parameters']):,}" in text


def check_densenet_memory(study, folder, text):
    rows = _table(folder, "results.csv")
    for size in {r["batch_size"] for r in rows}:
        plain, saving = (next(_num(r["bench_images_per_s"]) for r in rows
                              if r["batch_size"] == size and r["model"] == spec)
                         for spec in ("densenet", "densenet:memory_efficient=true"))
        assert f"batch {size}: " in text and f"speed {saving / plain:.2f}x" in text


def check_design_space(study, folder, text):
    spaces = {r["model"]: r["space"] for r in _table(folder, "results.csv")}
    errors = {}
    for row in _done(_table(folder)):
        errors.setdefault(spaces[row["model"]], []).append(1 - _num(row["test_acc"]))
    for space, found in errors.items():
        assert f"{space} {_pct(statistics.median(found))} (n={len(found)})" in text


CHECKS = {"bn-lr": check_bn_lr, "bn-placement": check_ranked_accuracies,
          "bn-lite": check_bn_lite, "bn-vs-dropout": check_bn_vs_dropout,
          "bn-batch-size": check_bn_batch_size, "lenet-modern": check_lenet_modern,
          "label-smoothing": check_label_smoothing, "augmentation": check_augmentation,
          "batch-size": check_batch_size, "alexnet-overfit": check_alexnet_overfit,
          "vgg-resolution": check_vgg_resolution, "nin-1x1": check_nin,
          "densenet-memory": check_densenet_memory, "design-space": check_design_space}


def test_every_study_has_a_check():
    assert set(CHECKS) == set(STUDIES)


@pytest.mark.parametrize("name", list(STUDIES))
def test_a_tiny_study_writes_its_folder_and_concludes_from_its_records(name, tiny_study):
    study, report = get_study(name), tiny_study(name)
    folder = report.folder
    files = ("report.html", "report.md", "results.csv", *(("curves.csv",) if study.trains else ()))
    for file in files:
        assert (folder / file).stat().st_size > 200, file
    assert report.page.figures
    for figure in report.page.figures:
        assert (folder / figure.file).read_bytes()[:8] == PNG, figure.file
    if study.trains:
        assert len(_table(folder)) == len(_table(folder, "results.csv"))

    again = StudyResults.read(folder, "tiny", report.results.keys, study.names)
    assert study.conclude(again) == report.conclusion
    assert report.conclusion in (folder / "report.md").read_text()
    assert str(escape(report.conclusion)) in (folder / "report.html").read_text()
    CHECKS[name](study, folder, report.conclusion)


def test_a_study_runs_from_the_command_line_with_workers_and_storage(tiny_study):
    report = tiny_study(VIA_CLI)
    printed = tiny_study.printed(VIA_CLI)
    assert "[worker 1]" in printed and "[worker 2]" in printed
    assert report.conclusion in printed and f"report: {report.html}" in printed
    assert "studies.db" in (report.folder / "sweep.json").read_text()


def test_running_a_study_again_trains_nothing(tiny_study, capsys):
    from cnnlab.experiments.studies import run_study

    first = tiny_study("bn-lr")
    capsys.readouterr()
    again = run_study(get_study("bn-lr"), "tiny", first.folder)
    assert " -> " not in capsys.readouterr().out
    assert again.conclusion == first.conclusion


def test_a_folder_holds_one_study(tiny_study):
    from cnnlab.errors import UsageError
    from cnnlab.experiments.studies import run_study

    with pytest.raises(UsageError, match="choose another --out"):
        run_study(get_study("bn-batch-size"), "tiny", tiny_study("bn-lr").folder)
