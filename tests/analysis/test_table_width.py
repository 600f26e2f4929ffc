"""Tables fit the terminal: `COLUMNS` or the terminal's width, text cells wrap, numbers are never
cut (a table whose numbers alone are too wide is shown in parts), and output that is not a
terminal is full width."""

import io
import re
import shutil

import pytest

from cnnlab.cli import main
from cnnlab.display import LEFT, RIGHT, TableData, output_width, plain_text

WIDE = ["resnet18:preact=true", "regnetx32:arch=((4,32,16,1.0),(6,80,16,1.0),(2,128,16,1.0))"]
"""The issue's wide comparison: a long spec and eleven columns of numbers."""


def _compared(capsys, columns: str | None, monkeypatch) -> tuple[str, list[tuple[str, ...]]]:
    from cnnlab.analysis.tables import compare

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert main(["compare", *WIDE]) == 0
    return capsys.readouterr().out, compare(WIDE).table().rows


def _whole(cell: str, text: str) -> bool:
    """Whether `cell` stands in `text` whole: not the start or end of a longer number."""
    return re.search(rf"(?<![\w.,]){re.escape(cell)}(?![\w.,%])", text) is not None


def test_a_wide_comparison_at_80_columns_fits_and_keeps_every_number_whole(capsys,
                                                                             monkeypatch):
    printed, rows = _compared(capsys, "80", monkeypatch)
    assert max(len(line) for line in printed.splitlines()) <= 80, printed
    assert "…" not in printed
    for row in rows:
        for cell in row[1:]:  # every number, whole, on one line
            assert _whole(cell, printed), (cell, printed)
    for header in ("params", "MFLOPs", "weights", "activations", "training", "min"):
        assert re.search(rf"\b{header}\b", printed), (header, printed)
    assert "(continued)" in printed  # eleven number columns do not fit 80: shown in parts


def test_in_a_pipe_a_table_is_full_width_one_line_per_row(capsys, monkeypatch):
    printed, rows = _compared(capsys, None, monkeypatch)
    lines = printed.splitlines()
    for row in rows:
        assert any(line.split() == list(" ".join(row).split()) for line in lines), (row, printed)
    assert "(continued)" not in printed and "…" not in printed


def _table(spec_width: int = 60) -> TableData:
    rows = [("x" * spec_width, "11,178,586", "28,079.0", "2.0 MiB"),
            ("short words that wrap at spaces", "1", "2.5", "46.1 MiB")]
    return TableData("t", ("model", "params", "MFLOPs", "activations training"), rows,
                     (LEFT, RIGHT, RIGHT, RIGHT))


@pytest.mark.parametrize("width", [30, 40, 50, 60, 80, 120])
def test_numbers_keep_their_width_and_text_wraps_at_any_width(width):
    table = _table()
    printed = plain_text(table, width=width)
    assert max(len(line) for line in printed.splitlines()) <= width, printed
    for row in table.rows:
        for cell in row[1:]:
            assert _whole(cell, printed), (cell, printed)
    # the long word is folded, never cut short: whole in every part the table is shown in
    assert printed.count("x") == 60 * (printed.count("(continued)") + 1)


def test_a_table_that_fits_is_drawn_as_before():
    table = _table(10)
    assert plain_text(table, width=200) == plain_text(table, width=table.natural_width())
    assert table.column_widths(200) == table.column_widths(None)


def test_number_headers_wrap_before_text_cells_narrow():
    table = _table(10)
    widths = table.column_widths(table.natural_width() - 5)
    assert widths[0] == table.column_widths()[0] and widths[3] < len("activations training")


def test_the_width_comes_from_columns_then_the_terminal_else_unlimited(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_width(io.StringIO()) is None  # a file or a pipe
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: shutil.os.terminal_size((97, 30)))
    assert output_width(Terminal()) == 97
    monkeypatch.setenv("COLUMNS", "72")
    assert output_width(io.StringIO()) == 72 and output_width(Terminal()) == 72
    monkeypatch.setenv("COLUMNS", "wide")
    assert output_width(io.StringIO()) is None
