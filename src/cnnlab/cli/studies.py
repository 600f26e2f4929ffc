"""``cnnlab study list``, ``cnnlab study run NAME`` and ``cnnlab report``: parse, then call
`cnnlab.experiments.studies` and `cnnlab.experiments.studies.chapter`."""

from __future__ import annotations

import argparse

from cnnlab.cli.args import Parser, positive_int
from cnnlab.experiments.studies.definition import BUDGETS

BUDGET_HELP = ("quick: a 2-core CPU within minutes (default); full: the chapter's setting, made "
               "for a GPU; tiny: a smoke run for tests")


def add_parsers(sub) -> None:
    p = sub.add_parser("study", help="the chapters' experiment exercises as named studies")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    a = actions.add_parser("list", help="every study, its question and what its quick budget runs")
    a.set_defaults(func=cmd_study_list)
    a = actions.add_parser("run", help="run (or continue) a study and write its report")
    a.add_argument("name", metavar="NAME", help="a study from `cnnlab study list`")
    a.add_argument("--budget", choices=BUDGETS, default="quick", help=BUDGET_HELP)
    a.add_argument("--out", help="the study's folder (default runs/study-NAME-BUDGET)")
    add_engine_options(a)
    a.set_defaults(func=cmd_study_run)

    p = sub.add_parser("report", help="every chapter model trained with its recipe, in one "
                       "report")
    p.add_argument("--budget", choices=BUDGETS, default="quick", help=BUDGET_HELP)
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="model specs (default: the chapter's ten models)")
    p.add_argument("--out", help="the report's folder (default runs/report-BUDGET)")
    add_engine_options(p)
    p.set_defaults(func=cmd_report)


def add_engine_options(p) -> None:
    """The study engine's options: worker processes and the sweep's storage."""
    p.add_argument("--workers", type=positive_int, default=1,
                   help="trials at once, one process each (timed steps always run alone)")
    p.add_argument("--storage", help="an Optuna storage URL for the study's sweep (default: "
                   "sweep.db in its folder); more machines join with cnnlab sweep --join")
    p.add_argument("--seeds", metavar="N | S1,S2,...", help="repeat every trial with N seeds "
                   "(0 to N-1) or the seeds listed (5, is seed 5 alone; default: the budget's); "
                   "more seeds continue the same folder")


def cmd_study_list(args: argparse.Namespace) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.experiments.studies import list_studies

    print(list_studies(), end="")
    return 0


def cmd_study_run(args: argparse.Namespace) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.experiments.studies import get_study, run_study
    from cnnlab.experiments.sweep.space import parse_seeds

    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    report = run_study(get_study(args.name), args.budget, args.out, args.workers, args.storage,
                       seeds=seeds)
    print(report, end="")
    print(f"report: {report.html}\nfolder: {report.folder}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.experiments.studies.chapter import chapter_report
    from cnnlab.experiments.sweep.space import parse_seeds

    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    report = chapter_report(args.budget, args.models, args.out, args.workers, args.storage,
                            seeds=seeds)
    print(report, end="")
    print(f"report: {report.html}\nfolder: {report.folder}")
    return 0
