"""Any directory of PNG/JPEG images; sub-folders at the top level are classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from genlab.config import DataConfig
from genlab.data.images import ImageSet
from genlab.data.sources import register, to_image_set
from genlab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _visible_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


@register("folder", "a directory of PNG/JPEG images (data.path); sub-folders are classes")
def _folder(cfg: DataConfig, progress: bool) -> tuple[ImageSet, None]:
    if not cfg.path:
        raise DataError("data.name folder needs data.path: the directory of images")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such directory of images")
    files = _visible_files(root)
    if not files:
        raise DataError(f"{root}: the folder holds no images (expected .png/.jpg/.jpeg files)")
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                f"{path}: not an image file (expected .png, .jpg or .jpeg); "
                "remove it or point data.path at a folder of images only"
            )
    classes = sorted(
        {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    )
    loose = [p for p in files if len(p.relative_to(root).parts) == 1]
    labelled = bool(classes) and not loose
    pictures = [_read(path, cfg) for path in files]
    modes = {p.mode for p in pictures}
    mode = "L" if cfg.grayscale or modes == {"L"} else "RGB"
    arrays = []
    expected = None
    for path, picture in zip(files, pictures, strict=True):
        array = np.asarray(picture.convert(mode), dtype=np.uint8)
        if expected is None:
            expected = array.shape
        elif array.shape != expected:
            raise DataError(
                f"{path}: image is {array.shape[1]}x{array.shape[0]} but the first "
                f"one is {expected[1]}x{expected[0]}; set data.image_size to resize all"
            )
        arrays.append(array)
    images = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    if images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)
    labels = None
    if labelled:
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[p.relative_to(root).parts[0]] for p in files])
    return to_image_set(images, labels), None


def _read(path: Path, cfg: DataConfig) -> Image.Image:
    try:
        with Image.open(path) as picture:
            picture.load()
            if cfg.image_size is not None:
                picture = picture.convert(
                    "L" if cfg.grayscale else "RGB" if picture.mode != "L" else "L"
                )
                picture = picture.resize(
                    (cfg.image_size, cfg.image_size), Image.Resampling.BILINEAR
                )
            elif picture.mode not in ("L", "RGB"):
                picture = picture.convert("L" if cfg.grayscale else "RGB")
            return picture.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot decode the image ({exc})") from None
