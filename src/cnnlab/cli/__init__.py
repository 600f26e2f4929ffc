"""The `cnnlab` command line: a thin layer that parses arguments and calls the library.

Exit codes: 0 success; 2 bad input (a `UsageError`: one line on stderr, no traceback); 3 training
diverged; 1 anything else, which is a bug and shows its traceback.
"""

from __future__ import annotations

import sys

from cnnlab.cli import experiments, export, measure, studies, train
from cnnlab.cli.args import Parser
from cnnlab.errors import TrainingDiverged, UsageError
from cnnlab.version import __version__

COMMAND_MODULES = (measure, train, export, experiments, studies)
"""Each adds its sub-commands with `add_parsers(subparsers)`."""


def build_parser() -> Parser:
    parser = Parser(prog="cnnlab", description="Convolutional neural networks, LeNet to RegNet.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def _print_any_path() -> None:
    """Let file names that are not UTF-8 print as the bytes they are on disk (as `ls` does)."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _print_any_path()
    args = build_parser().parse_args(argv)
    args.argv = argv[1:]  # the sub-command's own words, for relaunching (train --nproc)
    try:
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"cnnlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except UsageError as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
