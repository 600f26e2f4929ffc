"""Multiple input and output channels (d2l 7.4): loop, vectorised, and 1x1 as a matmul."""

from __future__ import annotations

import torch

from cnnlab.errors import UsageError
from cnnlab.scratch._checks import check_ndim, check_window_fits, common_float_dtype, shape_of
from cnnlab.scratch.conv import conv2d, corr2d_loop


def _check_channels(X, K, kernel_layout: str, op: str):
    check_ndim(X, (3,), "X", "(C_in, H, W)", op)
    check_ndim(K, (len(kernel_layout.split(",")),), "K", kernel_layout, op)
    c_in = K.shape[0] if K.ndim == 3 else K.shape[1]
    if X.shape[0] != c_in:
        raise UsageError(
            f"{op}: X has {X.shape[0]} input channels (shape {shape_of(X)}) but K expects {c_in} "
            f"(shape {shape_of(K)}, laid out {kernel_layout})"
        )
    check_window_fits(shape_of(X)[1:], shape_of(K)[-2:], (0, 0), op, f"X shape {shape_of(X)}")


def corr2d_multi_in_loop(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Cross-correlate each input channel with its own kernel slice, then add the results up."""
    _check_channels(X, K, "(C_in, kh, kw)", "corr2d_multi_in_loop")
    return sum(corr2d_loop(x, k) for x, k in zip(X, K, strict=True))


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """X (C_in, H, W) with K (C_in, kh, kw) -> one (H', W') channel; vectorised via conv2d."""
    _check_channels(X, K, "(C_in, kh, kw)", "corr2d_multi_in")
    return conv2d(X[None], K[None])[0, 0]


def corr2d_multi_in_out_loop(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """One multi-input cross-correlation per output kernel, stacked as the output channels."""
    _check_channels(X, K, "(C_out, C_in, kh, kw)", "corr2d_multi_in_out_loop")
    return torch.stack([corr2d_multi_in_loop(X, k) for k in K])


def corr2d_multi_in_out(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """X (C_in, H, W) with K (C_out, C_in, kh, kw) -> (C_out, H', W'); vectorised via conv2d."""
    _check_channels(X, K, "(C_out, C_in, kh, kw)", "corr2d_multi_in_out")
    return conv2d(X[None], K)[0]


def corr2d_multi_in_out_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution is a fully connected layer applied at every pixel: one matrix product."""
    op = "corr2d_multi_in_out_1x1"
    _check_channels(X, K, "(C_out, C_in, 1, 1)", op)
    if K.shape[2:] != (1, 1):
        raise UsageError(f"{op}: K must be (C_out, C_in, 1, 1), got shape {shape_of(K)}")
    c_in, h, w = X.shape
    dtype = common_float_dtype(X, K)
    # one row per pixel, one column per channel: each pixel's channels meet the kernel matrix
    pixels = X.to(dtype).permute(1, 2, 0).reshape(h * w, c_in).contiguous()
    Y = pixels @ K.reshape(K.shape[0], c_in).to(dtype).T
    return Y.T.reshape(K.shape[0], h, w)
