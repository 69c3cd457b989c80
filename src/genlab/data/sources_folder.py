"""A folder of PNG/JPEG images (searched recursively), optionally one subfolder per class.

Labels: when the top level holds subfolders with images, each image's label is the index of
its top-level subfolder among those, sorted by name; otherwise there are no labels.
Channels: ``data.grayscale`` converts to one channel ('L'); otherwise images become RGB,
except that a folder whose images are all grey ('1', 'L', 'LA', 'I', 'I;16', 'F') keeps one
channel. ``data.image_size`` resizes every image to a square (bilinear, antialiased).
Hidden files and folders (names starting with '.') are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import Loaded, register_source, required_path
from genlab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def list_files(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``, in sorted (deterministic) order."""
    files: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        files.extend(Path(folder) / n for n in sorted(names) if not n.startswith("."))
    return files


def _open(path: Path) -> Image.Image:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{path}: not a PNG/JPEG image (the folder dataset reads .png, .jpg and .jpeg); "
            f"move it out of the folder"
        )
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot read image ({error})") from None


def _labels(root: Path, files: list[Path]) -> np.ndarray | None:
    tops = [f.relative_to(root).parts for f in files]
    if all(len(parts) == 1 for parts in tops):
        return None
    loose = next((root / p[0] for p in tops if len(p) == 1), None)
    if loose is not None:
        raise DataError(
            f"{loose}: image at the top level beside class subfolders; move it into a class "
            f"subfolder (labels come from the subfolder names)"
        )
    classes = sorted({parts[0] for parts in tops})
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[parts[0]] for parts in tops], dtype=np.int64)


def _to_array(image: Image.Image, mode: str, size: int | None) -> np.ndarray:
    if image.mode != mode:
        if image.mode.startswith("I") or image.mode == "F":
            image = image.convert("L")  # 16/32-bit grey: values above 255 saturate
        image = image.convert(mode)
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@register_source("folder", "a folder of PNG/JPEG images (data.path), class subfolders optional")
def load_folder(cfg: DataConfig, progress: bool) -> Loaded:
    root = Path(required_path(cfg, "a folder of PNG/JPEG images")).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (data.path must name a folder of images)")
    files = list_files(root)
    if not files:
        raise DataError(f"{root}: no PNG/JPEG images found (searched recursively)")
    images = [_open(path) for path in files]
    labels = _labels(root, files)
    grey = cfg.grayscale or all(image.mode in GREY_MODES for image in images)
    mode = "L" if grey else "RGB"
    if cfg.image_size is None:
        expected = images[0].size
        for path, image in zip(files, images, strict=True):
            if image.size != expected:
                raise DataError(
                    f"{path}: image is {image.size[0]}x{image.size[1]} but {files[0].name} is "
                    f"{expected[0]}x{expected[1]}; set data.image_size to resize all images to "
                    f"one square size"
                )
    arrays = [_to_array(image, mode, cfg.image_size) for image in images]
    return ImageSet.from_numpy(np.stack(arrays), labels), None
