"""One training configuration, built in layers.

Every training setting lives in :class:`TrainConfig` (`cnnlab.train.settings`). Its value is made
in one place, :func:`resolve_config`, each layer overriding the one before:

1. the library defaults (the fields of TrainConfig);
2. the model's seed recipe: the spec's input side, learning rate, batch size, epochs, optimiser;
3. a named recipe (``--recipe``, `cnnlab.train.recipes`);
4. the settings the user gave (command-line options, or the keywords of ``Trainer(...)``);
5. what the data module says: its batch size, subset, validation fraction, augmentation and
   image side. It comes last because the loop trains on the batches the data module makes, so
   the record must describe those.

A setting given explicitly wins whatever its value, ``0`` and ``off`` included. ``config.json``
and the checkpoint record the resolved object whole, so a run can be rebuilt from it.
"""

from __future__ import annotations

from cnnlab.models.registry import model_info
from cnnlab.models.spec import ModelSpec
from cnnlab.train.recipes import get_recipe
from cnnlab.train.settings import TrainConfig, check_names, setting_names, switch_word

SWITCH_SETTINGS = ("amp", "channels_last")
"""The auto/on/off settings, which the Python API also takes as True or False."""


def seed_recipe_layer(spec: str) -> dict:
    """The model's seed recipe as settings: the spec's own input side (`ModelSpec.input_size`,
    so ``googlenet:stem=28`` trains on 28x28 images, not upsampled to GoogLeNet's 96), lr,
    batch size, epochs, optimiser."""
    spec = ModelSpec.parse(spec)
    recipe = model_info(spec.name).recipe
    return {"resize": spec.input_size, "lr": recipe.lr, "batch_size": recipe.batch_size,
            "epochs": recipe.epochs, "optimizer": recipe.optimizer}


def data_layer(data) -> dict:
    """What a data module says about the run: batch size, subset, validation fraction,
    augmentation and image side."""
    described = data.describe()
    layer = {key: described[key] for key in ("batch_size", "subset", "val_fraction")
             if key in described}
    return {**layer, "augment": described.get("augment") or "none", "resize": data.image_size}


def keyword_settings(settings: dict) -> dict:
    """Settings in the spellings of the Python API as TrainConfig's: ``max_epochs`` is
    ``epochs``, True and False are ``on`` and ``off``, None is ``none`` for the schedule and
    the augmentation."""
    settings = dict(settings)
    if "max_epochs" in settings:
        settings["epochs"] = settings.pop("max_epochs")
    for name in SWITCH_SETTINGS:
        if name in settings:
            settings[name] = switch_word(settings[name])
    for name in ("schedule", "augment"):
        if name in settings and settings[name] is None:
            settings[name] = "none"
    check_names(settings, "Trainer(...)")
    return settings


def resolve_config(given: dict | None = None, recipe: str | None = None,
                   data=None) -> TrainConfig:
    """The configuration in the layers of the module docstring: library defaults, the model's
    seed recipe, the named `recipe`, the settings `given`, then what the data module `data` says.

    `given` holds only the settings the user set (any value, falsy ones included). The model
    is `given["model"]`, else the named recipe's, else the library default.
    """
    given = dict(given or {})
    check_names(given, "the settings given")
    named = get_recipe(recipe).settings() if recipe is not None else {}
    spec = given.get("model", named.get("model", TrainConfig.model))
    given["model"] = str(ModelSpec.parse(spec))
    described = data_layer(data) if data is not None else {}
    return TrainConfig(**{**seed_recipe_layer(given["model"]), **named, **given, **described})


__all__ = ["TrainConfig", "data_layer", "keyword_settings", "resolve_config",
           "seed_recipe_layer", "setting_names"]
