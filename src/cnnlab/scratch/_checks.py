"""Argument checks shared by the scratch operators: each failure is a ValueError naming shapes."""

from __future__ import annotations

import torch

from cnnlab.errors import UsageError


def shape_of(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def as_pair(value, what: str, op: str) -> tuple[int, int]:
    """Turn an int or a pair of ints (height, width) into a pair, as torch's conv arguments do."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise UsageError(
        f"{op}: {what} must be an int or a pair of ints (height, width), got {value!r}"
    )


def stride_pair(stride, op: str) -> tuple[int, int]:
    pair = as_pair(stride, "stride", op)
    if min(pair) <= 0:
        raise UsageError(f"{op}: stride must be positive, got {stride!r}; use 1 for every position")
    return pair


def padding_pair(padding, op: str) -> tuple[int, int]:
    pair = as_pair(padding, "padding", op)
    if min(pair) < 0:
        raise UsageError(f"{op}: padding must be 0 or more, got {padding!r}; use 0 for no padding")
    return pair


def kernel_pair(kernel, op: str) -> tuple[int, int]:
    pair = as_pair(kernel, "kernel size", op)
    if min(pair) <= 0:
        raise UsageError(f"{op}: kernel size must be positive, got {kernel!r}")
    return pair


def check_ndim(tensor: torch.Tensor, allowed: tuple[int, ...], name: str, layout: str, op: str):
    """Raise unless `tensor` has one of the `allowed` numbers of dimensions (see `layout`)."""
    if not isinstance(tensor, torch.Tensor):
        raise UsageError(f"{op}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim not in allowed:
        raise UsageError(
            f"{op}: {name} must have shape {layout}, got a {tensor.ndim}-D tensor of shape "
            f"{shape_of(tensor)}"
        )


def check_window_fits(
    in_hw: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], op: str, detail: str
):
    """Raise when a kh x kw window does not fit inside the padded input."""
    padded = (in_hw[0] + 2 * padding[0], in_hw[1] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise UsageError(
            f"{op}: kernel {kernel[0]}x{kernel[1]} is larger than the padded input "
            f"{padded[0]}x{padded[1]} ({detail}, padding {padding}); "
            "use a smaller kernel or more padding"
        )


def window_geometry(in_hw: tuple[int, int], kernel, stride, padding, op: str, detail: str):
    """The sliding window of convolution and pooling, checked: `kernel`, `stride` and `padding`
    as pairs (each an int or a pair of ints; a stride of None is the kernel's), then the window
    fitted inside the padded input (`detail` names the input in the error). Returns the kernel,
    stride and padding pairs and the output height and width, floor((n - k + 2p + s) / s) per
    side."""
    kernel = kernel_pair(kernel, op)
    stride = kernel if stride is None else stride_pair(stride, op)
    padding = padding_pair(padding, op)
    check_window_fits(in_hw, kernel, padding, op, detail)
    sides = zip(in_hw, kernel, padding, stride, strict=True)
    return kernel, stride, padding, tuple((n - k + 2 * p + s) // s for n, k, p, s in sides)


def common_float_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the operators compute in: the promoted dtype, or the default float for integers."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()
