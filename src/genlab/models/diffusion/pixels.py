"""Between genlab's images (B, C, H, W) of 8-bit levels x = k / 255 in [0, 1] and the model's
space [-1, 1] (Ho et al. 2020, section 3.3: "data consisting of integers in {0, ..., 255}
scaled linearly to [-1, 1]").

- :func:`to_signed`: the grid itself, z = 2k / 255 - 1 (the diffusion bound's discrete data);
- :func:`dequantise_signed`: z = 2y - 1 with y = (k + u) / 256, u ~ U[0, 1)^D (Theis et al.
  2016), a continuous variable whose density flow matching models; log p_y(y) = log p_z(z) +
  D log 2 by the change of variables;
- :func:`quantise_grid` / :func:`quantise_bins`: the inverse maps back to k / 255, nearest
  grid point for the first, the bin [k / 256, (k + 1) / 256) holding y for the second.
"""

from __future__ import annotations

import torch

from genlab import noise

LEVELS = 256


def levels_of(x: torch.Tensor) -> torch.Tensor:
    """The integer levels k (long) of images x = k / 255."""
    return torch.round(x * (LEVELS - 1)).clamp(0, LEVELS - 1).long()


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """z = 2k / 255 - 1 in [-1, 1] for images x = k / 255 (B, C, H, W)."""
    return levels_of(x).to(x.dtype) * (2.0 / (LEVELS - 1)) - 1.0


def dequantise_signed(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """z = 2 (k + u) / 256 - 1 with u ~ U[0, 1)^D drawn from ``generator``."""
    u = noise.uniform(x.shape, generator, x.dtype).to(x.device)
    return (levels_of(x).to(x.dtype) + u) * (2.0 / LEVELS) - 1.0


def quantise_grid(z: torch.Tensor) -> torch.Tensor:
    """Images k / 255 from z in model space: the nearest level of the grid 2k / 255 - 1."""
    k = torch.round((z + 1.0) * ((LEVELS - 1) / 2.0)).clamp(0, LEVELS - 1)
    return k / (LEVELS - 1)


def quantise_bins(z: torch.Tensor) -> torch.Tensor:
    """Images k / 255 from z = 2y - 1: the level whose bin [k / 256, (k + 1) / 256) holds y."""
    k = torch.floor((z + 1.0) * (LEVELS / 2.0)).clamp(0, LEVELS - 1)
    return k / (LEVELS - 1)
