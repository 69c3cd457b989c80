"""Image grids: tiles of (N, C, H, W) images in [0, 1], written as PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from genlab.fileio import atomic_path

MIN_TILE = 32  # small images (8x8 digits) are enlarged to at least this many pixels


def grid_bytes(n: int, shape: tuple[int, int, int], ncol: int | None = None, pad: int = 2) -> int:
    """About the most memory :func:`save_grid` holds for n images of ``shape`` (C, H, W):
    the float canvas, the enlarged float tiles (twice, while they are enlarged), the uint8
    array, PIL's image and its encoder's copy."""
    c, h, w = shape
    scale = max(1, math.ceil(MIN_TILE / max(h, w)))
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = math.ceil(n / ncol)
    canvas = c * (nrow * (h * scale + pad) + pad) * (ncol * (w * scale + pad) + pad)
    return canvas * (4 + 1 + 1 + 1) + 2 * 4 * n * c * h * w * scale * scale


def grid_array(images: torch.Tensor, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one uint8 (rows*H', cols*W', C) array."""
    images = images.detach().cpu().float().clamp(0, 1)
    n, c, h, w = images.shape
    scale = max(1, math.ceil(MIN_TILE / max(h, w)))
    if scale > 1:
        images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        h, w = h * scale, w * scale
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = math.ceil(n / ncol)
    canvas = torch.ones(c, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = images[i]
    array = (canvas * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()  # (H', W', C)
    return array


def labelled_rows(picture: Image.Image, rows: list[str] | tuple[str, ...]) -> Image.Image:
    """``picture`` (a grid of ``len(rows)`` equal rows) with each row's name written in a
    margin on its left."""
    font = ImageFont.load_default()
    width = int(max(font.getlength(name) for name in rows)) + 8
    labelled = Image.new(picture.mode, (picture.width + width, picture.height), "white")
    labelled.paste(picture, (width, 0))
    draw = ImageDraw.Draw(labelled)
    row_height = picture.height / len(rows)
    for i, name in enumerate(rows):
        _, top, _, bottom = font.getbbox(name)
        y = (i + 0.5) * row_height - (bottom + top) / 2
        draw.text((4, y), name, fill="black", font=font)
    return labelled


def save_grid(
    images: torch.Tensor,
    path: str | Path,
    ncol: int | None = None,
    *,
    text: dict[str, str] | None = None,
    rows: list[str] | tuple[str, ...] = (),
) -> Path:
    """Write images (N, C, H, W) in [0, 1] as a PNG grid; the file appears atomically.
    ``text`` goes in the PNG's text chunks (which run and weights drew it); ``rows`` names
    each row of the grid in a margin on its left (a per-class grid)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = grid_array(images, ncol)
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    if rows:
        picture = labelled_rows(picture, rows)
    with atomic_path(path) as tmp:
        info = PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        picture.save(tmp, format="PNG", pnginfo=info)
    return path
