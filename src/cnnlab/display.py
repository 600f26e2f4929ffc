"""How results show: one set of table cells, drawn by rich on a terminal and as HTML in a notebook.

A result builds its tables once as text cells (`TableData`); `to_rich` lays them out for the
terminal and `render_html` fills the package's Jinja2 templates (``cnnlab/templates``) for a
notebook's ``_repr_html_``, so both forms always show the same numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import Any

LEFT, RIGHT = "left", "right"

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

    def to_rich(self):
        """The table as a rich `Table` (simple head rule, title on the left)."""
        from rich import box
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD,
                      show_header=self.show_header)
        for header, justify in zip(self.headers, self.justify, strict=True):
            table.add_column(header, justify=justify, no_wrap=self.no_wrap)
        for row in self.rows:
            table.add_row(*row)
        return table


def plain_text(renderable, width: int = 200) -> str:
    """A rich renderable as plain text: no colour, no trailing spaces, lines up to `width`."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False,
                      force_jupyter=False)  # in a notebook, too, write to the string
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


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
