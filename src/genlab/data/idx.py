"""Reader for IDX files (the MNIST family's format), gzipped or raw.

Layout: a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data. Only unsigned bytes (type 0x08) are supported: images are
``0x00000803`` (N, rows, cols) and labels ``0x00000801`` (N,).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from genlab.data import images
from genlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
_KINDS = {3: "uint8 images", 1: "uint8 labels"}
_CHUNK = 1 << 20  # gzip is inflated this many bytes at a time, never more than declared


class _Readable(Protocol):
    def readinto(self, buffer: Any, /) -> int | None: ...


def _expected_magic(ndim: int | None) -> str:
    dims = [ndim] if ndim is not None else sorted(_KINDS, reverse=True)
    return " or ".join(f"0x{0x0800 + d:08x} for {_KINDS.get(d, f'{d}-d uint8')}" for d in dims)


def _read_up_to(stream: _Readable, count: int) -> np.ndarray:
    """Up to ``count`` bytes of ``stream`` (fewer at its end), read ``_CHUNK`` at a time."""
    out = np.empty(count, dtype=np.uint8)
    view, filled = out.data, 0
    while filled < count:
        got = stream.readinto(view[filled : filled + min(_CHUNK, count - filled)])
        if not got:
            break
        filled += got
    return out[:filled]


def _parse(stream: _Readable, path: Path, ndim: int | None, size: int | None) -> np.ndarray:
    """The IDX array in ``stream``: ``size`` is the byte count when known (raw files)."""
    head = _read_up_to(stream, 4).tobytes()
    if len(head) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, no 4-byte header)")
    magic = int.from_bytes(head, "big")
    type_code, dims_count = head[2], head[3]
    wanted = _expected_magic(ndim)
    if head[0] or head[1] or dims_count == 0 or (ndim is not None and dims_count != ndim):
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic:08x}, expected {wanted})")
    if type_code != 0x08:
        raise DataError(
            f"{path}: IDX data type 0x{type_code:02x} is not supported "
            f"(magic number 0x{magic:08x}, expected {wanted})"
        )
    header = 4 + 4 * dims_count
    raw_dims = _read_up_to(stream, header - 4).tobytes()
    if len(raw_dims) < header - 4:
        raise DataError(
            f"{path}: truncated IDX file (header needs {header} bytes, file has "
            f"{4 + len(raw_dims)})"
        )
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(dims_count))
    shape_text = "x".join(map(str, dims))
    if 0 in dims:
        raise DataError(f"{path}: IDX file declares an empty shape {shape_text}")
    count = math.prod(dims)  # exact: np.prod would wrap around for absurd headers
    if size is not None and size - header < count:
        raise DataError(
            f"{path}: truncated IDX file (shape {shape_text} needs {count} data bytes, "
            f"found {size - header}); download it again"
        )
    if count > images.MAX_ARRAY_BYTES:
        raise DataError(
            f"{path}: IDX header declares shape {shape_text} ({images.byte_size(count)}), more "
            f"than the {images.byte_size(images.MAX_ARRAY_BYTES)} genlab reads from one file; "
            f"the file is corrupt or not an IDX dataset"
        )
    if size is not None and size - header > count:
        raise DataError(
            f"{path}: {size - header - count} bytes of trailing garbage after the {shape_text} "
            f"IDX data; the file is corrupt, download it again"
        )
    data = _read_up_to(stream, count)
    if len(data) < count:
        raise DataError(
            f"{path}: truncated IDX file (shape {shape_text} needs {count} data bytes, "
            f"found {len(data)}); download it again"
        )
    extra = len(_read_up_to(stream, _CHUNK + 1))  # inflates at most 1 MiB past the data
    if extra:
        amount = f"more than {_CHUNK}" if extra > _CHUNK else str(extra)
        raise DataError(
            f"{path}: {amount} bytes of trailing garbage after the {shape_text} IDX data; "
            f"the file is corrupt, download it again"
        )
    return data.reshape(dims)


def read_idx(path: Path | str, *, ndim: int | None = None) -> np.ndarray:
    """The uint8 array stored in an IDX file; ``ndim`` (3 images, 1 labels) checks its kind.

    Gzip (detected by its magic bytes, whatever the name) is inflated in bounded chunks and
    never past the size the IDX header declares, so a gzip bomb is refused after at most
    ``MAX_ARRAY_BYTES`` (and usually far less) of output.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO or device could block or never end
        raise DataError(f"{path}: not a regular file; an IDX dataset is a file")
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if not compressed:
                return _parse(raw, path, ndim, os.fstat(raw.fileno()).st_size)
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    return _parse(stream, path, ndim, None)
            except (OSError, EOFError, zlib.error) as error:
                raise DataError(
                    f"{path}: corrupt or truncated gzip data ({error}); delete it and download "
                    f"it again"
                ) from None
    except OSError as error:
        raise DataError(f"{path}: cannot read file ({error.strerror or error})") from None


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
