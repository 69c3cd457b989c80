"""IDX files (gzipped or raw) through ``read_idx_pair``: round trips and malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from idx_testkit import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    check_message,
    idx_bytes,
    isolate,
    write_bytes,
    write_idx,
)

from genlab.data.idx import read_idx_pair
from genlab.errors import DataError

IMAGES = np.random.default_rng(0).integers(0, 256, (5, 7, 6), dtype=np.uint8)
LABELS = np.array([3, 0, 9, 1, 4], dtype=np.uint8)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def _pair(tmp_path: Path, gz: bool, images: bytes | None = None, labels: bytes | None = None):
    suffix = ".gz" if gz else ""
    images_path = write_bytes(
        tmp_path / f"train-images-idx3-ubyte{suffix}",
        idx_bytes(IMAGES) if images is None else images,
        gz=gz,
    )
    labels_path = write_bytes(
        tmp_path / f"train-labels-idx1-ubyte{suffix}",
        idx_bytes(LABELS) if labels is None else labels,
        gz=gz,
    )
    return images_path, labels_path


def _error(images_path: Path, labels_path: Path, *names: Path) -> str:
    with pytest.raises(DataError) as info:
        read_idx_pair(images_path, labels_path)
    return check_message(info.value, *names)


def test_header_layout_matches_the_format() -> None:
    data = idx_bytes(IMAGES)
    assert int.from_bytes(data[:4], "big") == IMAGES_MAGIC
    assert [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(3)] == [5, 7, 6]
    assert int.from_bytes(idx_bytes(LABELS)[:4], "big") == LABELS_MAGIC
    assert len(data) == 16 + IMAGES.size


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_round_trip(tmp_path: Path, gz: bool) -> None:
    images, labels = read_idx_pair(*_pair(tmp_path, gz))
    assert images.dtype == np.uint8 and labels.dtype == np.uint8
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)
    assert images.flags.writeable and images.flags.c_contiguous


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "images-idx3-ubyte", IMAGES, gz=True)  # gzip, no .gz name
    labels = write_idx(tmp_path / "labels-idx1-ubyte.gz", LABELS, gz=False)  # raw, .gz name
    got_images, got_labels = read_idx_pair(images, labels)
    np.testing.assert_array_equal(got_images, IMAGES)
    np.testing.assert_array_equal(got_labels, LABELS)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize(
    "magic", [0x00000000, 0x00000801, 0x00000802, 0x00000D03, 0x01000803, 0x00010803]
)
def test_wrong_magic_number_for_images(tmp_path: Path, gz: bool, magic: int) -> None:
    images_path, labels_path = _pair(tmp_path, gz, images=idx_bytes(IMAGES, magic=magic))
    message = _error(images_path, labels_path, images_path)
    assert f"0x{magic:08x}" in message and "0x00000803" in message


def test_wrong_magic_number_for_labels(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, True, labels=idx_bytes(LABELS, magic=0x00000803))
    message = _error(images_path, labels_path, labels_path)
    assert "0x00000801" in message


def test_labels_and_images_swapped(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, True)
    message = _error(labels_path, images_path, labels_path)
    assert "magic number 0x00000801" in message


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("missing", [1, 17, IMAGES.size])
def test_truncated_data(tmp_path: Path, gz: bool, missing: int) -> None:
    images_path, labels_path = _pair(tmp_path, gz, images=idx_bytes(IMAGES)[:-missing])
    message = _error(images_path, labels_path, images_path)
    assert "truncated" in message
    assert f"needs {IMAGES.size} data bytes, found {IMAGES.size - missing}" in message


@pytest.mark.parametrize("keep", [0, 3, 4, 9, 15])
def test_truncated_header(tmp_path: Path, keep: int) -> None:
    images_path, labels_path = _pair(tmp_path, False, images=idx_bytes(IMAGES)[:keep])
    assert "truncated" in _error(images_path, labels_path, images_path)


def test_truncated_labels(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, True, labels=idx_bytes(LABELS)[:-2])
    assert "truncated" in _error(images_path, labels_path, labels_path)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_trailing_bytes(tmp_path: Path, gz: bool) -> None:
    images_path, labels_path = _pair(tmp_path, gz, images=idx_bytes(IMAGES) + b"\0" * 7)
    message = _error(images_path, labels_path, images_path)
    assert "7 bytes of trailing" in message


def test_trailing_bytes_after_labels(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, False, labels=idx_bytes(LABELS) + b"x")
    assert "trailing" in _error(images_path, labels_path, labels_path)


def test_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(IMAGES))
    images_path, labels_path = _pair(tmp_path, True)
    for cut in (3, len(packed) // 2, len(packed) - 1):
        images_path.write_bytes(packed[:cut])
        assert "gzip" in _error(images_path, labels_path, images_path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(idx_bytes(IMAGES)))
    images_path, labels_path = _pair(tmp_path, True)
    crc = bytearray(packed)
    crc[-8] ^= 0xFF  # CRC32 trailer
    images_path.write_bytes(bytes(crc))
    assert "gzip" in _error(images_path, labels_path, images_path)
    garbage = bytes(packed[:10]) + b"\xff" * (len(packed) - 10)  # deflate stream destroyed
    images_path.write_bytes(garbage)
    assert "gzip" in _error(images_path, labels_path, images_path)


def test_missing_file(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, True)
    labels_path.unlink()
    _error(images_path, labels_path, labels_path)


def test_image_label_count_mismatch_names_both_files(tmp_path: Path) -> None:
    images_path, labels_path = _pair(tmp_path, True, labels=idx_bytes(LABELS[:4]))
    message = _error(images_path, labels_path, images_path, labels_path)
    assert str(images_path) in message and str(labels_path) in message
    assert "5 images" in message and "4 labels" in message


def test_header_with_overflowing_shape_is_a_data_error(tmp_path: Path) -> None:
    header = IMAGES_MAGIC.to_bytes(4, "big") + (1 << 22).to_bytes(4, "big") * 3
    images_path, labels_path = _pair(tmp_path, False, images=header)
    assert "truncated" in _error(images_path, labels_path, images_path)
