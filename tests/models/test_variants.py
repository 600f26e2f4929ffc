"""Issue 12's model variants: each option builds, trains, has the parameters it implies, and does
what it says (checked on the mechanism itself, not only on shapes)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UsageError
from cnnlab.models import (
    VGG,
    AlexNet,
    AnyNet,
    DenseNet,
    GoogLeNet,
    Inception,
    LeNet,
    NiN,
    ResNet,
    check_input_size,
    create_model,
)
from cnnlab.models.googlenet import AuxiliaryClassifier, auxiliary_loss
from cnnlab.models.layers import SqueezeExcitation
from cnnlab.models.norms import Norm
from cnnlab.scratch import BatchNorm

NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, BatchNorm)


def count(model):
    return sum(p.numel() for p in model.parameters())


def conv(cin, cout, k, groups=1):
    """Parameters of a k x k convolution with bias."""
    return cout * (cin // groups) * k * k + cout


def linear(cin, cout):
    return cin * cout + cout


def norm_params(model):
    return sum(p.numel() for m in model.modules() if isinstance(m, NORM_LAYERS)
               for p in m.parameters())


def conv_channels(model):
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


def grouped_weights(model):
    """(weight size, groups) of every grouped convolution."""
    return [(m.weight.numel(), m.groups) for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.groups > 1]


def factorised_change(base):
    """Parameters gained by splitting each Inception n x n conv (with bias) into 1 x n, n x 1."""
    change = 0
    for block in base.modules():
        if isinstance(block, Inception):
            for path in (block.p2, block.p3):
                spatial = path[1][0]
                cin, cout, k = spatial.in_channels, spatial.out_channels, spatial.kernel_size[0]
                change += (cin * cout * k + cout) + (cout * cout * k + cout) - conv(cin, cout, k)
    return change


def residual_change(base):
    """Parameters of each residual Inception's linear projection and shortcut projection."""
    change = 0
    for block in base.modules():
        if isinstance(block, Inception):
            width, cin = block.out_channels, block.p1[0].in_channels
            change += conv(width, width, 1) + (conv(cin, width, 1) if cin != width else 0)
    return change


def squeeze_change(base, ratio):
    """Parameters of one squeeze-and-excitation per bottleneck block (RegNetY)."""
    change = 0
    for block in base.modules():
        if hasattr(block, "branch"):
            cin, bot = block.branch[0].in_channels, block.branch[0].out_channels
            squeezed = max(1, round(ratio * cin))
            change += conv(bot, squeezed, 1) + conv(squeezed, bot, 1)
    return change


def dense_add_params(channels=64, growth_blocks=(4, 4, 4, 4), classes=10):
    """The chapter's DenseNet with summed (not concatenated) layers: widths only shrink."""
    total = conv(1, channels, 7) + 2 * channels
    for index, depth in enumerate(growth_blocks):
        total += depth * (2 * channels + conv(channels, channels, 3))
        if index < len(growth_blocks) - 1:
            total += 2 * channels + conv(channels, channels // 2, 1)
            channels //= 2
    return total + 2 * channels + linear(channels, classes)


def anynet_basic_params(arch=((4, 32), (6, 80)), stem=32, classes=10):
    """AnyNet of basic blocks: two 3x3 conv + BN per block, a 1x1 conv + BN projection first."""
    total, cin = conv(1, stem, 3) + 2 * stem, stem
    for depth, width in arch:
        total += conv(cin, width, 1) + 2 * width  # the first block's projection shortcut
        total += conv(cin, width, 3) + (2 * depth - 1) * conv(width, width, 3)
        total += 2 * depth * 2 * width  # a BN after each 3x3 conv
        cin = width
    return total + linear(cin, classes)


def anynet_params(arch, stem=32, classes=10):
    """AnyNet of ResNeXt blocks with bot_mul 1: per block 1x1, grouped 3x3, 1x1 (each + BN)."""
    total, cin = conv(1, stem, 3) + 2 * stem, stem
    for depth, width, group_width in arch:
        total += conv(cin, width, 1) + 2 * width  # the first block's projection shortcut
        for position in range(depth):
            block_in = cin if position == 0 else width
            total += (conv(block_in, width, 1) + conv(width, width, 3, width // group_width)
                      + conv(width, width, 1) + 3 * 2 * width)
        cin = width
    return total + linear(cin, classes)


def alexnet_params(channels, hidden, flat_side=5, classes=10, in_channels=1):
    convs = [conv(in_channels, channels[0], 11), conv(channels[0], channels[1], 5),
             *(conv(a, b, 3) for a, b in zip(channels[1:], channels[2:], strict=False))]
    return (sum(convs) + linear(channels[4] * flat_side**2, hidden) + linear(hidden, hidden)
            + linear(hidden, classes))


NIN_WIDTHS = (96, 256, 384, 10)
ALEX_QUARTER = (24, 64, 96, 96, 64)
VGG_SMALL_CONVS = 16 + 32 + 2 * 64 + 2 * 128 + 2 * 128

# (name, options, expected parameters given the name's default model `base`)
VARIANTS = [
    ("lenet", {"norm": "batch"}, lambda base: count(base) + 2 * (6 + 16 + 120 + 84)),
    ("lenet", {"norm": "batch", "norm_affine": False}, count),
    ("lenet", {"norm": "scratch"}, lambda base: count(base) + 452),
    ("lenet", {"norm": "mean-only"}, lambda base: count(base) + 452),
    ("lenet", {"norm": "var-only"}, lambda base: count(base) + 452),
    ("lenet", {"norm": "mean-only", "norm_affine": False}, count),
    ("lenet", {"norm": "layer"}, lambda base: count(base) + 452),
    ("lenet", {"norm": "batch", "norm_at": "conv"}, lambda base: count(base) + 2 * (6 + 16)),
    ("lenet", {"norm": "batch", "norm_at": "fc"}, lambda base: count(base) + 2 * (120 + 84)),
    ("lenet", {"norm": "batch", "bias": False}, lambda base: count(base) + 452 - 226),
    ("lenet", {"dropout": 0.5}, count),
    ("lenet-bn", {"norm": "var-only"}, count),
    ("alexnet", {"width": 0.5}, lambda base: alexnet_params((48, 128, 192, 192, 128), 2048)),
    ("alexnet", {"width": 0.25, "dropout": 0.0, "fc_norm": "batch"},
     lambda base: alexnet_params(ALEX_QUARTER, 1024) + 2 * 2048),
    ("alexnet", {"width": 0.25, "norm": "batch"},
     lambda base: alexnet_params(ALEX_QUARTER, 1024) + 2 * sum(ALEX_QUARTER)),
    ("alexnet", {"width": 0.25, "bias": False},
     lambda base: alexnet_params(ALEX_QUARTER, 1024) - sum(ALEX_QUARTER) - 2048),
    ("alexnet", {"width": 0.25, "pooled_size": 6},
     lambda base: alexnet_params(ALEX_QUARTER, 1024, flat_side=6)),
    ("vgg-small", {"input_size": 32, "norm": "batch"},
     lambda base: count(base) + 2 * VGG_SMALL_CONVS),
    ("vgg-small", {"input_size": 32, "dropout": 0.0, "fc_norm": "batch"},
     lambda base: count(base) + 2 * 8192),
    ("vgg-small", {"input_size": 32, "norm": "layer", "norm_affine": False, "bias": False},
     lambda base: count(base) - VGG_SMALL_CONVS - 8192),
    ("vgg-small", {"pooled_size": 7}, count),  # 7x7 pooled maps, as at 224
    ("vgg-small", {"pooled_size": 1, "input_size": 32}, count),  # 1x1 maps at 32 either way
    ("nin", {"num_1x1": 1}, lambda base: count(base) - sum(conv(c, c, 1) for c in NIN_WIDTHS)),
    ("nin", {"num_1x1": 3}, lambda base: count(base) + sum(conv(c, c, 1) for c in NIN_WIDTHS)),
    ("nin", {"inner_kernel": 3}, lambda base: count(base) + 16 * sum(c * c for c in NIN_WIDTHS)),
    ("nin", {"head": "gradual"},
     lambda base: count(base) - conv(384, 10, 3) - 2 * conv(10, 10, 1) + conv(384, 192, 3)
     + conv(192, 96, 1) + conv(96, 10, 1)),
    ("nin", {"head": "fc", "input_size": 96}, lambda base: count(base) + linear(10, 10)),
    ("nin", {"dropout": 0.0, "norm": "batch"}, lambda base: count(base) + 2 * 3 * sum(NIN_WIDTHS)),
    ("nin", {"arch": ((32, 3, 1), (64, 3, 1), (128, 3, 1))},
     lambda base: sum(conv(a, b, 3) + 2 * conv(b, b, 1)
                      for a, b in ((1, 32), (32, 64), (64, 128), (128, 10)))),
    ("googlenet", {"norm": "batch"}, lambda base: count(base) + 2 * conv_channels(base)),
    ("googlenet", {"norm": "batch", "bias": False},
     lambda base: count(base) + conv_channels(base)),
    ("googlenet", {"norm": "mean-only", "norm_affine": False}, count),
    ("googlenet", {"inception": "factorised"},
     lambda base: count(base) + factorised_change(base)),
    ("googlenet", {"inception": "residual"}, lambda base: count(base) + residual_change(base)),
    ("googlenet", {"stem": "28"}, lambda base: count(base) - 64 * 49 + 64 * 9),
    ("googlenet", {"aux_logits": True},
     lambda base: count(base) + conv(512, 128, 1) + conv(528, 128, 1)
     + 2 * (linear(2048, 1024) + linear(1024, 10))),
    ("resnet18", {"norm": "none"}, lambda base: count(base) - norm_params(base)),
    ("resnet18", {"norm": "layer"}, count),
    ("resnet18", {"norm": "scratch"}, count),
    ("resnet18", {"norm": "var-only", "norm_affine": False},
     lambda base: count(base) - norm_params(base)),
    ("preact-resnet18", {"norm": "mean-only"}, count),
    ("densenet", {"memory_efficient": True}, count),
    ("densenet", {"transition_pool": "max"}, count),
    ("densenet", {"merge": "add"}, lambda base: dense_add_params()),
    ("densenet", {"norm": "none"}, lambda base: count(base) - norm_params(base)),
    ("densenet121", {"memory_efficient": True}, count),
    ("regnetx32", {"block": "basic"}, lambda base: anynet_basic_params()),
    ("regnetx32", {"groups": 1},
     lambda base: count(base) + sum(size * (groups - 1) for size, groups in grouped_weights(base))),
    ("regnetx32", {"group_width": 8},
     lambda base: count(base) - sum(size // 2 for size, _ in grouped_weights(base))),
    ("regnetx32", {"se_ratio": 0.25}, lambda base: count(base) + squeeze_change(base, 0.25)),
    ("regnetx32", {"arch": ((1, 16, 8, 1.0), (1, 32, 8, 1.0), (1, 64, 8, 1.0), (2, 128, 8, 1.0))},
     lambda base: anynet_params(((1, 16, 8), (1, 32, 8), (1, 64, 8), (2, 128, 8)))),
    ("regnetx32", {"norm": "layer", "norm_affine": False},
     lambda base: count(base) - norm_params(base)),
]
"""(name, options, the parameters they imply given the name's default model `base`)."""

TRAINED = [
    ("lenet", {"norm": "batch"}, 28),
    ("lenet", {"norm": "scratch"}, 28),
    ("lenet", {"norm": "mean-only", "norm_affine": False}, 28),
    ("lenet", {"norm": "var-only"}, 28),
    ("lenet", {"norm": "layer"}, 28),
    ("lenet", {"norm": "batch", "norm_at": "conv"}, 28),
    ("lenet-modern", {"norm": "batch", "norm_at": "fc", "bias": False, "dropout": 0.5}, 28),
    ("alexnet", {"width": 0.25, "dropout": 0.0, "fc_norm": "batch", "norm": "batch",
                 "bias": False}, 224),
    ("alexnet", {"width": 0.25, "pooled_size": 6}, 160),
    ("vgg-small", {"input_size": 32, "norm": "batch", "fc_norm": "batch", "dropout": 0.0}, 32),
    ("vgg-small", {"pooled_size": 1, "norm": "layer", "norm_affine": False, "bias": False}, 32),
    ("nin", {"num_1x1": 1, "inner_kernel": 3, "dropout": 0.0}, 96),
    ("nin", {"head": "gradual", "norm": "batch"}, 96),
    ("nin", {"head": "fc", "input_size": 96, "arch": ((32, 3, 1), (64, 3, 1), (128, 3, 1))}, 96),
    ("googlenet", {"norm": "batch", "bias": False, "inception": "factorised"}, 32),
    ("googlenet", {"inception": "residual", "aux_logits": True}, 32),
    ("googlenet", {"stem": "28", "norm": "mean-only"}, 28),
    ("resnet18", {"norm": "layer"}, 32),
    ("resnet18", {"norm": "var-only", "norm_affine": False}, 32),
    ("preact-resnet18", {"norm": "none"}, 32),
    ("densenet", {"memory_efficient": True, "transition_pool": "max"}, 32),
    ("densenet", {"merge": "add", "norm": "scratch"}, 32),
    ("regnetx32", {"block": "basic", "se_ratio": 0.25}, 32),
    ("regnetx32", {"groups": 1, "norm": "none"}, 32),
    ("regnetx32", {"group_width": 8, "norm": "layer", "norm_affine": False, "se_ratio": 0.25},
     32),
    ("regnetx32", {"arch": ((1, 16, 8, 1.0),) * 4}, 32),
]
"""Every option in at least one trained variant, several together: cheap sides, batch 4."""


def spec_id(name, options):
    return f"{name}:{','.join(f'{k}={v}' for k, v in options.items())}"


@pytest.mark.parametrize(("name", "options", "expected"), VARIANTS,
                         ids=[spec_id(name, options) for name, options, _ in VARIANTS])
def test_variant_has_the_parameters_its_options_imply(name, options, expected):
    with torch.device("meta"):
        base = create_model(name, init=None, **{k: v for k, v in options.items()
                                                 if k == "input_size"})
        model = create_model(name, init=None, **options)
    assert count(model) == expected(base)


@pytest.mark.parametrize(("name", "options", "size"), TRAINED,
                         ids=[spec_id(name, options) for name, options, _ in TRAINED])
def test_variant_trains_forward_and_backward(name, options, size):
    torch.manual_seed(0)
    model = create_model(name, **options).train()
    X, y = torch.randn(4, 1, size, size), torch.tensor([3, 7, 0, 9])
    logits = model(X)
    assert logits.shape == (4, 10)
    (F.cross_entropy(logits, y) + auxiliary_loss(model, y, F.cross_entropy)).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    check_input_size(model, size, name)


def test_each_variant_is_a_model_spec():
    specs = {"lenet:norm=batch,norm_affine=false": ("lenet", {"norm": "batch",
                                                             "norm_affine": False}),
             "nin:arch=((32,3,1),(64,3,1)),head=gradual":
                 ("nin", {"arch": ((32, 3, 1), (64, 3, 1)), "head": "gradual"}),
             "googlenet:stem=28,aux_logits=true": ("googlenet", {"stem": "28", "aux_logits": True}),
             "alexnet:width=0.5,fc_norm=batch,dropout=0": ("alexnet", {"width": 0.5,
                                                                       "fc_norm": "batch",
                                                                       "dropout": 0.0}),
             "regnetx32:block=basic,se_ratio=0.25": ("regnetx32", {"block": "basic",
                                                                   "se_ratio": 0.25})}
    with torch.device("meta"):
        for text, (name, options) in specs.items():
            assert str(create_model(text, init=None)) == str(create_model(name, init=None,
                                                                          **options))


# --- normalisation ------------------------------------------------------------------------------

def layer_outputs(model, kind, X):
    """Inputs and outputs of every `kind` layer of `model` on X."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((i[0].clone(), o.clone())))
             for m in model.modules() if isinstance(m, kind)]  # clones: ReLU works in place
    with torch.no_grad():
        model(X)
    for hook in hooks:
        hook.remove()
    return seen


def channel_stats(t):
    dims = (0,) if t.ndim == 2 else (0, 2, 3)
    return t.var(dims, unbiased=False), t.mean(dims)


def test_mean_only_centres_each_channel_and_keeps_its_variance():
    torch.manual_seed(0)
    model = create_model("lenet", norm="mean-only", activation="relu").train()
    pairs = layer_outputs(model, BatchNorm, torch.randn(16, 1, 28, 28) * 3 + 1)
    assert len(pairs) == 4
    for before, after in pairs:
        var_before, mean_before = channel_stats(before)
        var_after, mean_after = channel_stats(after)
        torch.testing.assert_close(mean_after, torch.zeros_like(mean_after), atol=1e-5, rtol=0)
        torch.testing.assert_close(var_after, var_before)
        assert mean_before.abs().max() > 1e-3  # there was a mean to remove


def test_var_only_scales_by_the_batch_deviation_and_keeps_the_sign_of_the_mean():
    torch.manual_seed(0)
    model = create_model("lenet", norm="var-only").train()
    for before, after in layer_outputs(model, BatchNorm, torch.randn(16, 1, 28, 28) + 2):
        var_before, mean_before = channel_stats(before)
        var_after, mean_after = channel_stats(after)
        torch.testing.assert_close(var_after, var_before / (var_before + 1e-5))
        torch.testing.assert_close(mean_after, mean_before / torch.sqrt(var_before + 1e-5))


def test_lite_norms_evaluate_with_their_running_statistics():
    torch.manual_seed(0)
    model = create_model("lenet", norm="mean-only").train()
    model(torch.randn(16, 1, 28, 28) + 5)
    first = next(m for m in model.modules() if isinstance(m, BatchNorm))
    model.eval()
    (before, after), *_ = layer_outputs(model, BatchNorm, torch.randn(4, 1, 28, 28))
    torch.testing.assert_close(after, before - first.moving_mean.reshape(1, -1, 1, 1))


def test_layer_norm_normalises_each_example_over_channels_and_positions():
    torch.manual_seed(0)
    model = create_model("resnet18", norm="layer").train()
    for _, after in layer_outputs(model, nn.GroupNorm, torch.randn(2, 1, 32, 32))[:3]:
        per_example = after.flatten(1)
        torch.testing.assert_close(per_example.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
        torch.testing.assert_close(per_example.var(1, unbiased=False), torch.ones(2),
                                   atol=1e-3, rtol=0)


def test_fixed_affine_norms_have_no_parameters_and_stay_at_identity():
    model = create_model("lenet", norm="scratch", norm_affine=False)
    norms = [m for m in model.modules() if isinstance(m, BatchNorm)]
    assert norms and not any(list(m.parameters()) for m in norms)
    assert all(torch.equal(m.gamma, torch.ones_like(m.gamma)) for m in norms)
    torch_norms = create_model("resnet18", norm_affine=False)
    assert all(m.weight is None for m in torch_norms.modules() if isinstance(m, nn.BatchNorm2d))


def test_lenet_with_batch_norm_differs_from_lenet_only_by_the_norm_layers():
    plain, normed = create_model("lenet"), create_model("lenet", norm="batch")
    without_norms = [m for m in normed if not isinstance(m, NORM_LAYERS)]
    assert [repr(m) for m in without_norms] == [repr(m) for m in plain]
    assert normed[0].padding == (2, 2) and create_model("lenet-bn")[0].padding == (0, 0)


@pytest.mark.parametrize(("norm_at", "convs", "denses"), [("conv", 2, 0), ("fc", 0, 2),
                                                          ("all", 2, 2)])
def test_lenet_norm_placement(norm_at, convs, denses):
    model = create_model("lenet", norm="batch", norm_at=norm_at)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model) == convs
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model) == denses


def test_bias_false_drops_every_bias_but_the_output_layers():
    for model in (create_model("lenet", norm="batch", bias=False),
                  create_model("alexnet", width=0.25, bias=False),
                  create_model("nin", bias=False, head="fc", input_size=96)):
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert all(m.bias is None for m in layers[:-1]) and layers[-1].bias is not None


def test_dropout_option_places_dropout_after_lenets_hidden_dense_layers():
    model = create_model("lenet", dropout=0.3)
    kinds = [type(m).__name__ for m in model][-7:]
    assert kinds == ["Linear", "Sigmoid", "Dropout", "Linear", "Sigmoid", "Dropout", "Linear"]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.3, 0.3]


def test_batch_norm_instead_of_dropout_in_the_dense_layers():
    for model in (create_model("alexnet", width=0.25, dropout=0.0, fc_norm="batch"),
                  create_model("vgg-small", dropout=0.0, fc_norm="batch", input_size=32)):
        dense = [block for block in model if isinstance(block, nn.Sequential)
                 and isinstance(block[0], nn.Linear)]
        assert [type(m) for m in dense[0]] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout]
        assert all(m.p == 0 for m in model.modules() if isinstance(m, nn.Dropout))


# --- AlexNet, VGG, NiN --------------------------------------------------------------------------

def test_alexnet_width_multiplies_every_layers_channels():
    model = create_model("alexnet", width=0.5)
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    dense = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    assert convs == [48, 128, 192, 192, 128] and dense == [2048, 2048, 10]


def test_alexnet_imagenet_layout_is_torchvisions():
    with torch.device("meta"):
        model = create_model("alexnet", config="imagenet", init=None)
        assert count(model) == 61_100_840
        assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == \
            [64, 192, 384, 256, 256]
        for side in (224, 160, 96):  # torchvision's adaptive pool: any side from 63 up
            assert model(torch.empty(1, 3, side, side)).shape == (1, 1000)


def test_pooled_classifier_takes_other_sides_and_sized_one_does_not():
    with torch.device("meta"):
        pooled = create_model("vgg11", config="imagenet", init=None)
        sized = create_model("vgg11", init=None)
    for side in (160, 256):
        check_input_size(pooled, side)
    with pytest.raises(UsageError, match="sized for 224x224 inputs, got 256x256"):
        check_input_size(sized, 256)


def test_nin_gradual_head_halves_the_channels_step_by_step():
    model = create_model("nin", head="gradual")
    class_block = model[-3]
    assert [m.out_channels for m in class_block if isinstance(m, nn.Conv2d)] == [192, 96, 10]
    assert isinstance(model[-2], nn.AdaptiveAvgPool2d)


def test_nin_inner_kernel_and_vgg_like_arch():
    model = create_model("nin", inner_kernel=3, arch=((32, 3, 1), (64, 3, 2, 0)))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.padding) for c in convs[:3]] == [((3, 3), (1, 1))] * 3
    assert (convs[3].stride, convs[3].padding) == ((2, 2), (0, 0))
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)


# --- GoogLeNet ----------------------------------------------------------------------------------

def test_factorised_inception_splits_each_square_kernel():
    block = Inception(64, (96, 128), (16, 32), 32, in_channels=192, variant="factorised")
    kernels = [m.kernel_size for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (1, 1), (1, 3), (3, 1), (1, 1), (1, 5), (5, 1), (1, 1)]
    assert block(torch.randn(2, 192, 12, 12)).shape == (2, 256, 12, 12)


def test_residual_inception_adds_its_projected_branches_to_the_input():
    torch.manual_seed(0)
    block = Inception(128, (128, 192), (32, 96), 64, in_channels=480, variant="residual")
    x = torch.randn(2, 480, 6, 6)
    with torch.no_grad():
        branches = torch.cat([block.p1(x), block.p2(x), block.p3(x), block.p4(x)], 1)
        torch.testing.assert_close(block(x), torch.relu(block.project(branches) + x))
        widening = Inception(64, (96, 128), (16, 32), 32, in_channels=192, variant="residual")
        assert isinstance(widening.shortcut[0], nn.Conv2d) and widening(x[:, :192]).shape == \
            (2, 256, 6, 6)


def test_stem_28_keeps_fashion_mnist_resolution_until_the_inception_blocks():
    shapes = []
    model = create_model("googlenet", stem="28").eval()
    for stage in model.children():
        stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    model(torch.randn(1, 1, 28, 28))
    assert shapes[:3] == [(64, 28, 28), (192, 28, 28), (480, 14, 14)]


def test_auxiliary_classifiers_train_and_leave_evaluation_unchanged():
    torch.manual_seed(0)
    with_aux = create_model("googlenet", aux_logits=True).train()
    X, y = torch.randn(4, 1, 64, 64), torch.tensor([1, 2, 3, 4])
    with_aux(X)
    heads = [m for m in with_aux.modules() if isinstance(m, AuxiliaryClassifier)]
    assert len(heads) == 2 and all(h.logits.shape == (4, 10) for h in heads)
    assert copy.deepcopy(with_aux).b4[1].logits is None  # copies leave the batch's graph behind
    expected = 0.3 * sum(F.cross_entropy(h.logits, y) for h in heads)
    torch.testing.assert_close(auxiliary_loss(with_aux, y, F.cross_entropy), expected)
    plain = create_model("googlenet")
    main = {k: v for k, v in with_aux.state_dict().items()
            if not k.startswith(("b4.1.", "b4.5."))}
    plain.load_state_dict(dict(zip(plain.state_dict(), main.values(), strict=True)))
    with_aux.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(with_aux(X), plain(X))
    assert all(h.logits is None for h in heads)
    assert auxiliary_loss(plain, y, F.cross_entropy) == 0


# --- DenseNet -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"bn_size": 4, "arch": (3, 3)}])  # DenseNet, -BC
def test_memory_efficient_densenet_gives_the_same_gradients_and_statistics(options):
    torch.manual_seed(0)
    default = create_model("densenet", **options).train()
    efficient = copy.deepcopy(default)
    for module in efficient.modules():
        if hasattr(module, "memory_efficient"):
            module.memory_efficient = True
    X, y = torch.randn(4, 1, 32, 32), torch.tensor([1, 2, 3, 4])
    for model in (default, efficient):
        F.cross_entropy(model(X), y).backward()
    for (key, ours), theirs in zip(default.named_parameters(), efficient.parameters(),
                                   strict=True):
        torch.testing.assert_close(theirs.grad, ours.grad, rtol=0, atol=0, msg=key)
    for (key, ours), theirs in zip(default.named_buffers(), efficient.buffers(), strict=True):
        assert torch.equal(ours, theirs), key  # the recomputation counts each batch once


def test_memory_efficient_densenet_keeps_fewer_tensors_for_backward():
    def saved_bytes(model):
        total = []

        def pack(tensor):
            total.append(tensor.numel() * tensor.element_size())
            return tensor
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(torch.randn(4, 1, 32, 32))
        return sum(total)

    torch.manual_seed(0)
    default = create_model("densenet").train()
    efficient = create_model("densenet", memory_efficient=True).train()
    assert saved_bytes(efficient) < 0.5 * saved_bytes(default)  # 0.42: the concatenations go


def test_dense_block_add_merge_sums_and_max_transitions_pool():
    model = create_model("densenet", merge="add", transition_pool="max")
    assert [model.dense1.out_channels, model.dense2.out_channels] == [64, 32]
    assert isinstance(model.transition1[-1], nn.MaxPool2d)
    block = model.dense2.eval()
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        expected = x
        for layer in block.net:
            expected = expected + layer(expected)
        torch.testing.assert_close(block(x), expected)


# --- AnyNet / RegNet ----------------------------------------------------------------------------

def test_anynet_variants_change_what_they_say():
    ungrouped = create_model("regnetx32", groups=1)
    assert all(m.groups == 1 for m in ungrouped.modules() if isinstance(m, nn.Conv2d))
    narrow = create_model("regnetx32", group_width=8)
    assert {m.groups for m in narrow.modules() if isinstance(m, nn.Conv2d)} == {1, 4, 10}
    basic = create_model("regnetx32", block="basic")
    first = basic.stage1[0].branch
    assert [m.kernel_size for m in first if isinstance(m, nn.Conv2d)] == [(3, 3), (3, 3)]
    regnety = create_model("regnetx32", se_ratio=0.25)
    blocks = [m for m in regnety.modules() if hasattr(m, "branch")]
    squeezes = [m for m in regnety.modules() if isinstance(m, SqueezeExcitation)]
    assert len(squeezes) == len(blocks) == 10
    four = create_model("regnetx32", arch=((1, 16, 8, 1.0),) * 4)
    assert [name for name, _ in four.named_children()] == ["stem", "stage1", "stage2", "stage3",
                                                          "stage4", "head"]


def test_squeeze_excitation_rescales_each_channel_by_a_gate_in_zero_one():
    torch.manual_seed(0)
    layer = SqueezeExcitation(8, 2)
    x = torch.rand(2, 8, 5, 5) + 0.5
    ratio = layer(x) / x
    assert ((ratio > 0) & (ratio < 1)).all()
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio))


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("builder", "options", "message"), [
    (LeNet, {"norm": "group"}, "unknown LeNet norm 'group'; use one of batch, scratch, mean-only"),
    (LeNet, {"norm_at": "pool"}, "unknown LeNet norm_at 'pool'; use one of conv, fc, all"),
    (AlexNet, {"fc_norm": "dropout"}, "unknown AlexNet fc_norm 'dropout'"),
    (AlexNet, {"width": 0}, "AlexNet needs width > 0"),
    (VGG, {"norm": "BN"}, "unknown VGG norm 'BN'"),
    (VGG, {"pooled_size": -7}, "pooled_size must be 0"),
    (NiN, {"head": "dense"}, "unknown NiN head 'dense'; use one of gap, fc, gradual"),
    (NiN, {"inner_kernel": 2}, "odd inner_kernel"),
    (NiN, {"arch": ((32, 3),)}, "NiN arch must be"),
    (GoogLeNet, {"inception": "v4"}, "unknown GoogLeNet inception 'v4'; use one of v1, factor"),
    (GoogLeNet, {"stem": "32"}, "unknown GoogLeNet stem '32'; use one of 7x7, 28"),
    (ResNet, {"norm": "instance"}, "unknown ResNet norm 'instance'"),
    (DenseNet, {"merge": "mul"}, "unknown DenseNet merge 'mul'; use one of concat, add"),
    (DenseNet, {"transition_pool": "min"}, "unknown DenseNet transition_pool 'min'"),
    (AnyNet, {"block": "wide"}, "unknown AnyNet block 'wide'"),
    (AnyNet, {"groups": 3}, "groups=3 must divide each stage's 32 bottleneck channels"),
    (AnyNet, {"groups": 1, "group_width": 8}, "takes group_width or groups"),
    (AnyNet, {"block": "basic", "groups": 1}, "basic blocks have ungrouped convolutions"),
    (AnyNet, {"se_ratio": -1.0}, "se_ratio must be 0"),
])
def test_bad_options_are_one_line_usage_errors(builder, options, message):
    with pytest.raises(UsageError, match=message) as error:
        builder(**options)
    assert "\n" not in str(error.value)


def test_every_builder_declares_its_enumerated_options():
    for builder in (LeNet, AlexNet, VGG, NiN, GoogLeNet, ResNet, DenseNet, AnyNet):
        assert "norm" in builder.OPTION_CHOICES
        assert set(builder.OPTION_CHOICES["norm"]) == {"batch", "scratch", "mean-only",
                                                       "var-only", "layer", "none"}
    with pytest.raises(UsageError, match="unknown norm 'group'; use one of batch"):
        Norm("group")
