"""cnnlab.models.layers.Flatten: nn.Flatten's values, with a channels-last gradient."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models import create_model
from cnnlab.models.layers import Flatten


def _gradient_of_input(flatten: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_()
    out = flatten(x)
    grad, = torch.autograd.grad(out, x, torch.arange(out.numel(), dtype=x.dtype).view_as(out))
    return out, grad


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_flatten_matches_nn_flatten_and_keeps_the_inputs_memory_format(memory_format):
    x = torch.randn(3, 4, 5, 6).contiguous(memory_format=memory_format)
    out, grad = _gradient_of_input(Flatten(), x)
    reference_out, reference_grad = _gradient_of_input(nn.Flatten(), x)
    assert torch.equal(out, reference_out) and torch.equal(grad, reference_grad)
    assert grad.is_contiguous(memory_format=memory_format)
    if memory_format == torch.channels_last:
        assert not reference_grad.is_contiguous(memory_format=torch.channels_last)


def test_flatten_without_gradients_is_plain_flatten():
    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.equal(Flatten()(x), x.flatten(1))
    assert torch.equal(Flatten(0, 1)(x), x.flatten(0, 1))


@pytest.mark.parametrize("name, size", [("lenet", 28), ("alexnet", 96), ("vgg11", 64),
                                        ("compact-resnet-s", 28)])
def test_channels_last_models_train_exactly_as_with_nn_flatten(name, size):
    torch.manual_seed(0)
    model = create_model(name, input_size=size).to(memory_format=torch.channels_last)
    reference = copy.deepcopy(model)
    for parent in reference.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, Flatten):
                setattr(parent, child_name, nn.Flatten(child.start_dim, child.end_dim))
    assert any(isinstance(m, Flatten) for m in model.modules())
    assert not any(isinstance(m, Flatten) for m in reference.modules())
    X = torch.randn(2, 1, size, size).contiguous(memory_format=torch.channels_last)
    results = []
    for net in (model, reference):
        torch.manual_seed(1)  # the same dropout masks
        F.cross_entropy(net(X), torch.tensor([3, 7])).backward()
        results.append([p.grad for p in net.parameters()])
    for ours, theirs in zip(*results, strict=True):
        assert torch.equal(ours, theirs)
