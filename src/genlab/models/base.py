"""The contract every generative model family fulfils, and its optional capabilities.

A family is an ``nn.Module`` subclass of :class:`GenerativeModel`, registered by name in
:data:`genlab.models.MODELS`. The Trainer only ever calls :meth:`GenerativeModel.phases` and
:meth:`GenerativeModel.loss`; evaluation checks the capability protocols below and reports a
metric as not applicable when a model lacks the capability it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from genlab.config import ModelConfig

LikelihoodKind = Literal["exact", "iwae_bound", "elbo"]


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data: image shape and number of grey levels."""

    shape: tuple[int, int, int]  # (C, H, W)
    levels: int  # 2 for binarised data, 256 for 8-bit grey levels

    @property
    def num_dims(self) -> int:
        c, h, w = self.shape
        return c * h * w


@dataclass(frozen=True)
class Traits:
    """What kind of generative model a family is: reports and the claims table select runs by
    these, never by family name. (What a model can *do* is checked by the protocols below.)"""

    density: Literal["exact", "bound", "estimate", "implicit", "none"]
    autoregressive: bool = False  # p(x) = prod_i p(x_i | x_<i); samples pixel by pixel
    encoder: bool = False  # maps images to codes (features for probes and fine-tuning)
    variational: bool = False  # q(z|x) fitted by variational inference: codes are posteriors
    adversarial: bool = False  # trained against a discriminator (an implicit density)
    markov_chain: bool = False  # samples are drawn by running a Markov chain (RBM, DAE)


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: its name, the parameters it updates and how often it runs.

    Most families have a single phase ``"main"``. A GAN has ``"discriminator"`` (``repeats``
    = n_critic) and ``"generator"``; each phase gets its own optimiser from the Trainer.
    """

    name: str
    parameters: Callable[[], Iterable[nn.Parameter]]
    repeats: int = 1
    lr: float | None = None  # overrides train.lr for this phase's optimiser
    betas: tuple[float, float] | None = None  # overrides train.betas for this phase's optimiser


@dataclass(frozen=True)
class LogLikelihood:
    """Per-image log p(x) in nats, and whether it is exact or a lower bound (and which)."""

    values: torch.Tensor  # (B,) nats
    kind: LikelihoodKind
    stderr: torch.Tensor | None = None  # (B,) Monte-Carlo standard error of each value, if any


class GenerativeModel(nn.Module):
    """Base class of every family.

    Subclasses set ``config_class`` (a frozen ModelConfig dataclass), ``traits`` and a one-line
    ``description``, take ``(config, data_info)`` in ``__init__`` and implement :meth:`loss`;
    registering the class in :data:`~genlab.models.MODELS` sets ``family``, its name.
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]]
    traits: ClassVar[Traits]
    description: ClassVar[str] = ""  # one line, shown by `genlab list`

    def __init__(self, config: Any, data_info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.data_info = data_info

    def phases(self) -> list[Phase]:
        """The optimisation phases, run in order every training iteration."""
        return [Phase("main", self.parameters)]

    def after_step(self, phase: str) -> None:
        """Called by the Trainer after each optimiser step of ``phase``: the place for state
        that a schedule advances (KL warm-up, an exponential moving average of weights). Such
        state lives in buffers, so checkpoints hold it. The default does nothing."""

    def loss(
        self, x: torch.Tensor, phase: str, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Objective for one batch ``x`` (B, C, H, W) in one phase.

        Returns a dict with a scalar ``"loss"`` to minimise (mean over the batch) plus named
        scalar terms for logging; ``generator`` drives every random draw. In training mode a
        family may anneal its objective (KL warm-up); in eval mode (validation) it always
        returns the final objective, so validation losses compare across epochs.
        """
        raise NotImplementedError


@runtime_checkable
class SupportsLikelihood(Protocol):
    def log_likelihood(
        self, x: torch.Tensor, *, k: int, generator: torch.Generator | None = None
    ) -> LogLikelihood: ...


@runtime_checkable
class SupportsElbo(Protocol):
    def elbo_terms(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class SupportsEncode(Protocol):
    def encode(self, x: torch.Tensor) -> Any: ...


@runtime_checkable
class SupportsDecode(Protocol):
    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SupportsGenerate(Protocol):
    """A generator of images from latents z ~ N(0, I) of size ``latent_dim`` (a GAN)."""

    latent_dim: int

    def generate(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SupportsReconstruct(Protocol):
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SupportsSample(Protocol):
    """``sample`` returns n images (n, C, H, W) in [0, 1]; ``progress`` asks for a progress bar
    where sampling is slow (autoregressive models)."""

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsSampleMeans(Protocol):
    """``sample_means`` returns n mean images E[x|z] of an observation model (a VAE's decoder
    means), which differ from its samples x ~ p(x|z) by the pixel-level noise."""

    def sample_means(
        self, n: int, *, generator: torch.Generator | None = None, progress: bool = False
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsMarkovChain(Protocol):
    """A Markov chain on images: ``chain_start`` draws n starting images from noise,
    ``chain_step`` takes one transition (a Gibbs sweep; corrupt-then-sample for a denoising
    autoencoder). ``chain_not_available`` says why this instance cannot run one (e.g. an
    autoencoder trained without corruption), or None."""

    def chain_not_available(self) -> str | None: ...

    def chain_start(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def chain_step(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsPartitionEstimate(Protocol):
    """An energy-based model: its free energy F(x) (p(x) = exp(-F(x)) / Z) and an estimate of
    log Z (AIS, see :mod:`genlab.models.boltzmann`)."""

    def free_energy(self, x: torch.Tensor) -> torch.Tensor: ...

    def estimate_log_partition(
        self,
        base_images: torch.Tensor | None,
        *,
        betas: int,
        runs: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Any: ...


@runtime_checkable
class SupportsReconstructionLikelihood(Protocol):
    def reconstruction_log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


def code_of(encoded: Any) -> torch.Tensor:
    """The point code of an ``encode`` result: a tensor as is, a distribution's mean."""
    return encoded if isinstance(encoded, torch.Tensor) else encoded.mean


def device_of(model: nn.Module) -> torch.device:
    """The device a model computes on: that of its first parameter (the CPU if it has none).
    Evaluation runs where the model is."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
