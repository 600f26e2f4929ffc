"""The main job: `cnnlab train lenet` with the chapter's recipe reaches the seed's accuracy."""

import json

import pytest

from cnnlab.cli import main


@pytest.mark.slow
def test_cnnlab_train_lenet_reaches_the_seed_accuracy_in_10_epochs(tmp_path, capsys):
    out = tmp_path / "lenet"
    assert main(["train", "lenet", "--device", "cpu", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    trainer, data = config["train"], config["data"]["args"]
    assert (trainer["optimizer"], trainer["lr"], trainer["epochs"]) == ("sgd", 0.1, 10)
    assert (data["batch_size"], data["subset"], data["resize"]) == (128, None, 28)
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 10 and result["test_acc"] >= 0.735
    assert f"test accuracy {result['test_acc']:.1%} after 10 epochs" in capsys.readouterr().out
