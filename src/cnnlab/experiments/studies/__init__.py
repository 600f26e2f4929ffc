"""The chapters' experiment exercises as named studies: ``cnnlab study run NAME``.

Each study is a small definition (`Study`): the specs and grid it trains on the sweep engine,
the settings of each budget (``quick`` for a 2-core CPU, ``full`` for the chapter's setting,
``tiny`` for smoke runs), what it measures, and how it concludes from its recorded results.
`run_study` runs one and writes its folder: ``report.html``, ``report.md``, ``results.csv``,
``curves.csv`` and the figures.
"""

from __future__ import annotations

from cnnlab.display import LEFT, TableData, plain_text
from cnnlab.errors import UsageError
from cnnlab.experiments.studies import architectures, batchnorm, design_space, training
from cnnlab.experiments.studies.definition import BUDGETS, Measure, Plan, Setup, Study
from cnnlab.experiments.studies.records import StudyResults
from cnnlab.experiments.studies.runner import StudyReport, describe_plan, run_study, study_folder

STUDIES: dict[str, Study] = {study.name: study for module in (batchnorm, training, architectures,
                                                              design_space)
                             for study in module.STUDIES}


def get_study(name: str) -> Study:
    """The study called `name`; an unknown name is one line listing the known ones."""
    if name not in STUDIES:
        raise UsageError(f"unknown study {name!r}; known: {', '.join(STUDIES)} (cnnlab study "
                         "list describes them)")
    return STUDIES[name]


def list_studies() -> str:
    """The studies as `cnnlab study list` prints them: name, question, what quick runs."""
    rows = [(study.name, study.question, describe_plan(study.plan("quick"))
             .removeprefix("This run ").rstrip("."))
            for study in STUDIES.values()]
    table = TableData(f"{len(rows)} studies (cnnlab study run NAME [--budget quick|full])",
                      ("study", "question", "quick budget"), rows, (LEFT, LEFT, LEFT))
    return plain_text(table.to_rich(), width=160)


__all__ = ["BUDGETS", "STUDIES", "Measure", "Plan", "Setup", "Study", "StudyReport",
           "StudyResults", "get_study", "list_studies", "run_study", "study_folder"]
