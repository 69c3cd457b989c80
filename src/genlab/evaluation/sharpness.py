"""Sharpness of images: Laplacian energy, and samples' sharpness relative to real images.

The Laplacian energy of an image is the mean over its interior pixels (all channels) of the
squared discrete Laplacian ``4 x[i,j] - x[i-1,j] - x[i+1,j] - x[i,j-1] - x[i,j+1]``: zero on a
flat image, large where intensity changes abruptly (edges, texture, pixel noise). Blurring
lowers it (a Gaussian blur damps every frequency, and the Laplacian weighs high frequencies by
their squared magnitude). The relative sharpness of a set of samples is the ratio of their
mean energy to that of real images: 1.0 is as sharp as the real data, below 1 blurrier,
above 1 sharper (or noisier) than the data. Its standard error comes from the delta method
for a ratio of two independent means.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LAPLACIAN = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def laplacian_energy(images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """(N,) mean squared Laplacian over the interior pixels of images (N, C, H, W) in [0, 1],
    in float64, computed on the images' device."""
    if images.dim() != 4 or min(images.shape[-2:]) < 3:
        raise ValueError(f"need images (N, C, H>=3, W>=3), got {tuple(images.shape)}")
    c = images.shape[1]
    kernel = _LAPLACIAN.to(images.device, torch.float64).expand(c, 1, 3, 3)
    out = []
    for chunk in images.split(batch):
        response = F.conv2d(chunk.double(), kernel, groups=c)  # (n, C, H-2, W-2): no padding
        out.append(response.square().flatten(1).mean(1))
    return torch.cat(out)


def relative_sharpness(samples: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
    """(ratio of mean Laplacian energies samples / real, its delta-method standard error)."""
    a, b = laplacian_energy(samples).cpu(), laplacian_energy(real).cpu()
    if a.numel() < 2 or b.numel() < 2:
        raise ValueError("need at least two samples and two real images")
    mean_a, mean_b = a.mean().item(), b.mean().item()
    if mean_b <= 0:
        raise ValueError("the real images are flat: their Laplacian energy is zero")
    ratio = mean_a / mean_b
    rel_var = a.var().item() / (a.numel() * mean_b**2) + (
        ratio**2 * b.var().item() / (b.numel() * mean_b**2)
    )
    return ratio, math.sqrt(rel_var)
