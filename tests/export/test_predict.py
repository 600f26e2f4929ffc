"""`cnnlab export RUN` and `cnnlab predict FILE.onnx`: the run's predictions through ONNX Runtime,
one-line errors (exit 2) for bad input."""

import re

import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.export import OnnxPredictor, export_run, predict_onnx, trace_program, write_onnx
from cnnlab.train.evaluation import predict_run


@pytest.fixture(scope="module")
def images(colour_run, tmp_path_factory):
    """Two of the run's own images, one resized and grey, and a photo of another size."""
    folder = tmp_path_factory.mktemp("images")
    photos = colour_run[1]
    Image.open(photos / "red" / "3.png").convert("L").resize((40, 33)).save(folder / "grey.png")
    noise = torch.randint(0, 256, (50, 61, 3), generator=torch.Generator().manual_seed(1),
                          dtype=torch.uint8)
    Image.fromarray(noise.numpy()).save(folder / "noise.jpg")
    return [photos / "red" / "0.png", photos / "blue" / "5.png", folder / "grey.png",
            folder / "noise.jpg"]


def _assert_same_rankings(got, expected):
    assert [[name for name, _ in ranking] for ranking in got] == \
           [[name for name, _ in ranking] for ranking in expected]
    for ranking, reference in zip(got, expected, strict=True):
        for (_, p), (_, q) in zip(ranking, reference, strict=True):
            assert abs(p - q) <= 1e-4


def test_predict_through_onnx_equals_predict_on_the_run(colour_run, colour_onnx, images):
    expected = predict_run(colour_run[0], images, 2, torch.device("cpu"))
    _assert_same_rankings(predict_onnx(colour_onnx, images, 2), expected)
    predictor = OnnxPredictor(colour_onnx)
    assert predictor.metadata.classes == ("blue", "red") and predictor.metadata.channels == 3
    assert predictor.batch is None


def test_a_fixed_batch_export_predicts_the_same(colour_run, images, tmp_path):
    exported = export_run(colour_run[0], tmp_path / "batch4.onnx", batch=4)
    assert OnnxPredictor(exported.path).batch == 4
    _assert_same_rankings(predict_onnx(exported.path, images, 2),
                          predict_run(colour_run[0], images, 2, torch.device("cpu")))


def test_the_commands_print_the_same_lines(colour_run, colour_onnx, images, capsys):
    words = [str(path) for path in images]
    assert main(["predict", str(colour_run[0]), *words, "--device", "cpu"]) == 0
    from_run = capsys.readouterr().out
    assert main(["predict", str(colour_onnx), *words]) == 0
    assert capsys.readouterr().out == from_run


def test_export_command_writes_next_to_the_checkpoint_and_never_overwrites(colour_run, capsys):
    run = colour_run[0]
    assert main(["export", str(run), "--format", "pt2"]) == 0
    out = capsys.readouterr().out
    assert f"exported {run / 'last.pt2'} (torch.export program, any batch size)" in out
    assert re.search(r"on batches of \d+ and 1 test images to \S+ \(tolerance 0.0001\)", out)
    assert (run / "last.pt2.json").is_file()
    before = (run / "last.pt2").read_bytes()
    assert main(["export", str(run), "--out", str(run / "last.pt2")]) == 2
    assert "exists and is kept" in _error_line(capsys)
    assert (run / "last.pt2").read_bytes() == before


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.fixture(scope="module")
def bare_onnx(tmp_path_factory):
    """An ONNX file without cnnlab's metadata."""
    path = tmp_path_factory.mktemp("bare") / "bare.onnx"
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    write_onnx(trace_program(model, torch.randn(2, 1, 2, 2)), path)
    return path


def test_bad_input_is_one_line_and_exit_2(colour_run, colour_onnx, bare_onnx, images, tmp_path,
                                          capsys):
    (tmp_path / "notes.onnx").write_text("not a model")
    (tmp_path / "text.png").write_text("not an image")
    cases = [
        (["predict", str(tmp_path / "notes.onnx"), str(images[0])],
         "notes.onnx is not an ONNX model ONNX Runtime can run"),
        (["predict", str(bare_onnx), str(images[0])],
         "bare.onnx has no cnnlab metadata; export the model with `cnnlab export RUN`"),
        (["predict", str(colour_onnx), str(tmp_path / "text.png")], "cannot read"),
        (["predict", str(colour_onnx), str(tmp_path / "missing.png")], "no image file at"),
        (["predict", str(tmp_path / "missing.onnx"), str(images[0])], "no ONNX file at"),
        (["export", str(tmp_path / "no-run")], "no run or checkpoint at"),
        (["export", str(colour_run[0]), "--format", "tflite"], "format 'tflite' is unknown"),
        (["export", str(colour_run[0]), "--batch", "0"], "expected 'dynamic' or a positive"),
        (["export", str(colour_run[0]), "--out", str(tmp_path / "m.pt2"), "--opset", "18"],
         "--opset applies to ONNX files only"),
    ]
    for argv, message in cases:
        assert _exit_code(argv) == 2, argv
        assert message in _error_line(capsys), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.onnx", "text.png"]
