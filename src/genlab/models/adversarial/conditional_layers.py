"""The class-conditional layers of a conditional GAN.

- :class:`ConditionalBatchNorm2d` (Dumoulin et al. 2017; de Vries et al. 2017): batch norm
  whose gain and bias are rows of per-class tables, gamma_y * (h - mu) / sqrt(var + eps) +
  beta_y, with gamma = 1 and beta = 0 for every class at initialisation (plain batch norm).
- :class:`ClassProjection` (Miyato & Koyama 2018, "cGANs with Projection Discriminator",
  eq. 3): the class term embed(y)^T phi(x) that a projection discriminator adds to its
  unconditional score psi(phi(x)); the embedding is spectral-normalised where the rest of the
  discriminator is.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm of (B, C, H, W) features with the class's own gain and bias per channel."""

    def __init__(self, num_classes: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)  # gamma_y, (num_classes, C)
        self.bias = nn.Embedding(num_classes, channels)  # beta_y, (num_classes, C)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = self.gain(y)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(y)[:, :, None, None]
        return self.norm(h) * gain + bias  # (B, C, H, W)


class ClassProjection(nn.Module):
    """embed(y)^T phi: one learned vector per class, dotted with the features phi (B, F).

    Initialised as a linear layer of fan-in F, U(-1/sqrt(F), 1/sqrt(F)), the scale of the
    discriminator's own head."""

    def __init__(self, num_classes: int, features: int, *, spectral_norm: bool) -> None:
        super().__init__()
        embed = nn.Embedding(num_classes, features)  # (num_classes, F)
        bound = 1 / math.sqrt(features)
        nn.init.uniform_(embed.weight, -bound, bound)
        self.embed = _spectral_norm(embed) if spectral_norm else embed

    def forward(self, phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.embed(y) * phi).sum(dim=1)  # (B,)
