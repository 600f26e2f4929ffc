"""cnnlab against the ways people train LeNet today, on the same data, recipe and initial weights.

Three paths train the chapter's LeNet (sigmoid, average pooling) on Fashion-MNIST with SGD,
batch 128, lr 0.1, the same number of epochs and the same Xavier-initialised starting weights:

- seed:   d2l 1.0.3's `Trainer` + `d2l.FashionMNIST` + `d2l.LeNet` (the book's code, as is);
- plain:  a hand-written PyTorch loop over torchvision's `FashionMNIST` (per-image `ToTensor`,
          `DataLoader` with its defaults);
- cnnlab: `cnnlab train lenet`.

The peers run in their own virtual environment (benchmarks/.peers-venv, made on first use):
torch 2.14.1 and torchvision 0.29.1, d2l 1.0.3 without its pinned dependencies, and the few
packages `d2l.torch` imports. torchvision reads the same four files, decompressed into the
layout it expects, so nothing is downloaded. An epoch is one pass over the 60,000 training
images plus one pass over the 10,000 test images (d2l's `fit_epoch` does both); images/s is
60,000 divided by the seconds of an epoch.

    python benchmarks/peers.py                # 10 epochs, all three (about 4 minutes on 2 cores)
    python benchmarks/peers.py --epochs 1     # a quick look
    python benchmarks/peers.py --rounds 2     # seed, plain, cnnlab, then back: the machine's
                                              # drift hits every path alike (twice as long)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers-venv"
WORK = HERE / ".peers-work"
PEER_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "numpy", "pillow", "matplotlib",
                 "matplotlib-inline", "pandas", "requests", "scipy", "ipython"]
"""What `d2l.torch` imports (it pins old versions of these, so d2l itself goes in --no-deps)."""
D2L = "d2l==1.0.3"
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000
RESULT_TAG = "PEER-RESULT "


# --- set-up (runs in cnnlab's environment) -------------------------------------------------------


def peer_python() -> Path:
    """The peers' interpreter, creating and filling their virtual environment the first time."""
    python = VENV / "bin" / "python"
    stamp = VENV / "installed.json"
    wanted = PEER_PACKAGES + [D2L]
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return python
    print(f"setting up {VENV} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + PEER_PACKAGES, check=True)
    subprocess.run(pip + ["--no-deps", D2L], check=True)
    stamp.write_text(json.dumps(wanted))
    return python


def torchvision_layout(root: Path) -> Path:
    """`root/data/FashionMNIST/raw/` holding the decompressed files, where torchvision looks.

    d2l's data root is '../data', so the peers run with `root/cwd` as working directory.
    """
    from cnnlab.data import locate_fashion_mnist

    raw = root / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (root / "cwd").mkdir(exist_ok=True)
    for name, path in locate_fashion_mnist().items():
        target = raw / name
        if not target.is_file():
            with gzip.open(path) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    return root / "cwd"


def initial_weights(path: Path, seed: int) -> Path:
    """LeNet's starting weights exactly as `cnnlab train lenet --seed SEED` draws them."""
    import torch

    from cnnlab.models import create_model

    torch.manual_seed(seed)
    model = create_model("lenet", num_classes=10, in_channels=1, input_size=28)
    torch.save(model.state_dict(), path)
    return path


def run_peer(python: Path, which: str, args, init: Path, cwd: Path) -> dict:
    """Run one peer in its environment and read the result line it prints."""
    command = [str(python), str(Path(__file__).resolve()), "--worker", which,
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--lr", str(args.lr), "--seed", str(args.seed), "--init", str(init)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith(RESULT_TAG))
    return {**json.loads(line[len(RESULT_TAG):]), "process_s": time.perf_counter() - started}


def run_cnnlab(args) -> dict:
    """`cnnlab train lenet` with the same recipe; per-epoch seconds come from its run's history
    (``metrics.csv``) and the test accuracy from its result, both read through `RunDir`."""
    from cnnlab.data import FashionMNIST
    from cnnlab.train.rundir import RunDir

    out = WORK / "cnnlab-run"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "cnnlab", "train", "lenet", "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr),
               "--seed", str(args.seed), "--device", "cpu", "--out", str(out),
               *args.cnnlab_options.split()]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    process_s = time.perf_counter() - started
    run = RunDir.open(out)
    seconds = [row["seconds"] for row in run.read_history()]
    result = run.read_result()
    steps = len(FashionMNIST(batch_size=args.batch_size).train_dataloader())
    return {"epoch_s": seconds, "test_acc": result["test_acc"], "steps_per_epoch": steps,
            "process_s": process_s}


# --- the peers (run in the peers' environment; they import no cnnlab) ----------------------------


def chapter_lenet():
    """The chapter's LeNet with concrete layers, so the same initial weights load into it."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def accuracy(net, loader) -> float:
    import torch

    net.eval()
    correct = total = 0
    with torch.no_grad():
        for X, y in loader:
            correct += int((net(X).argmax(dim=1) == y).sum())
            total += len(y)
    net.train()
    return correct / total


def seed_path(args) -> dict:
    """d2l's own Trainer, data module and LeNet; each fit_epoch is timed from outside."""
    import torch
    from d2l import torch as d2l

    torch.manual_seed(args.seed)
    data = d2l.FashionMNIST(batch_size=args.batch_size)
    model = d2l.LeNet(lr=args.lr)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    model.net.load_state_dict(torch.load(args.init, weights_only=True))
    trainer = d2l.Trainer(max_epochs=args.epochs)
    seconds = []
    fit_epoch = trainer.fit_epoch

    def timed_fit_epoch():
        started = time.perf_counter()
        fit_epoch()
        seconds.append(time.perf_counter() - started)

    trainer.fit_epoch = timed_fit_epoch
    trainer.fit(model, data)
    return {"epoch_s": seconds, "test_acc": accuracy(model, data.val_dataloader()),
            "steps_per_epoch": trainer.num_train_batches}


def plain_path(args) -> dict:
    """The tutorial loop: torchvision dataset, ToTensor per image, DataLoader, SGD."""
    import torch
    import torchvision
    from torch import nn
    from torchvision import transforms

    torch.manual_seed(args.seed)
    to_tensor = transforms.ToTensor()
    train = torchvision.datasets.FashionMNIST("../data", train=True, transform=to_tensor)
    test = torchvision.datasets.FashionMNIST("../data", train=False, transform=to_tensor)
    train_loader = torch.utils.data.DataLoader(train, args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test, args.batch_size)
    net = chapter_lenet()
    net.load_state_dict(torch.load(args.init, weights_only=True))
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        for X, y in train_loader:
            loss = loss_fn(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        test_acc = accuracy(net, test_loader)
        seconds.append(time.perf_counter() - started)
    return {"epoch_s": seconds, "test_acc": test_acc, "steps_per_epoch": len(train_loader)}


def merge_round(total: dict, run: dict) -> None:
    """Add one round of a path to its running record: epochs appended, process time summed."""
    if total and total["test_acc"] != run["test_acc"]:
        print(f"note: test accuracy {run['test_acc']:.2%} differs from the first round's "
              f"{total['test_acc']:.2%}", flush=True)
    total.setdefault("test_acc", run["test_acc"])  # the first round's
    total.setdefault("epoch_s", []).extend(run["epoch_s"])
    total["process_s"] = total.get("process_s", 0.0) + run["process_s"]
    total["rounds"] = total.get("rounds", 0) + 1
    total["steps_per_epoch"] = run["steps_per_epoch"]


# --- report --------------------------------------------------------------------------------------


def report(results: dict[str, dict], epochs: int) -> list[dict]:
    """Print one line per path and the speed-up of cnnlab over each peer; return the rows."""
    rows = []
    for name, r in results.items():
        epoch_s = sum(r["epoch_s"]) / len(r["epoch_s"])
        rows.append({"path": name, "s_per_epoch": epoch_s, "images_per_s": TRAIN_IMAGES / epoch_s,
                     "test_acc": r["test_acc"], "steps_per_epoch": r["steps_per_epoch"],
                     "process_s": r["process_s"] / r["rounds"], "rounds": r["rounds"]})
    print(f"\nLeNet on Fashion-MNIST, {epochs} epochs "
          "(epoch = train pass + test pass; images/s = 60,000 / epoch seconds)")
    print(f"{'path':8} {'s/epoch':>8} {'images/s':>9} {'test acc':>9} {'steps/epoch':>12} "
          f"{'process s':>10}")
    for row in rows:
        print(f"{row['path']:8} {row['s_per_epoch']:8.2f} {row['images_per_s']:9,.0f} "
              f"{row['test_acc']:9.2%} {row['steps_per_epoch']:12d} {row['process_s']:10.1f}")
    ours = next((row for row in rows if row["path"] == "cnnlab"), None)
    if ours:
        for row in rows:
            if row is not ours:
                print(f"cnnlab epoch is {row['s_per_epoch'] / ours['s_per_epoch']:.1f}x faster "
                      f"than {row['path']}; accuracy {ours['test_acc'] - row['test_acc']:+.2%}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", default="seed,plain,cnnlab",
                        help="comma list of seed, plain, cnnlab")
    parser.add_argument("--cnnlab-options", default="",
                        help="extra `cnnlab train` options, e.g. --cnnlab-options=--channels-last")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the paths this many times, every other round in reverse order")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--worker", choices=["seed", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--init", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = (seed_path if args.worker == "seed" else plain_path)(args)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(paths) - {"seed", "plain", "cnnlab"}
    if unknown:
        parser.error(f"unknown path(s) {', '.join(sorted(unknown))}; use seed, plain, cnnlab")
    WORK.mkdir(exist_ok=True)
    if {"seed", "plain"} & set(paths):
        python = peer_python()
        cwd = torchvision_layout(WORK)
        init = initial_weights(WORK / "lenet-init.pt", args.seed)
    results = {}
    for round_index in range(args.rounds):
        order = paths if round_index % 2 == 0 else paths[::-1]  # ABC CBA: drift cancels
        for which in order:
            print(f"round {round_index + 1}: running {which} ...", flush=True)
            run = (run_cnnlab(args) if which == "cnnlab" else
                   run_peer(python, which, args, init, cwd))
            merge_round(results.setdefault(which, {}), run)
    rows = report(results, args.epochs)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
