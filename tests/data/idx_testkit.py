"""Shared helpers for the data tests: IDX writers and isolation from the real search roots."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from genlab.data import locate

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """``array`` (uint8) as IDX bytes; ``magic`` overrides the 4-byte magic number."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | array.ndim
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.tobytes()


def write_bytes(path: Path, data: bytes, *, gz: bool, mtime: int = 0, level: int = 9) -> Path:
    """Write ``data`` to ``path`` (gzipped when ``gz``), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=level, mtime=mtime) if gz else data)
    return path


def write_idx(path: Path, array: np.ndarray, *, gz: bool | None = None) -> Path:
    """Write ``array`` as IDX, gzipped when ``gz`` (default: when the name ends in .gz)."""
    return write_bytes(path, idx_bytes(array), gz=path.suffix == ".gz" if gz is None else gz)


def idx_arrays(n_train: int, n_test: int, *, seed: int = 0, side: int = 4) -> dict[str, np.ndarray]:
    """The four arrays of a tiny IDX dataset (side x side images), keyed by file stem."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_idx_dataset(
    folder: Path, n_train: int, n_test: int = 3, *, seed: int = 0, gz: bool = True
) -> dict[str, np.ndarray]:
    """Write a tiny four-file IDX dataset into ``folder``; return its arrays by stem."""
    arrays = idx_arrays(n_train, n_test, seed=seed)
    for stem, array in arrays.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array, gz=gz)
    return arrays


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, system: bool = True) -> dict:
    """Hide the real $GENLAB_DATA, user cache and (with ``system``) /usr/share/datasets."""
    roots = {
        "cache_home": tmp_path / "iso-xdg-cache",
        "system": tmp_path / "iso-system",
    }
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(roots["cache_home"]))
    if system:
        monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (roots["system"],))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return roots


def check_message(error: BaseException, *names: str | Path) -> str:
    """The error's message, after checking it is one line and names every one of ``names``."""
    message = str(error)
    assert "\n" not in message, message
    for name in names:
        text = name.name if isinstance(name, Path) else name
        assert text in message, f"{text!r} not in {message!r}"
    return message
