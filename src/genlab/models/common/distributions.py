"""Distributions over latents and pixels.

``DiagonalGaussian`` is q(z|x) (and the N(0, I) prior); the observation models p(x|z) map a
decoder's output to a per-image log-probability of images ``x`` in [0, 1]:

- ``bernoulli``: binary pixels, one logit per sub-pixel.
- ``logistic``: 8-bit pixels, discretised logistic with 256 bins (Salimans et al. 2017,
  PixelCNN++ eq. 2), two parameters (mean, log-scale) per sub-pixel; exactly normalised.
- ``categorical``: 8-bit pixels, a 256-way softmax per sub-pixel (van den Oord et al. 2016).

Decoder outputs are shaped ``(B, P, C, H, W)`` with ``P = Likelihood.num_params``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genlab import noise
from genlab.registry import Registry

LOG_2PI = math.log(2 * math.pi)


@dataclass
class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) over the last dimension; a batch of them over leading dims."""

    mean: torch.Tensor  # (..., L)
    logvar: torch.Tensor  # (..., L)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def rsample(
        self, generator: torch.Generator | None = None, num: int | None = None
    ) -> torch.Tensor:
        """Reparameterised draw z = mean + std * eps (Kingma & Welling 2014, eq. 10).

        With ``num`` the result has an extra sample axis: (B, num, L).
        """
        mean, std = self.mean, self.std
        if num is not None:
            mean, std = mean.unsqueeze(-2), std.unsqueeze(-2)
            shape = (*self.mean.shape[:-1], num, self.mean.shape[-1])
        else:
            shape = tuple(self.mean.shape)
        eps = torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return torch.addcmul(mean, std, eps)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var) summed over the last dimension; z may carry a sample axis."""
        mean, logvar = self.mean, self.logvar
        if z.dim() == mean.dim() + 1:
            mean, logvar = mean.unsqueeze(-2), logvar.unsqueeze(-2)
        return -0.5 * ((z - mean).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)

    def kl_to_standard_normal(self) -> torch.Tensor:
        """Analytic KL(q || N(0, I)) = 1/2 sum(mean^2 + var - logvar - 1).

        Kingma & Welling 2014, appendix B.
        """
        return 0.5 * (self.mean.square() + torch.exp(self.logvar) - self.logvar - 1.0).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


class Likelihood:
    """An observation model p(x | decoder output); ``x`` is float in [0, 1], shape (B, C, H, W)."""

    name: str
    num_params: int
    levels: int  # the data it models: 2 (binary) or 256 (8-bit)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image log p(x) in nats, summed over pixels: params (B, P, C, H, W) -> (B,)."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected image (B, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A pixel-level draw (B, C, H, W) on the data's grid of levels."""
        raise NotImplementedError


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood")


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    name, num_params, levels = "bernoulli", 1, 2

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits = params[:, 0].flatten(1)  # (B, D)
        # log p = x * l - softplus(l); cheaper than binary_cross_entropy_with_logits on CPU.
        return (logits * x.flatten(1)).sum(1) - F.softplus(logits).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params[:, 0])

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.bernoulli(self.mean(params), generator=generator)


@LIKELIHOODS.register("logistic")
class DiscretizedLogistic(Likelihood):
    """256-bin discretised logistic on [-1, 1]; the edge bins take the tails, so it sums to one."""

    name, num_params, levels = "logistic", 2, 256
    min_log_scale = -7.0

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return params[:, 0], params[:, 1].clamp(min=self.min_log_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_scale = self._split(params)  # (B, C, H, W) each
        xs = x * 2.0 - 1.0  # bin centres at -1, -1 + 2/255, ..., 1
        inv_scale = torch.exp(-log_scale)
        plus = inv_scale * (xs - mean + 1.0 / 255.0)
        minus = inv_scale * (xs - mean - 1.0 / 255.0)
        log_cdf_plus = -F.softplus(-plus)  # log sigmoid(plus), the lowest bin
        log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - sigmoid(minus)), the highest bin
        cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv_scale * (xs - mean)
        # log of the bin mass; where it underflows, the density at the centre times the bin width
        log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid) + math.log(2.0 / 255.0)
        log_mass = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
        log_p = torch.where(
            xs < -0.999, log_cdf_plus, torch.where(xs > 0.999, log_one_minus_cdf_minus, log_mass)
        )
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return ((params[:, 0] + 1.0) / 2.0).clamp(0.0, 1.0)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        mean, log_scale = self._split(params)
        u = noise.uniform(mean.shape, generator, mean.dtype).clamp(1e-5, 1 - 1e-5)
        xs = mean + torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u))
        return torch.round((xs.clamp(-1.0, 1.0) + 1.0) * 127.5) / 255.0


@LIKELIHOODS.register("categorical")
class Categorical256(Likelihood):
    """A 256-way softmax per sub-pixel."""

    name, num_params, levels = "categorical", 256, 256

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        index = torch.round(x * 255.0).long().unsqueeze(1)  # (B, 1, C, H, W)
        log_p = torch.log_softmax(params, dim=1).gather(1, index)
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        levels = (
            torch.arange(256, dtype=params.dtype, device=params.device).view(1, 256, 1, 1, 1)
            / 255.0
        )
        return (torch.softmax(params, dim=1) * levels).sum(1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        probs = torch.softmax(params, dim=1).movedim(1, -1)  # (B, C, H, W, 256)
        flat = probs.reshape(-1, 256)
        draws = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return draws.to(params.dtype) / 255.0
