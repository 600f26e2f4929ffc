"""The normalisation layer every family puts after a convolution or a dense layer (its `norm`).

"batch" is torch's batch norm and "scratch" the chapter's own (`cnnlab.scratch.BatchNorm`);
"mean-only" and "var-only" are the exercise's lite batch norms (only centre, or only divide by
the batch standard deviation, each with running statistics for evaluation); "layer" normalises
each example over (C, H, W) with a per-channel scale and shift; "none" leaves the layer out.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.scratch.batchnorm import BatchNorm

NORMS = ("batch", "scratch", "mean-only", "var-only", "layer", "none")

_LITE_MODES = {"scratch": "full", "mean-only": "mean-only", "var-only": "var-only"}
"""The scratch BatchNorm mode behind each from-scratch kind."""


@dataclass(frozen=True)
class Norm:
    """Which normalisation follows a layer, and whether it learns a scale and shift (`affine`;
    without it gamma is fixed at 1 and beta at 0, so the layer has no parameters)."""

    kind: str = "batch"
    affine: bool = True
    eps: float = 1e-5

    def __post_init__(self):
        if self.kind not in NORMS:
            raise UsageError(f"unknown norm {self.kind!r}; use one of {', '.join(NORMS)}")

    def __bool__(self) -> bool:
        """False for "none": `if norm:` reads "if a norm layer follows"."""
        return self.kind != "none"

    def layers(self, num_features: int, num_dims: int = 4) -> list[nn.Module]:
        """The layer for `num_features` channels of a conv (num_dims=4) or dense (num_dims=2)
        output, as a list: empty for "none"."""
        if self.kind == "none":
            return []
        if self.kind == "batch":
            batch_norm = nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d
            return [batch_norm(num_features, eps=self.eps, affine=self.affine)]
        if self.kind == "layer":
            return [nn.GroupNorm(1, num_features, eps=self.eps, affine=self.affine)]
        return [BatchNorm(num_features, num_dims, eps=self.eps, mode=_LITE_MODES[self.kind],
                          affine=self.affine)]


BATCH_NORM = Norm("batch")
NO_NORM = Norm("none")
"""The two defaults of the building blocks: torch's batch norm, and no normalisation."""
