"""Reader for IDX files (the MNIST family's format), gzipped or raw.

Layout: a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data. Only unsigned bytes (type 0x08) are supported: images are
``0x00000803`` (N, rows, cols) and labels ``0x00000801`` (N,).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from genlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_KINDS = {3: "uint8 images", 1: "uint8 labels"}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic (whatever the name)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read file ({error.strerror or error})") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({error}); delete it and download it again"
        ) from None


def _expected_magic(ndim: int | None) -> str:
    dims = [ndim] if ndim is not None else sorted(_KINDS, reverse=True)
    return " or ".join(f"0x{0x0800 + d:08x} for {_KINDS.get(d, f'{d}-d uint8')}" for d in dims)


def read_idx(path: Path | str, *, ndim: int | None = None) -> np.ndarray:
    """The uint8 array stored in an IDX file; ``ndim`` (3 images, 1 labels) checks its kind."""
    path = Path(path)
    data = read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no 4-byte header)")
    magic = int.from_bytes(data[:4], "big")
    type_code, dims_count = data[2], data[3]
    wanted = _expected_magic(ndim)
    if data[0] or data[1] or dims_count == 0 or (ndim is not None and dims_count != ndim):
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic:08x}, expected {wanted})")
    if type_code != 0x08:
        raise DataError(
            f"{path}: IDX data type 0x{type_code:02x} is not supported "
            f"(magic number 0x{magic:08x}, expected {wanted})"
        )
    header = 4 + 4 * dims_count
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file (header needs {header} bytes, file has {len(data)})"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims_count))
    shape_text = "x".join(map(str, dims))
    if 0 in dims:
        raise DataError(f"{path}: IDX file declares an empty shape {shape_text}")
    count = math.prod(dims)  # exact: np.prod would wrap around for absurd headers
    body = len(data) - header
    if body < count:
        raise DataError(
            f"{path}: truncated IDX file (shape {shape_text} needs {count} data bytes, "
            f"found {body}); download it again"
        )
    if body > count:
        raise DataError(
            f"{path}: {body - count} bytes of trailing garbage after the {shape_text} IDX data"
        )
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims).copy()


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, rows, cols) and labels (N,) from two IDX files that must agree on N."""
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; both files must come from the same split"
        )
    return images, labels
