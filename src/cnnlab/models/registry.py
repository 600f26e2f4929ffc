"""The model registry: every name `create_model` knows, with its input size and seed recipe."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models.init import init_weights

CONFIGS = {
    "fashion-mnist": {"in_channels": 1, "num_classes": 10},
    "imagenet": {"in_channels": 3, "num_classes": 1000},
}
"""Named configurations: the seed's Fashion-MNIST set-up and torchvision's ImageNet layout."""

IMAGENET_INPUT_SIZE = 224


@dataclass(frozen=True)
class Recipe:
    """The seed's training recipe: input side, learning rate, the d2l Trainer set-up."""

    resize: int
    lr: float
    batch_size: int = 128
    epochs: int = 10
    optimizer: str = "sgd"


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a name: family, default input side, recipe, one-line story."""

    name: str
    family: str
    input_size: int
    recipe: Recipe
    description: str
    builder: Callable[..., nn.Module]
    sized: bool = False
    """True when the classifier is sized for the input (the builder takes `input_size`)."""
    imagenet_layout: dict = field(default_factory=dict)
    """Keyword arguments that turn the family into torchvision's layout for config="imagenet"."""
    factory: Callable[..., nn.Module] | None = None
    """The family's builder; its keyword parameters are the options a model spec may set, its
    ``OPTION_CHOICES`` their allowed values and its ``INPUT_SIZES`` the option values that make
    the model for another input side (``{"stem": {"28": 28}}``; see `ModelSpec.input_size`)."""
    preset: dict = field(default_factory=dict)
    """The builder options this name fixes (callers may still override them)."""


_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, factory: Callable[..., nn.Module] | None = None, *,
             preset: dict | None = None, family: str, input_size: int, lr: float,
             description: str, sized: bool = False, imagenet_layout: dict | None = None):
    """Add `factory(in_channels=, num_classes=, **options)` under `name`, with `preset` options
    that callers may override. Without `factory`, returns a decorator that registers one."""

    def add(factory):
        if name in _REGISTRY:
            raise UsageError(f"model name {name!r} is registered twice")
        options = dict(preset or {})

        def build(**kwargs) -> nn.Module:
            return factory(**{**options, **kwargs})

        recipe = Recipe(resize=input_size, lr=lr)
        _REGISTRY[name] = ModelInfo(name, family, input_size, recipe, description, build,
                                    sized, dict(imagenet_layout or {}), factory, options)
        return factory

    return add if factory is None else add(factory)


FAMILIES = ("lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet", "regnet")
"""The family modules in the chapters' order; importing one registers its names."""


def _load_families() -> None:
    """Import the family modules, whose `register` calls fill the registry."""
    for family in FAMILIES:
        import_module(f"cnnlab.models.{family}")


def list_models() -> list[str]:
    """All registered names, family by family from LeNet to RegNet (other families last)."""
    _load_families()
    order = {family: index for index, family in enumerate(FAMILIES)}
    return sorted(_REGISTRY, key=lambda name: order.get(_REGISTRY[name].family, len(order)))


def model_info(name: str) -> ModelInfo:
    """The registry entry for `name`; unknown names get a ValueError with the closest matches."""
    _load_families()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"unknown model {name!r}; {hint}run `cnnlab models` to list the names")
    return _REGISTRY[name]


def create_model(spec, num_classes: int | None = None, in_channels: int | None = None,
                 **options) -> nn.Module:
    """Build a registered model from a spec (``"lenet"``, ``"lenet:pool=max"`` or a ModelSpec).

    Keyword options are added to the spec's own. ``config="fashion-mnist"`` (the default) is the
    seed's 1-channel, 10-class model; ``"imagenet"`` gives 3 channels, 1000 classes and, for
    torchvision's families, exactly torchvision's architecture. Explicit ``num_classes`` and
    ``in_channels`` override the configuration; ``init`` is "xavier" (the chapter's), "kaiming"
    or None (PyTorch's default). The model keeps its spec as ``.cnnlab_spec`` (a string) and its
    registry name as ``.cnnlab_name``.
    """
    # deferred: specs are checked against the registry (a circle)
    from cnnlab.models.spec import ModelSpec

    for key, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if value is not None:
            options[key] = value
    spec = ModelSpec.parse(spec, **options)
    info = model_info(spec.name)
    kwargs = spec.kwargs
    config = kwargs.pop("config", "fashion-mnist")
    init = kwargs.pop("init", "xavier")
    shape = {key: kwargs.pop(key, CONFIGS[config][key]) for key in ("in_channels", "num_classes")}
    for key, value in shape.items():
        if value <= 0:
            raise UsageError(f"{key} must be a positive integer, got {value!r}")
    if config == "imagenet":
        kwargs = {**info.imagenet_layout, **kwargs}
    if info.sized:
        kwargs.setdefault("input_size", spec.input_size)
    model = info.builder(**shape, **kwargs)
    init_weights(model, init)
    model.cnnlab_name = spec.name
    model.cnnlab_spec = str(spec)
    return model
