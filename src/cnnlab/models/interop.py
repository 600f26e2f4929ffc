"""Load torchvision weights into cnnlab's ImageNet-configuration models.

cnnlab's `config="imagenet"` models register their layers in torchvision's order, so the two
state dicts pair up entry by entry; each pair must agree in tensor kind and shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

_AUXILIARY = ("aux1.", "aux2.")
"""GoogLeNet's auxiliary classifiers: training-time heads with no cnnlab counterpart."""


def load_torchvision(model: nn.Module, source: nn.Module | Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy a torchvision model's weights (the model or its `state_dict`) into `model`.

    `model` is a cnnlab model built with `config="imagenet"` (resnet*, resnext50, vgg*,
    densenet*, googlenet). Raises ValueError naming the first pair of entries that do not match.
    """
    theirs = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    theirs = {key: value for key, value in theirs.items() if not key.startswith(_AUXILIARY)}
    ours = model.state_dict()
    if len(ours) != len(theirs):
        raise ValueError(f"the torchvision state dict has {len(theirs)} entries but the cnnlab "
                         f"model has {len(ours)}; build the cnnlab model with config='imagenet' "
                         f"and the matching name")
    mapped = {}
    for (our_key, our_value), (their_key, their_value) in zip(ours.items(), theirs.items(),
                                                              strict=True):
        same_kind = our_key.rsplit(".", 1)[-1] == their_key.rsplit(".", 1)[-1]
        if not same_kind or our_value.shape != their_value.shape:
            raise ValueError(f"torchvision's {their_key} {tuple(their_value.shape)} does not "
                             f"match cnnlab's {our_key} {tuple(our_value.shape)}; build the "
                             f"cnnlab model with config='imagenet' and the matching name")
        mapped[our_key] = their_value
    model.load_state_dict(mapped)
    return model
