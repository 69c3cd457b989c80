"""A small U-Net for denoising (Ronneberger et al. 2015, as Ho et al. 2020 use it, appendix B).

Each resolution level has ``blocks`` residual blocks (GroupNorm, SiLU, 3x3 convolution; the
time embedding added after the first convolution through a linear layer), then a stride-2
convolution down. The upward path mirrors it with ``blocks + 1`` residual blocks per level, each
fed the matching activation of the downward path, and nearest-neighbour upsampling followed by
a 3x3 convolution. With ``attention`` a single-head self-attention layer follows each residual
block at the lowest resolution and sits in the middle block (Ho et al. use it at 16x16).

The time embedding is the sinusoidal position encoding of Vaswani et al. 2017 (section 3.5) of
a real-valued time, through a two-layer MLP. A class-conditional network (``num_classes`` > 0)
adds a learned class embedding to it before the MLP's last SiLU (as Dhariwal & Nichol 2021 add
theirs); its table has one row more than there are classes, the null label (index
``num_classes``) that stands for "no class" in classifier-free guidance (Ho & Salimans 2022).
An unconditional network has no such table: its parameters are those it always had. The last
convolution of each residual block, of each attention layer and of the output starts at zero,
so a fresh network outputs zeros (Ho et al.'s initialisation).

Sides must halve exactly: ``channel_mults`` of length L needs H and W divisible by 2^(L-1)
(28x28: at most 3 levels, 28 -> 14 -> 7; 32x32: up to 6).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import ConfigError


def max_levels(height: int, width: int) -> int:
    """The most resolution levels whose downsamplings halve ``height`` x ``width`` exactly."""
    levels = 1
    while height % 2**levels == 0 and width % 2**levels == 0:
        levels += 1
    return levels


def check_levels(channel_mults: tuple[int, ...], height: int, width: int) -> None:
    """Refuse, in one line naming what fits, levels whose sides would not halve exactly."""
    levels, fits = len(channel_mults), max_levels(height, width)
    if levels > fits:
        example = list(channel_mults[:fits])
        raise ConfigError(
            f"model.channel_mults={list(channel_mults)} has {levels} resolution levels, which "
            f"halve {height}x{width} images {levels - 1} times, but {height}x{width} is not "
            f"divisible by {2 ** (levels - 1)}; for {height}x{width} images use at most {fits} "
            f"level{'s' if fits > 1 else ''}, e.g. model.channel_mults={example}"
        )


def group_count(channels: int) -> int:
    """GroupNorm groups: the largest of 32, 16, ..., 1 that divides ``channels`` and leaves at
    least two channels per group (one group for a single channel)."""
    for groups in (32, 16, 8, 4, 2):
        if channels % groups == 0 and channels // groups >= 2:
            return groups
    return 1


def sinusoidal_embedding(time: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, dim) sin/cos features of ``time`` (B,) at frequencies 10000^(-i / (dim / 2))."""
    work = torch.float64 if dtype == torch.float64 else torch.float32
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=time.device, dtype=work) / max(half, 1)
    )
    args = time.to(work)[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb.to(dtype)


def _zero(module: nn.Conv2d) -> nn.Conv2d:
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class ResidualBlock(nn.Module):
    """x + F(x, emb): GroupNorm, SiLU, conv; + Linear(emb); GroupNorm, SiLU, conv (zero)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(group_count(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(group_count(c_out), c_out)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.silu(self.norm1(h)))  # (B, C_out, H, W)
        out = out + self.time(emb)[:, :, None, None]
        out = self.conv2(F.silu(self.norm2(out)))
        return self.skip(h) + out


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, height, width = h.shape
        q, k, v = self.qkv(self.norm(h)).reshape(b, 3, c, height * width).unbind(1)  # (B, C, N)
        weights = torch.softmax(torch.einsum("bcn,bcm->bnm", q, k) / math.sqrt(c), dim=-1)
        out = torch.einsum("bnm,bcm->bcn", weights, v).reshape(b, c, height, width)
        return h + self.proj(out)


class Stage(nn.Module):
    """A residual block, then self-attention if asked."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, attention: bool) -> None:
        super().__init__()
        self.block = ResidualBlock(c_in, c_out, emb_dim)
        self.attention = SelfAttention(c_out) if attention else None

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block(h, emb)
        return self.attention(h) if self.attention is not None else h


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(h)  # (B, C, H/2, W/2)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, C, 2H, 2W)


class UNet(nn.Module):
    """eps/x0/v/velocity network: images (B, C, H, W), times (B,) and, when conditional,
    labels (B,) in [0, num_classes] (num_classes: the null label) -> (B, C, H, W)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: int,
        channel_mults: tuple[int, ...],
        blocks: int,
        attention: bool,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        image_channels, height, width = shape
        check_levels(channel_mults, height, width)
        self.channels = channels
        emb_dim = 4 * channels
        self.time_in = nn.Linear(channels, emb_dim)  # the time MLP: Linear, SiLU, Linear
        self.time_out = nn.Linear(emb_dim, emb_dim)
        self.conv_in = nn.Conv2d(image_channels, channels, 3, padding=1)
        widths = [channels * m for m in channel_mults]
        lowest = len(widths) - 1
        self.down = nn.ModuleList()
        skips, c = [channels], channels
        for level, width_out in enumerate(widths):
            for _ in range(blocks):
                self.down.append(Stage(c, width_out, emb_dim, attention and level == lowest))
                c = width_out
                skips.append(c)
            if level != lowest:
                self.down.append(Downsample(c))
                skips.append(c)
        self.middle = nn.ModuleList([Stage(c, c, emb_dim, attention), Stage(c, c, emb_dim, False)])
        self.up = nn.ModuleList()
        for level, width_out in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                c_in = c + skips.pop()
                self.up.append(Stage(c_in, width_out, emb_dim, attention and level == lowest))
                c = width_out
            if level != 0:
                self.up.append(Upsample(c))
        self.norm_out = nn.GroupNorm(group_count(c), c)
        self.conv_out = _zero(nn.Conv2d(c, image_channels, 3, padding=1))
        self.num_classes = num_classes
        # built last, so the layers above draw the same initial weights as an unconditional
        # network's from the same seed
        self.class_embedding: nn.Embedding | None = (
            nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        )

    def embed_time(self, time: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The additive conditioning vector (B, 4 * channels) of times (B,), and of labels
        (B,) for a conditional network (required there, refused otherwise), after SiLU."""
        emb = sinusoidal_embedding(time, self.channels, self.time_in.weight.dtype)
        emb = self.time_out(F.silu(self.time_in(emb)))
        if self.class_embedding is None:
            if labels is not None:
                raise ValueError("an unconditional U-Net takes no labels")
        elif labels is None:
            raise ValueError("a class-conditional U-Net needs labels (the null label for none)")
        else:
            emb = emb + self.class_embedding(labels)
        return F.silu(emb)

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        emb = self.embed_time(time, labels)  # (B, E)
        h = self.conv_in(x)  # (B, channels, H, W)
        kept = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, Stage) else layer(h)
            kept.append(h)
        for stage in self.middle:
            h = stage(h, emb)
        for layer in self.up:
            if isinstance(layer, Stage):
                h = layer(torch.cat([h, kept.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, H, W)
