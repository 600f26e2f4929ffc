"""Max and average pooling (d2l 7.5): the loop version and the vectorised one.

Both pool each channel on its own and accept (H, W), (C, H, W) or (N, C, H, W) inputs. Max pooling
pads with -inf so padding never wins; average pooling counts the padded zeros, as torch does by
default (count_include_pad=True).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.errors import UsageError
from cnnlab.scratch._checks import check_ndim, common_float_dtype, shape_of, window_geometry

MODES = ("max", "avg")


def _pool_arguments(X, pool_size, mode, stride, padding, op: str):
    """Check pool2d's arguments; return (window, stride, padding, output size) as pairs."""
    check_ndim(X, (2, 3, 4), "X", "(H, W), (C, H, W) or (N, C, H, W)", op)
    if mode not in MODES:
        raise UsageError(f"{op}: mode must be 'max' or 'avg', got {mode!r}")
    geometry = window_geometry(shape_of(X)[-2:], pool_size, stride, padding, op,
                               f"X shape {shape_of(X)}")
    window, _, padding, _ = geometry
    # checked after the fit: a padding over half the window always lets the window fit
    if padding[0] > window[0] // 2 or padding[1] > window[1] // 2:
        raise UsageError(
            f"{op}: padding {padding} must be at most half the window {window} on each side "
            "(as in torch), so that every window holds at least one input value"
        )
    return geometry


def _pad(X: torch.Tensor, padding: tuple[int, int], mode: str) -> torch.Tensor:
    """X in floating point, its last two dimensions padded with -inf (max) or zeros (avg)."""
    ph, pw = padding
    fill = float("-inf") if mode == "max" else 0.0
    X = X.to(common_float_dtype(X))
    return F.pad(X, (pw, pw, ph, ph), value=fill) if ph or pw else X


def pool2d_loop(X, pool_size, mode: str = "max", stride=None, padding=0) -> torch.Tensor:
    """The chapter's pooling: visit every output position and take its window's max or mean."""
    window, (sh, sw), padding, (oh, ow) = _pool_arguments(
        X, pool_size, mode, stride, padding, "pool2d_loop"
    )
    X = _pad(X, padding, mode)
    kh, kw = window
    Y = X.new_zeros(*X.shape[:-2], oh, ow)
    for i in range(oh):
        for j in range(ow):
            patch = X[..., i * sh : i * sh + kh, j * sw : j * sw + kw]
            Y[..., i, j] = patch.amax(dim=(-2, -1)) if mode == "max" else patch.mean(dim=(-2, -1))
    return Y


def pool2d(X, pool_size, mode: str = "max", stride=None, padding=0) -> torch.Tensor:
    """Max or average pooling over pool_size windows; the stride defaults to the window.

    Vectorised: unfold lays every window out as a (kh*kw) row, then one reduction pools them all.
    Max pooling sends the gradient to one maximum per window, as torch's max_pool2d does.
    """
    window, stride, padding, _ = _pool_arguments(X, pool_size, mode, stride, padding, "pool2d")
    X = _pad(X, padding, mode)
    windows = X.unfold(-2, window[0], stride[0]).unfold(-2, window[1], stride[1]).flatten(-2)
    return windows.max(dim=-1).values if mode == "max" else windows.mean(dim=-1)
