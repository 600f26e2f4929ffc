"""Load torchvision weights into cnnlab's ImageNet-configuration models.

cnnlab's `config="imagenet"` models register their layers in torchvision's order, so the two
state dicts pair up entry by entry; each pair must agree in tensor kind and shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.googlenet import AuxiliaryClassifier

_AUXILIARY = ("aux1.", "aux2.")
"""GoogLeNet's auxiliary classifiers in torchvision's state dict (after the main layers)."""


def _auxiliary_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of cnnlab's side classifiers (GoogLeNet with aux_logits)."""
    return tuple(f"{name}." for name, module in model.named_modules()
                 if isinstance(module, AuxiliaryClassifier))


def _split(state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]):
    """The entries outside `prefixes` and those inside, each in order."""
    outside = {key: value for key, value in state.items() if not key.startswith(prefixes)}
    inside = {key: value for key, value in state.items() if key.startswith(prefixes)}
    return outside, inside


def _pair(ours: dict, theirs: dict, what: str) -> dict:
    """Our keys with their tensors, matched entry by entry; a mismatch is one UsageError line."""
    if len(ours) != len(theirs):
        raise UsageError(f"the torchvision {what} has {len(theirs)} entries but the cnnlab "
                         f"model has {len(ours)}; build the cnnlab model with config='imagenet' "
                         f"and the matching name (and aux_logits as torchvision's)")
    mapped = {}
    for (our_key, our_value), (their_key, their_value) in zip(ours.items(), theirs.items(),
                                                              strict=True):
        same_kind = our_key.rsplit(".", 1)[-1] == their_key.rsplit(".", 1)[-1]
        if not same_kind or our_value.shape != their_value.shape:
            raise UsageError(f"torchvision's {their_key} {tuple(their_value.shape)} does not "
                             f"match cnnlab's {our_key} {tuple(our_value.shape)}; build the "
                             f"cnnlab model with config='imagenet' and the matching name")
        mapped[our_key] = their_value
    return mapped


def load_torchvision(model: nn.Module, source: nn.Module | Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy a torchvision model's weights (the model or its `state_dict`) into `model`.

    `model` is a cnnlab model built with `config="imagenet"` (resnet*, resnext50, vgg*,
    densenet*, googlenet, alexnet). GoogLeNet's auxiliary classifiers load when both models have
    them and are skipped when only torchvision's has. Raises a UsageError naming the first pair
    of entries that do not match.
    """
    theirs = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    their_main, their_auxiliary = _split(theirs, _AUXILIARY)
    our_main, our_auxiliary = _split(model.state_dict(), _auxiliary_prefixes(model))
    mapped = _pair(our_main, their_main, "state dict")
    if our_auxiliary:
        mapped.update(_pair(our_auxiliary, their_auxiliary, "auxiliary classifiers"))
    model.load_state_dict(mapped)
    return model
