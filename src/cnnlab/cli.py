"""The `cnnlab` command line: a thin layer that parses arguments and calls the library.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 3 training diverged.
"""

from __future__ import annotations

import argparse
import sys

from cnnlab import __version__
from cnnlab.errors import TrainingDiverged


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage dump) and exit with code 2."""

    def error(self, message):
        self.exit(2, f"cnnlab: error: {message}\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def input_shape(text: str) -> tuple[int, ...]:
    """Parse '1x1x96x96' (NCHW), '1x96x96' (CHW) or '96' (a square side) into a tuple."""
    try:
        dims = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes joined by 'x' such as 1x1x96x96, got {text!r}"
        ) from None
    if len(dims) not in (1, 3, 4) or min(dims) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected 1, 3 or 4 positive sizes such as 96, 1x96x96 or 1x1x96x96, got {text!r}"
        )
    return dims


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers joined by ',', got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected positive integers such as 32,64,128, got {text!r}")
    return values


# --- command handlers: each imports what it needs, so `cnnlab --help` stays fast ----------------


def cmd_demo(args) -> int:
    from cnnlab.scratch.demo import edge_detection_demo

    edge_detection_demo()
    return 0


def cmd_models(args) -> int:
    from cnnlab.analysis.report import print_models_table

    print_models_table()
    return 0


def cmd_summary(args) -> int:
    from cnnlab.analysis.report import print_summary

    print_summary(args.model, input_size=args.input, depth=args.depth, batch_size=args.batch_size)
    return 0


def cmd_compare(args) -> int:
    from cnnlab.analysis.report import print_comparison

    print_comparison(args.models, input_size=args.input)
    return 0


def cmd_train(args) -> int:
    from cnnlab.train.command import train_command

    return train_command(args)


def cmd_eval(args) -> int:
    from cnnlab.train.command import eval_command

    return eval_command(args)


def cmd_predict(args) -> int:
    from cnnlab.train.command import predict_command

    return predict_command(args)


def cmd_bench(args) -> int:
    from cnnlab.analysis.bench import bench_command

    return bench_command(args)


def cmd_recipes(args) -> int:
    from cnnlab.train.recipes import print_recipes

    print_recipes()
    return 0


# --- the parser ----------------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model (Fashion-MNIST or an image folder)")
    p.add_argument("model", nargs="?", help="a name from `cnnlab models` (omit with --resume)")
    p.add_argument("--recipe", help="a named recipe from `cnnlab recipes`")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float, help="default: the model's seed recipe")
    p.add_argument("--optimizer", choices=["sgd", "adamw", "adam"])
    p.add_argument("--momentum", type=non_negative_float)
    p.add_argument("--weight-decay", type=non_negative_float)
    p.add_argument("--schedule", choices=["none", "cosine", "onecycle"])
    p.add_argument("--warmup", type=non_negative_float, help="warm-up length in epochs")
    p.add_argument("--resize", type=positive_int, help="input side in pixels")
    p.add_argument("--augment", help="comma list of crop, flip, erase (or 'none')")
    p.add_argument("--label-smoothing", type=non_negative_float)
    p.add_argument("--grad-clip", type=positive_float)
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist or a folder root/<class>/<image>")
    p.add_argument("--data-dir", help="folder holding the Fashion-MNIST files")
    p.add_argument("--subset", type=positive_int, help="train on the first N training images")
    p.add_argument("--val-fraction", type=non_negative_float)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 on CPU)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory format (default: on where measured faster)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--tta-flip", action="store_true",
                   help="evaluate each image and its mirror image, averaging the outputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=positive_int, help="also checkpoint every N steps")
    p.add_argument("--out", help="run directory (default runs/<model>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--nproc", type=positive_int, help="launch N processes with torchrun (DDP)")
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnlab", description="Convolutional neural networks, LeNet to RegNet.")
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="chapter stories as commands")
    p.add_argument("story", choices=["edges"], help="edges: detect and learn an edge kernel")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="layer-by-layer shapes, parameters, FLOPs, memory")
    p.add_argument("model")
    p.add_argument("--input", type=input_shape, help="e.g. 1x1x96x96 (default: the model's)")
    p.add_argument("--depth", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="batch size for the activation-memory estimate")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="parameters, FLOPs and memory of models side by side")
    p.add_argument("models", nargs="+")
    p.add_argument("--input", type=input_shape)
    p.set_defaults(func=cmd_compare)

    _add_train(sub)

    p = sub.add_parser("eval", help="test accuracy, per-class accuracy and confusion matrix")
    p.add_argument("run", help="a run directory or a checkpoint file")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="top-k classes for image files")
    p.add_argument("run", help="a run directory or a checkpoint file")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=positive_int, default=3)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="throughput and peak memory against batch size")
    p.add_argument("model")
    p.add_argument("--batch-sizes", type=int_list, default=[16, 32, 64, 128, 256])
    p.add_argument("--input", type=input_shape)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--device", default="auto")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per batch size")
    p.add_argument("--steps", type=positive_int, default=10, help="timed steps per batch size")
    p.add_argument("--out", help="where to write the PNG (default bench-<model>.png)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("recipes", help="list the named training recipes")
    p.set_defaults(func=cmd_recipes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TrainingDiverged as exc:
        print(f"cnnlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"cnnlab: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
