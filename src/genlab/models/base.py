"""The contract every generative model family fulfils, and its optional capabilities.

A family is an ``nn.Module`` subclass of :class:`GenerativeModel`, registered by name in
:data:`genlab.models.MODELS`. The Trainer only ever calls :meth:`GenerativeModel.phases` and
:meth:`GenerativeModel.loss`; evaluation checks the capability protocols below and reports a
metric as not applicable when a model lacks the capability it needs.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

from genlab.config import EvalConfig, ModelConfig
from genlab.errors import ConfigError
from genlab.models.common.ema import ExponentialMovingAverage
from genlab.models.declarations import TinyConfig, Traits, ZooEntry

# exact; a lower bound (importance-weighted, the ELBO, a dequantisation bound); an estimate
LikelihoodKind = Literal["exact", "iwae_bound", "elbo", "dequantised_bound", "estimate"]
LikelihoodOf = Literal["discrete", "dequantised"]
ConfigT = TypeVar("ConfigT", bound=ModelConfig)


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data: image shape, number of grey levels, and the
    classes its labels index (names, and training images of each) where it has labels."""

    shape: tuple[int, int, int]  # (C, H, W)
    levels: int  # 2 for binarised data, 256 for 8-bit grey levels
    classes: tuple[str, ...] = ()  # label i is classes[i]; empty: the data have no labels
    class_counts: tuple[int, ...] = ()  # training images of each class (empty: unknown)

    def __post_init__(self) -> None:
        if self.class_counts and len(self.class_counts) != len(self.classes):
            raise ValueError("DataInfo.class_counts needs one count per class")

    @property
    def num_dims(self) -> int:
        c, h, w = self.shape
        return c * h * w


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
    """Per-image log-likelihoods in nats, and what they are the likelihood of.

    ``of="discrete"``: log P(x) of the observed pixel values (Bernoulli, discretised logistic,
    categorical-256), exact or a lower bound as ``kind`` says.

    ``of="dequantised"``: log p(y) of a *continuous* density on [0, 1]^D at the dequantised
    image y = (x_int + u) / levels, u ~ U[0, 1)^D (Theis et al. 2016), averaged over
    ``samples`` draws of u (importance-weighted when more than one). Such a value is not a
    probability of the image; :meth:`discrete` turns it into a lower bound on one.
    """

    values: torch.Tensor  # (B,) nats
    kind: LikelihoodKind  # how the values stand to log-likelihood: exact, a bound, an estimate
    stderr: torch.Tensor | None = None  # (B,) Monte-Carlo standard error of each value, if any
    of: LikelihoodOf = "discrete"
    levels: int | None = None  # dequantised: pixel levels L of the data (256 for 8-bit)
    samples: int = 1  # draws (of z for a VAE's bound, of u for dequantisation) per value
    # the estimator's protocol where the kind alone does not tell it: the metric is then named
    # nll_<protocol> (a diffusion's "diffusion_bound_t100"); ``method`` says it in words
    protocol: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if (self.of == "dequantised") != (self.levels is not None):
            raise ValueError("a dequantised likelihood needs levels; a discrete one has none")

    def discrete(self, num_dims: int) -> LogLikelihood:
        """The likelihood of the discrete image of ``num_dims`` pixel values: as it is for
        ``of="discrete"``; for a dequantised density, the dequantisation bound
        ``log P(x) >= E_u[log p((x + u) / L)] - D log L`` (Theis et al. 2016, section 3.1,
        with the change of variables from [0, L)^D to [0, 1]^D), so every value shifts by
        ``-D log L`` and becomes a Monte-Carlo lower bound, kind ``dequantised_bound`` (an
        ``estimate`` of the density stays an estimate: of that bound)."""
        if self.of == "discrete":
            return self
        assert self.levels is not None
        shift = num_dims * math.log(self.levels)
        kind: LikelihoodKind = "estimate" if self.kind == "estimate" else "dequantised_bound"
        return LogLikelihood(
            self.values - shift,
            kind,
            self.stderr,
            "discrete",
            None,
            self.samples,
            self.protocol,
            self.method,
        )


class GenerativeModel(nn.Module, Generic[ConfigT], metaclass=ABCMeta):
    """Base class of every family: ``class VAE(GenerativeModel[VAEConfig])``.

    A family declares, as class attributes, everything the rest of genlab needs:

    - ``config_class``: its frozen :class:`~genlab.config.ModelConfig` dataclass;
    - ``traits``: what kind of model it is and how its sampling costs (:class:`Traits`);
    - ``description``: one line, shown by ``genlab list``;
    - ``tiny_configs``: named :class:`TinyConfig` s that the tests build and train;
    - ``zoo_entries``: how ``genlab zoo`` trains it (none: the zoo leaves it out);
    - ``default_ema_decay``: the weight average it samples from unless ``train.ema_decay``
      says otherwise (0: none);
    - ``unconditional_because``: for a family whose traits say it cannot be conditioned on a
      class label, why (the one-line refusal of ``model.conditional: true`` ends with it).

    It takes ``(config, data_info)`` in ``__init__`` and implements :meth:`loss`, and the
    capability protocols below that it has. Registering the class with
    ``@MODELS.register("name")`` names it; nothing else lists families.
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]]
    traits: ClassVar[Traits]
    description: ClassVar[str] = ""
    tiny_configs: ClassVar[dict[str, TinyConfig]] = {}
    zoo_entries: ClassVar[tuple[ZooEntry, ...]] = ()
    default_ema_decay: ClassVar[float] = 0.0
    unconditional_because: ClassVar[str] = ""

    def __init__(self, config: ConfigT, data_info: DataInfo) -> None:
        super().__init__()
        self.config: ConfigT = config
        self.data_info = data_info
        self.ema: ExponentialMovingAverage | None = None
        self.classes: tuple[str, ...] = ()  # conditional: the classes it is conditioned on
        if getattr(config, "conditional", False):  # (a test double may have no config)
            self.classes = self._conditioning_classes(data_info)
            counts = torch.tensor(data_info.class_counts or [1] * len(self.classes))
            # log p(y): the training set's class frequencies (a buffer: checkpoints keep it)
            self.register_buffer("class_log_prior", (counts.double() / counts.sum()).log().float())

    @classmethod
    def _conditioning_classes(cls, info: DataInfo) -> tuple[str, ...]:
        if not cls.traits.conditional:
            raise ConfigError(
                f"model.conditional: the {cls.family} family cannot be conditioned on a class "
                f"label: {cls.unconditional_because}; set model.conditional=false"
            )
        if len(info.classes) < 2:
            raise ConfigError(
                "model.conditional: the data set has no class labels"
                + (" (one class only)" if info.classes else "")
                + "; a conditional model needs labelled data (fashion-mnist, mnist, digits, "
                "cifar10, a folder of class subfolders, an npz with labels) or "
                "model.conditional=false"
            )
        return info.classes

    @property
    def conditional(self) -> bool:
        """Whether the model is conditioned on a class label: it learns p(x | y), its loss,
        samplers and likelihood take labels ``y`` (int64 (B,) in [0, num_classes))."""
        return bool(self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def draw_classes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n labels y ~ p(y) (the training set's class frequencies), on the model's device:
        what a conditional model samples from when no class is asked for."""
        prior = self.get_buffer("class_log_prior").exp()
        return torch.multinomial(prior, n, replacement=True, generator=generator)

    def likelihood_samples(self, cfg: EvalConfig) -> int:
        """The ``k`` the ``nll`` metric passes to ``log_likelihood``: ``eval.dequant_k`` draws
        of u for a density on dequantised data, ``eval.iwae_k`` importance samples otherwise;
        a family whose estimator has another knob says which."""
        return cfg.dequant_k if self.traits.dequantised else cfg.iwae_k

    def phases(self) -> list[Phase]:
        """The optimisation phases, run in order every training iteration."""
        return [Phase("main", self.parameters)]

    def after_step(self, phase: str) -> None:
        """Called by the Trainer after each optimiser step of ``phase``: the place for state
        that a schedule advances (KL warm-up). Such state lives in buffers, so checkpoints
        hold it. The default does nothing."""

    @abstractmethod
    def loss(
        self, x: torch.Tensor, phase: str, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Objective for one batch ``x`` (B, C, H, W) in one phase. A conditional model also
        takes the batch's labels as the keyword ``y`` (the Trainer passes them only to one).

        Returns a dict with a scalar ``"loss"`` to minimise (mean over the batch) plus named
        scalar terms for logging; ``generator`` drives every random draw. In training mode a
        family may anneal its objective (KL warm-up); in eval mode (validation) it always
        returns the final objective, so validation losses compare across epochs.
        """

    # -- the average of weights -----------------------------------------------------------
    def averaged_module(self) -> nn.Module:
        """The network whose weights an exponential moving average follows: the whole model
        by default; a GAN averages its generator only."""
        return self

    def keep_average(self, decay: float) -> None:
        """Follow the weights of :meth:`averaged_module` with an exponential moving average of
        ``decay`` (0: none), held in the ``ema`` submodule. Called once, when the model is
        built, before its weights are loaded."""
        if self.ema is not None:
            raise RuntimeError("the model already keeps an average of its weights")
        if decay > 0:
            self.ema = ExponentialMovingAverage(self.averaged_module(), decay)

    def update_average(self) -> None:
        """One step of the average; the Trainer calls it after each training iteration."""
        if self.ema is not None:
            self.ema.update(self.averaged_module())

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Within the block the model computes with its averaged weights (if it keeps an
        average); the trained weights come back afterwards."""
        if self.ema is None:
            yield
            return
        with self.ema.swapped_into(self.averaged_module()):
            yield

    def use_average(self) -> None:
        """From now on compute with the averaged weights (a model loaded to evaluate)."""
        if self.ema is not None:
            self.ema.copy_to(self.averaged_module())


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
class SupportsTemperature(Protocol):
    """``sample_tempered`` draws n images with the prior's spread scaled by ``temperature``
    (a flow's z ~ N(0, T^2 I); Kingma & Dhariwal 2018, section 5)."""

    def sample_tempered(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsStepSampling(Protocol):
    """An iterative sampler whose number of steps is the caller's choice (a diffusion's
    DDPM/DDIM or a flow-matching ODE), up to ``max_sample_steps``: ``steps`` None, ``sampler``
    None and ``eta`` None are the model's configured ones."""

    @property
    def max_sample_steps(self) -> int: ...

    def sample_with(
        self,
        n: int,
        *,
        steps: int | None = None,
        sampler: str | None = None,
        eta: float | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor: ...


@runtime_checkable
class SupportsGuidance(Protocol):
    """Classifier-free guidance (Ho & Salimans 2022) of a conditional iterative sampler: the
    network's prediction is u + w (c - u) with c its prediction given the class and u without
    one (the label dropped, as in training), so ``guidance`` w = 0 samples the unconditional
    model, w = 1 the conditional one, and w > 1 pushes further towards the class.
    ``guidance_not_available`` says why this instance cannot (trained without label dropout,
    or unconditional), or None."""

    def guidance_not_available(self) -> str | None: ...

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
    log Z (AIS, see :mod:`genlab.models.markov.boltzmann`)."""

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
