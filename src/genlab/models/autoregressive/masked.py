"""Shared pieces of the autoregressive pixel models: masked convolutions and output heads.

The autoregressive order is raster order over pixels and, within a pixel, the colour order
R < G < B (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.4). Every
feature map channel belongs to one colour *group*; a feature of group g at pixel p may depend
on every channel at pixels before p and, at p itself, only on

- data channels < g (mask ``"A"``, the first layer, which sees the data), or
- feature groups <= g (mask ``"B"``, every later layer).

The output head predicts, per pixel and data channel, Bernoulli logits (2 levels) or a
256-way categorical (8-bit data), laid out group-major so that head channel ``c * P + p``
belongs to colour group ``c``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import Ranges

# the ranges of the size keys the autoregressive families share
AUTOREGRESSIVE_RANGES: Ranges = {
    "channels": (1, 4096),
    "kernel": (1, 31),
    "first_kernel": (1, 31),
    "head_hidden": (1, 100_000),
}

MaskType = Literal["A", "B"]


def channel_groups(n: int, data_channels: int) -> torch.Tensor:
    """Colour group of each of ``n`` channels: contiguous, nearly equal blocks, (n,)."""
    return torch.arange(n, device="cpu") * data_channels // n  # structure: on the CPU


def gate_groups(n: int, data_channels: int, chunks: int) -> torch.Tensor:
    """Groups of a layer whose ``chunks * n`` outputs are split into ``chunks`` gate tensors
    of ``n`` channels each (gated activations, LSTM gates): chunk k's channel i has the group
    of channel i, so elementwise products of the chunks keep the colour ordering."""
    return channel_groups(n, data_channels).repeat(chunks)


def _live_window(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(first row, last row + 1, first column, last column + 1) of the kernel taps that any
    output of ``mask`` (out, in, kh, kw) keeps open."""
    live = mask.detach().abs().sum(dim=(0, 1)) > 0  # (kh, kw)
    rows, cols = live.any(1).nonzero().flatten(), live.any(0).nonzero().flatten()
    if rows.numel() == 0:  # nothing open: keep the centre row and column
        return (0, mask.shape[2], 0, mask.shape[3])
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def build_mask(
    out_groups: torch.Tensor,
    in_groups: torch.Tensor,
    kernel: tuple[int, int],
    centre: tuple[int, int],
    mask_type: MaskType,
) -> torch.Tensor:
    """The (out, in, kh, kw) 0/1 mask: taps before ``centre`` in raster order are open, taps
    after it closed, and the centre tap connects by colour group (``<`` for A, ``<=`` for B)."""
    kh, kw = kernel
    cr, cc = centre
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw, device=out_groups.device)
    mask[:, :, :cr, :] = 1
    mask[:, :, cr, :cc] = 1
    og, ig = out_groups[:, None], in_groups[None, :]
    mask[:, :, cr, cc] = (ig < og if mask_type == "A" else ig <= og).float()
    return mask


class MaskedConv2d(nn.Module):
    """A convolution whose kernel is masked for raster-then-colour causality.

    ``kernel`` (kh, kw) with ``centre`` (cr, cc) the tap aligned with the output pixel; the
    input is zero padded so output (i, j) sees input rows i-cr..i-cr+kh-1 and columns
    j-cc..j-cc+kw-1. A full PixelCNN kernel has ``centre = (kh // 2, kw // 2)``; the
    horizontal stack of the gated PixelCNN uses ``kernel = (1, k // 2 + 1)``,
    ``centre = (0, k // 2)`` (van den Oord et al. 2016, "Conditional Image Generation with
    PixelCNN Decoders").
    """

    mask: torch.Tensor  # a buffer (registered in __init__), typed for nn.Module.__getattr__

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        mask_type: MaskType,
        data_channels: int,
        *,
        centre: tuple[int, int] | None = None,
        in_groups: torch.Tensor | None = None,
        out_groups: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        kh, kw = kernel
        self.kernel = kernel
        self.centre = centre if centre is not None else (kh // 2, kw // 2)
        cr, cc = self.centre
        if not (0 <= cr < kh and 0 <= cc < kw):
            raise ValueError(f"centre {self.centre} lies outside the kernel {kernel}")
        if in_groups is None:  # for the first layer (in = data channels) this is R, G, B
            in_groups = channel_groups(in_channels, data_channels)
        if out_groups is None:
            out_groups = channel_groups(out_channels, data_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.frozen: torch.Tensor | None = None  # weight * mask, held fixed while sampling
        self.frozen_matrix: torch.Tensor | None = None  # the same as (in * kh * kw, out)
        if self.weight.is_meta:  # sizing only (see genlab.models.build_model): shapes, no values
            self.register_buffer("mask", torch.empty_like(self.weight), persistent=False)
        else:
            mask = build_mask(out_groups, in_groups, kernel, self.centre, mask_type)
            self.register_buffer("mask", mask.to(self.weight.device), persistent=False)
            fan_in = max(1.0, mask.sum(dim=(1, 2, 3)).mean().item())  # open taps per output
            nn.init.normal_(self.weight, std=(1.0 / fan_in) ** 0.5)
        # (left, right, top, bottom) zero padding that aligns the centre tap with the output
        self.padding = (cc, kw - 1 - cc, cr, kh - 1 - cr)
        # the convolution computes only the taps the mask keeps: rows r0..r1 - 1 and columns
        # c0..c1 - 1 of the kernel (a 3x3 mask B keeps 2 x 3, a 7x7 mask A 4 x 7)
        window = (0, kh, 0, kw) if self.weight.is_meta else _live_window(self.mask)
        self.window = window if window[0] <= cr and window[2] <= cc else (0, kh, 0, kw)

    def masked_weight(self) -> torch.Tensor:
        """weight * mask, (out, in, kh, kw); the frozen copy while sampling (see
        :func:`frozen_masks`)."""
        if self.frozen is not None:
            return self.frozen
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H, W). The kernel is cut to its live window; the input
        is padded symmetrically inside the convolution (no padded copy) and the output rows
        and columns that align each centre tap with its pixel are kept."""
        r0, r1, c0, c1 = self.window
        cr, cc = self.centre
        top, bottom, left, right = cr - r0, r1 - 1 - cr, cc - c0, c1 - 1 - cc
        weight = self.masked_weight()[:, :, r0:r1, c0:c1]
        rows, cols = max(top, bottom), max(left, right)
        out = F.conv2d(x, weight, self.bias, padding=(rows, cols))
        if (top, left) == (rows, cols) and (bottom, right) == (rows, cols):
            return out
        h, w = x.shape[-2:]
        return out[:, :, rows - top : rows - top + h, cols - left : cols - left + w]

    def at(
        self, cache: torch.Tensor, i: int, j: int, pad: int, weight: torch.Tensor
    ) -> torch.Tensor:
        """The output at pixel (i, j) only, from a ``cache`` of this layer's input zero padded
        by ``pad`` on every side, (B, in, H + 2 pad, W + 2 pad) -> (B, out).

        ``weight`` is :meth:`masked_weight` flattened to (in * kh * kw, out), computed once
        per sampling run. Taps of the cache after (i, j) hold stale values or zeros; their
        weights are masked to zero."""
        kh, kw = self.kernel
        cr, cc = self.centre
        r, c = i + pad - cr, j + pad - cc
        patch = cache[:, :, r : r + kh, c : c + kw].reshape(cache.shape[0], -1)  # (B, in*kh*kw)
        return torch.addmm(self.bias, patch, weight)

    def flat_weight(self) -> torch.Tensor:
        """:meth:`masked_weight` as an (in * kh * kw, out) matrix for :meth:`at`."""
        if self.frozen_matrix is not None:
            return self.frozen_matrix
        return self.masked_weight().flatten(1).t().contiguous()


@contextmanager
def frozen_masks(model: nn.Module) -> Iterator[None]:
    """Compute every masked weight of ``model`` once, for a no-grad sampling run whose many
    small steps would otherwise multiply weight by mask at every call."""
    layers = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    for layer in layers:
        layer.frozen = (layer.weight * layer.mask).detach()
        layer.frozen_matrix = layer.frozen.flatten(1).t().contiguous()
    try:
        yield
    finally:
        for layer in layers:
            layer.frozen = layer.frozen_matrix = None


class PointwiseMasked(MaskedConv2d):
    """A 1x1 masked convolution (colour mixing only), also usable on (B, in) vectors."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        data_channels: int,
        *,
        in_groups: torch.Tensor | None = None,
        out_groups: torch.Tensor | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            (1, 1),
            "B",
            data_channels,
            in_groups=in_groups,
            out_groups=out_groups,
        )

    def vector(self, v: torch.Tensor) -> torch.Tensor:
        """(B, in) -> (B, out): the layer at a single pixel."""
        if self.frozen_matrix is not None:  # sampling: no per-call weight reshaping
            return torch.addmm(self.bias, v, self.frozen_matrix)
        return F.linear(v, self.masked_weight()[:, :, 0, 0], self.bias)


class OutputHead(nn.Module):
    """ReLU, 1x1 mask-B (hidden -> hidden), ReLU, 1x1 mask-B (hidden -> C * P) logits.

    ``P`` is 1 (Bernoulli logit) for binary data and ``levels`` (categorical) otherwise.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        data_channels: int,
        levels: int,
        *,
        in_groups: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.data_channels, self.levels = data_channels, levels
        self.params_per_channel = 1 if levels == 2 else levels
        self.fc1 = PointwiseMasked(in_channels, hidden, data_channels, in_groups=in_groups)
        out = data_channels * self.params_per_channel
        self.fc2 = PointwiseMasked(
            hidden,
            out,
            data_channels,
            out_groups=torch.arange(data_channels, device="cpu").repeat_interleave(
                self.params_per_channel
            ),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> logits (B, C, P, H, W)."""
        out = self.fc2(F.relu(self.fc1(F.relu(h))))  # (B, C*P, H, W)
        b, _, height, width = out.shape
        return out.view(b, self.data_channels, self.params_per_channel, height, width)

    def vector(self, h: torch.Tensor) -> torch.Tensor:
        """(B, in) -> logits (B, C, P) at one pixel."""
        out = self.fc2.vector(F.relu(self.fc1.vector(F.relu(h))))  # (B, C*P)
        return out.view(h.shape[0], self.data_channels, self.params_per_channel)


def to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images in [0, 1] -> integer levels round(x * (levels - 1)), (B, C, H, W) long."""
    return torch.round(x * (levels - 1)).clamp_(0, levels - 1).long()


def to_input(k: torch.Tensor, levels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer levels -> the network input in [-1, 1]."""
    return k.to(dtype) * (2.0 / (levels - 1)) - 1.0


def log_prob(logits: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-image log p(x) in nats from logits (B, C, P, H, W) and levels k (B, C, H, W), (B,)."""
    if logits.shape[2] == 1:
        lp = -F.binary_cross_entropy_with_logits(
            logits[:, :, 0], k.to(logits.dtype), reduction="none"
        )  # (B, C, H, W)
    else:
        lp = torch.log_softmax(logits, dim=2).gather(2, k.unsqueeze(2)).squeeze(2)
    return lp.flatten(1).sum(1)


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Sample a level by inverse-CDF from logits (B, P) and uniforms u (B,), (B,) long.

    Both samplers call this with the same uniform per pixel-channel, so identical logits
    give identical samples."""
    if logits.shape[1] == 1:
        return (u < torch.sigmoid(logits[:, 0])).long()
    cdf = torch.softmax(logits.double(), dim=1).cumsum(1)  # (B, P)
    k = torch.searchsorted(cdf, u.double().unsqueeze(1).contiguous()).squeeze(1)
    return k.clamp_(max=logits.shape[1] - 1)
