"""Invertible layers with tractable Jacobians: the pieces a normalizing flow is built from.

Every bijection maps ``h`` (B, C, H, W) to ``(h', log|det dh'/dh|)`` with the log-determinant
per image, shape (B,), and has an exact :meth:`inverse`. By the change of variables,
``log p(h) = log p(h') + log|det dh'/dh|`` (Dinh et al. 2017, eq. 2).
"""

from __future__ import annotations

import math
from typing import Protocol, cast

import torch
import torch.distributed as dist
from torch import nn


class Bijection(Protocol):
    """An invertible layer: ``layer(h) -> (h', log|det dh'/dh|)`` and ``layer.inverse(h')``."""

    def __call__(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def inverse(self, y: torch.Tensor) -> torch.Tensor: ...


def squeeze(h: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 patch becomes four channels (Dinh et al.
    2017, section 3.6). A permutation: its log-determinant is 0."""
    b, c, hh, ww = h.shape
    h = h.reshape(b, c, hh // 2, 2, ww // 2, 2)  # (B, C, H/2, 2, W/2, 2)
    return h.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, hh // 2, ww // 2)


def unsqueeze(h: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`squeeze`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    b, c4, hh, ww = h.shape
    h = h.reshape(b, c4 // 4, 2, 2, hh, ww)  # (B, C, 2, 2, H, W)
    return h.permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * hh, 2 * ww)


def checkerboard(channels: int, height: int, width: int, parity: int) -> torch.Tensor:
    """A (1, C, H, W) 0/1 mask, 1 where (i + j + parity) is even: the pixels a checkerboard
    coupling keeps (Dinh et al. 2017, figure 3 left)."""
    i = torch.arange(height).reshape(-1, 1)
    j = torch.arange(width).reshape(1, -1)
    board = ((i + j + parity) % 2 == 0).float()  # (H, W)
    return board.expand(channels, height, width).reshape(1, channels, height, width).clone()


def channel_mask(channels: int, height: int, width: int, parity: int) -> torch.Tensor:
    """A (1, C, H, W) 0/1 mask keeping the first half of the channels (the second half when
    ``parity`` is 1): a channel-wise coupling (Dinh et al. 2017, figure 3 right)."""
    keep = (torch.arange(channels) < channels // 2) != bool(parity)
    return keep.float().reshape(1, channels, 1, 1).expand(1, channels, height, width).clone()


class CouplingNet(nn.Module):
    """The coupling's conditioner: conv 3x3, ReLU, conv 1x1, ReLU, conv 3x3 to a log-scale and
    a shift per input channel. The last convolution starts at zero, so a fresh coupling is the
    identity (Kingma & Dhariwal 2018, section 3.3)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
        )
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(cast(torch.Tensor, self.out.bias))
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))  # bounds the log-scale

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.out(self.net(h)).chunk(2, dim=1)  # (B, C, H, W) each
        return self.scale * torch.tanh(raw_s), t


class AffineCoupling(nn.Module):
    """y = m h + (1 - m) (h exp(s(m h)) + t(m h)) for a fixed 0/1 mask m (Dinh et al. 2017,
    eqs. 7-9): the kept part passes unchanged and conditions an affine map of the rest, so
    the Jacobian is triangular with log-determinant sum((1 - m) s)."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mask", mask)  # (1, C, H, W)
        self.net = CouplingNet(mask.shape[1], hidden)

    def _scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(kept)
        free = 1 - self.mask
        return s * free, t * free

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._scale_shift(h * self.mask)
        return h * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self._scale_shift(y * self.mask)  # the kept part of y is that of h
        return (y - t) * torch.exp(-s)


class ActNorm(nn.Module):
    """y = (h + b) exp(log_s) per channel (Kingma & Dhariwal 2018, section 3.1), initialised
    from the first training batch so that y has zero mean and unit variance per channel
    (data-dependent initialisation; under many processes, from the whole global batch).
    Log-determinant: H W sum(log_s)."""

    initialized: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _initialize(self, h: torch.Tensor) -> None:
        flat = h.transpose(0, 1).flatten(1).double()  # (C, B H W)
        stats = torch.stack([flat.sum(1), flat.square().sum(1)])  # (2, C)
        count = torch.tensor(float(flat.shape[1]), dtype=torch.float64, device=h.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
            dist.all_reduce(count)
        mean = stats[0] / count
        std = (stats[1] / count - mean.square()).clamp_min(0).sqrt()
        self.bias.copy_(-mean.reshape(self.bias.shape).to(self.bias.dtype))
        log_s = -torch.log(std + 1e-6).reshape(self.log_scale.shape)
        self.log_scale.copy_(log_s.to(self.log_scale.dtype))
        self.initialized.fill_(True)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._initialize(h)
        logdet = h.shape[2] * h.shape[3] * self.log_scale.sum()
        return (h + self.bias) * torch.exp(self.log_scale), logdet.expand(h.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """A learned channel permutation: a 1x1 convolution with weight W = P L (U + diag(sign
    exp(log_s))) in LU form (Kingma & Dhariwal 2018, section 3.2), P a fixed permutation, L
    unit lower-triangular, U strictly upper-triangular; initialised from a random rotation.
    Log-determinant: H W sum(log_s), in O(C) rather than the O(C^3) of slogdet(W)."""

    permutation: torch.Tensor
    sign: torch.Tensor
    lower_mask: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(channels, channels))
        self.upper = nn.Parameter(torch.zeros(channels, channels))
        self.log_s = nn.Parameter(torch.zeros(channels))
        self.register_buffer("permutation", torch.eye(channels))
        self.register_buffer("sign", torch.ones(channels))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        if self.lower.is_meta:  # sizing only (see genlab.models.build_model): shapes, no values
            return
        with torch.no_grad():
            rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
            p, lower, upper = torch.linalg.lu(rotation)
            diagonal = torch.diagonal(upper)
            self.permutation.copy_(p)
            self.lower.copy_(lower * self.lower_mask)
            self.upper.copy_(torch.triu(upper, 1))
            self.sign.copy_(torch.sign(diagonal))
            self.log_s.copy_(torch.log(diagonal.abs()))

    def weight(self) -> torch.Tensor:
        """W (C, C) from its factors."""
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight()
        y = torch.einsum("oc,bchw->bohw", w, h)  # (B, C, H, W)
        logdet = h.shape[2] * h.shape[3] * self.log_s.sum()
        return y, logdet.expand(h.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w_inv = torch.linalg.inv(self.weight())
        return torch.einsum("oc,bchw->bohw", w_inv, y)


def logit_transform(y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """v = logit(alpha + (1 - 2 alpha) y) for y in (0, 1) (Dinh et al. 2017, section 4.1), and
    log|det dv/dy| = sum[log(1 - 2 alpha) - log s - log(1 - s)] per image, s = alpha +
    (1 - 2 alpha) y. It maps the unit cube onto the whole space a Gaussian prior covers."""
    s = alpha + (1 - 2 * alpha) * y
    v = torch.log(s) - torch.log1p(-s)
    logdet = (math.log(1 - 2 * alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    return v, logdet


def inverse_logit_transform(v: torch.Tensor, alpha: float) -> torch.Tensor:
    """y = (sigmoid(v) - alpha) / (1 - 2 alpha): the inverse of :func:`logit_transform`."""
    return (torch.sigmoid(v) - alpha) / (1 - 2 * alpha)
