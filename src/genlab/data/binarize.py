"""Exact Bernoulli binarisation of uint8 grey levels: pixel = 1 with probability u / 255.

Each pixel draws a random byte ``r``; bytes equal to 255 are redrawn (exact rejection), so
``r`` is uniform on 0..254 and ``P(r < u) = u / 255`` exactly (0 for u = 0, 1 for u = 255).
The bytes come from full-range int64 draws (eight pixels per draw), about twice as fast as
``torch.rand``, which spends a 32-bit draw per pixel.
"""

from __future__ import annotations

import numpy as np
import torch

_INT64_MIN = -(2**63)
_CHUNK = 1 << 22  # pixels per draw when binarising a whole split (bounds temporary memory)


def _random_bytes(count: int, generator: torch.Generator) -> torch.Tensor:
    words = torch.empty((count + 7) // 8, dtype=torch.int64)
    words.random_(_INT64_MIN, None, generator=generator)  # every 64-bit pattern equally likely
    return words.view(torch.uint8)[:count]


def uniform_below_255(count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` uint8 values uniform on 0..254, drawn with ``generator``."""
    noise = _random_bytes(count, generator)
    values = noise.numpy()  # shares memory; numpy finds the few 255s much faster than torch
    redraw = np.flatnonzero(values == 255)
    while redraw.size:
        fresh = _random_bytes(redraw.size, generator).numpy()
        values[redraw] = fresh
        redraw = redraw[fresh == 255]
    return noise


def bernoulli_float(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A float32 0.0/1.0 tensor shaped like the uint8 ``images``: 1 with probability u / 255."""
    noise = uniform_below_255(images.numel(), generator).view(images.shape)
    return torch.lt(noise, images, out=torch.empty(images.shape, dtype=torch.float32))


def bernoulli_uint8(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A uint8 0/1 tensor shaped like ``images``, sampled chunk by chunk with ``generator``."""
    flat = images.reshape(-1)
    out = torch.empty(flat.shape, dtype=torch.uint8)
    for start in range(0, flat.numel(), _CHUNK):
        chunk = flat[start : start + _CHUNK]
        noise = uniform_below_255(chunk.numel(), generator)
        out[start : start + _CHUNK] = torch.lt(noise, chunk).view(torch.uint8)
    return out.view(images.shape)


def threshold_uint8(images: torch.Tensor, threshold: float) -> torch.Tensor:
    """uint8 0/1: 1 where ``u / 255 > threshold`` (computed in float32, as the model sees u)."""
    out = torch.empty(images.shape, dtype=torch.uint8)
    flat, flat_out = images.reshape(-1), out.view(-1)
    for start in range(0, flat.numel(), _CHUNK):
        chunk = flat[start : start + _CHUNK].float().div_(255.0)
        flat_out[start : start + _CHUNK] = chunk.gt_(threshold).to(torch.uint8)
    return out
