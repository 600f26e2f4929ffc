"""The chapters' experiment exercises as named studies: ``cnnlab study run NAME``.

Each study is a small definition (`Study`): the specs and grid it trains on the sweep engine,
the settings of each budget (``quick`` for a 2-core CPU, ``full`` for the chapter's setting,
``tiny`` for smoke runs), what it measures, and how it concludes from its recorded results.
`run_study` runs one and writes its folder: ``report.html``, ``report.md``, ``results.csv``,
``curves.csv`` and the figures.
"""

from __future__ import annotations

import textwrap

from cnnlab.display import output_width
from cnnlab.errors import UsageError
from cnnlab.experiments.studies import architectures, batchnorm, design_space, training
from cnnlab.experiments.studies.definition import BUDGETS, Measure, Plan, Setup, Study, outline
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.runner import StudyReport, run_study, study_folder

STUDIES: dict[str, Study] = {study.name: study for module in (batchnorm, training, architectures,
                                                              design_space)
                             for study in module.STUDIES}
LISTED_BUDGETS = ("quick", "full")
"""The budgets `cnnlab study list` describes (tiny only shows that a study runs)."""
PROSE_WIDTH = 100
"""Where `cnnlab study list` wraps a question in output that is not a terminal."""


def get_study(name: str) -> Study:
    """The study called `name`; an unknown name is one line listing the known ones."""
    if name not in STUDIES:
        raise UsageError(f"unknown study {name!r}; known: {', '.join(STUDIES)} (cnnlab study "
                         "list describes them)")
    return STUDIES[name]


def list_studies() -> str:
    """The studies as `cnnlab study list` prints them: each study's name and question, then one
    line per budget with what it trains (models, input side, images, epochs, seeds) or times.
    Lines are wrapped to the terminal's width (`output_width`); in a file or a pipe a budget's
    line is never wrapped, and a question at `PROSE_WIDTH`."""
    width = output_width()
    lines = [*textwrap.wrap(f"{len(STUDIES)} studies: cnnlab study run NAME [--budget "
                            "quick|full] (tiny is a smoke run for tests)", width or PROSE_WIDTH),
             ""]
    for study in STUDIES.values():
        lines += textwrap.wrap(f"{study.name}: {study.question}", width or PROSE_WIDTH,
                               subsequent_indent="    ", break_on_hyphens=False)
        for budget in LISTED_BUDGETS:
            line = f"  {budget:<7}{outline(study.plan(budget))}"
            lines += textwrap.wrap(line, width, subsequent_indent=" " * 9,
                                   break_on_hyphens=False) if width else [line]
        lines.append("")
    return "\n".join(lines)


__all__ = ["BUDGETS", "STUDIES", "Measure", "Plan", "Setup", "Study", "StudyReport",
           "StudyResults", "get_study", "list_studies", "run_study", "study_folder"]
