"""Corrupt or foreign files: each is detected with an error naming the file, or (for caches)
rebuilt with a warning; never a traceback, never a silent wrong result."""

import gzip
import json
import random
import shutil

import pytest
import torch
from fault_tools import cnnlab

from cnnlab.data import ImageFolder
from cnnlab.errors import UsageError
from cnnlab.models import create_model
from cnnlab.train.checkpoint import load_checkpoint, save_checkpoint

SETTINGS = ["--epochs", "1", "--batch-size", "8", "--lr", "0.05", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(picture_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    result = cnnlab("train", "lenet-modern", "--data", picture_folder, *SETTINGS, "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def damaged_copies(data: bytes, rng: random.Random):
    """Truncated, zero-length and bit-flipped versions of a file's bytes."""
    yield "zero-length", b""
    for _ in range(3):
        yield "truncated", data[:rng.randrange(1, len(data))]
    for _ in range(6):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        yield "bit-flipped", bytes(flipped)


def test_damaged_checkpoints_are_named_or_load_unchanged(trained, tmp_path, faults, run_main):
    original = (trained / "last.pt").read_bytes()
    reference = load_checkpoint(trained / "last.pt")
    for index, (kind, data) in enumerate(damaged_copies(original, random.Random(0))):
        run = tmp_path / f"run{index}"
        shutil.copytree(trained, run)
        (run / "last.pt").write_bytes(data)
        faults.injected()
        for argv in (("eval", run), ("train", "--resume", run, "--epochs", "2")):
            result = run_main(*argv)
            faults.tried()
            faults.check_output(result.stderr, result.returncode)
            if result.returncode == 2:
                assert "last.pt" in result.stderr, (kind, result.stderr)
            elif data != original:  # it loaded: then it must hold exactly what was saved
                state = load_checkpoint(run / "last.pt") if argv[0] == "eval" else None
                if state is not None and not all(
                        torch.equal(state["model"][k], reference["model"][k])
                        for k in reference["model"]):
                    faults.lost(f"{kind} checkpoint loaded with other weights")
        faults.survived()


def test_a_checkpoint_of_another_spec_is_named(trained, tmp_path, faults, run_main):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    state = load_checkpoint(run / "last.pt")
    state["model"] = create_model("lenet:norm=batch", num_classes=2).state_dict()
    save_checkpoint(state, run / "last.pt")
    faults.injected()
    for argv in (("eval", run), ("predict", run, "x.png"), ("train", "--resume", run)):
        result = run_main(*argv)
        faults.check_output(result.stderr, result.returncode)
        assert result.returncode == 2 and "last.pt" in result.stderr, result.stderr
    faults.survived()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text[: len(text) // 2], "is not valid JSON"),
    (lambda text: "", "is not valid JSON"),
    (lambda text: "[1, 2]", "is not a cnnlab run record"),
    (lambda text: json.dumps({**json.loads(text), "train": {
        **json.loads(text)["train"], "colour": "red"}}), "unknown training settings colour"),
    (lambda text: json.dumps({**json.loads(text), "train": {
        **json.loads(text)["train"], "lr": "fast"}}), "lr='fast' is not allowed"),
])
def test_a_hand_edited_config_is_named(edit, message, trained, tmp_path, faults, run_main):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "config.json").write_text(edit((run / "config.json").read_text()))
    faults.injected()
    result = run_main("train", "--resume", run, "--epochs", "2")
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "config.json" in result.stderr, result.stderr
    faults.survived()


def test_damaged_dataset_files_are_named(tmp_path, faults, run_main):
    source = "/usr/share/datasets/fashion-mnist"
    for kind, damage in (("truncated", lambda b: b[: len(b) // 3]), ("zero-length", lambda b: b""),
                         ("bit-flipped", lambda b: gzip.compress(
                             bytes([gzip.decompress(b)[0] ^ 1]) + gzip.decompress(b)[1:])),
                         ("not gzip", lambda b: b"plain text")):
        folder = tmp_path / kind
        shutil.copytree(source, folder)
        path = folder / "t10k-labels-idx1-ubyte.gz"
        damaged = damage(path.read_bytes())
        path.write_bytes(damaged)
        faults.injected()
        result = run_main("train", "lenet", "--data-dir", folder, "--subset", "64", "--epochs",
                          "1", "--out", tmp_path / f"run-{kind}")
        faults.check_output(result.stderr, result.returncode)
        assert result.returncode == 2 and "t10k-labels-idx1-ubyte" in result.stderr, \
            (kind, result.stderr)
        if path.read_bytes() != damaged:
            faults.lost(f"the user's {kind} {path.name} was replaced")
        faults.survived()


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "zero-length", "future",
                                    "pickle", "floats"])
def test_damaged_image_caches_are_rebuilt_with_a_warning(damage, picture_folder, tmp_path,
                                                         monkeypatch, faults):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    good = ImageFolder(picture_folder, size=12)
    (cache,) = (tmp_path / "cache" / "image-folders").glob("*.pt")
    data = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(data[: len(data) // 2])
    elif damage == "bit-flipped":
        cache.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "zero-length":
        cache.write_bytes(b"")
    else:
        tree = torch.load(cache, weights_only=True)
        if damage == "future":
            tree["format"] = 99
        elif damage == "floats":
            tree["images"] = torch.full(tree["images"].shape, float("nan"))
        else:
            tree = {"model": RunsCode()}
        torch.save(tree, cache)
    faults.injected()
    with pytest.warns(UserWarning, match="decoding the images again"):
        again = ImageFolder(picture_folder, size=12)
    assert torch.equal(again.train[0], good.train[0])
    faults.survived()


class RunsCode:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, faults, run_main):
    torch.save({"model": {}, "config": RunsCode()}, tmp_path / "evil.pt")
    faults.injected()
    with pytest.raises(UsageError, match="refused to load"):
        load_checkpoint(tmp_path / "evil.pt")
    result = run_main("eval", tmp_path / "evil.pt")
    faults.check_output(result.stderr, result.returncode)
    assert result.returncode == 2 and "code ran" not in result.stderr + result.stdout
    faults.survived()
