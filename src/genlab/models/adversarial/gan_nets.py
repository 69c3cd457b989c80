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

Class-conditional networks (``num_classes`` > 0; nothing is added otherwise) take labels y
(B,): the DCGAN generator's batch norms become conditional batch norms, the MLP generator
(which has none) reads a learned class embedding concatenated to z, and both discriminators
are projection discriminators (Miyato & Koyama 2018, eq. 3):
D(x, y) = psi(phi(x)) + embed(y)^T phi(x), with phi(x) the features the linear head psi reads
(see :mod:`genlab.models.adversarial.conditional_layers`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genlab.errors import ConfigError
from genlab.models.adversarial.conditional_layers import ClassProjection, ConditionalBatchNorm2d

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
        elif isinstance(m, nn.BatchNorm2d) and m.affine:  # a conditional one keeps gain 1
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _needs_labels(num_classes: int, y: torch.Tensor | None) -> torch.Tensor | None:
    """The labels a network is called with: required when it is conditional, refused when
    it is not."""
    if num_classes and y is None:
        raise ValueError("a class-conditional GAN network needs the labels y (int64 (B,))")
    if not num_classes and y is not None:
        raise ValueError("an unconditional GAN network takes no labels")
    return y


class DCGANGenerator(nn.Module):
    """z (B, L) -> logits (B, C, H, W): linear projection, then stride-2 transposed convs.

    With ``num_classes`` > 0 every batch norm is a conditional one (per-class gain and bias)
    and ``forward`` takes the labels y (B,)."""

    def __init__(
        self,
        latent_dim: int,
        shape: tuple[int, int, int],
        channels: tuple[int, ...],
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        h0, w0 = dcgan_base(shape, len(channels))
        top = channels[-1]
        self.start = (top, h0, w0)
        self.num_classes = num_classes

        def norm(width: int) -> nn.Module:
            if num_classes:
                return ConditionalBatchNorm2d(num_classes, width)
            return nn.BatchNorm2d(width)

        self.project = nn.Linear(latent_dim, top * h0 * w0, bias=False)
        blocks: list[nn.Module] = [norm(top), nn.ReLU()]
        widths = list(reversed(channels))  # e.g. (128, 64)
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                norm(c_out),
                nn.ReLU(),
            ]
        blocks.append(nn.ConvTranspose2d(widths[-1], shape[0], 4, stride=2, padding=1))
        self.body = nn.Sequential(*blocks)
        _init_dcgan(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _needs_labels(self.num_classes, y)
        h = self.project(z).view(z.shape[0], *self.start)  # (B, C_k, H/2^k, W/2^k)
        if y is None:
            return self.body(h)  # (B, C, H, W)
        for block in self.body:
            h = block(h, y) if isinstance(block, ConditionalBatchNorm2d) else block(h)
        return h  # (B, C, H, W)


class DCGANDiscriminator(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> scores (B,): stride-2 convs, leaky ReLU, linear head.

    ``batch_norm`` adds batch norm after every convolution but the first; it is left out for
    WGAN-GP, whose penalty is defined per image (Gulrajani et al. 2017), and with spectral
    normalisation, which replaces it (Miyato et al. 2018). With ``num_classes`` > 0 it is a
    projection discriminator on phi(x), the flattened last convolutional features."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: tuple[int, ...],
        *,
        batch_norm: bool,
        spectral_norm: bool,
        num_classes: int = 0,
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
        self.num_classes = num_classes
        if num_classes:
            features = c_in * h0 * w0
            self.projection = ClassProjection(num_classes, features, spectral_norm=spectral_norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) (B, F): the flattened last convolutional features that the head reads."""
        return self.body(x * 2 - 1).flatten(1)  # (B, C_k * H/2^k * W/2^k)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _needs_labels(self.num_classes, y)
        phi = self.features(x)
        score = self.head(phi).squeeze(1)  # psi(phi(x)), (B,)
        return score if y is None else score + self.projection(phi, y)


class MLPGenerator(nn.Module):
    """z (B, L) -> logits (B, C, H, W) through fully connected ReLU layers.

    With ``num_classes`` > 0 the first layer reads [z, embed(y)], a learned class embedding
    of z's size concatenated to z, and ``forward`` takes the labels y (B,)."""

    def __init__(
        self,
        latent_dim: int,
        shape: tuple[int, int, int],
        hidden: tuple[int, ...],
        num_classes: int = 0,
    ):
        super().__init__()
        self.shape = shape
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = latent_dim
        if num_classes:
            self.embed = nn.Embedding(num_classes, latent_dim)  # (num_classes, L)
            width += latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(shape)))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _needs_labels(self.num_classes, y)
        if y is not None:
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)  # (B, 2L)
        return self.body(z).view(z.shape[0], *self.shape)  # (B, C, H, W)


class MLPDiscriminator(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> scores (B,) through leaky-ReLU linear layers.

    With ``num_classes`` > 0 it is a projection discriminator on phi(x), the last hidden
    layer's activations (the rescaled image itself when there is no hidden layer)."""

    has_batch_norm = False

    def __init__(
        self,
        shape: tuple[int, int, int],
        hidden: tuple[int, ...],
        *,
        spectral_norm: bool,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(shape)
        for h in hidden:
            layers += [_sn(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(LEAK)]
            width = h
        layers.append(_sn(nn.Linear(width, 1), spectral_norm))
        self.body = nn.Sequential(*layers)  # its last layer is the head psi
        self.num_classes = num_classes
        if num_classes:
            self.projection = ClassProjection(num_classes, width, spectral_norm=spectral_norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) (B, F): the activations the head (the last linear layer) reads."""
        return self.body[:-1]((x * 2 - 1).flatten(1))  # (B, F)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _needs_labels(self.num_classes, y)
        if y is None:
            return self.body((x * 2 - 1).flatten(1)).squeeze(1)  # (B,)
        phi = self.features(x)
        return self.body[-1](phi).squeeze(1) + self.projection(phi, y)  # (B,)
