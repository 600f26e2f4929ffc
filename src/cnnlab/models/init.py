"""Weight initialisation of convolutional and fully connected layers (the chapter's `init_cnn`)."""

from __future__ import annotations

from torch import nn

from cnnlab.errors import UsageError

INITS = ("xavier", "kaiming", None)


def init_weights(model: nn.Module, init: str | None = "xavier") -> nn.Module:
    """Re-initialise every Conv2d and Linear weight in place; biases keep PyTorch's default.

    "xavier" is Xavier-uniform (the chapter's choice), "kaiming" is Kaiming-normal for ReLU
    networks, None leaves PyTorch's default initialisation.
    """
    if init not in INITS:
        raise UsageError(f"unknown init {init!r}; use 'xavier', 'kaiming' or None")
    if init is None:
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if init == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model
