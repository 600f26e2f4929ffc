"""Training throughput of every registered model against the same architecture built the plain way.

For each model at its seed input size (1 channel, 10 classes):
- the plain way is torchvision's model where torchvision has the architecture (its class in the
  same configuration; cnnlab's model is then built in torchvision's layout, and the parameter
  counts must match), else a straightforward d2l-style build written out below;
- cnnlab's model runs eager, with channels_last, and under torch.compile (the seconds of each
  variant's warm-up, compilation included, go to the JSON as `warmup_s`).

Each variant trains on a fixed random batch (forward, cross-entropy, backward, SGD step) through
`cnnlab.analysis.bench`: cnnlab's models with the trainer's fused SGD, the plain model with
PyTorch's default SGD; the variants take turns for `--repeats` rounds so that load on a shared
machine hits them alike, and the best round counts. The ratio is cnnlab's best option over the
plain model's eager images/s.

    python benchmarks/zoo.py                          # every model (long on 2 CPU cores)
    python benchmarks/zoo.py --models lenet,resnet18 --variants eager,channels_last
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
import torchvision
from torch import nn

from cnnlab.analysis.bench import BenchOptions, make_step, prepare, random_batch, time_steps
from cnnlab.models import create_model, list_models, model_info
from cnnlab.train.allocator import retain_freed_memory

VARIANTS = ("eager", "channels_last", "compile")
BATCH_BY_SIDE = {28: 128, 96: 16, 224: 4}
"""Batch size per seed input side: small enough that the largest models take seconds a step."""


# --- torchvision counterparts --------------------------------------------------------------------


def _regnetx32() -> nn.Module:
    params = torchvision.models.regnet.BlockParams(
        depths=[4, 6], widths=[32, 80], group_widths=[16, 16], bottleneck_multipliers=[1.0, 1.0],
        strides=[2, 2])
    return torchvision.models.RegNet(params, num_classes=10, stem_width=32)


TORCHVISION = {
    **{name: (lambda n=name: torchvision.models.get_model(n, num_classes=10))
       for name in ("vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
                    "resnet101", "resnet152", "densenet121", "densenet169", "densenet201")},
    "resnext50": lambda: torchvision.models.resnext50_32x4d(num_classes=10),
    "densenet264": lambda: torchvision.models.DenseNet(32, (6, 12, 64, 48), 64, num_classes=10),
    "googlenet-bn": lambda: torchvision.models.googlenet(num_classes=10, aux_logits=False,
                                                         init_weights=False),
    "regnetx32": _regnetx32,
    "regnetx-400mf": lambda: torchvision.models.regnet_x_400mf(num_classes=10),
}
"""Models torchvision builds; cnnlab's counterpart is `create_model` with the imagenet layout."""


def one_channel(model: nn.Module) -> nn.Module:
    """Replace the first convolution by one that reads a single (grey) channel."""
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    parent, _, attribute = name.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    setattr(owner, attribute, nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride,
                                        conv.padding, bias=conv.bias is not None))
    return model


# --- d2l-style plain builds ----------------------------------------------------------------------


class ScratchBatchNorm(nn.Module):
    """Batch norm written out as the chapter does it, with running statistics."""

    def __init__(self, num_features: int, num_dims: int):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma, self.beta = nn.Parameter(torch.ones(shape)), nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        if not self.training:
            X_hat = (X - self.moving_mean) / torch.sqrt(self.moving_var + 1e-5)
        else:
            dims = (0,) if X.dim() == 2 else (0, 2, 3)
            mean, var = X.mean(dim=dims, keepdim=True), X.var(dim=dims, unbiased=False,
                                                              keepdim=True)
            X_hat = (X - mean) / torch.sqrt(var + 1e-5)
            with torch.no_grad():
                self.moving_mean.mul_(0.9).add_(0.1 * mean)
                self.moving_var.mul_(0.9).add_(0.1 * var)
        return self.gamma * X_hat + self.beta


def plain_lenet(act=nn.Sigmoid, pool=nn.AvgPool2d, norm=None) -> nn.Module:
    """LeNet; with `norm` (a BatchNorm factory taking features and dims) after each layer."""
    def n(features, dims):
        return [norm(features, dims)] if norm else []
    pad, flat = (0, 256) if norm else (2, 400)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=pad), *n(6, 4), act(), pool(2, 2),
        nn.Conv2d(6, 16, 5), *n(16, 4), act(), pool(2, 2), nn.Flatten(),
        nn.Linear(flat, 120), *n(120, 2), act(), nn.Linear(120, 84), *n(84, 2), act(),
        nn.Linear(84, 10))


def torch_bn(features: int, dims: int) -> nn.Module:
    return nn.BatchNorm2d(features) if dims == 4 else nn.BatchNorm1d(features)


def plain_alexnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 96, 11, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1),
        nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))


def plain_vgg_small() -> nn.Module:
    layers, channels = [], 1
    for num_convs, out in ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)):
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
            channels = out
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(6272, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))


def plain_nin() -> nn.Module:
    def block(cin, out, k, s, p):
        return [nn.Conv2d(cin, out, k, s, p), nn.ReLU(), nn.Conv2d(out, out, 1), nn.ReLU(),
                nn.Conv2d(out, out, 1), nn.ReLU()]
    return nn.Sequential(*block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), *block(96, 256, 5, 1, 2),
                         nn.MaxPool2d(3, 2), *block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
                         nn.Dropout(0.5), *block(384, 10, 3, 1, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


class PlainInception(nn.Module):
    def __init__(self, cin, c1, c2, c3, c4):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(cin, c2[0], 1), nn.ReLU(),
                                nn.Conv2d(c2[0], c2[1], 3, padding=1), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(cin, c3[0], 1), nn.ReLU(),
                                nn.Conv2d(c3[0], c3[1], 5, padding=2), nn.ReLU())
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, c4, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat((self.b1(x), self.b2(x), self.b3(x), self.b4(x)), dim=1)


def plain_googlenet() -> nn.Module:
    pool = nn.MaxPool2d(3, 2, 1)
    return nn.Sequential(
        nn.Conv2d(1, 64, 7, 2, 3), nn.ReLU(), pool,
        nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), pool,
        PlainInception(192, 64, (96, 128), (16, 32), 32),
        PlainInception(256, 128, (128, 192), (32, 96), 64), pool,
        PlainInception(480, 192, (96, 208), (16, 48), 64),
        PlainInception(512, 160, (112, 224), (24, 64), 64),
        PlainInception(512, 128, (128, 256), (24, 64), 64),
        PlainInception(512, 112, (144, 288), (32, 64), 64),
        PlainInception(528, 256, (160, 320), (32, 128), 128), pool,
        PlainInception(832, 256, (160, 320), (32, 128), 128),
        PlainInception(832, 384, (192, 384), (48, 128), 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 10))


class PlainPreActBlock(nn.Module):
    """Pre-activation residual block (basic or bottleneck); 1x1 conv shortcut if shapes change."""

    def __init__(self, cin, out, stride, bottleneck):
        super().__init__()
        mid = out // 4 if bottleneck else out
        if bottleneck:
            convs = [nn.Conv2d(cin, mid, 1), nn.Conv2d(mid, mid, 3, stride, 1),
                     nn.Conv2d(mid, out, 1)]
        else:
            convs = [nn.Conv2d(cin, out, 3, stride, 1), nn.Conv2d(out, out, 3, 1, 1)]
        layers = []
        for conv in convs:
            layers += [nn.BatchNorm2d(conv.in_channels), nn.ReLU(), conv]
        self.branch = nn.Sequential(*layers)
        self.shortcut = (nn.Identity() if cin == out and stride == 1 else
                         nn.Conv2d(cin, out, 1, stride))

    def forward(self, x):
        return self.branch(x) + self.shortcut(x)


def plain_preact_resnet(layers, bottleneck) -> nn.Module:
    blocks, channels = [], 64
    for index, (depth, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
        out = 4 * width if bottleneck else width
        for position in range(depth):
            stride = 2 if index > 0 and position == 0 else 1
            blocks.append(PlainPreActBlock(channels, out, stride, bottleneck))
            channels = out
    return nn.Sequential(
        nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1), *blocks,
        nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(channels, 10))


class PlainDenseBlock(nn.Module):
    def __init__(self, num_convs, cin, growth):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(cin + i * growth), nn.ReLU(),
                          nn.Conv2d(cin + i * growth, growth, 3, padding=1))
            for i in range(num_convs))

    def forward(self, X):
        for conv in self.convs:
            X = torch.cat((X, conv(X)), dim=1)
        return X


def plain_densenet() -> nn.Module:
    layers, channels = [nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(),
                        nn.MaxPool2d(3, 2, 1)], 64
    for index in range(4):
        layers.append(PlainDenseBlock(4, channels, 32))
        channels += 4 * 32
        if index < 3:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1),
                       nn.AvgPool2d(2, 2)]
            channels //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(channels, 10))


class PlainResidual(nn.Module):
    """The basic residual block: two bias-free 3x3 conv + BN, the input added, then ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, X):
        Y = torch.relu(self.bn1(self.conv1(X)))
        return torch.relu(self.bn2(self.conv2(Y)) + X)


def plain_compact_resnet(widths, blocks) -> nn.Module:
    layers, channels = [], 1
    for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        layers += [nn.MaxPool2d(2)] if index else []
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(), *(PlainResidual(width) for _ in range(count))]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 7 * 7, 10))


D2L_STYLE = {
    "lenet": lambda: plain_lenet(),
    "lenet-modern": lambda: plain_lenet(nn.ReLU, nn.MaxPool2d),
    "lenet-bn": lambda: plain_lenet(norm=torch_bn),
    "lenet-bn-scratch": lambda: plain_lenet(norm=ScratchBatchNorm),
    "alexnet": plain_alexnet,
    "vgg-small": plain_vgg_small,
    "nin": plain_nin,
    "googlenet": plain_googlenet,
    "preact-resnet18": lambda: plain_preact_resnet((2, 2, 2, 2), False),
    "preact-resnet50": lambda: plain_preact_resnet((3, 4, 6, 3), True),
    "densenet": plain_densenet,
    "compact-resnet-s": lambda: plain_compact_resnet((24, 48, 96), (0, 0, 0)),
    "compact-resnet-m": lambda: plain_compact_resnet((32, 64, 128), (0, 1, 1)),
    "compact-resnet-l": lambda: plain_compact_resnet((64, 128, 256), (1, 2, 2)),
}
"""Plain builds of the models torchvision lacks, in cnnlab's configuration of the same name."""


def pair(name: str) -> tuple[nn.Module, nn.Module, str]:
    """(cnnlab model, plain model, where the plain one comes from) with equal parameter counts."""
    info = model_info(name)
    if name in TORCHVISION:
        ours = create_model(name, 10, 1, **info.imagenet_layout)
        theirs, source = one_channel(TORCHVISION[name]()), "torchvision"
    elif name in D2L_STYLE:
        ours, theirs, source = create_model(name), D2L_STYLE[name](), "d2l-style"
    else:
        raise KeyError(f"no plain-way build of {name!r}")
    count = [sum(p.numel() for p in m.parameters()) for m in (ours, theirs)]
    if count[0] != count[1]:
        raise ValueError(f"{name}: cnnlab has {count[0]:,} parameters, the {source} build "
                         f"{count[1]:,}: not the same architecture")
    return ours, theirs, source


# --- measuring -----------------------------------------------------------------------------------


def compare(name: str, variants: list[str], repeats: int, warmup: int, steps: int,
            min_seconds: float) -> dict:
    """Images/s of the plain model (eager) and of cnnlab's model in each variant.

    After warm-up one step is timed to pick how many steps make a round last `min_seconds`.
    """
    side = model_info(name).input_size
    batch = BATCH_BY_SIDE.get(side, 16)
    ours, theirs, source = pair(name)
    runs = {"plain": (theirs, BenchOptions(plain_optimizer=True, warmup=warmup, steps=steps))}
    for variant in variants:
        options = BenchOptions(channels_last=variant == "channels_last",
                               compile=variant == "compile", warmup=warmup, steps=steps)
        runs[variant] = (copy.deepcopy(ours), options)
    steppers, warmup_s = {}, {}
    for key, (model, options) in runs.items():
        started = time.perf_counter()
        model = prepare(model, options)
        step, data = make_step(model, options), random_batch((batch, 1, side, side), 10, options)
        once = time_steps(step, data, replace(options, steps=1))
        warmup_s[key] = time.perf_counter() - started  # compilation included
        steps = max(options.steps, math.ceil(min_seconds / once))
        steppers[key] = (step, data, replace(options, warmup=0, steps=steps))
    best = dict.fromkeys(steppers, float("inf"))
    for _ in range(repeats):
        for key, (step, data, options) in steppers.items():
            best[key] = min(best[key], time_steps(step, data, options))
    images_per_s = {key: batch / seconds for key, seconds in best.items()}
    winner = max(variants, key=images_per_s.get)
    return {"model": name, "input": side, "batch": batch, "plain": source,
            "images_per_s": images_per_s, "warmup_s": warmup_s, "best": winner,
            "ratio": images_per_s[winner] / images_per_s["plain"],
            "eager_ratio": images_per_s.get("eager", float("nan")) / images_per_s["plain"]}


def print_row(row: dict, variants: list[str]) -> None:
    speeds = " ".join(f"{row['images_per_s'][v]:>13,.1f}" for v in ["plain", *variants])
    print(f"{row['model']:17} {row['input']:>5} {row['batch']:>5} {row['plain']:>11} {speeds} "
          f"{row['best']:>13} {row['ratio']:>6.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma list (default: every registered model)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma list of eager, channels_last, compile")
    parser.add_argument("--repeats", type=int, default=15,
                        help="rounds; many short ones let every variant meet the quiet moments")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1, help="least timed steps per round")
    parser.add_argument("--min-seconds", type=float, default=0.25,
                        help="more steps per round until a round lasts this long")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else list_models()
    retain_freed_memory()  # as cnnlab's trainer and bench do; the plain models step with it too
    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        parser.error(f"variants are {', '.join(VARIANTS)}, got {args.variants}")
    print(f"training images/s, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"best of {args.repeats} rounds of >= {args.steps} steps and >= {args.min_seconds} s")
    header = " ".join(f"{v:>13}" for v in ["plain", *variants])
    print(f"{'model':17} {'input':>5} {'batch':>5} {'plain way':>11} {header} {'best':>13} "
          f"{'ratio':>6}")
    rows = []
    started = time.perf_counter()
    for name in names:
        try:
            rows.append(compare(name, variants, args.repeats, args.warmup, args.steps,
                                args.min_seconds))
        except KeyError as exc:
            print(f"{name:17} skipped: {exc}", flush=True)
            continue
        print_row(rows[-1], variants)
    wins = sum(row["ratio"] >= 1.0 for row in rows)
    print(f"cnnlab's best option >= plain on {wins}/{len(rows)} models "
          f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
