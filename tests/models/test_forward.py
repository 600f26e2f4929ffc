"""Every registered model trains at its default and its minimum input size; below, a clear error."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models import check_input_size, create_model, list_models, min_input_size, model_info


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward_at_default_and_minimum_size(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    sizes = sorted({model_info(name).input_size, min_input_size(model)})
    for size in sizes:
        logits = model(torch.randn(2, 1, size, size))
        assert logits.shape == (2, 10)
        F.cross_entropy(logits, torch.tensor([3, 7])).backward()
        for param_name, param in model.named_parameters():
            assert param.grad is not None, param_name
            # batch norm over two values per channel (deep stages at 1x1) can overflow gradients
            assert size < model_info(name).input_size or torch.isfinite(param.grad).all()
        model.zero_grad(set_to_none=True)
        check_input_size(model, size, name)  # accepted without error


@pytest.mark.parametrize("name", list_models())
def test_one_pixel_below_the_minimum_fails_with_a_clear_error(name):
    # models for 224-pixel inputs get a shape-only twin on the meta device: no arithmetic
    device = "meta" if model_info(name).input_size >= 224 else "cpu"
    with torch.device(device), torch.no_grad():
        model = create_model(name, init=None).eval()
        smallest = min_input_size(model)
        model(torch.zeros(2, 1, smallest, smallest))
        if smallest == 1:
            with pytest.raises(ValueError, match="must be positive"):
                check_input_size(model, 0, name)
            return
        with pytest.raises(RuntimeError):
            model(torch.zeros(2, 1, smallest - 1, smallest - 1))
    below = f"{smallest - 1}x{smallest - 1}"
    expected = (f"model '{name}' needs inputs of at least {smallest}x{smallest} pixels, "
                f"got {below}; use a larger --resize/--input")
    with pytest.raises(ValueError, match=expected.replace("+", r"\+")) as error:
        check_input_size(model, smallest - 1, name)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("name", "smallest"),
                         [("lenet", 28), ("alexnet", 193), ("vgg11", 224), ("nin", 67),
                          ("densenet", 29), ("resnet18", 1), ("googlenet", 1)])
def test_known_minimum_sizes(name, smallest):
    with torch.device("meta"):
        assert min_input_size(create_model(name, init=None)) == smallest


def test_min_input_size_leaves_the_model_in_training_mode_and_unchanged():
    model = create_model("lenet-bn").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    assert min_input_size(model) == 28
    assert all(module.training for module in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_sized_classifier_rejects_larger_inputs_and_can_be_rebuilt_for_them():
    with torch.device("meta"):
        vgg = create_model("vgg11", init=None)
        with pytest.raises(ValueError, match="sized for 224x224 inputs, got 256x256"):
            check_input_size(vgg, 256, "vgg11")
        small = create_model("vgg11", input_size=56, init=None)
    check_input_size(small, (56, 56), "vgg11")
    assert min_input_size(small) == 32
    assert small[-3][0].in_features == 512  # 512 channels x 1 x 1 after five halvings of 56


def test_input_size_too_small_for_the_convolutions_is_a_value_error():
    with pytest.raises(ValueError, match="AlexNet needs inputs of at least 65x65 pixels, got "
                                         "20x20"):
        create_model("alexnet", input_size=20)


def test_check_input_size_accepts_height_width_pairs_and_rejects_nonpositive():
    model = create_model("lenet")
    check_input_size(model, (28, 28))
    with pytest.raises(ValueError, match="the model needs inputs of at least 28x28"):
        check_input_size(model, (28, 27))
    with pytest.raises(ValueError, match="must be positive, got -1x28"):
        check_input_size(model, (-1, 28))


@pytest.mark.parametrize("name", ["lenet-modern", "alexnet", "vgg11", "nin", "googlenet-bn",
                                  "resnet18", "preact-resnet18", "resnext50", "densenet121",
                                  "regnetx32", "compact-resnet-m"])
def test_in_place_relu_gives_the_same_outputs_and_gradients(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    out_of_place = copy.deepcopy(model)
    for module in out_of_place.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    size = min(model_info(name).input_size, max(min_input_size(model), 32))
    X, y = torch.randn(2, 1, size, size), torch.tensor([3, 7])
    results = []
    for net in (model, out_of_place):
        torch.manual_seed(1)  # the same dropout masks
        logits = net(X)
        F.cross_entropy(logits, y).backward()
        results.append([logits.detach(), *(p.grad for p in net.parameters())])
    for ours, reference in zip(*results, strict=True):
        assert torch.equal(ours, reference)
