"""The scratch BatchNorm layer behaves as nn.BatchNorm1d/2d in training and in evaluation."""

import pytest
import torch
from torch import nn

from cnnlab.scratch import BatchNorm

CASES = [(2, nn.BatchNorm1d, (8, 5)), (4, nn.BatchNorm2d, (4, 5, 6, 3))]


def paired_layers(num_dims, reference_cls, num_features):
    ours, reference = BatchNorm(num_features, num_dims), reference_cls(num_features).double()
    ours.double()
    with torch.no_grad():
        ours.gamma.uniform_(0.5, 1.5)
        ours.beta.uniform_(-0.5, 0.5)
        reference.weight.copy_(ours.gamma)
        reference.bias.copy_(ours.beta)
    return ours, reference


def assert_same_state(ours, reference):
    torch.testing.assert_close(ours.gamma, reference.weight)
    torch.testing.assert_close(ours.beta, reference.bias)
    torch.testing.assert_close(ours.moving_mean, reference.running_mean)
    torch.testing.assert_close(ours.moving_var, reference.running_var)


@pytest.mark.parametrize("num_dims, reference_cls, shape", CASES)
def test_matches_torch_over_training_steps_and_in_eval(num_dims, reference_cls, shape):
    torch.manual_seed(0)
    ours, reference = paired_layers(num_dims, reference_cls, shape[1])
    optimisers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (ours, reference)]
    for step in range(5):
        X = torch.randn(shape, dtype=torch.float64) * (step + 1) + step
        G = torch.randn(shape, dtype=torch.float64)
        outputs = []
        for layer, optimiser in zip((ours, reference), optimisers, strict=True):
            optimiser.zero_grad()
            Y = layer(X)
            (Y * G).sum().backward()
            optimiser.step()
            outputs.append(Y.detach())
        torch.testing.assert_close(*outputs)
        assert_same_state(ours, reference)
    ours.eval()
    reference.eval()
    X = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(ours(X), reference(X))  # under autograd: still the running stats
    with torch.no_grad():
        torch.testing.assert_close(ours(X * 3), reference(X * 3))
    assert_same_state(ours, reference)


@pytest.mark.parametrize("num_dims, reference_cls, shape", CASES)
def test_training_flag_not_grad_mode_decides_the_behaviour(num_dims, reference_cls, shape):
    ours, reference = paired_layers(num_dims, reference_cls, shape[1])
    X = torch.randn(shape, dtype=torch.float64) + 2
    with torch.no_grad():  # training mode without autograd still uses and updates batch stats
        torch.testing.assert_close(ours(X), reference(X))
    assert_same_state(ours, reference)
    assert not torch.equal(ours.moving_mean, torch.zeros(shape[1], dtype=torch.float64))


def test_eval_mode_leaves_the_running_statistics_alone():
    layer = BatchNorm(3, 4).eval()
    X = torch.randn(2, 3, 4, 4) * 5 + 1
    assert torch.equal(layer(X), X / torch.sqrt(torch.tensor(1 + 1e-5)))
    assert torch.equal(layer.moving_mean, torch.zeros(3))
    assert torch.equal(layer.moving_var, torch.ones(3))


def test_state_dict_names_follow_the_chapter():
    assert list(BatchNorm(3, 2).state_dict()) == ["gamma", "beta", "moving_mean", "moving_var"]
