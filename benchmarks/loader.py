"""Images per second delivered by cnnlab's batch pipeline vs the common per-image one.

The common pipeline is torchvision's `FashionMNIST` dataset (reading the same files, copied into
its `FashionMNIST/raw` layout) with per-image `Resize` + `ToTensor` and a `DataLoader` with two
worker processes, as in d2l. Both deliver one shuffled training epoch in batches of 128.

    python benchmarks/loader.py [--sizes 28 96 224] [--repeats 1] [--threads 2] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a busy shared machine spinning threads
# waste their time slices (measured: 2 spinning threads were 5x slower than 1). Set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from cnnlab.data import FashionMNIST, locate_fashion_mnist  # noqa: E402

BATCH_SIZE = 128


def images_per_second(batches) -> float:
    """Drain an iterable of (X, y) batches and return the rate."""
    start, count = time.perf_counter(), 0
    for images, _ in batches:
        count += len(images)
    return count / (time.perf_counter() - start)


def cnnlab_rate(size: int, data_dir: str | None) -> float:
    data = FashionMNIST(batch_size=BATCH_SIZE, resize=size, root=data_dir)
    return images_per_second(data.train_dataloader().iterate(epoch=0))


def torchvision_rate(size: int, root: Path, workers: int) -> float:
    pipeline = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    dataset = datasets.FashionMNIST(root, train=True, transform=pipeline, download=False)
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers)
    return images_per_second(loader)


def torchvision_layout(data_dir: str | None, target: Path) -> Path:
    """Decompress the four files into target/FashionMNIST/raw, the layout torchvision reads."""
    raw = target / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, path in locate_fashion_mnist(data_dir, fetch=None).items():
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as source, open(raw / name, "wb") as sink:
            shutil.copyfileobj(source, sink)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 96, 224])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads for cnnlab's pipeline (default: 2, one per core)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, DataLoader workers {args.workers}, "
          f"batch {BATCH_SIZE}, one training epoch per run")
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_layout(args.data_dir, Path(tmp))
        for size in args.sizes:
            ours, theirs = [], []
            for _ in range(args.repeats):  # alternate, so both see the same machine load
                ours.append(cnnlab_rate(size, args.data_dir))
                theirs.append(torchvision_rate(size, root, args.workers))
            ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
            print(f"{size:>4} px  cnnlab {max(ours):>9,.0f} img/s   torchvision "
                  f"{max(theirs):>7,.0f} img/s   best/best {max(ours) / max(theirs):5.1f}x   "
                  f"median ratio {ratios[len(ratios) // 2]:5.1f}x   runs: cnnlab "
                  f"{[round(r) for r in ours]}, torchvision {[round(r) for r in theirs]}")

if __name__ == "__main__":
    main()
