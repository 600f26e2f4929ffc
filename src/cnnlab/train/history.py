"""What a training run leaves behind: one row per epoch, as a table and as loss and accuracy curves.

In a notebook a History shows as an HTML table, and ``history.plot()`` as a cell's last line draws
its curves inline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnlab.display import RIGHT, TableData, plain_text, render_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class History:
    """One row per epoch: train and validation loss and accuracy, seconds, images per second."""

    COLUMNS = (("epoch", "epoch", "{}"), ("train loss", "train_loss", "{:.4f}"),
               ("train acc", "train_acc", "{:.1%}"), ("val loss", "val_loss", "{:.4f}"),
               ("val acc", "val_acc", "{:.1%}"), ("seconds", "seconds", "{:.1f}"),
               ("images/s", "images_per_s", "{:,.0f}"), ("lr", "lr", "{:.4g}"))

    def __init__(self, rows: list[dict] | None = None, split: str = "val"):
        self.rows = list(rows or [])
        self.split = split
        """The split behind the ``val_*`` columns: ``val``, or ``test`` where no validation
        split was held out; the table's headers and the curves name it."""
        self.result: dict = {}  # after fit: status and final test loss/accuracy

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def column(self, name: str) -> list:
        """All epochs' values of one metric, e.g. ``history.column("val_acc")``."""
        return [row[name] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]

    def __iter__(self):
        return iter(self.rows)

    def plot(self, eval_split: str | None = None) -> Figure:
        """Loss and accuracy per epoch, train and `eval_split` (default the history's split): a
        matplotlib Figure (shown inline in a notebook)."""
        # deferred: curves imports matplotlib, half a second; a table needs none of it
        from cnnlab.train.curves import CURVES_SIZE, InlineFigure, draw_curves

        train = [(row["epoch"], row["train_loss"], row["train_acc"]) for row in self.rows]
        evals = [(row["epoch"], row["val_loss"], row["val_acc"]) for row in self.rows]
        return draw_curves(InlineFigure(figsize=CURVES_SIZE), train, evals,
                           eval_split or self.split)

    def table(self) -> TableData:
        """The epochs as text cells, the columns of ``metrics.csv`` that a reader compares."""
        shown = [column for column in self.COLUMNS
                 if self.rows and all(column[1] in row for row in self.rows)]
        rows = [tuple(fmt.format(row[key]) for _, key, fmt in shown) for row in self.rows]
        title = f"History: {len(self.rows)} epoch{'' if len(self.rows) == 1 else 's'}"
        headers = tuple(f"{self.split}{header[3:]}" if header.startswith("val ") else header
                        for header, _, _ in shown)
        return TableData(title, headers, rows, (RIGHT,) * len(shown))

    def outcome(self) -> str | None:
        """The result in words, e.g. ``completed: test accuracy 76.2% (loss 0.6123)``."""
        result = self.result
        if "test_acc" in result:
            return (f"{result.get('status', 'completed')}: test accuracy "
                    f"{result['test_acc']:.1%} (loss {result['test_loss']:.4f})")
        if result.get("status") == "diverged":
            return (f"diverged at epoch {result['epoch']}, step {result['step']} "
                    f"(lr {result['lr']:g})")
        return None

    def __repr__(self) -> str:
        outcome = self.outcome()
        return plain_text(self.table()) + (f"{outcome}\n" if outcome else "")

    def _repr_html_(self) -> str:
        return render_html([self.table()], note=self.outcome())
