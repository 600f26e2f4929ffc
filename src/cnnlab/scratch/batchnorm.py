"""Batch normalization (d2l 8.5) with torch's conventions, so it matches nn.BatchNorm1d/2d.

Training normalises with the batch mean and biased variance and moves the running statistics
towards the batch ones: new = (1 - momentum) * old + momentum * batch, the variance taken unbiased.
Inference normalises with the running statistics.

The exercises' "lite" batch norms are modes of the same operator: "mean-only" only subtracts the
mean, "var-only" only divides by the standard deviation (both statistics still move as above).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.scratch._checks import check_ndim, shape_of

LAYOUTS = {2: "(N, C)", 4: "(N, C, H, W)"}

MODES = ("full", "mean-only", "var-only")
"""Centre and scale (batch norm), only centre, or only scale by the standard deviation."""


def _check_mode(mode, op: str) -> None:
    if mode not in MODES:
        raise UsageError(f"{op}: mode must be one of {', '.join(MODES)}, got {mode!r}")


def _check_batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training, mode,
                      op):
    _check_mode(mode, op)
    check_ndim(X, (2, 4), "X", "(N, C) or (N, C, H, W)", op)
    channels = X.shape[1]
    named = {"gamma": gamma, "beta": beta, "moving_mean": moving_mean, "moving_var": moving_var}
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor) or shape_of(tensor) != (channels,):
            got = shape_of(tensor) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise UsageError(
                f"{op}: X has {channels} channels (shape {shape_of(X)}), so {name} must have "
                f"shape ({channels},), got {got}"
            )
    if not eps > 0:
        raise UsageError(f"{op}: eps must be positive, got {eps}")
    if not 0 <= momentum <= 1:
        raise UsageError(f"{op}: momentum must be between 0 and 1, got {momentum}")
    if training and X.numel() // max(channels, 1) < 2:
        raise UsageError(
            f"{op}: training needs more than one value per channel to estimate a variance, "
            f"got X of shape {shape_of(X)}; use a larger batch or inference mode"
        )


def _moving_statistics(moving_mean, moving_var, mean, var, count: int, momentum: float):
    """Move the running mean and (unbiased) variance towards the batch's, outside autograd."""
    with torch.no_grad():
        unbiased = var * count / (count - 1)
        new_mean = (1 - momentum) * moving_mean + momentum * mean
        new_var = (1 - momentum) * moving_var + momentum * unbiased
    return new_mean.to(moving_mean.dtype), new_var.to(moving_var.dtype)


def _normalise(X, mean, var, eps, mode):
    """X centred (unless var-only) and divided by its standard deviation (unless mean-only)."""
    if mode != "var-only":
        X = X - mean
    if mode != "mean-only":
        X = X / torch.sqrt(var + eps)
    return X


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps=1e-5, momentum=0.1, training=True,
               mode="full"):
    """Normalise each channel of X (N, C) or (N, C, H, W), then scale by gamma and shift by beta.

    Returns (Y, new_moving_mean, new_moving_var); in inference the running statistics come back
    unchanged. Per-channel parameters and statistics have shape (C,). `mode` is one of MODES.
    """
    _check_batch_norm(
        X, gamma, beta, moving_mean, moving_var, eps, momentum, training, mode, "batch_norm"
    )
    dims = (0,) if X.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if X.ndim == 2 else (1, -1, 1, 1)
    if training:
        mean = X.mean(dim=dims)
        var = ((X - mean.reshape(shape)) ** 2).mean(dim=dims)
        new_mean, new_var = _moving_statistics(
            moving_mean, moving_var, mean, var, X.numel() // X.shape[1], momentum
        )
    else:
        mean, var, new_mean, new_var = moving_mean, moving_var, moving_mean, moving_var
    X_hat = _normalise(X, mean.reshape(shape), var.reshape(shape), eps, mode)
    return gamma.reshape(shape) * X_hat + beta.reshape(shape), new_mean, new_var


def batch_norm_loop(X, gamma, beta, moving_mean, moving_var, eps=1e-5, momentum=0.1, training=True,
                    mode="full"):
    """batch_norm one channel at a time: all of a channel's values in the batch share one mean
    and one variance (every position too, for convolutional inputs)."""
    _check_batch_norm(
        X, gamma, beta, moving_mean, moving_var, eps, momentum, training, mode, "batch_norm_loop"
    )
    outputs, means, variances = [], [], []
    for c in range(X.shape[1]):
        x = X[:, c]
        if training:
            mean = x.mean()
            var = ((x - mean) ** 2).mean()
        else:
            mean, var = moving_mean[c], moving_var[c]
        outputs.append(gamma[c] * _normalise(x, mean, var, eps, mode) + beta[c])
        means.append(mean)
        variances.append(var)
    Y = torch.stack(outputs, dim=1)
    if not training:
        return Y, moving_mean, moving_var
    count = X.numel() // X.shape[1]
    new_mean, new_var = _moving_statistics(
        moving_mean, moving_var, torch.stack(means), torch.stack(variances), count, momentum
    )
    return Y, new_mean, new_var


class BatchNorm(nn.Module):
    """Batch normalization for fully connected (num_dims=2) or convolutional (num_dims=4) inputs.

    Learns gamma (scale) and beta (shift); keeps moving_mean and moving_var as buffers. Training
    or inference follows the module's `training` flag (model.train() / model.eval()).
    `mode="mean-only"` or `"var-only"` is a lite batch norm; `affine=False` fixes gamma at 1 and
    beta at 0 (buffers left out of the state dict, so the layer has no parameters).
    """

    def __init__(self, num_features: int, num_dims: int, eps: float = 1e-5, momentum: float = 0.1,
                 mode: str = "full", affine: bool = True):
        super().__init__()
        _check_mode(mode, "BatchNorm")
        if not isinstance(num_features, int) or num_features <= 0:
            raise UsageError(
                f"BatchNorm: num_features must be a positive int, got {num_features!r}"
            )
        if num_dims not in LAYOUTS:
            raise UsageError(
                f"BatchNorm: num_dims must be 2 (fully connected) or 4 (convolutional), "
                f"got {num_dims!r}"
            )
        self.num_features, self.num_dims = num_features, num_dims
        self.eps, self.momentum, self.mode, self.affine = eps, momentum, mode, affine
        if affine:
            self.gamma = nn.Parameter(torch.ones(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_buffer("gamma", torch.ones(num_features), persistent=False)
            self.register_buffer("beta", torch.zeros(num_features), persistent=False)
        self.register_buffer("moving_mean", torch.zeros(num_features))
        self.register_buffer("moving_var", torch.ones(num_features))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if not isinstance(X, torch.Tensor) or X.ndim != self.num_dims:
            got = shape_of(X) if isinstance(X, torch.Tensor) else type(X).__name__
            raise UsageError(
                f"BatchNorm(num_dims={self.num_dims}) expects X of shape "
                f"{LAYOUTS[self.num_dims]}, got {got}"
            )
        Y, new_mean, new_var = batch_norm(
            X,
            self.gamma,
            self.beta,
            self.moving_mean,
            self.moving_var,
            eps=self.eps,
            momentum=self.momentum,
            training=self.training,
            mode=self.mode,
        )
        if self.training:
            self.moving_mean.copy_(new_mean)
            self.moving_var.copy_(new_var)
        return Y

    def extra_repr(self) -> str:
        lite = f", mode={self.mode!r}" if self.mode != "full" else ""
        fixed = ", affine=False" if not self.affine else ""
        return (
            f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, "
            f"momentum={self.momentum}{lite}{fixed}"
        )
