"""``cnnlab train``, ``cnnlab eval`` and ``cnnlab predict``: parse, then call `cnnlab.train`.

Every training option maps to one TrainConfig setting. Options not given are left out of the
parsed arguments (argparse's SUPPRESS), so the settings given, whatever their value, are exactly
the user's layer of `resolve_config`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.args import integer, non_negative_float, positive_float, positive_int
from cnnlab.errors import UsageError
from cnnlab.train.config import SWITCH_SETTINGS
from cnnlab.train.settings import OPTIMIZERS, SCHEDULES, switch_word

TRAIN_OPTIONS = (
    # (flag, TrainConfig setting, argparse keywords)
    ("--epochs", "epochs", {"type": positive_int}),
    ("--batch-size", "batch_size", {"type": positive_int, "help": "the global batch size"}),
    ("--lr", "lr", {"type": positive_float, "help": "default: the model's seed recipe"}),
    ("--optimizer", "optimizer", {"choices": OPTIMIZERS}),
    ("--momentum", "momentum", {"type": non_negative_float}),
    ("--weight-decay", "weight_decay", {"type": non_negative_float}),
    ("--schedule", "schedule", {"choices": SCHEDULES}),
    ("--warmup", "warmup", {"type": non_negative_float, "help": "warm-up length in epochs"}),
    ("--resize", "resize", {"type": positive_int, "help": "input side in pixels"}),
    ("--augment", "augment", {"help": "crop, flip, erase joined by commas or + (crop+flip), "
                              "or none"}),
    ("--label-smoothing", "label_smoothing", {"type": non_negative_float}),
    ("--grad-clip", "grad_clip", {"type": positive_float}),
    ("--data", "data", {"help": "fashion-mnist (default) or a folder root/<class>/<image>"}),
    ("--data-dir", "data_dir", {"help": "folder holding the Fashion-MNIST files"}),
    ("--subset", "subset", {"type": positive_int, "help": "train on the first N images"}),
    ("--val-fraction", "val_fraction", {"type": non_negative_float}),
    ("--device", "device", {"help": "auto (default), cpu, cuda, cuda:N or mps"}),
    ("--amp", "amp", {"action": argparse.BooleanOptionalAction,
                      "help": "mixed precision (default: auto, where native and faster)"}),
    ("--channels-last", "channels_last", {"action": argparse.BooleanOptionalAction,
                                          "help": "channels-last format (default: auto)"}),
    ("--compile", "compile", {"action": argparse.BooleanOptionalAction,
                              "help": "torch.compile the model"}),
    ("--tta-flip", "tta_flip", {"action": argparse.BooleanOptionalAction,
                                "help": "evaluate each image and its mirror, outputs averaged"}),
    ("--precise-bn", "precise_bn", {"type": integer, "metavar": "N",
                                    "help": "recompute batch-norm statistics over N training "
                                    "images before each evaluation (default 0: off)"}),
    ("--threads", "threads", {"type": positive_int, "help": "CPU threads (default: all cores)"}),
    ("--seed", "seed", {"type": integer}),
    ("--checkpoint-every", "checkpoint_every", {"type": positive_int,
                                                "help": "also checkpoint every N steps"}),
)
"""The ``cnnlab train`` options: one per training setting."""


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The training settings as options that appear in the namespace only when given."""
    for flag, setting, keywords in TRAIN_OPTIONS:
        parser.add_argument(flag, dest=setting, default=argparse.SUPPRESS, **keywords)


def given_settings(args: argparse.Namespace) -> dict:
    """The training settings the user gave on the command line, whatever their values."""
    given = {}
    for _, setting, _ in TRAIN_OPTIONS:
        if hasattr(args, setting):
            value = getattr(args, setting)
            given[setting] = switch_word(value) if setting in SWITCH_SETTINGS else value
    if getattr(args, "model", None):
        given["model"] = args.model
    return given


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train a model (Fashion-MNIST or an image folder)")
    p.add_argument("model", nargs="?", help="a model spec, e.g. lenet or lenet:norm=batch")
    p.add_argument("--recipe", help="a named recipe from `cnnlab recipes`")
    add_train_options(p)
    p.add_argument("--out", help="run directory (default runs/<model>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--nproc", type=positive_int, help="launch N processes with torchrun (DDP)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="test accuracy, per-class accuracy and confusion matrix")
    p.add_argument("run", help="a run directory or a checkpoint file")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="top-k classes for image files")
    p.add_argument("run", help="a run directory, a checkpoint file or an exported .onnx file")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=positive_int, default=3)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model (or resume a run) and print the test accuracy and where the files are."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.train.distributed import is_main_process
    from cnnlab.train.runs import resume_run, start_run

    given = given_settings(args)
    if args.nproc:
        from cnnlab.train.distributed import launch

        return launch(args.nproc, ["train", *strip_nproc(args.argv)])
    if args.resume:
        if args.recipe or args.out or "model" in given:
            raise UsageError("--resume continues a run with its own model and settings; drop "
                             "MODEL, --recipe and --out")
        data_dir = given.pop("data_dir", None)
        history = resume_run(args.resume, data_dir=data_dir, **given)
        out = Path(args.resume)
    else:
        from cnnlab.train.config import resolve_config

        history, out = start_run(resolve_config(given, args.recipe), args.out)
    if is_main_process():
        print_result(history.result, out)
    return 0


def strip_nproc(argv: list[str]) -> list[str]:
    """The ``cnnlab train`` arguments without ``--nproc N``, for the processes torchrun starts."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            kept.append(word)
    return kept


def print_result(result: dict, out: Path) -> None:
    """The test accuracy and where the files are; first, when the run in `out` did not
    complete (its status as `RunState` reads it: diverged, for one), its status and why."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.train.rundir import BEST, COMPLETED, CURVES, LAST, RunState

    state = RunState.read(out)
    if state.status != COMPLETED:
        print(f"status:     {state.status}: {state.why or state.problem}")
    epochs = f"{result['epochs']} epoch" + ("s" if result["epochs"] != 1 else "")
    print(f"test accuracy {result['test_acc']:.1%} after {epochs} "
          f"({result['model']}, {result['seconds_per_epoch']:.1f} s/epoch)")
    print(f"curves:     {out / CURVES}")
    print(f"checkpoint: {out / LAST} (best: {out / BEST})")


def cmd_eval(args: argparse.Namespace) -> int:
    """Test accuracy, per-class accuracy and the confusion matrix (a table and a PNG)."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.train import resolve_device
    from cnnlab.train.evaluation import evaluate_run

    report = evaluate_run(args.run, resolve_device(args.device), args.data_dir)
    print(f"confusion matrix: {report}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Top-k classes with probabilities for each image file, converted as in training."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.train import resolve_device
    from cnnlab.train.evaluation import predict_run

    if str(args.run).endswith(".onnx"):
        from cnnlab.export import predict_onnx

        rankings = predict_onnx(args.run, args.images, args.top_k)
    else:
        rankings = predict_run(args.run, args.images, args.top_k, resolve_device(args.device))
    for image, ranking in zip(args.images, rankings, strict=True):
        print(f"{image}: " + ", ".join(f"{name} {p:.1%}" for name, p in ranking))
    return 0
