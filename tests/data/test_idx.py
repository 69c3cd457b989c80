"""IDX reading: round trips (gzipped or raw) and every malformed-file error."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from data_helpers import idx_bytes, write_idx

from genlab.data.idx import read_idx, read_idx_pair
from genlab.errors import DataError

IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
LABELS = np.array([7, 1], dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = write_idx(tmp_path / name, IMAGES)
    np.testing.assert_array_equal(read_idx(path, ndim=3), IMAGES)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", LABELS), ndim=1), LABELS)


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images-idx3-ubyte", IMAGES, compress=True)  # no .gz suffix
    np.testing.assert_array_equal(read_idx(path), IMAGES)
    raw = write_idx(tmp_path / "raw.gz", IMAGES, compress=False)  # .gz name, raw bytes
    np.testing.assert_array_equal(read_idx(raw), IMAGES)


def _error(path: Path, **kwargs: int) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_wrong_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0" * 64))
    message = _error(path, ndim=3)
    assert "magic number 0x00000000" in message and "0x00000803" in message


def test_labels_file_where_images_expected(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", LABELS)
    assert "0x00000801" in _error(path, ndim=3)


def test_unsupported_data_type(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(IMAGES))
    data[2] = 0x0D  # float32
    (tmp_path / "f").write_bytes(bytes(data))
    assert "0x0d" in _error(tmp_path / "f")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path: Path, gz: bool) -> None:
    data = idx_bytes(IMAGES)[:-5]
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(data) if gz else data)
    assert "truncated" in _error(path)


def test_truncated_header(tmp_path: Path) -> None:
    (tmp_path / "h").write_bytes(idx_bytes(IMAGES)[:9])
    assert "truncated" in _error(tmp_path / "h")


def test_trailing_garbage(tmp_path: Path) -> None:
    (tmp_path / "g").write_bytes(idx_bytes(IMAGES) + b"xyz")
    assert "3 bytes of trailing garbage" in _error(tmp_path / "g")


def test_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(IMAGES))
    (tmp_path / "cut").write_bytes(packed[: len(packed) // 2])
    assert "gzip" in _error(tmp_path / "cut")
    corrupt = bytearray(packed)
    corrupt[-6] ^= 0xFF  # CRC / length trailer
    (tmp_path / "crc").write_bytes(bytes(corrupt))
    assert "gzip" in _error(tmp_path / "crc")


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in _error(tmp_path / "absent")


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "train-images-idx3-ubyte.gz", IMAGES)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError) as info:
        read_idx_pair(images, labels)
    message = str(info.value)
    assert str(images) in message and str(labels) in message
    assert "2 images" in message and "3 labels" in message
