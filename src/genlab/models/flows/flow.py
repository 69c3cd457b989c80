"""Normalizing flows on 8-bit images: RealNVP (Dinh et al. 2017) and Glow (Kingma & Dhariwal
2018), a change-of-variables model with an exact density and one-pass sampling.

An 8-bit image x (integer levels k in 0..255) is dequantised, y = (k + u) / 256 with
u ~ U[0, 1)^D, mapped to v = logit(alpha + (1 - 2 alpha) y), and the multi-scale flow f maps v
to latents z with a standard normal prior. By the change of variables (Dinh et al. 2017, eq. 3)

    log p(y) = log N(f(v); 0, I) + log|det df/dv| + log|det dv/dy|,

exactly. That is a density on the continuous cube; the 8-bit image's probability is bounded
by it: -log P(x) <= E_u[-log p((k + u) / 256)] + D log 256 (Theis et al. 2016), which is the
loss and the reported NLL (``nll_dequant_k<K>``; with K > 1 draws of u, ``eval.dequant_k``, the
importance-weighted bound with log (1/K) sum_j p(y_j), tighter, as Ho et al. 2019 use).
Sampling inverts the flow once, at a temperature T (z ~ N(0, T^2 I); Kingma & Dhariwal 2018,
section 5), and quantises.
Encoding uses the centre of each level's bin, u = 1/2, so ``decode(encode(x)) == x``.

With alpha > 0 the unit cube reaches only v in [logit alpha, logit(1 - alpha)]^D, so p
integrates over the cube to the flow's mass inside that box, a little less than one (as in
Dinh et al. 2017). Samples that land outside are quantised to the extreme levels, which only
adds probability to images: the reported NLL bounds the sampler's own distribution too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from tqdm.auto import tqdm

from genlab import noise
from genlab.config import ModelConfig, Ranges
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.declarations import GREY, TinyConfig, Traits, ZooEntry
from genlab.models.flows.bijections import inverse_logit_transform, logit_transform
from genlab.models.flows.multiscale import MultiScaleFlow, squeezes
from genlab.models.registry import MODELS

LEVELS = 256  # the flow models 8-bit data


@dataclass(frozen=True)
class FlowConfig(ModelConfig):
    RANGES: ClassVar[Ranges] = {
        "scales": (1, 8),
        "steps": (1, 256),
        "channels": (1, 4096),
        "logit_alpha": (1e-9, 0.25),
    }
    flow: Literal["realnvp", "glow"] = "realnvp"
    scales: int = 2  # squeeze-and-factor-out levels
    steps: int = 4  # realnvp: couplings per stage; glow: flow steps per scale (K)
    channels: int = 64  # hidden width of each coupling's network
    logit_alpha: float = 0.05  # v = logit(alpha + (1 - 2 alpha) y), as Dinh et al. on CIFAR-10

    def __post_init__(self) -> None:
        for key in ("scales", "steps", "channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.logit_alpha < 0.5:
            raise ConfigError(f"model.logit_alpha must be in (0, 0.5), got {self.logit_alpha}")


@MODELS.register("flow")
class Flow(GenerativeModel[FlowConfig]):
    """RealNVP or Glow on dequantised 8-bit images: exact density, one-pass sampling."""

    config_class = FlowConfig
    traits = Traits(density="exact", sampling="one_pass", dequantised=True)
    unconditional_because = "genlab's flows have no class-dependent prior or coupling"
    description = "normalizing flow (RealNVP or Glow) on dequantised 8-bit images, exact density"
    tiny_configs = {
        "realnvp": TinyConfig({"flow": "realnvp", "scales": 2, "steps": 1, "channels": 8}, 256),
        "glow": TinyConfig({"flow": "glow", "scales": 2, "steps": 1, "channels": 8}, 256),
    }
    zoo_entries = (
        ZooEntry(
            "flow-grey",
            GREY,
            0.15,
            3,
            # Glow rather than RealNVP: its couplings act on squeezed 14x14 and 7x7 maps, not
            # on RealNVP's 28x28 checkerboards, so it trains more images per CPU second
            {"flow": "glow", "scales": 2, "steps": 4, "channels": 32},
            {"batch_size": 64, "lr": 1e-3, "grad_clip": 100.0},
        ),
    )

    def __init__(self, config: FlowConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        c, h, w = data_info.shape
        if data_info.levels != LEVELS:
            raise ConfigError(
                f"the flow family models 8-bit grey levels; set data.binarize=none (the data "
                f"have {data_info.levels} levels)"
            )
        side = 2 ** squeezes(config.flow, config.scales)
        if h % side or w % side:
            fits = [
                s
                for s in range(1, config.scales)
                if h % 2 ** squeezes(config.flow, s) == 0 and w % 2 ** squeezes(config.flow, s) == 0
            ]
            raise ConfigError(
                f"a {config.flow} flow with model.scales={config.scales} halves the image sides "
                f"{squeezes(config.flow, config.scales)} times, but {h}x{w} is not divisible by "
                f"{side}; use model.scales {' or '.join(map(str, fits)) or '(none fits)'}, or "
                "data.image_size a multiple of it"
            )
        self.flow = MultiScaleFlow(
            data_info.shape, config.flow, config.scales, config.steps, config.channels
        )
        self.code_dim = data_info.num_dims

    # -- the density ----------------------------------------------------------------------
    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        """log p(y) (B,) in nats of the continuous density at y (B, C, H, W) in (0, 1)."""
        v, logit_logdet = logit_transform(y, self.config.logit_alpha)
        latents, flow_logdet = self.flow(v)
        prior = sum(_standard_normal(z) for z in latents)
        return prior + flow_logdet + logit_logdet

    def dequantise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """y = (k + u) / 256, u ~ U[0, 1)^D, for images x = k / 255 (B, C, H, W)."""
        u = noise.uniform(x.shape, generator, x.dtype).to(x.device)
        return (_levels(x).to(x.dtype) + u) / LEVELS

    def loss(
        self, x: torch.Tensor, phase: str, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The dequantisation bound on -log P(x) per image in nats, averaged over the batch."""
        nll = -self.log_density(self.dequantise(x, generator)).mean() + self._shift()
        bpd = nll.detach() / (self.data_info.num_dims * math.log(2.0))
        return {"loss": nll, "nll": nll.detach(), "bits_per_dim": bpd}

    @torch.no_grad()
    def log_likelihood(
        self, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
    ) -> LogLikelihood:
        """log p of the continuous density at dequantised x, importance-weighted over ``k``
        draws of u (log (1/k) sum_j p(y_j); k = 1 is the plain bound), with its Monte-Carlo
        standard error (delta method, as the VAE's IWAE bound)."""
        draws = torch.stack([self.log_density(self.dequantise(x, generator)) for _ in range(k)])
        values = torch.logsumexp(draws, 0) - math.log(k)  # (B,)
        stderr = None
        if k > 1:
            w = torch.exp(draws - values)  # (k, B): weights relative to their mean
            stderr = w.std(0) / math.sqrt(k)
        return LogLikelihood(values, "exact", stderr, of="dequantised", levels=LEVELS, samples=k)

    def _shift(self) -> float:
        return self.data_info.num_dims * math.log(LEVELS)

    # -- sampling and codes ---------------------------------------------------------------
    @torch.no_grad()
    def sample_tempered(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """n images (n, C, H, W) as k / 255: z ~ N(0, T^2 I), one pass of the inverse flow."""
        if not temperature > 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        ref = next(self.parameters())
        z = temperature * noise.normal((n, self.code_dim), generator, ref.dtype).to(ref.device)
        with tqdm(total=1, desc="sample", disable=not progress, leave=False) as bar:
            images = self.decode(z)
            bar.update()
        return images

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor:
        return self.sample_tempered(n, generator=generator, progress=progress)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code z = f(v) (B, D) of each image, dequantised at its bins' centres."""
        y = (_levels(x).to(x.dtype) + 0.5) / LEVELS
        latents, _ = self.flow(logit_transform(y, self.config.logit_alpha)[0])
        return torch.cat([z.flatten(1) for z in latents], dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) as k / 255 from codes z (B, D): the inverse flow, quantised."""
        latents, start = [], 0
        for shape in self.flow.latent_shapes:
            size = math.prod(shape)
            latents.append(z[:, start : start + size].reshape(-1, *shape))
            start += size
        y = inverse_logit_transform(self.flow.inverse(latents), self.config.logit_alpha)
        return (torch.floor(y * LEVELS).clamp(0, LEVELS - 1) / (LEVELS - 1)).to(z.dtype)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): the image itself, up to float precision of the inversion."""
        return self.decode(self.encode(x))


def _levels(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * (LEVELS - 1)).clamp(0, LEVELS - 1).long()


def _standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed per image (B,)."""
    return -0.5 * (z.square() + math.log(2 * math.pi)).flatten(1).sum(1)
