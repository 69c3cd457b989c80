"""CIFAR-10 from the python-version batches, read with a restricted unpickler.

The batches are pickles written by Python 2 (``{b'data': uint8 (10000, 3072), b'labels':
[...]}``). Unpickling can run arbitrary code, so :class:`ArrayUnpickler` resolves only the
globals numpy arrays need and refuses everything else.
"""

from __future__ import annotations

import codecs
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from genlab.config import DataConfig
from genlab.data.images import ImageSet, check_labels
from genlab.data.locate import locate
from genlab.data.sources import Loaded, register_source
from genlab.errors import DataError

if TYPE_CHECKING:  # mypy sees one definition; at run time the import depends on numpy's version
    from numpy._core.multiarray import _reconstruct
else:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 1.26
        from numpy.core.multiarray import _reconstruct

FOLDER = "cifar-10-batches-py"
MAX_BATCH_BYTES = 64 << 20  # a real batch pickle is 31 MB
MAX_ARCHIVE_BYTES = 1 << 30  # the members of the real archive add up to 178 MB
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2; only latin-1 is allowed."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin-1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers and numpy arrays."""

    def __init__(self, file: IO[bytes], source: str) -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refusing to unpickle {module}.{name} (only numpy arrays are "
                f"allowed in CIFAR batches); the file is corrupt or malicious"
            ) from None


def load_batch(stream: IO[bytes], source: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) from one pickled batch."""
    try:
        batch = ArrayUnpickler(stream, source).load()
    except DataError:
        raise
    except Exception as error:  # unpickling malformed data can raise almost anything
        raise DataError(f"{source}: not a readable CIFAR batch ({error})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{source}: not a CIFAR batch (expected a dict with b'data', b'labels')")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{source}: b'data' is not a uint8 (N, 3072) array")
    if data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise DataError(
            f"{source}: b'data' has shape {data.shape} and b'labels' {labels.shape}; expected "
            f"(N, 3072) and (N,)"
        )
    if labels.dtype.kind not in "iu":
        raise DataError(f"{source}: b'labels' are not integers")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _from_folder(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    batches = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        path = folder / name
        if path.is_file() and path.stat().st_size > MAX_BATCH_BYTES:
            raise DataError(f"{path}: {_too_big(path.stat().st_size)}")
        try:
            with path.open("rb") as stream:
                batches[name] = load_batch(stream, str(path))
        except OSError as error:
            reason = error.strerror or error
            raise DataError(f"{path}: cannot read CIFAR batch ({reason})") from None
    return batches


def _from_tar(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    wanted = {f"{FOLDER}/{name}": name for name in (*TRAIN_BATCHES, TEST_BATCH)}
    batches = {}
    try:
        with tarfile.open(path, "r:*") as archive:
            total = 0
            for member in archive:
                total += member.size
                if total > MAX_ARCHIVE_BYTES:
                    raise DataError(
                        f"{path}: the archive holds more than {MAX_ARCHIVE_BYTES >> 20} MiB, "
                        "far more than CIFAR-10's 178 MB; it is not the CIFAR-10 archive"
                    )
                if member.name in wanted and member.isfile() and member.size > MAX_BATCH_BYTES:
                    raise DataError(f"{path}:{member.name}: {_too_big(member.size)}")
                if member.name in wanted and member.isfile():
                    stream = archive.extractfile(member)
                    assert stream is not None
                    source = f"{path}:{member.name}"
                    batches[wanted[member.name]] = load_batch(stream, source)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: corrupt or truncated archive ({error}); download it again"
        ) from None
    missing = [m for m, n in wanted.items() if n not in batches]
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)}")
    return batches


def _too_big(size: int) -> str:
    return (
        f"{size:,} bytes, more than a CIFAR-10 batch can be (at most "
        f"{MAX_BATCH_BYTES >> 20} MiB); the file is not a CIFAR-10 batch"
    )


@register_source("cifar10", "CIFAR-10 colour images, 32x32 RGB, 50k train / 10k test")
def load_cifar10(cfg: DataConfig, progress: bool) -> Loaded:
    (path,) = locate(cfg, "cifar10", progress=progress)
    batches = _from_folder(path) if path.is_dir() else _from_tar(path)
    train = [batches[name] for name in TRAIN_BATCHES]
    images = np.concatenate([b[0] for b in train])
    labels = np.concatenate([b[1] for b in train])
    test_images, test_labels = batches[TEST_BATCH]
    check_labels(labels, CLASSES, f"{path} (training batches)")
    check_labels(test_labels, CLASSES, f"{path} ({TEST_BATCH})")
    return (
        ImageSet.from_numpy(images, labels, CLASSES),
        ImageSet.from_numpy(test_images, test_labels, CLASSES),
    )


# the label names of batches.meta (Krizhevsky 2009), in label order
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
