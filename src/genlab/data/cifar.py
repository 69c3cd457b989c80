"""CIFAR-10 from its python-version batches, read without executing any pickle code."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.locate import locate_files, search_roots
from genlab.data.sources import register, to_image_set
from genlab.errors import DataError

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays; refuses every other global."""

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise DataError(
            f"{self.source}: refusing to load {module}.{name}; a CIFAR-10 batch holds "
            "only arrays, so this file is not a genuine one"
        )


def read_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayOnlyUnpickler(data, source).load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except DataError:
        raise
    except Exception as exc:  # any malformed content
        raise DataError(f"{source}: not a CIFAR-10 python batch ({exc})") from None
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{source}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _from_folder(folder: Path) -> dict[str, bytes]:
    out = {}
    for name in BATCHES:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{folder}: CIFAR-10 folder lacks {name}")
        out[str(path)] = path.read_bytes()
    return out


def _from_archive(path: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [b for b in BATCHES if b not in members]
            if missing:
                raise DataError(f"{path}: archive lacks {', '.join(missing)}")
            return {f"{path}:{b}": tar.extractfile(members[b]).read() for b in BATCHES}  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable cifar-10-python.tar.gz ({exc})") from None


@register("cifar10", "CIFAR-10, 32x32 RGB, 50000 + 10000 (cifar-10-python.tar.gz)")
def _cifar10(cfg: DataConfig, progress: bool) -> tuple[ImageSet, ImageSet]:
    for root in search_roots(cfg):
        for folder in (root / "cifar10" / "cifar-10-batches-py", root / "cifar-10-batches-py"):
            if folder.is_dir():
                return _split(_from_folder(folder))
    archive = locate_files(cfg, "cifar10", ("archive",), progress=progress)["archive"]
    return _split(_from_archive(archive))


def _split(batches: dict[str, bytes]) -> tuple[ImageSet, ImageSet]:
    parsed = [read_batch(data, source) for source, data in batches.items()]
    train_x = np.concatenate([p[0] for p in parsed[:5]])
    train_y = np.concatenate([p[1] for p in parsed[:5]])
    return to_image_set(train_x, train_y), to_image_set(*parsed[5])
