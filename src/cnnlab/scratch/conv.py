"""Cross-correlation, padding and stride (d2l 7.2-7.3): loop versions and vectorised ones."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.scratch._checks import (
    as_pair,
    check_ndim,
    check_window_fits,
    common_float_dtype,
    kernel_pair,
    shape_of,
    window_geometry,
)


def conv_output_shape(in_hw, kernel, padding=0, stride=1) -> tuple[int, int]:
    """Output height and width: floor((n - k + 2p + s) / s) per side, p = padding on each side."""
    op = "conv_output_shape"
    size = as_pair(in_hw, "input size", op)
    if min(size) <= 0:
        raise UsageError(f"{op}: input size must be positive, got {in_hw!r}")
    return window_geometry(size, kernel, stride, padding, op, f"input {size[0]}x{size[1]}")[3]


def _check_corr2d(X: torch.Tensor, K: torch.Tensor, op: str):
    check_ndim(X, (2,), "X", "(H, W)", op)
    check_ndim(K, (2,), "K", "(kh, kw)", op)
    check_window_fits(shape_of(X), shape_of(K), (0, 0), op, f"X shape {shape_of(X)}")


def corr2d_loop(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The chapter's 2-D cross-correlation: each output is the sum of a window of X times K."""
    _check_corr2d(X, K, "corr2d_loop")
    h, w = K.shape
    Y = X.new_zeros(X.shape[0] - h + 1, X.shape[1] - w + 1, dtype=common_float_dtype(X, K))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """2-D cross-correlation of X (H, W) with K (kh, kw); the vectorised conv2d on one channel."""
    _check_corr2d(X, K, "corr2d")
    return conv2d(X[None, None], K[None, None])[0, 0]


class Conv2D(nn.Module):
    """The chapter's convolutional layer: corr2d with a learnable kernel plus a scalar bias.

    The kernel starts uniform in +-1/sqrt(kh*kw), as nn.Conv2d's does; the bias starts at zero.
    """

    def __init__(self, kernel_size, bias: bool = True):
        super().__init__()
        kh, kw = kernel_pair(kernel_size, "Conv2D")
        bound = 1 / math.sqrt(kh * kw)
        self.weight = nn.Parameter(torch.empty(kh, kw).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = corr2d(X, self.weight)
        return Y if self.bias is None else Y + self.bias


def _conv_arguments(X, K, bias, stride, padding, op: str):
    """Check conv2d's arguments; return (stride, padding, output size) as pairs."""
    check_ndim(X, (4,), "X", "(N, C_in, H, W)", op)
    check_ndim(K, (4,), "K", "(C_out, C_in, kh, kw)", op)
    if X.shape[1] != K.shape[1]:
        raise UsageError(
            f"{op}: X has {X.shape[1]} input channels (shape {shape_of(X)}) but K expects "
            f"{K.shape[1]} (shape {shape_of(K)}); K must be (C_out, C_in, kh, kw) with "
            "C_in = X.shape[1]"
        )
    if bias is not None and (not isinstance(bias, torch.Tensor) or shape_of(bias) != K.shape[:1]):
        got = shape_of(bias) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise UsageError(
            f"{op}: bias must have shape ({K.shape[0]},), one per output channel, got {got}"
        )
    _, stride, padding, out_hw = window_geometry(shape_of(X)[2:], shape_of(K)[2:], stride,
                                                 padding, op, f"X shape {shape_of(X)}")
    return stride, padding, out_hw


def conv2d_loop(X, K, bias=None, stride=1, padding=0) -> torch.Tensor:
    """conv2d the chapter's way: pad, then visit every output position and sum window * kernel."""
    (sh, sw), (ph, pw), (oh, ow) = _conv_arguments(X, K, bias, stride, padding, "conv2d_loop")
    dtype = common_float_dtype(X, K)
    X, K = F.pad(X.to(dtype), (pw, pw, ph, ph)), K.to(dtype)
    kh, kw = K.shape[2:]
    Y = X.new_zeros(X.shape[0], K.shape[0], oh, ow)
    for i in range(oh):
        for j in range(ow):
            # window: (N, 1, C_in, kh, kw), broadcast against K: (C_out, C_in, kh, kw)
            window = X[:, None, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            Y[:, :, i, j] = (window * K).sum(dim=(2, 3, 4))
    return Y if bias is None else Y + bias.to(dtype).reshape(1, -1, 1, 1)


# Output positions per block in conv2d: a block's window rows (a few MB) then stay in cache.
POSITIONS_PER_BLOCK = 8192


def conv2d(X, K, bias=None, stride=1, padding=0) -> torch.Tensor:
    """Cross-correlate an NCHW batch with K (C_out, C_in, kh, kw), adding bias (C_out,) if given.

    Vectorised as matrix products, one kernel row at a time: the window rows (kw pixels by C_in
    channels) of all output positions become the rows of one matrix, and multiplying it by the
    kernel row adds that row's share to every output at once. Pixels are laid out channels-last,
    so each window row is one contiguous run of memory (the result keeps that layout), and the
    batch goes through in blocks of a few images to stay in the CPU cache.
    """
    (sh, sw), (ph, pw), (oh, ow) = _conv_arguments(X, K, bias, stride, padding, "conv2d")
    dtype = common_float_dtype(X, K)
    c_in = X.shape[1]
    c_out, _, kh, kw = K.shape
    pixels = F.pad(X.to(dtype).permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph)).contiguous()
    kernel_rows = K.to(dtype).permute(2, 3, 1, 0).reshape(kh, kw * c_in, c_out)
    start = X.new_zeros(c_out, dtype=dtype) if bias is None else bias.to(dtype)
    outputs = []
    for block in pixels.split(max(1, POSITIONS_PER_BLOCK // (oh * ow))):
        Y = start
        for i in range(kh):
            rows = block[:, i : i + sh * (oh - 1) + 1 : sh]  # (n, oh, W + 2pw, C_in)
            windows = rows.unfold(2, kw, sw).transpose(3, 4)  # (n, oh, ow, kw, C_in)
            Y = torch.addmm(Y, windows.reshape(-1, kw * c_in), kernel_rows[i])
        outputs.append(Y.view(-1, oh, ow, c_out))
    return torch.cat(outputs).permute(0, 3, 1, 2)
