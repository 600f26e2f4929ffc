"""``cnnlab export``: parse, then call `cnnlab.export.export_run`."""

from __future__ import annotations

import argparse

from cnnlab.cli.args import positive_int


def batch_option(text: str) -> int | str:
    """``dynamic`` or a positive batch size."""
    word = text.strip().lower()
    if word == "dynamic":
        return "dynamic"
    if word.isdigit() and int(word) > 0:
        return int(word)
    raise argparse.ArgumentTypeError(f"expected 'dynamic' or a positive integer, got {text!r}")


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="a run's model as an ONNX file or a .pt2 program, checked "
                                      "against PyTorch")
    p.add_argument("run", help="a run directory or a checkpoint file")
    p.add_argument("--format", help="onnx or pt2 (default: the one --out is named for, else onnx)")
    p.add_argument("--out", help="the file to write (default: next to the checkpoint, "
                                 "e.g. RUN/last.onnx)")
    p.add_argument("--batch", type=batch_option, default="dynamic",
                   help="dynamic (default: any batch size) or a fixed batch size")
    p.add_argument("--opset", type=positive_int, help="ONNX operator set (default: the exporter's)")
    p.add_argument("--data-dir", help="where the run's Fashion-MNIST files are, if they moved")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export, check on the run's test images, and say where the file is and how close it is."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.export import export_run

    result = export_run(args.run, args.out, format=args.format, batch=args.batch,
                        opset=args.opset, data_dir=args.data_dir)
    kind = f"ONNX opset {result.opset}" if result.opset is not None else "torch.export program"
    batch = "any batch size" if result.batch == "dynamic" else f"batch {result.batch}"
    sizes = " and ".join(map(str, result.checked_batches))
    print(f"exported {result.path} ({kind}, {batch}): its logits equal PyTorch's on batches of "
          f"{sizes} test images to {result.max_error:.1e} (tolerance {result.atol:g})")
    return 0
