"""Variational autoencoder (Kingma & Welling 2014) with ELBO and IWAE objectives.

q(z|x) is a diagonal Gaussian produced by the encoder, z = mean + std * eps is the
reparameterisation trick, p(z) = N(0, I) and p(x|z) is a Bernoulli, discretised-logistic or
256-way categorical observation model. Training maximises the ELBO
E_q[log p(x|z)] - beta_t KL(q(z|x) || p(z)) (analytic KL, optional linear warm-up of beta) or
the importance-weighted bound of Burda et al. 2016 with ``train_k`` samples. ``log_likelihood``
estimates log p(x) with the IWAE bound over k samples, batched and chunked for speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
from torch import nn

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.distributions import LIKELIHOODS, DiagonalGaussian
from genlab.models.common.layers import DECODERS, ENCODERS, MLPDecoder
from genlab.models.declarations import (
    BINARISED,
    GREY,
    THRESHOLDED,
    TinyConfig,
    Traits,
    ZooEntry,
)
from genlab.models.registry import MODELS

# Rows (images x samples) decoded at once by log_likelihood: large enough for efficient
# matrix products, small enough that the (rows, D) logits stay in cache.
IWAE_CHUNK_ROWS = 4096


@dataclass(frozen=True)
class VAEConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "hidden": (1, 100_000),
        "channels": (1, 4096),
        "latent_dim": (1, 100_000),
        "train_k": (1, 100_000),
        "beta": (0.0, 1e6),
        "kl_warmup_steps": (0, 10**9),
    }
    encoder: Literal["mlp", "conv"] = "mlp"
    decoder: Literal["mlp", "conv"] | None = None  # None: same as encoder
    hidden: tuple[int, ...] = (400,)  # mlp: hidden widths, encoder order (decoder mirrors)
    channels: tuple[int, ...] = (32, 64)  # conv: channels per stride-2 layer
    latent_dim: int = 20
    likelihood: Literal["auto", "bernoulli", "logistic", "categorical"] = "auto"
    objective: Literal["elbo", "iwae"] = "elbo"
    train_k: int = 1  # samples per image in the training objective
    beta: float = 1.0
    kl_warmup_steps: int = 0  # beta rises linearly from 0 to beta over this many steps

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be >= 1, got {self.latent_dim}")
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ConfigError("model.hidden and model.channels entries must be >= 1")
        if not self.channels:
            raise ConfigError("model.channels must list at least one layer width, e.g. [32, 64]")
        if self.train_k < 1:
            raise ConfigError(f"model.train_k must be >= 1, got {self.train_k}")
        if self.beta < 0 or self.kl_warmup_steps < 0:
            raise ConfigError("model.beta and model.kl_warmup_steps must be >= 0")


def resolve_likelihood(name: str, data_info: DataInfo) -> str:
    """``auto`` picks Bernoulli for binary data and the discretised logistic for 8-bit data."""
    if name == "auto":
        return "bernoulli" if data_info.levels == 2 else "logistic"
    expected = LIKELIHOODS.get(name).levels
    if expected != data_info.levels:
        fix = (
            "data.binarize: none" if expected == 256 else "a binarisation (data.binarize: dynamic)"
        )
        raise ConfigError(
            f"model.likelihood {name!r} models {expected}-level pixels but the data has "
            f"{data_info.levels} levels; use {fix} or model.likelihood: auto"
        )
    return name


@MODELS.register("vae")
class VAE(GenerativeModel[VAEConfig]):
    """Variational autoencoder: Gaussian q(z|x), N(0, I) prior, ELBO or IWAE objective."""

    config_class = VAEConfig
    unconditional_because = "its conditional form is not built yet"  # TODO(conditional)
    traits = Traits(density="bound", sampling="one_pass", encoder=True, variational=True)
    description = "variational autoencoder (mlp/conv), ELBO or IWAE objective, IWAE likelihood"
    tiny_configs = {
        "vae": TinyConfig({"hidden": [32], "latent_dim": 4}),
        "vae_warmup": TinyConfig({"hidden": [32], "latent_dim": 4, "kl_warmup_steps": 40}),
        "vae_grey": TinyConfig({"hidden": [32], "latent_dim": 4, "likelihood": "logistic"}, 256),
        "vae_conv": TinyConfig({"encoder": "conv", "channels": [8, 16], "latent_dim": 4}),
    }
    zoo_entries = (
        ZooEntry(
            "vae",
            BINARISED,
            0.10,
            20,
            {"encoder": "mlp", "hidden": [400], "latent_dim": 20},
            cheap=True,
        ),
        # the likelihood claim under a second binarisation: pixels > 0.5, no Bernoulli noise
        ZooEntry(
            "vae-threshold",
            THRESHOLDED,
            0.05,
            20,
            {"encoder": "mlp", "hidden": [400], "latent_dim": 20},
            cheap=True,
        ),
        ZooEntry(
            "vae-grey",
            GREY,
            0.05,
            20,
            {"encoder": "mlp", "hidden": [400], "latent_dim": 20, "likelihood": "logistic"},
            {"fd_every": 5, "fd_samples": 1000},  # an epoch takes seconds: measure every fifth
            eval={"iwae_k": 100},  # its bits/dim are context here: a cheaper bound
            cheap=True,
        ),
    )

    kl_warmup_done: torch.Tensor  # a buffer, registered in __init__ when kl_warmup_steps > 0

    def __init__(self, config: VAEConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        shape = data_info.shape
        self.likelihood = LIKELIHOODS.get(resolve_likelihood(config.likelihood, data_info))()
        dec_kind = config.decoder or config.encoder
        self.encoder = ENCODERS.get(config.encoder)(
            shape, config.hidden, config.channels, 2 * config.latent_dim
        )
        self.decoder = DECODERS.get(dec_kind)(
            config.latent_dim, shape, config.hidden, config.channels, self.likelihood.num_params
        )
        if config.kl_warmup_steps:  # the warm-up's progress is model state: checkpointed
            self.register_buffer("kl_warmup_done", torch.zeros((), dtype=torch.int64))

    def kl_weight(self) -> float:
        """beta now: during training it rises linearly from 0 over ``kl_warmup_steps``
        optimiser steps (Bowman et al. 2016; Sønderby et al. 2016); in eval mode it is always
        the target beta, so validation scores the final objective."""
        cfg = self.config
        if not cfg.kl_warmup_steps or not self.training:
            return cfg.beta
        done = int(self.kl_warmup_done.item())
        return cfg.beta * min(1.0, done / cfg.kl_warmup_steps)

    def after_step(self, phase: str) -> None:
        if self.config.kl_warmup_steps:
            self.kl_warmup_done.add_(1)

    # -- capabilities -------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) for images x (B, C, H, W)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, L) each
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image of p(x|z), (B, C, H, W) in [0, 1]."""
        return self.likelihood.mean(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean)

    def reconstruction_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z = E[z|x]) per image, (B,) nats."""
        return self.likelihood.log_prob(self.decoder(self.encode(x).mean), x)

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """n images as the model defines them: z ~ N(0, I), then x ~ p(x|z) (binary pixels
        under a Bernoulli likelihood, 8-bit levels under the 8-bit ones)."""
        params = self.decoder(self._prior_draw(n, generator))
        return self.likelihood.sample(params, generator)

    def sample_means(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        """n decoder means, z ~ N(0, I): the grey images papers usually show as VAE samples;
        E[x|z] under the Bernoulli and categorical likelihoods, the location (median) under the
        discretised logistic. With the same generator state, the same z as :meth:`sample`."""
        return self.decode(self._prior_draw(n, generator))

    def _prior_draw(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        ref = next(self.parameters())
        z = noise.normal((n, self.config.latent_dim), generator, ref.dtype)
        return z.to(ref.device)

    # -- objectives ---------------------------------------------------------------------
    def elbo_terms(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-image single-sample reconstruction term -log p(x|z) and analytic KL, (B,) nats."""
        q = self.encode(x)
        z = q.rsample(generator)  # (B, L)
        recon = -self.likelihood.log_prob(self.decoder(z), x)
        kl = q.kl_to_standard_normal()
        return {"recon": recon, "kl": kl, "elbo": -(recon + kl)}

    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        if cfg.objective == "iwae":
            log_w = self._log_weights(x, self.encode(x), cfg.train_k, generator)  # (B, k)
            bound = torch.logsumexp(log_w, dim=1) - math.log(cfg.train_k)
            return {"loss": -bound.mean(), f"iwae_k{cfg.train_k}": bound.mean()}
        if cfg.train_k == 1:
            terms = self.elbo_terms(x, generator=generator)
            recon, kl = terms["recon"], terms["kl"]  # (B,) each
        else:
            q = self.encode(x)
            z = q.rsample(generator, num=cfg.train_k).flatten(0, 1)  # (B*k, L)
            x_rep = x.repeat_interleave(cfg.train_k, dim=0)
            recon = -self.likelihood.log_prob(self.decoder(z), x_rep).view(-1, cfg.train_k).mean(1)
            kl = q.kl_to_standard_normal()  # (B,)
        beta = self.kl_weight()
        return {
            "loss": (recon + beta * kl).mean(),
            "elbo": -(recon + kl).mean(),
            "recon": recon.mean(),
            "kl": kl.mean(),
        }

    # -- likelihood -----------------------------------------------------------------------
    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
    ) -> LogLikelihood:
        """IWAE estimate of log p(x) with k importance samples from q(z|x) (Burda et al. 2016):
        log (1/k) sum_j p(x, z_j) / q(z_j|x), a stochastic lower bound that tightens as k grows.

        ``stderr`` is the delta-method Monte-Carlo standard error of each image's estimate.
        """
        q = self.encode(x)
        log_w = self._log_weights(x, q, k, generator)  # (B, k)
        log_mean_w = torch.logsumexp(log_w, dim=1) - math.log(k)
        w = torch.exp(log_w - log_w.max(dim=1, keepdim=True).values)  # (B, k), max 1
        rel_sd = w.std(dim=1) / w.mean(dim=1) if k > 1 else torch.zeros_like(log_mean_w)
        return LogLikelihood(log_mean_w, "iwae_bound", stderr=rel_sd / math.sqrt(k))

    def _log_weights(
        self, x: torch.Tensor, q: DiagonalGaussian, k: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        """log p(x, z_j) - log q(z_j|x) for k draws per image, (B, k), decoded in chunks."""
        batch = x.shape[0]
        per_chunk = max(1, min(k, IWAE_CHUNK_ROWS // max(batch, 1)))
        fast = self._fast_bernoulli_mlp() and not torch.is_grad_enabled()
        cache: dict[Any, torch.Tensor] = {}  # layer buffers reused across chunks, x projections
        parts = []
        for start in range(0, k, per_chunk):
            n = min(per_chunk, k - start)
            eps = noise.normal((batch, n, q.mean.shape[-1]), generator, x.dtype)
            z = torch.addcmul(q.mean.unsqueeze(1), q.std.unsqueeze(1), eps)  # (B, n, L)
            # log p(z) - log q(z|x) = 1/2 sum(eps^2 - z^2 + logvar), as (z - mean) / std = eps
            log_prior_ratio = 0.5 * (eps.square_() - z.square() + q.logvar.unsqueeze(1)).sum(-1)
            if fast:
                log_px = self._bernoulli_mlp_log_px(x, z, cache)  # (B, n)
            else:
                log_px = self._log_px_given_z(x, z)
            parts.append(log_px + log_prior_ratio)
        return torch.cat(parts, dim=1)

    def _log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_b | z_bj) for z (B, n, L) -> (B, n) (differentiable, any decoder)."""
        batch, n, latent = z.shape
        params = self.decoder(z.reshape(batch * n, latent))  # (B*n, P, C, H, W)
        x_rep = x.repeat_interleave(n, dim=0)
        return self.likelihood.log_prob(params, x_rep).view(batch, n)

    def _fast_bernoulli_mlp(self) -> bool:
        body = self.decoder.body if isinstance(self.decoder, MLPDecoder) else None
        return (
            self.likelihood.name == "bernoulli"
            and body is not None
            and all(
                isinstance(m, (nn.Linear, nn.ReLU, nn.Identity))
                for m in body.modules()
                if m is not body
            )
        )

    def _bernoulli_mlp_log_px(
        self, x: torch.Tensor, z: torch.Tensor, cache: dict[Any, torch.Tensor]
    ) -> torch.Tensor:
        """The same as ``_log_px_given_z`` for an MLP decoder with a Bernoulli likelihood,
        without autograd, at close to the matrix-product rate of the CPU:

        - each layer writes into a buffer reused across chunks (no fresh multi-MB tensors);
        - x's projections through the last layer are computed once per batch;
        - sum_i x_i l_i = h . (W^T x) + b . x, so x is never repeated per sample;
        - log p(x|z) = sum_i x_i l_i - sum_i softplus(l_i), softplus computed in place.
        """
        decoder = self.decoder
        assert isinstance(decoder, MLPDecoder)  # only called when _fast_bernoulli_mlp() holds
        batch, n, latent = z.shape
        rows = batch * n
        h = z.reshape(rows, latent)
        layers = [*decoder.body.children()] if isinstance(decoder.body, nn.Sequential) else []
        head = decoder.head
        for index, module in enumerate([*layers, head]):
            if isinstance(module, nn.ReLU):
                h.relu_()
                continue
            layer = cast(nn.Linear, module)  # the fast path's layers are Linear and ReLU only
            out = cache.get(index)
            if out is None or out.shape[0] < rows:
                out = cache[index] = torch.empty(
                    rows, layer.out_features, dtype=h.dtype, device=h.device
                )
            out = out[:rows]
            torch.addmm(layer.bias, h, layer.weight.t(), out=out)  # (rows, out)
            hidden, h = h, out
        logits = h  # (rows, D); hidden is the last layer's input (rows, H)
        if "proj" not in cache:  # depends on x only: once per batch, not per chunk
            x_flat = x.flatten(1)  # (B, D)
            cache["proj"] = (x_flat @ head.weight).unsqueeze(2)  # (B, H, 1)
            cache["bias"] = (x_flat @ head.bias).unsqueeze(1)  # (B, 1)
        x_dot_l = torch.bmm(hidden.view(batch, n, -1), cache["proj"]).squeeze(2)  # (B, n)
        x_dot_l += cache["bias"]
        softplus_sum = torch.ops.aten.softplus.out(logits, 1, 20, out=logits).sum(1)  # (rows,)
        return x_dot_l - softplus_sum.view(batch, n)
