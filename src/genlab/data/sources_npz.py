"""Images from a NumPy ``.npz`` file (``data.path``), loaded without pickle.

Keys: ``x_train`` [+ ``y_train``] and optionally ``x_test`` [+ ``y_test``], or ``images``
[+ ``labels``] (no official test split). Image arrays are (N, H, W), (N, H, W, C) or
(N, C, H, W) with C in {1, 3}; uint8 (integer arrays within 0..255 are accepted too) or float
in [0, 1], stored as round(x * 255).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import Loaded, register_source, required_path
from genlab.errors import DataError

EXPECTED_KEYS = "x_train [+ y_train, x_test, y_test] or images [+ labels]"


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


def _image_set(arrays: Mapping[str, np.ndarray], path: Path, x: str, y: str) -> ImageSet:
    images = to_nchw(arrays[x], path, x)
    labels = None
    if y in arrays:
        labels = to_labels(arrays[y], images.shape[0], path, y, x)
    return ImageSet.from_numpy(images, labels)


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(
                f"{path}: a single .npy array, not an .npz archive; save the arrays with "
                "np.savez(path, x_train=..., y_train=...) or np.savez(path, images=...)"
            )
        try:
            return {key: loaded[key] for key in loaded.files}
        finally:
            loaded.close()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (data.path must name an .npz file)") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz file without pickles ({error})") from None


@register_source("npz", "images from a NumPy .npz file (data.path): x_train/x_test or images")
def load_npz(cfg: DataConfig, progress: bool) -> Loaded:
    path = Path(required_path(cfg, "an .npz file")).expanduser()
    arrays = _read(path)
    if "x_train" in arrays:
        train = _image_set(arrays, path, "x_train", "y_train")
        test = _image_set(arrays, path, "x_test", "y_test") if "x_test" in arrays else None
    elif "images" in arrays:
        train, test = _image_set(arrays, path, "images", "labels"), None
    else:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(f"{path}: no image arrays (keys found: {found}; expected {EXPECTED_KEYS})")
    if test is not None and test.shape != train.shape:
        raise DataError(
            f"{path}: x_test images are {test.shape} (C, H, W) but x_train images are "
            f"{train.shape}; both splits need one shape"
        )
    if test is not None and (test.labels is None) != (train.labels is None):
        raise DataError(f"{path}: give labels for both splits (y_train and y_test) or neither")
    return train, test
