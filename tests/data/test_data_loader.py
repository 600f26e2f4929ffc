import pytest
import torch

from cnnlab.data.loader import BatchLoader, split_indices
from cnnlab.data.transforms import BatchTransform

N = 1000


def make_loader(batch_size=64, augment=(), rank=0, world_size=1, shuffle=True, seed=0):
    """Images whose pixels encode their index, labels equal to the index."""
    images = (torch.arange(N) % 256).to(torch.uint8).view(N, 1, 1, 1).expand(N, 1, 8, 8)
    transform = BatchTransform(12, [0.0], [1.0], augment)
    return BatchLoader(images.contiguous(), torch.arange(N), transform, batch_size,
                       shuffle=shuffle, augment=bool(augment), seed=seed, rank=rank,
                       world_size=world_size)


def labels(loader, epoch, start=0):
    return torch.cat([y for _, y in loader.iterate(epoch, start)])


def test_order_depends_only_on_seed_and_epoch():
    a, b = make_loader(), make_loader()
    assert torch.equal(labels(a, 3), labels(b, 3))
    assert not torch.equal(labels(a, 3), labels(a, 4))
    assert not torch.equal(labels(a, 3), labels(make_loader(seed=1), 3))
    assert sorted(labels(a, 3).tolist()) == list(range(N))
    b.set_epoch(3)
    assert torch.equal(torch.cat([y for _, y in b]), labels(a, 3))


def test_test_loaders_keep_file_order():
    assert labels(make_loader(shuffle=False), 5).tolist() == list(range(N))


def test_resume_mid_epoch_reproduces_the_tail_bit_for_bit():
    loader = make_loader(augment={"crop", "flip", "erase"})
    full = list(loader.iterate(2))
    tail = list(loader.iterate(2, start=5))
    assert len(loader) == len(full) == 16 and len(tail) == 11
    for (x1, y1), (x2, y2) in zip(full[5:], tail, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_are_disjoint_and_complete(world_size):
    shards = [labels(make_loader(rank=r, world_size=world_size), 1) for r in range(world_size)]
    together = torch.cat(shards)
    assert len(together) == N and sorted(together.tolist()) == list(range(N))
    assert [len(s) for s in shards] == [
        make_loader(rank=r, world_size=world_size).num_examples for r in range(world_size)]


def test_two_ranks_reproduce_one_rank_including_augmentation():
    augment = {"crop", "flip", "erase"}
    single = list(make_loader(augment=augment).iterate(0))
    ranks = [list(make_loader(augment=augment, rank=r, world_size=2).iterate(0)) for r in (0, 1)]
    for step, (x, y) in enumerate(single):
        assert torch.equal(x[0::2], ranks[0][step][0]) and torch.equal(x[1::2], ranks[1][step][0])
        assert torch.equal(y[1::2], ranks[1][step][1])


def test_augmentation_changes_with_epoch():
    loader = make_loader(augment={"crop"}, shuffle=True)
    x0 = next(iter(loader.iterate(0)))[0]
    x1 = next(iter(loader.iterate(1)))[0]
    assert x0.shape == (64, 1, 12, 12) and not torch.equal(x0, x1)


def test_stratified_split_is_deterministic_and_exact():
    labels_ = torch.arange(300) % 3
    kept, held = split_indices(labels_, 0.1, seed=7)
    assert torch.bincount(labels_[held]).tolist() == [10, 10, 10]
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(300))
    again = split_indices(labels_, 0.1, seed=7)
    assert torch.equal(kept, again[0]) and torch.equal(held, again[1])
    assert not torch.equal(held, split_indices(labels_, 0.1, seed=8)[1])
    assert len(split_indices(labels_, 0.0, seed=7)[1]) == 0
