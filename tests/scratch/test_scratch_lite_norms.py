"""The lite batch norms (mean only, variance only): loop and vectorised versions against a
reference written with torch primitives, in training and in evaluation."""

import pytest
import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.scratch import BatchNorm, batch_norm, batch_norm_loop

SHAPES = [(8, 5), (4, 5, 6, 3)]
LITE = ["mean-only", "var-only"]


def reference(X, gamma, beta, mean, var, eps, mode):
    """Centre with `mean` and/or divide by sqrt(var + eps), per channel, then gamma and beta."""
    shape = (1, -1) + (1,) * (X.ndim - 2)
    centred = X - mean.view(shape) if mode == "mean-only" else X
    scaled = centred / torch.sqrt(var.view(shape) + eps) if mode == "var-only" else centred
    return gamma.view(shape) * scaled + beta.view(shape)


def batch_statistics(X):
    dims = [d for d in range(X.ndim) if d != 1]
    var, mean = torch.var_mean(X, dim=dims, unbiased=False)
    return mean, var


def random_inputs(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    channels = shape[1]
    X = torch.randn(shape, generator=generator, dtype=torch.float64) * 3 + 1.5
    gamma = torch.rand(channels, generator=generator, dtype=torch.float64) + 0.5
    beta = torch.randn(channels, generator=generator, dtype=torch.float64)
    moving_mean = torch.randn(channels, generator=generator, dtype=torch.float64)
    moving_var = torch.rand(channels, generator=generator, dtype=torch.float64) + 0.5
    return X, gamma, beta, moving_mean, moving_var


@pytest.mark.parametrize("op", [batch_norm, batch_norm_loop])
@pytest.mark.parametrize("mode", LITE)
@pytest.mark.parametrize("shape", SHAPES)
def test_training_matches_the_reference_in_values_gradients_and_statistics(op, mode, shape):
    X, gamma, beta, moving_mean, moving_var = random_inputs(shape)
    leaves = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    Y, new_mean, new_var = op(*leaves, moving_mean, moving_var, eps=1e-5, momentum=0.1,
                              training=True, mode=mode)
    ref_leaves = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    mean, var = batch_statistics(ref_leaves[0])
    expected = reference(*ref_leaves, mean, var, 1e-5, mode)
    torch.testing.assert_close(Y, expected)
    G = torch.randn_like(Y)
    grads = torch.autograd.grad(Y, leaves, G)
    expected_grads = torch.autograd.grad(expected, ref_leaves, G)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    torch_bn = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1]).double()
    torch_bn.running_mean.copy_(moving_mean)
    torch_bn.running_var.copy_(moving_var)
    torch_bn(X)  # the running statistics move exactly as batch norm's
    torch.testing.assert_close(new_mean, torch_bn.running_mean)
    torch.testing.assert_close(new_var, torch_bn.running_var)


@pytest.mark.parametrize("op", [batch_norm, batch_norm_loop])
@pytest.mark.parametrize("mode", LITE)
@pytest.mark.parametrize("shape", SHAPES)
def test_evaluation_uses_the_running_statistics_and_leaves_them(op, mode, shape):
    X, gamma, beta, moving_mean, moving_var = random_inputs(shape, seed=1)
    Y, new_mean, new_var = op(X, gamma, beta, moving_mean, moving_var, training=False, mode=mode)
    torch.testing.assert_close(Y, reference(X, gamma, beta, moving_mean, moving_var, 1e-5, mode))
    assert new_mean is moving_mean and new_var is moving_var


@pytest.mark.parametrize("mode", LITE)
def test_loop_and_vectorised_versions_agree(mode):
    X, gamma, beta, moving_mean, moving_var = random_inputs((6, 4, 5, 5), seed=2)
    for training in (True, False):
        loop = batch_norm_loop(X, gamma, beta, moving_mean, moving_var, training=training,
                               mode=mode)
        fast = batch_norm(X, gamma, beta, moving_mean, moving_var, training=training, mode=mode)
        for a, b in zip(loop, fast, strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mode", LITE)
def test_layer_trains_then_evaluates_with_what_it_learned(mode):
    torch.manual_seed(0)
    layer = BatchNorm(3, 4, mode=mode).double()
    for _ in range(3):
        layer(torch.randn(4, 3, 5, 5, dtype=torch.float64) * 2 + 3)
    assert layer.moving_mean.min() > 0.5  # moved from 0 towards the batches' mean of 3
    layer.eval()
    X = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    expected = reference(X, layer.gamma, layer.beta, layer.moving_mean, layer.moving_var,
                         layer.eps, mode)
    torch.testing.assert_close(layer(X), expected)


def test_fixed_affine_layer_has_no_parameters_and_keeps_the_chapters_state_names():
    layer = BatchNorm(3, 2, mode="var-only", affine=False)
    assert list(layer.parameters()) == []
    assert list(layer.state_dict()) == ["moving_mean", "moving_var"]
    assert "mode='var-only', affine=False" in repr(layer)
    X = torch.randn(8, 3) * 4
    mean, var = batch_statistics(X)
    torch.testing.assert_close(layer(X), X / torch.sqrt(var + 1e-5))


def test_full_mode_is_batch_norm():
    X, gamma, beta, moving_mean, moving_var = random_inputs((8, 5))
    default = batch_norm(X, gamma, beta, moving_mean, moving_var)
    full = batch_norm(X, gamma, beta, moving_mean, moving_var, mode="full")
    for a, b in zip(default, full, strict=True):
        assert torch.equal(a, b)


def test_unknown_mode_is_one_line():
    X, gamma, beta, moving_mean, moving_var = random_inputs((8, 5))
    with pytest.raises(UsageError, match="batch_norm: mode must be one of full, mean-only, "
                                         "var-only, got 'median'"):
        batch_norm(X, gamma, beta, moving_mean, moving_var, mode="median")
    with pytest.raises(UsageError, match="BatchNorm: mode must be one of"):
        BatchNorm(5, 2, mode="centre")
