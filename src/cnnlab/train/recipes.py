"""Named training recipes: a 28x28-native model with a schedule, augmentation and test-time flip.

`cnnlab train --recipe NAME` fills every training option the user did not give from the recipe;
options given on the command line win. The targets and the measured results are in
benchmarks/RESULTS.md, with the commit and command of each run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from cnnlab.errors import UsageError


@dataclass(frozen=True)
class TrainingRecipe:
    """Everything `cnnlab train` needs besides the data, and the target the recipe was made for."""

    name: str
    model: str
    target: str
    measured: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup: float = 0.0
    label_smoothing: float = 0.1
    augment: str = "flip"
    channels_last: str = "auto"
    amp: str = "auto"
    tta_flip: bool = True

    def settings(self) -> dict:
        """The recipe as training settings (a layer of `resolve_config`), its model included."""
        return {"model": self.model, **{key: getattr(self, key) for key in TRAINING_OPTIONS}}


MEASURED_FAST = "92.49% in 72.9 s (2-core CPU, idle machine; benchmarks/RESULTS.md)"
MEASURED_CPU_BEST = "94.36% in 20 min 15 s (2-core CPU, idle machine; benchmarks/RESULTS.md)"

TRAINING_OPTIONS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
                    "schedule", "warmup", "label_smoothing", "augment", "channels_last", "amp",
                    "tta_flip")
"""The recipe fields that are `cnnlab train` options of the same name."""


RECIPES = {recipe.name: recipe for recipe in (
    TrainingRecipe(
        name="fast", model="compact-resnet-s",
        target=">= 92% test accuracy in <= 120 s on a 2-core CPU, from process start",
        measured=MEASURED_FAST,
        epochs=5, batch_size=256, lr=0.2),
    TrainingRecipe(
        name="cpu-best", model="compact-resnet-m",
        target=">= 94% test accuracy in <= 30 min on a 2-core CPU",
        measured=MEASURED_CPU_BEST,
        epochs=26, batch_size=256, lr=0.2, augment="crop,flip"),
    TrainingRecipe(
        name="gpu-best", model="compact-resnet-l",
        target=">= 95.5% test accuracy in <= 2 min on one H100",
        measured="unmeasured: no GPU was available when it was made",
        epochs=30, batch_size=512, lr=0.4, augment="crop,flip,erase"),
)}
"""The recipes by name; `measured` quotes the run recorded in benchmarks/RESULTS.md."""


def get_recipe(name: str) -> TrainingRecipe:
    """The recipe called `name`; an unknown name gets a ValueError with the closest names."""
    if name not in RECIPES:
        close = difflib.get_close_matches(name, list(RECIPES), n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"unknown recipe {name!r}; {hint}run `cnnlab recipes` to list them "
                         f"({', '.join(RECIPES)})")
    return RECIPES[name]


def describe(recipe: TrainingRecipe) -> str:
    """The recipe's training settings in one line."""
    r = recipe
    switches = [f"channels_last {r.channels_last}", f"amp {r.amp}",
                *(["test-time flip"] if r.tta_flip else [])]
    return (f"{r.epochs} epochs, batch {r.batch_size}, {r.optimizer} lr {r.lr:g} momentum "
            f"{r.momentum:g} weight decay {r.weight_decay:g}, {r.schedule} schedule, label "
            f"smoothing {r.label_smoothing:g}, augment {r.augment}, {', '.join(switches)}")


def print_recipes() -> None:
    """`cnnlab recipes`: each recipe's model, settings, target and measured result."""
    print("training recipes: cnnlab train --recipe NAME [options that override the recipe]")
    for recipe in RECIPES.values():
        print(f"\n{recipe.name} ({recipe.model})")
        print(f"  training: {describe(recipe)}")
        print(f"  target:   {recipe.target}")
        print(f"  measured: {recipe.measured}")
