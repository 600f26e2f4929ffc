"""A study: one experiment exercise of the chapters, written as data and run on the sweep engine.

A definition names the model specs and grid it trains, the training settings of each budget, what
it measures without training (throughput and memory), the table and figures it shows, and a
function that draws its conclusion from the recorded results. Budgets:

- ``quick`` answers on a 2-core CPU within 15 minutes: subsets, fewer epochs, smaller inputs and
  28x28-native variants of the 224-pixel models;
- ``full`` is the chapter's own setting (its models, 10 epochs, the seed's input sizes): made for
  a GPU;
- ``tiny`` shrinks any study to a smoke run for tests (256 images, one epoch, the first and last
  spec and value of each axis, narrower models where evaluating the 10,000 test images would
  take long): it checks that the study runs and reports, its numbers answer nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from cnnlab.errors import UsageError
from cnnlab.experiments.sweep.definition import Sweep
from cnnlab.experiments.sweep.space import SEED, GridAxis, trial_config
from cnnlab.models.spec import ModelSpec, format_value
from cnnlab.train.config import TrainConfig, resolve_config

BUDGETS = ("tiny", "quick", "full")
CHAPTER = "full"
"""The budget that is the chapter's own setting: the others' deviations are stated against it."""
TINY_SETTINGS = {"subset": 256, "epochs": 1}
TINY_BATCH = 64
DESCRIBED = ("resize", "subset", "epochs", "batch_size", "lr", "optimizer", "momentum",
             "weight_decay", "schedule", "label_smoothing", "augment", "val_fraction")
"""The training settings a report compares between budgets (and against the seed recipe)."""
FASHION_MNIST_TRAIN = 60_000
"""Images in Fashion-MNIST's training split, which every study trains on."""
NATIVE_SIDE = 28
"""Fashion-MNIST's own side: the input of a run that does not resize."""


@dataclass(frozen=True)
class Measure:
    """Training steps timed on random batches (``cnnlab bench``): throughput and peak memory for
    each batch size; `side` is the input side (None: the `resize` setting, else the model's)."""

    batch_sizes: tuple[int, ...]
    side: int | None = None
    steps: int = 10
    warmup: int = 3


QUICK_SEEDS = (0, 1, 2)
"""The seeds of a quick budget that compares variants: three, the fewest whose paired
differences have an interval that can exclude zero with some room."""


@dataclass(frozen=True)
class Setup:
    """What one budget changes: training settings, and (where the budget needs other ones) the
    specs, grid values, measurements and per-spec labels."""

    settings: dict = field(default_factory=dict)
    specs: tuple[str, ...] = ()
    grid: dict = field(default_factory=dict)
    measure: Measure | None = None
    labels: dict = field(default_factory=dict)
    """Extra result columns per spec, such as the design space a sampled AnyNet came from."""
    notes: tuple[str, ...] = ()
    """What else the setup fixes, in words (where its specs were sampled from, say); a note
    that differs from the chapter's is a deviation."""
    spec_settings: dict = field(default_factory=dict)
    """Settings of one spec only, over `settings` (``{"alexnet": {"resize": 68}}``)."""
    seeds: tuple[int, ...] = (0,)
    """The seeds every trial is repeated with (paired: a seed gives each variant the same data
    order and augmentation)."""


@dataclass(frozen=True)
class Plan:
    """What a study trains and measures at one budget, with nothing left to look up."""

    study: str
    budget: str
    specs: tuple[str, ...]
    grid: dict
    settings: dict
    measure: Measure | None
    labels: dict
    trains: bool
    notes: tuple[str, ...] = ()
    spec_settings: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.grid)

    def sweep(self) -> Sweep:
        """The sweep that trains the plan's grid."""
        axes = (*(GridAxis(key, tuple(values)) for key, values in self.grid.items()),
                GridAxis(SEED, self.seeds))
        return Sweep(self.specs, axes, settings=dict(self.settings),
                     spec_settings=self.spec_settings)

    def config(self, spec: str | None = None) -> TrainConfig:
        """The training configuration of `spec`'s first trial (default: the first spec's),
        at the first value of each axis."""
        spec = self.specs[0] if spec is None else spec
        first = {key: values[0] for key, values in self.grid.items()}
        return trial_config({"model": spec, **first, SEED: self.seeds[0]},
                            {**self.settings, **self.spec_settings.get(spec, {})})

    def to_dict(self) -> dict:
        record = {"budget": self.budget, "specs": list(self.specs),
                  "grid": {key: list(values) for key, values in self.grid.items()},
                  "settings": dict(self.settings), "seeds": list(self.seeds)}
        if self.spec_settings:
            record["spec_settings"] = {spec: dict(values)
                                       for spec, values in self.spec_settings.items()}
        if self.measure is not None:
            record["measure"] = dataclasses.asdict(self.measure)
        return record


@dataclass(frozen=True)
class Study:
    """One exercise as a definition: run it with `run_study(name, budget)`."""

    name: str
    question: str
    """The exercise in one line."""
    conclude: Callable
    """``conclude(results) -> str``: the conclusion, computed from the recorded results."""
    budgets: dict
    """``quick`` and ``full`` Setups (``tiny`` is derived from ``quick`` unless given)."""
    specs: tuple[str, ...] = ()
    """The specs it trains (default: those `names` names, in its order)."""
    grid: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    """Short names of specs for tables, figures and the conclusion."""
    table: tuple[str, ...] = ("test_acc", "train_acc", "status", "seconds_per_epoch",
                              "parameters")
    """Result columns the report's table shows after the model and the swept keys."""
    figures: tuple[Callable, ...] = ()
    """``figure(results) -> (file stem, caption, matplotlib Figure)`` for each extra figure."""
    trains: bool = True
    """False for a study that only measures (its specs are benchmarked, not trained)."""
    title: str = ""
    """The report page's title (default ``Study NAME``)."""

    def __post_init__(self):
        missing = {"quick", CHAPTER} - set(self.budgets)
        if missing:
            raise ValueError(f"study {self.name} needs budgets {sorted(missing)}")
        object.__setattr__(self, "names", {canonical(spec): name
                                           for spec, name in self.names.items()})
        if not self.specs:
            object.__setattr__(self, "specs", tuple(self.names))

    def setup(self, budget: str) -> Setup:
        check_budget(budget)
        if budget == "tiny" and "tiny" not in self.budgets:
            quick = self.budgets["quick"]
            return tiny_setup(quick, quick.specs or self.specs, quick.grid or self.grid)
        return self.budgets[budget]

    def plan(self, budget: str, seeds: tuple[int, ...] | None = None) -> Plan:
        """The specs, grid, settings and measurements of `budget` (repeated with `seeds`, by
        default the budget's)."""
        setup = self.setup(budget)
        specs = tuple(canonical(spec) for spec in (setup.specs or self.specs))
        return Plan(self.name, budget, specs, dict(setup.grid or self.grid),
                    dict(setup.settings), setup.measure,
                    {canonical(spec): dict(extra) for spec, extra in setup.labels.items()},
                    self.trains, setup.notes,
                    {canonical(spec): dict(own) for spec, own in setup.spec_settings.items()},
                    tuple(setup.seeds if seeds is None else seeds))

    def name_of(self, spec: str) -> str:
        return self.names.get(spec, spec)


def canonical(spec: str) -> str:
    """A spec as the sweep records it (options at their default dropped)."""
    return str(ModelSpec.parse(spec))


def check_budget(budget: str) -> None:
    if budget not in BUDGETS:
        raise UsageError(f"budget {budget!r} is unknown; use one of {', '.join(BUDGETS)} "
                         "(tiny is a smoke run for tests)")


def _ends(values: tuple) -> tuple:
    return tuple(values) if len(values) < 2 else (values[0], values[-1])


def tiny_setup(quick: Setup, specs: tuple[str, ...], grid: dict) -> Setup:
    """The quick setup shrunk to a smoke run: 256 images, one epoch, batches of at most 64, the
    first and last spec and value of each axis, two batch sizes and two timed steps."""
    ends = {key: _ends(values) for key, values in grid.items()}
    specs = _ends(specs)
    settings = _tiny_settings(quick.settings, ends)
    measure = quick.measure and dataclasses.replace(
        quick.measure, batch_sizes=_ends(quick.measure.batch_sizes), steps=2, warmup=1)
    kept = set(map(canonical, specs))
    own = {spec: _tiny_settings({**quick.settings, **values}, ends)
           for spec, values in quick.spec_settings.items() if canonical(spec) in kept}
    return Setup(settings, specs, ends, measure, quick.labels, quick.notes, own, (0,))


def _tiny_settings(settings: dict, grid: dict) -> dict:
    shrunk = {**settings, **TINY_SETTINGS}
    if "batch_size" not in grid:
        shrunk["batch_size"] = min(shrunk.get("batch_size") or TINY_BATCH, TINY_BATCH)
    return shrunk


# --- what a budget changes ------------------------------------------------------------------------

def describe_setting(key: str, value) -> str:
    """A training setting in words: ``28 px input``, ``all training images``, ``3 epochs``."""
    if key == "resize":
        return f"{value} px input"
    if key == "subset":
        return "the whole training set" if value is None else f"{value:,} training images"
    if key == "epochs":
        return f"{value} epoch{'' if value == 1 else 's'}"
    if key == "batch_size":
        return f"batch size {value}"
    if key == "val_fraction":
        return ("validation on the test set" if not value
                else f"{value:.0%} of the training set held out for validation")
    return f"{key.replace('_', ' ')} {format_value(value)}"


def outline(plan: Plan) -> str:
    """What a budget runs, in one line: ``compact-resnet-s at 28 px, 60,000 images, 3 epochs,
    3 seeds (12 trials)``, and the batch sizes it times; each setting as its trials have it
    (several values where the grid sweeps it or specs have their own)."""
    models = _models(plan.specs).removeprefix("models ").removeprefix("model ")
    if not plan.trains:
        side = plan.measure.side or plan.config().resize or NATIVE_SIDE
        return f"{models} at {side} px: {_timed(plan.measure)}"
    configs = [plan.config(spec) for spec in plan.specs]
    swept = {key: [int(v) for v in plan.grid[key]] for key in ("resize", "subset", "epochs")
             if key in plan.grid}

    def values(key: str, read) -> list[int]:
        return sorted(set(swept.get(key) or [read(config) for config in configs]))

    sides = values("resize", lambda c: c.resize or NATIVE_SIDE)
    images = values("subset", lambda c: c.subset or round(FASHION_MNIST_TRAIN
                                                          * (1 - c.val_fraction)))
    epochs = values("epochs", lambda c: c.epochs)
    seeds = len(plan.seeds)
    trials = len(plan.specs) * seeds
    for grid_values in plan.grid.values():
        trials *= len(grid_values)
    text = (f"{models} at {_listed(sides)} px, {_listed(images)} images, "
            f"{_listed(epochs)} epoch{'' if epochs == [1] else 's'}, "
            f"{seeds} seed{'' if seeds == 1 else 's'} ({trials} trial{'' if trials == 1 else 's'})")
    return text + (f"; {_timed(plan.measure)}" if plan.measure else "")


def _listed(numbers: list[int]) -> str:
    return ", ".join(f"{n:,}" for n in numbers)


def _timed(measure: Measure) -> str:
    return "times training steps at batch sizes " + _listed(list(measure.batch_sizes))


def _values(values) -> str:
    return ", ".join(format_value(v) for v in values)


def setting_changes(config: TrainConfig, reference: TrainConfig, skip=()) -> list[str]:
    """The described settings of `config` that differ from `reference`, in words."""
    mine, theirs = config.to_dict(), reference.to_dict()
    return [f"{describe_setting(key, mine[key])} instead of {describe_setting(key, theirs[key])}"
            for key in DESCRIBED if key not in skip and mine[key] != theirs[key]]


def _models(specs: tuple[str, ...]) -> str:
    if len(specs) > 4:
        return f"{len(specs)} models"
    return f"model{'s' if len(specs) > 1 else ''} {_values(specs)}"


def deviations(plan: Plan, chapter: Plan) -> list[str]:
    """Everything `plan` does differently from the chapter's setting (the full budget)."""
    found = []
    if plan.specs != chapter.specs:
        found.append(f"{_models(plan.specs)} instead of {_models(chapter.specs)}")
    for key in dict.fromkeys([*chapter.grid, *plan.grid]):
        mine, theirs = plan.grid.get(key, ()), chapter.grid.get(key, ())
        if tuple(mine) != tuple(theirs):
            found.append(f"{key.replace('_', ' ')} {_values(mine) or 'not swept'} instead of "
                         f"{_values(theirs) or 'not swept'}")
    found += [f"{mine} instead of {theirs}"
              for mine, theirs in zip(plan.notes, chapter.notes, strict=False) if mine != theirs]
    if plan.trains and chapter.trains and plan.seeds != chapter.seeds:
        found.append(f"{_seed_count(plan.seeds)} instead of {_seed_count(chapter.seeds)}")
    if plan.trains and chapter.trains:
        found += _setting_deviations(plan, lambda spec: chapter.config(
            spec if spec in chapter.specs else None))
    if plan.measure and chapter.measure:
        for name in ("batch_sizes", "side", "steps"):
            mine, theirs = getattr(plan.measure, name), getattr(chapter.measure, name)
            if mine != theirs:
                found.append(f"timed {name.replace('_', ' ')} "
                             f"{_values(mine) if isinstance(mine, tuple) else mine} instead of "
                             f"{_values(theirs) if isinstance(theirs, tuple) else theirs}")
    return found


def _seed_count(seeds: tuple[int, ...]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({_values(seeds)})"


def _setting_deviations(plan: Plan, reference: Callable) -> list[str]:
    """The settings of `plan` that differ from ``reference(spec)``: once for the plan, or for
    each spec (``lenet: 3 epochs instead of 10 epochs``) where specs have settings of their own."""
    if not plan.spec_settings:
        return setting_changes(plan.config(), reference(None), skip=plan.grid)
    return [f"{spec}: {', '.join(changes)}" for spec in plan.specs
            if (changes := setting_changes(plan.config(spec), reference(spec), skip=plan.grid))]


def study_settings(chapter: Plan) -> list[str]:
    """What the study itself sets in the chapter's setting, against each model's seed recipe."""
    if not chapter.trains:
        return []
    return _setting_deviations(chapter, lambda spec: resolve_config(
        {"model": spec or chapter.specs[0]}))
