"""What a run shows: a progress bar per epoch on a terminal, one plain line per epoch otherwise,
and in a notebook the live board of curves above those lines."""

from __future__ import annotations

import sys

from cnnlab.train.notebook import in_notebook


def epoch_line(row: dict, max_epochs: int, split: str = "val") -> str:
    """One epoch's summary, e.g. ``epoch  3/10  train loss 0.512 acc 81.2%  val ...``, the
    held-out figures under the name of the split they were measured on (``val`` or ``test``,
    the word the curves use)."""
    width = len(str(max_epochs))
    return (
        f"epoch {row['epoch']:>{width}}/{max_epochs}  "
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.1%}  "
        f"{split} loss {row['val_loss']:.4f} acc {row['val_acc']:.1%}  "
        f"{row['seconds']:.1f} s  {row['images_per_s']:,.0f} img/s"
    )


class EpochProgress:
    """Shows training progress on rank 0: a rich bar (rate, loss, ETA) when stdout is a terminal,
    and the live board of curves (`cnnlab.train.live`) when `live` (None: in a notebook);
    `split` names the split each epoch is evaluated on."""

    def __init__(self, max_epochs: int, enabled: bool = True, bar: bool | None = None,
                 live: bool | None = None, split: str = "val"):
        self.max_epochs, self.split = max_epochs, split
        self.enabled = enabled
        self.bar = enabled and (sys.stdout.isatty() if bar is None else bar)
        self.board = None
        if enabled and (in_notebook() if live is None else live):
            # deferred: the board draws with matplotlib, half a second to import, and only a
            # notebook run draws it
            from cnnlab.train.live import LiveBoard

            self.board = LiveBoard(max_epochs, split=split)
        self._bar = None
        self._task = None

    def start(self, epoch: int, total_steps: int, done_steps: int) -> None:
        """Open the bar for ``epoch`` (0-based) with ``done_steps`` already taken (resume)."""
        if self.board is not None:
            self.board.start(epoch, total_steps)
        if not self.bar:
            return
        # deferred: only a terminal shows the bar
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn(f"epoch {epoch + 1}/{self.max_epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8,.0f} img/s  loss {task.fields[loss]:.4f}"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._bar.add_task("train", total=total_steps, completed=done_steps,
                                        rate=0.0, loss=float("nan"))
        self._bar.start()

    def update(self, done_steps: int, loss: float, images_per_s: float,
               accuracy: float | None = None) -> None:
        """The epoch so far, as read back at a sync point: steps, mean loss, rate, accuracy."""
        if self.board is not None:
            self.board.update(done_steps, loss, accuracy)
        if self._bar is not None:
            self._bar.update(self._task, completed=done_steps, loss=loss, rate=images_per_s)

    def end(self, row: dict) -> None:
        """Close the bar, redraw the board and print the epoch's summary line."""
        self.close()
        if self.board is not None:
            self.board.end(row)
        if self.enabled:
            print(epoch_line(row, self.max_epochs, self.split), flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
