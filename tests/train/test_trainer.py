"""The Trainer: what fit records, learning-rate schedules, bad settings, divergence, accuracy."""

import copy
import importlib.util
import json

import pytest
import torch
from torch import nn

from cnnlab.data import FashionMNIST
from cnnlab.errors import TrainingDiverged
from cnnlab.models import create_model
from cnnlab.train import Trainer
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.optim import OPTIMIZER_CLASSES as OPTIMIZERS
from cnnlab.train.optim import lr_factor as _lr_factor
from cnnlab.train.optim import make_optimizer


def _lenet(data, name="lenet-modern"):
    torch.manual_seed(0)
    return create_model(name, num_classes=data.num_classes, in_channels=data.in_channels)


def test_fit_records_each_epoch_and_writes_the_run(small_data, tmp_path):
    trainer = Trainer(max_epochs=2, device="cpu", progress=False)
    history = trainer.fit(_lenet(small_data), small_data, out=tmp_path / "run")
    assert len(history) == 2
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                               "seconds", "images_per_s", "lr"}
    assert history.column("epoch") == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert all(row["images_per_s"] > 0 and 0 <= row["val_acc"] <= 1 for row in history)
    run = tmp_path / "run"
    files = {"config.json", "metrics.csv", "curves.png", "last.pt", "best.pt", "result.json"}
    assert files <= {p.name for p in run.iterdir()}
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["test_acc"] == history[-1]["val_acc"]
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["lr"] == 0.1  # the recipe's
    assert config["model"]["name"] == "lenet-modern" and "torch" in config["versions"]
    assert (run / "metrics.csv").read_text().count("\n") == 3
    assert load_checkpoint(run / "last.pt")["position"]["epoch"] == 2
    if importlib.util.find_spec("tensorboard"):
        assert any(p.name.startswith("events.") for p in (run / "tensorboard").iterdir())


def test_evaluate_returns_loss_and_accuracy(small_data):
    model = _lenet(small_data)
    loss, acc = Trainer(device="cpu").evaluate(model, small_data.test_dataloader())
    assert loss == pytest.approx(2.3, abs=0.5) and 0 <= acc <= 1


def test_test_time_flip_averages_each_image_with_its_mirror_image(small_data):
    model = _lenet(small_data).eval()
    X, y = next(iter(small_data.test_dataloader()))
    with torch.no_grad():
        logits = (model(X) + model(X.flip(-1))) / 2
    expected = torch.nn.functional.cross_entropy(logits, y).item()
    loss, acc = Trainer(tta_flip=True, device="cpu").evaluate(model, [(X, y)])
    assert loss == pytest.approx(expected, rel=1e-5)
    assert acc == (logits.argmax(1) == y).float().mean().item()


def test_lr_none_needs_a_model_from_create_model(small_data):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError, match="not made by cnnlab.create_model"):
        Trainer(max_epochs=1, device="cpu").fit(model, small_data)


def test_an_existing_run_directory_is_not_overwritten(small_data, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="already exists and is not empty.*--resume"):
        Trainer(max_epochs=1, device="cpu").fit(_lenet(small_data), small_data, out=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("kwargs, name", [
    ({"max_epochs": 0}, "epochs"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr": -0.1}, "lr"), ({"schedule": "step"}, "schedule"), ({"warmup": 20}, "warmup"),
    ({"label_smoothing": 1.0}, "label_smoothing"), ({"grad_clip": 0}, "grad_clip"),
    ({"checkpoint_every": 0}, "checkpoint_every"),
])
def test_bad_settings_are_refused_in_one_line(kwargs, name):
    with pytest.raises(ValueError, match=f"setting {name}=") as info:
        Trainer(epochs=10, **kwargs)
    assert "\n" not in str(info.value)


def test_unknown_or_missing_device_is_refused(small_data):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Trainer(device="tpu", max_epochs=1).fit(_lenet(small_data), small_data)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            Trainer(device="cuda", max_epochs=1).fit(_lenet(small_data), small_data)


def test_schedules_warm_up_and_decay():
    total, warmup = 100, 10
    assert [_lr_factor(s, total, 0, "none") for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert _lr_factor(0, total, warmup, "none") == pytest.approx(0.1)
    assert _lr_factor(9, total, warmup, "cosine") == pytest.approx(1.0)
    assert _lr_factor(10, total, warmup, "cosine") == pytest.approx(1.0)
    assert _lr_factor(55, total, warmup, "cosine") == pytest.approx(0.5)
    assert _lr_factor(100, total, warmup, "cosine") == pytest.approx(0.0)
    onecycle = [_lr_factor(s, total, 0, "onecycle") for s in range(total)]
    assert onecycle[0] == pytest.approx(1 / 25 + (1 - 1 / 25) / 30)
    assert max(onecycle) == pytest.approx(1.0) and onecycle.index(max(onecycle)) in (29, 30)
    assert onecycle[-1] < 0.01


def test_a_cosine_schedule_reaches_zero_by_the_last_step(small_data):
    trainer = Trainer(max_epochs=2, schedule="cosine", warmup=1, device="cpu", progress=False)
    history = trainer.fit(_lenet(small_data), small_data)
    assert history[0]["lr"] == pytest.approx(0.1)
    assert history[1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_divergence_stops_keeps_the_last_good_checkpoint_and_records_where(tmp_path):
    data = FashionMNIST(batch_size=32, subset=2560)  # 80 steps: losses are read every 4 steps
    trainer = Trainer(max_epochs=3, lr=1e4, device="cpu", progress=False)
    with pytest.raises(TrainingDiverged) as unchecked:
        trainer.fit(_lenet(data), data)
    trainer = Trainer(max_epochs=3, lr=1e4, checkpoint_every=1, device="cpu", progress=False)
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step (\d+) \(lr 10000\)"):
        trainer.fit(_lenet(data), data, out=tmp_path / "run")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "diverged" and result["epoch"] == 1 and result["lr"] == 1e4
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["position"]["global_step"] == result["global_step"] - 1 == result["step"] - 1
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    assert f"step {result['step']} " in str(unchecked.value)  # same step, read back in a window



def test_bfloat16_autocast_and_channels_last_train_on_the_cpu(small_data):
    trainer = Trainer(max_epochs=1, amp=True, channels_last=True, grad_clip=1.0,
                      label_smoothing=0.1, weight_decay=1e-4, optimizer="adamw", lr=1e-3,
                      device="cpu", progress=False)
    history = trainer.fit(_lenet(small_data), small_data)
    assert torch.isfinite(torch.tensor(history[0]["train_loss"]))
    assert history[0]["val_acc"] > 0.3


@pytest.mark.parametrize("name, kwargs", [("sgd", {"momentum": 0.9, "weight_decay": 1e-3}),
                                          ("adamw", {"weight_decay": 0.05})])
def test_the_fused_optimiser_follows_pytorchs_default_update(name, kwargs):
    torch.manual_seed(0)
    # lenet, not lenet-bn: a conv bias before batch norm gets a gradient of pure rounding noise,
    # which Adam scales up to a full step, so two exact implementations would drift apart there
    model = create_model("lenet")
    reference = copy.deepcopy(model)
    ours = make_optimizer(model, name, lr=0.05, **kwargs)
    theirs = make_optimizer(reference, name, lr=0.05, fused=False, **kwargs)
    assert type(theirs) is OPTIMIZERS[name]
    assert ours.defaults["fused"] and not theirs.defaults["fused"]
    X, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for net, optimizer in ((model, ours), (reference, theirs)):
        for _ in range(5):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(X), y).backward()
            optimizer.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
