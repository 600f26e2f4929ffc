"""Loss and accuracy curves on figures that show themselves in a notebook.

Figures are plain `matplotlib.figure.Figure`s (no pyplot, no global state) with a PNG form, so a
notebook draws one returned as a cell's last line, and the live board redraws one in place.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

CURVES_SIZE = (9, 3.5)
"""Inches of the two side-by-side panels (loss, accuracy); 900x350 pixels at 100 dpi."""


class InlineFigure(Figure):
    """A matplotlib Figure that a notebook shows as a PNG, with no pyplot backend needed."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def draw_curves(figure: Figure, train: list[tuple], evals: list[tuple], eval_split: str = "val",
                max_epochs: int | None = None) -> Figure:
    """Loss and accuracy against epochs on `figure`, side by side, replacing what it showed.

    `train` and `evals` hold ``(epoch, loss, accuracy)`` points; the epoch may be fractional
    (a point within an epoch) and the accuracy None (not measured there). With `max_epochs`
    the axis spans the whole run, so a figure redrawn as training goes keeps its scale.
    """
    figure.clear()
    for ax, column, name in zip(figure.subplots(1, 2), (1, 2), ("loss", "accuracy"),
                                strict=True):
        for points, style, label in ((train, ".-", "train"), (evals, "s--", eval_split)):
            shown = [(point[0], point[column]) for point in points if point[column] is not None]
            if shown:
                ax.plot(*zip(*shown, strict=True), style, label=f"{label} {name}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if max_epochs:
            ax.set_xlim(0, max_epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    figure.tight_layout()
    return figure
