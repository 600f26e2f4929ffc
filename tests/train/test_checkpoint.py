"""Checkpoints: atomic writes, refusal of pickled code, clear errors for damaged files."""

import os
import random

import numpy as np
import pytest
import torch

from cnnlab.files import remove_stale_temporaries
from cnnlab.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class _RunsCode:
    """Unpickling this object would create `marker` by calling os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"model": {"w": torch.randn(3, 4)}, "epoch": 2, "history": [{"acc": 0.5}]}
    path = save_checkpoint(state, tmp_path / "last.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["epoch"] == 2 and loaded["history"] == [{"acc": 0.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(ValueError, match="refused to load .*evil.pt.*arbitrary unpickling"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0, 10, 0.5])
def test_truncated_or_empty_checkpoint_names_the_file(tmp_path, keep):
    path = save_checkpoint({"model": {"w": torch.randn(100)}}, tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(ValueError, match="last.pt is truncated or corrupt"):
        load_checkpoint(path)


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"model": {"w": torch.zeros(5)}}, tmp_path / "last.pt")

    def crash_half_way(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"model": {"w": torch.ones(5)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.zeros(5))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_checkpoint_and_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "nothing.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cnnlab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".last.pt.1234.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_text("the user's")
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]


def test_rng_states_survive_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)
    save_checkpoint({"model": {}, "rng": rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(9)
    random.seed(9)
    np.random.seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]
