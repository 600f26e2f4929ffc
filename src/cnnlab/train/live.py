"""The live board: d2l's animated curves, one figure under the notebook cell that trains.

The board only draws numbers the trainer has already read back from the device at its sync
points (the running loss and accuracy of the epoch so far) and at epoch ends (the epoch's row), so
watching training never makes the accelerator wait. It redraws at every epoch end and, within an
epoch, at most once every `interval` seconds, and less often when drawing is slow, so that drawing
takes at most `DRAW_SHARE` of the time between two redraws.
"""

from __future__ import annotations

import time

from cnnlab.train.curves import CURVES_SIZE, InlineFigure, draw_curves
from cnnlab.train.notebook import NotebookDisplay

REDRAW_SECONDS = 3.0
DRAW_SHARE = 0.05


class LiveBoard:
    """Train loss and accuracy within and at the end of each epoch, validation at epoch ends.

    `split` names the evaluated split (``val`` or ``test``) as the console does.
    `display` has a ``show(figure)`` method (the notebook's by default) and `clock` gives
    seconds; a redraw within an epoch comes at least `interval` seconds after the board's start
    or its last redraw, and at least 1 / `DRAW_SHARE` times as long as that redraw took.
    """

    def __init__(self, max_epochs: int, interval: float = REDRAW_SECONDS, display=None,
                 clock=time.monotonic, split: str = "val"):
        self.max_epochs, self.interval, self.clock = max_epochs, interval, clock
        self.split = split
        self.display = display if display is not None else NotebookDisplay()
        self.figure = InlineFigure(figsize=CURVES_SIZE)
        self.train: list[tuple] = []  # (epoch position, loss, accuracy)
        self.evals: list[tuple] = []
        self.redraws = 0
        self._epoch, self._steps = 0, 1
        self._drawn_at = clock()
        self._gap = interval

    def start(self, epoch: int, total_steps: int) -> None:
        """Epoch `epoch` (0-based) of `total_steps` steps begins."""
        self._epoch, self._steps = epoch, max(total_steps, 1)

    def update(self, done_steps: int, loss: float, accuracy: float | None) -> None:
        """The running means of the epoch after `done_steps`; redrawn once the gap has passed."""
        self.train.append((self._epoch + done_steps / self._steps, loss, accuracy))
        if self.clock() - self._drawn_at >= self._gap:
            self.redraw()

    def end(self, row: dict) -> None:
        """The epoch's row: its train point replaces the last running one, then a redraw."""
        point = (row["epoch"], row["train_loss"], row["train_acc"])
        if self.train and self.train[-1][0] == point[0]:
            self.train[-1] = point
        else:
            self.train.append(point)
        self.evals.append((row["epoch"], row["val_loss"], row["val_acc"]))
        self.redraw()

    def redraw(self) -> None:
        started = self.clock()
        draw_curves(self.figure, self.train, self.evals, self.split, max_epochs=self.max_epochs)
        self.display.show(self.figure)
        self.redraws += 1
        self._drawn_at = self.clock()
        self._gap = max(self.interval, (self._drawn_at - started) / DRAW_SHARE)
