"""One training configuration, in layers: defaults, seed recipe, named recipe, the user's options.

An option given explicitly wins whatever its value (0, none, --no-amp), and the resolved
configuration is what config.json records.
"""

import json

import pytest
from image_folders import two_class_folder

from cnnlab.cli import build_parser, main
from cnnlab.cli.train import TRAIN_OPTIONS, given_settings
from cnnlab.errors import UsageError
from cnnlab.train.config import TrainConfig, resolve_config, setting_names
from cnnlab.train.recipes import RECIPES, TRAINING_OPTIONS

EXPLICIT = {
    # setting: (command-line words, the value they set); each falsy or unlike every recipe
    "epochs": (["--epochs", "1"], 1),
    "batch_size": (["--batch-size", "8"], 8),
    "lr": (["--lr", "0.01"], 0.01),
    "optimizer": (["--optimizer", "adam"], "adam"),
    "momentum": (["--momentum", "0"], 0.0),
    "weight_decay": (["--weight-decay", "0"], 0.0),
    "schedule": (["--schedule", "none"], "none"),
    "warmup": (["--warmup", "0"], 0.0),
    "label_smoothing": (["--label-smoothing", "0"], 0.0),
    "augment": (["--augment", "none"], "none"),
    "channels_last": (["--no-channels-last"], "off"),
    "amp": (["--no-amp"], "off"),
    "tta_flip": (["--no-tta-flip"], False),
}


def settings_from(*argv) -> TrainConfig:
    args = build_parser().parse_args(["train", *argv])
    return resolve_config(given_settings(args), args.recipe)


def test_every_recipe_field_has_an_explicit_case_and_an_option():
    assert set(EXPLICIT) == set(TRAINING_OPTIONS)
    assert {setting for _, setting, _ in TRAIN_OPTIONS} == set(setting_names()) - {"model"}


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("field", list(EXPLICIT))
def test_an_explicit_option_beats_the_recipe_whatever_its_value(recipe, field):
    words, value = EXPLICIT[field]
    config = settings_from("--recipe", recipe, *words)
    assert getattr(config, field) == value
    untouched = resolve_config({}, recipe)
    for other in set(TRAINING_OPTIONS) - {field}:
        assert getattr(config, other) == getattr(untouched, other), other


def test_layers_in_order():
    assert settings_from("lenet").lr == 0.1                       # seed recipe of lenet
    assert settings_from("alexnet").resize == 224                 # ... of alexnet
    assert settings_from("--recipe", "fast").lr == 0.2             # named recipe over seed
    assert settings_from("--recipe", "fast", "--lr", "0.3").lr == 0.3  # user over both
    assert settings_from("--recipe", "fast", "lenet").model == "lenet"
    assert settings_from("--recipe", "fast", "lenet").epochs == 6  # the recipe's, not lenet's
    assert TrainConfig().epochs is None and settings_from("lenet").epochs == 10


def test_the_model_spec_travels_in_canonical_form():
    assert settings_from("lenet: pool=max").model == "lenet:pool=max"


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, "epochs=0"), ({"amp": "yes"}, "amp='yes'"), ({"seed": -1}, "seed=-1"),
    ({"lr": float("nan")}, "lr=nan"), ({"optimizer": "lamb"}, "optimizer='lamb'"),
])
def test_bad_settings_are_one_line_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message) as info:
        TrainConfig(**changes)
    assert "\n" not in str(info.value)


def test_recorded_configs_with_unknown_keys_are_refused():
    with pytest.raises(UsageError, match="unknown training settings colour"):
        TrainConfig.from_dict({"colour": "red"}, source="x/config.json")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """Two classes of six 28x28 grey images."""
    return two_class_folder(tmp_path_factory.mktemp("tiny"), per_class=6, spread=60)


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_config_json_records_every_explicit_setting(recipe, tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    words = [word for field in EXPLICIT for word in EXPLICIT[field][0]]
    out = tmp_path / "run"
    assert main(["train", "--recipe", recipe, *words, "--data", str(tiny_folder),
                 "--device", "cpu", "--out", str(out)]) == 0
    recorded = json.loads((out / "config.json").read_text())["train"]
    for field, (_, value) in EXPLICIT.items():
        assert recorded[field] == value, field
    assert recorded["model"] == RECIPES[recipe].model


@pytest.mark.parametrize(("spec", "resize"), [
    ("googlenet", 96), ("googlenet:stem=28", 28),  # the 28 stem is made for 28x28 images
    ("lenet:input_size=32", 32), ("compact-resnet-s", 28),
])
def test_the_seed_recipe_resizes_to_the_specs_own_input_side(spec, resize):
    assert settings_from(spec).resize == resize
    assert settings_from(spec, "--resize", "64").resize == 64  # an explicit side still wins


@pytest.mark.parametrize("words", [["--augment", "crop+flip"], ["--augment", "crop,flip"],
                                   ["--augment", "flip + crop"]])
def test_augment_takes_a_combination_joined_by_commas_or_plus(words, tiny_folder, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    assert settings_from("lenet", *words).augment == words[1]
    out = tmp_path / "run"
    assert main(["train", "lenet", *words, "--data", str(tiny_folder), "--epochs", "1",
                 "--device", "cpu", "--out", str(out)]) == 0
    recorded = json.loads((out / "config.json").read_text())["train"]
    assert recorded["augment"] == "crop,flip"  # what the data module made of it


def test_an_unknown_augmentation_in_a_combination_is_refused():
    with pytest.raises(UsageError, match="augment='crop\\+rotate' is not allowed"):
        TrainConfig(augment="crop+rotate")
