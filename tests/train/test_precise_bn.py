"""Precise batch norm: running statistics recomputed exactly over training images, weights fixed."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from image_folders import two_class_folder
from torch import nn

from cnnlab.cli import main
from cnnlab.errors import UsageError
from cnnlab.models import create_model
from cnnlab.scratch import BatchNorm
from cnnlab.train import TrainConfig, Trainer, load_checkpoint
from cnnlab.train.precise_bn import batchnorm_layers, recompute_batchnorm, training_sample


class OwnNorm(nn.BatchNorm2d):
    """A user's batch norm: a subclass of torch's."""


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), OwnNorm(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Conv2d(4, 3, 3), BatchNorm(3, num_dims=4), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 5), nn.BatchNorm1d(5))


def _batches(n=70, size=16):
    X = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 3 + 5
    return X, [(X[i:i + size], None) for i in range(0, n, size)]


def test_running_statistics_become_the_exact_mean_and_unbiased_variance():
    model = _model()
    X, batches = _batches()
    recompute_batchnorm(model, batches)
    conv1, norm1, _, _, conv2, norm2 = list(model)[:6]
    with torch.no_grad():
        first = conv1(X).double()
        second = torch.cat([conv2(F.relu(F.batch_norm(conv1(x), None, None, norm1.weight,
                                                      norm1.bias, training=True)))
                            for x, _ in batches]).double()
    for layer_input, mean, var in ((first, norm1.running_mean, norm1.running_var),
                                   (second, norm2.moving_mean, norm2.moving_var)):
        torch.testing.assert_close(mean.double(), layer_input.mean((0, 2, 3)), rtol=1e-5,
                                   atol=1e-5)
        torch.testing.assert_close(var.double(), layer_input.var((0, 2, 3)), rtol=1e-5,
                                   atol=1e-5)


def test_weights_modes_and_other_buffers_are_unchanged():
    model = _model().train()
    model[3].eval()  # a mix of modes comes back as it was
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    recompute_batchnorm(model, _batches()[1])
    after = model.state_dict()
    statistics = {"running_mean", "running_var", "moving_mean", "moving_var"}
    for key, value in before.items():
        if key.rsplit(".", 1)[1] in statistics:
            assert not torch.equal(value, after[key]), key
        else:
            assert torch.equal(value, after[key]), key  # weights and num_batches_tracked
    assert [m.training for m in model.modules()] == modes
    assert not any(layer._forward_pre_hooks for layer in batchnorm_layers(model))


def test_a_model_without_batch_norm_is_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5), nn.Flatten()).train()
    before = copy.deepcopy(model.state_dict())
    recompute_batchnorm(model, _batches()[1])
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())
    assert all(m.training for m in model.modules())


def test_the_sample_is_fixed_and_unaugmented(small_data):
    sample = training_sample(small_data, 100)
    assert [len(y) for _, y in sample] == [64, 36]
    again = training_sample(small_data, 100)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(sample, again, strict=True))
    assert sum(len(y) for _, y in training_sample(small_data, 10**6)) == 512


def test_a_run_records_the_setting_and_the_plain_result(small_data, tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet-bn")
    trainer = Trainer(max_epochs=1, precise_bn=128, device="cpu", progress=False)
    history = trainer.fit(model, small_data, out=tmp_path / "run")
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["train"]["precise_bn"] == 128
    result = json.loads((run / "result.json").read_text())
    assert 0 <= result["plain_test_acc"] <= 1 and result["plain_test_loss"] > 0
    assert result["test_acc"] == history[-1]["val_acc"]
    saved = create_model("lenet-bn")
    saved.load_state_dict(load_checkpoint(run / "last.pt")["model"])
    again = copy.deepcopy(saved)
    recompute_batchnorm(again, training_sample(small_data, 128))
    for key, value in saved.state_dict().items():  # the checkpoint holds the precise statistics
        torch.testing.assert_close(value, again.state_dict()[key], rtol=1e-5, atol=1e-6)


def test_the_command_line_option_reaches_config_json(tmp_path):
    folder = two_class_folder(tmp_path / "images", per_class=12)
    run = tmp_path / "run"
    assert main(["train", "lenet-bn", "--data", str(folder), "--epochs", "1", "--batch-size", "8",
                 "--val-fraction", "0.25", "--device", "cpu", "--precise-bn", "10",
                 "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["precise_bn"] == 10
    assert "plain_test_acc" in json.loads((run / "result.json").read_text())


def test_a_negative_count_is_a_usage_error(capsys):
    with pytest.raises(UsageError, match=r"precise_bn=-1 .*--precise-bn.*number of training"):
        TrainConfig(precise_bn=-1)
    assert main(["train", "lenet-bn", "--precise-bn", "-1"]) == 2
    assert "precise_bn=-1" in capsys.readouterr().err
