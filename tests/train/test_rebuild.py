"""Exact rebuilds: eval, predict and --resume rebuild a run's model from its recorded spec."""

import json
import re

import pytest
import torch
from image_folders import two_class_folder

from cnnlab.cli import main
from cnnlab.data import ImageFolder
from cnnlab.models import create_model
from cnnlab.train import Trainer, load_checkpoint, save_checkpoint

FAMILY_SPECS = [
    # (spec with a non-default option, input side)
    ("lenet:activation=relu,pool=max", 28),
    ("lenet:norm=batch", 28),
    ("alexnet:dropout=0", 67),
    ("nin:num_1x1=1,head=fc", 67),
    ("vgg-small:norm=batch", 32),
    ("googlenet:norm=batch,aux_logits=true", 32),
    ("resnet18:preact=true", 32),
    ("densenet:growth_rate=16", 32),
    ("regnetx32:group_width=8", 32),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of ten grey 30x30 images, one bright and one dark."""
    return two_class_folder(tmp_path_factory.mktemp("folder"), per_class=10, side=30)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))


def printed_accuracy(capsys) -> str:
    return re.search(r"test accuracy (\S+%) on", capsys.readouterr().out).group(1)


def check_eval_and_resume(run, capsys):
    """`cnnlab eval` prints the recorded accuracy; `--resume` continues the same architecture."""
    result = json.loads((run / "result.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    assert printed_accuracy(capsys) == f"{result['test_acc']:.2%}"
    spec = json.loads((run / "config.json").read_text())["model"]["spec"]
    assert main(["train", "--resume", str(run), "--epochs", "2", "--device", "cpu"]) == 0
    assert json.loads((run / "result.json").read_text())["epochs"] == 2
    assert load_checkpoint(run / "last.pt")["config"]["model"]["spec"] == spec


@pytest.mark.parametrize(("spec", "side"), FAMILY_SPECS, ids=[s for s, _ in FAMILY_SPECS])
def test_a_variant_trained_from_the_cli_is_rebuilt_exactly(spec, side, folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", spec, "--data", str(folder), "--resize", str(side), "--epochs", "1",
                 "--batch-size", "8", "--lr", "0.01", "--device", "cpu", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["spec"] == spec
    check_eval_and_resume(run, capsys)


@pytest.mark.parametrize("spec", ["lenet:activation=relu,pool=max", "lenet:norm=batch"])
def test_a_variant_trained_from_python_is_rebuilt_exactly(spec, folder, tmp_path, capsys):
    data = ImageFolder(folder, size=28, batch_size=8)
    name, _, options = spec.partition(":")
    keywords = dict(option.split("=") for option in options.split(","))
    model = create_model(name, in_channels=1, num_classes=2, **keywords)
    run = tmp_path / "run"
    Trainer(max_epochs=1, lr=0.05, device="cpu", progress=False).fit(model, data, out=run)
    check_eval_and_resume(run, capsys)


def test_weights_that_do_not_fit_the_record_are_one_line(folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lenet", "--data", str(folder), "--epochs", "1", "--batch-size", "8",
                 "--device", "cpu", "--out", str(run)]) == 0
    state = load_checkpoint(run / "last.pt")
    state["model"] = create_model("lenet:norm=batch", num_classes=2).state_dict()
    save_checkpoint(state, run / "last.pt")
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not fit the model" in err and "unexpected 1.weight" in err


def test_runs_written_before_specs_still_eval(folder, tmp_path, capsys):
    """A run recorded as the old format (model name only, Trainer keyword arguments)."""
    run = tmp_path / "old"
    assert main(["train", "lenet-modern", "--data", str(folder), "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--out", str(run)]) == 0
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(run / name)
        record = state["config"]
        record["model"].pop("spec")
        new = record.pop("train")
        record["trainer"] = {"max_epochs": new["epochs"], "optimizer": "sgd", "lr": new["lr"],
                             "momentum": 0.0, "weight_decay": 0.0, "schedule": "none",
                             "warmup": 0.0, "label_smoothing": 0.0, "grad_clip": None,
                             "device": "cpu", "amp": False, "channels_last": True,
                             "compile": False, "seed": 0, "checkpoint_every": None,
                             "tta_flip": False}
        save_checkpoint(state, run / name)
    (run / "config.json").write_text(json.dumps(record))
    result = json.loads((run / "result.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    assert printed_accuracy(capsys) == f"{result['test_acc']:.2%}"
    assert torch.load(run / "last.pt", weights_only=True)["config"]["model"]["name"] == \
        "lenet-modern"
