"""The diffusion family: denoising diffusion (DDPM, Ho et al. 2020; DDIM sampling, Song et al.
2021) or flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023) on 8-bit images,
one U-Net either way (:mod:`.unet`).

``objective: ddpm``: images x = k / 255 become the grid z = 2k / 255 - 1 in [-1, 1]; the
network predicts eps, x_0 or v of x_t at step t (time embedding of t * 1000 / T) and trains
on Ho et al.'s simple loss. Its likelihood is the variational bound of Ho et al. eq. 5 with
the discretised Gaussian decoder: an upper bound on -log P(x) of the 8-bit image, estimated by
Monte Carlo over the steps (``kind="elbo"``, ``of="discrete"``; :mod:`.likelihood`). Samplers:
ancestral DDPM and DDIM on respaced steps.

``objective: flow_matching``: images are dequantised, z = 2 (k + u) / 256 - 1, and the network
predicts the velocity of the straight path x_t = (1 - t) z + t eps (time embedding of t *
1000). Its likelihood is the probability-flow ODE estimate of the continuous density of
dequantised images on [0, 1]^D (``kind="estimate"``, ``of="dequantised"``, levels 256), which
evaluation turns into the dequantisation bound on the 8-bit image. Samplers: Euler and Heun.

Traits: density ``estimate`` (a Monte-Carlo estimate of a bound for DDPM, an ODE estimate for
flow matching: both are estimates; neither objective's training loss is a likelihood), and
sampling ``iterative``. ``encode_noise`` / ``decode_noise`` map images to noise and back by
deterministic DDIM or the ODE (latent exploration; kept off the ``encode`` protocol, whose
probes would run the whole inversion over the training set).

``conditional: true``: the U-Net adds a class embedding to its time embedding and learns p(x |
y); each training label is dropped to the null label with probability ``label_dropout``, so
the same network is the unconditional model too, and sampling follows classifier-free
guidance (Ho & Salimans 2022) at weight ``guidance`` (1, the default: the conditional model
itself; :meth:`Diffusion.sample_guided` for any other weight). The guidance acts on the
network's prediction (:mod:`.guidance`), so every sampler takes it. The likelihood given y is
the bound or the ODE estimate of the conditional network (no guidance); without y it is the
marginal log p(x) = log sum_y p(x | y) p(y) (:mod:`genlab.models.common.conditioning`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from genlab.config import EvalConfig
from genlab.errors import ConfigError
from genlab.models.base import DataInfo, GenerativeModel, LogLikelihood
from genlab.models.common.conditioning import labels_for, marginal_log_likelihood
from genlab.models.declarations import Traits
from genlab.models.diffusion import likelihood, pixels, samplers
from genlab.models.diffusion.config import DiffusionConfig, check_sampler
from genlab.models.diffusion.declarations import TINY_CONFIGS, ZOO_ENTRIES
from genlab.models.diffusion.guidance import (
    LabelledPrediction,
    Prediction,
    check_guidance,
    drop_labels,
    guided,
)
from genlab.models.diffusion.objectives import ddpm_loss, flow_matching_loss
from genlab.models.diffusion.schedules import Denoiser, NoiseSchedule
from genlab.models.diffusion.unet import UNet
from genlab.models.registry import MODELS

TIME_SCALE = 1000.0  # the time embedding sees t * 1000 / T (ddpm) or t * 1000 (flow matching)


@MODELS.register("diffusion")
class Diffusion(GenerativeModel[DiffusionConfig]):
    """DDPM or flow matching with a U-Net: iterative sampling, a bound or an ODE estimate."""

    config_class = DiffusionConfig
    traits = Traits(density="estimate", sampling="iterative", conditional=True)
    description = (
        "denoising diffusion (DDPM/DDIM) or flow matching, U-Net; iterative sampling, "
        "likelihood bound (DDPM) or ODE estimate (flow matching)"
    )
    tiny_configs = TINY_CONFIGS
    zoo_entries = ZOO_ENTRIES
    default_ema_decay = 0.999

    def __init__(self, config: DiffusionConfig, data_info: DataInfo) -> None:
        super().__init__(config, data_info)
        if data_info.levels != pixels.LEVELS:
            raise ConfigError(
                f"the diffusion family models 8-bit pixel levels (grey or colour); set "
                f"data.binarize=none (the data have {data_info.levels} levels)"
            )
        self.net = UNet(
            data_info.shape,
            config.channels,
            config.channel_mults,
            config.blocks,
            config.attention,
            self.num_classes,
        )
        self.schedule = NoiseSchedule.make(config.schedule, config.timesteps)

    # -- the network in its two roles ----------------------------------------------------
    def predict(
        self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """DDPM: the network's eps / x_0 / v output at x_t (B, C, H, W), steps t (B,), and
        labels y (B,) of a conditional model (:attr:`null_label` for none)."""
        return self.net(xt, t.to(xt.dtype) * (TIME_SCALE / self.config.timesteps), y)

    def velocity(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Flow matching: the velocity v(x, t) at times t in [0, 1] (B,), given labels y (B,)
        of a conditional model (:attr:`null_label` for none)."""
        return self.net(x, t * TIME_SCALE, y)

    def denoiser(self, clip: bool = True, y: torch.Tensor | None = None) -> Denoiser:
        """The network as a :class:`Denoiser` (x_0 clipped to [-1, 1] for images), given
        labels y (B,) of a conditional model."""
        return self._denoiser(self._given(y), clip)

    def _denoiser(self, prediction: Prediction, clip: bool = True) -> Denoiser:
        return Denoiser(prediction, self.config.prediction, self.schedule, clip)

    def _flow(self) -> bool:
        return self.config.objective == "flow_matching"

    # -- labels ----------------------------------------------------------------------------
    @property
    def null_label(self) -> int:
        """The label index that stands for "no class" (∅) in the class embedding."""
        return self.num_classes

    def _network(self) -> LabelledPrediction:
        """The network in the objective's role, given labels: ``predict`` or ``velocity``."""
        return self.velocity if self._flow() else self.predict

    def _unconditional(self) -> Prediction:
        """The same callable, called without labels (an unconditional model's network)."""
        return self.velocity if self._flow() else self.predict

    def _given(self, y: torch.Tensor | None, n: int | None = None) -> Prediction:
        """The network's prediction (x_t, t) for the labels y a caller gave: None on an
        unconditional model (which refuses labels), required on a conditional one and checked
        (one label per image of the batch of ``n``, where given)."""
        if not self.conditional:
            if y is not None:
                raise ValueError(f"an unconditional {self.family} model takes no labels y")
            return self._unconditional()
        if y is None:
            raise ValueError(
                f"a conditional {self.family} model needs the labels y of the images (int64 "
                f"(B,) in [0, {self.num_classes}))"
            )
        size = n if n is not None else (y.shape[0] if y.dim() else 1)
        return self._labelled(labels_for(self, size, y, None).to(self._device()))

    def _labelled(self, labels: torch.Tensor | None) -> Prediction:
        """The network's prediction (x_t, t) given ``labels`` as they are (the null label
        allowed), or the unconditional network's for None."""
        if labels is None:
            return self._unconditional()
        network = self._network()
        return lambda x, t: network(x, t, labels)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the objective ---------------------------------------------------------------------
    def loss(
        self,
        x: torch.Tensor,
        phase: str,
        *,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Ho et al.'s simple loss (ddpm) or the flow-matching loss, averaged over the batch
        (per pixel: neither is a likelihood; see :meth:`log_likelihood`). A conditional model
        takes the batch's labels y, each dropped to the null label with probability
        ``label_dropout`` (Ho & Salimans 2022, algorithm 1), drawn from ``generator`` before
        anything else."""
        if self.conditional:
            if y is None:
                raise ValueError(
                    f"a conditional {self.family} model's loss needs the batch's labels y"
                )
            kept = labels_for(self, x.shape[0], y, None).to(x.device)
            y = drop_labels(kept, self.config.label_dropout, self.null_label, generator)
        prediction = self._labelled(y)
        if self._flow():
            return flow_matching_loss(prediction, pixels.dequantise_signed(x, generator), generator)
        cfg = self.config
        return ddpm_loss(prediction, self.schedule, cfg.prediction, pixels.to_signed(x), generator)

    # -- sampling ------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) as k / 255 with the configured sampler and steps; a
        conditional model draws them for labels y (None: n labels drawn from p(y) first) at
        the configured guidance."""
        return self.sample_with(
            n, steps=self.config.sample_steps, generator=generator, progress=progress, y=y
        )

    @torch.no_grad()
    def sample_with(
        self,
        n: int,
        *,
        steps: int | None = None,
        sampler: str | None = None,
        eta: float | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images (n, C, H, W) as k / 255 drawn in ``steps`` steps (None: model.sample_steps)
        of ``sampler`` (ddpm, ddim for the ddpm objective; euler, heun for flow matching;
        None: the configured one), DDIM with ``eta`` (None: model.eta); a conditional model's
        for labels y (None: drawn from p(y)) at the configured ``model.guidance``."""
        if not self.conditional:
            if y is not None:
                raise ValueError(f"an unconditional {self.family} model takes no labels y")
            return self._draw(n, None, steps, sampler, eta, generator, progress)
        guidance = self.config.guidance
        labels = self._sampling_labels(n, y, guidance, generator)
        return self._draw(n, labels, steps, sampler, eta, generator, progress, guidance)

    def guidance_not_available(self) -> str | None:
        """Why this instance cannot be sampled with classifier-free guidance, or None."""
        if not self.conditional:
            return (
                "it is unconditional; guidance needs a class-conditional model "
                "(model.conditional=true)"
            )
        if self.config.label_dropout == 0.0:
            return (
                "it was trained without label dropout (model.label_dropout=0), so it has no "
                "unconditional model to guide with; train with model.label_dropout > 0"
            )
        return None

    @torch.no_grad()
    def sample_guided(
        self,
        n: int,
        *,
        guidance: float,
        y: torch.Tensor | None = None,
        steps: int | None = None,
        sampler: str | None = None,
        eta: float | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """n images (n, C, H, W) as k / 255 by classifier-free guidance of weight
        ``guidance`` w (Ho & Salimans 2022, algorithm 2, with their w' = w - 1): every
        sampler step sees u + w (c - u) of the network's predictions with the labels y (c)
        and the null label (u). w = 0 is unconditional sampling (no labels drawn or read),
        w = 1 conditional sampling, exactly; y None draws labels from p(y) first. Steps,
        sampler and eta as :meth:`sample_with`."""
        if (reason := self.guidance_not_available()) is not None:
            raise ConfigError(f"this {self.family} model cannot be guided: {reason}")
        guidance = check_guidance(guidance)
        labels = self._sampling_labels(n, y, guidance, generator)
        return self._draw(n, labels, steps, sampler, eta, generator, progress, guidance)

    def _sampling_labels(
        self, n: int, y: torch.Tensor | None, guidance: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        """The labels of n conditional draws: y as given (checked), drawn from p(y) when None,
        but at guidance 0 (the unconditional model, which reads none) the null label, so no
        label is drawn and the images are those of the unconditional sampler."""
        if guidance == 0.0 and y is None:
            return torch.full((n,), self.null_label, dtype=torch.int64, device=self._device())
        return labels_for(self, n, y, generator).to(self._device())

    def _draw(
        self,
        n: int,
        labels: torch.Tensor | None,
        steps: int | None,
        sampler: str | None,
        eta: float | None,
        generator: torch.Generator | None,
        progress: bool,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """n images from the network's prediction: unconditional (labels None), or guided
        with weight ``guidance`` for ``labels`` (n,)."""
        cfg = self.config
        steps = cfg.sample_steps if steps is None else steps
        name = cfg.resolved_sampler if sampler is None or sampler == "auto" else sampler
        check_sampler(cfg.objective, name)
        eta = cfg.eta if eta is None else eta
        if not 0.0 <= eta <= 1.0:
            raise ConfigError(f"eta must be in [0, 1], got {eta}")
        self._check_steps(steps)
        prediction = (
            self._unconditional()
            if labels is None
            else guided(self._network(), labels, self.null_label, guidance)
        )
        ref = next(self.parameters())
        return samplers.draw_images(
            name,
            prediction,
            self._denoiser,
            (n, *self.data_info.shape),
            steps=steps,
            eta=eta,
            variance=cfg.variance,
            generator=generator,
            like=torch.empty(0, dtype=ref.dtype, device=ref.device),
            progress=progress,
        )

    @property
    def max_sample_steps(self) -> int:
        """The most sampling steps this model can take: a DDPM's T (an ODE: any number)."""
        return self.config.timesteps if not self._flow() else 100_000

    def _check_steps(self, steps: int) -> None:
        top = self.max_sample_steps
        if not 1 <= steps <= top:
            raise ConfigError(f"sampling steps must be in [1, {top}], got {steps}")

    # -- likelihood ------------------------------------------------------------------------
    def likelihood_samples(self, cfg: EvalConfig) -> int:
        """DDPM: ``eval.bound_terms`` steps per image for the bound's Monte-Carlo estimate;
        flow matching: ``eval.dequant_k`` draws of the dequantisation noise."""
        return cfg.dequant_k if self._flow() else cfg.bound_terms

    @torch.no_grad()
    def log_likelihood(
        self,
        x: torch.Tensor,
        *,
        k: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """ddpm: minus the bound of Ho et al. eq. 5 on -log P(x), ``k`` uniformly drawn steps
        (k >= T: all T terms); flow matching: the ODE estimate of log p of the dequantised
        image's density on [0, 1]^D, averaged over ``k`` draws of the dequantisation noise.
        A conditional model's: of log p(x | y) given labels y (the conditional network, no
        guidance), of log p(x) = log sum_y p(x | y) p(y) without."""
        if self.conditional and y is None:
            return marginal_log_likelihood(self, x, k=k, generator=generator)
        if self._flow():
            return self.ode_likelihood(x, draws=k, generator=generator, y=y)
        terms = None if k >= self.config.timesteps else k
        return self.variational_bound(x, terms=terms, generator=generator, y=y)

    def bound_not_available(self) -> str | None:
        """Why this instance has no variational bound (flow matching), or None."""
        if self._flow():
            return "a flow-matching model has no variational bound; its likelihood is the ODE's"
        return None

    def ode_not_available(self) -> str | None:
        """Why this instance has no ODE likelihood (DDPM), or None."""
        if not self._flow():
            return "the ODE likelihood needs model.objective=flow_matching"
        return None

    @torch.no_grad()
    def variational_bound(
        self,
        x: torch.Tensor,
        *,
        terms: int | None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """Minus the DDPM bound on -log P(x) (B,) of 8-bit images x: all T terms (None) or a
        Monte-Carlo estimate over ``terms`` uniform steps, with its standard error. The
        reverse process uses the clipped x_0 estimate, as sampling does (any mean function of
        x_t defines a reverse process, so the bound holds). A conditional model's, of -log
        P(x | y), needs the labels y (B,)."""
        if (reason := self.bound_not_available()) is not None:
            raise ConfigError(reason)
        estimate = likelihood.variational_bound(
            self._denoiser(self._given(y, x.shape[0])),
            pixels.to_signed(x),
            terms=terms,
            variance=self.config.variance,
            decoder="discrete",
            generator=generator,
            progress=progress,
        )
        return likelihood.bound_result(
            estimate, timesteps=self.config.timesteps, terms=terms, variance=self.config.variance
        )

    def ode_likelihood(
        self,
        x: torch.Tensor,
        *,
        draws: int = 1,
        generator: torch.Generator | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> LogLikelihood:
        """The ODE estimate of log p(x~) (B,) of the flow's density on [0, 1]^D at dequantised
        x~ = (k + u) / 256, averaged over ``draws`` draws of u; standard error over the draws
        (one draw: over the Hutchinson probes, if several). A conditional model's, of the
        density given the class, needs the labels y (B,)."""
        if (reason := self.ode_not_available()) is not None:
            raise ConfigError(reason)
        velocity = self._given(y, x.shape[0])
        cfg, values = self.config, []
        stderr = None
        for _ in range(draws):
            estimate = likelihood.ode_log_likelihood(
                velocity,
                pixels.dequantise_signed(x, generator),
                steps=cfg.ode_steps,
                method=cfg.ode_solver,
                probes=cfg.probes,
                probe=cfg.probe,
                generator=generator,
                progress=progress,
            )
            values.append(estimate.values)
            stderr = estimate.stderr
        return likelihood.ode_result(
            torch.stack(values) + self.data_info.num_dims * math.log(2.0),  # dz/dy = 2
            stderr,
            solver=cfg.ode_solver,
            steps=cfg.ode_steps,
            probes=cfg.probes,
            probe=cfg.probe,
        )

    # -- noise codes -----------------------------------------------------------------------
    @torch.no_grad()
    def encode_noise(
        self,
        x: torch.Tensor,
        *,
        steps: int | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The noise (B, C, H, W) that deterministic DDIM (ddpm) or the ODE (flow matching,
        the configured sampler's method; at bin centres) decodes to x, in ``steps`` steps; a
        conditional model's given the labels y (B,) (required: the caller gives them)."""
        steps = self.config.sample_steps if steps is None else steps
        self._check_steps(steps)
        prediction = self._given(y, x.shape[0])
        if self._flow():
            z = (pixels.levels_of(x).to(x.dtype) + 0.5) * (2.0 / pixels.LEVELS) - 1.0
            return samplers.ode_invert(
                prediction, z, steps=steps, method=self._ode_method(), progress=progress
            )
        return samplers.ddim_invert(
            self._denoiser(prediction), pixels.to_signed(x), steps=steps, progress=progress
        )

    @torch.no_grad()
    def decode_noise(
        self,
        noise: torch.Tensor,
        *,
        steps: int | None = None,
        progress: bool = False,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images (B, C, H, W) as k / 255 from noise, deterministically; a conditional
        model's given the labels y (B,) (required)."""
        steps = self.config.sample_steps if steps is None else steps
        self._check_steps(steps)
        prediction = self._given(y, noise.shape[0])
        if self._flow():
            z = samplers.ode_sample(
                prediction,
                tuple(noise.shape),
                steps=steps,
                method=self._ode_method(),
                generator=None,
                like=noise,
                progress=progress,
                start=noise,
            )
            return pixels.quantise_bins(z)
        z = samplers.ddim_decode(self._denoiser(prediction), noise, steps=steps, progress=progress)
        return pixels.quantise_grid(z)

    def _ode_method(self) -> Literal["euler", "heun"]:
        return "euler" if self.config.resolved_sampler == "euler" else "heun"
