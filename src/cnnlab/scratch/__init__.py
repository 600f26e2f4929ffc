"""The chapter operators written from scratch: a loop version to read, a vectorised one to use.

Each `*_loop` function is the chapter's readable version; the plain name is the vectorised default
(same numbers, autograd flows through it, checked against torch.nn.functional).
"""

from cnnlab.scratch.batchnorm import BatchNorm, batch_norm, batch_norm_loop
from cnnlab.scratch.channels import (
    corr2d_multi_in,
    corr2d_multi_in_loop,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    corr2d_multi_in_out_loop,
)
from cnnlab.scratch.conv import Conv2D, conv2d, conv2d_loop, conv_output_shape, corr2d, corr2d_loop
from cnnlab.scratch.pool import pool2d, pool2d_loop

__all__ = [
    "BatchNorm",
    "Conv2D",
    "batch_norm",
    "batch_norm_loop",
    "conv2d",
    "conv2d_loop",
    "conv_output_shape",
    "corr2d",
    "corr2d_loop",
    "corr2d_multi_in",
    "corr2d_multi_in_loop",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "corr2d_multi_in_out_loop",
    "pool2d",
    "pool2d_loop",
]
