"""The commands that measure without training: models, summary, compare, bench, recipes, demo."""

from __future__ import annotations

import argparse
import re

from cnnlab.cli.args import int_list, positive_int, shape_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("demo", help="chapter stories as commands")
    p.add_argument("story", choices=["edges"], help="edges: detect and learn an edge kernel")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the registered models, or one model's options")
    p.add_argument("name", nargs="?", help="a model name: list its options and defaults")
    p.add_argument("--all-options", action="store_true", help="every model's options")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="layer-by-layer shapes, parameters, FLOPs, memory")
    p.add_argument("model", help="a model spec, e.g. resnet50:config=imagenet")
    p.add_argument("--input", type=shape_argument, help="e.g. 1x1x96x96 (default: the model's)")
    p.add_argument("--depth", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="batch size for the activation-memory estimate")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compare", help="parameters, FLOPs and memory of models side by side")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--input", type=shape_argument)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("bench", help="throughput and peak memory against batch size")
    p.add_argument("model", help="a model spec")
    p.add_argument("--batch-sizes", type=int_list, default=[16, 32, 64, 128, 256])
    p.add_argument("--input", type=shape_argument)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--device", default="auto")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="channels-last format (default: as training decides it here)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="bfloat16 autocast (default: as training decides it here)")
    p.add_argument("--runtime", choices=["torch", "onnxruntime"], default="torch",
                   help="onnxruntime: infer with the model exported to ONNX (cnnlab[export])")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per batch size")
    p.add_argument("--steps", type=positive_int, default=10, help="timed steps per batch size")
    p.add_argument("--out", help="where to write the PNG (default bench-<model>.png)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("recipes", help="list the named training recipes")
    p.set_defaults(func=cmd_recipes)


def cmd_demo(args) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.scratch.demo import edge_detection_demo

    edge_detection_demo()
    return 0


def cmd_models(args) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.analysis.tables import print_model_options, print_models_table

    if args.name or args.all_options:
        print_model_options(args.name)
    else:
        print_models_table()
    return 0


def cmd_summary(args) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.analysis.tables import print_summary

    print_summary(args.model, input_size=args.input, depth=args.depth, batch_size=args.batch_size)
    return 0


def cmd_compare(args) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.analysis.tables import print_comparison

    print_comparison(args.models, input_size=args.input)
    return 0


def file_slug(spec: str) -> str:
    """A spec as a file-name part: ``vgg11:arch=((1,64),)`` becomes ``vgg11-arch-1-64``."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", spec).strip("-")


def cmd_bench(args: argparse.Namespace) -> int:
    """`cnnlab bench SPEC`: measure each batch size, print the table, write the PNG. The step
    runs as training would run it here (the trainer's cached auto decisions); --amp,
    --channels-last and their --no- forms override."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.analysis.bench import bench, bench_input, plot, print_table, training_step_options
    from cnnlab.train import resolve_device

    def switch(flag):
        return "auto" if flag is None else flag

    device = resolve_device(args.device)
    shape = bench_input(args.model, args.input)
    options = training_step_options(args.model, shape, device, amp=switch(args.amp),
                                    channels_last=switch(args.channels_last), mode=args.mode,
                                    compile=args.compile, warmup=args.warmup, steps=args.steps,
                                    runtime=args.runtime)
    rows = bench(args.model, args.batch_sizes, shape, options)
    print_table(args.model, shape, options, rows)
    path = plot(args.model, shape, options, rows, args.out or f"bench-{file_slug(args.model)}.png")
    print(f"plot written to {path}")
    return 0


def cmd_recipes(args) -> int:
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.train.recipes import print_recipes

    print_recipes()
    return 0
