"""Named recipes: `cnnlab recipes` lists them; `cnnlab train --recipe NAME` builds and trains.

Recipe timings are benchmarks (benchmarks/RESULTS.md), never asserted here.
"""

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.models import create_model, list_models, min_input_size
from cnnlab.models.spec import ModelSpec
from cnnlab.train.autotune import Capabilities
from cnnlab.train.config import resolve_config
from cnnlab.train.recipes import (
    AVX2,
    AVX512,
    NATIVE_BF16,
    OTHER,
    RECIPES,
    TRAINING_OPTIONS,
    Measurement,
    closest,
    get_recipe,
    print_recipes,
    processor_kind,
)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """Ten classes of eight 28x28 grey images whose brightness pattern depends on the class."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for label in range(10):
        folder = root / f"class{label}"
        folder.mkdir()
        for index in range(8):
            pixels = rng.integers(0, 60, (28, 28)) + 19 * label
            Image.fromarray(pixels.astype(np.uint8), mode="L").save(folder / f"{index}.png")
    return root


def test_the_three_recipes_exist_with_targets():
    assert list(RECIPES) == ["fast", "cpu-best", "gpu-best"]
    for recipe in RECIPES.values():
        assert recipe.target
    for name in ("fast", "cpu-best"):
        assert RECIPES[name].measured
    assert RECIPES["gpu-best"].measured == ()


CPU_TARGETS = {"fast": (0.92, 120), "cpu-best": (0.94, 30 * 60)}
"""Each CPU recipe's target: the least test accuracy, the most seconds from process start."""


@pytest.mark.parametrize("name", list(CPU_TARGETS))
def test_cpu_recipes_are_measured_on_both_kinds_of_cpu_within_their_targets(name):
    least, most = CPU_TARGETS[name]
    measured = RECIPES[name].measured
    assert {m.kind for m in measured} >= {NATIVE_BF16, AVX2}
    for found in measured:
        assert found.test_acc >= least and found.seconds <= most, found


SAPPHIRE = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize(("capabilities", "kind"), [
    (Capabilities(SAPPHIRE, mkldnn_bf16=True, aten_capability="AVX512"), NATIVE_BF16),
    (Capabilities(SAPPHIRE, True, "AVX2", "AVX2"), AVX2),  # torch held to AVX2 kernels
    (Capabilities(frozenset({"avx2", "avx512f"}), aten_capability="AVX512"), AVX512),
    (Capabilities(frozenset({"avx2", "fma"}), aten_capability="AVX2"), AVX2),
    (Capabilities(frozenset(), machine="aarch64"), OTHER),
])
def test_the_processor_kind_follows_the_kernels_torch_runs(capabilities, kind):
    assert processor_kind(capabilities) == kind


def test_recipes_show_the_result_of_the_closest_processor_kind(capsys):
    native = Measurement(NATIVE_BF16, "cpu a", 0.93, 70.0, "x")
    avx2 = Measurement(AVX2, "cpu b", 0.92, 110.0, "y")
    assert closest((native, avx2), AVX2) is avx2
    assert closest((native, avx2), AVX512) is avx2  # the slower neighbour first
    assert closest((native,), OTHER) is native and closest((), AVX2) is None
    print_recipes(AVX2)
    fast = capsys.readouterr().out.split("\n\ncpu-best")[0]
    assert "this processor: avx2 only" in fast
    measured = next(line for line in fast.splitlines() if "measured:" in line)
    expected = closest(RECIPES["fast"].measured, AVX2)
    assert expected.kind == AVX2 and str(expected) in measured


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_model_is_registered_and_native_to_28x28(name):
    model_name = get_recipe(name).model
    assert ModelSpec.parse(model_name).name in list_models()
    assert min_input_size(create_model(model_name)) <= 28


def test_a_recipe_fills_only_what_the_user_left_unset():
    config = resolve_config({"epochs": 2, "lr": 0.05}, recipe="fast")
    recipe = get_recipe("fast")
    assert config.model == recipe.model
    assert (config.epochs, config.lr) == (2, 0.05)
    for option in set(TRAINING_OPTIONS) - {"epochs", "lr"}:
        assert getattr(config, option) == getattr(recipe, option), option


def test_a_model_given_on_the_command_line_wins():
    config = resolve_config({"model": "lenet-bn"}, recipe="cpu-best")
    assert config.model == "lenet-bn"
    assert config.augment == "crop,flip"


def test_unknown_recipe_suggests_the_closest(capsys):
    with pytest.raises(ValueError, match="did you mean fast"):
        get_recipe("fsat")
    assert main(["train", "--recipe", "fsat"]) == 2
    assert "cnnlab recipes" in capsys.readouterr().err


def test_recipe_and_resume_do_not_mix(capsys):
    assert main(["train", "--recipe", "fast", "--resume", "runs/x"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_cnnlab_recipes_lists_every_recipe(capsys):
    assert main(["recipes"]) == 0
    text = capsys.readouterr().out
    for recipe in RECIPES.values():
        assert recipe.name in text and recipe.model in text and recipe.target in text


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_builds_and_trains_a_few_steps(name, tiny_folder, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--recipe", name, "--data", str(tiny_folder), "--epochs", "1",
                 "--batch-size", "16", "--lr", "0.001", "--device", "cpu", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    recipe = get_recipe(name)
    assert config["model"]["spec"] == str(ModelSpec.parse(recipe.model))
    trainer = config["train"]
    assert trainer["tta_flip"] and trainer["amp"] == recipe.amp
    assert trainer["channels_last"] == recipe.channels_last
    assert trainer["schedule"] == recipe.schedule
    assert trainer["label_smoothing"] == recipe.label_smoothing
    assert set(config["data"]["args"]["augment"].split(",")) == set(recipe.augment.split(","))
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and 0.0 <= result["test_acc"] <= 1.0
