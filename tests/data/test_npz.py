"""The npz source: layouts, dtypes and every malformed-array error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.data.sources import DATASETS
from genlab.errors import DataError


def _save(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def _load(path: Path):  # noqa: ANN202
    return DATASETS.get("npz").load(DataConfig(name="npz", path=str(path)), False)


def _error(path: Path, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        _load(path)
    message = str(info.value)
    assert str(path) in message and all(n in message for n in needles), message
    return message


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("array", "shape"),
    [
        (RNG.integers(0, 256, (4, 5, 6), dtype=np.uint8), (4, 1, 5, 6)),
        (RNG.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8), (4, 3, 5, 6)),
        (RNG.integers(0, 256, (4, 1, 5, 6), dtype=np.uint8), (4, 1, 5, 6)),
        (RNG.random((4, 5, 6)).astype(np.float32), (4, 1, 5, 6)),
    ],
)
def test_layouts(tmp_path: Path, array: np.ndarray, shape: tuple[int, ...]) -> None:
    train, test = _load(_save(tmp_path, images=array))
    assert tuple(train.images.shape) == shape and test is None and train.labels is None


def test_float_scaling_and_train_test(tmp_path: Path) -> None:
    x = np.array([[[0.0, 0.5, 1.0]]] * 2)
    path = _save(tmp_path, x_train=x, y_train=np.array([1, 2]), x_test=x[:1], y_test=[3])
    train, test = _load(path)
    assert train.images[0, 0, 0].tolist() == [0, 128, 255] and train.labels.tolist() == [1, 2]
    assert test is not None and len(test) == 1
    data = load_data(DataConfig(name="npz", path=str(path), val_fraction=0.0), progress=False)
    assert len(data.test) == 1 and len(data.train) == 2


def test_nan(tmp_path: Path) -> None:
    x = np.zeros((2, 4, 4))
    x[1, 2, 3] = np.nan
    _error(_save(tmp_path, x_train=x), "x_train", "NaN")


def test_values_out_of_range(tmp_path: Path) -> None:
    _error(_save(tmp_path, images=np.full((2, 4, 4), 1.5)), "images", "[0, 1]")


def test_wrong_shape(tmp_path: Path) -> None:
    _error(_save(tmp_path, images=np.zeros((2, 4, 4, 5), np.uint8)), "images", "(2, 4, 4, 5)")
    _error(_save(tmp_path, images=np.zeros((8, 8), np.uint8)), "images", "(N, H, W)")


def test_label_count_mismatch(tmp_path: Path) -> None:
    path = _save(tmp_path, x_train=np.zeros((3, 4, 4), np.uint8), y_train=np.zeros(2, int))
    _error(path, "y_train", "x_train", "3 images")


def test_missing_keys(tmp_path: Path) -> None:
    path = _save(tmp_path, pictures=np.zeros((3, 4, 4), np.uint8), tags=np.zeros(3))
    _error(path, "pictures", "tags", "x_train", "images")


def test_pickled_object_array_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    _error(path)
    _error(tmp_path / "absent.npz", "no such file")
