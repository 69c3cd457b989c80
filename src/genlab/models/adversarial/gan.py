"""Generative adversarial networks (Goodfellow et al. 2014): an implicit density.

A generator G maps noise z ~ N(0, I) to images; a discriminator (critic) D scores images as
real or generated. Training alternates two phases on the same real batch, each with its own
parameters and optimiser (the shared Trainer runs them in order every iteration):

- ``"discriminator"`` (``repeats`` = ``n_critic``) updates D on real images and on G(z),
  with G held fixed (its output is computed without a graph);
- ``"generator"`` updates G through D, whose parameters are frozen for that graph.

Losses, with s = D(x) the unbounded score:

- ``non_saturating`` (Goodfellow et al. 2014): D minimises softplus(-s_real) + softplus(s_fake)
  (binary cross-entropy), G minimises softplus(-s_fake) = -log sigmoid(D(G(z))).
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - s_real) +
  relu(1 + s_fake), G minimises -s_fake.
- ``wgan_gp`` (Gulrajani et al. 2017): D minimises s_fake - s_real + gp_weight * GP with
  GP = E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = e x_real + (1 - e) x_fake, e ~ U(0, 1) per
  image; G minimises -s_fake.

The architectures are DCGAN (Radford et al. 2016) or an MLP (see
:mod:`genlab.models.adversarial.gan_nets`);
``spectral_norm`` normalises every discriminator weight by its largest singular value (Miyato
et al. 2018). Samples come from an exponential moving average of the generator's weights
(Karras et al. 2018; Yazici et al. 2019; :mod:`genlab.models.common.ema`), which a GAN keeps by
default (``train.ema_decay``). A GAN has no likelihood: evaluation reports likelihood metrics as not
applicable.

``model.conditional: true`` makes it a class-conditional GAN of p(x | y): the generator
G(z, y) has conditional batch norm (DCGAN; Dumoulin et al. 2017, de Vries et al. 2017) or a
class embedding concatenated to z (MLP), and the discriminator is a projection discriminator
D(x, y) = psi(phi(x)) + embed(y)^T phi(x) (Miyato & Koyama 2018, eq. 3). Every loss above
holds with D(., y) in place of D: real images are scored with their own labels, generated
ones with the labels they were generated for (the batch's labels, see :meth:`GAN.loss`), and
the gradient penalty differentiates D(x_hat, y) with the real labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.adversarial.gan_nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
)
from genlab.models.base import DataInfo, GenerativeModel, Phase
from genlab.models.common.conditioning import labels_for
from genlab.models.declarations import GREY, TinyConfig, Traits, ZooEntry
from genlab.models.registry import MODELS


@dataclass(frozen=True)
class GANConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "latent_dim": (1, 100_000),
        "channels": (1, 4096),
        "hidden": (1, 100_000),
        "gp_weight": (0.0, 1e6),
        "n_critic": (1, 100),
        "d_lr": (1e-12, 10.0),
        "g_lr": (1e-12, 10.0),
        "betas": (0.0, 0.999999),
    }
    architecture: Literal["dcgan", "mlp"] = "dcgan"
    latent_dim: int = 64
    channels: tuple[int, ...] = (64, 128)  # dcgan: discriminator widths per stride-2 layer
    hidden: tuple[int, ...] = (256, 256)  # mlp: hidden widths of both networks
    loss: Literal["non_saturating", "hinge", "wgan_gp"] = "non_saturating"
    gp_weight: float = 10.0  # wgan_gp: weight of the gradient penalty
    spectral_norm: bool = False  # on every discriminator weight
    n_critic: int = 1  # discriminator steps per generator step
    d_lr: float = 2e-4
    g_lr: float = 2e-4
    betas: tuple[float, ...] = (0.5, 0.999)  # Adam betas of both phases (Radford et al. 2016)

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be >= 1, got {self.latent_dim}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError("model.channels must list positive layer widths, e.g. [64, 128]")
        if any(h < 1 for h in self.hidden):
            raise ConfigError("model.hidden entries must be >= 1")
        if self.gp_weight < 0:
            raise ConfigError(f"model.gp_weight must be >= 0, got {self.gp_weight}")
        if self.n_critic < 1:
            raise ConfigError(f"model.n_critic must be >= 1, got {self.n_critic}")
        if self.d_lr <= 0 or self.g_lr <= 0:
            raise ConfigError("model.d_lr and model.g_lr must be positive")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"model.betas must be two numbers in [0, 1), got {list(self.betas)}")


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Build graphs in which ``module``'s parameters need no gradient, then restore them."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@MODELS.register("gan")
class GAN(GenerativeModel[GANConfig]):
    """GAN with DCGAN or MLP networks, non-saturating/hinge/WGAN-GP losses and a generator EMA."""

    config_class = GANConfig
    traits = Traits(density="implicit", sampling="one_pass", adversarial=True, conditional=True)
    description = "GAN (dcgan/mlp), non-saturating/hinge/WGAN-GP, spectral norm, generator EMA"
    default_ema_decay = 0.999  # samples from the generator's average unless train.ema_decay=0
    tiny_configs = {
        "dcgan": TinyConfig({"channels": [8, 16], "latent_dim": 8}, 256, {"ema_decay": 0.9}),
        "mlp_gan": TinyConfig({"architecture": "mlp", "hidden": [16], "latent_dim": 4}),
        "dcgan_cond": TinyConfig(
            {"channels": [8, 16], "latent_dim": 8, "conditional": True}, 256, {"ema_decay": 0.9}
        ),
        "gan_cond": TinyConfig(
            {"architecture": "mlp", "hidden": [16], "latent_dim": 4, "conditional": True}
        ),
    }
    zoo_entries = (
        ZooEntry(
            "gan-grey",
            GREY,
            0.25,
            5,
            # half the DCGAN widths of configs/dcgan_fashion.yaml: 2.5x the images per CPU
            # second and a lower FD within the zoo's minutes (BENCHMARKS.md)
            {"architecture": "dcgan", "latent_dim": 64, "channels": [32, 64]},
            {"batch_size": 64, "fd_every": 1, "fd_samples": 1000},
        ),
    )

    def __init__(self, config: GANConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        shape = data_info.shape
        self.latent_dim = config.latent_dim
        sn, k = config.spectral_norm, self.num_classes  # k = 0: unconditional
        self.generator: DCGANGenerator | MLPGenerator
        self.discriminator: DCGANDiscriminator | MLPDiscriminator
        if config.architecture == "dcgan":
            self.generator = DCGANGenerator(config.latent_dim, shape, config.channels, k)
            batch_norm = config.loss != "wgan_gp" and not sn
            self.discriminator = DCGANDiscriminator(
                shape, config.channels, batch_norm=batch_norm, spectral_norm=sn, num_classes=k
            )
        else:
            self.generator = MLPGenerator(config.latent_dim, shape, config.hidden, k)
            self.discriminator = MLPDiscriminator(
                shape, config.hidden, spectral_norm=sn, num_classes=k
            )

    # -- the contract ---------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        cfg = self.config
        betas = (float(cfg.betas[0]), float(cfg.betas[1]))
        return [
            Phase(
                "discriminator",
                self.discriminator.parameters,
                repeats=cfg.n_critic,
                lr=cfg.d_lr,
                betas=betas,
            ),
            Phase("generator", self.generator.parameters, lr=cfg.g_lr, betas=betas),
        ]

    def averaged_module(self) -> nn.Module:
        """The average of weights (``train.ema_decay``, 0.999 by default) follows the
        generator, updated after each generator step; the discriminator is never averaged."""
        return self.generator

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The ``phase``'s loss on real images x (B, C, H, W) in [0, 1]; z is drawn from
        ``generator``. Under ``torch.no_grad()`` (validation) the gradient penalty cannot be
        computed and is left out of the loss and the terms.

        A conditional GAN takes the batch's labels y (int64 (B,)), and needs them: real
        images are scored as D(x, y), and in both phases the fakes are generated for the
        batch's labels, G(z, y), and scored as D(G(z, y), y); the batch's labels are draws of
        p(y), so the generator learns p(x | y) for y ~ p(y)."""
        y = self._labels_of(x, y)
        if phase == "discriminator":
            return self._discriminator_loss(x, y, generator)
        if phase == "generator":
            return self._generator_loss(x, y, generator)
        raise ValueError(f"unknown phase {phase!r}; the gan phases are discriminator, generator")

    # -- capabilities ---------------------------------------------------------------------
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] for latents z (B, latent_dim) from the generator, with
        batch norm in inference mode; a conditional GAN needs the classes y (int64 (B,)) to
        generate. A model loaded from a run computes with the averaged generator; during
        training, sample within :meth:`averaged` for the same."""
        if self.conditional:
            if y is None:
                raise ValueError(
                    "a conditional GAN generates images of given classes: pass labels y "
                    f"(int64 ({z.shape[0]},), each in [0, {self.num_classes}))"
                )
            y = labels_for(self, z.shape[0], y, None).to(z.device)
        elif y is not None:
            raise ValueError("an unconditional GAN takes no labels: leave y=None")
        was_training = self.generator.training
        self.generator.eval()
        try:
            logits = self.generator(z, y)
        finally:
            self.generator.train(was_training)
        return torch.sigmoid(logits)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images: z ~ N(0, I) drawn from ``generator``, through :meth:`generate`. A
        conditional GAN generates for the labels y (int64 (n,)), or, when None, for labels
        drawn from p(y) after z (so given labels and drawn ones share the same z)."""
        z = self._noise(n, generator)
        if self.conditional:
            y = labels_for(self, n, y, generator)
        return self.generate(z, y)

    # -- objectives -----------------------------------------------------------------------
    def gradient_penalty(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, eq. 3) at
        x_hat = e real + (1 - e) fake with e ~ U(0, 1) per image, differentiable in D's
        parameters (double backpropagation). Needs gradients enabled. A conditional GAN's
        critic is D(x_hat, y) with the real images' labels y (the fakes were made for them)."""
        e = noise.uniform((real.shape[0], *[1] * (real.dim() - 1)), generator).to(real.dtype)
        x_hat = (e * real + (1 - e) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
        scores = self.discriminator(x_hat, y)  # (B,)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).square().mean()

    def _noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        ref = next(self.generator.parameters())
        return noise.normal((n, self.latent_dim), generator, ref.dtype)  # (n, L)

    def _labels_of(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor | None:
        """The batch's labels, checked: given to a conditional GAN, refused by another."""
        if not self.conditional:
            if y is not None:
                raise ValueError("an unconditional GAN's loss takes no labels: leave y=None")
            return None
        if y is None or y.shape != (x.shape[0],) or y.dtype != torch.int64:
            # shape and type only: a range check would wait on the device every step
            raise ValueError(
                f"a conditional GAN's loss needs the batch's labels y, int64 ({x.shape[0]},)"
            )
        return y

    def _scores(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """D on real and fake (both of the labels y when conditional): one batch when D has no
        batch norm, else two (so batch norm never mixes real and fake statistics, Radford et
        al. 2016)."""
        if self.discriminator.has_batch_norm:
            return self.discriminator(real, y), self.discriminator(fake, y)
        both_y = None if y is None else torch.cat([y, y])  # (2B,)
        both = self.discriminator(torch.cat([real, fake]), both_y)  # (2B,)
        return both[: real.shape[0]], both[real.shape[0] :]

    def _discriminator_loss(
        self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        z = self._noise(x.shape[0], generator)
        with torch.no_grad():
            fake = torch.sigmoid(self.generator(z, y))  # (B, C, H, W)
        s_real, s_fake = self._scores(x, fake, y)  # (B,) each
        terms = {"d_real": s_real.mean().detach(), "d_fake": s_fake.mean().detach()}
        if cfg.loss == "non_saturating":
            loss = (F.softplus(-s_real) + F.softplus(s_fake)).mean()
        elif cfg.loss == "hinge":
            loss = (F.relu(1 - s_real) + F.relu(1 + s_fake)).mean()
        else:
            wasserstein = s_real.mean() - s_fake.mean()
            loss = -wasserstein
            terms["wasserstein"] = wasserstein.detach()
            if torch.is_grad_enabled() and cfg.gp_weight > 0:
                gp = self.gradient_penalty(x, fake, generator, y)
                loss = loss + cfg.gp_weight * gp
                terms["gp"] = gp.detach()
        return {"loss": loss, **terms}

    def _generator_loss(
        self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        z = self._noise(x.shape[0], generator)
        fake = torch.sigmoid(self.generator(z, y))  # (B, C, H, W)
        with _frozen(self.discriminator):
            s_fake = self.discriminator(fake, y)  # (B,)
        if self.config.loss == "non_saturating":
            loss = F.softplus(-s_fake).mean()
        else:
            loss = -s_fake.mean()
        return {"loss": loss, "d_fake": s_fake.mean().detach()}
