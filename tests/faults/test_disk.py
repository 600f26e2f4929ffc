"""Disk full and read-only: a refused write is one line naming the path (exit 2); the previous
checkpoint stays intact and loadable; no temporary file is left behind."""

import subprocess

import pytest
from fault_tools import cnnlab, small_filesystem

from cnnlab.train.checkpoint import load_checkpoint

SETTINGS = ["--epochs", "2", "--batch-size", "8", "--lr", "0.05", "--device", "cpu"]

FULL_AT = """
import errno, os
_replace = os.replace
def _full(src, dst, *args, **kwargs):
    if os.path.basename(str(dst)) == {name!r}:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _replace(src, dst, *args, **kwargs)
os.replace = _full
"""


def no_temporaries(folder) -> None:
    left = [p.name for p in folder.rglob(".*.tmp")]
    assert not left, f"temporary files left: {left}"


def one_line_naming(result, path_part: str, faults) -> None:
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 2, result.stderr
    assert path_part in result.stderr and "cannot write" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["config.json", "metrics.csv", "curves.png", "last.pt",
                                  "best.pt", "result.json"])
def test_each_run_file_refused_by_a_full_disk(name, picture_folder, tmp_path, faults):
    run = tmp_path / "run"
    result = cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out", run,
                    prelude=FULL_AT.format(name=name))
    faults.injected()
    one_line_naming(result, name, faults)
    no_temporaries(tmp_path)
    for checkpoint in ("last.pt", "best.pt"):
        if (run / checkpoint).exists():
            load_checkpoint(run / checkpoint)
    faults.survived()


def test_an_image_cache_refused_by_a_full_disk(picture_folder, tmp_path, faults, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNLAB_DATA", str(cache))
    from fault_tools import ENV

    ENV["CNNLAB_DATA"] = str(cache)
    result = cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out",
                    tmp_path / "run", prelude=FULL_AT.format(name="") .replace(
                        "os.path.basename(str(dst)) == ''", "str(dst).endswith('.pt') and "
                        "'image-folders' in str(dst)"))
    faults.injected()
    one_line_naming(result, "image-folders", faults)
    no_temporaries(tmp_path)
    faults.survived()


def test_a_real_full_disk_keeps_the_last_good_checkpoint(picture_folder, tmp_path, faults):
    probe = tmp_path / "probe"
    assert cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out",
                  probe).returncode == 0
    checkpoint = (probe / "last.pt").stat().st_size
    used = sum(p.stat().st_size for p in probe.rglob("*") if p.is_file())
    # room for everything the first epoch writes, but not for a second copy of last.pt
    with small_filesystem(tmp_path / "disk", size=str(used + checkpoint // 2)) as disk:
        result = cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out",
                        disk / "run")
        faults.injected()
        one_line_naming(result, str(disk), faults)
        assert "the disk is full" in result.stderr
        no_temporaries(disk)
        state = load_checkpoint(disk / "run" / "last.pt")
        assert state["position"]["epoch"] >= 1
        faults.survived()


def test_a_read_only_run_refuses_to_resume_and_eval_in_one_line(picture_folder, tmp_path,
                                                                 faults):
    with small_filesystem(tmp_path / "disk", size="8m") as disk:
        run = disk / "run"
        assert cnnlab("train", "lenet", "--data", picture_folder, *SETTINGS, "--out",
                      run).returncode == 0
        before = (run / "last.pt").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            for argv in (("train", "--resume", run, "--epochs", "3"), ("eval", run)):
                result = cnnlab(*argv)
                faults.injected()
                one_line_naming(result, str(run), faults)
                assert "read-only" in result.stderr
                faults.survived()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        if (run / "last.pt").read_bytes() != before:
            faults.lost("a read-only run's checkpoint changed")
        load_checkpoint(run / "last.pt")
