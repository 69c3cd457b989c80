"""Shards of a global batch: N ranks together see exactly the batch one process sees."""

from __future__ import annotations

import pytest
import torch

from genlab.data.stream import BatchStream


def _images(count: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, 1, 4, 4), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("mode", ["bernoulli", "grey"])
@pytest.mark.parametrize("world", [2, 3])
def test_the_shards_of_every_batch_are_the_batch(mode, world):
    images, labels = _images(103), torch.arange(103)
    whole = BatchStream(images, labels, mode=mode, batch_size=12, shuffle=True, seed=5)
    ranks = [
        BatchStream(
            images, labels, mode=mode, batch_size=12, shuffle=True, seed=5, rank=r, world=world
        )
        for r in range(world)
    ]
    assert all(len(r) == len(whole) for r in ranks)  # 103 % 12 = 7 >= world: kept
    for epoch in (0, 3):
        parts = [list(r.epoch(epoch)) for r in ranks]
        for b, (x, y) in enumerate(whole.epoch(epoch)):
            assert torch.equal(torch.cat([p[b][0] for p in parts]), x)
            assert torch.equal(torch.cat([p[b][1] for p in parts]), y)
            sizes = [p[b][0].shape[0] for p in parts]
            scales = [r.shard_scale(b) for r in ranks]
            # (1/world) sum_r scale_r * mean_r is the batch mean when scale_r = world n_r / n
            for scale, size in zip(scales, sizes, strict=True):
                assert scale == pytest.approx(world * size / x.shape[0])
            assert sum(scales) == pytest.approx(world)


def test_a_last_batch_smaller_than_the_world_is_skipped_by_every_rank():
    images = _images(25)  # 25 = 2 * 12 + 1: one image cannot be shared by two ranks
    one = BatchStream(images, None, mode="grey", batch_size=12, shuffle=False)
    two = [
        BatchStream(images, None, mode="grey", batch_size=12, shuffle=False, rank=r, world=2)
        for r in range(2)
    ]
    assert len(one) == 3 and [len(s) for s in two] == [2, 2]
    assert [x.shape[0] for x, _ in two[1].epoch(0)] == [6, 6]


def test_resuming_mid_epoch_gives_the_tail_of_the_shard():
    images = _images(50)
    stream = BatchStream(
        images, None, mode="bernoulli", batch_size=10, shuffle=True, rank=1, world=2
    )
    full = [x for x, _ in stream.epoch(2)]
    tail = [x for x, _ in stream.epoch(2, start_batch=3)]
    assert all(torch.equal(a, b) for a, b in zip(full[3:], tail, strict=True))
