"""A sweep: model specs crossed with grid axes, or a search over ranges, as one Optuna study.

The definition (specs, axes, ranges, trials and the training settings every trial shares) is
stored in the study itself, so a worker needs only the study's name and storage to help: that is
how ``--join`` adds machines. Every trial trains an ordinary run directory under the sweep's
folder, named after its parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import UsageError
from cnnlab.experiments.sweep.space import (
    MODEL,
    MODEL_OPTION,
    SEED,
    GridAxis,
    SearchRange,
    parse_grid,
    parse_search,
    parse_seeds,
    trial_config,
)
from cnnlab.models.spec import ModelSpec
from cnnlab.train.config import TrainConfig

RUNTIME_SETTINGS = ("device", "threads", "data_dir")
"""Settings that change where and how fast trials run, not what they compute: a sweep keeps its
name (and its finished trials) when they change."""

SWEEPS_ROOT = Path("runs")


@dataclass(frozen=True)
class Sweep:
    """What to run: `specs` times the `grid` axes, or `trials` points sampled from `search`."""

    specs: tuple[str, ...]
    grid: tuple[GridAxis, ...] = ()
    search: tuple[SearchRange, ...] = ()
    trials: int | None = None
    settings: dict = field(default_factory=dict)
    """The user's training settings, shared by every trial (a layer of `resolve_config`)."""
    recipe: str | None = None
    spec_settings: dict = field(default_factory=dict)
    """Settings of one spec's trials only (``{spec: {"resize": 68}}``), over `settings`."""

    def __post_init__(self):
        if not self.specs:
            raise UsageError("a sweep needs at least one model spec, e.g. cnnlab sweep lenet "
                             "--grid lr=0.01,0.1,1")
        object.__setattr__(self, "specs", tuple(str(ModelSpec.parse(s)) for s in self.specs))
        object.__setattr__(self, "spec_settings", {str(ModelSpec.parse(spec)): dict(values)
                                                   for spec, values in self.spec_settings.items()})
        object.__setattr__(self, "grid", tuple(self.grid))
        object.__setattr__(self, "search", tuple(self.search))
        keys = [MODEL, *(axis.key for axis in self.grid), *(r.key for r in self.search)]
        if len(set(keys)) != len(keys):
            raise UsageError(f"each key may be swept once, got {', '.join(keys[1:])}")
        swept = set(keys) & {key for values in (self.settings, *self.spec_settings.values())
                             for key in values}
        if swept:
            raise UsageError(f"{', '.join(sorted(swept))} is both swept and set; drop one")
        unknown = set(self.spec_settings) - set(self.specs)
        if unknown:
            raise UsageError(f"settings are given for {', '.join(sorted(unknown))}, which the "
                             "sweep does not train; list it among the specs")
        if self.search and not self.trials:
            raise UsageError("--search needs --trials N (how many points to sample)")
        if self.trials and not self.search:
            raise UsageError("--trials goes with --search; a grid runs every combination")
        if not self.search and not self.grid and len(self.specs) == 1:
            raise UsageError("nothing to sweep: give --grid KEY=V1,V2,..., --search "
                             "KEY=LOW..HIGH --trials N, or several model specs")
        self.check()

    @classmethod
    def parse(cls, specs, grid=(), search=(), trials=None, settings=None, recipe=None,
              seeds: str | None = None) -> Sweep:
        """A sweep from command-line text: ``--grid lr=0.1,1``, ``--search lr=1e-3..1:log`` and
        ``--seeds 3`` (each point repeated with seeds 0, 1, 2)."""
        axes = tuple(parse_grid(g) for g in grid)
        if seeds is not None and search:
            raise UsageError("--seeds repeats the points of a grid; a search samples its own "
                             "(drop --seeds, or sweep seed as a --grid)")
        if seeds is not None:
            axes += (GridAxis(SEED, parse_seeds(seeds)),)
        return cls(tuple(specs), axes, tuple(parse_search(s) for s in search), trials,
                   dict(settings or {}), recipe)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds each point is repeated with (one, the setting's, when not swept)."""
        for axis in self.grid:
            if axis.key == SEED:
                return tuple(axis.values)
        return (self.settings.get(SEED, 0),)

    @property
    def keys(self) -> tuple[str, ...]:
        """The swept keys besides the model: grid axes, then search ranges."""
        return (*(axis.key for axis in self.grid), *(r.key for r in self.search))

    def points(self) -> list[dict]:
        """Every grid point as trial parameters, specs outermost (a search has none)."""
        if self.search:
            return []
        values = [axis.values for axis in self.grid]
        return [{MODEL: spec, **dict(zip(self.keys, combo, strict=True))}
                for spec in self.specs for combo in itertools.product(*values)]

    def config(self, params: dict) -> TrainConfig:
        """The training configuration of the trial with these parameters."""
        own = self.spec_settings.get(str(ModelSpec.parse(params[MODEL])), {})
        return trial_config(params, {**self.settings, **own}, self.recipe)

    def check(self) -> None:
        """Build every trial's configuration (the corners of a search) so that a bad value is
        a one-line error before anything trains."""
        for params in self.points() or self._corners():
            self.config(params)

    def _corners(self) -> list[dict]:
        grid = {axis.key: axis.values[0] for axis in self.grid}
        return [{MODEL: spec, **grid, **{r.key: getattr(r, end) for r in self.search}}
                for spec in self.specs for end in ("low", "high")]

    # --- identity and storage ------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"specs": list(self.specs),
                "grid": [{"key": a.key, "values": list(a.values)} for a in self.grid],
                "search": [{"key": r.key, "low": r.low, "high": r.high, "log": r.log}
                           for r in self.search],
                "trials": self.trials, "settings": self.settings, "recipe": self.recipe,
                **({"spec_settings": self.spec_settings} if self.spec_settings else {})}

    @classmethod
    def from_dict(cls, record: dict) -> Sweep:
        return cls(tuple(record["specs"]),
                   tuple(GridAxis(a["key"], tuple(a["values"])) for a in record["grid"]),
                   tuple(SearchRange(**r) for r in record["search"]), record["trials"],
                   dict(record["settings"]), record["recipe"], record.get("spec_settings", {}))

    def identity(self) -> dict:
        """The definition without the runtime settings and without which seeds repeat it: what
        makes two sweeps the same (running it with more seeds continues it)."""
        record = self.to_dict()
        record["settings"] = {k: v for k, v in self.settings.items() if k not in RUNTIME_SETTINGS}
        record["grid"] = [{**axis, "values": "repeats"} if axis["key"] == SEED else axis
                          for axis in record["grid"]]
        return record

    def with_seeds(self, seeds: tuple[int, ...]) -> Sweep:
        """The same sweep repeated with `seeds`."""
        return dataclasses.replace(self, grid=tuple(
            GridAxis(SEED, tuple(seeds)) if axis.key == SEED else axis for axis in self.grid))

    def default_name(self) -> str:
        """``sweep-lenet-lr-1a2b3c``: the first spec's name, the swept keys and a hash of the
        definition, so re-running the same command finds the same sweep."""
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()
        words = [ModelSpec.parse(self.specs[0]).name, *(k.replace(MODEL_OPTION, "")
                                                        for k in self.keys)]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(words))[:60]
        return f"sweep-{slug}-{digest[:6]}"
