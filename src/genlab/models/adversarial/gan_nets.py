"""Generator and discriminator networks of the ``gan`` family.

- DCGAN (Radford et al. 2016): the generator projects z to a (C_k, H/2^k, W/2^k) tensor and
  doubles the resolution with k stride-2 transposed convolutions, with batch norm and ReLU on
  every hidden layer; the discriminator mirrors it with k stride-2 convolutions and leaky
  ReLU (slope 0.2), batch norm on every layer but the first, and a linear head.
- MLP GAN (Goodfellow et al. 2014): fully connected networks, for small images and for
  low-dimensional toy data.

Generators return logits; the family maps them to [0, 1] with a sigmoid. Discriminators take
images in [0, 1], rescale them to [-1, 1] and return one unbounded score per image, (B,).
Spectral normalisation (Miyato et al. 2018) wraps every weight of the discriminator when asked.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.errors import ConfigError

LEAK = 0.2  # leaky-ReLU slope of the discriminators (Radford et al. 2016)


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _spectral_norm(module) if enabled else module


def dcgan_base(shape: tuple[int, int, int], layers: int) -> tuple[int, int]:
    """The (H, W) the DCGAN generator starts from: the image size halved ``layers`` times."""
    _, h, w = shape
    factor = 2**layers
    if h % factor or w % factor:
        raise ConfigError(
            f"model.architecture dcgan with {layers} stride-2 layers (model.channels) needs an "
            f"image height and width divisible by {factor}, got {h}x{w}; use fewer "
            "model.channels or model.architecture: mlp"
        )
    return h // factor, w // factor


def _init_dcgan(module: nn.Module) -> None:
    """N(0, 0.02) weights, batch-norm scales N(1, 0.02), zero biases (Radford et al. 2016)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z (B, L) -> logits (B, C, H, W): linear projection, then stride-2 transposed convs."""

    def __init__(
        self, latent_dim: int, shape: tuple[int, int, int], channels: tuple[int, ...]
    ) -> None:
        super().__init__()
        h0, w0 = dcgan_base(shape, len(channels))
        top = channels[-1]
        self.start = (top, h0, w0)
        self.project = nn.Linear(latent_dim, top * h0 * w0, bias=False)
        blocks: list[nn.Module] = [nn.BatchNorm2d(top), nn.ReLU()]
        widths = list(reversed(channels))  # e.g. (128, 64)
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        blocks.append(nn.ConvTranspose2d(widths[-1], shape[0], 4, stride=2, padding=1))
        self.body = nn.Sequential(*blocks)
        _init_dcgan(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], *self.start)  # (B, C_k, H/2^k, W/2^k)
        return self.body(h)  # (B, C, H, W)


class DCGANDiscriminator(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> scores (B,): stride-2 convs, leaky ReLU, linear head.

    ``batch_norm`` adds batch norm after every convolution but the first; it is left out for
    WGAN-GP, whose penalty is defined per image (Gulrajani et al. 2017), and with spectral
    normalisation, which replaces it (Miyato et al. 2018)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: tuple[int, ...],
        *,
        batch_norm: bool,
        spectral_norm: bool,
    ) -> None:
        super().__init__()
        h0, w0 = dcgan_base(shape, len(channels))
        blocks: list[nn.Module] = []
        c_in = shape[0]
        for index, c_out in enumerate(channels):
            conv = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not batch_norm or not index)
            blocks.append(_sn(conv, spectral_norm))
            if batch_norm and index > 0:
                blocks.append(nn.BatchNorm2d(c_out))
            blocks.append(nn.LeakyReLU(LEAK))
            c_in = c_out
        self.body = nn.Sequential(*blocks)
        self.head = _sn(nn.Linear(c_in * h0 * w0, 1), spectral_norm)
        self.has_batch_norm = batch_norm
        if not spectral_norm:
            _init_dcgan(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x * 2 - 1)  # (B, C_k, H/2^k, W/2^k)
        return self.head(h.flatten(1)).squeeze(1)  # (B,)


class MLPGenerator(nn.Module):
    """z (B, L) -> logits (B, C, H, W) through fully connected ReLU layers."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], hidden: tuple[int, ...]):
        super().__init__()
        self.shape = shape
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(shape)))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(z.shape[0], *self.shape)  # (B, C, H, W)


class MLPDiscriminator(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> scores (B,) through leaky-ReLU linear layers."""

    has_batch_norm = False

    def __init__(
        self, shape: tuple[int, int, int], hidden: tuple[int, ...], *, spectral_norm: bool
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(shape)
        for h in hidden:
            layers += [_sn(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(LEAK)]
            width = h
        layers.append(_sn(nn.Linear(width, 1), spectral_norm))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x * 2 - 1).flatten(1)).squeeze(1)  # (B,)
