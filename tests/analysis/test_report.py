"""The `cnnlab models`, `summary` and `compare` commands."""

import re

import pytest

from cnnlab.analysis.tables import min_side
from cnnlab.cli import main
from cnnlab.models import list_models


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_alexnet_shows_where_parameters_and_flops_are(capsys):
    code, out, err = run(capsys, "summary", "alexnet")
    assert code == 0 and err == ""
    assert "alexnet on 1x1x224x224" in out
    fc = re.search(r"fully connected\s+([\d,]+)\s+([\d.]+)%\s+([\d,.]+)\s+([\d.]+)%", out)
    conv = re.search(r"convolutional\s+([\d,]+)\s+([\d.]+)%\s+([\d,.]+)\s+([\d.]+)%", out)
    assert fc and conv
    assert fc.group(1) == "43,040,778" and fc.group(2) == "92.0"
    assert float(conv.group(4)) > 90  # convolutions do most of the FLOPs


def test_summary_depth_batch_and_input(capsys):
    code, out, _ = run(capsys, "summary", "resnet18", "--input", "1x1x64x64", "--depth", "2",
                       "--batch-size", "32")
    assert code == 0
    assert "resnet18 on 32x1x64x64" in out
    assert re.search(r"stage1\.0\s+Residual\s+32x64x16x16", out)
    code, out, _ = run(capsys, "summary", "lenet", "--input", "4x1x28x28")
    assert code == 0 and "lenet on 4x1x28x28" in out


def test_summary_builds_sized_and_rgb_models_for_the_input(capsys):
    code, out, _ = run(capsys, "summary", "vgg11", "--input", "3x96x96")
    assert code == 0
    assert "vgg11 on 1x3x96x96" in out and re.search(r"\s1x512x3x3\s", out)
    assert re.search(r"\s1x4608\s", out)  # the classifier is sized for 96 pixels


def test_compare_prints_one_table(capsys):
    names = ["alexnet", "vgg11", "nin", "googlenet"]
    code, out, err = run(capsys, "compare", *names)
    assert code == 0 and err == ""
    assert out.count("models side by side") == 1
    lines = {name: [line for line in out.splitlines() if line.split()[:1] == [name]]
             for name in names}
    assert all(len(found) == 1 for found in lines.values())
    assert "46,764,746" in lines["alexnet"][0] and "92.0%" in lines["alexnet"][0]
    assert "1x96x96" in lines["googlenet"][0] and "1x224x224" in lines["nin"][0]
    assert "128,806,154" in lines["vgg11"][0]


def test_models_lists_every_name(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert set(list_models()) <= set(rows)
    assert re.search(r"\b61,706\s+28\s+0\.8\b", rows["lenet"])
    assert re.search(r"\b11,178,378\s+96\s+637\.3\b", rows["resnet18"])


@pytest.mark.parametrize("argv, message", [
    (["summary", "resnett18"], "unknown model 'resnett18'; did you mean resnet18"),
    (["summary", "alexnet", "--input", "32"], "'alexnet' needs inputs of at least"),
    (["summary", "resnet18", "--input", "1x96"], None),
    (["summary", "lenet", "--input", "4x1x28x28", "--batch-size", "8"], "given twice"),
    (["compare", "alexnet", "vggg11"], "unknown model 'vggg11'"),
    (["compare", "nin", "--input", "0x3"], None),
])
def test_bad_names_and_inputs_exit_2_with_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv) if message else (None, None, None)
    if message is None:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        code, err = exit_.value.code, capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message is None or message in err


def test_min_side():
    # LeNet: 5x5 pad 2, pool 2, 5x5, pool 2: floor(s / 2) - 4 >= 2, so s >= 12.
    assert min_side("lenet") == 12
    # NiN: 11x11 stride 4, three 3x3 stride-2 pools ('same' convs between): 67 -> 15 -> 7 -> 3
    # -> 1, while 66 -> 14 -> 6 -> 2 -> nothing.
    assert min_side("nin") == 67
    # AlexNet (11x11 stride 4 padding 1, the classifier rebuilt for each side): 65 -> 15 -> 7
    # -> 3 -> 1, while 64 -> 14 -> 6 -> 2 -> nothing.
    assert min_side("alexnet") == 65
    assert min_side("resnet18") == 1  # padded convolutions and global pooling take any size


def test_summary_and_compare_take_specs_with_the_imagenet_configuration(capsys):
    code, out, _ = run(capsys, "summary", "resnet50:config=imagenet")
    assert code == 0 and "25,557,032" in out and "3x224x224" in out
    code, out, _ = run(capsys, "compare", "resnet18:config=imagenet", "vgg11:config=imagenet")
    assert code == 0
    assert "11,689,512" in out and "132,863,336" in out
    code, out, _ = run(capsys, "summary", "nin:num_1x1=1,head=fc")
    assert code == 0 and "nin:num_1x1=1,head=fc on 1x1x224x224" in out


def test_models_name_lists_its_options_with_defaults_and_values(capsys):
    code, out, _ = run(capsys, "models", "lenet")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:] if line.strip()}
    assert rows["activation"][0] == "sigmoid" and "relu" in " ".join(rows["activation"])
    assert rows["pool"][0] == "avg" and rows["input_size"][0] == "28"
    code, out, _ = run(capsys, "models", "--all-options")
    assert code == 0
    assert all(f"{name} (" in out for name in list_models())
    assert "set options with a spec such as lenet:norm=batch" in out
