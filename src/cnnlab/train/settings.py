"""Every setting of a training run: one typed dataclass that checks its values when made.

The names allowed for the optimiser, the schedule, the auto/on/off switches and the augmentations
are listed here once: the optimiser table and the command line take them from here. The layers
that give the settings their values are in `cnnlab.train.config`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from cnnlab.data.transforms import AUGMENTATIONS, augment_names
from cnnlab.errors import UsageError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "onecycle")
SWITCHES = ("auto", "on", "off")


def switch_word(value) -> str:
    """An auto/on/off setting in words: True is ``on``, False ``off``; words stay as they are."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; ``None`` in `lr`, `batch_size`, `epochs` and `resize`
    means "the model's seed recipe" until `cnnlab.train.config.resolve_config` fills it in."""

    model: str = "lenet"
    """The model spec, ``name:key=value,...`` (see `cnnlab models NAME`)."""
    data: str = "fashion-mnist"
    """``fashion-mnist`` or a folder laid out as ``root/<class>/<image>``."""
    data_dir: str | None = None
    resize: int | None = None
    batch_size: int | None = None
    subset: int | None = None
    val_fraction: float = 0.0
    augment: str = "none"
    epochs: int | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "none"
    warmup: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    device: str = "auto"
    amp: str = "auto"
    """Mixed precision: ``auto`` (where it is native and measured faster), ``on`` or ``off``."""
    channels_last: str = "auto"
    """Channels-last memory format: ``auto`` (where it is faster), ``on`` or ``off``."""
    compile: bool = False
    tta_flip: bool = False
    precise_bn: int = 0
    """Training images over which batch-norm statistics are recomputed before each evaluation
    (0: off, the moving averages as trained)."""
    threads: int | None = None
    """CPU threads; None: the cores this process may use."""
    seed: int = 0
    checkpoint_every: int | None = None
    decisions: dict = field(default_factory=dict, compare=False)
    """What ``auto`` settings became on this machine, and why (filled in by the trainer)."""

    def __post_init__(self):
        check_config(self)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some settings changed (checked)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        """Read a recorded configuration; unknown keys are an error naming them."""
        if not isinstance(values, dict):
            raise UsageError(f"{source}: the training settings are not a mapping")
        check_names(set(values) - {"decisions"}, source)
        try:
            return cls(**values)
        except UsageError as exc:
            raise UsageError(f"{source}: {exc}") from None


def setting_names() -> tuple[str, ...]:
    """The names of the training settings (the fields of TrainConfig, in order)."""
    return tuple(f.name for f in fields(TrainConfig) if f.name != "decisions")


def check_names(names: Iterable[str], source: str) -> None:
    """A UsageError naming those of `names` that are not training settings (from `source`)."""
    unknown = sorted(set(names) - set(setting_names()))
    if unknown:
        raise UsageError(f"{source}: unknown training settings {', '.join(unknown)}; known: "
                         f"{', '.join(setting_names())}")


def _problem(config: TrainConfig) -> tuple[str, Any, str] | None:
    """The first setting that is not allowed: (name, value, what is allowed), or None."""
    c = config
    positive_or_none = ("resize", "batch_size", "epochs", "subset", "threads", "checkpoint_every")
    for name in positive_or_none:
        value = getattr(c, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0):
            return name, value, "a positive integer"
    checks = [
        ("model", isinstance(c.model, str) and bool(c.model.strip()), "a model spec"),
        ("optimizer", c.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
        ("schedule", c.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
        ("amp", c.amp in SWITCHES, "auto, on or off"),
        ("channels_last", c.channels_last in SWITCHES, "auto, on or off"),
        ("lr", c.lr is None or _finite_number(c.lr) and c.lr > 0, "a positive number"),
        ("momentum", _finite_number(c.momentum) and c.momentum >= 0, "zero or more"),
        ("weight_decay", _finite_number(c.weight_decay) and c.weight_decay >= 0, "zero or more"),
        ("warmup", _finite_number(c.warmup) and c.warmup >= 0, "zero or more epochs"),
        ("label_smoothing", _finite_number(c.label_smoothing) and 0 <= c.label_smoothing < 1,
         "in [0, 1)"),
        ("val_fraction", _finite_number(c.val_fraction) and 0 <= c.val_fraction < 1, "in [0, 1)"),
        ("grad_clip", c.grad_clip is None or _finite_number(c.grad_clip) and c.grad_clip > 0,
         "a positive number"),
        ("seed", isinstance(c.seed, int) and not isinstance(c.seed, bool) and c.seed >= 0,
         "a non-negative integer"),
        ("compile", isinstance(c.compile, bool), "true or false"),
        ("tta_flip", isinstance(c.tta_flip, bool), "true or false"),
        ("precise_bn", isinstance(c.precise_bn, int) and not isinstance(c.precise_bn, bool)
         and c.precise_bn >= 0, "0 (off) or a number of training images such as 10000"),
        ("augment", _augment_ok(c.augment),
         f"none or {', '.join(AUGMENTATIONS)} joined by commas or + (crop,flip or crop+flip)"),
    ]
    for name, ok, allowed in checks:
        if not ok:
            return name, getattr(c, name), allowed
    if c.epochs is not None and c.warmup >= c.epochs:
        return "warmup", c.warmup, f"fewer epochs than epochs={c.epochs}"
    return None


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _augment_ok(text) -> bool:
    """``none``, or augmentation names joined by commas or plus signs (``crop+flip``)."""
    if not isinstance(text, str):
        return False
    parts = augment_names(text)
    return parts == ["none"] or bool(parts) and all(p in AUGMENTATIONS for p in parts)


def check_config(config: TrainConfig) -> None:
    """A one-line UsageError naming the first setting that is not allowed."""
    problem = _problem(config)
    if problem:
        name, value, allowed = problem
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"training setting {name}={value!r} is not allowed ({flag}): use "
                         f"{allowed}")
