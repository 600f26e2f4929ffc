"""How results show: one set of table cells, drawn by rich on a terminal and as HTML in a notebook.

A result builds its tables once as text cells (`TableData`); `to_rich` lays them out for the
terminal and `render_html` fills the package's Jinja2 templates (``cnnlab/templates``) for a
notebook's ``_repr_html_``, so both forms always show the same numbers.

A table is laid out for the width `output_width` gives: ``COLUMNS`` when it is set, else the
terminal's width, else (a file or a pipe) as wide as the table needs, so nothing is cut. To fit,
headers wrap at their spaces and text cells wrap (or fold, where a word is longer than its
column), but a number (a right-aligned cell) is never wrapped or cut: a table whose numbers
alone are wider than the terminal is shown in parts, each with the rows' names and as many
columns as fit.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

LEFT, RIGHT = "left", "right"
TEXT_MIN_WIDTH = 8
"""The narrowest a text column is made to fit the terminal (narrower where its cells are)."""
UNLIMITED = 100_000
"""The layout width of output that is not a terminal: wide enough that no table is narrowed."""

def format_value(value: Any) -> str:
    """An option value as spec text: ``true``, ``0.5``, ``((1,64),(2,128))``, ``relu``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        inner = ",".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def percent(value: float | None, missing: str = "n/a") -> str:
    """An accuracy as ``84.1%`` (`missing` for a value not measured)."""
    return missing if value is None else f"{value:.1%}"


@dataclass(frozen=True)
class TableData:
    """A titled table of text cells, with each column's alignment ("left" or "right")."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    justify: tuple[str, ...]
    show_header: bool = True
    no_wrap: bool = False

    def to_rich(self, width: int | None = None):
        """The table as a rich `Table` (simple head rule, title on the left), its columns sized
        to fit `width` characters as well as they can (None: each column as wide as its cells)."""
        from rich import box
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD,
                      show_header=self.show_header)
        widths = self.column_widths(width)
        for header, justify, column_width in zip(self.headers, self.justify, widths,
                                                 strict=True):
            table.add_column(header, justify=justify, overflow="fold", width=column_width)
        for row in self.rows:
            table.add_row(*row)
        return table

    def _columns(self) -> list[tuple[int, int]]:
        """Each column's natural width (its widest line, header included) and the narrowest it
        may get: a number column its widest cell, a text column `TEXT_MIN_WIDTH` (less where
        its cells are narrower), and neither narrower than the longest word of its header."""
        found = []
        for index, (header, justify) in enumerate(zip(self.headers, self.justify, strict=True)):
            cells = [_width(row[index]) for row in self.rows]
            words = max((_width(word) for word in header.split()), default=0)
            natural = max([_width(header) if self.show_header else 0, *cells, 1])
            if justify == RIGHT or self.no_wrap:
                least = max([*cells, 1])
            else:
                least = min(natural, TEXT_MIN_WIDTH)
            found.append((natural, min(natural, max(least, words if self.show_header else 0))))
        return found

    def column_widths(self, width: int | None = None) -> list[int]:
        """The width of each column's cells so that the table fits `width` characters: headers
        of number columns wrap first, then the widest text columns narrow, each to its least
        (`_columns`); a table that cannot fit gets its least widths (None: natural widths)."""
        columns = self._columns()
        widths = [natural for natural, _ in columns]
        if width is None:
            return widths
        excess = sum(widths) + _overhead(len(widths)) - width
        texts = [i for i, justify in enumerate(self.justify) if justify != RIGHT]
        for i, (natural, least) in enumerate(columns):  # number headers wrap first
            if excess > 0 and i not in texts:
                cut = min(natural - least, excess)
                widths[i] -= cut
                excess -= cut
        while excess > 0:
            narrowable = [i for i in texts if widths[i] > columns[i][1]]
            if not narrowable:
                break
            widest = max(narrowable, key=lambda i: widths[i])
            widths[widest] -= 1
            excess -= 1
        return widths

    def least_width(self) -> int:
        """The narrowest the table can be laid out whole, every column at its least width."""
        return sum(least for _, least in self._columns()) + _overhead(len(self.headers))

    def natural_width(self) -> int:
        """The table's width with every column as wide as its cells."""
        return sum(natural for natural, _ in self._columns()) + _overhead(len(self.headers))

    def narrowest(self) -> int:
        """The narrowest the table can be shown: whole, or in parts (`parts`) of the first
        column and one other."""
        columns = self._columns()
        if len(columns) < 3:
            return self.least_width()
        return columns[0][1] + max(least for _, least in columns[1:]) + _overhead(2)

    def parts(self, width: int) -> list[TableData]:
        """The table as it fits `width`: itself, or, where even its least layout is wider, the
        same rows in parts of as many columns as fit, each led by the first column (the rows'
        names), as a wide table is printed page by page."""
        columns = self._columns()
        if self.least_width() <= width or len(columns) < 3:
            return [self]
        groups = _groups([least for _, least in columns], width)
        limit = width  # the narrowest limit with as few parts: parts of even widths
        while limit > 1 and len(_groups([least for _, least in columns], limit - 1)) == len(groups):
            limit -= 1
        groups = _groups([least for _, least in columns], limit)
        return [TableData(self.title if not n else f"{self.title} (continued)" if self.title
                          else "", tuple(self.headers[i] for i in (0, *group)),
                          [tuple(row[i] for i in (0, *group)) for row in self.rows],
                          tuple(self.justify[i] for i in (0, *group)), self.show_header,
                          self.no_wrap)
                for n, group in enumerate(groups)]

    def __rich_console__(self, console, options):
        for n, part in enumerate(self.parts(options.max_width)):
            if n:
                yield ""
            yield part.to_rich(options.max_width)

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(self.narrowest(), self.natural_width())


def _groups(least: list[int], width: int) -> list[list[int]]:
    """Columns 1, 2, ... in consecutive groups, each (with column 0) at most `width` wide at
    their `least` widths, a new group started only when the next column does not fit."""
    groups: list[list[int]] = [[]]
    for index in range(1, len(least)):
        group = [0, *groups[-1], index]
        if groups[-1] and sum(least[i] for i in group) + _overhead(len(group)) > width:
            groups.append([])
        groups[-1].append(index)
    return groups


def _width(text: str) -> int:
    """The terminal cells of the widest line of `text`."""
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(text).splitlines()), default=0)


def _overhead(columns: int) -> int:
    """What a table adds to its cells: a space either side of each cell, a column separator
    between cells and an edge either side (`box.SIMPLE_HEAD` with rich's default padding)."""
    return 3 * columns + 1


def output_width(stream=None) -> int | None:
    """The width tables are laid out for: ``COLUMNS`` when it is set, else the terminal's width
    when `stream` (default stdout) is a terminal, else None: a file or a pipe, where nothing
    is narrowed or cut."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    terminal = _is_terminal(sys.stdout if stream is None else stream)
    return shutil.get_terminal_size().columns if terminal else None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _layout_width(renderable, width: int | None) -> int:
    """The console width that shows `renderable` at `width` (None: unlimited) without cutting
    a number: `width`, or the renderable's least width where that is more."""
    if width is None:
        return UNLIMITED
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(file=io.StringIO(), width=UNLIMITED)
    least = Measurement.get(console, console.options, renderable).minimum
    return max(width, least)


def plain_text(renderable, width: int | None = None) -> str:
    """A rich renderable as plain text: no colour, no trailing spaces, laid out for `width`
    (default `output_width`: the terminal's, or unlimited in a file or a pipe)."""
    from rich.console import Console

    width = output_width() if width is None else width
    console = Console(file=io.StringIO(), width=_layout_width(renderable, width),
                      color_system=None, highlight=False,
                      force_jupyter=False)  # in a notebook, too, write to the string
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def show(renderable) -> None:
    """Print a renderable to stdout: with rich's styles on a terminal, laid out for its width
    (`output_width`), and as plain text, full width, in a file or a pipe."""
    width = output_width()
    if _is_terminal(sys.stdout):
        from rich.console import Console

        Console(width=_layout_width(renderable, width), highlight=False).print(renderable)
    else:
        sys.stdout.write(plain_text(renderable, width))


@cache
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("cnnlab", "templates"),
                       autoescape=select_autoescape(("html",), default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(tables: list[TableData], note: str | None = None) -> str:
    """The tables (and a closing note) as one HTML fragment for a notebook cell."""
    return render_template("tables.html", tables=tables, note=note)


def render_template(name: str, **context) -> str:
    """One of the package's templates filled in (HTML ones escape their values, others not)."""
    return _environment().get_template(name).render(**context)
