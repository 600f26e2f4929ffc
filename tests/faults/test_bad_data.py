"""Bad data: non-finite pixels and labels out of range stop before training, in one line."""

import pytest
import torch

from cnnlab.data.loader import DataModule
from cnnlab.errors import UsageError


class Tensors(DataModule):
    """A data module over given tensors (as a damaged cache or a custom loader might give)."""

    kind = "tensors"

    def __init__(self, images, labels, classes=("a", "b")):
        super().__init__(batch_size=4, val_fraction=0.0, augment=None, seed=0, subset=None,
                         normalize=False, rank=0, world_size=1, config={})
        self._setup((images, labels), (images, labels), list(classes), images.shape[-1],
                    [0.0], [1.0])


@pytest.mark.parametrize(("images", "labels", "message"), [
    (torch.full((8, 1, 6, 6), float("nan")), torch.zeros(8, dtype=torch.long), "NaN or infinite"),
    (torch.full((8, 1, 6, 6), float("inf")), torch.zeros(8, dtype=torch.long), "NaN or infinite"),
    (torch.zeros(8, 1, 6, 6, dtype=torch.uint8), torch.full((8,), 2), "labels must be class"),
    (torch.zeros(8, 1, 6, 6, dtype=torch.uint8), torch.full((8,), -1), "labels must be class"),
    (torch.zeros(8, 1, 6, 6, dtype=torch.uint8), torch.zeros(7, dtype=torch.long), "N labels"),
    (torch.zeros(8, 6, 6, dtype=torch.uint8), torch.zeros(8, dtype=torch.long), "N images"),
])
def test_bad_data_is_refused_before_training(images, labels, message, faults):
    faults.injected()
    with pytest.raises(UsageError, match=message) as info:
        Tensors(images, labels)
    assert "\n" not in str(info.value)
    faults.survived()
