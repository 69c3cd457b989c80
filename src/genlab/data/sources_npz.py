"""Images from a NumPy ``.npz`` file (``data.path``), loaded without pickle.

Keys: ``x_train`` [+ ``y_train``] and optionally ``x_test`` [+ ``y_test``], or ``images``
[+ ``labels``] (no official test split). Image arrays are (N, H, W), (N, H, W, C) or
(N, C, H, W) with C in {1, 3}; uint8 (integer arrays within 0..255 are accepted too) or float
in [0, 1], stored as round(x * 255).
Each array's .npy header is read first: object dtypes (pickles), shapes of more than
``images.MAX_ARRAY_BYTES`` and headers that disagree with the member's size are refused
before anything is allocated.
"""

from __future__ import annotations

import lzma
import math
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import numpy.lib.format as npy

from genlab.config import DataConfig
from genlab.data import images
from genlab.data.images import ImageSet, numbered_classes
from genlab.data.sources import Loaded, register_source, required_path
from genlab.errors import DataError

EXPECTED_KEYS = "x_train [+ y_train, x_test, y_test] or images [+ labels]"
TRAIN_TEST_KEYS = ("x_train", "y_train", "x_test", "y_test")
SINGLE_KEYS = ("images", "labels")
# What reading a malformed zip or .npy member raises (zipfile, zlib, lzma, struct, numpy).
_ZIP_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    OverflowError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    struct.error,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
)


def to_nchw(array: np.ndarray, path: Path, key: str) -> np.ndarray:
    """``array`` as uint8 (N, C, H, W), or a DataError naming the file and key."""
    where = f"{path}: {key}"
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] in (1, 3):
        pass
    elif array.ndim == 4 and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    else:
        raise DataError(
            f"{where} has shape {array.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
            f"with C in {{1, 3}}"
        )
    if array.shape[0] == 0 or 0 in array.shape[2:]:
        raise DataError(f"{where} holds no images (shape {array.shape})")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise DataError(f"{where} contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise DataError(
                f"{where} has values in [{low:g}, {high:g}]; float images must lie in [0, 1] "
                f"(or store uint8 0..255)"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    if array.dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise DataError(f"{where} has integer values in [{low}, {high}]; expected 0..255")
        return array.astype(np.uint8)
    raise DataError(f"{where} has dtype {array.dtype}; expected uint8 or float in [0, 1]")


def to_labels(array: np.ndarray, count: int, path: Path, key: str, images_key: str) -> np.ndarray:
    """``array`` as int64 (count,), or a DataError naming the file and key."""
    if array.ndim != 1 or array.shape[0] != count:
        raise DataError(
            f"{path}: {key} has shape {array.shape} but {images_key} holds {count} images; "
            f"expected ({count},)"
        )
    if array.dtype.kind not in "iu":
        raise DataError(f"{path}: {key} has dtype {array.dtype}; labels must be integers")
    return array.astype(np.int64)


def _image_set(
    arrays: Mapping[str, np.ndarray], path: Path, x: str, y: str, classes: int
) -> ImageSet:
    images = to_nchw(arrays[x], path, x)
    labels = None
    if y in arrays:
        labels = to_labels(arrays[y], images.shape[0], path, y, x)
    return ImageSet.from_numpy(
        images, labels, None if labels is None else numbered_classes(max(classes, 1))
    )


def _class_count(arrays: Mapping[str, np.ndarray], path: Path, *keys: str) -> int:
    """The number of classes the label arrays ``keys`` index: one more than the largest
    label (labels are named by number); a negative label is refused."""
    largest = -1
    for key in keys:
        if key in arrays and arrays[key].size and arrays[key].dtype.kind in "iu":
            low, high = int(arrays[key].min()), int(arrays[key].max())
            if low < 0:
                raise DataError(f"{path}: {key} holds the label {low}; labels must be >= 0")
            largest = max(largest, high)
    return largest + 1


def _header(member: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy member declares, checked before any data is read."""
    version = npy.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(member)
    else:
        raise DataError(f"{where}: .npy format version {version} is not supported; use 1.0 or 2.0")
    if dtype.hasobject:
        raise DataError(
            f"{where} holds Python objects (dtype {dtype}), which genlab never unpickles; "
            f"store numeric arrays (uint8 or float images, integer labels)"
        )
    if dtype.kind not in "iuf" or dtype.itemsize == 0:
        raise DataError(
            f"{where} has dtype {dtype}; expected uint8 or float in [0, 1] (integer labels)"
        )
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: the .npy header declares a negative shape {shape}")
    return shape, dtype


def _array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str) -> np.ndarray:
    """One member's array, refused from its header alone when too big or inconsistent."""
    where = f"{path}: {key}"
    with archive.open(info) as member:
        shape, dtype = _header(member, where)
        offset = member.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > images.MAX_ARRAY_BYTES:
        raise DataError(
            f"{where} declares shape {shape} of {dtype} ({images.byte_size(nbytes)}), more than "
            f"the {images.byte_size(images.MAX_ARRAY_BYTES)} genlab reads from one array; store "
            f"fewer or smaller images (uint8 takes a quarter of float32)"
        )
    if info.file_size != offset + nbytes:
        raise DataError(
            f"{where}: the member holds {info.file_size - offset} data bytes but its header "
            f"declares shape {shape} of {dtype} ({nbytes} bytes); the file is corrupt"
        )
    with archive.open(info) as member:
        array: np.ndarray = npy.read_array(member, allow_pickle=False)
    return array


def _read(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The image/label arrays of the layout ``path`` holds, and every key it holds."""
    where = str(path)
    if path.exists() and not path.is_file():  # a FIFO or device could block or never end
        raise DataError(f"{path}: not a regular file (data.path must name an .npz file)")
    try:
        with path.open("rb") as stream:
            magic = stream.read(6)
        if magic == b"\x93NUMPY":
            raise DataError(
                f"{path}: a single .npy array, not an .npz archive; save the arrays with "
                "np.savez(path, x_train=..., y_train=...) or np.savez(path, images=...)"
            )
        if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            raise DataError(
                f"{path}: not an .npz file (no zip signature); save the arrays with np.savez"
            )
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            layout = TRAIN_TEST_KEYS if "x_train" in members else SINGLE_KEYS
            arrays = {}
            for key in (k for k in layout if k in members):
                where = f"{path}: {key}"
                arrays[key] = _array(archive, members[key], path, key)
        return arrays, sorted(members)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (data.path must name an .npz file)") from None
    except _ZIP_ERRORS as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"{where}: not a readable .npz array without pickles ({reason}); save the arrays "
            f"again with np.savez"
        ) from None


@register_source("npz", "images from a NumPy .npz file (data.path): x_train/x_test or images")
def load_npz(cfg: DataConfig, progress: bool) -> Loaded:
    path = Path(required_path(cfg, "an .npz file")).expanduser()
    arrays, keys = _read(path)
    if "x_train" in arrays:
        count = _class_count(arrays, path, "y_train", "y_test")
        train = _image_set(arrays, path, "x_train", "y_train", count)
        test = _image_set(arrays, path, "x_test", "y_test", count) if "x_test" in arrays else None
    elif "images" in arrays:
        count = _class_count(arrays, path, "labels")
        train, test = _image_set(arrays, path, "images", "labels", count), None
    else:
        found = ", ".join(keys) or "none"
        raise DataError(f"{path}: no image arrays (keys found: {found}; expected {EXPECTED_KEYS})")
    if test is not None and test.shape != train.shape:
        raise DataError(
            f"{path}: x_test images are {test.shape} (C, H, W) but x_train images are "
            f"{train.shape}; both splits need one shape"
        )
    if test is not None and (test.labels is None) != (train.labels is None):
        raise DataError(f"{path}: give labels for both splits (y_train and y_test) or neither")
    return train, test
