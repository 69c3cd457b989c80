"""Splits, binarisation and batch streams on digits; the real Fashion-MNIST when installed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from idx_testkit import IDX_STEMS, isolate

from genlab.config import DataConfig
from genlab.data import load_data, locate
from genlab.data.binarize import bernoulli_float, bernoulli_uint8, uniform_below_255
from genlab.data.images import ImageSet
from genlab.data.splits import fingerprint

REAL_SYSTEM_DIRS = locate.SYSTEM_DATA_DIRS  # read at import, before any fixture patches it
FASHION = Path("/usr/share/datasets/fashion-mnist")
DIGITS = 1797


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


_CACHE: dict[DataConfig, object] = {}


def digits(**kwargs):
    """``load_data`` of digits with these settings (memoised: loading is deterministic)."""
    cfg = DataConfig(name="digits", **kwargs)
    if cfg not in _CACHE:
        _CACHE[cfg] = load_data(cfg, progress=False)
    return _CACHE[cfg]


def _rows(images: torch.Tensor) -> list[bytes]:
    return sorted(row.numpy().tobytes() for row in images.reshape(images.shape[0], -1))


def _batches(stream, epoch: int, start: int = 0) -> list[torch.Tensor]:
    return [x for x, _ in stream.epoch(epoch, start_batch=start)]


# --- splits ---------------------------------------------------------------------------------


def test_digits_sizes_and_shape() -> None:
    data = digits()
    assert data.shape == (1, 8, 8) and data.name == "digits"
    assert len(data.train) + len(data.val) + len(data.test) == DIGITS
    test = round(DIGITS * 0.1)
    assert len(data.test) == test and len(data.val) == round((DIGITS - test) * 0.1)
    for split in (data.train, data.val, data.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 8, 8)
        assert split.labels is not None and set(split.labels.tolist()) <= set(range(10))
    assert int(data.train.images.max()) == 255 and int(data.train.images.min()) == 0


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.1), (0.2, 0.3), (0.5, 0.05)])
def test_split_sizes_follow_fractions(val: float, test: float) -> None:
    data = digits(val_fraction=val, test_fraction=test, binarize="none")
    n_test = round(DIGITS * test)
    n_val = round((DIGITS - n_test) * val)
    assert (len(data.train), len(data.val), len(data.test)) == (
        DIGITS - n_test - n_val,
        n_val,
        n_test,
    )


def test_splits_partition_the_dataset() -> None:
    from sklearn.datasets import load_digits

    data = digits(binarize="none")
    raw = np.rint(load_digits().images * (255 / 16)).astype(np.uint8)
    everything = torch.cat([data.train.images, data.val.images, data.test.images])
    assert _rows(everything) == _rows(torch.from_numpy(raw))


def test_split_seed() -> None:
    a, b = digits(binarize="none"), digits(binarize="none")
    fresh = load_data(DataConfig(name="digits", binarize="none"), progress=False)
    other = digits(binarize="none", split_seed=1)
    for split in ("train", "val", "test"):
        assert torch.equal(a.split(split).images, fresh.split(split).images)
        assert torch.equal(a.split(split).labels, fresh.split(split).labels)
        assert not torch.equal(a.split(split).images, other.split(split).images)
    assert a is b and a.fingerprint == other.fingerprint  # same source data


# --- binarisation and streams -------------------------------------------------------------


def test_dynamic_batches_are_binary_and_resampled_each_epoch() -> None:
    data = digits()
    assert data.levels == 2
    stream = data.stream("train", 100, shuffle=False, seed=3)
    epoch0, epoch1 = _batches(stream, 0), _batches(stream, 1)
    assert len(epoch0) == len(stream) == math.ceil(len(data.train) / 100)
    for x in epoch0:
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
        assert bool(((x == 0) | (x == 1)).all())
    assert all(not torch.equal(a, b) for a, b in zip(epoch0, epoch1, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(epoch0, _batches(stream, 0), strict=True))


def test_dynamic_mean_matches_grey_levels() -> None:
    data = digits()
    stream = data.stream("train", 2000, shuffle=False)
    mean = torch.stack([next(iter(stream.epoch(e)))[0] for e in range(40)]).mean(0)
    grey = data.train.images.float() / 255
    assert float((mean - grey).abs().mean()) < 0.05


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("binarize", ["dynamic", "static", "none"])
def test_resume_yields_the_tail(shuffle: bool, binarize: str) -> None:
    stream = digits(binarize=binarize).stream("train", 64, shuffle=shuffle, seed=11)
    for epoch in (0, 4):
        full = list(stream.epoch(epoch))
        for start in (0, 1, 7, len(stream) - 1, len(stream)):
            tail = list(stream.epoch(epoch, start_batch=start))
            assert len(tail) == len(full) - start
            for (x, y), (fx, fy) in zip(tail, full[start:], strict=True):
                assert torch.equal(x, fx) and torch.equal(y, fy)
    with pytest.raises(ValueError):
        next(stream.epoch(0, start_batch=len(stream) + 1))


def test_static_is_identical_every_epoch() -> None:
    data = digits(binarize="static")
    stream = data.stream("train", 128, shuffle=False)
    epoch0 = _batches(stream, 0)
    assert all(torch.equal(a, b) for a, b in zip(epoch0, _batches(stream, 5), strict=True))
    assert bool(((epoch0[0] == 0) | (epoch0[0] == 1)).all())
    assert torch.equal(torch.cat(epoch0), data.tensor("train"))
    other_seed = digits(binarize="static", binarize_seed=1)
    assert not torch.equal(data.tensor("train"), other_seed.tensor("train"))


def test_static_shuffled_epochs_are_permutations() -> None:
    stream = digits(binarize="static").stream("train", 4096, shuffle=True, seed=2)
    (x0, y0), (x1, y1) = next(iter(stream.epoch(0))), next(iter(stream.epoch(1)))
    assert not torch.equal(y0, y1)
    assert _rows(x0) == _rows(x1)


def test_threshold() -> None:
    data = digits(binarize="threshold", threshold=0.3)
    assert data.levels == 2
    expected = (data.test.images.float() / 255 > 0.3).float()
    assert torch.equal(data.tensor("test"), expected)
    batches = _batches(data.stream("train", 500, shuffle=False), 0)
    assert torch.equal(torch.cat(batches), (data.train.images.float() / 255 > 0.3).float())


def test_none_keeps_256_levels() -> None:
    data = digits(binarize="none")
    assert data.levels == 256
    x = torch.cat(_batches(data.stream("train", 300, shuffle=False), 0))
    assert x.dtype == torch.float32 and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x * 255, data.train.images.float())  # exactly k / 255
    assert torch.equal(data.tensor("test"), data.test.images.float() / 255)
    assert len(torch.unique(x)) > 2


def test_test_split_is_fixed() -> None:
    dynamic, static = digits(), digits(binarize="static")
    for split in ("val", "test"):
        assert torch.equal(dynamic.tensor(split), static.tensor(split))
        assert bool(((dynamic.tensor(split) == 0) | (dynamic.tensor(split) == 1)).all())
    # the stream seed (the training seed) does not touch the evaluation splits
    a = _batches(dynamic.stream("test", 50, shuffle=False, seed=0), 0)
    b = _batches(dynamic.stream("test", 50, shuffle=False, seed=99), 3)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert torch.equal(torch.cat(a), static.tensor("test"))
    reloaded = load_data(DataConfig(name="digits"), progress=False)
    assert torch.equal(reloaded.tensor("test"), dynamic.tensor("test"))


def test_stream_labels_follow_images() -> None:
    data = digits(binarize="none")
    stream = data.stream("train", 256, shuffle=True, seed=5)
    lookup = {
        row.numpy().tobytes(): int(label)
        for row, label in zip(data.train.images, data.train.labels, strict=True)
    }
    for x, y in stream.epoch(2):
        for image, label in zip((x * 255).round().to(torch.uint8), y, strict=True):
            assert lookup[image.numpy().tobytes()] == int(label)


def test_drop_last() -> None:
    data = digits()
    keep = data.stream("train", 100, shuffle=True, drop_last=False)
    drop = data.stream("train", 100, shuffle=True, drop_last=True)
    assert len(keep) == math.ceil(len(data.train) / 100)
    assert len(drop) == len(data.train) // 100
    assert all(x.shape[0] == 100 for x, _ in drop.epoch(0))


# --- the Bernoulli sampler ------------------------------------------------------------------

DRAWS = 1_000_000


def test_uniform_below_255_range_and_uniformity() -> None:
    values = uniform_below_255(DRAWS, torch.Generator().manual_seed(0))
    assert values.dtype == torch.uint8 and values.shape == (DRAWS,)
    assert int(values.max()) == 254
    counts = torch.bincount(values.long(), minlength=256)
    assert int(counts[255]) == 0
    expected = DRAWS / 255
    assert float((counts[:255] - expected).abs().max()) < 5.5 * math.sqrt(expected)


def test_uniform_below_255_is_seeded() -> None:
    a = uniform_below_255(1000, torch.Generator().manual_seed(7))
    b = uniform_below_255(1000, torch.Generator().manual_seed(7))
    c = uniform_below_255(1000, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("sampler", ["float", "uint8"])
@pytest.mark.parametrize("p", [0, 1, 128, 254, 255])
def test_bernoulli_frequency(p: int, sampler: str) -> None:
    pixels = torch.full((DRAWS,), p, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(p + 1)
    if sampler == "float":
        draws = bernoulli_float(pixels, generator)
    else:
        draws = bernoulli_uint8(pixels, generator).float()
    assert bool(((draws == 0) | (draws == 1)).all())
    frequency = float(draws.mean(dtype=torch.float64))
    q = p / 255
    if p in (0, 255):
        assert frequency == q
    else:
        assert abs(frequency - q) < 4 * math.sqrt(q * (1 - q) / DRAWS)


# --- fingerprint ------------------------------------------------------------------------------


def test_fingerprint_stable_and_sensitive() -> None:
    data = digits(binarize="none")
    assert data.fingerprint == digits(binarize="static", val_fraction=0.3).fingerprint
    assert len(data.fingerprint) == 16 and int(data.fingerprint, 16) >= 0
    images = torch.arange(2 * 16, dtype=torch.uint8).reshape(2, 1, 4, 4)
    base = ImageSet(images.clone(), torch.tensor([0, 1]))
    same = ImageSet(images.clone(), torch.tensor([0, 1]))
    assert fingerprint(base, None) == fingerprint(same, None)
    changed = images.clone()
    changed[1, 0, 3, 3] += 1
    assert fingerprint(ImageSet(changed, torch.tensor([0, 1])), None) != fingerprint(base, None)
    assert fingerprint(ImageSet(images.clone(), torch.tensor([1, 1])), None) != fingerprint(
        base, None
    )
    assert fingerprint(ImageSet(images.clone()), None) != fingerprint(base, None)
    reshaped = ImageSet(images.reshape(2, 1, 2, 8).clone(), torch.tensor([0, 1]))
    assert fingerprint(reshaped, None) != fingerprint(base, None)
    assert fingerprint(base, base) != fingerprint(base, None)


def test_fingerprint_changes_with_the_file(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=images)
    images[3, 2, 1] ^= 1
    np.savez(tmp_path / "b.npz", images=images)
    a = load_data(DataConfig(name="npz", path=str(tmp_path / "a.npz")), progress=False)
    again = load_data(DataConfig(name="npz", path=str(tmp_path / "a.npz")), progress=False)
    b = load_data(DataConfig(name="npz", path=str(tmp_path / "b.npz")), progress=False)
    assert a.fingerprint == again.fingerprint != b.fingerprint


# --- the real Fashion-MNIST -------------------------------------------------------------------


@pytest.mark.skipif(
    not all((FASHION / f"{stem}.gz").exists() for stem in IDX_STEMS),
    reason=f"Fashion-MNIST is not installed in {FASHION} (apt install dataset-fashion-mnist)",
)
def test_fashion_mnist_from_the_system_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", REAL_SYSTEM_DIRS)  # undo the isolation
    cfg = DataConfig(name="fashion-mnist", download=False, binarize="none")
    found = locate.locate(cfg, "fashion-mnist", progress=False)
    assert all(path.parent == FASHION for path in found)
    data = load_data(cfg, progress=False)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert data.shape == (1, 28, 28)
    for split in (data.train, data.val, data.test):
        assert split.labels is not None
        assert sorted(torch.unique(split.labels).tolist()) == list(range(10))
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10


def test_test_split_does_not_depend_on_val_fraction() -> None:
    a, b = digits(), digits(val_fraction=0.3)
    assert torch.equal(a.test.images, b.test.images)
    assert torch.equal(a.tensor("test"), b.tensor("test"))


def test_empty_val_split() -> None:
    data = digits(val_fraction=0.0)
    assert len(data.val) == 0 and data.tensor("val").shape == (0, 1, 8, 8)
    stream = data.stream("val", 32, shuffle=True)
    assert len(stream) == 0 and list(stream.epoch(0)) == []
