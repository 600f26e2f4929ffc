"""Named training recipes: a 28x28-native model with a schedule, augmentation and test-time flip.

`cnnlab train --recipe NAME` fills every training option the user did not give from the recipe;
options given on the command line win. The targets and the measured results are in
benchmarks/RESULTS.md, with the commit, command and processor of each run. A recipe must hold
on a processor without native bfloat16 (AVX2 only) as well as on one with it: `amp=auto` turns
autocast on only where it is native, so the recipes are sized for fp32 on AVX2.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from cnnlab.errors import UsageError
from cnnlab.train.autotune import detect_capabilities
from cnnlab.train.settings import TrainConfig, check_names

NATIVE_BF16, AVX512, AVX2, OTHER = "avx512 + native bf16", "avx512", "avx2 only", "other"
PROCESSOR_KINDS = (NATIVE_BF16, AVX512, AVX2, OTHER)
"""Kinds of CPU by what torch computes fast on them, fastest first."""


@dataclass(frozen=True)
class Measurement:
    """One recorded run of a recipe (benchmarks/RESULTS.md): the processor kind it ran on (with
    the `lscpu` flags relevant to torch and how torch was held), and what it reached."""

    kind: str
    processor: str
    test_acc: float
    seconds: float
    commit: str

    def __str__(self) -> str:
        minutes, seconds = divmod(round(self.seconds), 60)
        took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return (f"{self.test_acc:.2%} in {took} from process start ({self.kind}: "
                f"{self.processor}; {self.commit})")


def processor_kind(capabilities=None) -> str:
    """This machine's kind (`PROCESSOR_KINDS`), from the kernels torch will really run."""
    found = capabilities or detect_capabilities()
    if found.native_bf16:
        return NATIVE_BF16
    held_to_avx2 = "AVX2" in found.onednn_max_isa.upper() or found.aten_capability == "AVX2"
    if "avx512f" in found.cpu_flags and not held_to_avx2:
        return AVX512
    return AVX2 if "avx2" in found.cpu_flags else OTHER


def closest(measured: tuple[Measurement, ...], kind: str) -> Measurement | None:
    """The measurement from the processor kind nearest to `kind` (the same, else the next
    slower kind, else the next faster)."""
    rank = PROCESSOR_KINDS.index(kind)
    by_distance = sorted(measured, key=lambda m: (abs(PROCESSOR_KINDS.index(m.kind) - rank),
                                                  PROCESSOR_KINDS.index(m.kind) < rank))
    return by_distance[0] if by_distance else None


@dataclass(frozen=True)
class TrainingRecipe:
    """A name, a model, the target the recipe was made for, the runs that measured it, and its
    layer of training settings (checked against TrainConfig when the recipe is made)."""

    name: str
    model: str
    target: str
    measured: tuple[Measurement, ...]
    layer: dict

    def __post_init__(self):
        check_names(self.layer, f"recipe {self.name}")
        TrainConfig(model=self.model, **self.layer)  # each value allowed

    def __getattr__(self, name: str):
        """A setting of the layer read as an attribute, e.g. ``recipe.epochs``."""
        layer = self.__dict__.get("layer", {})
        if name not in layer:
            raise AttributeError(f"recipe {self.__dict__.get('name')!r} sets no {name!r}")
        return layer[name]

    def settings(self) -> dict:
        """The recipe as training settings (a layer of `resolve_config`), its model included."""
        return {"model": self.model, **self.layer}


ZEN5 = "AMD EPYC (Zen 5, family 26), 2 cores, flags avx2 avx512f avx512_bf16, no amx"
HELD = "; torch held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)"
FAST_MODEL = "compact-resnet-s:widths=(16,32,64)"
"""Two thirds of compact-resnet-s's widths: in fp32 on AVX2 the 24-48-96 step takes 136 ms at
batch 256 against 75 ms (benchmarks/RESULTS.md), too slow for 5 epochs in 120 s. Six epochs,
since five ended at 91.98% in fp32 on a Zen 5 held to AVX2."""
CPU_BEST_MODEL = "compact-resnet-m:widths=(24,48,96)"
"""compact-resnet-m's two residual blocks at three quarters of its widths: in fp32 on AVX2 the
32-64-128 step takes 386 ms at batch 256 against 213 ms (benchmarks/RESULTS.md), about 45
minutes for 26 epochs."""
MEASURED_FAST = (
    Measurement(NATIVE_BF16, ZEN5, 0.9230, 37.4, "26c9996, 2026-12-03"),
    Measurement(AVX2, ZEN5 + HELD, 0.9237, 58.0, "26c9996, 2026-12-03"),
)
MEASURED_CPU_BEST = (
    Measurement(NATIVE_BF16, ZEN5, 0.9411, 614.0, "26c9996, 2026-12-03"),
    Measurement(AVX2, ZEN5 + HELD, 0.9414, 1444.2, "26c9996, 2026-12-03"),
)

SHARED = {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "onecycle",
          "warmup": 0.0, "label_smoothing": 0.1, "augment": "flip", "channels_last": "auto",
          "amp": "auto", "tta_flip": True}
"""The settings the recipes share: SGD with momentum and weight decay, a one-cycle schedule,
label smoothing, flipped images and test-time flip."""
TRAINING_OPTIONS = ("epochs", "batch_size", "lr", *SHARED)
"""The settings each recipe sets: `cnnlab train` options of the same name."""


RECIPES = {recipe.name: recipe for recipe in (
    TrainingRecipe(
        name="fast", model=FAST_MODEL,
        target=">= 92% test accuracy in <= 120 s on a 2-core CPU, from process start",
        measured=MEASURED_FAST,
        layer={**SHARED, "epochs": 6, "batch_size": 256, "lr": 0.2}),
    TrainingRecipe(
        name="cpu-best", model=CPU_BEST_MODEL,
        target=">= 94% test accuracy in <= 30 min on a 2-core CPU",
        measured=MEASURED_CPU_BEST,
        layer={**SHARED, "epochs": 26, "batch_size": 256, "lr": 0.2, "augment": "crop,flip"}),
    TrainingRecipe(
        name="gpu-best", model="compact-resnet-l",
        target=">= 95.5% test accuracy in <= 2 min on one H100",
        measured=(),
        layer={**SHARED, "epochs": 30, "batch_size": 512, "lr": 0.4,
               "augment": "crop,flip,erase"}),
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


def describe_recipe(recipe: TrainingRecipe) -> str:
    """The recipe's training settings in one line."""
    r = recipe
    switches = [f"channels_last {r.channels_last}", f"amp {r.amp}",
                *(["test-time flip"] if r.tta_flip else [])]
    return (f"{r.epochs} epochs, batch {r.batch_size}, {r.optimizer} lr {r.lr:g} momentum "
            f"{r.momentum:g} weight decay {r.weight_decay:g}, {r.schedule} schedule, label "
            f"smoothing {r.label_smoothing:g}, augment {r.augment}, {', '.join(switches)}")


def print_recipes(kind: str | None = None) -> None:
    """`cnnlab recipes`: each recipe's model, settings, target and the result measured on the
    processor kind closest to this one (`kind`, default this machine's)."""
    kind = kind or processor_kind()
    print("training recipes: cnnlab train --recipe NAME [options that override the recipe]")
    print(f"this processor: {kind}; results measured on the closest kind (benchmarks/RESULTS.md)")
    for recipe in RECIPES.values():
        print(f"\n{recipe.name} ({recipe.model})")
        print(f"  training: {describe_recipe(recipe)}")
        print(f"  target:   {recipe.target}")
        found = closest(recipe.measured, kind)
        print(f"  measured: {found or 'not yet: no such machine was available'}")
        for other in recipe.measured:
            if other is not found:
                print(f"            also {other}")
