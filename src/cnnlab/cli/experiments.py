"""``cnnlab sweep``, ``cnnlab lr-find`` and ``cnnlab runs``: parse, then call `cnnlab.experiments`.

`sweep` takes every `cnnlab train` option (they apply to every trial) besides its own.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cnnlab.cli.args import positive_float, positive_int
from cnnlab.cli.train import TRAIN_OPTIONS, add_train_options, given_settings
from cnnlab.errors import UsageError

SEEDS_HELP = ("repeat every point with N seeds (0 to N-1) or with the seeds listed (5, is "
              "seed 5 alone); repeats are paired: a seed gives every variant the same data "
              "order")
LR_FIND_SETTINGS = ("batch_size", "optimizer", "momentum", "weight_decay", "resize", "augment",
                    "data", "data_dir", "subset", "device", "threads", "seed")
"""The training options that matter to the range test."""


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="train every combination of specs and values (or search)")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="model specs, e.g. lenet "
                   "lenet:norm=batch")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a training setting (lr, batch-size, ...) or model.OPTION and its values")
    p.add_argument("--search", action="append", default=[], metavar="KEY=LOW..HIGH[:log]",
                   help="search a range instead (TPE sampler, median pruning)")
    p.add_argument("--trials", type=positive_int, help="how many points a search tries")
    p.add_argument("--seeds", metavar="N | S1,S2,...", help=SEEDS_HELP)
    p.add_argument("--recipe", help="a named recipe from `cnnlab recipes` for every trial")
    add_train_options(p)
    p.add_argument("--out", help="the sweep's folder (default runs/<name>)")
    p.add_argument("--name", help="the study's name (default: derived from the definition)")
    p.add_argument("--storage", help="an Optuna storage URL, e.g. postgresql://host/db "
                   "(default: sweep.db, SQLite, in the sweep's folder)")
    p.add_argument("--join", metavar="NAME", help="add workers to sweep NAME in --storage")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="trials at once, one process each (cores/N threads each)")
    p.add_argument("--heartbeat", type=positive_int,
                   help="seconds between a worker's signs of life (default 10); trials of a "
                   "worker silent for twice that are retried")
    p.add_argument("--show", metavar="DIR", help="print and redraw the results of a sweep")
    p.add_argument("--dashboard", metavar="NAME | DIR",
                   help="open sweep NAME (in runs/NAME, or the study NAME in --storage) or the "
                   "sweep in DIR in optuna-dashboard on 127.0.0.1, until Ctrl-C (pip install "
                   "'cnnlab[dashboard]')")
    p.add_argument("--port", type=positive_int,
                   help="--dashboard: the port to listen on (default 8080)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("lr-find", help="the learning-rate range test: loss against a growing lr")
    p.add_argument("model", help="a model spec, e.g. lenet")
    p.add_argument("--start", type=positive_float, default=1e-5, help="first rate (1e-5)")
    p.add_argument("--end", type=positive_float, default=10.0, help="last rate (10)")
    p.add_argument("--steps", type=positive_int, default=200, help="training steps (200)")
    for flag, setting, keywords in TRAIN_OPTIONS:
        if setting in LR_FIND_SETTINGS:
            p.add_argument(flag, dest=setting, default=argparse.SUPPRESS, **keywords)
    p.add_argument("--out", help="the plot (default runs/lr-find-<model>.png)")
    p.set_defaults(func=cmd_lr_find)

    p = sub.add_parser("runs", help="list run directories; `runs compare RUN RUN ...` "
                       "contrasts them")
    p.add_argument("words", nargs="*", metavar="DIR | compare RUN RUN ...",
                   help="a folder of runs (default runs), or compare and two or more runs")
    p.add_argument("--out", help="compare: the figure (default compare.png beside the runs)")
    p.set_defaults(func=cmd_runs)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run, continue, join or show a sweep, printing its table and where its files are; or
    serve its study in optuna-dashboard."""
    defining = args.specs or args.grid or args.search or args.trials or args.seeds
    if args.dashboard:
        if defining or args.join or args.show:
            raise UsageError("--dashboard NAME serves a sweep's study; drop the specs, --grid, "
                             "--search, --trials, --seeds, --join and --show")
        # deferred: optuna-dashboard is an optional extra, imported only here
        from cnnlab.experiments.sweep.dashboard import serve_dashboard

        serve_dashboard(args.dashboard, args.storage, args.port)
        return 0
    if args.port:
        raise UsageError("--port is the port of --dashboard NAME")
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.experiments import Sweep, collect, join_sweep, open_sweep, run_sweep

    timing = {} if args.heartbeat is None else {"heartbeat": args.heartbeat}
    if args.show:
        if defining or args.join:
            raise UsageError("--show DIR prints a sweep; drop the specs, --grid, --search, "
                             "--trials, --seeds and --join")
        results = collect(open_sweep(args.show, args.storage), args.show).write()
    elif args.join:
        if defining:
            raise UsageError("--join takes its definition from the study; drop the specs, "
                             "--grid, --search, --trials and --seeds")
        if not args.storage:
            raise UsageError("--join NAME needs --storage URL, the database the sweep is in")
        results = join_sweep(args.join, args.storage, args.out, args.workers,
                             runtime=given_settings(args), **timing)
    else:
        sweep = Sweep.parse(args.specs, args.grid, args.search, args.trials,
                            given_settings(args), args.recipe, args.seeds)
        results = run_sweep(sweep, args.out, args.name, args.storage, args.workers, **timing)
    print(results.report(), end="")
    print(f"table:  {results.csv_path}\nfigure: {results.figure_path}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    """The range test: print the suggested rate and where the loss blew up, save the plot."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.experiments import lr_find_run
    from cnnlab.files import save_figure
    from cnnlab.train.config import resolve_config

    config = resolve_config(given_settings(args))
    result = lr_find_run(config, args.start, args.end, args.steps)
    out = Path(args.out) if args.out else \
        Path("runs") / f"lr-find-{re.sub(r'[^A-Za-z0-9._=-]+', '_', config.model)}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(result.plot(), out)
    print(result)
    print(f"plot: {out}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs in a folder, or compare runs: settings that differ, curves overlaid."""
    # deferred: cnnlab.experiments loads optuna; only this command needs it
    from cnnlab.experiments import compare_runs, list_runs

    words = args.words
    if words[:1] == ["compare"]:
        if len(words) < 3:
            raise UsageError("runs compare needs two or more run directories: cnnlab runs "
                             "compare RUN RUN ...")
        comparison = compare_runs(words[1:], args.out)
        print(comparison, end="")
        print(f"curves: {comparison.figure}")
        return 0
    if len(words) > 1 or args.out:
        raise UsageError("cnnlab runs takes one folder (default runs); to compare runs: "
                         "cnnlab runs compare RUN RUN ...")
    print(list_runs(*words), end="")
    return 0
