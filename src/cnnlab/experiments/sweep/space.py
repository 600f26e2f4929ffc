"""What a sweep varies: grid axes ``KEY=V1,V2,...`` and search ranges ``KEY=LOW..HIGH[:log]``.

A key is a training setting (``lr``, ``batch_size``, ``augment``, ...) or, written
``model.OPTION``, an option of the model spec (``model.num_1x1=1,2,3``). A trial is one point of
the space: a model spec and one value per key. Its parameters name its run directory, so the same
point always trains in the same folder and a retried trial continues from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass

from cnnlab.data.transforms import augment_names, parse_augment
from cnnlab.errors import UsageError
from cnnlab.models.spec import ModelSpec, _split_options, format_value
from cnnlab.train.config import TrainConfig, resolve_config, setting_names

MODEL = "model"
"""The trial parameter that holds the model spec."""
MODEL_OPTION = "model."
"""Keys starting with this set an option of the spec (``model.norm``)."""

_WORDS = {"true": True, "on": True, "yes": True, "1": True,
          "false": False, "off": False, "no": False, "0": False}


@dataclass(frozen=True)
class GridAxis:
    """One key and the values a grid (or a search, as a categorical choice) takes for it."""

    key: str
    values: tuple

    def __str__(self) -> str:
        return f"{self.key}={','.join(format_value(v) for v in self.values)}"


@dataclass(frozen=True)
class SearchRange:
    """One numeric key searched between `low` and `high` (on a log scale when `log`)."""

    key: str
    low: int | float
    high: int | float
    log: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def __str__(self) -> str:
        return f"{self.key}={format_value(self.low)}..{format_value(self.high)}" + (
            ":log" if self.log else "")


def setting_type(name: str) -> type:
    """The Python type of a training setting (``int`` for ``batch_size: int | None``)."""
    hint = typing.get_type_hints(TrainConfig)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def normalize_key(key: str, flag: str) -> str:
    """``batch-size`` -> ``batch_size``; ``model.num-1x1`` -> ``model.num_1x1``; checked."""
    key = key.strip().replace("-", "_")
    if key.startswith(MODEL_OPTION) and len(key) > len(MODEL_OPTION):
        return key
    if key == MODEL:
        raise UsageError(f"{flag}: list the model specs as arguments (cnnlab sweep lenet "
                         "lenet:norm=batch ...), or vary one option with model.OPTION=...")
    swept = [name for name in setting_names() if name != MODEL]
    if key not in swept:
        raise UsageError(f"{flag}: unknown key {key!r}; use a training setting "
                         f"({', '.join(swept)}) or model.OPTION")
    return key


AUGMENT = "augment"
"""The setting whose one value may combine several names (``crop+flip``)."""


def _augment_value(text: str, flag: str) -> str:
    """One augment value of a grid: ``none``, a name, or a combination written ``crop+flip`` or
    in brackets ``(crop,flip)``; a combination is kept as ``crop+flip``, one value whatever the
    commas around it."""
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    try:
        parse_augment(text)
    except UsageError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    return "+".join(augment_names(text)) or text


def _grid_value(key: str, text: str, flag: str):
    """A grid value in the type of its setting; model option values stay text (the spec reads
    them by the option's type)."""
    text = text.strip()
    if key.startswith(MODEL_OPTION):
        return text
    if key == AUGMENT:
        return _augment_value(text, flag)
    kind = setting_type(key)
    try:
        if kind is bool:
            return _WORDS[text.lower()]
        return kind(text)
    except (KeyError, ValueError):
        raise UsageError(f"{flag}: {key} takes {kind.__name__} values, got {text!r}") from None


def parse_grid(text: str) -> GridAxis:
    """``KEY=V1,V2,...`` (commas inside brackets belong to a value, as in spec options:
    ``augment=none,(crop,flip)`` is the same axis as ``augment=none,crop+flip``)."""
    flag = f"--grid {text}"
    key, eq, rest = text.partition("=")
    if not eq or not rest.strip():
        raise UsageError(f"{flag}: expected KEY=V1,V2,... such as lr=0.01,0.1,1")
    key = normalize_key(key, flag)
    parts = [part for part in _split_options(rest, flag) if part.strip()]
    values = tuple(_grid_value(key, part, flag) for part in parts)
    meanings = [parse_augment(v) for v in values] if key == AUGMENT else list(values)
    if any(meanings.count(meaning) > 1 for meaning in meanings):
        raise UsageError(f"{flag}: a value is listed twice")
    return GridAxis(key, values)


SEED = "seed"
"""The setting that repeats a trial: each seed draws its own initial weights, data order and
augmentation, the same for every variant (repeats are paired)."""


MAX_REPEATS = 100
"""The most seeds one sweep repeats each point with (each is a trial of its own)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds 3`` is seeds 0, 1, 2; ``--seeds 0,4,7`` lists them (``--seeds 5,`` is seed 5
    alone)."""
    flag = f"--seeds {text}"
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = tuple(range(count))
        else:
            seeds = tuple(int(part) for part in text.removesuffix(",").split(","))
    except ValueError:
        raise UsageError(f"{flag}: expected a number of seeds (3 means 0, 1, 2) or a list of "
                         "seeds such as 0,1,2") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"{flag}: list each seed once, each 0 or more")
    if len(seeds) > MAX_REPEATS:
        raise UsageError(f"{flag}: at most {MAX_REPEATS} seeds (each is a trial of its own); "
                         "ask for fewer")
    return seeds


def _range_end(text: str, flag: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{flag}: {text!r} is not a number; expected KEY=LOW..HIGH[:log] such "
                         "as lr=1e-3..1:log") from None


def parse_search(text: str) -> SearchRange:
    """``KEY=LOW..HIGH`` or ``KEY=LOW..HIGH:log`` for a numeric setting or model option."""
    flag = f"--search {text}"
    key, eq, rest = text.partition("=")
    bounds, _, scale = rest.partition(":")
    low, dots, high = bounds.partition("..")
    if not eq or not dots or scale not in ("", "log"):
        raise UsageError(f"{flag}: expected KEY=LOW..HIGH or KEY=LOW..HIGH:log such as "
                         "lr=1e-3..1:log")
    key = normalize_key(key, flag)
    low, high = _range_end(low, flag), _range_end(high, flag)
    if not key.startswith(MODEL_OPTION):
        kind = setting_type(key)
        if kind not in (int, float):
            raise UsageError(f"{flag}: {key} is not a number; list its values with --grid")
        low, high = kind(low), kind(high)
    if not low < high:
        raise UsageError(f"{flag}: LOW must be below HIGH")
    if scale and low <= 0:
        raise UsageError(f"{flag}: a log range needs LOW > 0")
    return SearchRange(key, low, high, bool(scale))


def trial_config(params: dict, settings: dict, recipe: str | None = None) -> TrainConfig:
    """The training configuration of one trial: the sweep's settings with its parameters."""
    spec = ModelSpec.parse(params[MODEL])
    options = {key[len(MODEL_OPTION):]: value for key, value in params.items()
               if key.startswith(MODEL_OPTION)}
    if options:
        spec = spec.with_options(**options)
    swept = {key: value for key, value in params.items()
             if key != MODEL and not key.startswith(MODEL_OPTION)}
    return resolve_config({**settings, **swept, MODEL: str(spec)}, recipe)


def describe(params: dict) -> str:
    """A trial's parameters in one line: ``lenet:norm=batch lr=0.3``."""
    return " ".join([str(params[MODEL]), *(f"{key}={format_value(value)}"
                                            for key, value in params.items() if key != MODEL)])


def params_key(params: dict) -> str:
    """Canonical text of a trial's parameters: equal parameters, equal key."""
    return json.dumps(params, sort_keys=True)


def run_name(params: dict, slot: int | None = None) -> str:
    """The trial's run directory name: readable parameters plus a hash that keeps it unique.

    A search names the trial slot too (``-t3``): two of its trials may sample equal points.
    """
    readable = "-".join([str(params[MODEL]), *(f"{key}={_short(value)}"
                                               for key, value in params.items() if key != MODEL)])
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", readable)[:80]
    salt = "" if slot is None else f"-t{slot}"
    digest = hashlib.sha1((params_key(params) + salt).encode()).hexdigest()[:6]
    return f"{safe}{salt}-{digest}"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)
