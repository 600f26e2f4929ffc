"""The learning-rate range test: a suggestion LeNet trains at, and the model left as it was."""

import math

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import FashionMNIST
from cnnlab.experiments import lr_find
from cnnlab.models import create_model
from cnnlab.train import Trainer


@pytest.fixture(scope="module")
def data():
    """1,024 training images; 600 held out, so that each epoch's evaluation is quick."""
    return FashionMNIST(batch_size=64, subset=1024, val_fraction=0.01)


def test_lenet_trains_at_the_suggested_rate(data):
    torch.manual_seed(0)
    model = create_model("lenet-modern")
    result = lr_find(model, data, steps=100)
    assert result.suggestion < result.lowest < (result.blowup or math.inf)
    assert 1e-3 < result.suggestion < 1 and len(result.lrs) == len(result.losses)
    history = Trainer(lr=result.suggestion, max_epochs=2, progress=False).fit(model, data)
    losses = history.column("train_loss")
    assert losses[-1] < losses[0] < math.log(10) and history[-1]["val_acc"] > 0.3


def test_the_model_and_optimiser_are_restored(data):
    torch.manual_seed(0)
    model = create_model("lenet:norm=batch")  # running statistics are state too
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    random_state = torch.get_rng_state()
    lr_find(model, data, steps=20, optimizer=optimizer)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not model.training and optimizer.param_groups[0]["lr"] == 0.5
    assert not optimizer.state and torch.equal(torch.get_rng_state(), random_state)


def test_lr_find_command_prints_the_rates_and_plots(tmp_path, capsys):
    out = tmp_path / "lenet.png"
    assert main(["lr-find", "lenet", "--subset", "512", "--steps", "30", "--device", "cpu",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("suggested lr ") and "where the smoothed loss is lowest" in printed
    assert out.stat().st_size > 10_000


def test_a_bad_range_is_one_line(capsys):
    assert main(["lr-find", "lenet", "--start", "1", "--end", "0.1"]) == 2
    assert "0 < start < end" in capsys.readouterr().err
