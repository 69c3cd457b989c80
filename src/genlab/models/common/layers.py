"""Encoder and decoder networks shared by the latent-variable families (AE, VAE, GAN).

Encoders map images (B, C, H, W) to a flat vector (B, out_features); decoders map a code
(B, latent) to ``P`` parameter maps per sub-pixel, (B, P, C, H, W).

- ``linear``: one linear map each way (the original autoencoder; ``hidden`` is ignored).
- ``mlp``: fully connected with ReLU (the classic 784-400-20 VAE of Kingma & Welling 2014
  uses one hidden layer of 400 units).
- ``conv``: a ReLU CNN with stride-2 convolutions down and stride-2 transposed convolutions
  ("up-convolutions") back up; image height and width must be divisible by 2**len(channels).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.registry import Registry


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last one if asked)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    def __init__(
        self, shape: tuple[int, int, int], hidden: tuple[int, ...], out_features: int
    ) -> None:
        super().__init__()
        self.net = mlp([math.prod(shape), *hidden, out_features])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # (B, C*H*W) -> (B, out)


class MLPDecoder(nn.Module):
    """``body`` (hidden layers) then ``head`` (a Linear to P*C*H*W); kept apart so that
    likelihood code can use the last hidden activations directly (see ``VAE``)."""

    def __init__(
        self, latent: int, hidden: tuple[int, ...], shape: tuple[int, int, int], num_params: int
    ) -> None:
        super().__init__()
        self.shape, self.num_params = shape, num_params
        self.body = mlp([latent, *hidden], final_activation=True) if hidden else nn.Identity()
        self.head = nn.Linear(hidden[-1] if hidden else latent, num_params * math.prod(shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(z))  # (B, P*C*H*W)
        return out.view(z.shape[0], self.num_params, *self.shape)


def _check_conv_shape(shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
    factor = 2 ** len(channels)
    _, h, w = shape
    if h % factor or w % factor:
        raise ConfigError(
            f"a conv encoder/decoder with {len(channels)} stride-2 layers needs image height and "
            f"width divisible by {factor}, but the images are {h}x{w}; use fewer model.channels, "
            "set data.image_size, or choose encoder/decoder mlp"
        )


class ConvEncoder(nn.Module):
    def __init__(
        self, shape: tuple[int, int, int], channels: tuple[int, ...], out_features: int
    ) -> None:
        super().__init__()
        _check_conv_shape(shape, channels)
        c, h, w = shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            c = c_out
        factor = 2 ** len(channels)
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(c * (h // factor) * (w // factor), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).flatten(1))  # (B, C', h, w) -> (B, out)


class ConvDecoder(nn.Module):
    def __init__(
        self, latent: int, channels: tuple[int, ...], shape: tuple[int, int, int], num_params: int
    ) -> None:
        super().__init__()
        _check_conv_shape(shape, channels)
        self.shape, self.num_params = shape, num_params
        c, h, w = shape
        factor = 2 ** len(channels)
        widths = list(reversed(channels))
        self.start = (widths[0], h // factor, w // factor)
        self.project = nn.Sequential(nn.Linear(latent, math.prod(self.start)), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
                nn.ReLU(),
            ]
        layers.append(
            nn.ConvTranspose2d(widths[-1], num_params * c, kernel_size=4, stride=2, padding=1)
        )
        self.up = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], *self.start)  # (B, C', h, w)
        out = self.up(h)  # (B, P*C, H, W)
        return out.view(z.shape[0], self.num_params, *self.shape)


ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder")
DECODERS: Registry[Callable[..., nn.Module]] = Registry("decoder")


@ENCODERS.register("mlp")
def _mlp_encoder(shape, hidden, channels, out):  # noqa: ANN001, ANN202
    return MLPEncoder(shape, hidden, out)


@ENCODERS.register("linear")
def _linear_encoder(shape, hidden, channels, out):  # noqa: ANN001, ANN202
    return MLPEncoder(shape, (), out)  # one linear map: x -> code


@ENCODERS.register("conv")
def _conv_encoder(shape, hidden, channels, out):  # noqa: ANN001, ANN202
    return ConvEncoder(shape, channels, out)


@DECODERS.register("mlp")
def _mlp_decoder(latent, shape, hidden, channels, num_params):  # noqa: ANN001, ANN202
    return MLPDecoder(latent, tuple(reversed(hidden)), shape, num_params)


@DECODERS.register("linear")
def _linear_decoder(latent, shape, hidden, channels, num_params):  # noqa: ANN001, ANN202
    return MLPDecoder(latent, (), shape, num_params)  # one linear map: code -> x


@DECODERS.register("conv")
def _conv_decoder(latent, shape, hidden, channels, num_params):  # noqa: ANN001, ANN202
    return ConvDecoder(latent, channels, shape, num_params)
