"""`summary`: the layer-by-layer table of shapes, parameters, FLOPs, memory and receptive fields.

The forward pass is traced on PyTorch's meta device (parameters swapped for shape-only copies with
`torch.func.functional_call`), so a summary costs no arithmetic and leaves the model unchanged,
however large the input or batch. FLOPs come from `torch.utils.flop_counter` (2 per multiply-add
of convolutions and matrix products) and are attributed to a module by forward hooks, so nested
trees, branches and modules called twice are counted where they run.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.analysis.memory import PeakMemoryMode, SavedTensors
from cnnlab.analysis.receptive_field import ReceptiveFieldMode
from cnnlab.display import LEFT, RIGHT, TableData, plain_text, render_html
from cnnlab.errors import UsageError
from cnnlab.models import check_input_size

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
              nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
FC_TYPES = (nn.Linear,)
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class LayerGroup:
    """Parameters and forward FLOPs of one kind of layer and their shares of the whole model."""

    name: str
    params: int
    flops: int
    param_share: float
    flop_share: float

    @property
    def weight_bytes(self) -> int:
        """Memory the group's parameters take at float32."""
        return self.params * FLOAT32_BYTES


@dataclass
class Summary:
    """What `summary` measured: one row per module, totals and the memory estimates.

    FLOPs and activation bytes are for one forward pass on `input_shape` (batch included).
    """

    model_name: str
    input_shape: tuple[int, ...]
    depth: int
    rows: list[dict]
    params: int
    trainable_params: int
    flops: int
    groups: dict[str, LayerGroup]
    inference_bytes: int
    training_bytes: int

    @property
    def batch_size(self) -> int:
        return self.input_shape[0]

    @property
    def mflops(self) -> float:
        """Forward MFLOPs for the whole batch."""
        return self.flops / 1e6

    @property
    def conv(self) -> LayerGroup:
        return self.groups["convolutional"]

    @property
    def fc(self) -> LayerGroup:
        return self.groups["fully connected"]

    @property
    def weight_bytes(self) -> int:
        """Memory all parameters take at float32."""
        return self.params * FLOAT32_BYTES

    def tables(self) -> list[TableData]:
        """The layer table, the totals and the convolutional vs fully connected split."""
        return [self._layer_table(), self._totals_table(), self._groups_table()]

    def __rich_console__(self, console, options):
        yield from self.tables()

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        tables = self.tables()
        return Measurement(max(table.narrowest() for table in tables),
                           max(table.natural_width() for table in tables))

    def __str__(self) -> str:
        return plain_text(self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return render_html(self.tables())

    def _layer_table(self) -> TableData:
        rows = []
        for row in self.rows:
            field = row["receptive_field"]
            rows.append(("  " * max(row["depth"] - 1, 0) + (row["name"] or "(model)"),
                         row["type"], format_shape(row["output_shape"]), f"{row['params']:,}",
                         f"{row['flops'] / 1e6:,.2f}", format_bytes(row["activation_bytes"]),
                         "-" if field is None else str(field)))
        return TableData(f"{self.model_name} on {format_shape(self.input_shape)}",
                         ("layer", "type", "output shape", "params", "MFLOPs", "activations",
                          "receptive field"), rows, (LEFT, LEFT) + (RIGHT,) * 5)

    def _totals_table(self) -> TableData:
        batch = f"batch of {self.batch_size}"
        rows = [
            ("parameters", f"{self.params:,}", f"{self.trainable_params:,} trainable"),
            ("forward MFLOPs", f"{self.mflops:,.1f}",
             f"{batch}, {self.mflops / self.batch_size:,.1f} per image"),
            ("weights (float32)", format_bytes(self.weight_bytes), ""),
            ("activations, inference", format_bytes(self.inference_bytes),
             f"{batch}: peak of the tensors alive at once"),
            ("activations, training", format_bytes(self.training_bytes),
             f"{batch}: tensors saved for the backward pass"),
        ]
        return TableData("totals", ("", "", ""), rows, (LEFT, RIGHT, LEFT), show_header=False)

    def _groups_table(self) -> TableData:
        rows = [(group.name, f"{group.params:,}", f"{group.param_share:.1%}",
                 f"{group.flops / 1e6:,.1f}", f"{group.flop_share:.1%}",
                 format_bytes(group.weight_bytes)) for group in self.groups.values()]
        return TableData("convolutional vs fully connected layers",
                         ("layers", "params", "share of params", "MFLOPs", "share of FLOPs",
                          "weights (float32)"), rows, (LEFT,) + (RIGHT,) * 5)


def format_shape(shape) -> str:
    """'1x6x28x28' for a shape, shapes joined by ', ' for several outputs, '-' for none."""
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], tuple):
        return ", ".join(format_shape(part) for part in shape)
    return "x".join(str(size) for size in shape)


def format_bytes(nbytes: int) -> str:
    """Bytes in B, KiB, MiB or GiB with one decimal."""
    for unit in ("B", "KiB", "MiB"):
        if nbytes < 1024:
            return f"{nbytes:.0f} B" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


@dataclass
class _Record:
    """What the hooks saw of one module: first-call order, calls, FLOPs, output."""

    order: int
    calls: int = 0
    flops: int = 0
    activation_bytes: int = 0
    output_shape: tuple | None = None
    receptive_field: int | None = None


class _Recorder:
    """Forward hooks on every module that attribute FLOPs, output shapes and fields to it."""

    def __init__(self, model: nn.Module, counter: FlopCounterMode, fields: ReceptiveFieldMode):
        self.records: dict[nn.Module, _Record] = {}
        self._counter, self._fields = counter, fields
        self._started: list[int] = []
        self._handles = []
        for module in model.modules():
            self._handles.append(module.register_forward_pre_hook(self._before))
            self._handles.append(module.register_forward_hook(self._after))

    def _before(self, module, args) -> None:
        self._started.append(self._counter.get_total_flops())
        self.records.setdefault(module, _Record(order=len(self.records)))

    def _after(self, module, args, output) -> None:
        record = self.records[module]
        record.calls += 1
        record.flops += self._counter.get_total_flops() - self._started.pop()
        tensors = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        record.activation_bytes += sum(t.numel() * t.element_size() for t in tensors)
        if record.calls == 1 and tensors:
            shapes = tuple(tuple(t.shape) for t in tensors)
            record.output_shape = shapes[0] if len(shapes) == 1 else shapes
            record.receptive_field = self._fields.field_of(tensors[0])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@contextmanager
def _evaluating(model: nn.Module):
    """Eval mode (no dropout, batch norm on running statistics) for the block, then restore."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _meta_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """Shape-only stand-ins for the parameters (keeping requires_grad) and buffers."""
    copies = {name: torch.empty_like(p, device="meta").requires_grad_(p.requires_grad)
              for name, p in model.named_parameters()}
    copies.update({name: torch.empty_like(b, device="meta")
                   for name, b in model.named_buffers()})
    return copies


def _label(model: nn.Module, name: str | None) -> str:
    return f"model {name!r}" if name else f"the model ({type(model).__name__})"


def _conv_in_channels(model: nn.Module) -> int | None:
    """Input channels of the model's first convolution (None for a model without one)."""
    return next((m.in_channels for m in model.modules() if isinstance(m, CONV_TYPES)), None)


def input_shape(model: nn.Module, input_size, batch_size: int | None = None,
                name: str | None = None) -> tuple[int, int, int, int]:
    """(N, C, H, W) from a side, (side,), (C, H, W) or (N, C, H, W); C defaults to the input
    channels of the model's first convolution and N to `batch_size` (else 1)."""
    sizes = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)
    if len(sizes) not in (1, 3, 4) or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise UsageError(f"input size must be a side, (C, H, W) or (N, C, H, W) of positive "
                         f"integers, got {input_size!r}; for example 224 or (1, 1, 224, 224)")
    if batch_size is not None and batch_size <= 0:
        raise UsageError(f"batch size must be a positive integer, got {batch_size}")
    if len(sizes) == 4 and batch_size not in (None, sizes[0]):
        raise UsageError(f"the batch size is given twice: {sizes[0]} in the input size and "
                         f"{batch_size} as batch_size; give it once")
    channels = _conv_in_channels(model)
    if len(sizes) == 1:
        if channels is None:
            raise UsageError(f"{_label(model, name)} has no convolution to tell its input "
                             f"channels; give the input size as (C, H, W)")
        sizes = (channels, sizes[0], sizes[0])
    if len(sizes) == 3:
        sizes = (batch_size or 1, *sizes)
    if channels is not None and sizes[1] != channels:
        raise UsageError(f"{_label(model, name)} takes {channels} input channels, got input "
                         f"{format_shape(sizes)}; use an input such as "
                         f"{format_shape((sizes[0], channels, *sizes[2:]))}")
    return sizes


def _trace(model: nn.Module, x: torch.Tensor, tensors: dict[str, torch.Tensor]):
    """One forward with gradients (hooks, FLOPs, fields, saved tensors) and one without (peak)."""
    params = [t for t in tensors.values() if t.requires_grad]
    saved = SavedTensors(exclude=params)
    with FlopCounterMode(display=False) as counter, ReceptiveFieldMode(x) as fields:
        recorder = _Recorder(model, counter, fields)
        try:
            with torch.enable_grad(), saved.recording():
                functional_call(model, tensors, (x,))
        finally:
            recorder.remove()
    with torch.no_grad(), PeakMemoryMode(resident=[x], exclude=tensors.values()) as peak:
        functional_call(model, tensors, (x,))
    return recorder.records, counter.get_total_flops(), saved.nbytes, peak.peak


def _rows(model: nn.Module, records: dict[nn.Module, _Record], depth: int) -> list[dict]:
    """Modules down to `depth` in the order they first ran (modules that never ran last)."""
    named = [(name, module) for name, module in model.named_modules()
             if name and name.count(".") < depth] or [("", model)]
    never = len(records)
    named.sort(key=lambda item: records[item[1]].order if item[1] in records else never)
    rows = []
    for name, module in named:
        record = records.get(module, _Record(order=never))
        rows.append({
            "name": name, "type": type(module).__name__,
            "depth": name.count(".") + 1 if name else 0,
            "output_shape": record.output_shape,
            "params": sum(p.numel() for p in module.parameters()),
            "flops": record.flops, "activation_bytes": record.activation_bytes,
            "receptive_field": record.receptive_field, "calls": record.calls,
        })
    return rows


def _groups(model: nn.Module, records: dict[nn.Module, _Record], params: int,
            flops: int) -> dict[str, LayerGroup]:
    """Parameters and FLOPs of the convolutional and fully connected layers, and the rest."""
    totals = {}
    for group, types in (("convolutional", CONV_TYPES), ("fully connected", FC_TYPES)):
        modules = [m for m in model.modules() if isinstance(m, types)]
        totals[group] = (sum(p.numel() for m in modules for p in m.parameters()),
                         sum(records[m].flops for m in modules if m in records))
    totals["other"] = (params - sum(p for p, _ in totals.values()),
                       flops - sum(f for _, f in totals.values()))
    return {group: LayerGroup(group, p, f, p / max(params, 1), f / max(flops, 1))
            for group, (p, f) in totals.items()}


@contextmanager
def _explaining_failures(model: nn.Module, shape: tuple[int, ...], name: str | None):
    """Turn a forward pass that fails into a one-line ValueError naming model, input and the
    smallest input that works (when the input is too small)."""
    try:
        yield
    except RuntimeError as error:
        if _conv_in_channels(model) is not None:
            check_input_size(model, shape[2:], name=name)
        reason = str(error).strip().splitlines()[0]
        raise UsageError(f"{_label(model, name)} fails on input {format_shape(shape)}: "
                         f"{reason}") from None


def _meta_input(model: nn.Module, shape: tuple[int, ...]):
    """Meta stand-ins for the model's tensors and an input batch of `shape` in the model's dtype."""
    tensors = _meta_copies(model)
    dtype = next((t.dtype for t in tensors.values() if t.is_floating_point()), torch.float32)
    return tensors, torch.empty(shape, dtype=dtype, device="meta")


def forward_flops(model: nn.Module, input_size, batch_size: int | None = None,
                  name: str | None = None) -> int:
    """FLOPs of one forward pass (2 per multiply-add), counted on the meta device: the quick
    total when the layer table is not needed."""
    shape = input_shape(model, input_size, batch_size, name)
    tensors, x = _meta_input(model, shape)
    with _explaining_failures(model, shape, name), _evaluating(model), torch.no_grad(), \
            FlopCounterMode(display=False) as counter:
        functional_call(model, tensors, (x,))
    return counter.get_total_flops()


def summary(model: nn.Module, input_size, depth: int = 1, batch_size: int | None = None,
            name: str | None = None) -> Summary:
    """Layer-by-layer table of `model` on `input_size` (a side, (C, H, W) or (N, C, H, W)).

    Rows list every module down to `depth` (1: the top-level children) in the order the forward
    pass runs them. The model runs in eval mode on the meta device, so nothing is computed or
    changed. `name` labels the table and the error raised when the input is too small.
    """
    if not isinstance(depth, int) or depth < 1:
        raise UsageError(f"depth must be a positive integer, got {depth!r}")
    shape = input_shape(model, input_size, batch_size, name)
    tensors, x = _meta_input(model, shape)
    with _explaining_failures(model, shape, name), _evaluating(model):
        records, flops, training_bytes, inference_bytes = _trace(model, x, tensors)
    params = sum(p.numel() for p in model.parameters())
    return Summary(
        model_name=name or type(model).__name__, input_shape=shape, depth=depth,
        rows=_rows(model, records, depth), params=params,
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops=flops, groups=_groups(model, records, params, flops),
        inference_bytes=inference_bytes, training_bytes=training_bytes,
    )
