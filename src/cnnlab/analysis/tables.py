"""What `cnnlab models`, `cnnlab summary` and `cnnlab compare` print.

Models are built on PyTorch's meta device (shapes only, no weights in memory), so even VGG-19 is
listed, summarised and compared in well under a second. A model is built for the input asked for:
the input channels come from `--input`, and models whose classifier is sized for the input (LeNet,
AlexNet, VGG, NiN) are built for its side, as the chapters do when they shrink VGG to 96 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.analysis.summary import Summary, format_bytes, format_shape, forward_flops, summary
from cnnlab.display import LEFT, RIGHT, TableData, plain_text, render_html, show
from cnnlab.models import list_models, model_info
from cnnlab.models.build import build_for_input, default_input, min_side
from cnnlab.models.spec import COMMON_OPTIONS, ModelSpec, format_value, model_options


def _sizes(spec, input_size) -> tuple[int, ...]:
    """`input_size` (None, (side,), (C, H, W) or (N, C, H, W)); None means the spec's default."""
    return default_input(spec) if input_size is None else tuple(input_size)


def print_models_table() -> None:
    """Every registered name with its parameters and forward MFLOPs at its default input."""
    rows = []
    for name in list_models():
        info = model_info(name)
        model = build_for_input(name, device="meta")
        params = sum(p.numel() for p in model.parameters())
        flops = forward_flops(model, info.input_size, name=name)
        rows.append((name, info.family, f"{params:,}", f"{info.input_size}",
                     f"{flops / 1e6:,.1f}", info.description))
    show(TableData("registered models (1 input channel, 10 classes)",
                   ("name", "family", "params", "input", "MFLOPs", "description"), rows,
                   (LEFT, LEFT, RIGHT, RIGHT, RIGHT, LEFT)))


def print_summary(name: str, input_size=None, depth: int = 1, batch_size: int = 1) -> None:
    """`cnnlab summary`: the layer table, totals and conv/fc split of one registered model.

    The batch size is `batch_size` or the N of an (N, C, H, W) input, whichever is not 1.
    """
    sizes = _sizes(name, input_size)
    if len(sizes) == 4 and batch_size == 1:
        batch_size = None  # the batch given in the input
    elif len(sizes) == 4 and sizes[0] == 1:
        sizes = sizes[1:]  # a 1x... input with --batch-size B: the batch is B
    model = build_for_input(name, sizes, device="meta")
    show(summary(model, sizes, depth=depth, batch_size=batch_size, name=str(name)))


@dataclass(frozen=True)
class ComparedModel:
    """One model of a comparison: its spec, its summary at the input, its smallest input side."""

    spec: str
    summary: Summary
    min_side: int


@dataclass(frozen=True)
class Comparison:
    """Models side by side: parameters, FLOPs, conv/fc shares, memory and smallest input.

    Print it (or ``str``) for the text table; a notebook shows it as an HTML table.
    """

    batch_size: int
    models: tuple[ComparedModel, ...]

    def table(self) -> TableData:
        rows = []
        for model in self.models:
            result, side = model.summary, model.min_side
            rows.append((model.spec, format_shape(result.input_shape[1:]), f"{result.params:,}",
                         f"{result.mflops:,.1f}", f"{result.conv.param_share:.1%}",
                         f"{result.fc.param_share:.1%}", f"{result.conv.flop_share:.1%}",
                         format_bytes(result.weight_bytes), format_bytes(result.inference_bytes),
                         format_bytes(result.training_bytes), f"{side}x{side}"))
        headers = ("model", "input", "params", "MFLOPs", "conv params", "fc params", "conv FLOPs",
                   "weights", "activations inference", "activations training", "min input")
        return TableData(f"models side by side (batch of {self.batch_size}, float32)", headers,
                         rows, (LEFT,) + (RIGHT,) * (len(headers) - 1))

    def __rich_console__(self, console, options):
        yield self.table()

    def __rich_measure__(self, console, options):
        return self.table().__rich_measure__(console, options)

    def __str__(self) -> str:
        return plain_text(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return render_html([self.table()])


def compare(specs, input_size=None) -> Comparison:
    """Summarise each model spec at `input_size` (a side, (C, H, W) or (N, C, H, W)) or else at
    its own default input, one image unless the input gives N; shapes only, nothing computed."""
    if isinstance(specs, (str, ModelSpec)):
        specs = [specs]
    if isinstance(input_size, int):
        input_size = (input_size,)
    batch = input_size[0] if input_size is not None and len(input_size) == 4 else 1
    models = []
    for spec in specs:
        sizes = _sizes(spec, input_size)
        model = build_for_input(spec, sizes, device="meta")
        result = summary(model, sizes, name=str(spec))
        side = min_side(spec, sizes[-3] if len(sizes) >= 3 else None)
        models.append(ComparedModel(str(spec), result, side))
    return Comparison(batch, tuple(models))


def print_comparison(names, input_size=None) -> None:
    """`cnnlab compare`: the comparison table of `compare`, printed."""
    show(compare(names, input_size))


def print_model_options(name: str | None = None) -> None:
    """`cnnlab models NAME` (or `--all-options`): each option of a model, its default and values.

    A spec such as ``lenet:norm=batch`` sets options: ``cnnlab train lenet:norm=batch``.
    """
    names = [name] if name else list_models()
    for index, model in enumerate(names):
        info = model_info(model)
        rows = []
        for option in model_options(model).values():
            if option.name in COMMON_OPTIONS and name is None:
                continue
            values = ", ".join(format_value(v) for v in option.choices) if option.choices \
                else type(option.default).__name__.replace("NoneType", "any")
            rows.append((option.name, format_value(option.default), values))
        if index:
            print()
        show(TableData(f"{model} ({info.family}): {info.description}",
                       ("option", "default", "values"), rows, (LEFT, LEFT, LEFT)))
    if name is None:
        print(f"\nevery model also takes {', '.join(COMMON_OPTIONS)}; "
              "set options with a spec such as lenet:norm=batch")
