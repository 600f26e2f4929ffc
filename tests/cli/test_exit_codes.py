"""Exit codes tell bugs from mistakes: 2 and one line for bad input, 1 and a traceback for a bug."""

import subprocess
import sys

import pytest

from cnnlab.cli import main

BAD_ARGUMENTS = [
    ["nope"],
    ["demo", "waves"],
    ["models", "lenett"],
    ["summary", "lenet:foo=1"],
    ["summary", "lenet", "--input", "1x2"],
    ["summary", "alexnet", "--input", "20"],
    ["summary", "lenet", "--depth", "0"],
    ["compare", "lenet", "vgg11:arch=("],
    ["compare", "lenet", "--input", "x"],
    ["bench", "lenet:pool=min"],
    ["bench", "lenet", "--batch-sizes", "0"],
    ["bench", "lenet", "--mode", "fly"],
    ["bench", "alexnet", "--input", "32"],
    ["train", "lenet", "--epochs", "-1"],
    ["train", "lenet", "--optimizer", "lamb"],
    ["train", "lenet:norm=sometimes"],
    ["train", "lenet", "--device", "tpu", "--subset", "64"],
    ["train", "lenet", "--data", "/no/such/folder"],
    ["train", "--recipe", "slow"],
    ["train", "--resume", "/no/such/run"],
    ["eval", "/no/such/run"],
    ["predict", "/no/such/run", "x.png"],
    ["recipes", "--all"],
]


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv", BAD_ARGUMENTS, ids=" ".join)
def test_bad_arguments_get_one_line_and_exit_2(argv, capsys):
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: "), err


INJECTED_BUG = """
import sys
import cnnlab.train.trainer as trainer
def broken(self, *args):
    raise KeyError("an unexpected key")
trainer._Session.train_epoch = broken
from cnnlab.cli import main
sys.exit(main(["train", "lenet", "--subset", "64", "--epochs", "1", "--device", "cpu",
               "--out", sys.argv[1]]))
"""


def test_a_bug_inside_training_shows_its_traceback_and_exits_1(tmp_path):
    result = subprocess.run([sys.executable, "-c", INJECTED_BUG, str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "KeyError: 'an unexpected key'" in result.stderr


def test_a_bug_is_not_swallowed_in_process(monkeypatch, tmp_path):
    import cnnlab.train.runs as runs

    def broken(*args, **kwargs):
        raise FileNotFoundError("a file the code itself forgot to write")

    monkeypatch.setattr(runs, "make_data", broken)
    with pytest.raises(FileNotFoundError):
        main(["train", "lenet", "--out", str(tmp_path / "run")])
