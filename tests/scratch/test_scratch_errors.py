"""Bad input gets one ValueError that names the shapes (or values) involved."""

import pytest
import torch

from cnnlab.scratch import (
    BatchNorm,
    Conv2D,
    batch_norm,
    batch_norm_loop,
    conv2d,
    conv2d_loop,
    conv_output_shape,
    corr2d,
    corr2d_loop,
    corr2d_multi_in,
    corr2d_multi_in_loop,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
    pool2d,
    pool2d_loop,
)

X4, K4 = torch.zeros(2, 3, 5, 5), torch.zeros(4, 3, 3, 3)
C = torch.ones(3)


def bn_args(X=None, **overrides):
    X = torch.randn(4, 3) if X is None else X
    return (X, C, C, C, C), overrides


CONV_CASES = [
    ((torch.zeros(3, 5, 5), K4), {}, ["(N, C_in, H, W)", "(3, 5, 5)"]),
    ((X4, torch.zeros(3, 3, 3)), {}, ["(C_out, C_in, kh, kw)", "(3, 3, 3)"]),
    ((X4, torch.zeros(4, 2, 3, 3)), {}, ["3 input channels", "(2, 3, 5, 5)", "(4, 2, 3, 3)"]),
    ((X4, torch.zeros(4, 3, 7, 3)), {}, ["kernel 7x3", "padded input 5x5", "(2, 3, 5, 5)"]),
    ((X4, torch.zeros(4, 3, 8, 3)), {"padding": (1, 0)}, ["kernel 8x3", "padded input 7x5"]),
    ((X4, K4), {"stride": 0}, ["stride must be positive", "0"]),
    ((X4, K4), {"stride": (1, -2)}, ["stride must be positive", "(1, -2)"]),
    ((X4, K4), {"padding": -1}, ["padding must be 0 or more", "-1"]),
    ((X4, K4), {"stride": (1, 2, 3)}, ["stride must be an int or a pair", "(1, 2, 3)"]),
    ((X4, K4), {"bias": torch.zeros(3)}, ["bias must have shape (4,)", "(3,)"]),
]


@pytest.mark.parametrize("conv", [conv2d, conv2d_loop])
@pytest.mark.parametrize("args, kwargs, fragments", CONV_CASES)
def test_conv2d_rejects_bad_input(conv, args, kwargs, fragments):
    with pytest.raises(ValueError) as error:
        conv(*args, **kwargs)
    message = str(error.value)
    assert message.startswith(conv.__name__) and "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("corr", [corr2d, corr2d_loop])
def test_corr2d_rejects_bad_input(corr):
    with pytest.raises(ValueError, match=r"kernel 3x1 is larger .* 2x2 .*\(2, 2\)"):
        corr(torch.zeros(2, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"X must have shape \(H, W\), got a 3-D .*\(1, 2, 2\)"):
        corr(torch.zeros(1, 2, 2), torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"K must have shape \(kh, kw\).*\(1,\)"):
        corr(torch.zeros(2, 2), torch.zeros(1))


@pytest.mark.parametrize("multi_in", [corr2d_multi_in, corr2d_multi_in_loop])
def test_multi_in_rejects_channel_mismatch_and_large_kernels(multi_in):
    with pytest.raises(ValueError, match=r"X has 2 input channels .*\(2, 3, 3\).*3 .*\(3, 2, 2\)"):
        multi_in(torch.zeros(2, 3, 3), torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match=r"kernel 4x2 is larger than the padded input 3x3"):
        multi_in(torch.zeros(2, 3, 3), torch.zeros(2, 4, 2))


@pytest.mark.parametrize("multi_in_out", [corr2d_multi_in_out, corr2d_multi_in_out_loop])
def test_multi_in_out_rejects_bad_shapes(multi_in_out):
    with pytest.raises(
        ValueError, match=r"X has 2 input channels .*expects 3 \(shape \(4, 3, 1, 1\)"
    ):
        multi_in_out(torch.zeros(2, 3, 3), torch.zeros(4, 3, 1, 1))
    with pytest.raises(ValueError, match=r"K must have shape \(C_out, C_in, kh, kw\).*\(2, 1, 1\)"):
        multi_in_out(torch.zeros(2, 3, 3), torch.zeros(2, 1, 1))


def test_1x1_rejects_larger_kernels():
    with pytest.raises(
        ValueError, match=r"K must be \(C_out, C_in, 1, 1\), got shape \(4, 2, 3, 3\)"
    ):
        corr2d_multi_in_out_1x1(torch.zeros(2, 3, 3), torch.zeros(4, 2, 3, 3))


@pytest.mark.parametrize("pool", [pool2d, pool2d_loop])
@pytest.mark.parametrize(
    "args, kwargs, fragments",
    [
        ((torch.zeros(5),), {}, ["(H, W), (C, H, W) or (N, C, H, W)", "(5,)"]),
        ((torch.zeros(1, 1, 2, 2),), {}, ["kernel 3x3", "padded input 2x2", "(1, 1, 2, 2)"]),
        ((torch.zeros(4, 4),), {"stride": 0}, ["stride must be positive"]),
        ((torch.zeros(4, 4),), {"padding": -1}, ["padding must be 0 or more"]),
        ((torch.zeros(4, 4),), {"padding": 2}, ["at most half the window (3, 3)"]),
        ((torch.zeros(4, 4),), {"mode": "min"}, ["'max' or 'avg'", "'min'"]),
    ],
)
def test_pool2d_rejects_bad_input(pool, args, kwargs, fragments):
    with pytest.raises(ValueError) as error:
        pool(*args, 3, **kwargs)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("norm", [batch_norm, batch_norm_loop])
@pytest.mark.parametrize(
    "X, overrides, fragments",
    [
        (torch.zeros(4, 3, 2), {}, ["(N, C) or (N, C, H, W)", "(4, 3, 2)"]),
        (torch.zeros(4, 5), {}, ["X has 5 channels (shape (4, 5))", "gamma must have shape (5,)"]),
        (torch.zeros(1, 3), {}, ["more than one value per channel", "(1, 3)"]),
        (None, {"eps": 0.0}, ["eps must be positive"]),
        (None, {"momentum": 1.5}, ["momentum must be between 0 and 1"]),
    ],
)
def test_batch_norm_rejects_bad_input(norm, X, overrides, fragments):
    args, kwargs = bn_args(X, **overrides)
    with pytest.raises(ValueError) as error:
        norm(*args, **kwargs)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_batch_norm_accepts_one_value_per_channel_in_inference():
    Y, _, _ = batch_norm(torch.zeros(1, 3), C, C, C, C, training=False)
    assert Y.shape == (1, 3)


def test_layers_reject_bad_configuration_and_input():
    with pytest.raises(ValueError, match="num_dims must be 2 .* or 4 .*got 3"):
        BatchNorm(3, 3)
    with pytest.raises(ValueError, match="num_features must be a positive int, got 0"):
        BatchNorm(0, 2)
    with pytest.raises(ValueError, match=r"expects X of shape \(N, C, H, W\), got \(2, 3\)"):
        BatchNorm(3, 4)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="kernel size must be positive, got 0"):
        Conv2D(0)


def test_conv_output_shape_rejects_impossible_geometry():
    with pytest.raises(ValueError, match=r"kernel 9x9 is larger than the padded input 8x8"):
        conv_output_shape(8, 9)
    with pytest.raises(ValueError, match="stride must be positive"):
        conv_output_shape(8, 3, 1, 0)
    with pytest.raises(ValueError, match="input size must be positive"):
        conv_output_shape((0, 8), 3)
