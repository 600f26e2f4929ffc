"""`cnnlab report`: each model trained with its budget's settings, one row each in one table,
the curves, and the confusion matrix of the best model; every chapter model has a quick and a
full setting; a report folder is continued, never reused with other settings."""

import csv
import re

import pytest
from spec_facts import SPEC_TABLE

from cnnlab.errors import UsageError
from cnnlab.experiments.studies.chapter import (
    CHAPTER_MODELS,
    chapter_report,
    conclude,
    model_config,
)
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.models.build import build_for_input
from cnnlab.train.config import resolve_config

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(folder):
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_each_model_is_one_row_with_its_figures(tiny_chapter_report):
    folder = tiny_chapter_report.folder
    rows = _rows(folder)
    assert [r["model"] for r in rows] == ["lenet", "lenet-bn"]
    for row in rows:
        side, params, mflops, _ = SPEC_TABLE[row["model"]]
        assert (int(row["input"]), int(row["parameters"])) == (side, params)
        assert round(float(row["mflops"]), 1) == mflops
        assert (row["epochs"], row["train_images"], row["status"]) == ("1", "256", "completed")
        assert 0 < float(row["test_acc"]) < 1 and float(row["images_per_s"]) > 0
    assert "73.8%" in rows[0]["reference"] and "84.9%" in rows[1]["reference"]
    markdown = (folder / "report.md").read_text()
    assert markdown.count("| lenet |") == 1 and markdown.count("| lenet-bn |") == 1
    assert "lenet: 256 training images instead of the whole training set" in markdown
    for png in ("curves.png", "confusion.png"):
        assert (folder / png).read_bytes()[:8] == PNG


def test_the_conclusion_and_the_confusion_matrix_are_the_best_models(tiny_chapter_report):
    from cnnlab.train.device import resolve_device
    from cnnlab.train.evaluation import test_confusion

    folder = tiny_chapter_report.folder
    best = max(_rows(folder), key=lambda r: float(r["test_acc"]))
    assert tiny_chapter_report.conclusion.startswith(
        f"Best test accuracy (tiny budget): {best['model']} {float(best['test_acc']):.1%} (the 2 "
        "models trained for 1 epoch on 256 images)")
    confusion, _, _ = test_confusion(folder / best["run"], resolve_device("cpu"))
    assert float(confusion.diag().sum() / confusion.sum()) == pytest.approx(
        float(best["test_acc"]), abs=1e-6)  # the result records a float32 accuracy
    assert f"the best model, {best['model']}" in (folder / "report.md").read_text()


def test_models_are_ranked_only_against_those_that_saw_the_same_data():
    def row(model, images, epochs, acc, speed, status="completed"):
        return {"model": model, "train_images": images, "epochs": epochs, "test_acc": acc,
                "status": status, "images_per_s": speed, "parameters": 10 ** 6,
                "seconds_per_epoch": 4.0}

    rows = [row("lenet", 60_000, 10, 0.762, 900), row("lenet-bn", 60_000, 10, 0.848, 800),
            row("alexnet", 10_000, 3, 0.678, 1000), row("resnet18", 10_000, 3, 0.807, 300),
            row("nin", 20_000, 3, 0.9, 500), row("vgg-small", 20_000, 3, None, 5000, "diverged")]
    text = conclude(StudyResults("quick", (), rows), as_recipe=["lenet"])
    assert text.startswith(
        "Best test accuracy (quick budget): nin 90.0% (the one model trained for 3 epochs on "
        "20,000 images); lenet-bn 84.8% (the 2 models trained for 10 epochs on 60,000 images); "
        "resnet18 80.7% (the 2 models trained for 3 epochs on 10,000 images). Most training "
        "images per second: alexnet")
    assert "LeNet with the seed's recipe: 76.2%, n=1 and 4.0 s/epoch" in text


def test_with_seeds_the_models_of_a_setting_are_ranked_by_interval():
    rows = [{"model": model, "train_images": 60_000, "epochs": 10, "test_acc": acc + 0.002 * seed,
             "status": "completed", "images_per_s": 900, "parameters": 10 ** 6,
             "seconds_per_epoch": 4.0, "seed": seed}
            for model, acc in (("lenet", 0.76), ("lenet-bn", 0.85)) for seed in range(3)]
    text = conclude(StudyResults("quick", (), rows), as_recipe=["lenet"])
    assert text.startswith("Best test accuracy (quick budget): lenet-bn 85.2% [84.7, 85.7], n=3; "
                           "then lenet 76.2% [75.7, 76.7], n=3 (trained for 10 epochs on 60,000 "
                           "images).")
    assert "LeNet with the seed's recipe: 76.2% [75.7, 76.7], n=3 and 4.0 s/epoch" in text


def test_running_again_reads_the_runs(tiny_chapter_report, capsys):
    folder = tiny_chapter_report.folder
    again = chapter_report("tiny", ["lenet", "lenet-bn"], folder)
    assert "epoch 1/1" not in capsys.readouterr().out
    assert again.conclusion == tiny_chapter_report.conclusion


def test_a_report_folder_is_not_reused_with_other_settings(tiny_chapter_report):
    with pytest.raises(UsageError, match="trained with other settings .*choose another --out"):
        chapter_report("quick", ["lenet"], tiny_chapter_report.folder)


@pytest.mark.parametrize("model", CHAPTER_MODELS)
def test_every_chapter_model_has_a_quick_and_a_full_setting(model):
    full, quick = model_config(model, "full"), model_config(model, "quick")
    assert full == resolve_config({"model": model})  # the seed recipe
    for config in (full, quick):
        build_for_input(model, config.resize, device="meta")
    if model.startswith("lenet"):
        assert quick == full  # LeNet is cheap: its whole recipe
    else:
        assert (quick.subset, quick.epochs, quick.batch_size) == (20_000, 3, 32)
        assert quick.resize <= 68


def test_every_reference_figure_names_its_public_source():
    """A figure from elsewhere says where a reader finds it: a public page, or the benchmark
    script and results file of this repository that measured it; no private document."""
    from pathlib import Path

    from cnnlab.experiments.studies.chapter import REFERENCES

    root = Path(__file__).resolve().parents[3]
    for spec, text in REFERENCES.items():
        sources = re.findall(r"github\.com/[\w.-]+/[\w.-]+\S*|benchmarks/[\w.]+", text)
        assert sources, (spec, text)
        for source in sources:
            assert source.startswith("github.com") or (root / source).is_file(), source
    cited = [path for path in (root / "src").rglob("*.py") if "SPEC §" in path.read_text()]
    assert cited == []
