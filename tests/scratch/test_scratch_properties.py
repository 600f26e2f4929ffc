"""Property tests: the vectorised operators equal torch.nn.functional (values and gradients) and
the loop versions equal the vectorised ones, over random shapes, kernels, strides and paddings."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.scratch import (
    batch_norm,
    batch_norm_loop,
    conv2d,
    conv2d_loop,
    corr2d,
    corr2d_loop,
    corr2d_multi_in_out,
    corr2d_multi_in_out_loop,
    pool2d,
    pool2d_loop,
)
from cnnlab.scratch import conv as scratch_conv

ATOL = 1e-5
DTYPES = st.sampled_from([torch.float32, torch.float64])


def assert_all_close(actual, expected):
    """Each tensor of `actual` equals its partner in `expected` within 1e-5."""
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=ATOL)


def random_tensors(seed: int, dtype, *shapes):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]


def values_and_grads(fn, inputs, upstream_seed: int):
    """fn(*inputs) and the gradients of <fn(*inputs), G> for a random G, for each input."""
    leaves = [x.clone().requires_grad_() if x is not None else None for x in inputs]
    Y = fn(*leaves)
    (G,) = random_tensors(upstream_seed, Y.dtype, Y.shape)
    wrt = [x for x in leaves if x is not None]
    return (Y.detach(), *torch.autograd.grad(Y, wrt, G))


def either_int_or_pair(draw, pair):
    """Pass equal sides as an int half of the time, as users do."""
    return pair[0] if pair[0] == pair[1] and draw(st.booleans()) else pair


@st.composite
def conv_cases(draw, max_side=9, max_batch=3, max_channels=3, max_padding=2):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    hw = [
        draw(st.integers(max(1, k - 2 * p), max_side)) for k, p in zip(kernel, padding, strict=True)
    ]
    n, c_in, c_out = (draw(st.integers(1, m)) for m in (max_batch, max_channels, max_channels))
    shapes = [(n, c_in, *hw), (c_out, c_in, *kernel), (c_out,) if draw(st.booleans()) else None]
    return {
        "shapes": shapes,
        "stride": either_int_or_pair(draw, stride),
        "padding": either_int_or_pair(draw, padding),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "dtype": draw(DTYPES),
    }


def conv_inputs(case):
    shapes = [s for s in case["shapes"] if s is not None]
    tensors = random_tensors(case["seed"], case["dtype"], *shapes)
    return tensors if len(tensors) == 3 else [*tensors, None]


@settings(max_examples=50, deadline=None)
@given(conv_cases())
def test_conv2d_matches_torch(case):
    def ours(X, K, b):
        return conv2d(X, K, b, stride=case["stride"], padding=case["padding"])

    def torch_conv(X, K, b):
        return F.conv2d(X, K, b, stride=case["stride"], padding=case["padding"])

    inputs = conv_inputs(case)
    assert_all_close(values_and_grads(ours, inputs, 1), values_and_grads(torch_conv, inputs, 1))


@pytest.mark.parametrize("positions_per_block", [1, 30, 100])
def test_conv2d_in_batch_blocks_matches_torch(monkeypatch, positions_per_block):
    monkeypatch.setattr(scratch_conv, "POSITIONS_PER_BLOCK", positions_per_block)
    inputs = random_tensors(0, torch.float64, (7, 3, 9, 8), (4, 3, 3, 2), (4,))

    def run(fn):
        return lambda X, K, b: fn(X, K, b, stride=(2, 1), padding=1)

    expected = values_and_grads(run(F.conv2d), inputs, 8)
    assert_all_close(values_and_grads(run(conv2d), inputs, 8), expected)


@settings(max_examples=30, deadline=None)
@given(conv_cases(max_side=6, max_batch=2, max_channels=2))
def test_conv2d_loop_matches_vectorised(case):
    def run(fn):
        return lambda X, K, b: fn(X, K, b, stride=case["stride"], padding=case["padding"])

    inputs = conv_inputs(case)
    assert_all_close(
        values_and_grads(run(conv2d_loop), inputs, 2), values_and_grads(run(conv2d), inputs, 2)
    )


@settings(max_examples=30, deadline=None)
@given(conv_cases(max_side=6, max_batch=1, max_channels=3, max_padding=0))
def test_corr2d_and_channel_loops_match_vectorised(case):
    X, K, _ = conv_inputs(case)
    single = [X[0, 0], K[0, 0]]
    assert_all_close(values_and_grads(corr2d_loop, single, 3), values_and_grads(corr2d, single, 3))
    assert_all_close([corr2d_multi_in_out_loop(X[0], K)], [corr2d_multi_in_out(X[0], K)])


@st.composite
def pool_cases(draw, max_side=9):
    window = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in window)
    stride = None if draw(st.booleans()) else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    hw = [
        draw(st.integers(max(1, k - 2 * p), max_side)) for k, p in zip(window, padding, strict=True)
    ]
    leading = draw(st.sampled_from([(), (2,), (2, 3), (1, 1)]))
    return {
        "shape": (*leading, *hw),
        "window": either_int_or_pair(draw, window),
        "stride": None if stride is None else either_int_or_pair(draw, stride),
        "padding": either_int_or_pair(draw, padding),
        "mode": draw(st.sampled_from(["max", "avg"])),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "dtype": draw(DTYPES),
    }


def torch_pool(X, case):
    as_batch = X if X.ndim >= 3 else X[None]
    pool = F.max_pool2d if case["mode"] == "max" else F.avg_pool2d
    stride = case["window"] if case["stride"] is None else case["stride"]
    Y = pool(as_batch, case["window"], stride, case["padding"])
    return Y if X.ndim >= 3 else Y[0]


@settings(max_examples=50, deadline=None)
@given(pool_cases())
def test_pool2d_matches_torch(case):
    def ours(X):
        return pool2d(X, case["window"], case["mode"], case["stride"], case["padding"])

    inputs = random_tensors(case["seed"], case["dtype"], case["shape"])
    expected = values_and_grads(lambda X: torch_pool(X, case), inputs, 4)
    assert_all_close(values_and_grads(ours, inputs, 4), expected)


@settings(max_examples=30, deadline=None)
@given(pool_cases(max_side=6))
def test_pool2d_loop_matches_vectorised(case):
    def run(fn):
        return lambda X: fn(X, case["window"], case["mode"], case["stride"], case["padding"])

    inputs = random_tensors(case["seed"], case["dtype"], case["shape"])
    assert_all_close(
        values_and_grads(run(pool2d_loop), inputs, 5), values_and_grads(run(pool2d), inputs, 5)
    )


@pytest.mark.parametrize(
    "window, stride, padding", [(2, None, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 0))]
)
def test_max_pool_gradient_goes_to_the_first_of_tied_maxima_as_in_torch(window, stride, padding):
    X = torch.randint(0, 3, (2, 3, 7, 7), generator=torch.Generator().manual_seed(0)).double()
    ours = values_and_grads(lambda X: pool2d(X, window, "max", stride, padding), [X], 6)
    theirs = values_and_grads(lambda X: F.max_pool2d(X, window, stride, padding), [X], 6)
    assert torch.equal(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])


@st.composite
def batch_norm_cases(draw):
    n = draw(st.integers(2, 4))
    c = draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (1, 1), (3, 2), (4, 5)]))
    return {
        "shape": (n, c, *spatial),
        "training": draw(st.booleans()),
        "momentum": draw(st.sampled_from([0.1, 0.5, 1.0, 0.0])),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "dtype": draw(DTYPES),
    }


def batch_norm_inputs(case):
    c = case["shape"][1]
    X, gamma, beta, mean, var = random_tensors(
        case["seed"], case["dtype"], case["shape"], (c,), (c,), (c,), (c,)
    )
    return X, gamma, beta, mean, var.abs() + 0.5


@settings(max_examples=50, deadline=None)
@given(batch_norm_cases())
def test_batch_norm_matches_torch(case):
    X, gamma, beta, mean, var = batch_norm_inputs(case)
    options = {"eps": case["eps"], "momentum": case["momentum"], "training": case["training"]}
    statistics = {}

    def ours(X, gamma, beta):
        Y, statistics["mean"], statistics["var"] = batch_norm(X, gamma, beta, mean, var, **options)
        return Y

    running_mean, running_var = mean.clone(), var.clone()

    def theirs(X, gamma, beta):
        return F.batch_norm(X, running_mean, running_var, gamma, beta, **options)

    inputs = [X, gamma, beta]
    assert_all_close(values_and_grads(ours, inputs, 7), values_and_grads(theirs, inputs, 7))
    assert_all_close([statistics["mean"], statistics["var"]], [running_mean, running_var])


@settings(max_examples=30, deadline=None)
@given(batch_norm_cases())
def test_batch_norm_loop_matches_vectorised(case):
    X, gamma, beta, mean, var = batch_norm_inputs(case)
    options = {"eps": case["eps"], "momentum": case["momentum"], "training": case["training"]}
    assert_all_close(
        batch_norm_loop(X, gamma, beta, mean, var, **options),
        batch_norm(X, gamma, beta, mean, var, **options),
    )
