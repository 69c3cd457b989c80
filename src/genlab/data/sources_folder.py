"""A folder of PNG/JPEG images (searched recursively), optionally one subfolder per class.

Labels: when the top level holds subfolders with images, each image's label is the index of
its top-level subfolder among those, sorted by name; otherwise there are no labels.
Channels: ``data.grayscale`` converts to one channel ('L'); otherwise images become RGB,
except that a folder whose images are all grey ('1', 'L', 'LA', 'I', 'I;16', 'F') keeps one
channel. ``data.image_size`` resizes every image to a square (bilinear, antialiased).
Hidden files and folders (names starting with '.') are ignored.
Hostile files: every header is read first and an image over ``MAX_IMAGE_PIXELS``, or a folder
whose stacked images exceed ``MAX_DATASET_BYTES``, is refused before anything is decoded; then
images are decoded one at a time into the final array.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from genlab.config import DataConfig
from genlab.data.images import ImageSet, byte_size
from genlab.data.sources import Loaded, register_source, required_path
from genlab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MAX_IMAGE_PIXELS = 1 << 26  # per image (8192x8192), checked from the header before decoding
MAX_DATASET_BYTES = 8 << 30  # the stacked uint8 (N, C, H, W) images of one folder
# What PIL raises for malformed files (UnidentifiedImageError and truncation are OSErrors).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def list_files(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``, in sorted (deterministic) order."""
    files: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        files.extend(Path(folder) / n for n in sorted(names) if not n.startswith("."))
    return files


def _probe(path: Path) -> tuple[tuple[int, int], str]:
    """An image's (width, height) and mode from its header, refusing it before decoding."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{path}: not a PNG/JPEG image (the folder dataset reads .png, .jpg and .jpeg); "
            f"move it out of the folder"
        )
    with _reading(path):
        with Image.open(path) as image:
            size, mode = image.size, image.mode
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise DataError(
            f"{path}: image is {size[0]}x{size[1]} ({size[0] * size[1]} pixels), more than the "
            f"{MAX_IMAGE_PIXELS} pixels genlab decodes per image; shrink it or move it out"
        )
    return size, mode


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn whatever PIL raises for a malformed or hostile file into a one-line DataError."""
    if not path.is_file():  # a FIFO or device would block or never end
        raise DataError(f"{path}: not a regular file; move it out of the image folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(
            f"{path}: refused as a decompression bomb ({error}); shrink it or move it out"
        ) from None
    except _PIL_ERRORS as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read image ({reason})") from None


def _labels(root: Path, files: list[Path]) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """Each file's class index and the class names (its top-level subfolders, sorted)."""
    tops = [f.relative_to(root).parts for f in files]
    if all(len(parts) == 1 for parts in tops):
        return None, None
    loose = next((root / p[0] for p in tops if len(p) == 1), None)
    if loose is not None:
        raise DataError(
            f"{loose}: image at the top level beside class subfolders; move it into a class "
            f"subfolder (labels come from the subfolder names)"
        )
    classes = sorted({parts[0] for parts in tops})
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[parts[0]] for parts in tops], dtype=np.int64), tuple(classes)


def _decode(path: Path, mode: str, size: int | None, shape: tuple[int, ...]) -> np.ndarray:
    """The image at ``path`` as uint8 (C, H, W) in ``mode``, resized to ``size`` if given."""
    with _reading(path):
        with Image.open(path) as opened:
            opened.load()
            image: Image.Image = opened
            if image.mode != mode:
                if image.mode.startswith("I") or image.mode == "F":
                    image = image.convert("L")  # 16/32-bit grey: values above 255 saturate
                image = image.convert(mode)
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    if array.shape != shape:
        raise DataError(f"{path}: image decodes to shape {array.shape}, its header said {shape}")
    return array


@register_source("folder", "a folder of PNG/JPEG images (data.path), class subfolders optional")
def load_folder(cfg: DataConfig, progress: bool) -> Loaded:
    root = Path(required_path(cfg, "a folder of PNG/JPEG images")).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (data.path must name a folder of images)")
    files = list_files(root)
    if not files:
        raise DataError(f"{root}: no PNG/JPEG images found (searched recursively)")
    headers = [_probe(path) for path in files]  # sizes and modes, nothing decoded yet
    labels, classes = _labels(root, files)
    grey = cfg.grayscale or all(mode in GREY_MODES for _, mode in headers)
    mode = "L" if grey else "RGB"
    expected = headers[0][0]
    if cfg.image_size is None:
        for path, (size, _) in zip(files, headers, strict=True):
            if size != expected:
                raise DataError(
                    f"{path}: image is {size[0]}x{size[1]} but {files[0].name} is "
                    f"{expected[0]}x{expected[1]}; set data.image_size to resize all images to "
                    f"one square size"
                )
    width, height = expected if cfg.image_size is None else (cfg.image_size, cfg.image_size)
    shape = (1 if grey else 3, height, width)
    total = len(files) * math.prod(shape)
    if total > MAX_DATASET_BYTES:
        raise DataError(
            f"{root}: {len(files)} images of {shape[2]}x{shape[1]}x{shape[0]} take "
            f"{byte_size(total)}, more than the {byte_size(MAX_DATASET_BYTES)} genlab loads "
            f"from one folder; set data.image_size smaller or use fewer images"
        )
    images = np.empty((len(files), *shape), dtype=np.uint8)  # (N, C, H, W)
    for i, path in enumerate(files):
        images[i] = _decode(path, mode, cfg.image_size, shape)
    return ImageSet.from_numpy(images, labels, classes), None
