"""The report a study (or the chapter report) leaves in its folder: report.html and report.md.

The HTML page is self-contained: its figures are embedded as ``data:`` URIs and it loads nothing,
so it reads the same offline, attached to a mail or years later. Both files come from the
package's templates (``report.html``, ``report.md``) and say what was run: the budget, every
deviation from the chapter's setting, the settings and the versions of everything involved.
"""

from __future__ import annotations

import base64
import datetime
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.display import TableData, plain_text, render_template
from cnnlab.files import write_text
from cnnlab.train.autotune import detect_capabilities
from cnnlab.train.record import versions

HTML_FILE, MARKDOWN_FILE = "report.html", "report.md"
BUDGET_NOTES = {
    "tiny": "a smoke run for tests (256 images, one epoch, two values per axis): it shows the "
            "study runs, its numbers answer nothing",
    "quick": "sized to answer on a 2-core CPU within minutes; the deviations from the "
             "chapter's setting are listed below",
    "full": "the chapter's setting: its models, 10 epochs, the seed's input sizes",
}


@dataclass(frozen=True)
class FigureFile:
    """A PNG in the report's folder and what it shows."""

    file: str
    caption: str


@dataclass
class ReportPage:
    """Everything a report says, ready for its templates."""

    title: str
    summary: str
    budget: str
    conclusion: str
    tables: list[TableData]
    figures: list[FigureFile]
    settings: dict
    deviations: list[str] = field(default_factory=list)
    study_settings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    wall_seconds: float | None = None
    """How long this invocation took (a study continued from its records takes seconds)."""
    trained_seconds: float | None = None
    """The training time its runs recorded, over every invocation."""

    def context(self, folder: Path) -> dict:
        return {"page": self, "budget_note": BUDGET_NOTES[self.budget],
                "wall": None if self.wall_seconds is None else duration(self.wall_seconds),
                "trained": None if not self.trained_seconds else duration(self.trained_seconds),
                "settings_json": json.dumps(self.settings, indent=2, default=str),
                "versions": software_and_machine(), "written": utc_now(),
                "images": {f.file: data_uri(folder / f.file) for f in self.figures}}

    def write(self, folder: str | Path) -> Path:
        """Write ``report.html`` and ``report.md`` into `folder` (the figures already there)."""
        folder = Path(folder)
        context = self.context(folder)
        write_text(folder / MARKDOWN_FILE, render_template(MARKDOWN_FILE, **context))
        return write_text(folder / HTML_FILE, render_template(HTML_FILE, **context))


@dataclass
class WrittenReport:
    """A report written into its folder: its conclusion and its page (tables first when
    printed)."""

    conclusion: str
    folder: Path
    page: ReportPage

    @property
    def html(self) -> Path:
        return self.folder / HTML_FILE

    def __str__(self) -> str:
        tables = "".join(plain_text(table) for table in self.page.tables)
        return f"{tables}\n{self.conclusion}\n"


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI, for a page that loads nothing."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def duration(seconds: float) -> str:
    """``42 s``, ``7 min 3 s`` or ``2 h 5 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def software_and_machine() -> dict[str, str]:
    """The software and machine a report was made with: a run's versions, and more."""
    import matplotlib
    import numpy
    import optuna
    import torch

    found = {**versions(), "optuna": optuna.__version__, "numpy": numpy.__version__,
             "matplotlib": matplotlib.__version__, "platform": platform.platform(),
             "CPU": detect_capabilities().cpu_model or platform.machine(),
             "CPU threads": str(torch.get_num_threads())}
    if torch.cuda.is_available():
        found["GPU"] = torch.cuda.get_device_name(0)
    return found
