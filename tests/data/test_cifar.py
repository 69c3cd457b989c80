"""CIFAR-10 from a small fake archive or folder, and refusal of malicious pickles."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.data.sources import DATASETS
from genlab.data.sources_cifar import TEST_BATCH, TRAIN_BATCHES
from genlab.errors import DataError


def _batch(n: int, seed: int) -> tuple[dict[bytes, object], np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    return {b"batch_label": b"fake", b"data": data, b"labels": labels}, data


def _batches(n: int = 3) -> dict[str, bytes]:
    names = (*TRAIN_BATCHES, TEST_BATCH)
    return {name: pickle.dumps(_batch(n, i)[0], protocol=2) for i, name in enumerate(names)}


def _write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def _cfg(root: Path, **kwargs: object) -> DataConfig:
    return DataConfig(name="cifar10", path=str(root), download=False, **kwargs)  # type: ignore[arg-type]


def test_cifar10_from_fake_tar(tmp_path: Path) -> None:
    _write_tar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", _batches())
    train, test = DATASETS.get("cifar10").load(_cfg(tmp_path), False)
    assert train.images.shape == (15, 3, 32, 32) and test is not None and len(test) == 3
    expected = _batch(3, 0)[1].reshape(3, 3, 32, 32)
    np.testing.assert_array_equal(train.images[:3].numpy(), expected)
    assert train.labels is not None and train.labels.tolist()[:3] == _batch(3, 0)[0][b"labels"]
    data = load_data(_cfg(tmp_path, val_fraction=0.2), progress=False)
    assert data.shape == (3, 32, 32) and len(data.val) == 3


def test_cifar10_from_extracted_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in _batches(2).items():
        (folder / name).write_bytes(payload)
    train, test = DATASETS.get("cifar10").load(_cfg(tmp_path), False)
    assert len(train) == 10 and test is not None and len(test) == 2


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    members = _batches()
    members["data_batch_2"] = pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2)
    archive = _write_tar(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError) as info:
        DATASETS.get("cifar10").load(_cfg(tmp_path), False)
    message = str(info.value)
    assert str(archive) in message and "refusing" in message and "system" in message


def test_missing_batch_and_corrupt_archive(tmp_path: Path) -> None:
    members = _batches()
    del members[TEST_BATCH]
    archive = _write_tar(tmp_path / "a" / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="test_batch") as info:
        DATASETS.get("cifar10").load(_cfg(tmp_path / "a"), False)
    assert str(archive) in str(info.value)
    broken = tmp_path / "b" / "cifar-10-python.tar.gz"
    broken.parent.mkdir()
    broken.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataError, match=str(broken)):
        DATASETS.get("cifar10").load(_cfg(tmp_path / "b"), False)


def test_wrong_array_shape(tmp_path: Path) -> None:
    members = _batches()
    members["data_batch_1"] = pickle.dumps(
        {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, protocol=2
    )
    _write_tar(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(DataError, match="3072"):
        DATASETS.get("cifar10").load(_cfg(tmp_path), False)


def test_oversized_batches_and_archives_are_refused_before_reading(tmp_path, monkeypatch):
    import genlab.data.sources_cifar as cifar

    _write_tar(tmp_path / "a" / "cifar-10-python.tar.gz", _batches())
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)  # each fake batch is ~9 kB
    with pytest.raises(DataError, match="more than a CIFAR-10 batch can be"):
        DATASETS.get("cifar10").load(_cfg(tmp_path / "a"), False)
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1 << 20)
    monkeypatch.setattr(cifar, "MAX_ARCHIVE_BYTES", 20_000)
    with pytest.raises(DataError, match="not the CIFAR-10 archive"):
        DATASETS.get("cifar10").load(_cfg(tmp_path / "a"), False)
    folder = tmp_path / "b" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, payload in _batches().items():
        (folder / name).write_bytes(payload)
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)
    with pytest.raises(DataError, match="more than a CIFAR-10 batch can be"):
        DATASETS.get("cifar10").load(_cfg(tmp_path / "b"), False)
