"""Model specs: a registered name plus options, written the same way everywhere.

``lenet``, ``lenet:activation=relu,pool=max``, ``resnet50:config=imagenet`` or
``vgg11:arch=((1,64),(1,128),(2,256))`` name one architecture. Each option is a keyword parameter
of the family's builder (or one of `create_model`'s own: ``config``, ``init``, ``num_classes``,
``in_channels``); its text, or a Python value in its natural type (``create_model("googlenet",
stem=28)`` as ``googlenet:stem=28``), is read by the type of the parameter's default and checked
against the builder's ``OPTION_CHOICES``, so a spec that parses builds.
"""

from __future__ import annotations

import ast
import inspect
import numbers
from dataclasses import dataclass
from typing import Any

from cnnlab.display import LEFT, TableData, format_value, render_html
from cnnlab.errors import UsageError
from cnnlab.models.registry import IMAGENET_INPUT_SIZE, model_info

COMMON_OPTIONS = {"config": "fashion-mnist", "init": "xavier", "num_classes": 10,
                  "in_channels": 1}
"""Options every model takes: `create_model`'s own keyword arguments and their defaults."""

COMMON_CHOICES = {"config": ("fashion-mnist", "imagenet"), "init": ("xavier", "kaiming", None)}

BUILD_SHAPE = ("num_classes", "in_channels", "input_size")
"""Options that adapt a model to its data and input rather than change its design."""

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class OptionInfo:
    """One option of a registered model: its name, default, allowed values (or None: any)."""

    name: str
    default: Any
    choices: tuple | None = None

    def describe(self) -> str:
        allowed = f" ({'|'.join(format_value(c) for c in self.choices)})" if self.choices else ""
        return f"{self.name}={format_value(self.default)}{allowed}"


def model_options(name: str) -> dict[str, OptionInfo]:
    """The options of a registered model, with the defaults its name gives them."""
    info = model_info(name)
    choices = {**COMMON_CHOICES, **getattr(info.factory, "OPTION_CHOICES", {})}
    options = {key: OptionInfo(key, value, choices.get(key)) for key, value in
               COMMON_OPTIONS.items()}
    for param in inspect.signature(info.factory).parameters.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        if param.name in ("in_channels", "num_classes"):
            continue
        default = info.preset.get(param.name, param.default)
        if default is inspect.Parameter.empty:
            continue
        if param.name == "input_size":
            default = info.input_size
        options[param.name] = OptionInfo(param.name, default, choices.get(param.name))
    return options




def _split_options(text: str, spec: str) -> list[str]:
    """Split ``a=1,b=(1,2)`` at the commas outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"model spec {spec!r} has an unmatched {char!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise UsageError(f"model spec {spec!r} has an unclosed bracket")
    parts.append("".join(current))
    return parts


def _literal(text: str) -> Any:
    """A Python literal (number, tuple, bool, None) from spec text, else the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[lowered]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return _tuples(value)


def _tuples(value: Any) -> Any:
    """Lists become tuples, all the way down, so specs compare and hash by value."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def _is_number(value: Any) -> bool:
    """An int or float (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _coerce(option: OptionInfo, value: Any) -> Any:
    """Read `value` as the type of the option's default: spec text, or the value in its natural
    Python type (``stem=28`` for the text option stem="28", ``dropout=0`` for 0.0, a list for a
    tuple)."""
    default = option.default
    text = value.strip() if isinstance(value, str) else None
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected true or false")
    if isinstance(default, int):
        if text is not None:
            return int(text)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ValueError("expected an integer")
        return int(value)
    if isinstance(default, float):
        if text is None and not _is_number(value):
            raise ValueError("expected a number")
        return float(text if text is not None else value)
    if isinstance(default, str):
        if value is None and None in (option.choices or ()):
            return None
        if _is_number(value):
            text = format_value(value)  # a number names a text choice by its digits
        if text is None:
            raise ValueError("expected text")
        return None if text.lower() == "none" and None in (option.choices or ()) else text
    return _literal(text) if text is not None else _tuples(value)


def _is_probability(key: str) -> bool:
    """Dropout rates of every family (``dropout``, ``fc_dropout``...) are probabilities."""
    return key.endswith("dropout")


def check_option(name: str, option: OptionInfo | None, key: str, value: Any,
                 options: dict[str, OptionInfo]) -> Any:
    """The option's value in its proper type; a UsageError lists the valid options otherwise."""
    if option is None:
        listing = ", ".join(info.describe() for info in options.values())
        raise UsageError(f"model {name!r} has no option {key!r}; its options (with defaults) "
                         f"are: {listing}")
    try:
        converted = _coerce(option, value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{name}: option {key}={format_value(value)} is not valid ({exc}); "
                         f"default {option.describe()}") from None
    if option.choices is not None and converted not in option.choices:
        allowed = "|".join(format_value(c) for c in option.choices)
        raise UsageError(f"{name}: option {key}={format_value(converted)} is not allowed; use "
                         f"one of {allowed}")
    if _is_probability(key) and isinstance(converted, float | int) and not 0 <= converted < 1:
        raise UsageError(f"{name}: option {key}={format_value(converted)} is not a dropout "
                         "probability; use a value from 0 (no dropout) up to, not including, 1")
    return converted


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name with the options that differ from its defaults, checked."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, spec: str | ModelSpec, **overrides) -> ModelSpec:
        """Read ``name:key=value,...`` (or take a ModelSpec) and apply keyword `overrides`."""
        if isinstance(spec, ModelSpec):
            base, pairs = spec, []
        else:
            if not isinstance(spec, str) or not spec.strip():
                raise UsageError(f"a model spec is a name such as lenet or "
                                 f"lenet:activation=relu, got {spec!r}")
            name, _, rest = spec.strip().partition(":")
            base, pairs = cls(name.strip()), []
            if rest.strip():
                for part in _split_options(rest, spec):
                    key, eq, value = part.partition("=")
                    if not eq or not key.strip():
                        raise UsageError(f"model spec {spec!r}: expected key=value, got "
                                         f"{part!r}")
                    pairs.append((key.strip(), value))
        return base.with_options(**dict(pairs), **overrides)

    def with_options(self, **changes) -> ModelSpec:
        """This spec with some options set (checked); options equal to the default are dropped."""
        options = model_options(self.name)
        values = dict(self.options)
        for key, value in changes.items():
            key = key.replace("-", "_")
            values[key] = check_option(self.name, options.get(key), key, value, options)
        kept = tuple((key, value) for key, value in values.items()
                     if key in BUILD_SHAPE[:2] or value != options[key].default
                     or type(value) is not type(options[key].default))
        return ModelSpec(self.name, kept)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as `create_model` keyword arguments."""
        return dict(self.options)

    @property
    def input_size(self) -> int:
        """The square input side this spec's model is made for: its `input_size` option, else
        the side one of its family's options fixes (the builder's ``INPUT_SIZES``: GoogLeNet's
        stem="28" keeps 28x28 images), else ImageNet's for config="imagenet", else its name's.
        Every default input (``compare``, ``summary``, ``bench``) and the seed recipe's resize
        come from here."""
        info = model_info(self.name)
        values = {**info.preset, **self.kwargs}
        if values.get("input_size"):
            return values["input_size"]
        for key, sides in getattr(info.factory, "INPUT_SIZES", {}).items():
            if values.get(key) in sides:
                return sides[values[key]]
        return IMAGENET_INPUT_SIZE if values.get("config") == "imagenet" else info.input_size

    @property
    def design(self) -> ModelSpec:
        """The spec without the options that only adapt it to data (classes, channels, size)."""
        return ModelSpec(self.name, tuple(p for p in self.options if p[0] not in BUILD_SHAPE))

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name}:" + ",".join(f"{k}={format_value(v)}" for k, v in self.options)

    def _repr_html_(self) -> str:
        """Every option of the model with its value here and its default, in a notebook."""
        values = dict(self.options)
        rows = [(key, format_value(values.get(key, info.default)), format_value(info.default),
                 "set" if key in values else "")
                for key, info in model_options(self.name).items()]
        return render_html([TableData(str(self), ("option", "value", "default", ""), rows,
                                      (LEFT,) * 4)])


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """`ModelSpec.parse`, the form the command line and config files use."""
    return ModelSpec.parse(spec)
