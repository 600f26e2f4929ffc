"""The ``cnnlab train``, ``cnnlab eval`` and ``cnnlab predict`` commands.

Each takes the parsed arguments, returns the exit code, and raises ValueError or
FileNotFoundError (one line, exit 2) for bad input; a diverged run raises TrainingDiverged (3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.distributed import is_main_process
from cnnlab.train.rundir import BEST, CURVES, LAST, RunDir, default_run_path
from cnnlab.train.trainer import Trainer, resolve_device

RESUMABLE = {"--epochs", "--device", "--data-dir", "--resume", "--nproc"}
"""Arguments that may change when a run is resumed; all others come from its config.json."""


# --- train ---------------------------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    """Train a model (or resume a run) and print the test accuracy and where the files are."""
    if args.nproc:
        from cnnlab.train.distributed import launch

        return launch(args.nproc, ["train", *_train_argv(args)])
    if args.resume:
        trainer, model, data, out = _resumed_run(args)
    else:
        if args.recipe:
            from cnnlab.train.recipes import apply_recipe

            apply_recipe(args)  # fills the options not given on the command line
        trainer, model, data, out = _new_run(args)
    history = trainer.fit(model, data, out=out, resume=bool(args.resume))
    if is_main_process():
        _print_result(history.result, Path(out))
    return 0


def _new_run(args):
    from cnnlab.models import check_input_size, create_model, model_info

    if not args.model:
        raise ValueError("name a model to train (see `cnnlab models`) or pass --resume RUN_DIR")
    info = model_info(args.model)
    recipe = info.recipe
    size = args.resize or recipe.resize
    data = _make_data(args, size, args.batch_size or recipe.batch_size)
    torch.manual_seed(args.seed)
    kwargs = {"input_size": size} if info.sized else {}
    model = create_model(args.model, num_classes=data.num_classes, in_channels=data.in_channels,
                         **kwargs)
    check_input_size(model, size, name=args.model)
    trainer = Trainer(
        max_epochs=args.epochs or recipe.epochs,
        optimizer=args.optimizer or recipe.optimizer,
        lr=args.lr or recipe.lr,
        momentum=args.momentum or 0.0,
        weight_decay=args.weight_decay or 0.0,
        schedule=args.schedule,
        warmup=args.warmup or 0.0,
        label_smoothing=args.label_smoothing or 0.0,
        grad_clip=args.grad_clip,
        device=args.device,
        amp=args.amp,
        channels_last=recipe.channels_last if args.channels_last is None else args.channels_last,
        compile=args.compile,
        tta_flip=args.tta_flip,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    out = args.out or default_run_path(args.model)
    return trainer, model, data, out


def _make_data(args, size: int, batch_size: int):
    common = {"batch_size": batch_size, "val_fraction": args.val_fraction or 0.0,
              "augment": args.augment, "seed": args.seed, "subset": args.subset}
    if args.data == "fashion-mnist":
        from cnnlab.data import FashionMNIST

        return FashionMNIST(resize=size, root=args.data_dir, **common)
    from cnnlab.data import ImageFolder

    return ImageFolder(args.data, size=size, **common)


def _resumed_run(args):
    fixed = [option for option, _ in _given_options(args) if option not in RESUMABLE]
    if args.model:
        fixed.insert(0, "MODEL")
    if fixed:
        raise ValueError(f"--resume continues a run with its own settings; drop {', '.join(fixed)} "
                         "(only --epochs, --device, --data-dir and --nproc may change)")
    config = RunDir.open(args.resume).read_config()
    overrides = {}
    if args.device != "auto":
        overrides["device"] = args.device
    if args.epochs:
        overrides["max_epochs"] = args.epochs
    trainer = Trainer(**{**config["trainer"], **overrides})
    data = data_from_config(config["data"], args.data_dir)
    model = model_from_config(config["model"])
    return trainer, model, data, args.resume


def _given_options(args: argparse.Namespace):
    """(option, value) for each ``cnnlab train`` option given a value other than its default."""
    from cnnlab.cli import _add_train

    subparsers = argparse.ArgumentParser().add_subparsers()
    _add_train(subparsers)
    for action in subparsers.choices["train"]._actions:
        value = getattr(args, action.dest, None)
        unset = value is None or value is False or value == action.default
        if action.option_strings and not unset:
            yield action.option_strings[0], value


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The command line of ``args`` without ``--nproc``, for the processes torchrun starts.

    A ``--recipe`` is passed on as it is, so each process fills in the same options.
    """
    argv = [args.model] if args.model else []
    for option, value in _given_options(args):
        if option in ("--nproc", "--help"):
            continue
        argv += [option] if value is True else [option, str(value)]
    return argv


def _print_result(result: dict, out: Path) -> None:
    epochs = f"{result['epochs']} epoch" + ("s" if result["epochs"] != 1 else "")
    print(f"test accuracy {result['test_acc']:.1%} after {epochs} "
          f"({result['model']}, {result['seconds_per_epoch']:.1f} s/epoch)")
    print(f"curves:     {out / CURVES}")
    print(f"checkpoint: {out / LAST} (best: {out / BEST})")


# --- rebuilding a run ----------------------------------------------------------------------------


def data_from_config(config: dict, data_dir: str | None = None):
    """The data module a run trained on, rebuilt from its config (Fashion-MNIST may move)."""
    from cnnlab.data import FashionMNIST, from_description

    description = dict(config["args"])
    if data_dir is not None and description["kind"] == FashionMNIST.kind:
        description["root"] = data_dir
    return from_description(description)


def model_from_config(config: dict) -> torch.nn.Module:
    """A fresh model with a run's architecture (``create_model`` arguments from its config)."""
    from cnnlab.models import create_model

    return create_model(**config)


def _checkpoint_path(run: str) -> Path:
    """A checkpoint file, or a run directory's ``last.pt``."""
    path = Path(run)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise FileNotFoundError(f"no run or checkpoint at {run} (expected a run directory "
                                f"with {LAST}, or a .pt file)")
    return path


def load_trained(run: str, device: torch.device) -> tuple[torch.nn.Module, dict, Path]:
    """The trained model of a run directory or checkpoint, its run config and checkpoint path."""
    path = _checkpoint_path(run)
    state = load_checkpoint(path)
    config = state.get("config")
    if not config:
        raise ValueError(f"{path} holds no run config; was it written by `cnnlab train`?")
    model = model_from_config(config["model"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config, path


# --- eval ----------------------------------------------------------------------------------------


def eval_command(args: argparse.Namespace) -> int:
    """Test accuracy, per-class accuracy and the confusion matrix (a table and a PNG)."""
    from cnnlab.train.evaluation import confusion_matrix, print_report, save_confusion_png

    device = resolve_device(args.device)
    model, config, path = load_trained(args.run, device)
    data = data_from_config(config["data"], args.data_dir).to(device)
    tta_flip = config["trainer"].get("tta_flip", False)
    confusion = confusion_matrix(model, data.test_dataloader(), data.num_classes, tta_flip)
    print_report(confusion, data.classes, title=f"{config['model']['name']} on the test set "
                                                f"({path})")
    png = save_confusion_png(confusion, data.classes, path.with_name(f"confusion-{path.stem}.png"))
    print(f"confusion matrix: {png}")
    return 0


# --- predict -------------------------------------------------------------------------------------


def predict_command(args: argparse.Namespace) -> int:
    """Top-k classes with probabilities for each image file, converted as in training."""
    from cnnlab.train.evaluation import predict_images

    device = resolve_device(args.device)
    model, config, _ = load_trained(args.run, device)
    classes = config["data"]["classes"]
    top_k = min(args.top_k, len(classes))
    predictions = predict_images(model, config["data"], args.images, top_k)
    for image, (probs, indices) in zip(args.images, predictions, strict=True):
        ranked = ", ".join(f"{classes[i]} {p:.1%}" for p, i in zip(probs, indices, strict=True))
        print(f"{image}: {ranked}")
    return 0
