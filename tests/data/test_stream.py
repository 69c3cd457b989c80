"""BatchStream and DataSplits: determinism, exact resume, binarisation modes, fixed val/test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.config import DataConfig
from genlab.data import BatchStream, load_data
from genlab.data.binarize import bernoulli_uint8, uniform_below_255

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _epoch(stream: BatchStream, epoch: int, start: int = 0) -> list[torch.Tensor]:
    return [x for x, _ in stream.epoch(epoch, start)]


@pytest.fixture(scope="module")
def digits() -> dict[str, object]:
    return {b: load_data(DataConfig(binarize=b), progress=False) for b in ("dynamic", "static")}


def test_digits_loads(digits: dict) -> None:
    data = digits["dynamic"]
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert data.shape == (1, 8, 8) and data.levels == 2 and len(data.fingerprint) == 16
    assert data.train.images.max() == 255 and data.train.labels is not None


def test_resume_equals_tail_and_is_deterministic(digits: dict) -> None:
    data = digits["dynamic"]
    stream = data.stream("train", 64, shuffle=True, seed=5)
    full = list(stream.epoch(3))
    assert len(full) == len(stream) == -(-len(data.train) // 64)
    tail = list(stream.epoch(3, start_batch=7))
    for (x, y), (x2, y2) in zip(full[7:], tail, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    again = data.stream("train", 64, shuffle=True, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(_epoch(stream, 3), _epoch(again, 3), strict=True))
    other = _epoch(data.stream("train", 64, shuffle=True, seed=6), 3)
    assert not torch.equal(full[0][0], other[0])


def test_dynamic_binarisation_changes_between_epochs(digits: dict) -> None:
    stream = digits["dynamic"].stream("train", 4096, shuffle=False)
    (x0,), (x1,) = _epoch(stream, 0), _epoch(stream, 1)
    assert x0.dtype == torch.float32 and set(x0.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(x0, x1)
    grey = digits["dynamic"].train.images.float() / 255
    assert torch.equal(x0[grey == 0], torch.zeros_like(x0[grey == 0]))
    assert torch.equal(x0[grey == 1], torch.ones_like(x0[grey == 1]))
    assert abs(x0.mean().item() - grey.mean().item()) < 0.01


def test_static_is_the_same_every_epoch(digits: dict) -> None:
    stream = digits["static"].stream("train", 4096, shuffle=False)
    (x0,), (x1,) = _epoch(stream, 0), _epoch(stream, 1)
    assert torch.equal(x0, x1) and set(x0.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(x0, digits["static"].tensor("train"))


def test_val_and_test_fixed_and_independent_of_train_binarisation(digits: dict) -> None:
    dynamic, static = digits["dynamic"], digits["static"]
    for split in ("val", "test"):
        assert torch.equal(dynamic.tensor(split), static.tensor(split))
        stream = dynamic.stream(split, 50, shuffle=False)
        assert torch.equal(torch.cat(_epoch(stream, 0)), torch.cat(_epoch(stream, 1)))
        assert torch.equal(torch.cat(_epoch(stream, 0)), dynamic.tensor(split))
    other_seed = load_data(DataConfig(binarize_seed=1), progress=False)
    assert not torch.equal(other_seed.tensor("test"), dynamic.tensor("test"))


def test_threshold_and_none() -> None:
    threshold = load_data(DataConfig(binarize="threshold", threshold=0.3), progress=False)
    grey = threshold.test.images.float() / 255
    assert torch.equal(threshold.tensor("test"), (grey > 0.3).float())
    (x,) = _epoch(threshold.stream("test", 1000, shuffle=False), 0)
    assert torch.equal(x, (grey > 0.3).float())
    none = load_data(DataConfig(binarize="none"), progress=False)
    assert none.levels == 256 and torch.equal(none.tensor("test"), none.test.images.float() / 255)


def test_splits_are_seeded_and_disjoint() -> None:
    a = load_data(DataConfig(split_seed=0), progress=False)
    b = load_data(DataConfig(split_seed=1), progress=False)
    assert a.fingerprint == b.fingerprint and not torch.equal(a.test.images, b.test.images)
    assert len(a.test) == 180 and len(a.val) == round(0.1 * (1797 - 180))
    no_val = load_data(DataConfig(val_fraction=0.0), progress=False)
    assert len(no_val.val) == 0 and len(no_val.stream("val", 10, shuffle=False)) == 0


def test_stream_shapes_labels_and_drop_last(digits: dict) -> None:
    data = digits["dynamic"]
    n = len(data.train)
    stream = data.stream("train", 100, shuffle=True, drop_last=True)
    batches = list(stream.epoch(0))
    assert len(batches) == n // 100 and all(x.shape == (100, 1, 8, 8) for x, _ in batches)
    labels = torch.cat([y for _, y in data.stream("train", 100, shuffle=True).epoch(0)])
    assert torch.equal(labels.sort().values, data.train.labels.sort().values)
    with pytest.raises(ValueError):
        data.stream("bogus", 10, shuffle=False)


def test_uniform_below_255_is_exact_range() -> None:
    noise = uniform_below_255(1 << 20, torch.Generator().manual_seed(0))
    assert int(noise.max()) == 254 and int(noise.min()) == 0
    counts = torch.bincount(noise.long(), minlength=255).float()
    assert counts.shape == (255,) and (counts / counts.mean() - 1).abs().max() < 0.05
    ones = bernoulli_uint8(torch.full((4096,), 255, dtype=torch.uint8), torch.Generator())
    assert bool((ones == 1).all())
