"""Arrays a user already has, in a .npz file (read with allow_pickle=False)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import register, to_image_set
from genlab.errors import DataError

LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("images", "labels", None, None))


@register(
    "npz",
    "arrays in a .npz file (data.path): x_train[, y_train, x_test, y_test] or images[, labels]",
)
def _npz(cfg: DataConfig, progress: bool) -> tuple[ImageSet, ImageSet | None]:
    if not cfg.path:
        raise DataError("data.name npz needs data.path: the .npz file")
    path = Path(cfg.path).expanduser()
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    with archive:
        keys = set(archive.files)
        for x_key, y_key, xt_key, yt_key in LAYOUTS:
            if x_key in keys:
                train = _image_set(archive, path, x_key, y_key)
                test = _image_set(archive, path, xt_key, yt_key) if xt_key in keys else None
                return train, test
    raise DataError(
        f"{path}: holds {', '.join(sorted(keys)) or 'no arrays'}; expected x_train "
        "(and optionally y_train, x_test, y_test) or images (and optionally labels)"
    )


def _image_set(archive, path: Path, x_key: str, y_key: str | None) -> ImageSet:  # noqa: ANN001
    try:
        x = archive[x_key]
    except ValueError as exc:
        raise DataError(f"{path}: array {x_key!r} cannot be read without pickle ({exc})") from None
    where = f"{path}: array {x_key!r}"
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[1] not in (1, 3)) or x.shape[0] == 0:
        raise DataError(
            f"{where} has shape {x.shape}; expected (N, H, W), (N, H, W, C) or "
            "(N, C, H, W) with C = 1 or 3 and N > 0"
        )
    if x.dtype == np.uint8:
        images = x
    elif np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer):
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise DataError(f"{where} contains {bad} NaN or infinite values")
        low, high = float(x.min()), float(x.max())
        if np.issubdtype(x.dtype, np.floating):
            if low < 0 or high > 1:
                raise DataError(f"{where}: float values must lie in [0, 1], found [{low}, {high}]")
            images = np.round(x * 255.0).astype(np.uint8)
        else:
            if low < 0 or high > 255:
                raise DataError(
                    f"{where}: integer values must lie in [0, 255], found [{low}, {high}]"
                )
            images = x.astype(np.uint8)
    else:
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 or floats in [0, 1]")
    labels = None
    if y_key is not None and y_key in archive.files:
        labels = np.asarray(archive[y_key])
        if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{path}: array {y_key!r} has shape {labels.shape} and dtype "
                f"{labels.dtype}; expected {images.shape[0]} integer labels"
            )
    return to_image_set(images, labels)
