"""Reading IDX files (the MNIST family's format), gzipped or not.

An IDX file is a magic number 0x0000TTDD (TT = element type, DD = number of dimensions),
DD big-endian uint32 sizes, then the elements. Only unsigned bytes (type 0x08) occur here.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it is gzipped (detected by its magic bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({exc}); delete the file and download it again"
        ) from None


def parse_idx(data: bytes, path: Path, expected_dims: int) -> np.ndarray:
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    magic = int.from_bytes(data[:4], "big")
    expected = 0x0800 | expected_dims
    if magic != expected:
        kind = "images" if expected_dims == 3 else "labels"
        raise DataError(
            f"{path}: not an IDX file of {kind} (magic number 0x{magic:08x}, "
            f"expected 0x{expected:08x})"
        )
    header = 4 + 4 * expected_dims
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_dims)]
    count = int(np.prod(dims))
    if len(data) - header < count:
        raise DataError(
            f"{path}: truncated IDX file: its header announces {dims} = {count} "
            f"bytes of data but only {len(data) - header} are present"
        )
    if len(data) - header > count:
        raise DataError(
            f"{path}: {len(data) - header - count} unexpected bytes after the {dims} IDX data"
        )
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims)


def read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``expected_dims`` dimensions (3: images, 1: labels)."""
    return parse_idx(read_bytes(path), path, expected_dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; the two files do not belong together"
        )
    return images, labels
