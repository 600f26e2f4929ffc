"""`cnnlab train`, `eval` and `predict`: results, files, exit codes (2 bad input, 3 diverged)."""

import json

import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import FashionMNIST

TINY = ["--subset", "256", "--batch-size", "64", "--epochs", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-epoch lenet-modern run on 256 images."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "lenet-modern", *TINY, "--out", str(out)]) == 0
    return out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_lenet_modern_reaches_80_percent_in_two_epochs_on_10k_images(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "lenet-modern", "--subset", "10000", "--epochs", "2", "--batch-size", "64",
            "--optimizer", "adam", "--lr", "0.002", "--device", "cpu", "--out", str(out)]
    code = main(argv)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["test_acc"] >= 0.80
    printed = capsys.readouterr().out
    assert f"test accuracy {result['test_acc']:.1%}" in printed
    assert str(out / "curves.png") in printed and str(out / "last.pt") in printed


def test_train_writes_a_complete_run(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    expected = {"config.json", "metrics.csv", "curves.png", "last.pt", "best.pt", "result.json"}
    assert expected <= names
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["data"]["args"]["subset"] == 256 and config["train"]["epochs"] == 1
    assert config["train"]["model"] == "lenet-modern"
    assert "reason" in config["train"]["decisions"]["channels_last"]  # what auto became, why


@pytest.mark.parametrize(("argv", "expected"), [
    (["lenet", "--channels-last"], True),      # the user's choice wins either way
    (["lenet", "--no-channels-last"], False),
    (["lenet-bn", "--channels-last", "--no-amp"], True),
])
def test_explicit_switches_win_and_are_recorded_with_a_reason(argv, expected, small_data):
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import given_settings
    from cnnlab.train.config import resolve_config
    from cnnlab.train.runs import build_model
    from cnnlab.train.runtime import decide_runtime

    args = build_parser().parse_args(["train", *argv])
    config = resolve_config(given_settings(args))
    model = build_model(config, small_data)
    decided, runtime = decide_runtime(config, model, small_data, torch.device("cpu"))
    assert runtime.channels_last is expected
    assert decided.decisions["channels_last"]["enabled"] is expected
    assert "asked for" in decided.decisions["channels_last"]["reason"]
    assert set(decided.decisions) == {"threads", "amp", "channels_last"}


def test_eval_prints_accuracy_per_class_and_saves_the_confusion_matrix(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    accuracy = json.loads((tiny_run / "result.json").read_text())["test_acc"]
    assert f"test accuracy {accuracy:.2%} on 10,000 images" in out
    assert "per-class accuracy" in out and "ankle boot" in out and "confusion matrix" in out
    assert (tiny_run / "confusion-last.png").stat().st_size > 0


def test_predict_gives_top_k_probabilities_for_any_image_file(tiny_run, tmp_path, capsys):
    images = FashionMNIST(subset=1).test[0]
    grey = tmp_path / "boot.png"
    Image.fromarray(images[0, 0].numpy()).save(grey)
    colour = tmp_path / "big.jpg"
    Image.fromarray(images[1, 0].numpy()).resize((90, 70)).convert("RGB").save(colour)
    assert main(["predict", str(tiny_run / "best.pt"), str(grey), str(colour), "--top-k", "4",
                 "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(grey), str(colour)]
    for line in lines:
        ranked = line.split(": ")[1].split(", ")
        probabilities = [float(part.split()[-1].rstrip("%")) for part in ranked]
        assert len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)


@pytest.mark.parametrize("argv, message", [
    (["train", "lenett"], "unknown model 'lenett'; did you mean lenet"),
    (["train", "lenet", "--epochs", "0"], "expected a positive integer"),
    (["train", "lenet", "--batch-size", "-8"], "expected a positive integer"),
    (["train", "lenet", "--lr", "0"], "expected a positive number"),
    (["train", "lenet", "--subset", "0"], "expected a positive integer"),
    (["train", "lenet", "--augment", "rotate"], "augment='rotate' is not allowed"),
    (["train", "lenet", "--warmup", "20"], "fewer epochs than epochs=10"),
    (["train", "lenet:pool=min"], "pool=min is not allowed"),
    (["train", "lenet:depth=3"], "has no option 'depth'"),
    (["train", "nin", "--resize", "16", "--subset", "64"], "at least"),
    (["train", "alexnet", "--resize", "32", "--subset", "64"], "at least 65x65"),
    (["train", "--resume", "no/such/run"], "no run at no/such/run"),
    (["eval", "no/such/run"], "no run or checkpoint at no/such/run"),
    (["predict", "no/such/run", "x.png"], "no run or checkpoint at no/such/run"),
])
def test_bad_arguments_print_one_line_and_exit_2(argv, message, capsys):
    assert _exit_code(argv) == 2
    assert message in _error_line(capsys)


def _exit_code(argv) -> int:
    """What `cnnlab ARGV` exits with, whether argparse exits or the command returns."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_missing_image_and_unreadable_image_exit_2(tiny_run, tmp_path, capsys):
    assert main(["predict", str(tiny_run), str(tmp_path / "nope.png"), "--device", "cpu"]) == 2
    assert "no image file at" in _error_line(capsys)
    (tmp_path / "text.png").write_text("not an image")
    assert main(["predict", str(tiny_run), str(tmp_path / "text.png"), "--device", "cpu"]) == 2
    assert "cannot read" in _error_line(capsys)


def test_an_existing_run_is_not_overwritten_and_resume_keeps_its_settings(tiny_run, capsys):
    assert main(["train", "lenet-modern", *TINY, "--out", str(tiny_run)]) == 2
    assert "already exists and is not empty" in _error_line(capsys)
    assert main(["train", "--resume", str(tiny_run), "--lr", "0.5"]) == 2
    assert "lr cannot change on a live run" in _error_line(capsys)
    assert main(["train", "lenet", "--resume", str(tiny_run)]) == 2
    assert "drop MODEL" in _error_line(capsys)


def test_resume_can_extend_a_finished_run(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "extended"
    shutil.copytree(tiny_run, run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--device", "cpu"]) == 0
    assert "epoch 2/2" in capsys.readouterr().out
    assert (run / "metrics.csv").read_text().count("\n") == 3


def test_divergence_exits_3_with_where_it_happened(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "lenet-modern", *TINY, "--lr", "1e4", "--out", str(out)]) == 3
    err = _error_line(capsys)
    assert "diverged at epoch 1, step" in err and "(lr 10000)" in err
    assert json.loads((out / "result.json").read_text())["status"] == "diverged"


def test_train_and_predict_on_an_image_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    generator = torch.Generator().manual_seed(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(12):
            pixels = torch.randint(0, 60, (20, 24, 3), generator=generator, dtype=torch.uint8)
            pixels[..., channel] = 200
            Image.fromarray(pixels.numpy()).save(tmp_path / "photos" / name / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "lenet-modern", "--data", str(tmp_path / "photos"), "--resize", "28",
                 "--epochs", "3", "--batch-size", "8", "--lr", "0.05", "--device", "cpu",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["in_channels"] == 3 and config["data"]["classes"] == ["blue", "red"]
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "photos" / "red" / "0.png"), "--top-k", "1",
                 "--device", "cpu"]) == 0
    assert capsys.readouterr().out.split(": ")[1].startswith("red")


def test_resume_before_the_first_checkpoint_starts_afresh(tiny_run, tmp_path, capsys):
    run = tmp_path / "early"
    run.mkdir()
    (run / "config.json").write_text((tiny_run / "config.json").read_text())
    assert main(["train", "--resume", str(run)]) == 0
    assert "starting the run from the beginning" in capsys.readouterr().out
    assert json.loads((run / "result.json").read_text())["epochs"] == 1


def test_eval_refuses_a_checkpoint_that_would_run_code(tmp_path, capsys):
    class RunsCode:
        def __reduce__(self):
            return print, ("code ran",)

    torch.save({"model": {}, "config": RunsCode()}, tmp_path / "evil.pt")
    assert main(["eval", str(tmp_path / "evil.pt")]) == 2
    assert "refused to load" in _error_line(capsys)
